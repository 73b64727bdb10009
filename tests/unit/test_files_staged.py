"""Staged local writes: unnamed O_TMPFILE inodes linked in on commit, or named staging files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakeshift.sinks import fs as sink_fs
from lakeshift.sources import fs as source_fs


@pytest.fixture(params=["tmpfile", "named"])
def loc(request: pytest.FixtureRequest, tmp_path: Path) -> source_fs.Location:
    loc = source_fs.resolve(str(tmp_path / "dst"))
    if request.param == "named":  # a filesystem without O_TMPFILE
        sink_fs._TMPFILE[loc.root] = False
    yield loc
    sink_fs._TMPFILE.pop(loc.root, None)


def _names(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_commit_creates_replaces_and_keeps_mtime(loc: source_fs.Location, tmp_path: Path) -> None:
    root = tmp_path / "dst"
    staged = sink_fs.Staged(loc, "a b/ü #1%.txt", "run1")
    assert staged.fd is not None
    os.write(staged.fd, b"first")
    assert _names(root) == (
        [] if staged.path is None else [Path(staged.path).relative_to(root).as_posix()]
    )
    staged.commit()
    assert (root / "a b/ü #1%.txt").read_bytes() == b"first"

    again = sink_fs.Staged(loc, "a b/ü #1%.txt", "run1")
    os.write(again.fd, b"second, longer")  # type: ignore[arg-type]
    again.commit(mtime_ns=1_500_000_000_123_456_789)
    final = root / "a b/ü #1%.txt"
    assert final.read_bytes() == b"second, longer"
    assert final.stat().st_mtime_ns == 1_500_000_000_123_456_789
    assert [n for n in _names(root) if ".lakeshift-tmp" not in n] == ["a b/ü #1%.txt"]
    assert not [n for n in _names(root) if n.endswith(".part")]


def test_discard_leaves_nothing(loc: source_fs.Location, tmp_path: Path) -> None:
    root = tmp_path / "dst"
    staged = sink_fs.Staged(loc, "deep/er/x.bin", "run2")
    os.write(staged.fd, b"x" * 10_000)  # type: ignore[arg-type]
    staged.discard()
    staged.discard()  # idempotent
    assert _names(root) == []
    assert staged.fd is None


def test_unnamed_file_is_gone_when_its_descriptor_closes(tmp_path: Path) -> None:
    """What a killed process leaves: nothing (the kernel frees an unlinked, closed inode)."""
    loc = source_fs.resolve(str(tmp_path / "dst"))
    if not sink_fs._tmpfile_ok(loc, "run3"):
        pytest.skip("this filesystem has no O_TMPFILE")
    staged = sink_fs.Staged(loc, "k/file.dat", "run3")
    assert staged.path is None
    os.write(staged.fd, b"partial")  # type: ignore[arg-type]
    os.close(staged.fd)  # type: ignore[arg-type]
    assert _names(tmp_path / "dst") == []
