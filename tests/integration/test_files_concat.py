"""Small-file concatenation of line-oriented text: outputs, manifest lineage, incremental reruns.

Expected output bytes are written out literally in the tests.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lakeshift.errors import UsageError
from lakeshift.files.config import FilesConfig
from lakeshift.files.runner import run_files
from tests.integration.files_tree import sha_tree

PATTERN = r"(logs/[^/]+)/.*\.log"


def _cfg(src: Path, dst: Path, **kw: object) -> FilesConfig:
    base: dict[str, object] = {
        "src": str(src),
        "dst": str(dst),
        "local": True,
        "progress": False,
        "concat": PATTERN,
    }
    base.update(kw)
    return FilesConfig(**base)  # type: ignore[arg-type]


def _write(root: Path, files: dict[str, bytes]) -> None:
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)


def _rows(dst: Path) -> dict[str, dict[str, object]]:
    versions = sorted((dst / "_lakeshift_files" / "manifest").glob("v-*.parquet"))
    return {r["rel"]: r for r in pq.read_table(versions[-1]).to_pylist()}


TREE = {
    "logs/2026-01-01/a.log": b"a1\na2\n",
    "logs/2026-01-01/b.log": b"b1\nb2 no newline at end",
    "logs/2026-01-01/c.log": b"",
    "logs/2026-01-01/sub/d.log": b"d1\r\nd2\r\n",
    "logs/2026-01-02/x.log": b"x1\n",
    "logs/2026-01-02/notes.txt": b"not a .log: copied as is",
    "other/data.bin": b"\x00\x01binary",
}


def test_concat_groups_lines_whole_and_records_lineage(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _write(src, TREE)

    s = run_files(_cfg(src, dst, checksum="sha256"))

    assert (s.concatenated, s.concat_outputs, s.copied, s.failed) == (5, 2, 2, 0)
    got = sha_tree(dst)
    assert sorted(got) == [
        "logs/2026-01-01-00000",
        "logs/2026-01-02-00000",
        "logs/2026-01-02/notes.txt",
        "other/data.bin",
    ]
    # path order; a newline added after b.log; the empty c.log adds nothing; CRLF kept
    assert (dst / "logs/2026-01-01-00000").read_bytes() == (
        b"a1\na2\nb1\nb2 no newline at end\nd1\r\nd2\r\n"
    )
    assert (dst / "logs/2026-01-02-00000").read_bytes() == b"x1\n"
    assert (dst / "other/data.bin").read_bytes() == b"\x00\x01binary"
    rows = _rows(dst)
    assert rows["logs/2026-01-01/b.log"]["output"] == "logs/2026-01-01-00000"
    assert rows["logs/2026-01-01/b.log"]["status"] == "verified"
    assert (
        rows["logs/2026-01-01/b.log"]["checksum"]
        == hashlib.sha256(TREE["logs/2026-01-01/b.log"]).hexdigest()
    )
    assert rows["other/data.bin"]["output"] == ""


def test_concat_target_size_splits_groups_deterministically(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _write(src, {f"logs/day/{i}.log": f"line {i}\n".encode() * 5 for i in range(5)})  # 35 B each

    s = run_files(_cfg(src, dst, concat_bytes=80))

    assert (s.concatenated, s.concat_outputs) == (5, 3)
    assert (dst / "logs/day-00000").read_bytes() == b"line 0\n" * 5 + b"line 1\n" * 5
    assert (dst / "logs/day-00001").read_bytes() == b"line 2\n" * 5 + b"line 3\n" * 5
    assert (dst / "logs/day-00002").read_bytes() == b"line 4\n" * 5


def test_concat_rerun_is_incremental(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _write(src, TREE)
    run_files(_cfg(src, dst))
    day1 = dst / "logs/2026-01-01-00000"
    ino1 = day1.stat().st_ino

    again = run_files(_cfg(src, dst))
    assert (again.concatenated, again.concat_outputs, again.copied) == (0, 0, 0)
    assert again.unchanged == len(TREE)

    _write(src, {"logs/2026-01-02/y.log": b"y1\n"})
    (src / "logs/2026-01-02/x.log").unlink()
    third = run_files(_cfg(src, dst, delete=True))

    assert (third.concatenated, third.concat_outputs, third.failed, third.deleted) == (1, 1, 0, 0)
    assert (dst / "logs/2026-01-02-00000").read_bytes() == b"y1\n"
    assert day1.stat().st_ino == ino1  # the unchanged group's output was not rewritten
    rows = _rows(dst)
    assert "logs/2026-01-02/x.log" not in rows
    assert rows["logs/2026-01-02/y.log"]["output"] == "logs/2026-01-02-00000"

    # without --concat the former inputs are copied one to one (and reported)
    plain = run_files(_cfg(src, dst, concat=None))
    assert plain.copied == 5
    assert (dst / "logs/2026-01-01/b.log").read_bytes() == TREE["logs/2026-01-01/b.log"]
    assert not (dst / "logs/2026-01-01-00000").exists()  # outputs no longer produced: removed
    assert not (dst / "logs/2026-01-02-00000").exists()


def test_concat_output_name_clash_is_usage_error(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _write(src, {"logs/d/a.log": b"a\n", "logs/d-00000": b"a plain file"})
    with pytest.raises(UsageError, match="logs/d-00000"):
        run_files(_cfg(src, dst))
    with pytest.raises(UsageError, match="capture group"):
        run_files(_cfg(src, dst, concat=r"logs/.*\.log"))


def test_cli_concat_and_split_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lakeshift import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ["lakeshift.files.command"])
    src, dst = tmp_path / "src", tmp_path / "dst"
    _write(src, {"logs/d/a.log": b"a\n" * 40, "logs/d/b.log": b"b\n" * 40, "big.bin": b"z" * 3000})
    argv = ["files", str(src), str(dst), "--local", "--no-progress", "--concat", PATTERN]
    rc = cli.main([*argv, "--concat-size", "100", "--split-above", "2KB", "--part-size", "1MB"])
    assert rc == 0
    assert (dst / "logs/d-00000").read_bytes() == b"a\n" * 40
    assert (dst / "logs/d-00001").read_bytes() == b"b\n" * 40
    assert (dst / "big.bin").read_bytes() == b"z" * 3000
    assert "concatenated 2 into 2 outputs" in capsys.readouterr().out


def test_concat_and_range_split_on_spark_executors(tmp_path: Path, spark) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _write(src, TREE)
    _write(src, {"big/huge.bin": bytes(range(256)) * 12_000})  # ~3 MiB, 1 MiB parts

    s = run_files(
        _cfg(
            src,
            dst,
            local=False,
            executor="spark",
            threads=2,
            split_bytes=2 << 20,
            part_bytes=1 << 20,
        ),
        spark,
    )

    assert (s.mode, s.concatenated, s.concat_outputs, s.copied, s.failed) == ("spark", 5, 2, 3, 0)
    assert (dst / "logs/2026-01-02-00000").read_bytes() == b"x1\n"
    assert (dst / "big/huge.bin").read_bytes() == bytes(range(256)) * 12_000


def test_concat_input_changing_every_attempt_fails_its_output_only(tmp_path: Path) -> None:
    from lakeshift.files import copier

    src, dst = tmp_path / "src", tmp_path / "dst"
    _write(src, TREE)
    victim = src / "logs/2026-01-02/x.log"

    def change(rel: str, nbytes: int) -> None:  # touched while being read, on every attempt
        if rel == "logs/2026-01-02/x.log":
            mtime = victim.stat().st_mtime_ns + 1_000_000
            os.utime(victim, ns=(mtime, mtime))

    copier.set_test_hook(change)
    try:
        s = run_files(_cfg(src, dst, retries=1))
    finally:
        copier.set_test_hook(None)

    assert (s.concatenated, s.concat_outputs, s.failed) == (4, 1, 1)
    assert s.failed_files[0]["path"] == "logs/2026-01-02/x.log"
    assert "changed during copy" in s.failed_files[0]["reason"]
    assert not (dst / "logs/2026-01-02-00000").exists()
    assert (dst / "logs/2026-01-01-00000").exists()
    assert _rows(dst)["logs/2026-01-02/x.log"]["status"] == "failed"
