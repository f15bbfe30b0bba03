"""The rollout decision from a comparison's results: the decision table, the verdict in
words, and figures of the differences.

The table has, per traffic kind at the reference point (the point standing for the
scenario itself), request latency p50/p99, connection set-up p50/p99, requests failed, rule-lookup and softirq CPU per request and what that CPU is in cores per node at
the point's rate; and for the cluster, network programming latency p50/p99, stale-endpoint
failures and the p99 stale window during a rolling update, and conntrack fill. Every
figure is an absolute value and a difference against the first setting (the baseline),
with a 95% interval where replications give one. The verdict is computed from these
numbers, never written by hand: where the settings diverge (beyond `SAME_WITHIN` and
beyond the intervals), by how much, from which point of the range on, and what stays the
same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field

import pandas as pd
from matplotlib.figure import Figure

from netmodel.results.plots import PANELS, figure, layout, stale_endpoint_share, with_derived
from netmodel.units import format_quantity

SAME_WITHIN = 0.05
"""Two settings are the same on a figure when they differ by at most this share of the
baseline (and by no more than their 95% intervals)."""
CLUSTER = "cluster"
"""The section of the table for figures of the whole point (not of one traffic kind)."""


@dataclass(frozen=True)
class Metric:
    """One line of the decision table: `column` of the summary (or a name computed here),
    shown in `unit` (`factor` from SI), with `ci` its 95% half-width column."""

    name: str
    column: str
    unit: str
    factor: float
    ci: str | None = None
    point: bool = False


METRICS = (
    Metric("request latency p50", "p50_s", "ms", 1e3),
    Metric("request latency p99", "p99_s", "ms", 1e3, ci="p99_s_ci95"),
    Metric("connection set-up p50", "setup_p50_s", "ms", 1e3),
    Metric("connection set-up p99", "setup_p99_s", "ms", 1e3),
    Metric("requests failed", "failed_share", "%", 100.0),
    Metric("rule-lookup CPU per request", "rule_lookup_cpu_s_per_request", "µs", 1e6),
    Metric("node softirq CPU per request", "softirq_cpu_s_per_request", "µs", 1e6),
    Metric("node CPU at the point's rate, mean per node", "cores_per_node", "millicores", 1e3),
    Metric("network programming p50", "network_programming_p50_s", "s", 1.0, point=True),
    Metric("network programming p99", "network_programming_p99_s", "s", 1.0, point=True),
    Metric("stale-endpoint failures in a rolling update", "stale_endpoint_share", "%", 100.0,
           point=True),
    Metric("stale window p99", "stale_window_p99_s", "s", 1.0, point=True),
    Metric("conntrack fill, busiest node", "conntrack_fill", "%", 100.0, point=True),
)
"""The lines of the decision table, in order."""

TABLE_COLUMNS = ("section", "metric", "unit", "setting", "value", "ci95", "delta", "delta_ci95",
                 "relative")
"""Columns of `decision_table` (and decision.csv): value and delta in `unit`; `relative`
is value over the baseline's minus 1; NaN where there is no figure."""


@dataclass(frozen=True)
class Facts:
    """What the table needs beside the summary: per setting, the reference point's id;
    the cluster's node count and the scenario's rate; the control-plane rows per setting
    (a rollout run) when the comparison itself did not simulate the control plane."""

    field: str
    settings: tuple[str, ...]
    reference_points: dict[str, int]
    nodes: int
    rate: float
    rollout: pd.DataFrame | None = None


def reference_rows(summary: pd.DataFrame, facts: Facts) -> pd.DataFrame:
    """The reference point's rows of every setting, with the computed columns."""
    rows = with_derived(summary)
    rows = rows[rows["point_id"].isin(list(facts.reference_points.values()))].copy()
    rows["setting"] = rows["point_id"].map({p: s for s, p in facts.reference_points.items()})
    totals = rows.groupby("point_id")["requests"].transform("sum")
    rate = rows["workload.rate"] if "workload.rate" in rows else facts.rate
    rows["cores_per_node"] = (rows["softirq_cpu_s_per_request"] * rate * rows["requests"]
                              / totals.where(totals > 0) / facts.nodes)
    if facts.rollout is not None and rows["network_programming_p50_s"].isna().all():
        rows = _with_rollout(rows, facts.rollout, facts.field)
    return rows


