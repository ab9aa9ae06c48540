"""The cluster store (etcd or Consul) as the overlay's control plane: Docker Engine 20.10 and older.
plan: the store's commands and the plane's pure half; executor: starting the store and waiting for the overlays."""

from labctl.planes.traits import Traits

TRAITS = Traits(name="kvstore", summary="kvstore (cluster store; Docker Engine 20.10 or older on every docker host)",
                store="required", docker_overlay=True, auto=0)
