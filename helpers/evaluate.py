"""Scoring detections against reference labels.

Event-based scores here count *onsets*: an estimated event matches a reference event when
their onsets are at most ``collar`` seconds apart, each event matched at most once (the
same rule as ``sed_eval.sound_event.EventBasedMetrics(evaluate_onset=True,
evaluate_offset=False)``, which the tests check). One difference: onsets exactly ``collar``
apart match here (with a 1e-9 s allowance for rounding), while sed_eval can miss such pairs
to floating-point rounding (``abs(1.0 - 1.1) > 0.1``). Scores over several recordings are
pooled (micro-averaged): true positives, false positives and false negatives are summed first.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


def onset_differences(ref, est, *, collar: float = 0.1) -> np.ndarray:
    """``estimate − reference`` onset of every pair in the largest one-to-one matching of
    onsets within ``collar`` seconds.

    For points on a line, a greedy sweep over both sorted lists finds a maximum matching.

    Examples
    --------
    >>> onset_differences(np.array([1.0, 2.0, 3.0]), np.array([1.05, 2.5, 2.95])).round(2).tolist()
    [0.05, -0.05]
    """
    ref = np.sort(np.asarray(ref, dtype=float))
    est = np.sort(np.asarray(est, dtype=float))
    i = j = 0
    out = []
    while i < len(ref) and j < len(est):
        d = est[j] - ref[i]
        if abs(d) <= collar + 1e-9:
            out.append(d)
            i += 1
            j += 1
        elif d < 0:
            j += 1
        else:
            i += 1
    return np.asarray(out, dtype=float)


def match_onsets(ref: np.ndarray, est: np.ndarray, *, collar: float = 0.1) -> int:
    """Size of the largest one-to-one matching of onsets within ``collar`` seconds.

    Examples
    --------
    >>> match_onsets(np.array([1.0, 2.0, 3.0]), np.array([1.05, 2.5, 2.95]))
    2
    """
    return len(onset_differences(ref, est, collar=collar))


def _onsets(events: pd.DataFrame | np.ndarray | Iterable[float]) -> np.ndarray:
    if isinstance(events, pd.DataFrame):
        col = "start" if "start" in events else "onset"
        return events[col].to_numpy(dtype=float)
    return np.asarray(list(events) if not isinstance(events, np.ndarray) else events, dtype=float)


def prf(tp: int, fp: int, fn: int) -> dict:
    """Precision, recall and F1 from counts (0 where undefined; sed_eval reports NaN there)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1}


def onset_scores(ref, est, *, collar: float = 0.1) -> dict:
    """Onset-only event scores of one recording.

    ``ref`` and ``est`` are events DataFrames (``start`` column) or arrays of onset times.

    Examples
    --------
    >>> onset_scores([1.0, 2.0], [1.02, 5.0])["f1"]
    0.5
    """
    r, e = _onsets(ref), _onsets(est)
    tp = match_onsets(r, e, collar=collar)
    return prf(tp, len(e) - tp, len(r) - tp)


def pooled_onset_scores(pairs: Iterable[tuple], *, collar: float = 0.1) -> dict:
    """Micro-averaged onset scores over ``(ref, est)`` pairs, one pair per recording.

    Examples
    --------
    >>> pooled_onset_scores([([1.0], [1.0]), ([2.0], [])])["recall"]
    0.5
    """
    tp = fp = fn = 0
    for ref, est in pairs:
        s = onset_scores(ref, est, collar=collar)
        tp, fp, fn = tp + s["tp"], fp + s["fp"], fn + s["fn"]
    return prf(tp, fp, fn)


