"""Expectations derived from playbooks (pure): every mode of the tutorials, `expect:` overrides, sampling, and
the causes drawn from facts."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from labctl.errors import ValidationError
from labctl.model.inventory import parse_inventory
from labctl.model.playbook import parse_playbook
from labctl.model.providers import RULES
from labctl.plan.verify import Diagnosis, Facts, Result, derive, explain, sample
from labctl.views.verify_report import host_matrix, matrices, to_json, to_junit

ROOT = Path(__file__).parents[2]
INV = parse_inventory((ROOT / "inventories" / "sandbox.yaml").read_text(), "inventories/sandbox.yaml")
HOSTS = {"node1": "198.18.0.12", "node2": "198.18.0.13"}


def load(name: str):
    return parse_playbook((ROOT / "playbooks" / name).read_text(), name, INV)


def pb_of(text: str):
    return parse_playbook(textwrap.dedent(text), "p.yaml", INV)


SEED = load("seed-overlay.yaml")
SEED_FACTS = Facts(
    state={c: "running" for c in ("c1", "c2", "c3", "c4")},
    addresses={"c1": {"ov": "172.30.0.2", "mv": "172.29.0.11"}, "c2": {"ov": "172.30.0.4", "mv": "172.29.0.12"},
               "c3": {"ov": "172.30.0.1", "mv": "172.29.0.13"}, "c4": {"ov": "172.30.0.3", "mv": "172.29.0.14"}},
    host_addresses=HOSTS)


def index(checks):
    return {(c.src, c.dst, c.network, c.via): c for c in checks}


def test_seed_expectations() -> None:
    checks = index(derive(SEED, SEED_FACTS))
    # ordered pairs x (ov by IP, mv by IP, by name) + macvlan own host + a whole packet each way across ov
    assert len(checks) == 4 * 3 * 3 + 4 + 2
    whole = [c for c in checks.values() if c.via == "size"]
    assert {(c.src_host, c.dst_host) for c in whole} == {("node1", "node2"), ("node2", "node1")}
    assert all(c.size == 1450 - 28 and c.network == "ov" and c.expect == "reach" for c in whole)
    assert checks[("c1", "c3", "ov", "size")].address == "172.30.0.1"
    assert checks[("c1", "c3", "ov", "ip")].address == "172.30.0.1"
    assert checks[("c1", "c3", "ov", "ip")].expect == "reach"
    assert checks[("c1", "c3", "ov", "name")].address == "c3"
    own = checks[("c1", "host:node1", "mv", "host")]
    assert own.expect == "isolated" and own.address == "198.18.0.12"


def test_network_modes_expectations() -> None:
    pb = load("network-modes.yaml")
    facts = Facts(state={c.name: "running" for c in pb.containers},
                  addresses={"default1": {"bridge": "172.17.12.2"}, "default2": {"bridge": "172.17.12.3"},
                             "user1": {"userbr": "172.28.0.10"}, "user2": {"userbr": "172.28.0.130"}},
                  host_addresses=HOSTS)
    checks = index(derive(pb, facts))
    assert checks[("default1", "default2", "bridge", "ip")].expect == "reach"
    assert checks[("default1", "default2", "bridge", "name")].expect == "isolated", "no names on docker0"
    assert checks[("user2", "user1", "userbr", "name")].expect == "reach"
    assert checks[("default1", "user1", "userbr", "ip")].expect == "isolated", "different bridges"
    assert checks[("isolated", "user1", "userbr", "ip")].expect == "isolated", "none reaches nothing"
    assert checks[("default1", "hostmode", "host", "host")].address == "198.18.0.12", "host mode: host address"
    assert checks[("hostmode", "user1", "userbr", "ip")].expect == "reach"
    assert checks[("sidecar", "user2", "userbr", "ip")].expect == "reach", "container:user1 has user1's network"
    assert not any(c.dst in ("sidecar", "isolated") for c in checks.values()), "no address of their own"
    assert not any({c.src, c.dst} == {"sidecar", "user1"} for c in checks.values()), "same stack"


def test_bridges_of_different_hosts_are_not_shared() -> None:
    pb = pb_of("""
        docker0: {bip: auto}
        containers:
          d1: {host: node1}
          d2: {host: node2}
        """)
    facts = Facts(state={"d1": "running", "d2": "running"},
                  addresses={"d1": {"bridge": "172.17.12.2"}, "d2": {"bridge": "172.17.13.2"}}, host_addresses=HOSTS)
    checks = index(derive(pb, facts))
    assert checks[("d1", "d2", "bridge", "ip")].expect == "isolated"
    assert checks[("d1", "d2", "bridge", "ip")].reason == "no shared network"


def test_expect_entries_add_and_override() -> None:
    pb = load("seed-overlay.yaml")
    pb = parse_playbook((ROOT / "playbooks" / "seed-overlay.yaml").read_text() + textwrap.dedent("""
        expect:
          - {from: c1, to: c3, network: mv, expect: isolated}
          - {from: c2, to_host: node2, expect: reach}
          - {from: c4, to_address: 198.18.0.1, expect: isolated}
          - {from: c3, to_name: web1, expect: reach}
        """), "seed+expect.yaml", INV)
    checks = index(derive(pb, SEED_FACTS))
    assert checks[("c1", "c3", "mv", "ip")].expect == "isolated"
    assert checks[("c1", "c3", "mv", "ip")].reason == "playbook expect[0]"
    assert checks[("c2", "host:node2", "host", "host")].address == "198.18.0.13"
    assert checks[("c4", "198.18.0.1", "-", "address")].expect == "isolated"
    assert checks[("c3", "web1", "-", "name")].address == "web1"
    assert len(checks) == 42 + 3


@pytest.mark.parametrize("entry, message", [
    ("{from: ghost, to: c1, expect: reach}", "expect[0].from: no container 'ghost' in this playbook"),
    ("{from: c1, to: c3, expect: maybe}", "expect[0].expect: 'maybe' is not allowed; allowed: reach, isolated"),
    ("{from: c1, expect: reach}", "expect[0]: give exactly one of to (container), to_host, to_address, to_name"),
    ("{from: c1, to_host: store, expect: reach}", "expect[0].to_host: 'store' is not a docker host"),
    ("{from: c1, to_address: 300.1.1.1, expect: reach}", "expect[0].to_address: '300.1.1.1' is not an IPv4"),
    ("{from: c1, to: c3, network: nope, expect: reach}", "expect[0].network: no network 'nope'"),
])
def test_bad_expect_entries(entry: str, message: str) -> None:
    text = (ROOT / "playbooks" / "seed-overlay.yaml").read_text() + f"expect:\n  - {entry}\n"
    with pytest.raises(ValidationError) as err:
        parse_playbook(text, "p.yaml", INV)
    assert message in err.value.render()


def test_sample_keeps_every_host_pair_and_network() -> None:
    checks = derive(SEED, SEED_FACTS)
    small = sample(checks)
    assert len(small) < len(checks)
    assert {(c.src_host, c.dst_host, c.network, c.via) for c in small} == \
        {(c.src_host, c.dst_host, c.network, c.via) for c in checks}


def outcome(observed: dict[tuple[str, str, str, str], str]) -> list[Result]:
    results = []
    for c in derive(SEED, SEED_FACTS):
        results.append(Result(c, observed.get(c.key, c.expect), 0.5 if observed.get(c.key, c.expect) == "reach"
                              else None))
    return results


def test_cross_host_overlay_loss_is_blamed_on_vxlan() -> None:
    cross = {c.key: "isolated" for c in derive(SEED, SEED_FACTS)
             if c.network == "ov" and c.src_host != c.dst_host}
    results = outcome(cross)
    explain(results, SEED, SEED_FACTS, Diagnosis(store_ok=True))
    bad = [r for r in results if not r.ok]
    assert len(bad) == len(cross)
    assert all("VXLAN (UDP 4789) between node" in r.cause for r in bad), bad[0].cause
    explain(results, SEED, SEED_FACTS, Diagnosis(store_ok=False, store_detail="etcd://x does not answer"))
    assert all("the cluster store does not answer" in r.cause for r in bad)
    explain(results, SEED, SEED_FACTS, Diagnosis(store_ok=True, overlay_missing={"node2": ["ov"]}))
    assert all("node2 does not see overlay ov" in r.cause for r in bad)
    explain(results, SEED, SEED_FACTS, Diagnosis(store_ok=True, underlay_mtu={"node1": 1400, "node2": 1500}))
    assert all("underlay MTU 1400 on node1" in r.cause for r in bad)


def test_macvlan_cross_host_loss_on_vagrant_points_at_promiscuous_mode() -> None:
    lost = {c.key: "isolated" for c in derive(SEED, SEED_FACTS) if c.network == "mv" and c.src_host != c.dst_host
            and c.via == "ip"}
    results = outcome(lost)
    explain(results, SEED, SEED_FACTS, Diagnosis(store_ok=True, macvlan_hint=RULES["vagrant"].macvlan_hint))
    failed = [r for r in results if not r.ok]
    assert len(failed) == len(lost) == 8, "c1, c2 <-> c3, c4 over mv, both ways"
    assert all("promiscuous mode `allow-all`" in r.cause for r in failed)


def test_macvlan_to_own_host_expected_reach_explains_the_rule() -> None:
    pb = parse_playbook((ROOT / "playbooks" / "seed-overlay.yaml").read_text() +
                        "expect:\n  - {from: c1, to_host: node1, network: mv, expect: reach}\n", "p.yaml", INV)
    results = [Result(c, "isolated" if c.via == "host" else c.expect) for c in derive(pb, SEED_FACTS)]
    explain(results, pb, SEED_FACTS, Diagnosis(store_ok=True))
    bad = [r for r in results if not r.ok]
    assert len(bad) == 1 and "Linux macvlan rule" in bad[0].cause


def test_json_and_junit_agree() -> None:
    lost = {c.key: "isolated" for c in derive(SEED, SEED_FACTS) if c.src == "c4" and c.expect == "reach"}
    results = outcome(lost)
    data = to_json("seed-overlay", results, 1.5)
    assert data["ok"] is False and data["summary"] == {"total": 42, "passed": 33, "failed": 9}
    xml = to_junit("seed-overlay", results, 1.5)
    assert 'tests="42" failures="9"' in xml and xml.count("<failure ") == 9
    tables = matrices(results)
    assert set(tables) == {"ov", "mv", "ov (by name)", "ov (whole packets)"}
    assert tables["ov"][2][("c4", "c1")] == "MISMATCH" and tables["ov"][2][("c1", "c4")] == "reach"


def test_big_matrices_fold_to_host_pairs_with_counts() -> None:
    lost = {c.key: "isolated" for c in derive(SEED, SEED_FACTS) if c.src == "c4" and c.expect == "reach"}
    srcs, dsts, cells = host_matrix(outcome(lost), "ov")
    assert srcs == ["node1", "node2"] and dsts == ["node1", "node2"]
    assert cells[("node1", "node2")] == "reach 4", "c1, c2 -> c3, c4"
    assert cells[("node2", "node1")] == "MISMATCH 2/4", "c4 -> c1, c2 lost; c3 -> c1, c2 fine"
    assert cells[("node2", "node2")] == "MISMATCH 1/2", "c4 -> c3 lost, c3 -> c4 fine"


def test_unreachable_host_and_blind_host_are_named() -> None:
    cross = {c.key: "isolated" for c in derive(SEED, SEED_FACTS) if c.network == "ov" and c.src_host != c.dst_host}
    results = outcome(cross)
    assert sum(not r.ok for r in results) == len(cross) > 0, "the causes below are checked on failed checks"
    explain(results, SEED, SEED_FACTS, Diagnosis(store_ok=True, store_detail="etcd://198.18.0.11:2379 answers",
                                                 store_unreachable_from=["node2"]))
    failed = [r for r in results if not r.ok]
    assert all(r.cause.startswith("node2 cannot open a connection to the cluster store") for r in failed)
    explain(results, SEED, SEED_FACTS, Diagnosis(store_ok=True, unreachable_hosts={"node2": "ssh: timed out"}))
    assert all(r.cause == "node2 cannot be asked: ssh: timed out" for r in failed)


def test_an_engine_missing_from_consul_is_named() -> None:
    """Consul labs: the store answers, but node2's engine is not under docker/nodes/ (read with py-consul)."""
    cross = {c.key: "isolated" for c in derive(SEED, SEED_FACTS) if c.network == "ov" and c.src_host != c.dst_host}
    results = outcome(cross)
    failed = [r for r in results if not r.ok]
    assert len(failed) == len(cross) > 0
    explain(results, SEED, SEED_FACTS, Diagnosis(store_ok=True, store_unregistered={"node2": "198.18.0.13"},
                                                 overlay_missing={"node2": ["ov"]}))
    assert {r.cause for r in failed} == {
        "node2 is not registered in the cluster store (no docker/nodes/198.18.0.13:... key): its dockerd does not "
        "use the store; check cluster-store and cluster-advertise in its daemon.json, then `labctl up`"}


