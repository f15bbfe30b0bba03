"""netmodel's Student-t quantile against SciPy's, and the interval built on it."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from netmodel.results.intervals import mean_half_width, t_quantile


@pytest.mark.parametrize("p", [0.5, 0.6, 0.9, 0.95, 0.975, 0.99, 0.999])
@pytest.mark.parametrize("dof", [*range(1, 41), 63, 64, 199, 200])
def test_quantile_is_scipys(p, dof):
    assert t_quantile(p, dof) == pytest.approx(stats.t.ppf(p, dof), rel=1e-13, abs=1e-15)


@given(dof=st.integers(1, 5000), p=st.floats(0.5, 0.9999))
def test_quantile_is_scipys_further_out(dof, p):
    assert t_quantile(p, dof) == pytest.approx(stats.t.ppf(p, dof), rel=1e-11, abs=1e-15)


@pytest.mark.parametrize("p, dof", [(0.4, 3), (1.0, 3), (0.975, 0), (0.975, 2.5)])
def test_quantile_refuses_what_it_does_not_compute(p, dof):
    with pytest.raises(ValueError):
        t_quantile(p, dof)


def test_half_width_is_the_t_interval_of_the_mean():
    values = np.array([1.0, 2.5, 2.0, 4.0])
    expected = stats.t.ppf(0.975, 3) * values.std(ddof=1) / 2
    assert mean_half_width(values) == pytest.approx(expected, rel=1e-13)
    assert math.isnan(mean_half_width([1.0]))
