"""Every action template.yaml grants is either exercised by the strict-IAM mutation test
(tests/iam/test_iam_stack.py USES) or listed here with the reason it is granted (docs/iam.md)."""

from __future__ import annotations

import pytest

from local import deployer
from local.cloud import DEFAULT_SAMCONFIG, DEFAULT_TEMPLATE

pytestmark = pytest.mark.skipif(not DEFAULT_TEMPLATE.exists() or not DEFAULT_SAMCONFIG.exists(), reason="SAM app not there yet")

S3_READ_EXTRAS = "SAM's S3ReadPolicy template grants it; the code never calls it (harmless, audit row 20)"
SAGEMAKER_SIDE = "used by SageMaker acting as this role (emulator in local/sagemaker/, calls local.iam.authorize)"
# (role logical id or "*", action) -> why it is granted although no test call here exercises it
NOT_EXERCISED: dict[tuple[str, str], str] = {
    ("*", "s3:GetBucketLocation"): S3_READ_EXTRAS,
    ("*", "s3:GetLifecycleConfiguration"): S3_READ_EXTRAS,
    ("QualityGateFunctionRole", "s3:GetObjectVersion"): S3_READ_EXTRAS,
    ("StartShadowTestFunctionRole", "s3:GetObjectVersion"): S3_READ_EXTRAS,
    ("CheckShadowTestFunctionRole", "s3:GetObjectVersion"): S3_READ_EXTRAS,
    ("CheckDataFunctionRole", "s3:GetObjectVersion"): S3_READ_EXTRAS,
    ("ConcludeShadowTestFunctionRole", "sagemaker:DescribeEndpoint"): "not called by conclude_shadow_test (audit row 20: unused grant)",
    ("GuardrailStateMachineRole", "logs:CreateLogDelivery"): "Step Functions log delivery to the state machine's log group (service side, at create/update; not emulated)",
    ("GuardrailStateMachineRole", "logs:GetLogDelivery"): "Step Functions log delivery (service side)",
    ("GuardrailStateMachineRole", "logs:UpdateLogDelivery"): "Step Functions log delivery (service side)",
    ("GuardrailStateMachineRole", "logs:DeleteLogDelivery"): "Step Functions log delivery (service side)",
    ("GuardrailStateMachineRole", "logs:ListLogDeliveries"): "Step Functions log delivery (service side)",
    ("GuardrailStateMachineRole", "logs:PutResourcePolicy"): "Step Functions log delivery (service side)",
    ("GuardrailStateMachineRole", "logs:DescribeResourcePolicies"): "Step Functions log delivery (service side)",
    ("GuardrailStateMachineRole", "logs:DescribeLogGroups"): "Step Functions log delivery (service side)",
    ("GuardrailStateMachineModelUploadedRole", "states:StartExecution"): "EventBridge rule target role; local/bridge.py delivers as the service (admin), see docs/local-cloud.md",
    ("SageMakerExecutionRole", "*"): SAGEMAKER_SIDE,
    ("ShadowExperimentRole", "*"): SAGEMAKER_SIDE,
}


def granted() -> dict[str, set[str]]:
    params, _ = deployer.samconfig_parameters(DEFAULT_SAMCONFIG, "local")
    sam = deployer._load_document(DEFAULT_TEMPLATE)
    deployer.prepare_sam(sam, DEFAULT_TEMPLATE.parent)
    cfn = deployer.translate(sam, params, "us-east-1")
    out: dict[str, set[str]] = {}
    for logical_id, resource in cfn["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        actions = out.setdefault(logical_id, set())
        for policy in resource["Properties"].get("Policies", []):
            statements = policy["PolicyDocument"]["Statement"]
            for statement in statements if isinstance(statements, list) else [statements]:
                if statement.get("Effect", "Allow") == "Allow":
                    action = statement.get("Action", [])
                    actions.update(action if isinstance(action, list) else [action])
    return out


def exercised() -> dict[str, set[str]]:
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("iam_stack_uses", Path(__file__).with_name("test_iam_stack.py"))
    module = importlib.util.module_from_spec(spec)
    import sys

    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    out: dict[str, set[str]] = {}
    for function, uses in module.USES.items():
        role = f"{function}Role"
        for action, _ in uses:
            out.setdefault(role, set()).add(":".join(action.split(":")[:2]))
    return out


def test_every_granted_action_is_exercised_or_has_a_reason():
    from local.iam.policy import wildcard_match

    used = exercised()
    unexplained = []
    for role, actions in granted().items():
        for action in sorted(actions):
            if any(wildcard_match(action, u, ignore_case=True) for u in used.get(role, ())):
                continue
            if (role, action) in NOT_EXERCISED or ("*", action) in NOT_EXERCISED or (role, "*") in NOT_EXERCISED:
                continue
            unexplained.append(f"{role}: {action}")
    assert not unexplained, "granted but neither exercised (tests/iam/test_iam_stack.py USES) nor explained (NOT_EXERCISED): " + ", ".join(unexplained)


def markdown_table() -> str:
    """The rows of docs/iam.md: `.venv/bin/python tests/iam/test_iam_grants.py`."""
    from local.iam.policy import wildcard_match

    used = exercised()
    rows = ["| role | action | exercised by / why granted |", "|---|---|---|"]
    for role, actions in granted().items():
        for action in sorted(actions):
            hits = sorted(u for u in used.get(role, ()) if wildcard_match(action, u, ignore_case=True))
            function = role.removesuffix("Role")
            if hits and function == "GuardrailStateMachine":
                why = (
                    "`GuardrailStateMachine-lambda:InvokeFunction:*` (each function, real Invoke)"
                    if action.startswith("lambda")
                    else "`test_state_machine_role_publishes_to_the_encrypted_topic` (NotifyFallback)"
                )
            elif hits:
                why = ", ".join(f"`{function.removesuffix('Function')}-{h}`" for h in hits)
                if action.startswith(("sagemaker:", "iam:PassRole")):
                    why += " (evaluator, as the emulator asks)"
            else:
                why = NOT_EXERCISED.get((role, action)) or NOT_EXERCISED.get(("*", action)) or NOT_EXERCISED.get((role, "*"), "")
            rows.append(f"| {role} | `{action}` | {why} |")
    return "\n".join(rows)


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    print(markdown_table())
