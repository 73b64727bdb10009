"""Plan loading, DAG checks, cluster profiles, the FSM table, the job-kind table."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lakeshift.coordinator.clusters import load_clusters
from lakeshift.coordinator.fsm import (
    TRANSITIONS,
    IllegalTransitionError,
    State,
    check_transition,
    is_allowed,
)
from lakeshift.coordinator.plan import load_plan, plan_from_dict
from lakeshift.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("src", "dst", "ok"),
    [
        ("PENDING", "START_POINT", True),
        ("PENDING", "LOADING", True),  # nothing to sync: no start point
        ("START_POINT", "LOADING", True),
        ("LOADING", "CATCHING_UP", True),
        ("LOADING", "VALIDATING", True),  # nothing to catch up
        ("CATCHING_UP", "VALIDATING", True),
        ("VALIDATING", "REPAIRING", True),
        ("REPAIRING", "VALIDATING", True),
        ("VALIDATING", "READY", True),
        ("READY", "CUT_OVER", True),
        ("CUT_OVER", "DONE", True),
        ("DONE", "READY", True),  # rollback
        ("DONE", "PENDING", True),  # re-run
        ("FAILED", "VALIDATING", True),  # resume where it failed
        ("PAUSED", "LOADING", True),  # resume where it was paused
        ("LOADING", "PAUSED", True),
        ("PENDING", "DONE", False),
        ("VALIDATING", "DONE", False),  # never without the cut-over
        ("LOADING", "READY", True),  # no validation configured
        ("CATCHING_UP", "LOADING", False),
        ("REPAIRING", "READY", False),  # a repair is always validated again
        ("READY", "DONE", False),
        ("FAILED", "DONE", False),
        ("STOPPED", "DONE", False),
    ],
)
def test_transition_table(src: str, dst: str, ok: bool) -> None:
    assert is_allowed(State(src), State(dst)) is ok
    if ok:
        check_transition(State(src), State(dst))
    else:
        with pytest.raises(IllegalTransitionError, match=f"{src} -> {dst}"):
            check_transition(State(src), State(dst), "t1")


def test_every_state_has_rules() -> None:
    assert set(TRANSITIONS) == set(State)


def _write(tmp_path: Path, text: str, name: str = "plan.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_load_plan_macros_globs_templates(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for part in ("a", "b", "c"):
        (raw / "events" / part).mkdir(parents=True)
        (raw / "events" / part / "x.parquet").write_bytes(b"1234")
    plan_file = _write(
        tmp_path,
        f"""
name: demo
validations:
  by_id: {{keys: [id], args: [--tolerance, "0"]}}
tables:
  - name: customers
    source: {raw}/customers/day=${{ds}}
    target: /lake/customers
    validation: by_id
    priority: 5
    size: 2GB
  - name: events
    source: "{raw}/events/*"
    expand: true
    target: /lake/events_{{stem}}
    keys: [event_id]
    depends_on: [customers]
  - name: report
    load: {{kind: script, file: jobs/x.py, args: ["{{table}}", "{{run_id}}"]}}
    validation: none
    depends_on: [events]
