"""Job kinds: what the coordinator submits in each lifecycle phase, built from command contracts.

Every job line comes from the command's own argument model (:mod:`lakeshift.contracts`): the
plan's values and the table's extra arguments are parsed with the real ``lakeshift`` parser when
the plan loads (:func:`parse_command`), so a bad option fails ``lakeshift plan``, and the job
line is rendered from the resulting model at submit time (:meth:`JobSpec.render`), with the
job's own values (``--json`` result file, run id) filled in. Only ``script`` jobs — a file the
plan names — keep an argument template with ``{placeholders}``.

Example:
    >>> from lakeshift.sync.command import SyncArgs
    >>> job = JobSpec("catch_up", SyncArgs(config="/c/s.yaml", once=True))
    >>> job.file
    'jobs/incremental_sync.py'
    >>> job.render({"result": "/r/1.json", "run_id": "m"})
    ['run', '--config=/c/s.yaml', '--once', '--json=/r/1.json']
    >>> render_args(("{source}", "--keys", "{keys}"), {"source": "/a", "keys": "id"}, "t")
    ['/a', '--keys', 'id']
    >>> spec("parquet", "/raw/t"), spec(None, "delta:/lake/t")
    ('parquet:/raw/t', 'delta:/lake/t')
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lakeshift.contracts import CommandArgs
from lakeshift.errors import ConfigError

#: What each job kind does, in lifecycle order (the names used in the jobs table and the audit).
KIND_TEXT: dict[str, str] = {
    "start_point": "record the sync start point",
    "load": "bulk load",
    "catch_up": "catch-up sync round",
    "validate": "validation",
    "repair": "repair",
    "dual_run": "dual-run sync round",
    "final_sync": "final sync before cut-over",
    "final_validate": "final validation before cut-over",
    "finalize": "finalize the synced target for readers",
    "switch": "metastore switch",
    "rollback": "metastore rollback",
}

#: Placeholders a ``script`` job's arguments may use besides the table's values.
JOB_PLACEHOLDERS = frozenset({"run_id", "result", "token", "attempt", "state_dir"})

#: The ``files`` command's entry point (its arguments are parsed, not yet a contract model).


@dataclass(frozen=True)
class JobSpec:
    """One job of a table's lifecycle.

    Attributes:
        kind: the job kind (a key of :data:`KIND_TEXT`).
        model: the command's arguments (``None`` for script and files jobs).
        file: the entry point; default the model's ``JOB``.
        template: arguments with ``{placeholders}`` (script and files jobs).
        exit1_permanent: exit code 1 means "ran and found a difference" (validate, verify).
        label: the command, for messages (``copy``, ``files --update`` …).
    """

    kind: str
    model: CommandArgs | None = None
    file: str = ""
    template: tuple[str, ...] = ()
    exit1_permanent: bool = False
    label: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.file:
            if self.model is None or not self.model.JOB:
                raise ConfigError(f"job {self.kind}: no job file")
            object.__setattr__(self, "file", self.model.JOB)
        if not self.label:
            text = " ".join(self.model.COMMAND) if self.model is not None else self.kind
            object.__setattr__(self, "label", text)

    def render(self, values: Mapping[str, str], table: str = "") -> list[str]:
        """The job's arguments, with the job's own values filled in.

        ``values`` holds at least ``result`` (where the job writes its JSON summary) and
        ``run_id``; a model field the plan left unset for them (``json_out``/``summary``,
        ``run_id``) is set from them.

        Raises:
            ConfigError: a ``{placeholder}`` of a template has no value.
        """
        if self.model is None:
            return render_args(self.template, values, table or self.kind)
        fields = type(self.model).model_fields
        update: dict[str, Any] = {}
        for name, key in (
            ("json_out", "result"),
            ("json_path", "result"),
            ("summary", "result"),
            ("run_id", "run_id"),
        ):
            if name in fields and getattr(self.model, name) is None and values.get(key):
                update[name] = values[key]
        return self.model.model_copy(update=update).job_argv()


def parse_command(model: type[CommandArgs], words: Sequence[str], where: str) -> Any:
    """Parse ``lakeshift WORDS…`` with the command's parser; the namespace, or a ConfigError.

    The parser is built from the command's contract model exactly as the CLI builds that
    command's (``model.add_arguments(parser, common=True)``); the contract test parses every
    job line with the full ``lakeshift`` parser as well.

    Raises:
        ConfigError: the parser rejects the line (the message is the parser's own last line).
    """
    words = list(words)
    head = list(model.COMMAND)
    if words[: len(head)] != head:
        raise ConfigError(f"{where}: expected `lakeshift {' '.join(head)} …`, found {words[:1]}")
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return _parser(model).parse_args(words[len(head) :])
    except SystemExit as exc:
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        why = lines[-1] if lines else f"exit {exc.code}"
        why = re.sub(r"^lakeshift [a-z -]+: error: ", "", why)
        raise ConfigError(f"{where}: {why} (in: lakeshift {' '.join(words)})") from None


@functools.cache
def _parser(model: type[CommandArgs]) -> argparse.ArgumentParser:
    """The command's parser, built once per model (a plan of thousands of tables parses each)."""
    parser = argparse.ArgumentParser(prog="lakeshift " + " ".join(model.COMMAND), add_help=False)
    model.add_arguments(parser, common=True)
    return parser


def model_from(model: type[CommandArgs], words: Sequence[str], where: str) -> CommandArgs:
    """The contract model of ``lakeshift WORDS…`` as the command's parser reads it."""
    return model.from_namespace(parse_command(model, words, where))


_FORMATTER = string.Formatter()
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def placeholders(template: Sequence[str]) -> set[str]:
    """The ``{names}`` used in an argument template."""
    names: set[str] = set()
    for item in template:
        for _, name, _, _ in _FORMATTER.parse(item):
            if name:
                names.add(name)
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


_SCHEME = re.compile(r"^[a-z][a-z0-9+]*:(?!//)", re.IGNORECASE)


def spec(fmt: str | None, path: str) -> str:
    """``FORMAT:PATH`` for ``lakeshift validate``; a path that already has a prefix stays."""
    if fmt is None or _SCHEME.match(path):
        return path
    return f"{fmt}:{path}"
