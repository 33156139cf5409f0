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

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd


def matched_pairs(ref, est, *, collar: float = 0.1) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)`` (``ref[i]``, ``est[j]``, both *sorted*) of the largest one-to-one
    matching of onsets within ``collar`` seconds.

    For points on a line, a greedy sweep over both sorted lists finds a maximum matching.

    Examples
    --------
    >>> matched_pairs([1.0, 2.0, 3.0], [1.05, 2.5, 2.95])
    [(0, 0), (2, 2)]
    """
    ref = np.asarray(ref, dtype=float)
    est = np.asarray(est, dtype=float)
    i = j = 0
    out = []
    while i < len(ref) and j < len(est):
        d = est[j] - ref[i]
        if abs(d) <= collar + 1e-9:
            out.append((i, j))
            i += 1
            j += 1
        elif d < 0:
            j += 1
        else:
            i += 1
    return out


def onset_differences(ref, est, *, collar: float = 0.1) -> np.ndarray:
    """``estimate − reference`` onset of every pair in the largest one-to-one matching of
    onsets within ``collar`` seconds (:func:`matched_pairs`).

    Examples
    --------
    >>> onset_differences(np.array([1.0, 2.0, 3.0]), np.array([1.05, 2.5, 2.95])).round(2).tolist()
    [0.05, -0.05]
    """
    ref = np.sort(np.asarray(ref, dtype=float))
    est = np.sort(np.asarray(est, dtype=float))
    return np.asarray([est[j] - ref[i] for i, j in matched_pairs(ref, est, collar=collar)], dtype=float)


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
    ``bpm_high``, ``bpm_error`` (relative), ``within_10`` and ``ci_covers``, and
    ``labels_bpm`` and ``labels_within_10``: the same estimator on the *labeled* onsets, what a
    perfect detector would report. Where that misses too, the estimator is the limit (the
    interval method reads the typical gap between plops, which irregular bubbling or a
    changing rate sets apart from the count), not the detector.

    Examples
    --------
    >>> ref = pd.DataFrame({"start": np.arange(1.0, 60.0, 2.0)})   # 30 plops a minute
    >>> est = ref.iloc[::2]                                        # every other one found
    >>> row = score_detections([ref], [est], [60.0]).iloc[0]
    >>> print(row["recall"], row["true_bpm"], round(row["bpm"]), bool(row["within_10"]))
    0.5 30.0 15 False
    """
    from helpers.events import bpm_error, bpm_from_events

    rows = []
    names = list(names) if names is not None else [f"rec{i}" for i in range(len(durations))]
    for name, ref, est, dur in zip(names, references, estimates, durations):
        s = onset_scores(ref, est, collar=collar)
        r_on, e_on = _onsets(ref), _onsets(est)
        true_bpm = len(r_on) / dur * 60.0
        b = bpm_from_events(e_on, duration_s=dur, method=bpm_method)
        err = bpm_error(b["bpm"], true_bpm)
        covers = bool(b["low"] <= true_bpm <= b["high"]) if np.isfinite(b["low"]) else False
        perfect = bpm_from_events(r_on, duration_s=dur, method=bpm_method)["bpm"]
        rows.append({"recording": name, "n_ref": len(r_on), "n_est": len(e_on), **s,
                     "true_bpm": true_bpm, "bpm": b["bpm"], "bpm_low": b["low"], "bpm_high": b["high"],
                     "bpm_error": err, "within_10": bool(err <= tol), "ci_covers": covers,
                     "labels_bpm": perfect, "labels_within_10": bool(bpm_error(perfect, true_bpm) <= tol)})
    return pd.DataFrame(rows)


def summarize_scores(table: pd.DataFrame) -> dict:
    """Pooled onset scores and BPM figures over the rows of :func:`score_detections`."""
    pooled = prf(int(table["tp"].sum()), int(table["fp"].sum()), int(table["fn"].sum()))
    return {**{k: pooled[k] for k in ("f1", "precision", "recall", "tp", "fp", "fn")},
            "recordings": int(len(table)), **_bpm_summary(table)}


def _bpm_summary(table: pd.DataFrame) -> dict:
    """The BPM figures over the rows of a :func:`score_detections` table (NaN without rows)."""
    def over(col: str, how: str) -> float:
        return float(getattr(table[col], how)()) if len(table) else float("nan")

    return {"bpm_error_median": over("bpm_error", "median"), "bpm_within_10pct": over("within_10", "mean"),
            "bpm_ci_coverage": over("ci_covers", "mean"),
            "bpm_within_10pct_labels": over("labels_within_10", "mean")}