def _with_rollout(rows: pd.DataFrame, rollout: pd.DataFrame, field: str) -> pd.DataFrame:
    """The point figures (control plane, stale endpoints) from a rollout run of each setting."""
    rollout = rollout.assign(stale_endpoint_share=rollout["point_id"].map(stale_endpoint_share(rollout)))
    per_setting = rollout.groupby(rollout[field].astype(str)).first()
    for metric in (m for m in METRICS if m.point and m.column != "conntrack_fill"):
        rows[metric.column] = rows["setting"].map(per_setting[metric.column])
    return rows


def decision_table(summary: pd.DataFrame, facts: Facts) -> pd.DataFrame:
    """The decision table (TABLE_COLUMNS), one line per (section, metric, setting)."""
    rows = reference_rows(summary, facts)
    lines = []
    sections = [(t, rows[rows["traffic"] == t]) for t in rows["traffic"].unique()]
    sections.append((CLUSTER, rows[rows["traffic"] == rows["traffic"].iloc[0]]))
    for section, mine in sections:
        by_setting = mine.set_index("setting")
        for metric in METRICS:
            if metric.point != (section == CLUSTER) or by_setting[metric.column].isna().all():
                continue
            lines += _metric_lines(section, metric, by_setting, facts.settings)
    return pd.DataFrame(lines, columns=list(TABLE_COLUMNS))


def _metric_lines(section: str, metric: Metric, rows: pd.DataFrame, settings: tuple[str, ...]) -> list:
    def figure_of(setting: str, column: str | None) -> float:
        if column is None or column not in rows or setting not in rows.index:
            return math.nan
        return float(rows.loc[setting, column]) * metric.factor

    base, base_ci = figure_of(settings[0], metric.column), figure_of(settings[0], metric.ci)
    out = []
    for setting in settings:
        value, ci = figure_of(setting, metric.column), figure_of(setting, metric.ci)
        delta = value - base
        out.append((section, metric.name, metric.unit, setting, value, ci, delta,
                    math.hypot(ci, base_ci) if setting != settings[0] else math.nan,
                    value / base - 1 if base else (0.0 if delta == 0 else math.nan)))
    return out


# -- the verdict --------------------------------------------------------------------------
def verdict(table: pd.DataFrame, summary: pd.DataFrame, facts: Facts, axes: list[str]) -> list[str]:
    """Sentences with the numbers: where the settings diverge at the reference point and
    by how much, from where along the range request latency diverges, what stays the same."""
    sentences, same = [], []
    for (section, metric), lines in table.groupby(["section", "metric"], sort=False):
        if _differs(lines):
            sentences.append(_difference_sentence(section, metric, lines))
        elif lines["value"].notna().any():
            same.append(f"{metric} ({section}, {_number(lines['value'].iloc[0], lines['unit'].iloc[0])})")
    sentences += _range_sentences(summary, facts, axes)
    if same:
        sentences.append(f"The same within {SAME_WITHIN:.0%} under every setting: " + "; ".join(same) + ".")
    if not any(_differs(lines) for _, lines in table.groupby(["section", "metric"])):
        sentences.insert(0, f"No figure differs by more than {SAME_WITHIN:.0%} between "
                            f"{', '.join(facts.settings)} at the scenario's own point.")
    return sentences


def _differs(lines: pd.DataFrame) -> bool:
    """Some setting differs from the baseline by more than SAME_WITHIN and its interval."""
    base = abs(lines["value"].iloc[0])
    beyond = (lines["delta"].abs() > SAME_WITHIN * base) & ~(lines["delta"].abs() <= lines["delta_ci95"])
    small = lines["delta"].abs() <= 1e-9 * max(base, 1e-30)
    return bool((beyond & ~small).any()) if base > 0 else bool((lines["delta"].abs() > 0).any())


def _difference_sentence(section: str, metric: str, lines: pd.DataFrame) -> str:
    unit = lines["unit"].iloc[0]
    base = lines.iloc[0]
    parts = [f"{base['setting']} {_number(base['value'], unit)}"]
    for _, line in lines.iloc[1:].iterrows():
        change = f"{_signed(line['delta'], unit)}{_ratio(line['value'], base['value'], base['setting'])}"
        if not math.isnan(line["delta_ci95"]):
            change += f" ± {_number(line['delta_ci95'], unit)}"
        parts.append(f"{line['setting']} {_number(line['value'], unit)} ({change})")
    where = "" if section == CLUSTER else f" of {section}"
    return f"{metric[0].upper()}{metric[1:]}{where}: " + "; ".join(parts) + "."


