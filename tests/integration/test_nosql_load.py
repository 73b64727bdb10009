"""The PostgreSQL load path: streamed COPY with bounded child buffers, keys added after the load.

Runs the ``mapInArrow`` loader function directly (no Spark job needed: it only reads an
iterator of Arrow batches) against a real PostgreSQL; expectations are counted in the test from
the generated input.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from lakeshift.errors import SinkError
from lakeshift.sinks.sql import (
    TIMING_PREFIX,
    Connection,
    SqlColumn,
    SqlSink,
    SqlTable,
    TableLoad,
    partition_loader,
    wide_splitter,
)
from tests.services import postgres_server  # noqa: F401

PARENT = SqlTable(
    "lp_parent",
    (SqlColumn("id", "long", nullable=False), SqlColumn("doc", "json")),
    ("id",),
)
CHILD = SqlTable(
    "lp_child",
    (
        SqlColumn("id", "long", nullable=False),
        SqlColumn("_ord0", "int", nullable=False),
        SqlColumn("sku", "string"),
    ),
    ("id", "_ord0"),
    parent="lp_parent",
    parent_key=("id",),
    references=("id",),
)
P_TYPE = pa.struct([("id", pa.int64()), ("doc", pa.string())])
C_TYPE = pa.struct([("id", pa.int64()), ("_ord0", pa.int32()), ("sku", pa.string())])


def wide_batches(n_batches: int, per_batch: int, orphan: bool = False) -> list[pa.RecordBatch]:
    """Wide rows: ``t0`` one parent row per document, ``t1`` ``id % 4`` child rows."""
    out = []
    for b in range(n_batches):
        ids = range(b * per_batch, (b + 1) * per_batch)
        t0 = [[{"id": i, "doc": f'{{"n": {i}}}'}] for i in ids]
        t1 = [
            [{"id": i + (10**9 if orphan else 0), "_ord0": j, "sku": f"s{j}"} for j in range(i % 4)]
            for i in ids
        ]
        out.append(
            pa.RecordBatch.from_arrays(
                [pa.array(t0, pa.list_(P_TYPE)), pa.array(t1, pa.list_(C_TYPE))], names=["t0", "t1"]
            )
        )
    return out


def run_loader(
    conn: Connection, batches: list[pa.RecordBatch], flush_rows: int, run_id: str
) -> dict:
    loads = [TableLoad("t0", PARENT), TableLoad("t1", CHILD)]
    fn = partition_loader(
        conn, run_id, "stream", [PARENT, CHILD], wide_splitter(loads), flush_rows=flush_rows
    )
    out = pa.Table.from_batches(list(fn(iter(batches)))).to_pydict()
    return dict(zip(out["name"], out["rows"], strict=True))


@pytest.mark.parametrize("flush_rows", [25, 1_000_000])  # many flushes / one stream per table
def test_streamed_load_with_deferred_keys(postgres_server, flush_rows: int) -> None:
    conn = Connection("postgres", postgres_server.url)
    sink = SqlSink(conn)
    sink.prepare([PARENT, CHILD], "replace")
    pending = sink.missing_keys([PARENT, CHILD])
    assert [s.split(" ADD ")[1].split(" (")[0] for s in pending] == [
        "PRIMARY KEY",
        "PRIMARY KEY",
        "FOREIGN KEY",
    ]
    batches = wide_batches(12, 40)  # 480 documents, 120 each with 0, 1, 2, 3 children
    totals = run_loader(conn, batches, flush_rows, f"run-{flush_rows}")
    assert totals["inserted:lp_parent"] == totals["sent:lp_parent"] == 480
    assert totals["inserted:lp_child"] == totals["sent:lp_child"] == 120 * (0 + 1 + 2 + 3)
    assert {"copy", "handoff", "commit", "ledger", "connect"} <= {
        k[len(TIMING_PREFIX) :] for k in totals if k.startswith(TIMING_PREFIX)
    }
    assert sink.finish([PARENT, CHILD]) == pending
    assert sink.missing_keys([PARENT, CHILD]) == [] and sink.finish([PARENT, CHILD]) == []
    assert sink.count_rows("lp_parent") == 480 and sink.count_rows("lp_child") == 720
    assert sink.count_rows("lp_parent", "doc ->> 'n' = id::text") == 480  # jsonb, not text
    db = conn.connect()  # the foreign key is real now
    try:
        with pytest.raises(Exception, match="foreign key"):
            db.cursor().execute("INSERT INTO lp_child VALUES (999999, 0, 'x')")
    finally:
        db.close()
    # the same partition of the same run again: the ledger says done, nothing is written
    again = run_loader(conn, batches, flush_rows, f"run-{flush_rows}")
    assert again["inserted:lp_child"] == 720 and sink.count_rows("lp_child") == 720


def test_finish_reports_rows_that_break_a_deferred_key(postgres_server) -> None:
    conn = Connection("postgres", postgres_server.url)
    sink = SqlSink(conn)
    sink.prepare([PARENT, CHILD], "replace")
    run_loader(conn, wide_batches(2, 10, orphan=True), 1000, "run-orphans")
    with pytest.raises(SinkError, match="foreign key"):
        sink.finish([PARENT, CHILD])
    assert sink.missing_keys([PARENT, CHILD])[-1].startswith('ALTER TABLE "lp_child" ADD FOREIGN')


def test_append_mode_keeps_keys_up_front(postgres_server) -> None:
    conn = Connection("postgres", postgres_server.url)
    sink = SqlSink(conn)
    sink.prepare([PARENT, CHILD], "replace")
    sink.finish([PARENT, CHILD])
    sink.prepare([PARENT, CHILD], "append")
    assert sink.missing_keys([PARENT, CHILD]) == []
    assert "PRIMARY KEY" in SqlSink(conn, defer_keys=False).ddl([PARENT], "replace")[-1]
    assert "PRIMARY KEY" not in sink.ddl([PARENT], "replace")[-1]


def test_replace_forgets_the_ledger_of_its_labels(postgres_server) -> None:
    conn = Connection("postgres", postgres_server.url)
    sink = SqlSink(conn)
    batches = wide_batches(1, 8)
    sink.prepare([PARENT, CHILD], "replace", labels=["stream"])
    first = run_loader(conn, batches, 1000, "same-run")
    # without the labels the ledger keeps the partition: a re-run would skip it (tables empty)
    sink.prepare([PARENT, CHILD], "replace")
    assert run_loader(conn, batches, 1000, "same-run")["inserted:lp_parent"] == 8
    assert sink.count_rows("lp_parent") == 0
    sink.prepare([PARENT, CHILD], "replace", labels=["stream", "o'ther|x"])
    again = run_loader(conn, batches, 1000, "same-run")
    assert again["inserted:lp_parent"] == first["inserted:lp_parent"] == 8
    assert sink.count_rows("lp_parent") == 8
    assert sink.count_rows("lakeshift_load_ledger", "run_id = 'same-run'") == 1 + len(
        [k for k in again if not k.startswith(TIMING_PREFIX)]
    )
