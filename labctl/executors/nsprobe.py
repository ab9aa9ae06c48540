"""verify's fast probe: runs on a docker host, inside each source container's network namespace, for all of that
source's checks at once. Not imported by labctl: verify uploads this file and runs it once per host as

    python3 -I -S nsprobe.py --sources " /c1=PID /c2=PID " INTERVAL_MS AT_ONCE TIMEOUT_S  < spec

(spec: a line "@ NAME" before each source's lines "ID TARGET reach|isolated [SIZE]"; the PIDs are what
`docker inspect -f '{{.Name}}={{.State.Pid}}'` printed a moment before). Each source gets a child process that
enters its network namespace (setns, as `nsenter -t PID -n` would), AT_ONCE of them at a time, each killed after
TIMEOUT_S. One python3 start per host, not one per source: the start and its imports were most of a probe's CPU
(about 30 ms a source on these hosts). Where setns is not available, the child runs the single-source form

    nsenter -t PID -n python3 nsprobe.py PID [INTERVAL_MS]  < spec

which is also the form of earlier labctl versions. Output: one "ID RC RTT" line per check (RC 0: answered, 1: no
answer, 2: the name did not resolve).

Why a host process and not `ping` inside the container: one busybox `ping` per check made verify CPU-bound (about
270 checks per second at 16 hosts x 20 containers on 2 cores). Here one `fping` sends to every address of the
source, and one resolver asks the container's own name servers for every name.

Faithful to what the container itself would see:
- the network namespace is the container's, so routes, neighbours and Docker's DNS rules (127.0.0.11 is DNATed
  to dockerd's resolver inside that namespace) are the container's;
- names are looked up as the container's C library would: its /etc/hosts first, then the name servers, search
  domains and ndots of its /etc/resolv.conf (both read through /proc/PID/root);
- bounded as the in-container probe was where a check expects an answer: an address gets one echo with 1 s to
  answer and one retry with 2 s, a name at most 3 s to resolve from its first query. Where the playbook expects
  isolation, silence is the normal outcome, and waiting 3 s for it on every such check made the whole verify
  wait: there an address gets two echoes 0.4 s apart and a name 1 s. An answer comes in microseconds on a lab's
  underlay, and a check that disagrees with the playbook is probed again by verify, patiently.

Standard library only: it runs with the host's python3, whatever labctl's controller has installed.
"""

from __future__ import annotations

import os
import random
import re
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable

IPV4 = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")
FPING = {True: ["fping", "-e", "-r", "1", "-t", "1000", "-B", "2"],   # expecting an answer: 1 s, then 2 s more
         False: ["fping", "-e", "-r", "1", "-t", "400", "-B", "1"]}   # expecting silence: 0.4 s, then 0.4 s more
FPING_LINE = re.compile(r"^(\S+) is (alive|unreachable)(?: \(([0-9.]+) ms\))?")
NAME_DEADLINE_S = {True: 3.0, False: 1.0}   # from a name's first query to giving up (expecting an answer or not)
QUERY_TIMEOUT_S = 1.0      # one query unanswered: send it again (once, then wait twice as long), then the next try
IN_FLIGHT = 32             # queries outstanding at once: Docker's resolver answers each in a goroutine
NXDOMAIN = 3
DNS_PORT = 53


def read_spec(text: str) -> list[tuple[int, str, bool]]:
    """(check id, address or name, whether an answer is expected) per line."""
    spec = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].isdigit() and parts[2] in ("reach", "isolated"):
            spec.append((int(parts[0]), parts[1], parts[2] == "reach"))
    return spec


def read_sized_spec(text: str) -> list[tuple[int, str, bool, int]]:
    """Lines with a fourth word: (check id, address, whether an answer is expected, payload size)."""
    spec = []
    for line in text.splitlines():
        parts = line.split()
        if (len(parts) == 4 and parts[0].isdigit() and IPV4.match(parts[1]) and parts[2] in ("reach", "isolated")
                and parts[3].isdigit() and 0 < int(parts[3]) <= 65000):
            spec.append((int(parts[0]), parts[1], parts[2] == "reach", int(parts[3])))
    return spec


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], int]:
    """(name servers, search domains, ndots) as a C library reads them; defaults as glibc's."""
    servers: list[str] = []
    search: list[str] = []
    ndots = 1
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1 and IPV4.match(words[1]):
            servers.append(words[1])
        elif words[0] in ("search", "domain"):
            search = words[1:]
        elif words[0] == "options":
            for opt in words[1:]:
                if opt.startswith("ndots:") and opt[6:].isdigit():
                    ndots = min(int(opt[6:]), 15)
    return servers or ["127.0.0.1"], search, ndots


