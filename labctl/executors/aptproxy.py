"""Packages through the controller (`packages: controller` in the inventory).

VMs on an isolated network (the Vagrantfile's libvirt networks) cannot reach the Debian archive; the controller
can. For the time of `labctl provision`, the controller runs a small HTTP proxy on its own loopback, and each host
reaches it through its SSH connection (a remote port forward: `ssh -R` on the host's loopback). apt on the host
resolves dependencies and checks signatures as usual (`-o Acquire::http::Proxy=http://127.0.0.1:PORT`); only its
HTTP requests travel back through SSH, and the proxy fetches nothing but GET/HEAD from the hosts named in the
hosts' own apt sources. The controller's own proxy settings (http_proxy) apply to its requests.
"""

from __future__ import annotations

import select
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import paramiko
from fabric import Connection

FETCH_TIMEOUT = 60            # seconds per upstream request (apt retries on its own)
PASS_REQUEST = ("Range", "If-Range", "If-Modified-Since", "If-None-Match", "Cache-Control")
PASS_RESPONSE = ("Content-Type", "Content-Length", "Content-Range", "Last-Modified", "ETag", "Accept-Ranges",
                 "Location")


class _PassRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect goes back to apt, whose next request the proxy checks again: the proxy itself never fetches from
    a host outside the allowed ones."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_PassRedirects)


@dataclass
class Served:
    """What the proxy did, for the closing progress line."""
    requests: int = 0
    bytes: int = 0
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, n: int) -> None:
        with self.lock:
            self.bytes += n

    def count(self) -> None:
        with self.lock:
            self.requests += 1


class ArchiveProxy(ThreadingHTTPServer):
    """A forward proxy for plain-HTTP package archives, on 127.0.0.1 of the controller, for the allowed hosts only."""

    daemon_threads = True

    def __init__(self, allowed: Iterable[str]) -> None:
        self.allowed = frozenset(h.lower() for h in allowed)
        self.served = Served()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self._thread = threading.Thread(target=self.serve_forever, name="labctl-archive-proxy", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> ArchiveProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ArchiveProxy

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Quiet: the summary line says how much was served."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._relay(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._relay(head=True)

    def do_CONNECT(self) -> None:  # noqa: N802
        self._refuse(405, f"{self.path}: https sources are not relayed; use http:// sources (apt checks signatures)")

    def _refuse(self, code: int, why: str) -> None:
        self.server.served.refused.append(why)
        body = (why + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _relay(self, head: bool) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.scheme != "http" or not url.hostname:
            self._refuse(400, f"{self.path}: not an absolute http:// URL (this is a proxy for apt)")
            return
        if url.hostname.lower() not in self.server.allowed:
            self._refuse(403, f"{url.hostname}: not among the hosts' apt sources "
                              f"({', '.join(sorted(self.server.allowed)) or 'none'})")
            return
        self.server.served.count()
        headers = {k: v for k in PASS_REQUEST if (v := self.headers.get(k)) is not None}
        request = urllib.request.Request(self.path, headers=headers, method="HEAD" if head else "GET")
        try:
            upstream = _OPENER.open(request, timeout=FETCH_TIMEOUT)
        except urllib.error.HTTPError as err:
            upstream = err
        except OSError as err:
            self._refuse(502, f"{url.hostname}: {err}")
            return
        with upstream:
            self.send_response(upstream.status if hasattr(upstream, "status") else upstream.code)
            for k in PASS_RESPONSE:
                if (v := upstream.headers.get(k)) is not None:
                    self.send_header(k, v)
            if upstream.headers.get("Content-Length") is None:
                self.close_connection = True       # no length: the end of the body is the end of the connection
                self.send_header("Connection", "close")
            self.end_headers()
            if not head:
                self._copy(upstream)

    def _copy(self, upstream: object) -> None:
        read = upstream.read  # type: ignore[attr-defined]
        while chunk := read(65536):
            self.server.served.add(len(chunk))     # counted first: the client may read it all before we return
            self.wfile.write(chunk)


def _pipe(channel: paramiko.Channel, port: int) -> None:
    """One forwarded connection: the host's end (an SSH channel) to the proxy on the controller's loopback."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        channel.close()
        return
    sock.settimeout(None)
    try:
        while True:
            ready, _, _ = select.select([sock.fileno(), channel.fileno()], [], [], 300)
            if not ready:
                break                              # idle for 5 minutes: apt has long gone
            if sock.fileno() in ready:
                data = sock.recv(65536)
                if not data:
                    break
                channel.sendall(data)
            if channel.fileno() in ready:
                data = channel.recv(65536)
                if not data:
                    break
                sock.sendall(data)
    except OSError:
        pass
    finally:
        sock.close()
        channel.close()


def forward(conn: Connection, proxy_port: int) -> int:
    """Listen on the host's 127.0.0.1 (a port sshd picks) and bring each connection to the proxy; returns the port."""
    conn.open()
    transport = conn.client.get_transport()
    assert transport is not None

    def accept(channel: paramiko.Channel, origin: object, server: object) -> None:
        threading.Thread(target=_pipe, args=(channel, proxy_port), daemon=True,
                         name="labctl-archive-forward").start()

    return int(transport.request_port_forward("127.0.0.1", 0, handler=accept))


def unforward(conn: Connection, port: int) -> None:
    transport = conn.client.get_transport()
    if transport is not None and transport.is_active():
        transport.cancel_port_forward("127.0.0.1", port)


@contextmanager
def served_packages(conns: dict[str, Connection], allowed: Iterable[str]) -> Iterator[tuple[dict[str, str], Served]]:
    """For the block's time: host name -> the proxy URL apt on that host uses; the proxy's counters."""
    proxy = ArchiveProxy(allowed).start()
    ports: dict[str, int] = {}
    try:
        for name, conn in conns.items():
            ports[name] = forward(conn, proxy.port)
        yield {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}, proxy.served
    finally:
        for name, port in ports.items():
            with suppress(Exception):      # the connection may be gone; its forward died with it
                unforward(conns[name], port)
        proxy.stop()

