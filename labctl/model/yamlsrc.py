"""YAML parsing that refuses what PyYAML silently accepts or chokes on.

- duplicate keys (the last would win);
- keys that are not plain scalars (`? [a]: 1` would make an unhashable key);
- files larger than MAX_BYTES, not UTF-8, nested deeper than MAX_DEPTH;
- alias bombs: anchors that expand to more than MAX_NODES nodes ("billion laughs"). PyYAML shares the
  aliased objects, so loading is quick, but every later walk over the value (validation, error messages)
  would visit the expanded tree: nine anchors of nine lists made `labctl validate` hang.

Every refusal is a ValidationError (exit 2) naming the file and the line.
"""

from __future__ import annotations

from typing import Any

import yaml

from labctl.errors import Problem, ValidationError

MAX_BYTES = 1024 * 1024   # a lab description is a few KB; 1 MiB leaves room for generated ones
MAX_DEPTH = 64            # nesting levels, aliases expanded
MAX_NODES = 200_000       # scalars, sequences and mappings, aliases expanded


class _LimitExceeded(yaml.MarkedYAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _LimitExceeded(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                     self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        check_expansion(node)
        return self.construct_document(node)


def check_expansion(root: yaml.Node) -> None:
    """Size and depth of the document with every alias expanded, computed once per distinct node (iteratively:
    a chain of anchors can be longer than Python's recursion limit). Raises _LimitExceeded past the limits or on
    a recursive alias (an anchor used inside itself)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in size:
            continue
        kids = _children(node)
        if not children_done:
            if key in active:
                raise _LimitExceeded(None, None, "an anchor is used inside itself (recursive alias)", node.start_mark)
            active.add(key)
            stack.append((node, True))
            for kid in kids:
                if id(kid) in active and id(kid) not in size:
                    raise _LimitExceeded(None, None, "an anchor is used inside itself (recursive alias)",
                                         kid.start_mark)
                if id(kid) not in size:
                    stack.append((kid, False))
            continue
        active.discard(key)
        size[key] = 1 + sum(size[id(k)] for k in kids)
        depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
        if size[key] > MAX_NODES:
            raise _LimitExceeded(None, None, f"expands to more than {MAX_NODES:,} values (aliases of aliases?)",
                                 node.start_mark)
        if depth[key] > MAX_DEPTH:
            raise _LimitExceeded(None, None, f"nested deeper than {MAX_DEPTH} levels once aliases are expanded",
                                 node.start_mark)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


class DuplicateKey(yaml.constructor.ConstructorError):
    """A key given twice in one mapping: a conflict, not a syntax error."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain name, not a list or mapping (`? [..]` or `? {..}`)",
                key_node.start_mark)
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise DuplicateKey(
                None, None, f"duplicate key {shorten(repr(key))} (first at line {seen[key]})", key_node.start_mark
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def shorten(text: str, limit: int = 80) -> str:
    """A value as it appears in a message: at most `limit` characters, with how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit - 20]}... ({len(text):,} characters)"


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text; syntax errors, limits and duplicate keys become a ValidationError naming the line."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(unknown position)"
        category = "conflict" if isinstance(exc, DuplicateKey) else "value"
        raise ValidationError([Problem(source, where, shorten(str(exc.problem or exc), 300), category)]) from None
    except yaml.YAMLError as exc:
        raise ValidationError([Problem(source, "(file)", f"not valid YAML: {shorten(str(exc), 300)}")]) from None
    except RecursionError:
        raise ValidationError([Problem(source, "(file)", f"nested too deeply (more than {MAX_DEPTH} levels)")]) \
            from None


def read_source(path: str) -> str:
    """Read a model file; a missing, unreadable, huge or non-UTF-8 file is bad input (exit 2), not a crash."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ValidationError([Problem(path, "(file)", f"cannot read: {exc.strerror}", "missing")]) from None
    if len(data) > MAX_BYTES:
        raise ValidationError([Problem(path, "(file)", f"larger than {MAX_BYTES // 1024} KiB: is this the right "
                                                       "file? A lab description is a few KB")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ValidationError([Problem(path, f"line {line}", f"not UTF-8 (byte 0x{data[exc.start]:02x}); save the "
                                                           "file as UTF-8")]) from None
