#!/bin/sh
# Reference solution of exercises/user-bridge.yaml: the commands a student types on node1.
# Usage: INVENTORY=inventories/sandbox.yaml sh exercises/solutions/user-bridge.sh
set -eu
. "$(dirname "$0")/on.sh"
on node1 docker network create --driver bridge --subnet 10.10.1.0/24 --gateway 10.10.1.1 \
    --ip-range 10.10.1.128/25 -o com.docker.network.bridge.name=br-web web
on node1 docker run -d --name web1 --network web --ip 10.10.1.10 "$IMAGE" sleep 1d
on node1 docker run -d --name web2 --network web "$IMAGE" sleep 1d
on node1 docker run -d --name outsider "$IMAGE" sleep 1d
on node1 docker exec web2 ping -c1 -W2 web1
