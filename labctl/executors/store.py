"""The cluster store on the store host: started under the service manager (binary) or as a container (image)."""

from __future__ import annotations

import shlex

from fabric import Connection

from labctl.errors import LabctlError
from labctl.executors import consulkv
from labctl.executors.remote import Hosts
from labctl.executors.services import Service, ServiceManager
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.planes.kvstore.plan import CONSUL_CONTAINER, HEALTH_TIMEOUT, StorePlan, plan_store, reachability_probe
from labctl.providers import registry
from labctl.ui import Progress


class StoreRunner:
    """binary: the store server's path on its host when the provider supplies it (see providers.store_binary)."""

    def __init__(self, pb: Playbook, manager: ServiceManager, binary: str | None = None) -> None:
        assert pb.store is not None
        self.store = pb.store
        self.plan: StorePlan = plan_store(pb.store, pb.name, binary)
        self.manager = manager
        # systemd: labctl's own unit (labctl-etcd), never the distribution's etcd.service with its defaults
        self.service = Service(self.plan.backend, argv=self.plan.argv, unit=f"labctl-{self.plan.backend}")

    def missing_prerequisite(self, conn: Connection) -> str | None:
        """Why the store cannot run on its host (checked in preflight, before any change), or None."""
        if conn.run(self.plan.needs, hide=True, warn=True).ok:
            return None
        return f"[{self.store.host}] cannot run the {self.plan.backend} store: {self.plan.needs_hint}"

    def is_running(self, conn: Connection) -> bool:
        if self.plan.kind == "container":
            return bool(conn.run(self.plan.running, hide=True, warn=True).ok)
        return self.manager.is_running(conn, self.service)

    def start(self, conn: Connection) -> bool:
        conn.run(f"mkdir -p {shlex.quote(self.store.data_dir)}", hide=True)
        if self.plan.kind == "service":
            return self.manager.start(conn, self.service)
        if self.is_running(conn):
            return False
        conn.run(self.plan.start, hide=True)
        return True

    def stop(self, conn: Connection) -> bool:
        if self.plan.kind == "service":
            return self.manager.stop(conn, self.service)
        if not self.is_running(conn):
            conn.run(self.plan.stop, hide=True, warn=True)  # a stopped leftover goes too
            return False
        conn.run(self.plan.stop, hide=True)
        return True

    def log_tail(self, conn: Connection) -> str:
        if self.plan.kind == "container":
            return str(conn.run(f"docker logs --tail 20 {CONSUL_CONTAINER} 2>&1", hide=True, warn=True).stdout)
        return self.manager.log_tail(conn, self.service)

    @property
    def consul_api(self) -> bool:
        """Consul is asked through its HTTP API (py-consul over an SSH forward), etcd through etcdctl."""
        return self.plan.backend == "consul"

    def _address(self) -> str:
        return self.store.address or self.store.host

    def wait_healthy(self, conn: Connection) -> None:
        if self.consul_api:
            try:
                consulkv.wait_leader(conn, self._address(), self.store.port, HEALTH_TIMEOUT)
            except LabctlError as exc:
                raise LabctlError(f"[{self.store.host}] {exc.message}; its log:\n{self.log_tail(conn)}") from None
            return
        if not conn.run(self.plan.wait_healthy(), hide=True, warn=True).ok:
            raise LabctlError(f"[{self.store.host}] {self.plan.backend} not healthy within {HEALTH_TIMEOUT}s "
                              f"(`{self.plan.health}`); its log:\n{self.log_tail(conn)}")

    def has_data(self, conn: Connection) -> bool:
        """Whether the data directory holds anything (the keys of a store that is stopped may still be in it)."""
        d = shlex.quote(self.store.data_dir)
        return bool(conn.run(f'[ -d {d} ] && [ -n "$(ls -A {d})" ]', hide=True, warn=True).ok)

    def remove_data(self, conn: Connection) -> bool:
        """The data directory goes with the lab (it is confined under /var/lib/labctl/ by the playbook's validation)."""
        if not conn.run(f"test -e {shlex.quote(self.store.data_dir)}", hide=True, warn=True).ok:
            return False
        conn.run(f"rm -rf -- {shlex.quote(self.store.data_dir)}", hide=True)
        return True

    def healthy(self, conn: Connection) -> bool:
        """One look, no waiting (verify's diagnosis)."""
        if self.consul_api:
            return bool(consulkv.state(conn, self._address(), self.store.port).leader)
        return bool(conn.run(f"timeout 5 sh -c {shlex.quote(self.plan.health)}", hide=True, warn=True).ok)

    def contents(self, conn: Connection) -> consulkv.ConsulState | None:
        """What Docker wrote into the store (Consul only; None for etcd)."""
        return consulkv.state(conn, self._address(), self.store.port) if self.consul_api else None

    def wipe(self, conn: Connection) -> bool:
        """Remove the keys Docker wrote; False when there were none (or the store does not answer)."""
        if self.consul_api:   # its failure is raised: `down` names it (the data directory goes next anyway)
            return consulkv.wipe(conn, self._address(), self.store.port)
        return bool(conn.run(self.plan.wipe, hide=True, warn=True).ok)


def store_runner(inv: Inventory, pb: Playbook, manager: ServiceManager,
                 progress: Progress | None = None) -> StoreRunner:
    """The store of the playbook with its server where the provider puts it; progress: fetch it when missing (on
    the controller: nothing changes on a host)."""
    assert pb.store is not None
    binary = registry.store_binary(inv, pb.store.backend, progress) if pb.store.image is None else None
    return StoreRunner(pb, manager, binary)


def check_store_reachable(pb: Playbook, hosts: Hosts, names: list[str]) -> None:
    """Every docker host opens a TCP connection to the store's client port (dockerd will need exactly that)."""
    assert pb.store is not None
    probe = reachability_probe(pb.store)
    results = hosts.each(lambda n, c: bool(c.run(probe, hide=True, warn=True).ok), names, step="store reachability")
    unreachable = [n for n, ok in results.items() if not ok]
    if unreachable:
        raise LabctlError(f"store {pb.store.url} is not reachable from {', '.join(unreachable)}",
                          hint="check the underlay between these hosts and the store host (firewall, routes)")
