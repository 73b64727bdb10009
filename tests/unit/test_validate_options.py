"""Option parsing, config templates and JDBC spec parsing (no Spark)."""

from __future__ import annotations

import pytest

from lakeshift.errors import ConfigError, UsageError
from lakeshift.sources.factory import from_spec
from lakeshift.sources.jdbc import JdbcPartitioning, JdbcSource, parse_spec
from lakeshift.validate.config import load_config
from lakeshift.validate.options import ValidateOptions, parse_duration_micros, parse_tolerance


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abs:0.01", {"abs": 0.01}),
        ("rel:1e-6", {"rel": 1e-6}),
        ("abs:0.5+rel:0.1", {"abs": 0.5, "rel": 0.1}),
        ("skew:1ms", {"skew_micros": 1000}),
        ("skew:2s", {"skew_micros": 2_000_000}),
        ("trim,casefold", {"trim": True, "casefold": True}),
        ("nfc", {"nfc": True}),
        ("digits:6", {"digits": 6}),
        ("set", {"array": "set"}),
    ],
)
def test_parse_tolerance(text, expected):
    assert parse_tolerance(text).model_dump(exclude_unset=True) == expected


@pytest.mark.parametrize("text", ["abs", "abs:x", "skew:1 fortnight", "wobble", "digits:0"])
def test_parse_tolerance_rejects(text):
    with pytest.raises(ValueError):
        parse_tolerance(text)


def test_duration_units():
    assert parse_duration_micros("500us") == 500
    assert parse_duration_micros("3") == 3
    assert parse_duration_micros("1h") == 3_600_000_000


def test_rule_merges_default_and_column():
    opts = ValidateOptions(default={"trim": True}, columns={"a": "abs:0.1"})
    assert opts.rule("a").trim and opts.rule("a").abs == 0.1
    assert opts.rule("b").trim and opts.rule("b").abs == 0


def test_keys_cannot_be_excluded():
    with pytest.raises(ValueError, match="excluded"):
        ValidateOptions(keys=["id"], exclude=["id"])


def test_config_templates(tmp_path):
    cfg = tmp_path / "v.yaml"
    cfg.write_text(
        """
defaults: {threshold: 0.01, timestamp_precision: millis, columns: {a: "trim"}}
templates:
  money: {columns: {amount: "abs:0.01", a: {casefold: true}}}
outputs: {json: out.json}
tables:
  - {name: t1, left: "parquet:/a", right: "delta:/b", keys: [id], template: money}
  - {left: "parquet:/c", right: "delta:/d", threshold: 0}
"""
    )
    tables, outputs = load_config(cfg)
    assert outputs.json_path == "out.json"
    t1, t2 = tables
    assert t1.name == "t1" and t1.options.keys == ["id"] and t1.options.threshold == 0.01
    assert t1.options.rule("amount").abs == 0.01
    assert t1.options.rule("a").trim and t1.options.rule("a").casefold
    assert t1.options.timestamp_precision == "millis"
    assert t2.name == "delta:/d" and t2.options.threshold == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("tables: []", "tables"),
        ("tables: [{left: a, right: b, template: nope}]", "unknown template"),
        ("tables: [{left: a, right: b, threshold: 2}]", "tables[0]: threshold"),
        ("tables: [{left: a, right: b, colour: red}]", "tables[0]: colour: unknown field"),
        ("tables: [{right: b}]", "tables[0].left: field required"),
    ],
)
def test_config_errors_name_the_field(tmp_path, body, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(body)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(cfg)


def test_jdbc_spec_parsing():
    src = parse_spec(
        "jdbc:postgresql://db:5432/shop?table=public.orders&sslmode=require"
        "&partition_column=id&num_partitions=4&fetchsize=5000&user_env=PGU&password_env=PGP"
    )
    assert isinstance(src, JdbcSource)
    assert src.url == "jdbc:postgresql://db:5432/shop?sslmode=require"
    assert src.table == "public.orders"
    assert (src.user_env, src.password_env) == ("PGU", "PGP")
    assert src.partitioning.partition_column == "id"
    assert src.partitioning.num_partitions == 4
    assert src.partitioning.fetch_size == 5000
    assert src.describe() == "jdbc:postgresql://db:5432/shop?sslmode=require?table=public.orders"


def test_jdbc_spec_via_factory_and_refuses_credentials():
    assert isinstance(from_spec("jdbc:postgresql://h/db?table=t"), JdbcSource)
    with pytest.raises(UsageError, match="credentials"):
        from_spec("jdbc:postgresql://h/db?table=t&password=secret")
    with pytest.raises(UsageError, match="table"):
        from_spec("jdbc:postgresql://h/db")


def test_partitioning_maps_one_to_one_to_reader_options():
    part = JdbcPartitioning(
        partition_column="id", lower_bound="1", upper_bound="100", num_partitions=4, fetch_size=99
    )
    assert part.reader_options() == {
        "partitionColumn": "id",
        "lowerBound": "1",
        "upperBound": "100",
        "numPartitions": "4",
        "fetchsize": "99",
    }
    assert JdbcPartitioning(fetch_size=7).reader_options() == {"fetchsize": "7"}