def _ratio(value: float, base: float, baseline: str) -> str:
    """', +12%' for a small change; ', 22x iptables' or ', 1/22 of iptables' for a large one."""
    if math.isnan(value) or math.isnan(base) or base == 0:
        return ""
    ratio = value / base
    if 0.5 <= ratio <= 2:
        return f", {ratio - 1:+.0%}"
    if ratio > 2:
        return f", {ratio:.3g}x {baseline}"
    return f", 1/{1 / ratio:.3g} of {baseline}" if ratio > 0 else ""


def _range_sentences(summary: pd.DataFrame, facts: Facts, axes: list[str]) -> list[str]:
    """Along each numeric axis (the others at the reference point): from which value on
    the settings' p50 latency differs by more than SAME_WITHIN, and by how much at the end."""
    sentences = []
    reference = summary[summary["point_id"].isin(list(facts.reference_points.values()))]
    for axis in (a for a in axes if a != facts.field and summary[a].dtype.kind in "if"):
        held = [a for a in axes if a not in (axis, facts.field)]
        rows = summary
        for other in held:
            rows = rows[rows[other].isin(reference[other].unique())]
        for traffic, mine in rows.groupby("traffic", sort=False):
            table = mine.pivot_table(index=axis, columns=facts.field, values="p50_s", aggfunc="first")
            sentence = _divergence(table, axis, traffic)
            if sentence:
                sentences.append(sentence)
    return sentences


def _divergence(table: pd.DataFrame, axis: str, traffic: str) -> str | None:
    table = table.sort_index().dropna()
    if table.shape[1] < 2 or not len(table):
        return None
    spread = (table.max(axis=1) - table.min(axis=1)) / table.min(axis=1)
    apart = spread[spread > SAME_WITHIN]
    values = [format_quantity(float(v), "count") for v in table.index]
    if not len(apart):
        return (f"Along {axis} ({values[0]} to {values[-1]}), p50 latency of {traffic} stays within "
                f"{SAME_WITHIN:.0%} between the settings.")
    last = table.iloc[-1] if spread.iloc[-1] > SAME_WITHIN else table.loc[apart.index[-1]]
    slow, fast = last.idxmax(), last.idxmin()
    start = format_quantity(float(apart.index[0]), "count")
    at = format_quantity(float(last.name), "count")
    return (f"Along {axis}, p50 latency of {traffic} differs by more than {SAME_WITHIN:.0%} from "
            f"{start} on; at {at}, {slow} is {_signed((last[slow] - last[fast]) * 1e3, 'ms')} "
            f"(+{last[slow] / last[fast] - 1:.0%}) over {fast}.")


def _number(value: float, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3g} {unit}" if unit != "%" else f"{value:.3g}%"


def _signed(value: float, unit: str) -> str:
    if unit == "ms" and abs(value) < 1:
        value, unit = value * 1e3, "µs"
    return ("+" if value >= 0 else "−") + _number(abs(value), unit)


# -- the table in text --------------------------------------------------------------------
def table_text(table: pd.DataFrame) -> str:
    """The decision table for a terminal: per section, one line per metric, each setting's
    value (± interval), then each other setting's difference to the baseline."""
    if not len(table):
        return "(no figures)"
    settings = list(dict.fromkeys(table["setting"]))
    header = ["", "unit", *settings, *(f"{s} − {settings[0]}" for s in settings[1:])]
    lines = [header]
    for section, mine in table.groupby("section", sort=False):
        lines.append([section] + [""] * (len(header) - 1))
        for (metric, unit), rows in mine.groupby(["metric", "unit"], sort=False):
            rows = rows.set_index("setting")
            cells = [_cell(rows.loc[s, "value"], rows.loc[s, "ci95"]) for s in settings]
            cells += [_cell(rows.loc[s, "delta"], rows.loc[s, "delta_ci95"], signed=True)
                      + _relative(rows.loc[s, "relative"]) for s in settings[1:]]
            lines.append([f"  {metric}", unit, *cells])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join([line[0].ljust(widths[0]), line[1].ljust(widths[1])]
                               + [c.rjust(w) for c, w in zip(line[2:], widths[2:])]).rstrip()
                     for line in lines)


def _cell(value: float, ci: float, signed: bool = False) -> str:
    if math.isnan(value):
        return "-"
    text = f"{value:+.3g}" if signed else f"{value:.3g}"
    return text + (f" ± {ci:.2g}" if not math.isnan(ci) else "")


