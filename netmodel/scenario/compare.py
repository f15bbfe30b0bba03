"""What `netmodel compare` runs: the scenario's sweep (or a default range around its own
Service count and request rate) with one field set to each of the settings compared,
and the point that stands for the scenario itself (the reference point).

    netmodel compare cluster.yaml --vs kube_proxy.mode=iptables,nftables,ebpf

The settings become one more sweep axis, so every setting sees the same arrivals and
choices (common random numbers) and the difference between two settings is not swamped
by sampling noise. Fields that change with the compared one (a migration to eBPF that
also drops the overlay) move along it, one value per setting, zipped with its axis:

    netmodel compare cluster.yaml --vs kube_proxy.mode=iptables,ebpf --vs cluster.cni_datapath=vxlan,native
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import yaml

from netmodel.errors import NetmodelError
from netmodel.scenario.loader import LoadedScenario, loaded_from_data
from netmodel.scenario.overrides import path_problem, with_overrides
from netmodel.scenario.sweep import SweepPoint, expand_sweep
from netmodel.scenario.sweep import _read as read_value

DEFAULT_SERVICE_FACTORS = (0.1, 1.0, 10.0)
"""Without a sweep: Service counts compared, as multiples of the scenario's own."""
DEFAULT_RATE_FACTORS = (0.5, 1.0, 2.0)
"""Without a sweep: request rates compared, as multiples of the scenario's own."""


@dataclass(frozen=True)
class ComparisonPlan:
    """The sweep a comparison runs and how to read it.

    `loaded`: the scenario with the comparison's sweep; `field` and `settings`: what is
    compared (the first setting is the baseline); `along`: other fields -> their value under
    each setting; `reference`: axis -> the value of the point standing for the scenario
    itself; `notes`: what was chosen or left out."""

    loaded: LoadedScenario
    field: str
    settings: tuple[Any, ...]
    reference: dict[str, Any]
    notes: tuple[str, ...]
    along: dict[str, tuple[Any, ...]] = dataclass_field(default_factory=dict)

    def points(self) -> list[SweepPoint]:
        return expand_sweep(self.loaded)

    def reference_points(self) -> dict[str, int]:
        """Setting (as text) -> point_id of the reference point under that setting."""
        found = {}
        for point in self.points():
            if all(_same(point.values[a], v) for a, v in self.reference.items()):
                found[str(point.values[self.field])] = point.point_id
        return found


