"""Pure logic: derived names, ClientError translation, settings."""

from __future__ import annotations

import random
import string

import pytest
from botocore.exceptions import ClientError

from functions import errors
from functions.config import ConfigurationError, settings_from
from functions.steps.names import SAGEMAKER_NAME, resource_names, sagemaker_name, validate_model_id


def test_names_within_sagemaker_limits() -> None:
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "-._"
    seen: dict[str, str] = {}
    for _ in range(500):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120)))
        if not any(c.isalnum() for c in raw):
            continue
        for suffix in ("", "-cfg"):
            name = sagemaker_name(raw, suffix)
            assert len(name) <= 63 and SAGEMAKER_NAME.match(name), (raw, name)
            assert seen.setdefault(name, raw + suffix) == raw + suffix, "two inputs share a name"


def test_readable_names_kept_and_altered_names_hashed() -> None:
    assert sagemaker_name("xgb-best-1") == "xgb-best-1"
    assert sagemaker_name("xgb-best-1.0") != sagemaker_name("xgb-best-1-0")
    long = sagemaker_name("m" * 70, "-cfg")
    assert len(long) == 63 and long.endswith("-cfg")


def test_resource_names_unique_per_version() -> None:
    a = resource_names("ep", "churn", "1", "upload#b/k#1")
    b = resource_names("ep", "churn", "2", "upload#b/k#2")
    assert a.shadow_variant != b.shadow_variant and a.endpoint_config != b.endpoint_config and a.model != b.model
    assert a.error_alarm != a.latency_alarm and a.endpoint_config in a.error_alarm
    again = resource_names("ep", "churn", "1", "upload#b/k#other-version")
    assert again.model == a.model and again.experiment != a.experiment


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        ("Churn", "1", "model name"),
        ("churn_x", "1", "model name"),
        ("-churn", "1", "model name"),
        ("churn", "v 1", "model version"),
        ("churn", "1/2", "model version"),
        ("c" * 64, "1", "<= 63"),
    ],
)
def test_bad_model_ids(name: str, version: str, message: str) -> None:
    with pytest.raises(errors.InvalidTrigger, match=message):
        validate_model_id(name, version)


def test_bad_endpoint_name() -> None:
    with pytest.raises(errors.InvalidTrigger, match="endpoint name"):
        resource_names("bad_endpoint!", "m", "1", "k")


def _client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("ThrottlingException", "Rate exceeded", errors.Throttled),
        ("Throttling", "Rate exceeded", errors.Throttled),
        ("TooManyRequestsException", "", errors.Throttled),
        ("ValidationException", 'Could not find endpoint "ep".', errors.ResourceNotFound),
        ("ValidationException", 'Could not find model "m".', errors.ResourceNotFound),
        ("ValidationException", 'Cannot create already existing model "m".', errors.ResourceAlreadyExists),
        ("ResourceInUse", "Experiment already exists", errors.ResourceAlreadyExists),
        ("ResourceInUse", "Endpoint is being updated", errors.ResourceInUse),
        ("ResourceNotFound", "no experiment", errors.ResourceNotFound),
        ("NoSuchKey", "The specified key does not exist.", errors.ResourceNotFound),
        ("404", "Not Found", errors.ResourceNotFound),
        ("ConditionalCheckFailedException", "The conditional request failed", errors.ConditionFailed),
        ("ValidationException", 'Cannot update in-progress endpoint "ep".', errors.ResourceInUse),
        ("ValidationException", "1 validation error detected", errors.AwsServiceError),
        ("AccessDeniedException", "not allowed", errors.AwsServiceError),
    ],
)
def test_client_error_translation(code: str, message: str, expected: type) -> None:
    translated = errors.translate(_client_error(code, message), "describe_endpoint")
    assert type(translated) is expected
    assert message in str(translated)


def test_aws_errors_context_manager_chains() -> None:
    with pytest.raises(errors.Throttled) as info, errors.aws_errors("put_item"):
        raise _client_error("ThrottlingException", "slow down")
    assert isinstance(info.value.__cause__, ClientError)
    assert "put_item" in str(info.value)


def test_settings_defaults_and_env() -> None:
    s = settings_from(
        {
            "WAIT_INTERVAL_SECONDS": "5",
            "TERMINATION_WAIT_SECONDS": "0",
            "MODEL_PREFIX": "ml",
            "BIAS_FACETS": "age, job",
            "LATENCY_STATISTIC": "p99",
        }
    )
    assert (s.wait_interval_seconds, s.model_prefix, s.bias_facets, s.latency_statistic) == (
        5,
        "ml/",
        ("age", "job"),
        "p99",
    )
    assert s.default_strategy == "CANARY"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEFAULT_STRATEGY": "BLUE"}, "DEFAULT_STRATEGY"),
        ({"CANARY_PERCENT": "80"}, "CANARY_PERCENT"),
        ({"MAX_EXECUTION_TIMEOUT_SECONDS": "300"}, "MAX_EXECUTION_TIMEOUT_SECONDS"),
        ({"WAIT_INTERVAL_SECONDS": "3600", "MAX_EXECUTION_TIMEOUT_SECONDS": "3000"}, "must exceed"),
        ({"ENDPOINT_NAME": "bad_name"}, "ENDPOINT_NAME"),
        ({"LATENCY_STATISTIC": "Median"}, "LATENCY_STATISTIC"),
    ],
)
def test_settings_invalid(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        settings_from(env)


def test_settings_required() -> None:
    with pytest.raises(ConfigurationError, match="TOPIC_ARN, TABLE_NAME"):
        settings_from({}, required=("topic_arn", "table_name"))
