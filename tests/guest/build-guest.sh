#!/usr/bin/env bash
# Builds the tiny bootable test guest (docs: ../shared/design/environment.md, "A tiny real
# guest"): Debian's kernel, and a busybox initramfs whose /init loads the virtio balloon
# driver and prints "novacron-guest counter N" to the serial console every 2 s.
#
# Usage: tests/guest/build-guest.sh [OUT_DIR]   (default: ~/.cache/novacron/guest)
# Prints OUT_DIR. Cached: a second run with the same kernel package does nothing.
# Outputs OUT_DIR/vmlinuz and OUT_DIR/initrd.gz.
set -euo pipefail
OUT=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/novacron/guest}
mkdir -p "$OUT"

pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[[ -n "$pkg" ]] || { echo "build-guest: cannot find the kernel package behind linux-image-amd64" >&2; exit 1; }
if [[ -s "$OUT/vmlinuz" && -s "$OUT/initrd.gz" && "$(cat "$OUT/kernel-package" 2>/dev/null)" == "$pkg" ]]; then
  echo "$OUT"
  exit 0
fi
command -v busybox > /dev/null && busybox --list > /dev/null 2>&1 || { echo "build-guest: needs busybox-static" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/novacron-guest-XXXXXX")
chmod 755 "$work"  # apt-get download hands the file to the _apt user
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -qq "$pkg" > /dev/null)
deb=$(ls "$work"/*.deb)
mkdir -p "$work/kernel"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/kernel" --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/virtio/*'
cp "$work"/kernel/boot/vmlinuz-* "$work/vmlinuz"

root="$work/initramfs"
mkdir -p "$root"/{bin,proc,sys,dev,lib/modules}
cp "$(command -v busybox)" "$root/bin/busybox"
# Modules in load order; Debian may ship them compressed (.ko.xz): unpack for busybox insmod.
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_balloon; do
  f=$(find "$work/kernel/lib/modules" -name "$m.ko*" | head -1)
  [[ -n "$f" ]] || continue
  case "$f" in
    *.xz) xz -dc "$f" > "$root/lib/modules/$m.ko" ;;
    *.zst) zstd -qdc "$f" > "$root/lib/modules/$m.ko" ;;
    *) cp "$f" "$root/lib/modules/$m.ko" ;;
  esac
done
cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_balloon; do
  [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
done
n=0
while true; do
  echo "novacron-guest counter $n" > /dev/ttyS0
  n=$((n + 1))
  sleep 2
done
INIT
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1 > "$work/initrd.gz")

mv "$work/vmlinuz" "$OUT/vmlinuz"
mv "$work/initrd.gz" "$OUT/initrd.gz"
echo "$pkg" > "$OUT/kernel-package"
echo "$OUT"
