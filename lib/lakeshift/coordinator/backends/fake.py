"""An in-process backend for tests and the scheduler benchmark (no processes, no Spark).

Jobs finish after ``ticks`` polls with the exit code ``outcome(sub)`` returns (default 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lakeshift.coordinator.backends.base import JobStatus, Submission


@dataclass
class _Job:
    sub: Submission
    polls_left: int
    code: int
    error: str


class FakeBackend:
    """A cluster simulated in memory.

    Args:
        name: the cluster name.
        capacity: concurrent jobs.
        weight: share of bytes.
        ticks: polls a job stays running.
        outcome: ``sub -> (exit code, error text)``.
        metrics: ``sub -> the job's JSON summary`` (what a real job writes with ``--json``).
    """

    def __init__(
        self,
        name: str,
        capacity: int = 2,
        weight: float = 1.0,
        ticks: int = 1,
        outcome: Callable[[Submission], tuple[int, str]] | None = None,
        *,
        metrics: Callable[[Submission], dict[str, Any] | None] | None = None,
    ) -> None:
        self.name = name
        self.capacity = capacity
        self.weight = weight
        self.ticks = ticks
        self.outcome = outcome or (lambda sub: (0, ""))
        self.metrics = metrics or (lambda sub: None)
        self.jobs: dict[str, _Job] = {}
        self.submitted: list[Submission] = []
        self.cancelled: list[str] = []
        self._seq = 0

    def result_path(self, token: str) -> str:
        """No result files in memory."""
        return f"mem://{token}.json"

    def submit(self, sub: Submission) -> str:
        """Record the job."""
        self._seq += 1
        code, error = self.outcome(sub)
        self.jobs[sub.token] = _Job(sub, self.ticks, code, error)
        self.submitted.append(sub)
        return f"{self.name}-{self._seq}"

    def poll(self, jobs: Sequence[tuple[str, str | None]]) -> dict[str, JobStatus]:
        """Advance each job by one tick."""
        out: dict[str, JobStatus] = {}
        for token, _ in jobs:
            job = self.jobs.get(token)
            if job is None:
                out[token] = JobStatus("unknown")
            elif job.polls_left > 0:
                job.polls_left -= 1
                out[token] = JobStatus("running")
            elif job.code == 0:
                out[token] = JobStatus("succeeded", 0, metrics=self.metrics(job.sub))
            else:
                out[token] = JobStatus("failed", job.code, job.error, metrics=self.metrics(job.sub))
        return out

    def lookup(self, token: str) -> str | None:
        """Known if submitted to this instance."""
        return token if token in self.jobs else None

    def cancel(self, token: str, app_id: str | None) -> None:
        """Forget the job."""
        self.cancelled.append(token)
        self.jobs.pop(token, None)

    def close(self) -> None:
        """Nothing to release."""
