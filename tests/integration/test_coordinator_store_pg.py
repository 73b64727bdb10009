"""The state store on a real PostgreSQL server (same SQL as SQLite through the DB-API adapter)."""

from __future__ import annotations

from collections import Counter

import pytest

from lakeshift.coordinator.backends.fake import FakeBackend
from lakeshift.coordinator.plan import plan_from_dict
from lakeshift.coordinator.scheduler import Coordinator
from lakeshift.coordinator.store import StateStore, StoreError
from tests.services import postgres_server  # noqa: F401

pytest.importorskip("psycopg")


def test_postgres_store_crash_resume_and_lock(postgres_server) -> None:
    url = postgres_server.url
    plan = plan_from_dict(
        {
            "name": "pg",
            "defaults": {"validation": "v", "auto_approve": True},
            "validations": {"v": {"keys": ["id"]}},
            "tables": [
                {
                    "name": f"t{i}",
                    "source": "/s",
                    "target": "/t",
                    "keys": ["id"],
                    "depends_on": [f"t{i - 1}"] if i else [],
                }
                for i in range(4)
            ],
        }
    )
    cluster = FakeBackend("x", capacity=2, ticks=1)
    s1 = StateStore.open(url)
    s1.init_schema()
    with s1.transaction() as cur:  # a clean slate when the server is shared by the session
        for t in ("audit", "jobs", "tables", "meta", "requests"):
            cur.execute(f"DELETE FROM {t}")
    Coordinator(plan, {"x": cluster}, s1, poll_interval=0, sleep=lambda s: None, max_ticks=4).run()
    s1.acquire_lock()
    s2 = StateStore.open(url)
    with pytest.raises(StoreError, match="another coordinator"):
        s2.acquire_lock()
    s1.close()  # like a dead coordinator: its session (and advisory lock) ends
    summary = Coordinator(plan, {"x": cluster}, s2, poll_interval=0, sleep=lambda s: None).run()
    assert summary.states == {"DONE": 4}
    assert Counter(a[2] for a in s2.audit() if a[4] == "DONE") == {f"t{i}": 1 for i in range(4)}
    # every job of every table submitted once, across the crash
    assert Counter((s.table, s.kind) for s in cluster.submitted) == {
        (f"t{i}", k): 1 for i in range(4) for k in ("load", "validate", "final_validate")
    }
    assert s2.get_meta("run_id") == "pg"
    s2.close()
