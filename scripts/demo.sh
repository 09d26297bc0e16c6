#!/usr/bin/env bash
# Runs a smpl node with demo packs in $SMPL_HOME (default /tmp/smpl-demo).
# In another terminal: SMPL_HOME=/tmp/smpl-demo target/release/smpl search kick
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p smpl
export SMPL_HOME="${SMPL_HOME:-/tmp/smpl-demo}"
exec target/release/smpl demo --no-mdns --listen /ip4/127.0.0.1/tcp/0 --listen /ip4/127.0.0.1/udp/0/quic-v1 "$@"
