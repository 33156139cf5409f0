"""Render the recorded-sound backgrounds committed in ``data/backgrounds/`` (maintainers only).

Procedural babble and music are not enough: a detector trained on them alone fired about 50
times a minute on recorded talking and on sampled instruments with drums. This tool makes speech and music
out of *recorded* sounds, with free software from Debian:

- **speech**: the Festival speech synthesizer reading short texts with its diphone and HTS
  voices, which are built from recordings of real speakers (American English men and a
  woman, Italian, Catalan and Czech);
- **music**: random songs (melody, chords, bass, and often drums) played by FluidSynth with
  the FluidR3 General MIDI sound font: samples of real pianos, guitars, strings, mallets,
  wind instruments and drum kits.

Each clip goes to ``data/backgrounds/<split>/<family>_<n>.ogg`` (16 kHz mono) and a line of
``data/backgrounds/catalogue.csv`` says how it was made. The ``train`` clips are mixed into
the detector's training; the ``eval`` clips use other voices, texts, instruments, drum kits
and songs,
and only measure (``bench/run_bench.py --only backgrounds``).

Needs (Debian)::

    apt-get install fluidsynth fluid-soundfont-gm festival festvox-kallpc16k festvox-kdlpc16k \
        festvox-us-slt-hts festvox-italp16k festvox-itapc16k festvox-ca-ona-hts festvox-czech-dita \
        festvox-czech-krb festvox-czech-machac festvox-czech-ph festvox-suopuhe-lj festvox-suopuhe-mv \
        festvox-ru

and ``pip install mido``. Users never need to run it: the clips are in the repository.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SOUND_FONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")

TEXTS = {
    "train": [
        "Good evening, and welcome back to the brewing hour. Today we talk about yeast, about "
        "temperature, and about how you can tell that a fermentation is going well.",
        "Most people look at the airlock. When it bubbles quickly, the yeast is busy. When it slows "
        "down, the beer is nearly done. But a warm afternoon can push gas out of the bucket too.",
        "Could you pass me the salt? No, the other one. Thanks. And did you remember to call your "
        "mother about Sunday? She said lunch at one, but you know what that means.",
        "The match was terrible. Two goals in the first ten minutes, and then nothing, absolutely "
        "nothing, for the rest of the game. I nearly switched it off at half time.",
        "Preheat the oven to two hundred degrees. Chop the onions and the garlic, fry them gently, "
        "then add the tomatoes and let everything simmer for twenty minutes.",
        "Here is the weather for tomorrow: cloudy in the morning, some rain in the afternoon, and "
        "a cold wind from the north. Temperatures will stay between four and nine degrees.",
    ],
    "eval": [
        "I moved the fermenter into the cellar last week because the kitchen was too warm. Since "
        "then it has been very quiet, and I am starting to worry about the yeast.",
        "Are you coming tonight? We are meeting at eight, at the usual place. Bring a jacket, it "
        "gets cold by the river after dark, and the last bus leaves at eleven.",
        "Breaking news this hour: the council has approved the new bridge. Work starts in spring "
        "and should take about two years, with the old bridge closed for six months.",
    ],
}

#: voice → language; the training voices and the evaluation voices do not overlap
VOICES = {
    "train": ["voice_kal_diphone", "voice_cmu_us_slt_arctic_hts", "voice_pc_diphone", "voice_czech_dita",
              "voice_czech_krb", "voice_czech_machac", "voice_czech_ph", "voice_hy_fi_mv_diphone",
              "voice_suo_fi_lj_diphone", "voice_msu_ru_nsh_clunits"],
    "eval": ["voice_ked_diphone", "voice_lp_diphone", "voice_upc_ca_ona_hts"],
}

#: General MIDI programs of the lead, chord and bass parts of each split's songs, and the drum
#: kits (programs of channel 10, one per song in turn): no program of one split is in the other
PROGRAMS = {
    "train": {"lead": [0, 4, 11, 12, 24, 27, 56, 65, 73, 80, 108], "chords": [0, 16, 19, 25, 48, 88],
              "bass": [32, 33, 38], "kits": [0]},
    "eval": {"lead": [1, 13, 26, 45, 46, 66, 71, 114], "chords": [2, 5, 20, 49, 52, 89],
             "bass": [34, 35, 39], "kits": [8, 16, 32, 40]},
}


def speech(voice: str, text: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    """``voice`` reading ``text`` sentence by sentence, with a pause of 0.2-0.8 s after each.
    A sentence the voice cannot say (the Italian voice fails on some English words) is left out."""
    import re

    from helpers.audio import load_audio

    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        txt, wav = Path(tmp) / "t.txt", Path(tmp) / "t.wav"
        for sentence in re.split(r"(?<=[.?!:])\s+", text):
            txt.write_text(sentence)
            wav.unlink(missing_ok=True)
            subprocess.run(["text2wave", "-eval", f"({voice})", "-o", str(wav), str(txt)], check=True,
                           capture_output=True)
            if wav.exists() and wav.stat().st_size > 1000:
                parts += [load_audio(wav, sr=sr), np.zeros(int(rng.uniform(0.2, 0.8) * sr), dtype=np.float32)]
    return np.concatenate(parts)


def song(rng: np.random.Generator, programs: dict, path: Path, seconds: float, number: int) -> dict:
    """A random song in a major or minor key as a MIDI file: a lead melody, held or
    arpeggiated chords, a bass line and (mostly) drums, from the ``number``-th kit of
    ``programs`` (cyclically: Standard for training; Room, Power, Jazz, Brush to evaluate)."""
    import mido

    tpb = 480
    bpm = float(rng.uniform(70, 150))
    bars = int(np.ceil(seconds / (4 * 60 / bpm)))
    root = 45 + int(rng.integers(0, 12))
    scale = [0, 2, 4, 5, 7, 9, 11] if rng.random() < 0.6 else [0, 2, 3, 5, 7, 8, 10]
    prog = [[0, 5, 3, 4], [0, 3, 4, 4], [5, 3, 0, 4], [0, 4, 5, 3]][int(rng.integers(0, 4))]
    lead, chords, bass = (int(rng.choice(programs[k])) for k in ("lead", "chords", "bass"))
    drums = rng.random() < 0.75
    arpeggio = rng.random() < 0.4
    parts: dict[int, list] = {0: [], 1: [], 2: [], 9: []}
    for bar in range(bars):
        deg, s = prog[bar % 4], bar * 4 * tpb
        tones = [root + 12 + scale[(deg + k) % 7] for k in (0, 2, 4)]
        if arpeggio:
            for i in range(8):
                parts[1].append((s + i * tpb // 2, tpb // 2 - 10, tones[i % 3], 55))
        else:
            parts[1] += [(s, 4 * tpb - 10, t, 50) for t in tones]
        parts[2] += [(s + b * tpb, tpb - 20, root - 12 + scale[deg], 85) for b in (0, 2)]
        pos = 0
        while pos < 4 * tpb:
            d = int(rng.choice([240, 480, 480, 960]))
            if rng.random() < 0.85:
                parts[0].append((s + pos, d - 20, root + 24 + scale[int(rng.integers(0, 7))],
                                 int(rng.integers(70, 110))))
            pos += d
        if drums:
            for b in range(4):
                parts[9].append((s + b * tpb, 100, 36 if b % 2 == 0 else 38, int(rng.integers(80, 110))))
                for h in (0, tpb // 2):
                    parts[9].append((s + b * tpb + h, 80, 42 if rng.random() < 0.8 else 46, 60))
    mid = mido.MidiFile(ticks_per_beat=tpb)
    tempo = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))])
    mid.tracks.append(tempo)
    kit = programs["kits"][number % len(programs["kits"])]
    for ch, program in ((0, lead), (1, chords), (2, bass), (9, kit)):
        track = mido.MidiTrack()
        if program is not None:
            track.append(mido.Message("program_change", channel=ch, program=program, time=0))
        events = sorted([(s, 1, p, v) for s, d, p, v in parts[ch]] + [(s + d, 0, p, 0) for s, d, p, v in parts[ch]])
        now = 0
        for t, on, p, v in events:
            track.append(mido.Message("note_on" if on else "note_off", channel=ch, note=p, velocity=v, time=t - now))
            now = t
        mid.tracks.append(track)
    mid.save(path)
    return {"bpm": round(bpm), "programs": f"lead {lead}, chords {chords}, bass {bass}",
            "drums": f"drum kit {kit}" if drums else "no drums"}


def music(rng: np.random.Generator, programs: dict, seconds: float, sr: int, number: int) -> tuple[np.ndarray, dict]:
    from helpers.audio import load_audio

    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "s.mid", Path(tmp) / "s.wav"
        info = song(rng, programs, mid, seconds, number)
        subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", str(sr), "-F", str(wav), str(SOUND_FONT),
                        str(mid)], check=True, capture_output=True)
        return load_audio(wav, sr=sr)[: int(seconds * sr)], info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "backgrounds")
    ap.add_argument("--songs", type=int, default=16, help="training songs")
    ap.add_argument("--eval-songs", type=int, default=4, help="evaluation songs")
    ap.add_argument("--seconds", type=float, default=40.0, help="length of a song")
    args = ap.parse_args()
    missing = [t for t in ("text2wave", "fluidsynth") if shutil.which(t) is None]
    if missing or not SOUND_FONT.exists():
        sys.exit(f"needs {', '.join(missing) or SOUND_FONT}: see this file's docstring")

    import soundfile as sf

    from helpers.config import SR

    rows = []

    def keep(y: np.ndarray, split: str, family: str, source: str) -> None:
        name = f"{split}/{family}_{sum(r['split'] == split and r['family'] == family for r in rows):02d}.ogg"
        y = 0.5 * y / (np.abs(y).max() + 1e-9)
        (args.out / name).parent.mkdir(parents=True, exist_ok=True)
        # small files: Vorbis at its strongest compression (about 20 kbit/s), written in blocks
        with sf.SoundFile(args.out / name, "w", SR, 1, format="OGG", subtype="VORBIS",
                          compression_level=0.9) as f:
            for i in range(0, len(y), SR):
                f.write(y[i:i + SR])
        rows.append({"file": name, "split": split, "family": family, "seconds": round(len(y) / SR, 1),
                     "source": source})
        print(f"{name}: {len(y) / SR:.0f} s, {source}")

    for split in ("train", "eval"):
        rng = np.random.default_rng({"train": 11, "eval": 12}[split])
        for i, voice in enumerate(VOICES[split]):
            # each voice reads every text; the texts rotate so that clips start differently
            texts = TEXTS[split][i % len(TEXTS[split]):] + TEXTS[split][: i % len(TEXTS[split])]
            keep(speech(voice, " ".join(texts), SR, rng), split, "speech", f"Festival {voice[6:]}")
        for number in range(args.songs if split == "train" else args.eval_songs):
            y, info = music(rng, PROGRAMS[split], args.seconds, SR, number)
            keep(y, split, "music", f"FluidSynth FluidR3_GM, programs {info['programs']}, "
                                    f"{info['bpm']} bpm, {info['drums']}")
    pd.DataFrame(rows).to_csv(args.out / "catalogue.csv", index=False)
    print(f"{len(rows)} clips, {sum(r['seconds'] for r in rows) / 60:.1f} min, in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
