"""Progress display: a rich bar when stderr is a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import Any, Protocol


class Progress(Protocol):
    """Receives the start of a table copy and each finished chunk."""

    def start(self, label: str, chunks: int, total_bytes: int) -> None:
        """A table copy starts."""
        ...

    def chunk(
        self, chunk_id: str, status: str, rows: int | None, bytes_in: int, seconds: float
    ) -> None:
        """A chunk finished (``committed``) or was skipped (``skipped``)."""
        ...

    def close(self) -> None:
        """The table copy ended."""
        ...


class NullProgress:
    """Shows nothing (library use)."""

    def start(self, label: str, chunks: int, total_bytes: int) -> None:
        """Ignore."""

    def chunk(
        self, chunk_id: str, status: str, rows: int | None, bytes_in: int, seconds: float
    ) -> None:
        """Ignore."""

    def close(self) -> None:
        """Ignore."""


class LineProgress:
    """One line per chunk on stderr (logs, CI, pipes)."""

    def __init__(self) -> None:
        self._label = ""
        self._total = 0
        self._done = 0

    def start(self, label: str, chunks: int, total_bytes: int) -> None:
        """Print the table header line."""
        self._label, self._total, self._done = label, chunks, 0
        print(f"copy {label}: {chunks} chunks, {total_bytes} bytes", file=sys.stderr, flush=True)

    def chunk(
        self, chunk_id: str, status: str, rows: int | None, bytes_in: int, seconds: float
    ) -> None:
        """Print one chunk line."""
        self._done += 1
        print(
            f"copy {self._label}: [{self._done}/{self._total}] {chunk_id} {status} "
            f"rows={rows if rows is not None else '?'} bytes_in={bytes_in} {seconds:.1f}s",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        """Nothing to close."""


class RichProgress:
    """A rich progress bar over input bytes on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichBar

        self._bar = RichBar(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[chunks]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task: Any = None
        self._total = 0
        self._done = 0

    def start(self, label: str, chunks: int, total_bytes: int) -> None:
        """Start a bar for the table."""
        self._total, self._done = chunks, 0
        self._bar.start()
        self._task = self._bar.add_task(label, total=max(total_bytes, 1), chunks=f"0/{chunks}")

    def chunk(
        self, chunk_id: str, status: str, rows: int | None, bytes_in: int, seconds: float
    ) -> None:
        """Advance the bar by the chunk's input bytes."""
        self._done += 1
        self._bar.update(
            self._task, advance=bytes_in, chunks=f"{self._done}/{self._total} {status}"
        )

    def close(self) -> None:
        """Stop the bar."""
        self._bar.stop()


def make_progress(enabled: bool = True) -> Progress:
    """A rich bar if stderr is a terminal, else line output; nothing when disabled."""
    if not enabled:
        return NullProgress()
    if sys.stderr.isatty():
        return RichProgress()
    return LineProgress()
