"""``lakeshift files`` on real HDFS (Hadoop's mini cluster) and local disks: ``--preserve``
attributes, and source files whose blocks are gone or damaged.

Every expectation is read back with a client independent of the code under test: ``os.stat``
for local files, hdfs-native's ``get_file_info`` for HDFS, SHA-256 by hashlib for bytes.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakeshift import cli
from tests.hadoop_cluster import HadoopCluster, start_hadoop
from tests.services import serve_or_skip

pytestmark = pytest.mark.slow

OLD_NS = 1_600_000_000_123_456_789  # 2020-09-13, with nanoseconds
OLD_MS = OLD_NS // 1_000_000
ALL = "--preserve=perms,owner,group,times"


@pytest.fixture(scope="module")
def hdfs() -> Iterator[HadoopCluster]:
    """A DFS-only mini cluster for this module (no YARN; blocks are damaged on purpose)."""
    yield from serve_or_skip(lambda: start_hadoop(yarn=False))


@pytest.fixture
def files_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path):
    """Run ``lakeshift files ARGS --local --no-progress --json``; (exit code, stdout, JSON)."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["lakeshift.files.command"])
    counter = iter(range(1000))

    def run(*argv: str) -> tuple[int, str, dict[str, object]]:
        out = tmp_path / f"summary-{next(counter)}.json"
        rc = cli.main(["files", *argv, "--local", "--no-progress", "--json", str(out)])
        text = capsys.readouterr().out
        return rc, text, json.loads(out.read_text()) if out.exists() else {}

    return run


def _nobody() -> tuple[int, int, str, str]:
    """A user and group other than the test's own (root): ``nobody`` and its group."""
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid, pw.pw_name, grp.getgrgid(pw.pw_gid).gr_name


# source files: rel -> (mode, size); modes the default umask (0o644 files) would never give
FILES = {"a.txt": (0o640, 1000), "sub/run.sh": (0o750, 3000), "sub/deep/secret.bin": (0o600, 0)}


def _local_tree(root: Path, *, owner: tuple[int, int] | None = None) -> dict[str, str]:
    expected = {}
    for rel, (mode, size) in FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size)
        p.write_bytes(data)
        os.chmod(p, mode)
        if owner:
            os.chown(p, *owner)
        os.utime(p, ns=(OLD_NS, OLD_NS))
        expected[rel] = hashlib.sha256(data).hexdigest()
    return expected


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_local_preserve_all_keeps_mode_owner_group_and_mtime(tmp_path: Path, files_cli) -> None:
    if os.geteuid() != 0:
        pytest.skip("changing owners needs root")
    uid, gid, _, _ = _nobody()
    src = tmp_path / "src"
    expected = _local_tree(src, owner=(uid, gid))
    big = src / "big.bin"  # range-split copy (parts into one staged file) takes the same path
    big.write_bytes(os.urandom(3 << 20))
    os.chmod(big, 0o604)
    os.chown(big, uid, gid)
    os.utime(big, ns=(OLD_NS, OLD_NS))

    rc, out, summary = files_cli(
        str(src), str(tmp_path / "dst"), ALL, "--split-above=1MB", "--part-size=1MB"
    )

    assert rc == 0, out
    assert summary["copied"] == 4 and summary["warnings"] == [], out
    for rel, (mode, _) in {**FILES, "big.bin": (0o604, 0)}.items():
        st = os.stat(tmp_path / "dst" / rel)
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (mode, uid, gid), rel
        assert st.st_mtime_ns == OLD_NS, rel
    assert {r: _sha(tmp_path / "dst" / r) for r in FILES} == expected

    # bare --preserve keeps its old meaning: times only (mode from the umask, owner root)
    rc, out, summary = files_cli(str(src), str(tmp_path / "dst2"), "--preserve")
    assert rc == 0, out
    st = os.stat(tmp_path / "dst2" / "a.txt")
    assert st.st_mtime_ns == OLD_NS
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) != (uid, 0o640)


