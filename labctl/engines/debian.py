"""`engine: debian-N`: that Debian release's docker.io with its containerd, runc and tini, from Debian's archive.

Why these three releases: Debian 11's docker.io 20.10.5 is built with the Consul cluster-store backend (12's is
not), Debian 12's 20.10.24 is the last engine with a cluster store that this machine's release ships, and Debian
13's 26.1.5 is a current engine (no cluster store: swarm or labctl's VXLAN). A new release is one line below.
"""

from __future__ import annotations

import re

from labctl.engines.base import EngineSource, register

ARCHIVE_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# The engine's helpers: Debian 13's runc (and dynamic tini) need glibc 2.38; the controller's own are used then.
HELPERS = ("runc", "docker-init")

RELEASES: tuple[tuple[str, str, str, tuple[str, ...], dict[str, tuple[str, ...]]], ...] = (
    # name, codename, VERSION_ID, packages, store tools
    ("debian-11", "bullseye", "11", ("docker.io", "containerd", "runc", "tini"), {"consul": ("consul",)}),
    ("debian-12", "bookworm", "12", ("docker.io", "containerd", "runc", "tini"), {}),
    ("debian-13", "trixie", "13", ("docker.io", "docker-cli", "containerd", "runc", "tini"), {}),
)

for _name, _codename, _vid, _packages, _tools in RELEASES:
    register(EngineSource(name=_name, summary=f"Debian {_vid} ({_codename}): docker.io, containerd, runc, tini",
                          release=_codename, version_id=_vid, packages=_packages, helpers=HELPERS,
                          store_tools=_tools))


_DEB_LINE = re.compile(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", re.M)


def archive_url(sources_text: str) -> str | None:
    """The Debian archive the machine's own apt sources use (one-line `deb URL SUITE` or deb822 `URIs:`), skipping
    the security archive: other releases are fetched from the same mirror. None when there is none."""
    candidates: list[tuple[str, str]] = [(m.group(1), m.group(2)) for m in _DEB_LINE.finditer(sources_text)]
    for stanza in re.split(r"\n\s*\n", sources_text):
        fields = dict(_deb822_fields(stanza))
        if fields.get("types", "").split() and "deb" not in fields["types"].split():
            continue
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split() or [""]:
                candidates.append((uri, suite))
    for uri, suite in candidates:
        if uri.startswith(("http://", "https://")) and "security" not in suite and "security" not in uri:
            return uri.rstrip("/")
    return None


def _deb822_fields(stanza: str) -> list[tuple[str, str]]:
    out = []
    for line in stanza.splitlines():
        if line.lstrip().startswith("#") or ":" not in line or line[:1].isspace():
            continue
        key, _, value = line.partition(":")
        out.append((key.strip().lower(), value.strip()))
    return out


def sources_line(url: str, codename: str) -> str:
    """The one apt source of a private configuration: signatures checked against the machine's archive keyring."""
    return f"deb [signed-by={ARCHIVE_KEYRING}] {url} {codename} main\n"
