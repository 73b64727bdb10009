"""DriverAws: the driver's S3 identity for executor tasks, never shown, installed per process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakeshift.log import redact
from lakeshift.sources import fs as source_fs
from lakeshift.sources.aws import DriverAws


def _clear(monkeypatch: pytest.MonkeyPatch, *keys: str) -> None:
    """Unset ``keys`` for the test; whatever install() sets under them is undone afterwards."""
    for key in keys:
        monkeypatch.setenv(key, "-")  # recorded, so the teardown restores the original state
        monkeypatch.delenv(key)


def test_capture_reads_a_profile_and_shows_no_keys(tmp_path: Path, monkeypatch) -> None:
    creds = tmp_path / "credentials"
    creds.write_text("[p]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = s3cr3t-xyz\n")
    (tmp_path / "config").write_text("[profile p]\nregion = eu-west-3\n")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_PROFILE", "p")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")

    aws = DriverAws.capture()

    assert aws is not None
    assert (aws.access_key, aws.secret_key, aws.token) == ("AKIDPROFILE", "s3cr3t-xyz", None)
    assert (aws.endpoint, aws.region) == ("http://127.0.0.1:9", "eu-west-3")
    for shown in (repr(aws), str(aws), f"{aws}"):
        assert "s3cr3t-xyz" not in shown and "AKIDPROFILE" not in shown
    assert redact("key s3cr3t-xyz leaked") == "key *** leaked"


def test_capture_without_any_identity_is_none(tmp_path: Path, monkeypatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for key in ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(key, raising=False)
    assert DriverAws.capture() is None


def test_install_sets_the_environment_once_and_forgets_cached_clients(monkeypatch) -> None:
    _clear(monkeypatch, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3")
    _clear(monkeypatch, "AWS_REGION")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "old-token-of-someone-else")
    forgot: list[int] = []
    monkeypatch.setattr(source_fs, "forget_s3_clients", lambda: forgot.append(1))
    aws = DriverAws("AKID", "secret-1234", None, "http://127.0.0.1:9", "us-east-1")

    assert aws.install() is True
    assert (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]) == (
        "AKID",
        "secret-1234",
    )
    assert os.environ["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:9"
    assert "AWS_SESSION_TOKEN" not in os.environ  # not ours: dropped
    assert aws.install() is False  # a reused worker: nothing to do
    assert forgot == [1]


@pytest.mark.parametrize("token", ["tok-abcdef"])
def test_install_carries_a_session_token(token: str, monkeypatch) -> None:
    monkeypatch.setattr(source_fs, "forget_s3_clients", lambda: None)
    _clear(monkeypatch, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    _clear(monkeypatch, "AWS_ENDPOINT_URL_S3", "AWS_REGION")
    DriverAws("AKID", "secret-1234", token, None, None).install()
    assert os.environ["AWS_SESSION_TOKEN"] == token


def test_nothing_of_the_installs_above_leaks_into_later_tests() -> None:
    assert os.environ.get("AWS_ENDPOINT_URL_S3") != "http://127.0.0.1:9"
    assert os.environ.get("AWS_SECRET_ACCESS_KEY") != "secret-1234"
