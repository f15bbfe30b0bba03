"""A sweep's results folder: which files in it are netmodel's, and how they change.

netmodel writes, replaces and deletes only files it created. A folder is a results folder
when its `manifest.json` is netmodel's (checked strictly: format marker, version, digest,
point count, plot names); a sweep refuses a non-empty folder without one, and never
touches a folder whose manifest is someone else's, `--force` or not. Every file is
written atomically through a temporary file named `.netmodel-<pid>-<name>.tmp`; only
such files, left by a process that is gone, are deleted as leftovers. `--force` discards
only what the manifest names: point files, the summary, meta.json and the plots it drew.

Any OSError while reading or writing (a file in the way, a read-only or full disk)
becomes one NetmodelError naming the path; what was already written stays.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from netmodel.errors import NetmodelError

MANIFEST = "manifest.json"
POINTS = "points"
PLOTS = "plots"
SUMMARY_PARQUET = "summary.parquet"
SUMMARY_CSV = "summary.csv"
META = "meta.json"
SCENARIO_FILE = "scenario.yaml"
"""The scenario as run (--set applied), without its sweep."""
PROFILE_FILE = "profile.yaml"
"""The cost profile as run: each parameter's value, unit and source."""
LOCK = ".netmodel.lock"
OUTPUTS = (SUMMARY_PARQUET, SUMMARY_CSV, META, SCENARIO_FILE, PROFILE_FILE)
"""The files a finished sweep writes at the top of its folder."""

FORMAT = "netmodel sweep results"
VERSION = 1
_TMP = re.compile(r"^\.netmodel-(\d+)-.+\.tmp$")
_POINT = re.compile(r"^\d{5}\.parquet$")
_PLOT = re.compile(r"^[A-Za-z0-9_.-]+\.png$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Manifest:
    """What `manifest.json` says: the scenario digest, the number of points, the plots
    drawn from the current summary (file names in plots/)."""

    digest: str
    points: int
    plots: tuple[str, ...] = field(default=())

    def as_bytes(self) -> bytes:
        return json_bytes({"format": FORMAT, "version": VERSION, "digest": self.digest,
                           "points": self.points, "plots": list(self.plots)})


def read_manifest(out_dir: Path) -> Manifest | None:
    """The folder's manifest; None if it has none; a NetmodelError if the file is not one
    netmodel wrote (then nothing in the folder is netmodel's to change)."""
    path = out_dir / MANIFEST
    data = read_if_exists(path)
    if data is None:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    manifest = _parsed(doc)
    if manifest is None:
        raise NetmodelError(f"{path} was not written by netmodel (or is damaged): this is not "
                            "a netmodel results folder; use another --out", field="--out")
    return manifest


def _parsed(doc: object) -> Manifest | None:
    """The manifest in `doc`, or None if `doc` is not exactly what netmodel writes (this
    version's, or 0.4's {"digest", "points"})."""
    if not isinstance(doc, dict):
        return None
    legacy = set(doc) == {"digest", "points"}
    if not legacy and (set(doc) != {"format", "version", "digest", "points", "plots"}
                       or doc["format"] != FORMAT or doc["version"] != VERSION):
        return None
    digest, points, plots = doc["digest"], doc["points"], doc.get("plots", [])
    if not (isinstance(digest, str) and _DIGEST.match(digest) and type(points) is int
            and points >= 1 and isinstance(plots, list)
            and all(isinstance(p, str) and _PLOT.match(p) for p in plots)):
        return None
    return Manifest(digest, points, tuple(plots))


def claim(out_dir: Path) -> Manifest | None:
    """Make sure `out_dir` is a folder netmodel may write: create it, or accept it empty or
    with netmodel's manifest; return that manifest (None: a new folder)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NetmodelError(f"{out_dir} is a file, not a folder", field="--out") from None
    except OSError as err:
        raise os_error(out_dir, err, "--out") from None
    if not out_dir.is_dir():
        raise NetmodelError(f"{out_dir} is a file, not a folder", field="--out")
    manifest = read_manifest(out_dir)
    if manifest is None and _foreign_entries(out_dir):
        raise NetmodelError(f"{out_dir} is not empty and is not a netmodel results folder "
                            f"(no {MANIFEST}); netmodel writes only into a new or empty folder "
                            "or its own; use another --out", field="--out")
    return manifest


def _foreign_entries(out_dir: Path) -> list[str]:
    """Entries of `out_dir` other than netmodel's lock and temporary files."""
    try:
        names = os.listdir(out_dir)
    except OSError as err:
        raise os_error(out_dir, err, "--out", "read") from None
    return [n for n in names if n != LOCK and not _TMP.match(n)]


def discard(out_dir: Path, manifest: Manifest) -> None:
    """Delete the outputs of the sweep `manifest` describes (`--force`): point files, the
    summary, meta.json and the plots it names; nothing else."""
    points = out_dir / POINTS
    doomed = [out_dir / name for name in OUTPUTS]
    doomed += [out_dir / PLOTS / name for name in manifest.plots]
    if points.is_dir():
        doomed += [points / name for name in os.listdir(points) if _POINT.match(name)]
    for path in doomed:
        try:
            path.unlink(missing_ok=True)
        except OSError as err:
            raise os_error(path, err, "--out") from None


def remove_leftovers(folders: Iterable[Path], field_name: str = "--out") -> None:
    """Delete netmodel's temporary files in `folders` whose writer is no longer running."""
    for folder in folders:
        if not folder.is_dir():
            continue
        for name in os.listdir(folder):
            found = _TMP.match(name)
            if found and not pid_running(int(found.group(1))):
                try:
                    (folder / name).unlink(missing_ok=True)
                except OSError as err:
                    raise os_error(folder / name, err, field_name) from None


def pid_running(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_atomic(path: Path, data: bytes, field_name: str = "--out") -> None:
    """Replace `path` by `data` so that readers see the old file or the whole new one; a
    NetmodelError naming `path` if the disk refuses (the old file, if any, stays)."""
    tmp = path.with_name(f".netmodel-{os.getpid()}-{path.name}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except BaseException as err:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise os_error(path, err, field_name) from None
        raise


def _fsync_folder(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def make_folder(folder: Path, field_name: str = "--out") -> None:
    """mkdir -p, a NetmodelError naming the folder if it cannot be made."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise os_error(folder, err, field_name) from None
    if not folder.is_dir():
        raise NetmodelError(f"{folder} is a file, not a folder", field=field_name)


def read_if_exists(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise os_error(path, err, "--out", "read") from None


_HINTS = {errno.ENOSPC: "; free some space and run the same command again (finished points "
                        "are kept)",
          errno.EDQUOT: "; free some space and run the same command again (finished points "
                        "are kept)",
          errno.EROFS: "; choose a writable --out",
          errno.EACCES: "; choose a writable --out",
          errno.EPERM: "; choose a writable --out",
          errno.ENOTDIR: " (a part of the path is a file)"}


def os_error(path: Path, err: OSError, field_name: str, verb: str = "write") -> NetmodelError:
    """One line for an OSError on `path`: what, where and what to do."""
    reason = err.strerror or type(err).__name__
    return NetmodelError(f"cannot {verb} {path}: {reason}{_HINTS.get(err.errno, '')}",
                         field=field_name)


def json_bytes(doc: dict) -> bytes:
    return (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode()
