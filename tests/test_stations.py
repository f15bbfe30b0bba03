"""The engine's queueing station against queueing theory (M/M/1, M/M/c)."""

import math

import numpy as np
import pytest
import simpy

from netmodel.stations import Station


def _sojourns(servers: int, lam: float, mu: float, customers: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1 / lam, customers)
    work = rng.exponential(1 / mu, customers)
    env = simpy.Environment()
    station = Station(env, servers)
    out = np.empty(customers)

    def customer(i):
        t = env.now
        yield from station.serve(work[i])
        out[i] = env.now - t

    def source():
        for i in range(customers):
            yield env.timeout(gaps[i])
            env.process(customer(i))

    env.process(source())
    env.run()
    return out[customers // 10:]  # warm-up cut: the queue starts empty


def _erlang_c_sojourn(c: int, lam: float, mu: float) -> float:
    a = lam / mu
    rho = a / c
    tail = a**c / math.factorial(c) / (1 - rho)
    p_wait = tail / (sum(a**k / math.factorial(k) for k in range(c)) + tail)
    return p_wait / (c * mu - lam) + 1 / mu


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
    assert t.mean() == pytest.approx(_erlang_c_sojourn(c, lam, mu), rel=0.05)


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
