"""labctl's own Linux VXLAN devices as the overlay's control plane, any engine. plan: devices wanted, found and
planned; executor: making and removing them."""

from labctl.planes.traits import Traits

TRAITS = Traits(name="vxlan", summary="vxlan (labctl's own Linux VXLAN devices, Docker's macvlan on top; any engine; "
                "names of containers on other hosts do not resolve)", store="refused", docker_overlay=False,
                own_vnis=True)
