"""Resumable sweeps: every point of a scenario's sweep, one file per point, then a summary.

The output folder holds

    manifest.json            netmodel's mark: scenario digest, number of points, plots drawn
    .netmodel.lock           held while a sweep writes here: a second one refuses (`lock`)
    points/00000.parquet     the summary rows of one point, sealed with the point's digest
                             and a checksum of its values (`pointfile`)
    summary.parquet/.csv     all points' rows, sorted by point_id
    meta.json                what ran: scenario, profile, axes, engine, executor, versions
    plots/*.png              see `netmodel.results.plots`

With `metrics_dir` (`netmodel sweep --metrics DIR`), every point whose scenario has
`control_plane.enabled` also gets kube-proxy's histograms in Prometheus text format, one
file per replication: `DIR/point-00000-r0.prom` (`prometheus_histograms`). A worker
returns them with the rows; they are written before the point file, so a point with a
point file has its metrics too. A point whose point file is up to date but whose metrics
files are missing is run again.

Every file is written atomically (`folder.write_atomic`), so an interrupted or killed
sweep leaves only whole files; running it again checks every point file (a damaged one is
named and run again) and runs only what is missing. Ctrl-C and SIGTERM stop a sweep the
same way (`SweepInterrupted`). Nothing in the output depends on wall-clock time, on the
executor or on the number of workers: the same input gives the same bytes.
"""

from __future__ import annotations

import gc
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from netmodel.costs.profile import Profile
from netmodel.engines import engine_for
from netmodel.errors import NetmodelError
from netmodel.results.prometheus import metrics_paths
from netmodel.runner.executors import EXECUTORS, LocalProcesses, open_executor, package_versions
from netmodel.runner.folder import (
    MANIFEST,
    META,
    OUTPUTS,
    PLOTS,
    POINTS,
    SUMMARY_CSV,
    SUMMARY_PARQUET,
    Manifest,
    claim,
    discard,
    json_bytes,
    make_folder,
    read_if_exists,
    read_manifest,
    remove_leftovers,
    write_atomic,
)
from netmodel.runner.lock import exclusive
from netmodel.runner.pointfile import DamagedPoint, parquet_bytes, point_bytes, read_point
from netmodel.runner.results_folder import inputs_bytes
from netmodel.scenario.digest import scenario_digest
from netmodel.scenario.loader import LoadedScenario
from netmodel.scenario.schema import Scenario
from netmodel.scenario.sweep import SweepPoint, expand_sweep
from netmodel.units import format_count

if TYPE_CHECKING:  # the plotting library is imported only once the points run
    from netmodel.results.plots import FigurePlan

Runner = Callable[..., list[dict]]
"""`run_point`'s signature: (scenario, profile, control_sink, engine) -> the point's summary
rows; `control_sink(replication, ControlPlaneResult)` is None unless the point's metrics
are wanted."""

