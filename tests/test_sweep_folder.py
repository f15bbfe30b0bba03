"""A sweep's folder: netmodel changes only its own files, one sweep writes it at a time (a
dead one's lock is taken over), damaged point files are named and run again, a folder it
cannot write is one line and exit 2 with nothing lost, and a sweep with nothing to do says
so and rewrites nothing."""

import errno
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import netmodel.runner.folder
import netmodel.runner.point
from netmodel.cli import main
from netmodel.errors import NetmodelError
from netmodel.runner.folder import LOCK
from netmodel.runner.lock import exclusive
from netmodel.runner.sweep import run_sweep
from tests.test_sweep_runner import (
    N_POINTS,
    Counting,
    dead_pid,
    fake_runner,
    point_files,
    temp_files,
    write_grid,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def grid(tmp_path):
    write_grid(tmp_path)
    return tmp_path / "grid.yaml"


@pytest.fixture
def fake(monkeypatch):
    runner = Counting()
    monkeypatch.setattr(netmodel.runner.point, "run_point", runner)
    return runner


def sweep(grid, out, *options):
    return main(["sweep", str(grid), "--out", str(out), "--quiet", *options])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("netmodel: error: --out: "), err
    return err


# --- only netmodel's files -------------------------------------------------------------------

def someone_elses_folder(out: Path) -> None:
    """What a review found netmodel would delete or overwrite there."""
    (out / "plots").mkdir(parents=True)
    (out / "points").mkdir()
    for name in (".draft.tmp", "meta.json", "summary.csv", "plots/figure.png",
                 "points/00000.parquet"):
        (out / name).write_text(f"their {name}")


def test_a_folder_that_is_not_netmodels_is_refused_and_left_alone(grid, fake, tmp_path, capsys):
    out = tmp_path / "theirs"
    someone_elses_folder(out)
    before = snapshot(out)
    for options in ((), ("--force",)):
        assert sweep(grid, out, *options) == 2
        assert "is not empty and is not a netmodel results folder" in one_error_line(capsys)
        assert snapshot(out) == before and not (out / LOCK).exists()
    assert fake.calls == 0


@pytest.mark.parametrize("manifest", [
    {"name": "my project", "files": ["plots", "points"]},            # someone else's
    {"digest": "x", "points": 6},                                    # not a digest
    {"format": "netmodel sweep results", "version": 1, "digest": "a" * 64, "points": 6,
     "plots": ["../../etc/passwd"]},                                 # not a plot of ours
    {"format": "netmodel sweep results", "version": 2, "digest": "a" * 64, "points": 6,
     "plots": []},                                                   # a version we don't know
])
def test_a_manifest_netmodel_did_not_write_is_refused_even_with_force(grid, fake, tmp_path,
                                                                      capsys, manifest):
    out = tmp_path / "theirs"
    someone_elses_folder(out)
    (out / "manifest.json").write_text(json.dumps(manifest))
    before = snapshot(out)
    assert sweep(grid, out, "--force") == 2
    assert "manifest.json was not written by netmodel" in one_error_line(capsys)
    assert snapshot(out) == before and not (out / LOCK).exists()


def test_an_empty_folder_or_one_with_only_netmodels_lock_is_used(grid, fake, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / LOCK).write_text("")
    assert sweep(grid, tmp_path / "empty") == 0
    assert sweep(grid, tmp_path / "locked") == 0


def test_a_results_folder_of_netmodel_0_4_is_recognised(grid, fake, tmp_path, capsys):
    out = tmp_path / "old"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"digest": "b" * 64, "points": 6}))
    assert sweep(grid, out) == 2
    assert "holds results of a different scenario" in one_error_line(capsys)
    assert sweep(grid, out, "--force") == 0


def test_force_keeps_files_netmodel_did_not_write(grid, fake, tmp_path):
    out = tmp_path / "out"
    assert sweep(grid, out) == 0
    theirs = {"notes.md": b"mine", "plots/annotated.png": b"mine", "points/keep.txt": b"mine"}
    for name, data in theirs.items():
        (out / name).write_bytes(data)
    grid.write_text(grid.read_text().replace("seed: 7", "seed: 8"))
    assert sweep(grid, out, "--force") == 0
    assert all((out / name).read_bytes() == data for name, data in theirs.items())
    assert json.loads((out / "meta.json").read_text())["seed"] == 8


