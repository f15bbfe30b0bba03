"""What a lab run leaves behind, beside the profile it writes (PROFILE.yaml):

    PROFILE.yaml             a complete profile: every parameter, measured or default, sourced
    PROFILE.samples.parquet  every sample (netmodel.calibration.experiments' columns)
    PROFILE.lab.json         machine, tools, configuration, estimates, checks, what was skipped
    PROFILE-plots/*.png      one figure per fit

`read_lab(profile_path)` finds the samples and the record of a profile the lab wrote
(`netmodel validate --profile` compares the model with them); None for other profiles.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import yaml

from netmodel.costs.profile import PARAMETERS, Profile


def sidecars(profile_path: Path) -> dict[str, Path]:
    """The files that belong to the profile at `profile_path`."""
    base = profile_path.with_suffix("")
    return {"samples": base.with_name(base.name + ".samples.parquet"),
            "record": base.with_name(base.name + ".lab.json"),
            "plots": base.with_name(base.name + "-plots")}


def first_line(argv: list[str]) -> str:
    """The first line a command prints (its version), or "not found"."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def machine() -> dict:
    """Kernel, CPU, core count and load of this machine."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"kernel": platform.release(), "machine": platform.machine(), "cpu": cpu,
            "cpus": os.cpu_count(), "load_average": list(os.getloadavg()), "host": platform.node()}


def tools(backend: str) -> dict:
    """Versions of what the lab ran."""
    return {"iptables": first_line([f"iptables-{backend}", "-V"]),
            "nft": first_line(["nft", "-v"]), "ip": first_line(["ip", "-V"]),
            "ipvsadm": first_line(["ipvsadm", "-v"]),
            "probe": f"Python {platform.python_version()} (netmodel.calibration.probe)"}


def source_prefix(date: str, quick: bool, mach: dict, tool: dict) -> str:
    """The start of every measured parameter's source."""
    return (f"measured: netmodel calibrate lab {date}{' --quick' if quick else ''}, Linux "
            f"{mach['kernel']} {mach['machine']} ({mach['cpu']}, {mach['cpus']} CPUs), "
            f"{tool['iptables']}, {tool['nft']}, {tool['ip']}, probe {tool['probe']}")


@dataclass(frozen=True)
class LabFiles:
    """Where a lab run wrote."""

    profile: Path
    samples: Path
    record: Path
    plots: tuple[Path, ...]


def write_profile(path: Path, profile: Profile) -> None:
    """The profile as YAML, every parameter in the order of `PARAMETERS`."""
    doc = {"name": profile.name, "description": profile.description,
           "parameters": {n: {"value": profile.parameters[n].text, "per": profile.parameters[n].per,
                              "source": profile.parameters[n].source} for n in PARAMETERS}}
    path.write_text("# Written by `netmodel calibrate lab`; see the .lab.json beside it.\n"
                    + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120),
                    encoding="utf-8")


def write(path: Path, profile: Profile, samples: pd.DataFrame, record: dict,
          plots: tuple[Path, ...]) -> LabFiles:
    """Write the profile, the samples and the record (the plots are already written)."""
    files = sidecars(path)
    write_profile(path, profile)
    samples.to_parquet(files["samples"], index=False)
    files["record"].write_text(json.dumps(record, indent=2, default=_plain) + "\n", encoding="utf-8")
    return LabFiles(path, files["samples"], files["record"], plots)


def _plain(value):
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)


@dataclass(frozen=True)
class LabRecord:
    """A lab run read back: its samples and its record."""

    samples: pd.DataFrame
    record: dict


def read_lab(profile_path: str | Path | None) -> LabRecord | None:
    """The lab's samples and record beside `profile_path`, or None when it has none."""
    if profile_path is None or not str(profile_path).endswith((".yaml", ".yml")):
        return None
    files = sidecars(Path(profile_path))
    if not files["samples"].is_file() or not files["record"].is_file():
        return None
    return LabRecord(pd.read_parquet(files["samples"]),
                     json.loads(files["record"].read_text(encoding="utf-8")))
