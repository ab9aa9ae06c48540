"""Providers as plug-ins: the two registries (inventory rules, executor half) name the same providers, and a
provider defined here, in the test suite, works through both by registering one object in each."""

from __future__ import annotations

import ipaddress

import pytest

from labctl import cli
from labctl.model import providers as rules_registry
from labctl.model.checks import Collector
from labctl.model.inventory import parse_inventory
from labctl.model.providers.base import ProviderRules
from labctl.providers import registry
from labctl.providers.base import Endpoint, Provider


def test_both_registries_name_the_same_providers() -> None:
    assert set(rules_registry.RULES) == set(registry.PROVIDERS) == {"sandbox", "static", "vagrant"}


class StubRules(ProviderRules):
    """Hosts numbered from .100 of a fixed subnet; an own top-level field `stub: {zone: NAME}`."""

    name = "stub"
    subnet_default = "203.0.113.0/24"
    host_ssh = False
    own_fields = ("stub",)
    summary = "the stub makes"

    def default_address(self, c: Collector, host: str, fld: str, subnet: ipaddress.IPv4Network | None) -> str | None:
        assert subnet is not None
        return str(subnet.network_address + 100 + int(host[-1]))

    def parse_own(self, c: Collector, field: str, value: object, source: str) -> object:
        return c.mapping(value, "stub", ("zone",)).get("zone", "a")


class StubProvider(Provider):
    name = "stub"

    def endpoints(self, inv):  # type: ignore[no-untyped-def]
        return [Endpoint(h.name, h.address or "", 2222, "lab", None, None, h.roles) for h in inv.hosts]


@pytest.fixture
def stub(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setitem(rules_registry.RULES, "stub", StubRules())
    monkeypatch.setitem(registry.PROVIDERS, "stub", StubProvider())


def test_a_provider_from_the_test_suite_works_through_both_halves(stub, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    text = "provider: stub\nstub: {zone: b}\nhosts:\n  node1: {roles: [docker]}\n  node2: {roles: [docker]}\n"
    inv = parse_inventory(text, "s.yaml")
    assert [h.address for h in inv.hosts] == ["203.0.113.101", "203.0.113.102"]
    assert [(e.address, e.port) for e in registry.endpoints(inv)] == [("203.0.113.101", 2222), ("203.0.113.102", 2222)]
    assert registry.service_manager(inv).__class__.__name__ == "ByHostInit", "the defaults of Provider"
    (tmp_path / "s.yaml").write_text(text)
    assert cli.main(["-q", "hosts", "-i", str(tmp_path / "s.yaml"), "--json"]) == 0
    assert '"address": "203.0.113.101"' in capsys.readouterr().out


def test_a_providers_own_field_is_refused_for_the_others(stub) -> None:  # type: ignore[no-untyped-def]
    from labctl.errors import ValidationError
    with pytest.raises(ValidationError) as err:
        parse_inventory("provider: sandbox\nstub: {zone: b}\nhosts:\n  node1: {roles: [docker]}\n", "x.yaml")
    assert "x.yaml: stub: only for provider 'stub' (this inventory's provider is 'sandbox'); remove it" in \
        err.value.render()
    with pytest.raises(ValidationError) as err:
        parse_inventory("provider: stub\nhosts:\n  node1: {roles: [docker], ssh: {user: x}}\n", "x.yaml")
    assert "hosts.node1.ssh: not used by provider 'stub': the stub makes the SSH settings" in err.value.render()
