"""``lakeshift files`` as a mirror: ``--update`` decided by the target, ``--verify``/``--repair``,
``--delete`` of folders, and the special-file policy, on real files (and SeaweedFS's S3).

Every check compares bytes with SHA-256 digests computed here (``sha_tree``), or reads the
target with ``os``/boto3 directly; never with lakeshift's own checksums.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakeshift import cli
from lakeshift.files.config import FilesConfig
from lakeshift.files.runner import run_files
from tests.integration.files_tree import AWKWARD, EMPTY_DIRS, make_tree, sha_tree
from tests.s3_server import s3_server  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
NO_DAC = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"]
TRUNCATED, DELETED, FLIPPED = "plain.txt", "with space/file name.txt", "sizes/one_chunk.bin"


def _cfg(src: Path | str, dst: Path | str, **kw: object) -> FilesConfig:
    base: dict[str, object] = {"src": str(src), "dst": str(dst), "local": True, "progress": False}
    base.update(kw)
    return FilesConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
def files_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path):
    """Run ``lakeshift files ARGS --local --no-progress --json``; (exit code, stdout, JSON)."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["lakeshift.files.command"])
    counter = iter(range(1000))

    def run(*argv: str) -> tuple[int, str, dict[str, object]]:
        out = tmp_path / f"summary-{next(counter)}.json"
        rc = cli.main(["files", *argv, "--local", "--no-progress", "--json", str(out)])
        text = capsys.readouterr().out
        return rc, text, json.loads(out.read_text()) if out.exists() else {}

    return run


def _flip_one_byte_keep_mtime(path: Path) -> None:
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime as before


