#!/bin/sh
# Reference solution of exercises/macvlan.yaml: the commands a student types on node1 and node2.
# Usage: INVENTORY=inventories/sandbox.yaml sh exercises/solutions/macvlan.sh
set -eu
. "$(dirname "$0")/on.sh"
for host in node1 node2; do
    on $host docker network create -d macvlan -o parent=eth1 --subnet 10.20.0.0/24 --gateway 10.20.0.254 lan
done
on node1 docker run -d --name m1 --network lan --ip 10.20.0.11 "$IMAGE" sleep 1d
on node2 docker run -d --name m2 --network lan --ip 10.20.0.12 "$IMAGE" sleep 1d
on node1 docker exec m1 ping -c1 -W2 10.20.0.12
