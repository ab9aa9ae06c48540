"""Progress lines (which host, which step, how long) and tables, safe to call from worker threads."""

from __future__ import annotations

import sys
import threading
import time
from typing import IO

from rich.console import Console
from rich.markup import escape


class Progress:
    def __init__(self, quiet: bool = False, stream: IO[str] | None = None) -> None:
        self.console = Console(file=stream or sys.stderr, highlight=False, emoji=False, soft_wrap=True)
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
            self.console.print(message, markup=False)

    def step(self, host: str, message: str) -> None:
        if self.quiet:
            return
        with self._lock:
            # host names and messages carry user text (names, Docker's errors): escaped, never read as markup
            self.console.print(f"[dim]{self.elapsed():6.1f}s[/dim] [bold cyan]{escape(f'{host:<10}')}[/bold cyan] "
                               f"{escape(message)}", markup=True)
