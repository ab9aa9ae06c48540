"""Progress lines (which host, which step, how long) and tables, safe to call from worker threads."""

from __future__ import annotations

import sys
import threading
import time
from typing import IO

from rich.text import Text

from labctl.views.console import make


class Progress:
    def __init__(self, quiet: bool = False, stream: IO[str] | None = None) -> None:
        self.console = make(stream or sys.stderr)
        self.quiet = quiet
        self.start = time.monotonic()
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def note(self, message: str) -> None:
        """A plain line (which files a command uses, say), printed literally."""
        if self.quiet:
            return
        with self._lock:
            self.console.print(message, soft_wrap=True)

    def step(self, host: str, message: str) -> None:
        if self.quiet:
            return
        with self._lock:
            # host names and messages carry user text (names, Docker's errors): printed as they are
            self.console.print(Text.assemble((f"{self.elapsed():6.1f}s", "dim"), " ", (f"{host:<10}", "bold cyan"),
                                             " ", message), soft_wrap=True)
