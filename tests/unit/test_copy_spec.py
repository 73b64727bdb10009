"""`lakeshift copy --config`: every malformed config exits 2 with one line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeshift.cli import main
from lakeshift.config import load_model
from lakeshift.copy.spec import CopySpec, RewriteRule

REPO = Path(__file__).resolve().parents[2]

GOOD_TABLE = "  - {source: /lake/a, target: /delta/a}\n"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("tables: []\n", "tables: List should have at least 1 item"),
        ("rewrite: []\n", "tables: field required"),
        ("tables:\n  - {source: /a}\n", "tables[0].target: field required"),
        ("tables:\n  - {source: /a, target: /b, format: csv}\n", "tables[0].format:"),
        ("tables:\n  - {source: /a, target: /b, chunk_size: lots}\n", "tables[0].chunk_size:"),
        (
            "tables:\n  - {source: /a, target: /b, target_file_size: -1}\n",
            "tables[0].target_file_size:",
        ),
        ("tables:\n  - {source: /a, target: /b, colour: red}\n", "tables[0].colour: unknown field"),
        ("tables:\n  - {source: /a, target: /b, include: ['dt=[0-9']}\n", "tables[0].include:"),
        (
            "tables:\n  - {source: /a, target: /b, register_table: 'a b'}\n",
            "tables[0].register_table:",
        ),
        ("tables:\n  - {source: /a, target: /b, run_id: '../x'}\n", "tables[0].run_id:"),
        ("tables:\n  - {source: /a, target: /a/}\n", "tables[0]: Value error, target must differ"),
        ("tables:\n  - {source: /a, target: /b, mode: upsert}\n", "tables[0].mode:"),
        (
            "rewrite:\n  - {from: 's3://a/'}\ntables:\n" + GOOD_TABLE,
            "rewrite[0].to: field required",
        ),
        (
            "tables:\n" + GOOD_TABLE + "  - {source: /c, target: /d, partition_by: [x, x]}\n",
            "tables[1].partition_by:",
        ),
        (
            "tables:\n  - {source: /a, target: /b, source_format: avro}\n",
            "tables[0].source_format:",
        ),
        ("tables: {source: /a}\n", "tables: Input should be a valid list"),
    ],
)
def test_bad_config_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, field: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert main(["copy", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"lakeshift copy: error: {bad}: ")
    assert field in err, err


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["copy", "/only-source"]) == 2
    assert "expected SOURCE TARGET" in capsys.readouterr().err
    assert main(["copy", "/a", "/b", "--rewrite", "no-equals"]) == 2
    assert "--rewrite: expected OLD=NEW" in capsys.readouterr().err
    good = tmp_path / "ok.yaml"
    good.write_text("tables:\n" + GOOD_TABLE)
    assert main(["copy", "--config", str(good), "--chunk-size", "1GB"]) == 2
    assert "belong in the config file" in capsys.readouterr().err
    assert main(["copy", "/a", "/b", "--target-file-size", "big"]) == 2
    assert "copy: tables[0].target_file_size:" in capsys.readouterr().err


def test_example_config_is_valid() -> None:
    import datetime as dt

    spec = load_model(REPO / "conf/examples/copy.yaml", CopySpec, run_date=dt.date(2026, 3, 1))
    assert len(spec.tables) >= 2
    first = spec.tables[0]
    assert "2026-03-01" in first.exclude[0] or any(
        "2026" in p for p in first.exclude + first.include
    )
    assert first.target_file_size == 128 << 20
    assert spec.rewrite[0] == RewriteRule.parse("s3://old-bucket/=s3a://new-bucket/")
    assert {t.format for t in spec.tables} == {"delta", "parquet"}
