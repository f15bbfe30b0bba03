"""Hostile input never crashes, never eats the machine: generated and mutated scenarios,
`--set` values, profiles and kubectl JSON either load or give one error line with exit 2,
each within a time and memory bound.

Every example goes through the command line (`netmodel.cli.main`, in process) as a user's
input would. The number of examples is the hypothesis profile's: `ci` (the default, about
a minute in all) or `--hypothesis-profile=long` for a long local run (tests/conftest.py).
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netmodel.cli import main
from netmodel.scenario.loader import field_type, known_keys

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "data" / "kubectl" / "reference"
AKS = REPO / "tests" / "data" / "kubectl" / "aks-cluster-info"
DEFAULT_PROFILE = REPO / "netmodel" / "costs" / "profiles" / "default.yaml"
SECONDS = 20.0
"""Most wall time one example may take (2 shared cores in CI)."""
MEGABYTES = 400
"""Most memory one example may allocate at its peak (Python and numpy, tracemalloc)."""

BASE = {"name": "fuzz", "cluster": {"nodes": 4}, "services": {"count": 5},
        "workload": {"rate": "500/s", "mix": {"pod-clusterip": 1}}, "run": {"requests": 100}}
"""A small valid scenario to mutate."""

NESTED = st.integers(min_value=1, max_value=3000).map(lambda n: "[" * n + "]" * n)
BOMB = st.integers(min_value=2, max_value=9).map(
    lambda n: "[" + ", ".join(["&a0 [x, x, x, x, x, x, x, x, x, x]"]
                              + [f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, n)])
    + "]")
NUMBERS = st.one_of(
    st.floats(), st.integers(min_value=-10**30, max_value=10**30),
    st.sampled_from([0, -1, 1e-300, 5e-324, 1e308, 1e400, 2**63, 2**64, -2**63]),
    st.sampled_from(["1e400us", ".inf", "-.inf", ".nan", "1e300s", "1e-300/s", "1e-300bps",
                     "NaN", "inf", "1e999KiB", "10**400", "0x7fffffffffffffff", "1_000_000_000_000"]))
SCALARS = st.one_of(NUMBERS, st.booleans(), st.none(), st.text(max_size=30),
                    st.sampled_from(["", "iptables", "vxlan", "10.0.0.0/8", "::1", "100ms",
                                     "***HIDDEN***", "None", "LoadBalancer"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)


def _paths(annotation, prefix=(), depth=0) -> list[tuple]:
    """Every field path of the schema (sections and their fields), for mutations."""
    keys = known_keys(annotation)
    if not keys or depth > 3:
        return []
    found = []
    for key in keys:
        at = prefix + (key,)
        found.append(at)
        found += _paths(field_type(at), at, depth + 1)
    return found


PATHS = _paths(field_type(()))


def bounded(call):
    """Run `call()` and return its result, failing when it takes longer than SECONDS or
    allocates more than MEGABYTES at its peak."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = call()
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    assert elapsed < SECONDS, f"took {elapsed:.1f} s"
    assert peak < MEGABYTES, f"allocated {peak:.0f} MiB at its peak"
    return result


def cli(capsys, *argv) -> tuple[int, str, str]:
    """`netmodel ARGV` in process: exit status, stdout, stderr; any exception but the
    user's error escapes and fails the test (it would be a traceback)."""
    code = bounded(lambda: main([str(a) for a in argv]))
    out, err = capsys.readouterr()
    return code, out, err


def assert_loads_or_one_line(code: int, err: str) -> None:
    if code == 0:
        return
    assert code == 2, err
    assert err.startswith("netmodel: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


def _set(doc: dict, path: tuple, value) -> None:
    node = doc
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                deadline=None)


@FUZZ
@given(mutations=st.lists(st.tuples(st.sampled_from(PATHS), VALUES), min_size=1, max_size=4))
def test_mutated_scenarios_load_or_give_one_line(tmp_path, capsys, mutations):
    doc = copy.deepcopy(BASE)
    for path, value in mutations:
        _set(doc, path, value)
    file = tmp_path / "s.yaml"
    file.write_text(yaml.safe_dump(doc, allow_unicode=True))
    code, _, err = cli(capsys, "check", file)
    assert_loads_or_one_line(code, err)


@FUZZ
@given(text=st.one_of(
    st.binary(max_size=400).map(lambda b: b.decode("latin-1")),
    st.text(max_size=400),
    NESTED.map(lambda n: f"name: x\ndescription: {n}\n"),
    BOMB.map(lambda b: f"name: x\ndescription: {b}\n"),
    st.sampled_from(["", "---\n---\n", "name: x\nname: y\n", "name: &a [*a]\n", "- 1\n",
                     "name: !!python/object/apply:os.system [ls]\n", "name: x\n<<: *nope\n",
                     "name: x\ncluster: {<<: [1, 2]}\n", "? [a]\n: 1\n", "\ufeffname: x\n",
                     "name: x\nrun: {requests: 1e12}\n", "name: x\nsweep: {axes: {run.seed: "
                     "{linear: [0, 1e300], step: 5e-324}}}\n"])))
def test_any_text_as_a_scenario_loads_or_gives_one_line(tmp_path, capsys, text):
    file = tmp_path / "s.yaml"
    file.write_bytes(text.encode("utf-8", "surrogatepass"))
    code, _, err = cli(capsys, "check", file)
    assert_loads_or_one_line(code, err)


