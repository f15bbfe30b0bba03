"""The Python API: everything the `netmodel` command does, as functions for notebooks and
scripts. The command line is a thin layer over these.

    import netmodel

    qs = netmodel.load("scenarios/quickstart.yaml")
    big = netmodel.override(qs, {"services.count": 5000, "kube_proxy.mode": "nftables"})
    rows = netmodel.run(big)                          # one row per traffic kind
    summary = netmodel.sweep(qs, "results/qs", jobs=2)
    requests = netmodel.records(big)                  # one row per request
    print(netmodel.trace(big, "pod-clusterip").totals())
    figures = netmodel.figures(summary, ["services.count", "kube_proxy.mode"])
    report = netmodel.validate(quick=True)            # the model against theory and figures
    netmodel.calibrate("lab/node.yaml", quick=True)   # root, Linux: measure this kernel

Paths are dotted scenario fields, set exactly as `--set` and sweep axes set them
(`netmodel.scenario.overrides`). Every result is deterministic: the same scenario and seed
give the same numbers, whichever executor runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from netmodel.connections.trace import Trace
from netmodel.costs.profile import Profile
from netmodel.errors import NetmodelError
from netmodel.scenario.compare import Versus
from netmodel.scenario.loader import LoadedScenario, load_scenario, parse_scenario
from netmodel.scenario.overrides import with_overrides
from netmodel.scenario.schema import Scenario
from netmodel.scenario.sweep import SweepPoint, expand_sweep
from netmodel.vocabulary import DROP_REASONS, TRAFFIC_KINDS

Settings = Mapping[str, Any] | Iterable[tuple[str, Any]]
"""Dotted path -> value, as a mapping or as (path, value) pairs applied in order."""


def load(source: str | Path, *, text: str | None = None, settings: Settings = ()) -> LoadedScenario:
    """The scenario in YAML file `source` (or in `text`, named `source` in errors),
    validated, with `settings` applied; a NetmodelError naming file, line and field."""
    if text is not None:
        loaded = parse_scenario(text, str(source), Path.cwd())
    else:
        loaded = load_scenario(source)
    return override(loaded, settings)


def override(loaded: LoadedScenario, settings: Settings) -> LoadedScenario:
    """The scenario with fields set by dotted path (as `--set PATH=VALUE`), validated again."""
    pairs = settings.items() if isinstance(settings, Mapping) else settings
    return with_overrides(loaded, pairs)


def points(loaded: LoadedScenario) -> list[SweepPoint]:
    """The scenario's sweep points in order (one point when it has no sweep)."""
    return expand_sweep(loaded)


def point(loaded: LoadedScenario, point_id: int | None = None) -> tuple[Scenario, Profile]:
    """Sweep point `point_id`'s scenario and profile; None: the scenario without its sweep."""
    if point_id is None:
        return loaded.scenario.model_copy(update={"sweep": None}), loaded.profile
    found = {p.point_id: p for p in expand_sweep(loaded)}
    if point_id not in found:
        raise NetmodelError(f"no sweep point {point_id} (points are {min(found)} to {max(found)})",
                            field="point")
    return found[point_id].scenario, found[point_id].profile


def run(loaded: LoadedScenario, *, point_id: int | None = None, engine: str = "auto",
        metrics_dir: Path | None = None) -> pd.DataFrame:
    """Simulate one point (default: the scenario without its sweep): one row per traffic
    kind, columns as `netmodel.results.summary.COLUMNS` (seconds, core-seconds);
    `.attrs["engine"]` names the engine that ran it (`engine_fallback`: why auto did not
    take the first one). With `metrics_dir`, kube-proxy's histograms go to
    DIR/<name>-r<replication>.prom."""
    from netmodel.engines import engine_for
    from netmodel.runner.point import run_point

    scenario, profile = point(loaded, point_id)
    sink = None if metrics_dir is None else _metrics_sink(scenario, Path(metrics_dir))
    chosen, why = engine_for(scenario, engine)
    table = pd.DataFrame.from_records(run_point(scenario, profile, sink, chosen.name))
    table.attrs["engine"], table.attrs["engine_fallback"] = chosen.name, why
    return table


