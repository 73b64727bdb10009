"""spark-submit backend: local, standalone, YARN and Kubernetes masters.

Each job is launched through :mod:`lakeshift.coordinator.wrapper`, in its own session
(``start_new_session``), so killing the coordinator leaves running jobs alone. The wrapper's
``<state>/jobs/<token>.pid`` and ``.exit`` files tell a restarted coordinator whether a job still
runs or how it ended; its atomic claim makes a repeated launch with the same token a no-op.

On YARN every application is tagged ``lakeshift-<token>`` and the ResourceManager is the source
of truth while the application lives: jobs are polled, found after a restart and killed through
its REST API (:mod:`lakeshift.coordinator.backends.yarn`), so a cluster-mode job survives the
loss of the machine that submitted it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lakeshift.coordinator.backends import yarn
from lakeshift.coordinator.backends.base import JobStatus, RunContext, Submission
from lakeshift.coordinator.clusters import SparkSubmitProfile
from lakeshift.errors import ConfigError
from lakeshift.spark import classpath_conf, jars_dir

log = logging.getLogger(__name__)

#: Where the lakeshift image keeps the project (jobs/ and the package) on Kubernetes.
IMAGE_ROOT = "/opt/lakeshift"
_ERROR_HINTS = ("error", "exception", "traceback", "fail", "killed", "refused")


def spark_submit_path() -> Path:
    """``bin/spark-submit`` of the installed pyspark package.

    Raises:
        ConfigError: pyspark is not installed or has no spark-submit.
    """
    try:
        import pyspark
    except ImportError as exc:  # pragma: no cover - pyspark is a runtime dependency
        raise ConfigError("spark-submit backend: pyspark is not installed") from exc
    path = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    if not path.is_file():
        raise ConfigError(f"spark-submit backend: expected {path}, not found")
    return path


def log_tail(path: Path, lines: int = 40, limit: int = 3000) -> str:
    """The last error-looking line of a log, then its last ``lines`` lines (for classification)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64_000))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    all_lines = [ln for ln in text.splitlines() if ln.strip()]
    tail = all_lines[-lines:]
    hints = [ln for ln in all_lines if any(h in ln.lower() for h in _ERROR_HINTS)]
    headline = hints[-1] if hints else (tail[-1] if tail else "")
    if not headline:
        return ""
    return f"{headline}\n" + "\n".join(tail)[-max(0, limit - len(headline)) :]


