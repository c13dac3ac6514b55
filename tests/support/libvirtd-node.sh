#!/usr/bin/env bash
# A system-mode libvirtd of its own for integration tests, in a private mount namespace
# with every folder under DIR (../shared/design/environment.md, "Two hypervisor nodes"):
# it never touches the machine's own libvirt state, and several can run side by side.
#
#   libvirtd-node.sh start DIR   starts it, prints its URI (qemu+unix:///system?socket=...)
#   libvirtd-node.sh stop DIR    stops it and every QEMU it started
set -euo pipefail
cmd=${1:?start|stop}
W=$(realpath -m "${2:?DIR}")

start() {
  mkdir -p "$W"/{run,lib,cache,log,etc}
  # The mount points must exist in the machine's namespace.
  mkdir -p /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
  # libvirt's Debian build resolves this user and group even when QEMU runs as root.
  getent group kvm > /dev/null || groupadd -r kvm
  getent group libvirt-qemu > /dev/null || groupadd -r libvirt-qemu
  id libvirt-qemu > /dev/null 2>&1 || useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
  printf 'host_uuid = "%s"\n' "$(cat /proc/sys/kernel/random/uuid)" > "$W/etc/libvirtd.conf"
  # root QEMU, no cgroups, stdio to files (no virtlogd): what runs in these sandboxes.
  printf 'user = "root"\ngroup = "root"\nstdio_handler = "file"\ncgroup_controllers = [ ]\n' > "$W/etc/qemu.conf"
  unshare -m --propagation private sh -c "
    mount --bind '$W/run' /run/libvirt && mount --bind '$W/lib' /var/lib/libvirt &&
    mount --bind '$W/etc' /etc/libvirt && mount --bind '$W/cache' /var/cache/libvirt &&
    mount --bind '$W/log' /var/log/libvirt && exec libvirtd -d -p '$W/libvirtd.pid'"
  local uri="qemu+unix:///system?socket=$W/run/libvirt-sock"
  for _ in $(seq 1 100); do
    # Up means answering: the socket appears before the drivers have initialised.
    if [[ -S "$W/run/libvirt-sock" ]] && virsh -q -c "$uri" version > /dev/null 2>&1; then
      echo "$uri"
      return 0
    fi
    sleep 0.1
  done
  echo "libvirtd-node: libvirtd did not come up; see $W/log" >&2
  exit 1
}

stop() {
  if [[ -s "$W/libvirtd.pid" ]]; then
    pid=$(cat "$W/libvirtd.pid")
    kill "$pid" 2> /dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2> /dev/null || true
  fi
  # QEMU processes of this node (their pid files live under DIR/run).
  for f in "$W"/run/qemu/*.pid; do
    [[ -e "$f" ]] && kill -9 "$(cat "$f")" 2> /dev/null || true
  done
  return 0
}

"$cmd"
