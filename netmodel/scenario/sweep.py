"""Sweeps: one scenario file, many scenario points.

`sweep.axes` names scenario fields by dotted path (`services.count`,
`kube_proxy.mode`, `workload.mix.pod-clusterip`, `costs.iptables_rule`) and gives
each a list of values or a generated `log`/`linear` range. The points are the grid
product of the axes in the order they are written (the last axis varies fastest);
the axes of a `zip` group vary together and count as one axis, placed where the
first of them is written. Every point is a fully validated `Scenario` with its own
cost profile.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel

from netmodel.costs.profile import PARAMETERS, Profile, load_profile
from netmodel.errors import NetmodelError
from netmodel.limits import SWEEP_POINTS, SWEEP_VALUES, WORK
from netmodel.scenario.checks import simulated_work
from netmodel.scenario.loader import LoadedScenario, validate_scenario
from netmodel.scenario.overrides import path_problem, set_path
from netmodel.scenario.schema import Range, Scenario
from netmodel.units import BASE_UNIT

MAX_RANGE_VALUES = 10_000
"""Most values one generated range may give (as `Range.num` allows)."""


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: the axis values it takes and the scenario they make."""

    point_id: int
    """0-based position in expansion order."""
    values: dict[str, Any]
    """Axis path -> value as the validated point holds it (SI numbers, e.g. 25e9 for '25Gbps')."""
    scenario: Scenario
    """The base scenario with the values applied, validated, with `sweep=None`."""
    profile: Profile
    """The point's cost profile, its `costs:` overrides (swept ones too) applied."""


def expand_sweep(loaded: LoadedScenario) -> list[SweepPoint]:
    """Return the points of the scenario's sweep in order; a single point when there is none."""
    sweep = loaded.scenario.sweep
    if sweep is None:  # the one point is the scenario as loaded: no second validation
        return [SweepPoint(0, {}, loaded.scenario, loaded.profile)]
    builder = _PointBuilder(loaded)
    axes = {name: builder.axis_values(name, spec)
            for name, spec in (sweep.axes.items() if sweep else ())}
    dimensions = _dimensions(loaded, axes, sweep.zip if sweep else [])
    _check_count(loaded, math.prod(len(d) for d in dimensions))
    points, work = [], 0.0
    for point_id, combination in enumerate(itertools.product(*dimensions)):
        chosen = dict(pair for group in combination for pair in group)
        given = {name: chosen[name] for name in axes}
        try:
            scenario, profile = builder.build(given)
        except _Invalid as exc:
            shown = ", ".join(f"{name}={value!r}" for name, value in given.items())
            raise NetmodelError(f"point {point_id} ({shown}): {exc}", file=loaded.file,
                                line=loaded.lines.get(("sweep",)), field="sweep") from None
        values = {name: _read(scenario, profile, name) for name in given}
        points.append(SweepPoint(point_id, values, scenario, profile))
        work += simulated_work(scenario)
        if work > WORK():
            raise NetmodelError(WORK.refuse(work, f"the requests of points 0..{point_id} "
                                                  "(replications x requests)"),
                                file=loaded.file, line=loaded.lines.get(("sweep",)), field="sweep")
    return points


def _check_count(loaded: LoadedScenario, count: int) -> None:
    """Refuse a sweep of more points, or more values in all, than the limits allow, before
    any point is built."""
    where = {"file": loaded.file, "line": loaded.lines.get(("sweep",)), "field": "sweep"}
    if count > SWEEP_POINTS():
        raise NetmodelError(SWEEP_POINTS.refuse(count, "the number of points"), **where)
    values = count * max(len(loaded.lines), 1)
    if values > SWEEP_VALUES():
        raise NetmodelError(SWEEP_VALUES.refuse(values, f"{count:,} points x {len(loaded.lines):,} "
                                                        "values of the scenario"), **where)


class _Invalid(Exception):
    """Why a set of axis values does not make a valid scenario."""


