#!/bin/sh
# Re-records the QMP fixtures from the QEMU binaries installed on this host.
set -e
cd "$(dirname "$0")/.."
exec cargo test -p ironvirt-qemu --test record -- --ignored --nocapture
