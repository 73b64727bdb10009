"""One error root for the whole suite.

Every error lakeshift raises on purpose derives from :class:`LakeshiftError`. Each class carries the
process exit code the CLI maps it to: 2 for usage and configuration errors (the input is wrong,
nothing ran), 1 for failures while running.
"""

from __future__ import annotations


class LakeshiftError(Exception):
    """Root of all lakeshift errors. Exit code 1."""

    exit_code: int = 1


class UsageError(LakeshiftError):
    """Bad command-line usage or arguments. Exit code 2."""

    exit_code = 2


class ConfigError(LakeshiftError):
    """A configuration file or value is invalid. Exit code 2.

    The message names the file and the field path, e.g.
    ``copy.yaml: target.format: Input should be 'delta' or 'parquet' (got 'csv')``.
    """

    exit_code = 2


class SourceError(LakeshiftError):
    """A source could not be read (missing path, unknown format, unreachable database)."""


class SinkError(LakeshiftError):
    """A target could not be written."""


class JobFailedError(LakeshiftError):
    """A job ran but did not complete."""
