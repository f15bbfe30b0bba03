"""The engine's queueing station against queueing theory (M/M/1, M/M/c); the theory and the
station runs are `netmodel validate`'s (netmodel/validation/theory.py)."""

import math

import numpy as np
import pytest
import simpy

from netmodel.stations import Station
from netmodel.validation.theory import erlang_c_sojourn, station_sojourns


def _sojourns(servers: int, lam: float, mu: float, customers: int, seed: int) -> np.ndarray:
    """Sojourns through one station, after the warm-up cut (the queue starts empty)."""
    return station_sojourns(1, servers, lam, mu, customers, seed)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_mm1_mean_and_median_sojourn_match_theory(seed):
    lam, mu = 0.5, 1.0
    t = _sojourns(1, lam, mu, 40_000, seed)
    # M/M/1: sojourn ~ Exp(mu - lam): mean 2.0, median ln 2 / (mu - lam) = 1.386
    assert t.mean() == pytest.approx(1 / (mu - lam), rel=0.06)
    assert np.median(t) == pytest.approx(math.log(2) / (mu - lam), rel=0.06)


def test_mm1_pooled_over_seeds_within_2_percent():
    lam, mu = 0.5, 1.0
    pooled = np.concatenate([_sojourns(1, lam, mu, 40_000, s) for s in range(10, 15)])
    assert pooled.mean() == pytest.approx(2.0, rel=0.02)
    assert np.percentile(pooled, 99) == pytest.approx(math.log(100) / (mu - lam), rel=0.05)


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_mmc_mean_sojourn_matches_erlang_c(seed):
    c, lam, mu = 4, 3.0, 1.0  # four softirq cores at 75% load
    t = _sojourns(c, lam, mu, 60_000, seed)
    assert t.mean() == pytest.approx(erlang_c_sojourn(c, lam, mu), rel=0.05)


def test_station_is_fifo_and_counts_waiting():
    env = simpy.Environment()
    station = Station(env, 1)
    log = []

    def job(name, work):
        yield from station.serve(work)
        log.append((name, env.now))

    for name, work in (("a", 1.0), ("b", 2.0), ("c", 0.5)):
        env.process(job(name, work))
    env.run(until=0.1)
    assert station.waiting == 2
    env.run()
    assert log == [("a", 1.0), ("b", 3.0), ("c", 3.5)]
