"""Synthetic CloudWatch periods for two arms, as the deployed verdict reads them (numpy; for bench/ and tests).

One call draws a whole test: per period (60 s by default) each arm's requests (SampleCount), 5XX errors (Sum),
ModelLatency Sum / SampleCount, and the count above a latency threshold (what `TC(threshold:)` returns).

Traffic shapes:
- mirrored (a shadow): production gets Poisson(rate x period) requests; the shadow gets a Binomial(sampling)
  subset of THE SAME requests, whose latencies correlate with production's (`rho` on the log scale);
- split (a canary or linear step): the requests go to the new fleet with probability `share(t)`.
Effects: a multiplicative latency factor on the shadow, a tail (a share of the shadow's requests `tail_mult`
slower), a shadow error rate, and a drift common to both arms (`drift(t)` -> (latency factor, error factor)).

Per-request draws are exact; above `exact_limit` requests per period and arm, period sums use the normal
(CLT) approximation with moments measured on 200,000 draws, and exceedances Binomial counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from functions.stats.periods import Period


@dataclass
class Scenario:
    minutes: int = 60
    period: int = 60
    rate: float = 10.0  # production (mirrored) or total (split) requests per second
    mirrored: bool = True
    sampling: float = 1.0  # mirrored: share of production's requests copied to the shadow
    share: Callable[[float], float] | float = 0.25  # split: the new fleet's share at time t (minutes)
    error_a: float = 0.005
    error_b: float | None = None  # None = error_a
    mu: float = math.log(20_000)  # log µs
    sigma: float = 0.5
    rho: float = 0.5  # mirrored: correlation of a request's log-latency in the two arms
    scale_b: float = 1.0  # shadow latency factor (every request)
    tail_frac: float = 0.0  # share of the shadow's requests that are tail_mult slower
    tail_mult: float = 1.0
    drift: Callable[[float], tuple[float, float]] | None = None  # t -> (latency factor, error factor)
    threshold: float | None = None  # tail threshold (µs); default production's p99
    exact_limit: int = 400
    _moments: dict = field(default_factory=dict, repr=False)

    def tail_threshold(self) -> float:
        return self.threshold or math.exp(self.mu + self.sigma * 2.3263478740408408)


def _draw_pairs(sc: Scenario, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n requests: production's latency and the shadow's latency for the same request (before drift)."""
    z = rng.standard_normal(n)
    la = np.exp(sc.mu + sc.sigma * z)
    if sc.mirrored:
        zb = math.sqrt(sc.rho) * z + math.sqrt(1 - sc.rho) * rng.standard_normal(n)
    else:
        zb = rng.standard_normal(n)
    lb = np.exp(sc.mu + sc.sigma * zb) * sc.scale_b
    if sc.tail_frac > 0:
        lb = np.where(rng.random(n) < sc.tail_frac, lb * sc.tail_mult, lb)
    return la, lb


def _moments(sc: Scenario) -> dict:
    if not sc._moments:
        rng = np.random.default_rng(12345)
        la, lb = _draw_pairs(sc, rng, 200_000)
        thr = sc.tail_threshold()
        sc._moments.update(
            ma=la.mean(), va=la.var(), mb=lb.mean(), vb=lb.var(), cab=np.cov(la, lb)[0, 1],
            qa=(la > thr).mean(), qb=(lb > thr).mean(),
        )
    return sc._moments


def simulate(sc: Scenario, rng: np.random.Generator) -> tuple[list[Period], list[Period]]:
    """(production periods, shadow periods) for one simulated test."""
    thr = sc.tail_threshold()
    err_b = sc.error_a if sc.error_b is None else sc.error_b
    steps = sc.minutes * 60 // sc.period
    a_out: list[Period] = []
    b_out: list[Period] = []
    for k in range(steps):
        t_min = k * sc.period / 60
        lat_f, err_f = sc.drift(t_min) if sc.drift else (1.0, 1.0)
        n = int(rng.poisson(sc.rate * sc.period))
        if sc.mirrored:
            n_a = n
            n_b = int(rng.binomial(n, sc.sampling)) if sc.sampling < 1 else n
        else:
            s = sc.share(t_min) if callable(sc.share) else sc.share
            n_b = int(rng.binomial(n, s))
            n_a = n - n_b
        e_a = int(rng.binomial(n_a, min(1.0, sc.error_a * err_f)))
        e_b = int(rng.binomial(n_b, min(1.0, err_b * err_f)))
        if max(n_a, n_b) <= sc.exact_limit:
            la, lb = _draw_pairs(sc, rng, max(n_a, n_b, 1))
            if not sc.mirrored:  # independent requests: separate draws are already independent
                pass
            la, lb = la[:n_a] * lat_f, lb[:n_b] * lat_f
            s_a, s_b = float(la.sum()), float(lb.sum())
            x_a, x_b = float((la > thr).sum()), float((lb > thr).sum())
        else:
            m = _moments(sc)
            # mirrored: the shadow's n_b requests are among production's n_a, so the sums covary by n_b·cov
            cov = m["cab"] * n_b if sc.mirrored else 0.0
            c = np.array([[m["va"] * n_a, cov], [cov, m["vb"] * n_b]])
            s_a, s_b = rng.multivariate_normal([m["ma"] * n_a, m["mb"] * n_b], c)
            s_a, s_b = max(float(s_a), 1.0) * lat_f, max(float(s_b), 1.0) * lat_f
            q_drift_a = m["qa"] if lat_f == 1.0 else _drifted_share(sc, lat_f, thr, False)
            q_drift_b = m["qb"] if lat_f == 1.0 else _drifted_share(sc, lat_f, thr, True)
            x_a, x_b = float(rng.binomial(n_a, q_drift_a)), float(rng.binomial(n_b, q_drift_b))
        start = float(k * sc.period)
        a_out.append(Period(start, n_a, e_a, s_a, n_a, x_a))
        b_out.append(Period(start, n_b, e_b, s_b, n_b, x_b))
    return a_out, b_out


def _drifted_share(sc: Scenario, lat_f: float, thr: float, shadow: bool) -> float:
    key = ("q", round(lat_f, 4), shadow)
    if key not in sc._moments:
        la, lb = _draw_pairs(sc, np.random.default_rng(7), 100_000)
        sc._moments[key] = float(((lb if shadow else la) * lat_f > thr).mean())
    return sc._moments[key]


def cumulative(periods: list[Period], upto: int) -> list[Period]:
    """The periods a poll after `upto` periods sees (CloudWatch returns only periods with data)."""
    return [p for p in periods[:upto] if p.requests > 0]