def test_names_across_hosts_resolve_only_on_an_overlay_that_docker_runs() -> None:
    """On macvlan, and on the vxlan control plane's overlays (macvlan on labctl's VXLAN device), each daemon's DNS
    knows only its own containers: a name on another host is expected not to resolve; on the same host it does."""
    from labctl.plan.controlplane import effective

    vx = effective(load("seed-overlay-vxlan.yaml"), "vxlan")
    checks = index(derive(vx, SEED_FACTS))
    across = checks[("c1", "c3", "ov", "name")]
    assert across.expect == "isolated" and "the name does not resolve there" in across.reason
    assert checks[("c1", "c2", "ov", "name")].expect == "reach"
    assert checks[("c1", "c3", "ov", "ip")].expect == "reach"
    assert checks[("c1", "c3", "ov", "name")] and index(derive(SEED, SEED_FACTS))[("c1", "c3", "ov", "name")].expect \
        == "reach", "a Docker overlay (cluster store or swarm) resolves names across hosts"


TUTORIAL = load("standalone-bridge.yaml")
TUTORIAL_FACTS = Facts(
    state={c.name: "running" for c in TUTORIAL.containers},
    addresses={"alpine1": {"alpine-net": "172.27.0.2"}, "alpine2": {"alpine-net": "172.27.0.3"},
               "alpine3": {"bridge": "172.17.0.2"}, "alpine4": {"alpine-net": "172.27.0.4", "bridge": "172.17.0.3"}},
    host_addresses=HOSTS)


