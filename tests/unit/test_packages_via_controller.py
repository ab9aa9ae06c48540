"""`packages: controller`: apt on the hosts fetches through a proxy on the controller, over their SSH connections.

The proxy is exercised here for real on loopback: a local HTTP server stands for the archive, and urllib (as apt
would) asks the proxy for absolute URLs. The SSH forward itself runs in tests/integration/test_lab.py on a sandbox
host, and the whole path (apt-get inside booted VMs, the Debian archive) in `make vms-e2e`.
"""

from __future__ import annotations

import http.server
import os
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from labctl.errors import ValidationError
from labctl.executors.aptproxy import ArchiveProxy
from labctl.executors.provision import parse_provision_facts
from labctl.model.inventory import parse_inventory
from labctl.model.playbook import parse_playbook
from labctl.plan.provision import ProvisionFacts, plan_provision, source_hosts

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "unit", "data")
VAGRANT_INV = "provider: vagrant\nhosts:\n  store: {roles: [store]}\n  node1: {roles: [docker]}\n"


def inventory(extra: str = ""):
    return parse_inventory(VAGRANT_INV + extra, os.path.join(ROOT, "inventories", "t.yaml"))


def test_inventory_packages_default_direct_and_controller_accepted() -> None:
    assert inventory().packages == "direct"
    assert inventory("packages: controller\n").packages == "controller"


def test_inventory_packages_bad_value_names_the_field_and_the_choices() -> None:
    with pytest.raises(ValidationError) as err:
        inventory("packages: nearby\n")
    text = err.value.render()
    assert "t.yaml" in text and "packages" in text and "nearby" in text and "direct, controller" in text


def test_shipped_vagrant_inventory_fetches_through_the_controller() -> None:
    from labctl.model.inventory import load_inventory
    assert load_inventory(os.path.join(ROOT, "inventories", "vagrant.yaml")).packages == "controller"


def fresh_facts() -> dict[str, ProvisionFacts]:
    """A fresh VM of labctl's box, as FACTS_SCRIPT saw it over SSH (captured from a booted VM)."""
    with open(os.path.join(DATA, "provision-facts-vm-fresh.txt")) as f:
        out = "".join(line for line in f if not line.startswith("#"))
    return {n: parse_provision_facts(out, n) for n in ("store", "node1")}


def test_facts_of_a_real_fresh_vm_name_its_apt_sources() -> None:
    facts = fresh_facts()["node1"]
    assert facts.os == "debian 12" and facts.systemd and facts.dockerd_version == ""
    assert "http://deb.debian.org/debian" in facts.apt_sources
    assert source_hosts(facts.apt_sources) == {"deb.debian.org"}


def test_apt_goes_through_the_forwarded_proxy_for_update_and_install() -> None:
    inv = inventory("packages: controller\n")
    pb = parse_playbook("name: t\nstore: {backend: etcd}\nnetworks:\n  ov: {driver: overlay, subnet: 10.9.0.0/16}\n",
                        "p.yaml", inv)
    proxies = {"store": "http://127.0.0.1:41001", "node1": "http://127.0.0.1:41002"}
    plan = plan_provision(inv, pb, fresh_facts(), apt_proxy=proxies)
    assert plan.problems == [] and sorted(plan.apt_hosts) == ["node1", "store"]
    installs = {s.host: s for s in plan.changes if s.what.startswith("install ")}
    for host, url in proxies.items():
        cmd = installs[host].command or ""
        assert cmd.count(f"-o Acquire::http::Proxy={url}") == 2, cmd     # update and install
        assert "through the controller" in installs[host].reason
    assert "docker.io" in installs["node1"].what and "etcd-server" in installs["store"].what
    direct = plan_provision(inv, pb, fresh_facts())
    assert all("Proxy" not in (s.command or "") for s in direct.changes)


def test_a_proxy_url_that_is_not_a_forward_is_refused() -> None:
    inv = inventory()
    pb = parse_playbook("name: t\nstore: {backend: etcd}\n", "p.yaml", inv)
    with pytest.raises(ValueError):
        plan_provision(inv, pb, fresh_facts(), apt_proxy={"node1": "http://evil.example:80; rm -rf /"})


def test_source_hosts() -> None:
    assert source_hosts(["http://deb.debian.org/debian", "https://Security.Debian.org/x", "mirror+file:/x",
                         "cdrom:/a"]) == {"deb.debian.org", "security.debian.org"}


class Archive(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def archive(tmp_path) -> Iterator[str]:
    """A stand-in for the archive on loopback: files under tmp_path, Range requests as Python serves them."""
    (tmp_path / "dists").mkdir()
    (tmp_path / "dists" / "Release").write_bytes(b"Origin: Debian\n" * 1000)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             lambda *a: Archive(*a, directory=str(tmp_path)))  # type: ignore[misc]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def proxy() -> Iterator[ArchiveProxy]:
    p = ArchiveProxy({"127.0.0.1"}).start()
    yield p
    p.stop()


def via(proxy: ArchiveProxy, url: str, headers: dict[str, str] | None = None):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{proxy.port}"}))
    return opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10)


