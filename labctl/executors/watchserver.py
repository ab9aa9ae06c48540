"""The live class view's HTTP server: the page at `/`, its data at `/board.json`, and nothing else.

It binds to 127.0.0.1 unless told otherwise and answers only GET and HEAD for those two paths: any other path is
404, any other method 405. A request whose Host header is a name other than localhost is refused (421): a page on
another site cannot read the board through DNS rebinding, which needs a name; an address (the bound one, or the
machine's own when bound to 0.0.0.0 for a classroom screen) is answered. The page may run only its own
inline script and talk only to this server (Content-Security-Policy), so nothing is fetched from outside even by
mistake. The server runs in a thread of its own; `close()` stops it and frees the port."""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from labctl.errors import LabctlError, UsageError

CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
       "img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PATHS = ("/", "/board.json")


def parse_address(text: str) -> tuple[str, int]:
    """`PORT`, `ADDR:PORT` or `[V6]:PORT`; the address defaults to 127.0.0.1; port 0 is any free port."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise UsageError(f"--serve {text!r}: {host!r} is not an IP address",
                             hint="give ADDR:PORT, e.g. 127.0.0.1:8080 (the default address is 127.0.0.1)") from None
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"--serve {text!r}: {port!r} is not a port (1-65535, or 0 for any free one)",
                         hint="e.g. --serve 127.0.0.1:8080")
    return ("127.0.0.1" if host == "localhost" else host), int(port)


def host_allowed(header: str) -> bool:
    """An IP address or localhost, with or without a port: never a DNS name that could be rebound."""
    host = header.rsplit(":", 1)[0] if header.count(":") == 1 or header.startswith("[") else header
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class BoardServer:
    """Serves `page()` and `board()` (called per request, so each answer is the latest round)."""

    def __init__(self, address: tuple[str, int], page: Callable[[], str], board: Callable[[], dict[str, Any]]):
        self.page, self.board = page, board
        handler = self._handler()
        server_class = _V6Server if ":" in address[0] else ThreadingHTTPServer
        try:
            self.httpd = server_class(address, handler)
        except OSError as exc:
            raise LabctlError(f"cannot serve on {address[0]}:{address[1]}: {exc.strerror}",
                              hint="pick another port with --serve ADDR:PORT") from None
        self.httpd.daemon_threads = True
        host, port = str(self.httpd.server_address[0]), int(self.httpd.server_address[1])
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
        self._closed = False
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="labctl-board", daemon=True)

    def start(self) -> BoardServer:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop answering and free the port (a second call does nothing)."""
        if self._closed:
            return
        self._closed = True
        started = self._thread.ident is not None
        if started:
            self.httpd.shutdown()
        self.httpd.server_close()
        if started:
            self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "labctl-board"
            sys_version = ""

            def log_message(self, format: str, *args: Any) -> None:   # noqa: A002 - the base class's name
                """Quiet: the terminal shows rounds, not requests."""

            def _send(self, status: int, body: bytes, kind: str, head_only: bool = False) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Security-Policy", CSP)
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("Referrer-Policy", "no-referrer")
                self.end_headers()
                if not head_only:
                    self.wfile.write(body)

            def _answer(self, head_only: bool) -> None:
                if not host_allowed(self.headers.get("Host", "")):
                    self._send(421, b"this server answers only to its own address\n", "text/plain", head_only)
                elif self.path == "/":
                    self._send(200, server.page().encode(), "text/html; charset=utf-8", head_only)
                elif self.path == "/board.json":
                    body = json.dumps(server.board(), indent=1).encode()
                    self._send(200, body, "application/json", head_only)
                else:
                    self._send(404, b"not found: this server has only / and /board.json\n", "text/plain", head_only)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._answer(False)

            def do_HEAD(self) -> None:  # noqa: N802
                self._answer(True)

            def _refuse(self) -> None:
                self.send_response(405)
                self.send_header("Allow", "GET, HEAD")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse  # noqa: N815

        return Handler


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
