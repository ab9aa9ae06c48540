"""Local commands on the controller (the sandbox provider builds hosts with them)."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence

from labctl.errors import LabctlError


def tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class CommandFailed(LabctlError):
    def __init__(self, argv: Sequence[str], code: int | None, stderr: str, hint: str | None = None) -> None:
        self.argv = list(argv)
        self.code = code
        self.stderr = stderr
        super().__init__(f"`{shlex.join(argv)}` failed (exit {code}): {tail(stderr, 6) or '(no stderr)'}", hint)


def run(argv: Sequence[str], *, check: bool = True, input: bytes | None = None, timeout: float = 60,
        hint: str | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run argv (never through a shell); raise CommandFailed with the stderr tail when check and it fails."""
    try:
        proc = subprocess.run(list(argv), input=input, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise CommandFailed(argv, None, f"timed out after {timeout:g}s", hint) from None
    except FileNotFoundError:
        raise CommandFailed(argv, 127, f"{argv[0]}: not found", hint) from None
    if check and proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, proc.stderr.decode(errors="replace"), hint)
    return proc


def output(argv: Sequence[str], **kwargs: object) -> str:
    return run(argv, **kwargs).stdout.decode(errors="replace")  # type: ignore[arg-type]
