"""Is the lift real? A two-proportion z-test and a confidence interval for the difference of two rates.

Messaged members against the holdout: lift = p1 - p2. The interval uses the unpooled standard error
(Wald), the test the pooled one (under "no difference" both groups share one rate), as textbooks and
A/B tools do. No SciPy: the normal distribution is `math.erf`, and its quantile is found by bisection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def normal_quantile(p: float) -> float:
    """z with normal_cdf(z) == p (bisection to 1e-12; 0 < p < 1)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability {p} is not strictly between 0 and 1")
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if normal_cdf(mid) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2


@dataclass(frozen=True)
class Lift:
    treated_rate: float
    control_rate: float
    lift: float
    """treated_rate - control_rate (a difference of proportions: +0.03 is 3 points)."""
    low: float
    high: float
    """The confidence interval of the lift."""
    z: float | None
    p_value: float | None
    """Two-sided, from the pooled z-test; None when both groups have the same all-or-nothing rate."""
    confidence: float

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < 1 - self.confidence

    @property
    def verdict(self) -> str:
        if self.p_value is None or not self.significant:
            return "not significant"
        return "significant lift" if self.lift > 0 else "significant harm"


def lift(treated_converted: int, treated: int, control_converted: int, control: int,
         confidence: float = 0.95) -> Lift | None:
    """The lift of treated over control with its interval and test; None when a group is empty."""
    if treated <= 0 or control <= 0:
        return None
    for name, x, n in (("treated", treated_converted, treated), ("control", control_converted, control)):
        if not 0 <= x <= n:
            raise ValueError(f"{name}: {x} converted out of {n} is not a proportion")
    p1, p2 = treated_converted / treated, control_converted / control
    diff = p1 - p2
    z_crit = normal_quantile(1 - (1 - confidence) / 2)
    se = math.sqrt(p1 * (1 - p1) / treated + p2 * (1 - p2) / control)
    low, high = diff - z_crit * se, diff + z_crit * se
    pooled = (treated_converted + control_converted) / (treated + control)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / treated + 1 / control))
    if se0 == 0:
        return Lift(p1, p2, diff, low, high, None, None, confidence)
    z = diff / se0
    return Lift(p1, p2, diff, low, high, z, 2 * (1 - normal_cdf(abs(z))), confidence)
