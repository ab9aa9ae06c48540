"""verify's fast probe (labctl/executors/nsprobe.py, run on docker hosts): its parsers on output captured from
Docker 20.10.24's embedded DNS and fping 5.1, its resolver against a real UDP name server on loopback, and the
probe script the executor sends."""

from __future__ import annotations

import base64
import os
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.executors import nsprobe
from labctl.executors import verify as vexec
from labctl.facts import END, answers
from labctl.facts.host import Underlay
from labctl.model.inventory import parse_inventory
from labctl.plan.verify import Check

DATA = Path(__file__).parent / "data" / "nsprobe-capture-20.10.24.txt"


def sections() -> dict[str, str]:
    found: dict[str, list[str]] = {}
    current = ""
    for line in DATA.read_text().splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            found[current] = []
        elif current:
            found[current].append(line)
    return {k: "\n".join(v) + "\n" for k, v in found.items()}


CAPTURE = sections()
ANSWERS = {name: base64.b64decode(b64) for name, b64 in (line.split() for line in CAPTURE["dns"].splitlines())}


def test_answers_of_dockers_embedded_dns_are_read() -> None:
    assert nsprobe.parse_answer(ANSWERS["c3"]) == (4660, 0, ["172.30.0.1"])
    assert nsprobe.parse_answer(ANSWERS["web2"]) == (4661, 0, ["172.30.0.1"]), "an alias resolves like its name"
    assert nsprobe.parse_answer(ANSWERS["c2"]) == (4662, 0, ["172.29.0.12"])


def test_query_is_the_question_docker_answered() -> None:
    query = nsprobe.build_query(4660, "c3")
    assert ANSWERS["c3"][:2] == query[:2]
    assert ANSWERS["c3"][12:12 + len(query) - 12] == query[12:], "the response echoes our question section"


def test_truncated_answer_is_an_error_not_an_address() -> None:
    with pytest.raises(ValueError):
        nsprobe.parse_answer(ANSWERS["c3"][:-3])
    with pytest.raises(ValueError):
        nsprobe.parse_answer(b"\x12\x34")


def test_fping_output_gives_rtt_or_silence() -> None:
    assert nsprobe.parse_fping(CAPTURE["fping"]) == {"172.30.0.1": 0.104, "172.30.0.3": 0.045,
                                                     "172.29.0.13": 0.022, "198.18.0.12": None}
    assert nsprobe.parse_fping("fping: can't create socket (must run as root?)\n") == {}


def test_container_resolv_conf_and_hosts() -> None:
    assert nsprobe.parse_resolv_conf(CAPTURE["resolv.conf"]) == (["127.0.0.11"], [], 0)
    assert nsprobe.parse_hosts(CAPTURE["hosts"])["c1"] == "172.30.0.2"
    assert nsprobe.parse_resolv_conf("") == (["127.0.0.1"], [], 1), "glibc's defaults"
    servers, search, ndots = nsprobe.parse_resolv_conf("nameserver 10.0.2.3\nnameserver fe80::1\n"
                                                       "search lab.example corp.example\noptions ndots:2 edns0\n")
    assert (servers, search, ndots) == (["10.0.2.3"], ["lab.example", "corp.example"], 2)


@pytest.mark.parametrize("name,search,ndots,expected", [
    ("c3", [], 0, ["c3"]),
    ("c3", ["lab.example"], 0, ["c3", "c3.lab.example"]),
    ("c3", ["lab.example"], 1, ["c3.lab.example", "c3"]),
    ("web.lab", ["lab.example"], 1, ["web.lab", "web.lab.lab.example"]),
    ("c3.", ["lab.example"], 1, ["c3"]),
])
def test_candidates_follow_ndots_and_search(name: str, search: list[str], ndots: int, expected: list[str]) -> None:
    assert nsprobe.candidates(name, search, ndots) == expected


class NameServer:
    """A real UDP name server on 127.0.0.1: answers from a table, NXDOMAIN for `nx`, silence for the rest."""

    def __init__(self, table: dict[str, str], nx: set[str]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.table, self.nx = table, nx
        self.asked: list[str] = []
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        deadline = time.monotonic() + 30          # bounded: stops by itself
        while not self.stop and time.monotonic() < deadline:
            try:
                data, peer = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            qid = data[:2]
            pos, labels = 12, []
            while data[pos]:
                labels.append(data[pos + 1:pos + 1 + data[pos]].decode())
                pos += 1 + data[pos]
            name = ".".join(labels)
            self.asked.append(name)
            question = data[12:pos + 5]
            if name in self.table:
                answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(self.table[name])
                self.sock.sendto(qid + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0) + question + answer, peer)
            elif name in self.nx:
                self.sock.sendto(qid + struct.pack(">HHHHH", 0x8183, 1, 0, 0, 0) + question, peer)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[NameServer]:
    srv = NameServer({"c3": "172.30.0.1", "db.lab.example": "172.30.0.9"}, {"c4", "db", "nosuch",
                                                                            "nosuch.lab.example"})
    monkeypatch.setattr(nsprobe, "DNS_PORT", srv.port)
    yield srv
    srv.stop = True
    srv.thread.join()


