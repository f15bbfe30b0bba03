"""The engine against queueing theory, at utilisation 0.5, 0.8 and 0.9.

M/M/1, M/D/1, M/M/c, M/M/1/K and M/M/c/c run through the whole model: one node, same-node Pod
traffic, a new connection per request (Poisson arrivals), the profile's time costs all set
to zero, so that a request's latency is exactly its sojourn at the endpoint Pod's workers
(app time exponential or constant, mean 1 ms; `workers` servers; `queue_limit` waiting
places, beyond which the Pod refuses). The tandem runs two of the engine's stations
(`netmodel.stations.Station`) in series, exponential at both (Jackson: each an M/M/1).
Each replication drops its first WARMUP share of customers (the queue starts empty); the
figure is the mean of the replication means with a 95% Student-t interval, and the last
check counts how many of those intervals cover the theory.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import simpy
from scipy import stats

from netmodel.costs.profile import PARAMETERS, Profile
from netmodel.engines import simulate
from netmodel.results.intervals import mean_half_width
from netmodel.scenario.loader import validate_scenario
from netmodel.scenario.schema import Scenario
from netmodel.stations import Station
from netmodel.validation.cases import Check, Context, case, relative, shape
from netmodel.vocabulary import COMPLETED, SERVER_QUEUE_FULL

RHOS = (0.5, 0.8, 0.9)
SERVICE = 1e-3
"""Mean app time (1/mu), seconds."""
WARMUP = 0.1
SERVERS = 4
"""Workers of the M/M/c case."""
CAPACITY = 3
"""K of the M/M/1/K case: one worker and K - 1 waiting places."""
SEED = 20261201
SOURCE_THEORY = "queueing theory"


@dataclass(frozen=True)
class Plan:
    """How long the theory runs are and what error they are held to."""

    replications: int
    customers: dict[float, int]
    tolerance: dict[float, float]
    """Relative tolerance of a mean sojourn, per utilisation; a 99th percentile and a
    blocking probability rest on fewer events and get 1.5 times as much."""


QUICK = Plan(4, {0.5: 10_000, 0.8: 20_000, 0.9: 40_000}, {0.5: 0.05, 0.8: 0.10, 0.9: 0.12})
FULL = Plan(8, {0.5: 40_000, 0.8: 80_000, 0.9: 160_000}, {0.5: 0.02, 0.8: 0.04, 0.9: 0.05})
"""About three standard errors of the replications' mean (measured: a replication's mean
sojourn spreads by 3%, 7.5% and 8.7% at 10,000, 20,000 and 40,000 customers)."""


# -- theory ------------------------------------------------------------------------------------
def mm1_sojourn(lam: float, mu: float) -> float:
    """M/M/1 mean sojourn 1 / (mu - lambda)."""
    return 1 / (mu - lam)


def md1_sojourn(lam: float, mu: float) -> float:
    """M/D/1 mean sojourn (Pollaczek-Khinchine): 1/mu + rho / (2 mu (1 - rho))."""
    rho = lam / mu
    return 1 / mu + rho / (2 * mu * (1 - rho))


def erlang_c_sojourn(c: int, lam: float, mu: float) -> float:
    """M/M/c mean sojourn: Erlang C's probability of waiting / (c mu - lambda) + 1/mu."""
    a = lam / mu
    rho = a / c
    tail = a**c / math.factorial(c) / (1 - rho)
    p_wait = tail / (sum(a**k / math.factorial(k) for k in range(c)) + tail)
    return p_wait / (c * mu - lam) + 1 / mu


def erlang_b(c: int, a: float) -> float:
    """M/M/c/c probability that an arrival finds every server busy, at offered load `a`
    (Erlangs), by the recursion B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1))."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def mm1k_blocking(rho: float, k: int) -> float:
    """M/M/1/K probability that an arrival finds the system full."""
    return (1 - rho) * rho**k / (1 - rho ** (k + 1))


# -- the model runs ------------------------------------------------------------------------------
def zero_cost(profile: Profile) -> Profile:
    """`profile` with every time cost 0: only the Pod's app time is left."""
    return profile.with_overrides({n: "0s" for n, dim in PARAMETERS.items() if dim == "time"})


def queue_scenario(rho: float, workers: int, distribution: str, customers: int,
                   queue_limit: int = 1_000_000) -> Scenario:
    """One node, one Service of one endpoint with `workers` workers, Poisson arrivals at
    rho x workers / SERVICE, a new connection per request."""
    rate = rho * workers / SERVICE
    return validate_scenario({
        "name": "queueing-theory", "cluster": {"nodes": 1, "conntrack_max": 100_000_000},  # the Pod alone limits
        "services": {"count": 1, "endpoints_per_service": 1},
        "workload": {"rate": rate, "requests_per_connection": 1, "request_size": "1B",
                     "response_size": "1B", "mix": {"pod-pod-same-node": 1}, "timeout": "1h",
                     "server": {"workers": workers, "service_time": SERVICE,
                                "service_time_distribution": distribution, "queue_limit": queue_limit}},
        "run": {"requests": customers, "seed": SEED, "warmup": WARMUP * customers / rate}})


