"""Strict IAM on moto's server: every request signed with moto-STS (assumed-role) credentials is
authorized by `local.iam.authorize` with the action, resource ARNs and condition keys that AWS's
Service Authorization Reference gives for that operation.

Who is checked: a request whose access key is an assumed-role key of moto's STS. Any other key (the
operator's / test harness's `testing` credentials, moto's default) acts as the account's
administrator, as on AWS an admin user would. A request with an `ASIA...` key moto never issued, a
session token that does not belong to the key, or an expired session is rejected like AWS does.

`install()` patches moto in this process (idempotent); `uninstall()` restores it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from local.iam import AccessDenied, authorize, session_for_access_key

log = logging.getLogger(__name__)

# SigV4 signing name -> IAM service prefix (where they differ)
_PREFIX = {"monitoring": "cloudwatch", "email": "ses", "execute-api": "execute-api"}

_lock = threading.Lock()
_originals: dict[str, Any] = {}
stats = {"checked": 0, "denied": 0}


class RequestRejected(Exception):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


# -- who is calling ---------------------------------------------------------------------------------


def _access_key(headers: Any, querystring: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(access key id, signing service, session token) of a SigV4 request (header or presigned)."""
    auth = headers.get("Authorization") or ""
    token = headers.get("X-Amz-Security-Token")
    credential = ""
    if "Credential=" in auth:
        credential = auth.partition("Credential=")[2].partition(",")[0]
    else:
        values = querystring.get("X-Amz-Credential")
        credential = (values[0] if isinstance(values, list) else values) or ""
        tokens = querystring.get("X-Amz-Security-Token")
        token = token or (tokens[0] if isinstance(tokens, list) else tokens)
    if not credential:
        return None, None, token
    parts = credential.split("/")
    return parts[0], (parts[3] if len(parts) > 3 else None), token


def principal_of_request(headers: Any, querystring: dict[str, Any]) -> tuple[str | None, str | None]:
    """(assumed-role ARN or None for an admin key, signing service). Raises RequestRejected."""
    key, service, token = _access_key(headers, querystring)
    if not key:
        return None, service
    session = session_for_access_key(key)
    if session is None:
        if key.startswith("ASIA"):
            raise RequestRejected("InvalidClientTokenId", "The security token included in the request is invalid.", 403)
        return None, service
    if token != session.session_token:
        raise RequestRejected("InvalidClientTokenId", "The security token included in the request is invalid.", 403)
    from moto.core.utils import utcnow

    if session.expiration <= utcnow():
        raise RequestRejected("ExpiredToken", "The security token included in the request is expired", 403)
    return session.arn, service


# -- what is asked: action, resources, context ---------------------------------------------------------


def _p(params: dict[str, Any], *names: str) -> Any:
    for name in names:
        if params.get(name) not in (None, ""):
            return params[name]
    return None


def _dynamodb(op: str, params: dict[str, Any], region: str, account: str) -> tuple[list[tuple[str, list[str]]], dict[str, str]]:
    def table(name: str, index: str | None = None) -> str:
        if name.startswith("arn:"):
            return name
        arn = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
        return f"{arn}/index/{index}" if index else arn

    if op in ("BatchGetItem", "BatchWriteItem"):
        checks: list[tuple[str, list[str]]] = []
        for name in params.get("RequestItems") or {}:
            if op == "BatchGetItem":
                checks.append(("dynamodb:BatchGetItem", [table(name)]))
            else:
                checks.append(("dynamodb:BatchWriteItem", [table(name)]))
        return checks, {}
    if op in ("TransactWriteItems", "TransactGetItems"):
        checks = []
        for item in params.get("TransactItems") or []:
            for kind, body in item.items():
                action = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}[kind]
                checks.append((f"dynamodb:{action}", [table(body["TableName"])]))
        return checks, {}
    name = _p(params, "TableName", "ResourceArn")
    resource = table(name, params.get("IndexName")) if name else "*"
    return [(f"dynamodb:{op}", [resource])], {}


