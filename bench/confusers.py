"""The experiment behind the README's "False plops at the confusers": can training teach the
detector to leave the knocks, taps, clinks and clunks alone that it takes for plops, and at
what cost?

On the larger synthetic test set the shipped model's false plops come mostly from the
synthesizer's confusers (``evaluate.false_plops_at_confusers``: about 0.5 false plops per
confuser, against 0.74 a minute from everything else). Each variant trains the shipped
recipe (``make model``'s full profile) once, changed as follows, and is scored (Keras):

``shipped``
    the shipped model as it is (no training);
``focal``
    binary focal loss (γ = 2) instead of cross-entropy: the easy frames weigh less, the hard
    ones (confusers among them) more;
``confusers``
    every augmented training copy gets confusers (the augmentation's ``p_confusers`` 1 instead
    of 0.5), and the 72 half-minutes of recorded talk and music alone get 2–20 a minute too;
``weighted``
    the same, and the frames of each of those confusers (its first 0.3 s, where it is not a
    plop) weigh in the loss as much as a plop's (the positive-class weight; the recipe computes
    that weight from the mean frame label, which the marks, labelled -1 until the loss, lower:
    so plops also weigh about 16 % more than in the other variants);
``gru64``, ``wide``
    the shipped recipe with a GRU of 64 units instead of 32, and that with a last convolution
    block of 64 channels instead of 32 (more capacity: about 22 s an epoch instead of 18, each
    measured alone, so about 340 s to train, over the five minutes the issue allows).

Variants joined by ``+`` (``wide+confusers``) apply each.

Scores: the test split and the larger test set (event F1, precision, recall, false plops a
minute without confusers and per confuser, BPM within ±10 %), the 89 other-source sounds and the
game's held-out bubbles pooled at 0 / 10 / 20 dB in every background (``bubbles.sweep``), and
false plops a minute in recorded talk and music alone. Nothing of it is shipped. Run from the
repository root (about 6 min to train, 1 to score, on two cores)::

    .venv/bin/python bench/confusers.py shipped focal confusers weighted gru64 wide wide+confusers

A variant whose model is already in ``--work`` is scored again without training (its
``<variant>.json`` then has no training time: that is in the first run's).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VARIANTS = ("shipped", "focal", "confusers", "weighted", "gru64", "wide")
#: the seconds of a confuser whose frames ``weighted`` marks (long ones ring on: typing, glass)
MARKED_S = 0.3


def patch(variant: str) -> None:
    """Change the shipped recipe in this process as ``variant`` says (module docstring; a
    ``+`` joins two, e.g. ``wide+confusers``)."""
    if "+" in variant:
        for part in variant.split("+"):
            patch(part)
        return
    import numpy as np

    from helpers import augment, backgrounds, models
    from helpers.config import SR

    if variant == "focal":
        import keras

        keras.losses.BinaryCrossentropy = lambda: keras.losses.BinaryFocalCrossentropy(gamma=2.0)
    if variant in ("gru64", "wide"):
        models.build_crnn = functools.partial(models.build_crnn, gru_units=64,
                                              **({"channels": (16, 32, 64)} if variant == "wide" else {}))
    if variant == "confusers":
        real_negatives, real_augment = backgrounds.negatives, augment.augment

        def negatives(count, seconds, *, seed=0, split="train"):
            rng = np.random.default_rng(seed + 1000)
            return [(augment.mix_confusers(y, ev, rng=rng, rate_per_min=float(rng.uniform(2, 20))), ev)
                    for y, ev in real_negatives(count, seconds, seed=seed, split=split)]

        backgrounds.negatives = negatives
        augment.augment = functools.partial(real_augment, p_confusers=1.0)
    if variant == "weighted":
        real_negatives, real_augment = backgrounds.negatives, augment.augment

        def negatives(count, seconds, *, seed=0, split="train"):
            rng = np.random.default_rng(seed + 1000)
            out = []
            for y, ev in real_negatives(count, seconds, seed=seed, split=split):
                z, spots = augment.mix_confusers(y, ev, rng=rng, rate_per_min=float(rng.uniform(2, 20)), placed=True)
                out.append((z, spots[["start", "end"]].assign(label="x")))
            return out

        weight = {}
        real_epoch = models._train_epoch

        def features_and_labels(items, *, frontend):
            """Frame labels 1 for plops, -1 for the marked confusers (0 elsewhere)."""
            feats, labs = [], []
            for y, events in items:
                f = models.frontend_features(y, kind=frontend)
                conf = (events["label"].astype(str).eq("x").to_numpy() if "label" in events and len(events)
                        else np.zeros(len(events), bool))
                marks = events[conf].copy()   # each confuser's first MARKED_S seconds
                marks["end"] = np.minimum(marks["end"], (np.round(marks["start"] * SR) + MARKED_S * SR) / SR)
                lab = models.frame_labels(events[~conf], len(f), hop_s=models.HOP_S).astype(np.float32)
                lab[(models.frame_labels(marks, len(f), hop_s=models.HOP_S) == 1) & (lab == 0)] = -1
                if len(f) < models.WINDOW:
                    f = np.pad(f, ((0, models.WINDOW - len(f)), (0, 0)))
                    lab = np.pad(lab, (0, models.WINDOW - len(lab)))
                feats.append(f)
                labs.append(lab)
            pos = float((np.concatenate(labs) > 0.5).mean())
            weight["w"] = float(np.clip((1 - pos) / max(pos, 1e-4), 1.0, 20.0)) ** 0.5
            return feats, labs

        def train_epoch(model, x, y, weights, *, batch_size, progress=False):
            weights = np.where(y[..., 0] < 0, weight["w"], weights).astype(np.float32)
            return real_epoch(model, x, np.maximum(y, 0), weights, batch_size=batch_size, progress=progress)

        backgrounds.negatives = negatives
        augment.augment = functools.partial(real_augment, p_confusers=1.0, confuser_label="x")
        models.features_and_labels = features_and_labels
        models._train_epoch = train_epoch


def score(detector) -> dict:
    from helpers import backgrounds, bubbles, datasets
    from helpers.config import profile
    from helpers.evaluate import false_plops_at_confusers, summarize_scores
    from helpers.training import evaluate_detector

    prof = profile("full")   # what the variants train on, whatever $AED_PROFILE says
    main = datasets.synthetic(profile=prof, progress=False)
    out = {}
    for name, m in (("test split", main[main["split"] == "test"]),
                    ("larger test set", datasets.synthetic_test_extra(profile=prof, progress=False))):
        table, s = evaluate_detector(detector, m)
        table = table.merge(m[["recording", "n_confusers", "duration_s"]], on="recording")
        c = false_plops_at_confusers(table)
        out[name] = {"f1": round(s["f1"], 3), "precision": round(s["precision"], 3), "recall": round(s["recall"], 3),
                     "false_plops": s["fp"], "missed": s["fn"], "false_plops_a_minute_without_confusers": c["per_minute_without"],
                     "false_plops_per_confuser": c["per_confuser"], "bpm_within_10pct": round(s["bpm_within_10pct"], 3)}
    for name, pool in (("other sources", bubbles.single_bubbles(bubbles.others_folder())),
                       ("game held out", bubbles.split_pool()[1])):
        t = bubbles.sweep(detector, pool=pool)
        out[name] = {f"{snr:g} dB": round(summarize_scores(g)["f1"], 3) for snr, g in t.groupby("snr_db")}
    out["false plops a minute"] = backgrounds.false_plops_per_minute(detector)
    return out


def _variant(name: str) -> str:
    parts = name.split("+")
    known = name == "shipped" or all(p in VARIANTS and p != "shipped" for p in parts)
    if not known or len(set(parts)) < len(parts):
        raise argparse.ArgumentTypeError(f"unknown variant {name!r}: one of {', '.join(VARIANTS)}, or several joined by +")
    if "confusers" in parts and "weighted" in parts:
        raise argparse.ArgumentTypeError("weighted already has the confusers of confusers")
    return name


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("variants", nargs="+", type=_variant, help=f"{', '.join(VARIANTS)}, or several joined by +")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "confusers")
    args = ap.parse_args()
    if len(args.variants) > 1:   # one process each: the patches must not meet
        import subprocess

        for v in args.variants:
            subprocess.run([sys.executable, __file__, v, "--work", str(args.work)], check=True)
        return 0
    variant = args.variants[0]
    from helpers import datasets, training
    from helpers.config import profile
    from helpers.models import Detector, serial_ops

    serial_ops()
    result = {"variant": variant}
    if variant == "shipped":
        folder = ROOT / "models" / "crnn"
    else:
        folder = args.work / variant
        if not (folder / "config.json").exists():
            patch(variant)
            prof = profile("full")
            report = training.train_and_export(datasets.synthetic(profile=prof), datasets.synthetic_training_extra(profile=prof),
                                               out=folder, profile=prof, tune=datasets.synthetic_validation_extra(profile=prof),
                                               export=False)
            result.update(train_seconds=report["train_seconds"], best_epoch=report["best_epoch"],
                          postprocess=report["postprocess"])
    result.update(score(Detector.load(folder, backend="keras")))
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / f"{variant}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
