"""Shared fixtures: one local Spark session (Delta enabled) for the whole test run."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

os.environ.setdefault("LAKESHIFT_DRIVER_MEMORY", "3g")
# Python workers (mapInArrow) and CLI subprocesses run this venv's interpreter
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A ``local[2]`` session from lakeshift's own builder: Delta, UTC, few shuffle partitions."""
    from lakeshift.spark import SparkProfile, get_or_create

    warehouse = tmp_path_factory.mktemp("warehouse")
    session, created = get_or_create(
        SparkProfile(
            master="local[2]",
            app_name="lakeshift-tests",
            shuffle_partitions=4,
            ui=False,
            conf={"spark.sql.warehouse.dir": str(warehouse)},
        )
    )
    yield session
    if created:
        session.stop()