def _settings_sweep(field: str, settings: Sequence[Any], along: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """A sweep's axes of the compared field and the fields moving along it, zipped."""
    axes = {field: list(settings), **{name: list(values) for name, values in along.items()}}
    return {"axes": axes, **({"zip": [list(axes)]} if along else {})}


Versus = str | tuple[str, Iterable[Any]]
"""One compared field: 'FIELD=A,B[,...]' (as `--vs` takes it) or (field, values)."""


def versus_fields(vs: Versus | Sequence[Versus]) -> tuple[str, list[Any], dict[str, list[Any]]]:
    """(field, settings, along) of one `Versus` or several: the first is compared, the others
    move along it."""
    single = isinstance(vs, str) or (isinstance(vs, tuple) and len(vs) == 2 and not isinstance(vs[1], str))
    items = [vs] if single else list(vs)
    parsed = [parse_versus(v) if isinstance(v, str) else (v[0], list(v[1])) for v in items]
    if not parsed:
        raise NetmodelError("expected FIELD=A,B[,...], e.g. kube_proxy.mode=iptables,ebpf", field="--vs")
    names = [name for name, _ in parsed]
    for name in names:
        if names.count(name) > 1:
            raise _compared_twice(name)
    (field, settings), *along = parsed
    return field, settings, dict(along)


def parse_versus(text: str) -> tuple[str, list[Any]]:
    """'FIELD=A,B[,...]' -> (FIELD, [A, B, ...]), each value read as YAML."""
    field, sep, values = text.partition("=")
    field = field.strip()
    if not sep or not field or not all(field.split(".")):
        raise NetmodelError(f"expected FIELD=A,B[,...], e.g. kube_proxy.mode=iptables,ebpf, got {text!r}",
                            field="--vs")
    try:
        parsed = [yaml.safe_load(v) for v in values.split(",")]
    except yaml.YAMLError:
        raise NetmodelError(f"a value of {text!r} is not valid YAML", field="--vs") from None
    return field, parsed


def plan_comparison(loaded: LoadedScenario, field: str, settings: Sequence[Any],
                    along: Mapping[str, Sequence[Any]] | None = None) -> ComparisonPlan:
    """The comparison of `settings` of `field` on `loaded`: its sweep with `field` as an
    axis of these values, or, without a sweep, a default range around its values. `along`:
    other fields set with it, one value per setting (zipped with its axis)."""
    settings = tuple(settings)
    along = {f: tuple(v) for f, v in (along or {}).items()}
    _check(loaded, field, settings, along)
    compared = [field, *along]
    data = copy.deepcopy(loaded.raw)
    sweep = data.pop("sweep", None)
    notes: list[str] = []
    if sweep:
        axes = {k: v for k, v in sweep["axes"].items() if k not in compared}
        zipped = sweep.get("zip") or []
        for name in compared:
            if any(name in group for group in zipped):
                raise NetmodelError(f"{name} is zipped with other axes in the scenario's sweep; "
                                    "compare needs it on its own", field="--vs")
        notes.append(f"over the scenario's sweep: {', '.join(axes) or 'no other axis'}")
    else:
        axes, zipped = _default_axes(loaded, notes)
        for name in compared:
            axes.pop(name, None)  # compared itself: its settings are the axis
    own = _settings_sweep(field, settings, along)
    groups = [*zipped, *own.get("zip", [])]
    data["sweep"] = {"axes": {**axes, **own["axes"]}, **({"zip": groups} if groups else {})}
    comparing = loaded_from_data(data, loaded.lines, loaded.file, loaded.base_dir)
    reference = _reference(loaded, comparing, list(axes))
    return ComparisonPlan(comparing, field, settings, reference, tuple(notes), along)


def _check(loaded: LoadedScenario, field: str, settings: tuple[Any, ...],
           along: dict[str, tuple[Any, ...]]) -> None:
    if len(settings) < 2 or len({repr(s) for s in settings}) < len(settings):
        raise NetmodelError(f"give two or more different values, got {list(settings)}",
                            field=f"--vs {field}")
    if field in along:
        raise _compared_twice(field)
    for name, values in {field: settings, **along}.items():
        problem = path_problem(name)
        if problem:
            raise NetmodelError(problem.replace("set by path", "compared"), field=f"--vs {name}")
        if len(values) != len(settings):
            raise NetmodelError(f"give one value per setting of {field} ({len(settings)}), got "
                                f"{list(values)}", field=f"--vs {name}")
    for i, setting in enumerate(settings):  # together: moving along, they may need each other
        pairs = [(field, setting), *((name, values[i]) for name, values in along.items())]
        _settable(loaded, pairs, "--vs " + " with ".join(f"{n}={v}" for n, v in pairs))


def _compared_twice(name: str) -> NetmodelError:
    return NetmodelError("compared twice: give each field once", field=f"--vs {name}")


def _settable(loaded: LoadedScenario, pairs: list[tuple[str, Any]], where: str) -> None:
    """A NetmodelError naming `where` unless `loaded` takes the settings `pairs`."""
    try:
        with_overrides(loaded, pairs)
    except NetmodelError as err:
        raise NetmodelError(err.message.replace("(after --set", "(after --vs"),
                            file=err.file, field=where) from None


def _default_axes(loaded: LoadedScenario, notes: list[str]) -> tuple[dict[str, list], list]:
    """Service count (unless the scenario lists its Services) and request rate around the
    scenario's own; a value that does not fit the cluster is left out, with a note."""
    scenario = loaded.scenario
    candidates = {"workload.rate": [scenario.workload.rate * f for f in DEFAULT_RATE_FACTORS]}
    if scenario.inventory is None:
        count = scenario.services.count
        candidates = {"services.count": sorted({max(1, round(count * f)) for f in DEFAULT_SERVICE_FACTORS}),
                      **candidates}
    axes = {}
    for axis, values in candidates.items():
        fits = []
        for value in values:
            try:
                with_overrides(loaded, [(axis, value)])
                fits.append(value)
            except NetmodelError as err:
                notes.append(f"left out {axis}={value:g}: {err.message}")
        axes[axis] = fits
    notes.insert(0, "no sweep in the scenario: " + "; ".join(
        f"{axis} {', '.join(f'{v:g}' for v in values)}" for axis, values in axes.items()))
    return axes, []


def _reference(loaded: LoadedScenario, comparing: LoadedScenario, axes: list[str]) -> dict[str, Any]:
    """Per axis, the value nearest to the scenario's own (the first value when there is
    no sense of near)."""
    points = expand_sweep(comparing)
    reference = {}
    for axis in axes:
        values = list(dict.fromkeys(_hashable(p.values[axis]) for p in points))
        reference[axis] = _nearest(values, _hashable(read_value(loaded.scenario, loaded.profile, axis)))
    return reference


def _nearest(values: list[Any], own: Any) -> Any:
    if own is None or not values:
        return values[0] if values else None
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in [*values, own]):
        return min(values, key=lambda v: abs(math.log(v / own)))
    return own if own in values else values[0]


def _hashable(value: Any) -> Any:
    return repr(value) if isinstance(value, (dict, list)) else value


def _same(a: Any, b: Any) -> bool:
    return _hashable(a) == b


ROLLOUT_LENGTH = 20.0
"""Seconds of traffic (and of control plane) in a comparison's rolling-update run."""
ROLLOUT_AT = 2.0
"""When the rolling update starts, s."""


def rollout_comparison(plan: ComparisonPlan) -> LoadedScenario:
    """The reference point under each setting with a rolling update of its busiest Service
    (generated Services: the most popular; listed ones: the one with most endpoints) while
    clients call it, the control plane simulated: how long each setting takes to program
    the change, and how many requests fail on endpoints that have gone meanwhile. One
    replication of ROLLOUT_LENGTH seconds."""
    base = loaded_from_data({k: v for k, v in plan.loaded.raw.items() if k != "sweep"},
                            plan.loaded.lines, plan.loaded.file, plan.loaded.base_dir)
    scenario = base.scenario
    service = 0
    if scenario.inventory is not None:
        sizes = [len(s.endpoints) for s in scenario.inventory.services]
        service = sizes.index(max(sizes))
    settings = [*plan.reference.items(),
                ("control_plane.enabled", True), ("control_plane.churn_rate", 0),
                ("control_plane.duration", ROLLOUT_LENGTH),
                ("control_plane.events", [{"rolling_update": {"service": service, "at": ROLLOUT_AT}}]),
                ("run.requests", None), ("run.duration", ROLLOUT_LENGTH), ("run.replications", 1)]
    rolled = with_overrides(base, settings)
    data = copy.deepcopy(rolled.raw)
    data["sweep"] = _settings_sweep(plan.field, plan.settings, plan.along)
    return loaded_from_data(data, rolled.lines, rolled.file, rolled.base_dir)