Metrics = tuple[str, ...]
"""One point's Prometheus texts, by replication; empty when not wanted."""

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM: `signal`) during a sweep; `done` of `total` points have their
    files on disk."""

    def __init__(self, done: int, total: int, signal_number: int = signal.SIGINT):
        super().__init__(f"{done} of {total} points done")
        self.done = done
        self.total = total
        self.signal = signal_number


@dataclass(frozen=True)
class _Sweep:
    """One `run_sweep` call: what to run, where, how."""

    loaded: LoadedScenario
    out_dir: Path
    points: list[SweepPoint]
    digests: dict[int, str]
    axes: list[str]
    runner: Runner
    engine: str
    executor: Executor | str
    jobs: int
    scheduler: str | None
    metrics_dir: Path | None
    quiet: bool
    force: bool
    series: str | None


def run_sweep(loaded: LoadedScenario, out_dir: Path, *, jobs: int = 1, quiet: bool = False,
              force: bool = False, runner: Runner | None = None,
              metrics_dir: Path | None = None, executor: Executor | str | None = None,
              scheduler: str | None = None, engine: str = "auto",
              series: str | None = None) -> pd.DataFrame:
    """Run every sweep point not yet on disk in `out_dir`; return the summary table.

    The table has `point_id`, one column per swept axis (dotted name, SI value) and
    the runner's columns (times in seconds), one row per point and traffic kind;
    `.attrs["points_run"]` says how many points this call ran, `.attrs["plots"]` names
    the plots in `out_dir/plots`, `.attrs["plots_drawn"]` whether this call drew them.
    `executor`: "local" (default: `jobs` local processes, or here when `jobs` is 1),
    "dask" (a Dask LocalCluster of `jobs` workers, or the cluster at `scheduler`), or any
    `concurrent.futures.Executor`, which the caller keeps. `force` discards netmodel's
    results of a different scenario instead of refusing. `metrics_dir`: also write the
    Prometheus text of every control-plane point (see the module's docstring); a
    NetmodelError if no point has `control_plane.enabled`. `series`: the axis the plots
    tell apart by colour (default: see `netmodel.results.plots.layout`). Raises
    `SweepInterrupted` on Ctrl-C or SIGTERM.
    """
    if runner is None:
        from netmodel.runner.point import run_point as runner
    points = sorted(expand_sweep(loaded), key=lambda p: p.point_id)
    if metrics_dir is not None and not any(_has_metrics(p) for p in points):
        raise NetmodelError("needs control_plane.enabled: true in the scenario or in one "
                            "of its sweep points", field="--metrics")
    sweep = _Sweep(loaded, Path(out_dir), points,
                   {p.point_id: scenario_digest(p.scenario, p.profile) for p in points},
                   list(loaded.scenario.sweep.axes) if loaded.scenario.sweep else [], runner,
                   engine, _executor_choice(executor, scheduler), jobs, scheduler,
                   None if metrics_dir is None else Path(metrics_dir), quiet, force, series)
    claim(sweep.out_dir)  # before the lock file: nothing is created in a folder not ours
    with _stops_as_interrupts() as stopped:
        try:
            with exclusive(sweep.out_dir):
                return _run_locked(sweep, stopped)
        except KeyboardInterrupt:
            raise SweepInterrupted(_count_done(sweep), len(points),
                                   stopped.get("signal", signal.SIGINT)) from None


def _executor_choice(executor: Executor | str | None, scheduler: str | None) -> Executor | str:
    """The executor to use: an Executor as given, or a name from EXECUTORS."""
    if executor is None:
        executor = "dask" if scheduler is not None else "local"
    if isinstance(executor, Executor):
        return executor
    if executor not in EXECUTORS:
        raise NetmodelError(f"expected one of {', '.join(EXECUTORS)}, got {executor!r}",
                            field="executor")
    if scheduler is not None and executor != "dask":
        raise NetmodelError("a scheduler address needs --executor dask", field="--scheduler")
    return executor


@contextmanager
def _stops_as_interrupts() -> Iterator[dict]:
    """Turn SIGTERM (kill, a cancelled CI job, a Pod deleted) into the KeyboardInterrupt
    Ctrl-C gives, and let a second one of either wait for the sweep to clean up; the dict
    yielded gets the "signal" that stopped the sweep. While points run here ("inline"
    set) the handler raises at once; while workers run them it only marks the stop, which
    the main thread acts on within `_as_completed`'s poll (raised from a handler, the
    interrupt could land in a garbage-collector callback of Dask's and be lost). Only in
    the main thread, and not for a signal that was already ignored (a background job's
    Ctrl-C)."""
    stopped: dict = {}
    if threading.current_thread() is not threading.main_thread():
        yield stopped
        return
    previous = {s: signal.getsignal(s) for s in _STOP_SIGNALS}

    def stop(signal_number: int, frame: Any) -> None:
        if "signal" not in stopped:
            stopped["signal"] = signal_number
            if stopped.get("inline"):  # a point runs here: stop it now
                raise KeyboardInterrupt

    previous = {s: h for s, h in previous.items() if h not in (signal.SIG_IGN, None)}
    for s in previous:
        signal.signal(s, stop)
    try:
        yield stopped
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _run_locked(sweep: _Sweep, stopped: dict) -> pd.DataFrame:
    """`run_sweep` once it holds the folder's lock: the points, then the summary and the
    plots, drawn by workers too (they are a third of a short sweep): Dask's or a caller's
    executor draws them; local workers are forked again for them, after the points, so
    that they inherit the plotting library the sweep imported while the points ran."""
    manifest = _prepare(sweep)
    todo = _todo(sweep)
    with _executor(sweep, len(todo), stopped) as executor:
        _run_points(sweep, todo, stopped, executor)
        if not isinstance(executor, LocalProcesses):
            summary = _finish(sweep, manifest, bool(todo), executor, stopped)
    if isinstance(executor, LocalProcesses):
        with _executor(sweep, sweep.jobs, stopped) as drawers:
            summary = _finish(sweep, manifest, bool(todo), drawers, stopped)
    summary.attrs["points_run"] = len(todo)
    return summary


@contextmanager
def _executor(sweep: _Sweep, points: int, stopped: dict) -> Iterator[Executor | None]:
    """The sweep's executor for `points` tasks (None: run them here, and mark the stop
    handler so: see `_stops_as_interrupts`)."""
    if isinstance(sweep.executor, Executor):
        yield sweep.executor
        return
    jobs = min(sweep.jobs, points)
    with _imports_frozen(), open_executor(sweep.executor, jobs, sweep.scheduler,
                                          sweep.quiet) as executor:
        stopped["inline"] = executor is None
        yield executor


@contextmanager
def _imports_frozen() -> Iterator[None]:
    """Python's garbage collector leaves what exists now alone while the points and plots
    run, here and in workers forked meanwhile (as the gc module advises before a fork):
    its full collections walked the ~10^5 objects of the imported libraries each time,
    ~0.2 s of a 16-point sweep in each process. Released afterwards, so that a notebook
    that sweeps keeps no garbage for good."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _prepare(sweep: _Sweep) -> Manifest:
    """Check the manifest (refuse another scenario's folder unless forced), clear netmodel's
    leftovers, write the manifest; return it."""
    out_dir, digest = sweep.out_dir, sweep.loaded.digest
    old = read_manifest(out_dir)
    if old is not None and old.digest != digest:
        if not sweep.force:
            raise NetmodelError(f"{out_dir} holds results of a different scenario, profile or "
                                f"netmodel version (digest {old.digest[:12]}, this one "
                                f"{digest[:12]}); use another --out or --force", field="--out")
        discard(out_dir, old)
        old = None
    manifest = Manifest(digest, len(sweep.points), old.plots if old is not None else ())
    _write_if_changed(out_dir / MANIFEST, manifest.as_bytes())
    make_folder(out_dir / POINTS)
    remove_leftovers([out_dir, out_dir / POINTS, out_dir / PLOTS])
    if sweep.metrics_dir is not None:
        make_folder(sweep.metrics_dir, "--metrics")
        remove_leftovers([sweep.metrics_dir], "--metrics")
    return manifest


