"""The cluster store (etcd or Consul) as the overlay's control plane: Docker Engine 20.10 and older."""

from __future__ import annotations

import shlex

from labctl.errors import LabctlError
from labctl.executors.remote import Hosts
from labctl.executors.steps import Report
from labctl.executors.store import StoreRunner, check_store_reachable, store_runner
from labctl.model.playbook import Playbook
from labctl.planes.executor_base import ControlPlane, Run
from labctl.ui import Progress


class KvStore(ControlPlane):
    name = "kvstore"

    def _store(self, run: Run) -> StoreRunner | None:
        return store_runner(run.inv, run.pb, run.manager, run.progress) if run.pb.store is not None else None

    def preflight(self, run: Run, active: bool) -> list[str]:
        store = self._store(run)
        if not active or store is None or run.pb.store is None:
            return []
        problem = store.missing_prerequisite(run.hosts.conn(run.pb.store.host))
        return [problem] if problem else []

    def bootstrap(self, run: Run, active: bool) -> None:
        store = self._store(run)
        if active and store is not None:
            ensure_store(run.pb, store, run.hosts, run.progress, run.report)
            check_store_reachable(run.pb, run.hosts, run.names)

    def after_networks(self, run: Run, active: bool) -> None:
        if active:
            wait_overlays_visible(run.pb, run.hosts, run.names, run.progress)

    def down_begin(self, run: Run) -> None:
        store = self._store(run)
        if store is not None:
            store_running_for_down(run.pb, store, run.hosts, run.progress, run.report)

    def down_end(self, run: Run) -> None:
        store = self._store(run)
        if store is not None and run.pb.store is not None and \
                not any(s.startswith(f"{run.pb.store.host}:") for s in run.report.skipped):
            stop_store(run.pb, store, run.hosts, run.progress, run.report)


def ensure_store(pb: Playbook, store: StoreRunner, hosts: Hosts, progress: Progress, report: Report) -> None:
    assert pb.store is not None
    conn = hosts.conn(pb.store.host)
    if store.start(conn):
        report.add(pb.store.host, f"{pb.store.backend} started on {pb.store.address}:{pb.store.port}")
        progress.step(pb.store.host, f"{pb.store.backend} started ({pb.store.url}); waiting until healthy")
    store.wait_healthy(conn)


def wait_overlays_visible(pb: Playbook, hosts: Hosts, names: list[str], progress: Progress,
                          timeout: float = 30) -> None:
    overlays = [n.name for n in pb.networks if n.driver == "overlay"]
    if not overlays:
        return
    check = " && ".join(f"docker network inspect {shlex.quote(o)} >/dev/null 2>&1" for o in overlays)
    cmd = f"timeout {int(timeout)} sh -c {shlex.quote(f'until {check}; do sleep 0.2; done')}"
    results = hosts.each(lambda n, c: bool(c.run(cmd, hide=True, warn=True).ok), names, step="overlay visibility")
    missing = [n for n, ok in results.items() if not ok]
    if missing:
        raise LabctlError(f"overlay network(s) {', '.join(overlays)} not visible on {', '.join(missing)} after "
                          f"{timeout:g}s", hint="the host is not using the cluster store: check `docker info` there")


def store_running_for_down(pb: Playbook, store: StoreRunner, hosts: Hosts, progress: Progress,
                           report: Report) -> None:
    """Removing an overlay network goes through the store: a stopped store that still holds data is started for the
    teardown (and stopped again at its end); one that cannot run is skipped with a warning, and the overlay's removal
    may then fail. A stopped store without data (an earlier down removed it) is left alone: nothing to wipe."""
    assert pb.store is not None
    try:
        conn = hosts.conn(pb.store.host)
        if store.is_running(conn) or not store.has_data(conn):
            return
        problem = store.missing_prerequisite(conn)
        if problem is None:
            progress.step(pb.store.host, f"{pb.store.backend} is not running: started for the teardown")
            ensure_store(pb, store, hosts, progress, report)
            return
        why = problem
    except Exception as exc:  # noqa: BLE001 - down goes on with what it can reach
        why = f"cannot be reached: {str(exc)[:200]}"
    report.skipped.append(f"{pb.store.host}: the {pb.store.backend} store {why}; its keys were not wiped")
    progress.step(pb.store.host, f"store skipped: {why}")


def stop_store(pb: Playbook, store: StoreRunner, hosts: Hosts, progress: Progress, report: Report) -> None:
    assert pb.store is not None
    conn = hosts.conn(pb.store.host)
    if store.is_running(conn):
        try:
            if store.wipe(conn):
                report.add(pb.store.host, "store keys under docker/ removed")
            elif store.consul_api:
                report.add(pb.store.host, "no keys under docker/ in the store (Docker had removed its own)")
        except Exception as exc:  # noqa: BLE001 - down goes on: the store's data directory is removed next
            report.skipped.append(f"{pb.store.host}: the keys under docker/ could not be removed: {str(exc)[:200]}")
    if store.stop(conn):
        progress.step(pb.store.host, f"{pb.store.backend} stopped")
        report.add(pb.store.host, f"{pb.store.backend} stopped")
    if store.remove_data(conn):
        report.add(pb.store.host, f"store data {pb.store.data_dir} removed")


Plane = KvStore   # what labctl.planes.executor_halves instantiates