def _damage(dst: Path) -> None:
    """A truncated, a deleted and a bit-flipped (same size, same mtime) target file."""
    t = dst / TRUNCATED
    st = t.stat()
    with open(t, "r+b") as fh:
        fh.truncate(st.st_size // 2)
    (dst / DELETED).unlink()
    _flip_one_byte_keep_mtime(dst / FLIPPED)


# ---------------------------------------------------------------------------------------------
# 1. --update decides from the target; --verify names every difference


def test_rerun_after_damage_verify_names_all_three_then_update_restores(
    tmp_path: Path, files_cli
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    expected = make_tree(src)
    rc, _, first = files_cli(str(src), str(dst))
    assert rc == 0 and first["copied"] == len(AWKWARD)
    _damage(dst)

    rc, out, ver = files_cli(str(src), str(dst), "--verify")
    assert rc == 1, out
    assert ver["missing_files"] == [DELETED]
    assert [f["path"] for f in ver["differing_files"]] == [TRUNCATED, FLIPPED]
    assert "size differs" in ver["differing_files"][0]["reason"]
    assert "content differs" in ver["differing_files"][1]["reason"]
    assert (ver["extra"], ver["missing"], ver["differing"]) == (0, 1, 2)
    for line in (f"MISSING {DELETED}", f"DIFFERS {TRUNCATED}: ", f"DIFFERS {FLIPPED}: "):
        assert line in out, out
    assert sha_tree(dst) != expected  # --verify wrote nothing

    rc, out, upd = files_cli(str(src), str(dst), "--update")
    assert rc == 0, out
    assert sha_tree(dst) == expected
    assert (upd["copied"], upd["failed"]) == (3, 0)
    assert upd["unchanged"] == len(AWKWARD) - 3  # the manifest + unchanged target stamps

    rc, out, again = files_cli(str(src), str(dst), "--verify")
    assert rc == 0, out
    assert (again["missing"], again["extra"], again["differing"]) == (0, 0, 0)
    assert again["compared"] == len(AWKWARD)


def test_update_checks_unproven_targets_by_checksum(tmp_path: Path) -> None:
    """A target not written by lakeshift (no manifest): same bytes adopted, others copied."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    expected = make_tree(src)
    dst.mkdir()
    (dst / "plain.txt").write_bytes((src / "plain.txt").read_bytes())
    other = dst / "zero"
    other.mkdir()
    (other / "empty.bin").write_bytes(b"")
    same_size = bytearray((src / "a/b/c/d/e/nested.csv").read_bytes())
    same_size[0] ^= 0xFF
    (dst / "a/b/c/d/e").mkdir(parents=True)
    (dst / "a/b/c/d/e/nested.csv").write_bytes(bytes(same_size))

    s = run_files(_cfg(src, dst, update=True))

    assert sha_tree(dst) == expected
    assert (s.adopted, s.copied, s.failed) == (2, len(AWKWARD) - 2, 0)


@pytest.mark.parametrize("update", [False, True])
def test_rewrite_with_restored_mtime_is_found_by_ctime(tmp_path: Path, update: bool) -> None:
    """Same size, mtime restored (``touch -r``): the ctime moved, so the source is re-read."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src)
    run_files(_cfg(src, dst))
    _flip_one_byte_keep_mtime(src / FLIPPED)  # rewritten, size and mtime as before
    (src / "plain.txt").chmod(0o600)  # status change only: bytes are the same
    inode = (dst / "plain.txt").stat().st_ino

    s = run_files(_cfg(src, dst, update=update))

    assert sha_tree(dst) == sha_tree(src)
    assert (s.copied, s.checked, s.failed) == (1, 1, 0)
    assert s.unchanged == len(AWKWARD) - 2
    assert (dst / "plain.txt").stat().st_ino == inode  # checked: not rewritten
    again = run_files(_cfg(src, dst, update=update))
    assert (again.copied, again.checked, again.unchanged) == (0, 0, len(AWKWARD))


def test_checksum_always_rereads_every_source_file(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src)
    run_files(_cfg(src, dst))
    # a rewrite whose ctime cannot be told apart: same size, mtime and (faked) manifest ctime
    s = run_files(_cfg(src, dst, checksum_always=True))
    assert (s.checked, s.copied, s.unchanged) == (len(AWKWARD), 0, 0)


def test_verify_repair_and_delete_make_an_exact_mirror(tmp_path: Path, files_cli) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    expected = make_tree(src)
    files_cli(str(src), str(dst))
    _damage(dst)
    (dst / "extra dir/sub").mkdir(parents=True)
    (dst / "extra dir/sub/stray.bin").write_bytes(b"not in the source")
    (dst / "stray.txt").write_bytes(b"nor this")

    rc, out, rep = files_cli(str(src), str(dst), "--verify", "--repair")
    assert rc == 1, out  # the extras are still there: no --delete
    assert (rep["missing"], rep["differing"], rep["extra"]) == (1, 2, 4)
    assert rep["extra_files"] == [
        "extra dir/",
        "extra dir/sub/",
        "extra dir/sub/stray.bin",
        "stray.txt",
    ]
    assert rep["copied"] == 3
    assert {k: v for k, v in sha_tree(dst).items() if "stray" not in k} == expected

    rc, out, rep = files_cli(str(src), str(dst), "--verify", "--repair", "--delete")
    assert rc == 0, out
    assert rep["deleted_files"] == ["extra dir/sub/stray.bin", "stray.txt"]
    assert rep["deleted_dirs"] == ["extra dir/sub", "extra dir"]
    assert sha_tree(dst) == expected
    assert not (dst / "extra dir").exists()
    rc, _, final = files_cli(str(src), str(dst), "--verify")
    assert rc == 0 and (final["missing"], final["extra"], final["differing"]) == (0, 0, 0)


@pytest.fixture
def s3(s3_server, monkeypatch: pytest.MonkeyPatch):

    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server.client()


def _s3_sha(s3, bucket: str, prefix: str) -> dict[str, str]:
    import hashlib

    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            rel = o["Key"][len(prefix) :]
            if not rel or rel.startswith("_lakeshift_files/") or rel.endswith("/"):
                continue
            body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            out[rel] = hashlib.sha256(body).hexdigest()
    return out


def test_s3_mirror_damage_verify_then_update(tmp_path: Path, s3, files_cli) -> None:
    s3.create_bucket(Bucket="mirror")
    src = tmp_path / "src"
    expected = make_tree(src)
    dst = "s3://mirror/copy"
    rc, _, _ = files_cli(str(src), dst, "--chunk-size", "64KB")
    assert rc == 0
    assert _s3_sha(s3, "mirror", "copy/") == expected
    body = s3.get_object(Bucket="mirror", Key=f"copy/{FLIPPED}")["Body"].read()
    flipped = bytearray(body)
    flipped[len(flipped) // 2] ^= 0x01
    s3.put_object(Bucket="mirror", Key=f"copy/{FLIPPED}", Body=bytes(flipped))  # same size
    s3.put_object(Bucket="mirror", Key=f"copy/{TRUNCATED}", Body=b"short")
    s3.delete_object(Bucket="mirror", Key=f"copy/{DELETED}")
    s3.put_object(Bucket="mirror", Key="copy/stray.txt", Body=b"extra")

    rc, out, ver = files_cli(str(src), dst, "--verify")
    assert rc == 1
    assert ver["missing_files"] == [DELETED]
    assert [f["path"] for f in ver["differing_files"]] == [TRUNCATED, FLIPPED]
    assert ver["extra_files"] == ["stray.txt"]

    rc, out, upd = files_cli(str(src), dst, "--update", "--delete", "--chunk-size", "64KB")
    assert rc == 0, out
    assert (upd["copied"], upd["deleted"]) == (3, 1)
    assert _s3_sha(s3, "mirror", "copy/") == expected
    rc, _, again = files_cli(str(src), dst, "--verify")
    assert rc == 0 and again["compared"] == len(AWKWARD)


# ---------------------------------------------------------------------------------------------
# 2. --delete removes folders too (never the state folder) and names what it removed


def test_delete_removes_folders_gone_from_source(tmp_path: Path, files_cli) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src)
    (src / "keepme/logs").mkdir(parents=True)
    (src / "keepme/logs/a.tmp").write_bytes(b"excluded, and kept on the target")
    rc, _, _ = files_cli(str(src), str(dst))
    assert rc == 0
    (dst / "keepme/logs").mkdir(parents=True, exist_ok=True)
    (dst / "keepme/logs/a.tmp").write_bytes(b"excluded, and kept on the target")
    for rel in ("a", "empty_dir", "nested", "keepme"):  # whole trees gone from the source
        subprocess.run(["rm", "-rf", str(src / rel)], check=True)

    rc, out, dry = files_cli(str(src), str(dst), "--delete", "--dry-run", "--exclude", "*.tmp")
    assert rc == 0
    assert dry["deleted_files"] == ["a/b/c/d/e/nested.csv"]
    assert dry["deleted_dirs"] == [  # deepest first: the order they are removed in
        "a/b/c/d/e",
        "a/b/c/d",
        "a/b/c",
        "nested/empty/leaf",
        "a/b",
        "nested/empty",
        "a",
        "empty_dir",
        "nested",
    ]
    assert "WOULD DELETE a/b/c/d/e/nested.csv" in out and "WOULD DELETE a/" in out
    assert (dst / "a/b/c/d/e/nested.csv").exists() and (dst / "empty_dir").is_dir()

    rc, out, real = files_cli(str(src), str(dst), "--delete", "--exclude", "*.tmp")
    assert rc == 0
    assert real["deleted_dirs"] == dry["deleted_dirs"]
    assert "DELETED nested/empty/leaf/" in out
    for rel in ("a", "empty_dir", "nested"):
        assert not (dst / rel).exists()
    assert (dst / "keepme/logs/a.tmp").exists()  # an excluded file keeps its folders
    assert (dst / "_lakeshift_files/manifest").is_dir()
    assert sha_tree(dst) == {
        **sha_tree(src),
        "keepme/logs/a.tmp": sha_tree(dst)["keepme/logs/a.tmp"],
    }


def test_delete_keeps_a_state_folder_inside_the_target(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src)
    state = dst / "meta/state"
    run_files(_cfg(src, dst, state=str(state)))
    s = run_files(_cfg(src, dst, state=str(state), delete=True))
    assert (s.deleted, s.deleted_dirs) == (0, [])
    assert (state / "manifest").is_dir()


def test_delete_removes_empty_folder_markers_on_s3(tmp_path: Path, s3) -> None:
    s3.create_bucket(Bucket="delfolders")
    src = tmp_path / "src"
    make_tree(src)
    run_files(_cfg(src, "s3://delfolders/t"))
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="delfolders")["Contents"]}
    assert "t/empty_dir/" in keys
    (src / "empty_dir").rmdir()

    s = run_files(_cfg(src, "s3://delfolders/t", delete=True))

    assert s.deleted_dirs == ["empty_dir"]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="delfolders")["Contents"]}
    assert "t/empty_dir/" not in keys and "t/nested/empty/leaf/" in keys


