"""Resumable sweeps: every point of a scenario's sweep, one file per point, then a summary.

The output folder holds

    manifest.json            scenario digest and number of points (guards resumption)
    .lock                    held (flock) while a sweep writes here: a second one refuses
    points/00000.parquet     the summary rows of one point, with the point's digest
    summary.parquet/.csv     all points' rows, sorted by point_id
    meta.json                what ran: scenario, profile, axes, package versions
    plots/*.png              see `netmodel.results.plots`

With `metrics_dir` (`netmodel sweep --metrics DIR`), every point whose scenario has
`control_plane.enabled` also gets kube-proxy's histograms in Prometheus text format, one
file per replication: `DIR/point-00000-r0.prom` (`prometheus_histograms`). A worker
returns them with the rows; they are written before the point file, so a point with a
point file has its metrics too. A point whose point file is up to date but whose metrics
files are missing is run again.

Every file is written atomically (temporary file, fsync, rename), so an interrupted
sweep leaves only whole point files; running it again skips them. Nothing in the
output depends on wall-clock time or on the number of worker processes: the same
input gives the same bytes.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, as_completed
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

try:
    import fcntl
except ImportError:  # not POSIX: sweeps into one folder are not guarded
    fcntl = None

import netmodel
from netmodel.costs.profile import Profile
from netmodel.engines import engine_for
from netmodel.errors import NetmodelError
from netmodel.results.prometheus import metrics_paths
from netmodel.runner.executors import LocalProcesses
from netmodel.scenario.digest import scenario_digest
from netmodel.scenario.loader import LoadedScenario
from netmodel.scenario.schema import Scenario
from netmodel.scenario.sweep import SweepPoint, expand_sweep
from netmodel.units import format_count

Runner = Callable[..., list[dict]]
"""`run_point`'s signature: (scenario, profile, control_sink, engine) -> the point's summary
rows; `control_sink(replication, ControlPlaneResult)` is None unless the point's metrics
are wanted."""

Metrics = tuple[str, ...]
"""One point's Prometheus texts, by replication; empty when not wanted."""

