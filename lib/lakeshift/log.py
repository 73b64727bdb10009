"""Logging setup with secret redaction.

Every value substituted from ``${env:NAME}`` and every :class:`pydantic.SecretStr` that passes
through :func:`register_secret` is replaced by ``***`` in all log records.
"""

from __future__ import annotations

import logging
import re
import threading

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
_PASSWORD_IN_URL = re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^/:@\s]*:)[^@/\s]+(?P<post>@)", re.I)
_PASSWORD_PARAM = re.compile(r"(?P<pre>(?:password|secret|token)=)[^&\s]+", re.I)


def register_secret(value: str | None) -> None:
    """Remember ``value`` so it is redacted from every log line (ignores short values)."""
    if value and len(value) >= 4:
        with _LOCK:
            _SECRETS.add(value)


def redact(text: str) -> str:
    """Return ``text`` with registered secrets and URL/query-string passwords replaced by ``***``.

    Example:
        >>> redact("jdbc:postgresql://u:pw123@h/db?password=pw123")
        'jdbc:postgresql://u:***@h/db?password=***'
    """
    with _LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, "***")
    text = _PASSWORD_IN_URL.sub(r"\g<pre>***\g<post>", text)
    return _PASSWORD_PARAM.sub(r"\g<pre>***", text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts secrets from the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message with secrets redacted."""
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def setup_logging(level: str = "INFO") -> None:
    """Configure the ``lakeshift`` logger once: stderr, redaction, the given level."""
    logger = logging.getLogger("lakeshift")
    logger.setLevel(level.upper())
    if not any(isinstance(f, RedactingFilter) for h in logger.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(RedactingFilter())
        logger.addHandler(handler)
        logger.propagate = False
