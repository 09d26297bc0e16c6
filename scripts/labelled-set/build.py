"""Builds the labelled set for tempo, key and root-note evaluation from the audio that
`scripts/labelled-set.sh` unpacked under DATA/root, and writes DATA/labels.tsv.

Labels come from the authors' own statements or from the agreement of independent
tools, never from smpl:
- tempo of a loop: Debian's `aubio tempo` and essentia's RhythmExtractor2013 agree
  within 2 % (no octave folding) on the loop tiled to at least 20 s; the label is their
  mean. Loops cut from game music: the two tools agree on a 60 s excerpt, and the loop
  is cut at essentia's beat positions to 8 or 16 beats, so its label is that tempo.
- key of a loop or chord: essentia's KeyExtractor and madmom's CNN key recogniser
  name the same tonic and mode.
- root note of a one-shot: the SoundFont author's root key (sample header or
  instrument zone; notes up to C7) or a note named in the file name, confirmed by
  aubio's pitch tracker (same pitch class); otherwise aubio and essentia's PitchYinFFT
  agree on the pitch class.
- drums: Hydrogen kits (class from the instrument names in each drumkit.xml),
  SoundFont drum kits (class from the General MIDI key), file names of the Sonic Pi
  and LMMS drum samples; drum loops from LMMS and Sonic Pi.
Loops cut from music go to derived/loops/, as a pack would hold them. Every file
belongs to one half, `tune` or `held-out`, by the MD5 of its group (the original
recording a loop was cut from, or the file itself): the detectors' constants are
chosen on `tune` only.

Usage: build.py DATA   (run with the essentia environment's Python)
"""
import hashlib
import json
import os
import re
import subprocess
import sys

DATA = os.path.abspath(sys.argv[1])
os.chdir(DATA)
ROOT = "root/usr/share"
HYDROGEN = "root/usr/share/hydrogen/data/drumkits"
CACHE_PATH = "work/cache.json"
os.makedirs("work/tiled", exist_ok=True)
os.makedirs("derived/loops", exist_ok=True)
cache = json.load(open(CACHE_PATH)) if os.path.exists(CACHE_PATH) else {}
NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}

import essentia  # noqa: E402

essentia.log.infoActive = False
essentia.log.warningActive = False
import essentia.standard as es  # noqa: E402


def save():
    json.dump(cache, open(CACHE_PATH + ".tmp", "w"))
    os.replace(CACHE_PATH + ".tmp", CACHE_PATH)


def cached(tool, path, fn):
    key = f"{tool}|{path}"
    if key not in cache:
        cache[key] = fn()
    return cache[key]


def sh(*args):
    return subprocess.run(args, capture_output=True, text=True).stdout


def duration(path):
    return cached("dur", path, lambda: float(sh("soxi", "-D", path).strip() or 0))


def wav44(path, name, effect=()):
    """A 44.1 kHz 16-bit copy for the tools (no dither, so the same on every run)."""
    out = f"work/tiled/{name}.wav"
    if not os.path.exists(out):
        subprocess.run(["sox", "-q", "-D", path, "-r", "44100", "-b", "16", out, *effect], check=False)
    return out


def ident(path):
    return hashlib.md5(path.encode()).hexdigest()[:16]


def tiled(path):
    reps = max(0, int(20 / max(duration(path), 0.05)))
    return wav44(path, ident(path), ("repeat", str(reps)) if reps else ())


def aubio_bpm(wav):
    def run():
        m = re.search(r"([0-9.]+) bpm", sh("aubio", "tempo", "-i", wav))
        return float(m.group(1)) if m else None
    return cached("aubio_tempo", wav, run)


def essentia_rhythm(wav):
    def run():
        audio = es.MonoLoader(filename=wav, sampleRate=44100)()
        bpm, ticks, *_ = es.RhythmExtractor2013(method="multifeature")(audio)
        return {"bpm": float(bpm), "ticks": [float(t) for t in ticks]}
    return cached("essentia_rhythm", wav, run)


