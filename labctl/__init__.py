"""labctl: multi-host Docker networking labs (bridge, macvlan, overlay/VXLAN) from an inventory and a playbook."""

__version__ = "0.1.0"
