"""Sweeps stopped midway by Ctrl-C, SIGTERM and kill -9, on local processes and on Dask,
with one and two workers: no process outlives the sweep, the folder is not left locked,
and running the same command again finishes with the bytes of an uninterrupted run.

The sweep runs `python -m tests.sweeping` (the CLI with a slow fake runner) in its own
session, as a terminal's foreground job; the resumed run is the same command in this
process, with the fast fake runner.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import netmodel.runner.point
from netmodel.cli import main
from netmodel.runner.folder import LOCK
from netmodel.runner.sweep import run_sweep
from tests.test_sweep_runner import N_POINTS, fake_runner, point_files, temp_files, write_grid

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="signals and process groups: Linux")

REPO = Path(__file__).resolve().parents[1]
STOPS = {"ctrl-c": signal.SIGINT, "sigterm": signal.SIGTERM, "kill-9": signal.SIGKILL}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted sweep of the grid: its folder."""
    tmp = tmp_path_factory.mktemp("reference")
    run_sweep(write_grid(tmp), tmp / "out", quiet=True, runner=fake_runner)
    return tmp / "out"


def start_sweep(grid: Path, out: Path, *options: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "tests.sweeping", str(grid), str(out), *options],
                            cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_for_a_point(proc: subprocess.Popen, out: Path) -> None:
    deadline = time.monotonic() + 60
    while not (out / "points").is_dir() or not point_files(out):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no point finished: {proc.communicate()[1]}")
        time.sleep(0.02)


def stop_sweep(proc: subprocess.Popen, how: str) -> tuple[str, list[psutil.Process]]:
    """Stop the sweep `how`; return its stderr and the processes it had started."""
    family = psutil.Process(proc.pid).children(recursive=True)
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: the foreground group
    else:
        os.kill(proc.pid, STOPS[how])       # what kill, CI or the OOM killer do: the sweep
    _, err = proc.communicate(timeout=60)
    return err, family


def same_results(out: Path, reference: Path) -> None:
    """Every file of the reference folder, byte for byte (meta.json: but the executor and
    the scenario file's path)."""
    names = sorted(str(p.relative_to(reference)) for p in reference.rglob("*") if p.is_file())
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == names
    for name in names:
        ours, theirs = (out / name).read_bytes(), (reference / name).read_bytes()
        if name == "meta.json":
            ours, theirs = ({k: v for k, v in json.loads(d).items()
                             if k not in ("executor", "file")}
                            for d in (ours, theirs))
        assert ours == theirs, name


@pytest.mark.parametrize("executor", ["local", "dask"])
@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("how", list(STOPS))
def test_a_stopped_sweep_resumes_to_the_bytes_of_an_uninterrupted_one(
        how, jobs, executor, reference, tmp_path, monkeypatch, capsys):
    grid, out = tmp_path / "grid.yaml", tmp_path / "out"
    write_grid(tmp_path)
    options = ["--jobs", jobs, "--executor", executor, "--quiet"]
    proc = start_sweep(grid, out, *options)
    wait_for_a_point(proc, out)
    err, family = stop_sweep(proc, how)

    _, alive = psutil.wait_procs(family, timeout=15)
    assert alive == [], f"outlived the sweep: {[p.cmdline() for p in alive]}"
    done = len(point_files(out))
    assert 0 < done < N_POINTS
    if how == "kill-9":
        assert proc.returncode == -signal.SIGKILL
    else:
        name = "interrupted" if how == "ctrl-c" else "stopped by SIGTERM"
        assert proc.returncode == 128 + STOPS[how], err
        assert err == (f"{name}: {done} of {N_POINTS} points done; run the same command "
                       "again to resume\n")
        assert temp_files(out) == [] and (out / LOCK).read_bytes() == b""

    monkeypatch.setattr(netmodel.runner.point, "run_point", fake_runner)
    assert main(["sweep", str(grid), "--out", str(out), *options]) == 0
    err = capsys.readouterr().err
    assert ("ended without finishing; taking over" in err) == (how == "kill-9"), err
    assert temp_files(out) == [] and (out / LOCK).read_bytes() == b""
    same_results(out, reference)
    assert json.loads((out / "meta.json").read_text())["executor"] == executor
