"""Print the Lambda layer's requirements: pyproject.toml's pins of the runtime dependencies. boto3/botocore are
included: Powertools' [tracer] extra (aws-xray-sdk) pulls botocore anyway, and an unpinned one would shadow the
runtime's and mismatch its boto3. Used by the Makefile's build-PinnedDepsLayer."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP: set[str] = set()


def pins() -> list[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    out = []
    for dep in deps:
        name = re.split(r"[\[=<>!~ ;]", dep, maxsplit=1)[0].lower()
        if name in SKIP:
            continue
        if "==" not in dep:
            raise SystemExit(f"{dep!r} is not pinned: the layer must carry exactly the tested version")
        out.append(dep)
    return out


if __name__ == "__main__":
    print("\n".join(pins()))
