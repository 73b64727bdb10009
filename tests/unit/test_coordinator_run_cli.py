"""``lakeshift run`` as an operator drives it: the READY hint and its exit code,
``--wait-for-approval`` picking up ``lakeshift approve`` from another process, and the live view
on a terminal. Clusters are in-process fakes (make_backend patched); the CLI, the plan loader and
the SQLite state store are the real ones."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from lakeshift.cli import main as cli
from lakeshift.coordinator import backends as backends_mod
from lakeshift.coordinator import command
from lakeshift.coordinator.backends.fake import FakeBackend
from lakeshift.coordinator.store import StateStore


@pytest.fixture
def plan_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "clusters.yaml").write_text(
        json.dumps({"clusters": {"c1": {"backend": "spark-submit", "master": "local[1]"}}})
    )
    plan = {
        "name": "gate",
        "clusters": "clusters.yaml",
        "defaults": {"validation": "v", "cutover": {"final_validate": False}},
        "validations": {"v": {"keys": ["id"], "max_deviation": 0.001}},
        "tables": [
            {"name": n, "source": f"/s/{n}", "target": f"/t/{n}", "keys": ["id"]}
            for n in ("a", "b")
        ],
    }
    path = tmp_path / "plan.yaml"
    path.write_text(json.dumps(plan))
    monkeypatch.setattr(backends_mod, "make_backend", lambda name, prof, ctx: FakeBackend(name, 2))
    return path


def _run(plan: Path, state: Path, *extra: str) -> int:
    return cli(["run", str(plan), "--state-dir", str(state), "--poll", "0.001", "--plain", *extra])


def test_run_stops_at_ready_with_the_approve_command(
    plan_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    assert _run(plan_file, state) == 0  # nothing failed: waiting for a sign-off is not an error
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["states"] == {"READY": 2}
    assert summary["ok"] is False and summary["awaiting_approval"] is True
    assert (
        f"2 table(s) READY, waiting for a sign-off: lakeshift approve a b --plan {plan_file} "
        "--by NAME" in err
    )
    assert "a: VALIDATING -> READY" in out  # the plain transition lines

    assert cli(["approve", "a", "--state-dir", str(state), "--by", "ann", "--note", "ok"]) == 0
    assert _run(plan_file, state) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.strip().splitlines()[-1])["states"] == {"DONE": 1, "READY": 1}
    assert "lakeshift approve b " in err
    store = StateStore.open(state / "state.db")
    assert store.tables()["a"].approved_by == "ann"
    store.close()


def test_wait_for_approval_cuts_over_what_another_process_approves(
    plan_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    state = tmp_path / "state"
    naps: list[float] = []

    def sleep(seconds: float) -> None:  # the operator signs off while run waits
        naps.append(seconds)
        store = StateStore.open(state / "state.db")
        states = {r.state.value for r in store.tables().values()}
        store.close()
        if states == {"READY"} and len(naps) < 1000:
            naps.append(-1.0)  # marks a nap taken with every table READY
            if naps.count(-1.0) == 3:
                assert cli(["approve", "a", "b", "--state-dir", str(state), "--by", "bo"]) == 0
        if len(naps) > 2000:
            raise AssertionError("run did not finish")

    monkeypatch.setattr(command.time, "sleep", sleep)
    assert _run(plan_file, state, "--wait-for-approval") == 0
    out, err = capsys.readouterr()
    assert json.loads(out.strip().splitlines()[-1])["states"] == {"DONE": 2}
    assert "READY" not in err
    assert naps.count(-1.0) >= 3  # it waited at READY instead of exiting


def test_live_view_on_a_terminal(plan_file: Path, tmp_path: Path, monkeypatch) -> None:
    from rich.console import Console

    buf = io.StringIO()
    real_init = command._LiveView.__init__

    def init(self, store, every_s: float = 0.0) -> None:
        real_init(self, store, every_s=0.0)
        self.live.console = Console(file=buf, force_terminal=True, width=150)

    monkeypatch.setattr(command._LiveView, "__init__", init)
    monkeypatch.setattr(command.sys.stdout, "isatty", lambda: True, raising=False)
    state = tmp_path / "state"
    assert cli(["run", str(plan_file), "--state-dir", str(state), "--poll", "0"]) == 0
    screen = buf.getvalue()
    assert "READY" in screen and "VALIDATING -> READY" in screen
    assert "a" in screen and "b" in screen