# --- one sweep at a time; a dead sweep's lock -----------------------------------------------

HOLD = """\
import sys
from pathlib import Path
from netmodel.runner.lock import exclusive
with exclusive(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def hold_lock(out: Path) -> subprocess.Popen:
    """Another process that holds OUT's lock (as a sweep does) until its stdin closes."""
    out.mkdir(exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], cwd=REPO,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    return holder


def test_a_second_sweep_into_a_busy_folder_is_refused(grid, fake, tmp_path, capsys):
    out = tmp_path / "out"
    holder = hold_lock(out)
    leftover = out / f".netmodel-{holder.pid}-summary.csv.tmp"
    leftover.write_bytes(b"being written by the first sweep")
    try:
        assert sweep(grid, out) == 2
        err = one_error_line(capsys)
        assert f"another netmodel sweep (pid {holder.pid}, started " in err
        assert f"is writing to {out}; wait for it to end or use another --out" in err
        assert leftover.exists() and not (out / "manifest.json").exists()
    finally:
        holder.communicate("")
    assert (out / LOCK).read_bytes() == b""  # released cleanly: nothing to take over
    assert sweep(grid, out) == 0 and capsys.readouterr().err == ""
    assert not leftover.exists() and fake.calls == N_POINTS


def test_a_sweep_in_this_process_cannot_enter_a_folder_it_holds(tmp_path):
    loaded = write_grid(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with exclusive(out):
        with pytest.raises(NetmodelError, match=f"pid {os.getpid()}.* is writing to"):
            run_sweep(loaded, out, quiet=True, runner=fake_runner)
    run_sweep(loaded, out, quiet=True, runner=fake_runner)


def test_the_lock_of_a_killed_sweep_is_taken_over_with_a_message(grid, fake, tmp_path, capsys):
    out = tmp_path / "out"
    holder = hold_lock(out)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert json.loads((out / LOCK).read_text())["pid"] == holder.pid
    assert sweep(grid, out) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"netmodel: the sweep that was writing to {out} (pid {holder.pid}, ")
    assert err.endswith("ended without finishing; taking over\n")
    assert (out / LOCK).read_bytes() == b""


def test_a_lock_held_by_something_else_than_its_recorded_sweep_says_what_to_do(grid, fake,
                                                                             tmp_path, capsys):
    """The kernel lock is taken, but the recorded holder is gone (a network filesystem that
    kept a crashed client's lock): refuse, and say which file to delete."""
    out = tmp_path / "out"
    holder = hold_lock(out)
    try:
        record = json.loads((out / LOCK).read_text())
        (out / LOCK).write_text(json.dumps({**record, "pid": dead_pid()}))
        assert sweep(grid, out) == 2
        err = one_error_line(capsys)
        assert "is locked, but not by a running netmodel sweep on this machine" in err
        assert f"if no sweep writes there, delete {out / LOCK}" in err
    finally:
        holder.communicate("")


# --- damaged point files ----------------------------------------------------------------------

def flip_a_byte_of_a_value(path: Path, value: float) -> None:
    """Flip one bit inside `value`'s 8 bytes in the file's column data; the footer stays."""
    data = bytearray(path.read_bytes())
    at = data.find(struct.pack("<d", value))
    assert 0 < at < len(data) - 1000, "the value is not stored as plain bytes"
    data[at + 2] ^= 0x04
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_a_points_values_is_named_and_run_again(grid, fake, tmp_path, capsys):
    out = tmp_path / "out"
    assert sweep(grid, out) == 0
    before = snapshot(out)
    point = out / "points" / point_files(out)[2]
    import pandas as pd
    flip_a_byte_of_a_value(point, float(pd.read_parquet(point)["p50_s"].iloc[0]))

    assert sweep(grid, out) == 0
    assert capsys.readouterr().err == (f"netmodel: {point}: its values do not match its "
                                       "checksum; running point 2 again\n")
    assert fake.calls == N_POINTS + 1
    assert snapshot(out) == before


