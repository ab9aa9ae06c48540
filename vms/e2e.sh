#!/usr/bin/env bash
# `make vms-e2e`: the seed lab on three booted VMs (store, node1, node2) through the README's own commands.
#
#   box        vms/build-box.sh: labctl's Debian 12 box, built locally, cached until its recipe changes
#   boot       vagrant up --provider=libvirt (KVM where usable, else QEMU's software emulation)
#   provision  fab provision: docker.io and etcd from the Debian archive, fetched by the controller over SSH
#   up         fab up, then fab up again (must change nothing)
#   verify     fab verify --junit (kept in $OUT)
#   down       fab down, then vagrant destroy -f
#
# Every VM, libvirt network and daemon this target started is removed at the end, whatever happened, and also at the
# start (what an earlier, killed run left). Needs root (libvirt's system daemon, debootstrap). Not part of `make test`.
#
# Safety: both libvirt networks are isolated (no forward, no NAT): the VMs reach each other and this machine only.
# Their packages are fetched by the controller (inventories/vagrant.yaml: packages: controller), from the hosts named
# in the VMs' apt sources (deb.debian.org): that and debootstrap's downloads are the only outside traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

OUT=${LABCTL_E2E_OUT:-$repo/vms-e2e}
VENV=${VENV:-.venv}
STATE=/run/labctl-vms                      # PID files of the libvirt daemons this target started
export LABCTL_INVENTORY=inventories/vagrant.yaml
export LABCTL_PLAYBOOK=${PLAYBOOK:-playbooks/seed-overlay.yaml}   # make vms-e2e PLAYBOOK=playbooks/seed-overlay-consul.yaml
export LABCTL_NODES=2
export VAGRANT_DEFAULT_PROVIDER=libvirt
export LIBVIRT_DEFAULT_URI=qemu:///system
export PATH="$repo/$VENV/bin:$PATH"
APT_VMS="vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients dnsmasq-base qemu-system-x86 qemu-utils \
debootstrap debian-archive-keyring fdisk e2fsprogs python3-venv"
DOMAINS_RE='^labctl-(store|node[0-9]+)$'
NETWORKS="labctl-mgmt labctl-underlay"

