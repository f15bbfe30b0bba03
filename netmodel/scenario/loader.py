"""Reading a scenario file: safe YAML, line numbers, one-line errors.

The YAML is read by `netmodel.reading` within the limits (size, nesting, values), as plain
data only (nothing is ever evaluated), every key and list item with the line it was
written on; it is then validated by the pydantic schema and checked (`checks.py`).
Whatever is wrong comes out as a `NetmodelError` that points at ``file:line: field``.
"""

from __future__ import annotations

import types
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Sequence, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from netmodel.costs.profile import Profile, load_profile
from netmodel.errors import NetmodelError
from netmodel.limits import INPUT_BYTES
from netmodel.reading import Location, dotted, read_yaml
from netmodel.scenario.checks import ScenarioCheckError, check_scenario
from netmodel.scenario.digest import scenario_digest
from netmodel.scenario.samples import SamplesError, read_samples
from netmodel.scenario.schema import Scenario


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario file together with where each of its values was written."""

    path: Path | None
    """The file read, or None when parsed from text."""
    file: str
    """The file name as given, for messages."""
    base_dir: Path
    """Folder that relative paths in the scenario (a profile file) are resolved against."""
    raw: dict
    """The plain data loaded from YAML, before validation."""
    lines: dict[Location, int]
    """Location -> 1-based line of that key or list item; () is the document."""
    scenario: Scenario
    profile: Profile
    """The scenario's cost profile with its `costs:` overrides applied."""
    digest: str
    """`scenario_digest` of the validated scenario and its profile."""


def load_scenario(path: str | Path) -> LoadedScenario:
    """Return the validated scenario of a YAML file; raise NetmodelError if it is wrong."""
    file = str(path)
    path = Path(path)
    if not path.is_file():
        raise NetmodelError("scenario file not found", file=file)
    size = path.stat().st_size
    if size > INPUT_BYTES():
        raise NetmodelError(INPUT_BYTES.refuse(size, "the file's size in bytes"), file=file)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise NetmodelError(f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                            file=file) from None
    return replace(parse_scenario(text, file, path.parent), path=path)


def parse_scenario(text: str, file: str, base_dir: Path) -> LoadedScenario:
    """Return the validated scenario of YAML `text`, naming `file` in errors."""
    raw, lines = _read_yaml(text, file)
    return loaded_from_data(raw, lines, file, base_dir)


def loaded_from_data(raw: dict, lines: dict[Location, int], file: str, base_dir: Path) -> LoadedScenario:
    """The scenario of plain data `raw` (its locations written on `lines`): validated,
    checked, with its profile; a NetmodelError at the line of the first problem."""
    scenario = validate_scenario(raw, file=file, lines=lines, base_dir=base_dir)
    profile = scenario_profile(scenario, base_dir, file=file, lines=lines)
    return LoadedScenario(None, file, base_dir, raw, lines, scenario, profile,
                          scenario_digest(scenario, profile))


def validate_scenario(data: Any, *, file: str | None = None,
                      lines: Mapping[Location, int] | None = None,
                      base_dir: Path | None = None) -> Scenario:
    """The Scenario of plain data: its schema, then the checks that need the cluster and
    the routes (`check_scenario`); a NetmodelError naming the field (and its line, from
    `lines`) otherwise. Files the scenario names (`workload.server.service_time_file`) are
    read relative to `base_dir`."""
    lines = lines or {}
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        at, message = describe_validation_error(exc, data, lines)
        raise NetmodelError(message, file=file, line=_line_of(at, lines) if lines else None,
                            field=dotted(at) or None) from None
    try:
        check_scenario(scenario)
    except ScenarioCheckError as exc:
        raise NetmodelError(str(exc), file=file, line=_line_of(exc.location, lines) if lines else None,
                            field=dotted(exc.location)) from None
    return _with_samples(scenario, base_dir or Path.cwd(), file, lines)