def test_resolver_asks_as_the_container_would(server: NameServer) -> None:
    conf = "nameserver 127.0.0.1\nsearch lab.example\noptions ndots:0\n"
    t0 = time.monotonic()
    got = nsprobe.resolve({"c3": True, "db": True, "nosuch": True, "c1": True}, conf, CAPTURE["hosts"])
    assert got == {"c1": "172.30.0.2", "c3": "172.30.0.1", "db": "172.30.0.9", "nosuch": None}
    assert "c1" not in server.asked, "/etc/hosts answers first"
    assert server.asked.index("db") < server.asked.index("db.lab.example"), "NXDOMAIN moves on to the search list"
    assert time.monotonic() - t0 < 1.0, "NXDOMAIN ends a lookup without waiting"


def test_silence_is_bounded_by_what_the_check_expects(server: NameServer) -> None:
    conf = "nameserver 127.0.0.1\noptions ndots:0\n"
    t0 = time.monotonic()
    assert nsprobe.resolve({"silent": False}, conf, "") == {"silent": None}
    quick = time.monotonic() - t0
    assert 0.9 <= quick < 1.6, "a name expected isolated gets 1 s"
    t0 = time.monotonic()
    assert nsprobe.resolve({"silent": True}, conf, "") == {"silent": None}
    assert 2.9 <= time.monotonic() - t0 < 3.6, "a name expected to resolve gets 3 s"
    assert server.asked.count("silent") == 1 + 2, "asked again after 1 s when patient, then waited for 2 s"


def test_many_names_resolve_together(server: NameServer) -> None:
    server.table.update({f"n{i}": f"172.31.{i // 250}.{i % 250 + 1}" for i in range(300)})
    t0 = time.monotonic()
    got = nsprobe.resolve({f"n{i}": True for i in range(300)}, "nameserver 127.0.0.1\noptions ndots:0\n", "")
    assert all(got[f"n{i}"] == f"172.31.{i // 250}.{i % 250 + 1}" for i in range(300))
    assert time.monotonic() - t0 < 2, "answered names do not wait for each other"


def test_answer_lines() -> None:
    spec = [(1, "172.30.0.1", True), (2, "c3", True), (3, "nosuch", False), (4, "198.18.0.12", False),
            (5, "172.30.0.99", True)]
    lines = nsprobe.answer_lines(spec, {"c3": "172.30.0.1", "nosuch": None},
                                 {"172.30.0.1": 0.1, "198.18.0.12": None})
    assert lines == ["1 0 0.1", "2 0 0.1", "3 2", "4 1"], "fping's silence about an address is no result"
    parsed = vexec.parse_probe_output("\n".join(lines))
    assert parsed == {1: (True, 0.1), 2: (True, 0.1), 3: (False, None), 4: (False, None)}


def test_spec_lines_and_patience() -> None:
    assert nsprobe.read_spec("1 c3 reach\n2 172.30.0.1 isolated\nbad line\n3 x maybe\n") == \
        [(1, "c3", True), (2, "172.30.0.1", False)]
    assert nsprobe.by_patience([("a", False), ("a", True), ("b", False)]) == ({"a"}, {"b"})


# ------------------------------------------------------------------- the executor's side


INV_OF_ETH1 = parse_inventory((Path(__file__).parents[2] / "inventories" / "sandbox.yaml").read_text(),
                              "inventories/sandbox.yaml")


def check(src: str, address: str, expect: str = "reach") -> Check:
    return Check(src, "node1", "x", "node2", "ov", address, expect, "ip", "test")


def test_tools_line_and_modes() -> None:
    address, tools = vexec.underlay_facts(INV_OF_ETH1)
    out = "\n".join([address.marker, "3: eth1    inet 198.18.0.12/24 brd ...", "1500", tools.marker,
                     "probe-tools-missing: fping python3", END])
    got = answers("node1", [address, tools], out)
    assert got[tools] == ("fping", "python3")
    assert got[address] == Underlay("198.18.0.12", 1500)
    assert tools.parse("node1", "probe-tools-missing:\n") == ()
    assert tools.parse("node1", "") is None, "a host that did not answer did not say it lacks nothing"
    assert address.parse("node1", "") == Underlay("", 1500)
    modes, notes = vexec.choose_modes("auto", {"node1": (), "node2": ("fping",), "node3": None})
    assert modes == {"node1": "fping", "node2": "container", "node3": "container"}
    assert notes == {"node2": "no fping on the host", "node3": "the host did not report its tools"}
    assert vexec.choose_modes("container", {"node1": []})[0] == {"node1": "container"}
    text = vexec.describe_modes(modes, notes)
    assert text == ("fping from the host on node1; pings inside the containers on node2 (no fping on the host); "
                    "pings inside the containers on node3 (the host did not report its tools)")