def false_plops_at_confusers(table: pd.DataFrame) -> dict:
    """Where a detector's false plops come from on synthetic recordings: the knocks, taps,
    clinks and other non-plop transients that the synthesizer mixes in (``n_confusers`` of
    the manifest), or everything else (the backgrounds).

    ``table`` has one row per recording with ``fp``, ``n_confusers`` and ``duration_s`` (as
    from :func:`helpers.systems.evaluation_tables`). The recordings without confusers give
    the false plops a minute of everything else; the false plops of the others beyond that
    rate, divided by their confusers, estimate the false plops per confuser. It is an
    estimate: the two groups of recordings have other backgrounds too, so for a detector that
    fires mostly on the backgrounds it can come out below zero (then the confusers cost it
    nothing measurable, and ``share_at_confusers`` is 0).

    Returns ``recordings``, ``false_plops``, ``confusers``, ``per_minute_without`` and
    ``per_minute_with`` (false plops a minute in the recordings without and with confusers),
    ``per_confuser`` and ``share_at_confusers`` (the share of all false plops that the
    confusers explain); NaN where a group is empty (no recordings without confusers, or no
    confusers at all).

    Examples
    --------
    >>> t = pd.DataFrame({"fp": [1, 7], "n_confusers": [0, 10], "duration_s": [60.0, 60.0]})
    >>> r = false_plops_at_confusers(t)
    >>> r["per_minute_without"], r["per_minute_with"], r["per_confuser"], r["share_at_confusers"]
    (1.0, 7.0, 0.6, 0.75)
    """
    missing = {"fp", "n_confusers", "duration_s"} - set(table.columns)
    if missing:
        raise ValueError(f"false_plops_at_confusers needs the columns {sorted(missing)}")
    if table["n_confusers"].isna().any():
        raise ValueError("false_plops_at_confusers: n_confusers is missing for "
                         f"{int(table['n_confusers'].isna().sum())} recordings (not synthetic ones?)")
    none = (table["n_confusers"] == 0).to_numpy()

    def per_minute(rows: pd.DataFrame) -> float:
        minutes = float(rows["duration_s"].sum()) / 60
        return float(rows["fp"].sum()) / minutes if minutes else math.nan

    without, with_ = per_minute(table[none]), per_minute(table[~none])
    confusers = int(table["n_confusers"].sum())
    fp = int(table["fp"].sum())
    excess = float(table.loc[~none, "fp"].sum()) - without * float(table.loc[~none, "duration_s"].sum()) / 60
    return {"recordings": int(len(table)), "false_plops": fp, "confusers": confusers,
            "per_minute_without": round(without, 3), "per_minute_with": round(with_, 3),
            "per_confuser": round(excess / confusers, 3) if confusers else math.nan,
            "share_at_confusers": round(max(excess, 0.0) / fp, 3) if fp and confusers else math.nan}


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
    return pd.DataFrame(rows, columns=[by, "recordings", "plops", "precision", "recall", "f1"])


# =======================================================================================
# The three views of a detector: windows, events (sed_eval) and BPM
# =======================================================================================
#: Length of the windows of the window-wise view (s): a little longer than a plop's onset
#: uncertainty, shorter than the gap between two plops at the highest rates (~4 per second).
WINDOW_S = 0.25