def test_proxy_relays_files_from_allowed_hosts(archive: str, proxy: ArchiveProxy) -> None:
    with via(proxy, f"{archive}/dists/Release") as res:
        body = res.read()
    assert body == b"Origin: Debian\n" * 1000
    assert proxy.served.requests == 1 and proxy.served.bytes == len(body)


def test_proxy_passes_missing_files_through_as_404(archive: str, proxy: ArchiveProxy) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        via(proxy, f"{archive}/dists/InRelease")
    assert err.value.code == 404


def test_proxy_refuses_hosts_outside_the_apt_sources(proxy: ArchiveProxy) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        via(proxy, "http://example.org/secret")
    assert err.value.code == 403
    assert "example.org: not among the hosts' apt sources (127.0.0.1)" in err.value.read().decode()
    assert proxy.served.requests == 0 and proxy.served.refused


def test_proxy_refuses_https_tunnels(proxy: ArchiveProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        s.sendall(b"CONNECT deb.debian.org:443 HTTP/1.1\r\nHost: deb.debian.org:443\r\n\r\n")
        answer = ""
        while "relayed" not in answer and (chunk := s.recv(4096)):
            answer += chunk.decode()
    assert answer.startswith("HTTP/1.1 405") and "https sources are not relayed" in answer


def test_proxy_keeps_the_connection_for_the_next_request(archive: str, proxy: ArchiveProxy) -> None:
    """apt sends many requests over one connection (HTTP/1.1 keep-alive, pipelining)."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        req = f"GET {archive}/dists/Release HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        s.sendall(req + req)
        data = b""
        while data.count(b"Origin: Debian\n") < 2000:
            chunk = s.recv(65536)
            assert chunk, f"connection closed after {len(data)} bytes"
            data += chunk
    assert data.count(b"HTTP/1.0 200") + data.count(b"HTTP/1.1 200") == 2


def facts_file(name: str, host: str) -> ProvisionFacts:
    with open(os.path.join(DATA, name)) as f:
        return parse_provision_facts("".join(line for line in f if not line.startswith("#")), host)


def test_apparmor_is_installed_where_the_kernel_enforces_it_and_docker_needs_it() -> None:
    """The first real VMs: docker.io without its recommended apparmor could not start any container."""
    inv = inventory("packages: controller\n")
    pb = parse_playbook("name: t\nstore: {backend: etcd}\n", "p.yaml", inv)
    facts = {"node1": facts_file("provision-facts-vm-no-apparmor.txt", "node1"),
             "store": facts_file("provision-facts-vm-no-apparmor.txt", "store")}
    assert "apparmor-enabled" in facts["node1"].tools and "apparmor_parser" not in facts["node1"].tools
    plan = plan_provision(inv, pb, facts)
    installs = {s.host: s.what for s in plan.changes if s.what.startswith("install ")}
    assert installs["node1"] == "install apparmor", "docker is there; only apparmor is missing"
    assert "apparmor" not in installs.get("store", ""), "the store runs etcd, not containers"
    with_parser = ProvisionFacts("node1", "debian 12", True, dockerd_version="20.10.24+dfsg1",
                                 tools=facts["node1"].tools | {"apparmor_parser"})
    assert not [s for s in plan_provision(inv, pb, {"node1": with_parser}).changes if s.host == "node1"]
    no_apparmor = ProvisionFacts("node1", "debian 12", True, dockerd_version="20.10.24+dfsg1",
                                 tools=facts["node1"].tools - {"apparmor-enabled"})
    assert not [s for s in plan_provision(inv, pb, {"node1": no_apparmor}).changes if s.host == "node1"]


def test_proxy_hands_redirects_back_instead_of_following_them(archive: str, proxy: ArchiveProxy) -> None:
    """A redirect could lead anywhere: apt gets it and asks again, and the proxy checks that request too."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        s.sendall(f"GET {archive}/dists HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := s.recv(4096)):
            answer += chunk
    head = answer.decode(errors="replace")
    assert head.split("\r\n")[0].endswith("301 Moved Permanently"), head
    assert "Location: /dists/" in head
    assert proxy.served.bytes == 0


def test_controller_relays_the_http_sources_and_refuses_hosts_with_https_only() -> None:
    """Refused before any change: the proxy relays plain HTTP only, so an https-only host could fetch nothing."""
    inv = inventory("packages: controller\n")
    pb = parse_playbook("name: t\nstore: {backend: etcd}\n", "p.yaml", inv)
    facts = fresh_facts()
    plan = plan_provision(inv, pb, facts)
    assert plan.problems == [] and plan.relay_from == {"deb.debian.org"}
    facts["node1"] = ProvisionFacts("node1", "debian 12", True, apt_sources=("https://deb.debian.org/debian",))
    plan = plan_provision(inv, pb, facts)
    assert plan.problems == ["[node1] has no http:// apt source to fetch from through the controller (packages: "
                             "controller): add one to /etc/apt/sources.list, or set `packages: direct`"]
    assert plan_provision(inventory(), pb, facts).problems == [], "packages: direct fetches as the host does"