def test_owner_change_without_root_is_one_warning_not_a_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As an unprivileged user: perms and times are kept, owner/group are reported once.

    The run drops to ``nobody`` with ``seteuid`` (restored afterwards): only root may give a
    file to another user, so every chown of the root-owned sources' ids is refused.
    """
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["lakeshift.files.command"])
    uid, gid, _, _ = _nobody()
    base = Path(tempfile.mkdtemp(prefix="lakeshift-preserve-"))
    try:
        os.chmod(base, 0o777)
        src, dst = base / "src", base / "dst"
        _local_tree(src, owner=(0, gid))  # root's; nobody reads 0o640/0o750 by the group
        os.chmod(src / "sub/deep/secret.bin", 0o460)  # readable by the group, a rare mode
        # a first run as root loads every module (nobody cannot read root's Python install)
        warm = ["files", str(src), str(base / "warm"), ALL, "--local", "--no-progress"]
        assert cli.main(warm) == 0
        capsys.readouterr()
        argv = [str(src), str(dst), ALL, "--local", "--no-progress", "--json", str(base / "s.json")]
        os.setegid(gid)
        os.seteuid(uid)
        try:
            rc = cli.main(["files", *argv])
        finally:
            os.seteuid(0)
            os.setegid(0)
        out = capsys.readouterr().out
        summary = json.loads((base / "s.json").read_text())
        assert rc == 0, out
        assert summary["copied"] == 3 and summary["failed"] == 0
        assert summary["warnings"] == [
            "owner,group not preserved: changing them needs root (operation not permitted) "
            "(3 files)"
        ]
        assert out.count("WARNING owner,group not preserved") == 1
        st = os.stat(dst / "a.txt")
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_mtime_ns) == (0o640, uid, OLD_NS)
        assert stat.S_IMODE(os.stat(dst / "sub/run.sh").st_mode) == 0o750
        assert stat.S_IMODE(os.stat(dst / "sub/deep/secret.bin").st_mode) == 0o460
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_local_to_hdfs_preserve_sets_mode_owner_group_and_mtime(
    hdfs: HadoopCluster, tmp_path: Path, files_cli
) -> None:
    uid, gid, user, group = _nobody()
    src = tmp_path / "src"
    expected = _local_tree(src, owner=(uid, gid))
    dst = f"{hdfs.fs}/preserve/to-hdfs"

    rc, out, summary = files_cli(str(src), dst, ALL, "--checksum=sha256")

    assert rc == 0, out
    assert summary["copied"] == 3 and summary["warnings"] == [], out
    client = hdfs.client()
    for rel, (mode, _) in FILES.items():
        st = client.get_file_info(f"/preserve/to-hdfs/{rel}")
        assert (st.permission, st.owner, st.group) == (mode, user, group), rel
        assert st.modification_time == OLD_MS, rel
        with client.read(f"/preserve/to-hdfs/{rel}") as r:
            assert hashlib.sha256(r.read()).hexdigest() == expected[rel]

    # without --preserve: the NameNode's defaults (the client user, 0o644, now)
    rc, out, _ = files_cli(str(src), f"{hdfs.fs}/preserve/plain")
    assert rc == 0, out
    st = client.get_file_info("/preserve/plain/a.txt")
    assert (st.permission, st.owner) != (0o640, user) and st.modification_time != OLD_MS


def test_hdfs_to_local_preserve_maps_owner_and_group_by_name(
    hdfs: HadoopCluster, tmp_path: Path, files_cli
) -> None:
    uid, gid, user, group = _nobody()
    client = hdfs.client()
    data = {}
    for rel, (mode, size) in FILES.items():
        path = f"/preserve/from-hdfs/{rel}"
        data[rel] = os.urandom(size)
        with client.create(path) as w:
            w.write(data[rel])
        client.set_owner(path, user, group)
        client.set_permission(path, mode)
        client.set_times(path, OLD_MS, OLD_MS)
    ghost = "/preserve/from-hdfs/ghost.txt"  # owned by a user this machine does not have
    with client.create(ghost) as w:
        w.write(b"boo")
    client.set_owner(ghost, "no-such-user-lakeshift", group)
    dst = tmp_path / "dst"

    rc, out, summary = files_cli(f"{hdfs.fs}/preserve/from-hdfs", str(dst), ALL)

    assert rc == 0, out
    assert summary["copied"] == 4 and summary["failed"] == 0
    assert summary["warnings"] == [
        "owner not preserved: no local user named 'no-such-user-lakeshift' (1 file)"
    ]
    assert "WARNING owner not preserved: no local user named" in out
    for rel, (mode, _) in FILES.items():
        st = os.stat(dst / rel)
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (mode, uid, gid), rel
        assert st.st_mtime_ns == OLD_MS * 1_000_000, rel
        assert (dst / rel).read_bytes() == data[rel]
    st = os.stat(dst / "ghost.txt")
    assert (st.st_uid, st.st_gid) == (os.geteuid(), gid)  # owner left as is, group mapped


def _block_files(root: str) -> set[Path]:
    return {p for p in (Path(root) / "dfs" / "data").rglob("blk_*") if p.suffix != ".meta"}


def _write_hdfs(hdfs: HadoopCluster, path: str, data: bytes) -> Path:
    """Write ``path`` (one block) and return its finalized block file on the DataNode's disk."""
    before = _block_files(hdfs.root)
    with hdfs.client().create(path) as w:
        w.write(data)
    for _ in range(100):
        new = [p for p in _block_files(hdfs.root) - before if "finalized" in p.parts]
        if new:
            assert len(new) == 1, new
            return new[0]
        time.sleep(0.1)
    raise AssertionError(f"no finalized block file for {path}")


