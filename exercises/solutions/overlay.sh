#!/bin/sh
# Reference solution of exercises/overlay.yaml: the commands a student types on node1 and node2.
# Usage: INVENTORY=inventories/sandbox.yaml sh exercises/solutions/overlay.sh
# ADDR1: node1's underlay address (default: read from its eth1).
set -eu
. "$(dirname "$0")/on.sh"
ADDR1=${ADDR1:-$(on node1 ip -o -4 addr show dev eth1 | awk '{print $4}' | cut -d/ -f1)}
on node1 docker swarm init --advertise-addr "$ADDR1"
token=$(on node1 docker swarm join-token -q worker)
on node2 docker swarm join --advertise-addr eth1 --token "$token" "$ADDR1:2377"
on node1 docker network create -d overlay --attachable --subnet 10.30.0.0/24 ov
on node1 docker run -d --name o1 --network ov "$IMAGE" sleep 1d
on node2 docker run -d --name o2 --network ov "$IMAGE" sleep 1d
on node1 docker exec o1 ping -c1 -W5 o2
