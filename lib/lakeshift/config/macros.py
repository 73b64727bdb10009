"""Date macros and environment references inside configuration text.

Supported references (anywhere in a YAML file or a CLI path):

* ``${ds}`` — the run date as ``YYYY-MM-DD``;
* ``${ds-1}``, ``${ds+7}`` — the run date shifted by whole days;
* ``${ds:%Y/%m/%d}``, ``${ds-1:%Y%m%d}`` — any ``strftime`` format;
* ``${env:NAME}`` — the value of environment variable ``NAME`` (for secrets); the value is
  registered with the log redactor so it is never printed.

Example:
    >>> import datetime as dt
    >>> expand_macros("s3://lake/day=${ds-1:%Y%m%d}/", run_date=dt.date(2026, 3, 1))
    's3://lake/day=20260228/'
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping

from lakeshift.errors import ConfigError
from lakeshift.log import register_secret

_MACRO = re.compile(r"\$\{(?P<body>[^}]*)\}")
_DS = re.compile(r"^ds(?:(?P<sign>[+-])(?P<days>\d+))?(?::(?P<fmt>.+))?$")
_ENV = re.compile(r"^env:(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")


def parse_run_date(value: str | None) -> dt.date:
    """Parse a ``YYYY-MM-DD`` run date; ``None`` or ``"today"`` means today's UTC date.

    Raises:
        ConfigError: the value is not a date.
    """
    if value is None or value == "today":
        return dt.datetime.now(dt.timezone.utc).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"--run-date: expected YYYY-MM-DD, found {value!r}") from exc


def expand_macros(
    text: str,
    run_date: dt.date | None = None,
    env: Mapping[str, str] | None = None,
    where: str = "",
) -> str:
    """Replace ``${ds…}`` and ``${env:…}`` references in ``text``.

    Args:
        text: the text to expand.
        run_date: the logical run date (default: today, UTC).
        env: environment mapping (default: ``os.environ``).
        where: a location prefix for error messages (e.g. the file name).

    Raises:
        ConfigError: an unknown macro, a bad date format or a missing environment variable.
    """
    day = run_date or parse_run_date(None)
    environ = os.environ if env is None else env
    prefix = f"{where}: " if where else ""

    def repl(match: re.Match[str]) -> str:
        body = match.group("body").strip()
        env_match = _ENV.match(body)
        if env_match:
            name = env_match.group("name")
            if name not in environ:
                raise ConfigError(
                    f"{prefix}environment variable {name} is not set (${{env:{name}}})"
                )
            value = environ[name]
            register_secret(value)
            return value
        ds_match = _DS.match(body)
        if not ds_match:
            raise ConfigError(
                f"{prefix}unknown macro ${{{body}}}: expected ${{ds}}, ${{ds-N}}, ${{ds+N}}, "
                f"${{ds:FORMAT}} or ${{env:NAME}}"
            )
        shift = int(ds_match.group("days") or 0)
        if ds_match.group("sign") == "-":
            shift = -shift
        when = day + dt.timedelta(days=shift)
        fmt = ds_match.group("fmt")
        if not fmt:
            return when.isoformat()
        try:
            return when.strftime(fmt)
        except ValueError as exc:
            raise ConfigError(f"{prefix}bad date format in ${{{body}}}: {exc}") from exc

    return _MACRO.sub(repl, text)
