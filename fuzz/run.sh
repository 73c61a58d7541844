#!/bin/sh
# Runs the `packet` fuzz target for a bounded time: fuzz/run.sh [SECONDS] (default 60).
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). libFuzzer needs nightly
# compiler flags: a nightly toolchain is used when rustup has one, otherwise
# the stable compiler is told to accept them with RUSTC_BOOTSTRAP=1.
# The corpus starts from the packets captured under
# crates/ironvirt-proto/tests/fixtures and grows in fuzz/corpus/packet.
set -eu
secs="${1:-60}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
mkdir -p corpus/packet
# Seed the corpus with every captured packet (one file per packet).
for f in ../crates/ironvirt-proto/tests/fixtures/*.txt; do
    base="$(basename "$f" .txt)"
    grep -E '^[CS] ' "$f" | cut -c3- | awk -v d="corpus/packet" -v b="$base" \
        '{ printf "%s", $0 > (d "/seed-" b "-" NR ".hex") }'
done
for h in corpus/packet/seed-*.hex; do
    [ -e "$h" ] || continue
    xxd -r -p "$h" "${h%.hex}" 2>/dev/null || python3 -c 'import sys; open(sys.argv[2],"wb").write(bytes.fromhex(open(sys.argv[1]).read()))' "$h" "${h%.hex}"
    rm -f "$h"
done
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain="+nightly"
else
    toolchain=""
    export RUSTC_BOOTSTRAP=1
fi
# shellcheck disable=SC2086
exec cargo $toolchain fuzz run packet corpus/packet -- -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048