def _with_samples(scenario: Scenario, base_dir: Path, file: str | None,
                  lines: Mapping[Location, int]) -> Scenario:
    """The scenario with `workload.server.service_time_file` read into its samples."""
    server = scenario.workload.server
    if server.service_time_file is None:
        return scenario
    where = ("workload", "server", "service_time_file")
    try:
        samples = read_samples(base_dir / server.service_time_file)
    except SamplesError as exc:
        if exc.line is not None:  # a line of the CSV
            raise NetmodelError(exc.message, file=str(exc.path), line=exc.line) from None
        raise NetmodelError(exc.message, file=file, line=_line_of(where, lines) if lines else None,
                            field=dotted(where)) from None
    return scenario.model_copy(update={"workload": scenario.workload.model_copy(update={
        "server": server.model_copy(update={"service_time_samples": samples})})})


def scenario_profile(scenario: Scenario, base_dir: Path, *, file: str | None = None,
                     lines: Mapping[Location, int] | None = None) -> Profile:
    """Return the scenario's cost profile (`profile:`) with its `costs:` overrides applied."""
    lines = lines or {}
    try:
        base = load_profile(scenario.profile, base_dir=base_dir)
    except NetmodelError as exc:
        if exc.file:
            raise
        raise NetmodelError(exc.message, file=file, line=lines.get(("profile",)),
                            field=exc.field) from None
    return base.with_overrides(scenario.costs, file=file,
                               lines={name: lines.get(("costs", name)) for name in scenario.costs})


# --- YAML --------------------------------------------------------------------------

def _read_yaml(text: str, file: str) -> tuple[dict, dict[Location, int]]:
    raw, lines = read_yaml(text, file, "scenario")
    if raw is None:
        raise NetmodelError("empty scenario file: expected a mapping with at least 'name'", file=file)
    if not isinstance(raw, dict):
        raise NetmodelError(f"a scenario is a mapping of sections (name, cluster, services, ...), "
                            f"got {_show(raw)}", file=file, line=lines[()])
    return raw, lines


# --- the schema, walked by location ------------------------------------------------

def field_type(at: Sequence[Any]) -> Any | None:
    """Return the schema annotation of the field at location `at`, or None if there is none.

    Locations go through sections (model fields), dict keys (only the allowed ones
    when the keys are a Literal) and list indices.
    """
    annotation: Any = Scenario
    for part in at:
        annotation = _child(annotation, part)
        if annotation is None:
            return None
    return annotation


