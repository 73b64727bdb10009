"""Config loading, date macros, env secrets and size parsing."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from pydantic import Field

from lakeshift.config import StrictModel, expand_macros, load_model, parse_run_date, parse_size
from lakeshift.errors import ConfigError
from lakeshift.log import redact

DAY = dt.date(2026, 3, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("s3://lake/dt=${ds}/", "s3://lake/dt=2026-03-01/"),
        ("${ds-1}", "2026-02-28"),
        ("${ds+1}", "2026-03-02"),
        ("${ds-365}", "2025-03-01"),
        ("/raw/${ds:%Y/%m/%d}/x", "/raw/2026/03/01/x"),
        ("day=${ds-1:%Y%m%d}", "day=20260228"),
        ("no macros here", "no macros here"),
        ("${ds}-${ds+2}", "2026-03-01-2026-03-03"),
    ],
)
def test_date_macros(text: str, expected: str) -> None:
    assert expand_macros(text, run_date=DAY) == expected


def test_env_macro_substitutes_and_registers_secret() -> None:
    out = expand_macros("pw=${env:LS_TEST_PW}", run_date=DAY, env={"LS_TEST_PW": "s3cr3t-value"})
    assert out == "pw=s3cr3t-value"
    assert redact("connecting with s3cr3t-value") == "connecting with ***"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${env:MISSING_VAR_X}", "environment variable MISSING_VAR_X is not set"),
        ("${dss}", "unknown macro ${dss}"),
        ("${ds*2}", "unknown macro ${ds*2}"),
        ("${today}", "unknown macro ${today}"),
    ],
)
def test_bad_macros(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        expand_macros(text, run_date=DAY, env={}, where="plan.yaml")


def test_run_date() -> None:
    assert parse_run_date("2026-01-31") == dt.date(2026, 1, 31)
    with pytest.raises(ConfigError, match="--run-date: expected YYYY-MM-DD, found '31/01/2026'"):
        parse_run_date("31/01/2026")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("128MB", 128 * 2**20),
        ("128mb", 128 * 2**20),
        ("128MiB", 128 * 2**20),
        ("1GB", 2**30),
        ("1g", 2**30),
        ("64KB", 65536),
        ("1.5GB", 3 * 2**29),
        ("1048576", 1048576),
        (4096, 4096),
    ],
)
def test_parse_size(value: str | int, expected: int) -> None:
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", ["", "MB", "12XB", "-1MB", "0", 0, "1 2"])
def test_parse_size_rejects(value: str | int) -> None:
    with pytest.raises(ValueError):
        parse_size(value)


class _Target(StrictModel):
    path: str
    format: str = Field(default="delta", pattern="^(delta|parquet)$")


class _Spec(StrictModel):
    name: str
    target: _Target
    retries: int = Field(default=3, ge=0)


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "spec.yaml"
    p.write_text(text)
    return p


def test_load_model_expands_macros(tmp_path: Path) -> None:
    p = _write(tmp_path, "name: t\ntarget:\n  path: /out/${ds:%Y%m%d}\n")
    spec = load_model(p, _Spec, run_date=DAY)
    assert spec.target.path == "/out/20260301"
    assert spec.target.format == "delta"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: t\ntarget: {path: /x, format: csv}\n", "target.format: String should match"),
        ("name: t\ntarget: {path: /x}\nretries: -1\n", "retries: Input should be greater than"),
        ("name: t\ntarget: {path: /x, colour: red}\n", "target.colour: unknown field"),
        ("target: {path: /x}\n", "name: field required"),
        (
            "name: t\ntarget: {path: /x}\nretries: many\n",
            "retries: Input should be a valid integer",
        ),
        ("- just\n- a list\n", "expected a mapping at the top level"),
        ("name: [unclosed\n", "line"),
    ],
)
def test_load_model_errors_name_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_model(p, _Spec)
    message = str(err.value)
    assert message.startswith(f"{p}:")
    assert expected in message
    assert "\n" not in message


def test_load_model_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_model(tmp_path / "nope.yaml", _Spec)


def test_redact_urls_and_params() -> None:
    assert redact("postgresql://bob:hunter22@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert redact("jdbc:mysql://h/db?user=u&password=p4ssw0rd&x=1") == (
        "jdbc:mysql://h/db?user=u&password=***&x=1"
    )