def sweep(loaded: LoadedScenario, out: str | Path | None = None, *, jobs: int = 1,
          executor: Executor | str | None = None, scheduler: str | None = None,
          quiet: bool = True, force: bool = False, metrics_dir: Path | None = None,
          engine: str = "auto") -> pd.DataFrame:
    """Run every sweep point not yet in folder `out` (default results/<name>) and return the
    summary; the folder gets summary.parquet, summary.csv, meta.json, plots/ and what ran:
    scenario.yaml and profile.yaml. Points run
    on `executor`: "local" (default: `jobs` local processes), "dask" (a Dask LocalCluster of
    `jobs` workers, or the cluster whose scheduler is at `scheduler`), or any
    concurrent.futures.Executor; walked by `engine` (a name, or auto: the first engine that
    runs each replication exactly). Resumable: a second call runs only what is missing;
    Ctrl-C or SIGTERM raise `SweepInterrupted` (a KeyboardInterrupt) with what is done.
    netmodel writes only into a new or empty folder or one of its own results folders."""
    from netmodel.runner.sweep import run_sweep

    out = Path(out) if out is not None else Path("results") / loaded.scenario.name
    return run_sweep(loaded, out, jobs=jobs, executor=executor, scheduler=scheduler,
                     quiet=quiet, force=force,
                     metrics_dir=None if metrics_dir is None else Path(metrics_dir), engine=engine)


def records(loaded: LoadedScenario, *, point_id: int | None = None, replication: int = 0,
            engine: str = "auto") -> pd.DataFrame:
    """What became of every request of one replication, one row each: traffic kind, status
    ('completed', 'in-flight' or the drop reason), start and end (s), latency (s), rule
    lookup and softirq CPU (core-seconds), whether it crossed nodes, the endpoint served."""
    from netmodel.engines import simulate

    scenario, profile = point(loaded, point_id)
    res = simulate(scenario, profile, replication, engine)
    states = np.array(["in-flight", "completed", *DROP_REASONS])
    return pd.DataFrame({
        "traffic": np.array(TRAFFIC_KINDS)[res.kind], "status": states[res.status],
        "start_s": res.start, "end_s": res.end, "latency_s": res.end - res.start,
        "lookup_cpu_s": res.lookup_cpu, "softirq_cpu_s": res.softirq_cpu,
        "cross_node": res.cross_node, "endpoint": res.endpoint})


def trace(loaded: LoadedScenario, kind: str, service: str | None = None) -> Trace:
    """The hop-by-hop path of traffic `kind` to `service` (default: the most popular one it
    can call), with zero-load costs, or why it cannot work."""
    from netmodel.connections.trace import trace as traced

    scenario, profile = point(loaded)
    return traced(scenario, profile, kind, service)


def figures(summary: pd.DataFrame, axes: list[str] | None = None, series: str | None = None) -> dict:
    """The standard figures of a sweep's summary table by name (matplotlib Figures, as a
    sweep saves them under plots/). `axes`: the swept fields; default: the columns a sweep
    writes between `point_id` and `kube_proxy.mode`, and the mode when it varies.
    `series`: the axis told apart by colour (default: the mode when it varies)."""
    from netmodel.results.plots import summary_figures, swept_axes

    return summary_figures(summary, swept_axes(summary) if axes is None else axes, series)


def compare(loaded: LoadedScenario, vs: Versus | Sequence[Versus], out: str | Path | None = None,
            *, jobs: int = 1, executor: Executor | str | None = None,
            scheduler: str | None = None, quiet: bool = True, force: bool = False,
            engine: str = "auto"):
    """Compare settings of one field (`vs`: 'kube_proxy.mode=iptables,nftables,ebpf' or
    (field, values); or a list of them, the first compared, the others moving along it with
    one value per setting) across the scenario's sweep, or a default range of Service count
    and request rate around its own values; write a results folder (default
    results/<name>-compare) and return the `Comparison`: the decision table at the point
    standing for the scenario, the verdict in words, the summary. Without
    control_plane.enabled, a rolling update of each setting also runs (rollout/). `jobs`,
    `executor`, `scheduler`, `engine`: as for `sweep`."""
    from netmodel.runner.compare import run_comparison
    from netmodel.scenario.compare import plan_comparison, versus_fields

    plan = plan_comparison(loaded, *versus_fields(vs))
    out = Path(out) if out is not None else Path("results") / f"{loaded.scenario.name}-compare"
    return run_comparison(plan, out, jobs=jobs, executor=executor, scheduler=scheduler,
                          quiet=quiet, force=force, engine=engine)


