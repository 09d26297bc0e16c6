#!/usr/bin/env bash
# Interop check: a stock iroh-blobs client (`sendme receive`) downloads a free pack
# from a smpl node using the ticket `smpl share` prints, and the files must be
# byte-identical to the originals. Runs in a network namespace with only loopback,
# since stock sendme would otherwise contact public relays and DNS.
#
#   bench/setup.sh && bench/sendme-interop.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools=${SMPL_BENCH_TOOLS:-$root/target/bench-tools}
sendme="$tools/bin/sendme"
[ -x "$sendme" ] || { echo "error: $sendme missing; run bench/setup.sh" >&2; exit 1; }
cargo build --release --locked -p smpl --manifest-path "$root/Cargo.toml" >&2
smpl="$root/target/release/smpl"

if [ "${SMPL_IN_NETNS:-}" != 1 ]; then
  exec unshare -n env SMPL_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up

work=$(mktemp -d)
trap 'kill $node_pid 2>/dev/null || true; rm -rf "$work"' EXIT
export SMPL_HOME="$work/home"
pack="$work/pack"
mkdir -p "$pack/Kicks"
# A few real-sized WAV files (sox makes them; scripts/setup.sh installs sox).
for i in 1 2 3; do
  sox -n -r 44100 -b 16 -c 2 "$pack/Kicks/Kick_$i.wav" synth 0.$((i + 2)) sine $((40 + i * 10)) fade 0 0.$((i + 2)) 0.2
done
sox -n -r 48000 -b 24 -c 2 "$pack/Pad_Loop.wav" synth 4 sine 220 sine 330

"$smpl" node --no-mdns --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 > "$work/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 100); do "$smpl" id > /dev/null 2>&1 && break; sleep 0.1; done
pack_id=$("$smpl" --json publish "$pack" --title "Interop Pack" --free | sed 's/.*"pack_id":"\([0-9a-f]*\)".*/\1/')
ticket=$("$smpl" share "$pack_id")
echo "ticket: ${ticket:0:60}…"

mkdir -p "$work/recv" && cd "$work/recv"
timeout 120 "$sendme" receive "$ticket" > "$work/sendme.log" 2>&1 || { cat "$work/sendme.log"; exit 1; }
got=$(find . -type f | wc -l)
[ "$got" -eq 4 ] || { echo "FAIL: sendme wrote $got files"; find .; exit 1; }
for f in Kicks/Kick_1.wav Kicks/Kick_2.wav Kicks/Kick_3.wav Pad_Loop.wav; do
  cmp "$pack/$f" "$(find . -path "*$f" | head -1)" || { echo "FAIL: $f differs"; exit 1; }
done
echo "PASS: sendme receive downloaded all 4 files of a smpl pack, byte-identical"
