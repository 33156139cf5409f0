"""Backgrounds made of recorded sounds: speech and music, beside the procedural families.

The procedural babble and music of :mod:`helpers.synth` are not enough to teach a detector
what talking and instruments sound like: trained on them alone, it fired about 50 times a
minute on recorded speech and on a band with drums. ``data/backgrounds/`` holds 28 minutes of
speech (the Festival synthesizer's voices, built from recordings of real speakers) and
music (songs played with the sampled instruments of the FluidR3 General MIDI sound font),
made by ``tools/render_backgrounds.py`` and listed in ``data/backgrounds/catalogue.csv``.

Two splits that share no voice, text, instrument, drum kit or song:

- ``train``: what :func:`helpers.augment.augment` mixes into training (families
  ``speech`` and ``instruments``, :data:`FAMILIES`);
- ``eval``: only for measuring (:func:`false_plops`, ``bench/run_bench.py --only
  backgrounds``).

Examples
--------
>>> import numpy as np
>>> y = excerpt("speech", np.random.default_rng(0), 16000)
>>> y.shape, round(float(np.sqrt(np.mean(y ** 2))), 3)
((16000,), 1.0)
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.config import REPO_ROOT, SR

#: the committed clips and their catalogue
FOLDER = REPO_ROOT / "data" / "backgrounds"

#: background family → the catalogue's ``family`` of its clips
FAMILIES = {"speech": "speech", "instruments": "music"}


def catalogue() -> pd.DataFrame:
    """The clips: ``file`` (under :data:`FOLDER`), ``split``, ``family``, ``seconds``, ``source``."""
    path = FOLDER / "catalogue.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the recorded backgrounds come with the repository "
                                "(tools/render_backgrounds.py makes them again)")
    return pd.read_csv(path)


def _rows(family: str, split: str) -> pd.DataFrame:
    """The catalogue's rows of ``family`` (a key of :data:`FAMILIES`) in ``split``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown recorded background {family!r}; known: {sorted(FAMILIES)}")
    cat = catalogue()
    rows = cat[(cat["family"] == FAMILIES[family]) & (cat["split"] == split)]
    if rows.empty:
        raise ValueError(f"no {family} clips in split {split!r} of {FOLDER / 'catalogue.csv'}")
    return rows


@functools.lru_cache(maxsize=None)
def clips(family: str, split: str = "train") -> tuple[np.ndarray, ...]:
    """The clips of ``family`` (a key of :data:`FAMILIES`) in ``split``, mono at 16 kHz, in
    the catalogue's order (read only: they are shared)."""
    from helpers.audio import load_audio

    out = tuple(load_audio(FOLDER / f, sr=SR) for f in _rows(family, split)["file"])
    for y in out:
        y.setflags(write=False)
    return out


