"""`netmodel report DIR`: DIR/report.html, one self-contained page of a results folder.

The page leads with the decision (table, verdict, difference figures) for a comparison,
then the checks on the results, the summary tables, every plot, the scenario as run, the
cost profile with each parameter's source, and the versions. Everything is inside the
file: the plots as data: URIs, the style inline, no script and no font or image from
elsewhere, so it opens offline and can be mailed as it is. The same folder gives the
same bytes.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from netmodel.results.compare import CLUSTER, SAME_WITHIN, along_text, dataplanes, dataplanes_text
from netmodel.results.plots import stale_endpoint_share
from netmodel.runner.results_folder import ResultsFolder, open_results, write_text

REPORT = "report.html"
MIN_MEASURED = 100
"""Fewer measured requests than this in a row: its percentiles are flagged as rough."""

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1400px; padding: 0 1.5em; color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
h3 { margin-bottom: 0.3em; } .muted { color: #666; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
tr.section td { background: #fafafa; font-weight: 600; text-align: left; }
.better { color: #1a7f37; } .worse { color: #b42318; }
ul.verdict li { margin: 0.3em 0; } .ok { color: #1a7f37; } .warn { color: #b54708; } .fail { color: #b42318; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; } pre { background: #f6f8fa; padding: 1em; overflow-x: auto; font-size: 0.85em; }
nav a { margin-right: 1em; }
"""


def write_report(path: Path, validation: Sequence[Any] | None = None) -> Path:
    """Write DIR/report.html for the results folder at `path`; return the file's path.
    `validation`: the rows of `netmodel validate` for the folder's profile, if run."""
    folder = open_results(path)
    out = Path(path) / REPORT
    write_text(out, render(folder, validation))
    return out


def render(folder: ResultsFolder, validation: Sequence[Any] | None = None) -> str:
    """The page, as text."""
    meta = folder.meta
    title = f"netmodel report: {meta.get('scenario', folder.path.name)}"
    sections = [_decision(folder)] if folder.comparison else []
    sections += [_checks(folder), _validation(folder, validation), _summary(folder), _plots(folder),
                 _scenario(folder), _profile(folder), _versions(folder)]
    body = "\n".join(s for s in sections if s)
    kind = "comparison" if folder.comparison else "sweep"
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{_e(title)}</h1>\n<p class=\"muted\">A {kind} of {_e(meta.get('points', '?'))} "
            f"points, seed {_e(meta.get('seed', '?'))}, {_e(meta.get('replications', '?'))} "
            f"replication(s) per point; scenario file {_e(meta.get('file', '?'))}, digest "
            f"{_e(str(meta.get('scenario_digest', ''))[:12])}.</p>\n{body}\n</body>\n</html>\n")


# -- the decision -------------------------------------------------------------------------
def _decision(folder: ResultsFolder) -> str:
    comparison, table = folder.comparison, folder.decision
    reference = ", ".join(f"{a} = {v}" for a, v in comparison["reference"].items()) or "the scenario itself"
    along = along_text(comparison.get("along") or {})
    parts = [f"<h2 id=\"decision\">Decision: {_e(comparison['field'])}</h2>",
             f"<p>Compared {_e(', '.join(comparison['settings']))} (baseline "
             f"{_e(comparison['baseline'])}{_e('; ' + along if along else '')}), each figure at the "
             "point standing for the scenario: "
             f"{_e(reference)}. Differences are against the baseline; ± is a 95% interval "
             "where replications give one. Green: lower than the baseline; red: higher "
             f"(beyond {SAME_WITHIN:.0%}).</p>"]
    paths = dataplanes_text(dataplanes(folder.summary, comparison["field"], comparison["settings"]))
    if paths:
        parts.append(f"<p>{_e(paths[0].upper() + paths[1:])}.</p>")
    if table is not None and len(table):
        parts.append(_decision_table(table))
    parts.append("<h3>Verdict</h3>\n<ul class=\"verdict\">"
                 + "".join(f"<li>{_e(s)}</li>" for s in comparison["verdict"]) + "</ul>")
    if comparison.get("notes"):
        parts.append("<p class=\"muted\">" + "<br>".join(_e(n) for n in comparison["notes"]) + "</p>")
    figures = [p for p in folder.plots() if p.name.startswith("compare__")]
    parts += [_figure(p) for p in figures]
    return "\n".join(parts)


