"""Weak labels: a plop detector learned from clip-level labels only (multiple-instance learning).

A *weak* label says only whether a clip holds at least one plop, not where: far cheaper to
give than the start and end of every plop (listen to five seconds, press yes or no). Each
clip is a *bag* of frames; the model gives a plop probability per frame, a **temporal
pooling** turns those into one clip probability, and the loss compares that with the clip
label. The frame probabilities before pooling are never trained directly, yet they show
where the plops are — which is what lets such a model count them:

    clip (T × 64 PCEN) → frame encoder → p_t (one per 10 ms) → pooling → P(clip has a plop)

The poolings (:data:`POOLINGS`, :func:`pool`):

================== ======================================= ===================================
``max``            ``max_t p_t``                           the classic MIL assumption: one
                                                           frame decides, only it learns
``mean``           ``mean_t p_t``                          every frame shares the clip's label
``linear_softmax`` ``Σ p_t² / Σ p_t``                      frames weighted by their own
                                                           probability (Wang et al., 2019)
``autopool``       ``Σ p_t softmax(αp)_t``, α ≥ 0 learned  mean at α = 0, max as α → ∞
                                                           (McFee et al., 2018)
``attention``      ``Σ p_t softmax(a)_t``, ``a_t`` from a  a second head learns which frames
                   layer on the frame features             to listen to (Kong et al., 2019)
================== ======================================= ===================================

The frame encoder reuses :func:`helpers.models.build_crnn`: its convolution blocks (which
pool only in frequency, so the 10 ms frames survive), with or without its GRU
(``encoder="crnn"`` or ``"cnn"``, optionally with a convolution along time, ``context``).
For localization the frame part alone is rebuilt for 2 s windows and wrapped in a
:class:`helpers.models.Detector`: the same windows, stitching and hysteresis
post-processing (:mod:`helpers.events`) as the strongly labeled CRNN, so the two are scored
the same way (:func:`evaluate`, the same scores as :func:`helpers.training.evaluate_detector`).

Clip labels come from the events here (the synthetic set has them), but only as "any plop
in this clip": the model never sees a plop's time. The post-processing thresholds, as for
every detector in this project, are tuned on the validation recordings' events.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from helpers.config import SR
from helpers.features import N_MELS, frontend_features
from helpers.models import HOP_S

#: Length of a weakly labeled clip, in seconds.
CLIP_S = 5.0
#: A plop must overlap a clip by this much for the clip to count as positive; a clip that a
#: plop only grazes (overlap above 0 but below this) is ambiguous and left out.
MIN_OVERLAP_S = 0.05
#: The temporal poolings :func:`build_weak_model` knows.
POOLINGS = ("max", "mean", "linear_softmax", "autopool", "attention")
_EPS = 1e-7

#: Sizes of the notebook's runs per profile: epochs, and training clips kept per class for
#: the long (:data:`CLIP_S`) and the short clips.
PROFILE_SETTINGS = {
    "full": {"epochs": 6, "max_per_class": 300, "short_clip_s": 2.0, "short_max_per_class": 560},
    "quick": {"epochs": 2, "max_per_class": 40, "short_clip_s": 2.0, "short_max_per_class": 60},
}


def profile_settings(name: str | None = None) -> dict:
    """The weak-label run sizes of a profile (``full`` or ``quick``; default ``$AED_PROFILE``).

    Examples
    --------
    >>> profile_settings("quick")["epochs"]
    2
    """
    from helpers.config import profile

    return dict(PROFILE_SETTINGS[profile(name).name])


# ---------------------------------------------------------------------------------------
# Clips and their weak labels
# ---------------------------------------------------------------------------------------
def clip_labels(events: pd.DataFrame, starts: np.ndarray, *, clip_s: float = CLIP_S,
                min_overlap_s: float = MIN_OVERLAP_S) -> tuple[np.ndarray, np.ndarray]:
    """Weak labels of clips ``[start, start + clip_s)`` from a recording's events.

    Returns ``labels`` (1.0 when some plop overlaps the clip by at least ``min_overlap_s``,
    or lies in it whole, 0.0 when none touches it, NaN when a plop only grazes it: ambiguous) and ``plops``, the
    number of plops overlapping each clip by at least ``min_overlap_s`` (shown to readers,
    never to the model).

    Examples
    --------
    >>> ev = pd.DataFrame({"start": [1.0, 1.5, 9.98], "end": [1.1, 1.6, 10.1], "label": "p"})
    >>> labels, plops = clip_labels(ev, np.array([0.0, 5.0, 10.0, 15.0]))
    >>> labels.tolist(), plops.tolist()
    ([1.0, nan, 1.0, 0.0], [2, 0, 1, 0])
    """
    starts = np.asarray(starts, dtype=float)
    s = events["start"].to_numpy(dtype=float)[None, :]
    e = np.maximum(events["end"].to_numpy(dtype=float), s[0] + HOP_S)[None, :]  # a point label: one frame
    lo, hi = starts[:, None], starts[:, None] + clip_s
    overlap = np.clip(np.minimum(e, hi) - np.maximum(s, lo), 0.0, None)
    needed = np.minimum(min_overlap_s, e - s) - 1e-9  # a plop shorter than that counts when whole
    plops = ((overlap > 0) & (overlap >= needed)).sum(axis=1)
    touched = (overlap > 0).any(axis=1)
    labels = np.where(plops > 0, 1.0, np.where(touched, np.nan, 0.0))
    return labels, plops.astype(int)


def gap_clip_starts(events: pd.DataFrame, duration_s: float, n: int, *, clip_s: float = CLIP_S,
                    guard_s: float = 0.1, rng: np.random.Generator) -> np.ndarray:
    """Start times of up to ``n`` clips drawn at random inside the gaps between plops.

    A gap clip keeps ``guard_s`` away from every plop, so its label is 0 by construction.
    Choosing *where* to cut them uses the plop times, which a weak annotator would not have;
    they only add negative clips where regular clips have too few. Returns fewer than ``n``
    (or none) when no gap is long enough.

    Examples
    --------
    >>> ev = pd.DataFrame({"start": [1.0, 9.0], "end": [1.1, 9.1], "label": "p"})
    >>> s = gap_clip_starts(ev, 12.0, 3, clip_s=5.0, rng=np.random.default_rng(0))
    >>> bool(((s >= 1.2) & (s + 5.0 <= 8.9)).all()), len(s)
    (True, 3)
    """
    order = np.argsort(events["start"].to_numpy(dtype=float))
    busy_lo = events["start"].to_numpy(dtype=float)[order] - guard_s
    busy_hi = np.maximum.accumulate(events["end"].to_numpy(dtype=float)[order] + guard_s) \
        if len(order) else np.zeros(0)
    # free time: from the start (or the end of the plops so far, plus guard) to the next plop
    free_lo = np.concatenate([[0.0], busy_hi])
    free_hi = np.concatenate([busy_lo, [duration_s]])
    room = free_hi - free_lo - clip_s
    ok = room > 0
    if n <= 0 or not ok.any():
        return np.zeros(0)
    lo, room = free_lo[ok], room[ok]
    pick = rng.choice(len(room), size=n, p=room / room.sum())
    return np.sort(lo[pick] + rng.uniform(0.0, room[pick]))


def cut_clips(events: pd.DataFrame, duration_s: float, *, clip_s: float = CLIP_S, gap_clips: int = 0,
              min_overlap_s: float = MIN_OVERLAP_S, recording: str = "",
              rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Clips of one recording with their weak labels: back-to-back clips of ``clip_s``
    seconds (``kind="grid"``), plus ``gap_clips`` negatives drawn between plops
    (``kind="gap"``, see :func:`gap_clip_starts`). Ambiguous clips are left out.

    Returns a DataFrame with ``recording``, ``start``, ``end``, ``label`` (0 or 1),
    ``plops`` (how many; not for training) and ``kind``.

    Examples
    --------
    >>> ev = pd.DataFrame({"start": [1.0, 12.0], "end": [1.2, 12.1], "label": "p"})
    >>> print(cut_clips(ev, 20.0, clip_s=5.0)[["start", "end", "label", "plops"]].to_string(index=False))
     start  end  label  plops
       0.0  5.0      1      1
       5.0 10.0      0      0
      10.0 15.0      1      1
      15.0 20.0      0      0
    """
    starts = np.arange(0.0, duration_s - clip_s + 1e-9, clip_s)
    kinds = ["grid"] * len(starts)
    if gap_clips > 0:
        rng = rng if rng is not None else np.random.default_rng(0)
        gap = gap_clip_starts(events, duration_s, gap_clips, clip_s=clip_s, rng=rng)
        starts, kinds = np.concatenate([starts, gap]), kinds + ["gap"] * len(gap)
    labels, plops = clip_labels(events, starts, clip_s=clip_s, min_overlap_s=min_overlap_s)
    table = pd.DataFrame({"recording": recording, "start": starts, "end": starts + clip_s,
                          "label": labels, "plops": plops, "kind": kinds})
    return table[table["label"].notna()].astype({"label": int}).reset_index(drop=True)


