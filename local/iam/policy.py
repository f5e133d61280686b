"""IAM policy evaluation with AWS semantics, for identity-based policies (no moto imports here).

Evaluation (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html),
restricted to what a role's own policies decide:
- a request is allowed only if some statement allows it and no statement denies it (explicit Deny wins);
- a statement applies when its Action (or NotAction) matches the action, its Resource (or NotResource)
  matches the resource and every Condition block holds;
- Action/NotAction match case-insensitively with `*` and `?`; Resource/NotResource case-sensitively;
- Condition: the operators below, `...IfExists`, `ForAnyValue:` / `ForAllValues:`, `Null`; keys are
  case-insensitive; several values of one key are ORed; several keys and operators are ANDed.
"""

from __future__ import annotations

import json
import re
from enum import Enum
from functools import lru_cache
from typing import Any


class Decision(Enum):
    ALLOW = "allow"
    DENY = "deny"  # explicit deny
    NEUTRAL = "neutral"  # not mentioned: implicit deny


@lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _wildcard(pattern, ignore_case).match(value) is not None


def arn_like(pattern: str, arn: str) -> bool:
    """ArnLike: each of the six colon-delimited parts matches on its own (`*` does not cross a part)."""
    p_parts, a_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(p_parts) != 6 or len(a_parts) != 6:
        return False
    return all(wildcard_match(p, a) for p, a in zip(p_parts, a_parts, strict=True))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _bool(value: str) -> str:
    return str(value).lower()


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


_OPERATORS: dict[str, Any] = {
    "StringEquals": lambda want, have: want == have,
    "StringNotEquals": lambda want, have: want != have,
    "StringEqualsIgnoreCase": lambda want, have: want.lower() == have.lower(),
    "StringNotEqualsIgnoreCase": lambda want, have: want.lower() != have.lower(),
    "StringLike": lambda want, have: wildcard_match(want, have),
    "StringNotLike": lambda want, have: not wildcard_match(want, have),
    "ArnEquals": lambda want, have: want == have,
    "ArnNotEquals": lambda want, have: want != have,
    "ArnLike": lambda want, have: arn_like(want, have),
    "ArnNotLike": lambda want, have: not arn_like(want, have),
    "Bool": lambda want, have: _bool(want) == _bool(have),
    "NumericEquals": lambda want, have: _num(have) is not None and _num(have) == _num(want),
    "NumericNotEquals": lambda want, have: _num(have) is not None and _num(have) != _num(want),
    "NumericLessThan": lambda want, have: _num(have) is not None and _num(have) < _num(want),
    "NumericLessThanEquals": lambda want, have: _num(have) is not None and _num(have) <= _num(want),
    "NumericGreaterThan": lambda want, have: _num(have) is not None and _num(have) > _num(want),
    "NumericGreaterThanEquals": lambda want, have: _num(have) is not None and _num(have) >= _num(want),
}
# For the negated operators a request matches only if it matches *none* of the values.
_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike", "NumericNotEquals"}


class UnsupportedCondition(ValueError):
    pass


def _condition_holds(operator: str, key: str, wanted: Any, context: dict[str, list[str]]) -> bool:
    set_op = None
    if ":" in operator and operator.split(":", 1)[0] in ("ForAnyValue", "ForAllValues"):
        set_op, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    if if_exists:
        operator = operator[: -len("IfExists")]
    have = context.get(key.lower())
    wanted_values = [str(w) if not isinstance(w, bool) else str(w).lower() for w in _as_list(wanted)]
    if operator == "Null":
        # Null: true -> the key must be absent; false -> present
        return (have is None) == (_bool(wanted_values[0]) == "true")
    if operator not in _OPERATORS:
        raise UnsupportedCondition(f"condition operator {operator!r} is not supported by the local IAM evaluator")
    if have is None:
        # a missing key: ...IfExists, a negated operator and ForAllValues (empty set) are true; others false
        return if_exists or operator in _NEGATED or set_op == "ForAllValues"
    test = _OPERATORS[operator]

    def one(value: str) -> bool:
        if operator in _NEGATED:
            return all(test(w, value) for w in wanted_values)
        return any(test(w, value) for w in wanted_values)

    if set_op == "ForAllValues":
        return all(one(v) for v in have)
    return any(one(v) for v in have)


def conditions_hold(conditions: dict[str, Any] | None, context: dict[str, list[str]]) -> bool:
    for operator, block in (conditions or {}).items():
        for key, wanted in block.items():
            if not _condition_holds(operator, key, wanted, context):
                return False
    return True


def statement_decision(statement: dict[str, Any], action: str, resource: str, context: dict[str, list[str]]) -> Decision:
    if "NotAction" in statement:
        if any(wildcard_match(p, action, ignore_case=True) for p in _as_list(statement["NotAction"])):
            return Decision.NEUTRAL
    elif not any(wildcard_match(p, action, ignore_case=True) for p in _as_list(statement.get("Action", []))):
        return Decision.NEUTRAL
    if "NotResource" in statement:
        if any(wildcard_match(p, resource) for p in _as_list(statement["NotResource"])):
            return Decision.NEUTRAL
    elif not any(wildcard_match(p, resource) for p in _as_list(statement.get("Resource", []))):
        return Decision.NEUTRAL
    if not conditions_hold(statement.get("Condition"), context):
        return Decision.NEUTRAL
    return Decision.DENY if statement.get("Effect") == "Deny" else Decision.ALLOW


@lru_cache(maxsize=1024)
def parse_document(document: str) -> tuple[dict[str, Any], ...]:
    doc = json.loads(document)
    while isinstance(doc, str):  # JSON-encoded twice
        doc = json.loads(doc)
    return tuple(_as_list(doc.get("Statement", [])))


def evaluate(documents: list[str | dict[str, Any]], action: str, resource: str, context: dict[str, list[str]]) -> Decision:
    """The combined decision of identity policy documents for one action on one resource."""
    allowed = False
    for document in documents:
        statements = parse_document(document) if isinstance(document, str) else _as_list(document.get("Statement", []))
        for statement in statements:
            decision = statement_decision(statement, action, resource, context)
            if decision is Decision.DENY:
                return Decision.DENY
            allowed = allowed or decision is Decision.ALLOW
    return Decision.ALLOW if allowed else Decision.NEUTRAL
