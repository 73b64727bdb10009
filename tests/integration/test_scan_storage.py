"""``lakeshift scan`` of real HDFS (Hadoop's mini cluster) and real S3 (SeaweedFS).

The trees are written with independent clients (hdfs-native, boto3); the counts are by hand.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from lakeshift.cli import main as cli
from tests.hadoop_cluster import HadoopCluster, hadoop_cluster  # noqa: F401
from tests.s3_server import S3Server, s3_env, s3_server  # noqa: F401

pytestmark = pytest.mark.slow

KiB, MiB = 2**10, 2**20

# relative path -> size: 7 files over top-level folders x (3), y (2), z/deep (1) and the root (1)
TREE = {
    "top.bin": 10,
    "x/a": 100,
    "x/b": 2 * KiB,
    "x/sub/c": 1023,
    "y/d": 70 * KiB,
    "y/e": 2 * MiB,
    "z/deep/er/f": 1,
}


def _check(profile_path: Path, source: str) -> None:
    p = json.loads(profile_path.read_text())
    assert p["sources"] == [source]
    # 10 + 100 + 2048 + 1023 + 71,680 + 2,097,152 + 1 = 2,172,014
    assert (p["totals"]["files"], p["totals"]["bytes"]) == (7, 2_172_014)
    by = {b["label"]: b["files"] for b in p["buckets"] if b["files"]}
    # < 1 KiB: top.bin, x/a, x/sub/c, z/deep/er/f; 1-64 KiB: x/b; 64 KiB-1 MiB: y/d; 1-16 MiB: y/e
    assert by == {"<1 KiB": 4, "1 KiB-64 KiB": 1, "64 KiB-1 MiB": 1, "1-16 MiB": 1}
    assert [(x["prefix"], x["files"]) for x in p["prefixes"]] == [
        ("x", 3),
        ("y", 2),
        ("", 1),
        ("z", 1),
    ]
    # small (< 64 KiB): x has 2 (a, b), the root 1, x/sub 1, z/deep/er 1; y none
    tops = [(f["folder"], f["small_files"]) for f in p["small_files"]["top_folders"]]
    assert tops == [("x", 2), ("x/sub", 1), ("", 1), ("z/deep/er", 1)]
    assert sorted(p["digests"][source]) == ["", "x", "x/sub", "y", "z/deep/er"]


def test_scan_hdfs(hadoop_cluster: HadoopCluster, tmp_path: Path, capsys) -> None:
    hdfs = hadoop_cluster.client()
    base = f"/scan-{uuid.uuid4().hex[:8]}"
    for rel, size in TREE.items():
        parent = f"{base}/{rel}".rsplit("/", 1)[0]
        hdfs.mkdirs(parent, create_parent=True)
        with hdfs.create(f"{base}/{rel}") as w:
            w.write(b"h" * size)
    hdfs.mkdirs(f"{base}/empty", create_parent=True)
    source = f"{hadoop_cluster.fs}{base}"
    out = tmp_path / "p.json"
    rc = cli(["scan", source, "--out", str(out), "--small-file-size", "64KB", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    _check(out, source)
    # a missing HDFS folder: one line, exit 2
    capsys.readouterr()
    assert cli(["scan", f"{hadoop_cluster.fs}{base}/nope", "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"lakeshift scan: error: folder not found: {hadoop_cluster.fs}{base}/nope"
    )


@pytest.mark.parametrize("scheme", ["s3a", "s3"])
def test_scan_s3(s3_env: S3Server, tmp_path: Path, capsys, scheme: str) -> None:
    bucket = s3_env.bucket("scan")
    prefix = f"run-{uuid.uuid4().hex[:8]}"
    c = s3_env.client()
    for rel, size in TREE.items():
        c.put_object(Bucket=bucket, Key=f"{prefix}/{rel}", Body=b"s" * size)
    c.put_object(Bucket=bucket, Key=f"{prefix}/empty/", Body=b"")  # a folder marker, no object
    source = f"{scheme}://{bucket}/{prefix}"
    out = tmp_path / "p.json"
    state = tmp_path / "state"
    argv = ["scan", source, "--out", str(out), "--small-file-size", "64KB", "--no-progress"]
    rc = cli([*argv, "--state", str(state)])
    assert rc == 0, capsys.readouterr().err
    p = json.loads(out.read_text())
    # the marker-only folder is a top-level folder with no objects: not a prefix, no files
    assert "empty" not in [x["prefix"] for x in p["prefixes"]]
    _check(out, source)
    # one object changed, one added: the change rate against the first profile
    first = tmp_path / "p1.json"
    out.rename(first)
    c.put_object(Bucket=bucket, Key=f"{prefix}/y/d", Body=b"t" * 100)
    c.put_object(Bucket=bucket, Key=f"{prefix}/z/new", Body=b"t" * 300)
    assert cli([*argv, "--since", str(first)]) == 0
    ch = json.loads(out.read_text())["change"]
    assert (ch["new_files"], ch["changed_files"], ch["changed_bytes"]) == (1, 1, 100)
    assert ch["median_changed_size"] == 200  # of 100 and 300
    capsys.readouterr()
    assert cli(["scan", f"{scheme}://no-such-bucket-{uuid.uuid4().hex[:6]}", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no such bucket" in err