def _decision_table(table: pd.DataFrame) -> str:
    settings = list(dict.fromkeys(table["setting"]))
    head = ["", "unit", *settings, *(f"{s} − {settings[0]}" for s in settings[1:])]
    rows = []
    for section, mine in table.groupby("section", sort=False):
        rows.append(f"<tr class=\"section\"><td colspan=\"{len(head)}\">"
                    f"{_e('cluster (every traffic kind)' if section == CLUSTER else section)}</td></tr>")
        for (metric, unit), lines in mine.groupby(["metric", "unit"], sort=False):
            lines = lines.set_index("setting")
            cells = [f"<td class=\"text\">{_e(metric)}</td><td class=\"text\">{_e(unit)}</td>"]
            cells += [f"<td>{_value(lines.loc[s, 'value'], lines.loc[s, 'ci95'])}</td>" for s in settings]
            cells += [_delta_cell(lines.loc[s]) for s in settings[1:]]
            rows.append("<tr>" + "".join(cells) + "</tr>")
    return ("<table>\n<tr>" + "".join(f"<th class=\"text\">{_e(h)}</th>" if i < 2 else f"<th>{_e(h)}</th>"
                                      for i, h in enumerate(head))
            + "</tr>\n" + "\n".join(rows) + "\n</table>")


def _delta_cell(line: pd.Series) -> str:
    delta, ci, relative = line["delta"], line["delta_ci95"], line["relative"]
    if _nan(delta):
        return "<td>-</td>"
    beyond = abs(delta) > (0 if _nan(ci) else ci) and not _nan(relative) and abs(relative) > SAME_WITHIN
    style = (" class=\"better\"" if delta < 0 else " class=\"worse\"") if beyond else ""
    text = f"{delta:+.3g}" + (f" ± {ci:.2g}" if not _nan(ci) else "")
    text += f" ({relative:+.0%})" if not _nan(relative) and abs(relative) < 10 else ""
    return f"<td{style}>{_e(text)}</td>"


# -- checks -------------------------------------------------------------------------------
def _checks(folder: ResultsFolder) -> str:
    """What can be checked on the results themselves, and the profile's standing."""
    df, meta = folder.summary, folder.meta
    items = []
    done = df["point_id"].nunique()
    items.append(_check(done == meta.get("points", done),
                        f"{done} of {meta.get('points', done)} points have results"))
    conserved = df["requests"] == df["completed"] + df["dropped"] + df["in_flight"]
    items.append(_check(bool(conserved.all()), f"every request accounted for (completed + dropped + in "
                                               f"flight = requests) in {int(conserved.sum())} of {len(df)} rows"))
    rough = df[df["measured"] < MIN_MEASURED]
    items.append(_check(rough.empty, f"every row rests on {MIN_MEASURED} or more measured requests"
                        if rough.empty else f"{len(rough)} of {len(df)} rows rest on fewer than "
                        f"{MIN_MEASURED} measured requests: their p99 is rough (raise run.requests)",
                        warn=True))
    flying = int(df["in_flight"].sum())
    items.append(_check(flying == 0, "no request was still in flight when the runs stopped"
                        if flying == 0 else f"{flying:,} requests still in flight when the runs "
                        "stopped (raise run.drain to see them end)", warn=True))
    profile = folder.profile()
    if profile:
        sources = [str(p["source"]) for p in profile["parameters"].values()]
        assumed = sum(s.startswith("assumed") for s in sources)
        items.append(f"<li class=\"muted\">profile {_e(profile['name'])}: {len(sources)} parameters, "
                     f"{len(sources) - assumed} from published figures or derived from them, "
                     f"{assumed} assumed (sources below); measured on your nodes only if the "
                     "calibration lab wrote it (netmodel calibrate lab).</li>")
    return "<h2 id=\"checks\">Checks</h2>\n<ul>" + "".join(items) + "</ul>"


