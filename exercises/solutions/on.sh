# Sourced by the reference solutions: `on HOST COMMAND...` runs COMMAND on HOST over SSH, as a student typing it
# in a shell on that host would (labctl ssh; no labctl state is used or changed).
# INVENTORY (default inventories/sandbox.yaml), IMAGE (default labctl/busybox:latest) and LABCTL may be set.
INVENTORY=${INVENTORY:-inventories/sandbox.yaml}
IMAGE=${IMAGE:-labctl/busybox:latest}
LABCTL=${LABCTL:-labctl}
on() {
    host=$1
    shift
    echo "[$host] \$ $*" >&2
    $LABCTL ssh -i "$INVENTORY" "$host" -- "$@"
}
