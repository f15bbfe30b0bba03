"""Limits on what input may ask of the machine (netmodel/limits.py), checked before the work
they guard, and numbers that must be finite and physical: the reproductions of issue 13."""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path

import pytest
import yaml

from netmodel.cli import main
from netmodel.errors import NetmodelError
from netmodel.limits import LIMITS, NESTING, WORK
from netmodel.reading import json_depth, read_json, read_yaml

REPO = Path(__file__).resolve().parents[1]
TINY = "name: tiny\nrun: {requests: 200, seed: 1}\n"


def cli(capsys, tmp_path, *args, text=TINY) -> str:
    """The one stderr line of `netmodel check` on `text` with `args`; exit 2 asserted."""
    (tmp_path / "s.yaml").write_text(text)
    code = main(["check", str(tmp_path / "s.yaml"), *args])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    return err.removeprefix("netmodel: error: ").rstrip("\n").replace(str(tmp_path) + "/", "")


@pytest.mark.parametrize("setting, message", [
    ("workload.request_size=.inf", "workload.request_size: expected a finite size, got inf"),
    ("workload.request_size=1e400", "workload.request_size: expected a finite size, got '1e400'"),
    ("workload.response_size=.inf", "workload.response_size: expected a finite size, got inf"),
    ("costs.veth=1e400us", "costs.veth: expected a finite time, got '1e400us'"),
    ("cluster.conntrack_time_wait=.inf", "cluster.conntrack_time_wait: expected a finite time, got inf"),
    ("control_plane.churn_rate=.inf", "control_plane.churn_rate: expected a finite rate, got inf"),
    ("workload.rate=1e-300", "run.requests: run.requests / workload.rate = 2e+302 s of arrivals"),
    ("run.requests=1000000000000", "run.requests: run.requests / workload.rate = 1e+09 s"),
    ("workload.mix={pod-clusterip: 1e308, pod-pod-cross-node: 1.0e+308}",
     "workload.mix.pod-clusterip: expected a value <= 1000000000, got '1e308'"),
    ("cluster.nic_speed=1e-300", "cluster.nic_speed: expected a bitrate of 1Kbps to 1000Tbps"),
    ("kube_proxy.sync_period=1e-9", "control_plane: (EndpointSlice updates + periodic syncs) x "
                                    "sampled kube-proxies is 1,410,000,000,720, more than the limit"),
])
def test_issue_reproductions_are_one_line(capsys, tmp_path, setting, message):
    assert message in cli(capsys, tmp_path, "--set", setting, "--set", "control_plane.enabled=true")


def test_duration_mode_limits(capsys, tmp_path):
    duration = ["--set", "run.requests=null", "--set", "run.duration=1"]
    assert "workload.rate: expected a finite rate, got inf" in \
        cli(capsys, tmp_path, *duration, "--set", "workload.rate=.inf")
    assert cli(capsys, tmp_path, *duration, "--set", "workload.rate=1e8") == (
        "s.yaml: run.duration: workload.rate x run.duration is 100,000,000, more than the limit "
        "of 5,000,000 (raise it with the environment variable NETMODEL_MAX_REQUESTS) (after "
        "--set run.requests, run.duration, workload.rate)")
    assert "run.duration: expected a time of at most 24h, got '1e5'" in \
        cli(capsys, tmp_path, "--set", "run.requests=null", "--set", "run.duration=1e5")