def window_view(ref, est, duration_s: float, *, scores: np.ndarray | None = None,
                hop_s: float = 0.01, window_s: float = WINDOW_S
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The recording cut into windows of ``window_s``: for each window, whether a reference
    onset falls in it (``labels``), whether a detected onset does (``decisions``), and the
    detector's largest frame score in it (``scores``; the decisions as 0/1 when the detector
    gives no scores).

    Examples
    --------
    >>> lab, dec, sc = window_view([0.1, 0.6], [0.12, 1.1], 1.25)
    >>> lab.astype(int).tolist(), dec.astype(int).tolist()
    ([1, 0, 1, 0, 0], [1, 0, 0, 0, 1])
    """
    n = max(int(np.ceil(duration_s / window_s - 1e-9)), 1)

    def occupied(onsets: np.ndarray) -> np.ndarray:
        idx = np.clip((onsets / window_s).astype(int), 0, n - 1)
        return np.bincount(idx, minlength=n) > 0

    labels, decisions = occupied(_onsets(ref)), occupied(_onsets(est))
    if scores is None:
        return labels, decisions, decisions.astype(float)
    scores = np.asarray(scores, dtype=float)
    idx = np.clip((np.arange(len(scores)) * hop_s / window_s).astype(int), 0, n - 1)
    win = np.full(n, -np.inf)
    np.maximum.at(win, idx, scores)
    win[~np.isfinite(win)] = np.nanmin(scores) if len(scores) else 0.0
    return labels, decisions, win


def window_metrics(labels: np.ndarray, decisions: np.ndarray, scores: np.ndarray | None = None
                   ) -> dict:
    """Window-wise precision, recall, false positive rate (of the windows without a plop),
    false negative rate (of the windows with one) and PR-AUC (average precision of
    ``scores``; NaN without positive windows).

    Examples
    --------
    >>> m = window_metrics(np.array([1, 0, 1, 0]), np.array([1, 1, 0, 0]), np.array([.9, .6, .4, .1]))
    >>> m["precision"], m["recall"], m["fpr"], m["fnr"], round(m["pr_auc"], 3)
    (0.5, 0.5, 0.5, 0.5, 0.833)
    """
    from sklearn.metrics import average_precision_score

    labels = np.asarray(labels, dtype=bool)
    decisions = np.asarray(decisions, dtype=bool)
    tp = int((labels & decisions).sum())
    fp = int((~labels & decisions).sum())
    fn = int((labels & ~decisions).sum())
    tn = int((~labels & ~decisions).sum())
    pr_auc = float("nan")
    if scores is not None and labels.any():
        pr_auc = float(average_precision_score(labels, np.asarray(scores, dtype=float)))
    return {"precision": tp / (tp + fp) if tp + fp else 0.0, "recall": tp / (tp + fn) if tp + fn else 0.0,
            "fpr": fp / (fp + tn) if fp + tn else 0.0, "fnr": fn / (fn + tp) if fn + tp else 0.0,
            "pr_auc": pr_auc}


def _sed_list(events, name: str, *, default_length: float = 0.1) -> list[dict]:
    """Events as sed_eval's event list; events without an end last ``default_length``."""
    on = _onsets(events)
    if isinstance(events, pd.DataFrame) and "end" in events:
        off = np.maximum(events["end"].to_numpy(dtype=float), on + 1e-3)
    else:
        off = on + default_length
    return [{"filename": name, "event_label": "p", "event_onset": float(a), "event_offset": float(b)}
            for a, b in zip(on, off)]


def _sed_prf(overall: dict) -> dict:
    """Counts of one sed_eval metrics object and the scores of one recording: where sed_eval
    defines them they are its own; a precision with nothing detected or a recall with nothing
    to find stays NaN, and F1 is NaN only when both are (a silent recording scored silent is
    not a failure), else ``2 tp / (2 tp + fp + fn)`` — 0 when plops were all missed. The
    pooled figures come from the summed counts."""
    tp, fp, fn = int(overall["Ntp"]), int(overall["Nfp"]), int(overall["Nfn"])
    nan = float("nan")
    return {"tp": tp, "fp": fp, "fn": fn,
            "precision": tp / (tp + fp) if tp + fp else nan,
            "recall": tp / (tp + fn) if tp + fn else nan,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else nan}


