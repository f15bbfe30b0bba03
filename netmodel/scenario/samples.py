"""Measured app times from a CSV file: `workload.server.service_time_file`.

One value a line: seconds, or a time with its unit (`12ms`, `850us`); only the first
comma-separated field counts; a first line that is not a time is a header; blank lines
are skipped.
"""

from __future__ import annotations

import math
from pathlib import Path

from netmodel.limits import INPUT_BYTES, SAMPLES
from netmodel.units import parse_quantity


class SamplesError(ValueError):
    """What is wrong with the file, and on which line (None: the file as a whole)."""

    def __init__(self, message: str, path: Path, line: int | None = None):
        super().__init__(message)
        self.message, self.path, self.line = message, path, line


def read_samples(path: Path) -> list[float]:
    """The app times in `path`, in seconds; SamplesError when it cannot be read as one."""
    if not path.is_file():
        raise SamplesError(f"no file {path}", path)
    if path.stat().st_size > INPUT_BYTES():
        raise SamplesError(INPUT_BYTES.refuse(path.stat().st_size, f"the size of {path}"), path)
    samples = []
    for number, text in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        value = text.split(",")[0].strip()
        if not value:
            continue
        try:
            seconds = parse_quantity(value, "time")
        except ValueError as exc:
            if number == 1:  # a header
                continue
            raise SamplesError(f"expected a time, got {value!r} ({exc})", path, number) from None
        if not 0 <= seconds < math.inf:
            raise SamplesError(f"expected a time >= 0 and finite, got {value!r}", path, number)
        samples.append(seconds)
    if not samples:
        raise SamplesError(f"{path} holds no app time", path)
    if len(samples) > SAMPLES():
        raise SamplesError(SAMPLES.refuse(len(samples), f"the app times in {path}"), path)
    return samples
