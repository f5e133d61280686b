"""notify on moto SNS (read back through an SQS subscription): one message per outcome, never failing on a
partial document."""

from __future__ import annotations

import json

import boto3
import pytest
from fn_support import TOPIC, FakeContext, load_state

from functions import errors
from functions.models import NotifyOutput
from functions.steps.notify import subject_for


@pytest.fixture
def inbox(aws):
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name=TOPIC.rsplit(":", 1)[1])["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    def read() -> list[dict]:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    return read


def _notify(doc) -> NotifyOutput:
    from functions.handlers.notify import handler

    return NotifyOutput.model_validate(handler(doc, FakeContext()))


def _payload(envelope: dict) -> dict:
    return json.loads(envelope["Message"].split("JSON payload:\n", 1)[1])


def test_deployed(inbox) -> None:
    out = _notify(load_state("notify"))
    [msg] = inbox()
    assert msg["Subject"] == out.subject == "Guardrail DEPLOYED: xgb-runnerup/2 on guardrail-endpoint"
    attrs = {k: v["Value"] for k, v in msg["MessageAttributes"].items()}
    assert attrs == {"outcome": "DEPLOYED", "endpoint": "guardrail-endpoint", "model": "xgb-runnerup/2"}
    payload = _payload(msg)
    assert payload["outcome"] == "DEPLOYED" and payload["execution"] == "example-execution-0001"
    assert payload["details"]["strategy"] == "CANARY"
    assert "now serves all traffic" in msg["Message"]


def test_rolled_back_names_the_alarm_and_reason(inbox) -> None:
    doc = load_state("notify")
    reason = "One or more configured alarm for automatic rollback deployment is in ALARM state: [x-5xx]."
    doc["deployment"] |= {"status": "ROLLED_BACK", "failure_reason": reason, "alarms_in_alarm": ["x-5xx"]}
    doc["outcome"] = "ROLLED_BACK"
    out = _notify(doc)
    assert reason in out.payload.summary and "x-5xx" in out.payload.summary
    assert out.payload.details["restored_config"] == "xgb-best-1-cfg"
    assert inbox()[0]["MessageAttributes"]["outcome"]["Value"] == "ROLLED_BACK"


def test_shadow_outcomes_carry_the_evidence(inbox) -> None:
    doc = load_state("conclude_shadow_test")
    doc["outcome"] = "PROMOTED"
    out = _notify(doc)
    assert out.payload.details["verdict"] == "PROMOTE" and out.payload.details["shadow"]["invocations"] == 240
    doc["outcome"] = "SHADOW_REJECTED"
    assert "failed its shadow test" in _notify(doc).payload.summary


@pytest.mark.parametrize(("shadow_action", "word"), [("Promote", "promoted"), ("Remove", "removed")])
def test_inconclusive_says_which_default_was_applied(inbox, shadow_action, word) -> None:
    doc = load_state("conclude_shadow_test")
    doc["outcome"] = "INCONCLUSIVE"
    doc["shadow"]["actions"] = {"shadow-v": shadow_action, "prod-v": "Retain" if word == "removed" else "Remove"}
    out = _notify(doc)
    assert f"inconclusive shadow test and was {word} (the configured default)" in out.payload.summary
    assert out.payload.details["actions"] == doc["shadow"]["actions"]


def test_failed_on_a_catch_path_with_a_partial_document(inbox) -> None:
    event = load_state("parse_upload")
    event["error"] = {
        "Error": "InvalidTrigger",
        "Cause": json.dumps(
            {"errorMessage": "key 'x' is outside the model prefix", "errorType": "InvalidTrigger"}
        ),
    }
    event["outcome"] = "FAILED"
    out = _notify(event)
    assert (
        out.payload.error == "InvalidTrigger" and out.payload.cause == "key 'x' is outside the model prefix"
    )
    assert out.payload.model == "models/xgb-runnerup/2/model.tar.gz"  # parse_upload never ran
    [msg] = inbox()
    assert "InvalidTrigger: key 'x' is outside the model prefix" in msg["Message"]


def test_rejected_gives_the_gate_reasons(inbox) -> None:
    doc = load_state("quality_gate")
    doc["error"] = {
        "Error": "ModelRejected",
        "Cause": json.dumps(
            {"errorMessage": "Model rejected by the quality gate: AUC 0.6000 is below the minimum 0.7500"}
        ),
    }
    doc["outcome"] = "REJECTED"
    out = _notify(doc)
    assert "AUC 0.6000 is below the minimum" in out.payload.summary and out.payload.error == "ModelRejected"


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"outcome": "FAILED", "upload": "garbage", "deployment": 3},
        {"outcome": "DEPLOYED", "error": "just text"},
        {"outcome": "DRIFT"},
    ],
)
def test_any_document_gets_a_message(inbox, doc) -> None:
    out = _notify(doc)
    assert out.message_id and len(out.subject) <= 100
    assert len(inbox()) == 1


def test_subject_limits() -> None:
    subject = subject_for("SHADOW_REJECTED", "m" * 63 + "/" + "v" * 63, "e" * 63)
    assert len(subject) == 100 and subject.endswith("...")
    assert "\n" not in subject_for("FAILED", "bad\nmodel", "ü")


def test_publish_failure_raises(aws) -> None:
    # The topic does not exist: the error surfaces (the state machine falls back to a direct SNS publish).
    with pytest.raises(errors.AwsServiceError):
        _notify(load_state("notify"))


def test_emits_outcome_metric_and_correlated_logs(inbox, capsys, monkeypatch) -> None:
    import io

    from functions.handlers._runtime import logger

    log_stream = io.StringIO()  # the Logger's handler keeps the stdout it saw at import: read it directly
    monkeypatch.setattr(logger.registered_handler, "stream", log_stream)
    _notify(load_state("notify"))
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert emf, "no CloudWatch EMF metrics printed"
    directive = emf[-1]["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "Guardrail"
    assert {m["Name"] for m in directive["Metrics"]} == {"StepSucceeded", "Outcomes"}
    assert emf[-1]["Outcome"] == "DEPLOYED" and emf[-1]["Step"] == "notify"
    logs = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    done = [line for line in logs if line.get("message") == "step done"]
    assert done and done[-1]["correlation_id"] == "example-execution-0001" and done[-1]["step"] == "notify"


EXECUTION_ARN = "arn:aws:states:us-east-1:123456789012:execution:guardrail:example-execution-0001"


def test_alerts_carry_the_execution_arn_and_on_aws_a_console_link(inbox, monkeypatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # the SDK talks to AWS itself
    out = _notify(load_state("notify"))  # the ASL passes $$.Execution {Name, Id}
    [msg] = inbox()
    payload = _payload(msg)
    assert payload["execution"] == "example-execution-0001" and payload["execution_arn"] == EXECUTION_ARN
    url = f"https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/{EXECUTION_ARN}"
    assert payload["console_url"] == out.payload.console_url == url
    assert f"Execution: {EXECUTION_ARN}\n" in msg["Message"] and f"Console:   {url}\n" in msg["Message"]


def test_no_console_link_off_aws_or_without_an_arn() -> None:
    from functions.steps.notify import console_url

    assert console_url(EXECUTION_ARN, "http://127.0.0.1:5055") is None  # the local cloud: no console shows it
    assert console_url(None) is None and console_url("example-execution-0001") is None
    cn = EXECUTION_ARN.replace("arn:aws:", "arn:aws-cn:").replace("us-east-1", "cn-north-1")
    assert console_url(cn).startswith("https://cn-north-1.console.amazonaws.cn/states/home?region=cn-north-1#/")
