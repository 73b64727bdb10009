"""Livy backend: each job is a batch (``POST /batches``) on an Apache Livy server.

Plain ``urllib`` + JSON. The batch ``name`` carries the submission token so a restarted
coordinator finds a batch it created before a crash (``GET /batches``).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lakeshift.coordinator.backends._ship import Shipper
from lakeshift.coordinator.backends.base import JobStatus, RunContext, Submission
from lakeshift.coordinator.clusters import LivyProfile
from lakeshift.errors import LakeshiftError

log = logging.getLogger(__name__)

_SUBMITTED = {"not_started", "starting", "recovering"}
_RUNNING = {"running", "busy", "idle", "shutting_down"}
_FAILED = {"dead", "killed", "error"}


class LivyError(LakeshiftError):
    """The Livy server answered with an error or not at all."""


def batch_status(batch: dict[str, Any], log_lines: list[str] | None = None) -> JobStatus:
    """Map a Livy batch to a :class:`JobStatus`.

    Example:
        >>> batch_status({"id": 3, "state": "success"}).state
        'succeeded'
    """
    state = str(batch.get("state", "starting"))
    app = str(batch.get("id"))
    if state in _SUBMITTED:
        return JobStatus("submitted", app_id=app)
    if state in _RUNNING:
        return JobStatus("running", app_id=app)
    if state == "success":
        return JobStatus("succeeded", 0, app_id=app)
    if state in _FAILED:
        text = "\n".join(log_lines or [])
        code = -15 if state == "killed" else 1
        return JobStatus("failed", code, f"Livy batch {state}\n{text}".strip(), app_id=app)
    return JobStatus("unknown", app_id=app)


class LivyBackend:
    """Runs jobs as Livy batches."""

    def __init__(self, name: str, profile: LivyProfile, ctx: RunContext) -> None:
        self.name = name
        self.profile = profile
        self.ctx = ctx
        self.capacity = profile.capacity
        self.weight = profile.weight
        self.url = profile.url.rstrip("/")
        self.shipper = Shipper(profile.code_uri)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "X-Requested-By": "lakeshift"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.profile.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise LivyError(
                f"livy {self.name}: {method} {path}: HTTP {exc.code}: {detail}"
            ) from exc
        except OSError as exc:
            raise LivyError(f"livy {self.name}: {method} {path}: {exc}") from exc
        return json.loads(raw) if raw else {}

    def result_path(self, token: str) -> str:
        """On the cluster's driver."""
        return f"/tmp/lakeshift-{token}.json"

    def batch_request(self, sub: Submission) -> dict[str, Any]:
        """The ``POST /batches`` body."""
        zip_uri = self.shipper.ship(self.ctx.code_zip())
        job_uri = self.shipper.ship(self.ctx.job_file(sub.file), f"jobs/{Path(sub.file).name}")
        body: dict[str, Any] = {
            "file": job_uri,
            "pyFiles": [zip_uri],
            "args": list(sub.args),
            "name": sub.app_name,
        }
        if self.profile.conf:
            body["conf"] = dict(self.profile.conf)
        return body

    def submit(self, sub: Submission) -> str:
        """Create the batch; return its id."""
        return str(self._call("POST", "/batches", self.batch_request(sub))["id"])

    def poll(self, jobs: Sequence[tuple[str, str | None]]) -> dict[str, JobStatus]:
        """``GET /batches/{id}`` for each open batch (the log tail for failed ones)."""
        out: dict[str, JobStatus] = {}
        for token, app in jobs:
            if not app:
                out[token] = JobStatus("unknown")
                continue
            try:
                batch = self._call("GET", f"/batches/{app}")
            except LivyError as exc:
                if "HTTP 404" in str(exc):
                    out[token] = JobStatus("failed", -1, f"job process lost: {exc}")
                else:
                    out[token] = JobStatus("unknown")
                continue
            lines = None
            if batch.get("state") in _FAILED:
                try:
                    lines = self._call("GET", f"/batches/{app}/log?from=-50&size=50").get("log")
                except LivyError:
                    lines = None
            out[token] = batch_status(batch, lines)
        return out

    def lookup(self, token: str) -> str | None:
        """Find a batch whose name carries ``token``."""
        start = 0
        while True:
            page = self._call("GET", f"/batches?from={start}&size=100")
            sessions = page.get("sessions", [])
            for b in sessions:
                if str(b.get("name") or "").endswith(f":{token}"):
                    return str(b["id"])
            if len(sessions) < 100:
                return None
            start += 100

    def cancel(self, token: str, app_id: str | None) -> None:
        """``DELETE /batches/{id}`` (best effort)."""
        if not app_id:
            return
        try:
            self._call("DELETE", f"/batches/{app_id}")
        except LivyError as exc:
            log.warning("cluster %s: cannot delete batch %s: %s", self.name, app_id, exc)

    def close(self) -> None:
        """Nothing to release."""