def test_total_work_is_summed_over_sweep_points_before_any_runs(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(WORK.env, "1000")
    text = TINY + "sweep: {axes: {services.count: [1, 2, 3, 4, 5, 6]}}\n"
    assert cli(capsys, tmp_path, text=text) == (
        "s.yaml:3: sweep: the requests of points 0..5 (replications x requests) is 1,200, more "
        "than the limit of 1,000 (raise it with the environment variable NETMODEL_MAX_WORK)")
    monkeypatch.setenv(WORK.env, "1e9")
    (tmp_path / "s.yaml").write_text(text)
    assert main(["check", str(tmp_path / "s.yaml")]) == 0


def test_sweep_points_are_counted_before_they_are_built(capsys, tmp_path):
    text = TINY + ("sweep:\n  axes:\n    workload.rate: {linear: [1, 10000], num: 10000}\n"
                   "    workload.timeout: {linear: [1, 1000], num: 1000}\n")
    start = time.perf_counter()
    assert cli(capsys, tmp_path, text=text) == (
        "s.yaml:3: sweep: the number of points is 10,000,000, more than the limit of 10,000 "
        "(raise it with the environment variable NETMODEL_MAX_SWEEP_POINTS)")
    assert time.perf_counter() - start < 10


def test_a_limit_is_raised_and_lowered_by_its_environment_variable(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NETMODEL_MAX_INPUT_BYTES", "20")
    assert cli(capsys, tmp_path) == ("s.yaml: the file's size in bytes is 41, more than the limit "
                                     "of 20 (raise it with the environment variable "
                                     "NETMODEL_MAX_INPUT_BYTES)")
    monkeypatch.setenv("NETMODEL_MAX_INPUT_BYTES", "lots")
    assert cli(capsys, tmp_path) == ("NETMODEL_MAX_INPUT_BYTES: expected a whole number >= 1 "
                                     "(such as 1e9), got 'lots'")


def test_docs_state_every_limit_with_its_default_and_variable():
    text = (REPO / "docs" / "scenarios.md").read_text()
    for limit in LIMITS:
        row = re.search(rf"^\| `{limit.env}` \| ([\d,]+)[^|]*\| (.*) \|$", text, re.M)
        assert row, limit.env
        assert row[1] == f"{limit.default:,}" and row[2] == limit.what


def test_nesting_is_refused_while_reading_not_after(capsys, tmp_path):
    deep = "[" * 200 + "]" * 200
    assert cli(capsys, tmp_path, text=f"name: x\ndescription: {deep}\n").startswith(
        "s.yaml:2: description[0][0][0][0][0][0][0]...: nested deeper than 64 levels")
    assert cli(capsys, tmp_path, "--set", f"description={deep}").startswith(
        "--set description: nested deeper than 64 levels")


def test_recursive_alias_is_not_plain_data(capsys, tmp_path):
    assert cli(capsys, tmp_path, text="name: c\nservices:\n  count: &l [10, *l]\n") == (
        "s.yaml:3: services.count: alias *l refers to a list or mapping that contains it: a "
        "recursive structure is not plain data")


def test_values_are_counted_with_aliases_expanded_as_they_are_read(monkeypatch):
    monkeypatch.setenv("NETMODEL_MAX_VALUES", "1000")
    start = time.perf_counter()
    with pytest.raises(NetmodelError) as err:
        read_yaml("a: [" + ", ".join(["1"] * 400_000) + "]\n", "big.yaml")
    assert time.perf_counter() - start < 5
    assert str(err.value).startswith("big.yaml:1: a: the document has more than 1,000 values")


def test_a_profile_alias_bomb_and_a_non_text_source_are_refused(capsys, tmp_path):
    profile = yaml.safe_load((REPO / "netmodel/costs/profiles/default.yaml").read_text())
    profile["parameters"]["veth"]["source"] = ["not", "text"]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(profile))
    assert cli(capsys, tmp_path, text=TINY + "profile: p.yaml\n").endswith(
        "parameters.veth.source: expected text, got ['not', 'text']")
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    (tmp_path / "p.yaml").write_text("\n".join(levels) + "\n" + yaml.safe_dump(profile))
    assert "the profile has more than 5,000,000 values" in cli(capsys, tmp_path,
                                                              text=TINY + "profile: p.yaml\n")


def _reference_depth(text: str) -> int:
    depth = deepest = 0
    inside = escaped = False
    for ch in text:
        if escaped:
            escaped = False
            if ch in '"\\':
                continue
        if ch == "\\":
            escaped = True
        elif inside:
            inside = ch != '"'
        elif ch == '"':
            inside = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def test_json_depth_scan_agrees_with_a_character_walk():
    rng = random.Random(13)
    for _ in range(2000):
        text = "".join(rng.choice('[]{}"\\a,:') for _ in range(rng.randint(0, 80)))
        for chunk in (1, 3, 7, 64):
            assert json_depth(text.encode(), chunk)[0] == _reference_depth(text), text


def test_deep_json_is_refused_before_it_is_parsed():
    deep = ('{"items": [' + "[" * 100_000 + "]" * 100_000 + "]}").encode()
    with pytest.raises(NetmodelError) as err:
        read_json(deep, "services.json")
    assert str(err.value) == (f"services.json:1: nested 100,002 levels deep, more than the "
                              f"limit of {NESTING()} (raise it with the environment variable "
                              "NETMODEL_MAX_NESTING)")
    assert read_json(json.dumps({"a": ["]]]]", "[[[{"]}).encode(), "x") == {"a": ["]]]]", "[[[{"]}