# ---------------------------------------------------------------------------------------------
# 3. special files


@pytest.fixture
def special(tmp_path: Path) -> Iterator[Path]:
    """A source with a valid link, a folder link, a broken link, a loop, a FIFO, a socket."""
    src = tmp_path / "src"
    make_tree(src)
    (src / "links").mkdir()
    (src / "links/to_plain").symlink_to("../plain.txt")
    (src / "links/to_dir").symlink_to("../a/b")
    (src / "links/broken").symlink_to("../nowhere.bin")
    (src / "links/loop").symlink_to("..")
    os.mkfifo(src / "pipe.fifo")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(src / "listen.sock"))
    try:
        yield src
    finally:
        sock.close()


@pytest.mark.timeout(120)
def test_follow_copies_link_targets_reports_broken_and_never_opens_fifos(
    special: Path, tmp_path: Path, files_cli
) -> None:
    dst = tmp_path / "dst"

    rc, out, s = files_cli(str(special), str(dst))

    assert rc == 1, out  # the broken link cannot be followed
    assert s["failed_files"] == [
        {
            "path": "links/broken",
            "reason": "broken symlink -> ../nowhere.bin (nothing to follow; see --symlinks)",
        }
    ]
    assert s["skipped"] == [
        {"path": "links/loop", "reason": "symlink loop -> .. (its folder is copied above it)"},
        {"path": "listen.sock", "reason": "socket (never opened)"},
        {"path": "pipe.fifo", "reason": "fifo (never opened)"},
    ]
    assert "SKIPPED pipe.fifo: fifo (never opened)" in out
    copied = sha_tree(dst)
    assert copied["links/to_plain"] == copied["plain.txt"]
    assert copied["links/to_dir/c/d/e/nested.csv"] == copied["a/b/c/d/e/nested.csv"]
    assert not (dst / "links/to_plain").is_symlink()
    for rel in AWKWARD:
        assert rel in copied
    assert not (dst / "pipe.fifo").exists() and not (dst / "listen.sock").exists()


