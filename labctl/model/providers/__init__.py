"""The providers' rules for their inventory fields (pure), by provider name: the only list of providers.

A new provider is one module here (its ProviderRules) plus one line below, and its executor half in
labctl/providers/ (endpoints, and how its hosts come to exist) with one line in labctl/providers/registry.py.
"""

from __future__ import annotations

from labctl.model.providers.base import ProviderRules
from labctl.model.providers.sandbox import Sandbox
from labctl.model.providers.static import Static
from labctl.model.providers.vagrant import Vagrant

RULES: dict[str, ProviderRules] = {p.name: p for p in (Sandbox(), Static(), Vagrant())}
NAMES = tuple(RULES)
