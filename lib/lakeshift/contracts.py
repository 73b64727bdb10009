"""Typed command contracts: one model per command, the source of its CLI and of its job lines.

A command's arguments are declared once, as a pydantic model whose fields carry an :class:`Opt`
(flag, positional, help). The same model

* adds the arguments to the command's ``argparse`` parser (:meth:`CommandArgs.add_arguments`);
* renders a command line from values (:meth:`CommandArgs.argv`) — what the coordinator submits;
* reads a parsed namespace back (:meth:`CommandArgs.from_namespace`).

So a job line the coordinator renders is one the CLI parses, field for field; a contract test
parses every rendered job kind with the real parser. Types drive the argparse settings: ``bool``
is a switch, ``list[str]`` a repeatable option (a positional ``list[str]`` takes one or more),
``int``/``float`` typed, ``Literal`` choices.

Example:
    >>> from typing import Annotated
    >>> class Echo(CommandArgs):
    ...     COMMAND = ("echo",)
    ...     text: Annotated[str, Opt(positional=True)]
    ...     loud: Annotated[bool, Opt("--loud")] = False
    >>> Echo(text="hi", loud=True).argv()
    ['hi', '--loud']
    >>> Echo(text="-x").argv()
    ['--', '-x']
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class Opt:
    """How a model field appears on the command line.

    Attributes:
        flag: the option (``--format``); ``None`` with ``positional=True``.
        positional: a positional argument (rendered in field order, before options).
        help: the ``--help`` text.
        metavar: the value's name in ``--help``.
        common: one of the options every command takes (added by the shared parent parser).
        switches: for a ``Literal`` field: one switch per value (``{"create": "--create"}``),
            mutually exclusive, instead of ``--flag VALUE``.
        parse: argparse ``type`` for the value (e.g. a size parser taking ``128MB``); the
            field's value renders with ``str()``, which the parser must accept back.
        const: the option's value may be left out (``--flag`` alone means ``const``;
            ``--flag=VALUE`` gives one). Such a field always renders as ``--flag=VALUE``.
    """

    flag: str | None = None
    positional: bool = False
    help: str | None = None
    metavar: str | None = None
    common: bool = False
    switches: tuple[tuple[str, str, str], ...] = ()  # (value, flag, help)
    parse: Callable[[str], Any] | None = None
    const: Any = None


def _opt(field: Any) -> Opt | None:
    return next((m for m in field.metadata if isinstance(m, Opt)), None)


def _strip_optional(annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


class CommandArgs(BaseModel):
    """Base of every command's arguments (see the module docstring).

    Subclasses set ``COMMAND`` (the words after ``lakeshift``, e.g. ``("sync",)``) and, when
    the coordinator submits it, ``JOB`` (the ``jobs/*.py`` entry point taking the same
    arguments after ``COMMAND[0]``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    COMMAND: ClassVar[tuple[str, ...]] = ()
    JOB: ClassVar[str | None] = None

    # ---- parser side -------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, *, common: bool = False) -> None:
        """Add the model's arguments to ``parser`` (``common``: the shared ones too)."""
        for name, field in cls.model_fields.items():
            opt = _opt(field)
            if opt is None or (opt.common and not common):
                continue
            kind = _strip_optional(field.annotation)
            if opt.switches:
                group = parser.add_mutually_exclusive_group()
                for value, flag, text in opt.switches:
                    group.add_argument(
                        flag, dest=name, action="store_const", const=value, help=text
                    )
                parser.set_defaults(**{name: field.get_default()})
                continue
            kwargs: dict[str, Any] = {"help": opt.help}
            if opt.metavar:
                kwargs["metavar"] = opt.metavar
            default = None if field.is_required() else field.get_default(call_default_factory=True)
            if get_origin(kind) is Literal:
                kwargs["choices"] = list(get_args(kind))
            if kind is bool:
                kwargs = {"help": opt.help, "action": "store_true"}
            elif get_origin(kind) is list and opt.positional:
                kwargs["nargs"] = "+" if field.is_required() else "*"
            elif get_origin(kind) is list:
                kwargs["action"] = "append"
                kwargs["default"] = list(default or [])
            else:
                if opt.parse is not None:
                    kwargs["type"] = opt.parse
                elif kind in (int, float):
                    kwargs["type"] = kind
                kwargs["default"] = default
                if opt.const is not None:
                    kwargs["nargs"] = "?"
                    kwargs["const"] = opt.const
            if opt.positional:
                if "nargs" not in kwargs:  # one value: the field's name is what --help shows
                    kwargs.pop("metavar", None)
                if not field.is_required() and "nargs" not in kwargs:
                    kwargs["nargs"] = "?"
                parser.add_argument(name, **kwargs)
            else:
                flag = opt.flag or "--" + name.replace("_", "-")
                if field.is_required() and kind is not bool:
                    kwargs["required"] = True
                parser.add_argument(flag, dest=name, **kwargs)

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace) -> CommandArgs:
        """The model of a parsed command line (fields the parser did not add keep defaults)."""
        values = {n: getattr(ns, n) for n in cls.model_fields if hasattr(ns, n)}
        return cls.model_validate(values)

    # ---- rendering side ----------------------------------------------------------------
    def argv(self, *, with_command: bool = False) -> list[str]:
        """The command line of these values (``with_command``: ``COMMAND`` words first).

        Defaults are left out, so the line stays short and the command's own defaults apply.
        """
        positional: list[str] = []
        options: list[str] = []
        fields = type(self).model_fields
        for name, field in fields.items():
            opt = _opt(field)
            if opt is None:
                continue
            value = getattr(self, name)
            default = None if field.is_required() else field.get_default(call_default_factory=True)
            if opt.positional:
                if isinstance(value, list | tuple):
                    positional += [str(v) for v in value]
                elif value is not None:
                    positional.append(str(value))
                continue
            if value is None or (value == default and not field.is_required()):
                continue
            flag = opt.flag or "--" + name.replace("_", "-")
            if opt.switches:
                options += [f for v, f, _ in opt.switches if v == value]
            elif isinstance(value, bool):
                if value:
                    options.append(flag)
            elif isinstance(value, list | tuple):
                options += [f"{flag}={item}" for item in value]  # '=': values may start with '-'
            else:
                options.append(f"{flag}={value}")
        head = list(self.COMMAND) if with_command else list(self.COMMAND[1:])
        if any(p.startswith("-") for p in positional):
            return [*head, *options, "--", *positional]
        return [*head, *positional, *options]

    def job_argv(self) -> list[str]:
        """Arguments for the ``JOB`` entry point (which adds ``COMMAND[0]`` itself)."""
        return self.argv()


class CommonArgs(CommandArgs):
    """The options every command takes (``lakeshift COMMAND --help``: common options)."""

    run_date: typing.Annotated[
        str | None,
        Opt(common=True, help="logical date for ${ds} macros, YYYY-MM-DD (default: today, UTC)"),
    ] = None
    master: typing.Annotated[
        str | None, Opt(common=True, help="Spark master (default: spark-submit's, else local[*])")
    ] = None
    spark_conf: typing.Annotated[
        list[str], Opt(common=True, metavar="KEY=VALUE", help="extra Spark setting")
    ] = Field(default_factory=list)
    jars: typing.Annotated[
        Literal["auto", "local", "packages", "cluster"],
        Opt(common=True, help="where JVM jars come from (default: auto)"),
    ] = "auto"
    metastore: typing.Annotated[
        str | None,
        Opt(
            common=True,
            metavar="DIR|thrift://HOST:PORT",
            help="persistent Hive metastore for tables lakeshift registers: a folder (embedded "
            "Derby) or a metastore service (default: $LAKESHIFT_METASTORE, else in-memory)",
        ),
    ] = None
    event_log: typing.Annotated[
        str | None,
        Opt(
            common=True,
            metavar="DIR",
            help="write a Spark event log into DIR (any Hadoop filesystem; a folder per run) "
            "for job metrics (default: off)",
        ),
    ] = None
    log_level: typing.Annotated[
        str, Opt(common=True, help="lakeshift log level (default: WARNING)")
    ] = "WARNING"
