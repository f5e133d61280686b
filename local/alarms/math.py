"""Alarms on metric math (PutMetricAlarm `Metrics`), evaluated as CloudWatch does.

What AWS documents (PutMetricAlarm and MetricDataQuery API references, "Create a CloudWatch alarm based on a metric
math expression" and "Metric math syntax and functions" in the CloudWatch user guide):
- `Metrics` replaces Namespace/MetricName/Dimensions/Period/Unit/Statistic/ExtendedStatistic; it holds up to 10
  `MetricStat` queries and up to 10 `Expression` queries, and exactly one item has `ReturnData: true`: "The result
  of this expression is the value the alarm watches". Ids start with a lowercase letter (letters, digits, `_`).
- "Any expression used in a PutMetricAlarm operation must return a single time series."
- Each MetricStat is one metric at its Period and Stat; the series the expression sees hold one value per period.
- `FILL(m, value)` fills the missing values of a time series with `value`; `FILL(m, REPEAT)` with the most recent
  real value before the gap (a gap at the start of the range, with nothing before it, stays missing).
- The alarm then evaluates the returned series with the usual M-of-N, TreatMissingData and threshold rules.

Supported here: numbers, query ids, `+ - * /`, unary minus, parentheses, `FILL(x, number|REPEAT)`, `ABS(x)`.
Anything else is reported as unsupported (the alarm is left alone, as for any alarm this evaluator cannot judge).
Where AWS leaves it unsaid, this module chooses, and says so:
- arithmetic between two time series gives a value only at timestamps where both have one (why FILL exists);
- a division by zero gives no value at that timestamp (CloudWatch drops non-finite values: no datapoint).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Series = dict[float, float]  # period start -> value (missing periods absent)
Value = float | Series

_ID = re.compile(r"^[a-z][A-Za-z0-9_]*$")
_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[-+*/(),]))"
)
FUNCTIONS = ("FILL", "ABS")


class MathError(ValueError):
    """The expression (or the Metrics array) is one this evaluator cannot evaluate."""


@dataclass(frozen=True)
class Query:
    id: str
    return_data: bool
    expression: str | None = None
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: tuple[tuple[str, str], ...] = ()
    period: int | None = None
    stat: str | None = None
    unit: str | None = None


def parse_queries(metrics: list[dict[str, Any]]) -> list[Query]:
    """The Metrics array as queries; MathError when it breaks PutMetricAlarm's rules."""
    queries: list[Query] = []
    for item in metrics:
        qid = item.get("Id", "")
        if not _ID.match(qid):
            raise MathError(f"query id {qid!r} must start with a lowercase letter")
        # PutMetricAlarm: ReturnData true for exactly one item (the API reference says to set it false for others)
        returned = bool(item.get("ReturnData", True))
        if "Expression" in item:
            queries.append(Query(qid, returned, expression=item["Expression"], period=item.get("Period")))
            continue
        stat = item.get("MetricStat")
        if not stat:
            raise MathError(f"query {qid} has neither MetricStat nor Expression")
        metric = stat["Metric"]
        queries.append(
            Query(
                qid,
                returned,
                namespace=metric.get("Namespace"),
                metric_name=metric.get("MetricName"),
                dimensions=tuple((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])),
                period=int(stat["Period"]),
                stat=stat["Stat"],
                unit=stat.get("Unit"),
            )
        )
    if len({q.id for q in queries}) != len(queries):
        raise MathError("query ids must be unique")
    if sum(q.return_data for q in queries) != 1:
        raise MathError("exactly one query must have ReturnData true")
    if sum(q.expression is None for q in queries) > 10 or sum(q.expression is not None for q in queries) > 10:
        raise MathError("at most 10 MetricStat and 10 Expression queries")
    for q in queries:
        if q.expression is not None:
            parse(q.expression)  # syntax and functions checked at definition time
    periods = {q.period for q in queries if q.expression is None} or {q.period for q in queries if q.period}
    if len(periods) != 1 or None in periods:
        raise MathError(
            f"the metrics of one alarm must share one period, got {sorted(p for p in periods if p)}"
        )
    return queries


def alarm_period(queries: list[Query]) -> int:
    metric_periods = [q.period for q in queries if q.expression is None]
    return int((metric_periods or [q.period for q in queries if q.period])[0])  # type: ignore[arg-type]