@dataclass(frozen=True)
class Replications:
    """Per-replication figures of one theory run: mean sojourn (s), blocked share, and
    every measured sojourn pooled."""

    means: np.ndarray
    blocked: np.ndarray
    pooled: np.ndarray

    def interval(self, values: np.ndarray | None = None) -> tuple[float, float, float]:
        """(mean, low, high): a 95% Student-t interval over the replications."""
        v = self.means if values is None else values
        half = mean_half_width(v)
        return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def _plan(quick: bool) -> Plan:
    return QUICK if quick else FULL


@functools.lru_cache(maxsize=None)
def model_run(kind: str, rho: float, quick: bool) -> Replications:
    """The engine's run of queue `kind` (mm1, md1, mmc, mm1k, mmcc) at utilisation `rho`
    (offered load over the workers)."""
    plan = _plan(quick)
    workers, distribution, limit = {"mm1": (1, "exponential", 1_000_000), "md1": (1, "constant", 1_000_000),
                                    "mmc": (SERVERS, "exponential", 1_000_000),
                                    "mm1k": (1, "exponential", CAPACITY - 1),
                                    "mmcc": (SERVERS, "exponential", 0)}[kind]
    scenario = queue_scenario(rho, workers, distribution, plan.customers[rho], limit)
    profile = zero_cost(_default())
    means, blocked, pooled = [], [], []
    for r in range(plan.replications):
        rec = simulate(scenario, profile, r)
        after = rec.start >= rec.warmup
        done = after & (rec.status == COMPLETED)
        sojourn = rec.end[done] - rec.start[done]
        means.append(sojourn.mean())
        blocked.append(np.mean(rec.status[after] == SERVER_QUEUE_FULL))
        pooled.append(sojourn)
    return Replications(np.array(means), np.array(blocked), np.concatenate(pooled))


