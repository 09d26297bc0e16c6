"""madmom's CNN key recogniser over a list of WAV files: IN (one path a line) -> OUT (path TAB key)."""
import sys

from madmom.features.key import CNNKeyRecognitionProcessor, key_prediction_to_label

proc = CNNKeyRecognitionProcessor()
with open(sys.argv[2], "w") as out:
    for line in open(sys.argv[1]):
        wav = line.strip()
        if wav:
            out.write(f"{wav}\t{key_prediction_to_label(proc(wav))}\n")
