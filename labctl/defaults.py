"""Where a command's inventory and playbook come from when the command line does not name them.

One order, for `labctl` and `fab` alike (Fabric's own: the most specific source wins):

1. the command line (`--inventory`, `--playbook`);
2. the environment (`LABCTL_INVENTORY`, `LABCTL_PLAYBOOK`);
3. the project's Fabric/Invoke configuration file, `fabric.yaml` (or `fabric.yml`, `fabric.json`) with a `labctl:`
   section (`inventory:`, `playbook:`), paths relative to that file;
4. the shipped sandbox inventory and seed playbook, relative to the project.

The project is the nearest directory, from the current one upwards, that holds a `fabric.yaml` or a `fabfile.py`
(where `fab` itself finds its fabfile and Fabric its project configuration). Outside any project, the shipped files
are looked for next to the installed package (a clone installed with `pip install -e`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from labctl.errors import Problem, ValidationError

CONFIG_NAMES = ("fabric.yaml", "fabric.yml", "fabric.json")
PROJECT_MARKERS = (*CONFIG_NAMES, "fabfile.py")
SECTION = "labctl"
KINDS = ("inventory", "playbook")
ENV = {"inventory": "LABCTL_INVENTORY", "playbook": "LABCTL_PLAYBOOK"}
SHIPPED = {"inventory": "inventories/sandbox.yaml", "playbook": "playbooks/seed-overlay.yaml"}


@dataclass(frozen=True)
class Choice:
    """A resolved file and where it came from, for the first line of a command's output."""

    path: str
    origin: str      # "command line", "$LABCTL_INVENTORY", "fabric.yaml", "shipped default"

    def describe(self, kind: str) -> str:
        return f"{kind} {self.path} ({self.origin})"


def project_dir(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if any((d / name).is_file() for name in PROJECT_MARKERS):
            return d
    return None


def config_file(project: Path | None) -> Path | None:
    if project is None:
        return None
    return next((project / n for n in CONFIG_NAMES if (project / n).is_file()), None)


def read_section(path: Path) -> dict[str, str]:
    """The `labctl:` section of a Fabric configuration file: only `inventory` and `playbook`, as strings."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ValidationError([Problem(str(path), SECTION, f"cannot be read: {str(exc).splitlines()[0]}")]) from None
    section = (data or {}).get(SECTION) if isinstance(data, dict) else None
    if section is None:
        return {}
    problems = []
    if not isinstance(section, dict):
        problems.append(Problem(str(path), SECTION, "must be a mapping with `inventory:` and/or `playbook:`",
                                "type"))
        section = {}
    for key, value in section.items():
        if key not in KINDS:
            problems.append(Problem(str(path), f"{SECTION}.{key}", f"unknown field; allowed: {', '.join(KINDS)}"))
        elif not isinstance(value, str) or not value:
            problems.append(Problem(str(path), f"{SECTION}.{key}", "must be a file path (a non-empty string)",
                                    "type"))
    if problems:
        raise ValidationError(problems)
    return {k: v for k, v in section.items() if k in KINDS}


def _display(path: Path) -> str:
    """Relative to the current directory when under it: what a user would type."""
    try:
        return os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd().resolve()) else str(path)
    except ValueError:
        return str(path)


def _shipped_root(project: Path | None) -> Path:
    if project is not None and (project / SHIPPED["inventory"]).exists():
        return project
    package_parent = Path(__file__).resolve().parent.parent
    if (package_parent / SHIPPED["inventory"]).exists():
        return package_parent
    return project or Path.cwd()


def resolve(kind: str, given: str | None, env: dict[str, str] | None = None, start: Path | None = None) -> Choice:
    """The file for `kind` ("inventory" or "playbook") by the order above."""
    env = dict(os.environ) if env is None else env
    if given:
        return Choice(given, "command line")
    if env.get(ENV[kind]):
        return Choice(env[ENV[kind]], f"${ENV[kind]}")
    project = project_dir(start)
    config = config_file(project)
    if config is not None:
        value = read_section(config).get(kind)
        if value:
            path = Path(value).expanduser()
            return Choice(_display(path if path.is_absolute() else config.parent / path), _display(config))
    return Choice(_display(_shipped_root(project) / SHIPPED[kind]), "shipped default")