def _alive(pid: int, token: str) -> bool:
    """Whether ``pid`` is a live (not zombie) wrapper for ``token``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return token.encode() in fh.read()
    except (OSError, IndexError):
        return False


class SparkSubmitBackend:
    """Runs jobs with ``spark-submit`` on one cluster profile."""

    def __init__(self, name: str, profile: SparkSubmitProfile, ctx: RunContext) -> None:
        self.name = name
        self.profile = profile
        self.capacity = profile.capacity
        self.weight = profile.weight
        self.ctx = ctx
        self.jobs_dir = ctx.state_dir / "jobs"
        self.results_dir = ctx.state_dir / "results"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self._procs: dict[str, tuple[subprocess.Popen[bytes], float]] = {}
        self._rm: yarn.ResourceManager | None = None

    @property
    def is_yarn(self) -> bool:
        """YARN master."""
        return self.profile.master.startswith("yarn")

    @property
    def deploy_mode(self) -> str:
        """``client`` or ``cluster`` (default: ``cluster`` on YARN and Kubernetes)."""
        p = self.profile
        return p.deploy_mode or ("cluster" if p.master.startswith(("yarn", "k8s://")) else "client")

    @property
    def hadoop_conf_dir(self) -> str | None:
        """``HADOOP_CONF_DIR`` of the profile (or of the environment)."""
        p = self.profile
        env = p.env.get("HADOOP_CONF_DIR") or os.environ.get("HADOOP_CONF_DIR")
        return p.hadoop_conf_dir or env

    @property
    def rm(self) -> yarn.ResourceManager:
        """The ResourceManager client (YARN profiles).

        Raises:
            ConfigError: no address is configured or derivable.
        """
        if self._rm is None:
            address = self.profile.yarn_rm or yarn.rm_web_address(self.hadoop_conf_dir)
            self._rm = yarn.ResourceManager(address)
        return self._rm

    # ---- command -------------------------------------------------------------------------
    @property
    def is_k8s(self) -> bool:
        """Kubernetes master."""
        return self.profile.master.startswith("k8s://")

    def command(self, sub: Submission) -> list[str]:
        """The full ``spark-submit`` command line for ``sub``."""
        p = self.profile
        exe = p.spark_submit or str(spark_submit_path())
        cmd = [exe, "--master", p.master, "--deploy-mode", self.deploy_mode, "--name", sub.app_name]
        conf = dict(p.conf)
        if self.is_k8s:
            conf.setdefault("spark.kubernetes.container.image", p.image or "")
            job = f"local://{IMAGE_ROOT}/{sub.file}"
        else:
            cmd += ["--py-files", str(self.ctx.code_zip())]
            job = str(self.ctx.job_file(sub.file))
            local_like = p.master.startswith(("local", "spark://"))
            if p.jars if p.jars is not None else local_like:
                folder = jars_dir()
                jars = sorted(folder.glob("*.jar")) if folder.is_dir() else []
                if jars:
                    cmd += ["--jars", ",".join(str(j) for j in jars)]
                for key, value in classpath_conf().items():  # S3A: read in place, not shipped
                    conf[key] = ":".join(x for x in (conf.get(key), value) if x)
            if self.is_yarn:
                tags = [t for t in conf.get("spark.yarn.tags", "").split(",") if t]
                conf["spark.yarn.tags"] = ",".join([*tags, "lakeshift", yarn.tag_for(sub.token)])
            if local_like:
                conf.setdefault("spark.pyspark.python", sys.executable)
                conf.setdefault("spark.pyspark.driver.python", sys.executable)
        logs = self.event_log_folder(sub.token)
        if logs is not None and "spark.eventLog.dir" not in conf:
            from lakeshift.spark import event_log_conf

            conf.update(event_log_conf(logs.resolve().as_uri()))
        for key, value in conf.items():
            cmd += ["--conf", f"{key}={value}"]
        return [*cmd, *p.submit_args, job, *sub.args]

    def event_log_folder(self, token: str) -> Path | None:
        """Where the job's event log goes (``None``: not collected on this cluster)."""
        p = self.profile
        here = p.master.startswith(("local", "spark://")) and self.deploy_mode == "client"
        if not (p.event_log and here) or "spark.eventLog.dir" in p.conf:
            return None
        return self.ctx.state_dir / "eventlogs" / token

    def _spark_metrics(self, token: str) -> dict[str, Any] | None:
        """The finished application's metrics from its event log (``None`` when absent)."""
        folder = self.event_log_folder(token)
        if folder is None or not folder.is_dir():
            return None
        from lakeshift.ops.eventlog import read_event_log

        logs = sorted(folder.iterdir())
        if not logs:
            return None
        try:
            return read_event_log(logs[-1]).to_dict()
        except (OSError, ValueError) as exc:
            log.warning("job %s: event log %s not readable: %s", token, logs[-1], exc)
            return None

    def result_path(self, token: str) -> str:
        """Where the job writes its ``--json`` summary.

        Drivers on this machine (client mode) write into the run folder; cluster-mode drivers
        into their own ``/tmp``.
        """
        if self.deploy_mode == "cluster":
            return f"/tmp/lakeshift-{token}.json"
        return str(self.results_dir / f"{token}.json")

    # ---- lifecycle -----------------------------------------------------------------------
    def submit(self, sub: Submission) -> str:
        """Launch the wrapper detached; return its pid."""
        folder = self.event_log_folder(sub.token)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)  # Spark wants the folder to exist
        cmd = [
            sys.executable,
            "-m",
            "lakeshift.coordinator.wrapper",
            "--dir",
            str(self.jobs_dir),
            "--token",
            sub.token,
            "--",
            *self.command(sub),
        ]
        env = dict(os.environ)
        env.update(self.profile.env)
        if self.is_yarn and self.hadoop_conf_dir:
            env["HADOOP_CONF_DIR"] = self.hadoop_conf_dir
        env.setdefault("PYSPARK_PYTHON", sys.executable)
        env["PYTHONPATH"] = os.pathsep.join(
            x for x in (str(self.ctx.code_zip()), env.get("PYTHONPATH", "")) if x
        )
        logf = (self.jobs_dir / f"{sub.token}.log").open("ab")
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                cwd=str(self.ctx.project_root),
            )
        finally:
            logf.close()
        self._procs[sub.token] = (proc, time.time())
        log.info("cluster %s: launched %s (pid %s)", self.name, sub.app_name, proc.pid)
        return str(proc.pid)

    def _claim(self, token: str) -> dict[str, float] | None:
        try:
            return json.loads((self.jobs_dir / f"{token}.pid").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def poll(self, jobs: Sequence[tuple[str, str | None]]) -> dict[str, JobStatus]:
        """Read marker files (and reap our own children); on YARN, ask the ResourceManager."""
        local = self._poll_local(jobs)
        if not self.is_yarn:
            return local
        return {token: self._with_yarn(token, st) for token, st in local.items()}

    def _yarn_app(self, token: str) -> dict[str, object] | None:
        try:
            apps = self.rm.apps_by_tag(yarn.tag_for(token))
        except OSError as exc:  # ResourceManager unreachable: the wrapper's view stands
            log.warning("cluster %s: ResourceManager unreachable: %s", self.name, exc)
            return None
        return apps[0] if apps else None

    def _with_yarn(self, token: str, local: JobStatus) -> JobStatus:
        """Combine the wrapper's view with the ResourceManager's (the latter wins while alive)."""
        app = self._yarn_app(token)
        if app is None:
            return local
        app_id = str(app.get("id"))
        state, error = yarn.job_status(app)
        if local.state in ("succeeded", "failed") and local.exit_code not in (None, -9):
            # spark-submit ended with a code: trust it, with YARN's diagnostics on failures
            if local.state == "failed" and error:
                local.error = f"{error}\n{local.error or ''}".strip()
            local.app_id = app_id
            return local
        if state in ("submitted", "running"):
            return JobStatus(state, app_id=app_id)  # type: ignore[arg-type]
        if local.state in ("running", "submitted"):
            return JobStatus("running", app_id=app_id)  # spark-submit is still finishing
        # the submitting process is gone (coordinator machine lost, cluster mode): YARN decides
        if state == "succeeded":
            return JobStatus("succeeded", 0, app_id=app_id)
        return JobStatus("failed", 1, error, app_id=app_id)

    def _poll_local(self, jobs: Sequence[tuple[str, str | None]]) -> dict[str, JobStatus]:
        out: dict[str, JobStatus] = {}
        for token, _ in jobs:
            held = self._procs.get(token)
            exited = held is not None and held[0].poll() is not None
            if exited:
                self._procs.pop(token, None)  # reaped; the files tell the rest
            claim = self._claim(token)
            exit_file = self.jobs_dir / f"{token}.exit"
            if claim is not None and _alive(int(claim["pid"]), token):
                out[token] = JobStatus("running", app_id=str(int(claim["pid"])))
                continue
            if exit_file.exists():
                out[token] = self._finished(token, exit_file)
            elif claim is None and held is not None and not exited:
                out[token] = JobStatus("submitted")  # wrapper starting
            elif claim is None and exited:
                error = log_tail(self.jobs_dir / f"{token}.log")
                out[token] = JobStatus("failed", 1, f"job process lost before start\n{error}")
            elif claim is None:
                out[token] = JobStatus("unknown")
            else:
                out[token] = JobStatus(
                    "failed", -9, "job process lost: wrapper died without an exit file"
                )
        return out

    def _finished(self, token: str, exit_file: Path) -> JobStatus:
        try:
            info = json.loads(exit_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return JobStatus("running")  # being written
        code = int(info.get("code", 1))
        metrics = None
        result = self.results_dir / f"{token}.json"
        if result.is_file():
            try:
                loaded = json.loads(result.read_text(encoding="utf-8"))
                metrics = loaded if isinstance(loaded, dict) else None
            except (OSError, ValueError):
                metrics = None
        spark = self._spark_metrics(token)
        if code == 0:
            return JobStatus("succeeded", 0, metrics=metrics, spark=spark)
        error = log_tail(self.jobs_dir / f"{token}.log")
        if code < 0:
            error = f"killed by signal {-code}\n{error}"
        return JobStatus("failed", code, error, metrics=metrics, spark=spark)

    def lookup(self, token: str) -> str | None:
        """The YARN application of ``token`` (YARN), else the wrapper's pid if one started."""
        if self.is_yarn:
            app = self._yarn_app(token)
            if app is not None:
                return str(app.get("id"))
        claim = self._claim(token)
        if claim is None and (self.jobs_dir / f"{token}.pid").exists():
            time.sleep(0.2)  # claim being written
            claim = self._claim(token)
        return str(int(claim["pid"])) if claim else None

    def cancel(self, token: str, app_id: str | None) -> None:
        """SIGTERM the job's process group (the wrapper records the signal).

        On YARN the application is also killed through the ResourceManager.
        """
        if self.is_yarn:
            app = self._yarn_app(token)
            if app is not None:
                self.rm.kill(str(app.get("id")))
        claim = self._claim(token)
        local_id = app_id if app_id and app_id.isdigit() else None
        pid = int(claim["pid"]) if claim else (int(local_id) if local_id else None)
        if pid is None or not _alive(pid, token):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)

    def close(self) -> None:
        """Reap finished children; running ones keep running."""
        for proc, _ in self._procs.values():
            proc.poll()