def _todo(sweep: _Sweep) -> list[SweepPoint]:
    """The points to run: those without a sound point file of their digest, and done ones
    whose metrics files are missing. Says what it found unless quiet; damaged point files
    always."""
    todo, rerun = [], 0
    for point in sweep.points:
        if _stored(sweep, point, report=True) is None:
            todo.append(point)
        elif not all(f.is_file() for f in _metrics_files(sweep.metrics_dir, point)):
            todo.append(point)
            rerun += 1
    done, total = len(sweep.points) - len(todo), len(sweep.points)
    if not sweep.quiet and not todo:
        print(f"nothing to do: all {format_count(total, 'point')} done", file=sys.stderr)
    elif not sweep.quiet and done:
        print(f"resuming: {done} of {total} points already done", file=sys.stderr)
    if rerun and not sweep.quiet:
        print(f"running {format_count(rerun, 'done point')} again: --metrics files missing",
              file=sys.stderr)
    return todo


def _stored(sweep: _Sweep, point: SweepPoint, report: bool = False) -> pa.Table | None:
    """The point's rows on disk if sound and of its digest; a damaged file is said (with
    `report`) and counts as missing."""
    try:
        return read_point(_point_file(sweep.out_dir, point), sweep.digests[point.point_id])
    except DamagedPoint as bad:
        if report:
            print(f"netmodel: {bad.path}: {bad.reason}; running point {point.point_id} again",
                  file=sys.stderr)
        return None


def _count_done(sweep: _Sweep) -> int:
    """Points with a sound file on disk (Ctrl-C may land between a file and the count)."""
    return sum(_stored(sweep, p) is not None for p in sweep.points)


def _run_points(sweep: _Sweep, todo: list[SweepPoint], stopped: dict, executor: Executor | None) -> None:
    """Run `todo` with a progress bar, writing each point's files as it finishes; a stop
    (`stopped`, see `_stops_as_interrupts`) is looked at between points and while
    waiting for one."""
    if not todo:
        return
    done = len(sweep.points) - len(todo)
    wanted = {p.point_id for p in sweep.points if _metrics_files(sweep.metrics_dir, p)}
    # Workers start before the progress bar's thread, so they fork a one-thread process.
    with _results(sweep, todo, wanted, stopped, executor) as results, \
            tqdm(total=len(sweep.points), initial=done, desc=sweep.loaded.scenario.name,
                 unit="point", disable=sweep.quiet, file=sys.stderr) as bar:
        for point, (rows, texts) in results:
            _stop_if(stopped)
            # Metrics first: a point file on disk means its metrics are there too.
            for path, text in zip(_metrics_files(sweep.metrics_dir, point), texts):
                write_atomic(path, text.encode(), "--metrics")
            write_atomic(_point_file(sweep.out_dir, point),
                         point_bytes(_records(point, sweep.axes, rows),
                                     sweep.digests[point.point_id]))
            bar.update()