MANIFEST = "manifest.json"
LOCK = ".lock"
POINTS = "points"
PLOTS = "plots"
SUMMARY_PARQUET = "summary.parquet"
SUMMARY_CSV = "summary.csv"
META = "meta.json"
_TMP_GLOB = ".*.tmp"
_METRICS_TMP_GLOB = ".point-*.prom.*.tmp"
_DIGEST_KEY = b"netmodel.point_digest"
_VERSIONED = ("simpy", "numba", "numpy", "pandas", "pyarrow", "pydantic", "matplotlib")


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; `done` of `total` points have their files on disk."""

    def __init__(self, done: int, total: int):
        super().__init__(f"{done} of {total} points done")
        self.done = done
        self.total = total


def run_sweep(loaded: LoadedScenario, out_dir: Path, *, jobs: int = 1, quiet: bool = False,
              force: bool = False, runner: Runner | None = None,
              metrics_dir: Path | None = None, executor: Executor | None = None,
              engine: str = "auto", series: str | None = None) -> pd.DataFrame:
    """Run every sweep point not yet on disk in `out_dir`; return the summary table.

    The table has `point_id`, one column per swept axis (dotted name, SI value) and
    the runner's columns (times in seconds), one row per point and traffic kind.
    `executor` runs the points (any `concurrent.futures.Executor`; the caller keeps it);
    without one, `jobs` > 1 runs them in that many local processes and one runs them
    here. `force` discards results of a
    different scenario instead of refusing. `metrics_dir`: also write the Prometheus
    text of every control-plane point (see the module's docstring); a NetmodelError if
    no point has `control_plane.enabled`. `series`: the axis the plots tell apart by
    colour (default: see `netmodel.results.plots.layout`). Raises `SweepInterrupted` on Ctrl-C.
    """
    if runner is None:
        from netmodel.runner.point import run_point as runner
    out_dir = Path(out_dir)
    points = sorted(expand_sweep(loaded), key=lambda p: p.point_id)
    axes = list(loaded.scenario.sweep.axes) if loaded.scenario.sweep else []
    if metrics_dir is not None:
        metrics_dir = Path(metrics_dir)
        if not any(_has_metrics(p) for p in points):
            raise NetmodelError("needs control_plane.enabled: true in the scenario or in one "
                                "of its sweep points", field="--metrics")
    out_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(out_dir):
        summary = _run_locked(loaded, out_dir, points, axes, jobs, quiet, force, runner,
                              metrics_dir, executor, engine)
        from netmodel.results.plots import plot_summary  # matplotlib once the workers are gone
        plot_summary(summary, axes, out_dir / PLOTS, series)
        return summary


@contextmanager
def _exclusive(out_dir: Path) -> Iterator[None]:
    """Hold `out_dir/.lock` for the sweep: two sweeps writing one folder would clear each
    other's temporary files and interleave point files. The kernel releases the lock when
    the process ends, however it ends."""
    with open(out_dir / LOCK, "a") as handle:
        if fcntl is None:
            yield
            return
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NetmodelError(f"another netmodel sweep is writing to {out_dir}; wait for it "
                                "to end or use another --out", field="--out") from None
        yield


def _run_locked(loaded: LoadedScenario, out_dir: Path, points: list[SweepPoint], axes: list[str],
                jobs: int, quiet: bool, force: bool, runner: Runner,
                metrics_dir: Path | None, executor: Executor | None, engine: str) -> pd.DataFrame:
    """`run_sweep` once it holds the folder's lock."""
    _prepare(out_dir, loaded.digest, len(points), force)
    if metrics_dir is not None:
        metrics_dir.mkdir(parents=True, exist_ok=True)
        for tmp in metrics_dir.glob(_METRICS_TMP_GLOB):
            tmp.unlink()

    digests = {p.point_id: scenario_digest(p.scenario, p.profile) for p in points}
    todo = [p for p in points if _stored_digest(_point_file(out_dir, p)) != digests[p.point_id]]
    # A done point without all its metrics files is run again (its point file is rewritten
    # with the same bytes).
    stale = {p.point_id for p in todo}
    rerun = [p for p in points if p.point_id not in stale
             and not all(f.is_file() for f in _metrics_files(metrics_dir, p))]
    todo = sorted(todo + rerun, key=lambda p: p.point_id)
    done = len(points) - len(todo)
    if done and not quiet:
        print(f"resuming: {done} of {len(points)} points already done", file=sys.stderr)
    if rerun and not quiet:
        print(f"running {format_count(len(rerun), 'done point')} again: --metrics files missing",
              file=sys.stderr)
    wanted = {p.point_id for p in points if _metrics_files(metrics_dir, p)}
    try:
        # Workers start before the progress bar's thread, so they fork a one-thread process.
        with _results(todo, runner, wanted, jobs, executor, engine) as results, \
                tqdm(total=len(points), initial=done, desc=loaded.scenario.name, unit="point",
                     disable=quiet, file=sys.stderr) as bar:
            for point, (rows, texts) in results:
                # Metrics first: a point file on disk means its metrics are there too.
                for path, text in zip(_metrics_files(metrics_dir, point), texts):
                    _write_atomic(path, text.encode())
                _write_point(out_dir, point, axes, rows, digests[point.point_id])
                done += 1
                bar.update()
    except KeyboardInterrupt:
        # Count what is on disk: Ctrl-C may land between a point's file and `done += 1`.
        done = sum(_stored_digest(_point_file(out_dir, p)) == digests[p.point_id] for p in points)
        raise SweepInterrupted(done, len(points)) from None

    summary = pd.concat([pd.read_parquet(_point_file(out_dir, p)) for p in points],
                        ignore_index=True)
    table = pa.Table.from_pandas(summary, preserve_index=False)
    table = table.replace_schema_metadata({**table.schema.metadata,
                                           b"netmodel.scenario_digest": loaded.digest.encode()})
    _write_atomic(out_dir / SUMMARY_PARQUET, _parquet_bytes(table))
    _write_atomic(out_dir / SUMMARY_CSV, summary.to_csv(index=False).encode())
    _write_atomic(out_dir / META, _json_bytes(_meta(loaded, axes, points, engine)))
    return summary


def _prepare(out_dir: Path, digest: str, n_points: int, force: bool) -> None:
    """Check the manifest (refuse another scenario's folder), clear leftovers, write it."""
    manifest = out_dir / MANIFEST
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text(encoding="utf-8")).get("digest")
        except (ValueError, AttributeError):
            old = "unreadable"
        if old != digest:
            if not force:
                raise NetmodelError(f"{out_dir} holds results of a different scenario (digest "
                                    f"{str(old)[:12]}, this one {digest[:12]}); use another "
                                    "--out or --force")
            for name in (POINTS, PLOTS):
                shutil.rmtree(out_dir / name, ignore_errors=True)
            for name in (SUMMARY_PARQUET, SUMMARY_CSV, META):
                (out_dir / name).unlink(missing_ok=True)
    (out_dir / POINTS).mkdir(parents=True, exist_ok=True)
    for folder in (out_dir, out_dir / POINTS):
        for tmp in folder.glob(_TMP_GLOB):
            tmp.unlink()
    _write_atomic(manifest, _json_bytes({"digest": digest, "points": n_points}))


