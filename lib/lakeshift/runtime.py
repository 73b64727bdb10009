"""Helpers that turn common CLI options into a Spark profile and a run date."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

from lakeshift.config.macros import parse_run_date
from lakeshift.errors import UsageError
from lakeshift.spark import SparkProfile


def profile_from_args(args: argparse.Namespace, app_name: str) -> SparkProfile:
    """A :class:`SparkProfile` from ``--master``, ``--jars``, ``--metastore``, ``--spark-conf``.

    The master is ``--master``, else ``$LAKESHIFT_MASTER``, else the one spark-submit set, else
    ``local[*]``.
    """
    conf: dict[str, str] = {}
    for item in getattr(args, "spark_conf", []) or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--spark-conf: expected KEY=VALUE, found {item!r}")
        conf[key.strip()] = value
    master = getattr(args, "master", None) or os.environ.get("LAKESHIFT_MASTER")
    if master is None and not os.environ.get("PYSPARK_GATEWAY_PORT"):
        # not under spark-submit (which sets the master and starts the JVM): run locally
        master = "local[*]"
    return SparkProfile(
        master=master,
        app_name=app_name,
        jars=getattr(args, "jars", "auto"),
        metastore=getattr(args, "metastore", None) or os.environ.get("LAKESHIFT_METASTORE"),
        event_log=_event_log_dir(getattr(args, "event_log", None)),
        conf=conf,
    )


def _event_log_dir(value: str | None) -> str | None:
    """``--event-log``: a URI as given; a local folder made and turned into a ``file:`` URI."""
    if not value or "://" in value:
        return value
    folder = Path(value).expanduser().resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--event-log: cannot create folder {folder}: {exc}") from exc
    return folder.as_uri()


def run_date_from_args(args: argparse.Namespace) -> dt.date:
    """The run date from ``--run-date`` (default: today, UTC)."""
    return parse_run_date(getattr(args, "run_date", None))
