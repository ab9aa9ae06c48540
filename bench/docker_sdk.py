"""Docker SDK against labctl's batched facts, on the seed lab (sandbox hosts): what reading a docker host's lab
objects costs each way. labctl asks the engine's networks and containers as facts, in one SSH command per host
(labctl.facts); the Docker SDK (docker-py) asks the Engine API over the same SSH connection, through
`docker system dial-stdio`, one HTTP request per list and per object.

    python bench/docker_sdk.py              # needs root and the `docker` package (pip install docker)
    python bench/docker_sdk.py --runs 20

The sandbox's links add no delay (and this kernel has no netem to add one), so the round-trip time of a real
network is not measured: the table gives the requests each way needs, and docs/facts.md the arithmetic.

Everything runs in the lab `benchsdk` on 198.18.92.0/24 and is removed at the end, also after a crash of an
earlier run. Prints a table; writes bench/results-docker-sdk.json (--no-write: print only). Traffic stays on the
sandbox hosts' links.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import must, run_labctl  # noqa: E402
from labctl.executors.facts import ask  # noqa: E402
from labctl.executors.remote import ROUND_TRIPS, Hosts  # noqa: E402
from labctl.model.inventory import load_inventory  # noqa: E402
from labctl.model.playbook import load_playbook  # noqa: E402
from labctl.plan.lab import LABEL  # noqa: E402
from labctl.plan.objects import object_facts, objects_from  # noqa: E402
from labctl.plan.status import status_facts  # noqa: E402
from labctl.planes.registry import plan_halves  # noqa: E402
from labctl.providers import registry  # noqa: E402

LAB = "benchsdk"
SUBNET = "198.18.92.0/24"
PLAYBOOK = ROOT / "playbooks" / "seed-overlay.yaml"
RESULTS = ROOT / "bench" / "results-docker-sdk.json"


def sdk_client(conn: Any) -> Any:
    """docker-py's APIClient over the Fabric connection's own SSH transport (no second login): each HTTP
    connection is a channel running `docker system dial-stdio` on the host."""
    import docker  # the bench's own dependency, not labctl's

    client = docker.APIClient(base_url=f"ssh://{conn.host}", use_ssh_client=True, version="1.41", timeout=30)
    client._custom_adapter.ssh_client = conn.client   # noqa: SLF001 - the adapter's paramiko client is ours
    client._custom_adapter.pools.clear()               # noqa: SLF001
    return client


def sdk_objects(client: Any, lab: str) -> tuple[dict[str, Any], dict[str, Any], int]:
    """What labctl's object facts give (engine version, the lab's networks and containers as inspect shows
    them), through the SDK; and how many API requests that took."""
    label = {"label": f"{LABEL}={lab}"}
    version = client.version()["Version"]
    networks = {n["Name"]: client.inspect_network(n["Id"]) for n in client.networks(filters=label)}
    containers = {c["Names"][0].lstrip("/"): client.inspect_container(c["Id"])
                  for c in client.containers(all=True, filters=label)}
    assert version
    return networks, containers, 3 + len(networks) + len(containers)


def timed(fn: Any, runs: int) -> tuple[float, Any]:
    """Median wall time in ms over `runs` runs (after one unmeasured warm-up), and the last result."""
    result = fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


def measure(inventory: Path, runs: int) -> dict[str, Any]:
    inv = load_inventory(str(inventory))
    lab = load_playbook(str(PLAYBOOK), inv).name
    label = f"{LABEL}={lab}"
    rows = {}
    with Hosts(registry.endpoints(inv)) as hosts:
        for h in inv.docker_hosts:
            conn = hosts.conn(h.name)
            conn.open()
            facts = object_facts(label)
            before = ROUND_TRIPS.counts.get(h.name, 0)
            cli_ms, answers = timed(lambda c=conn, n=h.name, f=facts: ask(c, n, f), runs)
            cli_trips = (ROUND_TRIPS.counts.get(h.name, 0) - before) / (runs + 1)
            objs = objects_from(answers, label)
            everything = status_facts(label, True, plan_halves(), True)   # what `labctl status` asks
            status_ms, _ = timed(lambda c=conn, n=h.name, f=everything: ask(c, n, f), runs)
            rest = [f for f in everything if f.name not in {x.name for x in facts}]
            rest_ms, _ = timed(lambda c=conn, n=h.name, f=rest: ask(c, n, f), runs)
            client = sdk_client(conn)
            sdk_ms, (nets, ctrs, requests) = timed(lambda c=client: sdk_objects(c, lab), runs)
            same = set(nets) == set(objs.networks) and set(ctrs) == set(objs.containers) and all(
                ctrs[n]["Id"] == objs.containers[n]["Id"] for n in ctrs)
            rows[h.name] = {"engine": objs.engine, "networks": len(nets), "containers": len(ctrs),
                            "cli_ms": round(cli_ms, 1), "cli_ssh_commands": cli_trips,
                            "sdk_ms": round(sdk_ms, 1), "sdk_requests": requests, "same_objects": same,
                            "status_ms": round(status_ms, 1), "status_rest_ms": round(rest_ms, 1)}
            client.close = lambda: None   # the transport is the Fabric connection's; Hosts closes it
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="measured runs per host and way (default 10)")
    parser.add_argument("--no-write", action="store_true", help=f"print only; leave {RESULTS.name} alone")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("the bench needs root (sandbox hosts)", file=sys.stderr)
        return 2
    try:
        import docker  # noqa: F401
    except ImportError:
        print("the bench needs the Docker SDK: pip install docker (it is not a labctl dependency)", file=sys.stderr)
        return 2
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory(prefix="labctl-bench-sdk-") as tmp:
        inv = Path(tmp) / f"{LAB}.yaml"
        inv.write_text(f"name: {LAB}\nprovider: sandbox\nunderlay: {{subnet: {SUBNET}}}\n"
                       "hosts:\n  store: {roles: [store]}\n  node1: {roles: [docker]}\n  node2: {roles: [docker]}\n")
        must(env, "sandbox", "down", "-i", str(inv))     # what a crashed earlier run left
        must(env, "sandbox", "up", "-i", str(inv))
        try:
            must(env, "up", "-i", str(inv), "-p", str(PLAYBOOK))
            rows = [{"host": name, **r} for name, r in measure(inv, args.runs).items()]
        finally:
            run_labctl(env, "sandbox", "down", "-i", str(inv))
    print("| host | engine | networks | containers | labctl facts | SSH commands | Docker SDK | "
          "API requests | same objects | status, batched | status, SDK + the rest |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['host']} | {r['engine']} | {r['networks']} | {r['containers']} | "
              f"{r['cli_ms']} ms | {r['cli_ssh_commands']:g} | {r['sdk_ms']} ms | {r['sdk_requests']} | "
              f"{r['same_objects']} | {r['status_ms']} ms | {r['sdk_ms'] + r['status_rest_ms']:.1f} ms |")
    if not args.no_write:
        RESULTS.write_text(json.dumps({"measured": time.strftime("%Y-%m-%d"), "runs": args.runs, "hosts": rows},
                                      indent=2) + "\n")
    return 0 if all(r["same_objects"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