@pytest.mark.timeout(120)
def test_preserve_copies_links_as_links(special: Path, tmp_path: Path, files_cli) -> None:
    dst = tmp_path / "dst"

    rc, out, s = files_cli(str(special), str(dst), "--symlinks", "preserve")

    assert rc == 0, out
    for name, text in [
        ("to_plain", "../plain.txt"),
        ("to_dir", "../a/b"),
        ("broken", "../nowhere.bin"),
        ("loop", ".."),
    ]:
        assert os.readlink(dst / "links" / name) == text
    assert [f["path"] for f in s["skipped"]] == ["listen.sock", "pipe.fifo"]
    copied = sha_tree(dst, skip=("_lakeshift_files", "links"))
    assert copied == make_tree(tmp_path / "again")  # the same seed: the same bytes
    rc, _, again = files_cli(str(special), str(dst), "--symlinks", "preserve", "--update")
    assert rc == 0 and again["copied"] == 0 and again["unchanged"] == len(AWKWARD) + 4
    os.unlink(dst / "links/to_plain")
    os.symlink("elsewhere", dst / "links/to_plain")
    rc, out, ver = files_cli(str(special), str(dst), "--symlinks", "preserve", "--verify")
    assert rc == 1
    assert ver["differing_files"] == [
        {
            "path": "links/to_plain",
            "reason": "symlink -> ../plain.txt expected, found symlink -> elsewhere",
        }
    ]


@pytest.mark.timeout(120)
def test_skip_reports_every_link(special: Path, tmp_path: Path, files_cli) -> None:
    rc, out, s = files_cli(str(special), str(tmp_path / "dst"), "--symlinks", "skip")
    assert rc == 0, out
    skipped = {f["path"]: f["reason"] for f in s["skipped"]}
    assert skipped["links/to_plain"] == "symlink -> ../plain.txt (--symlinks skip)"
    assert set(skipped) == {
        "links/to_plain",
        "links/to_dir",
        "links/broken",
        "links/loop",
        "pipe.fifo",
        "listen.sock",
    }
    assert not (tmp_path / "dst/links").exists()


@pytest.mark.timeout(120)
def test_preserve_to_s3_skips_links_with_a_report(special: Path, s3, files_cli) -> None:
    s3.create_bucket(Bucket="links")
    rc, out, s = files_cli(str(special), "s3://links/x", "--symlinks", "preserve")
    assert rc == 0, out
    skipped = {f["path"]: f["reason"] for f in s["skipped"]}
    assert skipped["links/to_plain"] == (
        "symlink -> ../plain.txt (the target store cannot hold symlinks)"
    )
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="links")["Contents"]}
    assert not [k for k in keys if k.startswith("x/links/")]
    assert f"x/{AWKWARD[0]}" in keys


def test_unreadable_file_and_folder_fail_in_words_rest_is_copied(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    expected = make_tree(src)
    (src / "secret.bin").write_bytes(b"no access")
    (src / "secret.bin").chmod(0o000)
    (src / "closed/inner").mkdir(parents=True)
    (src / "closed/inner/x.txt").write_bytes(b"x")
    (src / "closed").chmod(0o000)
    out = tmp_path / "s.json"
    try:
        argv = [sys.executable, "-m", "lakeshift.cli", "files", str(src), str(dst), "--local"]
        proc = subprocess.run(
            [*NO_DAC, *argv, "--no-progress", "--json", str(out)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    finally:
        (src / "secret.bin").chmod(0o644)
        (src / "closed").chmod(0o755)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    s = json.loads(out.read_text())
    assert s["failed_files"] == [
        {"path": "closed", "reason": "cannot list folder: permission denied"},
        {"path": "secret.bin", "reason": "permission denied: SRC/secret.bin"},
    ]
    assert "Traceback" not in proc.stderr
    got = sha_tree(dst)
    assert {k: got[k] for k in expected} == expected
    for d in EMPTY_DIRS:
        assert (dst / d).is_dir()