def parse_hosts(text: str) -> dict[str, str]:
    """name -> first IPv4 address in an /etc/hosts."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and IPV4.match(words[0]):
            for name in words[1:]:
                found.setdefault(name.lower(), words[0])
    return found


def candidates(name: str, search: list[str], ndots: int) -> list[str]:
    """The names a stub resolver asks for, in order (absolute first when the name has at least ndots dots)."""
    if name.endswith("."):
        return [name.rstrip(".")]
    searched = [f"{name}.{d.strip('.')}" for d in search if d.strip(".")]
    return [name] + searched if name.count(".") >= ndots else searched + [name]


def build_query(qid: int, name: str) -> bytes:
    header = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)   # recursion desired, one question
    labels = b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.split(".") if p)
    return header + labels + b"\x00" + struct.pack(">HH", 1, 1)  # A, IN


def _skip_name(data: bytes, pos: int) -> int:
    while pos < len(data):
        length = data[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            return pos + 2
        pos += 1 + length
    raise ValueError("name runs past the message")


def _take(data: bytes, pos: int, size: int) -> bytes:
    if pos + size > len(data):
        raise ValueError("DNS message ends early")
    return data[pos:pos + size]


def parse_answer(data: bytes) -> tuple[int, int, list[str]]:
    """(query id, rcode, IPv4 addresses of the A records) of a DNS response; ValueError if it is cut short."""
    qid, flags, qdcount, ancount, _, _ = struct.unpack(">HHHHHH", _take(data, 0, 12))
    pos = 12
    for _ in range(qdcount):
        pos = _skip_name(data, pos) + 4
    addresses = []
    for _ in range(ancount):
        pos = _skip_name(data, pos)
        rtype, rclass, _ttl, rdlength = struct.unpack(">HHIH", _take(data, pos, 10))
        pos += 10
        rdata = _take(data, pos, rdlength)
        if rtype == 1 and rclass == 1 and rdlength == 4:
            addresses.append(socket.inet_ntoa(rdata))
        pos += rdlength
    return qid, flags & 0x000F, addresses


class Lookup:
    """One name being resolved: the (candidate, server) attempts left, and the deadline of the whole lookup."""

    def __init__(self, name: str, attempts: list[tuple[str, str]], patience_s: float) -> None:
        self.name = name
        self.attempts = attempts
        self.patience_s = patience_s
        self.deadline = 0.0
        self.sent_at = 0.0
        self.resent = False
        self.answer: str | None = None
        self.done = False
        self.qid = -1

    def current(self) -> tuple[str, str]:
        return self.attempts[0]

    def next_attempt(self, skip_candidate: bool = False) -> None:
        """The current attempt failed; NXDOMAIN skips the other servers of the same candidate name."""
        failed = self.attempts.pop(0)
        if skip_candidate:
            self.attempts = [a for a in self.attempts if a[0] != failed[0]]
        self.resent = False
        self.sent_at = 0.0
        if not self.attempts:
            self.done = True


def resolve(names: dict[str, bool], resolv_conf: str, hosts: str) -> dict[str, str | None]:
    """Every name at once (at most IN_FLIGHT queries outstanding): name -> its first IPv4 address, or None.
    `names`: name -> whether an answer is expected (how long to wait for it)."""
    servers, search, ndots = parse_resolv_conf(resolv_conf)
    in_hosts = parse_hosts(hosts)
    result: dict[str, str | None] = {}
    pending: list[Lookup] = []
    for name in names:
        if name.lower() in in_hosts:
            result[name] = in_hosts[name.lower()]
        else:
            pending.append(Lookup(name, [(c, s) for c in candidates(name, search, ndots) for s in servers],
                                  NAME_DEADLINE_S[names[name]]))
    if pending:
        _run_lookups(pending)
    for lookup in pending:
        result[lookup.name] = lookup.answer
    return result


def _run_lookups(lookups: list[Lookup]) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    by_id: dict[int, Lookup] = {}
    next_id = random.randrange(65536)
    queue = list(lookups)
    active: list[Lookup] = []
    try:
        while queue or active:
            now = time.monotonic()
            while queue and len(active) < IN_FLIGHT:
                lookup = queue.pop(0)
                lookup.deadline = now + lookup.patience_s
                active.append(lookup)
            for lookup in active:
                if lookup.done:
                    continue
                if now >= lookup.deadline:
                    lookup.done = True
                elif lookup.sent_at == 0.0 or (now - lookup.sent_at >= QUERY_TIMEOUT_S * (2 if lookup.resent else 1)):
                    if lookup.sent_at and lookup.resent:
                        lookup.next_attempt()
                        if lookup.done:
                            continue
                    elif lookup.sent_at:
                        lookup.resent = True
                    next_id = (next_id + 1) % 65536
                    by_id.pop(lookup.qid, None)
                    lookup.qid = next_id
                    by_id[next_id] = lookup
                    name, server = lookup.current()
                    try:
                        sock.sendto(build_query(next_id, name), (server, DNS_PORT))
                        lookup.sent_at = now
                    except OSError:       # no route to that server: as good as no answer from it
                        lookup.next_attempt()
            active = [x for x in active if not x.done]
            if not active and not queue:
                break
            ready, _, _ = select.select([sock], [], [], 0.05)
            while ready:        # drain every answer that has arrived
                try:
                    data = sock.recv(4096)
                except (BlockingIOError, ConnectionRefusedError, OSError):
                    break
                _take_answer(data, by_id)
    finally:
        sock.close()


def _take_answer(data: bytes, by_id: dict[int, Lookup]) -> None:
    try:
        qid, rcode, addresses = parse_answer(data)
    except ValueError:
        return
    lookup = by_id.pop(qid, None)
    if lookup is None or lookup.done:
        return
    if addresses:
        lookup.answer = addresses[0]
        lookup.done = True
    else:
        lookup.next_attempt(skip_candidate=rcode in (0, NXDOMAIN))


def parse_fping(out: str) -> dict[str, float | None]:
    """address -> RTT in ms when it answered, None when it did not (addresses fping did not report: absent)."""
    found: dict[str, float | None] = {}
    for line in out.splitlines():
        m = FPING_LINE.match(line.strip())
        if m:
            found[m.group(1)] = float(m.group(3)) if m.group(2) == "alive" and m.group(3) else None
    return found


def start_fping(addresses: set[str], patient: bool, interval_ms: int,
                size: int | None = None) -> subprocess.Popen[str] | None:
    """fping sends one echo to each address in turn, interval_ms apart (1 ms needs root, which verify has); `size`:
    the echoes' payload in bytes (fping's default is 56)."""
    if not addresses:
        return None
    sized = ["-b", str(size)] if size else []
    return subprocess.Popen(FPING[patient] + sized + ["-i", str(interval_ms)] + sorted(addresses),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_fping(proc: subprocess.Popen[str] | None) -> dict[str, float | None]:
    if proc is None:
        return {}
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return parse_fping(out)


def answer_lines(spec: list[tuple[int, str, bool]], resolved: dict[str, str | None],
                 pinged: dict[str, float | None]) -> list[str]:
    lines = []
    for check_id, target, _ in spec:
        address = target if IPV4.match(target) else resolved.get(target)
        if address is None:
            lines.append(f"{check_id} 2")
        elif address not in pinged:
            continue                        # fping said nothing about it: the caller reports "no probe result"
        elif pinged[address] is None:
            lines.append(f"{check_id} 1")
        else:
            lines.append(f"{check_id} 0 {pinged[address]}")
    return lines


def by_patience(targets: list[tuple[str, bool]]) -> tuple[set[str], set[str]]:
    """(addresses to wait for patiently, the others): one check expecting an answer makes its address patient."""
    patient = {t for t, p in targets if p}
    return patient, {t for t, _ in targets} - patient


def probe(spec: list[tuple[int, str, bool]], root: str, interval_ms: int) -> list[str]:
    """The addresses are pinged while the names resolve; then the names' addresses not pinged yet."""
    patient, quick = by_patience([(t, p) for _, t, p in spec if IPV4.match(t)])
    running = [start_fping(patient, True, interval_ms), start_fping(quick, False, interval_ms)]
    names: dict[str, bool] = {}
    for _, t, p in spec:
        if not IPV4.match(t):
            names[t] = names.get(t, False) or p
    resolved = resolve(names, _read(f"{root}/etc/resolv.conf"), _read(f"{root}/etc/hosts")) if names else {}
    more_patient, more_quick = by_patience([(a, names[n]) for n, a in resolved.items() if a])
    more_patient -= patient | quick
    more_quick -= patient | quick | more_patient
    running += [start_fping(more_patient, True, interval_ms), start_fping(more_quick, False, interval_ms)]
    pinged: dict[str, float | None] = {}
    for proc in running:
        pinged |= finish_fping(proc)
    return answer_lines(spec, resolved, pinged)


