"""Progress of a running copy, read from the run's journal file names (works for Spark and local).

Each journal file name carries its file and byte counts, so the driver follows progress by
listing one folder per second; no executor has to talk to the driver.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from lakeshift.sources.manifest import journal_dir, parse_journal_name

if TYPE_CHECKING:
    from lakeshift.sources.fs import Location


def journal_totals(state: Location, run_id: str) -> tuple[int, int]:
    """Files and bytes journaled so far by run ``run_id``."""
    import pyarrow.fs as pafs

    sel = pafs.FileSelector(journal_dir(state, run_id), recursive=False, allow_not_found=True)
    files = nbytes = 0
    for info in state.fs.get_file_info(sel):
        parsed = parse_journal_name(info.path)
        if parsed:
            files += parsed[0]
            nbytes += parsed[1]
    return files, nbytes


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class Progress:
    """Shows files, bytes, rate and ETA while ``wait_on`` runs.

    Rich bars when stderr is a terminal, otherwise one plain line every ``every_s`` seconds.
    ``unit`` names what ``total_files`` counts (``lakeshift scan`` counts folders); a
    ``total_bytes`` of 0 means unknown: bytes are shown without a total and the ETA comes from
    the count.
    """

    def __init__(
        self,
        total_files: int,
        total_bytes: int,
        enabled: bool = True,
        every_s: float = 10.0,
        *,
        label: str = "lakeshift files",
        unit: str = "files",
    ) -> None:
        self.total_files = total_files
        self.total_bytes = total_bytes
        self.enabled = enabled and total_files > 0
        self.every_s = every_s
        self.label = label
        self.unit = unit

    def line(self, files: int, nbytes: int, elapsed: float) -> str:
        """One plain progress line."""
        rate = nbytes / elapsed if elapsed > 0 else 0.0
        if not self.total_bytes:
            per_s = files / elapsed if elapsed > 0 else 0.0
            eta = f"{(self.total_files - files) / per_s:.0f}s" if per_s > 0 else "?"
            return (
                f"{self.unit} {files}/{self.total_files}  bytes {_fmt_bytes(nbytes)}  "
                f"{_fmt_bytes(rate)}/s  ETA {eta}"
            )
        left = self.total_bytes - nbytes
        eta = f"{left / rate:.0f}s" if rate > 0 else "?"
        return (
            f"{self.unit} {files}/{self.total_files}  bytes {_fmt_bytes(nbytes)}/"
            f"{_fmt_bytes(self.total_bytes)}  {_fmt_bytes(rate)}/s  ETA {eta}"
        )

    def follow(self, poll: Callable[[], tuple[int, int]], done: threading.Event) -> None:
        """Poll ``poll()`` until ``done`` is set, drawing progress."""
        if not self.enabled:
            done.wait()
            return
        start = time.monotonic()
        if sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )
            from rich.progress import Progress as RichProgress

            with RichProgress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
            ) as bar:
                tb = bar.add_task(
                    f"0/{self.total_files} {self.unit}", total=self.total_bytes or None
                )
                finished = False
                while not finished:
                    finished = done.wait(1.0)
                    files, nbytes = poll()
                    bar.update(
                        tb,
                        completed=nbytes,
                        description=f"{files}/{self.total_files} {self.unit}",
                    )
            return
        last = start
        while not done.wait(1.0):
            now = time.monotonic()
            if now - last >= self.every_s:
                last = now
                files, nbytes = poll()
                print(f"{self.label}: " + self.line(files, nbytes, now - start), file=sys.stderr)