def balance(table: pd.DataFrame, *, max_per_class: int | None = None, seed: int = 0) -> pd.DataFrame:
    """As many positive as negative clips (the larger class subsampled at random), at most
    ``max_per_class`` of each; returned shuffled.

    Examples
    --------
    >>> t = pd.DataFrame({"label": [1, 1, 1, 1, 0, 0]})
    >>> balance(t, seed=0)["label"].value_counts().sort_index().tolist()
    [2, 2]
    """
    rng = np.random.default_rng(seed)
    n = int(table["label"].value_counts().min()) if table["label"].nunique() == 2 else 0
    if max_per_class is not None:
        n = min(n, max_per_class)
    parts = [table.iloc[rng.choice(np.flatnonzero(table["label"].to_numpy() == c), size=n, replace=False)]
             for c in (0, 1)]
    out = pd.concat(parts)
    return out.iloc[rng.permutation(len(out))].reset_index(drop=True)


# ---------------------------------------------------------------------------------------
# Features of clips
# ---------------------------------------------------------------------------------------
class ClipSet(NamedTuple):
    """Model inputs of clips (``x``: clips × frames × mels × 1, normalized), their weak
    labels (``y``) and the clip table (:func:`cut_clips`) they come from."""

    x: np.ndarray
    y: np.ndarray
    table: pd.DataFrame