def excerpt(family: str, rng: np.random.Generator, n: int, sr: int = SR, *, split: str = "train") -> np.ndarray:
    """``n`` samples of ``family``'s clips at rate ``sr``, with unit RMS: the clips in a random
    order, joined end to end as often as needed, from a random starting point. The same
    signature as the generators of :data:`helpers.synth.BACKGROUNDS`."""
    from helpers.audio import resample

    pool = clips(family, split)
    need = int(np.ceil(n * SR / sr)) + 1
    order = rng.permutation(len(pool))
    joined = np.concatenate([pool[i] for i in order])
    # as if the clips repeated (twice as often as needed), without building that long array
    start = int(rng.integers(0, len(joined) * (need // len(joined) + 2) - need))
    y = joined[(start + np.arange(need)) % len(joined)].astype(np.float64)
    if sr != SR:
        y = resample(y, SR, sr)
    y = y[:n]
    return y / (np.sqrt(np.mean(y ** 2)) + 1e-12)


#: generators ``(rng, n_samples, sr) → unit-RMS signal`` of the training clips
GENERATORS = {name: functools.partial(excerpt, name) for name in FAMILIES}


def false_plops(detector, *, split: str = "eval", per_family: bool = False) -> pd.DataFrame:
    """Run ``detector`` (anything with ``detect(y)``) on every clip of ``split`` — no plops
    in them — and count what it finds: one row per clip with ``family``, ``source``,
    ``minutes``, ``detections`` and ``per_minute``; with ``per_family``, one row per family
    (``minutes``, ``detections``, ``per_minute`` over all its clips)."""
    rows = []
    for family in FAMILIES:
        for (_, row), y in zip(_rows(family, split).iterrows(), clips(family, split)):
            n = len(detector.detect(y))
            minutes = len(y) / SR / 60
            rows.append({"clip": row["file"], "family": family, "source": row["source"],
                         "minutes": round(minutes, 2), "detections": n, "per_minute": n / minutes})
    table = pd.DataFrame(rows)
    if per_family:
        table = table.groupby("family")[["minutes", "detections"]].sum()
        table["per_minute"] = table["detections"] / table["minutes"]
    return table


def false_plops_per_minute(detector, *, split: str = "eval") -> dict:
    """What :func:`false_plops` finds a minute in each family over all its clips, rounded to a
    tenth: ``{"speech": …, "instruments": …}`` (the figure ``train`` and the bench report)."""
    table = false_plops(detector, split=split, per_family=True)
    return {family: round(float(v), 1) for family, v in table["per_minute"].items()}


def scores_in(detector, recordings, *, snr_db=(10.0, 0.0), seed: int = 0,
              split: str = "eval") -> pd.DataFrame:
    """``detector`` on ``recordings`` with ``split``'s speech or music added, each recording
    with one family at each SNR in ``snr_db`` (plops over the added sound): one row per
    family × SNR with the pooled event F1, precision, recall and BPM within ±10 %
    (:func:`helpers.evaluate.summarize_scores`). ``recordings`` is a manifest (read from disk)
    or a sequence of ``(audio at 16 kHz, events)`` pairs, e.g. recorded bubbles
    (:func:`helpers.bubbles.bubble_track`)."""
    from helpers.augment import add_at_snr
    from helpers.datasets import load_recording
    from helpers.evaluate import score_detections, summarize_scores

    if isinstance(recordings, pd.DataFrame):
        signals = [load_recording(row) for _, row in recordings.iterrows()]
    else:
        signals = [(np.asarray(y, dtype=np.float32), ev) for y, ev, *_ in recordings]
    if not signals:
        raise ValueError("no recordings to score")
    rows = []
    for family in FAMILIES:
        for snr in snr_db:
            rng = np.random.default_rng(seed)
            refs, ests, durs = [], [], []
            for y, ev in signals:
                z = add_at_snr(y, ev, excerpt(family, rng, len(y), split=split), snr_db=snr)
                refs.append(ev)
                ests.append(detector.detect(z))
                durs.append(len(y) / SR)
            s = summarize_scores(score_detections(refs, ests, durs))
            rows.append({"family": family, "snr_db": snr, **{k: s[k] for k in
                         ("f1", "precision", "recall", "bpm_within_10pct")}})
    return pd.DataFrame(rows)


def negatives(count: int, seconds: float, *, seed: int = 0, split: str = "train") -> list[tuple[np.ndarray, pd.DataFrame]]:
    """``count`` recordings of ``seconds`` with no plop in them, for training: speech and
    music (alternately) from ``split``'s clips, through a random recording chain
    (:func:`helpers.augment.channel`) at a random level, each with an empty label table.
    Hard negatives: what talking and a radio sound like when nothing bubbles."""
    from helpers.augment import channel
    from helpers.labels import empty_events

    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        y = excerpt(list(FAMILIES)[i % len(FAMILIES)], rng, int(seconds * SR), split=split)
        y = y / np.abs(y).max() * 10 ** (rng.uniform(-30, -3) / 20)
        out.append((channel(y.astype(np.float32), rng=rng), empty_events()))
    return out
