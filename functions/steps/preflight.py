"""preflight: before any endpoint change, open the exact uploaded artifact and try it as the container would.

1. The object version that triggered the execution (`upload.version_id`) is streamed to /tmp and walked with
   parse_upload's `check_tar_members` (safe relative names, regular files, a whole archive), then extracted as
   SageMaker extracts it into /opt/ml/model.
2. A child process (`functions.steps.preflight_container`, no AWS credentials in its environment and the parent
   made non-dumpable so its /proc environ and memory are closed to it: the container unpickles what it finds,
   and unpickling runs code; defence in depth, not a sandbox) loads the folder with the container 3.0-5's own rules and xgboost 3.0.5, and
   scores the golden sample training recorded in evaluation.json, sent as the endpoint receives it (text/csv).
3. Checks: every model loads; `num_features()` equals the candidate's and production's recorded feature count
   (and the golden sample's); feature names, when the booster carries any, equal the recorded ones; the scores
   equal the recorded ones within a relative 1e-6.
Any failure raises ModelRejected (the state machine's REJECTED path): no request ever meets such a model.
`deployment.json` `"preflight": false` skips all of it (the demo's alarm-driven rollback of a broken model).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from functions.adapters import s3
from functions.config import Settings
from functions.errors import ArtifactNotFound, InvalidArtifact, ModelRejected
from functions.evaluation import ModelEvaluation
from functions.models import PreFlightModel, PreFlightResult, Upload
from functions.steps.parse_upload import check_tar_members
from functions.steps.quality_gate import load_evaluation, production_evaluation

STAGE = "pre-flight"
REL_TOL = 1e-6
ABS_TOL = 1e-12  # scores are float32 probabilities: below this two answers are the same answer
# The largest artifact pre-flight accepts, sized with the function (template: 3008 MB memory, 4096 MB /tmp,
# 300 s): the compressed download and the extracted files both live in /tmp, the booster in memory.
MAX_ARTIFACT_BYTES = 1024**3  # compressed model.tar.gz
MAX_MODEL_BYTES = 1536 * 1024**2  # extracted files, all together
CHILD_TIMEOUT_SECONDS = 240
CHUNK = 8 * 1024**2
_CHILD_ENV = ("PATH", "LD_LIBRARY_PATH", "LANG", "LC_ALL", "TZ", "SAGEMAKER_INFERENCE_ENSEMBLE")


def download(upload: Upload, path: Path) -> int:
    """Stream the exact object version to `path`; returns its size."""
    body = s3.open_stream(upload.bucket, upload.key, upload.version_id)
    size = 0
    with path.open("wb") as out:
        while chunk := body.read(CHUNK):
            size += len(chunk)
            if size > MAX_ARTIFACT_BYTES:
                raise ModelRejected([f"{upload.artifact_uri} is larger than the {MAX_ARTIFACT_BYTES} bytes pre-flight "
                                     "accepts (raise the function's limits first)"], stage=STAGE)
            out.write(chunk)
    return size


def extract(archive: Path, model_dir: Path, where: str) -> None:
    """As SageMaker extracts model.tar.gz into /opt/ml/model (members already checked: safe, regular)."""
    with tarfile.open(archive, mode="r:gz") as tar:
        members = tar.getmembers()
        total = sum(m.size for m in members if m.isfile())
        if total > MAX_MODEL_BYTES:
            raise ModelRejected([f"{where} unpacks to {total} bytes, more than the {MAX_MODEL_BYTES} pre-flight "
                                 "accepts"], stage=STAGE)
        tar.extractall(model_dir, members=members, filter="data")


def child_environment() -> dict[str, str]:
    """Enough to run Python and find our code and its layer; no credentials, no AWS endpoints."""
    env = {k: os.environ[k] for k in _CHILD_ENV if k in os.environ}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["HOME"] = tempfile.gettempdir()
    env["OMP_NUM_THREADS"] = "1"
    return env


def protect_parent() -> bool:
    """Make this process non-dumpable (prctl PR_SET_DUMPABLE 0): its /proc/<pid>/environ and memory, which hold
    the function's AWS credentials, become unreadable to other processes of the same (non-root) user, such as
    the loader child unpickling an untrusted artifact. Linux only; False where it cannot be set."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(4, 0, 0, 0, 0) == 0 and libc.prctl(3, 0, 0, 0, 0) == 0  # SET_DUMPABLE 0; GET == 0
    except (OSError, AttributeError):
        return False