say() { printf '\n== %s\n' "$*"; }
die() { printf 'vms-e2e: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: libvirt's system daemon, debootstrap and the VM networks need it"
mkdir -p "$OUT" "$STATE"
: >"$OUT/times.tsv"
result=failed

# step NAME COMMAND...: run, show the output, keep it in $OUT/NAME.log, record the seconds.
step() {
    local name=$1; shift
    say "$name: $*"
    local t0=$SECONDS rc=0
    "$@" 2>&1 | tee "$OUT/$name.log" || rc=${PIPESTATUS[0]}
    printf '%s\t%d\t%d\n' "$name" $((SECONDS - t0)) "$rc" >>"$OUT/times.tsv"
    printf -- '-- %s: %d s, exit %d\n' "$name" $((SECONDS - t0)) "$rc"
    return "$rc"
}

libvirt_answers() { virsh version >/dev/null 2>&1; }

# Without udev (containers), /dev/kvm stays root:root 0600 instead of Debian's root:kvm 0660. libvirt's QEMU probe
# then finds KVM, but its check "can the qemu user open /dev/kvm" says no, so libvirt throws its cache away and
# probes QEMU again on nearly every call (4 s each; measured here: 4.0 s per `virsh domcapabilities`, 0.01 s with
# 0660). For this run /dev/kvm gets what the udev rule would give; the old owner and mode are written down first
# and put back at the end (also by the next run, after a crash).
KVM_RECORD=$STATE/dev-kvm.orig
kvm_like_udev() {
    [ -c /dev/kvm ] && getent group kvm >/dev/null || return 0
    [ "$(stat -c %G:%a /dev/kvm)" = kvm:660 ] && return 0
    [ -f "$KVM_RECORD" ] || stat -c '%U:%G %a' /dev/kvm >"$KVM_RECORD"
    chgrp kvm /dev/kvm && chmod 660 /dev/kvm
    echo "/dev/kvm: root:kvm 0660 for this run, as Debian's udev rule sets it (was $(cat "$KVM_RECORD"))"
}
kvm_restore() {
    [ -f "$KVM_RECORD" ] || return 0
    local owner mode
    read -r owner mode <"$KVM_RECORD"
    chown "$owner" /dev/kvm && chmod "$mode" /dev/kvm && rm -f "$KVM_RECORD"
    echo "/dev/kvm: back to $owner $mode"
}

start_libvirt() {
    kvm_like_udev
    if libvirt_answers; then echo "libvirt is running"; return 0; fi
    if [ -d /run/systemd/system ]; then
        systemctl start libvirtd
    else
        # No systemd here: start the two daemons ourselves and keep their PIDs, to stop exactly them at the end.
        mkdir -p /run/libvirt
        pgrep -x virtlogd >/dev/null || virtlogd --daemon --pid-file "$STATE/virtlogd.pid"
        libvirtd --daemon --pid-file "$STATE/libvirtd.pid"
    fi
    for _ in $(seq 1 30); do libvirt_answers && { virsh version | tail -n 1; return 0; }; sleep 1; done
    die "libvirtd did not answer within 30 s"
}

stop_our_daemons() {
    local d pid
    for d in libvirtd virtlogd; do
        [ -f "$STATE/$d.pid" ] || continue
        pid=$(cat "$STATE/$d.pid")
        if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$d" ]; then
            kill "$pid"
            for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
            echo "stopped $d ($pid), which this target started"
        fi
        rm -f "$STATE/$d.pid"
    done
}

# Everything of the lab's VMs in libvirt: Vagrant's own destroy first, then what Vagrant no longer knows (a run
# killed before Vagrant recorded its machines, or a removed .vagrant directory).
remove_vms() {
    libvirt_answers || return 0
    if [ -d .vagrant/machines ]; then
        timeout 600 vagrant destroy -f || echo "vagrant destroy failed; removing the domains directly"
    fi
    local dom net vol
    for dom in $(virsh list --all --name | grep -E "$DOMAINS_RE" || true); do
        echo "removing domain $dom"
        virsh destroy "$dom" >/dev/null 2>&1 || true
        virsh undefine "$dom" --remove-all-storage --nvram >/dev/null 2>&1 \
            || virsh undefine "$dom" --remove-all-storage >/dev/null
    done
    # A run killed between creating a VM's disk and defining the VM leaves the disk alone in the pool.
    if virsh pool-info default >/dev/null 2>&1; then
        for vol in $(virsh vol-list default | awk 'NR>2 {print $1}' | grep -E '^labctl-(store|node[0-9]+)\.img$' || true); do
            echo "removing disk $vol"
            virsh vol-delete "$vol" --pool default >/dev/null
        done
    fi
    for net in $NETWORKS; do
        if virsh net-info "$net" >/dev/null 2>&1; then
            echo "removing network $net"
            virsh net-destroy "$net" >/dev/null 2>&1 || true
            virsh net-undefine "$net" >/dev/null
        fi
    done
    rm -rf .vagrant/machines/store .vagrant/machines/node*
}

# Box images of older recipes in libvirt's pool (vagrant-libvirt keeps one copy per box to clone VMs from).
remove_old_box_volumes() {
    local keep=$1 vol
    virsh pool-info default >/dev/null 2>&1 || return 0
    for vol in $(virsh vol-list default 2>/dev/null | awk 'NR>2 && $1 ~ /^labctl-debian12-/ {print $1}'); do
        case $vol in "$keep"_vagrant_box_image_*) ;; *) echo "removing old box volume $vol"; virsh vol-delete "$vol" --pool default >/dev/null;; esac
    done
}

