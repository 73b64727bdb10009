"""lakeshift files end to end on real filesystems: local disk and SeaweedFS's S3 on loopback.

Every check compares SHA-256 digests computed here with hashlib, independently of lakeshift.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lakeshift import cli
from lakeshift.errors import UsageError
from lakeshift.files import copier
from lakeshift.files.config import FilesConfig
from lakeshift.files.runner import run_files
from tests.integration.files_tree import AWKWARD, EMPTY_DIRS, make_tree, sha_tree
from tests.s3_server import s3_server  # noqa: F401


def _cfg(src: Path | str, dst: Path | str, **kw: object) -> FilesConfig:
    base: dict[str, object] = {"src": str(src), "dst": str(dst), "local": True, "progress": False}
    base.update(kw)
    return FilesConfig(**base)  # type: ignore[arg-type]


def _manifest(dst: Path) -> dict[str, dict[str, object]]:
    versions = sorted((dst / "_lakeshift_files" / "manifest").glob("v-*.parquet"))
    rows = pq.read_table(versions[-1]).to_pylist()
    return {r["rel"]: r for r in rows}


@pytest.fixture
def hook() -> Iterator[None]:
    yield
    copier.set_test_hook(None)


def test_local_copy_awkward_tree_verified_then_rerun_copies_nothing(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    expected = make_tree(src)

    first = run_files(_cfg(src, dst, checksum="md5"))

    assert sha_tree(dst) == expected
    for d in EMPTY_DIRS:
        assert (dst / d).is_dir()
    assert (first.copied, first.failed, first.empty_dirs) == (len(AWKWARD), 0, len(EMPTY_DIRS))
    assert first.copied_bytes == sum((src / r).stat().st_size for r in AWKWARD)
    rows = _manifest(dst)
    assert set(rows) == set(AWKWARD)
    for rel, row in rows.items():
        assert row["status"] == "verified"
        assert row["checksum"] == hashlib.md5((src / rel).read_bytes()).hexdigest()
    assert not (dst / ".lakeshift-tmp").exists()

    second = run_files(_cfg(src, dst, checksum="md5"))
    assert (second.copied, second.adopted, second.unchanged) == (0, 0, len(AWKWARD))
    assert sha_tree(dst) == expected


def test_rerun_copies_only_new_and_changed(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src)
    run_files(_cfg(src, dst))
    (src / "plain.txt").write_bytes(b"changed and longer than before" * 10)
    (src / "brand new.txt").write_bytes(b"new")
    touched = src / "a/b/c/d/e/nested.csv"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))

    again = run_files(_cfg(src, dst))

    # touched: same bytes, new mtime -> checked and adopted, not rewritten
    assert (again.copied, again.adopted, again.failed) == (2, 1, 0)
    assert again.unchanged == len(AWKWARD) - 2
    assert sha_tree(dst) == sha_tree(src)


def test_update_skips_identical_targets(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src)
    (dst / "with space").mkdir(parents=True)
    (dst / "with space/file name.txt").write_bytes((src / "with space/file name.txt").read_bytes())
    same_size = bytearray((src / "plain.txt").read_bytes())
    same_size[0] ^= 0xFF
    (dst / "plain.txt").write_bytes(bytes(same_size))

    s = run_files(_cfg(src, dst, update=True))

    assert (s.adopted, s.copied, s.failed) == (1, len(AWKWARD) - 1, 0)
    assert sha_tree(dst) == sha_tree(src)


def test_delete_dry_run_then_delete(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src)
    run_files(_cfg(src, dst))
    (dst / "stale").mkdir()
    (dst / "stale/old.log").write_bytes(b"old")
    (src / "plain.txt").unlink()

    dry = run_files(_cfg(src, dst, delete=True, dry_run=True))
    assert sorted(dry.deleted_files) == ["plain.txt", "stale/old.log"]
    assert (dst / "stale/old.log").exists() and (dst / "plain.txt").exists()

    real = run_files(_cfg(src, dst, delete=True))
    assert real.deleted == 2
    assert sha_tree(dst) == sha_tree(src)
    assert "plain.txt" not in _manifest(dst)


def test_dry_run_on_fresh_target_writes_nothing(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src)
    s = run_files(_cfg(src, dst, dry_run=True, delete=True))
    assert (s.planned_files, s.copied, s.deleted) == (len(AWKWARD), 0, 0)
    assert "would copy 8 files" in s.report()
    assert not dst.exists()


def test_filters_blacklist_and_preserve(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for rel in ["keep/a.log", "keep/b.tmp", "keep/c.txt", "live/now.log"]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(rel.encode())
    old = 1_600_000_000_123_456_789
    os.utime(src / "keep/a.log", ns=(old, old))

    s = run_files(
        _cfg(
            src,
            dst,
            include=["*.log", "*.tmp"],
            exclude=["*.tmp"],
            blacklist=["live"],
            preserve=True,
        )
    )

    assert sorted(sha_tree(dst)) == ["keep/a.log"]
    assert (s.excluded, s.blacklisted, s.blacklisted_files) == (2, 1, ["live/now.log"])
    assert (dst / "keep/a.log").stat().st_mtime_ns == old


def test_file_changing_during_copy_is_detected_and_recopied(tmp_path: Path, hook: None) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src)
    grows, always = src / "sizes/one_chunk.bin", src / "plain.txt"
    fired: set[str] = set()
    calls: list[int] = []

    def change(rel: str, nbytes: int) -> None:
        if rel == "sizes/one_chunk.bin" and rel not in fired:
            fired.add(rel)  # append once, while the first chunk is in flight
            with open(grows, "ab") as fh:
                fh.write(b"appended during copy")
        if rel == "plain.txt":  # changes on every attempt (every other chunk: reads end)
            calls.append(nbytes)
            if len(calls) % 2:
                with open(always, "ab") as fh:
                    fh.write(b"x")

    copier.set_test_hook(change)
    s = run_files(_cfg(src, dst, chunk_bytes=64 * 1024, retries=2))

    assert sha_tree(dst)["sizes/one_chunk.bin"] == hashlib.sha256(grows.read_bytes()).hexdigest()
    assert grows.read_bytes().endswith(b"appended during copy")
    assert s.failed == 1
    assert s.failed_files[0]["path"] == "plain.txt"
    assert "changed during copy" in s.failed_files[0]["reason"]
    assert not (dst / "plain.txt").exists()  # never silently wrong
    assert _manifest(dst)["plain.txt"]["status"] == "failed"


def test_file_deleted_during_copy_is_reported_vanished(tmp_path: Path, hook: None) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    expected = make_tree(src)
    victim = "sizes/one_chunk.bin"

    def remove(rel: str, nbytes: int) -> None:
        if rel == victim:
            (src / victim).unlink(missing_ok=True)

    copier.set_test_hook(remove)
    s = run_files(_cfg(src, dst, chunk_bytes=64 * 1024))

    assert [(f["path"], f["reason"]) for f in s.failed_files] == [
        (victim, f"vanished from source: SRC/{victim}")
    ]
    expected.pop(victim)
    assert sha_tree(dst) == expected


def test_bandwidth_cap_is_honoured(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for i in range(4):
        (src / f"f{i}.bin").write_bytes(os.urandom(512 * 1024))
    start = time.monotonic()
    s = run_files(_cfg(src, dst, bandwidth_mb=2.0, workers=2))
    elapsed = time.monotonic() - start
    # 2 MiB at 2 MiB/s shared by 2 concurrent tasks (buckets start empty): >= 1 s
    assert elapsed >= 0.95
    assert s.copied == 4
    assert sha_tree(dst) == sha_tree(src)


def test_cli_exit_codes_and_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["lakeshift.files.command"])
    src = tmp_path / "in" / "2026-03-01"
    src.mkdir(parents=True)
    (src / "x.txt").write_bytes(b"x")
    out = tmp_path / "summary.json"
    rc = cli.main(
        [
            "files",
            str(tmp_path / "in/${ds}"),
            str(tmp_path / "out"),
            "--local",
            "--run-date",
            "2026-03-01",
            "--json",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    import json

    summary = json.loads(out.read_text())
    assert (summary["copied"], summary["failed"]) == (1, 0)
    assert (tmp_path / "out/x.txt").read_bytes() == b"x"
    assert cli.main(["files", str(src), str(src / "sub"), "--local"]) == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["files", str(src), str(tmp_path / "o2"), "--checksum", "crc64"])
    assert exc.value.code == 2
    assert cli.main(["files", str(tmp_path / "missing"), str(tmp_path / "o3"), "--local"]) == 2
    assert "source folder not found: " in capsys.readouterr().err


def test_local_to_s3_and_back(tmp_path: Path, s3_server, monkeypatch: pytest.MonkeyPatch) -> None:

    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    s3 = s3_server.client()
    s3.create_bucket(Bucket="lake")
    src, back = tmp_path / "src", tmp_path / "back"
    expected = make_tree(src)

    # 64 KiB buffers: small files take the single-PUT path, the 300 KB file the staged copy
    up = run_files(_cfg(src, "s3://lake/raw/files", threads=2, chunk_bytes=64 * 1024))
    assert (up.copied, up.failed) == (len(AWKWARD), 0)
    for rel, digest in expected.items():
        body = s3.get_object(Bucket="lake", Key=f"raw/files/{rel}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == digest
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lake", Prefix="raw/files/")["Contents"]]
    assert not [k for k in keys if ".lakeshift-tmp" in k]

    again = run_files(_cfg(src, "s3://lake/raw/files"))
    assert (again.copied, again.unchanged) == (0, len(AWKWARD))

    down = run_files(_cfg("s3://lake/raw/files", back, checksum="sha256"))
    assert (down.copied, down.failed) == (len(AWKWARD), 0)
    assert sha_tree(back) == expected
    for d in EMPTY_DIRS:
        assert (back / d).is_dir()


def test_spark_executors_copy(tmp_path: Path, spark) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    expected = make_tree(src)

    s = run_files(_cfg(src, dst, local=False, executor="spark", threads=2), spark)

    assert s.mode == "spark"
    assert (s.copied, s.failed) == (len(AWKWARD), 0)
    assert sha_tree(dst) == expected


@pytest.mark.timeout(120)
@pytest.mark.parametrize("target", ["local", "concat"])
def test_file_growing_without_end_is_reported_not_read_forever(
    tmp_path: Path, hook: None, target: str
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "logs").mkdir(parents=True)
    live = src / "logs/live.log"
    live.write_bytes(b"line\n" * 1000)
    (src / "logs/done.log").write_bytes(b"done\n")

    def grow(rel: str, nbytes: int) -> None:  # a writer appending faster than the copy reads
        if rel == "logs/live.log":
            with open(live, "ab") as fh:
                fh.write(b"more\n" * 2000)

    copier.set_test_hook(grow)
    extra = {"concat": r"(logs)/.*\.log"} if target == "concat" else {}
    s = run_files(_cfg(src, dst, chunk_bytes=4096, retries=1, **extra))

    assert "logs/live.log" in [f["path"] for f in s.failed_files]
    assert (
        "changed during copy"
        in dict((f["path"], f["reason"]) for f in s.failed_files)["logs/live.log"]
    )
    assert not (dst / "logs/live.log").exists()


def test_executor_auto_uses_processes_on_a_local_master(tmp_path: Path, spark) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    expected = make_tree(src)

    s = run_files(_cfg(src, dst, local=False), spark)  # the test session's master is local

    assert (s.mode, s.copied, s.failed) == ("processes", len(AWKWARD), 0)
    assert sha_tree(dst) == expected
    assert {"list", "plan", "manifest", "copy", "finish", "task_sum"} <= set(s.phases)
    with pytest.raises(UsageError, match="executor 'spark' needs a Spark session"):
        run_files(_cfg(src, tmp_path / "other", local=False, executor="spark"))


def test_cli_auto_on_local_master_starts_no_spark_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import lakeshift.spark

    def no_session(*_a: object, **_k: object) -> None:
        raise AssertionError("a Spark session was started")

    monkeypatch.setattr(cli, "COMMAND_MODULES", ["lakeshift.files.command"])
    monkeypatch.setattr(lakeshift.spark, "session", no_session)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a b.txt").write_bytes(b"hello")
    out = tmp_path / "s.json"
    argv = ["files", str(src), str(tmp_path / "dst"), "--master", "local[2]", "--no-progress"]
    assert cli.main([*argv, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["mode"] == "processes"
    assert (tmp_path / "dst/a b.txt").read_bytes() == b"hello"
    with pytest.raises(AssertionError, match="Spark session was started"):
        cli.main([*argv, "--executor", "spark"])


def test_processes_never_rerun_an_unguarded_script(tmp_path: Path) -> None:
    """Worker processes are fresh ``-m lakeshift.files.worker`` interpreters: a caller script
    without a ``__main__`` guard runs once (multiprocessing's spawn would run it again)."""
    import subprocess
    import sys

    src, dst = tmp_path / "src", tmp_path / "dst"
    expected = make_tree(src)
    marker = tmp_path / "ran.txt"
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from lakeshift.files.config import FilesConfig\n"
        "from lakeshift.files.runner import run_files\n"
        f"open({str(marker)!r}, 'a').write('ran\\n')\n"
        f"s = run_files(FilesConfig(src={str(src)!r}, dst={str(dst)!r}, progress=False,"
        " workers=2, task_files=3))\n"
        "print(s.mode, s.tasks, s.copied, s.failed)\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=False, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    mode, tasks, copied, failed = out.stdout.split()
    assert (mode, copied, failed) == ("processes", str(len(AWKWARD)), "0")
    assert int(tasks) >= 2
    assert marker.read_text() == "ran\n"
    assert sha_tree(dst) == expected


def test_processes_report_a_failing_task(tmp_path: Path) -> None:
    from lakeshift.files import worker
    from lakeshift.files.copier import CopyContext
    from lakeshift.files.plan import Task

    ctx = CopyContext(src=str(tmp_path), dst=str(tmp_path / "d"), state="bogus://x", run_id="r")
    with pytest.raises(RuntimeError, match=r"task 7: UsageError: .*bogus://x"):
        worker.run_tasks(ctx, [Task(7, [])], 2)


def test_preserve_with_s3_on_either_side_says_once_what_is_not_kept(
    tmp_path: Path, s3_server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["lakeshift.files.command"])
    bucket = s3_server.bucket("preserve-notes")
    src, back = tmp_path / "src", tmp_path / "back"
    expected = make_tree(src)
    up, down = tmp_path / "up.json", tmp_path / "down.json"
    common = ["--local", "--no-progress", "--preserve=perms,owner,group,times", "--json"]

    assert cli.main(["files", str(src), f"s3a://{bucket}/p", *common, str(up)]) == 0
    assert cli.main(["files", f"s3://{bucket}/p", str(back), *common, str(down)]) == 0

    out = capsys.readouterr().out
    assert json.loads(up.read_text())["warnings"] == [
        "perms,owner,group,times not preserved: s3a target holds no permissions, owners, groups "
        "or settable modification times"
    ]
    assert json.loads(down.read_text())["warnings"] == [
        "perms,owner,group not preserved: s3 source holds no permissions, owners or groups"
    ]
    assert out.count("WARNING perms,owner,group") == 2
    assert sha_tree(back) == expected
    # times do come back from S3 (whole seconds of the objects' LastModified)
    head = s3_server.client().head_object(Bucket=bucket, Key="p/plain.txt")
    assert (back / "plain.txt").stat().st_mtime_ns == int(head["LastModified"].timestamp()) * 10**9
