"""Run statemachine/guardrail.asl.json on moto's Step Functions interpreter with scripted Lambda steps.

Lambda invocations are answered by a `before-call.lambda.Invoke` handler on boto3's default session (the one
moto's interpreter uses). Each fake step checks that the document it receives parses with the step's input
model from `functions.models` and that its scripted result parses with the step's output model, so the ASL,
these fakes and the Lambda code agree on the execution document.
"""

from __future__ import annotations

import io
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody
from moto import mock_aws
from pydantic import BaseModel

from functions import models as m

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "statemachine" / "guardrail.asl.json"
REGION = "us-east-1"
ACCOUNT = "123456789012"
FUNCTION_PREFIX = "guardrail-"

# step (the template's logical id without "Function") -> (input model, output model(s))
STEP_MODELS: dict[str, tuple[type[BaseModel], tuple[type[BaseModel], ...]]] = {
    "ParseUpload": (m.ParseUploadInput, (m.ParseUploadOutput,)),
    "AcquireLock": (m.AcquireLockInput, (m.LockState,)),
    "ReleaseLock": (m.ReleaseLockInput, (m.ReleaseLockOutput,)),
    "QualityGate": (m.QualityGateInput, (m.GateResult,)),
    "PreFlight": (m.PreFlightInput, (m.PreFlightResult,)),
    "CreateModel": (m.CreateModelInput, (m.ModelResource, m.CreatedResource)),
    "CreateEndpointConfig": (m.CreateEndpointConfigInput, (m.EndpointConfigResource,)),
    "EnsureAlarms": (m.EnsureAlarmsInput, (m.AlarmsState,)),
    "Deploy": (m.DeployInput, (m.DeploymentState,)),
    "CheckDeployment": (m.CheckDeploymentInput, (m.DeploymentState, m.WatchState)),
    "Rollback": (m.RollbackInput, (m.WatchState,)),
    "StartShadowTest": (m.StartShadowTestInput, (m.ShadowState,)),
    "CheckShadowTest": (m.CheckShadowTestInput, (m.ShadowState,)),
    "ConcludeShadowTest": (m.ConcludeShadowTestInput, (m.ShadowState,)),
    "CheckData": (m.CheckDataInput, (m.DataCheckState,)),
    "Housekeeping": (m.HousekeepingInput, (m.HousekeepingOutput,)),
    "Notify": (m.NotifyInput, (m.NotifyOutput,)),
    "AbortShadowTest": (m.AbortShadowTestInput, (m.ShadowAbort,)),
    "Approval": (m.ApprovalInput, (m.ApprovalRequested,)),  # lambda:invoke.waitForTaskToken (issue 15)
}


def function_arn(step: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION_PREFIX}{step}"


def default_substitutions(topic_arn: str) -> dict[str, str]:
    """Every placeholder of the ASL, with zero-second waits (tests) and small bounds."""
    subs = {f"{step}FunctionArn": function_arn(step) for step in STEP_MODELS}
    subs.update(
        TopicArn=topic_arn,
        PollIntervalSeconds="0",
        MaxPollAttempts="4",
        PostDeploymentWatchSeconds="0",
        LockRetrySeconds="0",
        LockMaxAttempts="3",
    )
    return subs


