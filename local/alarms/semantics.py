"""CloudWatch alarm semantics, pure functions: period statistics, the evaluation range, M of N,
TreatMissingData, and CloudWatch's reason texts.

Missing data follows "How alarm state is evaluated when data is missing" (CloudWatch user guide):
the evaluator looks at an *evaluation range* a little longer than EvaluationPeriods (N + 2 periods,
the guide's example retrieves 5 datapoints for N = 3);
- if at least N real datapoints exist in the range, the most recent N real ones are evaluated and
  TreatMissingData is not used;
- if fewer than N exist, `breaching` / `notBreaching` fill the gap with as few synthetic datapoints
  as needed to make N; `missing` / `ignore` decide on the real datapoints alone: ALARM if at least M
  breach, OK if any does not breach, otherwise INSUFFICIENT_DATA (`missing`) or no change (`ignore`);
- if the range holds no datapoint at all: `missing` -> INSUFFICIENT_DATA, `ignore` -> no change,
  `breaching` -> ALARM, `notBreaching` -> OK.
This reproduces every row of the guide's two tables except one ("X - - - -", 3 of 3, `missing`),
which the guide reports as ALARM without a rule that would also give its "- - - - X" row; here
both give INSUFFICIENT_DATA.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.alarms.definition import AlarmDefinition

EXTRA_RANGE_PERIODS = 2

_PHRASES = {
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "GreaterThanThreshold": "greater than",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}


@dataclass
class PeriodSamples:
    """What was published in one period: raw values and statistic sets (SampleCount, Sum, Min, Max)."""

    values: list[float] = field(default_factory=list)
    sets: list[tuple[float, float, float, float]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.values or self.sets)


@dataclass(frozen=True)
class Datapoint:
    start: float  # epoch seconds of the period's start
    value: float
    sample_count: float


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: an observed value, the smallest with at least p % at or below it."""
    ordered = sorted(values)
    rank = max(math.ceil(p / 100.0 * len(ordered)), 1)
    return ordered[rank - 1]


def percentile_values(samples: PeriodSamples) -> list[tuple[float, float]] | None:
    """(value, weight) pairs, ascending, that percentile-type statistics are computed from, or None when
    CloudWatch cannot compute them for this period. GetMetricStatistics API reference: "CloudWatch needs raw
    data points to calculate percentile statistics. If you publish data using a statistic set instead, you
    can only retrieve percentile statistics for this data if ... The SampleCount value of the statistic set
    is 1 [or] The Min and the Max values of the statistic set are equal." and "Percentile statistics are
    not available for metrics when any of the metric values are negative numbers."
    """
    pairs = [(v, 1.0) for v in samples.values]
    for count, _total, low, high in samples.sets:
        if count <= 0:
            continue
        if count != 1 and low != high:
            return None
        pairs.append((low, count))
    if not pairs or any(v < 0 for v, _ in pairs):
        return None
    pairs.sort(key=lambda vw: vw[0])
    return pairs


_EXTENDED = re.compile(r"^(p|tm|wm|tc|ts)(\d{1,2}(?:\.\d{1,10})?|100(?:\.0+)?)$")
_BOUNDED = re.compile(r"^(TM|WM|TC|TS|PR)\(([^:()]*):([^:()]*)\)$")


@dataclass(frozen=True)
class ExtendedStatistic:
    """pNN, tmNN/wmNN/tcNN/tsNN (upper percentile bound), TM/WM/TC/TS/PR(lo:hi) and IQM, as in
    "CloudWatch statistics definitions" (user guide). A bound is (number, is_percent) or None."""

    kind: str  # p, TM, WM, TC, TS, PR
    lo: tuple[float, bool] | None = None
    hi: tuple[float, bool] | None = None


def _bound(text: str, allow_percent: bool) -> tuple[float, bool] | None:
    text = text.strip()
    if not text:
        return None
    is_percent = text.endswith("%")
    if is_percent and not allow_percent:
        raise ValueError("percent bound")
    number = float(text.rstrip("%"))
    if is_percent and not 0 <= number <= 100:
        raise ValueError("percent out of range")
    return number, is_percent


def parse_extended_statistic(name: str) -> ExtendedStatistic | None:
    """The statistic named `name`, or None when CloudWatch would not accept it as an extended statistic."""
    if name == "IQM":
        return ExtendedStatistic("TM", (25.0, True), (75.0, True))
    if match := _EXTENDED.match(name):
        kind, number = match.group(1), float(match.group(2))
        if kind == "p":
            return ExtendedStatistic("p", None, (number, True))
        return ExtendedStatistic(kind.upper(), None, (number, True))
    if match := _BOUNDED.match(name):
        kind = match.group(1)
        try:
            lo, hi = _bound(match.group(2), kind != "PR"), _bound(match.group(3), kind != "PR")
        except ValueError:
            return None
        if lo is None and hi is None:
            return None
        return ExtendedStatistic(kind, lo, hi)
    return None


