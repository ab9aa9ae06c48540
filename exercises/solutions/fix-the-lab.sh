#!/bin/sh
# Reference solution of exercises/fix-the-lab.yaml: what a student types to repair any fault that
# `labctl break --random` hands out (vxlan-blocked, container-stopped, container-disconnected, wrong-subnet),
# found the way a student finds it: by looking, on each docker host.
# Usage: INVENTORY=inventories/sandbox.yaml sh exercises/solutions/fix-the-lab.sh
set -eu
. "$(dirname "$0")/on.sh"
for host in node1 node2; do
    # a firewall rule that drops VXLAN (UDP 4789): iptables -S shows it
    on "$host" 'while iptables -D INPUT -p udp --dport 4789 -j DROP 2>/dev/null; do :; done'
    # a bridge network whose subnet covers the other host's underlay address: ip route shows it
    on "$host" 'for n in $(docker network ls --filter driver=bridge --format "{{.Name}}"); do
        [ "$n" = bridge ] && continue
        docker network inspect -f "{{range .Containers}}x{{end}}" "$n" | grep -q x || docker network rm "$n"
    done'
done
# containers stopped, or taken off a network: docker ps -a and docker inspect show it
on node1 'for c in c1 c2; do docker start "$c" >/dev/null; for n in ov mv; do
    docker inspect -f "{{json .NetworkSettings.Networks}}" "$c" | grep -q "\"$n\"" || docker network connect "$n" "$c"; done; done'
on node2 'for c in c3 c4; do docker start "$c" >/dev/null; for n in ov mv; do
    docker inspect -f "{{json .NetworkSettings.Networks}}" "$c" | grep -q "\"$n\"" || docker network connect "$n" "$c"; done; done'
