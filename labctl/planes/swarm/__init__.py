"""Swarm mode as the overlay's control plane (Docker Engine 17.06 and later). plan: facts, refusals, commands;
executor: init, join and leave."""

from labctl.planes.traits import Traits

TRAITS = Traits(name="swarm", summary="swarm (swarm mode; Docker Engine 17.06 or later, current engines included)",
                store="refused", docker_overlay=True, auto=1)
