"""The backend interface the scheduler talks to."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

Status = Literal["unknown", "submitted", "running", "succeeded", "failed"]

REPO_ROOT = Path(__file__).resolve().parents[4]
PACKAGE_DIR = Path(__file__).resolve().parents[2]


@dataclass
class RunContext:
    """What every backend of one run shares.

    Attributes:
        run_id: the run's name.
        state_dir: the run's folder (jobs' marker files, logs, results, the code zip).
        project_root: where ``jobs/`` lives.
    """

    run_id: str
    state_dir: Path
    project_root: Path = REPO_ROOT
    _zip: Path | None = field(default=None, repr=False)

    def code_zip(self) -> Path:
        """``lib/lakeshift`` as a zip for ``--py-files``, built once per run (content-addressed)."""
        if self._zip is not None:
            return self._zip
        files = sorted(
            p
            for p in PACKAGE_DIR.rglob("*")
            if p.is_file()
            and p.suffix in (".py", ".typed", ".yaml", ".json")
            and "__pycache__" not in p.parts
        )
        digest = hashlib.sha256()
        for p in files:
            digest.update(str(p.relative_to(PACKAGE_DIR)).encode())
            digest.update(p.read_bytes())
        dist = self.state_dir / "dist"
        dist.mkdir(parents=True, exist_ok=True)
        target = dist / f"lakeshift-{digest.hexdigest()[:12]}.zip"
        if not target.exists():
            tmp = target.with_suffix(".tmp")
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
                for p in files:
                    zf.write(p, Path("lakeshift") / p.relative_to(PACKAGE_DIR))
            tmp.replace(target)
        self._zip = target
        return target

    def job_file(self, rel: str) -> Path:
        """A job file's absolute path."""
        p = Path(rel)
        return p if p.is_absolute() else self.project_root / p


@dataclass
class Submission:
    """One job to launch.

    Attributes:
        token: unique submission token (also names marker files, EMR steps, Livy batches).
        table: the table.
        kind: the job kind.
        step: index of the step in the table's steps.
        attempt: 1 for the first try.
        file: the job file (relative to the project root or absolute).
        args: the rendered arguments.
    """

    token: str
    table: str
    kind: str
    step: int
    attempt: int
    file: str
    args: list[str]

    @property
    def app_name(self) -> str:
        """Application/step/batch name; contains the token so a restart can find it."""
        return f"lakeshift:{self.table}:{self.kind}:{self.token}"


@dataclass
class JobStatus:
    """What a backend knows about a job."""

    state: Status
    exit_code: int | None = None
    error: str | None = None
    app_id: str | None = None
    metrics: dict[str, Any] | None = None
    spark: dict[str, Any] | None = None  # ops.eventlog.JobMetrics.to_dict() of the application


class Backend(Protocol):
    """A cluster the coordinator submits jobs to."""

    name: str
    capacity: int
    weight: float

    def result_path(self, token: str) -> str:
        """Where a job should write its ``--json`` summary."""
        ...

    def submit(self, sub: Submission) -> str:
        """Launch ``sub``; return its application id (pid, step id, batch id)."""
        ...

    def poll(self, jobs: Sequence[tuple[str, str | None]]) -> dict[str, JobStatus]:
        """Status of ``(token, app_id)`` jobs."""
        ...

    def lookup(self, token: str) -> str | None:
        """The application id of an earlier submission with ``token``, if the cluster has it."""
        ...

    def cancel(self, token: str, app_id: str | None) -> None:
        """Stop a job (best effort)."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...
