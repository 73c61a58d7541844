#!/usr/bin/env bash
# Starts Debian's libvirtd (the reference implementation) on private sockets in
# /run/libvirt-ref, so differential tests can compare ironvirt with it on the
# same machine without touching the default /run/libvirt paths.
#
#   scripts/reference-libvirtd.sh        start it (no-op when it already answers)
#   scripts/reference-libvirtd.sh stop   stop it
set -euo pipefail
dir=/run/libvirt-ref
conf=/etc/libvirt-ref
sock=$dir/libvirt-sock
if [[ ${1:-} == stop ]]; then
  for f in "$dir/libvirtd.pid" "$dir/virtlogd.pid"; do
    [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null || true
  done
  exit 0
fi
mkdir -p "$dir"
# libvirtd's QEMU driver needs virtlogd to start guests; keep one running.
if ! pgrep -x virtlogd >/dev/null; then
  virtlogd -d -p "$dir/virtlogd.pid"
fi
if [[ -S $sock ]] && virsh -c "test+unix:///default?socket=$sock" uri >/dev/null 2>&1; then
  exit 0
fi
getent group kvm >/dev/null || groupadd -r kvm
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
getent passwd libvirt-qemu >/dev/null || useradd -r -g libvirt-qemu -G kvm libvirt-qemu
mkdir -p "$dir" "$conf" /var/log/libvirt /var/lib/libvirt /var/cache/libvirt /etc/libvirt
cat >"$conf/libvirtd.conf" <<CFG
unix_sock_dir = "$dir"
unix_sock_group = "root"
unix_sock_rw_perms = "0770"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:/var/log/libvirt/libvirtd-ref.log"
CFG
# libvirt's QEMU driver reads its configuration from this fixed path.
[[ -f /etc/libvirt/qemu.conf ]] || printf 'user = "root"\ngroup = "root"\nsecurity_driver = "none"\n' >/etc/libvirt/qemu.conf
libvirtd -d -f "$conf/libvirtd.conf" -p "$dir/libvirtd.pid"
for _ in $(seq 200); do
  if [[ -S $sock ]] && virsh -c "test+unix:///default?socket=$sock" uri >/dev/null 2>&1; then
    exit 0
  fi
  sleep 0.1
done
echo "reference libvirtd did not come up; see /var/log/libvirt/libvirtd-ref.log" >&2
exit 1
