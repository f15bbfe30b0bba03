"""A results folder as a notebook sees it: the summary, meta and every point as DataFrames,
the scenario and profile that ran, the plots, and a comparison's decision table.

`netmodel sweep` and `netmodel compare` write the folder (`runner/sweep.py` has the
layout); `inputs_bytes` is what ran, so that a report of the folder stands on its own:

    scenario.yaml     the scenario as run (after --set), without its sweep: the axes are in meta.json
    profile.yaml      the cost profile with each parameter's value, unit, what it is per, and source
    comparison.json   (compare) what was compared, the reference point, the verdict, notes
    decision.csv      (compare) the decision table
    rollout/          (compare, without control_plane.enabled) a results folder of a rolling update
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from netmodel.costs.profile import Profile
from netmodel.errors import NetmodelError
from netmodel.runner.folder import (
    META,
    PLOTS,
    POINTS,
    PROFILE_FILE,
    SCENARIO_FILE,
    SUMMARY_PARQUET,
    write_atomic,
)
from netmodel.scenario.loader import LoadedScenario

COMPARISON = "comparison.json"
DECISION_CSV = "decision.csv"
ROLLOUT = "rollout"


@dataclass(frozen=True)
class ResultsFolder:
    """An opened results folder. `summary`: one row per (point, traffic kind), columns as
    `netmodel.results.summary.COLUMNS` after `point_id` and the swept axes (docs/results.md);
    `meta`: what ran (scenario, seed, axes, versions); `comparison` and `decision`: what
    `netmodel compare` decided, None for a sweep."""

    path: Path
    summary: pd.DataFrame
    meta: dict[str, Any]
    comparison: dict[str, Any] | None
    decision: pd.DataFrame | None

    @property
    def axes(self) -> list[str]:
        """The swept fields, in the sweep's order."""
        return list(self.meta.get("axes", []))

    @property
    def points(self) -> pd.DataFrame:
        """One row per sweep point: `point_id` and the value of each swept field."""
        columns = ["point_id", *(a for a in self.axes if a in self.summary)]
        return self.summary[columns].drop_duplicates("point_id").reset_index(drop=True)

    def point(self, point_id: int) -> pd.DataFrame:
        """The rows of one point as its point file holds them."""
        path = self.path / POINTS / f"{point_id:05d}.parquet"
        if not path.is_file():
            raise NetmodelError(f"no point {point_id} in {self.path}", field="point")
        return pd.read_parquet(path)

    def plots(self) -> list[Path]:
        """The PNG files under plots/, by name."""
        return sorted((self.path / PLOTS).glob("*.png"))

    def scenario_text(self) -> str | None:
        """scenario.yaml as written, None when the folder has none (an older netmodel)."""
        path = self.path / SCENARIO_FILE
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def profile(self) -> dict[str, Any] | None:
        """profile.yaml as data: name, description, parameters (value, per, source)."""
        path = self.path / PROFILE_FILE
        return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None

    def rollout(self) -> "ResultsFolder | None":
        """A comparison's rolling-update run, when it made one."""
        path = self.path / ROLLOUT
        return open_results(path) if (path / SUMMARY_PARQUET).is_file() else None


def open_results(path: str | Path) -> ResultsFolder:
    """The results folder at `path` (written by `netmodel sweep` or `netmodel compare`)."""
    path = Path(path)
    if not (path / SUMMARY_PARQUET).is_file():
        raise NetmodelError(f"not a results folder: no {SUMMARY_PARQUET} (write one with "
                            "netmodel sweep or netmodel compare)", file=str(path))
    meta_path, comparison_path = path / META, path / COMPARISON
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    comparison = (json.loads(comparison_path.read_text(encoding="utf-8"))
                  if comparison_path.is_file() else None)
    decision = pd.read_csv(path / DECISION_CSV) if (path / DECISION_CSV).is_file() else None
    return ResultsFolder(path, pd.read_parquet(path / SUMMARY_PARQUET), meta, comparison, decision)


def inputs_bytes(loaded: LoadedScenario) -> dict[str, bytes]:
    """scenario.yaml and profile.yaml, by file name: what ran, for the report and a reader."""
    scenario = {k: v for k, v in loaded.raw.items() if k != "sweep"}
    header = ("# the scenario as run (with any --set applied); meta.json has its file and "
              "the swept axes\n")
    profile = yaml.safe_dump(profile_data(loaded.profile), sort_keys=False, width=100,
                             allow_unicode=True)
    return {SCENARIO_FILE: (header + yaml.safe_dump(scenario, sort_keys=False)).encode("utf-8"),
            PROFILE_FILE: profile.encode("utf-8")}


def profile_data(profile: Profile) -> dict[str, Any]:
    """A profile as a profile file has it: every parameter's value, per and source."""
    return {"name": profile.name, "description": profile.description,
            "parameters": {name: {"value": p.text, "per": p.per, "source": p.source}
                           for name, p in profile.parameters.items()}}


def write_text(path: Path, text: str) -> None:
    """Replace `path` by `text` atomically, as every file of a results folder is written."""
    write_atomic(path, text.encode("utf-8"))