def clip_frames(clip_s: float = CLIP_S) -> int:
    """Frames in a clip of ``clip_s`` seconds.

    Examples
    --------
    >>> clip_frames(5.0)
    500
    """
    return int(round(clip_s / HOP_S))


class Recording(NamedTuple):
    """Front-end features of one recording (frames × mels, not normalized), its events and
    its length: what :func:`load_features` returns for each recording."""

    name: str
    features: np.ndarray
    events: pd.DataFrame
    duration_s: float
    frontend: str


def load_features(source: "pd.DataFrame | Sequence[tuple[np.ndarray, pd.DataFrame]]", *,
                  frontend: str = "pcen", progress: bool = False) -> list[Recording]:
    """Front-end features and events of every recording of a manifest (loaded one at a
    time, so only the features stay in memory) or of a list of ``(audio at 16 kHz, events)``
    pairs (named ``rec0``, ``rec1``, …).

    Examples
    --------
    >>> y = np.zeros(3 * SR, dtype="float32")
    >>> ev = pd.DataFrame({"start": [1.0], "end": [1.1], "label": ["p"]})
    >>> r = load_features([(y, ev)])[0]
    >>> r.name, r.features.shape, r.duration_s
    ('rec0', (301, 64), 3.0)
    """
    from tqdm.auto import tqdm

    from helpers.datasets import load_recording

    if isinstance(source, pd.DataFrame):
        named = ((str(row["recording"]), *load_recording(row)) for _, row in source.iterrows())
    else:
        named = ((f"rec{i}", y, ev) for i, (y, ev) in enumerate(source))
    return [Recording(name, frontend_features(y, kind=frontend), ev, len(y) / SR, frontend)
            for name, y, ev in tqdm(named, total=len(source), desc="features", disable=not progress)]


def clips_of(recordings: Sequence[Recording], *, clip_s: float = CLIP_S, gap_clips: int = 0,
             seed: int = 0) -> pd.DataFrame:
    """The clips (:func:`cut_clips`) of every recording, in one table.

    Examples
    --------
    >>> ev = pd.DataFrame({"start": [1.0], "end": [1.1], "label": ["p"]})
    >>> r = Recording("a", np.zeros((1001, 64), "float32"), ev, 10.0, "pcen")
    >>> clips_of([r], clip_s=2.0)["label"].tolist()
    [1, 0, 0, 0, 0]
    """
    rng = np.random.default_rng(seed)
    tables = [cut_clips(r.events, r.duration_s, clip_s=clip_s, gap_clips=gap_clips, recording=r.name, rng=rng)
              for r in recordings]
    return pd.concat(tables, ignore_index=True) if tables else cut_clips(pd.DataFrame(
        {"start": [], "end": []}), 0.0, clip_s=clip_s)


