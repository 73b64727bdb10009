"""Every job the coordinator renders is a command line the real ``lakeshift`` parser accepts.

The oracle is the CLI parser itself (``lakeshift.cli.build_parser``): each job line of a plan
with every load kind, a sync, a validation gate with repairs and a metastore cut-over is parsed
back, and the values the coordinator meant to pass are read from the parsed namespace.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeshift.cli import build_parser
from lakeshift.config import load_model
from lakeshift.coordinator.plan import PlanConfig, load_plan
from lakeshift.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "conf" / "examples"

SYNC = """name: orders
keys: [id]
state_dir: {state}
source: {{kind: delta_cdf, path: {root}/src}}
target: {{kind: delta, path: {root}/dst}}
"""

PLAN = """name: contract
defaults: {{validation: gate, metastore: {root}/metastore}}
validations:
  gate: {{keys: [id], max_deviation: 0.001, repair_rounds: 1, args: [--samples, "5"]}}
tables:
  - {{name: lake, source: {root}/src, source_format: delta, target: {root}/dst, sync: sync.yaml,
      load: {{kind: copy, args: [--target-file-size, 64MB]}}, cutover: {{catalog: db.t}}}}
  - {{name: tree, load: files, source: {root}/logs, target: {root}/mirror, validation: none,
      cutover: {{route: true}}}}
  - {{name: mongo, load: {{kind: transform, config: t.yaml, args: [--append]}}, validation: none}}
"""

#: the job file each command is run from (the coordinator submits these)
JOB_COMMAND = {
    "jobs/bulk_copy.py": "copy",
    "jobs/files_copy.py": "files",
    "jobs/nosql_to_sql.py": "transform",
    "jobs/incremental_sync.py": "sync",
    "jobs/catalog.py": "catalog",
}


@pytest.fixture
def plan_path(tmp_path: Path) -> Path:
    (tmp_path / "sync.yaml").write_text(SYNC.format(root=tmp_path, state=tmp_path / "state"))
    (tmp_path / "t.yaml").write_text("# transform config (not read at plan time)\n")
    p = tmp_path / "plan.yaml"
    p.write_text(PLAN.format(root=tmp_path))
    return p


def _parse(file: str, args: list[str]):
    if file == "jobs/validate.py":
        words = args if args[:1] == ["repair"] else ["validate", *args]
    else:
        words = [JOB_COMMAND[file], *args]
    return build_parser().parse_args(words)


def test_every_job_line_parses_with_the_real_parser(plan_path: Path, tmp_path: Path) -> None:
    plan = load_plan(plan_path)
    result = str(tmp_path / "r.json")
    kinds: set[str] = set()
    for table in plan.tables.values():
        for kind, job in table.jobs.items():
            ns = _parse(job.file, job.render({"result": result, "run_id": "run-7"}))
            kinds.add(kind)
            got = getattr(ns, "json_out", None) or getattr(ns, "json_path", None)
            got = got or getattr(ns, "summary", None)
            assert got == result, (table.name, kind)
    assert kinds == {
        "start_point",
        "load",
        "catch_up",
        "dual_run",
        "validate",
        "repair",
        "final_sync",
        "final_validate",
        "finalize",
        "switch",
        "rollback",
    }
    lake = plan.tables["lake"].jobs
    ns = _parse(lake["load"].file, lake["load"].render({"result": result, "run_id": "run-7"}))
    assert (ns.source, ns.target, ns.source_format, ns.run_id) == (
        f"{tmp_path}/src",
        f"{tmp_path}/dst",
        "delta",
        "run-7",
    )
    assert ns.target_file_size == "64MB"
    ns = _parse(lake["validate"].file, lake["validate"].render({"result": result}))
    assert (ns.keys, ns.threshold, ns.samples) == ("id", 0.001, 5)
    ns = _parse(lake["repair"].file, lake["repair"].render({"result": result}))
    assert ns.command == "repair" and ns.keys == "id"
    ns = _parse(lake["start_point"].file, lake["start_point"].render({"result": result}))
    assert (ns.action, ns.config) == ("start-point", str(tmp_path / "sync.yaml"))
    ns = _parse(lake["catch_up"].file, lake["catch_up"].render({"result": result}))
    assert (ns.action, ns.once) == ("run", True)
    ns = _parse(lake["switch"].file, lake["switch"].render({"result": result}))
    assert (ns.action, ns.table, ns.to, ns.metastore) == (
        "switch",
        "db.t",
        f"{tmp_path}/dst",
        f"{tmp_path}/metastore",
    )
    tree = plan.tables["tree"].jobs
    assert _parse(tree["catch_up"].file, tree["catch_up"].render({"result": result})).update
    assert _parse(tree["validate"].file, tree["validate"].render({"result": result})).verify
    mongo = plan.tables["mongo"].jobs
    ns = _parse(mongo["load"].file, mongo["load"].render({"result": result, "run_id": "r"}))
    assert (ns.config, ns.mode) == (str(tmp_path / "t.yaml"), "append")
    assert plan.tables["tree"].route == (f"{tmp_path}/logs", f"{tmp_path}/mirror")


def test_bad_job_arguments_fail_when_the_plan_loads(tmp_path: Path) -> None:
    p = tmp_path / "plan.yaml"
    p.write_text(
        "tables:\n  - {name: t, source: /a, target: /b, load: {kind: copy, args: [--nope]}}\n"
    )
    with pytest.raises(ConfigError, match=r"table t: .*unrecognized arguments: --nope"):
        load_plan(p)


def test_a_gate_without_keys_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "plan.yaml"
    p.write_text(
        "defaults: {validation: g}\nvalidations: {g: {max_deviation: 0.001}}\n"
        "tables:\n  - {name: t, source: /a, target: /b}\n"
    )
    with pytest.raises(ConfigError, match="needs key columns"):
        load_plan(p)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_loads(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "example")  # examples take secrets from the environment
    if path.name.startswith("plan"):
        load_plan(path)  # jobs parsed, sync files validated
        return
    from lakeshift.sync.config import SyncConfig

    if path.name.startswith("sync"):
        load_model(path, SyncConfig)
    else:
        assert path.read_text().strip()  # other commands' examples have their own tests
    assert PlanConfig  # the plan model is importable next to them