# libvirt adds its chains (LIBVIRT_INP, _OUT, _FWI, _FWO, _FWX, _PRT) and the jumps to them on first use, and leaves
# them behind, empty, when it stops. Removed only when this target started libvirtd, and only when empty.
remove_libvirt_chains() {
    local tool table chain rule
    for tool in iptables ip6tables; do
        command -v "$tool" >/dev/null || continue
        for table in filter nat mangle; do
            for chain in LIBVIRT_INP LIBVIRT_OUT LIBVIRT_FWI LIBVIRT_FWO LIBVIRT_FWX LIBVIRT_PRT; do
                "$tool" -t "$table" -S "$chain" >/dev/null 2>&1 || continue
                [ "$("$tool" -t "$table" -S "$chain" | wc -l)" = 1 ] || { echo "$tool $table $chain is not empty: kept"; continue; }
                "$tool" -t "$table" -S | grep -E -- "-j $chain\$" | sed 's/^-A /-D /' | while read -r rule; do
                    # shellcheck disable=SC2086 # the rule's words, as iptables -S printed them
                    "$tool" -t "$table" $rule
                done
                "$tool" -t "$table" -X "$chain" && echo "removed $tool $table $chain (libvirt's, empty)"
            done
        done
    done
}

finish() {
    local rc=$?
    trap - EXIT INT TERM
    say "cleanup: VMs, networks, daemons this target started"
    local t0=$SECONDS
    remove_vms || true
    if [ -f "$STATE/libvirtd.pid" ]; then
        stop_our_daemons || true
        remove_libvirt_chains || true
    fi
    kvm_restore || true
    printf 'cleanup\t%d\t0\n' $((SECONDS - t0)) >>"$OUT/times.tsv"
    say "times (also in $OUT/times.tsv; logs and verify-junit.xml in $OUT)"
    awk -F'\t' '{printf "  %-12s %6d s   exit %s\n", $1, $2, $3; total += $2} END {printf "  %-12s %6d s\n", "total", total}' "$OUT/times.tsv"
    if [ "$result" = passed ] && [ $rc = 0 ]; then
        echo "vms-e2e: PASSED: verify passed on three booted VMs, and everything is destroyed"
    else
        echo "vms-e2e: FAILED (exit $rc): see the step's log in $OUT"
        [ $rc != 0 ] || rc=1
    fi
    exit $rc
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The VMs' only way out would be a default route; there must be none (both libvirt networks are isolated).
check_isolated() {
    local m routes kind
    for m in store $(seq -f 'node%g' 1 "$LABCTL_NODES"); do
        routes=$(vagrant ssh "$m" --no-tty -c 'ip -4 route; ip -6 route show default' 2>/dev/null)
        kind=$(virsh dumpxml "labctl-$m" | sed -n "s/^<domain type='\([a-z]*\)'.*/\1/p" | head -n 1)
        echo "$m: libvirt domain type $kind$([ "$kind" = qemu ] && echo ' (QEMU software emulation)')"
        echo "$m: routes: $(echo "$routes" | tr '\n' ';')"
        if echo "$routes" | grep -q '^default'; then echo "$m has a default route: not isolated"; return 1; fi
    done
}

# Only what this path needs (not the sandbox tests' packages): the VM tools, and labctl in its virtualenv.
deps() {
    local missing="" p
    for p in $APT_VMS; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "installing:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
    make venv
}

step deps deps
step libvirt start_libvirt
step leftovers remove_vms
step box vms/build-box.sh
box=$(tail -n 1 "$OUT/box.log")
export LABCTL_BOX=$box
remove_old_box_volumes "$box"
step boot vagrant up --provider=libvirt --no-tty
step isolation check_isolated
step provision fab provision
step up fab up
step up-again fab up
grep -q "no changes" "$OUT/up-again.log" || die "the second fab up changed something (see $OUT/up-again.log)"
step verify fab verify --junit "$OUT/verify-junit.xml" --json "$OUT/verify.json"
step down fab down
step destroy vagrant destroy -f --no-tty
result=passed