def probe_sized(spec: list[tuple[int, str, bool, int]], interval_ms: int) -> list[str]:
    """Whole-packet echoes: one fping per payload size, all at once."""
    running = []
    for size in sorted({s for *_, s in spec}):
        targets = [(t, p) for _, t, p, s in spec if s == size]
        patient, quick = by_patience(targets)
        items = [(i, t, p) for i, t, p, s in spec if s == size]
        running.append((items, [start_fping(patient, True, interval_ms, size),
                                start_fping(quick - patient, False, interval_ms, size)]))
    lines = []
    for items, procs in running:
        pinged: dict[str, float | None] = {}
        for proc in procs:
            pinged |= finish_fping(proc)
        lines += answer_lines(items, {}, pinged)
    return lines


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def probe_source(text: str, pid: int, interval_ms: int) -> list[str]:
    """One source's checks, from inside its network namespace (its files read through /proc/PID/root)."""
    lines = probe(read_spec(text), f"/proc/{pid}/root", interval_ms)
    sized = read_sized_spec(text)
    return lines + (probe_sized(sized, interval_ms) if sized else [])


def read_sources(text: str, pids: str) -> list[tuple[str, int, str]]:
    """(source, PID, its spec lines) per "@ NAME" section, in order; a source without a running PID (absent from
    `pids`, or 0) is left out, so that its checks come back as "no probe result"."""
    by_name = {}
    for word in pids.split():
        name, _, pid = word.partition("=")
        if pid.isdigit() and int(pid) > 0:
            by_name[name.lstrip("/")] = int(pid)
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("@ "):
            sections.append((line[2:].strip(), []))
        elif sections:
            sections[-1][1].append(line)
    return [(name, by_name[name], "\n".join(body) + "\n") for name, body in sections if name in by_name]


