"""The AWS API calls each Lambda handler can make, read statically from functions/ (aws-audit §2 as code).

A function-level call graph over the `functions` package (ast, no import): from every definition and module-level
statement of a handler module, follow calls to functions of other `functions.*` modules (imported names and
`module.attr` calls), and collect the boto3 operations reached:
  - `client().<op>(`, `<adapter>.client().<op>(`, `_client("<service>"...).<op>(` (service from the adapter
    module or the literal);
  - `.get_paginator("<op>")`;
  - `_describe("<op>", ...)` (the SageMaker adapter's getattr dispatch).
Each operation becomes its IAM action through botocore's service model, plus the extra actions IAM checks for
some calls (DEPENDENT).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import botocore.session

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "functions"
ADAPTER_SERVICES = {
    "functions.adapters.sagemaker": "sagemaker",
    "functions.adapters.cloudwatch": "cloudwatch",
    "functions.adapters.s3": "s3",
    "functions.adapters.dynamodb": "dynamodb",
    "functions.adapters.sns": "sns",
    "functions.adapters.stepfunctions": "stepfunctions",
}
# Operations whose IAM action has another name (service authorization reference).
RENAMED = {
    "s3:HeadObject": ["s3:GetObject"],
    "s3:ListObjectsV2": ["s3:ListBucket"],
    "s3:CopyObject": ["s3:GetObject", "s3:PutObject"],  # GetObject(Version) on the source, PutObject on the copy
}
# Actions IAM also evaluates for a call (the "dependent actions" column, or what the service does with the
# caller's identity), keyed by the operation's IAM action.
DEPENDENT = {
    "sagemaker:CreateModel": ["iam:PassRole"],
    "sagemaker:CreateInferenceExperiment": ["iam:PassRole"],
    # A GetObject with VersionId (parse_upload reads the exact uploaded version) is authorized as GetObjectVersion;
    # a missing key answers 404 (ResourceNotFound, which the code relies on) only with s3:ListBucket, else 403.
    "s3:GetObject": ["s3:GetObjectVersion", "s3:ListBucket"],
    # The outcome topic is KMS-encrypted: Publish needs the key.
    "sns:Publish": ["kms:GenerateDataKey*", "kms:Decrypt"],
}


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


class _Module:
    def __init__(self, path: Path) -> None:
        self.name = _module_name(path)
        self.tree = ast.parse(path.read_text())
        self.imports: dict[str, str] = {}  # local name -> "module" or "module.attr"
        self.defs: dict[str, ast.AST] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("functions"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    self.imports[alias.asname or alias.name] = full
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("functions"):
                        self.imports[alias.asname or alias.name] = alias.name
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.defs.setdefault(node.name, node)


@cache
def _modules() -> dict[str, _Module]:
    return {m.name: m for m in (_Module(p) for p in PACKAGE.rglob("*.py"))}


def _service_of(module: _Module, receiver: ast.AST) -> str | None:
    """The AWS service of `<receiver>.<op>(...)` when the receiver is a boto3 client expression."""
    if not isinstance(receiver, ast.Call):
        return None
    func = receiver.func
    if isinstance(func, ast.Name) and func.id == "client":
        return ADAPTER_SERVICES.get(module.name)
    if isinstance(func, ast.Name) and func.id == "_client" and receiver.args:
        arg = receiver.args[0]
        return arg.value if isinstance(arg, ast.Constant) else None
    if isinstance(func, ast.Attribute) and func.attr == "client" and isinstance(func.value, ast.Name):
        return ADAPTER_SERVICES.get(module.imports.get(func.value.id, ""))
    return None


def _scan(module: _Module, node: ast.AST) -> tuple[set[tuple[str, str]], set[str]]:
    """(boto operations, called functions 'module.name') in one function body or module statement."""
    ops: set[tuple[str, str]] = set()
    calls: set[str] = set()
    client_vars: dict[str, str] = {}  # `cw = _client("cloudwatch")` / `cw = client()`
    for sub in ast.walk(node):
        if isinstance(sub, ast.Assign) and len(sub.targets) == 1 and isinstance(sub.targets[0], ast.Name):
            value = sub.value.body if isinstance(sub.value, ast.IfExp) else sub.value
            service = _service_of(module, value)
            if service:
                client_vars[sub.targets[0].id] = service
        if not isinstance(sub, ast.Call):
            continue
        func = sub.func
        if isinstance(func, ast.Name):
            if func.id == "_describe" and sub.args and isinstance(sub.args[0], ast.Constant):
                ops.add((ADAPTER_SERVICES[module.name], sub.args[0].value))
            elif func.id in module.defs:
                calls.add(f"{module.name}.{func.id}")
            elif func.id in module.imports:
                calls.add(module.imports[func.id])
        elif isinstance(func, ast.Attribute):
            receiver = func.value
            service = _service_of(module, receiver)
            if service is None and isinstance(receiver, ast.Name):
                service = client_vars.get(receiver.id)
            if func.attr == "get_paginator" and sub.args and isinstance(sub.args[0], ast.Constant):
                service = service or _service_of(module, receiver)
                if service:
                    ops.add((service, sub.args[0].value))
            elif service and func.attr != "get_paginator":
                ops.add((service, func.attr))
            elif isinstance(receiver, ast.Name) and receiver.id in module.imports:
                calls.add(f"{module.imports[receiver.id]}.{func.attr}")
    return ops, calls


def operations(handler_module: str) -> set[tuple[str, str]]:
    """(service, snake_case operation) reachable from a handler module."""
    modules = _modules()
    root = modules[handler_module]
    found, seen = set(), set()
    todo = [root.tree]
    while todo:
        node = todo.pop()
        ops, calls = _scan(root if node is root.tree else node._module, node)  # type: ignore[attr-defined]
        found |= ops
        for target in calls:
            mod_name, _, func_name = target.rpartition(".")
            module = modules.get(mod_name)
            if module is None or target in seen or func_name not in module.defs:
                continue
            seen.add(target)
            fn = module.defs[func_name]
            fn._module = module  # type: ignore[attr-defined]
            todo.append(fn)
    return found


@cache
def _operation_names(service: str) -> dict[str, str]:
    model = botocore.session.get_session().get_service_model(service)
    return {botocore.xform_name(op): op for op in model.operation_names}


def iam_actions(handler_module: str) -> set[str]:
    """IAM actions the handler's code needs (operations renamed to actions, plus dependent actions)."""
    actions: set[str] = set()
    for service, op in operations(handler_module):
        names = _operation_names(service)
        assert op in names, f"{handler_module}: {service}.{op} is not a {service} operation"
        prefix = {"cloudwatch": "cloudwatch", "stepfunctions": "states"}.get(service, service)
        action = f"{prefix}:{names[op]}"
        for renamed in RENAMED.get(action, [action]):
            actions.add(renamed)
            actions.update(DEPENDENT.get(renamed, []))
    return actions