def station_sojourns(stations: int, servers: int, lam: float, mu: float, customers: int,
                     seed: int) -> np.ndarray:
    """Sojourns of Poisson customers through `stations` of the engine's FIFO `Station`s in
    series (`servers` each, exponential service at each), after the warm-up share."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1 / lam, customers)
    work = rng.exponential(1 / mu, (customers, stations))
    env = simpy.Environment()
    chain = [Station(env, servers) for _ in range(stations)]
    out = np.empty(customers)

    def customer(i):
        t = env.now
        for k, station in enumerate(chain):
            yield from station.serve(work[i, k])
        out[i] = env.now - t

    def source():
        for i in range(customers):
            yield env.timeout(gaps[i])
            env.process(customer(i))

    env.process(source())
    env.run()
    return out[int(customers * WARMUP):]


@functools.lru_cache(maxsize=None)
def tandem_run(rho: float, quick: bool) -> Replications:
    """Two M/M/1 stations in series at utilisation `rho`, replication by replication."""
    plan = _plan(quick)
    runs = [station_sojourns(2, 1, rho / SERVICE, 1 / SERVICE, plan.customers[rho], SEED + r)
            for r in range(plan.replications)]
    return Replications(np.array([r.mean() for r in runs]), np.zeros(len(runs)), np.concatenate(runs))


@functools.lru_cache(maxsize=1)
def _default() -> Profile:
    from netmodel.costs.profile import load_profile

    return load_profile("default")


# -- the cases ------------------------------------------------------------------------------------
def _mean_check(name: str, theory: float, run: Replications, tolerance: float) -> Check:
    mean, low, high = run.interval()
    return relative(name, SOURCE_THEORY, theory, mean, tolerance, "ms",
                    note=f"95% CI {low * 1e3:.4g} to {high * 1e3:.4g}",
                    lacks="the engine's station does not reproduce the queue's mean sojourn")


_MEANS = {
    "M/M/1": ("mm1", lambda rho: mm1_sojourn(rho / SERVICE, 1 / SERVICE)),
    "M/D/1": ("md1", lambda rho: md1_sojourn(rho / SERVICE, 1 / SERVICE)),
    f"M/M/{SERVERS}": ("mmc", lambda rho: erlang_c_sojourn(SERVERS, SERVERS * rho / SERVICE, 1 / SERVICE)),
}


def _means(label: str, ctx: Context) -> list[Check]:
    kind, theory = _MEANS[label]
    plan = _plan(ctx.quick)
    return [_mean_check(f"{label} mean sojourn, rho {rho}", theory(rho), model_run(kind, rho, ctx.quick),
                        plan.tolerance[rho]) for rho in RHOS]


@case("M/M/1", "theory")
def mm1(ctx: Context) -> list[Check]:
    """M/M/1 through the model: mean sojourn and 99th percentile (Exp(mu - lambda))."""
    plan = _plan(ctx.quick)
    out = _means("M/M/1", ctx)
    for rho in RHOS:
        theory = math.log(100) * mm1_sojourn(rho / SERVICE, 1 / SERVICE)
        p99 = float(np.percentile(model_run("mm1", rho, ctx.quick).pooled, 99))
        out.append(relative(f"M/M/1 p99 sojourn, rho {rho}", SOURCE_THEORY, theory, p99,
                            1.5 * plan.tolerance[rho], "ms", note="pooled",
                            lacks="the sojourn distribution's tail is not exponential"))
    return out


@case("M/D/1", "theory")
def md1(ctx: Context) -> list[Check]:
    """M/D/1 through the model (constant app time): Pollaczek-Khinchine mean sojourn."""
    return _means("M/D/1", ctx)


@case("M/M/c", "theory")
def mmc(ctx: Context) -> list[Check]:
    """M/M/4 through the model (4 workers): Erlang C mean sojourn."""
    return _means(f"M/M/{SERVERS}", ctx)


@case("M/M/1/K", "theory")
def mm1k(ctx: Context) -> list[Check]:
    """M/M/1/3 through the model (1 worker, queue_limit 2): the share of requests refused."""
    return _blocking(ctx, "mm1k", f"M/M/1/{CAPACITY}", lambda rho: mm1k_blocking(rho, CAPACITY),
                     "the Pod's queue limit does not refuse as a finite queue does")


@case("M/M/c/c", "theory")
def mmcc(ctx: Context) -> list[Check]:
    """M/M/4/4 through the model (4 workers, queue_limit 0): the share refused, Erlang B."""
    return _blocking(ctx, "mmcc", f"M/M/{SERVERS}/{SERVERS}", lambda rho: erlang_b(SERVERS, SERVERS * rho),
                     "a Pod without waiting room does not refuse as a loss system does")


def _blocking(ctx: Context, kind: str, name: str, theory, lacks: str) -> list[Check]:
    """The share of requests the model's `kind` runs refuse against `theory(rho)`, per rho."""
    plan = _plan(ctx.quick)
    out = []
    for rho in RHOS:
        run = model_run(kind, rho, ctx.quick)
        mean, low, high = run.interval(run.blocked)
        out.append(relative(f"{name} blocking, rho {rho}", SOURCE_THEORY, theory(rho), mean,
                            1.5 * plan.tolerance[rho], "%", note=f"95% CI {low:.2%} to {high:.2%}",
                            lacks=lacks))
    return out


@case("tandem", "theory")
def tandem(ctx: Context) -> list[Check]:
    """Two of the engine's stations in series (Jackson): mean sojourn 2 / (mu - lambda)."""
    plan = _plan(ctx.quick)
    return [_mean_check(f"tandem of 2 M/M/1 stations, rho {rho}",
                        2 * mm1_sojourn(rho / SERVICE, 1 / SERVICE), tandem_run(rho, ctx.quick),
                        plan.tolerance[rho]) for rho in RHOS]


def _intervals(quick: bool) -> list[tuple[float, float, float]]:
    """(theory, low, high) of every theory case's replication interval."""
    out = []
    for kind, theory in (_MEANS["M/M/1"], _MEANS["M/D/1"], _MEANS[f"M/M/{SERVERS}"]):
        out += [(theory(rho), *model_run(kind, rho, quick).interval()[1:]) for rho in RHOS]
    for rho in RHOS:
        run = model_run("mm1k", rho, quick)
        out.append((mm1k_blocking(rho, CAPACITY), *run.interval(run.blocked)[1:]))
        run = model_run("mmcc", rho, quick)
        out.append((erlang_b(SERVERS, SERVERS * rho), *run.interval(run.blocked)[1:]))
        out.append((2 * mm1_sojourn(rho / SERVICE, 1 / SERVICE), *tandem_run(rho, quick).interval()[1:]))
    return out


@case("interval coverage", "theory")
def coverage(ctx: Context) -> list[Check]:
    """How many of the theory cases' 95% intervals cover the theory: at least the 1% quantile
    of Binomial(n, 0.95)."""
    intervals = _intervals(ctx.quick)
    covered = sum(low <= theory <= high for theory, low, high in intervals)
    n = len(intervals)
    least = int(stats.binom.ppf(0.01, n, 0.95))
    return [shape("95% intervals covering the theory", "binomial(n, 0.95)", f"about {0.95 * n:.1f} of {n}",
                  f"{covered} of {n}", covered >= least, f">= {least}",
                  lacks="the replications' intervals are too narrow (warm-up bias, correlated "
                        "replications)",
                  value=covered)]