CLONE_NEWNET = 0x40000000


def enter_netns(pid: int) -> None:
    """This process into PID's network namespace: setns(2) through ctypes (os.setns is Python 3.12 and later)."""
    import ctypes

    setns = ctypes.CDLL(None, use_errno=True).setns
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


def in_namespace(text: str, pid: int, interval_ms: int) -> list[str]:
    """A child's work: enter the source's namespace and probe; or, where setns cannot be used, the same through
    nsenter and a python3 of its own."""
    try:
        enter_netns(pid)
    except (OSError, AttributeError, ImportError):
        out = subprocess.run(["nsenter", "-t", str(pid), "-n", sys.executable, "-I", "-S",
                              os.path.abspath(__file__), str(pid), str(interval_ms)],
                             input=text, capture_output=True, text=True).stdout
        return out.splitlines()
    return probe_source(text, pid, interval_ms)


def run_sources(sources: list[tuple[str, int, str]], interval_ms: int, at_once: int, timeout_s: float,
                work: Callable[[str, int, int], list[str]] = in_namespace) -> list[str]:
    """Every source in a child process of its own, at most at_once at a time; a child that has not finished after
    timeout_s is killed and gives no lines (nor does one that failed)."""
    lines: list[str] = []
    todo = list(sources)
    running: dict[int, tuple[int, float, list[bytes]]] = {}   # read end -> (child PID, deadline, output so far)
    sys.stdout.flush()
    while todo or running:
        while todo and len(running) < max(1, at_once):
            name, pid, text = todo.pop(0)
            r, w = os.pipe()
            child = os.fork()
            if child == 0:   # the child: never returns into the parent's loop
                os.close(r)
                code = 1
                try:
                    os.write(w, ("\n".join(work(text, pid, interval_ms)) + "\n").encode())
                    code = 0
                except BaseException as exc:   # its checks come back as "no probe result"; say why on stderr
                    os.write(2, f"nsprobe: {name} (PID {pid}): {exc!r}\n".encode())
                finally:
                    os._exit(code)
            os.close(w)
            running[r] = (child, time.monotonic() + timeout_s, [])
        wait = max(0.0, min(d for _, d, _ in running.values()) - time.monotonic())
        ready, _, _ = select.select(list(running), [], [], wait)
        for r in ready:
            data = os.read(r, 65536)
            if data:
                running[r][2].append(data)
                continue
            child, _, chunks = running.pop(r)
            os.close(r)
            _, status = os.waitpid(child, 0)
            if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
                lines += [line for line in b"".join(chunks).decode().splitlines() if line.strip()]
        for r, (child, deadline, _) in list(running.items()):
            if time.monotonic() >= deadline:
                os.kill(child, 9)
                os.waitpid(child, 0)
                os.close(r)
                del running[r]
    return lines


def main(argv: list[str]) -> int:
    if len(argv) == 6 and argv[1] == "--sources" and all(a.isdigit() for a in argv[3:]):
        sources = read_sources(sys.stdin.read(), argv[2])
        lines = run_sources(sources, max(1, int(argv[3])), int(argv[4]), float(argv[5]))
    elif len(argv) in (2, 3) and all(a.isdigit() for a in argv[1:]):
        lines = probe_source(sys.stdin.read(), int(argv[1]), max(1, int(argv[2])) if len(argv) == 3 else 1)
    else:
        print("usage: python3 nsprobe.py --sources PIDS INTERVAL_MS AT_ONCE TIMEOUT_S < spec\n"
              "       nsenter -t PID -n python3 nsprobe.py PID [INTERVAL_MS] < spec", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