def _sns(op: str, params: dict[str, Any], region: str, account: str) -> tuple[list[tuple[str, list[str]]], dict[str, str]]:
    arn = _p(params, "TopicArn", "TargetArn", "ResourceArn")
    if op == "CreateTopic" and params.get("Name"):
        arn = f"arn:aws:sns:{region}:{account}:{params['Name']}"
    if op == "PublishBatch":
        op = "Publish"  # PublishBatch is authorized as sns:Publish
    checks = [(f"sns:{op}", [arn or "*"])]
    if op == "Publish" and arn:
        key = _topic_kms_key(arn, region, account)
        if key:  # SSE topic: the publisher needs the key (SNS developer guide, "Key management")
            checks += [("kms:GenerateDataKey", [key]), ("kms:Decrypt", [key])]
    return checks, {}


def _topic_kms_key(topic_arn: str, region: str, account: str) -> str | None:
    try:
        from moto.kms.models import kms_backends
        from moto.sns.models import sns_backends

        topic = sns_backends[account][region].topics.get(topic_arn)
        key_id = getattr(topic, "kms_master_key_id", "") if topic else ""
        if not key_id:
            return None
        kms = kms_backends[account][region]
        return kms.describe_key(kms.get_key_id(key_id) if key_id.startswith("alias/") or ":alias/" in key_id else key_id).arn
    except Exception:  # an unknown key: SNS itself would fail to publish
        log.debug("no KMS key for topic %s", topic_arn, exc_info=True)
        return None


def _cloudwatch(op: str, params: dict[str, Any], region: str, account: str) -> tuple[list[tuple[str, list[str]]], dict[str, str]]:
    def alarm(name: str) -> str:
        return f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"

    if op == "PutMetricData":
        return [("cloudwatch:PutMetricData", ["*"])], {"cloudwatch:namespace": params.get("Namespace", "")}
    if op in ("PutMetricAlarm", "SetAlarmState", "PutCompositeAlarm", "DescribeAlarmHistory"):
        return [(f"cloudwatch:{op}", [alarm(params["AlarmName"])] if params.get("AlarmName") else ["*"])], {}
    if op in ("DescribeAlarms", "DeleteAlarms", "EnableAlarmActions", "DisableAlarmActions"):
        names = params.get("AlarmNames") or []
        if names:
            return [(f"cloudwatch:{op}", [alarm(n) for n in names])], {}
        if params.get("AlarmNamePrefix"):
            return [(f"cloudwatch:{op}", [alarm(params["AlarmNamePrefix"] + "*")])], {}
        return [(f"cloudwatch:{op}", [alarm("*")])], {}
    if op in ("TagResource", "UntagResource", "ListTagsForResource"):
        return [(f"cloudwatch:{op}", [params.get("ResourceARN", "*")])], {}
    return [(f"cloudwatch:{op}", ["*"])], {}  # GetMetricData, GetMetricStatistics, ListMetrics...


def _lambda(op: str, params: dict[str, Any], region: str, account: str) -> tuple[list[tuple[str, list[str]]], dict[str, str]]:
    action = {"Invoke": "InvokeFunction", "InvokeWithResponseStream": "InvokeFunction"}.get(op, op.split("20")[0])
    name = _p(params, "FunctionName")
    if not name:
        return [(f"lambda:{action}", ["*"])], {}
    arn = name if name.startswith("arn:") else f"arn:aws:lambda:{region}:{account}:function:{name}"
    if params.get("Qualifier") and arn.count(":") == 6:
        arn += f":{params['Qualifier']}"
    return [(f"lambda:{action}", [arn])], {}


def _states(op: str, params: dict[str, Any], region: str, account: str) -> tuple[list[tuple[str, list[str]]], dict[str, str]]:
    arn = _p(params, "stateMachineArn", "executionArn", "resourceArn", "activityArn")
    return [(f"states:{op}", [arn or "*"])], {}


def _logs(op: str, params: dict[str, Any], region: str, account: str) -> tuple[list[tuple[str, list[str]]], dict[str, str]]:
    group = params.get("logGroupName")
    if not group:
        return [(f"logs:{op}", ["*"])], {}
    arn = f"arn:aws:logs:{region}:{account}:log-group:{group}"
    if op in ("PutLogEvents", "GetLogEvents") and params.get("logStreamName"):
        arn += f":log-stream:{params['logStreamName']}"
    return [(f"logs:{op}", [arn])], {}


