"""`guardrail train`: prepare data, tune, package and evaluate models; optionally upload one to S3.

    guardrail train [--data bank|promotion|PATH] [--trials 30] [--seed 42] [--out artifacts/models]
                    [--scenarios [NAME ...]] [--reuse] [--with-duration]
                    [--upload s3://bucket/models/ [--upload-models xgb-best] [--version v1]]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from training.data import DataError
from training.scenarios import ALL_MODELS, SCENARIOS, TUNED, Builder, BuildOptions
from training.upload import upload_model


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="guardrail train", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="bank", help="bank (UCI Bank Marketing), promotion (synthetic employee "
                   "promotion) or PATH to a CSV in either schema (default: bank)")
    p.add_argument("--trials", type=int, default=30, help="Optuna trials (>= 2; default 30)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", default="artifacts/models", help="models go to OUT/<name>/ (default artifacts/models)")
    p.add_argument("--data-out", default=None, help="prepared CSVs go here (default: OUT/../data)")
    p.add_argument("--scenarios", nargs="*", metavar="NAME", default=None,
                   help=f"also build scenario models (all if no names): {', '.join(SCENARIOS)}")
    p.add_argument("--reuse", action="store_true", help="skip models that exist and whose inputs are unchanged")
    p.add_argument("--with-duration", action="store_true",
                   help="keep Bank Marketing's `duration` (leaks the outcome: benchmarking only)")
    p.add_argument("--max-rows", type=int, default=None,
                   help="train on a stratified subsample of this many rows (quick runs)")
    p.add_argument("--region", default="us-east-1", help="region of the serving image URI (default us-east-1)")
    p.add_argument("--upload", metavar="S3_URI", help="upload to S3_URI<name>/<version>/ (e.g. s3://bucket/models/)")
    p.add_argument("--upload-models", nargs="+", default=["xgb-best"], metavar="NAME",
                   help="which built models to upload (default xgb-best)")
    p.add_argument("--version", default=None, help="version for the upload (default vYYYYMMDD-HHMMSS)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    console = Console(stderr=True, soft_wrap=True)
    if args.trials < 2:
        console.print("[red]error:[/] --trials must be at least 2 (a best and a runner-up model)")
        return 2
    names = list(TUNED)
    if args.scenarios is not None:
        unknown = sorted(set(args.scenarios) - set(SCENARIOS))
        if unknown:
            console.print(f"[red]error:[/] unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
            return 2
        names += args.scenarios or list(SCENARIOS)
    if args.upload:
        not_built = sorted(set(args.upload_models) - set(names))
        if not_built:
            console.print(f"[red]error:[/] --upload-models {not_built} are not built by this command")
            return 2
    options = BuildOptions(data=args.data, trials=args.trials, seed=args.seed, with_duration=args.with_duration,
                           region=args.region, max_rows=args.max_rows)
    start = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[best]}"),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task("tuning", total=args.trials, best="", visible=False)

        def on_trial(done: int, total: int, best: float | None) -> None:
            bar.update(task, completed=done, visible=True, best=f"best val AUC {best:.4f}" if best else "")

        builder = Builder(args.out, options, reuse=args.reuse, data_out=args.data_out,
                          progress=lambda msg: bar.console.print(f"[dim]•[/] {msg}"), on_trial=on_trial)
        try:
            results = builder.build(names)
        except DataError as e:
            console.print(f"[red]error:[/] {e}")
            return 2

    table = Table(title=f"models in {args.out} ({time.perf_counter() - start:.1f} s)")
    for col in ("model", "algorithm", "test AUC", "F1", "guarded DI", "deployment"):
        table.add_column(col)
    for name in (n for n in ALL_MODELS if n in results):
        ev = results[name]
        guarded = [f"{b.facet} {b.disparate_impact:.2f}" for b in ev.bias if b.guarded]
        deployment = json.dumps(json.loads((Path(args.out) / name / "deployment.json").read_text()),
                                separators=(",", ":"))
        table.add_row(name, ev.algorithm, f"{ev.metrics.auc:.4f}", f"{ev.metrics.f1:.3f}", ", ".join(guarded) or "-",
                      deployment)
    Console().print(table)

    if args.upload:
        for name in args.upload_models:
            keys = upload_model(Path(args.out) / name, args.upload, version=args.version)
            console.print(f"uploaded {name}: {keys['model.tar.gz']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
