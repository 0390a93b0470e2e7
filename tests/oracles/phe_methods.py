"""Independent pure-Python implementation of the public-health statistics used by
the indicators: the project's test oracle for indicator arithmetic.

It follows the methods of UKHSA's PHEindicatormethods R package (2.1.0) and the
Fingertips technical guidance, and is checked against that package's published
test vectors (tests/oracles/phe/, see tests/unit/test_phe_methods.py). The SQL
macros in dbt_project/macros/statistics/ are checked against the same vectors,
so this module and the macros are two independent implementations that agree.

Conventions (the same as PHEindicatormethods unless stated):

* ``confidence`` is 0.95 or 0.998 (95% and 99.8%); any level in (0, 1) works
  here, the SQL macros only accept those two.
* Two-sided limits: z = Phi^-1(confidence + (1 - confidence) / 2).
* A result that cannot be given is ``None`` (R's ``NA``).

Deliberate deviation: PHE's ``byars_lower(0)`` evaluates ``0 * (-Inf)^3`` and
returns NaN; here a count of 0 has a lower limit of 0, the exact Poisson
lower limit (the SQL macros do the same).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Mapping, Optional, Sequence

__all__ = [
    "DSRResult",
    "byars_lower",
    "byars_upper",
    "dobson_limits",
    "dsr",
    "dsr_non_independent",
    "sum_of_squared_events",
    "wilson_lower",
    "wilson_upper",
    "z_for",
]


def z_for(confidence: float) -> float:
    """Two-sided standard normal quantile for a confidence level.

    >>> round(z_for(0.95), 12), round(z_for(0.998), 12)
    (1.959963984541, 3.090232306168)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return NormalDist().inv_cdf(confidence + (1 - confidence) / 2)


# --------------------------------------------------------------------------
# Byar's approximation to exact Poisson limits for a count
# (Breslow & Day 1987). PHE uses it for counts, crude rates and, through
# Dobson's method, for directly standardised rates.
# --------------------------------------------------------------------------
def byars_lower(x: float, confidence: float = 0.95) -> Optional[float]:
    """Lower limit for an observed count ``x``:  x * (1 - 1/(9x) - z/(3 sqrt x))^3.

    * x = 0 -> 0.0 (exact Poisson lower limit; PHE returns NaN, see module doc).
    * A negative result (tiny x at a high confidence level, e.g. x = 1 at
      99.8%) is returned as ``None``: PHEindicatormethods sets negative Byar's
      lower limits to NA because the approximation has broken down there.
    """
    if x < 0:
        raise ValueError("observed events must be >= 0")
    if x == 0:
        return 0.0
    z = z_for(confidence)
    base = 1 - 1 / (9 * x) - z / (3 * math.sqrt(x))
    if base < 0:
        return None
    return x * base**3


def byars_upper(x: float, confidence: float = 0.95) -> float:
    """Upper limit for an observed count ``x``:
    (x+1) * (1 - 1/(9(x+1)) + z/(3 sqrt(x+1)))^3.  Defined for x = 0."""
    if x < 0:
        raise ValueError("observed events must be >= 0")
    z = z_for(confidence)
    x1 = x + 1
    return x1 * (1 - 1 / (9 * x1) + z / (3 * math.sqrt(x1))) ** 3


# --------------------------------------------------------------------------
# Wilson score interval for a proportion x / n (Wilson 1927), returned as a
# proportion (0..1); multiply by 100 for a percentage.
# --------------------------------------------------------------------------
def _wilson(x: float, n: float, confidence: float, sign: int) -> Optional[float]:
    if x < 0 or n < 0:
        raise ValueError("x and n must be >= 0")
    if n == 0:
        return None
    z = z_for(confidence)
    root = z * math.sqrt(z * z + 4 * x * (1 - x / n))
    return (2 * x + z * z + sign * root) / 2 / (n + z * z)


def wilson_lower(x: float, n: float, confidence: float = 0.95) -> Optional[float]:
    """(2x + z^2 - z sqrt(z^2 + 4x(1 - x/n))) / (2 (n + z^2)); None when n = 0."""
    return _wilson(x, n, confidence, -1)


def wilson_upper(x: float, n: float, confidence: float = 0.95) -> Optional[float]:
    """(2x + z^2 + z sqrt(z^2 + 4x(1 - x/n))) / (2 (n + z^2)); None when n = 0."""
    return _wilson(x, n, confidence, +1)