_MAPPERS: dict[str, Callable[..., tuple[list[tuple[str, list[str]]], dict[str, str]]]] = {
    "dynamodb": _dynamodb,
    "sns": _sns,
    "cloudwatch": _cloudwatch,
    "lambda": _lambda,
    "states": _states,
    "logs": _logs,
}


def checks_for(prefix: str, op: str, params: dict[str, Any], region: str, account: str) -> tuple[list[tuple[str, list[str]]], dict[str, str]]:
    """The (action, resources) pairs a request needs, and its service condition keys. An operation this
    table does not know is authorized as `<prefix>:<Operation>` on `*` (stricter than AWS for
    resource-scoped grants, never laxer)."""
    mapper = _MAPPERS.get(prefix)
    if mapper is not None:
        return mapper(op, params, region, account)
    return [(f"{prefix}:{op}", ["*"])], {}


# S3: moto's action names -> IAM actions (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html)
_S3_ACTIONS = {
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
    "HeadBucket": "ListBucket",
    "ListBuckets": "ListAllMyBuckets",
    "ListMultipartUploads": "ListBucketMultipartUploads",
    "ListBucketVersions": "ListBucketVersions",
    "GetBucketNotification": "GetBucketNotification",
    "PutBucketNotification": "PutBucketNotification",
    "GetLifecycleConfiguration": "GetLifecycleConfiguration",
    "ListMultipartUploadParts": "ListMultipartUploadParts",
    "DeleteObjects": "DeleteObject",
}


def s3_checks(moto_action: str, method: str, bucket: str | None, key: str | None, querystring: dict[str, Any], headers: Any) -> tuple[list[tuple[str, list[str]]], dict[str, str]]:
    action = _S3_ACTIONS.get(moto_action, moto_action)
    if method == "HEAD" and key and "versionId" in querystring:
        action = "GetObjectVersion"
    context: dict[str, str] = {}
    if key:
        resource = f"arn:aws:s3:::{bucket}/{key}"
    elif bucket:
        resource = f"arn:aws:s3:::{bucket}"
    else:
        resource = "*"
    if action in ("ListAllMyBuckets",):
        resource = "*"
    if action == "ListBucket":
        prefix = querystring.get("prefix")
        if prefix:
            context["s3:prefix"] = prefix[0] if isinstance(prefix, list) else prefix
    checks = [(f"s3:{action}", [resource])]
    copy_source = headers.get("x-amz-copy-source") if key else None
    if copy_source and action == "PutObject":
        parsed = urlparse(copy_source)
        source = unquote(parsed.path).lstrip("/")
        version = parse_qs(parsed.query).get("versionId")
        checks.append(("s3:GetObjectVersion" if version else "s3:GetObject", [f"arn:aws:s3:::{source}"]))
    return checks, context


def _authorize_all(principal: str, checks: list[tuple[str, list[str]]], context: dict[str, str]) -> None:
    stats["checked"] += 1
    try:
        for action, resources in checks:
            authorize(principal, action, resources, context)
    except AccessDenied:
        stats["denied"] += 1
        raise


# -- moto patches --------------------------------------------------------------------------------------


def _json_body(response: Any) -> dict[str, Any]:
    body = getattr(response, "body", None)
    if isinstance(body, (bytes, str)) and body:
        try:
            parsed = json.loads(body)
            return parsed if isinstance(parsed, dict) else {}
        except ValueError:
            return {}
    return {}


def _error_response(response: Any, code: str, message: str, status: int) -> Any:
    from moto.core.exceptions import ServiceException
    from moto.core.responses import ActionResult

    error = ServiceException(code, message)
    try:
        _, headers, body = response.serialized(ActionResult(error))
    except Exception:  # moto's serializer needs state this early request lacks: AWS's error shapes
        log.debug("serializing %s for %s", code, type(response).__name__, exc_info=True)
        protocol = _protocol(response)
        if protocol == "query":
            from xml.sax.saxutils import escape

            headers = {"Content-Type": "text/xml"}
            body = (
                '<ErrorResponse xmlns="http://webservices.amazon.com/AWSFault/2005-15-09"><Error><Type>Sender</Type>'
                f"<Code>{code}</Code><Message>{escape(message)}</Message></Error><RequestId>local</RequestId></ErrorResponse>"
            )
        else:
            headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
            body = json.dumps({"__type": code, "message": message, "Message": message})
    headers = dict(headers)
    headers["status"] = str(status)
    return status, headers, body