@contextmanager
def _results(sweep: _Sweep, todo: list[SweepPoint], wanted: set[int], stopped: dict,
             executor: Executor | None) -> Iterator[Iterator[tuple[SweepPoint, tuple[list[dict], Metrics]]]]:
    """Give an iterator of (point, (rows, metrics)) in finishing order, the points run by
    `executor` (None: here); metrics only for the point ids in `wanted`. Interrupted, the
    points not finished are cancelled."""
    args = {p.point_id: (sweep.runner, p.scenario, p.profile, p.point_id in wanted, sweep.engine)
            for p in todo}
    if executor is None:
        yield ((p, _run_one(*args[p.point_id])) for p in todo)
        return
    futures = {executor.submit(_run_one, *args[p.point_id]): p for p in todo}
    if isinstance(executor, LocalProcesses):  # forked: meanwhile, what the plots' workers inherit
        import netmodel.results.plots  # noqa: F401
    try:
        yield ((futures[f], f.result()) for f in _as_completed(futures, stopped))
    except BaseException:
        for future in futures:
            future.cancel()
        raise


def _stop_if(stopped: dict) -> None:
    if "signal" in stopped:
        raise KeyboardInterrupt


def _as_completed(futures: dict, stopped: dict, poll: float = 0.2) -> Iterator:
    """The futures as they finish (as `concurrent.futures.as_completed`), looking at
    `stopped` at least every `poll` seconds."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=poll, return_when=FIRST_COMPLETED)
        _stop_if(stopped)
        yield from done


def _run_one(runner: Runner, scenario: Scenario, profile: Profile, metrics: bool,
             engine: str) -> tuple[list[dict], Metrics]:
    """One point's rows and, if `metrics`, its Prometheus texts (as text: they go back to
    the parent, which writes them; a worker writes nothing)."""
    if not metrics:
        return runner(scenario, profile, None, engine), ()
    from netmodel.results.prometheus import prometheus_histograms

    texts: dict[int, str] = {}

    def collect(replication: int, result) -> None:
        texts[replication] = prometheus_histograms(result)

    rows = runner(scenario, profile, collect, engine)
    expected = list(range(scenario.run.replications))
    if sorted(texts) != expected:
        raise RuntimeError(f"the runner gave control-plane results for replications "
                           f"{sorted(texts)}, expected {expected}")
    return rows, tuple(texts[r] for r in expected)


def _finish(sweep: _Sweep, manifest: Manifest, ran: bool, executor: Executor | None,
            stopped: dict) -> pd.DataFrame:
    """Write the summary and meta.json where they changed, draw the plots (on `executor`'s
    workers if any) unless the summary is unchanged and they are all there; return the
    summary."""
    out_dir = sweep.out_dir
    summary = pd.concat([_sound(sweep, p).to_pandas() for p in sweep.points], ignore_index=True)
    before = {name: read_if_exists(out_dir / name) for name in OUTPUTS}
    after = {SUMMARY_PARQUET: _summary_parquet(summary, sweep.loaded.digest),
             SUMMARY_CSV: summary.to_csv(index=False).encode(),
             META: json_bytes(_meta(sweep)), **inputs_bytes(sweep.loaded)}
    if not ran and before[META] is not None:
        after[META] = before[META]  # nothing ran: meta.json still says what made the points
    redraw = before[SUMMARY_PARQUET] != after[SUMMARY_PARQUET] or not manifest.plots or \
        not all((out_dir / PLOTS / name).is_file() for name in manifest.plots)
    if redraw and manifest.plots:  # stopped before the new plots are recorded: redraw then
        _write_if_changed(out_dir / MANIFEST, Manifest(manifest.digest, manifest.points).as_bytes())
    drawing = _start_drawing(sweep, summary, executor) if redraw else {}
    for name, data in after.items():  # while workers draw
        _write_if_changed(out_dir / name, data, before[name])
    summary.attrs["plots"] = _store_plots(sweep, manifest, drawing, stopped) if redraw \
        else list(manifest.plots)
    summary.attrs["plots_drawn"] = redraw
    return summary


def _summary_parquet(summary: pd.DataFrame, digest: str) -> bytes:
    table = pa.Table.from_pandas(summary, preserve_index=False)
    return parquet_bytes(table.replace_schema_metadata(
        {**table.schema.metadata, b"netmodel.scenario_digest": digest.encode()}))


def _sound(sweep: _Sweep, point: SweepPoint) -> pa.Table:
    """The point's rows from its file, which this sweep has just checked or written."""
    try:
        table = read_point(_point_file(sweep.out_dir, point), sweep.digests[point.point_id])
    except DamagedPoint as bad:
        raise NetmodelError(f"{bad.reason} (damaged while the sweep ran); run the same "
                            "command again", file=str(bad.path)) from None
    if table is None:
        raise NetmodelError("disappeared while the sweep ran; run the same command again",
                            file=str(_point_file(sweep.out_dir, point)))
    return table