class _PointBuilder:
    """Applies axis values to the loaded scenario and validates the result."""

    def __init__(self, loaded: LoadedScenario):
        self.loaded = loaded
        self.base = {k: v for k, v in loaded.raw.items() if k != "sweep"}
        """The fields the file gives; unset ones stay unset, so that a check on what was
        given (services.count next to an inventory) sees the file as written."""
        self.profiles = {loaded.scenario.profile: loaded.profile}
        """Profile reference -> loaded profile; a point's `costs:` are applied on top."""
        self.axes: list[str] = []

    def build(self, given: dict[str, Any]) -> tuple[Scenario, Profile]:
        """Return the validated scenario and its profile for axis path -> value as given."""
        data = copy.deepcopy(self.base)
        for name, value in given.items():
            set_path(data, name, value, self.loaded.scenario)
        try:
            scenario = validate_scenario(data, base_dir=self.loaded.base_dir)
        except NetmodelError as exc:
            raise _Invalid(str(exc)) from None
        try:
            if scenario.profile not in self.profiles:
                self.profiles[scenario.profile] = load_profile(scenario.profile,
                                                               base_dir=self.loaded.base_dir)
            return scenario, self.profiles[scenario.profile].with_overrides(scenario.costs)
        except NetmodelError as exc:
            raise _Invalid(str(exc)) from None

    def axis_values(self, name: str, spec: list[Any] | Range) -> list[Any]:
        """Return the values an axis gives the model: its list, or its range generated."""
        self._check_path(name)
        if isinstance(spec, list):
            if not spec:
                raise self._error(name, "an axis needs at least one value")
            return spec
        low, high = (self._number(name, "range end", end) for end in spec.log or spec.linear)
        if spec.log is not None:
            if low <= 0 or high <= 0:
                raise self._error(name, f"a log range needs ends > 0, got {low:g} and {high:g}")
            grid = np.geomspace(low, high, spec.num)
        elif spec.num is not None:
            grid = np.linspace(low, high, spec.num)
        else:
            step = spec.step
            if isinstance(step, str):
                step = self._number(name, "step", step)
            if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0:
                raise self._error(name, f"step must be a number > 0, got {spec.step!r}")
            grid = self._steps(name, low, high, step)
        if isinstance(low, int) and isinstance(high, int):
            return list(dict.fromkeys(int(round(v)) for v in grid))
        values = [float(f"{v:.12g}") for v in grid]
        at = name.split(".")
        if at[0] == "costs":  # a profile value needs its unit; give the SI one
            return [f"{v!r}{BASE_UNIT[PARAMETERS[at[1]]]}" for v in values]
        return values

    def _steps(self, name: str, low: float, high: float, step: float) -> list[float]:
        """low, low +- step, ... up to high (included when it is on the grid within 1e-9)."""
        count = abs(high - low) / step
        if not math.isfinite(count):  # a step of 5e-324 over a wide range
            raise self._error(name, f"the range gives more than {MAX_RANGE_VALUES:,} values")
        on_grid = abs(count - round(count)) <= 1e-9 * max(1.0, count)
        steps = round(count) if on_grid else math.floor(count)
        if steps + 1 > MAX_RANGE_VALUES:
            raise self._error(name, f"the range gives {steps + 1:,} values, more than "
                                    f"{MAX_RANGE_VALUES:,}")
        direction = 1 if high >= low else -1
        grid = [low + direction * i * step for i in range(steps + 1)]
        if on_grid:
            grid[-1] = high
        return grid

    def _number(self, name: str, what: str, value: Any) -> int | float:
        """The SI number the field at axis `name` makes of `value` (e.g. '1ms' -> 0.001)."""
        try:
            number = _read(*self.build({name: value}), name)
        except _Invalid as exc:
            raise self._error(name, f"{what} {value!r}: {exc}") from None
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise self._error(name, f"a range needs a numeric field, {name} takes {number!r}; "
                                    "give a list of values instead")
        return number

    def _check_path(self, name: str) -> None:
        """Refuse an axis that names no field, or one inside another axis."""
        problem = path_problem(name)
        if problem:
            raise self._error(name, problem.replace("cannot be set by path", "cannot be swept"))
        for other in self.axes:
            inner, outer = sorted((name, other), key=len, reverse=True)
            if inner.startswith(outer + "."):
                raise self._error(name, f"axis {inner!r} is inside axis {outer!r}; "
                                        "sweep one of them")
        self.axes.append(name)

    def _error(self, name: str, message: str) -> NetmodelError:
        return NetmodelError(message, file=self.loaded.file,
                             line=self.loaded.lines.get(("sweep", "axes", name)),
                             field=f"sweep.axes.{name}")


def _dimensions(loaded: LoadedScenario, axes: dict[str, list[Any]],
                zip_groups: list[list[str]]) -> list[list[tuple[tuple[str, Any], ...]]]:
    """The factors of the grid product: for each axis (or zip group), its (name, value) choices."""
    group_of: dict[str, int] = {}
    for g, group in enumerate(zip_groups):
        for j, name in enumerate(group):
            where = {"file": loaded.file, "line": loaded.lines.get(("sweep", "zip", g, j)),
                     "field": f"sweep.zip[{g}][{j}]"}
            if name not in axes:
                raise NetmodelError(f"{name!r} is not an axis (axes: {', '.join(axes)})", **where)
            if name in group_of:
                raise NetmodelError(f"axis {name!r} is already in zip group {group_of[name]}",
                                    **where)
            group_of[name] = g
        lengths = {name: len(axes[name]) for name in group}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{name}: {n}" for name, n in lengths.items())
            raise NetmodelError(f"zipped axes need the same number of values, got {shown}",
                                file=loaded.file, line=loaded.lines.get(("sweep", "zip", g)),
                                field=f"sweep.zip[{g}]")
    dimensions, placed = [], set()
    for name, values in axes.items():
        if name not in group_of:
            dimensions.append([((name, value),) for value in values])
        elif group_of[name] not in placed:
            group = zip_groups[group_of[name]]
            placed.add(group_of[name])
            dimensions.append([tuple(zip(group, row)) for row in zip(*(axes[n] for n in group))])
    return dimensions


def _read(scenario: Scenario, profile: Profile, name: str) -> Any:
    """The value at axis path `name` in a validated point: SI numbers, plain data."""
    at = name.split(".")
    if at[0] == "costs":
        return profile[at[1]] if len(at) == 2 else {k: profile[k] for k in scenario.costs}
    value: Any = scenario
    for part in at:
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value.model_dump() if isinstance(value, BaseModel) else value