def _protocol(response: Any) -> str:
    try:
        from moto.core.responses import get_service_model

        return get_service_model(response.boto3_service_name).metadata.get("protocol", "json")
    except Exception:
        return "json"


def _check_generic(response: Any) -> Any:
    """None when the request may proceed; otherwise the error response."""
    try:
        principal, signing = principal_of_request(response.headers, response.querystring)
    except RequestRejected as rejected:
        return _error_response(response, rejected.code, rejected.message, rejected.status)
    if principal is None:
        return None
    prefix = _PREFIX.get(signing or "", signing or getattr(response, "service_name", ""))
    op = response._get_action()
    if prefix == "sts" and op == "GetCallerIdentity":
        return None  # always allowed (STS API reference)
    params = getattr(response, "params", None) or {}
    if not params:
        params = {**_json_body(response), **{k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in (response.querystring or {}).items() if isinstance(k, str)}}
    params = {**params, **(getattr(response, "uri_match", None) or {})}
    checks, context = checks_for(prefix, op, params, response.region, response.current_account)
    try:
        _authorize_all(principal, checks, context)
    except AccessDenied as denied:
        code = "AuthorizationError" if prefix == "sns" else ("AccessDeniedException" if prefix in ("dynamodb", "lambda", "states", "logs", "kms", "sagemaker") else "AccessDenied")
        status = 400 if code == "AccessDeniedException" and prefix != "lambda" else 403
        return _error_response(response, code, str(denied), status)
    return None


def _missing_key_needs_list_bucket(response: Any, principal: str, bucket: str, key: str) -> None:
    """S3 answers 404 for a missing key only to a caller with s3:ListBucket on the bucket; others get
    403 AccessDenied (S3 API reference, GetObject / HeadObject "Permissions")."""
    try:
        from moto.s3.models import s3_backends

        found = s3_backends[response.current_account]["aws"].buckets.get(bucket)
        exists = found is None or found.keys.get(key) is not None
    except Exception:
        return
    if not exists:
        authorize(principal, "s3:ListBucket", [f"arn:aws:s3:::{bucket}"])


def install() -> None:
    """Enforce IAM on moto's server in this process (idempotent)."""
    from moto.core.responses import BaseResponse
    from moto.s3.exceptions import S3ClientError
    from moto.s3.responses import S3Response

    with _lock:
        if _originals:
            return
        original_dispatch = BaseResponse._dispatch
        original_s3 = S3Response._authenticate_and_authorize_s3_action

        def _dispatch(self: Any, request: Any, full_url: str | None = None, headers: Any = None) -> Any:
            self.setup_class(request, full_url, headers)
            denied = _check_generic(self)
            if denied is not None:
                return denied
            return self.call_action()

        def _s3_authorize(self: Any, bucket_name: str | None = None, key_name: str | None = None) -> None:
            try:
                principal, _ = principal_of_request(self.headers, self.querystring)
            except RequestRejected as rejected:
                raise S3ClientError(rejected.code, rejected.message) from None
            if principal is None:
                return
            checks, context = s3_checks(self.data.get("Action", ""), self.method, bucket_name, key_name, self.querystring, self.headers)
            try:
                _authorize_all(principal, checks, context)
                if checks[0][0] in ("s3:GetObject", "s3:GetObjectVersion") and bucket_name and key_name:
                    _missing_key_needs_list_bucket(self, principal, bucket_name, key_name)
            except AccessDenied as denied:
                raise S3ClientError("AccessDenied", str(denied)) from None

        _originals["dispatch"] = original_dispatch
        _originals["s3"] = original_s3
        BaseResponse._dispatch = _dispatch  # type: ignore[method-assign]
        S3Response._authenticate_and_authorize_s3_action = _s3_authorize  # type: ignore[method-assign]


def uninstall() -> None:
    from moto.core.responses import BaseResponse
    from moto.s3.responses import S3Response

    with _lock:
        if not _originals:
            return
        BaseResponse._dispatch = _originals.pop("dispatch")  # type: ignore[method-assign]
        S3Response._authenticate_and_authorize_s3_action = _originals.pop("s3")  # type: ignore[method-assign]


def installed() -> bool:
    return bool(_originals)
