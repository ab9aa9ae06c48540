"""Inputs nobody wrote by hand: the shipped playbooks, exercises and inventories, mutated at random (deleted keys,
swapped types, duplicated and deeply nested values, huge strings, aliases, broken bytes). `labctl validate` must
end every one of them with exit 0 or 2 within a second, and never with a traceback.

The generator is seeded, so a failure names a case that can be reproduced (`FUZZ_SEED`, `FUZZ_CASES`)."""

from __future__ import annotations

import copy
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl import cli

ROOT = Path(__file__).parents[2]
PLAYBOOKS = sorted((ROOT / "playbooks").glob("*.yaml"))
EXERCISES = sorted((ROOT / "exercises").glob("*.yaml"))
INVENTORIES = [ROOT / "inventories" / n for n in ("sandbox.yaml", "static.example.yaml", "vagrant.yaml")]
SEED = int(os.environ.get("FUZZ_SEED", "20261124"))
CASES = int(os.environ.get("FUZZ_CASES", "1200"))

ALIAS_BOMB = "bomb0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"bomb{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))


def _values(rng: random.Random) -> list[Any]:
    return [None, True, 0, -1, 99999, 1.5, "", "x" * rng.choice((1, 70, 100_000)), "{0}", "{octet.x}", "[red]x[/]",
            "a b;rm -rf /", "172.30.0.0/16", "999.1.1.1", ["a"], [["a"]], {"a": 1}, {}, [], "é\u202e"]


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


def _get(data: Any, path: tuple) -> Any:
    for p in path:
        data = data[p]
    return data


def _nest(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


def mutate_structure(data: Any, rng: random.Random) -> Any:
    data = copy.deepcopy(data)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _paths(data) if p]
        if not paths:
            return rng.choice(_values(rng))
        path = rng.choice(paths)
        parent, key = _get(data, path[:-1]), path[-1]
        op = rng.choice(("delete", "swap", "swap", "duplicate", "nest", "wrap", "key"))
        if op == "delete":
            del parent[key]
        elif op == "swap":
            parent[key] = rng.choice(_values(rng))
        elif op == "duplicate":
            parent[key] = [copy.deepcopy(parent[key])] * rng.choice((2, 50))
        elif op == "nest":
            parent[key] = _nest(parent[key], rng.choice((5, 40, 63)))
        elif op == "wrap":
            parent[key] = {"x": parent[key]} if rng.random() < 0.5 else [parent[key]]
        elif op == "key" and isinstance(parent, dict):
            parent[rng.choice((1, True, None, "x" * 300, "bad name!", "c"))] = parent.pop(key)
    return data


def mutate_text(text: str, rng: random.Random) -> bytes:
    lines = text.splitlines(keepends=True)
    op = rng.choice(("dup-line", "drop-line", "truncate", "bytes", "bomb", "deep", "complex-key", "indent",
                     "anchor"))
    if op == "dup-line" and lines:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    elif op == "drop-line" and lines:
        del lines[rng.randrange(len(lines))]
    elif op == "truncate":
        return text[:rng.randrange(len(text) + 1)].encode()
    elif op == "bytes":
        raw = bytearray(text.encode())
        for _ in range(rng.randint(1, 4)):
            raw.insert(rng.randrange(len(raw) + 1), rng.choice((0xff, 0xc3, 0x00, 0x80, 0x09)))
        return bytes(raw)
    elif op == "bomb":
        return (ALIAS_BOMB + text).encode()
    elif op == "deep":
        depth = rng.choice((50, 70, 2000))
        return (text + "extra: " + "[" * depth + "]" * depth + "\n").encode()
    elif op == "complex-key":
        return (text + "? [a, b]\n: 1\n").encode()
    elif op == "indent" and lines:
        i = rng.randrange(len(lines))
        lines[i] = " " * rng.choice((1, 3)) + lines[i]
    elif op == "anchor":
        return (text + "again: &x {a: 1}\nagain2: *x\nagain3: *nowhere\n").encode()
    return "".join(lines).encode()


def _cases() -> list[tuple[str, bytes, Path | None]]:
    """(kind, mutated bytes, the shipped file it came from): a third each playbooks, exercises, inventories."""
    rng = random.Random(SEED)
    cases = []
    kinds = ("playbook", "exercise", "inventory")
    for i in range(CASES):
        kind = kinds[i % 3]
        shipped = rng.choice({"playbook": PLAYBOOKS, "exercise": EXERCISES, "inventory": INVENTORIES}[kind])
        text = shipped.read_text()
        if rng.random() < 0.6:
            data = mutate_structure(yaml.safe_load(text), rng)
            try:
                body = yaml.safe_dump(data, sort_keys=False).encode()
            except (yaml.YAMLError, RecursionError):
                body = yaml.safe_dump(str(data)[:1000]).encode()
        else:
            body = mutate_text(text, rng)
        cases.append((kind, body, shipped))
    return cases


def test_mutated_inputs_end_in_exit_0_or_2_within_a_second(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    slow, crashed, codes = [], [], {0: 0, 2: 0}
    inventory = ROOT / "inventories" / "sandbox.yaml"
    for n, (kind, body, shipped) in enumerate(_cases()):
        case = tmp_path / f"case{n}.yaml"
        case.write_bytes(body)
        if kind == "playbook":
            argv = ["validate", "-i", str(inventory), "-p", str(case)]
        elif kind == "exercise":
            argv = ["validate", "-i", str(inventory), "-e", str(case)]
        else:
            (tmp_path / "Vagrantfile").write_text("")  # the vagrant inventory looks for its Vagrantfile
            argv = ["validate", "-i", str(case)]
        t0 = time.monotonic()
        try:
            code = cli.main(argv)
        except BaseException as exc:  # noqa: BLE001 - the finding: anything that is not an exit code
            crashed.append(f"case {n} ({kind} from {shipped.name}): {type(exc).__name__}: {str(exc)[:200]}")
            continue
        finally:
            out = capsys.readouterr()
        took = time.monotonic() - t0
        if took > 1.0:
            slow.append(f"case {n} ({kind} from {shipped.name}): {took:.2f}s")
        if code not in (0, 2):
            crashed.append(f"case {n} ({kind}): exit {code}: {out.err[-300:]}")
        else:
            codes[code] += 1
        assert "Traceback" not in out.err
        assert len(out.err) < 20_000, f"case {n}: {len(out.err)} characters of error output"
    assert not crashed, "\n".join(crashed[:20])
    assert not slow, "\n".join(slow[:20])
    # the generator must exercise both outcomes, or it tests nothing
    assert codes[0] > 20 and codes[2] > CASES // 2, codes
    print(f"fuzz: {CASES} cases, exit 0: {codes[0]}, exit 2: {codes[2]}")
