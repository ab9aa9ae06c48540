"""Where Docker Engine 20.10 and 23 and later (26 here) differ, in one place (pure). Everything else labctl asks
an engine is asked the same way of both (labctl.facts.docker); Docker's error messages of both are recognised in
labctl.facts.docker_errors, with captured samples of each.

- The cluster store (`cluster-store`, `cluster-advertise`) exists up to 22.x; 23.0 removed it. The kvstore
  control plane refuses later engines with `CLUSTER_STORE_REMOVED`.
- The CLI of 23 and later no longer shows the cluster store in `docker info`, even against a 20.10 daemon: labctl
  reads `cluster-advertise` from daemon.json instead (the kvstore plane's facts).
- The engine ID comes from /etc/docker/key.json up to 20.10 and from /var/lib/docker/engine-id from 23 on; cloned
  VMs share it either way, and the fix names the file of each (`engine_id_fix`).
- Swarm's code is github.com/docker/swarmkit in 20.10 and github.com/moby/swarmkit/v2 in 26 (how the engine
  cache tells whether a dockerd binary has swarm).
"""

from __future__ import annotations

CLUSTER_STORE_LAST_MAJOR = 22
CLUSTER_STORE_REMOVED = "removed in 23.0"
ENGINE_ID_FILES = (("Engine 20.10", "/etc/docker/key.json"), ("Engine 23 and later", "/var/lib/docker/engine-id"))
SWARMKIT_MARKER = b"/swarmkit/"   # github.com/docker/swarmkit (20.10), github.com/moby/swarmkit/v2 (26)


def has_cluster_store(major: int) -> bool:
    return major <= CLUSTER_STORE_LAST_MAJOR


def engine_id_fix() -> str:
    """What to remove on each of hosts that share an engine ID, for either engine."""
    return " or ".join(f"{path} ({which})" for which, path in ENGINE_ID_FILES)
