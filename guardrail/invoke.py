"""`guardrail invoke <Step> [<input.json>]`: run one state's Lambda function, deployed in the local cloud or on AWS,
with a saved state input (events/states/<step>.json), without Docker (`sam local invoke` needs it).

The function is found as Step Functions finds it: the state's `Resource` in statemachine/guardrail.asl.json names a
DefinitionSubstitution `${<Logical>Arn}`, and CloudFormation's DescribeStackResource gives the deployed name of
`<Logical>`. The saved inputs carry placeholder names (bucket `guardrail-models`, endpoint `guardrail-endpoint`):
they are replaced by the stack's. With `--key` (an upload in the stack's bucket, e.g. the one `guardrail replay
events/first-deployment.json` made), the input's upload is that object: its S3 identity from HeadObject and its
`upload` document from the deployed ParseUpload function itself, so later steps see what an execution would.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ASL = ROOT / "statemachine" / "guardrail.asl.json"
STATES_DIR = ROOT / "events" / "states"
PLACEHOLDER_BUCKET = "guardrail-models"
PLACEHOLDER_ENDPOINT = "guardrail-endpoint"
_SUBSTITUTION = re.compile(r"^\$\{(\w+)Arn\}$")


class InvokeError(RuntimeError):
    """One line with the fix (the CLI prints it)."""


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def step_functions(asl: Path = ASL) -> dict[str, str]:
    """{state name: logical id of its function} for every Lambda task state (parallel branches included)."""
    found: dict[str, str] = {}

    def walk(states: dict[str, Any]) -> None:
        for name, state in states.items():
            match = _SUBSTITUTION.match(str(state.get("Resource", "")))
            if state.get("Type") == "Task" and match:
                found[name] = match.group(1)
            for branch in state.get("Branches", []):
                walk(branch["States"])
            if "Iterator" in state or "ItemProcessor" in state:
                walk((state.get("ItemProcessor") or state["Iterator"])["States"])

    walk(json.loads(asl.read_text())["States"])
    return found


def resolve_step(step: str, asl: Path = ASL) -> tuple[str, str]:
    """(state name, function logical id) for a state name, an events/states file stem or a logical id, in any
    case and with or without underscores: ParseUpload, parse_upload, ParseUploadFunction."""
    functions = step_functions(asl)
    wanted = _norm(Path(step).stem)
    for state, logical in functions.items():
        if wanted in (_norm(state), _norm(logical)):
            return state, logical
    known = ", ".join(sorted(functions))
    raise InvokeError(f"no state {step!r} in {asl.name}; the states with a function: {known}")


def default_input(state: str) -> Path:
    """events/states/<snake_case of the state>.json (PreFlight -> preflight.json, ParseUpload -> parse_upload.json)."""
    for path in sorted(STATES_DIR.glob("*.json")):
        if _norm(path.stem) == _norm(state):
            return path
    raise InvokeError(f"no saved input for {state} in {STATES_DIR}: pass an input file")


def read_input(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InvokeError(f"no such input file: {path} (saved state inputs are events/states/<step>.json)")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvokeError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(doc, dict):
        raise InvokeError(f"{path} is not a state input: a JSON object is needed, not {type(doc).__name__}")
    return doc


def fill_placeholders(doc: dict[str, Any], bucket: str, endpoint: str) -> dict[str, Any]:
    """The saved input with the stack's bucket and endpoint in place of the placeholders (in ARNs, URIs, alarm
    names and keys alike)."""
    text = json.dumps(doc)
    text = re.sub(rf"(?<![\w-]){re.escape(PLACEHOLDER_BUCKET)}(?![\w-])", bucket, text)
    text = re.sub(rf"(?<![\w.]){re.escape(PLACEHOLDER_ENDPOINT)}(?![\w])", endpoint, text)
    return json.loads(text)


def function_name(cfn: Any, stack: str, logical_id: str) -> str:
    """The deployed name of `logical_id` (ListStackResources: the local cloud's DescribeStackResource fails on a
    stack with resources moto could not create)."""
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
        for resource in page["StackResourceSummaries"]:
            if resource.get("LogicalResourceId") == logical_id and resource.get("PhysicalResourceId"):
                return str(resource["PhysicalResourceId"])
    raise InvokeError(f"stack {stack} has no {logical_id}: is it Guardrail's stack (--stack-name)?")


def call(lam: Any, name: str, doc: dict[str, Any]) -> tuple[dict[str, Any] | Any, str | None, str | None]:
    """(payload, function error, the log tail when asked) of a RequestResponse Invoke."""
    response = lam.invoke(FunctionName=name, Payload=json.dumps(doc).encode(), LogType="Tail")
    raw = response["Payload"].read()
    try:
        payload = json.loads(raw or b"null")
    except ValueError:
        payload = raw.decode(errors="replace")
    log = response.get("LogResult")
    if log:
        import base64

        log = base64.b64decode(log).decode(errors="replace")
    return payload, response.get("FunctionError"), log


def with_upload(doc: dict[str, Any], key: str, bucket: str, s3: Any, parse: Any) -> dict[str, Any]:
    """The input about the object `key` of `bucket`: its S3 identity (HeadObject) in the trigger's `detail`, and,
    when the input carries an `upload`, the document the deployed ParseUpload makes of it."""
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        raise InvokeError(f"s3://{bucket}/{key} does not exist: upload it first (e.g. `guardrail replay "
                          "events/first-deployment.json` uploads models/bank-marketing/v1/model.tar.gz)") from None
    obj = {"key": key, "size": head["ContentLength"], "etag": head["ETag"].strip('"'), "sequencer": "00"}
    if head.get("VersionId"):
        obj["version-id"] = head["VersionId"]
    doc = dict(doc)
    detail = dict(doc.get("detail") or {})
    detail.update({"bucket": {"name": bucket}, "object": obj})
    doc["detail"] = detail
    doc["resources"] = [f"arn:aws:s3:::{bucket}"]
    if "upload" in doc:
        payload, error, _ = parse({k: v for k, v in doc.items() if k != "upload"})
        if error:
            raise InvokeError(f"ParseUpload refused s3://{bucket}/{key}: {summarize_error(payload)}")
        doc["upload"] = payload
    return doc


def summarize_error(payload: Any) -> str:
    """`errorType: errorMessage` of a function error (as Step Functions names the error)."""
    if isinstance(payload, dict):
        return f"{payload.get('errorType', 'Error')}: {str(payload.get('errorMessage', '')).splitlines()[0][:500]}"
    return str(payload)[:500]
