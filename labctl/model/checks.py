"""Small field checkers shared by the inventory and playbook validators.

Each returns the converted value or records a Problem and returns None, so that a validator can keep
going and report every problem at once.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from labctl.errors import Problem
from labctl.model.yamlsrc import shorten

HOST_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$")
LAB_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,14}[a-z0-9]$|^[a-z]$")
IFACE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$")
USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
IMAGE_RE = re.compile(r"^[a-z0-9]+([._/-][a-z0-9]+)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DNS_NAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


class Collector:
    """Collects problems for one source file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def add(self, field: str, message: str, category: str = "value") -> None:
        """A wrong value (the default category); the methods below name the other categories."""
        self.problems.append(Problem(self.source, shorten(field, 120), message, category))

    def missing(self, field: str, message: str) -> None:
        self.add(field, message, "missing")

    def wrong_type(self, field: str, message: str) -> None:
        self.add(field, message, "type")

    def conflict(self, field: str, message: str) -> None:
        self.add(field, message, "conflict")

    def mapping(self, value: Any, field: str, allowed: Iterable[str], required: Iterable[str] = ()) -> dict:
        """Check that value is a mapping with only allowed keys; returns {} when it is not a mapping."""
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.wrong_type(field, f"must be a mapping, got {type_name(value)}")
            return {}
        allowed = list(allowed)
        for key in value:
            if key not in allowed:
                self.add(join(field, str(key)), f"unknown field; allowed: {', '.join(allowed)}")
        for key in required:
            if key not in value:
                self.missing(join(field, key), "is required")
        return value

    def string(self, value: Any, field: str, pattern: re.Pattern[str] | None = None, what: str = "") -> str | None:
        if not isinstance(value, str) or not value:
            report = self.missing if value is None or value == "" else self.wrong_type
            report(field, f"must be a non-empty string, got {type_name(value)}")
            return None
        if pattern is not None and not pattern.match(value):
            self.add(field, f"{short(value)} is not a valid {what or 'value'}; must match {pattern.pattern}")
            return None
        return value

    def choice(self, value: Any, field: str, choices: Iterable[str]) -> str | None:
        choices = list(choices)
        if value not in choices:
            self.add(field, f"{short(value)} is not allowed; allowed: {', '.join(choices)}")
            return None
        return str(value)

    def integer(self, value: Any, field: str, low: int, high: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            report = self.add if isinstance(value, int) and not isinstance(value, bool) else self.wrong_type
            report(field, f"must be an integer from {low} to {high}, got {short(value)}")
            return None
        return value

    def ipv4_network(self, value: Any, field: str) -> ipaddress.IPv4Network | None:
        try:
            net = ipaddress.ip_network(str(value), strict=True)
        except ValueError as exc:
            hint = ""
            with contextlib.suppress(ValueError):
                hint = f" (did you mean {ipaddress.ip_network(str(value), strict=False)}?)"
            self.add(field, f"{short(value)} is not a valid IPv4 CIDR: {exc}{hint}")
            return None
        if not isinstance(net, ipaddress.IPv4Network):
            self.add(field, f"{short(value)}: only IPv4 is supported")
            return None
        return net

    def ipv4_address(self, value: Any, field: str) -> ipaddress.IPv4Address | None:
        try:
            addr = ipaddress.ip_address(str(value))
        except ValueError:
            self.add(field, f"{short(value)} is not a valid IPv4 address")
            return None
        if not isinstance(addr, ipaddress.IPv4Address):
            self.add(field, f"{short(value)}: only IPv4 is supported")
            return None
        return addr


def short(value: Any, limit: int = 60) -> str:
    """repr() for messages, cut to `limit` characters: a huge value must not become a huge message."""
    return shorten(repr(value), limit)


def join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number",
            bool: "true/false"}.get(type(value), type(value).__name__)


def normal_image_ref(ref: str) -> str:
    """"busybox" -> "busybox:latest": the form `docker image ls` shows."""
    return ref if ":" in ref.rsplit("/", 1)[-1] else f"{ref}:latest"
