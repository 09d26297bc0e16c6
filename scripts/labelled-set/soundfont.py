"""Extracts samples from a SoundFont (SF2, or SF3 with Ogg Vorbis samples) with the
facts its author stated: the root note of every melodic sample (the sample header's
original pitch and pitch correction, or an instrument zone's overriding root key) and,
for samples played by a drum kit preset (bank 128), the General MIDI percussion
instrument of the keys that play them.

Usage: soundfont.py FONT OUT_DIR MAX_MELODIC MAX_DRUMS
Writes OUT_DIR/<index>_<name>.wav (or .ogg for SF3) and prints one line per file:
path <TAB> melodic|drum <TAB> midi root or GM drum class <TAB> sample name
"""
import hashlib
import os
import struct
import sys
import wave

GM_DRUMS = {35: "kick", 36: "kick", 37: "snare", 38: "snare", 40: "snare", 39: "clap",
            41: "tom", 43: "tom", 45: "tom", 47: "tom", 48: "tom", 50: "tom",
            42: "hat", 44: "hat", 46: "hat", 49: "cymbal", 51: "cymbal", 52: "cymbal",
            53: "cymbal", 55: "cymbal", 57: "cymbal", 59: "cymbal"}


def chunks(data, start, end):
    pos = start
    while pos + 8 <= end:
        cid = data[pos:pos + 4]
        size = struct.unpack("<I", data[pos + 4:pos + 8])[0]
        yield cid, pos + 8, size
        pos += 8 + size
        # Chunks are padded to even sizes, though some writers forget to.
        if size & 1 and not data[pos:pos + 4].isalpha():
            pos += 1


def parse(path):
    data = open(path, "rb").read()
    assert data[:4] == b"RIFF" and data[8:12] == b"sfbk", "not a SoundFont"
    sdta = pdta = None
    for cid, off, size in chunks(data, 12, len(data)):
        if cid == b"LIST" and data[off:off + 4] == b"sdta":
            sdta = (off + 4, off + size)
        if cid == b"LIST" and data[off:off + 4] == b"pdta":
            pdta = (off + 4, off + size)
    smpl = None
    for cid, off, size in chunks(data, *sdta):
        if cid == b"smpl":
            smpl = (off, size)
    sub = {}
    for cid, off, size in chunks(data, *pdta):
        sub[cid.decode()] = data[off:off + size]

    def records(name, size, fmt):
        raw = sub[name]
        return [struct.unpack(fmt, raw[i:i + size]) for i in range(0, len(raw) - size + 1, size)]

    phdr = records("phdr", 38, "<20sHHHIII")
    pbag = records("pbag", 4, "<HH")
    pgen = records("pgen", 4, "<HH")
    inst = records("inst", 22, "<20sH")
    ibag = records("ibag", 4, "<HH")
    igen = records("igen", 4, "<HH")
    shdr = records("shdr", 46, "<20sIIIIIBbHH")
    # Instrument zones: (sample id, overriding root key or None, key range)
    inst_zones = []
    for i in range(len(inst) - 1):
        zones = []
        for b in range(inst[i][1], inst[i + 1][1]):
            gens = {}
            for g in range(ibag[b][0], ibag[b + 1][0]):
                gens[igen[g][0]] = igen[g][1]
            if 53 in gens:
                root = gens.get(58)
                root = None if root is None or root >= 0x8000 or root > 127 else root
                lo, hi = (gens[43] & 0xFF, gens[43] >> 8) if 43 in gens else (0, 127)
                zones.append((gens[53], root, lo, hi))
        inst_zones.append(zones)
    # Which instruments each preset uses, and the preset's bank.
    use = []  # (bank, instrument, key lo, key hi)
    for p in range(len(phdr) - 1):
        bank = phdr[p][2]
        for b in range(phdr[p][3], phdr[p + 1][3]):
            gens = {}
            for g in range(pbag[b][0], pbag[b + 1][0]):
                gens[pgen[g][0]] = pgen[g][1]
            if 41 in gens:
                lo, hi = (gens[43] & 0xFF, gens[43] >> 8) if 43 in gens else (0, 127)
                use.append((bank, gens[41], lo, hi))
    facts = {}
    for bank, i, plo, phi in use:
        if i >= len(inst_zones):
            continue
        for sid, root, lo, hi in inst_zones[i]:
            f = facts.setdefault(sid, {"melodic": set(), "drum": set()})
            if bank == 128:
                for key in range(max(lo, plo), min(hi, phi) + 1):
                    f["drum"].add(GM_DRUMS.get(key, "perc"))
            else:
                f["melodic"].add(root)
    return data, smpl, shdr, facts


def main():
    font, out, max_melodic, max_drums = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    os.makedirs(out, exist_ok=True)
    data, (smpl_off, smpl_size), shdr, facts = parse(font)
    melodic, drums = [], []
    for sid, (name, start, end, _ls, _le, rate, pitch, corr, _link, stype) in enumerate(shdr[:-1]):
        name = name.split(b"\0")[0].decode("latin-1").strip()
        f = facts.get(sid)
        if not f or stype & 2 or rate < 8000:  # right channel of a stereo pair: its left is enough
            continue
        compressed = bool(stype & 0x10)
        frames = None if compressed else end - start
        if f["drum"] and not f["melodic"]:
            classes = f["drum"] - {"perc"} or f["drum"]
            if len(classes) == 1:
                drums.append((sid, name, start, end, rate, compressed, classes.pop()))
            continue
        if f["drum"] or len(f["melodic"]) != 1:
            continue
        root = next(iter(f["melodic"]))
        true_pitch = (pitch if root is None else root) - corr / 100.0
        midi = round(true_pitch)
        if abs(true_pitch - midi) > 0.3 or not 24 <= midi <= 108:
            continue
        if frames is not None and frames < 0.3 * rate:
            continue
        melodic.append((sid, name, start, end, rate, compressed, str(midi)))
    # A deterministic choice, spread over the whole font.
    order = lambda item: hashlib.md5(f"{item[0]}|{item[1]}".encode()).hexdigest()
    chosen = sorted(melodic, key=order)[:max_melodic] + sorted(drums, key=order)[:max_drums]
    for sid, name, start, end, rate, compressed, fact in chosen:
        safe = "".join(c if c.isalnum() else "_" for c in name) or "sample"
        kind = "drum" if any(sid == d[0] for d in drums) else "melodic"
        if compressed:
            path = os.path.join(out, f"{sid:04d}_{safe}.ogg")
            with open(path, "wb") as w:
                w.write(data[smpl_off + start:smpl_off + end])
        else:
            path = os.path.join(out, f"{sid:04d}_{safe}.wav")
            pcm = data[smpl_off + 2 * start:smpl_off + 2 * end]
            with wave.open(path, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(rate)
                w.writeframes(pcm)
        print(f"{path}\t{kind}\t{fact}\t{name}")


if __name__ == "__main__":
    main()