@contextmanager
def _results(todo: list[SweepPoint], runner: Runner, wanted: set[int], jobs: int,
             executor: Executor | None, engine: str) -> Iterator[Iterator[tuple[SweepPoint, tuple[list[dict], Metrics]]]]:
    """Give an iterator of (point, (rows, metrics)) in finishing order, the points run by
    `executor`, by local processes of our own (`jobs` > 1), or here; metrics only for the
    point ids in `wanted`. Interrupted, the points not finished are cancelled, and workers
    of our own are ended."""
    own = None
    if executor is None and jobs > 1 and len(todo) > 1:
        executor = own = LocalProcesses(min(jobs, len(todo)))
    if executor is None:
        yield ((p, _run_one(runner, p.scenario, p.profile, p.point_id in wanted, engine))
               for p in todo)
        return
    futures = {executor.submit(_run_one, runner, p.scenario, p.profile, p.point_id in wanted,
                               engine): p for p in todo}
    try:
        yield ((futures[f], f.result()) for f in as_completed(futures))
    except BaseException:
        for future in futures:
            future.cancel()
        if own is not None:
            own.terminate()
        raise
    finally:
        if own is not None:
            own.shutdown(wait=True)


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


def _point_name(point: SweepPoint) -> str:
    return f"{point.point_id:05d}"


def _point_file(out_dir: Path, point: SweepPoint) -> Path:
    return out_dir / POINTS / f"{_point_name(point)}.parquet"


def _has_metrics(point: SweepPoint) -> bool:
    return point.scenario.control_plane.enabled


def _metrics_files(metrics_dir: Path | None, point: SweepPoint) -> list[Path]:
    """DIR/point-00000-r0.prom ... for each replication of a control-plane point."""
    if metrics_dir is None or not _has_metrics(point):
        return []
    return metrics_paths(metrics_dir, f"point-{_point_name(point)}", point.scenario.run.replications)


def _stored_digest(path: Path) -> str | None:
    """The point digest recorded in a point file, None if absent or unreadable."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException):
        return None
    value = meta.get(_DIGEST_KEY)
    return value.decode() if value is not None else None


def _write_point(out_dir: Path, point: SweepPoint, axes: list[str], rows: list[dict],
                 digest: str) -> None:
    """Write one point's rows: point_id, the swept axes, then the runner's columns."""
    records = [{"point_id": point.point_id,
                **{a: point.values[a] for a in axes if a not in row}, **row} for row in rows]
    table = pa.Table.from_pandas(pd.DataFrame.from_records(records), preserve_index=False)
    table = table.replace_schema_metadata({**table.schema.metadata, _DIGEST_KEY: digest.encode()})
    _write_atomic(_point_file(out_dir, point), _parquet_bytes(table))


def _meta(loaded: LoadedScenario, axes: list[str], points: list[SweepPoint], engine: str) -> dict[str, Any]:
    run = loaded.scenario.run
    versions = {"netmodel": netmodel.__version__, "python": platform.python_version()}
    versions.update({name: metadata.version(name) for name in _VERSIONED})
    return {"scenario": loaded.scenario.name, "file": loaded.file,
            "scenario_digest": loaded.digest, "seed": run.seed,
            "replications": run.replications,
            "profile": {"name": loaded.profile.name, "digest": loaded.profile.digest()},
            "axes": axes, "points": len(points), "engine": _engines(points, engine),
            "versions": versions}


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



def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _json_bytes(doc: dict) -> bytes:
    return (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode()


def _write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` by `data` so that readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
