import base64
import json

import pytest

from functions.capture import (
    CaptureFormatError,
    capture_line,
    ground_truth_line,
    read_capture_lines,
    read_ground_truth_lines,
)


def test_csv_record_round_trip():
    line = capture_line("e-1", "41,1.5,0\n30,2,1", "0.25\n0.75", inference_id="req-1")
    (rec,) = read_capture_lines([line])
    assert rec.key == "req-1" and rec.event_id == "e-1"
    assert rec.rows == [["41", "1.5", "0"], ["30", "2", "1"]] and rec.scores == [0.25, 0.75]
    assert rec.input_error is None and rec.output_error is None


def test_base64_and_json_encodings_and_bytes_lines():
    rec = {
        "captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "encoding": "BASE64",
                              "data": base64.b64encode(b"1,2,3").decode()},
            "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "encoding": "JSON",
                               "data": json.dumps({"predictions": [{"score": 0.9}]})},
        },
        "eventMetadata": {"eventId": "e-2", "inferenceTime": "2026-01-01T00:00:00Z"},
        "eventVersion": "0",
    }
    (parsed,) = read_capture_lines([json.dumps(rec).encode(), b"\n"])
    assert parsed.key == "e-2" and parsed.rows == [["1", "2", "3"]] and parsed.scores == [0.9]


def test_bad_payload_is_kept_as_traffic_but_a_bad_line_is_an_error():
    line = capture_line("e-3", None, "not-a-number")
    (rec,) = read_capture_lines([line])
    assert rec.rows is None and rec.scores is None and "could not convert" in rec.output_error
    bad_b64 = json.loads(capture_line("e-4", "x", "0.1"))
    bad_b64["captureData"]["endpointInput"].update(encoding="BASE64", data="%%%")
    (rec,) = read_capture_lines([json.dumps(bad_b64)])
    assert "base64" in rec.input_error
    with pytest.raises(CaptureFormatError, match="line 2: not JSON"):
        list(read_capture_lines([capture_line("e-5", "1", "0.1"), "{oops"]))
    with pytest.raises(CaptureFormatError, match="eventId"):
        list(read_capture_lines(['{"captureData": {}}']))


def test_ground_truth_lines():
    lines = [ground_truth_line("req-1", 1), ground_truth_line("req-2", 0), ""]
    gt = list(read_ground_truth_lines(lines))
    assert [(g.event_id, g.labels) for g in gt] == [("req-1", [1]), ("req-2", [0])]
    bad = json.dumps({"groundTruthData": {"data": "maybe", "encoding": "CSV"}, "eventMetadata": {"eventId": "x"}})
    with pytest.raises(CaptureFormatError, match="not 0/1"):
        list(read_ground_truth_lines([bad]))


def test_parsing_is_streaming():
    def lines():
        for i in range(3):
            yield capture_line(f"e-{i}", "1,2", "0.5")
        raise AssertionError("read past what was asked for")

    it = read_capture_lines(lines())
    assert next(it).event_id == "e-0"


def test_capture_prefix():
    from functions.capture import capture_prefix

    assert capture_prefix("s3://bucket/capture/", "ep", "Shadow-01") == ("bucket", "capture/ep/Shadow-01/")
    assert capture_prefix("s3://bucket", "ep", "AllTraffic") == ("bucket", "ep/AllTraffic/")
    with pytest.raises(ValueError, match="s3://"):
        capture_prefix("/tmp/x", "ep", "v")


def test_reads_what_the_local_emulator_writes():
    emulator = pytest.importorskip("local.sagemaker.capture")
    lines = [
        json.dumps(emulator.capture_record(b"41,1,0", "text/csv", b"0.12", "text/csv", "req-9")),
        json.dumps(emulator.capture_record(b'{"instances": [[1, 2]]}', "application/json", b"[0.5]", "application/json", "req-10")),
        json.dumps(emulator.capture_record(b"1,2", "application/x-npy", None, "text/csv", "req-11")),
    ]
    a, b, c = read_capture_lines(lines)
    assert (a.key, a.rows, a.scores) == ("req-9", [["41", "1", "0"]], [0.12])
    assert (b.key, b.rows, b.scores) == ("req-10", [["1", "2"]], [0.5])
    assert c.rows is None and "unsupported content type" in c.input_error and c.scores is None
