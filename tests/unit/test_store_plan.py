"""The cluster store as exact commands (golden), for etcd, a Consul binary and the hashicorp/consul image.

Consul cannot run on these machines (no Consul server package, and Debian's dockerd has no Consul backend),
so its path is tested here as the commands labctl would send; the etcd path also runs for real in
tests/integration/test_lab.py.
"""

from __future__ import annotations

import textwrap

from labctl.model.inventory import parse_inventory
from labctl.model.playbook import parse_playbook
from labctl.planes.kvstore.plan import plan_store

INV = parse_inventory(textwrap.dedent("""
    name: t
    provider: sandbox
    underlay: {subnet: 198.18.40.0/24}
    hosts:
      store: {roles: [store]}
      node1: {roles: [docker]}
    """), "t.yaml")


def store_of(text: str):
    pb = parse_playbook(text + "networks:\n  ov: {driver: overlay, subnet: 172.30.0.0/16}\n", "p.yaml", INV)
    assert pb.store is not None
    return pb.store


def test_etcd_plan() -> None:
    plan = plan_store(store_of("store: {backend: etcd}\n"), "lab1")
    assert plan.kind == "service"
    assert plan.argv == (
        "/usr/bin/etcd", "--name", "store", "--data-dir", "/var/lib/labctl/etcd", "--enable-v2=true",
        "--listen-client-urls", "http://198.18.40.11:2379", "--advertise-client-urls", "http://198.18.40.11:2379",
        "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
        "--initial-cluster", "store=http://127.0.0.1:2380")
    assert plan.health == "ETCDCTL_API=3 etcdctl --endpoints http://198.18.40.11:2379 endpoint health"
    assert plan.wipe == "ETCDCTL_API=2 etcdctl --endpoints http://198.18.40.11:2379 rm --recursive /docker"


def test_consul_binary_plan() -> None:
    plan = plan_store(store_of("store: {backend: consul, data_dir: /var/lib/labctl/consul-data}\n"), "lab1")
    assert plan.kind == "service"
    assert plan.argv == (
        "/usr/bin/consul", "agent", "-server", "-bootstrap-expect=1", "-node", "store",
        "-bind", "198.18.40.11", "-client", "198.18.40.11", "-http-port", "8500", "-ui=false",
        "-data-dir", "/var/lib/labctl/consul-data")
    assert plan.health == ("/usr/bin/consul operator raft list-peers -http-addr=http://198.18.40.11:8500 "
                           "| grep -q leader")
    assert plan.wipe == "/usr/bin/consul kv delete -http-addr=http://198.18.40.11:8500 -recurse docker/"
    assert plan.needs == "test -x /usr/bin/consul && echo /usr/bin/consul"


def test_consul_image_plan() -> None:
    plan = plan_store(store_of("store: {backend: consul, image: 'hashicorp/consul:1.15'}\n"), "lab1")
    assert plan.kind == "container"
    run = ("docker run -d --name labctl-store-consul --network host --restart unless-stopped "
           "--label labctl.store=lab1 -v /var/lib/labctl/consul:/consul/data hashicorp/consul:1.15 agent -server "
           "-bootstrap-expect=1 -node store -bind 198.18.40.11 -client 198.18.40.11 -http-port 8500 -ui=false")
    assert plan.start == f"docker rm -f labctl-store-consul >/dev/null 2>&1; {run} >/dev/null"
    assert "-data-dir" not in plan.start  # the image's entrypoint sets it to the mounted /consul/data
    assert plan.running == "docker inspect -f '{{.State.Running}}' labctl-store-consul 2>/dev/null | grep -qx true"
    assert plan.stop == "docker rm -f labctl-store-consul"
    assert plan.health == ("docker exec labctl-store-consul consul operator raft list-peers "
                           "-http-addr=http://198.18.40.11:8500 | grep -q leader")
    assert plan.wipe == ("docker exec labctl-store-consul consul kv delete -http-addr=http://198.18.40.11:8500 "
                         "-recurse docker/")


def test_wait_healthy_is_bounded() -> None:
    plan = plan_store(store_of("store: {backend: etcd}\n"), "lab1")
    assert plan.wait_healthy(7).startswith("timeout 7 sh -c 'until ETCDCTL_API=3 etcdctl")


def test_systemd_unit_for_the_store_is_labctls_own() -> None:
    """On VMs the store runs as labctl-etcd with the plan's command line, never the distribution's etcd.service."""
    from labctl.executors.services import Systemd
    from labctl.executors.store import StoreRunner

    pb = parse_playbook("store: {backend: etcd}\nnetworks:\n  ov: {driver: overlay, subnet: 172.30.0.0/16}\n",
                        "p.yaml", INV)
    svc = StoreRunner(pb, Systemd()).service
    assert svc.unit == "labctl-etcd"
    assert Systemd.unit_file(svc) == (
        "[Unit]\nDescription=labctl etcd\nAfter=network-online.target\nWants=network-online.target\n\n"
        "[Service]\nExecStart=/usr/bin/etcd --name store --data-dir /var/lib/labctl/etcd --enable-v2=true "
        "--listen-client-urls http://198.18.40.11:2379 --advertise-client-urls http://198.18.40.11:2379 "
        "--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 "
        "--initial-cluster store=http://127.0.0.1:2380\nRestart=on-failure\n\n[Install]\n"
        "WantedBy=multi-user.target\n")


def test_consul_from_the_engine_cache_on_sandbox_hosts() -> None:
    """Sandbox hosts share this machine's files: Consul runs from where `labctl engines` unpacked Debian 11's."""
    binary = "/var/cache/labctl/engines/consul/869278f1f4d3/root/usr/bin/consul"
    plan = plan_store(store_of("store: {backend: consul, data_dir: /var/lib/labctl/consul}\n"), "lab1", binary)
    assert plan.argv[0] == binary
    assert plan.needs == f"test -x {binary} && echo {binary}"
