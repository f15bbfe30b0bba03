"""docs/results.md lists every column netmodel writes, with a unit and a meaning: the
summary's (COLUMNS, the drop columns among them) and the decision table's."""

import re
from pathlib import Path

from netmodel.results.compare import METRICS, TABLE_COLUMNS
from netmodel.results.summary import COLUMNS
from netmodel.vocabulary import DROP_COLUMNS

DOC = (Path(__file__).resolve().parents[1] / "docs" / "results.md").read_text()


def table_after(heading: str) -> list[list[str]]:
    section = DOC.split(heading, 1)[1].split("\n## ", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| ") and not line.startswith("| ---")][1:]


def test_every_summary_column_is_listed_once_with_a_unit_and_a_meaning():
    listed = []
    for name, unit, meaning in table_after("## Summary columns"):
        columns = re.findall(r"`([^`]+)`", name)
        assert columns and unit and len(meaning) > 8, name
        listed += columns
    assert sorted(listed) == sorted(COLUMNS) and len(listed) == len(set(listed))
    assert set(DROP_COLUMNS) <= set(listed)


def test_the_decision_table_is_described_line_by_line():
    section = DOC.split("## A comparison's decision table", 1)[1].split("\n## ", 1)[0]
    for column in TABLE_COLUMNS:
        assert f"`{column}`" in section, column
    named = " ".join(row[0] for row in table_after("## A comparison's decision table"))
    for metric in METRICS:
        words = metric.name.replace(" p50", "").replace(" p99", "")
        assert words in named, metric.name
