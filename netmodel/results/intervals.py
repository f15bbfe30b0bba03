"""Student-t confidence intervals, the one place netmodel computes them.

The quantile is computed here rather than taken from SciPy: `scipy.special` costs ~0.2 s
to import, paid by every sweep before its first point (a summary's intervals need only
this one function). For integer degrees of freedom the t distribution's central
probability is a finite sum (Abramowitz and Stegun 26.7.3-4), which Newton's method
inverts; tests/test_intervals.py checks it against `scipy.stats.t.ppf`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_NEWTON_STEPS = 100


def t_quantile(p: float, dof: int) -> float:
    """The `p` quantile (0.5 <= p < 1) of Student's t with `dof` (>= 1, whole) degrees of
    freedom: `scipy.stats.t.ppf(p, dof)` within 1e-13 (relative) up to 200 dof, 1e-11 beyond."""
    if not 0.5 <= p < 1 or dof < 1 or dof != int(dof):
        raise ValueError(f"expected 0.5 <= p < 1 and whole dof >= 1, got p={p}, dof={dof}")
    target, dof = 2 * p - 1, int(dof)
    log_norm = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
    t = 0.0
    for _ in range(_NEWTON_STEPS):
        # A(t) is concave for t >= 0: from below the root, Newton's steps never overshoot it.
        density = math.exp(log_norm - (dof + 1) / 2 * math.log1p(t * t / dof))
        step = (_central(t, dof) - target) / (2 * density)
        t -= step
        if abs(step) <= 4 * math.ulp(t):
            break
    return t


def _central(t: float, dof: int) -> float:
    """P(|T| <= t), t >= 0: Abramowitz and Stegun 26.7.3 (odd dof) and 26.7.4 (even)."""
    theta = math.atan(t / math.sqrt(dof))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if dof % 2 == 0:
        term = total = 1.0
        for k in range(1, dof // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        return s * total
    if dof == 1:
        return 2 * theta / math.pi
    term = total = math.cos(theta)
    for k in range(1, (dof - 1) // 2):
        term *= c2 * (2 * k) / (2 * k + 1)
        total += term
    return 2 / math.pi * (theta + s * total)


def mean_half_width(values: Sequence[float] | np.ndarray) -> float:
    """Half-width of the 95% Student-t interval of the mean of `values` (NaN for fewer
    than two)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return math.nan
    return t_quantile(0.975, len(v) - 1) * float(v.std(ddof=1)) / math.sqrt(len(v))
