"""Blast radius, measured (issue 11 §6): user requests that FAILED per bad-model scenario, pre-flight on and off.

    nice .venv/bin/python bench/blast_radius.py [--models .cache/e2e-models] [--rps 20] [--canary 25] [--only KEY ...]

One local cloud. A first deployment of a good model (xgb-best, ALL_AT_ONCE), then every bad-model scenario as a
CANARY update (25 %) with traffic at 20 req/s while the execution runs, once with pre-flight and once without
(`deployment.json` `"preflight": false`):

- incompatible: the `incompatible` model (a linear-learner zip the XGBoost container cannot load → 500);
- truncated: xgb-runnerup with its xgboost-model cut in half (`staging="truncated-model"`, as the
  `preflight-catches-bad-artifact` scenario builds it) → 500;
- feature mismatch: an XGBoost booster trained here on the first 61 of the 62 columns, packaged with
  xgb-runnerup's evaluation.json (62 features): the container answers 400 to every 62-column request;
- slow: the `slow` model (valid; the emulator adds 150 ms per request) → latency alarm;
- no traffic: a good update (xgb-runnerup) with no requests at all.

"failed" counts the 4XX and 5XX answers the traffic generator saw (other client errors, e.g. read timeouts, are
shown apart). The bound is canary share x (alarm period + one poll) x rate: the requests a canary can fail before
the alarm's first datapoint and the next poll of the state machine act on it. If a bad model is left serving
(an update the guardrails let through), the good model is redeployed before the next scenario.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from guardrail import demo
from guardrail.demo import Target, holdout, run_scenario, serving_model
from guardrail.scenarios import Scenario, model_name

GOOD = "xgb-best"
MISMATCH = "feature-mismatch"


class CountingTraffic(demo.Traffic):
    """demo.Traffic that also counts answers by HTTP class; every instance is kept (the first one a scenario
    makes is its traffic, later ones are the probe after the execution)."""

    instances: list[CountingTraffic] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.by_class: Counter[str] = Counter()
        super().__init__(*args, **kwargs)
        CountingTraffic.instances.append(self)

    def _record(self, record: Any) -> None:
        super()._record(record)
        code = record.http_status
        with self._lock:
            if record.status == "ok":
                self.by_class["ok"] += 1
            elif code is not None and 400 <= code < 500:
                self.by_class["4XX"] += 1
            elif code is not None and 500 <= code < 600:
                self.by_class["5XX"] += 1
            else:
                self.by_class["other"] += 1


def build_mismatch(folder: Path, runnerup: Path, train_csv: Path) -> float:
    """A valid XGBoost booster on the first 61 of the 62 feature columns beside xgb-runnerup's evaluation.json;
    returns the seconds it took."""
    import numpy as np
    import xgboost as xgb

    from training.package import booster_bytes, tarball

    t0 = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    rows = np.loadtxt(train_csv, delimiter=",", skiprows=0 if _numeric_first_line(train_csv) else 1)
    y, X = rows[:, 0], rows[:, 1:]
    if X.shape[1] != 62:
        raise RuntimeError(f"{train_csv} has {X.shape[1]} feature columns, expected 62")
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 4, "eta": 0.2, "nthread": 1, "seed": 42},
                        xgb.DMatrix(X[:, :61], label=y), num_boost_round=30)
    (folder / "model.tar.gz").write_bytes(tarball({"xgboost-model": booster_bytes(booster)}))
    shutil.copyfile(runnerup / "evaluation.json", folder / "evaluation.json")
    return time.monotonic() - t0


def _numeric_first_line(path: Path) -> bool:
    first = path.open().readline().split(",")[0]
    try:
        float(first)
        return True
    except ValueError:
        return False


def canary(percent: int, preflight: bool) -> dict[str, Any]:
    d: dict[str, Any] = {"strategy": "CANARY", "canary_percent": percent}
    if not preflight:
        d["preflight"] = False
    return d


CASES = (  # key, label, model folder, staging, traffic
    ("incompatible", "incompatible", "incompatible", "complete", True),
    ("truncated", "truncated model file", "xgb-runnerup", "truncated-model", True),
    ("feature-mismatch", "feature mismatch (61 of 62)", MISMATCH, "complete", True),
    ("slow", "slow", "slow", "complete", True),
    ("no-traffic", "no traffic (good update)", "xgb-runnerup", "complete", False),
)


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("--models", type=Path, default=Path(".cache/e2e-models"))
    args.add_argument("--workdir", type=Path, default=Path(".guardrail/bench-blast"))
    args.add_argument("--rps", type=float, default=20.0)
    args.add_argument("--canary", type=int, default=25)
    args.add_argument("--timeout", type=float, default=240.0, help="per scenario (a loaded machine is slow)")
    args.add_argument("--only", nargs="+", choices=[c[0] for c in CASES])
    opts = args.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)  # the table must not be folded when the output is a file
    source = opts.models.resolve()
    data = holdout(source)
    workdir = opts.workdir.resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    models = workdir / "models"
    models.mkdir(parents=True)
    for child in source.iterdir():
        if child.is_dir():
            (models / child.name).symlink_to(child)
    cases = [c for c in CASES if not opts.only or c[0] in opts.only]
    if any(c[2] == MISMATCH for c in cases):
        train_csv = demo.holdout_path(source).with_name("train.csv")
        seconds = build_mismatch(models / MISMATCH, source / "xgb-runnerup", train_csv)
        console.print(f"feature-mismatch model: built in {seconds:.1f} s (61 columns, xgb-runnerup's evaluation.json)")

    demo.Traffic = CountingTraffic  # type: ignore[misc]  # run_scenario looks the class up at call time
    from local.alerts import AlertStream
    from local.cloud import LocalCloud

    t0 = time.monotonic()
    cloud = LocalCloud.spawn(workdir / "cloud", timeout=300)
    console.print(f"local cloud: ready in {time.monotonic() - t0:.1f} s")
    rows: list[tuple[str, ...]] = []
    version = 0

    def run(model: str | None, deployment: dict[str, Any], rps: float, staging: str = "complete",
            key: str = "blast") -> tuple[Any, CountingTraffic | None]:
        nonlocal version
        version += 1
        scenario = Scenario(key=key, row="blast radius", title=key, model=model, version=f"b{version}",
                            deployment=deployment, staging=staging, expected="ANY", traffic_rps=rps,
                            timeout_seconds=opts.timeout)
        CountingTraffic.instances.clear()
        result = run_scenario(target, scenario, models, data, alerts=alerts)
        traffic = CountingTraffic.instances[0] if CountingTraffic.instances and rps > 0 else None
        return result, traffic

    try:
        assert cloud.state is not None
        target = Target.from_outputs(cloud.outputs, cloud.state.state_machines, cloud.env, cloud.state.alert_queue_url)
        alerts = AlertStream(target.env or {}, target.alert_queue_url)
        stack = target.client("cloudformation").describe_stacks(StackName=cloud.state.stack_name)["Stacks"][0]
        params = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
        period, poll = float(params["AlarmPeriodSeconds"]), float(params["PollIntervalSeconds"])
        bound = opts.canary / 100 * (period + poll) * opts.rps
        console.print("parameters: " + ", ".join(f"{k}={params[k]}" for k in sorted(params)
                                                 if k.endswith(("Seconds", "Periods"))))
        sm = target.client("sagemaker")
        first, _ = run(GOOD, {"strategy": "ALL_AT_ONCE"}, 0, key="first-deployment")
        console.print(f"first deployment: {first.actual} in {first.seconds:.1f} s, serving "
                      f"{serving_model(sm, target.endpoint_name)}")
        good_models = {model_name("b1")}
        for key, label, model, staging, with_traffic in cases:
            for preflight in (True, False):
                rps = opts.rps if with_traffic else 0.0
                result, traffic = run(model, canary(opts.canary, preflight), rps, staging, key=key)
                classes = traffic.by_class if traffic else Counter()
                sent = sum(classes.values())
                failed = classes["4XX"] + classes["5XX"]
                serving = serving_model(sm, target.endpoint_name)
                left = "" if serving in good_models else f" — left serving {serving}"
                if model in ("xgb-runnerup",) and staging == "complete" and serving not in good_models:
                    good_models.add(serving)  # the good update
                    left = ""
                errors = ", ".join(f"{k}:{v}" for k, v in sorted(classes.items()) if k != "ok")
                outcome = (result.actual or "?") + (f" ({result.error})" if result.error else "")
                rows.append((label, "on" if preflight else "off", outcome + left, str(sent),
                             str(failed), f"{bound:.0f}", f"{result.seconds:.0f}", errors or "-"))
                console.print(" | ".join(rows[-1]), highlight=False)
                if serving not in good_models:
                    restore, _ = run(GOOD, {"strategy": "ALL_AT_ONCE", "preflight": False}, 0, key="restore")
                    good_models.add(serving_model(sm, target.endpoint_name))
                    console.print(f"  restored {GOOD}: {restore.actual} in {restore.seconds:.0f} s")
    finally:
        cloud.stop()
        demo.Traffic = CountingTraffic.__mro__[1]  # type: ignore[misc]

    table = Table(title=f"Blast radius: {opts.rps:g} req/s, canary {opts.canary} %, "
                        f"bound = {opts.canary / 100:g} x ({period:g} s + {poll:g} s) x {opts.rps:g}")
    for column, justify in (("scenario", "left"), ("pre-flight", "center"), ("outcome", "left"),
                            ("sent", "right"), ("failed", "right"), ("bound", "right"), ("wall s", "right"),
                            ("errors", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