def test_ns_probe_script_runs_the_helper_once_with_each_source_and_its_checks() -> None:
    checks = [(0, check("c1", "172.30.0.3")), (1, check("c1", "c3")), (2, check("c2", "198.18.0.12", "isolated")),
              (3, check("c2", "$(reboot)")), (4, check("c1", "LABCTL_CHECKS"))]
    script = vexec.ns_probe_script(checks, "/var/lib/labctl/verify-nsprobe-ab.py", sources_at_once=1)
    assert "docker inspect -f '{{.Name}}={{.State.Pid}}' c1 c2" in script
    assert ("@ c1\n0 172.30.0.3 reach\n1 c3 reach\n4 LABCTL_CHECKS reach\n"
            "@ c2\n2 198.18.0.12 isolated\nLABCTL_CHECKS\n") in script
    assert "reboot" not in script, "a target that is neither an address nor a name never reaches the shell"
    assert script.count("python3 -I -S") == 1, "one python3 for the host, whatever the number of sources"
    assert f'--sources "$pids" 1 1 {vexec.HOST_PROBE_TIMEOUT} <<' in script, "one source at a time"
    assert f"timeout {2 * vexec.HOST_PROBE_TIMEOUT + 30} " in script, "the whole bounded by each batch's bound"
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0


def test_ns_probe_script_against_stand_ins(tmp_path: Path) -> None:
    """The script's own shell logic (PIDs by name, one section per source), with docker replaced by a script that
    prints PIDs and python3 by one that hands over what it was given to the helper's own reader."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\necho /c1=101\necho /c2=0\n")
    (bin_dir / "python3").write_text(f'#!/bin/sh\necho "$5" > {tmp_path}/pids\ncat > {tmp_path}/spec\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    checks = [(0, check("c1", "172.30.0.3")), (1, check("c1", "c3")), (2, check("c2", "c1")),
              (3, check("c9", "c1"))]
    subprocess.run(["sh", "-c", vexec.ns_probe_script(checks, "/helper.py")], check=True,
                   env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, timeout=20)
    sources = nsprobe.read_sources((tmp_path / "spec").read_text(), (tmp_path / "pids").read_text())
    assert sources == [("c1", 101, "0 172.30.0.3 reach\n1 c3 reach\n")], \
        "c1's checks go to c1's PID; c2 (not running, PID 0) and c9 (absent) get no child"


def test_each_source_runs_in_a_child_of_its_own_bounded_in_number_and_time(tmp_path: Path) -> None:
    log = tmp_path / "log"

    def work(text: str, pid: int, interval_ms: int) -> list[str]:
        with log.open("a") as f:
            f.write(f"start {pid} {time.monotonic()}\n")
        if pid == 3:
            raise RuntimeError("setns refused")
        time.sleep(5 if pid == 4 else 0.3)
        with log.open("a") as f:
            f.write(f"end {pid} {time.monotonic()}\n")
        return [f"{line.split()[0]} 0 {pid}.5" for line in text.splitlines()]

    sources = [("c1", 1, "10 a reach\n11 b reach\n"), ("c2", 2, "20 a reach\n"), ("c3", 3, "30 a reach\n"),
               ("c4", 4, "40 a reach\n")]
    t0 = time.monotonic()
    lines = nsprobe.run_sources(sources, 1, 2, 1.5, work=work)
    assert sorted(lines) == ["10 0 1.5", "11 0 1.5", "20 0 2.5"], "a child that failed or ran out of time says nothing"
    assert time.monotonic() - t0 < 4, "the one that would take 5 s was killed at its bound"
    events = sorted((float(t), kind) for kind, _, t in (line.split() for line in log.read_text().splitlines()))
    running = peak = 0
    for _, kind in events:
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    assert peak <= 2, "at most AT_ONCE children at a time"


def test_a_child_enters_a_network_namespace_with_setns_as_root() -> None:
    """The real setns(2), into this process's own namespace (nothing changes): allowed to root, refused with EPERM
    otherwise."""
    def work(text: str, pid: int, interval_ms: int) -> list[str]:
        nsprobe.enter_netns(pid)
        return ["1 0 0.1"]

    got = nsprobe.run_sources([("self", os.getpid(), "1 x reach\n")], 1, 1, 10, work=work)
    assert got == (["1 0 0.1"] if os.geteuid() == 0 else [])
