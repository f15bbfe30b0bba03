"""The registry of validation cases and the row each comparison becomes.

A *case* is a function of a `Context` (the profile under test, the default profile, quick
or not, the lab's measurements if the profile came from the lab) that returns `Check`s:
one row of `netmodel validate`'s table each (case, source, reference figure, model figure,
error, tolerance, pass/fail, and for a failure what the model lacks). Cases register
themselves with `@case(name, group)`; a new one is a function in the module of its group
(`theory`, `published`, `lab`), or a new module imported by `netmodel.validation`.
`relative` and `shape` build the two kinds of check.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from netmodel.calibration.record import LabRecord
from netmodel.costs.profile import Profile

GROUPS = ("theory", "published", "lab")
"""theory: the engine against queueing theory; published: the model (default profile)
against published figures; lab: the model (the profile under test) against the lab's own
measurements of the machine that profile describes."""


@dataclass(frozen=True)
class Check:
    """One row of the validation table."""

    case: str
    source: str
    reference: str
    model: str
    error: str
    tolerance: str
    passed: bool
    lacks: str = ""
    """For a failure: what the model lacks (or what the profile does not describe)."""
    value: float = math.nan
    """The model figure in SI units (for tests)."""
    reference_value: float = math.nan


@dataclass(frozen=True)
class Context:
    """What a case runs with."""

    profile: Profile
    """The profile under test (lab cases; the shape checks of published figures)."""
    default: Profile
    """The shipped default profile: published absolute figures are of its hardware."""
    quick: bool = False
    lab: LabRecord | None = None
    """The lab's samples and record when the profile under test was written by the lab."""


@dataclass(frozen=True)
class Case:
    """A registered validation case."""

    name: str
    group: str
    run: "CaseFunction"
    doc: str = field(default="", compare=False)

    @property
    def summary(self) -> str:
        """The first sentence of the case's docstring."""
        text = " ".join(self.doc.split())
        return text.split(". ")[0].rstrip(".") + "." if text else ""


CASES: dict[str, Case] = {}
"""Every case by name, in registration order (complete once `ordered()` has run)."""
CASE_MODULES = ("netmodel.validation.theory", "netmodel.validation.published",
                "netmodel.validation.dataplanes", "netmodel.validation.lab")
"""The modules whose `@case` functions make up `netmodel validate`."""


def ordered() -> list[Case]:
    """Every case (their modules imported, so registered), in the table's order: by group
    (GROUPS), then as registered."""
    for module in CASE_MODULES:
        importlib.import_module(module)
    return sorted(CASES.values(), key=lambda c: GROUPS.index(c.group))


CaseFunction = Callable[[Context], list[Check]]


def case(name: str, group: str) -> Callable[[CaseFunction], CaseFunction]:
    """Register the decorated function as validation case `name` of `group`."""
    if group not in GROUPS:
        raise ValueError(f"unknown validation group {group!r}")

    def register(fn: CaseFunction) -> CaseFunction:
        if name in CASES:
            raise ValueError(f"validation case {name!r} registered twice")
        CASES[name] = Case(name, group, fn, (fn.__doc__ or "").strip())
        return fn

    return register


def _format(value: float, unit: str) -> str:
    scale = {"us": 1e6, "ms": 1e3, "s": 1.0, "ns": 1e9, "Gb/s": 1e-9, "%": 100.0, "": 1.0}[unit]
    return f"{value * scale:.4g}{' ' + unit if unit and unit != '%' else unit}"


def _noted(text: str, note: str) -> str:
    return f"{text} ({note})" if note else text


def relative(name: str, source: str, reference: float, model: float, tolerance: float,
             unit: str = "", lacks: str = "", note: str = "") -> Check:
    """The model figure within `tolerance` (relative) of the reference; `lacks` is shown
    only if it is not; `note` qualifies the model figure."""
    error = model / reference - 1 if reference else math.inf
    passed = abs(error) <= tolerance
    return Check(name, source, _format(reference, unit), _noted(_format(model, unit), note),
                 f"{error:+.1%}", f"±{tolerance:.0%}" if tolerance >= 0.01 else f"±{tolerance:.1%}",
                 passed, "" if passed else lacks, model, reference)


def absolute(name: str, source: str, reference: float, model: float, tolerance: float,
             unit: str = "", lacks: str = "", note: str = "") -> Check:
    """The model figure within `tolerance` (same unit) of the reference."""
    error = model - reference
    passed = abs(error) <= tolerance
    return Check(name, source, _format(reference, unit), _noted(_format(model, unit), note),
                 f"{error * (100 if unit == '%' else 1):+.3g}{' pp' if unit == '%' else ''}",
                 f"±{_format(tolerance, unit)}", passed, "" if passed else lacks, model, reference)


def shape(name: str, source: str, expected: str, model: str, passed: bool, tolerance: str,
          error: str = "-", lacks: str = "", value: float = math.nan) -> Check:
    """A check of a shape or an inequality, stated in words."""
    return Check(name, source, expected, model, error, tolerance, passed, "" if passed else lacks, value)