# --------------------------------------------------------------------------
# Directly standardised rates with Dobson limits (Dobson et al. 1991).
#
# For age bands i with count x_i, population n_i and standard weight w_i,
# W = sum w_i and X = sum x_i:
#     DSR      = multiplier * sum(w_i x_i / n_i) / W
#     var(DSR) = multiplier^2 * sum(x_i (w_i / n_i)^2) / W^2
#     limit    = DSR + sqrt(var(DSR) / X) * (byars(X) - X)
# i.e. Byar's limits for the total count X, scaled onto the rate.
# PHE publishes nothing (value and limits NA) when X < 10.
#
# Non-independent events (one person can have several events): the events
# in a band are no longer Poisson. PHEindicatormethods::calculate_dsr with
# independent_events = FALSE takes, per band, f_k = the number of people with
# exactly k events, and replaces the variance by
#     var(DSR) = multiplier^2 * sum_k k^2 * sum_i f_ki (w_i / n_i)^2 / W^2
# (the Poisson variance of the number of *people* in each frequency class,
# scaled by k^2), while the value and the total count use the events
# x_i = sum_k k f_ki. Since sum_k k^2 f_ki is just the sum over people of
# (events per person)^2, the variance only needs that one figure per band:
#     var(DSR) = multiplier^2 * sum_i s_i (w_i / n_i)^2 / W^2,
#     s_i = sum over people in band i of (their number of events)^2.
# With one event per person s_i = x_i and it reduces to the ordinary variance.
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class DSRResult:
    total_count: float
    total_pop: float
    value: Optional[float]
    lower: Optional[float]
    upper: Optional[float]
    variance: Optional[float]  # variance of the DSR on the multiplier's scale


def dobson_limits(
    total_count: float, value: float, variance: float, confidence: float = 0.95
) -> tuple[Optional[float], Optional[float]]:
    """Dobson lower and upper limits for a DSR ``value`` with ``variance``
    (both on the multiplier's scale) and total event count ``total_count``."""
    if total_count <= 0:
        return None, None
    scale = math.sqrt(variance / total_count)
    lo = byars_lower(total_count, confidence)
    hi = byars_upper(total_count, confidence)
    lower = None if lo is None else value + scale * (lo - total_count)
    return lower, value + scale * (hi - total_count)


def _dsr_core(
    counts: Sequence[float],
    pops: Sequence[float],
    weights: Sequence[float],
    squared_events: Sequence[float],
    multiplier: float,
    confidence: float,
    min_count: float,
) -> DSRResult:
    if not len(counts) == len(pops) == len(weights) == len(squared_events):
        raise ValueError("counts, pops and weights must have one entry per band")
    if any(n <= 0 for n in pops):
        raise ValueError("denominators must all be greater than zero")
    counts = [0.0 if c is None else c for c in counts]  # PHE na.zero()
    if any(c < 0 for c in counts):
        raise ValueError("numerators must all be greater than or equal to zero")
    total_count = sum(counts)
    total_pop = sum(pops)
    if total_count < min_count:
        return DSRResult(total_count, total_pop, None, None, None, None)
    w_total = sum(weights)
    value = multiplier * sum(w * c / n for c, n, w in zip(counts, pops, weights)) / w_total
    variance = (
        multiplier**2
        * sum(s * (w / n) ** 2 for s, n, w in zip(squared_events, pops, weights))
        / w_total**2
    )
    lower, upper = dobson_limits(total_count, value, variance, confidence)
    return DSRResult(total_count, total_pop, value, lower, upper, variance)


def dsr(
    counts: Sequence[float],
    pops: Sequence[float],
    weights: Sequence[float],
    multiplier: float = 100_000,
    conf: float = 0.95,
    min_count: float = 10,
) -> DSRResult:
    """Directly standardised rate with Dobson limits, events independent.

    ``counts``, ``pops`` and ``weights`` are aligned per standardisation band
    (e.g. the 19 ESP2013 age bands). Value and limits are None when the total
    count is below ``min_count`` (PHE: 10).
    """
    counts = [0.0 if c is None else c for c in counts]
    return _dsr_core(counts, pops, weights, counts, multiplier, conf, min_count)


def dsr_non_independent(
    frequencies: Sequence[Mapping[int, float]],
    pops: Sequence[float],
    weights: Sequence[float],
    multiplier: float = 100_000,
    conf: float = 0.95,
    min_count: float = 10,
) -> DSRResult:
    """DSR with Dobson limits adjusted for non-independent events.

    ``frequencies[i]`` maps k (events per person) -> number of people in band i
    with exactly k events (PHE's ``eventfreq``/``x`` rows; missing or None
    means 0). The band's event count is sum_k k f_k.
    """
    counts: list[float] = []
    squared: list[float] = []
    for band in frequencies:
        people = {k: (f or 0) for k, f in band.items()}
        counts.append(sum(k * f for k, f in people.items()))
        squared.append(sum(k * k * f for k, f in people.items()))
    return _dsr_core(counts, pops, weights, squared, multiplier, conf, min_count)


def sum_of_squared_events(frequencies: Mapping[int, float]) -> float:
    """sum_k k^2 f_k: the per-band figure the non-independent variance needs."""
    return sum(k * k * (f or 0) for k, f in frequencies.items())
