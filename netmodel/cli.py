"""The `netmodel` command: check a scenario, run one point, run a resumable sweep.

    netmodel check SCENARIO
    netmodel run SCENARIO [--point N] [--set PATH=VALUE ...] [--json] [--metrics DIR]
    netmodel sweep SCENARIO [--out DIR] [--jobs N] [--quiet] [--force] [--metrics DIR]
    netmodel import kubectl DIR -o FILE [--force]
    netmodel trace SCENARIO --traffic KIND [--service NAME] [--format json]

A mistake in the input is reported as one line, `netmodel: error: file:line: field:
message`, with exit status 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from netmodel import __version__
from netmodel.errors import NetmodelError
from netmodel.paths import TRAFFIC_KINDS
from netmodel.paths.reachability import OUTSIDE_IN
from netmodel.scenario.loader import LoadedScenario, load_scenario, parse_scenario
from netmodel.scenario.sweep import expand_sweep

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

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

    check = commands.add_parser("check", help="validate a scenario file and its sweep")
    check.add_argument("scenario", metavar="SCENARIO", help="scenario YAML file")
    check.set_defaults(command=_check)

    run = commands.add_parser("run", help="simulate one point and print its summary")
    run.add_argument("scenario", metavar="SCENARIO", help="scenario YAML file")
    run.add_argument("--point", type=int, metavar="N",
                     help="run sweep point N (default: the scenario without its sweep)")
    run.add_argument("--set", dest="overrides", action="append", type=_override, default=[],
                     metavar="PATH=VALUE",
                     help="override a field by dotted path before validation, e.g. "
                          "services.count=100 (VALUE is read as YAML; repeatable)")
    run.add_argument("--json", action="store_true", help="print the rows as JSON")
    run.add_argument("--metrics", type=Path, metavar="DIR",
                     help="write kube-proxy's control-plane histograms in Prometheus text "
                          "format to DIR (needs control_plane.enabled)")
    run.set_defaults(command=_run)

    trace = commands.add_parser("trace", help="print the hop-by-hop path of a traffic kind")
    trace.add_argument("scenario", metavar="SCENARIO", help="scenario YAML file")
    traceable = TRAFFIC_KINDS + tuple(OUTSIDE_IN)
    trace.add_argument("--traffic", required=True, choices=traceable, metavar="KIND",
                       help="traffic kind: " + ", ".join(traceable))
    trace.add_argument("--service", metavar="NAME",
                       help="Service name or namespace/name (default: the most popular)")
    trace.add_argument("--format", choices=("text", "json"), default="text")
    trace.set_defaults(command=_trace)

    sweep = commands.add_parser("sweep", help="run every sweep point (resumable) and plot")
    sweep.add_argument("scenario", metavar="SCENARIO", help="scenario YAML file")
    sweep.add_argument("--out", type=Path, metavar="DIR",
                       help="output folder (default: results/<scenario name>)")
    sweep.add_argument("--jobs", type=_positive_int, default=1, metavar="N",
                       help="worker processes (default: 1); results do not depend on it")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.add_argument("--force", action="store_true",
                       help="replace results of a different scenario in the output folder")
    sweep.add_argument("--metrics", type=Path, metavar="DIR",
                       help="also write kube-proxy's control-plane histograms in Prometheus "
                            "text format, DIR/point-<id>-r<replication>.prom for every point "
                            "with control_plane.enabled; a done point without them runs again")
    sweep.set_defaults(command=_sweep)
    _add_import(commands)
    return parser


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


def _check(args: argparse.Namespace) -> int:
    loaded = load_scenario(Path(args.scenario))
    points = _count(len(expand_sweep(loaded)), "sweep point")
    print(f"ok: {loaded.file}: scenario '{loaded.scenario.name}', {points}, "
          f"profile {loaded.profile.name}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from netmodel.run.point import run_point

    loaded = _with_overrides(load_scenario(Path(args.scenario)), args.overrides)
    scenario, profile = loaded.scenario.model_copy(update={"sweep": None}), loaded.profile
    where = ""
    if args.point is not None:
        points = {p.point_id: p for p in expand_sweep(loaded)}
        if args.point not in points:
            raise NetmodelError(f"no sweep point {args.point} (points are {min(points)} to "
                                f"{max(points)})", field="--point")
        point = points[args.point]
        scenario, profile = point.scenario, point.profile
        where = f", point {point.point_id}: " + ", ".join(f"{k}={_plain(v)}"
                                                          for k, v in point.values.items())
    if args.metrics is None:
        rows = run_point(scenario, profile)
    else:
        rows = run_point(scenario, profile, _metrics_writer(scenario, args.metrics))
    if args.json:
        print(json.dumps([{k: _json_safe(v) for k, v in row.items()} for row in rows], indent=2))
        return 0
    print(f"scenario '{scenario.name}', kube-proxy {scenario.kube_proxy.mode}{where}")
    print(_table(rows))
    if rows and not math.isnan(rows[0]["conntrack_entries"]):
        r = rows[0]
        print(f"conntrack: busiest node ~{r['conntrack_entries']:,.0f} entries in steady state, "
              f"{r['conntrack_fill']:.1%} of nf_conntrack_max {scenario.cluster.conntrack_max:,}"
              + (" (full: the kernel would drop new connections)" if r["conntrack_fill"] >= 1 else ""))
    if scenario.control_plane.enabled and rows:
        r = rows[0]
        print(f"control plane: network programming p50 {r['network_programming_p50_s']:.3g} s, "
              f"p90 {r['network_programming_p90_s']:.3g} s, p99 {r['network_programming_p99_s']:.3g} s; "
              f"sync p50 {r['sync_proxy_rules_p50_s']:.3g} s, p99 {r['sync_proxy_rules_p99_s']:.3g} s; "
              f"watch egress {r['watch_bytes_per_s']:,.0f} B/s")
        stale = sum(row["dropped_stale_endpoint"] for row in rows)
        requests = sum(row["requests"] for row in rows)
        window = ("no endpoint removed" if math.isnan(r["stale_window_p50_s"]) else
                  f"stale window p50 {r['stale_window_p50_s']:.3g} s, "
                  f"p99 {r['stale_window_p99_s']:.3g} s, max {r['stale_window_max_s']:.3g} s")
        print(f"churn: {r['endpoint_updates']:g} EndpointSlice updates per replication; {window}; "
              f"stale-endpoint failures {stale:,} of {requests:,} requests")
    return 0


def _metrics_writer(scenario, out: Path):
    """A control_sink for run_point: DIR/<name>-r<replication>.prom per replication."""
    from netmodel.sim.controlplane import prometheus_histograms

    if not scenario.control_plane.enabled:
        raise NetmodelError("needs control_plane.enabled: true in the scenario", field="--metrics")
    out.mkdir(parents=True, exist_ok=True)

    def write(replication, result) -> None:
        (out / f"{scenario.name}-r{replication}.prom").write_text(prometheus_histograms(result))

    return write


def _trace(args: argparse.Namespace) -> int:
    from netmodel.paths.trace import trace

    loaded = load_scenario(Path(args.scenario))
    scenario = loaded.scenario.model_copy(update={"sweep": None})
    found = trace(scenario, loaded.profile, args.traffic, args.service)
    if args.format == "json":
        print(json.dumps(found.as_dict(), indent=2))
        return 0
    print(f"{found.traffic} to Service {found.service}, kube-proxy {scenario.kube_proxy.mode}, "
          f"CNI {scenario.cluster.cni_datapath}")
    if not found.reachable:
        print(f"unreachable: {found.reason}")
        return 0
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
    from netmodel.run.sweep import PLOTS, SweepInterrupted, run_sweep

    loaded = load_scenario(Path(args.scenario))
    out = args.out if args.out is not None else Path("results") / loaded.scenario.name
    try:
        run_sweep(loaded, out, jobs=args.jobs, quiet=args.quiet, force=args.force,
                  metrics_dir=args.metrics)
    except SweepInterrupted as stop:
        print(f"interrupted: {stop.done} of {stop.total} points done; run the same command "
              "again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    n_plots = len(list((out / PLOTS).glob("*.png")))
    print(f"wrote {out}/: summary.parquet, summary.csv, meta.json, {_count(n_plots, 'plot')}")
    if args.metrics is not None:
        print(f"wrote {args.metrics}/: point-<id>-r<replication>.prom (Prometheus text)")
    return 0


def _import_kubectl(args: argparse.Namespace) -> int:
    from netmodel.cluster.kubectl import import_kubectl

    out: Path = args.output
    if out.exists() and not args.force:
        raise NetmodelError("exists; give --force to replace it", file=str(out))
    if not out.parent.is_dir():
        raise NetmodelError(f"folder {out.parent} does not exist", file=str(out))
    imported = import_kubectl(args.directory)  # validated: it loads as it is
    out.write_text(imported.text(), encoding="utf-8")
    print(f"wrote {out}: {imported.counts()}")
    for note in imported.notes:
        print(f"note: {note}")
    if imported.skipped:
        print(f"skipped: {imported.skipped_text()}")
    return 0


def _with_overrides(loaded: LoadedScenario, overrides: list[tuple[str, Any]]) -> LoadedScenario:
    """The scenario re-validated with `--set` overrides applied to its YAML document."""
    if not overrides:
        return loaded
    raw = copy.deepcopy(loaded.raw)
    for path, value in overrides:
        node = raw
        *parents, leaf = path.split(".")
        for i, name in enumerate(parents):
            if node.get(name) is None:
                node[name] = {}
            node = node[name]
            if not isinstance(node, dict):
                raise NetmodelError(f"{'.'.join(parents[:i + 1])} is not a mapping",
                                    field=f"--set {path}")
        node[leaf] = value
    try:
        return parse_scenario(yaml.safe_dump(raw, sort_keys=False), loaded.file, loaded.base_dir)
    except NetmodelError as err:
        # Lines in the re-written document are not lines of the file: name the overrides.
        after = ", ".join(path for path, _ in overrides)
        line = err.line if err.file != loaded.file else None
        raise NetmodelError(f"{err.message} (after --set {after})", file=err.file, line=line,
                            field=err.field) from None


def _override(text: str) -> tuple[str, Any]:
    """argparse type of --set: 'PATH=VALUE' -> (PATH, VALUE read as YAML)."""
    path, sep, value = text.partition("=")
    path = path.strip()
    if not sep or not all(path.split(".")):
        raise argparse.ArgumentTypeError(f"expected PATH=VALUE, e.g. services.count=100, "
                                         f"got {text!r}")
    try:
        return path, yaml.safe_load(value)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"VALUE of {text!r} is not valid YAML") from None


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


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


def _plain(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _json_safe(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


if __name__ == "__main__":
    sys.exit(main())
