"""Inventory validation: each bad inventory fails with a message naming the file, the field and the fix,
exits 2, and creates nothing."""

from __future__ import annotations

import os
import subprocess
import textwrap

import pytest

from labctl import cli
from labctl.errors import ValidationError
from labctl.model.inventory import parse_inventory, sandbox_addresses

GOOD = """
name: demo
provider: sandbox
hosts:
  store: {roles: [store]}
  node1: {roles: [docker]}
  node2: {roles: [docker]}
"""

BAD = {
    "unknown provider": ("provider: kvm\nhosts:\n  n1: {roles: [docker]}\n",
                         "provider: 'kvm' is not allowed; allowed: sandbox, static, vagrant"),
    "no docker host": ("provider: sandbox\nhosts:\n  s: {roles: [store]}\n",
                       "hosts: no host has role 'docker'"),
    "duplicate names": ("provider: sandbox\nhosts:\n  node1: {roles: [docker]}\n  node1: {roles: [store]}\n",
                        "duplicate key 'node1' (first at line 3)"),
    "bad CIDR": ("provider: sandbox\nunderlay: {subnet: 198.18.0.1/24}\nhosts:\n  n1: {roles: [docker]}\n",
                 "underlay.subnet: '198.18.0.1/24' is not a valid IPv4 CIDR"),
    "not a CIDR at all": ("provider: sandbox\nunderlay: {subnet: lab-net}\nhosts:\n  n1: {roles: [docker]}\n",
                          "underlay.subnet: 'lab-net' is not a valid IPv4 CIDR"),
    "unknown role": ("provider: sandbox\nhosts:\n  n1: {roles: [docker, dokcer]}\n",
                     "hosts.n1.roles[1]: unknown role 'dokcer'; allowed: store, docker"),
    "missing address for static": ("provider: static\nhosts:\n  n1: {roles: [docker]}\n",
                                   "hosts.n1.address: is required for provider 'static'"),
    "unknown field": ("provider: sandbox\nhots: {}\nhosts:\n  n1: {roles: [docker]}\n",
                      "hots: unknown field; allowed: name, provider, underlay, ssh, image, hosts"),
    "bad host name": ("provider: sandbox\nhosts:\n  Node_1: {roles: [docker]}\n",
                      "hosts.Node_1: 'Node_1' is not a valid host name"),
    "address outside subnet": ("provider: sandbox\nhosts:\n  n1: {roles: [docker], address: 10.1.1.1}\n",
                               "hosts.n1.address: 10.1.1.1 is not a usable address of underlay.subnet 198.18.0.0/24"),
    "controller address": ("provider: sandbox\nhosts:\n  n1: {roles: [docker], address: 198.18.0.1}\n",
                           "198.18.0.1 is the controller's address on the lab switch"),
    "two store hosts": ("provider: sandbox\nhosts:\n  a: {roles: [store]}\n  b: {roles: [store, docker]}\n",
                        "role 'store' is on 2 hosts (a, b); give it to exactly one host"),
    "duplicate static address": ("provider: static\nhosts:\n  a: {roles: [docker], address: 192.0.2.1}\n"
                                 "  b: {roles: [docker], address: 192.0.2.1}\n",
                                 "hosts.b.address: 192.0.2.1 is also the address of host 'a'"),
    "bad ssh port": ("provider: static\nssh: {port: 70000}\nhosts:\n  a: {roles: [docker], address: 192.0.2.1}\n",
                     "ssh.port: must be an integer from 1 to 65535, got 70000"),
    "subnet on static": ("provider: static\nunderlay: {subnet: 192.0.2.0/24}\n"
                         "hosts:\n  a: {roles: [docker], address: 192.0.2.1}\n",
                         "underlay.subnet: not used by provider 'static': the machines' own addresses are used"),
    "subnet too small": ("provider: sandbox\nunderlay: {subnet: 198.18.0.0/30}\nhosts:\n  a: {roles: [docker]}\n",
                         "too small for a lab; use a /28 or larger"),
    "loopback subnet": ("provider: sandbox\nunderlay: {subnet: 127.0.0.0/24}\nhosts:\n  a: {roles: [docker]}\n",
                        "127.0.0.0/24 is a reserved range"),
    "bad interface": ("provider: sandbox\nunderlay: {interface: 'eth1; reboot'}\nhosts:\n  a: {roles: [docker]}\n",
                      "underlay.interface: 'eth1; reboot' is not a valid interface name"),
    "yaml syntax": ("provider: sandbox\nhosts: [\n", "line 3"),
    "no hosts": ("provider: sandbox\nhosts: {}\n", "hosts: must be a non-empty mapping"),
    "ssh on sandbox host": ("provider: sandbox\nhosts:\n  a: {roles: [docker], ssh: {user: bob}}\n",
                            "hosts.a.ssh: not used by provider 'sandbox'"),
    "empty roles": ("provider: sandbox\nhosts:\n  a: {roles: []}\n", "hosts.a.roles: must be a non-empty list"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_inventory_message(case: str) -> None:
    text, expected = BAD[case]
    with pytest.raises(ValidationError) as err:
        parse_inventory(text, "inv/bad.yaml")
    rendered = err.value.render()
    assert expected in rendered
    assert "inv/bad.yaml: " in rendered, "every problem names the file"


def test_all_problems_reported_together() -> None:
    text = "provider: sandbox\nunderlay: {subnet: nope}\nhosts:\n  a: {roles: [wizard]}\n  B: {roles: [docker]}\n"
    with pytest.raises(ValidationError) as err:
        parse_inventory(text, "x.yaml")
    fields = {p.field for p in err.value.problems}
    assert {"underlay.subnet", "hosts.a.roles[0]", "hosts.B"} <= fields


def test_overlapping_sandbox_subnet_of_existing_lab() -> None:
    text = "name: new\nprovider: sandbox\nunderlay: {subnet: 198.18.0.128/25}\nhosts:\n  a: {roles: [docker]}\n"
    with pytest.raises(ValidationError) as err:
        parse_inventory(text, "new.yaml", {"old": "198.18.0.0/24"})
    assert "overlaps sandbox lab 'old' (198.18.0.0/24)" in err.value.render()
    # the same lab re-using its own subnet is fine
    parse_inventory(text, "new.yaml", {"new": "198.18.0.128/25"})


def test_good_inventory_and_addresses() -> None:
    inv = parse_inventory(GOOD, "demo.yaml")
    assert inv.name == "demo" and inv.provider == "sandbox"
    assert [h.name for h in inv.docker_hosts] == ["node1", "node2"]
    assert inv.store_host is not None and inv.store_host.name == "store"
    assert inv.controller_address == "198.18.0.1"
    assert sandbox_addresses(inv) == {"store": "198.18.0.11", "node1": "198.18.0.12", "node2": "198.18.0.13"}


def test_explicit_addresses_are_skipped_by_numbering() -> None:
    text = "provider: sandbox\nhosts:\n  a: {roles: [docker]}\n  b: {roles: [docker], address: 198.18.0.11}\n"
    assert sandbox_addresses(parse_inventory(text, "x.yaml")) == {"a": "198.18.0.12", "b": "198.18.0.11"}


def test_shipped_inventories_are_valid() -> None:
    root = os.path.join(os.path.dirname(__file__), "..", "..", "inventories")
    for name in os.listdir(root):
        if name.endswith(".yaml"):
            with open(os.path.join(root, name), encoding="utf-8") as fh:
                parse_inventory(fh.read(), name)


def _netns() -> str:
    try:
        return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return ""


@pytest.mark.parametrize("case", sorted(BAD))
def test_sandbox_up_with_bad_inventory_exits_2_and_creates_nothing(case: str, tmp_path, monkeypatch, capsys) -> None:
    text, expected = BAD[case]
    inv = tmp_path / "bad.yaml"
    inv.write_text(text)
    state = tmp_path / "state"
    monkeypatch.setenv("LABCTL_STATE_DIR", str(state))
    before = _netns()
    assert cli.main(["sandbox", "up", "--inventory", str(inv)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "nothing was changed" in err
    assert not state.exists(), "no state directory may be created for bad input"
    assert _netns() == before


def test_sandbox_up_refuses_subnet_of_existing_lab(tmp_path, monkeypatch, capsys) -> None:
    state = tmp_path / "state"
    (state / "old").mkdir(parents=True)
    (state / "old" / "lab.json").write_text('{"lab": "old", "subnet": "198.18.0.0/24"}')
    inv = tmp_path / "new.yaml"
    inv.write_text(textwrap.dedent(GOOD).replace("name: demo", "name: new"))
    monkeypatch.setenv("LABCTL_STATE_DIR", str(state))
    assert cli.main(["sandbox", "up", "--inventory", str(inv)]) == 2
    assert "overlaps sandbox lab 'old'" in capsys.readouterr().err
    assert sorted(p.name for p in state.iterdir()) == ["old"]


def test_missing_inventory_file_is_bad_input(tmp_path, capsys) -> None:
    assert cli.main(["validate", "--inventory", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: (file): cannot read" in capsys.readouterr().err
