"""The training recipe of the shipped detector, shared by ``make model`` and notebook 05.

:func:`train_and_export` trains on synthetic recordings, exports LiteRT float and int8, and
scores the three on the test split; :func:`heldout_estimate` trains the same recipe without
some background families and airlock types — and without the recorded speech and music of
:mod:`helpers.backgrounds`, so that it never hears talking or music — and scores it on
recordings made only of them: the honest estimate of how the detector does on sounds it
never heard.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import backgrounds as recorded, bubbles, datasets, synth
from helpers.config import Profile, profile as get_profile
from helpers.evaluate import score_detections, summarize_scores
from helpers.models import Detector, export_litert, train_detector

#: Held out of training for the generalization estimate.
HELDOUT_BACKGROUNDS = ("music", "babble", "rain")
HELDOUT_AIRLOCKS = ("drip",)
SEEN_BACKGROUNDS = tuple(b for b in synth.BACKGROUNDS if b not in HELDOUT_BACKGROUNDS)
SEEN_AIRLOCKS = tuple(a for a in synth.AIRLOCKS if a not in HELDOUT_AIRLOCKS)


def evaluate_detector(detector: Detector, manifest: pd.DataFrame, *, progress: bool = False
                      ) -> tuple[pd.DataFrame, dict]:
    """Per-recording scores (with the manifest's SNR, backgrounds and airlock) and the
    pooled summary of a detector on the recordings of ``manifest``."""
    from tqdm.auto import tqdm

    refs, ests, durs = [], [], []
    for _, row in tqdm(manifest.iterrows(), total=len(manifest), desc="scoring", disable=not progress):
        y, ev = datasets.load_recording(row)
        refs.append(ev)
        ests.append(detector.detect(y))
        durs.append(len(y) / 16000)
    table = score_detections(refs, ests, durs, names=manifest["recording"].tolist())
    extra = [c for c in ("snr_db", "backgrounds", "airlock", "split") if c in manifest]
    table = table.merge(manifest[["recording", *extra]], on="recording", how="left")
    return table, summarize_scores(table)


def train_and_export(main_set: pd.DataFrame, extra: pd.DataFrame | None, *, out: str | Path,
                     profile: Profile | str | None = None, seed: int = 0, progress: bool = True,
                     export: bool = True, frontend: str = "pcen", backgrounds: list[str] | None = None,
                     negatives: bool | None = None, recorded_bubbles: bool | None = None,
                     tune: pd.DataFrame | None = None) -> dict:
    """Train on ``main_set``'s train split plus ``extra`` (and, with ``negatives``, the
    profile's recordings of speech and music alone: :func:`helpers.backgrounds.negatives`; with
    ``recorded_bubbles``, its recordings of real bubbles: :func:`helpers.bubbles.training_recordings`),
    validate on its val split, tune the post-processing on that split plus ``tune`` (more
    validation recordings: :func:`helpers.datasets.synthetic_validation_extra`), save to
    ``out``, export LiteRT, and score Keras / float / int8 on the test split.
    ``backgrounds`` limits the families the augmentation mixes in (default all). ``negatives``
    defaults to whether those include the recorded ones, so that limiting the families keeps
    recorded speech and music out of training altogether; ``recorded_bubbles`` defaults to
    whether ``backgrounds`` is left at all families (the recorded bubbles are mixed into every
    procedural family)."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    out = Path(out)
    t0 = time.perf_counter()
    main_train = main_set[main_set["split"] == "train"]
    train_m = pd.concat([main_train, extra if extra is not None else None])
    n_extra = len(extra) if extra is not None else 0
    # the int8 export's representative audio: 12 training recordings, picked up front so that
    # the audio of the others can be freed as soon as training has its features (memory)
    pick = np.random.default_rng(seed).choice(len(main_train) + n_extra, size=min(12, len(main_train) + n_extra),
                                              replace=False)
    representative = [datasets.load_recording(train_m.iloc[i])[0] for i in pick] if export else []
    val = datasets.Recordings(main_set[main_set["split"] == "val"])
    if negatives is None:
        negatives = backgrounds is None or bool(set(backgrounds) & set(recorded.FAMILIES))
    n_hard = prof.train_negatives if negatives else 0
    if recorded_bubbles is None:
        recorded_bubbles = backgrounds is None
    n_bubbles = prof.train_bubbles if recorded_bubbles else 0
    # the main training recordings get one augmented copy each; the extra ones are variety enough,
    # and the hard negatives (speech or music alone) are trained on as they are.
    # The recordings are read from disk one at a time as training makes its features (memory).
    det, history = train_detector(datasets.Recordings(main_train), val, epochs=prof.train_epochs, copies=1,
                                  seed=seed, time_budget_s=prof.train_budget_s, progress=progress,
                                  frontend=frontend, backgrounds=backgrounds,
                                  extra=itertools.chain(datasets.Recordings(extra) if n_extra else [],
                                                        recorded.negatives(n_hard, prof.train_negatives_duration_s,
                                                                           seed=seed),
                                                        bubbles.training_recordings(
                                                            n_bubbles, prof.train_bubbles_duration_s, seed=seed)),
                                  tune=datasets.Recordings(tune) if tune is not None and len(tune) else None)
    train_seconds = time.perf_counter() - t0
    det.save(out)
    history.to_csv(out / "history.csv", index=False)
    report = {**det.config.report, "profile": prof.name, "train_recordings": len(train_m),
              "train_negatives": n_hard, "train_bubbles": n_bubbles,
              "train_minutes": round(float(train_m["duration_s"].sum()) / 60, 1),
              "train_seconds": round(train_seconds, 1), "postprocess": det.config.postprocess}
    test = main_set[main_set["split"] == "test"]
    backends = ["keras"]
    if export:
        report["sizes_bytes"] = export_litert(det, representative, folder=out)
        backends += ["float", "int8"]
    report["test"] = {}
    for backend in backends:
        d = Detector.load(out, backend=backend)
        table, summary = evaluate_detector(d, test)
        report["test"][backend] = summary
        if backend == "keras":
            table.to_csv(out / "test_scores.csv", index=False)
    return report