def substitute(text: str, substitutions: dict[str, str]) -> str:
    """What CloudFormation does with DefinitionSubstitutions: replace every ${Name}; unknown names are an error."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in substitutions:
            raise KeyError(f"no substitution for ${{{name}}}")
        return substitutions[name]

    return re.sub(r"\$\{([A-Za-z0-9]+)\}", one, text)


class LambdaError(Exception):
    """A scripted function error: Lambda reports it as FunctionError Unhandled with errorType/errorMessage."""

    def __init__(self, error_type: str, message: str = "") -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message or error_type


Step = dict[str, Any] | LambdaError | Callable[[dict[str, Any]], Any]


@dataclass
class FakeLambdas:
    """Scripted answers per step: a result dict, a LambdaError, a callable(document), or a list of those
    consumed one per call (the last one repeats)."""

    script: dict[str, Step | list[Step]]
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def calls_to(self, step: str) -> list[dict[str, Any]]:
        return [doc for name, doc in self.calls if name == step]

    def answer(self, step: str, document: dict[str, Any]) -> dict[str, Any]:
        """The invocation result: a dict payload, or raises LambdaError."""
        self.calls.append((step, document))
        if step not in STEP_MODELS:
            self.problems.append(f"unknown function {step}")
            raise LambdaError("ResourceNotFoundException", f"no function {step}")
        in_model, out_models = STEP_MODELS[step]
        try:
            in_model.model_validate(document)
        except Exception as exc:  # the ASL handed the step a document its model rejects
            self.problems.append(f"{step} input: {exc}")
        scripted = self.script.get(step)
        if scripted is None:
            self.problems.append(f"{step} was called but has no scripted answer")
            raise LambdaError("NotScripted", step)
        if isinstance(scripted, list):
            index = len(self.calls_to(step)) - 1
            scripted = scripted[min(index, len(scripted) - 1)]
        result = scripted(document) if callable(scripted) else scripted
        if isinstance(result, LambdaError):
            raise result
        for out_model in out_models:
            try:  # answer what the real handler returns: model_dump(mode="json"), every field present
                return out_model.model_validate(result).model_dump(mode="json")
            except Exception as exc:
                last = exc
        self.problems.append(f"{step} scripted output: {last}")
        return result

    def hook(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        """`before-call.lambda.Invoke`: answer without any network (params is botocore's request dict)."""
        name = urllib.parse.unquote(params["url_path"].split("/")[3]).rsplit(":", 1)[-1]
        step = name.removeprefix(FUNCTION_PREFIX)
        document = json.loads(params["body"] or b"{}")
        parsed: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
        try:
            body = json.dumps(self.answer(step, document)).encode()
        except LambdaError as err:
            body = json.dumps({"errorType": err.error_type, "errorMessage": err.message}).encode()
            parsed["FunctionError"] = "Unhandled"
        parsed["Payload"] = StreamingBody(io.BytesIO(body), len(body))
        return AWSResponse(params.get("url", ""), 200, {}, None), parsed


@dataclass
class Execution:
    status: str
    output: dict[str, Any] | None
    error: str | None
    cause: str | None
    history: list[dict[str, Any]]
    fakes: FakeLambdas
    published: list[dict[str, Any]]  # SNS messages published by the state machine itself (fallback)

    @property
    def states(self) -> list[str]:
        """Names of the states entered, in order."""
        return [
            e["stateEnteredEventDetails"]["name"] for e in self.history if "stateEnteredEventDetails" in e
        ]

    @property
    def transitions(self) -> int:
        """State transitions as Step Functions bills them: one per state entered (plus the start)."""
        return len(self.states) + 1

    @property
    def notifications(self) -> list[m.NotifyInput]:
        return [m.NotifyInput.model_validate(doc) for doc in self.fakes.calls_to("Notify")]


@contextmanager
def local_step_functions(fakes: FakeLambdas) -> Iterator[tuple[Any, str]]:
    """moto with the executing interpreter, the Lambda hook on the default session, and an SNS topic."""
    from local import sfn_tasks

    sfn_tasks.install()  # SendTaskFailure's cause, StopExecution of a waiting task, as on AWS
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        boto3.setup_default_session(region_name=REGION)  # mock_aws hides the outer default session
        boto3.DEFAULT_SESSION.events.register("before-call.lambda.Invoke", fakes.hook)
        topic_arn = boto3.client("sns").create_topic(Name="guardrail-notifications")["TopicArn"]
        yield boto3.client("stepfunctions"), topic_arn


def run(
    event: dict[str, Any],
    script: dict[str, Step | list[Step]],
    substitutions: dict[str, str] | None = None,
    name: str = "exec-1",
    timeout: float = 60.0,
) -> Execution:
    """Create the state machine, start one execution with `event` and wait until it ends."""
    fakes = FakeLambdas(script)
    with local_step_functions(fakes) as (sfn, topic_arn):
        subs = default_substitutions(topic_arn) | (substitutions or {})
        definition = substitute(ASL_PATH.read_text(), subs)
        machine = sfn.create_state_machine(
            name="guardrail",
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/guardrail-state-machine",
        )["stateMachineArn"]
        arn = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(event))["executionArn"]
        deadline = time.monotonic() + timeout
        while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution still running after {timeout} s")
            time.sleep(0.02)
        history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        published = _published_messages(topic_arn)
    output = json.loads(described["output"]) if described.get("output") else None
    return Execution(
        described["status"], output, described.get("error"), described.get("cause"), history, fakes, published
    )


def _published_messages(topic_arn: str) -> list[dict[str, Any]]:
    from moto.sns.models import sns_backends

    topic = sns_backends[ACCOUNT][REGION].topics[topic_arn]
    return [
        {"subject": subject, "message": message, "attributes": attributes}
        for _, message, subject, attributes, _ in topic.sent_notifications
    ]