@pytest.mark.parametrize("damage", ["torn page", "truncated", "empty", "not parquet"])
def test_an_unreadable_point_file_is_named_and_run_again(grid, fake, tmp_path, capsys, damage):
    out = tmp_path / "out"
    assert sweep(grid, out) == 0
    before = snapshot(out)
    point = out / "points" / point_files(out)[4]
    data = point.read_bytes()
    point.write_bytes({"torn page": data[:200] + bytes(600) + data[800:],
                       "truncated": data[:len(data) // 2], "empty": b"",
                       "not parquet": b"PAR1" + b"\xff" * 100 + b"PAR1"}[damage])

    assert main(["sweep", str(grid), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"netmodel: {point}: cannot be read (" in err and "; running point 4 again\n" in err
    assert "Traceback" not in err and "resuming: 5 of 6 points already done" in err
    assert snapshot(out) == before


# --- nothing to do --------------------------------------------------------------------------

def mtimes(out: Path) -> dict[Path, int]:
    """When each result file was last written (not the lock: it records each sweep)."""
    return {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != LOCK}


def test_a_sweep_with_nothing_to_do_says_so_and_rewrites_nothing(grid, fake, tmp_path, capsys):
    out = tmp_path / "out"
    assert sweep(grid, out) == 0
    capsys.readouterr()
    stamps = mtimes(out)
    assert main(["sweep", str(grid), "--out", str(out)]) == 0
    said = capsys.readouterr()
    assert said.err == f"nothing to do: all {N_POINTS} points done\n"
    assert said.out == f"up to date {out}/: summary.parquet, summary.csv, meta.json, 6 plots\n"
    assert mtimes(out) == stamps
    assert fake.calls == N_POINTS

    plot = next((out / "plots").iterdir())
    expected = plot.read_bytes()
    plot.unlink()
    capsys.readouterr()
    assert main(["sweep", str(grid), "--out", str(out)]) == 0
    assert plot.read_bytes() == expected  # a missing plot is drawn again, and said so
    assert capsys.readouterr().out == f"wrote {out}/: summary.parquet, summary.csv, meta.json, 6 plots\n"


def test_meta_json_records_the_engine_and_executor(grid, fake, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    import netmodel
    out = tmp_path / "out"
    assert sweep(grid, out, "--jobs", "2") == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["engine"]["asked"] == "auto" and meta["executor"] == "local"
    with ThreadPoolExecutor(2) as pool:
        netmodel.sweep(netmodel.load(grid), tmp_path / "threads", executor=pool)
    meta = json.loads((tmp_path / "threads" / "meta.json").read_text())
    assert meta["executor"] == "concurrent.futures.thread.ThreadPoolExecutor"


# --- a folder netmodel cannot write -----------------------------------------------------------

def test_out_on_a_file_or_below_one_is_one_line(grid, fake, tmp_path, capsys):
    a_file = tmp_path / "results.txt"
    a_file.write_text("mine")
    assert sweep(grid, a_file) == 2
    assert one_error_line(capsys) == f"netmodel: error: --out: {a_file} is a file, not a folder\n"
    assert sweep(grid, a_file / "out") == 2
    assert one_error_line(capsys) == (f"netmodel: error: --out: cannot write {a_file / 'out'}: "
                                      "Not a directory (a part of the path is a file)\n")
    assert a_file.read_text() == "mine"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_disk_that_refuses_a_write_midway_is_one_line_and_loses_nothing(
        grid, fake, tmp_path, capsys, monkeypatch, code):
    """The fourth file written fails as a full or read-only disk would fail it."""
    out, reference = tmp_path / "out", tmp_path / "reference"
    assert sweep(grid, reference) == 0
    writes = []

    class Refusing:
        def __init__(self, path, mode):
            self.file = open(path, mode)
            writes.append(path)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            if len(writes) == 4:
                raise OSError(code, os.strerror(code))
            return self.file.write(data)

        def __getattr__(self, name):
            return getattr(self.file, name)

    monkeypatch.setattr(netmodel.runner.folder, "open", Refusing, raising=False)
    assert sweep(grid, out, "--jobs", "2") == 2
    err = one_error_line(capsys)
    assert f"cannot write {out / 'points'}" in err and os.strerror(code) in err
    assert temp_files(out) == [] and (out / LOCK).read_bytes() == b""
    assert len(point_files(out)) == 2  # manifest.json, two points, then the refusal
    monkeypatch.undo()
    monkeypatch.setattr(netmodel.runner.point, "run_point", fake_runner)
    assert sweep(grid, out) == 0
    assert snapshot(out) == snapshot(reference) | {"meta.json": (out / "meta.json").read_bytes()}


UNSHARE = shutil.which("unshare")
TMPFS = """\
set -e
mount -t tmpfs -o size={size} tmpfs "$MNT"
"$PY" -m tests.sweeping "$GRID" "$MNT/out" --quiet && status=0 || status=$?
echo "status=$status"
cp -a "$MNT/out" "$KEEP/first" 2>/dev/null || true
{then}
"""


def in_tmpfs(tmp_path: Path, grid: Path, size: str, then: str = "") -> subprocess.CompletedProcess:
    """Run a slow-runner sweep into a tmpfs of `size` in a mount namespace of its own."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "MNT": str(mnt), "PY": sys.executable,
           "GRID": str(grid), "KEEP": str(tmp_path), "NETMODEL_TEST_SLOW_S": "0"}
    return subprocess.run([UNSHARE, "--mount", "sh", "-c", TMPFS.format(size=size, then=then)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def tmpfs_works() -> bool:
    if UNSHARE is None or sys.platform != "linux":
        return False
    done = subprocess.run([UNSHARE, "--mount", "sh", "-c", "mount -t tmpfs none /mnt"],
                          capture_output=True)
    return done.returncode == 0


needs_tmpfs = pytest.mark.skipif(not tmpfs_works(),
                                 reason="needs unshare --mount and tmpfs (root on Linux)")


@needs_tmpfs
def test_a_really_full_disk_is_one_line_exit_2_and_a_bigger_one_finishes(grid, tmp_path):
    done = in_tmpfs(tmp_path, grid, "80k", then="""
mount -o remount,size=10m "$MNT"
"$PY" -m tests.sweeping "$GRID" "$MNT/out" --quiet
cp -a "$MNT/out" "$KEEP/second"
""")
    assert done.returncode == 0, done.stderr
    first_err, _, second_err = done.stderr.partition("\n")
    assert "status=2" in done.stdout
    assert first_err.startswith(f"netmodel: error: --out: cannot write {tmp_path / 'mnt' / 'out'}")
    assert first_err.endswith("No space left on device; free some space and run the same "
                              "command again (finished points are kept)")
    assert "Traceback" not in second_err
    first = tmp_path / "first"
    assert temp_files(first) == [] and (first / LOCK).read_bytes() == b""
    kept = point_files(first)
    assert 0 < len(kept) < N_POINTS
    reference = tmp_path / "reference"
    run_sweep(write_grid(tmp_path, name="ref.yaml"), reference, quiet=True, runner=fake_runner)
    for name in kept:  # the points finished before the disk was full are whole and kept
        assert (first / "points" / name).read_bytes() == (reference / "points" / name).read_bytes()
    second = tmp_path / "second"
    for name in ("summary.parquet", "summary.csv"):
        assert (second / name).read_bytes() == (reference / name).read_bytes()


@needs_tmpfs
def test_a_read_only_disk_is_one_line_exit_2(grid, tmp_path):
    done = in_tmpfs(tmp_path, grid, "10m", then="""
rm "$MNT"/out/points/00001.parquet
mount -o remount,ro "$MNT"
"$PY" -m tests.sweeping "$GRID" "$MNT/out" --quiet && echo "status=0" || echo "status=$?"
"$PY" -m tests.sweeping "$GRID" "$MNT/new" --quiet && echo "status=0" || echo "status=$?"
""")
    assert done.returncode == 0, done.stderr
    statuses = [line for line in done.stdout.splitlines() if line.startswith("status=")]
    assert statuses == ["status=0", "status=2", "status=2"]
    lines = done.stderr.splitlines()
    assert lines == [f"netmodel: error: --out: cannot write {tmp_path / 'mnt' / 'out' / LOCK}: "
                     "Read-only file system; choose a writable --out",
                     f"netmodel: error: --out: cannot write {tmp_path / 'mnt' / 'new'}: "
                     "Read-only file system; choose a writable --out"]


def test_a_recorded_holder_is_running_only_if_its_pid_has_its_start_time(tmp_path):
    """pid reuse: a live process with the recorded pid but another start is not the holder."""
    from netmodel.runner import lock

    me = lock._current()
    assert lock._alive(me)
    assert not lock._alive({**me, "process_start": me["process_start"] + 1})
    assert not lock._alive({**me, "pid": dead_pid()})
    assert not lock._alive({**me, "boot": "another boot"})
    assert lock._alive({**me, "host": "another-host", "pid": dead_pid()})  # cannot tell: running
