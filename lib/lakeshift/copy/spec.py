"""Configuration of a copy: :class:`CopySpec` (a YAML file) and :class:`TableCopy` (one table).

Example ``copy.yaml``::

    rewrite:
      - {from: "s3://old-bucket/", to: "s3a://new-bucket/"}
    tables:
      - source: parquet:s3a://lake/events/dt=${ds}
        target: s3://old-bucket/delta/events
        partition_by: [dt]
        exclude: ["hour=23"]
        target_file_size: 128MB
        chunk_size: 1GB
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator

from lakeshift.config.base import StrictModel, parse_size
from lakeshift.copy.plan import compile_glob

Size = Annotated[int, BeforeValidator(parse_size)]

SOURCE_FORMATS = ("parquet", "orc", "csv", "json", "delta")
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class RewriteRule(StrictModel):
    """A location prefix map applied to target locations (``s3://old/`` → ``s3a://new/``).

    Attributes:
        old: the prefix to replace (YAML key ``from``).
        new: its replacement (YAML key ``to``).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    old: str = Field(alias="from", min_length=1)
    new: str = Field(alias="to")

    @classmethod
    def parse(cls, text: str) -> RewriteRule:
        """Parse the CLI form ``OLD=NEW``.

        Raises:
            ValueError: no ``=`` or an empty ``OLD``.
        """
        old, sep, new = text.partition("=")
        if not sep or not old:
            raise ValueError(f"expected OLD=NEW, found {text!r}")
        return cls.model_validate({"from": old, "to": new})


class TableCopy(StrictModel):
    """One table to copy.

    Attributes:
        source: a path (any Hadoop URI) or ``format:path`` spec (``csv:s3a://b/t``).
        source_format: the source format; default: from the spec prefix, else Delta when the
            path holds ``_delta_log``, else Parquet.
        source_options: extra reader options (CSV ``sep``, ``header``, ...).
        source_schema: a DDL schema for CSV/JSON (default: inferred once over the whole source).
        target: the target location.
        format: target format, ``delta`` (default) or ``parquet``.
        partition_by: target partition columns; ``None`` keeps the source's Hive partitions,
            ``[]`` writes unpartitioned.
        include: globs over partition paths or file paths (relative to the source); none = all.
        exclude: globs that drop partition paths or files (live-changing folders).
        target_file_size: the output file size to aim for.
        chunk_size: input bytes per chunk (one committed unit of work).
        run_id: the resume key; default derived from source, target and run date.
        mode: ``append`` (default) or ``overwrite`` (the first chunk replaces the target).
        register_table: register the target as this catalog table (``db.name``).
        rewrite: location prefix maps for this table (after the file-level ones).
        compression_ratio: initial output/input byte ratio before one is learned.
    """

    source: str = Field(min_length=1)
    source_format: Literal["parquet", "orc", "csv", "json", "delta"] | None = None
    source_options: dict[str, str] = Field(default_factory=dict)
    source_schema: str | None = None
    target: str = Field(min_length=1)
    format: Literal["delta", "parquet"] = "delta"
    partition_by: list[str] | None = None
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    target_file_size: Size = 128 << 20
    chunk_size: Size = 1 << 30
    run_id: str | None = None
    mode: Literal["append", "overwrite"] = "append"
    register_table: str | None = None
    rewrite: list[RewriteRule] = Field(default_factory=list)
    compression_ratio: float | None = Field(default=None, gt=0, le=100)

    @field_validator("include", "exclude")
    @classmethod
    def _globs_compile(cls, value: list[str]) -> list[str]:
        for pattern in value:
            compile_glob(pattern)
        return value

    @field_validator("partition_by")
    @classmethod
    def _partition_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for name in value:
            if not name.strip():
                raise ValueError("partition column names must not be empty")
        if len(set(value)) != len(value):
            raise ValueError(f"duplicate partition columns in {value}")
        return value

    @field_validator("run_id")
    @classmethod
    def _run_id_shape(cls, value: str | None) -> str | None:
        if value is not None and not _RUN_ID.match(value):
            raise ValueError(f"run id must match {_RUN_ID.pattern}")
        return value

    @field_validator("register_table")
    @classmethod
    def _table_name(cls, value: str | None) -> str | None:
        if value is not None and not _TABLE_NAME.match(value):
            raise ValueError("expected a table name like db.name")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> TableCopy:
        if self.source.rstrip("/") == self.target.rstrip("/"):
            raise ValueError("target must differ from source")
        return self


class CopySpec(StrictModel):
    """A copy configuration file: one or more tables and shared location rewrite rules.

    Attributes:
        rewrite: location prefix maps applied to every table's target.
        tables: the tables to copy, in order.
    """

    rewrite: list[RewriteRule] = Field(default_factory=list)
    tables: list[TableCopy] = Field(min_length=1)
