import numpy as np
from stats_synthetic import sample_rows

from functions.capture import capture_line, read_capture_lines
from functions.stats import data_quality
from functions.stats.schema import FeatureSchema


def clean_rows(n: int, seed: int = 0) -> list[list[str]]:
    return [[f"{v:g}" for v in row] for row in sample_rows(np.random.default_rng(seed), n)]


def test_clean_rows_pass(baseline, columns):
    report = data_quality.check(baseline, clean_rows(500), columns=columns)
    assert report.rows == 500 and report.rows_with_breaches == 0 and report.breaches == []
    assert data_quality.malformed_fraction(report) == 0.0


def test_check_row_names_each_breach(baseline, columns):
    schema = FeatureSchema.of(baseline, columns)
    assert data_quality.check_row(schema, ["40", "1000", "1", "0", "0"]) == []
    assert data_quality.check_row(schema, ["40", "1000"])[0].check == "column_count"
    assert [b.check for b in data_quality.check_row(schema, ["forty", "1000", "1", "0", "0"])] == ["not_numeric"]
    assert [b.check for b in data_quality.check_row(schema, ["", "1000", "1", "0", "0"])] == ["missing"]
    assert [b.check for b in data_quality.check_row(schema, ["400", "1000", "1", "0", "0"])] == ["out_of_range"]
    assert [b.check for b in data_quality.check_row(schema, ["40", "1000", "0", "0", "0"])] == ["no_category"]
    assert [b.check for b in data_quality.check_row(schema, ["40", "1000", "1", "1", "0"])] == ["several_categories"]
    assert [b.check for b in data_quality.check_row(schema, ["40", "1000", "2", "0", "0"])] == ["not_one_hot"]


def test_window_counts_malformed_and_out_of_range_rows(baseline, columns):
    rows = clean_rows(200)
    rows += [["1", "2"]] * 7 + [["abc", "1", "1", "0", "0"]] * 5  # 12 malformed
    rows += [["500", "100", "1", "0", "0"]] * 9 + [["40", "100", "0", "0", "0"]] * 4
    report = data_quality.check(baseline, rows, columns=columns)
    assert report.rows == 225 and report.malformed_rows == 12 and report.rows_with_breaches == 25
    assert report.count("column_count") == 7 and report.count("not_numeric") == 5
    assert report.count("out_of_range") == 9 and report.count("no_category") == 4
    oor = next(b for b in report.breaches if b.check == "out_of_range")
    assert oor.features == {"age": 9} and oor.examples[0].value == "500" and len(oor.examples) == 5
    assert data_quality.malformed_fraction(report) == 12 / 225


def test_completeness_is_compared_with_the_baseline(baseline, columns):
    rows = clean_rows(100)
    for r in rows[:20]:
        r[1] = ""
    report = data_quality.check(baseline, rows, columns=columns)
    assert report.completeness == {"balance": 0.2}


def test_capture_records_count_unparsable_requests_and_predictions(baseline, columns):
    lines = [capture_line(f"e{i}", ",".join(r), "0.3", inference_id=f"r{i}") for i, r in enumerate(clean_rows(10))]
    lines.append(capture_line("bad-in", "1,2", "0.1"))
    lines.append(capture_line("bad-out", "40,100,1,0,0", "oops"))
    lines.append(capture_line("big-out", "40,100,1,0,0", "3.5"))
    report = data_quality.check_records(baseline, read_capture_lines(lines), columns=columns)
    assert report.requests == 13 and report.rows == 13 and report.malformed_rows == 1
    assert report.count("unparsable_prediction") == 1 and report.count("prediction_out_of_range") == 1
    assert report.count("column_count") == 1
    assert next(b for b in report.breaches if b.check == "column_count").examples[0].request == "bad-in"


def test_mostly_malformed_traffic_feeds_the_verdict(baseline, columns):
    rows = [["?"] * 5] * 80 + clean_rows(20)
    report = data_quality.check(baseline, rows, columns=columns)
    assert data_quality.malformed_fraction(report) == 0.8
    assert data_quality.malformed_fraction(data_quality.check(baseline, [], columns=columns)) is None
