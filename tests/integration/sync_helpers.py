"""Recorded MongoDB change events for sync tests, and their independently computed end state.

MongoDB wire-compatible servers that run here (FerretDB) have no change streams, so the sync's
change-stream path is tested by replaying events in exactly the documented change-stream shape
(``_id`` resume token, operationType, documentKey, fullDocument, clusterTime, txnNumber, lsid,
ns), written as Extended JSON lines, through the same parse and apply code as a live stream.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

from bson import Binary, Int64, ObjectId, Timestamp

from lakeshift.sources.mongo_events import event_to_json_line

COLUMNS = (
    "_id STRING, customer STRING, total DOUBLE, status STRING, "
    "items ARRAY<STRUCT<sku: STRING, qty: INT>>, updated_at TIMESTAMP"
)
NS = {"db": "shop", "coll": "orders"}
T0 = 1_760_000_000


def token(t: int, i: int) -> str:
    """A resume-token-like hex string that sorts in stream order (as real ``_data`` does)."""
    return f"82{t:08X}{i:08X}2B022C0100296E5A1004"


def _doc(rng: random.Random, oid: ObjectId, t: int) -> dict:
    items = [
        {"sku": f"sku-{rng.randint(1, 50)}", "qty": rng.randint(1, 9)}
        for _ in range(rng.randint(0, 3))
    ]
    return {
        "_id": oid,
        "customer": f"c{rng.randint(1, 20)}",
        "total": round(rng.uniform(1, 500), 2),
        "status": rng.choice(["new", "paid", "shipped"]),
        "items": items,
        "updated_at": dt.datetime.fromtimestamp(t, dt.timezone.utc).replace(tzinfo=None),
    }


def make_events(n_events: int, seed: int = 1, start: int = 0) -> list[dict]:
    """Change events in stream order: inserts, updates, replaces, deletes and re-inserts.

    Deterministic for a seed (ObjectIds too), so a writer process and the test agree.
    """
    rng = random.Random(seed)
    live: dict[ObjectId, dict] = {}
    dead: list[ObjectId] = []
    events = []
    for n in range(start, start + n_events):
        t, i = T0 + n // 3, n % 3 + 1
        roll = rng.random()
        base = {"_id": {"_data": token(t, i)}, "clusterTime": Timestamp(t, i), "ns": NS}
        if roll < 0.08 and dead:  # re-insert of a deleted key
            oid = dead.pop(rng.randrange(len(dead)))
            op = "insert"
        elif roll < 0.35 or not live:
            oid, op = (
                ObjectId(T0.to_bytes(4, "big") + seed.to_bytes(4, "big") + n.to_bytes(4, "big")),
                "insert",
            )
        elif roll < 0.7:
            oid, op = rng.choice(list(live)), "update"
        elif roll < 0.8:
            oid, op = rng.choice(list(live)), "replace"
        else:
            oid = rng.choice(list(live))
            live.pop(oid)
            dead.append(oid)
            events.append({**base, "operationType": "delete", "documentKey": {"_id": oid}})
            continue
        doc = _doc(rng, oid, t)
        live[oid] = doc
        ev = {**base, "operationType": op, "documentKey": {"_id": oid}, "fullDocument": doc}
        if rng.random() < 0.2:
            lsid = {"id": Binary(rng.randbytes(16), 4), "uid": Binary(rng.randbytes(32), 0)}
            ev.update({"txnNumber": Int64(rng.randint(1, 99)), "lsid": lsid})
        events.append(ev)
    return events


def expected_state(events: list[dict]) -> dict[str, dict]:
    """The end state of replaying ``events`` in stream order (plain Python, independent)."""
    state: dict[str, dict] = {}
    for ev in sorted(events, key=lambda e: (e["clusterTime"].time, e["clusterTime"].inc)):
        key = str(ev["documentKey"]["_id"])
        if ev["operationType"] == "delete":
            state.pop(key, None)
        else:
            state[key] = ev["fullDocument"]
    return state


def write_events(path: Path, events: list[dict]) -> Path:
    """Write events as Extended JSON lines (atomically: temp file, then rename)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(event_to_json_line(e) + "\n" for e in events), encoding="utf-8")
    tmp.rename(path)
    return path
