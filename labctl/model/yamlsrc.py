"""YAML parsing that refuses what PyYAML silently accepts: duplicate keys (the last would win)."""

from __future__ import annotations

from typing import Any

import yaml

from labctl.errors import Problem, ValidationError


class _StrictLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key]})", key_node.start_mark
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text; syntax errors and duplicate keys become a ValidationError naming the line."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(unknown position)"
        raise ValidationError([Problem(source, where, str(exc.problem or exc))]) from None
    except yaml.YAMLError as exc:
        raise ValidationError([Problem(source, "(file)", f"not valid YAML: {exc}")]) from None


def read_source(path: str) -> str:
    """Read a model file; a missing or unreadable file is bad input (exit 2), not a crash."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise ValidationError([Problem(path, "(file)", f"cannot read: {exc.strerror}")]) from None