def _validation(folder: ResultsFolder, checks: Sequence[Any] | None) -> str:
    """The model against published figures with this folder's profile: how many rows pass,
    and each row that does not with what the model lacks (`validation.cases.Check` rows)."""
    head = "<h2 id=\"validation\">Validation</h2>\n"
    if checks is None:
        return head + ("<p class=\"muted\">Not run for this page. <code>netmodel validate --profile "
                       "PROFILE</code> compares the model with queueing theory and published figures "
                       "(docs/validation.md).</p>")
    failed = [c for c in checks if not c.passed]
    rows = "\n".join(f"<tr><td class=\"text\">{_e(c.case)}</td><td class=\"text\">{_e(c.source)}</td>"
                     f"<td>{_e(c.reference)}</td><td>{_e(c.model)}</td><td>{_e(c.error)}</td>"
                     f"<td>{_e(c.tolerance)}</td><td class=\"text\">{_e(c.lacks)}</td></tr>" for c in failed)
    table = ("<table>\n<tr><th class=\"text\">case</th><th class=\"text\">source</th><th>reference</th>"
             "<th>model</th><th>error</th><th>tolerance</th><th class=\"text\">what the model lacks</th></tr>\n"
             f"{rows}\n</table>") if failed else ""
    return (head + f"<p>netmodel validate --group published --quick with this folder's profile: "
            f"{len(checks) - len(failed)} of {len(checks)} checks pass"
            + ("; these do not, and say why (docs/validation.md):</p>\n" if failed else ".</p>\n") + table)


def _check(ok: bool, text: str, warn: bool = False) -> str:
    mark, cls = ("ok", "ok") if ok else (("check", "warn") if warn else ("FAILED", "fail"))
    return f"<li class=\"{cls}\">{mark}: {_e(text)}</li>"


# -- the summary ----------------------------------------------------------------------------
_SUMMARY = (("requests", "requests", 1.0, ",.0f"), ("failed (%)", "failed", 100.0, ".3g"),
            ("p50 (ms)", "p50_s", 1e3, ".4g"), ("p99 (ms)", "p99_s", 1e3, ".4g"),
            ("± p99 (ms)", "p99_s_ci95", 1e3, ".2g"), ("throughput (req/s)", "throughput_rps", 1.0, ",.1f"),
            ("rule lookup (µs/req)", "rule_lookup_cpu_s_per_request", 1e6, ".3g"),
            ("softirq CPU (µs/req)", "softirq_cpu_s_per_request", 1e6, ".3g"),
            ("measured", "measured", 1.0, ",.0f"))
"""Columns of the summary tables: heading, column, factor from SI, format."""
_POINT = (("network programming p50 (s)", "network_programming_p50_s", 1.0, ".3g"),
          ("network programming p99 (s)", "network_programming_p99_s", 1.0, ".3g"),
          ("stale-endpoint failures (%)", "stale_share", 100.0, ".3g"),
          ("stale window p99 (s)", "stale_window_p99_s", 1.0, ".3g"),
          ("conntrack fill (%)", "conntrack_fill", 100.0, ".3g"))


def _summary(folder: ResultsFolder) -> str:
    df = folder.summary.assign(failed=lambda d: d["dropped"] / d["requests"].where(d["requests"] > 0))
    axes = [a for a in folder.axes if a in df and a != "kube_proxy.mode"] + ["kube_proxy.mode"]
    parts = ["<h2 id=\"summary\">Summary</h2>",
             "<p class=\"muted\">One row per point; every column is in summary.csv "
             "(docs/results.md says what each means).</p>"]
    for traffic, rows in df.groupby("traffic", sort=False):
        parts.append(f"<h3>{_e(traffic)}</h3>" + _table(rows, axes, _SUMMARY))
    point = df[df["traffic"] == df["traffic"].iloc[0]]
    point = point.assign(stale_share=point["point_id"].map(stale_endpoint_share(df)).where(
        point["network_programming_p50_s"].notna()))  # stale endpoints need the control plane
    shown = [c for c in _POINT if point[c[1]].notna().any()]
    if shown:
        parts.append("<h3>Every traffic kind of a point together</h3>" + _table(point, axes, shown))
    return "\n".join(parts)


