#!/usr/bin/env bash
# Builds the labelled evaluation set for tempo and key detection from real recordings shipped
# by Debian packages, labelled by the agreement of independent reference tools:
#   tempo: Debian's aubio (`aubio tempo`) and PyPI's essentia (RhythmExtractor2013, multifeature)
#          must agree within 2 % (no octave folding); the label is their mean.
#   key:   PyPI's essentia (KeyExtractor: HPCP + key-profile matching) and PyPI's madmom
#          (CNNKeyRecognitionProcessor: a trained convolutional network) must name the same
#          tonic and mode.
# A BPM written in a file name ("..._120bpm") would take precedence; none of the packages
# used here has one. Drum-only material gets no key label; one-shots get no tempo label.
# Sources: loops and one-shots from lmms-common and sonic-pi-samples; game music from
# frozen-bubble-data, extremetuxracer-data, xmoto-data, holotz-castle-data, alienblaster-data,
# pangzero, supertux-data, hedgewars-data and warmux-data (packages are only downloaded and
# unpacked under DATA_DIR, not installed).
# Loops shorter than 20 s are tiled (repeated whole) before the reference tools see them,
# since those tools need several bars; the detector under test sees the original file.
# Songs are cut to a 60 s excerpt from 0:20, and that excerpt is what both sides analyse.
# The source column also carries kind:NAME (loop, tonal-loop, chord, oneshot, music) and,
# for excerpts, from:ORIGINAL_PATH.
#
# Usage: bench/eval/build-labelled-set.sh DATA_DIR
# Writes DATA_DIR/labels.tsv (path relative to DATA_DIR, bpm, key, label source) and
# DATA_DIR/tools.tsv (every tool's raw answer). Idempotent: downloads, extractions,
# environments and per-file tool results are reused when present.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DATA_DIR" >&2
    exit 2
fi
DATA=$(realpath -m "$1")
mkdir -p "$DATA/debs" "$DATA/root" "$DATA/work"
export DEBIAN_FRONTEND=noninteractive
NICE="nice -n 19"

# --- tools ---------------------------------------------------------------------------------
need=()
for p in aubio-tools sox libsox-fmt-all python3-venv python3-dev build-essential; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq "${need[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x "$DATA/venv-essentia/bin/python" ]; then
    $NICE "$PY" -m venv "$DATA/venv-essentia"
    $NICE "$DATA/venv-essentia/bin/pip" install -q "essentia==2.1b6.dev1389" "numpy<3"
fi
if [ ! -x "$DATA/venv-madmom/bin/python" ] || ! "$DATA/venv-madmom/bin/python" -c "import madmom" 2>/dev/null; then
    # madmom 0.16.1 (the last release) predates Python 3.10: its shipped C files need
    # regenerating with Cython and one import needs collections.abc.
    $NICE "$PY" -m venv "$DATA/venv-madmom"
    $NICE "$DATA/venv-madmom/bin/pip" install -q "numpy==1.23.5" "cython<3" "scipy<1.12" mido setuptools wheel
    rm -rf "$DATA/work/madmom-src" && mkdir -p "$DATA/work/madmom-src"
    (cd "$DATA/work/madmom-src" &&
        $NICE "$DATA/venv-madmom/bin/pip" download -q --no-deps --no-binary :all: --no-build-isolation \
            "madmom==0.16.1" -d . &&
        tar xzf madmom-0.16.1.tar.gz &&
        cd madmom-0.16.1 &&
        find madmom -name "*.c" -delete &&
        sed -i 's/from collections import MutableSequence/from collections.abc import MutableSequence/' \
            madmom/processors.py &&
        $NICE "$DATA/venv-madmom/bin/pip" install -q --no-build-isolation .)
fi

# --- audio from Debian packages --------------------------------------------------------------
PKGS=(lmms-common sonic-pi-samples frozen-bubble-data extremetuxracer-data xmoto-data
    holotz-castle-data alienblaster-data pangzero supertux-data hedgewars-data warmux-data)
for p in "${PKGS[@]}"; do
    if ! ls "$DATA/debs/${p}"_*.deb >/dev/null 2>&1; then
        (cd "$DATA/debs" && apt-get download -q "$p" 2>/dev/null ||
            { apt-get update -qq && apt-get download -q "$p"; })
    fi
    deb=$(ls "$DATA/debs/${p}"_*.deb | head -1)
    stamp="$DATA/root/.$(basename "$deb").extracted"
    if [ ! -e "$stamp" ]; then
        dpkg-deb -x "$deb" "$DATA/root"
        touch "$stamp"
    fi