@pytest.mark.parametrize("src, dst, network, via, expect, tutorial_says", [
    ("alpine1", "alpine2", "alpine-net", "name", "reach", "ping -c 2 alpine2: 0% packet loss"),
    ("alpine1", "alpine4", "alpine-net", "name", "reach", "ping -c 2 alpine4: 0% packet loss"),
    ("alpine1", "alpine3", "bridge", "name", "isolated", "ping -c 2 alpine3: bad address 'alpine3'"),
    ("alpine1", "alpine3", "bridge", "ip", "isolated", "ping -c 2 172.17.0.2: 100% packet loss"),
    ("alpine4", "alpine1", "alpine-net", "name", "reach", "ping -c 2 alpine1: 0% packet loss"),
    ("alpine4", "alpine3", "bridge", "name", "isolated", "ping -c 2 alpine3: bad address 'alpine3'"),
    ("alpine4", "alpine3", "bridge", "ip", "reach", "ping -c 2 172.17.0.2: 0% packet loss"),
    ("alpine3", "alpine4", "bridge", "ip", "reach", "both on the default bridge"),
    ("alpine3", "alpine1", "alpine-net", "ip", "isolated", "no network in common"),
])
def test_default_bridge_beside_a_user_network_as_dockers_tutorial(src, dst, network, via, expect,
                                                                   tutorial_says) -> None:
    checks = index(derive(TUTORIAL, TUTORIAL_FACTS))
    check = checks[(src, dst, network, via)]
    assert check.expect == expect, f"{src} -> {dst} by {via}: the tutorial says {tutorial_says}; {check.reason}"