def essentia_key(wav):
    def run():
        audio = es.MonoLoader(filename=wav, sampleRate=44100)()
        k, scale, strength = es.KeyExtractor()(audio)
        return norm_key(k, scale)
    return cached("essentia_key", wav, run)


def norm_key(tonic, mode):
    tonic = FLATS.get(tonic, tonic)
    if tonic not in NAMES:
        return None
    return tonic + ("m" if mode.lower().startswith("min") else "")


def aubio_pitch_class(wav):
    """Median MIDI pitch of aubio's yinfft track over confident frames."""
    def run():
        out = sh("aubio", "pitch", "-i", wav, "-m", "yinfft", "-u", "midi", "-s", "-50")
        values = sorted(float(line.split()[1]) for line in out.splitlines()
                        if len(line.split()) == 2 and 20 < float(line.split()[1]) < 110)
        return values[len(values) // 2] if len(values) >= 3 else None
    return cached("aubio_pitch", wav, run)


def essentia_pitch(wav):
    def run():
        audio = es.MonoLoader(filename=wav, sampleRate=44100)()
        yin = es.PitchYinFFT(frameSize=4096, sampleRate=44100)
        spectrum, window = es.Spectrum(), es.Windowing(type="hann")
        values = []
        for frame in es.FrameGenerator(audio, frameSize=4096, hopSize=1024):
            if (frame ** 2).mean() < 1e-6:
                continue
            f0, conf = yin(spectrum(window(frame)))
            if conf > 0.7 and f0 > 25:
                values.append(69 + 12 * __import__("math").log2(f0 / 440.0))
        values.sort()
        return values[len(values) // 2] if len(values) >= 3 else None
    return cached("essentia_pitch", wav, run)


def agree_bpm(a, b):
    return a and b and abs(a - b) <= 0.02 * (a + b) / 2


entries = []


def add(path, kind, source, group=None, **labels):
    entries.append(dict(path=path, kind=kind, source=source, group=group or path, **labels))


def listing(folder, pattern=r".*"):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if re.fullmatch(pattern, f))


# --- loops from sample libraries -------------------------------------------------------------
L = f"{ROOT}/lmms/samples"
S = f"{ROOT}/sonic-pi/samples"
for f in listing(f"{L}/beats"):
    add(f, "drum-loop", "lmms")
for f in listing(f"{L}/bassloops") + listing(f"{L}/latin"):
    add(f, "tonal-loop", "lmms")
for f in listing(S, r"loop_.*\.flac"):
    add(f, "tonal-loop" if "drone" in f else "drum-loop", "sonic-pi")

# --- loops cut from game music ----------------------------------------------------------------
GAMES = {"supertux2": "supertux", "hedgewars": "hedgewars", "warmux": "warmux", "wesnoth": "wesnoth"}
music = subprocess.run(
    "find root/usr/share/games root/usr/share/perl5 root/usr/share/starfighter/music "
    "root/usr/share/freedroidrpg/data/sound/music root/usr/share/scummvm/drascula "
    "root/usr/share/hyperrogue/music root/usr/share/planetblupi/music -type f -size +300k "
    "\\( -iname '*.ogg' -o -iname '*.wav' -o -iname '*.mp3' -o -iname '*.flac' \\) "
    "-not -path '*/etr/sounds/*' | LC_ALL=C sort",
    shell=True, capture_output=True, text=True).stdout.splitlines()
for track in music:
    # root/usr/share/games/<game>/..., root/usr/share/<game>/..., or frozen-bubble's perl5
    parts = track.split("/")
    package = parts[4] if parts[3] == "games" else "frozen-bubble" if parts[3] == "perl5" else parts[3]
    source = GAMES.get(package, "other-games")
    if duration(track) < 50:
        continue
    excerpt = wav44(track, "x" + ident(track), ("trim", "20", "60"))
    a, e = aubio_bpm(excerpt), essentia_rhythm(excerpt)
    if not agree_bpm(a, e["bpm"]):
        continue
    bpm = (a + e["bpm"]) / 2
    beats = 16 if 16 * 60 / bpm <= 12.5 else 8
    ticks = e["ticks"]
    for n, at in enumerate((8.0, 24.0, 40.0)):
        start = next((t for t in ticks if t >= at), None)
        length = beats * 60 / bpm
        if start is None or start + length > 59.5:
            continue
        cut = f"derived/loops/{source}_{ident(track)}_{n}.wav"
        if not os.path.exists(cut):
            subprocess.run(["sox", "-q", "-D", excerpt, cut, "trim", f"{start:.4f}", f"{length:.4f}"], check=True)
        add(cut, "music-loop", source, group=track, bpm=round(bpm, 2), how="bpm:aubio+essentia(excerpt)")

# --- tonal one-shots and chords ---------------------------------------------------------------
for f in listing(f"{L}/basses") + listing(f"{L}/instruments") + listing(f"{L}/stringsnpads"):
    add(f, "chord" if ("accord" in f or "double_stop" in f) else "note", "lmms")
for f in listing(S, r"(ambi|bass|guit|glitch_bass)_.*\.flac"):
    kind = "chord" if ("em9" in f or "fifths" in f) else "note"
    m = re.search(r"_([a-g])\.flac$", f)
    add(f, kind, "sonic-pi", stated_note=NAMES.index(m.group(1).upper()) if m else None)
for font, source, melodic, drums in (
    (f"{ROOT}/sounds/sf2/FluidR3_GM.sf2", "fluidr3", 120, 60),
    (f"{ROOT}/sounds/sf2/TimGM6mb.sf2", "timgm6mb", 120, 40),
    (f"{ROOT}/sounds/sf3/MuseScore_General_Lite.sf3", "musescore", 120, 60),
):
    out = f"derived/{source}"
    listing_file = f"work/{source}.tsv"
    if not os.path.exists(listing_file):
        text = sh(sys.executable, os.path.join(os.path.dirname(__file__), "soundfont.py"), font, out,
                  str(melodic), str(drums))
        open(listing_file, "w").write(text)
    for line in open(listing_file):
        path, what, fact, _name = line.rstrip("\n").split("\t")
        if what == "melodic":
            # Up to C7 (2.1 kHz): the analysis looks for fundamentals below that.
            if int(fact) <= 96:
                add(path, "note", source, stated_midi=int(fact))
        else:
            add(path, "drum", source, cls=fact)

# --- drums --------------------------------------------------------------------------------------
DRUM_WORDS = [("kick", "kick"), ("bd", "kick"), ("bass drum", "kick"), ("bassdrum", "kick"),
              ("snare", "snare"), ("sn", "snare"), ("rim", "snare"), ("stick", "snare"),
              ("hat", "hat"), ("hh", "hat"), ("tom", "tom"), ("crash", "cymbal"),
              ("ride", "cymbal"), ("cymbal", "cymbal"), ("splash", "cymbal"), ("china", "cymbal"),
              ("clap", "clap")]


def drum_class(name):
    words = re.findall(r"[a-z]+", name.lower())
    joined = " ".join(words)
    for word, cls in DRUM_WORDS:
        if word in words or (len(word) > 3 and word in joined):
            return cls
    return "perc"


for kit in sorted(os.listdir(HYDROGEN)):
    xml = open(os.path.join(HYDROGEN, kit, "drumkit.xml"), encoding="utf-8", errors="replace").read()
    for block in re.findall(r"<instrument>(.*?)</instrument>", xml, re.S):
        name = re.search(r"<name>(.*?)</name>", block, re.S)
        cls = drum_class(name.group(1) if name else "")
        for fn in re.findall(r"<filename>(.*?)</filename>", block):
            path = os.path.join(HYDROGEN, kit, fn.strip())
            if os.path.exists(path):
                add(path, "drum", "hydrogen", cls=cls)
for f in listing(S, r"(bd|sn|drum|tabla|perc|elec_(hollow_kick|soft_kick|.*snare|cymbal|triangle|wood|fuzz_tom))_?.*\.flac"):
    add(f, "drum", "sonic-pi", cls=drum_class(os.path.basename(f).replace("bd_", "kick_")))
for f in listing(f"{L}/drums"):
    add(f, "drum", "lmms", cls=drum_class(os.path.basename(f)))

# --- run the tools --------------------------------------------------------------------------------
madmom_needed = []
for i, e in enumerate(entries):
    path, kind = e["path"], e["kind"]
    if duration(path) <= 0:
        e["skip"] = True
        continue
    if kind in ("drum-loop", "tonal-loop"):
        wav = tiled(path)
        a, r = aubio_bpm(wav), essentia_rhythm(wav)["bpm"]
        e["tools"] = f"aubio={a};essentia={r:.2f}"
        if agree_bpm(a, r):
            e["bpm"], e["how"] = round((a + r) / 2, 2), "bpm:aubio+essentia"
    if kind in ("tonal-loop", "music-loop", "chord"):
        wav = tiled(path) if kind != "music-loop" else path
        e["essentia_key"] = essentia_key(wav)
        e["key_wav"] = wav
        madmom_needed.append(wav)
    if kind == "note":
        wav = wav44(path, ident(path))
        ap = aubio_pitch_class(wav)
        e["tools"] = f"aubio={ap}"
        stated = e.get("stated_midi")
        if stated is not None:
            if ap is not None and round(ap) % 12 == stated % 12:
                e["note"], e["how"] = NAMES[stated % 12] + str(stated // 12 - 1), "note:author+aubio"
        elif e.get("stated_note") is not None:
            if ap is not None and round(ap) % 12 == e["stated_note"]:
                e["note"], e["how"] = NAMES[e["stated_note"]], "note:name+aubio"
        else:
            ep = essentia_pitch(wav)
            e["tools"] += f";essentia={ep}"
            if ap is not None and ep is not None and round(ap) % 12 == round(ep) % 12:
                e["note"], e["how"] = NAMES[round(ap) % 12], "note:aubio+essentia"
    if i % 50 == 0:
        save()
save()

todo = sorted(set(w for w in madmom_needed if f"madmom|{w}" not in cache))
if todo:
    open("work/madmom_in.txt", "w").write("\n".join(todo) + "\n")
    subprocess.run([f"{DATA}/venv-madmom/bin/python", os.path.join(os.path.dirname(__file__), "madmom_keys.py"),
                    "work/madmom_in.txt", "work/madmom_out.tsv"], check=True)
    for line in open("work/madmom_out.tsv"):
        wav, label = line.rstrip("\n").split("\t")
        cache[f"madmom|{wav}"] = label
    save()
for e in entries:
    if "key_wav" in e:
        raw = cache.get(f"madmom|{e['key_wav']}")
        m = norm_key(*raw.split()) if raw else None
        if e["essentia_key"] and e["essentia_key"] == m:
            e["key"] = m
            e["how"] = ";".join(filter(None, [e.get("how"), "key:essentia+madmom"]))

# --- write -------------------------------------------------------------------------------------------
rows = []
for e in entries:
    if e.get("skip"):
        continue
    labelled = any(e.get(k) for k in ("bpm", "key", "note")) or e["kind"] in ("drum", "drum-loop")
    if not labelled:
        continue
    half = "tune" if int(hashlib.md5(e["group"].encode()).hexdigest(), 16) % 2 == 0 else "held-out"
    rows.append([e["path"], e["kind"], e["source"], half, str(e.get("bpm") or ""), e.get("key") or "",
                 e.get("note") or "", e.get("cls") or "", e.get("how") or ("class:name" if e["kind"].startswith("drum") else "")])
with open("labels.tsv", "w") as out:
    out.write("#path\tkind\tsource\thalf\tbpm\tkey\tnote\tclass\tlabelled_by\n")
    for row in rows:
        out.write("\t".join(row) + "\n")
count = lambda pred: sum(1 for r in rows if pred(r))
print(f"{len(entries)} files, {len(rows)} rows: {count(lambda r: r[4])} tempo, {count(lambda r: r[5])} key, "
      f"{count(lambda r: r[6])} root note, {count(lambda r: r[1] == 'drum')} drum hits, "
      f"{count(lambda r: r[1] == 'drum-loop')} drum loops")