def known_keys(annotation: Any) -> list[str] | None:
    """Return the keys allowed under a field: a section's fields or a Literal-keyed dict's keys.

    None when the field is not a mapping or takes any key.
    """
    for option in _options(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return list(option.model_fields)
        if get_origin(option) is dict and get_origin(get_args(option)[0]) is Literal:
            return list(get_args(get_args(option)[0]))
    return None


def _child(annotation: Any, part: Any) -> Any | None:
    for option in _options(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel):
            if part in option.model_fields:
                return option.model_fields[part].annotation
        elif get_origin(option) is dict:
            key, value = get_args(option)
            if get_origin(key) is not Literal or part in get_args(key):
                return value
        elif get_origin(option) is list and isinstance(part, int):
            return get_args(option)[0]
    return None


def _options(annotation: Any) -> list[Any]:
    """The alternatives of an annotation, with Annotated and None stripped."""
    if get_origin(annotation) is Annotated:
        return _options(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return [o for arg in get_args(annotation) if arg is not type(None) for o in _options(arg)]
    return [annotation]


# --- validation errors -------------------------------------------------------------

_EXPECTED = {
    "int": "an integer", "float": "a number", "bool": "true or false", "string": "a string",
    "dict": "a mapping", "model": "a mapping", "list": "a list", "tuple": "a list",
}
_TEMPLATES = {
    "literal_error": "expected one of {expected}, got {got}",
    "int_from_float": "expected an integer, got {got}",
    "string_pattern_mismatch": "expected text matching {pattern}, got {got}",
    "too_short": "expected at least {min_length} items, got {actual_length}",
    "too_long": "expected at most {max_length} items, got {actual_length}",
}
"""pydantic error type -> our message, filled from its context and the value given."""
_BOUNDS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="),
           "less_than": ("lt", "<"), "less_than_equal": ("le", "<=")}


def describe_validation_error(exc: ValidationError, data: Any,
                              lines: Mapping[Location, int] | None = None) -> tuple[Location, str]:
    """Return the location in `data` of the first problem pydantic found and a one-line message.

    With `lines`, the first problem is the first by line. The message counts the
    others ("(and 2 more errors)"). pydantic's own location parts (union branch
    names, '[key]') are dropped; of the branches of a union, only those the value
    got into are reported.
    """
    problems = []
    for group in _union_groups(exc.errors(), data):
        errors = [e for e in group if not e["type"].endswith("_type")] or group
        if len(errors) > 1 and all(e["type"].endswith("_type") for e in errors):
            kinds = dict.fromkeys(_EXPECTED.get(e["type"][:-5], e["type"]) for e in errors)
            problems.append((_real_parts(errors[0], data),
                             f"expected {' or '.join(kinds)}, got {_show(errors[0]['input'])}"))
            continue
        problems.extend((_real_parts(e, data), _message(e, data)) for e in errors)
    if lines:
        problems.sort(key=lambda problem: _line_of(problem[0], lines))
    at, message = problems[0]
    if len(problems) > 1:
        more = len(problems) - 1
        message += f" (and {more} more error{'s' if more > 1 else ''})"
    return at, message


def _union_groups(errors: list[dict], data: Any) -> list[list[dict]]:
    """Errors grouped so that the alternatives of one union value share a group."""
    groups: dict[Any, list[dict]] = defaultdict(list)
    for index, error in enumerate(errors):
        loc, (_, branch) = error["loc"], _split_loc(error, data)
        key = ("union", loc[:branch]) if branch is not None and loc[branch] != "[key]" else index
        groups[key].append(error)
    return list(groups.values())


def _real_parts(error: dict, data: Any) -> Location:
    """The parts of a pydantic `loc` that are keys or indices in `data`, followed by the
    `location` of the validator's exception when it names one (a check on the whole
    scenario that belongs to one section, such as the address ranges of `cluster`)."""
    within = getattr((error.get("ctx") or {}).get("error"), "location", ())
    return _split_loc(error, data)[0] + tuple(within)


def _split_loc(error: dict, data: Any) -> tuple[Location, int | None]:
    """The parts of a pydantic `loc` that are keys or indices in `data`, and the index in
    `loc` of the first part that is not (pydantic's own: a union branch, '[key]')."""
    loc, real, first_internal, value = error["loc"], [], None, data
    for i, part in enumerate(loc):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        elif not (error["type"] == "missing" and i == len(loc) - 1):
            first_internal = i if first_internal is None else first_internal
            continue
        real.append(part)
    return tuple(real), first_internal


def _message(error: dict, data: Any) -> str:
    kind, ctx, got = error["type"], error.get("ctx") or {}, _show(error["input"])
    at = _real_parts(error, data)
    if kind == "extra_forbidden":
        known = known_keys(field_type(at[:-1]))
        return f"unknown field {at[-1]!r} (known: {', '.join(known or [])})"
    if kind == "missing":
        if isinstance(at[-1], int):
            return "item missing"
        return f"required field {at[-1]!r} is missing"
    if kind in ("value_error", "assertion_error"):
        return str(ctx["error"])
    if kind in _BOUNDS:
        name, symbol = _BOUNDS[kind]
        what = "an integer" if int in _options(field_type(at)) else "a value"
        return f"expected {what} {symbol} {_number(ctx[name])}, got {got}"
    if kind in _TEMPLATES:
        return _TEMPLATES[kind].format(**ctx, got=got)
    family = kind.rsplit("_", 1)[0]
    if family in _EXPECTED:
        return f"expected {_EXPECTED[family]}, got {got}"
    return f"{error['msg']}, got {got}"


def _line_of(at: Location, lines: Mapping[Location, int]) -> int:
    """The line of `at`, or of its nearest written ancestor."""
    while at not in lines:
        at = at[:-1]
    return lines[at]


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