def sed_eval_scores(references, estimates, durations, *, names=None,
                    collars: Iterable[float] = (0.1, 0.2), segment_s: float = 1.0) -> dict:
    """Event-based scores computed *by sed_eval*: onsets only at each collar, and
    segment-based at ``segment_s``, per recording and over all recordings.

    Returns ``{"event_100ms": {...}, "event_200ms": {...}, "segment_1s": {...},
    "per_recording": DataFrame}``; each score dict has ``tp``, ``fp``, ``fn``, ``precision``,
    ``recall`` and ``f1`` (pooled: 0 where undefined; per recording: NaN, as sed_eval says).
    sed_eval's overall figures are made
    from counts summed over the files it was given, so the pooled figures here are computed
    from the per-recording counts of sed_eval (the tests check them against one pooled
    sed_eval run). Events without an end (onset detectors) last 0.1 s for the segment-based
    score.

    Examples
    --------
    >>> out = sed_eval_scores([[1.0, 2.0]], [[1.05, 3.0]], [4.0])
    >>> out["event_100ms"]["f1"], out["event_200ms"]["tp"]
    (0.5, 1)
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dcase_util's pkg_resources deprecation
        import sed_eval

    collars = tuple(collars)
    names = list(names) if names is not None else [f"rec{i}" for i in range(len(durations))]
    keys = [f"event_{round(c * 1000)}ms" for c in collars] + [f"segment_{segment_s:g}s"]
    rows = []
    for name, ref, est, dur in zip(names, references, estimates, durations):
        r, e = _sed_list(ref, name), _sed_list(est, name)
        row = {"recording": name}
        for key, c in zip(keys, collars):
            m = sed_eval.sound_event.EventBasedMetrics(
                event_label_list=["p"], t_collar=c, evaluate_onset=True, evaluate_offset=False)
            m.evaluate(reference_event_list=r, estimated_event_list=e)
            row.update({f"{key}_{k}": v for k, v in _sed_prf(m.overall).items()})
        m = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=["p"], time_resolution=segment_s)
        m.evaluate(reference_event_list=r, estimated_event_list=e, evaluated_length_seconds=float(dur))
        row.update({f"{keys[-1]}_{k}": v for k, v in _sed_prf(m.overall).items()})
        rows.append(row)
    per = pd.DataFrame(rows)
    out = {key: prf(*(int(per[f"{key}_{k}"].sum()) if len(per) else 0 for k in ("tp", "fp", "fn"))) for key in keys}
    out["per_recording"] = per
    return out


def _evaluate(references, estimates, durations, *, names, scores, hop_s: float, window_s: float
              ) -> tuple[pd.DataFrame, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Per-recording table of :func:`evaluate_recordings` and each recording's windows."""
    bpm = score_detections(references, estimates, durations, names=names)
    per = sed_eval_scores(references, estimates, durations, names=names)["per_recording"]
    windows, rows = [], []
    for i, (ref, est, dur, sc) in enumerate(zip(references, estimates, durations, scores)):
        lab, dec, win = window_view(ref, est, dur, scores=sc, hop_s=hop_s, window_s=window_s)
        windows.append((lab, dec, win))
        w = window_metrics(lab, dec, win)
        rows.append({"recording": names[i], "duration_s": dur,
                     **{f"win_{k}": v for k, v in w.items()},
                     **{k: per.loc[i, f"event_100ms_{k}"] for k in ("tp", "fp", "fn", "precision", "recall", "f1")},
                     "f1_200ms": per.loc[i, "event_200ms_f1"],
                     **{f"{k}_200ms": per.loc[i, f"event_200ms_{k}"] for k in ("tp", "fp", "fn")},
                     "seg_f1": per.loc[i, "segment_1s_f1"],
                     **{f"seg_{k}": per.loc[i, f"segment_1s_{k}"] for k in ("tp", "fp", "fn")}})
    table = pd.DataFrame(rows, columns=None if rows else ["recording", "duration_s"])
    if len(table):  # row i of every table is recording i (names need not be unique)
        extra = bpm.drop(columns=["recording", "tp", "fp", "fn", "precision", "recall", "f1"])
        table = pd.concat([table, extra.reset_index(drop=True)], axis=1)
        first = ["recording", "duration_s", "n_ref", "n_est"]
        table = table[first + [c for c in table if c not in first]]
    return table, windows


def summarize_evaluation(table: pd.DataFrame, windows=None) -> dict:
    """The figures over all rows of an :func:`evaluate_recordings` table: event counts summed
    (as sed_eval pools them), windows pooled, BPM figures over recordings. ``windows`` (the
    ``(labels, decisions, scores)`` of each row) gives the pooled window PR-AUC."""
    def counts(prefix: str = "", suffix: str = "") -> dict:
        return prf(*(int(table[f"{prefix}{k}{suffix}"].sum()) for k in ("tp", "fp", "fn")))

    if not len(table):
        return {"f1": 0.0, "precision": 0.0, "recall": 0.0, "recordings": 0}
    e, e2, seg = counts(), counts(suffix="_200ms"), counts("seg_")
    if windows:
        w = window_metrics(*(np.concatenate([x[k] for x in windows]) for k in range(3)))
    else:
        w = {}
    return {"f1": e["f1"], "precision": e["precision"], "recall": e["recall"],
            "tp": e["tp"], "fp": e["fp"], "fn": e["fn"], "f1_200ms": e2["f1"],
            "segment_f1_1s": seg["f1"], **{f"window_{k}": v for k, v in w.items()},
            **_bpm_summary(table), "recordings": int(len(table)), "plops": int(table["n_ref"].sum()),
            "detections": int(table["n_est"].sum())}


