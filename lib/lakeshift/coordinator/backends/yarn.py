"""YARN's ResourceManager REST API: find a job's application by tag, read its state, kill it.

The spark-submit backend tags every YARN application it launches with ``lakeshift-<token>``
(``spark.yarn.tags``), so a coordinator that restarted finds the application of an open job
by its token alone, and polls and kills it through the ResourceManager rather than through a
process on its own machine.

Example:
    >>> job_status({"state": "FINISHED", "finalStatus": "SUCCEEDED", "id": "application_1_0001"})
    ('succeeded', None)
    >>> job_status({"state": "RUNNING", "finalStatus": "UNDEFINED"})
    ('running', None)
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lakeshift.errors import ConfigError

TAG_PREFIX = "lakeshift-"


def tag_for(token: str) -> str:
    """The YARN application tag of a submission (YARN lower-cases tags)."""
    return f"{TAG_PREFIX}{token}".lower()


def rm_web_address(conf_dir: str | None) -> str:
    """``http://host:port`` of the ResourceManager's web service, from ``yarn-site.xml``.

    Raises:
        ConfigError: no configuration folder, or it does not name the web address.
    """
    folder = conf_dir or os.environ.get("HADOOP_CONF_DIR") or os.environ.get("YARN_CONF_DIR")
    if not folder:
        raise ConfigError(
            "yarn: set HADOOP_CONF_DIR (in the cluster profile's env or the environment) to the "
            "folder with yarn-site.xml, or give yarn_rm: http://host:8088"
        )
    site = Path(folder) / "yarn-site.xml"
    try:
        root = ET.parse(site).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ConfigError(f"yarn: cannot read {site}: {exc}") from exc
    props = {p.findtext("name"): p.findtext("value") for p in root.iter("property")}
    address = props.get("yarn.resourcemanager.webapp.address")
    if not address:
        host = props.get("yarn.resourcemanager.hostname")
        if not host:
            raise ConfigError(f"yarn: {site} names no yarn.resourcemanager.webapp.address")
        address = f"{host}:8088"
    return address if "://" in address else f"http://{address}"


def job_status(app: dict[str, Any]) -> tuple[str, str | None]:
    """A backend status (``submitted``, ``running``, ``succeeded``, ``failed``) and an error."""
    state = str(app.get("state", "")).upper()
    final = str(app.get("finalStatus", "")).upper()
    if state in ("NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED"):
        return "submitted", None
    if state == "RUNNING":
        return "running", None
    if state == "FINISHED" and final == "SUCCEEDED":
        return "succeeded", None
    diagnostics = str(app.get("diagnostics") or "").strip()
    why = f"YARN application {app.get('id', '?')} {state.lower()} ({final.lower()})"
    return "failed", f"{why}: {diagnostics}" if diagnostics else why


class ResourceManager:
    """A small client of the ResourceManager's REST API (``/ws/v1/cluster``)."""

    def __init__(self, address: str, timeout_s: float = 15.0) -> None:
        self.address = address.rstrip("/")
        self.timeout_s = timeout_s

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.address}/ws/v1/cluster{path}",
            data=data,
            method=method,
            headers={"Accept": "application/json", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
            text = resp.read().decode("utf-8")
        return json.loads(text) if text else None

    def apps_by_tag(self, tag: str) -> list[dict[str, Any]]:
        """Applications carrying ``tag``, newest first."""
        out = self._request("GET", f"/apps?applicationTags={quote(tag)}")
        apps = ((out or {}).get("apps") or {}).get("app") or []
        return sorted(apps, key=lambda a: int(a.get("startedTime") or 0), reverse=True)

    def app(self, app_id: str) -> dict[str, Any] | None:
        """One application, or ``None`` when the ResourceManager does not know it."""
        try:
            out = self._request("GET", f"/apps/{quote(app_id)}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        return dict((out or {}).get("app") or {}) or None

    def kill(self, app_id: str) -> None:
        """Ask the ResourceManager to kill ``app_id`` (no-op when it already ended)."""
        try:
            self._request("PUT", f"/apps/{quote(app_id)}/state", {"state": "KILLED"})
        except urllib.error.HTTPError as exc:
            if exc.code not in (400, 404):  # finished applications cannot change state
                raise
