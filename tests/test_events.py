"""Tests for helpers.events: frame probabilities → events → BPM."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from helpers.config import PLOP_LABEL
from helpers.evaluate import pooled_onset_scores
from helpers.events import (
    DEFAULT_IQR_K,
    DEFAULT_IQR_SCALE,
    _iqr_k_study,
    bpm_error,
    bpm_from_events,
    bpm_over_time,
    peak_picking,
    probabilities_to_events,
    simulate_onsets,
    tune_postprocessing,
    within,
)
from helpers.features import frame_labels

HOP = 0.01


def frames(events: pd.DataFrame, hop: float = HOP) -> list[tuple[int, int]]:
    """Events as (first frame, one-past-last frame) pairs."""
    return [(round(s / hop), round(e / hop)) for s, e in zip(events["start"], events["end"])]


def curve(*segments: tuple[float, int]) -> np.ndarray:
    """A probability curve from (value, number of frames) segments."""
    return np.concatenate([np.full(n, v, dtype=float) for v, n in segments])


def raw(prob, **options) -> pd.DataFrame:
    """Hysteresis only: no merging, no minimum duration."""
    return probabilities_to_events(prob, min_gap_s=0.0, min_duration_s=0.0, **options)


# ----------------------------------------------------------------- probabilities_to_events


def test_hysteresis_starts_at_on_and_ends_below_off():
    prob = curve((0.1, 5), (0.5, 3), (0.3, 4), (0.2, 1), (0.0, 5))
    # on = 0.5 is reached at frame 5; 0.3 >= off = 0.25 keeps it on; 0.2 ends it at frame 12
    assert frames(raw(prob, on=0.5)) == [(5, 12)]
    # with off = on the dip to 0.3 ends the event at once
    assert frames(raw(prob, on=0.5, off=0.5)) == [(5, 8)]


def test_values_between_off_and_on_never_start_an_event():
    prob = curve((0.0, 3), (0.45, 10), (0.3, 5), (0.49, 4), (0.0, 3))
    assert raw(prob, on=0.5).empty
    assert frames(raw(prob, on=0.45)) == [(3, 22)]


def test_default_off_is_half_of_on():
    prob = np.array([0, 0.8, 0.45, 0.39, 0.2, 0])
    assert frames(raw(prob, on=0.8)) == [(1, 3)]  # 0.39 < 0.4 ends it
    assert frames(raw(prob, on=0.8, off=0.3)) == [(1, 4)]


def test_a_dip_below_off_splits_and_the_gap_rule_merges():
    prob = curve((0, 2), (0.9, 4), (0.1, 7), (0.7, 4), (0.1, 8), (0.8, 4), (0, 3))
    assert frames(raw(prob)) == [(2, 6), (13, 17), (25, 29)]
    # the first gap is 7 frames (0.07 s < 0.08 s): merged; the second is 8 frames: not "less"
    merged = probabilities_to_events(prob, min_gap_s=0.08)
    assert frames(merged) == [(2, 17), (25, 29)]
    assert merged["probability"].tolist() == [0.9, 0.8]
    assert frames(probabilities_to_events(prob, min_gap_s=0.081)) == [(2, 29)]


def test_minimum_duration_applies_after_merging():
    prob = curve((0, 3), (0.9, 2), (0, 10), (0.9, 3), (0, 10), (0.9, 2), (0, 1), (0.9, 2), (0, 5))
    events = probabilities_to_events(prob, min_duration_s=0.03, min_gap_s=0.05)
    # a 2-frame event is dropped, a 3-frame one kept, and two 2-frame halves 1 frame apart
    # are merged into a 5-frame event first
    assert frames(events) == [(15, 18), (28, 33)]
    assert frames(probabilities_to_events(prob, min_duration_s=0.0, min_gap_s=0.05)) == [
        (3, 5), (15, 18), (28, 33)]


def test_event_running_to_the_end():
    prob = curve((0, 10), (0.9, 5))
    events = probabilities_to_events(prob)
    assert frames(events) == [(10, 15)]
    assert events["end"].iloc[0] == pytest.approx(0.15)


def test_empty_zeros_and_ones():
    for prob in (np.zeros(0), np.zeros(1000)):
        events = probabilities_to_events(prob)
        assert events.empty
        assert list(events.columns) == ["start", "end", "label", "probability"]
    events = probabilities_to_events(np.ones(500))
    assert frames(events) == [(0, 500)]
    assert events["probability"].tolist() == [1.0]


def test_output_contract_and_hop():
    prob = curve((0, 5), (0.7, 5), (0, 20), (0.6, 5))
    events = probabilities_to_events(prob, hop_s=0.02, label="burp")
    assert list(events.columns) == ["start", "end", "label", "probability"]
    assert events["start"].dtype == np.float64 and events["end"].dtype == np.float64
    assert events["start"].tolist() == pytest.approx([0.10, 0.60])
    assert events["end"].tolist() == pytest.approx([0.20, 0.70])
    assert events["label"].tolist() == ["burp", "burp"]
    assert events.index.tolist() == [0, 1]
    assert probabilities_to_events(prob)["label"].eq(PLOP_LABEL).all()


def test_accepts_column_vectors_and_lists():
    prob = curve((0, 5), (0.7, 5), (0, 5))
    expected = frames(probabilities_to_events(prob))
    assert frames(probabilities_to_events(prob[:, None])) == expected
    assert frames(probabilities_to_events(prob.tolist())) == expected
    assert frames(probabilities_to_events(prob.astype(np.float32))) == expected


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_a_clear_error(bad):
    prob = np.zeros(50)
    prob[17] = bad
    with pytest.raises(ValueError, match=r"NaN or infinite.*frame 17.*nan_to_num"):
        probabilities_to_events(prob)
    with pytest.raises(ValueError, match="frame 17"):
        peak_picking(prob)


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="1-D"):
        probabilities_to_events(np.zeros((10, 3)))
    with pytest.raises(ValueError, match=r"off .* must not be above on"):
        probabilities_to_events(np.zeros(10), on=0.3, off=0.6)
    with pytest.raises(ValueError, match="hop_s"):
        probabilities_to_events(np.zeros(10), hop_s=0)
    with pytest.raises(ValueError, match="min_gap_s"):
        probabilities_to_events(np.zeros(10), min_gap_s=-1)


def test_round_trip_with_frame_labels():
    events = pd.DataFrame({"start": [0.05, 0.30, 1.20], "end": [0.12, 0.45, 1.26], "label": "p"})
    prob = frame_labels(events, 150).astype(float)
    back = probabilities_to_events(prob, min_gap_s=0.0, min_duration_s=0.0)
    assert back["start"].tolist() == pytest.approx(events["start"].tolist())
    assert back["end"].tolist() == pytest.approx(events["end"].tolist())


def reference_events(prob, on, off, min_gap_s, min_duration_s, hop=HOP):
    """A plain per-frame loop, written from the docstring, to check the vectorized code."""
    runs, active, start = [], False, 0
    for i, p in enumerate(prob):
        if not active and p >= on:
            active, start = True, i
        elif active and p < off:
            active = False
            runs.append([start, i])
    if active:
        runs.append([start, len(prob)])
    merged: list[list[int]] = []
    for run in runs:
        if merged and (run[0] - merged[-1][1]) * hop < min_gap_s - 1e-9:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    kept = [r for r in merged if (r[1] - r[0]) * hop >= min_duration_s - 1e-9]
    return [(a, b, max(prob[a:b])) for a, b in kept]


values = st.one_of(st.sampled_from([0.0, 0.2, 0.25, 0.4, 0.5, 0.6, 1.0]),
                   st.floats(0, 1, allow_nan=False))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prob=st.lists(values, max_size=120), on=st.sampled_from([0.2, 0.5, 0.6, 0.9]),
       ratio=st.sampled_from([0.0, 0.4, 0.5, 1.0]), gap=st.integers(0, 6),
       duration=st.integers(0, 5))
def test_vectorized_equals_reference_loop(prob, on, ratio, gap, duration):
    prob = np.asarray(prob, dtype=float)
    off = on * ratio
    events = probabilities_to_events(prob, on=on, off=off, min_gap_s=gap * HOP,
                                     min_duration_s=duration * HOP)
    expected = reference_events(prob, on, off, gap * HOP, duration * HOP)
    got = [(a, b, p) for (a, b), p in zip(frames(events), events["probability"])]
    assert got == expected


def test_random_curves_match_reference_loop_in_bulk():
    rng = np.random.default_rng(5)
    for _ in range(20):
        prob = np.clip(np.convolve(rng.uniform(size=3000) ** 3, np.ones(5) / 2, "same"), 0, 1)
        events = probabilities_to_events(prob, on=0.6, off=0.3)
        expected = reference_events(prob, 0.6, 0.3, 0.08, 0.03)
        assert len(expected) > 5
        assert [(a, b, p) for (a, b), p in zip(frames(events), events["probability"])] == expected


def test_a_day_of_frames_in_well_under_a_second():
    prob = np.random.default_rng(0).uniform(size=8_640_000).astype(np.float32) ** 4
    best = math.inf
    for _ in range(2):  # best of two: the machine may be busy
        t0 = time.perf_counter()
        events = probabilities_to_events(prob)
        best = min(best, time.perf_counter() - t0)
    assert len(events) > 100_000
    assert best < 1.5, f"{best:.2f} s for 24 h of frames: is there a Python loop per frame?"


# ----------------------------------------------------------------- peak_picking


def test_peak_picking_keeps_the_higher_of_close_peaks():
    prob = np.zeros(60)
    prob[[10, 15, 40]] = [0.9, 0.7, 0.8]
    assert frames(peak_picking(prob, min_distance_s=0.1, event_s=0.05)) == [(10, 15), (40, 45)]
    # exactly min_distance apart counts as far enough
    assert peak_picking(prob, min_distance_s=0.05)["start"].tolist() == pytest.approx(
        [0.10, 0.15, 0.40])
    assert peak_picking(prob, threshold=0.75)["probability"].tolist() == [0.9, 0.8]


def test_peak_picking_edges_and_plateaus():
    prob = np.array([0.9, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.6, 0.6, 0.6, 0, 0, 0, 0, 0, 0, 0, 0.2,
                     0.7])
    events = peak_picking(prob)
    # the first and the last frames are peaks; a flat top is one peak at its first frame
    assert events["start"].tolist() == pytest.approx([0.0, 0.11, 0.22])
    assert (events["end"] - events["start"]).tolist() == pytest.approx([0.05] * 3)
    assert peak_picking(np.zeros(0)).empty
    assert peak_picking(np.full(100, 0.4)).empty


@pytest.mark.parametrize("seed", range(5))
def test_peak_picking_distance_threshold_and_maximum(seed):
    rng = np.random.default_rng(seed)
    prob = np.convolve(rng.uniform(size=2000), np.hanning(7), "same") / 3.5
    for distance in (0.03, 0.1, 0.25):
        events = peak_picking(prob, threshold=0.5, min_distance_s=distance)
        idx = np.round(events["start"].to_numpy() / HOP).astype(int)
        assert len(idx) > 3
        assert np.all(np.diff(idx) >= round(distance / HOP))
        assert np.all(prob[idx] >= 0.5)
        assert np.array_equal(events["probability"], prob[idx])
        assert np.all(prob[idx] >= prob[np.maximum(idx - 1, 0)])
        assert np.all(prob[idx] > prob[np.minimum(idx + 1, len(prob) - 1)])


# ----------------------------------------------------------------- tuning


def synthetic_recording(rng, *, duration_s=60.0, n_events=40):
    """A probability curve built from known events, like a decent but imperfect model.

    Background 0–0.25 with clutter bumps of 0.40–0.48 (never events); events 0.6–0.95 with a
    dip to 0.35 in the middle of about half of them (hysteresis must bridge it). The right
    ``on`` threshold is therefore in (0.48, 0.6].
    """
    n = int(duration_s / HOP)
    prob = rng.uniform(0, 0.25, size=n)
    starts = np.sort(rng.choice(np.arange(50, n - 60, 40), size=n_events, replace=False))
    lengths = rng.integers(8, 25, size=n_events)
    for s, length in zip(starts, lengths):
        prob[s:s + length] = rng.uniform(0.6, 0.95, size=length)
        if rng.uniform() < 0.5:
            prob[s + length // 2] = 0.35
    clutter = rng.choice(np.flatnonzero(prob < 0.3)[5:-5], size=30, replace=False)
    for c in clutter:
        if prob[c - 3:c + 4].max() < 0.3:
            prob[c - 2:c + 3] = rng.uniform(0.40, 0.48)
    events = pd.DataFrame({"start": starts * HOP, "end": (starts + lengths) * HOP, "label": "p"})
    return prob, events


def test_tuning_finds_the_threshold_region_on_validation_data_only():
    rng = np.random.default_rng(11)
    validation = [synthetic_recording(rng) for _ in range(3)]
    probs, refs = [p for p, _ in validation], [r for _, r in validation]
    best, table = tune_postprocessing(probs, refs)

    assert set(best) == {"on", "off", "min_gap_s", "min_duration_s"}
    assert 0.48 < best["on"] <= 0.6  # above all clutter, at most the weakest event frame
    assert table["f1"].max() == 1.0
    # no threshold inside the clutter is perfect (above 0.6, hysteresis still catches events
    # whose frames reach "on" early enough, so the upper side of the region is softer)
    assert table.loc[table["f1"] == 1.0, "on"].min() > 0.48
    assert {"on", "off_ratio", "off", "min_gap_s", "f1", "precision", "recall"} <= set(table)
    assert len(table) == 18 * 4 * 5
    # thresholds inside the clutter lose precision, thresholds above the events lose recall
    f1_at = table.groupby("on")["f1"].max()
    assert f1_at[0.3] < 0.9 and f1_at[0.95] < 0.5

    # the settings found on validation recordings carry over to fresh recordings
    fresh = [synthetic_recording(np.random.default_rng(99 + i)) for i in range(2)]
    pairs = [(ref, probabilities_to_events(p, **best)) for p, ref in fresh]
    assert pooled_onset_scores(pairs)["f1"] >= 0.97


def test_tuning_peaks_and_a_fixed_grid():
    rng = np.random.default_rng(3)
    probs, refs = zip(*[synthetic_recording(rng) for _ in range(2)])
    best, table = tune_postprocessing(list(probs), list(refs), method="peaks",
                                      grid={"min_distance_s": [0.3]})
    assert set(best) == {"threshold", "min_distance_s"}
    assert 0.48 < best["threshold"] <= 0.6
    assert best["min_distance_s"] == 0.3 and len(table) == 18
    events = peak_picking(probs[0], **best)  # the dict is ready to pass on
    assert len(events) == len(refs[0])
    best, table = tune_postprocessing(list(probs), list(refs), grid={"on": [0.5], "off_ratio": [1],
                                                                     "min_gap_s": [0.0]})
    # without hysteresis or merging, the dips split events: precision drops
    assert len(table) == 1 and table["precision"].iloc[0] < 0.9


def test_tuning_errors():
    prob, ref = synthetic_recording(np.random.default_rng(0), duration_s=5, n_events=3)
    with pytest.raises(ValueError, match="same order"):
        tune_postprocessing([prob, prob], [ref])
    with pytest.raises(ValueError, match="unknown grid setting 'threshold'"):
        tune_postprocessing([prob], [ref], grid={"threshold": [0.5]})
    with pytest.raises(ValueError, match="method"):
        tune_postprocessing([prob], [ref], method="viterbi")
    with pytest.raises(TypeError, match=r"\[prob\]"):
        tune_postprocessing(prob, [ref])
    with pytest.raises(ValueError, match="validation"):
        tune_postprocessing([], [])


# ----------------------------------------------------------------- bpm_from_events


@pytest.mark.parametrize("rate", [2.0, 17.0, 30.0, 240.0])
def test_bpm_exact_on_regular_onsets(rate):
    onsets = np.arange(40) * 60.0 / rate + 3.0
    r = bpm_from_events(onsets)
    assert r["bpm"] == pytest.approx(rate, rel=1e-9)
    assert r["low"] == pytest.approx(rate, rel=1e-9)
    assert r["high"] == pytest.approx(rate, rel=1e-9)
    assert (r["n_events"], r["n_intervals"], r["method"]) == (40, 39, "interval")


def test_interval_is_the_student_t_interval_of_the_mean_interval():
    intervals = np.array([1.9, 2.0, 2.2, 2.0, 1.8])
    onsets = np.concatenate([[0.0], np.cumsum(intervals)])
    mean, sem = intervals.mean(), intervals.std(ddof=1) / math.sqrt(5)
    t = stats.t.ppf(0.95, 4)  # 90 % two-sided, 4 degrees of freedom
    r = bpm_from_events(onsets, iqr_k=None, confidence=0.90)
    assert r["bpm"] == pytest.approx(30.0)  # 60 / median
    assert r["low"] == pytest.approx(60 / (mean + t * sem))
    assert r["high"] == pytest.approx(60 / (mean - t * sem))
    assert r["n_intervals"] == 5


def test_bpm_keys_and_input_forms():
    onsets = np.array([5.0, 1.0, 3.0, 7.1, 9.0])  # unsorted is fine
    r = bpm_from_events(onsets)
    assert set(r) == {"bpm", "low", "high", "n_events", "n_intervals", "method"}
    frame = pd.DataFrame({"start": onsets, "end": onsets + 0.1, "label": "p"})
    assert bpm_from_events(frame) == r
    assert bpm_from_events(pd.DataFrame({"onset": onsets})) == r
    assert bpm_from_events(onsets.tolist()) == r
    assert r["bpm"] == pytest.approx(30.0)


def test_bpm_robust_to_a_missed_plop_and_a_burst():
    rng = np.random.default_rng(4)
    truth = 30.0
    onsets = np.cumsum(rng.normal(2.0, 0.05, size=80))
    noisy = np.sort(np.concatenate([np.delete(onsets, [20, 50]),  # two missed plops
                                    onsets[30] + [0.15, 0.35],      # a burst of three
                                    [onsets[60] + 0.9]]))           # a false detection
    r = bpm_from_events(noisy)
    assert bpm_error(r["bpm"], truth) < 0.02
    assert r["low"] <= truth <= r["high"]
    # the doubled intervals and the split ones (2 + 2 + 2 of 80) were rejected, and at
    # most a couple of ordinary ones with them
    assert len(noisy) - 1 - 9 <= r["n_intervals"] <= len(noisy) - 1 - 6
    # without rejection the contaminated mean drags the interval off the truth
    plain = bpm_from_events(noisy, iqr_k=None)
    assert plain["n_intervals"] == len(noisy) - 1
    assert plain["high"] - plain["low"] > 3 * (r["high"] - r["low"])


def test_bpm_mean_is_the_mean_of_the_kept_intervals_and_always_inside_its_interval():
    intervals = np.array([1.9, 2.0, 2.2, 2.0, 1.8, 4.0])  # 4.0: a missed plop, rejected
    onsets = np.concatenate([[0.0], np.cumsum(intervals)])
    r = bpm_from_events(onsets, method="mean")
    median = bpm_from_events(onsets)
    assert r["method"] == "mean" and r["n_intervals"] == median["n_intervals"] == 5
    assert r["bpm"] == pytest.approx(60 / intervals[:5].mean())     # 30.30, the median's 30.0
    assert r["bpm"] != pytest.approx(median["bpm"])
    assert (r["low"], r["high"]) == (median["low"], median["high"])  # the same t interval
    # skewed intervals: the median reads high, the mean does not; the mean's point is always
    # inside its interval, the median's not always
    rng = np.random.default_rng(5)
    outside = {"interval": 0, "mean": 0}
    errors = {"interval": [], "mean": []}
    for _ in range(300):
        onsets = simulate_onsets(rate_bpm=40, duration_s=300, shape=4, seed=rng)
        for method in outside:
            r = bpm_from_events(onsets, duration_s=300, method=method)
            outside[method] += not r["low"] <= r["bpm"] <= r["high"]
            errors[method].append(r["bpm"] / 40 - 1)
    assert outside["mean"] == 0 and outside["interval"] > 0
    assert np.median(errors["interval"]) > 0.05 and abs(np.median(errors["mean"])) < 0.03
    # fewer than three plops: the count, as for the median
    assert bpm_from_events([1.0, 3.0], duration_s=60, method="mean")["method"] == "count"
    onsets = simulate_onsets(rate_bpm=30, duration_s=600, shape=4, seed=1)   # irregular
    curve = bpm_over_time(onsets, duration_s=600, window_s=300, step_s=300, method="mean")
    for end, bpm in zip(curve["time_s"], curve["bpm"]):
        window = onsets[(onsets >= end - 300) & (onsets < end)]
        assert bpm == pytest.approx(bpm_from_events(window, duration_s=300, method="mean")["bpm"])
    assert (curve["bpm"] != bpm_over_time(onsets, duration_s=600, window_s=300, step_s=300)["bpm"]).all()


def coverage(rate, shape, *, trials, seed, **options):
    rng = np.random.default_rng(seed)
    hits, widths = [], []
    for _ in range(trials):
        onsets = simulate_onsets(rate_bpm=rate, duration_s=300, shape=shape, seed=rng)
        r = bpm_from_events(onsets, duration_s=300, **options)
        hits.append(r["low"] <= rate <= r["high"])
        widths.append((r["high"] - r["low"]) / 2 / rate)
    return float(np.mean(hits)), float(np.median(widths))


def test_confidence_interval_covers_the_true_rate_of_noisy_regular_bubbling():
    # gamma intervals (shape 20, CV 22 %) at 20 BPM for 5 minutes: measured coverage 0.91
    # with the default k = 1.5 (a little under 0.95: the fences trim the long tail)
    cover, half_width = coverage(20.0, 20, trials=1000, seed=123)
    assert 0.85 <= cover <= 0.99
    assert half_width < 0.06  # and not by being uselessly wide
    # with no rejection the t interval is the textbook one: close to nominal
    cover, _ = coverage(20.0, 20, trials=1000, seed=321, iqr_k=None)
    assert 0.92 <= cover <= 0.98


def test_count_method_with_garwood_interval():
    r = bpm_from_events(np.linspace(0, 50, 10), duration_s=60, method="count")
    assert r["bpm"] == pytest.approx(10.0)
    # Garwood 95 % interval for a count of 10 is (4.795, 18.39) events
    assert r["low"] == pytest.approx(4.7954, abs=1e-3)
    assert r["high"] == pytest.approx(18.390, abs=1e-3)
    assert r["method"] == "count" and r["n_events"] == 10
    zero = bpm_from_events([], duration_s=120, method="count")
    assert zero["bpm"] == 0.0 and zero["low"] == 0.0
    assert zero["high"] == pytest.approx(-math.log(0.025) / 2.0)  # per minute over 2 minutes
    with pytest.raises(ValueError, match="duration_s"):
        bpm_from_events([1.0, 2.0], method="count")


def test_count_interval_covers_poisson_rates():
    rng = np.random.default_rng(8)
    rate, hits = 6.0, []
    for _ in range(2000):
        n = rng.poisson(rate * 5)
        r = bpm_from_events(rng.uniform(0, 300, size=n), duration_s=300, method="count")
        hits.append(r["low"] <= rate <= r["high"])
    assert 0.95 <= np.mean(hits) <= 0.99  # exact intervals are conservative, not wildly so


def test_few_events_never_crash():
    nan = math.isnan
    r = bpm_from_events([])
    assert nan(r["bpm"]) and r["n_events"] == 0 and r["n_intervals"] == 0
    r = bpm_from_events([], duration_s=60)
    assert r["bpm"] == 0.0 and nan(r["low"]) and nan(r["high"])
    for onsets in ([10.0], [10.0, 12.0]):
        r = bpm_from_events(onsets, duration_s=60)
        assert r["bpm"] == pytest.approx(len(onsets))  # count over one minute
        assert r["method"] == "count" and nan(r["low"]) and nan(r["high"])
        assert r["n_events"] == len(onsets)
        r = bpm_from_events(onsets)
        assert nan(r["bpm"]) and nan(r["low"]) and nan(r["high"])
    r = bpm_from_events([10.0, 12.0, 14.0])
    assert r["bpm"] == pytest.approx(30.0) and r["n_intervals"] == 2
    r = bpm_from_events([5.0, 5.0, 5.0, 5.0])  # duplicates: no rate from intervals
    assert nan(r["bpm"])


def test_bpm_input_errors():
    with pytest.raises(ValueError, match="finite"):
        bpm_from_events([1.0, np.nan, 3.0])
    with pytest.raises(ValueError, match="start"):
        bpm_from_events(pd.DataFrame({"time": [1.0]}))
    with pytest.raises(ValueError, match="method"):
        bpm_from_events([1.0], method="fft")
    with pytest.raises(ValueError, match="confidence"):
        bpm_from_events([1.0], confidence=95)
    with pytest.raises(ValueError, match="iqr_scale"):
        bpm_from_events([1.0], iqr_scale="sqrt")


def test_default_k_is_the_measured_one():
    assert DEFAULT_IQR_K == 1.5 and DEFAULT_IQR_SCALE == "log"
    study = _iqr_k_study(n_trials=15, settings=(("linear", 1.5), ("log", 1.5)))
    assert len(study) == 2 * 5
    assert study[["median_error", "within_10", "coverage"]].notna().all().all()


def test_log_fences_reject_short_intervals_that_linear_fences_keep():
    rng = np.random.default_rng(2)
    onsets = simulate_onsets(rate_bpm=20, duration_s=1800, shape=5, seed=rng)
    split = np.sort(np.concatenate([onsets, onsets[::10] + 0.2]))  # a burst every 10 plops
    linear = bpm_from_events(split, iqr_scale="linear")
    log = bpm_from_events(split)  # the default: log fences
    assert log["n_intervals"] < linear["n_intervals"]
    assert bpm_error(log["bpm"], 20) < bpm_error(linear["bpm"], 20)


# ----------------------------------------------------------------- bpm_over_time


def drifting_onsets(rng, rate_at, duration_s, shape=30):
    """Onsets whose rate follows ``rate_at(t)`` (BPM): gamma steps in 'plop phase'."""
    t, out = 0.0, []
    while t < duration_s:
        t += rng.gamma(shape, 1 / shape) * 60.0 / rate_at(t)
        out.append(t)
    return np.array(out[:-1])


def test_bpm_over_time_tracks_a_drifting_rate():
    duration = 4 * 3600.0
    def rate_at(t):
        return 120.0 - 100.0 * t / duration  # peak fermentation slowing from 120 to 20 BPM
    rng = np.random.default_rng(6)
    onsets = drifting_onsets(rng, rate_at, duration)
    onsets = np.delete(onsets, rng.choice(len(onsets), size=len(onsets) // 20, replace=False))
    curve = bpm_over_time(onsets, duration_s=duration, window_s=300, step_s=60)

    assert list(curve.columns) == ["time_s", "bpm", "low", "high", "n_events"]
    assert curve["time_s"].iloc[0] == 300 and curve["time_s"].iloc[-1] == duration
    assert np.allclose(np.diff(curve["time_s"]), 60)
    truth = np.array([rate_at(t - 150) for t in curve["time_s"]])  # the rate mid-window
    errors = np.abs(curve["bpm"] - truth) / truth
    assert errors.max() < 0.10
    assert curve["bpm"].iloc[0] > 100 and curve["bpm"].iloc[-1] < 25

    # each row is bpm_from_events of the onsets in [end - window, end)
    for i in (0, 100, len(curve) - 1):
        end = curve["time_s"].iloc[i]
        inside = onsets[(onsets >= end - 300) & (onsets < end)]
        r = bpm_from_events(inside, duration_s=300)
        assert curve["n_events"].iloc[i] == len(inside)
        assert curve.loc[i, ["bpm", "low", "high"]].tolist() == pytest.approx(
            [r["bpm"], r["low"], r["high"]])


def test_bpm_over_time_short_empty_and_count():
    curve = bpm_over_time([], duration_s=1000)
    assert (curve["bpm"] == 0).all() and (curve["n_events"] == 0).all() and len(curve) == 12
    curve = bpm_over_time(np.arange(0, 100, 2.0), duration_s=100)  # shorter than a window
    assert curve["time_s"].tolist() == [100.0] and curve["bpm"].iloc[0] == pytest.approx(30)
    curve = bpm_over_time(np.arange(0, 600, 2.0), duration_s=600, method="count")
    assert curve["bpm"].tolist() == pytest.approx([30.0] * 6)
    assert (curve["low"] < 30).all() and (curve["high"] > 30).all()
    with pytest.raises(ValueError, match="window_s"):
        bpm_over_time([1.0], duration_s=100, window_s=0)


def test_bpm_over_time_is_fast_for_days_of_events():
    onsets = simulate_onsets(rate_bpm=60, duration_s=3 * 86400, shape=20, seed=1)
    t0 = time.perf_counter()
    curve = bpm_over_time(onsets, duration_s=3 * 86400)
    assert time.perf_counter() - t0 < 3.0
    assert len(curve) == (3 * 86400 - 300) // 60 + 1
    assert within(curve["bpm"].median(), 60)


# ----------------------------------------------------------------- errors and simulation


def test_bpm_error_and_within():
    assert bpm_error(27.0, 30.0) == pytest.approx(0.1)
    assert bpm_error(33.0, 30.0) == pytest.approx(0.1)
    assert bpm_error(0.0, 0.0) == 0.0 and bpm_error(1.0, 0.0) == math.inf
    assert math.isnan(bpm_error(float("nan"), 30.0))
    assert within(33.0, 30.0) and within(27.0, 30.0)
    assert not within(33.1, 30.0) and not within(float("nan"), 30.0)
    assert within(35.0, 30.0, tol=0.2)


def test_simulate_onsets():
    a = simulate_onsets(rate_bpm=30, duration_s=3600, shape=20, seed=5)
    b = simulate_onsets(rate_bpm=30, duration_s=3600, shape=20, seed=5)
    assert np.array_equal(a, b)
    assert np.all(np.diff(a) >= 0.08) and a.min() >= 0 and a.max() < 3600
    assert abs(len(a) / 60 - 30) < 1.5
    missed = simulate_onsets(rate_bpm=30, duration_s=3600, shape=20, miss_prob=0.2, seed=5)
    assert 0.7 < len(missed) / len(a) < 0.9
    bursty = simulate_onsets(rate_bpm=30, duration_s=3600, shape=20, burst_prob=0.2, seed=5)
    assert np.mean(np.diff(bursty) < 0.31) > 0.15
    assert stats.variation(np.diff(a)) == pytest.approx(1 / math.sqrt(20), rel=0.15)