done
ls "$DATA/debs" >"$DATA/packages.txt"

# --- manifest: path <TAB> kind -----------------------------------------------------------------
# loop: drum/percussion loop (tempo only); tonal-loop: pitched loop (tempo and key);
# chord: one-shot whose file name says it is a chord (key only); oneshot: other pitched
# one-shot (key only); music: game music excerpt (tempo and key).
cd "$DATA"
{
    L=root/usr/share/lmms/samples
    for f in "$L"/beats/*.ogg; do printf '%s\tloop\n' "$f"; done
    for f in "$L"/bassloops/*.ogg "$L"/latin/*.ogg; do printf '%s\ttonal-loop\n' "$f"; done
    for f in "$L"/basses/*.ogg "$L"/instruments/*.ogg; do
        case "$f" in *accord* | *double_stop*) printf '%s\tchord\n' "$f" ;; *) printf '%s\toneshot\n' "$f" ;; esac
    done
    S=root/usr/share/sonic-pi/samples
    for f in "$S"/loop_*.flac; do
        case "$f" in *loop_drone_g_97*) printf '%s\ttonal-loop\n' "$f" ;; *) printf '%s\tloop\n' "$f" ;; esac
    done
    for f in "$S"/ambi_*.flac "$S"/bass_*.flac "$S"/guit_*.flac "$S"/glitch_bass_g.flac; do
        case "$f" in *guit_em9* | *guit_e_fifths*) printf '%s\tchord\n' "$f" ;; *) printf '%s\toneshot\n' "$f" ;; esac
    done
    # Game music (sound effects under etr/sounds are left out).
    find root/usr/share/games root/usr/share/perl5 -type f -size +300k \
        \( -iname '*.ogg' -o -iname '*.wav' -o -iname '*.mp3' \) -not -path '*/etr/sounds/*' | LC_ALL=C sort |
        while read -r f; do printf '%s\tmusic\n' "$f"; done
} >manifest.tsv

# --- reference tools ---------------------------------------------------------------------------
# Analysis copies: 44.1 kHz WAV (madmom reads WAV without ffmpeg), loops tiled to >= 20 s.
# Songs are cut to a 60 s excerpt (from 0:20) that becomes the evaluated file itself
# (excerpts/), so the detector and the reference tools hear exactly the same audio.
mkdir -p work/wav work/aubio excerpts
while IFS=$'\t' read -r f kind; do
    id=$(printf '%s|%s' "$f" "$kind" | md5sum | cut -c1-16)
    wav="work/wav/$id.wav"
    if [ "$kind" = music ]; then wav="excerpts/$id.wav"; fi
    if [ ! -s "$wav" ]; then
        # Files sox cannot read (a few are mislabelled or odd encodings) are left out.
        dur=$(soxi -D "$f" 2>/dev/null) || { echo "skipping unreadable $f" >&2; continue; }
        reps=$(awk -v d="$dur" 'BEGIN { r = int(20 / d); if (r < 0) r = 0; print r }')
        effect=(repeat "$reps")
        if [ "$kind" = music ]; then effect=(trim 20 60); fi
        # -D: no dither, so the copies (and hence the labels) are the same on every run.
        $NICE sox -q -D "$f" -r 44100 -b 16 "$wav" "${effect[@]}" 2>/dev/null ||
            { rm -f "$wav"; echo "skipping unconvertible $f" >&2; continue; }
    fi
    if [ ! -s "work/aubio/$id.txt" ]; then
        ($NICE aubio tempo -i "$wav" 2>/dev/null || true) | tail -1 >"work/aubio/$id.txt"
    fi
    if [ "$(soxi -D "$wav")" = "0.000000" ]; then rm -f "$wav"; continue; fi
    origin="$f"
    if [ "$kind" = music ]; then f="$wav"; fi
    printf '%s\t%s\t%s\t%s\n' "$f" "$kind" "$id" "$origin"
done <manifest.tsv >work/ids.tsv

cat >work/essentia_run.py <<'EOF'
import os, sys, json
import essentia
essentia.log.infoActive = False
import essentia.standard as es
def wav_of(f, kind, ident):
    return f if kind == "music" else f"work/wav/{ident}.wav"
out = {}
path = "work/essentia.json"
if os.path.exists(path):
    out = json.load(open(path))
rhythm = es.RhythmExtractor2013(method="multifeature")
key = es.KeyExtractor()
for line in open("work/ids.tsv"):
    f, kind, ident, origin = line.rstrip("\n").split("\t")
    if ident in out:
        continue
    audio = es.MonoLoader(filename=wav_of(f, kind, ident), sampleRate=44100)()
    bpm = float(rhythm(audio)[0])
    k, scale, strength = key(audio)
    out[ident] = {"bpm": bpm, "key": k, "scale": scale, "strength": float(strength)}
json.dump(out, open(path, "w"), indent=1)
EOF
$NICE "$DATA/venv-essentia/bin/python" work/essentia_run.py

cat >work/madmom_run.py <<'EOF'
import os, json
from madmom.features.key import CNNKeyRecognitionProcessor, key_prediction_to_label
def wav_of(f, kind, ident):
    return f if kind == "music" else f"work/wav/{ident}.wav"
out = {}
path = "work/madmom.json"
if os.path.exists(path):
    out = json.load(open(path))
proc = CNNKeyRecognitionProcessor()
for line in open("work/ids.tsv"):
    f, kind, ident, origin = line.rstrip("\n").split("\t")
    if ident in out or kind == "loop":
        continue
    out[ident] = key_prediction_to_label(proc(wav_of(f, kind, ident)))
json.dump(out, open(path, "w"), indent=1)
EOF
$NICE "$DATA/venv-madmom/bin/python" work/madmom_run.py

# --- combine ---------------------------------------------------------------------------------
cat >work/combine.py <<'EOF'
import json, re
NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}
def norm(tonic, mode):
    tonic = FLATS.get(tonic, tonic)
    if tonic not in NAMES:
        return None
    return tonic + ("m" if mode.startswith("min") else "")
ess = json.load(open("work/essentia.json"))
mad = json.load(open("work/madmom.json"))
labels, tools = [], []
for line in open("work/ids.tsv"):
    f, kind, ident, origin = line.rstrip("\n").split("\t")
    a_txt = open(f"work/aubio/{ident}.txt").read().strip()
    m = re.match(r"([0-9.]+) bpm", a_txt)
    aubio = float(m.group(1)) if m else None
    e = ess[ident]
    e_key = norm(e["key"], e["scale"])
    m_key = None
    if ident in mad:
        t, mode = mad[ident].split()
        m_key = norm(t, mode)
    tools.append([f, kind, aubio, round(e["bpm"], 2), e_key, round(e["strength"], 3), m_key, origin])
    bpm, key, src = "", "", []
    named = re.search(r"(\d{2,3}(?:\.\d+)?) ?bpm", f, re.I)
    if kind in ("loop", "tonal-loop", "music") and named:
        bpm, src = named.group(1), ["bpm:filename"]
    elif kind in ("loop", "tonal-loop", "music") and aubio and abs(aubio - e["bpm"]) <= 0.02 * (aubio + e["bpm"]) / 2:
        bpm, src = f"{(aubio + e['bpm']) / 2:.2f}", ["bpm:aubio+essentia"]
    if kind != "loop" and e_key and e_key == m_key:
        key = e_key
        src.append("key:essentia+madmom")
    if bpm or key:
        extra = [f"kind:{kind}"] + ([f"from:{origin}"] if origin != f else [])
        labels.append([f, bpm, key, ";".join(src + extra)])
with open("labels.tsv", "w") as out:
    out.write("#path\tbpm\tkey\tsource\n")
    for row in labels:
        out.write("\t".join(row) + "\n")
with open("tools.tsv", "w") as out:
    out.write("#path\tkind\taubio_bpm\tessentia_bpm\tessentia_key\tessentia_strength\tmadmom_key\torigin\n")
    for row in tools:
        out.write("\t".join("" if v is None else str(v) for v in row) + "\n")
n_t = sum(1 for r in labels if r[1])
n_k = sum(1 for r in labels if r[2])
print(f"{len(tools)} files analysed, {len(labels)} labelled: {n_t} with tempo, {n_k} with key")
EOF
"$DATA/venv-essentia/bin/python" work/combine.py
echo "wrote $DATA/labels.tsv"
