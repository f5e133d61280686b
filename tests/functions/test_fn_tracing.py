"""In a real Lambda (LAMBDA_TASK_ROOT set, tracing not disabled) handlers run under Powertools' Tracer. Checked in
a child interpreter: the X-Ray SDK's emitter is a UDP socket (fire and forget, nothing listens)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from fn_support import ENV, ROOT, STATES_DIR

PROBE = """
import json, sys
from functions.handlers import _runtime
from functions.handlers.release_lock import handler
assert _runtime.tracer is not None, "tracing should be on inside Lambda"
doc = json.load(open(sys.argv[1]))
doc.pop("lock")  # no lock and no table access needed: nothing to release
doc.pop("upload")
print(json.dumps(handler(doc, None)))
"""


def test_handler_runs_with_xray_tracing_enabled() -> None:
    env = {
        **os.environ,
        **ENV,
        "LAMBDA_TASK_ROOT": str(ROOT),
        "POWERTOOLS_TRACE_DISABLED": "false",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_LAMBDA_FUNCTION_NAME": "guardrail-release-lock",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }
    env.pop("AWS_SAM_LOCAL", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(STATES_DIR / "release_lock.json")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"released": False, "dequeued": False, "lock_key": None, "reason": "no lock in the execution document"}