def clip_counts(recordings: Sequence[Recording], *, clip_lengths: Sequence[float] = (1.0, 2.0, 5.0, 10.0)
                ) -> pd.DataFrame:
    """How many clips with and without plops back-to-back clips of each length give (one
    row per length), and the share without.

    Examples
    --------
    >>> ev = pd.DataFrame({"start": [1.0], "end": [1.1], "label": ["p"]})
    >>> r = Recording("a", np.zeros((1001, 64), "float32"), ev, 10.0, "pcen")
    >>> clip_counts([r], clip_lengths=(2.0, 5.0))  # doctest: +NORMALIZE_WHITESPACE
                 with plops  without  share without
    clip length
    2 s                   1        4            0.8
    5 s                   1        1            0.5
    """
    rows = {}
    for length in clip_lengths:
        labels = clips_of(recordings, clip_s=length)["label"]
        pos, neg = int((labels == 1).sum()), int((labels == 0).sum())
        rows[f"{length:g} s"] = {"with plops": pos, "without": neg,
                                 "share without": round(neg / max(pos + neg, 1), 2)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("clip length")


def clip_inputs(recordings: Sequence[Recording], table: pd.DataFrame, *, clip_s: float = CLIP_S,
                mean: np.ndarray | float = 0.0, std: np.ndarray | float = 1.0) -> ClipSet:
    """Cut the clips of ``table`` from the recordings' features, normalized with ``mean`` and
    ``std`` and zero-padded past the end of a recording.

    Examples
    --------
    >>> r = Recording("a", np.ones((1000, 64), "float32"), None, 10.0, "pcen")
    >>> t = pd.DataFrame({"recording": ["a", "a"], "start": [0.0, 8.0], "label": [1, 0]})
    >>> c = clip_inputs([r], t, clip_s=5.0)
    >>> c.x.shape, c.y.tolist(), float(c.x[1, 199, 0, 0]), float(c.x[1, 200, 0, 0])
    ((2, 500, 64, 1), [1.0, 0.0], 1.0, 0.0)
    """
    n = clip_frames(clip_s)
    features = {r.name: r.features for r in recordings}
    mean = np.asarray(mean, dtype=np.float32)
    std = np.asarray(std, dtype=np.float32)
    x = np.zeros((len(table), n, N_MELS, 1), dtype=np.float32)
    for i, (rec, start) in enumerate(zip(table["recording"], table["start"])):
        a = int(round(start / HOP_S))
        seg = features[rec][a:a + n]
        x[i, :len(seg), :, 0] = (seg - mean) / std
    return ClipSet(x, table["label"].to_numpy(dtype=np.float32), table.reset_index(drop=True))


def clip_audio(manifest: pd.DataFrame, clip: "pd.Series | dict") -> np.ndarray:
    """The audio (mono, 16 kHz) of one clip — a row of a clip table (:func:`cut_clips`) — from
    the manifest that holds its recording, to listen to it.

    Examples
    --------
    >>> y = clip_audio(manifest, data.train.table.iloc[0])   # doctest: +SKIP
    """
    from helpers.datasets import load_recording

    row = manifest[manifest["recording"] == clip["recording"]]
    if row.empty:
        raise KeyError(f"recording {clip['recording']!r} is not in the manifest given")
    y, _ = load_recording(row.iloc[0])
    return y[int(round(clip["start"] * SR)):int(round(clip["end"] * SR))]


class WeakData(NamedTuple):
    """Everything a weak model trains and is tuned on (:func:`prepare`)."""

    train: ClipSet                 # balanced training clips
    val: ClipSet                   # every regular clip of the validation recordings
    val_recordings: list[Recording]
    mean: np.ndarray               # normalization per mel band, from the training recordings
    std: np.ndarray
    clip_s: float
    frontend: str


def prepare(train: Sequence[Recording], val: Sequence[Recording], *, clip_s: float = CLIP_S,
            gap_clips: int = 0, max_per_class: int | None = None, seed: int = 0) -> WeakData:
    """Weakly labeled clips of the training and validation recordings (:func:`load_features`).

    Training clips are balanced (:func:`balance`, at most ``max_per_class`` of each class),
    with ``gap_clips`` extra negatives drawn per recording (:func:`gap_clip_starts`);
    validation clips are all the regular clips of the validation recordings. The
    normalization (mean and standard deviation per mel band) comes from the training
    recordings only.

    Examples
    --------
    >>> data = prepare(load_features(train_manifest), load_features(val_manifest))  # doctest: +SKIP
    >>> data.train.x.shape, float(data.train.y.mean())                              # doctest: +SKIP
    ((450, 500, 64, 1), 0.5)
    """
    if not train:
        raise ValueError("no training recordings: pass at least one to prepare()")
    frontend = train[0].frontend
    count = sum(len(r.features) for r in train)
    mean = sum(r.features.sum(axis=0, dtype=np.float64) for r in train) / count
    var = sum(((r.features - mean) ** 2).sum(axis=0) for r in train) / count
    std = np.sqrt(var) + 1e-3
    all_train = clips_of(train, clip_s=clip_s, gap_clips=gap_clips, seed=seed)
    counts = all_train["label"].value_counts()
    if counts.get(0, 0) == 0 or counts.get(1, 0) == 0:
        raise ValueError(f"the training recordings give {counts.get(1, 0)} clips of {clip_s:g} s with "
                         f"plops and {counts.get(0, 0)} without; both are needed: use shorter clips, "
                         "gap_clips, or recordings with quieter stretches")
    chosen = balance(all_train, max_per_class=max_per_class, seed=seed)
    train_set = clip_inputs(train, chosen, clip_s=clip_s, mean=mean, std=std)
    val_set = clip_inputs(val, clips_of(val, clip_s=clip_s), clip_s=clip_s, mean=mean, std=std)
    return WeakData(train_set, val_set, list(val), mean.astype(np.float32), std.astype(np.float32),
                    clip_s, frontend)


# ---------------------------------------------------------------------------------------
# Temporal pooling
# ---------------------------------------------------------------------------------------
def pool(probs: np.ndarray, *, kind: str = "max", alpha: float = 1.0,
         logits: np.ndarray | None = None) -> np.ndarray:
    """Clip probabilities from frame probabilities (``... × frames``), in NumPy: the
    reference for the Keras layer of :func:`temporal_pooling`.

    ``alpha`` is autopool's sharpness, ``logits`` the attention scores (same shape as
    ``probs``).

    Examples
    --------
    >>> p = np.array([0.0, 0.1, 0.9, 0.2])
    >>> [round(float(pool(p, kind=k)), 3) for k in ("max", "mean", "linear_softmax")]
    [0.9, 0.3, 0.717]
    >>> round(float(pool(p, kind="autopool", alpha=0.0)), 3), round(float(pool(p, kind="autopool", alpha=50.0)), 3)
    (0.3, 0.9)
    """
    p = np.asarray(probs, dtype=float)
    if kind == "max":
        return p.max(axis=-1)
    if kind == "mean":
        return p.mean(axis=-1)
    if kind == "linear_softmax":
        return (p ** 2).sum(axis=-1) / (p.sum(axis=-1) + _EPS)
    if kind in ("autopool", "attention"):
        a = alpha * p if kind == "autopool" else np.asarray(logits, dtype=float)
        w = np.exp(a - a.max(axis=-1, keepdims=True))
        w /= w.sum(axis=-1, keepdims=True)
        return (w * p).sum(axis=-1)
    raise ValueError(f"kind must be one of {POOLINGS}, not {kind!r}")


@functools.cache
def _pooling_layer():
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="helpers.weak")
    class TemporalPooling(keras.layers.Layer):
        """Frame probabilities (batch × frames × 1) → clip probability (batch × 1); for
        ``attention`` the layer takes ``[probs, logits]``."""

        def __init__(self, kind: str = "max", alpha: float = 1.0, **kwargs):
            super().__init__(**kwargs)
            if kind not in POOLINGS:
                raise ValueError(f"kind must be one of {POOLINGS}, not {kind!r}")
            self.kind = kind
            self.alpha_init = float(alpha)

        def build(self, input_shape):
            if self.kind == "autopool":
                self.alpha = self.add_weight(shape=(), name="alpha",
                                             initializer=keras.initializers.Constant(self.alpha_init),
                                             constraint=keras.constraints.NonNeg())

        def call(self, inputs):
            if self.kind == "attention":
                p, a = inputs
                return ops.sum(ops.softmax(a, axis=1) * p, axis=1)
            p = inputs
            if self.kind == "max":
                return ops.max(p, axis=1)
            if self.kind == "mean":
                return ops.mean(p, axis=1)
            if self.kind == "linear_softmax":
                return ops.sum(p * p, axis=1) / (ops.sum(p, axis=1) + _EPS)
            return ops.sum(ops.softmax(self.alpha * p, axis=1) * p, axis=1)  # autopool

        def compute_output_shape(self, input_shape):
            shape = input_shape[0] if self.kind == "attention" else input_shape
            return (shape[0], shape[2])

        def get_config(self):
            return {**super().get_config(), "kind": self.kind, "alpha": self.alpha_init}

    return TemporalPooling


