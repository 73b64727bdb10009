"""``lakeshift files --executor spark`` to real S3 (SeaweedFS): executors get the driver's identity.

The test session's Spark (``local[2]``) starts before the driver's AWS settings are made, so its
Python workers inherit none of them, as executors on other machines would not: without the
hand-off every file fails for want of credentials; with it, all are copied. The keys come from a
profile in a shared-credentials file (not the environment) and the endpoint from the driver's
``AWS_ENDPOINT_URL``; the secret key appears neither in the output, the logs, the JSON summary
nor the state objects. Bytes are checked by SHA-256 of objects read back by a separate client.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from pathlib import Path

import pytest

from lakeshift import cli
from lakeshift.files import runner
from lakeshift.sources import fs as source_fs
from lakeshift.sources.aws import DriverAws
from tests.integration.files_tree import AWKWARD, make_tree
from tests.s3_server import S3Server, s3_server  # noqa: F401

pytestmark = pytest.mark.slow

PROFILE = "lakeshift-files-test"


def _worker_env(spark: object, name: str) -> list[str | None]:
    sc = spark.sparkContext  # type: ignore[attr-defined]
    return sc.parallelize([0, 1], 2).map(lambda _: os.environ.get(name)).collect()


@pytest.fixture
def profile_only(spark: object, s3_server: S3Server, tmp_path: Path, monkeypatch):
    """The driver's keys in a profile file, its endpoint in AWS_ENDPOINT_URL; workers have none."""
    if s3_server.secret_key in _worker_env(spark, "AWS_SECRET_ACCESS_KEY"):
        pytest.skip("the Spark workers already hold the S3 keys: a hand-off cannot be seen")
    creds = tmp_path / "aws-credentials"
    creds.write_text(
        f"[{PROFILE}]\naws_access_key_id = {s3_server.access_key}\n"
        f"aws_secret_access_key = {s3_server.secret_key}\n"
    )
    conf = tmp_path / "aws-config"
    conf.write_text(f"[profile {PROFILE}]\nregion = {s3_server.region}\n")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(conf))
    monkeypatch.setenv("AWS_PROFILE", PROFILE)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["lakeshift.files.command"])
    source_fs.forget_s3_clients()
    yield s3_server
    source_fs.forget_s3_clients()


def _run(argv: list[str], out: Path, capsys) -> tuple[int, str, dict[str, object]]:
    rc = cli.main(["files", *argv, "--executor", "spark", "--no-progress", "--json", str(out)])
    captured = capsys.readouterr()
    return rc, captured.out + captured.err, json.loads(out.read_text())


def test_spark_tasks_get_the_drivers_s3_identity_never_shown(
    spark: object,
    profile_only: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = profile_only
    bucket = server.bucket(f"files-spark-{uuid.uuid4().hex[:8]}")
    src = tmp_path / "src"
    expected = make_tree(src)
    caplog.set_level(logging.DEBUG, logger="lakeshift")

    # without the hand-off the tasks meet S3 with no credentials: every file fails
    with monkeypatch.context() as m:
        m.setattr(runner, "_driver_aws", lambda ctx: None)
        rc, text, bare = _run(
            [
                str(src),
                f"s3://{bucket}/none",
                f"--state={tmp_path / 'state'}",  # journals are local: only the copies fail
                "--retries=0",
                f"--s3-endpoint={server.endpoint_url}",
            ],
            tmp_path / "bare.json",
            capsys,
        )
    assert rc == 1 and bare["failed"] == len(AWKWARD) and bare["copied"] == 0, text
    assert {f["reason"].split(":")[0] for f in bare["failed_files"]} == {  # type: ignore[union-attr]
        "no S3 credentials here (environment, profile or role)"
    }

    rc, text, summary = _run([str(src), f"s3://{bucket}/out"], tmp_path / "s.json", capsys)

    assert rc == 0, text
    assert (summary["mode"], summary["copied"], summary["failed"]) == ("spark", len(AWKWARD), 0)
    c = server.client()
    got = {
        rel: hashlib.sha256(
            c.get_object(Bucket=bucket, Key=f"out/{rel}")["Body"].read()
        ).hexdigest()
        for rel in AWKWARD
    }
    assert got == expected
    # the workers now hold the driver's identity (installed by the tasks themselves)
    assert set(_worker_env(spark, "AWS_ENDPOINT_URL_S3")) == {server.endpoint_url}

    state = b"".join(
        c.get_object(Bucket=bucket, Key=k)["Body"].read()
        for k in server.keys(bucket, "out/_lakeshift_files/")
    )
    assert state  # manifest and journals were written
    shown = [text, caplog.text, (tmp_path / "s.json").read_text(), repr(DriverAws.capture())]
    assert all(server.secret_key not in s for s in shown)
    assert server.secret_key.encode() not in state
    assert server.access_key not in repr(DriverAws.capture())
