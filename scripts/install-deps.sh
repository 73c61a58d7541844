#!/usr/bin/env bash
# Installs the Debian packages the test-suite needs: the real libvirt client
# (virsh) and daemon used as the reference in differential tests, QEMU, and
# python3-libvirt. Idempotent; does nothing when everything is present.
set -euo pipefail
need=()
command -v virsh >/dev/null || need+=(libvirt-clients)
command -v libvirtd >/dev/null || need+=(libvirt-daemon libvirt-daemon-driver-qemu)
command -v virtlogd >/dev/null || need+=(libvirt-daemon)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
/usr/bin/python3 -c 'import libvirt' 2>/dev/null || need+=(python3-libvirt)
if ((${#need[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  echo "install-deps: missing ${need[*]} and not root; install them first" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# Debian's qemu-system-x86 refuses a newer qemu-utils from backports: take the
# qemu-utils that matches the qemu-system-x86 candidate so both install.
qv=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
extra=()
if [[ -n $qv && $qv != "(none)" ]]; then
  extra+=("qemu-utils=$qv")
fi
apt-get install -y -qq --allow-downgrades --no-install-recommends "${need[@]}" "${extra[@]}" >/dev/null