def open_results(path: str | Path):
    """A results folder (`netmodel sweep` or `compare`) as DataFrames: `.summary`, `.meta`,
    `.points` (one row per point), `.point(id)`, `.plots()`, `.scenario_text()`,
    `.profile()`, and for a comparison `.comparison` and `.decision`."""
    from netmodel.runner.results_folder import open_results as opened

    return opened(path)


def plot(ax, summary: pd.DataFrame, panel: str = "p99", **options):
    """Draw one standard panel of a summary into matplotlib Axes `ax` and return it:
    `panel` a name of `netmodel.results.plots.PANELS` ('p50', 'p99', 'p50-added',
    'failed', 'rule-lookup', 'programming-p99', ...) or a summary column; options `x`,
    `traffic`, `series`, `where` ({axis: value} for the other swept axes)."""
    from netmodel.results.plots import draw

    return draw(ax, summary, panel, **options)


def report(path: str | Path, validation: bool = True) -> Path:
    """Write `path`/report.html: one self-contained page of a results folder (the decision
    first for a comparison, then the checks, the model's validation against published
    figures with the folder's profile, the summary, every plot, the scenario, the profile
    with its sources and the versions); return its path. `validation=False` leaves the
    validation run out (a second or two)."""
    from netmodel.runner.folder import PROFILE_FILE
    from netmodel.runner.report import write_report

    checks = None
    profile = Path(path) / PROFILE_FILE
    if validation and profile.is_file():
        checks = [c for _, c in validate(profile, quick=True, groups=("published",)).checks]
    return write_report(Path(path), checks)


def import_kubectl(directory: str | Path):
    """A scenario from a real cluster's `kubectl get ... -o json` listings in `directory`
    (`KubectlImport`: `.text()` is the scenario YAML, `.notes` and `.skipped` say what was
    guessed and left out); validated: it loads as it is."""
    from netmodel.scenario.kubectl import import_kubectl as imported

    return imported(directory)


def calibrate(out: str | Path, *, quick: bool = False, iptables_backend: str = "auto",
              progress: Callable[[str], None] | None = None):
    """Measure this machine's kernel inside network namespaces the lab makes and removes
    (Linux, root; iproute2, iptables, nftables) and write the complete profile `out` with
    its samples (.samples.parquet), record (.lab.json) and plots (-plots/) beside it;
    `quick`: the small run CI does (under two minutes). Returns the files
    (`netmodel.calibration.record.LabFiles`). See docs/calibration.md."""
    from netmodel.calibration.lab import run_lab

    return run_lab(Path(out), quick=quick, iptables_backend=iptables_backend, progress=progress)


def validate(profile: str | Path = "default", *, quick: bool = False, groups: Iterable[str] | None = None,
             cases: Iterable[str] | None = None, progress: Callable[[str], None] | None = None):
    """The model against queueing theory, published figures and, for a profile the lab
    wrote, the lab's measurements: a `netmodel.validation.report.Report` (`.passed`,
    `.checks`, `.text()`, `.markdown()`). `groups`: theory, published, lab (default all);
    `cases`: only these case names. See docs/validation.md."""
    from netmodel.validation.cases import GROUPS
    from netmodel.validation.report import validate as run

    return run(profile, quick, GROUPS if groups is None else tuple(groups), cases, progress)


def _metrics_sink(scenario: Scenario, directory: Path):
    """A control_sink for run_point writing each replication's Prometheus text."""
    from netmodel.results.prometheus import metrics_paths, prometheus_histograms

    if not scenario.control_plane.enabled:
        raise NetmodelError("needs control_plane.enabled: true in the scenario", field="--metrics")
    directory.mkdir(parents=True, exist_ok=True)
    paths = metrics_paths(directory, scenario.name, scenario.run.replications)

    def write(replication: int, result) -> None:
        paths[replication].write_text(prometheus_histograms(result))

    return write
