"""One sweep point's file, `points/00000.parquet`: its summary rows, sealed.

The Parquet footer holds `netmodel.point_digest` (the digest of the point's scenario and
profile: what the rows are the result of) and `netmodel.point_checksum`, sha256 over that
digest and the rows' values (column names, Arrow types, every value as JSON). Reading a
point checks both: a file that cannot be read, or whose values or digest no longer give
its checksum (a flipped byte, a torn page), is damaged; the sweep names it and runs the
point again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DIGEST_KEY = b"netmodel.point_digest"
CHECKSUM_KEY = b"netmodel.point_checksum"


class DamagedPoint(Exception):
    """A point file that is there but cannot be trusted; `reason` says why."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def point_bytes(records: list[dict], digest: str) -> bytes:
    """The Parquet bytes of one point's rows, sealed with `digest` and their checksum."""
    table = pa.Table.from_pandas(pd.DataFrame.from_records(records), preserve_index=False)
    seal = {DIGEST_KEY: digest.encode(), CHECKSUM_KEY: _checksum(table, digest).encode()}
    return parquet_bytes(table.replace_schema_metadata({**table.schema.metadata, **seal}))


def read_point(path: Path, digest: str) -> pa.Table | None:
    """The rows in `path` if they are the result of `digest`; None if the file is missing or
    holds another point's result; DamagedPoint if it cannot be read or fails its checksum."""
    try:
        table = _read_parquet(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, pa.ArrowException) as err:
        raise DamagedPoint(path, f"cannot be read ({_first_line(err)})") from None
    meta = table.schema.metadata or {}
    stored, checksum = meta.get(DIGEST_KEY), meta.get(CHECKSUM_KEY)
    if stored is None or checksum is None:
        raise DamagedPoint(path, "has no netmodel digest or checksum")
    if _checksum(table, stored.decode(errors="replace")).encode() != checksum:
        raise DamagedPoint(path, "its values do not match its checksum")
    return table if stored.decode() == digest else None


def _read_parquet(path: Path) -> pa.Table:
    """The table in `path`, read in this thread from a file Arrow opens itself.

    Not pq.read_table: its dataset reader takes 2.5x as long over a small file. Not over
    Python bytes either: a pool thread that dropped the last reference to them after the
    interpreter began to exit aborted the process (SIGABRT, "terminate called without an
    active exception")."""
    with pq.ParquetFile(path) as file:
        return file.read(use_threads=False)


def _checksum(table: pa.Table, digest: str) -> str:
    """sha256 hex of `digest` and the table's columns: names, types and values."""
    columns = [[name, str(column.type), column.to_pylist()]
               for name, column in zip(table.column_names, table.columns)]
    blob = json.dumps([digest, columns], separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()
