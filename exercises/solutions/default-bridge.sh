#!/bin/sh
# Reference solution of exercises/default-bridge.yaml: the commands a student types on node1.
# Usage: INVENTORY=inventories/sandbox.yaml sh exercises/solutions/default-bridge.sh
set -eu
. "$(dirname "$0")/on.sh"
on node1 docker run -d --name alpha "$IMAGE" sleep 1d
on node1 docker run -d --name beta "$IMAGE" sleep 1d
on node1 docker exec alpha ping -c1 -W2 "$(on node1 docker inspect -f '{{.NetworkSettings.IPAddress}}' beta)"
on node1 docker exec alpha ping -c1 -W2 beta || echo "as expected: no name resolution on the default bridge" >&2
