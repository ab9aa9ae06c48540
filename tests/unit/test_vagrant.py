"""The Vagrant path, as far as it runs without VMs: the Vagrantfile through `vagrant validate`, `vagrant ssh-config`
parsed from Vagrant's own output (and run for real), the inventory's address rule, and the underlay check.

VirtualBox and KVM cannot run here: no VM boots in these tests. `make deps` installs Debian's vagrant (2.3.4) and
vagrant-libvirt packages; the tests that need them skip, saying so, where they are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap

import pytest

from labctl.errors import LabctlError, ValidationError
from labctl.facts.host import parse_ip_addr
from labctl.model.inventory import load_inventory, parse_inventory
from labctl.plan.preflight import HostFacts, underlay_problems
from labctl.providers import vagrant

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "unit", "data")
CAPTURE = os.path.join(DATA, "vagrant-ssh-config-2.3.4.txt")
needs_vagrant = pytest.mark.skipif(shutil.which("vagrant") is None,
                                   reason="vagrant is not installed (`make deps` installs Debian's package)")


def test_parses_vagrants_own_output_with_quoted_paths_and_several_hosts() -> None:
    with open(CAPTURE) as f:
        found = vagrant.parse_ssh_config(f.read(), "/elsewhere")
    assert sorted(found) == ["node1", "node2", "store"]
    assert (found["store"].hostname, found["store"].port, found["store"].user) == ("127.0.0.1", 2222, "vagrant")
    assert (found["node1"].hostname, found["node1"].port) == ("127.0.0.1", 2200)
    assert (found["node2"].hostname, found["node2"].port) == ("192.168.121.57", 22), "libvirt: management address"
    assert found["node1"].identity_files == (
        "/tmp/labctl vagrant capture/.vagrant/machines/node1/capture/private_key",), "quotes removed, spaces kept"


def test_relative_key_paths_are_relative_to_the_vagrant_project() -> None:
    text = "Host n\n  HostName 10.0.0.5\n  Port 22\n  IdentityFile .vagrant/machines/n/libvirt/private_key\n"
    assert vagrant.parse_ssh_config(text, "/proj")["n"].identity_files == (
        "/proj/.vagrant/machines/n/libvirt/private_key",)


def test_vagrant_inventory_numbers_hosts_as_the_vagrantfile_does() -> None:
    inv = load_inventory(os.path.join(ROOT, "inventories", "vagrant.yaml"))
    assert {h.name: h.address for h in inv.hosts} == {
        "store": "192.168.56.10", "node1": "192.168.56.11", "node2": "192.168.56.12"}
    assert inv.vagrant_dir == ROOT and inv.underlay_interface == "eth1"
    with pytest.raises(ValidationError) as err:
        parse_inventory("provider: vagrant\nhosts:\n  web: {roles: [docker]}\n", "v.yaml")
    assert "v.yaml: hosts.web.address: needed for 'web': the Vagrantfile names its VMs" in err.value.render()
    custom = parse_inventory("provider: vagrant\nunderlay: {subnet: 10.77.0.0/24}\nhosts:\n"
                             "  node3: {roles: [docker]}\n  web: {roles: [store], address: 10.77.0.99}\n", "v.yaml")
    assert [h.address for h in custom.hosts] == ["10.77.0.13", "10.77.0.99"]


def test_underlay_check_names_the_virtualbox_nat_address() -> None:
    inv = load_inventory(os.path.join(ROOT, "inventories", "vagrant.yaml"))
    # `ip -o -4 addr show` as a Debian 12 VirtualBox VM prints it when the private network did not come up
    nat_only = parse_ip_addr("1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n"
                             "2: eth0    inet 10.0.2.15/24 brd 10.0.2.255 scope global dynamic eth0\\       "
                             "valid_lft 86311sec preferred_lft 86311sec\n")
    fine = parse_ip_addr("2: eth0    inet 10.0.2.15/24 brd 10.0.2.255 scope global dynamic eth0\n"
                         "3: eth1    inet 192.168.56.12/24 brd 192.168.56.255 scope global eth1\n")
    assert fine == {"eth0": ("10.0.2.15",), "eth1": ("192.168.56.12",)}
    problems = underlay_problems(inv, {"node1": HostFacts("node1", "20.10.24", "X", "node1", False, ("eth0",),
                                                          addresses=nat_only),
                                       "node2": HostFacts("node2", "20.10.24", "Y", "node2", False,
                                                          ("eth0", "eth1"), addresses=fine)})
    assert problems == [
        "[node1] underlay interface eth1 does not have the inventory's address 192.168.56.11 (eth0 has 10.0.2.15 "
        "(VirtualBox's NAT address, the same on every VM)): set underlay.interface to the interface of the hosts' "
        "shared network (Vagrant: the private network, eth1), or fix the host's address in the inventory"]


@needs_vagrant
def test_endpoints_from_a_real_vagrant_ssh_config_run(tmp_path) -> None:
    project = tmp_path / "my lab"
    project.mkdir()
    shutil.copy(os.path.join(DATA, "vagrant-capture", "Vagrantfile"), project / "Vagrantfile")
    inv_file = tmp_path / "inv.yaml"
    inv_file.write_text(textwrap.dedent("""
        provider: vagrant
        vagrant: {dir: my lab}
        hosts:
          store: {roles: [store]}
          node1: {roles: [docker]}
          node2: {roles: [docker]}
        """))
    os.environ["VAGRANT_DEFAULT_PROVIDER"] = "capture"
    try:
        eps = {e.name: e for e in vagrant.endpoints(load_inventory(str(inv_file)))}
        assert (eps["node1"].address, eps["node1"].port, eps["node1"].user) == ("127.0.0.1", 2200, "root")
        assert eps["node1"].key_file == f"{project}/.vagrant/machines/node1/capture/private_key"
        assert eps["node2"].address == "192.168.121.57" and not eps["node2"].strict_host_keys
        inv_file.write_text(inv_file.read_text() + "  node3: {roles: [docker]}\n")
        with pytest.raises(LabctlError) as err:
            vagrant.endpoints(load_inventory(str(inv_file)))
        assert "The machine with the name 'node3' was not found" in err.value.message
        assert "vagrant up" in (err.value.hint or "")
    finally:
        del os.environ["VAGRANT_DEFAULT_PROVIDER"]


def test_no_vagrantfile_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(LabctlError) as err:
        vagrant.read_ssh_config(str(tmp_path), ["store"])
    assert f"no Vagrantfile in {tmp_path}" in err.value.message and "vagrant: {dir: ...}" in (err.value.hint or "")


def vagrant_validate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["vagrant", "validate", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **env), stdin=subprocess.DEVNULL)


@needs_vagrant
@pytest.mark.parametrize("nodes", ["2", "5"])
def test_vagrantfile_validates(nodes: str) -> None:
    res = vagrant_validate({"LABCTL_NODES": nodes}, "--ignore-provider")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Vagrantfile validated successfully." in res.stdout
    assert f"node{nodes}: Ignoring provider config" in res.stdout


@needs_vagrant
def test_vagrantfile_validates_with_the_libvirt_provider_block() -> None:
    has_libvirt = "vagrant-libvirt" in subprocess.run(["vagrant", "plugin", "list"], capture_output=True,
                                                      text=True, cwd=ROOT).stdout
    if not has_libvirt:
        pytest.skip("vagrant-libvirt is not installed (`make deps` installs Debian's package)")
    res = vagrant_validate({"VAGRANT_DEFAULT_PROVIDER": "libvirt"})
    assert res.returncode == 0 and "Vagrantfile validated successfully." in res.stdout, res.stdout + res.stderr


@needs_vagrant
def test_vagrantfile_refuses_a_bad_node_count() -> None:
    res = vagrant_validate({"LABCTL_NODES": "0"}, "--ignore-provider")
    assert res.returncode != 0 and "LABCTL_NODES must be between 1 and 200 (got 0)" in res.stderr


def test_parses_vagrant_libvirt_output_of_booted_vms() -> None:
    """Captured from `make vms-e2e`: three VMs of labctl's box, booted by vagrant-libvirt under QEMU."""
    with open(os.path.join(DATA, "vagrant-ssh-config-libvirt-0.11.2.txt")) as f:
        text = "".join(line for line in f if not line.startswith("#"))
    found = vagrant.parse_ssh_config(text, "/elsewhere")
    assert sorted(found) == ["node1", "node2", "store"]
    for name, s in found.items():
        assert s.port == 22 and s.user == "vagrant" and s.hostname.startswith("192.168.121."), s
        assert s.identity_files == (f"/work/main/.vagrant/machines/{name}/libvirt/private_key",)
    assert len({s.hostname for s in found.values()}) == 3


@needs_vagrant
@pytest.mark.parametrize("driver", ["kvm", "qemu"])
def test_vagrantfile_takes_either_libvirt_driver(driver: str) -> None:
    res = vagrant_validate({"LABCTL_LIBVIRT_DRIVER": driver}, "--ignore-provider")
    assert res.returncode == 0, res.stdout + res.stderr


@needs_vagrant
def test_vagrantfile_refuses_an_unknown_libvirt_driver() -> None:
    res = vagrant_validate({"LABCTL_LIBVIRT_DRIVER": "xen"}, "--ignore-provider")
    assert res.returncode != 0 and "LABCTL_LIBVIRT_DRIVER must be kvm or qemu (got xen)" in res.stderr


def test_vagrantfile_keeps_libvirt_networks_isolated() -> None:
    """No NAT on either network: the VMs' only outside traffic is the packages the controller relays."""
    with open(os.path.join(ROOT, "Vagrantfile")) as f:
        text = f.read()
    assert 'lv.management_network_mode = "none"' in text
    assert 'libvirt__forward_mode: "none"' in text
    assert "kvm_usable?" in text and "vmx|svm" in text