def temporal_pooling(kind: str = "max", *, alpha: float = 1.0, name: str | None = None):
    """A Keras layer pooling frame probabilities (batch × frames × 1) into a clip
    probability (batch × 1), as :func:`pool`. ``attention`` is called on ``[probs, logits]``;
    ``autopool`` learns its ``alpha`` (kept ≥ 0, starting at ``alpha``).

    Examples
    --------
    >>> p = np.array([[[0.1], [0.7], [0.2]]], dtype="float32")   # 1 clip, 3 frames
    >>> [round(float(np.asarray(temporal_pooling(k)(p))[0, 0]), 3) for k in ("max", "mean", "linear_softmax")]
    [0.7, 0.333, 0.54]
    """
    return _pooling_layer()(kind=kind, alpha=alpha, name=name or f"{kind}_pooling")


# ---------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------
def _frame_part(*, frames: int, encoder: str, channels: tuple[int, ...], gru_units: int,
                dropout: float, context: int = 0):
    """(input, frame probabilities, frame features) of the frame encoder, built from
    :func:`helpers.models.build_crnn`'s layers."""
    from keras import layers

    from helpers.models import build_crnn

    base = build_crnn(frames=frames, channels=channels, gru_units=gru_units, dropout=dropout)
    if encoder == "crnn":
        return base.input, base.output, base.get_layer("gru").output
    if encoder == "cnn":  # the convolution blocks only: each frame sees ±3 frames (±30 ms)
        h = base.get_layer("gru").input
        if context:  # and a convolution along time: ±(3 + context // 2) frames
            h = layers.Conv1D(2 * channels[-1], context, padding="same", activation="relu", name="context")(h)
        return base.input, layers.Dense(1, activation="sigmoid", name="plop")(h), h
    raise ValueError(f"encoder must be 'cnn' or 'crnn', not {encoder!r}")


def build_weak_model(*, pooling: str = "attention", frames: int | None = None, encoder: str = "cnn",
                     channels: tuple[int, ...] = (8, 16, 16), gru_units: int = 16,
                     context: int = 0, dropout: float = 0.1):
    """A clip classifier trained from weak labels and its frame-level part.

    Returns ``(clip_model, frame_model)`` sharing their layers: ``clip_model`` maps
    ``clip × frames × mels × 1`` to one probability per clip, ``frame_model`` the same input
    to one probability per frame (read before the pooling). ``frames`` defaults to a
    :data:`CLIP_S` clip.

    Examples
    --------
    >>> clip_model, frame_model = build_weak_model(pooling="attention", frames=200)
    >>> clip_model.output.shape, frame_model.output.shape
    ((None, 1), (None, 200, 1))
    """
    import keras
    from keras import layers

    frames = frames or clip_frames()
    inp, probs, h = _frame_part(frames=frames, encoder=encoder, channels=channels,
                                gru_units=gru_units, dropout=dropout, context=context)
    if pooling == "attention":
        logits = layers.Dense(1, name="attention")(h)
        clip = temporal_pooling("attention")([probs, logits])
    else:
        clip = temporal_pooling(pooling)(probs)
    return (keras.Model(inp, clip, name=f"weak_{pooling}"),
            keras.Model(inp, probs, name=f"weak_{pooling}_frames"))


