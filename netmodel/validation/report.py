"""Run the registered validation cases and print their table (text or Markdown)."""

from __future__ import annotations

import datetime
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from netmodel.calibration.record import read_lab
from netmodel.costs.profile import load_profile
from netmodel.errors import NetmodelError
from netmodel.validation.cases import CASES, GROUPS, Check, Context, ordered

COLUMNS = ("case", "source", "reference", "model", "error", "tolerance", "result")


@dataclass
class Report:
    """The checks of one `netmodel validate` run, grouped as they ran."""

    profile: str
    quick: bool
    checks: list[tuple[str, Check]] = field(default_factory=list)
    """(group, check) in table order."""
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for _, c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for _, c in self.checks if not c.passed]

    def _rows(self) -> list[tuple[str, ...]]:
        return [(c.case, c.source, c.reference, c.model, c.error, c.tolerance, "pass" if c.passed else "FAIL")
                for _, c in self.checks]

    def summary(self) -> str:
        n, bad = len(self.checks), len(self.failed)
        return f"{n - bad} of {n} checks pass" + (f"; {bad} fail" if bad else "")

    def text(self) -> str:
        """The table for a terminal: a block per group, each failure followed by what the
        model lacks."""
        rows = self._rows()
        by_group: dict[str, list[tuple[str, ...]]] = {}
        for (g, _), row in zip(self.checks, rows):
            by_group.setdefault(g, [COLUMNS]).append(row)
        widths = {g: [max(len(r[i]) for r in rs) for i in range(len(COLUMNS))] for g, rs in by_group.items()}
        lines = [f"netmodel validate: profile {self.profile}{' (quick)' if self.quick else ''}"]
        lines += self.notes
        group = None
        for (g, check), row in zip(self.checks, rows):
            if g != group:
                group = g
                lines += ["", f"[{g}]", "  ".join(h.ljust(w) for h, w in zip(COLUMNS, widths[g]))]
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths[g])).rstrip())
            if check.lacks:
                lines += textwrap.wrap(f"model lacks: {check.lacks}", 100, initial_indent="    ",
                                       subsequent_indent="      ")
        return "\n".join(lines + ["", self.summary()])

    def markdown(self) -> str:
        """The table as Markdown (`--report FILE.md`)."""
        lines = [f"# netmodel validate: profile {self.profile}", "",
                 f"Run {datetime.date.today().isoformat()}{', --quick' if self.quick else ''}. "
                 f"{self.summary()}.", ""]
        lines += [f"- {n}" for n in self.notes]
        group = None
        for g, check in self.checks:
            if g != group:
                group = g
                lines += ["", f"## {g}", "", "| " + " | ".join(COLUMNS) + " | what the model lacks |",
                          "|" + "---|" * (len(COLUMNS) + 1)]
            row = (check.case, check.source, check.reference, check.model, check.error, check.tolerance,
                   "pass" if check.passed else "**FAIL**", check.lacks)
            lines.append("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")
        return "\n".join(lines) + "\n"


def validate(profile: str | Path = "default", quick: bool = False,
             groups: Iterable[str] = GROUPS, cases: Iterable[str] | None = None,
             progress: Callable[[str], None] | None = None) -> Report:
    """Run the validation cases of `groups` (or only those named in `cases`) with `profile`
    (a shipped name or a YAML file; a profile the lab wrote also brings its measurements)."""
    ref = str(profile)
    every = ordered()
    under_test = load_profile(ref)
    lab = read_lab(ref)
    ctx = Context(under_test, load_profile("default"), quick, lab)
    wanted = set(groups)
    unknown = sorted(set(cases or ()) - set(CASES))
    if unknown:
        raise NetmodelError(f"no validation case {', '.join(unknown)} (known: {', '.join(CASES)})",
                            field="case")
    report = Report(under_test.name, quick)
    if lab is None:
        report.notes.append("no lab measurements beside this profile: the lab cases are skipped "
                            "(`netmodel calibrate lab --out P.yaml` writes them)")
    else:
        m = lab.record["machine"]
        report.notes.append(f"lab measurements of {lab.record['date']}: {m['cpu']}, Linux {m['kernel']}, "
                            f"iptables-{lab.record['iptables_backend']}")
    for c in every:
        if c.group not in wanted or (cases is not None and c.name not in set(cases)):
            continue
        if c.group == "lab" and lab is None:
            continue
        if progress:
            progress(c.name)
        report.checks += [(c.group, check) for check in c.run(ctx)]
    return report