# ---- expressions --------------------------------------------------------------------------------------------
def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise MathError(f"cannot read {text[pos:]!r} in expression {text!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


Node = tuple[Any, ...]


def parse(text: str) -> Node:
    tokens = _tokens(text)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take(value: str | None = None) -> tuple[str, str]:
        nonlocal pos
        token = peek()
        if token is None or (value is not None and token[1] != value):
            raise MathError(f"expected {value or 'more'} in {text!r}")
        pos += 1
        return token

    def expr() -> Node:
        node = term()
        while (t := peek()) and t[1] in "+-" and t[0] == "op":
            take()
            node = ("bin", t[1], node, term())
        return node

    def term() -> Node:
        node = unary()
        while (t := peek()) and t[1] in "*/" and t[0] == "op":
            take()
            node = ("bin", t[1], node, unary())
        return node

    def unary() -> Node:
        if (t := peek()) and t == ("op", "-"):
            take()
            return ("neg", unary())
        return atom()

    def atom() -> Node:
        kind, value = take()
        if kind == "num":
            return ("num", float(value))
        if kind == "op" and value == "(":
            node = expr()
            take(")")
            return node
        if kind == "name":
            if (t := peek()) and t == ("op", "("):
                if value not in FUNCTIONS:
                    raise MathError(f"function {value} is not supported by the local evaluator")
                take("(")
                args = [expr()]
                while (t := peek()) and t == ("op", ","):
                    take()
                    args.append(expr())
                take(")")
                return ("call", value, args)
            if value == "REPEAT":
                return ("repeat",)
            if not _ID.match(value):
                raise MathError(f"{value!r} is not a query id (ids start with a lowercase letter)")
            return ("ref", value)
        raise MathError(f"unexpected {value!r} in {text!r}")

    node = expr()
    if pos != len(tokens):
        raise MathError(f"unexpected {tokens[pos][1]!r} in {text!r}")
    return node


def _binary(op: str) -> Callable[[float, float], float | None]:
    def apply(a: float, b: float) -> float | None:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        return a / b if b != 0 else None  # non-finite: no datapoint

    return apply


def _combine(op: str, left: Value, right: Value) -> Value:
    f = _binary(op)
    if isinstance(left, dict) and isinstance(right, dict):
        pairs = ((t, f(left[t], right[t])) for t in left if t in right)
    elif isinstance(left, dict):
        pairs = ((t, f(v, right)) for t, v in left.items())  # type: ignore[arg-type]
    elif isinstance(right, dict):
        pairs = ((t, f(left, v)) for t, v in right.items())
    else:
        value = f(left, right)
        if value is None:
            raise MathError("division by zero in a constant")
        return value
    return {t: v for t, v in pairs if v is not None and math.isfinite(v)}


def evaluate(node: Node, series: dict[str, Series], grid: list[float]) -> Value:
    """The node's value: a number or a series over `grid` (period starts, oldest first)."""
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "ref":
        if node[1] not in series:
            raise MathError(f"expression refers to unknown id {node[1]!r}")
        return series[node[1]]
    if kind == "neg":
        return _combine("*", evaluate(node[1], series, grid), -1.0)
    if kind == "bin":
        return _combine(node[1], evaluate(node[2], series, grid), evaluate(node[3], series, grid))
    if kind == "call":
        name, args = node[1], node[2]
        if name == "ABS":
            if len(args) != 1:
                raise MathError("ABS takes one argument")
            value = evaluate(args[0], series, grid)
            return {t: abs(v) for t, v in value.items()} if isinstance(value, dict) else abs(value)
        if len(args) != 2:
            raise MathError("FILL takes a time series and a value (a number or REPEAT)")
        target = evaluate(args[0], series, grid)
        if not isinstance(target, dict):
            raise MathError("FILL's first argument must be a time series")
        if args[1] == ("repeat",):
            filled: Series = {}
            last: float | None = None
            for t in grid:
                if t in target:
                    last = target[t]
                if last is not None:
                    filled[t] = target.get(t, last)
            return filled
        fill = evaluate(args[1], series, grid)
        if isinstance(fill, dict):
            raise MathError("FILL's value must be a number or REPEAT")
        return {t: target.get(t, fill) for t in grid}
    raise MathError("REPEAT is only a FILL argument")


def returned_series(queries: list[Query], series: dict[str, Series], grid: list[float]) -> Series:
    """The ReturnData query's series over `grid`; expressions may refer to metrics and to other expressions."""
    values: dict[str, Series] = dict(series)
    pending = [q for q in queries if q.expression is not None]
    for _ in range(len(pending) + 1):  # expressions in dependency order, whatever order they were listed in
        progressed = False
        for q in list(pending):
            try:
                value = evaluate(parse(q.expression or ""), values, grid)
            except MathError as exc:
                if "unknown id" in str(exc):
                    continue
                raise
            if not isinstance(value, dict):
                value = {t: value for t in grid}  # a constant expression is a flat series
            values[q.id] = value
            pending.remove(q)
            progressed = True
        if not progressed:
            break
    if pending:
        raise MathError(f"expression(s) {', '.join(q.id for q in pending)} refer to unknown or circular ids")
    returned = next(q for q in queries if q.return_data)
    return values[returned.id]
