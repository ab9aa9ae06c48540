#!/bin/sh
# Reference solution of exercises/single-host-modes.yaml: the commands a student types on node1.
# Usage: INVENTORY=inventories/sandbox.yaml sh exercises/solutions/single-host-modes.sh
set -eu
. "$(dirname "$0")/on.sh"
on node1 docker run -d --name web -p 8080:80 "$IMAGE" httpd -f -p 80
on node1 docker run -d --name hostnet --network host "$IMAGE" sleep 1d
on node1 docker run -d --name nonet --network none "$IMAGE" sleep 1d
on node1 docker run -d --name sidecar --network container:web "$IMAGE" sleep 1d