def _table(rows: pd.DataFrame, axes: list[str], columns) -> str:
    head = "".join(f"<th class=\"text\">{_e(a)}</th>" for a in axes)
    head += "".join(f"<th>{_e(h)}</th>" for h, *_ in columns)
    body = []
    for _, row in rows.iterrows():
        cells = "".join(f"<td class=\"text\">{_e(_plain(row[a]))}</td>" for a in axes)
        cells += "".join(f"<td>{_format(row[c] * f, fmt)}</td>" for _, c, f, fmt in columns)
        body.append(f"<tr>{cells}</tr>")
    return f"<table>\n<tr>{head}</tr>\n" + "\n".join(body) + "\n</table>"


# -- plots, scenario, profile, versions -----------------------------------------------------
def _plots(folder: ResultsFolder) -> str:
    plots = [p for p in folder.plots() if not p.name.startswith("compare__")]
    rollout = folder.rollout()
    extra = [(f"rolling update: {p.stem}", p) for p in (rollout.plots() if rollout else [])
             if "stale" in p.stem or "control-plane" in p.stem]
    figures = [_figure(p) for p in plots] + [_figure(p, caption) for caption, p in extra]
    return "<h2 id=\"plots\">Plots</h2>\n" + ("\n".join(figures) or "<p>No plots.</p>")


def _figure(path: Path, caption: str | None = None) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f"<figure><img alt=\"{_e(path.stem)}\" src=\"data:image/png;base64,{data}\">"
            f"<figcaption>{_e(caption or path.stem)}</figcaption></figure>")


def _scenario(folder: ResultsFolder) -> str:
    text = folder.scenario_text()
    axes = ", ".join(folder.axes) or "none"
    if text is None:
        return (f"<h2 id=\"scenario\">Scenario</h2><p>Swept: {_e(axes)}. The folder holds no "
                "scenario.yaml (written by an older netmodel).</p>")
    return (f"<h2 id=\"scenario\">Scenario</h2>\n<p>Swept: {_e(axes)}.</p>\n<pre>{_e(text)}</pre>")


def _profile(folder: ResultsFolder) -> str:
    profile = folder.profile()
    if not profile:
        return ""
    rows = "".join(f"<tr><td class=\"text\">{_e(name)}</td><td>{_e(p['value'])}</td>"
                   f"<td class=\"text\">{_e(p['per'])}</td><td class=\"text\">{_e(p['source'])}</td></tr>"
                   for name, p in profile["parameters"].items())
    return (f"<h2 id=\"profile\">Cost profile: {_e(profile['name'])}</h2>\n"
            f"<p class=\"muted\">{_e(profile.get('description', ''))}</p>\n<table>\n"
            "<tr><th class=\"text\">parameter</th><th>value</th><th class=\"text\">per</th>"
            f"<th class=\"text\">source</th></tr>\n{rows}\n</table>")


def _versions(folder: ResultsFolder) -> str:
    meta = folder.meta
    items = {**meta.get("versions", {}), "engine": _engine(meta.get("engine", "?")),
             "profile digest": meta.get("profile", {}).get("digest", "?")}
    rows = "".join(f"<tr><td class=\"text\">{_e(k)}</td><td class=\"text\">{_e(v)}</td></tr>"
                   for k, v in items.items())
    return f"<h2 id=\"versions\">Versions</h2>\n<table>\n{rows}\n</table>"


def _engine(engine: Any) -> str:
    """meta.json's engine: 'auto: fast for 12 points, simpy for 2 (why)' or the name."""
    if not isinstance(engine, dict):
        return str(engine)
    ran = ", ".join(f"{name} for {n} point{'s' if n != 1 else ''}" for name, n in engine.get("ran", {}).items())
    why = "; ".join(engine.get("fallback", []))
    return f"{engine.get('asked', '?')}: {ran}" + (f" ({why})" if why else "")


# -- small helpers ------------------------------------------------------------------------
def _value(value: float, ci: float) -> str:
    if _nan(value):
        return "-"
    return _e(f"{value:.3g}" + (f" ± {ci:.2g}" if not _nan(ci) else ""))


def _format(value: Any, fmt: str) -> str:
    return "-" if _nan(value) else _e(format(value, fmt))


def _plain(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)
