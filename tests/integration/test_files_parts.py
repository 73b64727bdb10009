"""Range-split copies of large files: S3 multipart uploads (SeaweedFS) and local ranges.

Digests are computed here with hashlib / google_crc32c over the files' bytes, never with
lakeshift's own checksum code.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import google_crc32c
import pyarrow.parquet as pq
import pytest

from lakeshift.files import copier
from lakeshift.files.config import FilesConfig
from lakeshift.files.runner import run_files
from tests.integration.files_tree import sha_tree
from tests.s3_server import s3_server  # noqa: F401

MIB = 1 << 20


def _cfg(src: Path | str, dst: Path | str, **kw: object) -> FilesConfig:
    base: dict[str, object] = {"src": str(src), "dst": str(dst), "local": True, "progress": False}
    base.update(kw)
    return FilesConfig(**base)  # type: ignore[arg-type]


def _manifest(state: Path) -> dict[str, dict[str, object]]:
    versions = sorted((state / "manifest").glob("v-*.parquet"))
    return {r["rel"]: r for r in pq.read_table(versions[-1]).to_pylist()}


@pytest.fixture
def hook() -> Iterator[None]:
    yield
    copier.set_test_hook(None)


@pytest.fixture
def s3(s3_server, monkeypatch: pytest.MonkeyPatch):

    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    client = s3_server.client()
    return client


def _big_tree(src: Path) -> dict[str, bytes]:
    data = {
        "big/eleven.bin": os.urandom(11 * MIB + 12345),  # 3 parts of 5 MiB (last is short)
        "big/exact.bin": os.urandom(10 * MIB),  # exactly 2 parts
        "small.txt": b"small file, one PUT\n",
    }
    for rel, body in data.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(body)
    return data


def test_s3_multipart_upload_parts_in_parallel(tmp_path: Path, s3) -> None:
    s3.create_bucket(Bucket="mpart")
    src = tmp_path / "src"
    data = _big_tree(src)

    s = run_files(
        _cfg(src, "s3://mpart/raw", split_bytes=5 * MIB, part_bytes=5 * MIB, threads=3),
    )

    assert (s.copied, s.failed) == (3, 0), s.failed_files
    for rel, body in data.items():
        got = s3.get_object(Bucket="mpart", Key=f"raw/{rel}")["Body"].read()
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(body).hexdigest()
    # a multipart object's ETag ends in -<parts>
    assert s3.head_object(Bucket="mpart", Key="raw/big/eleven.bin")["ETag"].endswith('-3"')
    assert s3.head_object(Bucket="mpart", Key="raw/big/exact.bin")["ETag"].endswith('-2"')
    assert "-" not in s3.head_object(Bucket="mpart", Key="raw/small.txt")["ETag"]
    assert s3.list_multipart_uploads(Bucket="mpart").get("Uploads", []) == []
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="mpart")["Contents"]]
    assert not [k for k in keys if ".lakeshift-tmp" in k]
    # CRC32C of the parts combines to the whole file's CRC32C
    back = tmp_path / "back"
    down = run_files(_cfg("s3://mpart/raw", back))
    assert down.failed == 0
    assert sha_tree(back) == sha_tree(src)


def test_s3_multipart_source_change_aborts_then_retries(tmp_path: Path, s3, hook: None) -> None:
    s3.create_bucket(Bucket="mpchange")
    src = tmp_path / "src"
    _big_tree(src)
    grows = src / "big/eleven.bin"
    fired: list[int] = []

    def change(rel: str, nbytes: int) -> None:
        if rel == "big/eleven.bin" and not fired:
            fired.append(nbytes)
            with open(grows, "ab") as fh:
                fh.write(b"appended while the parts were uploading")

    copier.set_test_hook(change)
    s = run_files(_cfg(src, "s3://mpchange/x", split_bytes=5 * MIB, part_bytes=5 * MIB))

    assert s.failed == 0 and fired
    body = s3.get_object(Bucket="mpchange", Key="x/big/eleven.bin")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(grows.read_bytes()).hexdigest()
    assert s3.list_multipart_uploads(Bucket="mpchange").get("Uploads", []) == []


def test_s3_multipart_failure_aborts_upload_and_leaves_no_object(
    tmp_path: Path, s3, hook: None
) -> None:
    s3.create_bucket(Bucket="mpfail")
    src = tmp_path / "src"
    _big_tree(src)

    def fail(rel: str, nbytes: int) -> None:
        if rel == "big/eleven.bin" and nbytes > 5 * MIB:
            raise ConnectionError("injected network failure")

    copier.set_test_hook(fail)
    s = run_files(_cfg(src, "s3://mpfail/x", split_bytes=5 * MIB, part_bytes=5 * MIB, retries=0))

    assert [f["path"] for f in s.failed_files] == ["big/eleven.bin"]
    assert "injected network failure" in s.failed_files[0]["reason"]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="mpfail").get("Contents", [])}
    assert "x/big/eleven.bin" not in keys
    assert {"x/big/exact.bin", "x/small.txt"} <= keys
    assert s3.list_multipart_uploads(Bucket="mpfail").get("Uploads", []) == []


def test_stale_multipart_uploads_of_killed_runs_are_aborted(tmp_path: Path, s3) -> None:
    s3.create_bucket(Bucket="mpstale")
    s3.create_multipart_upload(Bucket="mpstale", Key="t/big/eleven.bin")  # a killed run's
    s3.create_multipart_upload(Bucket="mpstale", Key="other/keep.bin")  # outside the target
    src = tmp_path / "src"
    _big_tree(src)

    s = run_files(_cfg(src, "s3://mpstale/t", split_bytes=5 * MIB, part_bytes=5 * MIB))

    assert s.failed == 0
    left = [u["Key"] for u in s3.list_multipart_uploads(Bucket="mpstale").get("Uploads", [])]
    assert left == ["other/keep.bin"]


def test_part_size_below_s3_minimum_is_config_error() -> None:
    from lakeshift.config.base import validate_model
    from lakeshift.errors import ConfigError

    with pytest.raises(ConfigError, match="at least 5 MiB"):
        validate_model(FilesConfig, {"src": "/a", "dst": "s3://b/x", "part_bytes": MIB}, "t")


@pytest.mark.parametrize("algo", ["crc32c", "md5"])
def test_local_range_split_copy(tmp_path: Path, algo: str) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = _big_tree(src)

    s = run_files(_cfg(src, dst, split_bytes=4 * MIB, part_bytes=MIB, threads=4, checksum=algo))

    assert (s.copied, s.failed) == (3, 0)
    assert sha_tree(dst) == sha_tree(src)
    rows = _manifest(dst / "_lakeshift_files")
    body = data["big/eleven.bin"]
    if algo == "crc32c":  # combined part CRCs equal the whole file's CRC32C
        assert rows["big/eleven.bin"]["checksum"] == f"{google_crc32c.value(body):08x}"
    else:  # MD5 of the 12 parts' MD5s, S3-ETag style
        digests = b"".join(
            hashlib.md5(body[i : i + MIB]).digest() for i in range(0, len(body), MIB)
        )
        assert rows["big/eleven.bin"]["checksum"] == f"{hashlib.md5(digests).hexdigest()}-12"
    assert rows["small.txt"]["checksum"] == (
        f"{google_crc32c.value(data['small.txt']):08x}"
        if algo == "crc32c"
        else hashlib.md5(data["small.txt"]).hexdigest()
    )
    assert not (dst / ".lakeshift-tmp").exists()


def test_local_range_split_detects_change(tmp_path: Path, hook: None) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _big_tree(src)
    victim = src / "big/exact.bin"

    def change(rel: str, nbytes: int) -> None:  # changes on every attempt
        if rel == "big/exact.bin":
            os.utime(victim, ns=(1, victim.stat().st_mtime_ns + 1000))

    copier.set_test_hook(change)
    s = run_files(_cfg(src, dst, split_bytes=4 * MIB, part_bytes=MIB, retries=1))

    assert [f["path"] for f in s.failed_files] == ["big/exact.bin"]
    assert "changed during copy" in s.failed_files[0]["reason"]
    assert not (dst / "big/exact.bin").exists()
    assert (dst / "big/eleven.bin").read_bytes() == (src / "big/eleven.bin").read_bytes()
