"""A control plane that ships nowhere: the test suite registers it to prove that a plane is one package plus one
registry line (tests/unit/test_plane_plugins.py). It carries nothing; its facts and status are a marker file."""

from labctl.planes.traits import Traits

TRAITS = Traits(name="stub", summary="stub (the test suite's own plane)", store="refused", docker_overlay=False)
