#!/usr/bin/env bash
# Builds the labelled set that `eval` (bench/src/bin/eval.rs) scores tempo, key, root
# note and "no key on drums" against, from real recordings in Debian packages:
#   loops:  lmms-common (beats, bass loops, latin), sonic-pi-samples (loop_*), and
#           loops cut at the beat from the music of supertux-data, hedgewars-data,
#           warmux-data, wesnoth-1.16-music and other games
#           (frozen-bubble-data, extremetuxracer-data, xmoto-data, holotz-castle-data,
#           alienblaster-data, pangzero, openclonk-data, freedroidrpg-data,
#           starfighter-data, lincity-ng-data, powermanga-data, the eight games of
#           Kenta Cho: a7xpg, gunroar, mu-cade, noiz2sa, parsec47, rrootage,
#           torus-trooper, tumiki-fighters, and asc-music, drascula-music,
#           hyperrogue-music, nexuiz-music, planetblupi-music-ogg, singularity-music,
#           warzone2100-music, lugaru-data);
#   tonal:  fluid-soundfont-gm, timgm6mb-soundfont, musescore-general-soundfont-small
#           (samples with their authors' root keys), lmms-common and sonic-pi-samples
#           instruments, basses and chords;
#   drums:  hydrogen-data and hydrogen-drumkits (16 kits), the SoundFonts' drum kits,
#           sonic-pi-samples and lmms-common drum hits, and their drum loops.
# Labels come from the authors (SoundFont root keys, notes in file names) or from the
# agreement of independent tools: Debian's aubio, PyPI's essentia and madmom (see
# scripts/labelled-set/build.py). Packages are downloaded and unpacked under DATA_DIR,
# not installed; only the tools are installed.
#
# Usage: scripts/labelled-set.sh DATA_DIR [LABELS_OUT]
# Writes DATA_DIR/labels.tsv (paths relative to DATA_DIR) and copies it to LABELS_OUT
# (default bench/eval/labels.tsv, the committed copy). Idempotent and cached: a second
# run takes seconds. The first takes about 40 min on 2 cores and 9.5 GB of disk.
# Then: cargo build --release -p smpl-bench --bin eval &&
#       ./target/release/eval bench/eval/labels.tsv --data DATA_DIR
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 DATA_DIR [LABELS_OUT]" >&2
    exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(realpath -m "${2:-$HERE/../bench/eval/labels.tsv}")
DATA=$(realpath -m "$1")
mkdir -p "$DATA/debs" "$DATA/root"
export DEBIAN_FRONTEND=noninteractive
NICE="nice -n 10"

# --- tools ---------------------------------------------------------------------------------
need=()
for p in aubio-tools sox libsox-fmt-all opus-tools python3-venv python3-dev build-essential; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq "${need[@]}"
fi
PY=${PYTHON:-python3}
if ! "$DATA/venv-essentia/bin/python" -c "import essentia" 2>/dev/null; then
    $NICE "$PY" -m venv "$DATA/venv-essentia"
    $NICE "$DATA/venv-essentia/bin/pip" install -q "essentia==2.1b6.dev1389" "numpy<2"
fi
if ! "$DATA/venv-madmom/bin/python" -c "import madmom" 2>/dev/null; then
    # madmom 0.16.1 (the last release) predates Python 3.10: its shipped C files need
    # regenerating with Cython and one import needs collections.abc.
    $NICE "$PY" -m venv "$DATA/venv-madmom"
    $NICE "$DATA/venv-madmom/bin/pip" install -q "numpy==1.23.5" "cython<3" "scipy<1.12" mido setuptools wheel
    mkdir -p "$DATA/src"
    (cd "$DATA/src" &&
        "$DATA/venv-madmom/bin/pip" download -q --no-deps --no-binary :all: madmom==0.16.1 &&
        rm -rf madmom-0.16.1 && tar xzf madmom-0.16.1.tar.gz && cd madmom-0.16.1 &&
        find madmom -name "*.c" -delete &&
        sed -i 's/from collections import MutableSequence/from collections.abc import MutableSequence/' \
            madmom/processors.py &&
        $NICE "$DATA/venv-madmom/bin/pip" install -q --no-build-isolation .)
fi

# --- audio from Debian packages --------------------------------------------------------------
PKGS=(lmms-common sonic-pi-samples fluid-soundfont-gm timgm6mb-soundfont
    musescore-general-soundfont-small hydrogen-data hydrogen-drumkits frozen-bubble-data
    extremetuxracer-data xmoto-data holotz-castle-data alienblaster-data pangzero supertux-data
    hedgewars-data warmux-data wesnoth-1.16-music openclonk-data freedroidrpg-data
    starfighter-data lincity-ng-data powermanga-data a7xpg-data gunroar-data mu-cade-data noiz2sa-data
    parsec47-data rrootage-data torus-trooper-data tumiki-fighters-data asc-music drascula-music
    hyperrogue-music nexuiz-music planetblupi-music-ogg singularity-music warzone2100-music lugaru-data)
for p in "${PKGS[@]}"; do
    if ! ls "$DATA/debs/${p}"_*.deb >/dev/null 2>&1; then
        (cd "$DATA/debs" && { apt-get download -q "$p" 2>/dev/null ||
            { apt-get update -qq && apt-get download -q "$p"; }; })
    fi
    deb=$(ls "$DATA/debs/${p}"_*.deb | head -1)
    stamp="$DATA/root/.$(basename "$deb").extracted"
    if [ ! -e "$stamp" ]; then
        dpkg-deb -x "$deb" "$DATA/root"
        files=$(dpkg-deb -c "$deb" | awk '{print $6}')
        # Nexuiz keeps its music in a zip archive.
        for pk3 in $(grep 'music\.pk3$' <<<"$files" || true); do
            python3 -m zipfile -e "$DATA/root/$pk3" "$DATA/root/${pk3%.pk3}"
        done
        # Warzone 2100's music is Opus, which this SoX cannot read: decode it to FLAC.
        for opus in $(grep '\.opus$' <<<"$files" || true); do
            opusdec --quiet --force-wav --rate 44100 "$DATA/root/$opus" - 2>/dev/null |
                sox -V1 -t wav - "$DATA/root/${opus%.opus}.flac"
        done
        touch "$stamp"
    fi
done
ls "$DATA/debs" >"$DATA/packages.txt"

# --- labels ----------------------------------------------------------------------------------
$NICE "$DATA/venv-essentia/bin/python" "$HERE/labelled-set/build.py" "$DATA" 2> >(grep -v '^sox WARN' >&2)
if [ "$OUT" != "$DATA/labels.tsv" ]; then
    cp "$DATA/labels.tsv" "$OUT"
fi
echo "wrote $DATA/labels.tsv and $OUT"
