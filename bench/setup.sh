#!/bin/sh
# Installs the reference tools for the import benchmark from crates.io:
# `sendme` (iroh-blobs' file sender) and `b3sum` (the BLAKE3 reference hasher).
#
# They go to target/bench-tools/bin inside the workspace, so nothing outside the
# repo changes; `cargo run --release -p smpl-bench --bin import` finds them there
# (or pass --sendme/--b3sum). Compiling sendme takes several minutes on two cores.
#
#   bench/setup.sh              install what is missing
#   SMPL_BENCH_TOOLS=DIR bench/setup.sh   install under DIR/bin instead
set -eu
root_dir=$(cd "$(dirname "$0")/.." && pwd)
tools=${SMPL_BENCH_TOOLS:-$root_dir/target/bench-tools}
mkdir -p "$tools"
for tool in b3sum sendme; do
    if [ -x "$tools/bin/$tool" ]; then
        echo "$tool: already installed at $tools/bin/$tool"
    else
        echo "$tool: installing into $tools (cargo install --locked)"
        # A separate target dir so the workspace's build cache is left alone.
        CARGO_TARGET_DIR="$tools/build" cargo install --locked --root "$tools" "$tool"
    fi
done
"$tools/bin/b3sum" --version
"$tools/bin/sendme" --version || true
