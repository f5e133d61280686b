"""Write one model directory: model.tar.gz, evaluation.json, deployment.json (+ an inputs stamp for --reuse)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from functions.evaluation import ModelEvaluation

FILES = ("evaluation.json", "deployment.json", "model.tar.gz")  # upload order: the tarball last (it triggers)
STAMP = ".inputs.sha256"
CODE_DIR = Path(__file__).resolve().parent


def code_hash() -> str:
    """Hash of training/*.py and functions/evaluation.py: a code change invalidates --reuse."""
    h = hashlib.sha256()
    for path in sorted([*CODE_DIR.glob("*.py"), CODE_DIR.parent / "functions" / "evaluation.py"]):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def inputs_hash(**inputs: Any) -> str:
    return hashlib.sha256(json.dumps({**inputs, "code": code_hash()}, sort_keys=True, default=str).encode()).hexdigest()


def is_current(model_dir: Path, stamp: str) -> bool:
    """True when every file is present and was built from the same inputs."""
    stamp_file = model_dir / STAMP
    return all((model_dir / f).is_file() for f in FILES) and stamp_file.is_file() and \
        stamp_file.read_text().strip() == stamp


def write_model_dir(model_dir: Path, *, tarball: bytes, evaluation: ModelEvaluation,
                    deployment: dict[str, Any], stamp: str) -> Path:
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / STAMP).unlink(missing_ok=True)  # a half-written directory is never "current"
    (model_dir / "model.tar.gz").write_bytes(tarball)
    (model_dir / "evaluation.json").write_text(evaluation.model_dump_json(indent=2) + "\n")
    (model_dir / "deployment.json").write_text(json.dumps(deployment, indent=2) + "\n")
    (model_dir / STAMP).write_text(stamp + "\n")
    return model_dir


def read_evaluation(model_dir: Path) -> ModelEvaluation:
    return ModelEvaluation.model_validate_json((model_dir / "evaluation.json").read_text())
