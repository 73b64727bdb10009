"""EMR backend: each job is a step (``command-runner.jar spark-submit …``) on a running cluster.

The lakeshift zip and the job files are uploaded once per run to ``code_uri``. The step's name
carries the submission token, so a restarted coordinator finds a step it added before a crash.
Capacity is the smaller of the profile's and the cluster's ``StepConcurrencyLevel``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lakeshift.coordinator.backends._ship import Shipper
from lakeshift.coordinator.backends.base import JobStatus, RunContext, Submission
from lakeshift.coordinator.clusters import EmrProfile
from lakeshift.errors import LakeshiftError

log = logging.getLogger(__name__)

_EXIT = re.compile(r"exit(?:\s*code|Code|\s*status)?[\s:=]+(-?\d+)", re.IGNORECASE)


def step_status(step: dict[str, Any]) -> JobStatus:
    """Map an EMR step description to a :class:`JobStatus`.

    Example:
        >>> step_status({"Id": "s-1", "Status": {"State": "COMPLETED"}}).state
        'succeeded'
    """
    status = step.get("Status", {})
    state = status.get("State", "PENDING")
    app = step.get("Id")
    if state in ("PENDING", "CANCEL_PENDING"):
        return JobStatus("submitted", app_id=app)
    if state == "RUNNING":
        return JobStatus("running", app_id=app)
    if state == "COMPLETED":
        return JobStatus("succeeded", 0, app_id=app)
    details = status.get("FailureDetails") or {}
    reason = status.get("StateChangeReason", {}).get("Message") or ""
    text = " ".join(str(x) for x in (details.get("Reason"), details.get("Message"), reason) if x)
    match = _EXIT.search(text)
    code = int(match.group(1)) if match else (-15 if state == "CANCELLED" else 1)
    return JobStatus("failed", code, f"EMR step {state}: {text}".strip(), app_id=app)


class EmrBackend:
    """Runs jobs as EMR steps on one cluster."""

    def __init__(self, name: str, profile: EmrProfile, ctx: RunContext) -> None:
        import boto3

        self.name = name
        self.profile = profile
        self.ctx = ctx
        self.weight = profile.weight
        kw: dict[str, Any] = {"region_name": profile.region}
        if profile.endpoint_url:
            kw["endpoint_url"] = profile.endpoint_url
        self.emr = boto3.session.Session().client("emr", **kw)
        self.shipper = Shipper(profile.code_uri, boto3.session.Session().client("s3", **kw))
        try:
            cluster = self.emr.describe_cluster(ClusterId=profile.cluster_id)["Cluster"]
        except Exception as exc:
            raise LakeshiftError(
                f"cluster {name}: cannot describe EMR cluster {profile.cluster_id}: {exc}"
            ) from exc
        self.step_concurrency = int(cluster.get("StepConcurrencyLevel") or 1)
        self.capacity = min(profile.capacity, self.step_concurrency)

    def result_path(self, token: str) -> str:
        """On the cluster's driver node."""
        return f"/tmp/lakeshift-{token}.json"

    def step_args(self, sub: Submission) -> list[str]:
        """The ``command-runner.jar`` arguments."""
        zip_uri = self.shipper.ship(self.ctx.code_zip())
        job_uri = self.shipper.ship(self.ctx.job_file(sub.file), f"jobs/{Path(sub.file).name}")
        args = [
            "spark-submit",
            "--deploy-mode",
            "cluster",
            "--name",
            sub.app_name,
            "--py-files",
            zip_uri,
        ]
        for key, value in self.profile.conf.items():
            args += ["--conf", f"{key}={value}"]
        return [*args, *self.profile.submit_args, job_uri, *sub.args]

    def submit(self, sub: Submission) -> str:
        """Add the step; return its id."""
        resp = self.emr.add_job_flow_steps(
            JobFlowId=self.profile.cluster_id,
            Steps=[
                {
                    "Name": sub.app_name,
                    "ActionOnFailure": "CONTINUE",
                    "HadoopJarStep": {"Jar": "command-runner.jar", "Args": self.step_args(sub)},
                }
            ],
        )
        return str(resp["StepIds"][0])

    def poll(self, jobs: Sequence[tuple[str, str | None]]) -> dict[str, JobStatus]:
        """``ListSteps`` for the open steps, ten ids per call."""
        out: dict[str, JobStatus] = {}
        by_id = {app: token for token, app in jobs if app}
        ids = list(by_id)
        for i in range(0, len(ids), 10):
            resp = self.emr.list_steps(ClusterId=self.profile.cluster_id, StepIds=ids[i : i + 10])
            for step in resp.get("Steps", []):
                token = by_id.get(step["Id"])
                if token:
                    out[token] = step_status(step)
        for token, _ in jobs:
            out.setdefault(token, JobStatus("unknown"))
        return out

    def lookup(self, token: str) -> str | None:
        """Find a step whose name carries ``token``."""
        paginator = self.emr.get_paginator("list_steps")
        for page in paginator.paginate(ClusterId=self.profile.cluster_id):
            for step in page.get("Steps", []):
                if step.get("Name", "").endswith(f":{token}"):
                    return str(step["Id"])
        return None

    def cancel(self, token: str, app_id: str | None) -> None:
        """``CancelSteps`` (best effort)."""
        if not app_id:
            return
        try:
            self.emr.cancel_steps(
                ClusterId=self.profile.cluster_id,
                StepIds=[app_id],
                StepCancellationOption="SEND_INTERRUPT",
            )
        except Exception as exc:  # best effort: the step may have ended
            log.warning("cluster %s: cannot cancel step %s: %s", self.name, app_id, exc)

    def close(self) -> None:
        """Nothing to release."""