def evaluate_recordings(references, estimates, durations, *, names=None, scores=None,
                        hop_s: float = 0.01, window_s: float = WINDOW_S) -> tuple[pd.DataFrame, dict]:
    """Every view of a detector on labeled recordings: one row per recording and the
    figures over all of them.

    ``scores`` (optional) holds one frame-score curve per recording, ``hop_s`` apart, for
    the window-wise PR-AUC. Event figures come from sed_eval (:func:`sed_eval_scores`); BPM
    figures from :func:`score_detections`.

    Per recording: ``recording``, ``duration_s``, ``n_ref``, ``n_est``, window-wise
    ``win_precision``, ``win_recall``, ``win_fpr``, ``win_fnr``, ``win_pr_auc``; onset
    events at 100 ms (``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1``),
    ``f1_200ms`` (and its counts), the segment F1 ``seg_f1`` and counts ``seg_tp`` …
    (scores NaN where undefined); ``true_bpm``, ``bpm``,
    ``bpm_low``, ``bpm_high``, ``bpm_error``, ``within_10``, ``ci_covers``. Overall
    (:func:`summarize_evaluation`): ``f1``, ``precision``, ``recall`` (onsets, 100 ms
    collar, pooled), ``f1_200ms``, ``segment_f1_1s``, ``window_*``, ``bpm_error_median``
    (``inf`` when a recording without plops gets detections: no relative error exists there),
    ``bpm_within_10pct``, ``bpm_ci_coverage``, ``bpm_within_10pct_labels`` (a perfect
    detector's share: the BPM estimator's own limit), ``recordings``, ``plops``, ``detections``.

    Examples
    --------
    >>> table, overall = evaluate_recordings([[1.0, 2.0]], [[1.05, 2.5]], [10.0], names=["a"])
    >>> overall["f1"], int(table.loc[0, "tp"])
    (0.5, 1)
    """
    durations = [float(d) for d in durations]
    names = list(names) if names is not None else [f"rec{i}" for i in range(len(durations))]
    scores = list(scores) if scores is not None else [None] * len(durations)
    table, windows = _evaluate(references, estimates, durations, names=names, scores=scores,
                               hop_s=hop_s, window_s=window_s)
    return table, summarize_evaluation(table, windows)


def detection_errors(ref, est, *, collar: float = 0.1, scores: np.ndarray | None = None,
                     hop_s: float = 0.01) -> pd.DataFrame:
    """The false positives (detected onsets matching no reference onset) and false
    negatives (reference onsets matching no detection) of one recording.

    Columns: ``time`` (s), ``kind`` (``"FP"`` or ``"FN"``) and ``score``: for a false
    positive the event's ``probability`` (or ``confidence``), else the largest frame score
    within 50 ms of its onset; for a false negative the largest frame score within
    ``collar`` of the missed onset (how close the detector came). Sorted by score,
    most confident false positives and nearest misses first.

    Examples
    --------
    >>> detection_errors([1.0, 2.0], [1.02, 3.0])[["time", "kind"]].values.tolist()
    [[3.0, 'FP'], [2.0, 'FN']]
    """
    r, e = np.sort(_onsets(ref)), _onsets(est)
    order = np.argsort(e, kind="stable")
    e_sorted = e[order]
    pairs = matched_pairs(r, e_sorted, collar=collar)
    hit_r = np.zeros(len(r), bool)
    hit_e = np.zeros(len(e), bool)
    for i, j in pairs:
        hit_r[i] = True
        hit_e[j] = True
    ev_score = None
    if isinstance(est, pd.DataFrame):
        for col in ("probability", "confidence"):
            if col in est:
                ev_score = est[col].to_numpy(dtype=float)[order]
                break

    def near(t: float, half: float) -> float:
        if scores is None or len(scores) == 0:
            return float("nan")
        a = max(int((t - half) / hop_s), 0)
        b = min(int((t + half) / hop_s) + 1, len(scores))
        return float(np.max(scores[a:b])) if b > a else float("nan")

    rows = [{"time": float(t), "kind": "FP",
             "score": float(ev_score[j]) if ev_score is not None else near(t, 0.05)}
            for j, t in enumerate(e_sorted) if not hit_e[j]]
    rows += [{"time": float(t), "kind": "FN", "score": near(t, collar)} for i, t in enumerate(r) if not hit_r[i]]
    out = pd.DataFrame(rows, columns=["time", "kind", "score"])
    return out.sort_values(["kind", "score"], ascending=[False, False], kind="stable",
                           na_position="last").reset_index(drop=True)
