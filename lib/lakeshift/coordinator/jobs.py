"""Job kinds: which job file a step submits and with which arguments.

The table below is the single mapping from a plan step (``copy``, ``validate`` …) to a
``jobs/*.py`` entry point and its argument template. Placeholders in ``{braces}`` are filled
from the table (``table``, ``source``, ``target``, ``format``, ``keys``, and ``source_spec`` /
``target_spec``: ``FORMAT:PATH`` as ``lakeshift validate`` takes them), the run (``run_id``),
the job (``result``: where the job writes its ``--json`` summary, ``token``, ``attempt``) and the
table's ``options``. A ``script`` step names its own file (used for tests and one-off jobs).

Example:
    >>> JOB_KINDS["validate"].file
    'jobs/validate.py'
    >>> render_args(("{source}", "--keys", "{keys}"), {"source": "/a", "keys": "id"}, "t")
    ['/a', '--keys', 'id']
    >>> spec("parquet", "/raw/t"), spec(None, "delta:/lake/t")
    ('parquet:/raw/t', 'delta:/lake/t')
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from lakeshift.errors import ConfigError

Phase = Literal["load", "sync", "validate"]


@dataclass(frozen=True)
class JobKind:
    """One kind of job the coordinator can submit.

    Attributes:
        name: the step name used in plans.
        file: the entry point, relative to the project root (``None``: the step names it).
        phase: ``load`` (copy/transform/files), ``sync`` or ``validate``; steps run in this order.
        args: the argument template.
        exit1_permanent: whether exit code 1 without a known error pattern is permanent
            (a validation mismatch will not go away by retrying).
    """

    name: str
    file: str | None
    phase: Phase
    args: tuple[str, ...]
    exit1_permanent: bool = False


JOB_KINDS: dict[str, JobKind] = {
    k.name: k
    for k in (
        JobKind(
            "copy",
            "jobs/bulk_copy.py",
            "load",
            (
                "{source}",
                "{target}",
                "--format",
                "{format}",
                "--run-id",
                "{run_id}",
                "--json",
                "{result}",
            ),
        ),
        JobKind(
            "files", "jobs/files_copy.py", "load", ("{source}", "{target}", "--json", "{result}")
        ),
        JobKind("transform", "jobs/nosql_to_sql.py", "load", ("{config}",)),
        JobKind("sync", "jobs/incremental_sync.py", "sync", ("{config}",)),
        JobKind(
            "validate",
            "jobs/validate.py",
            "validate",
            ("{source_spec}", "{target_spec}", "--keys", "{keys}", "--json", "{result}"),
            exit1_permanent=True,
        ),
        JobKind("script", None, "load", ()),
    )
}

PHASE_ORDER: dict[str, int] = {"load": 0, "sync": 1, "validate": 2}

_FORMATTER = string.Formatter()
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def placeholders(template: Sequence[str]) -> set[str]:
    """The ``{names}`` used in an argument template."""
    names: set[str] = set()
    for item in template:
        for _, field, _, _ in _FORMATTER.parse(item):
            if field:
                names.add(field)
    return names


def render_args(template: Sequence[str], values: Mapping[str, str], table: str) -> list[str]:
    """Fill an argument template (``table`` names the table in error messages).

    Raises:
        ConfigError: a placeholder has no value for this table.
    """
    out = []
    for item in template:
        try:
            out.append(item.format_map(values))
        except KeyError as exc:
            raise ConfigError(
                f"{table}: argument {item!r} needs {{{exc.args[0]}}}, which the table does "
                f"not define (known: {', '.join(sorted(values))})"
            ) from exc
        except (ValueError, IndexError) as exc:
            raise ConfigError(f"{table}: bad argument template {item!r}: {exc}") from exc
    return out


def safe_name(text: str) -> str:
    """A file- and application-name-safe version of ``text``."""
    return _SAFE_NAME.sub("_", text).strip("_") or "x"


_SCHEME = re.compile(r"^[a-z][a-z0-9+]*:(?!//)", re.IGNORECASE)


def spec(fmt: str | None, path: str) -> str:
    """``FORMAT:PATH`` for ``lakeshift validate``; a path that already has a prefix stays."""
    if fmt is None or _SCHEME.match(path):
        return path
    return f"{fmt}:{path}"
