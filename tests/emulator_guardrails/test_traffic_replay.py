"""The traffic replayer: held-out rows, perturbations, and real requests to the emulator."""

from __future__ import annotations

import json
import statistics
import time

import pytest
from guardrails_support import IMAGE, ROLE, model_url, wait_status
from pydantic import ValidationError

from guardrail.traffic import HeldOut, Progress, TrafficConfig, TrafficError, TrafficReplayer, main


@pytest.fixture(scope="module")
def endpoint(sm, names_module) -> str:
    model, config, name = (f"traffic-{k}-{names_module}" for k in ("m", "c", "e"))
    sm.create_model(
        ModelName=model,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_url("v1")},
    )
    sm.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InstanceType": "ml.m5.xlarge",
                "InitialInstanceCount": 2,
            }
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    assert wait_status(sm, name)["EndpointStatus"] == "InService"
    return name


@pytest.fixture(scope="module")
def names_module() -> str:
    return str(int(time.time() * 1000) % 10_000_000)


# ---------------------------------------------------------------- rows and options (no network)


def test_csv_label_is_the_first_column_unless_named(holdout):
    data = HeldOut.from_csv(holdout)
    assert data.columns == [f"x{i}" for i in range(6)]
    assert set(data.labels) == {"0", "1"} and len(data.rows) == 200 and len(data.rows[0]) == 6
    by_name = HeldOut.from_csv(holdout, label_column="x5")
    assert by_name.columns[0] == "y" and by_name.labels[0] == data.rows[0][5]


def test_bad_input_gets_a_clear_error(tmp_path, holdout):
    with pytest.raises(TrafficError, match="no such file"):
        HeldOut.from_csv(tmp_path / "missing.csv")
    with pytest.raises(TrafficError, match="no label column 'target'"):
        HeldOut.from_csv(holdout, label_column="target")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("y,a,b\n1,2,3\n0,1\n")
    with pytest.raises(TrafficError, match="line 3 has 2 fields"):
        HeldOut.from_csv(ragged)
    with pytest.raises(TrafficError, match="no rows"):
        HeldOut([])
    with pytest.raises(ValidationError, match="duration or a count"):
        TrafficConfig(endpoint_name="ep", rate=10)
    with pytest.raises(ValidationError, match="at most 1"):
        TrafficConfig(endpoint_name="ep", rate=10, count=1, malformed_fraction=0.7, out_of_range_fraction=0.5)
    with pytest.raises(ValidationError):
        TrafficConfig(endpoint_name="not a name!", rate=10, count=1)


# ---------------------------------------------------------------- against the emulator


def replayer(emulator, data, **config) -> TrafficReplayer:
    return TrafficReplayer(TrafficConfig(**config), data, endpoint_url=emulator.url, region="us-east-1")


def test_replay_records_every_request(emulator, endpoint, holdout):
    data = HeldOut.from_csv(holdout)
    seen: list[Progress] = []
    r = TrafficReplayer(
        TrafficConfig(endpoint_name=endpoint, rate=40, count=60, inference_ids=True, progress_interval=0.5),
        data,
        endpoint_url=emulator.url,
        region="us-east-1",
        on_progress=seen.append,
    ).run()
    s = r.summary
    assert (s.sent, s.ok, s.errors) == (60, 60, 0)
    assert s.variants["AllTraffic"].requests == 60 and s.variants["AllTraffic"].accuracy > 0.7
    assert 25 < s.achieved_rate < 45  # 60 requests due over 1.5 s
    assert s.latency_ms is not None and s.latency_ms.p50 <= s.latency_ms.p99 <= s.latency_ms.max
    ids = [rec.inference_id for rec in r.records]
    assert len(set(ids)) == 60 and all(ids)
    assert [rec.seq for rec in r.records] == list(range(60))
    first = r.records[0]
    assert first.body == ",".join(data.rows[0]) and first.label == data.labels[0]
    assert 0.0 <= float(first.answer) <= 1.0 and first.variant == "AllTraffic"
    assert seen and seen[-1].sent == 60


def test_duration_stops_the_replay_by_itself(emulator, endpoint, holdout):
    started = time.monotonic()
    r = replayer(emulator, HeldOut.from_csv(holdout), endpoint_name=endpoint, rate=20, duration=1.0).run()
    assert time.monotonic() - started < 3
    assert 18 <= r.summary.sent <= 20  # due at 0, 0.05, ..., 0.95 s


def test_malformed_and_out_of_range_rows(emulator, endpoint, holdout):
    data = HeldOut.from_csv(holdout)
    r = replayer(
        emulator,
        data,
        endpoint_name=endpoint,
        rate=100,
        count=120,
        seed=7,
        malformed_fraction=0.25,
        out_of_range_fraction=0.25,
    ).run()
    kinds = r.summary.kinds
    assert kinds["malformed"] > 15 and kinds["out_of_range"] > 15 and kinds["normal"] > 40
    malformed = [rec for rec in r.records if rec.kind == "malformed"]
    failed = [rec for rec in malformed if rec.status != "ok"]
    # the container cannot parse text or a wrong field count: an error the caller sees (ModelError 4xx)
    assert failed and all(rec.http_status and 400 <= rec.http_status < 600 for rec in failed)
    assert all(rec.status == "ok" for rec in r.records if rec.kind in ("normal", "out_of_range"))
    # features are ~N(0, 1): one value per out-of-range row is 100 spans beyond the data's range
    for rec in (rec for rec in r.records if rec.kind == "out_of_range"):
        values = [float(v) for v in rec.body.split(",")]
        assert sum(abs(v) > 100 for v in values) == 1


def test_drift_shifts_columns_by_standard_deviations(emulator, endpoint, holdout):
    data = HeldOut.from_csv(holdout)
    mean0, std0, _, _ = data.stats(0)
    r = replayer(emulator, data, endpoint_name=endpoint, rate=100, count=100, drift={"x0": 2.0}).run()
    sent = [float(rec.body.split(",")[0]) for rec in r.records]
    assert all(rec.kind == "drift" for rec in r.records)
    assert statistics.fmean(sent) == pytest.approx(mean0 + 2 * std0, abs=0.3 * std0)
    # x0 pushes the synthetic label up: the drifted traffic is scored positive far more often
    assert r.summary.variants["AllTraffic"].positive_rate > 0.8


def test_unknown_endpoint_fails_every_request_with_its_code(emulator, holdout):
    r = replayer(
        emulator, HeldOut.from_csv(holdout), endpoint_name="no-such-endpoint", rate=50, count=5
    ).run()
    assert r.summary.errors == 5 and r.summary.error_codes == {"ValidationError": 5}


def test_cli_prints_a_json_summary(emulator, endpoint, holdout, capsys, tmp_path):
    records = tmp_path / "records.jsonl"
    code = main(
        [
            "--endpoint",
            endpoint,
            "--file",
            str(holdout),
            "--rate",
            "50",
            "--count",
            "10",
            "--endpoint-url",
            emulator.url,
            "--region",
            "us-east-1",
            "--records",
            str(records),
            "--quiet",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["sent"] == 10 and summary["ok"] == 10
    assert len(records.read_text().splitlines()) == 10
    assert main(["--endpoint", endpoint, "--file", str(tmp_path / "nope.csv"), "--count", "1"]) == 2
