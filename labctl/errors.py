"""Error types shared by every layer. The CLI maps them to exit codes."""

from __future__ import annotations

from dataclasses import dataclass


class LabctlError(Exception):
    """A failure with a message meant for the user (no traceback)."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        text = f"error: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


# What kind of mistake a problem is, as `validate --json` names it -> as the error text shows it.
CATEGORIES = {"missing": "missing", "type": "wrong type", "value": "wrong value", "conflict": "conflict"}


@dataclass(frozen=True)
class Problem:
    """One validation problem: where it is (file and field), what to do about it, and its category: missing (a
    required field or file part is absent), type (a mapping where a list belongs...), value (the right type, a value
    not allowed: a bad address, an unknown name or field), conflict (each value is fine, together they are not)."""

    source: str
    field: str
    message: str
    category: str = "value"

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown problem category {self.category!r}; categories: {', '.join(CATEGORIES)}")

    def __str__(self) -> str:
        message = self.message if len(self.message) <= 600 else self.message[:580] + " ... (cut)"
        return f"{self.source}: {self.field}: {message}"

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "field": self.field, "category": self.category, "message": self.message}


class ValidationError(LabctlError):
    """Bad input: every problem found, reported together. Exit code 2."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the input")

    def render(self) -> str:
        lines = [f"error: {self.message}; nothing was changed on any host:"]
        lines += [f"  - [{CATEGORIES[p.category]}] {p}" for p in self.problems]
        return "\n".join(lines)


class UsageError(LabctlError):
    """A command's arguments do not fit the lab (an unknown container, a network they do not share). Exit code 2;
    checked before anything changes on a host."""

    exit_code = 2


class PrerequisiteError(LabctlError):
    """The machine lacks something labctl needs (a binary, root). Exit code 2: fix the machine, then retry."""

    exit_code = 2


@dataclass
class HostFailure:
    host: str
    command: str
    exit_code: int | None
    stderr_tail: str
    entry: str = ""   # the playbook entry the command was for ("networks.ov", "containers.c1")
    hint: str = ""
    access: bool = False   # the host could not be used as the inventory says (host key, sudo): nothing ran

    def __str__(self) -> str:
        tail = "\n".join("      " + line for line in self.stderr_tail.splitlines()) or "      (no stderr)"
        code = "?" if self.exit_code is None else str(self.exit_code)
        what = f" for {self.entry}" if self.entry else ""
        command = self.command if len(self.command) <= 300 else self.command[:280] + " ... (cut)"
        text = f"[{self.host}] `{command}`{what} failed (exit {code}):\n{tail}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class StepFailed(LabctlError):
    """A host command failed; carries the failure (with playbook entry and hint) to the parallel runner."""

    def __init__(self, failure: HostFailure) -> None:
        super().__init__(str(failure), hint=failure.hint or None)
        self.failure = failure


class HostsFailed(LabctlError):
    """One or more hosts failed a step; the others' results are kept in `results`."""

    def __init__(self, step: str, failures: list[HostFailure], results: dict | None = None) -> None:
        self.step = step
        self.failures = failures
        self.results = results or {}
        self.notes: list[str] = []   # what was done about it (a rollback's restored objects)
        names = ", ".join(f.host for f in failures)
        super().__init__(f"{step}: failed on {names}")
        if failures and all(f.access for f in failures):
            self.exit_code = 2     # bad input (the inventory's SSH settings), refused before anything changed

    def render(self) -> str:
        lines = [f"error: {self.message}"]
        lines += [str(f) for f in self.failures]
        ok = sorted(set(self.results) - {f.host for f in self.failures})
        if ok:
            lines.append(f"  succeeded on: {', '.join(ok)}")
        if self.notes:
            lines.append("  rollback (the lab as it was before this run):")
            lines += [f"    {n}" for n in self.notes]
        return "\n".join(lines)
