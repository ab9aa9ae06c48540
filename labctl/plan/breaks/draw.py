"""A different broken lab for each student (`break --class --random [--seed N]`), pure: which scenario each
student gets, drawn so that neighbours in the class file differ, and the order in which the host, container or
network within the scenario is tried. The same seed gives the same draw (random.Random with a string seed is the
same in every process)."""

from __future__ import annotations

import random
from collections.abc import Iterator

from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.plan.breaks import SCENARIOS

# Scenarios a class may be given at random: those whose fault a reachability exercise (exercises/fix-the-lab.yaml)
# sees and a student can repair from the hosts' own shells. Left out: mtu-lowered (small pings still pass, and an
# exercise's expectations carry no packet size) and store-stopped (its repair starts the store, which sandbox
# hosts run as a process of labctl's with no unit a student could start).
RANDOM_POOL = ("vxlan-blocked", "container-stopped", "container-disconnected", "wrong-subnet")
OPTIONS = ("host", "container", "network")


def student_rng(seed: int, student: str) -> random.Random:
    return random.Random(f"labctl-break/{seed}/{student}")


def draw_scenarios(students: list[str], seed: int, pool: tuple[str, ...] = RANDOM_POOL) -> dict[str, str]:
    """student -> scenario; each differs from the one of the student before it in the class file (and the last
    from the first, for a class seated in a ring), as long as the pool has three or more to choose from."""
    rng = random.Random(f"labctl-break/{seed}")
    drawn: dict[str, str] = {}
    for i, s in enumerate(students):
        taken = {drawn[students[i - 1]]} if i else set()
        if i == len(students) - 1 and i > 1:
            taken.add(drawn[students[0]])
        choices = [x for x in pool if x not in taken] or list(pool)
        drawn[s] = rng.choice(choices)
    return drawn


def takes(scenario: str) -> tuple[str, ...]:
    """The options a scenario takes (--host, --container, --network), from its description."""
    return tuple(o for o in OPTIONS if f"--{o}" in SCENARIOS[scenario].options)


def option_draws(scenario: str, inv: Inventory, pb: Playbook,
                 rng: random.Random) -> Iterator[tuple[str | None, str | None, str | None]]:
    """(host, container, network) to try in turn, in a drawn order; the scenario's own default comes last. The
    planner refuses what does not fit (a container on no overlay, say), and the next draw is tried."""
    wanted = takes(scenario)
    candidates: list[tuple[str | None, str | None, str | None]] = []
    if "host" in wanted:
        candidates = [(h.name, None, None) for h in inv.docker_hosts]
    elif "network" in wanted:
        candidates = [(None, c.name, a.network) for c in pb.containers for a in c.networks]
    elif "container" in wanted:
        candidates = [(None, c.name, None) for c in pb.containers]
    rng.shuffle(candidates)
    yield from candidates
    yield (None, None, None)
