"""Detectors that need no training data: the tuned energy-threshold counter.

The energy counter is what a homebrewer would write first: band-pass the audio to where
plops live, measure the level every 10 ms, and count a plop each time the level rises a set
number of decibels above the recording's own noise floor (its median level). Hysteresis
(the level must fall ``hysteresis_db`` below the threshold before the next plop) and a
minimum gap keep one plop from being counted twice. The threshold and the gap are tuned on
labeled recordings with :func:`tune_energy_counter`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