@FUZZ
@given(path=st.sampled_from(PATHS).map(".".join), value=st.one_of(
    VALUES.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip()), st.text(max_size=40),
    NESTED, BOMB))
def test_set_values_load_or_give_one_line(tmp_path, capsys, path, value):
    file = tmp_path / "s.yaml"
    file.write_text(yaml.safe_dump(BASE))
    code, _, err = cli(capsys, "check", file, "--set", f"{path}={value}")
    assert_loads_or_one_line(code, err)


@FUZZ
@given(changes=st.lists(st.tuples(
    st.sampled_from(["value", "per", "source", None]), VALUES), min_size=1, max_size=3),
    parameter=st.sampled_from(["veth", "nic_rx", "gso_max_size", "apiserver_egress"]),
    extra=st.one_of(st.none(), NESTED, BOMB))
def test_mutated_profiles_load_or_give_one_line(tmp_path, capsys, changes, parameter, extra):
    profile = yaml.safe_load(DEFAULT_PROFILE.read_text())
    for key, value in changes:
        if key is None:
            profile["parameters"][parameter] = value
        elif isinstance(profile["parameters"].get(parameter), dict):
            profile["parameters"][parameter][key] = value
    text = yaml.safe_dump(profile, allow_unicode=True)
    if extra is not None:
        text += f"extra: {extra}\n"
    (tmp_path / "p.yaml").write_text(text)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({**BASE, "profile": "p.yaml"}))
    code, _, err = cli(capsys, "check", tmp_path / "s.yaml")
    assert_loads_or_one_line(code, err)


def _json_paths(value, prefix=()) -> list[tuple]:
    if isinstance(value, dict):
        return [prefix] + [p for k, v in value.items() for p in _json_paths(v, prefix + (k,))]
    if isinstance(value, list):
        return [prefix] + [p for i, v in enumerate(value[:3]) for p in _json_paths(v, prefix + (i,))]
    return [prefix]


LISTINGS = {name: json.loads((REFERENCE / name).read_text())
            for name in ("nodes.json", "services.json", "endpointslices.json")}
JSON_PATHS = [(name, path) for name, data in LISTINGS.items() for path in _json_paths(data)
              if path]
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
              st.sampled_from(["***HIDDEN***", "10.0.0.1", "fd00::1", "10.0.0.0/8", "LoadBalancer",
                               "Local", "None", 167772161])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=10), inner, max_size=3)),
    max_leaves=8)


def _replace(data, path, value):
    if not path:
        return value
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@FUZZ
@given(mutations=st.lists(st.tuples(st.sampled_from(JSON_PATHS), JSON_VALUES), min_size=1,
                          max_size=3),
       deep=st.one_of(st.none(), st.integers(min_value=60, max_value=5000)),
       duplicate=st.booleans())
def test_mutated_kubectl_json_imports_or_gives_one_line(tmp_path, capsys, mutations, deep,
                                                         duplicate):
    tmp_path = Path(tempfile.mkdtemp(dir=tmp_path))  # one per example
    folder = tmp_path / "cluster"
    folder.mkdir()
    listings = copy.deepcopy(LISTINGS)
    for (name, path), value in mutations:
        try:
            listings[name] = _replace(listings[name], path, value)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation changed the shape: this one no longer applies
    if duplicate and isinstance(listings["services.json"], dict) and \
            isinstance(listings["services.json"].get("items"), list):
        listings["services.json"]["items"] += listings["services.json"]["items"][:1]
    for name, data in listings.items():
        text = json.dumps(data)
        if deep is not None and name == "services.json":
            text = text[:-1] + ', "x": ' + "[" * deep + "]" * deep + "}" if text.endswith("}") \
                else text
        (folder / name).write_text(text)
    out = tmp_path / "out.yaml"
    code, _, err = cli(capsys, "import", "kubectl", folder, "-o", out, "--force")
    if code == 0:  # what it imports it can load
        err = "\n".join(line for line in err.splitlines() if not line.startswith("warning: "))
        code, _, err = cli(capsys, "check", out)
        assert code == 0, err
        return
    assert_loads_or_one_line(code, err)


@FUZZ
@given(name=st.sampled_from(["nodes.json", "services.json", "endpointslices.json"]),
       content=st.one_of(st.binary(max_size=300), st.just(b""), st.just(b"null"),
                         st.just(b'{"items": null}'), st.just(b'{"kind": "List", "items": 5}'),
                         st.just(b"\xff\xfe{}"), st.just(b"\x00" * 50),
                         NESTED.map(str.encode)))
def test_any_bytes_as_a_listing_import_or_give_one_line(tmp_path, capsys, name, content):
    folder = Path(shutil.copytree(REFERENCE, Path(tempfile.mkdtemp(dir=tmp_path)) / "cluster"))
    (folder / name).write_bytes(content)
    code, _, err = cli(capsys, "import", "kubectl", folder, "-o", tmp_path / "o.yaml", "--force")
    if code == 0:
        return
    assert_loads_or_one_line(code, err)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 1e308])
def test_non_finite_values_from_python_are_refused_with_the_field(value):
    import netmodel
    from netmodel.errors import NetmodelError

    loaded = netmodel.load("t.yaml", text=yaml.safe_dump(BASE))
    for path in ("workload.request_size", "workload.rate", "cluster.conntrack_time_wait",
                 "services.zipf_exponent", "workload.mix.pod-clusterip", "costs.veth"):
        with pytest.raises(NetmodelError) as err:
            netmodel.override(loaded, {path: value})
        assert path in str(err.value)
