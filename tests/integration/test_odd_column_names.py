"""Columns whose names need quoting (a backtick, a dot, a space) through `copy` and `validate`.

The data that arrives is read back with pyarrow straight from the files (for Delta: the live
files its log names, with their partition values), not through Spark, so a copy that renamed or
dropped a column cannot pass. The Delta copy is partitioned by ``a.b`` with a small target file
size, so several files per partition value go through the salted repartition (a hash over every
column). Delta without column mapping refuses spaces in names
(``DELTA_INVALID_CHARACTERS_IN_COLUMN_NAMES``), so the space goes to the Parquet target only.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import pyarrow.parquet as pq
import pytest

from lakeshift.cli import main

SCHEMA = "id int, `we``ird` string, `a.b` int, `sp ace` string"
ROWS = [(i, f"value {i} " * 4, i % 2, f"s {i}") for i in range(1, 1201)]
DELTA_SCHEMA = "id int, `we``ird` string, `a.b` int"
DELTA_COLUMNS = ["id", "we`ird", "a.b"]


def _delta_rows(table: Path) -> tuple[list[tuple], list[str], int]:
    """Rows of a Delta table from its log's live files, its partition columns, its file count.

    A partition column missing from a file takes its value from the file's ``add`` action.
    """
    live: dict[str, dict[str, str]] = {}
    partition_by: list[str] = []
    for commit in sorted((table / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "metaData" in action:
                partition_by = action["metaData"]["partitionColumns"]
            elif "add" in action:
                live[action["add"]["path"]] = action["add"]["partitionValues"]
            elif "remove" in action:
                live.pop(action["remove"]["path"], None)
    rows = []
    for path, values in live.items():
        for r in pq.read_table(table / unquote(path)).to_pylist():
            full = {**{k: int(v) for k, v in values.items()}, **r}
            rows.append(tuple(full[c] for c in DELTA_COLUMNS))
    return sorted(rows), partition_by, len(live)


@pytest.fixture(scope="module")
def copied(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("odd_names")
    full, src, dst, flat = base / "full", base / "src", base / "dst", base / "flat"
    spark.createDataFrame(ROWS, SCHEMA).repartition(3).write.parquet(str(full))
    spark.createDataFrame([r[:3] for r in ROWS], DELTA_SCHEMA).repartition(3).write.parquet(
        str(src)
    )
    common = ["--no-progress", "--target-file-size", "8KB"]
    assert main(["copy", f"parquet:{src}", str(dst), "--partition-by", "a.b", *common]) == 0
    assert main(["copy", f"parquet:{full}", str(flat), "--format", "parquet", *common]) == 0
    return base, src, dst, flat


def test_copy_to_delta_keeps_odd_column_names_and_values(copied) -> None:
    _, _, dst, _ = copied
    rows, partition_by, files = _delta_rows(dst)
    assert rows == [r[:3] for r in ROWS]
    assert partition_by == ["a.b"]
    assert files > 2  # several files per partition value: the salted repartition ran


def test_copy_to_parquet_keeps_odd_column_names_and_values(copied) -> None:
    _, _, _, flat = copied
    files = [p for p in flat.rglob("*.parquet") if not p.name.startswith((".", "_"))]
    assert files
    assert {tuple(pq.read_schema(f).names) for f in files} == {("id", "we`ird", "a.b", "sp ace")}
    got = sorted(tuple(r.values()) for f in files for r in pq.read_table(f).to_pylist())
    assert got == ROWS


def test_validate_passes_on_equal_data_and_fails_on_a_changed_row(spark, copied) -> None:
    base, src, dst, _ = copied
    out = base / "reports"
    args = ["validate", f"parquet:{src}", f"delta:{dst}", "--keys", "id"]
    assert main([*args, "--json", str(out / "same.json")]) == 0
    assert json.loads((out / "same.json").read_text())["passed"] is True

    changed = base / "changed"
    rows = [(r[0], "changed", r[2]) if r[0] == 7 else r[:3] for r in ROWS]
    spark.createDataFrame(rows, DELTA_SCHEMA).write.format("delta").save(str(changed))
    args = ["validate", f"parquet:{src}", f"delta:{changed}", "--keys", "id"]
    assert main([*args, "--json", str(out / "diff.json")]) == 1
    table = json.loads((out / "diff.json").read_text())["tables"][0]
    assert table["verdict"] == "fail"
    assert table["counts"]["value_mismatch"] == 1
    assert table["column_mismatches"] == {"we`ird": 1}
    assert [s["key"] for s in table["samples"]] == ['{"id":7}']


def test_repair_with_odd_column_names(spark, copied) -> None:
    base, src, _, _ = copied
    target = base / "to_repair"
    rows = [(r[0], "changed", r[2]) if r[0] in (3, 9) else r[:3] for r in ROWS if r[0] != 5]
    spark.createDataFrame(rows, DELTA_SCHEMA).write.format("delta").save(str(target))
    assert main(["repair", f"parquet:{src}", f"delta:{target}", "--keys", "id"]) == 0
    got, _, _ = _delta_rows(target)
    assert got == [r[:3] for r in ROWS]


def test_validate_keyed_on_an_odd_column(spark, copied) -> None:
    base, src, dst, _ = copied
    out = base / "reports" / "keyed.json"
    rc = main(
        ["validate", f"parquet:{src}", f"delta:{dst}", "--keys", "id,we`ird", "--json", str(out)]
    )
    assert rc == 0
    assert json.loads(out.read_text())["passed"] is True
