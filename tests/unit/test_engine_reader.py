"""engine_reader.py, the host-side reader of the engine's objects: its HTTP/1.0 client over a Unix socket, against a
small HTTP server here (the real Engine API is compared with the Docker CLI on sandbox hosts of every engine in
tests/integration/test_engine_matrix.py); and what it hands back when it cannot be used."""

from __future__ import annotations

import http.server
import io
import json
import socketserver
import threading
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from labctl.facts import engine_reader
from labctl.facts.docker import parse_objects

NETS = [{"Name": "web", "Id": "n1", "Driver": "bridge", "Containers": {}}]
CTRS = {"c1": {"Id": "c1", "Name": "/c1", "State": {"Pid": 42}}, "c2": {"Id": "c2", "Name": "/c2"}}


class Api(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def address_string(self) -> str:   # a Unix socket has no client address
        return "unix"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        Api.seen.append(self.path)
        path = self.path.split("?")[0]
        body = {"/version": {"Version": "20.10.24+dfsg1"}, "/networks": NETS,
                "/containers/json": [{"Id": i} for i in CTRS],
                "/containers/c1/json": CTRS["c1"]}.get(path)   # c2: removed between the list and its inspect
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write(json.dumps(body if body is not None else {"message": "no such container"}).encode() + b"\n")


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    path = str(tmp_path / "docker.sock")
    server = Server(path, Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(engine_reader, "SOCKET", path)
    Api.seen = []
    yield Api.seen
    server.shutdown()
    server.server_close()


def read(*argv: str) -> tuple[int, str]:
    out = io.BytesIO()
    wrapper = io.TextIOWrapper(out, encoding="utf-8")
    with redirect_stdout(wrapper):
        rc = engine_reader.main(["-c", *argv])
        wrapper.flush()
    return rc, out.getvalue().decode()


def test_the_reader_gives_version_networks_and_containers_and_skips_what_went_away(api) -> None:  # type: ignore[no-untyped-def]
    rc, text = read()
    assert rc == 0
    got = parse_objects(text)
    assert got.version == "20.10.24+dfsg1"
    assert got.networks == {"web": {"Name": "web", "Id": "n1", "Driver": "bridge"}}, "from the list, no endpoints"
    assert list(got.containers) == ["c1"] and got.containers["c1"]["State"]["Pid"] == 42
    assert "/containers/json?all=1" in api and not any(p.startswith("/networks/") for p in api), api


def test_the_label_filter_goes_to_both_lists_url_encoded(api) -> None:  # type: ignore[no-untyped-def]
    assert read("labctl.lab=seed-overlay")[0] == 0
    wanted = "filters=%7B%22label%22%3A%20%7B%22labctl.lab%3Dseed-overlay%22%3A%20true%7D%7D"
    assert f"/networks?{wanted}" in api and f"/containers/json?{wanted}&all=1" in api


def test_without_a_socket_the_reader_prints_nothing_and_exits_3_so_the_cli_is_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_reader, "SOCKET", str(tmp_path / "none.sock"))
    assert read() == (engine_reader.CANNOT, "")


def test_the_cli_fallbacks_lines_parse_the_same_and_a_warning_line_is_skipped() -> None:
    text = ("V 26.1.5+dfsg1\nWARNING: something\nN {\"Name\": \"ov\", \"Id\": \"x\"}\nN not json\n"
            "C {\"Name\": \"/c2\", \"Id\": \"y\"}\n")
    got = parse_objects(text)
    assert (got.version, list(got.networks), list(got.containers)) == ("26.1.5+dfsg1", ["ov"], ["c2"])
    assert parse_objects("") == type(got)("", {}, {}), "dockerd down: no version, nothing found"
