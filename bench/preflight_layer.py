"""Pre-flight's packaging: the XgboostLayer's size against Lambda's limit, and what a cold process pays for xgboost.

Builds the layer with the Makefile target `sam build` uses (into a temporary folder), prints its unzipped and
zipped size, then times `import xgboost` in fresh processes of the Lambda runtime's Python (3.13, when installed
here; else this interpreter, from the venv's identical wheels) with only the layer on PYTHONPATH, as Lambda puts
/opt/python on it; and one whole pre-flight child run (spawn + import + load + score 20 rows) on a tuned-size model.
Run: .venv/bin/python bench/preflight_layer.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 262_144_000  # "Unzipped size must be smaller than 262144000 bytes" (250 MB, function + all layers)


def python313() -> str | None:
    for candidate in (shutil.which("python3.13"), os.path.expanduser("~/.pyenv/versions/3.13.0/bin/python3.13")):
        if candidate and Path(candidate).is_file():
            try:
                subprocess.run([candidate, "-c", "pass"], check=True, capture_output=True)
                return candidate
            except (OSError, subprocess.CalledProcessError):
                continue
    return None


CPU: list[float] = []  # user + system CPU seconds of each timed child (less sensitive to a busy machine)


def timed(args: list[str], env: dict[str, str]) -> float:
    before = os.times()
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - start
    after = os.times()
    CPU.append(after.children_user + after.children_system - before.children_user - before.children_system)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        layer = Path(tmp) / "layer"
        subprocess.run(["make", "-s", "build-XgboostLayer", f"ARTIFACTS_DIR={layer}"], cwd=ROOT, check=True,
                       capture_output=True)
        unzipped = sum(p.stat().st_size for p in layer.rglob("*") if p.is_file())
        archive = Path(tmp) / "layer.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            for p in sorted(layer.rglob("*")):
                if p.is_file():
                    z.write(p, p.relative_to(layer))
        functions = sum(p.stat().st_size for p in (ROOT / "functions").rglob("*.py"))
        print(f"layer unzipped {unzipped / 1e6:.1f} MB ({unzipped} bytes), zipped {archive.stat().st_size / 1e6:.1f} MB;"
              f" functions/ {functions / 1e6:.2f} MB; Lambda limit {LIMIT} bytes (function + all layers, unzipped):"
              f" {100 * unzipped / LIMIT:.0f} % used by this layer")

        py = python313()
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(layer / "python"), "PYTHONNOUSERSITE": "1"}
        if py:
            base = [timed([py, "-S", "-c", "pass"], env) for _ in range(runs)]
            CPU.clear()
            imports = [timed([py, "-S", "-c", "import xgboost"], env) for _ in range(runs)]
            cpu = statistics.median(CPU)
            where = f"{py} (-S, only the layer on PYTHONPATH)"
        else:
            py, env = sys.executable, dict(os.environ)
            base = [timed([py, "-c", "pass"], env) for _ in range(runs)]
            CPU.clear()
            imports = [timed([py, "-c", "import xgboost"], env) for _ in range(runs)]
            cpu = statistics.median(CPU)
            where = f"{py} (venv wheels; no python3.13 here)"
        print(f"cold `import xgboost` in {where}: first {imports[0]:.2f} s, median {statistics.median(imports):.2f} s"
              f" of {runs} (CPU {cpu:.2f} s); bare interpreter start median {statistics.median(base):.2f} s")
        child_runs(runs)


def child_runs(runs: int) -> None:
    """The pre-flight child as the Lambda runs it, on a model of the tuned models' size."""
    import numpy as np
    import xgboost as xgb

    from training.package import booster_bytes

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 62))
    y = (X[:, 0] + rng.normal(size=2000) > 0).astype(int)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 6, "nthread": 1}, xgb.DMatrix(X, label=y), 300)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        model_dir.mkdir()
        (model_dir / "xgboost-model").write_bytes(booster_bytes(booster))
        payload = Path(tmp) / "payload.csv"
        payload.write_text("\n".join(",".join(repr(float(v)) for v in row) for row in X[:20]) + "\n")
        args = [sys.executable, "-m", "functions.steps.preflight_container", str(model_dir), str(payload)]
        CPU.clear()
        seconds = [timed(args, dict(os.environ)) for _ in range(runs)]
        out = subprocess.run(args, check=True, capture_output=True).stdout.decode().strip().splitlines()[-1]
        size = (model_dir / "xgboost-model").stat().st_size
    print(f"pre-flight child (spawn + import + load {size / 1e6:.1f} MB model of 300 trees + score 20 rows): "
          f"median {statistics.median(seconds):.2f} s of {runs} (CPU {statistics.median(CPU):.2f} s); answered {len(json.loads(out)['predictions'])} scores")
    print(f"machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