def heldout_sets(*, profile: Profile | str | None = None, recordings: int | None = None,
                 progress: bool = True) -> dict:
    """The synthetic sets of the held-out estimate, made when missing (cached in
    ``data/heldout-<profile>``): ``train`` (train, val and test splits) and ``extra``
    (``None`` when the profile has none) to train on and ``tune`` to tune the thresholds on,
    all without :data:`HELDOUT_BACKGROUNDS` and :data:`HELDOUT_AIRLOCKS`; ``unseen``, made only
    of those; and their ``folder``."""
    from helpers.config import data_dir

    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    n = recordings or max(prof.synth_recordings, 12)
    dur = prof.synth_duration_s
    base = data_dir() / f"heldout-{prof.name}"
    seen = {"airlocks": SEEN_AIRLOCKS, "backgrounds": SEEN_BACKGROUNDS, "progress": progress}
    train_m = datasets.cached_synthetic(base / "train", recordings=n, duration_s=dur, seed=101,
                                        prefix="seen", **seen)
    extra = datasets.synthetic_extra(prof, "train", folder=base / "train-extra", seed=102,
                                     prefix="seenx", **seen)
    tune = datasets.synthetic_extra(prof, "val", folder=base / "val-extra", seed=104,
                                    prefix="seenv", **seen)
    unseen = datasets.cached_synthetic(base / "unseen", recordings=max(n // 3, 4), duration_s=dur,
                                       seed=103, airlocks=HELDOUT_AIRLOCKS + ("s_type",),
                                       backgrounds=HELDOUT_BACKGROUNDS, prefix="unseen",
                                       progress=progress)
    return {"train": train_m, "extra": extra if len(extra) else None, "tune": tune,
            "unseen": unseen, "folder": base}


def heldout_estimate(*, profile: Profile | str | None = None, seed: int = 0, progress: bool = True,
                     recordings: int | None = None, frontend: str = "pcen") -> dict:
    """Train without :data:`HELDOUT_BACKGROUNDS` and :data:`HELDOUT_AIRLOCKS` (and without the
    recorded speech and music: the augmentation draws from the seen procedural families only,
    and there are no hard negatives), then score on recordings that have only held-out
    backgrounds (and, half of them, a held-out airlock), beside recordings like the training
    ones (:func:`heldout_sets`)."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    sets = heldout_sets(profile=prof, recordings=recordings, progress=progress)
    train_m, extra, tune, unseen, base = (sets[k] for k in ("train", "extra", "tune", "unseen", "folder"))
    report = train_and_export(train_m, extra, out=base / f"model-{frontend}", profile=prof, seed=seed,
                              progress=progress, export=False, frontend=frontend,
                              backgrounds=list(SEEN_BACKGROUNDS), tune=tune)
    det = Detector.load(base / f"model-{frontend}", backend="keras")
    unseen_table, unseen_summary = evaluate_detector(det, unseen)
    drip = unseen_table[unseen_table["airlock"].isin(HELDOUT_AIRLOCKS)]
    return {"frontend": frontend, "held_out_backgrounds": list(HELDOUT_BACKGROUNDS), "held_out_airlocks": list(HELDOUT_AIRLOCKS),
            "seen_test": report["test"]["keras"], "unseen": unseen_summary,
            "unseen_held_out_airlock_f1": summarize_scores(drip)["f1"] if len(drip) else None}


def report_table(report: dict) -> str:
    """The shipped model's figures as the Markdown table that the README and the slides show
    (``tests/test_readme.py`` checks that they show exactly this table for
    ``models/crnn/report.json``).

    Examples
    --------
    >>> s = {"f1": 0.9, "precision": 0.95, "recall": 0.855, "bpm_within_10pct": 0.75, "recordings": 12}
    >>> print(report_table({"test": {"keras": s}}))
    | synthetic data | event F1 (onsets, 100 ms) | precision | recall | BPM within ±10 % |
    | --- | --- | --- | --- | --- |
    | test split, Keras | 0.900 | 0.950 | 0.855 | 75 % of 12 recordings |
    """
    def row(name: str, s: dict, first: bool = False) -> str:
        share = f"{s['bpm_within_10pct'] * 100:.0f} %" + (f" of {s['recordings']} recordings" if first else "")
        return f"| {name} | {s['f1']:.3f} | {s['precision']:.3f} | {s['recall']:.3f} | {share} |"

    lines = ["| synthetic data | event F1 (onsets, 100 ms) | precision | recall | BPM within ±10 % |",
             "| --- | --- | --- | --- | --- |"]
    names = {"keras": "test split, Keras", "float": "test split, LiteRT float", "int8": "test split, LiteRT int8"}
    for i, (backend, s) in enumerate(report.get("test", {}).items()):
        if backend != "float":  # float scores as Keras does; the table keeps the two that differ
            lines.append(row(names[backend], s, first=i == 0))
    labels = report.get("test", {}).get("keras", {}).get("bpm_within_10pct_labels")
    if labels is not None:  # the BPM estimator's own limit, for reading the column above it
        lines.append(f"| test split, the labels themselves (a perfect detector) | 1.000 | 1.000 | 1.000 | "
                     f"{labels * 100:.0f} % |")
    h = report.get("heldout")
    if h:
        held = ", ".join(h["held_out_backgrounds"]) + " and " + ", ".join(h["held_out_airlocks"]) + " plops"
        lines.append(row(f"held-out sounds: trained without {held} (and without recorded speech and music), "
                         "tested on them", h["unseen"]))
        lines.append(row("that model, tested on sounds like its training data", h["seen_test"]))
    return "\n".join(lines)


def format_report(report: dict) -> str:
    """A short human-readable summary of :func:`train_and_export`'s report."""
    alone = [f"{report[k]} {what}" for k, what in (("train_negatives", "of speech or music alone"),
                                                   ("train_bubbles", "of recorded bubbles"))
             if report.get(k)]
    lines = [f"trained on {report['train_recordings']} recordings ({report['train_minutes']} min)"
             + (f" and {' and '.join(alone)}" if alone else "")
             + f" in {report['train_seconds']:.0f} s; best epoch {report['best_epoch']} of "
             f"{report['epochs_run']}; {report['params']} parameters, "
             f"{report['macs_per_second'] / 1e6:.1f} M multiply-adds per second of audio"]
    for backend, s in report.get("test", {}).items():
        lines.append(f"test split, {backend:5}: event F1 {s['f1']:.3f} (P {s['precision']:.3f}, "
                     f"R {s['recall']:.3f}), BPM within ±10 % on {s['bpm_within_10pct']:.0%} of "
                     f"recordings, median BPM error {s['bpm_error_median']:.1%}")
    if "sizes_bytes" in report:
        z = report["sizes_bytes"]
        lines.append(f"sizes: keras {z['keras'] / 1e3:.0f} kB, LiteRT float {z['float'] / 1e3:.0f} kB, "
                     f"int8 {z['int8'] / 1e3:.0f} kB")
    if "heldout" in report:
        h = report["heldout"]
        lines.append(f"held out ({', '.join(h['held_out_backgrounds'])}; {', '.join(h['held_out_airlocks'])}): "
                     f"event F1 {h['unseen']['f1']:.3f} on unseen sounds vs {h['seen_test']['f1']:.3f} on seen ones")
    return "\n".join(lines)
