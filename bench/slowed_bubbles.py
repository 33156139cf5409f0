"""The experiment behind the README's table "What I tried" under "Bubbles and drops from other
sources": does training also on the game's training bubbles played slower (bigger bubbles,
lower and longer) teach the detector the big, low bubbles of other sources, and at what cost?

Each variant trains the shipped recipe (``make model``'s full profile) once, with the training
half of the game's bubbles (``bubbles.split_pool``) plus each of them played at every factor
in ``--slow``, and ``--negatives`` recordings of talk and music alone, then is scored (Keras)
on:

- the 89 sounds of ``data/bubbles/others`` pooled, at 0 / 10 / 20 dB in every background;
- each package's sounds alone at 10 dB in five backgrounds, two tracks (their mean);
- the game's held-out bubbles at 0 / 10 / 20 dB;
- the larger synthetic test set (event F1);
- recorded talk and music alone (false plops a minute).

Nothing of it is shipped. Run from the repository root, e.g. (about 6 min per training on two
cores, 2 more to score)::

    .venv/bin/python bench/slowed_bubbles.py --slow ""          # the shipped recipe
    .venv/bin/python bench/slowed_bubbles.py --slow 0.7
    .venv/bin/python bench/slowed_bubbles.py --slow 0.5,0.7
    .venv/bin/python bench/slowed_bubbles.py --slow 0.5,0.7 --negatives 144
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FAMILIES_PER_PACKAGE = ["pink", "hum", "babble", "music", "rain"]


def slowed(pool, factors):
    """``pool`` plus each bubble played ``factor`` times as fast for every factor (below 1: a
    bigger bubble, lower and longer), each scaled to a peak of 1."""
    import numpy as np

    from helpers import bubbles
    from helpers.audio import resample
    from helpers.config import SR

    out = list(pool)
    for f in factors:
        for b in pool:
            z = resample(b.audio, SR * f, SR).astype(np.float32)
            z /= max(float(np.abs(z).max()), 1e-9)
            z.setflags(write=False)
            out.append(bubbles.Bubble(z, b.source))
    return tuple(out)


def score(model: Path) -> dict:
    from helpers import backgrounds, bubbles, datasets
    from helpers.evaluate import summarize_scores
    from helpers.models import Detector
    from helpers.training import evaluate_detector

    det = Detector.load(model, backend="keras")
    others = bubbles.single_bubbles(bubbles.others_folder())
    _, game_held = bubbles.split_pool()
    out = {}
    for name, pool in (("other sources", others), ("game held out", game_held)):
        t = bubbles.sweep(det, pool=pool)
        out[name] = {f"{snr:g} dB": round(summarize_scores(g)["f1"], 3) for snr, g in t.groupby("snr_db")}
    per = bubbles.by_package(det, others, snr_db=10.0, families=FAMILIES_PER_PACKAGE, seeds=(0, 1))
    out["mean over packages, 10 dB"] = round(float(per["f1"].mean()), 3)
    out["per package, 10 dB"] = dict(zip(per["package"], per["f1"].round(3)))
    _, summary = evaluate_detector(det, datasets.synthetic_test_extra(progress=False))
    out["larger test set F1"] = round(summary["f1"], 3)
    out["false plops a minute"] = backgrounds.false_plops_per_minute(det)
    talk = bubbles.in_talk_and_music(det, others)
    out["other sources in talk and music"] = {f"{r.family} {r.snr_db:g} dB": [round(r.f1, 3), round(r.bpm_within_10pct, 2)]
                                              for r in talk.itertuples()}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slow", default="0.5,0.7", help="comma-separated speed factors below 1 ('' for none)")
    ap.add_argument("--negatives", type=int, default=None, help="talk and music recordings (default: the profile's 72)")
    ap.add_argument("--extra-airlocks", default=None,
                    help="comma-separated airlock types of the extra training set (default: the profile's)")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "slowed-bubbles")
    args = ap.parse_args()
    factors = [float(f) for f in args.slow.split(",") if f.strip()]
    if any(not 0.5 <= f < 1.0 for f in factors):
        ap.error("speed factors must be in [0.5, 1)")

    from helpers import bubbles, datasets, training
    from helpers.config import profile
    from helpers.models import serial_ops

    serial_ops()
    prof = profile("full")
    if args.negatives is not None:
        prof = dataclasses.replace(prof, train_negatives=args.negatives)
    if args.extra_airlocks is not None:
        prof = dataclasses.replace(prof, train_extra_airlocks=tuple(args.extra_airlocks.split(",")))
    real_split = bubbles.split_pool

    def split_with_slowed(where=None):   # what training_recordings draws its bubbles from
        train, held = real_split(where)
        return slowed(train, factors), held

    bubbles.split_pool = split_with_slowed
    out = args.work / (f"slow{args.slow.replace(',', '_') or 'none'}-neg{prof.train_negatives}"
                       f"-{len(prof.train_extra_airlocks)}airlocks")
    report = training.train_and_export(datasets.synthetic(profile=prof), datasets.synthetic_training_extra(profile=prof),
                                       out=out, profile=prof, tune=datasets.synthetic_validation_extra(profile=prof),
                                       export=False)
    bubbles.split_pool = real_split
    result = {"slow": factors, "negatives": prof.train_negatives,
              "extra_airlocks": list(prof.train_extra_airlocks), "train_seconds": report["train_seconds"],
              **score(out)}
    (out / "slowed_bubbles.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