# ---------------------------------------------------------------------------------------
# Training, localization and scores
# ---------------------------------------------------------------------------------------
def clip_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of clip scores (NaN when one class is missing).

    Examples
    --------
    >>> clip_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]))
    0.75
    """
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, scores))


def predict_clips(clip_model, x: np.ndarray, *, batch_size: int = 16) -> np.ndarray:
    """Clip probabilities of the inputs ``x`` (clips × frames × mels × 1).

    Examples
    --------
    >>> clip_model, _ = build_weak_model(pooling="max", frames=100)
    >>> predict_clips(clip_model, np.zeros((3, 100, 64, 1), "float32")).shape
    (3,)
    """
    out = [np.asarray(clip_model(x[i:i + batch_size], training=False))[:, 0]
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


class WeakRun(NamedTuple):
    """What :func:`train_weak` returns."""

    detector: object            # helpers.models.Detector: the frame part, tuned post-processing
    clip_model: object          # keras.Model: clips → clip probability
    history: pd.DataFrame       # per epoch: training loss, validation clip AUC


def train_weak(data: WeakData, *, pooling: str = "linear_softmax", encoder: str = "cnn",
               channels: tuple[int, ...] = (8, 16, 16), gru_units: int = 16, context: int = 0,
               epochs: int = 6, batch_size: int = 16, learning_rate: float = 5e-3, seed: int = 0,
               tune: bool = True, progress: bool = False) -> WeakRun:
    """Train a weak-label model on ``data`` (:func:`prepare`) with clip-level binary
    cross-entropy, keeping the epoch with the best validation **clip** AUC (weak labels
    only; the last epoch when the validation clips are all of one class), then wrap its
    frame part in a :class:`helpers.models.Detector` for 2 s windows.

    ``encoder``, ``channels``, ``gru_units`` and ``context`` go to :func:`build_weak_model`.
    Training runs batch by batch in a random order drawn from ``seed`` (which also seeds
    Keras), so a run is repeatable on the same machine.

    With ``tune=True`` the detector's hysteresis thresholds are tuned on the validation
    recordings' events (:func:`helpers.events.tune_postprocessing`), as for the strong
    CRNN; otherwise they stay at ``on=0.5``.

    Examples
    --------
    >>> run = train_weak(prepare(train_items, val_items), pooling="max")  # doctest: +SKIP
    >>> events = run.detector.detect(audio)                               # doctest: +SKIP
    """
    import keras

    from helpers.events import tune_postprocessing
    from helpers.models import WINDOW, Detector, DetectorConfig

    t0 = time.perf_counter()
    keras.utils.set_random_seed(seed)
    options = {"encoder": encoder, "channels": tuple(channels), "gru_units": gru_units, "context": context}
    clip_model, frame_model = build_weak_model(pooling=pooling, frames=clip_frames(data.clip_s), **options)
    clip_model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=keras.losses.BinaryCrossentropy())
    rng = np.random.default_rng(seed)
    history, best = [], (-1.0, None, 0)
    for epoch in range(epochs):
        t1 = time.perf_counter()
        order = rng.permutation(len(data.train.x))
        losses = []
        for i in range(0, len(order), batch_size):  # batch by batch: no copy of the whole set
            idx = np.sort(order[i:i + batch_size])
            loss = clip_model.train_on_batch(data.train.x[idx], data.train.y[idx])
            losses.append(float(np.ravel(loss)[0]) * len(idx))
        val_auc = clip_auc(data.val.y, predict_clips(clip_model, data.val.x))
        history.append({"epoch": epoch + 1, "loss": sum(losses) / len(order), "val_clip_auc": val_auc,
                        "seconds": round(time.perf_counter() - t1, 1)})
        if progress:
            print(f"{pooling}: epoch {epoch + 1}/{epochs}, loss {history[-1]['loss']:.3f}, "
                  f"val clip AUC {val_auc:.3f} ({history[-1]['seconds']} s)", flush=True)
        if not val_auc <= best[0]:  # also keeps the first epoch when the AUC is NaN
            best = (val_auc, clip_model.get_weights(), epoch + 1)
    clip_model.set_weights(best[1])
    # the frame part, rebuilt for the detector's 2 s windows (the weights do not depend on length)
    _, window_model = build_weak_model(pooling="max", frames=WINDOW, **options)
    window_model.set_weights(frame_model.get_weights())
    config = DetectorConfig(frontend=data.frontend, norm_mean=[float(v) for v in data.mean],
                            norm_std=[float(v) for v in data.std])
    det = Detector(window_model, config, backend="keras")
    if tune and data.val_recordings:
        probs = [frame_activations(det, r) for r in data.val_recordings]
        config.postprocess, _ = tune_postprocessing(probs, [r.events for r in data.val_recordings], hop_s=HOP_S)
    config.report = {"pooling": pooling, **{k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
                     "clip_s": data.clip_s, "train_clips": int(len(data.train.y)), "best_epoch": best[2],
                     "val_clip_auc": best[0], "params": int(clip_model.count_params()),
                     "train_seconds": round(time.perf_counter() - t0, 1)}
    return WeakRun(det, clip_model, pd.DataFrame(history))


def localize(detector, y: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """Frame activations (one per 10 ms) and plop events of mono 16 kHz audio, from a weak
    model's detector (:func:`train_weak`): the activations before pooling, through the
    detector's hysteresis post-processing.

    Examples
    --------
    >>> probs, events = localize(run.detector, audio)   # doctest: +SKIP
    """
    probs = detector.probabilities(y)
    return probs, detector.events_from_probabilities(probs)


def frame_activations(detector, recording: Recording) -> np.ndarray:
    """A detector's probability per frame of a recording's (un-normalized) features, as
    ``detector.probabilities`` gives from audio.

    Examples
    --------
    >>> from helpers.models import Detector
    >>> det = Detector.load(backend="keras")   # the strong CRNN; a weak run's .detector alike
    >>> silence = load_features([(np.zeros(2 * SR, "float32"), pd.DataFrame({"start": [], "end": []}))])
    >>> frame_activations(det, silence[0]).shape
    (201,)
    """
    return detector.probabilities_from_features(detector.normalize(recording.features))


def evaluate(detector, recordings: Sequence[Recording], *, collar: float = 0.1,
             postprocess: dict | None = None, probs: Sequence[np.ndarray] | None = None
             ) -> tuple[pd.DataFrame, dict]:
    """Event scores (onsets within ``collar``) of a detector (weak or strong) on recordings:
    the per-recording table of :func:`helpers.evaluate.score_detections` and its pooled
    summary (:func:`helpers.evaluate.summarize_scores`) — what
    :func:`helpers.training.evaluate_detector` reports, from features already computed.
    ``postprocess`` replaces the detector's tuned settings (e.g. ``{"on": 0.5}``); ``probs``
    are the detector's frame activations of the recordings when already computed.

    Examples
    --------
    >>> table, summary = evaluate(run.detector, test_recordings)   # doctest: +SKIP
    >>> summary["f1"]                                              # doctest: +SKIP
    0.796
    """
    from helpers.evaluate import score_detections, summarize_scores
    from helpers.events import probabilities_to_events

    if any(r.frontend != detector.config.frontend for r in recordings):
        raise ValueError(f"the detector uses the {detector.config.frontend!r} front end; "
                         "load the features with load_features(..., frontend=...) to match")
    settings = detector.config.postprocess if postprocess is None else postprocess
    if probs is None:
        probs = [frame_activations(detector, r) for r in recordings]
    estimates = [probabilities_to_events(p, hop_s=HOP_S, **settings) for p in probs]
    table = score_detections([r.events for r in recordings], estimates, [r.duration_s for r in recordings],
                             names=[r.name for r in recordings], collar=collar)
    return table, summarize_scores(table)


def clip_scores(model, recordings: Sequence[Recording], *, clip_s: float | None = None,
                kind: str = "max") -> tuple[np.ndarray, np.ndarray]:
    """Weak labels and scores of the regular clips of ``recordings``: ``(labels, scores)``.

    ``model`` is a weak run (:class:`WeakRun`: its clip model answers) or a frame detector
    such as the strong CRNN (:class:`helpers.models.Detector`: its frame probabilities over
    each clip pooled by :func:`pool` with ``kind`` — how a strongly labeled model answers
    the weak question). ``clip_s`` defaults to the weak run's clip length, or :data:`CLIP_S`.

    Examples
    --------
    >>> labels, scores = clip_scores(run, test_recordings)   # doctest: +SKIP
    >>> clip_auc(labels, scores)                             # doctest: +SKIP
    0.961
    """
    det = model.detector if isinstance(model, WeakRun) else model
    clip_s = clip_s or (det.config.report.get("clip_s", CLIP_S) if isinstance(model, WeakRun) else CLIP_S)
    table = clips_of(recordings, clip_s=clip_s)
    clips = clip_inputs(recordings, table, clip_s=clip_s, mean=det._mean, std=det._std)
    if isinstance(model, WeakRun):
        return clips.y, predict_clips(model.clip_model, clips.x)
    return clips.y, np.asarray([pool(det.probabilities_from_features(x[:, :, 0]), kind=kind) for x in clips.x])


def scores(model, recordings: Sequence[Recording], *, clip_s: float | None = None) -> dict:
    """One row of the comparison table for a weak run or a frame detector: event F1,
    precision and recall with its tuned post-processing, event F1 with untuned thresholds
    (``on=0.5``: no strongly labeled recording used at all), and the clip AUC
    (:func:`clip_scores`).

    Examples
    --------
    >>> pd.DataFrame({"weak": scores(run, test_recordings)}).T   # doctest: +SKIP
    """
    det = model.detector if isinstance(model, WeakRun) else model
    probs = [frame_activations(det, r) for r in recordings]
    _, tuned = evaluate(det, recordings, probs=probs)
    _, untuned = evaluate(det, recordings, probs=probs, postprocess={"on": 0.5})
    labels, clip = clip_scores(model, recordings, clip_s=clip_s)
    return {"event F1": tuned["f1"], "precision": tuned["precision"], "recall": tuned["recall"],
            "event F1, on=0.5": untuned["f1"], "clip AUC": clip_auc(labels, clip)}


# ---------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------
def plot_clips(clips: ClipSet, *, n: int = 6, seed: int = 0):
    """``n`` training clips (half with plops, half without) as the model sees them
    (normalized PCEN), titled with their weak label — the only thing the model is told."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(clips.y == 1), np.flatnonzero(clips.y == 0)
    k = n // 2
    pick = list(rng.choice(pos, size=min(k, len(pos)), replace=False)) + \
        list(rng.choice(neg, size=min(n - k, len(neg)), replace=False))
    ncols = min(3, len(pick))
    nrows = int(np.ceil(len(pick) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.7 * ncols, 2.2 * nrows), squeeze=False,
                             layout="constrained", sharey=True)
    for ax, i in zip(axes.flat, pick):
        x = clips.x[i, :, :, 0].T
        ax.imshow(x, origin="lower", aspect="auto", cmap="magma", vmin=-1.5, vmax=4.0,
                  extent=(0, x.shape[1] * HOP_S, 0, x.shape[0]))
        row = clips.table.iloc[i]
        text = f"label {int(clips.y[i])}: " + ("plops" if clips.y[i] else "no plop")
        ax.set_title(f"{text}  ({row['plops']} in fact)", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(pick):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("mel band", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("time in clip (s)", fontsize=8)
    return fig


def plot_activations(y: np.ndarray, events: pd.DataFrame, activations: dict[str, np.ndarray], *,
                     detected: dict[str, pd.DataFrame] | None = None,
                     thresholds: dict[str, float] | None = None, start: float = 0.0, end: float = 10.0,
                     title: str | None = None):
    """A mel spectrogram with the labeled plops above one row per model: its frame
    activations (read before pooling), its ``on`` threshold, its detected events (shaded)
    and the true onsets (orange lines)."""
    import matplotlib.pyplot as plt

    from helpers.plots import mark_events, spectrogram

    def window(ev):
        ev = ev[(ev["end"] > start) & (ev["start"] < end)].copy()
        ev[["start", "end"]] = ev[["start", "end"]].clip(start, end) - start
        return ev

    n = len(activations)
    fig, axes = plt.subplots(n + 1, 1, figsize=(11, 2.2 + 1.0 * n), sharex=True, layout="constrained",
                             gridspec_kw={"height_ratios": [2.2] + [1] * n})
    spectrogram(y[int(start * SR):int(end * SR)], events=window(events), ax=axes[0], title=title)
    axes[0].set_xlabel("")
    f0, f1 = int(round(start / HOP_S)), int(round(end / HOP_S))
    for ax, (name, probs) in zip(axes[1:], activations.items()):
        p = np.asarray(probs)[f0:f1]
        for s in window(events)["start"]:
            ax.axvline(s, color="tab:orange", lw=0.8)
        if detected is not None and name in detected:
            mark_events(ax, window(detected[name]), color="tab:blue", alpha=0.2, label="detected")
        ax.plot(np.arange(len(p)) * HOP_S, p, color="tab:blue", lw=0.9)
        if thresholds and name in thresholds:
            ax.axhline(thresholds[name], color="k", ls="--", lw=0.7)
        ax.set_ylim(0, 1.02)
        ax.set_yticks([0, 1])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    axes[-1].set(xlabel="time (s)", xlim=(0, end - start))
    return fig


def plot_scores(table: pd.DataFrame, *, title: str | None = None):
    """Event F1 (tuned and untuned thresholds) and clip AUC per model, from rows of
    :func:`scores` indexed by model name."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), layout="constrained",
                             gridspec_kw={"width_ratios": [2, 1]})
    x = np.arange(len(table))
    for k, (col, color) in enumerate((("event F1", "tab:blue"), ("event F1, on=0.5", "tab:cyan"))):
        axes[0].bar(x + (k - 0.5) * 0.38, table[col], width=0.38, color=color, label=col)
        for xi, v in zip(x, table[col]):
            if np.isfinite(v):
                axes[0].text(xi + (k - 0.5) * 0.38, v + 0.02, f"{v:.2f}", ha="center", fontsize=7)
    axes[0].set(xticks=x, ylim=(0, 1.08), ylabel="event F1 (onsets, 100 ms)", title="events on the test split")
    axes[0].set_xticklabels(table.index, fontsize=8)
    axes[0].legend(fontsize=8, loc="lower right")
    axes[1].bar(x, table["clip AUC"], color="tab:purple")
    for xi, v in zip(x, table["clip AUC"]):
        axes[1].text(xi, v + 0.01 if np.isfinite(v) else 0.52, f"{v:.2f}", ha="center", fontsize=7)
    axes[1].set(xticks=x, ylim=(0.5, 1.04), title="clip AUC (has a plop?)")
    axes[1].set_xticklabels(table.index, fontsize=7, rotation=30, ha="right")
    if title:
        fig.suptitle(title)
    return fig


def plot_histories(histories: dict[str, pd.DataFrame]):
    """Validation clip AUC per epoch of each weak model, the kept epoch marked."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
    for name, h in histories.items():
        line, = ax.plot(h["epoch"], h["val_clip_auc"], "o-", ms=3, label=name)
        if h["val_clip_auc"].notna().any():
            best = h.loc[h["val_clip_auc"].idxmax()]
            ax.plot(best["epoch"], best["val_clip_auc"], "o", ms=9, mfc="none", color=line.get_color())
        else:
            ax.text(0.5, 0.5, "validation clips of one class only: no AUC", transform=ax.transAxes,
                    ha="center", fontsize=8)
    ax.set(xlabel="epoch", ylabel="validation clip AUC", title="training on weak labels (circled: kept)")
    ax.legend(fontsize=8)
    return fig