def weighted_percentile(pairs: Sequence[tuple[float, float]], p: float) -> float:
    """Nearest rank over (value, weight) pairs sorted by value; `percentile` for unit weights."""
    total = sum(w for _, w in pairs)
    rank = max(math.ceil(p / 100.0 * total), 1)
    seen = 0.0
    for value, weight in pairs:
        seen += weight
        if seen >= rank:
            return value
    return pairs[-1][0]


def extended_value(samples: PeriodSamples, stat: ExtendedStatistic) -> float | None:
    """The statistic over one period, or None when it is not available (see `percentile_values`)."""
    pairs = percentile_values(samples)
    if pairs is None:
        return None
    if stat.kind == "p":
        return weighted_percentile(pairs, stat.hi[0])  # type: ignore[index]
    total = sum(w for _, w in pairs)
    if stat.kind == "PR":  # lower bound exclusive, upper inclusive (absolute values only)
        lo = stat.lo[0] if stat.lo else -math.inf
        hi = stat.hi[0] if stat.hi else math.inf
        return 100.0 * sum(w for v, w in pairs if lo < v <= hi) / total
    # rank window [a, b) in the expanded order for percent bounds, value window (lo, hi] for absolute ones
    a = math.ceil(stat.lo[0] / 100.0 * total) if stat.lo and stat.lo[1] else 0
    b = math.ceil(stat.hi[0] / 100.0 * total) if stat.hi and stat.hi[1] else total
    lo_v = stat.lo[0] if stat.lo and not stat.lo[1] else -math.inf
    hi_v = stat.hi[0] if stat.hi and not stat.hi[1] else math.inf
    kept: list[tuple[float, float]] = []
    clipped: list[tuple[float, float]] = []  # WM: values outside the window take the edge values
    start = 0.0
    for value, weight in pairs:
        inside = max(0.0, min(start + weight, b) - max(start, a))
        if inside and lo_v < value <= hi_v:
            kept.append((value, inside))
        start += weight
    if not kept:
        return None
    if stat.kind == "WM":
        low_edge, high_edge = kept[0][0], kept[-1][0]
        clipped = [(min(max(v, low_edge), high_edge), w) for v, w in pairs]
        return sum(v * w for v, w in clipped) / total
    count = sum(w for _, w in kept)
    value_sum = sum(v * w for v, w in kept)
    return {"TM": value_sum / count, "TC": count, "TS": value_sum}[stat.kind]


def basic_value(samples: PeriodSamples, stat: str) -> float | None:
    """SampleCount, Sum, Average, Minimum or Maximum over one period; None without data."""
    count = len(samples.values) + sum(s[0] for s in samples.sets)
    if count <= 0:
        return None
    if stat == "SampleCount":
        return count
    if stat in ("Sum", "Average"):
        total = sum(samples.values) + sum(s[1] for s in samples.sets)
        return total if stat == "Sum" else total / count
    if stat == "Minimum":
        return min([*samples.values, *(s[2] for s in samples.sets)])
    if stat == "Maximum":
        return max([*samples.values, *(s[3] for s in samples.sets)])
    raise ValueError(f"unknown statistic {stat!r}")


def period_statistic(samples: PeriodSamples, alarm: AlarmDefinition) -> tuple[float, float] | None:
    """(value, sample count) of one period, or None when it has no usable data (a missing datapoint)."""
    extended = alarm.extended
    if extended is not None:  # percentile-type statistics need raw values (or single-valued statistic sets)
        pairs = percentile_values(samples)
        value = extended_value(samples, extended) if pairs is not None else None
        if value is None:
            return None
        return value, sum(w for _, w in pairs)  # type: ignore[union-attr]
    value = basic_value(samples, alarm.statistic or "")
    if value is None:
        return None
    return value, basic_value(samples, "SampleCount")  # type: ignore[return-value]


def period_starts(now: float, period: int, n: int) -> list[float]:
    """Starts of the last n *complete* periods before now, oldest first, aligned to period boundaries."""
    current = math.floor(now / period) * period
    return [current - k * period for k in range(n, 0, -1)]


def breaches(alarm: AlarmDefinition, value: float) -> bool:
    threshold = alarm.threshold if alarm.threshold is not None else math.nan
    return {
        "GreaterThanOrEqualToThreshold": value >= threshold,
        "GreaterThanThreshold": value > threshold,
        "LessThanThreshold": value < threshold,
        "LessThanOrEqualToThreshold": value <= threshold,
    }[alarm.comparison_operator]


def low_sample_count(alarm: AlarmDefinition, dp: Datapoint) -> bool:
    """CloudWatch: a percentile p is 'low sample' below 10/(1-p) samples (10/p for p < 0.5)."""
    p = alarm.percentile
    if p is None or not (0 < p < 100):
        return False
    f = p / 100.0
    needed = 10.0 / (1.0 - f) if f >= 0.5 else 10.0 / f
    return dp.sample_count < needed


