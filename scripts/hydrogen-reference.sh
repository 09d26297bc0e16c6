#!/usr/bin/env bash
# Measures every sample of a Hydrogen drum kit with the reference tools and writes the
# fixture that audio/src/hydrogen.rs checks smpl's analysis against:
#
#   audio/tests/fixtures/hydrogen_<kit>.tsv
#
# Columns: file name, frames, sample rate, channels and bits per sample (soxi), sample peak
# in dBFS ("Pk lev dB" of `sox FILE -n stats`, the overall column) and integrated loudness
# in LUFS (ffmpeg's ebur128 filter; -70.0 is its floor, printed when nothing is measurable).
#
# Usage: scripts/hydrogen-reference.sh [KIT]   (default GMRockKit)
# Needs: apt-get install -y hydrogen-data sox libsox-fmt-all ffmpeg   (scripts/setup.sh)
set -euo pipefail

kit="${1:-GMRockKit}"
kits=/usr/share/hydrogen/data/drumkits
dir="$kits/$kit"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/audio/tests/fixtures/hydrogen_${kit// /_}.tsv"

for tool in soxi sox ffmpeg; do
  command -v "$tool" >/dev/null || {
    echo "error: $tool is missing; run scripts/setup.sh" >&2
    exit 1
  }
done
[ -d "$dir" ] || {
  echo "error: no kit at $dir; install hydrogen-data (scripts/setup.sh) or pick one of:" >&2
  ls "$kits" >&2 2>/dev/null || true
  exit 1
}

# Integrated loudness from ffmpeg's ebur128 summary.
lufs() {
  ffmpeg -nostdin -nostats -hide_banner -i "$1" -map 0:a -af ebur128 -f null - 2>&1 |
    awk '/Summary:/ { s = 1 } s && $1 == "I:" { print $2; exit }'
}

# Overall sample peak from sox stats.
peak() {
  sox "$1" -n stats 2>&1 </dev/null | awk '/^Pk lev dB/ { print $4; exit }'
}

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
{
  echo "# Reference measurements of the Hydrogen kit '$kit' ($dir)."
  echo "# Made by scripts/hydrogen-reference.sh with hydrogen-data $(dpkg-query -W -f='${Version}' hydrogen-data 2>/dev/null || echo '?'), $(sox --version 2>&1 | sed 's/.*SoX /sox /'), $(ffmpeg -version | awk 'NR == 1 { print "ffmpeg " $3 }')."
  printf 'file\tframes\tsample_rate\tchannels\tbit_depth\tpeak_dbfs\tlufs\n'
  find "$dir" -maxdepth 1 -type f \( -iname '*.wav' -o -iname '*.flac' -o -iname '*.aif' \
    -o -iname '*.aiff' -o -iname '*.ogg' -o -iname '*.mp3' \) -print0 |
    LC_ALL=C sort -z |
    while IFS= read -r -d '' f; do
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(basename "$f")" "$(soxi -s "$f" </dev/null)" \
        "$(soxi -r "$f" </dev/null)" "$(soxi -c "$f" </dev/null)" "$(soxi -b "$f" </dev/null)" \
        "$(peak "$f")" "$(lufs "$f")"
    done
} >"$tmp"
# Every row must be complete: a tool that failed leaves an empty field.
if ! awk -F'\t' '!/^#/ && (NF != 7 || /\t\t|\t$/) { bad = 1; print "incomplete row: " $0 > "/dev/stderr" }
    END { exit bad }' "$tmp"; then
  echo "error: some measurements failed; $out left unchanged" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
mv "$tmp" "$out"
trap - EXIT
echo "wrote $(($(wc -l <"$out") - 3)) samples to $out"
