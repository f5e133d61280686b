"""Traffic replayer: send held-out rows to a SageMaker endpoint at a steady rate and record every request.

It goes through boto3's `sagemaker-runtime` InvokeEndpoint, so it drives the local emulator (endpoint
from `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME` or `endpoint_url`) and a real endpoint alike. Requests are sent
open-loop (request i is due at start + i / rate) by a pool of `concurrency` workers; if every worker is
busy the schedule slips rather than piling up unbounded work, and the summary reports the achieved rate.
botocore's retries are off so every failure is seen and counted once.

Rows come from a CSV file with a header (the label is the first column unless `label_column` names
another, as `training/prepare.py` writes `holdout.csv`) or from a list. Each request body is one CSV line
of features, as the SageMaker XGBoost container expects. Options perturb rows for the data guardrails:
`drift` shifts numeric columns by a number of their standard deviations, `malformed_fraction` sends rows
the container cannot parse, `out_of_range_fraction` puts one numeric value far outside the data's range.

    python -m guardrail.traffic --endpoint NAME --file holdout.csv --rate 20 --duration 30
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, Field, model_validator

Kind = Literal["normal", "drift", "malformed", "out_of_range"]
ENDPOINT_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"


class TrafficError(ValueError):
    """Bad replay input: unreadable file, empty rows, unknown column, impossible options."""


# ---------------------------------------------------------------- rows


class HeldOut:
    """Feature rows (strings, as sent) with optional labels and column names."""

    def __init__(
        self,
        rows: Sequence[Sequence[Any]],
        labels: Sequence[Any] | None = None,
        columns: Sequence[str] | None = None,
    ) -> None:
        if not rows:
            raise TrafficError("no rows to send")
        self.rows = [[_text(v) for v in row] for row in rows]
        width = len(self.rows[0])
        if width == 0:
            raise TrafficError("rows have no features")
        for i, row in enumerate(self.rows):
            if len(row) != width:
                raise TrafficError(f"row {i} has {len(row)} features, expected {width}")
        if labels is not None and len(labels) != len(self.rows):
            raise TrafficError(f"{len(labels)} labels for {len(self.rows)} rows")
        self.labels = [None if v is None else _text(v) for v in labels] if labels is not None else None
        self.columns = list(columns) if columns is not None else [f"f{i}" for i in range(width)]
        if len(self.columns) != width:
            raise TrafficError(f"{len(self.columns)} column names for {width} features")
        self._numeric_stats = _numeric_stats(self.rows)

    @classmethod
    def from_csv(cls, path: str | Path, label_column: str | None = None) -> HeldOut:
        """A CSV file with a header; the label column is `label_column` or else the first column."""
        path = Path(path)
        if not path.is_file():
            raise TrafficError(f"{path}: no such file")
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header:
                raise TrafficError(f"{path}: empty file (a header line is required)")
            body = [row for row in reader if row]
        if label_column is None:
            at = 0
        elif label_column in header:
            at = header.index(label_column)
        else:
            raise TrafficError(f"{path}: no label column {label_column!r} in header {header[:8]}")
        for i, row in enumerate(body):
            if len(row) != len(header):
                raise TrafficError(f"{path}: line {i + 2} has {len(row)} fields, header has {len(header)}")
        return cls(
            rows=[row[:at] + row[at + 1 :] for row in body],
            labels=[row[at] for row in body],
            columns=header[:at] + header[at + 1 :],
        )

    @classmethod
    def from_lines(cls, lines: Sequence[str], labels: Sequence[Any] | None = None) -> HeldOut:
        """Rows already in wire form: one CSV line of features each."""
        return cls([next(csv.reader([line])) for line in lines], labels)

    def numeric_columns(self) -> list[int]:
        return sorted(self._numeric_stats)

    def column_index(self, name: str) -> int:
        if name in self.columns:
            return self.columns.index(name)
        raise TrafficError(f"unknown column {name!r}; columns are {self.columns[:10]}...")

    def stats(self, index: int) -> tuple[float, float, float, float]:
        """(mean, std, min, max) of a numeric column."""
        if index not in self._numeric_stats:
            raise TrafficError(f"column {self.columns[index]!r} is not numeric")
        return self._numeric_stats[index]


def _text(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def _number(v: str) -> float | None:
    try:
        x = float(v)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _numeric_stats(rows: list[list[str]]) -> dict[int, tuple[float, float, float, float]]:
    out = {}
    for j in range(len(rows[0])):
        values = [_number(row[j]) for row in rows]
        if all(v is not None for v in values):
            xs = [v for v in values if v is not None]
            out[j] = (statistics.fmean(xs), statistics.pstdev(xs), min(xs), max(xs))
    return out


# ---------------------------------------------------------------- configuration and results


class TrafficConfig(BaseModel):
    endpoint_name: str = Field(pattern=ENDPOINT_NAME)
    rate: float = Field(gt=0, le=5000, description="requests per second")
    duration: float | None = Field(default=None, gt=0, description="seconds; stop sending after this")
    count: int | None = Field(default=None, gt=0, description="requests; stop after this many")
    concurrency: int | None = Field(default=None, ge=1, le=256, description="workers; default from the rate")
    content_type: str = "text/csv"
    accept: str | None = None
    target_variant: str | None = None
    inference_ids: bool = False
    shuffle: bool = False
    seed: int = 0
    drift: dict[str, float] = Field(default_factory=dict, description="column (or '*') -> shift in std units")
    malformed_fraction: float = Field(default=0.0, ge=0, le=1)
    out_of_range_fraction: float = Field(default=0.0, ge=0, le=1)
    read_timeout: float = Field(default=30.0, gt=0)
    progress_interval: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _bounded(self) -> TrafficConfig:
        if self.duration is None and self.count is None:
            raise ValueError("give a duration or a count: the replayer always stops by itself")
        if self.malformed_fraction + self.out_of_range_fraction > 1:
            raise ValueError("malformed_fraction + out_of_range_fraction must be at most 1")
        return self

    @property
    def workers(self) -> int:
        return self.concurrency or max(2, min(64, math.ceil(self.rate / 10)))


class RequestRecord(BaseModel):
    seq: int
    sent_at: float  # epoch seconds
    inference_id: str | None = None
    kind: Kind = "normal"
    body: str = ""  # what was sent (one CSV line)
    status: str  # "ok" or the error code (ModelError, ValidationError, ...)
    http_status: int | None = None
    latency_ms: float
    answer: str | None = None
    label: str | None = None
    variant: str | None = None
    error: str | None = None


class LatencySummary(BaseModel):
    p50: float
    p90: float
    p99: float
    max: float
    mean: float


class VariantSummary(BaseModel):
    requests: int = 0
    ok: int = 0
    errors: int = 0
    mean_score: float | None = None  # mean numeric answer (a probability for binary:logistic)
    positive_rate: float | None = None  # answers >= 0.5
    accuracy: float | None = None  # when labels are known


class TrafficSummary(BaseModel):
    endpoint_name: str
    started_at: float
    elapsed_s: float
    sent: int
    ok: int
    errors: int
    error_codes: dict[str, int]
    kinds: dict[str, int]
    achieved_rate: float
    latency_ms: LatencySummary | None
    variants: dict[str, VariantSummary]


class Progress(BaseModel):
    elapsed_s: float
    sent: int
    ok: int
    errors: int
    variants: dict[str, int]


class TrafficResult(BaseModel):
    summary: TrafficSummary
    records: list[RequestRecord]


def _pct(ordered: list[float], p: float) -> float:
    return ordered[max(math.ceil(p / 100 * len(ordered)), 1) - 1]


def summarize(
    endpoint: str, records: list[RequestRecord], started_at: float, elapsed: float
) -> TrafficSummary:
    latencies = sorted(r.latency_ms for r in records)
    per_variant: dict[str, list[RequestRecord]] = {}
    for r in records:
        per_variant.setdefault(r.variant or "(none)", []).append(r)
    variants = {}
    for name, rs in per_variant.items():
        scores = [(s, r.label) for r in rs if r.status == "ok" and (s := _number(r.answer or "")) is not None]
        labelled = [(s, lab) for s, lab in scores if lab is not None and _number(lab) is not None]
        variants[name] = VariantSummary(
            requests=len(rs),
            ok=sum(r.status == "ok" for r in rs),
            errors=sum(r.status != "ok" for r in rs),
            mean_score=statistics.fmean(s for s, _ in scores) if scores else None,
            positive_rate=sum(s >= 0.5 for s, _ in scores) / len(scores) if scores else None,
            accuracy=sum((s >= 0.5) == (float(lab) >= 0.5) for s, lab in labelled) / len(labelled)
            if labelled
            else None,
        )
    return TrafficSummary(
        endpoint_name=endpoint,
        started_at=started_at,
        elapsed_s=round(elapsed, 3),
        sent=len(records),
        ok=sum(r.status == "ok" for r in records),
        errors=sum(r.status != "ok" for r in records),
        error_codes=dict(Counter(r.status for r in records if r.status != "ok")),
        kinds=dict(Counter(r.kind for r in records)),
        achieved_rate=round(len(records) / elapsed, 3) if elapsed > 0 else 0.0,
        latency_ms=LatencySummary(
            p50=_pct(latencies, 50),
            p90=_pct(latencies, 90),
            p99=_pct(latencies, 99),
            max=latencies[-1],
            mean=statistics.fmean(latencies),
        )
        if latencies
        else None,
        variants=variants,
    )


# ---------------------------------------------------------------- perturbations


class _Perturber:
    """Chooses the kind of each request and builds its body; seeded, so a replay is repeatable."""

    def __init__(self, data: HeldOut, config: TrafficConfig) -> None:
        self.data, self.config = data, config
        self.random = random.Random(config.seed)
        self.shifts: dict[int, float] = {}
        for name, k in config.drift.items():
            targets = data.numeric_columns() if name == "*" else [data.column_index(name)]
            for j in targets:
                self.shifts[j] = k * data.stats(j)[1]
        if config.out_of_range_fraction and not data.numeric_columns():
            raise TrafficError("out-of-range rows need at least one numeric column")

    def body(self, row: list[str]) -> tuple[Kind, str]:
        u = self.random.random()
        if u < self.config.malformed_fraction:
            return "malformed", self._malformed(row)
        if u < self.config.malformed_fraction + self.config.out_of_range_fraction:
            return "out_of_range", self._out_of_range(row)
        if self.shifts:
            shifted = list(row)
            for j, delta in self.shifts.items():
                shifted[j] = repr(float(row[j]) + delta)
            return "drift", _line(shifted)
        return "normal", _line(row)

    def _malformed(self, row: list[str]) -> str:
        choice = self.random.randrange(3)
        if choice == 0:  # a field missing
            return _line(row[:-1]) if len(row) > 1 else ""
        if choice == 1:  # text where a number belongs
            broken = list(row)
            broken[self.random.randrange(len(row))] = "not-a-number"
            return _line(broken)
        return _line([*row, *row[: max(1, len(row) // 2)]])  # extra fields

    def _out_of_range(self, row: list[str]) -> str:
        j = self.random.choice(self.data.numeric_columns())
        _, std, low, high = self.data.stats(j)
        span = (high - low) or std or 1.0
        out = list(row)
        out[j] = repr(high + 100 * span if self.random.random() < 0.5 else low - 100 * span)
        return _line(out)


def _line(values: Sequence[str]) -> str:
    return ",".join(values)


# ---------------------------------------------------------------- the replayer


class TrafficReplayer:
    """`TrafficReplayer(config, data).run()` blocks and returns a TrafficResult; `.start()` runs it in the
    background (then `.stop()`, `.wait()`); `on_record` sees every request, `on_progress` a Progress
    every `progress_interval` seconds."""

    def __init__(
        self,
        config: TrafficConfig,
        data: HeldOut,
        client: Any | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        on_record: Callable[[RequestRecord], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.config, self.data = config, data
        self.client = client or boto3.client(
            "sagemaker-runtime",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                retries={"total_max_attempts": 1},
                max_pool_connections=config.workers + 2,
                read_timeout=config.read_timeout,
                connect_timeout=5,
            ),
        )
        self.on_record, self.on_progress = on_record, on_progress
        self._perturber = _Perturber(data, config)
        self._order = list(range(len(data.rows)))
        if config.shuffle:
            random.Random(config.seed).shuffle(self._order)
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._result: TrafficResult | None = None
        self._error: BaseException | None = None

    # lifecycle
    def start(self) -> TrafficReplayer:
        def target() -> None:
            try:
                self.run()
            except BaseException as exc:  # surfaced by wait()
                self._error = exc

        self._thread = threading.Thread(target=target, name="traffic-replayer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> TrafficResult:
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError("traffic replay still running")
        if self._error is not None:
            raise self._error
        if self._result is None:
            raise RuntimeError("the replay has not run")
        return self._result

    def __enter__(self) -> TrafficReplayer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join()

    @property
    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    # the work
    def run(self) -> TrafficResult:
        cfg = self.config
        started_wall, started = time.time(), time.monotonic()
        slots = threading.BoundedSemaphore(cfg.workers)
        next_progress = started + cfg.progress_interval
        with ThreadPoolExecutor(max_workers=cfg.workers, thread_name_prefix="traffic") as pool:
            seq = 0
            while not self._stop.is_set():
                if cfg.count is not None and seq >= cfg.count:
                    break
                due = started + seq / cfg.rate
                if cfg.duration is not None and due - started >= cfg.duration:
                    break
                now = time.monotonic()
                if now >= next_progress:
                    self._progress(now - started)
                    next_progress += cfg.progress_interval
                if due > now:
                    self._stop.wait(min(due - now, max(next_progress - now, 0.001)))
                    continue
                if not slots.acquire(timeout=0.05):
                    continue  # every worker busy: the schedule slips
                i = self._order[seq % len(self._order)]
                kind, body = self._perturber.body(self.data.rows[i])
                label = self.data.labels[i] if self.data.labels else None
                pool.submit(self._send, seq, kind, body, label, slots)
                seq += 1
        elapsed = time.monotonic() - started
        self._progress(elapsed)
        records = sorted(self.records, key=lambda r: r.seq)
        self._result = TrafficResult(
            summary=summarize(cfg.endpoint_name, records, started_wall, elapsed), records=records
        )
        return self._result

    def _send(
        self, seq: int, kind: Kind, body: str, label: str | None, slots: threading.BoundedSemaphore
    ) -> None:
        cfg = self.config
        params: dict[str, Any] = {
            "EndpointName": cfg.endpoint_name,
            "Body": body.encode(),
            "ContentType": cfg.content_type,
        }
        if cfg.accept:
            params["Accept"] = cfg.accept
        if cfg.target_variant:
            params["TargetVariant"] = cfg.target_variant
        inference_id = str(uuid.uuid4()) if cfg.inference_ids else None
        if inference_id:
            params["InferenceId"] = inference_id
        sent_at, t = time.time(), time.perf_counter()
        fields: dict[str, Any] = {}
        try:
            response = self.client.invoke_endpoint(**params)
            answer = response["Body"].read().decode(errors="replace").strip()
            fields = {
                "status": "ok",
                "http_status": 200,
                "answer": answer,
                "variant": response.get("InvokedProductionVariant"),
            }
        except ClientError as exc:
            err = exc.response.get("Error", {})
            fields = {
                "status": err.get("Code") or "ClientError",
                "error": err.get("Message") or str(exc),
                "http_status": exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
                "variant": exc.response.get("ResponseMetadata", {})
                .get("HTTPHeaders", {})
                .get("x-amzn-invoked-production-variant"),
            }
        except (BotoCoreError, OSError) as exc:
            fields = {"status": type(exc).__name__, "error": str(exc)}
        finally:
            latency_ms = (time.perf_counter() - t) * 1000
            slots.release()
        record = RequestRecord(
            seq=seq,
            sent_at=sent_at,
            inference_id=inference_id,
            kind=kind,
            body=body,
            latency_ms=round(latency_ms, 3),
            label=label,
            **fields,
        )
        with self._lock:
            self._records.append(record)
        if self.on_record:
            self.on_record(record)

    def _progress(self, elapsed: float) -> None:
        if not self.on_progress:
            return
        with self._lock:
            records = list(self._records)
        self.on_progress(
            Progress(
                elapsed_s=round(elapsed, 3),
                sent=len(records),
                ok=sum(r.status == "ok" for r in records),
                errors=sum(r.status != "ok" for r in records),
                variants=dict(Counter(r.variant or "(none)" for r in records)),
            )
        )


def write_ground_truth(records: Sequence[RequestRecord], s3_uri: str, endpoint: str, s3: Any = None) -> str | None:
    """Labels of answered requests as Model Monitor ground truth: one JSON Lines object under
    `<s3_uri>/<endpoint>/yyyy/mm/dd/hh/`, each line `{"groundTruthData": {"data": "1", "encoding": "CSV"},
    "eventMetadata": {"eventId": <inference id>}, "eventVersion": "0"}`. Needs `inference_ids=True`.
    Returns the key written (None when no record had both an inference id and a label)."""
    if not s3_uri.startswith("s3://"):
        raise TrafficError(f"ground truth goes to an s3:// prefix, got {s3_uri!r}")
    lines = [
        json.dumps({
            "groundTruthData": {"data": str(int(float(r.label))), "encoding": "CSV"},
            "eventMetadata": {"eventId": r.inference_id}, "eventVersion": "0",
        })
        for r in records if r.inference_id and r.label not in (None, "") and r.status == "ok"
    ]
    if not lines:
        return None
    bucket, _, prefix = s3_uri[5:].partition("/")
    now = time.gmtime()
    key = "/".join(p for p in (prefix.strip("/"), endpoint, time.strftime("%Y/%m/%d/%H", now),
                               f"{time.strftime('%M-%S', now)}-{uuid.uuid4()}.jsonl") if p)
    (s3 or boto3.client("s3")).put_object(Bucket=bucket, Key=key, Body=("\n".join(lines) + "\n").encode())
    return key


def replay(config: TrafficConfig, data: HeldOut, **kwargs: Any) -> TrafficResult:
    """Run one replay to completion (see TrafficReplayer for the keyword arguments)."""
    return TrafficReplayer(config, data, **kwargs).run()


# ---------------------------------------------------------------- CLI


def _drift_arg(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected COLUMN=STDS (or *=STDS), got {text!r}")
    try:
        return name, float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m guardrail.traffic", description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint", required=True, help="endpoint name")
    parser.add_argument("--file", required=True, type=Path, help="CSV with a header and a label column")
    parser.add_argument("--label-column", help="label column name (default: the first column)")
    parser.add_argument("--rate", type=float, default=10.0, help="requests per second (default 10)")
    parser.add_argument("--duration", type=float, help="seconds to send for")
    parser.add_argument("--count", type=int, help="number of requests")
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--inference-ids", action="store_true", help="send an InferenceId per request")
    parser.add_argument("--target-variant")
    parser.add_argument("--shuffle", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drift", type=_drift_arg, action="append", default=[], metavar="COLUMN=STDS")
    parser.add_argument("--malformed", type=float, default=0.0, help="fraction of malformed rows")
    parser.add_argument("--out-of-range", type=float, default=0.0, help="fraction of out-of-range rows")
    parser.add_argument(
        "--endpoint-url", help="runtime endpoint (default: AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME)"
    )
    parser.add_argument("--region", default=None)
    parser.add_argument("--records", type=Path, help="write every request as JSON Lines here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    if args.duration is None and args.count is None:
        args.duration = 30.0
    try:
        config = TrafficConfig(
            endpoint_name=args.endpoint,
            rate=args.rate,
            duration=args.duration,
            count=args.count,
            concurrency=args.concurrency,
            inference_ids=args.inference_ids,
            target_variant=args.target_variant,
            shuffle=args.shuffle,
            seed=args.seed,
            drift=dict(args.drift),
            malformed_fraction=args.malformed,
            out_of_range_fraction=args.out_of_range,
        )
        data = HeldOut.from_csv(args.file, args.label_column)
        replayer = TrafficReplayer(
            config,
            data,
            endpoint_url=args.endpoint_url,
            region=args.region,
            on_progress=None
            if args.quiet
            else lambda p: print(
                f"{p.elapsed_s:7.1f}s sent {p.sent} ok {p.ok} errors {p.errors} {p.variants}", file=sys.stderr
            ),
        )
    except (TrafficError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = replayer.run()
    if args.records:
        with args.records.open("w") as handle:
            for record in result.records:
                handle.write(record.model_dump_json() + "\n")
    print(json.dumps(result.summary.model_dump(mode="json"), indent=2))
    return 0 if result.summary.sent else 1


if __name__ == "__main__":
    raise SystemExit(main())
