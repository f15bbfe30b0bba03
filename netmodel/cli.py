"""The `netmodel` command: parses, calls the Python API (`netmodel.api`), prints.

    netmodel check SCENARIO [--set PATH=VALUE ...]
    netmodel run SCENARIO [--point N] [--set PATH=VALUE ...] [--json] [--metrics DIR]
    netmodel sweep SCENARIO [--set ...] [--out DIR] [--jobs N] [--executor local|dask]
                   [--scheduler ADDRESS] [--quiet] [--force] [--metrics DIR]
    netmodel import kubectl DIR -o FILE [--force]
    netmodel trace SCENARIO --traffic KIND [--set ...] [--service NAME] [--format json]
    netmodel compare SCENARIO --vs FIELD=A,B[,...] [--vs OTHER=C,D[,...]] [--set ...]
                     [--out DIR] [--jobs N] [--executor local|dask] [--scheduler ADDRESS]
                     [--quiet] [--force]
    netmodel report DIR
    netmodel calibrate lab --out PROFILE.yaml [--quick] [--iptables-backend auto|nft|legacy] [--force]
    netmodel validate [--profile P] [--report FILE.md] [--quick] [--group G] [--case NAME]

A mistake in the input is reported as one line, `netmodel: error: file:line: field:
message`, with exit status 2; Ctrl-C exits with 130; a sweep stopped by SIGTERM exits
with 143 (128 + the signal, as a shell reports it), resumable like one stopped by Ctrl-C.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import math
import os
import signal
import sys
from pathlib import Path
from typing import Any

from netmodel import __version__, api
from netmodel.engines import AUTO, ENGINE_CHOICES
from netmodel.engines.fast import without_blas
from netmodel.errors import NetmodelError
from netmodel.paths.dataplane import dataplane_of
from netmodel.paths.reachability import OUTSIDE_IN
from netmodel.runner.executors import EXECUTORS
from netmodel.scenario.overrides import read_setting
from netmodel.units import format_count
from netmodel.vocabulary import TRAFFIC_KINDS

EXIT_USAGE = 2
EXIT_SIGNAL = 128
"""Stopped by signal N: exit 128 + N, as shells report it (Ctrl-C: 130, SIGTERM: 143)."""
EXIT_INTERRUPTED = EXIT_SIGNAL + signal.SIGINT

atexit.register(gc.freeze)
"""At exit, Python's last full garbage collection walks every object the command made
(~240,000 after a sweep: 0.4 s) only for the process to end; frozen, they are skipped."""

# The `run` table: heading, row key, multiplier from SI (None: shown as is), format.
_TABLE = (
    ("traffic", "traffic", None, ""),
    ("requests", "requests", None, ""),
    ("completed", "completed", None, ""),
    ("dropped", "dropped", None, ""),
    ("p50 (ms)", "p50_s", 1e3, ".4g"),
    ("p99 (ms)", "p99_s", 1e3, ".4g"),
    ("throughput (req/s)", "throughput_rps", 1.0, ".1f"),
    ("rule lookup CPU (µs/req)", "rule_lookup_cpu_s_per_request", 1e6, ".3g"),
)


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]); return the exit status."""
    args = _parser().parse_args(argv)
    without_blas()
    try:
        return args.command(args)
    except NetmodelError as err:
        print(f"netmodel: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("netmodel: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `netmodel trace ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netmodel", description="Discrete-event capacity model of Kubernetes networking.")
    parser.add_argument("--version", action="version", version=f"netmodel {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    check = _with_scenario(commands.add_parser("check", help="validate a scenario file and its sweep"))
    check.set_defaults(command=_check)

    run = _with_scenario(commands.add_parser("run", help="simulate one point and print its summary"))
    run.add_argument("--point", type=int, metavar="N",
                     help="run sweep point N (default: the scenario without its sweep)")
    run.add_argument("--json", action="store_true", help="print the rows as JSON")
    _with_engine(run)
    run.add_argument("--metrics", type=Path, metavar="DIR",
                     help="write kube-proxy's control-plane histograms in Prometheus text "
                          "format to DIR (needs control_plane.enabled)")
    run.set_defaults(command=_run)

    trace = _with_scenario(commands.add_parser("trace", help="print the hop-by-hop path of a traffic kind"))
    traceable = TRAFFIC_KINDS + tuple(OUTSIDE_IN)
    trace.add_argument("--traffic", required=True, choices=traceable, metavar="KIND",
                       help="traffic kind: " + ", ".join(traceable))
    trace.add_argument("--service", metavar="NAME",
                       help="Service name or namespace/name (default: the most popular one "
                            "the traffic kind can call)")
    trace.add_argument("--format", choices=("text", "json"), default="text")
    trace.set_defaults(command=_trace)

    sweep = _with_scenario(commands.add_parser("sweep", help="run every sweep point (resumable) and plot"))
    sweep.add_argument("--out", type=Path, metavar="DIR",
                       help="output folder (default: results/<scenario name>)")
    _with_executor(sweep)
    sweep.add_argument("--force", action="store_true",
                       help="replace netmodel's results of a different scenario in the "
                            "output folder (never other files)")
    sweep.add_argument("--metrics", type=Path, metavar="DIR",
                       help="also write kube-proxy's control-plane histograms in Prometheus "
                            "text format, DIR/point-<id>-r<replication>.prom for every point "
                            "with control_plane.enabled; a done point without them runs again")
    sweep.set_defaults(command=_sweep)
    _add_compare(commands)
    report = commands.add_parser("report", help="write DIR/report.html: one self-contained page "
                                                "of a results folder")
    report.add_argument("directory", type=Path, metavar="DIR",
                        help="a results folder (netmodel sweep or netmodel compare)")
    report.set_defaults(command=_report)
    _add_import(commands)
    _add_calibrate(commands)
    _add_validate(commands)
    return parser


def _with_executor(command: argparse.ArgumentParser) -> None:
    """Where a sweep's points run: --jobs, --executor, --scheduler, --quiet, --engine."""
    command.add_argument("--jobs", type=_positive_int, default=1, metavar="N",
                         help="worker processes (default: 1), also of a Dask LocalCluster; "
                              "results do not depend on it")
    command.add_argument("--executor", choices=EXECUTORS, default=None,
                         help="where points run: local processes (default), or Dask "
                              "distributed (a LocalCluster, or the cluster at --scheduler); "
                              "results do not depend on it")
    command.add_argument("--scheduler", metavar="ADDRESS",
                         help="a Dask scheduler's address, e.g. tcp://10.0.0.5:8786 "
                              "(implies --executor dask)")
    command.add_argument("--quiet", action="store_true", help="no progress bar")
    _with_engine(command)


def _add_compare(commands: argparse._SubParsersAction) -> None:
    """`netmodel compare SCENARIO --vs FIELD=A,B [--vs OTHER=C,D]`: the rollout decision as
    one command."""
    compare = _with_scenario(commands.add_parser(
        "compare", help="compare settings of one field: decision table and verdict",
        description="Run the scenario's sweep (or, without one, a range of Service count and "
                    "request rate around its own values) under each setting of FIELD, and a "
                    "rolling update under each when the scenario does not simulate the control "
                    "plane; print the decision table at the scenario's own point and a verdict; "
                    "write a results folder."))
    compare.add_argument("--vs", required=True, action="append", metavar="FIELD=A,B[,...]",
                         help="the field and the settings to compare, the first the baseline, "
                              "e.g. kube_proxy.mode=iptables,nftables,ebpf (values read as YAML); "
                              "repeated, a field that moves along the first, one value per "
                              "setting, e.g. --vs cluster.cni_datapath=vxlan,native,native")
    compare.add_argument("--out", type=Path, metavar="DIR",
                         help="output folder (default: results/<scenario name>-compare)")
    _with_executor(compare)
    compare.add_argument("--force", action="store_true",
                         help="replace results of a different comparison in the output folder")
    compare.set_defaults(command=_compare)


def _with_engine(command: argparse.ArgumentParser) -> None:
    command.add_argument("--engine", choices=ENGINE_CHOICES, default=AUTO,
                         help="what walks the requests: auto (the first engine that runs each "
                              "replication exactly), or one by name; results do not depend on it")


def _with_scenario(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The SCENARIO argument and `--set`, as every scenario command takes them."""
    command.add_argument("scenario", metavar="SCENARIO", help="scenario YAML file")
    command.add_argument("--set", dest="settings", action="append", type=_setting, default=[],
                         metavar="PATH=VALUE",
                         help="set a field by dotted path before validation, e.g. "
                              "services.count=100 (VALUE is read as YAML; repeatable)")
    return command


def _add_import(commands: argparse._SubParsersAction) -> None:
    """`netmodel import kubectl DIR -o FILE`: a scenario from a real cluster's listings."""
    sources = commands.add_parser("import", help="write a scenario from a real cluster") \
        .add_subparsers(title="sources", required=True, metavar="SOURCE")
    kubectl = sources.add_parser(
        "kubectl", help="from kubectl JSON: nodes.json, services.json (or svc.json), "
                        "endpointslices.json, optional pods.json",
        description="Write a scenario with the cluster's nodes, Services and ready endpoints "
                    "from the output of 'kubectl get nodes -o json > nodes.json', "
                    "'kubectl get svc -A -o json > services.json', 'kubectl get endpointslices "
                    "-A -o json > endpointslices.json' and, optionally, 'kubectl get pods -A "
                    "-o json > pods.json' in DIR.")
    kubectl.add_argument("directory", metavar="DIR", help="folder with the kubectl JSON files")
    kubectl.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                         help="scenario YAML file to write")
    kubectl.add_argument("--force", action="store_true", help="replace FILE if it exists")
    kubectl.set_defaults(command=_import_kubectl)


def _add_calibrate(commands: argparse._SubParsersAction) -> None:
    """`netmodel calibrate lab --out PROFILE.yaml`: measure this kernel, write a profile."""
    lab = commands.add_parser("calibrate", help="measure this machine and write a cost profile") \
        .add_subparsers(title="methods", required=True, metavar="METHOD").add_parser(
            "lab", help="measure this kernel in network namespaces (Linux, root)",
            description="Build a small cluster from network namespaces the lab creates and removes, "
                        "measure round trips, new connections through kube-proxy's iptables and "
                        "nftables rules, streams and rule programming, and write a complete profile "
                        "(PROFILE.yaml) with its samples, record and plots beside it. See "
                        "docs/calibration.md.")
    lab.add_argument("--out", type=Path, required=True, metavar="PROFILE.yaml", help="profile to write")
    lab.add_argument("--quick", action="store_true", help="a small run (under two minutes), as CI does")
    lab.add_argument("--iptables-backend", choices=("auto", "nft", "legacy"), default="auto",
                     help="iptables backend to measure (auto: the one `iptables -V` names)")
    lab.add_argument("--force", action="store_true", help="replace PROFILE.yaml if it exists")
    lab.set_defaults(command=_calibrate)


def _add_validate(commands: argparse._SubParsersAction) -> None:
    """`netmodel validate`: the model against theory, published figures and the lab."""
    from netmodel.validation.cases import GROUPS

    validate = commands.add_parser(
        "validate", help="check the model against queueing theory, published figures and the lab",
        description="Print a table of validation cases (reference figure, model figure, error, "
                    "tolerance, pass/fail); exit 0 when all pass, 1 otherwise. See docs/validation.md.")
    validate.add_argument("--profile", default="default", metavar="P",
                          help="cost profile: a shipped name or a YAML file (one the lab wrote also "
                               "brings its measurements)")
    validate.add_argument("--report", type=Path, metavar="FILE.md", help="also write the table as Markdown")
    validate.add_argument("--quick", action="store_true", help="shorter theory runs, wider tolerances")
    validate.add_argument("--group", action="append", choices=GROUPS, dest="groups", metavar="GROUP",
                          help=f"only this group ({', '.join(GROUPS)}); repeatable")
    validate.add_argument("--case", action="append", dest="cases", metavar="NAME",
                          help="only this case (--list shows their names); repeatable")
    validate.add_argument("--list", action="store_true", help="list the cases and exit")
    validate.set_defaults(command=_validate)


def _calibrate(args: argparse.Namespace) -> int:
    from netmodel.calibration.netns import LabInterrupted

    out: Path = args.out
    if out.exists() and not args.force:
        raise NetmodelError("exists; give --force to replace it", file=str(out))
    try:
        files = api.calibrate(out, quick=args.quick, iptables_backend=args.iptables_backend,
                              progress=lambda text: print(f"lab: {text}", file=sys.stderr, flush=True))
    except LabInterrupted as stop:
        print(f"netmodel: calibrate lab stopped by {signal.Signals(stop.signal).name}; its namespaces "
              "are removed", file=sys.stderr)
        return EXIT_SIGNAL + stop.signal
    from netmodel.calibration.fits import Estimate

    print(f"wrote {files.profile}, {files.samples.name}, {files.record.name} and "
          f"{format_count(len(files.plots), 'plot')} in {files.plots[0].parent}/")
    record = json.loads(files.record.read_text())
    for name, est in record["estimates"].items():
        estimate = Estimate(est["value"], est["low"], est["high"], est["samples"])
        print(f"  {name}: {estimate.text()}" + (" -> 0 taken" if est["note"] else ""))
    for what, why in record["skipped"].items():
        print(f"  skipped {what}: {why}")
    print(f"next: netmodel validate --profile {files.profile}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    if args.list:
        from netmodel.validation.cases import ordered

        for case in ordered():
            print(f"{case.group:9}  {case.name:46}  {case.summary}")
        return 0
    report = api.validate(args.profile, quick=args.quick, groups=args.groups, cases=args.cases,
                          progress=lambda name: print(f"validate: {name}", file=sys.stderr, flush=True))
    print(report.text())
    if args.report is not None:
        args.report.write_text(report.markdown(), encoding="utf-8")
        print(f"wrote {args.report}")
    return 0 if report.passed else 1


def _check(args: argparse.Namespace) -> int:
    loaded = _load(args)
    points = format_count(len(api.points(loaded)), "sweep point")
    print(f"ok: {loaded.file}: scenario '{loaded.scenario.name}', {points}, "
          f"profile {loaded.profile.name}")
    return 0


def _run(args: argparse.Namespace) -> int:
    loaded = _load(args)
    try:
        scenario, _ = api.point(loaded, args.point)
    except NetmodelError as err:
        raise NetmodelError(err.message, field="--point") from None
    table = api.run(loaded, point_id=args.point, metrics_dir=args.metrics, engine=args.engine)
    rows = table.to_dict("records")
    if args.json:
        print(json.dumps([{k: _json_safe(v) for k, v in row.items()} for row in rows], indent=2))
        return 0
    where = ""
    if args.point is not None:
        values = next(p.values for p in api.points(loaded) if p.point_id == args.point)
        where = f", point {args.point}: " + ", ".join(f"{k}={_plain(v)}" for k, v in values.items())
    fallback = table.attrs["engine_fallback"]
    print(f"scenario '{scenario.name}', {dataplane_of(scenario).describe()}{where}; engine "
          f"{table.attrs['engine']}" + (f" ({fallback})" if fallback else ""))
    print(_table(rows))
    if rows and not math.isnan(rows[0]["conntrack_entries"]):
        print(_conntrack_line(rows[0], scenario))
    if scenario.control_plane.enabled and rows:
        print(_control_plane_lines(rows))
    return 0


def _conntrack_line(row: dict, scenario) -> str:
    bpf = row["conntrack_table"] == "bpf-ct"
    size = (f"the BPF conntrack map's {scenario.kube_proxy.ebpf.ct_entries():,} entries" if bpf
            else f"nf_conntrack_max {scenario.cluster.conntrack_max:,}")
    full = ("full: the LRU map evicts its oldest entries" if bpf
            else "full: the kernel would drop new connections")
    return (f"conntrack: busiest node ~{row['conntrack_entries']:,.0f} entries in steady state, "
            f"{row['conntrack_fill']:.1%} of {size}" + (f" ({full})" if row["conntrack_fill"] >= 1 else ""))


def _control_plane_lines(rows: list[dict]) -> str:
    r = rows[0]
    stale = sum(row["dropped_stale_endpoint"] for row in rows)
    requests = sum(row["requests"] for row in rows)
    window = ("no endpoint removed" if math.isnan(r["stale_window_p50_s"]) else
              f"stale window p50 {r['stale_window_p50_s']:.3g} s, "
              f"p99 {r['stale_window_p99_s']:.3g} s, max {r['stale_window_max_s']:.3g} s")
    return (f"control plane: network programming p50 {r['network_programming_p50_s']:.3g} s, "
            f"p90 {r['network_programming_p90_s']:.3g} s, p99 {r['network_programming_p99_s']:.3g} s; "
            f"sync p50 {r['sync_proxy_rules_p50_s']:.3g} s, p99 {r['sync_proxy_rules_p99_s']:.3g} s; "
            f"watch egress {r['watch_bytes_per_s']:,.0f} B/s\n"
            f"churn: {r['endpoint_updates']:g} EndpointSlice updates per replication; {window}; "
            f"stale-endpoint failures {stale:,} of {requests:,} requests")


def _trace(args: argparse.Namespace) -> int:
    loaded = _load(args)
    found = api.trace(loaded, args.traffic, args.service)
    if not found.reachable:  # as `run` says of a kind in the mix that cannot work: exit 2
        raise NetmodelError(f"traffic kind {found.traffic} cannot work here: {found.reason}",
                            file=loaded.file, field="--traffic")
    if args.format == "json":
        print(json.dumps(found.as_dict(), indent=2))
        return 0
    scenario = loaded.scenario
    target = found.service if found.traffic.startswith("pod-pod") else f"Service {found.service}"
    print(f"{found.traffic} to {target}; {dataplane_of(scenario).describe()}")
    print(f"placement: {found.placement}")
    rows = [("phase", "layer", "where", "component", "zero-load", "station", "what happens")]
    rows += [(h.phase, h.layer, h.where, h.component, f"{h.cost_s * 1e6:.2f} µs", h.station, h.action)
             for h in found.hops]
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:6], widths)) + "  " + r[6])
    print("zero-load total: " + ", ".join(f"{phase} {t * 1e3:.3f} ms"
                                          for phase, t in found.totals().items()))
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from netmodel.runner.sweep import SweepInterrupted

    loaded = _load(args)
    out = args.out if args.out is not None else Path("results") / loaded.scenario.name
    try:
        summary = api.sweep(loaded, out, jobs=args.jobs, executor=args.executor,
                            scheduler=args.scheduler, quiet=args.quiet, force=args.force,
                            metrics_dir=args.metrics, engine=args.engine)
    except SweepInterrupted as stop:
        return _interrupted(stop)
    how = "wrote" if summary.attrs["points_run"] or summary.attrs["plots_drawn"] else "up to date"
    print(f"{how} {out}/: summary.parquet, summary.csv, meta.json, "
          f"{format_count(len(summary.attrs['plots']), 'plot')}")
    if args.metrics is not None:
        print(f"wrote {args.metrics}/: point-<id>-r<replication>.prom (Prometheus text)")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from netmodel.runner.sweep import SweepInterrupted

    loaded = _load(args)
    try:
        comparison = api.compare(loaded, args.vs, args.out, jobs=args.jobs,
                                 executor=args.executor, scheduler=args.scheduler,
                                 quiet=args.quiet, force=args.force, engine=args.engine)
    except SweepInterrupted as stop:
        return _interrupted(stop)
    print(comparison.text())
    print(f"wrote {comparison.folder}/: decision.csv, comparison.json, summary, plots; "
          f"netmodel report {comparison.folder} makes one page of it")
    return 0


def _interrupted(stop) -> int:
    """Say how far a stopped sweep got; the exit status of the signal that stopped it."""
    how = "interrupted" if stop.signal == signal.SIGINT else \
        f"stopped by {signal.Signals(stop.signal).name}"
    print(f"{how}: {stop.done} of {stop.total} points done; run the same command "
          "again to resume", file=sys.stderr)
    return EXIT_SIGNAL + stop.signal


def _report(args: argparse.Namespace) -> int:
    print(f"wrote {api.report(args.directory)}")
    return 0


def _load(args: argparse.Namespace):
    """The command's scenario with its `--set` settings applied."""
    settings = [(path, read_setting(path, value)) for path, value in args.settings]
    return api.load(Path(args.scenario), settings=settings)


def _import_kubectl(args: argparse.Namespace) -> int:
    out: Path = args.output
    if out.exists() and not args.force:
        raise NetmodelError("exists; give --force to replace it", file=str(out))
    if not out.parent.is_dir():
        raise NetmodelError(f"folder {out.parent} does not exist", file=str(out))
    imported = api.import_kubectl(args.directory)  # validated: it loads as it is
    out.write_text(imported.text(), encoding="utf-8")
    print(f"wrote {out}: {imported.counts()}")
    print(f"read: {imported.read_text()}")
    for note in imported.notes:
        print(f"note: {note}")
    if imported.skipped:
        print(f"skipped: {imported.skipped_text()}")
    for warning in imported.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _setting(text: str) -> tuple[str, str]:
    """argparse type of --set: 'PATH=VALUE' -> (PATH, VALUE), VALUE read as YAML by `_load`."""
    path, sep, value = text.partition("=")
    path = path.strip()
    if not sep or not all(path.split(".")):
        raise argparse.ArgumentTypeError(f"expected PATH=VALUE, e.g. services.count=100, "
                                         f"got {text!r}")
    return path, value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _table(rows: list[dict]) -> str:
    """The `run` table: one line per traffic kind, columns as _TABLE, traffic left-aligned."""
    lines = [[heading for heading, *_ in _TABLE]]
    lines += [[_cell(row[key], scale, fmt) for _, key, scale, fmt in _TABLE] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(_TABLE))]
    return "\n".join("  ".join([line[0].ljust(widths[0])]
                               + [c.rjust(w) for c, w in zip(line[1:], widths[1:])])
                     for line in lines)


def _cell(value: Any, scale: float | None, fmt: str) -> str:
    if scale is None:
        return str(value)
    value = value * scale
    return "-" if math.isnan(value) else f"{value:{fmt}}"



def _plain(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _json_safe(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


if __name__ == "__main__":
    sys.exit(main())
