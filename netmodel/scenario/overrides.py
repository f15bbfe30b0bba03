"""Setting scenario fields by dotted path, the one way: `--set`, sweep axes and the Python
API all go through `set_path`, so a value means the same wherever it is given.

A path names a field as the scenario has it once its defaults are filled in: setting
`workload.mix.pod-pod-cross-node` on a file without a `mix` adds that kind to the default
mix (pod-clusterip stays); to replace a whole mapping, set the mapping itself
(`workload.mix={pod-pod-cross-node: 1}`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from netmodel.costs.profile import PARAMETERS
from netmodel.errors import NetmodelError
from netmodel.limits import NESTING, VALUES
from netmodel.reading import read_yaml
from netmodel.scenario.loader import LoadedScenario, dotted, field_type, known_keys, loaded_from_data
from netmodel.scenario.schema import Scenario

UNSET_ABLE = ("name", "sweep", "inventory")
"""Top-level fields a path may not name. An inventory is a listed cluster (from `netmodel
import kubectl`): set as a whole it would be a different scenario file, and its list items
have no stable dotted names."""


def path_problem(path: str) -> str | None:
    """Why `path` names no settable field of a scenario, or None when it does."""
    at = tuple(path.split("."))
    if at[0] in UNSET_ABLE:
        return f"{at[0]!r} cannot be set by path"
    for i, part in enumerate(at):
        parent = at[:i]
        if parent == ("costs",):
            known, found = list(PARAMETERS), part in PARAMETERS
        else:
            known, found = known_keys(field_type(parent)), field_type(at[:i + 1]) is not None
        if not parent:
            known = [k for k in known if k not in UNSET_ABLE]
        if not found and known is None:
            return f"{dotted(parent)} is a value, it has no field {part!r}"
        if not found:
            return f"unknown field {part!r} in {dotted(parent) or 'the scenario'} (known: {', '.join(known)})"
    return None


def read_setting(path: str, text: str) -> Any:
    """The value of `--set PATH=VALUE`: VALUE read as YAML within the limits (a value that is
    not YAML is a NetmodelError naming the setting)."""
    try:
        return read_yaml(text, None, "--set value")[0]
    except NetmodelError as err:
        raise NetmodelError(err.message, field=f"--set {path}") from None


def check_value(path: str, value: Any) -> None:
    """Refuse a value given from Python that nests deeper or holds more values (shared lists
    and mappings counted each time they appear) than a document may (`netmodel.limits`),
    before it is copied or validated."""
    sizes: dict[int, tuple[int, int]] = {}

    def measure(item: Any, depth: int) -> int:
        if not isinstance(item, (dict, list, tuple)):
            return 1
        if id(item) not in sizes:
            if depth > NESTING():
                raise NetmodelError(f"nested deeper than {NESTING()} levels (the limit; raise it "
                                    f"with the environment variable {NESTING.env})",
                                    field=f"--set {path}")
            sizes[id(item)] = (0, 0)  # a list that holds itself is refused below
            children = item.values() if isinstance(item, dict) else item
            total = 1 + sum(measure(child, depth + 1) for child in children)
            sizes[id(item)] = (total, depth)
        total, first_depth = sizes[id(item)]
        if total == 0:
            raise NetmodelError("the value contains itself: not plain data", field=f"--set {path}")
        if total > VALUES():
            raise NetmodelError(f"more than {VALUES():,} values (the limit; raise it with the "
                                f"environment variable {VALUES.env})", field=f"--set {path}")
        return total

    measure(value, 1)


def set_path(data: dict, path: str, value: Any, scenario: Scenario) -> None:
    """Set the field at dotted `path` of plain scenario `data` to `value`. A section or
    mapping that `data` leaves out is first written as `scenario` has it: a section stays
    with its defaults, a mapping (workload.mix) keeps its default keys."""
    *sections, last = path.split(".")
    node, held = data, scenario
    for i, section in enumerate(sections):
        held = held.get(section) if isinstance(held, dict) else getattr(held, section, None)
        if node.get(section) is None:
            node[section] = {} if held is None or isinstance(held, BaseModel) else copy.deepcopy(held)
        node = node[section]
        if not isinstance(node, dict):
            raise NetmodelError(f"{'.'.join(sections[:i + 1])} is not a mapping", field=path)
    node[last] = value


def with_overrides(loaded: LoadedScenario, overrides: Iterable[tuple[str, Any]]) -> LoadedScenario:
    """The scenario with each (dotted path, value) set, validated and checked again.

    An error names the overrides; it keeps the file's line when the field it is about was
    written in the file and not overridden.
    """
    overrides = list(overrides)
    if not overrides:
        return loaded
    data = copy.deepcopy(loaded.raw)
    for path, value in overrides:
        check_value(path, value)
        problem = path_problem(path)
        if problem:
            raise NetmodelError(problem, field=f"--set {path}")
        try:
            set_path(data, path, value, loaded.scenario)
        except NetmodelError as err:
            raise NetmodelError(err.message, field=f"--set {path}") from None
    paths = [path for path, _ in overrides]
    try:
        return loaded_from_data(data, loaded.lines, loaded.file, loaded.base_dir)
    except NetmodelError as err:
        overridden = err.field is not None and any(
            err.field == p or err.field.startswith(p + ".") or p.startswith(err.field + ".")
            for p in paths)
        raise NetmodelError(f"{err.message} (after --set {', '.join(paths)})", file=err.file,
                            line=None if overridden else err.line, field=err.field) from None