@dataclass(frozen=True)
class Outcome:
    state: str | None  # None: keep the current state (ignore)
    reason: str
    reason_data: dict[str, Any]


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%d/%m/%y %H:%M:%S")


def _iso(ts: float) -> str:
    return (
        datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}+0000"
    )


def _num(x: float) -> str:
    return repr(float(x))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _listing(dps: Sequence[Datapoint]) -> str:
    return (
        "["
        + ", ".join(f"{_num(d.value)} ({_stamp(d.start)})" for d in sorted(dps, key=lambda d: -d.start))
        + "]"
    )


def decide(
    alarm: AlarmDefinition, range_points: Sequence[tuple[float, Datapoint | None]], current: str, now: float
) -> Outcome:
    """The state the alarm should be in, given the evaluation range (oldest first)."""
    n, m, treat = alarm.evaluation_periods, alarm.m, alarm.missing_treatment
    real = [dp for _, dp in range_points if dp is not None]
    phrase = _PHRASES[alarm.comparison_operator]
    threshold = _num(alarm.threshold or 0.0)
    data: dict[str, Any] = {
        "version": "1.0",
        "queryDate": _iso(now),
        "startDate": _iso(range_points[0][0]) if range_points else _iso(now),
        ("extendedStatistic" if alarm.extended_statistic else "statistic"): alarm.stat_name,
        "period": alarm.period,
        "recentDatapoints": [dp.value for dp in real[-n:]],
        "threshold": alarm.threshold,
    }
    if alarm.unit:
        data["unit"] = alarm.unit

    if alarm.evaluate_low_sample_count_percentile == "ignore" and any(
        low_sample_count(alarm, dp) for dp in real[-n:]
    ):
        return Outcome(None, "Low sample count for the percentile: alarm state kept.", data)

    if not real:
        data["evaluatedDatapoints"] = [{"timestamp": _iso(s)} for s, _ in range_points[-n:]]
        periods = _plural(n, "period")
        if treat == "breaching":
            reason = f"Threshold Crossed: no datapoints were received for {periods} and {_plural(n, 'missing datapoint')} {'was' if n == 1 else 'were'} treated as [Breaching]."
            return Outcome("ALARM", reason, data)
        if treat == "notBreaching":
            reason = f"Threshold Crossed: no datapoints were received for {periods} and {_plural(n, 'missing datapoint')} {'was' if n == 1 else 'were'} treated as [NonBreaching]."
            return Outcome("OK", reason, data)
        if treat == "ignore":
            return Outcome(
                None, "No datapoints in the evaluation range: state kept (TreatMissingData ignore).", data
            )
        reason = f"Insufficient Data: {_plural(len(range_points), 'datapoint')} {'was' if len(range_points) == 1 else 'were'} unknown."
        return Outcome("INSUFFICIENT_DATA", reason, data)

    evaluated = real[-n:]
    fills = 0
    if len(real) < n and treat in ("breaching", "notBreaching"):
        fills = n - len(real)
    data["evaluatedDatapoints"] = [
        {"timestamp": _iso(dp.start), "sampleCount": dp.sample_count, "value": dp.value}
        for dp in sorted(evaluated, key=lambda d: -d.start)
    ]
    breaching = [dp for dp in evaluated if breaches(alarm, dp.value)]
    good = [dp for dp in evaluated if not breaches(alarm, dp.value)]
    n_breach = len(breaching) + (fills if treat == "breaching" else 0)
    n_good = len(good) + (fills if treat == "notBreaching" else 0)
    filled = ""
    if fills:
        label = "Breaching" if treat == "breaching" else "NonBreaching"
        filled = f" and {_plural(fills, 'missing datapoint')} {'was' if fills == 1 else 'were'} treated as [{label}]"

    total = len(evaluated) + fills
    if n_breach >= m:
        state = "ALARM"
        listed, verb = breaching, phrase
        minimum = m
    elif good or n_good:
        state = "OK"
        listed, verb = good, f"not {phrase}"
        minimum = n - m + 1
    else:  # only breaching real datapoints, fewer than M, and missing/ignore: cannot decide
        if treat == "ignore":
            return Outcome(None, "Too few datapoints to decide: state kept (TreatMissingData ignore).", data)
        unknown = n - len(evaluated)
        reason = (
            f"Insufficient Data: {_plural(unknown, 'datapoint')} {'was' if unknown == 1 else 'were'} unknown."
        )
        return Outcome("INSUFFICIENT_DATA", reason, data)
    if state == current:
        return Outcome(state, "", data)
    counted = len(listed)  # real datapoints; filled ones are named after them
    was = "was" if counted == 1 else "were"
    crossed = (
        f"{counted} out of the last {total} datapoints {_listing(listed)} {was} {verb} the threshold ({threshold}){filled}"
        if listed
        else f"{filled.removeprefix(' and ')} (threshold {threshold})"
    )
    reason = f"Threshold Crossed: {crossed} (minimum {_plural(minimum, 'datapoint')} for {current} -> {state} transition)."
    return Outcome(state, reason, data)