def score_detections(references, estimates, durations, *, names=None, collar: float = 0.1,
                     bpm_method: str = "interval", tol: float = 0.10) -> pd.DataFrame:
    """Per-recording scores of a detector: onset matches and the BPM it would report.

    The true BPM of a recording is its number of labeled plops per minute (what the
    airlock did); the estimated BPM comes from the detected events through
    :func:`helpers.events.bpm_from_events` (``bpm_method``), with its confidence interval.

    Returns one row per recording: ``recording``, ``n_ref``, ``n_est``, ``tp``, ``fp``,
    ``fn``, ``precision``, ``recall``, ``f1``, ``true_bpm``, ``bpm``, ``bpm_low``,
    ``bpm_high``, ``bpm_error`` (relative), ``within_10`` and ``ci_covers``.

    Examples
    --------
    >>> ref = pd.DataFrame({"start": np.arange(1.0, 60.0, 2.0)})   # 30 plops a minute
    >>> est = ref.iloc[::2]                                        # every other one found
    >>> row = score_detections([ref], [est], [60.0]).iloc[0]
    >>> print(row["recall"], row["true_bpm"], round(row["bpm"]), bool(row["within_10"]))
    0.5 30.0 15 False
    """
    from helpers.events import bpm_from_events

    rows = []
    names = list(names) if names is not None else [f"rec{i}" for i in range(len(durations))]
    for name, ref, est, dur in zip(names, references, estimates, durations):
        s = onset_scores(ref, est, collar=collar)
        r_on, e_on = _onsets(ref), _onsets(est)
        true_bpm = len(r_on) / dur * 60.0
        b = bpm_from_events(e_on, duration_s=dur, method=bpm_method)
        err = abs(b["bpm"] - true_bpm) / true_bpm if true_bpm > 0 else (0.0 if b["bpm"] == 0 else np.inf)
        covers = bool(b["low"] <= true_bpm <= b["high"]) if np.isfinite(b["low"]) else False
        rows.append({"recording": name, "n_ref": len(r_on), "n_est": len(e_on), **s,
                     "true_bpm": true_bpm, "bpm": b["bpm"], "bpm_low": b["low"], "bpm_high": b["high"],
                     "bpm_error": err, "within_10": bool(err <= tol), "ci_covers": covers})
    return pd.DataFrame(rows)


def summarize_scores(table: pd.DataFrame) -> dict:
    """Pooled onset scores and BPM figures over the rows of :func:`score_detections`."""
    pooled = prf(int(table["tp"].sum()), int(table["fp"].sum()), int(table["fn"].sum()))
    return {**{k: pooled[k] for k in ("f1", "precision", "recall", "tp", "fp", "fn")},
            "recordings": int(len(table)),
            "bpm_error_median": float(table["bpm_error"].median()) if len(table) else float("nan"),
            "bpm_within_10pct": float(table["within_10"].mean()) if len(table) else float("nan"),
            "bpm_ci_coverage": float(table["ci_covers"].mean()) if len(table) else float("nan")}


#: SNR bands used to break scores down (dB; left-closed).
SNR_BANDS = (-np.inf, 5.0, 10.0, 20.0, np.inf)
SNR_BAND_NAMES = ("< 5 dB", "5–10 dB", "10–20 dB", "≥ 20 dB")


def snr_band(snr_db):
    """The SNR band (:data:`SNR_BAND_NAMES`) of each value: a categorical Series with the
    same index when given a Series, a :class:`pandas.Categorical` otherwise.

    Examples
    --------
    >>> list(snr_band([-3.0, 12.0]))
    ['< 5 dB', '10–20 dB']
    """
    bands = pd.cut(np.asarray(snr_db, dtype=float), list(SNR_BANDS), labels=list(SNR_BAND_NAMES),
                   right=False)
    return pd.Series(bands, index=snr_db.index) if isinstance(snr_db, pd.Series) else bands


def scores_by(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """Pooled onset scores per group of recordings.

    ``table`` has one row per recording with ``tp``, ``fp`` and ``fn`` (as from
    :func:`score_detections` or :func:`helpers.baselines.energy_counter_report`). ``by`` is a
    column; ``"snr band"`` groups by :func:`snr_band` of ``snr_db``, and a column whose values
    list several families joined by ``+`` (``backgrounds``) counts a recording in each.

    Examples
    --------
    >>> t = pd.DataFrame({"tp": [9, 1], "fp": [1, 1], "fn": [0, 3],
    ...                   "snr_db": [25.0, 0.0], "backgrounds": ["hum+fan", "fan"]})
    >>> scores_by(t, "backgrounds")[["backgrounds", "recordings", "f1"]].round(2).values.tolist()
    [['fan', 2, 0.8], ['hum', 1, 0.95]]
    """
    t = table.copy()
    if by == "snr band":
        t[by] = snr_band(t["snr_db"])
    elif t[by].astype(str).str.contains("+", regex=False).any():
        t = t.assign(**{by: t[by].astype(str).str.split("+")}).explode(by)
    g = t.groupby(by, observed=True)
    rows = [{by: key, "recordings": len(d), "plops": int(d["tp"].sum() + d["fn"].sum()),
             **{k: v for k, v in prf(int(d["tp"].sum()), int(d["fp"].sum()), int(d["fn"].sum())).items()
                if k in ("precision", "recall", "f1")}}
            for key, d in g]
    return pd.DataFrame(rows)