def _relative(relative: float) -> str:
    return f" ({relative:+.0%})" if not math.isnan(relative) and abs(relative) < 10 else ""


# -- figures of the differences -------------------------------------------------------------
def comparison_figures(summary: pd.DataFrame, axes: list[str], field: str,
                       baseline: str) -> dict[str, Figure]:
    """Per traffic kind and numeric axis, `compare__<x>__<traffic>`: p50, p99 and softirq
    CPU per request minus the baseline's at the same point; with the control plane,
    `compare__<x>__control-plane`: network programming p50 and p99 minus the baseline's."""
    df = with_derived(summary)
    lay = layout(df, axes, series=field)
    figures = {}
    versus = [replace(PANELS[n], label=label, versus=baseline)
              for n, label in (("p50", "p50 latency"), ("p99", "p99 latency"),
                               ("softirq", "softirq CPU per request"))]
    numeric = [a for a in axes if a != field and a not in lay.with_series and df[a].dtype.kind in "if"
               and df[a].nunique() > 1]
    for x in numeric or [lay.x]:
        here = layout(df, axes, x, field)
        stem = f"compare__{x}" if x else "compare"
        for traffic, rows in df.groupby("traffic", sort=False):
            figures[f"{stem}__{traffic}"] = figure(rows, here, versus, f"{traffic}, against {baseline}")
        point = df[df["traffic"] == df["traffic"].iloc[0]]
        if point["network_programming_p50_s"].notna().any():
            figures[f"{stem}__control-plane"] = figure(
                point, here, [replace(PANELS[n], label=n.replace("programming-", "network programming "),
                                      versus=baseline, point=True)
                              for n in ("programming-p50", "programming-p99")],
                f"control plane, against {baseline}")
    return figures



def dataplanes(summary: pd.DataFrame, field: str, settings: Sequence[str]) -> dict[str, list[str]]:
    """Setting -> the data paths its points ran (the summary's `dataplane`: under eBPF, the
    host routing and load balancing the settings and the kernel resolved to)."""
    if "dataplane" not in summary:
        return {}
    by = summary.groupby(summary[field].astype(str), sort=False)["dataplane"]
    return {setting: list(dict.fromkeys(by.get_group(setting))) for setting in settings
            if setting in by.groups}


def dataplanes_text(paths: dict[str, list[str]]) -> str:
    """'data paths: iptables: iptables; ebpf: cilium eBPF, ...', or '' when every setting
    names its own data path."""
    if all(names == [setting] for setting, names in paths.items()):
        return ""
    return "data paths: " + "; ".join(f"{setting}: {' or '.join(names)}" for setting, names in paths.items())


def along_text(along: Mapping[str, Sequence[str]]) -> str:
    """'cluster.cni_datapath with it: vxlan, native' per field moving along the compared one
    ('; ' between them), '' without any."""
    return "; ".join(f"{name} with it: {', '.join(map(str, values))}" for name, values in along.items())


@dataclass(frozen=True)
class Comparison:
    """What `netmodel compare` decided: `table` (TABLE_COLUMNS), `verdict` (sentences),
    the comparison's `summary` (a sweep summary with `field` as an axis), the reference
    point (`reference`: axis -> value), `notes`, the results folder it wrote, and the fields
    moving along the compared one (`along`: field -> its value under each setting)."""

    field: str
    settings: tuple[str, ...]
    reference: dict
    table: pd.DataFrame
    verdict: tuple[str, ...]
    summary: pd.DataFrame
    notes: tuple[str, ...]
    folder: str
    along: dict[str, list[str]] = dataclass_field(default_factory=dict)

    def dataplanes(self) -> dict[str, list[str]]:
        """Setting -> the data paths its points ran (`dataplanes`)."""
        return dataplanes(self.summary, self.field, self.settings)

    def text(self) -> str:
        """The decision for a terminal: what was compared where, the data paths the settings
        resolved to (when that says more than the setting), the table, the verdict."""
        where = ", ".join(f"{a} = {v}" for a, v in self.reference.items()) or "the scenario itself"
        along = along_text(self.along)
        lines = [f"compare {self.field}: {', '.join(self.settings)} (baseline {self.settings[0]})"
                 f"{'; ' + along if along else ''}; the table at {where}"]
        paths = dataplanes_text(self.dataplanes())
        lines += ([paths] if paths else []) + [table_text(self.table), "", "verdict:"]
        lines += [f"  - {s}" for s in self.verdict]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)
