"""MongoDB change events: the documented change-stream shape turned into change-frame records.

A change event (``collection.watch(full_document="updateLookup")``) looks like::

    {"_id": {"_data": "8263…"},              # resume token; hex that sorts in stream order
     "operationType": "insert" | "update" | "replace" | "delete" | …,
     "clusterTime": Timestamp(1700000000, 3),
     "ns": {"db": "shop", "coll": "orders"},
     "documentKey": {"_id": ObjectId(…)},
     "fullDocument": {…},                     # inserts, replaces; updates with updateLookup
     "txnNumber": Int64(…), "lsid": {…}}      # only for events inside a transaction

Deletes carry only ``documentKey``; they become tombstone records, never dropped. An update whose
looked-up ``fullDocument`` is null (the document was deleted meanwhile) yields nothing: its delete
event follows in the stream. Other operation types (drop, rename, invalidate) are counted and
skipped. Pure Python, run inside ``mapInArrow`` on executors and by the live recorder.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from lakeshift.errors import SourceError

DML = ("insert", "update", "replace", "delete")

# the record fields a change event becomes (see lakeshift.sources.changes)
RECORD_DDL = (
    "_key STRING, _doc STRING, _lakeshift_deleted BOOLEAN, _lakeshift_ts BIGINT, "
    "_lakeshift_ord STRING"
)


class ChangeStreamHistoryLostError(SourceError):
    """The stored resume point is older than the oldest entry of the oplog."""


def cluster_time_to_long(value: Any) -> int:
    """A BSON ``Timestamp`` (or ``{"t":…, "i":…}``) packed as ``seconds << 32 | increment``.

    Example:
        >>> from bson import Timestamp
        >>> cluster_time_to_long(Timestamp(1, 2))
        4294967298
    """
    if isinstance(value, Mapping):
        return (int(value["t"]) << 32) | int(value["i"])
    return (int(value.time) << 32) | int(value.inc)


def to_plain(value: Any) -> Any:
    """Turn BSON values into JSON-ready values Spark's ``from_json`` parses.

    ObjectId, UUID and Decimal128 become strings, datetimes ISO-8601 UTC strings, Int64 ints,
    binary data base64, Timestamps packed integers; documents and arrays recurse.
    """
    from bson import Binary, Decimal128, ObjectId, Timestamp

    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, ObjectId | uuid.UUID):
        return str(value)
    if isinstance(value, Decimal128):
        return str(value.to_decimal())
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, Timestamp):
        return cluster_time_to_long(value)
    if isinstance(value, Binary | bytes):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def key_string(value: Any) -> str:
    """The key column value for a document ``_id`` (ObjectId hex, or the plain value as text)."""
    plain = to_plain(value)
    return plain if isinstance(plain, str) else json.dumps(plain, sort_keys=True)


def event_to_record(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """One change event as a record with ``RECORD_DDL`` fields, or None when it changes nothing.

    Raises:
        SourceError: the event lacks a field the documented shape requires.
    """
    try:
        op = event["operationType"]
        if op not in DML:
            return None
        token = event["_id"]["_data"]
        ts = cluster_time_to_long(event["clusterTime"])
        if op == "delete":
            return {
                "_key": key_string(event["documentKey"]["_id"]),
                "_doc": None,
                "_lakeshift_deleted": True,
                "_lakeshift_ts": ts,
                "_lakeshift_ord": str(token),
            }
        doc = event.get("fullDocument")
        if doc is None:
            return None
        key = event["documentKey"]["_id"] if "documentKey" in event else doc["_id"]
        return {
            "_key": key_string(key),
            "_doc": json.dumps(to_plain(doc)),
            "_lakeshift_deleted": False,
            "_lakeshift_ts": ts,
            "_lakeshift_ord": str(token),
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise SourceError(
            f"change event: expected the documented change-stream shape, missing {exc} in "
            f"{str(dict(event))[:200]}"
        ) from exc


def parse_line(line: str) -> Mapping[str, Any] | None:
    """One Extended JSON line (canonical or relaxed) as a BSON-typed mapping; blank lines → None."""
    from bson import json_util

    text = line.strip()
    if not text:
        return None
    try:
        return json_util.loads(text)
    except ValueError as exc:
        raise SourceError(
            f"change event: expected Extended JSON ({exc}), found {text[:120]!r}"
        ) from exc


def arrow_lines_to_records(batches: Iterator[Any]) -> Iterator[Any]:
    """``mapInArrow`` function: Arrow batches of text lines → Arrow batches of change records."""
    import pyarrow as pa

    schema = pa.schema(
        [
            ("_key", pa.string()),
            ("_doc", pa.string()),
            ("_lakeshift_deleted", pa.bool_()),
            ("_lakeshift_ts", pa.int64()),
            ("_lakeshift_ord", pa.string()),
        ]
    )
    for batch in batches:
        out = []
        for line in batch.column(0).to_pylist():
            event = parse_line(line or "")
            record = event_to_record(event) if event is not None else None
            if record is not None:
                out.append(record)
        yield pa.RecordBatch.from_pylist(out, schema=schema)


def event_to_json_line(event: Mapping[str, Any]) -> str:
    """A change event as one canonical Extended JSON line (types survive the round trip)."""
    from bson import json_util

    return json_util.dumps(event, json_options=json_util.CANONICAL_JSON_OPTIONS)


def history_lost_advice(exc: BaseException, where: str) -> ChangeStreamHistoryLostError | None:
    """Map pymongo's ChangeStreamHistoryLost (error code 286) to a clear error, else None."""
    code = getattr(exc, "code", None)
    name = ""
    details = getattr(exc, "details", None)
    if isinstance(details, Mapping):
        name = str(details.get("codeName", ""))
    if code == 286 or name == "ChangeStreamHistoryLost" or "ChangeStreamHistoryLost" in str(exc):
        return ChangeStreamHistoryLostError(
            f"{where}: the stored resume point is no longer in the oplog (ChangeStreamHistoryLost, "
            "code 286); changes since it are lost: enlarge the oplog (replSetResizeOplog) or its "
            "retention, rerun the bulk copy, then record a new start point with "
            "`lakeshift sync start-point`"
        )
    return None