def _start_drawing(sweep: _Sweep, summary: pd.DataFrame,
                   executor: Executor | None) -> dict[str, Future | FigurePlan]:
    """The plots by name, being drawn on `executor`'s workers (the figures with the most
    panels handed out first, so that the workers finish together); with no executor,
    their plans, which `_store_plots` draws."""
    from netmodel.results.plots import figure_plans, render_png

    plans = figure_plans(summary, sweep.axes, sweep.series)
    if executor is None:
        return plans
    biggest_first = sorted(plans, key=lambda name: -plans[name].panel_count())
    futures = {name: executor.submit(render_png, plans[name]) for name in biggest_first}
    return {name: futures[name] for name in plans}


def _store_plots(sweep: _Sweep, manifest: Manifest, drawing: dict[str, Future | FigurePlan],
                 stopped: dict) -> list[str]:
    """Write the plots `_start_drawing` began (drawing here those it only planned), replace
    netmodel's old ones, record them in the manifest; return their file names."""
    from netmodel.results.plots import render_png

    plots_dir = sweep.out_dir / PLOTS
    make_folder(plots_dir)
    pending = {f: name for name, f in drawing.items() if isinstance(f, Future)}
    pngs = {name: render_png(plan) for name, plan in drawing.items() if not isinstance(plan, Future)}
    pngs.update({pending[f]: f.result() for f in _as_completed(pending, stopped)})
    names = []
    for name in drawing:
        names.append(f"{name}.png")
        _write_if_changed(plots_dir / names[-1], pngs[name])
    for stale in set(manifest.plots) - set(names):
        (plots_dir / stale).unlink(missing_ok=True)
    drawn = Manifest(manifest.digest, manifest.points, tuple(sorted(names)))
    _write_if_changed(sweep.out_dir / MANIFEST, drawn.as_bytes())
    return list(drawn.plots)


def _write_if_changed(path: Path, data: bytes, old: bytes | None = None) -> None:
    """Write `data` unless `path` already holds it (`old`: its bytes, if already read)."""
    if (old if old is not None else read_if_exists(path)) != data:
        write_atomic(path, data)


def _records(point: SweepPoint, axes: list[str], rows: list[dict]) -> list[dict]:
    """One point's rows as written: point_id, the swept axes, then the runner's columns."""
    return [{"point_id": point.point_id, **{a: point.values[a] for a in axes if a not in row},
             **row} for row in rows]


def _point_file(out_dir: Path, point: SweepPoint) -> Path:
    return out_dir / POINTS / f"{point.point_id:05d}.parquet"


def _has_metrics(point: SweepPoint) -> bool:
    return point.scenario.control_plane.enabled


def _metrics_files(metrics_dir: Path | None, point: SweepPoint) -> list[Path]:
    """DIR/point-00000-r0.prom ... for each replication of a control-plane point."""
    if metrics_dir is None or not _has_metrics(point):
        return []
    return metrics_paths(metrics_dir, f"point-{point.point_id:05d}", point.scenario.run.replications)


def _meta(sweep: _Sweep) -> dict[str, Any]:
    loaded, run = sweep.loaded, sweep.loaded.scenario.run
    executor = sweep.executor
    if isinstance(executor, Executor):
        executor = f"{type(executor).__module__}.{type(executor).__qualname__}"
    return {"scenario": loaded.scenario.name, "file": loaded.file,
            "scenario_digest": loaded.digest, "seed": run.seed,
            "replications": run.replications,
            "profile": {"name": loaded.profile.name, "digest": loaded.profile.digest()},
            "axes": sweep.axes, "points": len(sweep.points),
            "engine": _engines(sweep.points, sweep.engine), "executor": executor,
            "versions": package_versions()}


def _engines(points: list[SweepPoint], asked: str) -> dict[str, Any]:
    """Which engine walked the points: asked, ran (engine -> points) and, where auto did not
    take the first engine, why."""
    ran: dict[str, int] = {}
    why: set[str] = set()
    for point in points:
        chosen, reason = engine_for(point.scenario, asked)
        ran[chosen.name] = ran.get(chosen.name, 0) + 1
        if reason:
            why.add(reason)
    return {"asked": asked, "ran": ran, "fallback": sorted(why)}
