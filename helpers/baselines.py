"""Detectors to beat: a tuned energy-threshold counter, and MFCC windows with logistic
regression.

The energy counter is what a homebrewer would write first: band-pass the audio to where
plops live, measure the level every 10 ms, and count a plop each time the level rises a set
number of decibels above the recording's own noise floor (its median level). Hysteresis
(the level must fall ``hysteresis_db`` below the threshold before the next plop) and a
minimum gap keep one plop from being counted twice. The threshold and the gap are tuned on
labeled recordings with :func:`tune_energy_counter`.

The MFCC baseline is the classic recipe before deep learning: describe a window of audio
centred on every 10 ms frame by summary statistics of its MFCCs and their deltas
(:func:`mfcc_frames`, :func:`window_features`, :class:`MfccSettings`), label each window
from the events (:func:`window_labels`), and fit a scikit-learn pipeline (standard scaler +
logistic regression with balanced class weights) on the training recordings
(:func:`fit_mfcc_baseline`, cross-validated by :func:`cross_validate_baseline` with folds
grouped by recording). The window classifier's probability is a per-frame probability
curve, so the same post-processing as the CRNN (:mod:`helpers.events`, tuned on validation
recordings) turns it into events and a BPM, and the detectors compare on equal terms.
:func:`cached_mfcc_baseline` keeps the fitted baseline of a data set in its folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import signal

from helpers.config import PLOP_LABEL, SR
from helpers.evaluate import pooled_onset_scores

HOP_S = 0.01
FRAME_S = 0.02


def band_energy_db(y: np.ndarray, *, sr: int = SR, band: tuple[float, float] = (300.0, 6000.0),
                   frame_s: float = FRAME_S, hop_s: float = HOP_S) -> np.ndarray:
    """Level in dB above the recording's median level, one value per ``hop_s``.

    Examples
    --------
    >>> y = np.random.default_rng(0).standard_normal(16000).astype("float32")
    >>> e = band_energy_db(y)
    >>> len(e), abs(float(np.median(e))) < 1e-6
    (100, True)
    """
    hi = min(band[1], 0.45 * sr)
    sos = signal.butter(4, [band[0], hi], "bandpass", fs=sr, output="sos")
    x = signal.sosfilt(sos, np.asarray(y, dtype=np.float64))
    hop = int(round(hop_s * sr))
    frame = int(round(frame_s * sr))
    n = max(len(x) // hop, 1)
    p = np.convolve(x * x, np.ones(frame) / frame, mode="same")
    p = p[hop // 2 :: hop][:n]
    db = 10 * np.log10(p + 1e-12)
    return db - np.median(db)


def events_from_level(level_db: np.ndarray, *, threshold_db: float, hysteresis_db: float = 3.0,
                      min_gap_s: float = 0.1, hop_s: float = HOP_S) -> pd.DataFrame:
    """Events where ``level_db`` rises above ``threshold_db`` (hysteresis, minimum gap).

    Examples
    --------
    >>> lv = np.zeros(100); lv[20:25] = 12; lv[60:70] = 15
    >>> events_from_level(lv, threshold_db=10)["start"].round(2).tolist()
    [0.2, 0.6]
    """
    level_db = np.asarray(level_db, dtype=float)
    # hysteresis: the state switches on above the threshold, off below threshold − hysteresis,
    # and otherwise keeps its last value (a forward fill of the decisive frames)
    mark = np.where(level_db > threshold_db, 1, np.where(level_db < threshold_db - hysteresis_db, 0, -1))
    idx = np.where(mark >= 0, np.arange(len(mark)), 0)
    np.maximum.accumulate(idx, out=idx)
    state = np.where(mark[idx] == 1, 1, 0) if len(mark) else mark
    state[(mark == -1) & (np.cumsum(mark >= 0) == 0)] = 0
    edges = np.diff(np.concatenate([[0], state, [0]]))
    on_idx = np.flatnonzero(edges == 1)
    off_idx = np.flatnonzero(edges == -1)
    if len(on_idx):
        # merge events separated by less than the minimum gap: they are the same plop
        keep = np.concatenate([[True], (on_idx[1:] - off_idx[:-1]) * hop_s >= min_gap_s])
        starts = on_idx[keep] * hop_s
        ends = np.concatenate([off_idx[:-1][keep[1:]], off_idx[-1:]]) * hop_s
    else:
        starts = ends = np.zeros(0)
    return pd.DataFrame({"start": starts, "end": ends, "label": PLOP_LABEL})


@dataclass(frozen=True)
class EnergyCounter:
    """A tuned energy-threshold counter."""

    threshold_db: float = 12.0
    min_gap_s: float = 0.1
    hysteresis_db: float = 3.0
    band: tuple[float, float] = (300.0, 6000.0)

    def detect(self, y: np.ndarray, *, sr: int = SR) -> pd.DataFrame:
        """Events (``start``, ``end``, ``label``) of the plops in ``y``."""
        lv = band_energy_db(y, sr=sr, band=self.band)
        return events_from_level(lv, threshold_db=self.threshold_db,
                                 hysteresis_db=self.hysteresis_db, min_gap_s=self.min_gap_s)


def tune_energy_counter(signals: Sequence[np.ndarray], references: Sequence[pd.DataFrame], *,
                        sr: int = SR, collar: float = 0.1,
                        thresholds: Sequence[float] = tuple(np.arange(2.0, 40.5, 0.5)),
                        min_gaps: Sequence[float] = (0.08, 0.12, 0.2, 0.3),
                        ) -> tuple[EnergyCounter, pd.DataFrame]:
    """Grid-search the threshold and minimum gap for the best pooled onset F1.

    Returns the best counter and the whole grid (``threshold_db``, ``min_gap_s``, ``f1``,
    ``precision``, ``recall``).
    """
    base = EnergyCounter()
    levels = [band_energy_db(y, sr=sr, band=base.band) for y in signals]
    rows = []
    for gap in min_gaps:
        for thr in thresholds:
            pairs = [(ref, events_from_level(lv, threshold_db=thr, min_gap_s=gap))
                     for lv, ref in zip(levels, references)]
            s = pooled_onset_scores(pairs, collar=collar)
            rows.append({"threshold_db": float(thr), "min_gap_s": gap, **s})
    grid = pd.DataFrame(rows)
    # among the settings within 0.002 of the best F1, take the middle threshold of the
    # plateau: the lowest one sits right at the level of the loudest non-plops
    top = grid[grid["f1"] >= grid["f1"].max() - 0.002]
    top = top[top["min_gap_s"] == top.loc[top["f1"].idxmax(), "min_gap_s"]]
    best = top.iloc[len(top) // 2]
    return EnergyCounter(threshold_db=float(best["threshold_db"]),
                         min_gap_s=float(best["min_gap_s"])), grid


def two_fold_energy_counter(signals: Sequence[np.ndarray], references: Sequence[pd.DataFrame], *,
                            names: Sequence[str] | None = None, sr: int = SR, collar: float = 0.1,
                            seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Tune the energy counter on one half of the recordings, score it on the other half,
    and the other way round.

    Returns a table with one row per recording (``recording``, ``fold``, ``threshold_db``,
    ``min_gap_s``, ``tp``, ``fp``, ``fn``, ``f1``), scored by the counter tuned on the *other*
    half, and the pooled held-out scores (``f1``, ``precision``, ``recall``, plus
    ``train_f1`` of each fold's tuning).

    Examples
    --------
    >>> table, pooled = two_fold_energy_counter(ys, refs)  # doctest: +SKIP
    >>> pooled["f1"]                                       # doctest: +SKIP
    0.68
    """
    from helpers.evaluate import onset_scores, prf

    n = len(signals)
    if n < 2:
        raise ValueError("need at least two recordings to tune on one half and test on the other")
    names = list(names) if names is not None else [f"rec{i}" for i in range(n)]
    order = np.random.default_rng(seed).permutation(n)
    halves = [np.sort(order[: n // 2]), np.sort(order[n // 2:])]
    rows, train_f1 = [], []
    for fold, (tune_idx, test_idx) in enumerate([(halves[0], halves[1]), (halves[1], halves[0])]):
        counter, grid = tune_energy_counter([signals[i] for i in tune_idx],
                                            [references[i] for i in tune_idx], sr=sr, collar=collar)
        train_f1.append(float(grid["f1"].max()))
        for i in test_idx:
            s = onset_scores(references[i], counter.detect(signals[i], sr=sr), collar=collar)
            rows.append({"recording": names[i], "fold": fold, "threshold_db": counter.threshold_db,
                         "min_gap_s": counter.min_gap_s, **s})
    table = pd.DataFrame(rows).sort_values("recording").reset_index(drop=True)
    pooled = prf(int(table["tp"].sum()), int(table["fp"].sum()), int(table["fn"].sum()))
    pooled["train_f1"] = train_f1
    return table, pooled


def energy_counter_report(manifest: pd.DataFrame, *, folder=None, progress: bool = True
                          ) -> tuple[pd.DataFrame, dict]:
    """:func:`two_fold_energy_counter` over a manifest, with per-recording SNR, background and
    airlock columns added; cached as ``energy_counter.csv`` / ``.json`` in ``folder`` (the
    data set's folder) so that the notebooks and ``make run`` share one computation."""
    import json
    from pathlib import Path

    from helpers.datasets import load_all

    folder = Path(folder) if folder is not None else Path(manifest["path"].iloc[0]).parent
    key = ",".join(sorted(manifest["recording"])) + str(manifest.get("config", pd.Series([""])).iloc[0])
    csv, js = folder / "energy_counter.csv", folder / "energy_counter.json"
    if csv.exists() and js.exists():
        pooled = json.loads(js.read_text())
        if pooled.get("key") == key:
            return pd.read_csv(csv), pooled
    ys, refs = load_all(manifest, progress=progress)
    table, pooled = two_fold_energy_counter(ys, refs, names=manifest["recording"].tolist())
    extra = [c for c in ("snr_db", "backgrounds", "airlock", "n_plops", "split") if c in manifest]
    table = table.merge(manifest[["recording", *extra]], on="recording")
    pooled["key"] = key
    table.to_csv(csv, index=False)
    js.write_text(json.dumps(pooled, indent=2))
    return table, pooled


# =======================================================================================
# The MFCC + logistic-regression baseline
# =======================================================================================
#: Version of the baseline recipe; part of the cache key, so a change refits the cache.
MFCC_BASELINE_VERSION = 2
#: Ways to normalize the MFCCs of a recording (see :func:`mfcc_frames`).
NORMALIZE = ("quiet", "median", "none")
#: The quietest frames (this percentage by ``mfcc0``) are the background reference.
QUIET_PERCENT = 20
#: Statistics :func:`window_features` can compute.
STATS = ("mean", "std", "max", "rise")


def mfcc_frames(y: np.ndarray, *, n_mfcc: int = 20, deltas: int = 2,
                normalize: str = "quiet") -> np.ndarray:
    """MFCCs with their deltas, one row per 10 ms frame (frames × ``(1 + deltas)·n_mfcc``).

    The MFCCs are the DCT of the log-mel frames of :func:`helpers.features.frontend_features`
    (``kind="logmel"``, 64 bands, 25 ms windows), so frame ``i`` is centred at ``i * 0.01`` s
    and there are ``len(y) // 160 + 1`` frames, exactly as for the CRNN. Deltas are local
    slopes over ±4 frames (``librosa.feature.delta``); ``deltas=2`` adds the delta-deltas.

    ``normalize`` removes what is constant over the recording (microphone, level, a steady
    background): ``"quiet"`` subtracts the mean MFCC of the quietest 20 % of frames (by
    ``mfcc0``, the log energy) — the background's own spectrum, which a plop stands out
    from; ``"median"`` subtracts each coefficient's median (classic cepstral mean
    normalization; at 200 plops a minute the median frame is itself part of a plop);
    ``"none"`` keeps absolute values.

    Examples
    --------
    >>> y = np.random.default_rng(0).standard_normal(16000).astype("float32")
    >>> mfcc_frames(y).shape, mfcc_frames(y, deltas=0, n_mfcc=13).shape
    ((101, 60), (101, 13))
    """
    import librosa
    from scipy.fft import dct

    from helpers.features import frontend_features

    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {NORMALIZE}, not {normalize!r}")
    if deltas not in (0, 1, 2):
        raise ValueError(f"deltas must be 0, 1 or 2, not {deltas!r}")
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"y must be mono audio (1-D) at {SR} Hz, got shape {y.shape}; "
                         "load it with helpers.audio.load_audio or downmix with to_mono")
    logmel = frontend_features(y, kind="logmel").astype(np.float64)
    c = dct(logmel, type=2, norm="ortho", axis=1)[:, :n_mfcc]
    if normalize == "median":
        c = c - np.median(c, axis=0)
    elif normalize == "quiet":
        quiet = c[:, 0] <= np.percentile(c[:, 0], QUIET_PERCENT)
        c = c - c[quiet].mean(axis=0)
    parts = [c] + [librosa.feature.delta(c, width=9, order=k, axis=0, mode="nearest")
                   for k in range(1, deltas + 1)]
    return np.hstack(parts).astype(np.float32)


def mfcc_names(n_mfcc: int = 20, deltas: int = 2) -> list[str]:
    """Names of the columns of :func:`mfcc_frames`: ``mfcc0``…, ``d_mfcc0``…, ``dd_mfcc0``….

    Examples
    --------
    >>> mfcc_names(2, deltas=1)
    ['mfcc0', 'mfcc1', 'd_mfcc0', 'd_mfcc1']
    """
    return [f"{p}mfcc{k}" for p in ("", "d_", "dd_")[: deltas + 1] for k in range(n_mfcc)]


def _window_sums(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sums of the rows ``x[lo[i]:hi[i]]`` for every ``i``, from cumulative sums."""
    c = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    return c[hi] - c[lo]


def window_features(frames: np.ndarray, *, window_s: float, stats: Sequence[str] = STATS,
                    hop_s: float = HOP_S) -> np.ndarray:
    """Summary statistics of a window centred on every frame (frames × ``len(stats)·d``).

    The window of frame ``i`` holds frames ``i − h … i + h`` with ``h = round(window_s / 2 /
    hop_s)``, cut at the ends of the recording (the statistics are over the frames that
    exist). For each column of ``frames``: ``mean``, ``std`` and ``max`` over the window,
    and ``rise``, the mean of the second half ``i … i + h`` minus that of the first half
    ``i − h … i`` (*does something start here?*). The columns come statistic by statistic.

    Everything comes from cumulative sums and one running maximum — no Python loop over
    frames: a minute of audio takes a few milliseconds.

    Examples
    --------
    >>> x = np.arange(10, dtype=float)[:, None]
    >>> f = window_features(x, window_s=0.04, stats=("mean", "max", "rise"))
    >>> f[:4, 0].tolist(), f[:4, 1].tolist(), float(f[4, 2])
    ([1.0, 1.5, 2.0, 3.0], [2.0, 3.0, 4.0, 5.0], 2.0)
    """
    from scipy.ndimage import maximum_filter1d

    x = np.asarray(frames, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"frames must be frames × features (2-D), got shape {x.shape}")
    unknown = set(stats) - set(STATS)
    if unknown:
        raise ValueError(f"unknown statistics {sorted(unknown)}; choose from {STATS}")
    n = len(x)
    if n == 0:
        return np.zeros((0, len(stats) * x.shape[1]), dtype=np.float32)
    h = max(int(round(window_s / 2 / hop_s)), 1)
    i = np.arange(n)
    lo, hi = np.maximum(i - h, 0), np.minimum(i + h + 1, n)
    cnt = (hi - lo)[:, None].astype(np.float64)
    # centred on the recording's mean first: no cancellation in the variance
    xc = x - x.mean(axis=0)
    out = []
    for s in stats:
        if s == "mean":
            out.append(_window_sums(x, lo, hi) / cnt)
        elif s == "std":
            m1 = _window_sums(xc, lo, hi) / cnt
            m2 = _window_sums(xc * xc, lo, hi) / cnt
            out.append(np.sqrt(np.maximum(m2 - m1 ** 2, 0.0)))
        elif s == "max":
            out.append(maximum_filter1d(x, size=2 * h + 1, axis=0, mode="nearest"))
        elif s == "rise":
            late = _window_sums(xc, i, hi) / (hi - i)[:, None]
            early = _window_sums(xc, lo, i + 1) / (i + 1 - lo)[:, None]
            out.append(late - early)
    return np.hstack(out).astype(np.float32)


def window_labels(events: pd.DataFrame, n_frames: int, *, rule: str = "onset",
                  centre_s: float = 0.05, hop_s: float = HOP_S) -> np.ndarray:
    """Label of the window centred on each frame: 1 for a plop, 0 otherwise.

    ``rule="onset"`` (default): 1 when a plop *onset* lies within ``± centre_s`` of the
    window's centre ``i * hop_s`` — the classifier learns "a plop starts here", which is
    what the onset F1 scores. ``rule="span"``: 1 when the centre lies inside a plop (the
    frame labels of :func:`helpers.features.frame_labels`, the CRNN's target).

    Examples
    --------
    >>> ev = pd.DataFrame({"start": [0.10], "end": [0.30], "label": ["p"]})
    >>> window_labels(ev, 40, centre_s=0.02).nonzero()[0].tolist()
    [8, 9, 10, 11, 12]
    >>> window_labels(ev, 40, rule="span").nonzero()[0].tolist() == list(range(10, 30))
    True
    """
    if rule == "span":
        from helpers.features import frame_labels

        return frame_labels(events, n_frames, hop_s=hop_s)
    if rule != "onset":
        raise ValueError(f"rule must be 'onset' or 'span', not {rule!r}")
    onsets = np.sort(events["start"].to_numpy(dtype=float)) if len(events) else np.zeros(0)
    t = np.arange(n_frames) * hop_s
    eps = 1e-9
    inside = (np.searchsorted(onsets, t + centre_s + eps, side="right")
              - np.searchsorted(onsets, t - centre_s - eps, side="left"))
    return (inside > 0).astype(np.int8)


@dataclass(frozen=True)
class MfccSettings:
    """What the baseline sees of a window, and what it learns to say about it.

    A window is centred on every 10 ms frame. Its features are the statistics
    ``core_stats`` of the MFCC frames over the window's **core** (the centre ``core_s``
    seconds: where the plop starts, in detail) and ``window_stats`` over the whole
    **analysis window** (``window_s``, a little longer than a plop: the context). Either
    part can be switched off with ``None``. Its label follows ``rule`` and ``centre_s``
    (:func:`window_labels`). The defaults were chosen by measurement; see
    :class:`MfccBaseline`.

    Examples
    --------
    >>> s = MfccSettings()
    >>> len(s.feature_names()), s.feature_names()[0], s.feature_names()[-1]
    (420, 'core_mean:mfcc0', 'window_max:dd_mfcc19')
    """

    n_mfcc: int = 20
    deltas: int = 2
    normalize: str = "quiet"
    core_s: float | None = 0.1
    core_stats: tuple[str, ...] = ("mean", "std", "max", "rise")
    window_s: float | None = 0.4
    window_stats: tuple[str, ...] = ("mean", "std", "max")
    rule: str = "onset"
    centre_s: float = 0.05

    def _parts(self):
        return [(name, w, st) for name, w, st in (("core", self.core_s, self.core_stats),
                                                  ("window", self.window_s, self.window_stats))
                if w is not None and st]

    def frames(self, y: np.ndarray) -> np.ndarray:
        """MFCC frames (:func:`mfcc_frames`) of mono 16 kHz audio."""
        return mfcc_frames(y, n_mfcc=self.n_mfcc, deltas=self.deltas, normalize=self.normalize)

    def features_from_frames(self, frames: np.ndarray) -> np.ndarray:
        parts = [window_features(frames, window_s=w, stats=st) for _, w, st in self._parts()]
        if not parts:
            raise ValueError("MfccSettings needs core_s or window_s (with statistics)")
        return np.hstack(parts)

    def features(self, y: np.ndarray) -> np.ndarray:
        """Window features of mono 16 kHz audio: one row per 10 ms frame."""
        return self.features_from_frames(self.frames(y))

    def labels(self, events: pd.DataFrame, n_frames: int) -> np.ndarray:
        return window_labels(events, n_frames, rule=self.rule, centre_s=self.centre_s)

    def feature_names(self) -> list[str]:
        names = mfcc_names(self.n_mfcc, self.deltas)
        return [f"{part}_{s}:{n}" for part, _, st in self._parts() for s in st for n in names]


@dataclass
class MfccBaseline:
    """The MFCC + logistic-regression baseline: what it computes (``settings``), the fitted
    scikit-learn ``pipeline``, and the post-processing tuned on validation recordings.

    ``probabilities(y)`` gives one plop probability per 10 ms frame (``len(y) // 160 + 1``
    values, like the CRNN): the classifier's probability for the window centred on that
    frame. ``detect(y)`` turns them into events with
    :func:`helpers.events.probabilities_to_events` and ``postprocess``, exactly as for the
    CRNN. Make one with :func:`fit_mfcc_baseline` (or :func:`cached_mfcc_baseline`).

    The classifier is trained with balanced class weights (a plop window is rare, about 1
    in 20), which makes it score as if half the windows were plops; ``log_prior_odds`` (the
    log odds of a plop window in the training data) is added to its log-odds to give
    probabilities for the real share again, so the tuned threshold falls inside the
    post-processing grid (0.1–0.95) instead of at its top.

    How the design was chosen
    -------------------------
    On the 48 training + validation recordings of the full synthetic set (2 400 plops), in
    4 folds grouped by recording: the window classifier is fitted on three folds and gives
    probabilities for the fourth; the post-processing is tuned on all the out-of-fold
    probabilities. ``PR-AUC`` is window-wise against the default onset labels (so only
    comparable between rows with those labels), ``F1`` is the onset F1 (100 ms collar).
    Differences below about 0.02 are noise: three fold assignments of the default give
    F1 0.797, 0.818 and 0.803. Reproduce with ``_design_study()`` (about 10 minutes)::

        variant                               features  PR-AUC  F1     precision  recall  on
        default: core 0.1 s + window 0.4 s         420  0.781   0.797  0.813      0.783   0.65
          same, fold seed 1                        420  0.798   0.818  0.851      0.788   0.65
          same, fold seed 2                        420  0.781   0.803  0.788      0.819   0.65
        one window of 0.1 s                        240  0.779   0.789  0.817      0.762   0.75
        one window of 0.2 s                        240  0.740   0.773  0.788      0.758   0.70
        one window of 0.4 s                        240  0.599   0.683  0.789      0.602   0.60
        one window of 0.8 s                        240  0.464   0.599  0.642      0.561   0.40
        core 0.1 s + window 0.8 s                  420  0.780   0.788  0.786      0.789   0.55
        one window of 0.4 s, no rise               180  0.256   0.297  0.396      0.237   0.30
        MFCCs only (no deltas)                     140  0.701   0.765  0.731      0.803   0.60
        MFCCs + deltas                             280  0.768   0.789  0.793      0.785   0.60
        labels: onset ±30 ms                       420  0.684   0.792  0.748      0.842   0.25
        labels: onset ±80 ms                       420  0.571   0.764  0.781      0.747   0.80
        labels: span of the plop                   420  0.472   0.802  0.780      0.824   0.45
        normalize: median                          420  0.772   0.788  0.800      0.777   0.60
        normalize: none                            420  0.778   0.792  0.798      0.787   0.55
        every window, all negatives                420  0.784   0.800  0.809      0.792   0.65

    What it says:

    * **A single window a little longer than a plop is not the best window for a linear
      classifier.** Averaged over 0.4 s, a plop starting at the centre looks much like one
      starting 0.15 s earlier, so the probability curve is broad and the onsets blur:
      F1 0.68 for one 0.4 s window, 0.60 for 0.8 s, against 0.79 for 0.1 s. Adding the 0.4 s
      analysis window as context around a 0.1 s core does a little better again (0.80–0.82
      over three fold seeds; +0.01 in an earlier run too, so at the edge of the noise). That
      is the default: 240 core features + 180 context features.
    * The ``rise`` statistic (second half minus first half) is what lets a long window say
      *where* something starts: without it one 0.4 s window falls to F1 0.30.
    * Deltas help (F1 0.77 with MFCCs alone, 0.79 with deltas, 0.80 with delta-deltas).
    * The labeling rule matters little: onset ±30 ms, ±50 ms and the span of the plop give
      the same F1 within noise; ±80 ms is worse (the window cannot tell where in 160 ms the
      onset was). The default, ±50 ms, is half the scoring collar and targets what is
      scored, the onset.
    * The per-recording normalization of the MFCCs makes no measurable difference on this
      data (0.79–0.80); the default (the quietest frames as reference) is the one that
      does not depend on the plop rate.
    * Training on every second window with 30 % of the negatives scores the same as every
      window with all negatives (0.797 vs 0.800) and is several times faster.

    Examples
    --------
    >>> model = fit_mfcc_baseline(train_items, val=val_items, seed=0)  # doctest: +SKIP
    >>> model.detect(y)                                                # doctest: +SKIP
    """

    pipeline: object
    settings: MfccSettings = field(default_factory=MfccSettings)
    log_prior_odds: float = 0.0
    postprocess: dict = field(default_factory=lambda: {"on": 0.5})
    report: dict = field(default_factory=dict)

    def features(self, y: np.ndarray) -> np.ndarray:
        """Window features (frames × features) of mono 16 kHz audio."""
        return self.settings.features(y)

    def probabilities_from_features(self, feats: np.ndarray) -> np.ndarray:
        if len(feats) == 0:
            return np.zeros(0, dtype=np.float32)
        return _prior_corrected(self.pipeline, feats, self.log_prior_odds)

    def probabilities(self, y: np.ndarray) -> np.ndarray:
        """One plop probability per 10 ms frame of mono 16 kHz audio."""
        return self.probabilities_from_features(self.features(y))

    def events_from_probabilities(self, probs: np.ndarray) -> pd.DataFrame:
        from helpers.events import probabilities_to_events

        return probabilities_to_events(probs, hop_s=HOP_S, **self.postprocess)

    def detect(self, y: np.ndarray) -> pd.DataFrame:
        """Plop events (``start``, ``end``, ``label``, ``probability``) in mono 16 kHz audio."""
        return self.events_from_probabilities(self.probabilities(y))

    def weights(self) -> pd.Series:
        """The logistic regression's weights by feature name (on standardized features)."""
        return pd.Series(self.pipeline[-1].coef_[0], index=self.settings.feature_names())


def _log_odds(labels: np.ndarray) -> float:
    p = float(np.clip(np.mean(labels > 0), 1e-6, 1 - 1e-6))
    return float(np.log(p / (1 - p)))


def _prior_corrected(pipeline, feats: np.ndarray, log_prior_odds: float) -> np.ndarray:
    """Probabilities of a classifier fitted with balanced class weights, moved back to the
    real share of plop windows (the fit scores log-odds for a 50/50 world)."""
    z = pipeline.decision_function(feats) + log_prior_odds
    return (1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))).astype(np.float32)


def make_pipeline_mfcc(*, C: float = 1.0, seed: int = 0):
    """The scikit-learn pipeline: standardize each feature, then a logistic regression
    whose two classes weigh the same (``class_weight="balanced"``).

    Examples
    --------
    >>> make_pipeline_mfcc()
    Pipeline(steps=[('standardscaler', StandardScaler()),
                    ('logisticregression',
                     LogisticRegression(class_weight='balanced', max_iter=2000,
                                        random_state=0))])
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(),
                         LogisticRegression(C=C, class_weight="balanced", max_iter=2000,
                                            random_state=seed))


def window_dataset(items: Sequence[tuple[np.ndarray, pd.DataFrame]], *,
                   settings: MfccSettings | None = None, stride: int = 1
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and recording number (the group) of the windows centred on every
    ``stride``-th frame of every ``(audio, events)`` item.

    Examples
    --------
    >>> x, labels, groups = window_dataset(train_items, stride=2)  # doctest: +SKIP
    """
    settings = settings or MfccSettings()
    items = list(items)
    if not items:
        raise ValueError("no recordings given")
    # the number of windows is known from the lengths: fill one array, no copies
    counts = [-(-(len(y) // 160 + 1) // stride) for y, _ in items]
    x = np.empty((sum(counts), len(settings.feature_names())), dtype=np.float32)
    labels = np.empty(len(x), dtype=np.int8)
    groups = np.repeat(np.arange(len(items), dtype=np.int32), counts)
    start = 0
    for (y, events), n in zip(items, counts):
        f = settings.features(y)
        x[start:start + n] = f[::stride]
        labels[start:start + n] = settings.labels(events, len(f))[::stride]
        start += n
    return x, labels, groups


def _training_subset(labels: np.ndarray, idx: np.ndarray, neg_fraction: float,
                     rng: np.random.Generator) -> np.ndarray:
    """All plop windows among ``idx`` and a random ``neg_fraction`` of the others."""
    return idx[(labels[idx] > 0) | (rng.random(len(idx)) < neg_fraction)]


def fit_mfcc_baseline(items: Sequence[tuple[np.ndarray, pd.DataFrame]], *,
                      val: Sequence[tuple[np.ndarray, pd.DataFrame]] | None = None,
                      seed: int = 0, settings: MfccSettings | None = None, C: float = 1.0,
                      stride: int = 2, neg_fraction: float = 0.3) -> MfccBaseline:
    """Fit the baseline on ``(audio, events)`` items and tune its post-processing on ``val``.

    Training uses the windows centred on every ``stride``-th frame (neighbours overlap by
    90 % and more, nearly the same example twice) — all the plop windows and a random
    ``neg_fraction`` of the others. This is several times faster than every window with no
    measurable loss (see :class:`MfccBaseline`); the classes are weighted to equal weight
    anyway. The post-processing (:func:`helpers.events.tune_postprocessing`) is tuned on the
    ``val`` recordings only; without them it stays at ``on = 0.5``.

    Examples
    --------
    >>> model = fit_mfcc_baseline(train_items, val=val_items, seed=0)  # doctest: +SKIP
    >>> model.postprocess                                              # doctest: +SKIP
    {'on': 0.55, 'off': 0.41, 'min_gap_s': 0.05, 'min_duration_s': 0.03}
    """
    import time

    from helpers.events import tune_postprocessing

    t0 = time.perf_counter()
    settings = settings or MfccSettings()
    x, lab, _ = window_dataset(items, settings=settings, stride=stride)
    if lab.sum() == 0:
        raise ValueError("no plop windows in the training recordings: are their events empty?")
    keep = _training_subset(lab, np.arange(len(lab)), neg_fraction, np.random.default_rng(seed))
    pipe = make_pipeline_mfcc(C=C, seed=seed).fit(x[keep], lab[keep])
    model = MfccBaseline(pipeline=pipe, settings=settings, log_prior_odds=_log_odds(lab))
    model.report = {"train_recordings": len(items), "train_windows": int(len(keep)),
                    "plop_windows": int(lab[keep].sum()), "features": int(x.shape[1]),
                    "fit_seconds": round(time.perf_counter() - t0, 1)}
    if val:
        probs, refs = [], []
        for y, ev in val:                  # one pass: val may be read from disk
            probs.append(model.probabilities(y))
            refs.append(ev)
        params, table = tune_postprocessing(probs, refs, hop_s=HOP_S)
        model.postprocess = params
        model.report["val_recordings"] = len(val)
        model.report["val_event_f1"] = float(table["f1"].max())
    return model


def window_scores(labels: np.ndarray, probabilities: np.ndarray, *, threshold: float = 0.5
                  ) -> dict:
    """Window-wise ``precision`` and ``recall`` at ``threshold`` and ``pr_auc`` (average
    precision over all thresholds).

    Examples
    --------
    >>> window_scores(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.7, 0.4]))
    {'precision': 0.5, 'recall': 0.5, 'pr_auc': 0.8333333333333333}
    """
    from helpers.evaluate import window_metrics

    probabilities = np.asarray(probabilities)
    m = window_metrics(np.asarray(labels) > 0, probabilities >= threshold, probabilities)
    return {k: m[k] for k in ("precision", "recall", "pr_auc")}


def cross_validate_baseline(items: Sequence[tuple[np.ndarray, pd.DataFrame]] | None, *,
                            n_splits: int = 5, grouped: bool = True, seed: int = 0,
                            settings: MfccSettings | None = None, C: float = 1.0,
                            stride: int = 2, neg_fraction: float = 0.3, threshold: float = 0.5,
                            dataset: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                            ) -> pd.DataFrame:
    """Window-wise cross-validation of the window classifier, with folds grouped by recording.

    With ``grouped=True`` (:class:`sklearn.model_selection.GroupKFold`) all the windows of a
    recording are in one fold, so every fold is scored on recordings the classifier never
    saw. ``grouped=False`` deals windows into folds regardless of their recording (plain
    shuffled ``KFold``): windows of one recording — the same airlock, room and background,
    and overlapping neighbours — land on both sides, the leak that makes scores look better
    than they will be on a new recording. Training windows are subsampled as in
    :func:`fit_mfcc_baseline`; the held-out fold is scored on *all* its windows (every
    ``stride``-th), so the subsampling does not flatter precision. ``dataset`` (from
    :func:`window_dataset`) saves recomputing the features.

    Returns one row per fold: ``fold``, ``recordings`` (held out), ``windows``,
    ``plop_windows``, and window-wise ``precision``, ``recall`` (at ``threshold``) and
    ``pr_auc``. ``table.attrs["held_out"]`` lists the recording numbers held out by each
    fold.

    Examples
    --------
    >>> table = cross_validate_baseline(train_items)            # doctest: +SKIP
    >>> table[["precision", "recall", "pr_auc"]].mean()         # doctest: +SKIP
    """
    from sklearn.model_selection import GroupKFold, KFold

    if dataset is None:
        dataset = window_dataset(items, settings=settings, stride=stride)
    x, lab, groups = dataset
    n_rec = len(np.unique(groups))
    if grouped:
        if n_rec < n_splits:
            raise ValueError(f"{n_rec} recordings cannot make {n_splits} folds grouped by "
                             "recording; ask for fewer folds or give more recordings")
        folds = GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(x, lab, groups)
    else:
        folds = KFold(n_splits=n_splits, shuffle=True, random_state=seed).split(x, lab)
    rng = np.random.default_rng(seed)
    rows, held_out = [], []
    for fold, (tr, te) in enumerate(folds):
        keep = _training_subset(lab, tr, neg_fraction, rng)
        pipe = make_pipeline_mfcc(C=C, seed=seed).fit(x[keep], lab[keep])
        probs = _prior_corrected(pipe, x[te], _log_odds(lab[tr]))
        held_out.append(sorted(np.unique(groups[te]).tolist()))
        rows.append({"fold": fold, "recordings": len(held_out[-1]), "windows": len(te),
                     "plop_windows": int(lab[te].sum()),
                     **window_scores(lab[te], probs, threshold=threshold)})
    table = pd.DataFrame(rows)
    table.attrs["held_out"] = held_out
    return table


def _design_study(manifest: pd.DataFrame | None = None, *, seed: int = 0, n_splits: int = 4,
                  variants: dict[str, dict] | None = None, progress: bool = True
                  ) -> pd.DataFrame:
    """The measurement behind the defaults of :class:`MfccSettings` (see
    :class:`MfccBaseline`): out-of-fold probabilities over the train + val recordings,
    folds grouped by recording, post-processing tuned on all of them.

    ``variants`` maps a name to keyword arguments: :class:`MfccSettings` fields, ``seed``,
    ``stride`` and ``neg_fraction``. Returns one row per variant: ``pr_auc`` (window-wise,
    against the default onset labels), ``f1``, ``precision``, ``recall``, ``on``,
    ``features``.
    """
    import dataclasses

    from sklearn.model_selection import GroupKFold

    from helpers.datasets import load_all, synthetic
    from helpers.events import tune_postprocessing

    manifest = synthetic(progress=progress) if manifest is None else manifest
    dev = manifest[manifest["split"] != "test"]
    ys, refs = load_all(dev, progress=progress)
    field_names = {f.name for f in dataclasses.fields(MfccSettings)}
    variants = variants if variants is not None else DESIGN_VARIANTS
    frames_cache: dict = {}
    rows = []
    for name, spec in variants.items():
        spec = dict(spec)
        run_seed = spec.pop("seed", seed)
        stride, neg_fraction = spec.pop("stride", 2), spec.pop("neg_fraction", 0.3)
        unknown = set(spec) - field_names
        if unknown:
            raise ValueError(f"variant {name!r}: unknown settings {sorted(unknown)}")
        s = MfccSettings(**spec)
        feats = []
        for i, y in enumerate(ys):
            key = (i, s.n_mfcc, s.deltas, s.normalize)
            if key not in frames_cache:
                frames_cache[key] = s.frames(y)
            feats.append(s.features_from_frames(frames_cache[key]))
        labels = [s.labels(ev, len(f)) for ev, f in zip(refs, feats)]
        probs: list = [None] * len(ys)
        rng = np.random.default_rng(run_seed)
        splitter = GroupKFold(n_splits=n_splits, shuffle=True, random_state=run_seed)
        for tr, te in splitter.split(np.zeros(len(ys)), groups=np.arange(len(ys))):
            x = np.concatenate([feats[j][::stride] for j in tr])
            lab = np.concatenate([labels[j][::stride] for j in tr])
            keep = _training_subset(lab, np.arange(len(lab)), neg_fraction, rng)
            pipe = make_pipeline_mfcc(seed=run_seed).fit(x[keep], lab[keep])
            for j in te:
                probs[j] = _prior_corrected(pipe, feats[j], _log_odds(lab))
        onset = np.concatenate([window_labels(ev, len(p)) for ev, p in zip(refs, probs)])
        params, grid = tune_postprocessing(probs, refs, hop_s=HOP_S)
        best = grid.loc[grid["f1"].idxmax()]
        rows.append({"variant": name, "pr_auc": window_scores(onset, np.concatenate(probs))["pr_auc"],
                     "f1": best["f1"], "precision": best["precision"], "recall": best["recall"],
                     "on": params["on"], "features": feats[0].shape[1]})
        if progress:
            print(pd.DataFrame(rows[-1:]).round(3).to_string(header=False, index=False), flush=True)
    return pd.DataFrame(rows)


_SINGLE = {"core_s": None, "window_stats": STATS}
#: The variants of :func:`_design_study`, by name.
DESIGN_VARIANTS: dict[str, dict] = {
    "default: core 0.1 s + window 0.4 s": {},
    "  same, fold seed 1": {"seed": 1},
    "  same, fold seed 2": {"seed": 2},
    "one window of 0.1 s": {**_SINGLE, "window_s": 0.1},
    "one window of 0.2 s": {**_SINGLE, "window_s": 0.2},
    "one window of 0.4 s": {**_SINGLE, "window_s": 0.4},
    "one window of 0.8 s": {**_SINGLE, "window_s": 0.8},
    "core 0.1 s + window 0.8 s": {"window_s": 0.8},
    "one window of 0.4 s, no rise": {"core_s": None, "window_stats": ("mean", "std", "max")},
    "MFCCs only (no deltas)": {"deltas": 0},
    "MFCCs + deltas": {"deltas": 1},
    "labels: onset ±30 ms": {"centre_s": 0.03},
    "labels: onset ±80 ms": {"centre_s": 0.08},
    "labels: span of the plop": {"rule": "span"},
    "normalize: median": {"normalize": "median"},
    "normalize: none": {"normalize": "none"},
    "every window, all negatives": {"stride": 1, "neg_fraction": 1.0},
}


def _baseline_key(manifest: pd.DataFrame, seed: int, tune: pd.DataFrame | None = None) -> str:
    import hashlib

    def config(m: pd.DataFrame) -> str:
        return str(m["config"].iloc[0]) if "config" in m and len(m) else ""

    parts = [f"v{MFCC_BASELINE_VERSION}", f"seed{seed}", config(manifest)]
    for split in ("train", "val"):
        parts.append(split + ":" + ",".join(sorted(manifest.loc[manifest["split"] == split,
                                                                 "recording"].astype(str))))
    if tune is not None and len(tune):
        parts.append("tune:" + config(tune) + ":" + ",".join(sorted(tune["recording"].astype(str))))
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def cached_mfcc_baseline(manifest: pd.DataFrame, *, folder=None, seed: int = 0,
                         progress: bool = False, refit: bool = False,
                         tune: pd.DataFrame | None = None) -> MfccBaseline:
    """The baseline fitted on the ``train`` split of ``manifest`` with its post-processing
    tuned on the ``val`` split and the recordings of ``tune`` (more validation recordings,
    as for the CRNN: :func:`helpers.datasets.synthetic_validation_extra`), cached as
    ``mfcc_baseline.joblib`` in ``folder`` (default: the data set's folder).

    The cache is keyed by the manifest's ``config`` (the synthetic set's settings), the
    train and validation recordings, those of ``tune``, the seed and
    :data:`MFCC_BASELINE_VERSION`; it is
    refitted when any of them changed, when the file cannot be read, or with ``refit``.
    Fitting takes about 15 s on the full synthetic set, loading the cache well under one.

    Examples
    --------
    >>> m = datasets.synthetic()               # doctest: +SKIP
    >>> model = cached_mfcc_baseline(m)        # doctest: +SKIP
    >>> model.detect(y)                        # doctest: +SKIP
    """
    import os
    from pathlib import Path

    import joblib

    from helpers.datasets import Recordings, load_all

    folder = Path(folder) if folder is not None else Path(manifest["path"].iloc[0]).parent
    path = folder / "mfcc_baseline.joblib"
    key = _baseline_key(manifest, seed, tune)
    if path.exists() and not refit:
        try:
            saved = joblib.load(path)
            if isinstance(saved, dict) and saved.get("key") == key:
                return saved["model"]
        except Exception:  # noqa: BLE001 - an unreadable or outdated cache is refitted
            pass
    ys, evs = load_all(manifest[manifest["split"] == "train"], progress=progress)
    if not ys:
        raise ValueError("the manifest has no 'train' recordings to fit the baseline on")
    # the validation recordings are read from disk as tuning uses them (memory)
    val = Recordings(pd.concat([manifest[manifest["split"] == "val"], tune]) if tune is not None
                     else manifest[manifest["split"] == "val"])
    model = fit_mfcc_baseline(list(zip(ys, evs)), val=val if len(val) else None, seed=seed)
    model.report["key"] = key
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    joblib.dump({"key": key, "model": model}, tmp)
    os.replace(tmp, path)
    return model


def energy_counter_scores(manifest: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Per-recording scores of the energy counter, as :func:`helpers.evaluate.score_detections`
    gives them for any detector (onset F1 *and* BPM), on the recordings of ``manifest``.

    Each recording is counted with the threshold and gap of its row of ``table`` (from
    :func:`energy_counter_report`, tuned on the other half of the recordings), so the onset
    scores equal the report's and the BPM comes from the same detections.

    Examples
    --------
    >>> table, _ = energy_counter_report(manifest)                        # doctest: +SKIP
    >>> energy_counter_scores(manifest[manifest["split"] == "test"], table)  # doctest: +SKIP
    """
    from helpers.datasets import load_recording
    from helpers.evaluate import score_detections

    params = table.set_index("recording")
    missing = sorted(set(manifest["recording"]) - set(params.index))
    if missing:
        raise ValueError(f"recordings {missing[:3]}… are not in the energy counter's table; "
                         "make the table from a manifest that holds them")
    refs, ests, durs = [], [], []
    for _, row in manifest.iterrows():
        y, ev = load_recording(row)
        p = params.loc[row["recording"]]
        counter = EnergyCounter(threshold_db=float(p["threshold_db"]), min_gap_s=float(p["min_gap_s"]))
        refs.append(ev)
        ests.append(counter.detect(y))
        durs.append(len(y) / SR)
    out = score_detections(refs, ests, durs, names=manifest["recording"].tolist())
    extra = [c for c in ("snr_db", "backgrounds", "airlock", "split") if c in manifest]
    return out.merge(manifest[["recording", *extra]], on="recording", how="left")
