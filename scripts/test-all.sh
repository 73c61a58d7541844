#!/usr/bin/env bash
# Runs every test of ironvirt from a fresh clone: installs what the tests need
# (Debian's virsh, libvirtd, QEMU and python3-libvirt as the reference),
# starts the reference libvirtd on private sockets, then runs the whole
# workspace's tests and a bounded fuzzing run of the protocol decoder.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/reference-libvirtd.sh
export IRONVIRT_REFERENCE_SOCK=/run/libvirt-ref/libvirt-sock
# Integration tests run the real binaries: build them first.
cargo build --workspace --bins
cargo test --workspace --no-fail-fast
# A bounded libFuzzer run of the packet decoder (the seeded random-input
# test above already runs in every `cargo test`).
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
fuzz/run.sh "${IRONVIRT_FUZZ_SECONDS:-60}"