""",
    )
    plan = load_plan(plan_file, run_date=dt.date(2026, 3, 1))
    assert plan.name == "demo"
    assert sorted(plan.tables) == ["customers", "events_a", "events_b", "events_c", "report"]
    cust = plan.tables["customers"]
    assert cust.values["source"] == f"{raw}/customers/day=2026-03-01"
    assert cust.values["keys"] == "id"
    assert cust.size_bytes == 2 * 2**30
    assert "--tolerance=0" in cust.jobs["validate"].render({"result": "/r.json"})
    assert cust.values["target_spec"] == "delta:/lake/customers"
    assert cust.values["source_spec"] == cust.values["source"]  # no source_format: as given
    assert list(cust.jobs) == ["load", "validate", "final_validate"]
    report = plan.tables["report"]
    values = {**report.values, "result": "/r", "run_id": "r7"}
    assert report.jobs["load"].render(values, "report") == ["report", "r7"]
    assert plan.tables["events_b"].values["target"] == "/lake/events_b"
    assert plan.tables["events_b"].size_bytes == 4
    assert plan.tables["report"].depends_on == ["events_a", "events_b", "events_c"]
    assert plan.tables["report"].layer == 2
    assert plan.layers == 3
    assert plan.order[0] == "customers"
    assert plan.order[-1] == "report"


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        (
            [
                {"name": "a", "depends_on": ["c"]},
                {"name": "b", "depends_on": ["a"]},
                {"name": "c", "depends_on": ["b"]},
            ],
            "dependency cycle a -> c -> b -> a",
        ),
        ([{"name": "a", "depends_on": ["a"]}], "dependency cycle a -> a"),
        ([{"name": "a", "depends_on": ["zzz"]}], "unknown table 'zzz'"),
        ([{"name": "a"}, {"name": "a"}], "duplicate table name 'a'"),
        ([{"name": "a", "load": "nope"}], "tables[0].load"),
        ([{"name": "a", "bogus": 1}], "unknown field"),
        ([{"name": "a", "source": "/s"}], "a copy load needs source and target"),
        ([{"name": "a", "load": {"kind": "script"}}], "a script load needs `file`"),
        ([{"name": "a", "load": {"kind": "transform"}}], "a transform load needs `config`"),
        (
            [{"name": "a", "load": {"kind": "script", "file": "x.py", "args": ["{nope}"]}}],
            "needs {nope}",
        ),
        ([{"name": "a", "cutover": {"route": True}}], "cutover.route needs a target in the"),
        ([{"name": "a", "validation": "missing"}], "validation template 'missing' not found"),
    ],
)
def test_plan_errors(tables: list[dict], message: str) -> None:
    base = {"source": "/s", "target": "/t", "keys": ["id"]}
    data = {"tables": [{**base, **t} if "source" not in t else t for t in tables]}
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        plan_from_dict(data)


def test_deep_dag_sixty_layers_no_recursion_limit() -> None:
    n = 3000  # a chain: 3000 layers
    tables = [{"name": f"t{i:04d}", "source": "/s", "target": "/t"} for i in range(n)]
    for i in range(1, n):
        tables[i]["depends_on"] = [f"t{i - 1:04d}"]
    plan = plan_from_dict({"tables": tables})
    assert plan.layers == n
    assert plan.tables["t0000"].height == n - 1


def test_plan_file_error_names_file_and_field(tmp_path: Path) -> None:
    p = _write(tmp_path, "tables:\n  - name: a\n    priority: high\n")
    with pytest.raises(ConfigError, match=r"plan.yaml: tables\[0\]\.priority"):
        load_plan(p)


def test_example_configs_load() -> None:
    clusters = load_clusters(REPO / "conf" / "clusters.yaml")
    assert clusters.clusters["local"].capacity == 2
    plan = load_plan(REPO / "conf" / "examples" / "plan.yaml", run_date=dt.date(2026, 1, 2))
    assert plan.tables["orders"].depends_on == ["customers"]
    assert plan.clusters_path == REPO / "conf" / "examples" / ".." / "clusters.yaml"


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ("{backend: spark-submit, master: 'k8s://https://h:6443'}", "needs `image`"),
        ("{backend: spark-submit, master: 'mesos://h'}", "master"),
        ("{backend: emr, region: x}", "cluster_id"),
        ("{backend: livy, url: 'http://h', code_uri: /c, capacity: 0}", "capacity"),
        ("{backend: ftp}", "backend"),
    ],
)
def test_cluster_profile_errors(tmp_path: Path, profile: str, message: str) -> None:
    p = _write(tmp_path, f"clusters:\n  c1: {profile}\n", "clusters.yaml")
    with pytest.raises(ConfigError, match=message):
        load_clusters(p)


def test_source_format_feeds_copy_and_validate() -> None:
    plan = plan_from_dict(
        {
            "defaults": {"source_format": "parquet", "format": "delta"},
            "tables": [
                {"name": "a", "source": "/raw/a", "target": "/lake/a", "keys": ["id", "k"]},
                {
                    "name": "b",
                    "source": "jdbc:postgresql://h/db",
                    "target": "/lake/b",
                    "keys": ["id"],
                },
            ],
        }
    )
    a = plan.tables["a"]
    assert "--source-format=parquet" in a.jobs["load"].render({"result": "/r", "run_id": "r"})
    assert (a.values["source_spec"], a.values["target_spec"]) == ("parquet:/raw/a", "delta:/lake/a")
    assert a.values["keys"] == "id,k"
    assert plan.tables["b"].values["source_spec"] == "jdbc:postgresql://h/db"