def run_container(model_dir: Path, payload: bytes | None, work: Path) -> dict[str, Any]:
    """The child's JSON answer; a crash, a kill or a timeout is reported as a load failure."""
    import json

    protect_parent()

    args = [sys.executable, "-m", "functions.steps.preflight_container", str(model_dir)]
    if payload is not None:
        (work / "payload.csv").write_bytes(payload)
        args.append(str(work / "payload.csv"))
    try:
        done = subprocess.run(args, capture_output=True, env=child_environment(), cwd=work,
                              timeout=CHILD_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        return {"stage": "load", "error": f"loading and scoring took longer than {CHILD_TIMEOUT_SECONDS} s"}
    lines = done.stdout.decode("utf-8", "replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        how = f"signal {-done.returncode}" if done.returncode < 0 else f"exit code {done.returncode}"
        return {"stage": "load", "error": f"the model crashed the loader ({how}): {' | '.join(tail)}"}
    try:
        return json.loads(lines[-1])
    except ValueError:
        return {"stage": "load", "error": f"the loader answered no JSON: {lines[-1][:200]}"}


def feature_reasons(models: list[PreFlightModel], candidate: ModelEvaluation,
                    production: ModelEvaluation | None) -> list[str]:
    reasons: list[str] = []
    schemas = [("the candidate's evaluation.json", candidate.features)]
    if production is not None:
        schemas.append(("production's schema", production.features))
    for model in models:
        for label, features in schemas:
            if model.num_features != len(features):
                reasons.append(f"{model.file} takes {model.num_features} feature(s), {label} has {len(features)}")
            elif model.feature_names is not None and model.feature_names != features:
                diff = next(i for i, (a, b) in enumerate(zip(model.feature_names, features, strict=True)) if a != b)
                reasons.append(f"{model.file}'s feature names differ from {label} at column {diff}: "
                               f"{model.feature_names[diff]!r} vs {features[diff]!r}")
        golden = candidate.golden
        if golden is not None and model.num_features != golden.num_features:
            reasons.append(f"{model.file} takes {model.num_features} feature(s); the model training packaged took "
                           f"{golden.num_features}")
    return reasons


def score_reasons(expected: list[float], actual: list[float]) -> tuple[list[str], float | None]:
    """Reasons when the answers differ from the recorded ones, and the largest relative difference."""
    if len(actual) != len(expected):
        return [f"the golden sample's {len(expected)} rows got {len(actual)} answers"], None
    worst, bad = 0.0, []
    for i, (want, got) in enumerate(zip(expected, actual, strict=True)):
        rel = abs(got - want) / max(abs(want), ABS_TOL)
        worst = max(worst, rel) if not math.isnan(rel) else math.inf
        if not math.isclose(got, want, rel_tol=REL_TOL, abs_tol=ABS_TOL):
            bad.append(f"row {i}: {got!r} instead of {want!r}")
    if bad:
        return [f"{len(bad)} of {len(expected)} golden rows score differently from training (relative tolerance "
                f"{REL_TOL:g}): " + "; ".join(bad[:3]) + (" ..." if len(bad) > 3 else "")], worst
    return [], worst


def preflight(upload: Upload, settings: Settings) -> PreFlightResult:
    if not upload.preflight:
        return PreFlightResult(status="SKIPPED", artifact=upload.artifact_uri, version_id=upload.version_id,
                               notes=["deployment.json sets \"preflight\": false"])
    start = time.perf_counter()
    candidate = load_evaluation(upload.bucket, upload.evaluation_key)
    production_model, production, _problem = production_evaluation(upload.endpoint_name, upload.names.model)
    # (an unreadable production report is the quality gate's reason; here the candidate's own schema still counts)
    where = upload.artifact_uri + (f"?versionId={upload.version_id}" if upload.version_id else "")
    with tempfile.TemporaryDirectory(prefix="preflight-") as tmp:
        work = Path(tmp)
        archive = work / "model.tar.gz"
        try:
            size = download(upload, archive)
        except ArtifactNotFound as exc:
            raise ArtifactNotFound(f"{where} is gone: {exc}") from exc
        try:
            with archive.open("rb") as stream:
                check_tar_members(where, stream)
        except InvalidArtifact as exc:
            raise ModelRejected([str(exc)], stage=STAGE) from exc
        model_dir = work / "model"
        model_dir.mkdir()
        extract(archive, model_dir, where)
        archive.unlink()  # /tmp holds the extracted model only from here on
        golden = candidate.golden
        payload = ("\n".join(golden.rows) + "\n").encode() if golden else None
        answer = run_container(model_dir, payload, work)

    models = [PreFlightModel.model_validate(m) for m in answer.get("models", [])]
    reasons: list[str] = []
    if answer.get("error"):
        what = {"load": "the serving container cannot load it", "parse": "the container cannot parse the golden "
                "sample", "predict": "the container cannot score the golden sample"}.get(str(answer.get("stage")), "")
        reasons.append(f"{what}: {answer['error']}" if what else str(answer["error"]))
    reasons.extend(feature_reasons(models, candidate, production))
    worst = None
    if golden is not None and "predictions" in answer and not answer.get("error"):
        score, worst = score_reasons(golden.predictions, answer["predictions"])
        reasons.extend(score)
    result = PreFlightResult(
        status="REJECTED" if reasons else "PASSED",
        artifact=upload.artifact_uri,
        version_id=upload.version_id,
        size=size,
        files=answer.get("files", []),
        models=models,
        candidate_features=len(candidate.features),
        production_model=production_model,
        production_features=len(production.features) if production else None,
        golden_rows=len(golden.rows) if golden else 0,
        max_relative_difference=worst if worst is None or math.isfinite(worst) else None,
        seconds=round(time.perf_counter() - start, 3),
        reasons=reasons,
        notes=[] if golden else ["evaluation.json has no golden sample (written by older training): scores not checked"],
    )
    if reasons:
        raise ModelRejected(reasons, stage=STAGE)
    return result
