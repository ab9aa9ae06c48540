#!/usr/bin/env bash
# Build labctl's Debian 12 box for vagrant-libvirt, locally (no Vagrant Cloud), and add it to Vagrant.
#
#   vms/build-box.sh            # prints the box name on its last line, e.g. labctl-debian12-3f2a9c41d0e7
#
# The box is named after the SHA-256 of this recipe (this file and Vagrant's insecure public key): it is built only
# when no box of that name is in `vagrant box list`, and older labctl-debian12-* boxes are removed then.
#
# Recipe: debootstrap a minimal bookworm (kernel, systemd, openssh-server, sudo, ifupdown + DHCP), add the vagrant
# user with Vagrant's insecure key (Vagrant replaces it at the first `vagrant up`), write an ext4 file system into
# partition 1 of a raw disk image with `mke2fs -d` (no loop device, no mount), boot that disk once under QEMU with
# the kernel given directly so that the VM installs GRUB on its own disk and powers off, then convert to qcow2 and
# pack box.img + metadata.json + Vagrantfile. Needs root, debootstrap, qemu-system-x86, qemu-utils, fdisk.
# Outside traffic: debootstrap's downloads from the Debian archive (MIRROR) only; the build VM has no network.
set -euo pipefail

MIRROR=${LABCTL_BOX_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
CACHE=${LABCTL_VM_CACHE:-/var/cache/labctl/vms}
DISK_MB=8192                 # virtual size of the box's disk
BUILD_TIMEOUT=900            # seconds for the boot that installs GRUB (software emulation: about 1-2 minutes)
PACKAGES=openssh-server,linux-image-amd64,systemd-sysv,udev,kmod,initramfs-tools,ifupdown,isc-dhcp-client,iproute2,\
netbase,sudo,dbus,procps,grub-pc-bin,grub2-common,ca-certificates

here=$(cd "$(dirname "$0")" && pwd)
say() { printf '[box] %s\n' "$*" >&2; }
die() { printf '[box] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap and the chroot need it)"
for tool in debootstrap qemu-system-x86_64 qemu-img sfdisk mke2fs vagrant sha256sum; do
    command -v "$tool" >/dev/null || die "$tool is missing (make vms-e2e installs: debootstrap qemu-system-x86 qemu-utils fdisk e2fsprogs vagrant)"
done
insecure_key=$(find /usr/share /opt/vagrant /usr/lib -path '*vagrant*/keys/vagrant.pub' 2>/dev/null | head -n 1 || true)
[ -n "$insecure_key" ] || die "Vagrant's insecure public key (keys/vagrant.pub) not found: is Vagrant installed?"

recipe=$(cat "$0" "$insecure_key" | sha256sum | cut -c1-12)
name=labctl-debian12-$recipe
if vagrant box list --machine-readable 2>/dev/null | grep -q ",box-name,$name\$"; then
    say "$name is already in Vagrant (recipe unchanged): not rebuilt"
    echo "$name"
    exit 0
fi

# debootstrap mounts /proc (and more) inside the root it builds; a build killed during debootstrap leaves them.
unmount_under() {
    local m
    for m in $(awk -v d="$1/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m" || true; done
}

mkdir -p "$CACHE"
# An earlier build killed half-way leaves its directory, maybe mounts and its QEMU: stop that QEMU by its PID file (a
# process this script started), unmount, then remove the directory.
for old in "$CACHE"/build.*; do
    [ -d "$old" ] || continue
    if [ -f "$old/qemu.pid" ]; then
        pid=$(cat "$old/qemu.pid")
        if [ -n "$pid" ] && grep -q qemu "/proc/$pid/comm" 2>/dev/null; then kill "$pid" 2>/dev/null || true; sleep 1; fi
    fi
    say "removing $old, left by an earlier build that did not finish"
    unmount_under "$old"
    rm -rf --one-file-system "$old"
done

work=$CACHE/build.$$
mkdir -p "$work"
cleanup() {
    if [ -f "$work/qemu.pid" ]; then kill "$(cat "$work/qemu.pid")" 2>/dev/null || true; fi
    unmount_under "$work"
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT
root=$work/root
t0=$SECONDS

say "debootstrap $SUITE from $MIRROR (packages are cached in $CACHE/debs)"
mkdir -p "$CACHE/debs"
debootstrap --variant=minbase --cache-dir="$CACHE/debs" --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" \
    >"$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }

say "configuring the root file system"
echo labctl-box >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tlabctl-box\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
echo 'LABEL=root / ext4 defaults,errors=remount-ro 0 1' >"$root/etc/fstab"
cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
cat >"$root/etc/network/interfaces" <<'EOF'
# eth0: the provider's management network (DHCP). Vagrant adds the private network (eth1) below.
auto lo
iface lo inet loopback

auto eth0
iface eth0 inet dhcp
EOF
cat >"$root/etc/default/grub" <<'EOF'
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200 net.ifnames=0 biosdevname=0"
GRUB_TERMINAL="console serial"
GRUB_DISABLE_OS_PROBER=true
EOF
chroot "$root" useradd --create-home --shell /bin/bash vagrant
install -d -m 700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
install -m 600 -o 1000 -g 1000 "$insecure_key" "$root/home/vagrant/.ssh/authorized_keys"
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"$root/etc/sudoers.d/vagrant"
chmod 440 "$root/etc/sudoers.d/vagrant"

# Every VM made from the box gets its own SSH host keys and machine ID at its first boot.
cat >"$root/etc/systemd/system/labctl-ssh-hostkeys.service" <<'EOF'
[Unit]
Description=SSH host keys of this VM (labctl box: made at the first boot)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
RequiredBy=ssh.service
EOF
# The build's own boot: install GRUB on the VM's disk, make the files that must differ per VM empty, power off.
cat >"$root/etc/systemd/system/labctl-box-finish.service" <<'EOF'
[Unit]
Description=labctl box: install the boot loader, then power off (runs once, during the build)
ConditionPathExists=/etc/labctl-box-finish
After=local-fs.target ssh.service

[Service]
Type=oneshot
StandardOutput=journal+console
ExecStart=/bin/sh -ec 'grub-install --target=i386-pc /dev/vda; grub-mkconfig -o /boot/grub/grub.cfg; \
  rm -f /etc/labctl-box-finish /etc/ssh/ssh_host_* /var/lib/dhcp/*.leases; : > /etc/machine-id; \
  rm -rf /var/log/journal/*; sync; echo LABCTL-BOX-FINISHED > /dev/ttyS0'
ExecStopPost=/bin/systemctl --no-block poweroff

[Install]
WantedBy=multi-user.target
EOF
touch "$root/etc/labctl-box-finish"
chroot "$root" systemctl enable labctl-ssh-hostkeys.service labctl-box-finish.service >/dev/null 2>&1
rm -f "$root"/etc/ssh/ssh_host_*
: >"$root/etc/machine-id"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/tmp/* "$root"/var/tmp/*
kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n 1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -n 1)
cp "$kernel" "$work/vmlinuz"
cp "$initrd" "$work/initrd.img"
say "root file system ready after $((SECONDS - t0)) s"

say "disk: a DOS partition table and partition 1 made by mke2fs -d (no loop device)"
truncate -s "${DISK_MB}M" "$work/disk.raw"
echo 'start=2048, type=83, bootable' | sfdisk --quiet "$work/disk.raw"
mke2fs -q -t ext4 -L root -d "$root" -E offset=1048576 "$work/disk.raw" "$((DISK_MB - 1))M"
rm -rf --one-file-system "$root"

say "booting the disk once under QEMU (software emulation) to install GRUB; at most ${BUILD_TIMEOUT} s"
accel=tcg
if [ -w /dev/kvm ] && grep -qE '\b(vmx|svm)\b' /proc/cpuinfo; then accel=kvm; fi
qemu-system-x86_64 -machine "q35,accel=$accel" -cpu max -m 1024 -smp 2 \
    -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
    -append "root=/dev/vda1 rw console=ttyS0,115200 net.ifnames=0" \
    -drive "file=$work/disk.raw,format=raw,if=virtio" -nic none -display none -no-reboot \
    -serial "file:$work/console.log" -daemonize -pidfile "$work/qemu.pid"
pid=$(cat "$work/qemu.pid")
deadline=$((SECONDS + BUILD_TIMEOUT))
while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
        tail -n 30 "$work/console.log" >&2
        die "the build VM did not power off within ${BUILD_TIMEOUT} s (console above)"
    fi
    sleep 2
done
rm -f "$work/qemu.pid"
grep -q LABCTL-BOX-FINISHED "$work/console.log" || { tail -n 30 "$work/console.log" >&2; die "GRUB was not installed (console above)"; }
say "GRUB installed after $((SECONDS - t0)) s"

say "packing the box"
qemu-img convert -O qcow2 "$work/disk.raw" "$work/box.img"
rm -f "$work/disk.raw"
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %d}\n' $((DISK_MB / 1024)) >"$work/metadata.json"
cat >"$work/Vagrantfile" <<'EOF'
# labctl's Debian 12 box (vms/build-box.sh): GRUB on /dev/vda, eth0 by DHCP, vagrant user with sudo.
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |libvirt|
    libvirt.disk_bus = "virtio"
  end
end
EOF
(cd "$work" && tar -cf "$work/$name.box" metadata.json Vagrantfile box.img)
vagrant box add --force --name "$name" "$work/$name.box" >"$work/box-add.log" 2>&1 \
    || { tail -n 20 "$work/box-add.log" >&2; die "vagrant box add failed"; }
for old in $(vagrant box list --machine-readable 2>/dev/null | sed -n 's/.*,box-name,\(labctl-debian12-.*\)$/\1/p' | sort -u); do
    [ "$old" = "$name" ] || vagrant box remove --force --all "$old" >/dev/null 2>&1 || true
done
say "box $name built in $((SECONDS - t0)) s"
echo "$name"
