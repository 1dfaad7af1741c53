"""A small progress bar for the terminal (stderr). Silent unless enabled and stderr is a
terminal, or TINYGRAD_VG_PROGRESS=1; it only draws once a task has run for a second."""
from __future__ import annotations

import os
import sys
import time


_open: list[Progress] = []   # bars drawn and not closed: their line has no newline yet


def end_line() -> None:
    """End a bar's unfinished line (before an error message, so it gets a line of its own)."""
    if _open:
        sys.stderr.write("\n")
        sys.stderr.flush()
        _open.clear()


class Progress:
    def __init__(self, total: int, label: str, enabled: bool = True, width: int = 30) -> None:
        self.total, self.label, self.width = max(int(total), 1), label, width
        self.done = 0
        self.start = time.monotonic()
        self.enabled = enabled and (sys.stderr.isatty() or os.environ.get("TINYGRAD_VG_PROGRESS") == "1")
        self.drawn = False

    def update(self, n: int = 1, note: str = "") -> None:
        self.done = min(self.done + n, self.total)
        if not self.enabled or time.monotonic() - self.start < 1.0:
            return
        filled = int(self.width * self.done / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        sys.stderr.write(f"\r{self.label} [{bar}] {self.done}/{self.total} {note[:30]:<30}")
        sys.stderr.flush()
        if not self.drawn:
            _open.append(self)
        self.drawn = True

    def close(self) -> None:
        if self in _open:
            _open.remove(self)
        if self.drawn:
            elapsed = time.monotonic() - self.start
            sys.stderr.write(f"\r{self.label} done in {elapsed:.1f} s{' ' * (self.width + 30)}\n")
            sys.stderr.flush()