def test_default_bridge_is_joined_after_the_user_network() -> None:
    alpine4 = TUTORIAL.container("alpine4")
    from labctl.plan.lab import container_run
    command = container_run(TUTORIAL, alpine4)
    assert "--network alpine-net" in command and command.endswith("docker network connect bridge alpine4")


@pytest.mark.parametrize("entry, refused", [
    ("[alpine-net, bridge]", None),
    ("{alpine-net: {}, bridge: {}}", None),
    ("{alpine-net: {}, bridge: }", None),
    ("{alpine-net: {}, bridge: {ip: 172.17.0.9}}", "takes no `ip`"),
    ("{alpine-net: {}, bridge: {aliases: [a]}}", "takes no `aliases`"),
])
def test_default_bridge_entry_refused_only_for_an_ip_or_aliases(entry, refused) -> None:
    text = (ROOT / "playbooks" / "standalone-bridge.yaml").read_text().replace("[alpine-net, bridge]", entry)
    if refused is None:
        pb = parse_playbook(text, "p.yaml", INV)
        assert [a.network for a in pb.container("alpine4").networks] == ["alpine-net", "bridge"]
        return
    with pytest.raises(ValidationError) as err:
        parse_playbook(text, "p.yaml", INV)
    rendered = err.value.render()
    assert "containers.alpine4.networks.bridge" in rendered and refused in rendered


def test_a_name_that_fails_where_the_address_works_is_blamed_on_the_name_records() -> None:
    lost = {c.key: "isolated" for c in derive(SEED, SEED_FACTS) if c.via == "name" and c.src == "c1"
            and c.dst in ("c3", "c4")}
    results = outcome(lost)
    explain(results, SEED, SEED_FACTS, Diagnosis(store_ok=True, control="kvstore"))
    failed = [r for r in results if not r.ok]
    assert len(failed) == 2
    assert all(r.cause.startswith(f"c1 reaches {r.check.dst} by address on ov, but Docker's DNS on node1 does not "
                                  f"answer the name {r.check.dst}") for r in failed), failed[0].cause
    both = outcome({**lost, **{c.key: "isolated" for c in derive(SEED, SEED_FACTS) if c.via == "ip"
                               and c.src == "c1" and c.dst == "c3" and c.network == "ov"}})
    explain(both, SEED, SEED_FACTS, Diagnosis(store_ok=True, control="kvstore"))
    by_name = next(r for r in both if not r.ok and r.check.via == "name" and r.check.dst == "c3")
    assert "VXLAN (UDP 4789) between node1 and node2" in by_name.cause, "the address fails too: not the names"