def test_missing_and_corrupt_blocks_are_reported_in_words_others_copied(
    hdfs: HadoopCluster, tmp_path: Path, files_cli
) -> None:
    good = {"ok.txt": os.urandom(5000), "dir/deep.bin": os.urandom(200_000), "zero.bin": b""}
    for rel, data in good.items():
        with hdfs.client().create(f"/corrupt/src/{rel}") as w:
            w.write(data)
    blocks = {
        rel: _write_hdfs(hdfs, f"/corrupt/src/{rel}", os.urandom(300_000))
        for rel in ("gone.bin", "truncated.bin", "flipped.bin")
    }
    blocks["gone.bin"].unlink()  # the block file and its checksums (.meta) deleted
    for meta in blocks["gone.bin"].parent.glob(blocks["gone.bin"].name + "_*.meta"):
        meta.unlink()
    os.truncate(blocks["truncated.bin"], 1000)
    with open(blocks["flipped.bin"], "r+b") as fh:  # one bit-rotted byte: a checksum error
        fh.seek(5000)
        byte = fh.read(1)
        fh.seek(5000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    dst = tmp_path / "dst"

    rc, out, summary = files_cli(f"{hdfs.fs}/corrupt/src", str(dst), "--retries=1")

    assert rc == 1, out
    failed = {f["path"]: f["reason"] for f in summary["failed_files"]}  # type: ignore[union-attr]
    assert sorted(failed) == ["flipped.bin", "gone.bin", "truncated.bin"], out
    for rel, reason in failed.items():
        assert reason.endswith(f": SRC/{rel}"), reason
        assert "missing block" in reason or "missing or corrupt block" in reason, reason
        assert "DatanodeInfoProto" not in reason and "Error" not in reason, reason  # words
        assert f"FAILED {rel}: " in out
        assert not (dst / rel).exists()
    assert (summary["copied"], summary["failed"]) == (3, 3)
    for rel, data in good.items():
        assert hashlib.sha256((dst / rel).read_bytes()).digest() == hashlib.sha256(data).digest()
    assert not any(p.name.endswith(".part") for p in dst.rglob("*"))

    # a rerun tries the damaged files again (never recorded as copied) and only them
    rc, out, again = files_cli(f"{hdfs.fs}/corrupt/src", str(dst), "--retries=0")
    assert rc == 1 and (again["copied"], again["failed"], again["unchanged"]) == (0, 3, 3), out
