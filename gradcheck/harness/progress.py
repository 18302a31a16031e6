"""A one-line progress indicator on stderr: redrawn in place on a terminal, sparse otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Report ``done / total`` with a short note; silent when ``enabled`` is False.

    On a terminal the line is redrawn in place; in a log (CI) one line is written per 10 %.
    """

    def __init__(self, total: int, label: str, *, enabled: bool = True,
                 stream: TextIO | None = None) -> None:
        self.total, self.label, self.enabled = max(total, 1), label, enabled
        self.stream = sys.stderr if stream is None else stream
        self.done, self.started = 0, time.perf_counter()
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_decile = -1

    def step(self, note: str = "") -> None:
        self.done += 1
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.started
        line = f"{self.label} [{min(self.done, self.total)}/{self.total}] {elapsed:5.1f}s {note}"
        if self._tty:
            self.stream.write("\r" + line[:110].ljust(110))
            self.stream.flush()
            return
        decile = 10 * self.done // self.total
        if decile != self._last_decile:
            self._last_decile = decile
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._tty:
            self.stream.write("\r" + " " * 110 + "\r")
            self.stream.flush()
