"""Tests of helpers.evaluate (onset matching and scores, checked against sed_eval and a
brute-force maximum matching) and helpers.baselines (hysteresis events, the energy counter
and its tuning)."""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import pytest
import sed_eval
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import synth
from helpers.audio import to_mono
from helpers.baselines import (
    HOP_S,
    EnergyCounter,
    band_energy_db,
    events_from_level,
    tune_energy_counter,
)
from helpers.evaluate import false_plops_at_confusers, match_onsets, onset_scores, pooled_onset_scores, prf

# ----------------------------------------------------------------------------- references


def brute_force_matching(ref, est, collar) -> int:
    """Size of a maximum one-to-one matching, by trying every choice (small inputs only)."""
    ref, est = list(ref), list(est)

    @functools.lru_cache(maxsize=None)
    def best(i: int, used: frozenset) -> int:
        if i == len(ref):
            return 0
        result = best(i + 1, used)  # ref[i] unmatched
        for j, e in enumerate(est):
            if j not in used and abs(e - ref[i]) <= collar + 1e-9:
                result = max(result, 1 + best(i + 1, used | {j}))
        return result

    return best(0, frozenset())


def sed_eval_scores(pairs, collar=0.1):
    """sed_eval's onset-only event-based metrics over (ref, est) onset lists, one pair per
    file; ``est`` offsets are random to show that offsets are ignored."""
    metrics = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=["p"], t_collar=collar, evaluate_onset=True, evaluate_offset=False)
    rng = np.random.default_rng(0)
    for k, (ref, est) in enumerate(pairs):
        name = f"file{k}.wav"
        ref_list = [{"filename": name, "event_label": "p", "event_onset": float(t),
                     "event_offset": float(t) + 0.1} for t in ref]
        est_list = [{"filename": name, "event_label": "p", "event_onset": float(t),
                     "event_offset": float(t) + float(rng.uniform(0.01, 2.0))} for t in est]
        metrics.evaluate(reference_event_list=ref_list, estimated_event_list=est_list)
    f = metrics.results_overall_metrics()["f_measure"]
    o = metrics.overall
    return {"tp": int(o["Ntp"]), "fp": int(o["Nfp"]), "fn": int(o["Nfn"]),
            "precision": f["precision"], "recall": f["recall"], "f1": f["f_measure"]}


def assert_same_as_sed_eval(ours, theirs):
    for k in ("tp", "fp", "fn"):
        assert ours[k] == theirs[k], (k, ours, theirs)
    for k in ("precision", "recall", "f1"):
        if math.isnan(theirs[k]):  # sed_eval: undefined (nothing estimated / no reference)
            assert ours[k] == 0.0
        else:
            assert ours[k] == pytest.approx(theirs[k], abs=1e-12), (k, ours, theirs)


def random_pair(rng, *, n_max=15, span=10.0):
    """A reference and an estimate that resembles a detector's output: some reference onsets
    found with jitter (some beyond the collar), some missed, some false alarms."""
    ref = np.sort(rng.uniform(0, span, rng.integers(0, n_max + 1)))
    found = ref[rng.random(len(ref)) < 0.7]
    est = np.concatenate([found + rng.normal(0, 0.07, len(found)),
                          rng.uniform(0, span, rng.integers(0, 5))])
    return ref, rng.permutation(est)


# ----------------------------------------------------------------------------- match_onsets


def test_match_onsets_examples():
    assert match_onsets(np.array([1.0, 2.0, 3.0]), np.array([1.05, 2.5, 2.95])) == 2
    assert match_onsets([], [1.0]) == 0 and match_onsets([1.0], []) == 0
    # one estimate cannot match two references
    assert match_onsets([1.0, 1.05], [1.02]) == 1
    # matching ref 1.1 to its nearest estimate (1.05) first would leave 1.0 unmatched
    assert match_onsets([1.0, 1.1], [1.05, 1.19]) == 2
    # the collar is inclusive; unsorted input is fine
    assert match_onsets([2.0, 1.0], [1.25, 2.25], collar=0.25) == 2
    assert match_onsets([1.0], [1.3], collar=0.25) == 0


def test_match_onsets_is_a_maximum_matching_on_random_instances():
    rng = np.random.default_rng(123)
    for _ in range(400):
        # dense: many conflicts within the collar
        ref = rng.uniform(0, 1.0, rng.integers(0, 7))
        est = rng.uniform(0, 1.0, rng.integers(0, 7))
        collar = float(rng.choice([0.05, 0.1, 0.2]))
        assert match_onsets(ref, est, collar=collar) == brute_force_matching(ref, est, collar)


onsets = st.lists(st.floats(0.0, 2.0, allow_nan=False), max_size=6)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(ref=onsets, est=onsets, collar=st.sampled_from([0.05, 0.1, 0.3]))
def test_match_onsets_maximum_and_symmetric(ref, est, collar):
    n = match_onsets(ref, est, collar=collar)
    assert n == brute_force_matching(ref, est, collar)
    assert n == match_onsets(est, ref, collar=collar)
    assert n <= min(len(ref), len(est))


# ----------------------------------------------------------------------------- scores vs sed_eval


def test_onset_scores_equal_sed_eval_per_recording():
    rng = np.random.default_rng(7)
    for _ in range(60):
        ref, est = random_pair(rng)
        assert_same_as_sed_eval(onset_scores(ref, est), sed_eval_scores([(ref, est)]))


def test_onset_scores_equal_sed_eval_with_another_collar():
    rng = np.random.default_rng(8)
    for _ in range(30):
        ref, est = random_pair(rng)
        assert_same_as_sed_eval(onset_scores(ref, est, collar=0.05),
                                sed_eval_scores([(ref, est)], collar=0.05))


def test_pooled_scores_equal_sed_eval_over_files():
    rng = np.random.default_rng(9)
    for _ in range(10):
        pairs = [random_pair(rng) for _ in range(int(rng.integers(1, 6)))]
        assert_same_as_sed_eval(pooled_onset_scores(pairs), sed_eval_scores(pairs))


def test_pooled_scores_are_micro_averaged():
    # file 1: 1 of 1 found; file 2: 0 of 9 found
    pairs = [([1.0], [1.0]), (np.arange(1.0, 10.0), [])]
    s = pooled_onset_scores(pairs)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 0, 9)
    assert s["recall"] == pytest.approx(0.1)  # not the mean of the recalls (0.5)
    assert s["precision"] == 1.0
    assert s["f1"] == pytest.approx(2 * 0.1 / 1.1)


def test_scores_accept_events_frames():
    ref = pd.DataFrame({"start": [1.0, 2.0, 3.0], "end": [1.1, 2.1, 3.1], "label": "p"})
    est_dcase = pd.DataFrame({"onset": [1.02, 2.5], "offset": [9.0, 9.0], "event_label": "p"})
    s = onset_scores(ref, est_dcase)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 2)
    assert onset_scores(ref, [1.02, 2.5]) == s
    assert onset_scores(ref, np.array([1.02, 2.5])) == s


def test_prf_edge_cases():
    assert prf(0, 0, 0) == {"tp": 0, "fp": 0, "fn": 0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert prf(0, 3, 0)["precision"] == 0.0
    s = prf(3, 1, 2)
    assert s["precision"] == 0.75 and s["recall"] == 0.6
    assert s["f1"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)


def test_collar_is_used():
    assert onset_scores([1.0], [1.15])["tp"] == 0
    assert onset_scores([1.0], [1.15], collar=0.2)["tp"] == 1


# ----------------------------------------------------------------------------- events_from_level


def ev(level, **kw):
    out = events_from_level(np.asarray(level, dtype=float), **kw)
    assert list(out.columns) == ["start", "end", "label"]
    return [(round(s / HOP_S), round(e / HOP_S)) for s, e in zip(out["start"], out["end"])]


def test_events_from_level_hysteresis():
    # on above 10, off below 7 (10 - 3): the dip to 8 does not end the event
    assert ev([0, 0, 12, 12, 8, 11, 8, 8, 6, 0], threshold_db=10) == [(2, 8)]
    # exactly at the threshold is not above it; exactly threshold - hysteresis keeps it on
    assert ev([0, 10, 0, 12, 7, 7, 6.9, 0], threshold_db=10) == [(3, 6)]
    # starting inside the hysteresis band is "off"
    assert ev([8, 8, 8, 12, 0], threshold_db=10) == [(3, 4)]
    # an event running to the end closes at the end
    assert ev([0, 0, 12, 12], threshold_db=10) == [(2, 4)]
    # a larger hysteresis keeps the event on through a deeper dip
    assert ev([0, 12, 5, 12, 0], threshold_db=10, hysteresis_db=3, min_gap_s=0) == [(1, 2), (3, 4)]
    assert ev([0, 12, 5, 12, 0], threshold_db=10, hysteresis_db=6, min_gap_s=0) == [(1, 4)]
    assert ev([], threshold_db=10) == []
    assert ev(np.zeros(50), threshold_db=10) == []


def test_events_from_level_minimum_gap():
    lv = np.zeros(100)
    lv[10:15] = 20
    lv[20:25] = 20  # 5 frames (50 ms) after the first: the same plop
    lv[35:40] = 20  # 10 frames (100 ms) after: a new plop at min_gap_s=0.1
    lv[70:72] = 20
    assert ev(lv, threshold_db=10, min_gap_s=0.1) == [(10, 25), (35, 40), (70, 72)]
    assert ev(lv, threshold_db=10, min_gap_s=0.11) == [(10, 40), (70, 72)]
    assert ev(lv, threshold_db=10, min_gap_s=0.0) == [(10, 15), (20, 25), (35, 40), (70, 72)]
    assert ev(lv, threshold_db=10, min_gap_s=0.5) == [(10, 72)]
    # times scale with the hop
    out = events_from_level(lv, threshold_db=10, min_gap_s=0.2, hop_s=0.02)
    assert out["start"].tolist() == pytest.approx([0.2, 0.7, 1.4])


# ----------------------------------------------------------------------------- the energy counter


def burst(sr, amp, f=2000.0):
    t = np.arange(int(0.03 * sr)) / sr
    return amp * np.exp(-150 * t) * np.sin(2 * np.pi * f * t)


def clicks_in_silence(sr, times, *, amp=0.5, seconds=4.0, seed=0):
    y = 1e-4 * np.random.default_rng(seed).standard_normal(int(seconds * sr))
    b = burst(sr, amp)
    for t in times:
        y[int(t * sr): int(t * sr) + len(b)] += b
    return y.astype(np.float32)


@pytest.mark.parametrize("sr", [16000, 44100])
def test_energy_counter_finds_clicks_in_silence(sr):
    times = [0.5, 1.3, 1.72, 2.9, 3.5]
    events = EnergyCounter().detect(clicks_in_silence(sr, times), sr=sr)
    assert len(events) == len(times)
    # frames are 20 ms long every 10 ms: the onset is found at most one frame early
    np.testing.assert_array_less(np.abs(events["start"].to_numpy() - times), 0.0201)
    assert (events["end"] > events["start"]).all() and (events["end"] - events["start"] < 0.15).all()
    assert onset_scores(times, events)["f1"] == 1.0


def test_energy_counter_ignores_steady_noise():
    y = 0.01 * np.random.default_rng(1).standard_normal(4 * 16000).astype(np.float32)
    assert EnergyCounter().detect(y).empty


def test_band_energy_db_is_relative_to_the_median():
    y = clicks_in_silence(16000, [1.0])
    e = band_energy_db(y)
    assert len(e) == 400
    assert abs(np.median(e)) < 1e-9
    assert 90 <= np.argmax(e) <= 103  # the click at 1.0 s
    # a louder copy of the same recording has the same relative level
    np.testing.assert_allclose(band_energy_db(10 * y), e, atol=0.01)


def handmade_set():
    """Three recordings: loud plop-like bursts (labelled) and quieter blips (not labelled)
    over a noise floor. Any threshold between the blips' and the bursts' level is perfect."""
    sr, signals, refs, plop_db, blip_db = 16000, [], [], [], []
    grid = np.arange(0.3, 5.7, 0.45)
    for k in range(3):
        rng = np.random.default_rng(k)
        y = 1e-3 * rng.standard_normal(6 * sr)
        plops = np.sort(rng.choice(grid, 6, replace=False))
        blips = rng.choice([t for t in grid if np.min(np.abs(plops - t)) > 0.2], 4, replace=False)
        for t in plops:
            y[int(t * sr): int(t * sr) + 480] += burst(sr, 0.1)
        for t in blips:
            y[int(t * sr): int(t * sr) + 480] += burst(sr, 0.01, f=1200.0)
        lv = band_energy_db(y)
        plop_db += [lv[int(t / HOP_S) - 3: int(t / HOP_S) + 5].max() for t in plops]
        blip_db += [lv[int(t / HOP_S) - 3: int(t / HOP_S) + 5].max() for t in blips]
        signals.append(y.astype(np.float32))
        refs.append(pd.DataFrame({"start": plops, "end": plops + 0.05, "label": "p"}))
    return signals, refs, min(plop_db), max(blip_db)


def test_tuning_finds_a_threshold_between_blips_and_plops():
    signals, refs, plop_db, blip_db = handmade_set()
    assert plop_db - blip_db > 10  # the set is what it claims to be
    counter, grid = tune_energy_counter(signals, refs)
    assert blip_db < counter.threshold_db < plop_db
    assert grid["f1"].max() == 1.0
    f1 = grid.groupby("threshold_db")["f1"].max()
    assert f1[2.0] < 1.0 and f1[40.0] == 0.0  # too low: blips count; too high: nothing
    assert len(grid) == 77 * 4
    assert set(grid.columns) >= {"threshold_db", "min_gap_s", "f1", "precision", "recall"}
    found = pooled_onset_scores(zip(refs, [counter.detect(y) for y in signals]))
    assert found["f1"] == 1.0


def test_tuning_on_synthetic_recordings():
    recs = [synth.synthesize_recording(seed=200 + i, duration_s=8.0, sr=16000, snr_db=20.0)
            for i in range(4)]
    signals, refs = [to_mono(r.audio) for r in recs], [r.events for r in recs]
    counter, grid = tune_energy_counter(signals, refs, thresholds=np.arange(2.0, 40.5, 1.0),
                                        min_gaps=(0.08, 0.2))
    best = grid["f1"].max()
    f1 = grid.groupby("threshold_db")["f1"].max()
    assert best > f1[2.0] and best > f1[40.0]
    assert best > 0.5
    # the counter returned scores what the grid says
    found = pooled_onset_scores(zip(refs, [counter.detect(y) for y in signals]))
    assert found["f1"] == pytest.approx(best, abs=0.002)
    # the chosen setting is on the best plateau (its middle, not its lowest threshold)
    row = grid[(grid["threshold_db"] == counter.threshold_db) & (grid["min_gap_s"] == counter.min_gap_s)]
    assert row["f1"].item() >= best - 0.002


def test_scores_by_pools_counts_per_group():
    """Groups pool tp/fp/fn (not average F1s); families joined by '+' count in each; SNR bands."""
    from helpers.evaluate import scores_by

    t = pd.DataFrame({"tp": [9, 1, 5], "fp": [1, 1, 0], "fn": [0, 3, 5],
                      "snr_db": [25.0, 0.0, 5.0], "backgrounds": ["hum+fan", "fan", "music"]})
    fam = scores_by(t, "backgrounds").set_index("backgrounds")
    assert fam.loc["fan", "recordings"] == 2 and fam.loc["fan", "plops"] == 13
    assert fam.loc["fan", "f1"] == pytest.approx(2 * 10 / (2 * 10 + 2 + 3))
    band = scores_by(t, "snr band").set_index("snr band")
    assert list(band.index) == ["< 5 dB", "5–10 dB", "≥ 20 dB"]  # 5.0 dB falls in 5–10
    assert band.loc["5–10 dB", "recall"] == pytest.approx(0.5)


def test_a_perfect_detector_shows_the_bpm_estimators_own_limit():
    """A rate that changes halfway: 30 plops 1 s apart, then 10 plops 3 s apart (40 a
    minute). The labels themselves, through the interval method, read the typical gap (1 s,
    60 BPM): outside ±10 % although nothing was missed. The count reads 40."""
    from helpers.evaluate import score_detections, summarize_scores

    ref = pd.DataFrame({"start": np.r_[np.arange(0.5, 30, 1.0), np.arange(31.0, 60, 3.0)]})
    assert len(ref) == 40
    interval = score_detections([ref], [ref], [60.0], bpm_method="interval").iloc[0]
    count = score_detections([ref], [ref], [60.0], bpm_method="count").iloc[0]
    assert interval["true_bpm"] == 40.0 and interval["labels_bpm"] == pytest.approx(60.0)
    assert not interval["labels_within_10"] and not interval["within_10"]
    assert count["labels_bpm"] == 40.0 and count["labels_within_10"]
    # the limit comes from the labels, not the detections: a detector that finds nothing
    # is off, while the labels through the count still are not
    empty = score_detections([ref], [ref.iloc[:0]], [60.0], bpm_method="count").iloc[0]
    assert not empty["within_10"] and empty["labels_within_10"] and empty["labels_bpm"] == 40.0
    # and a detector that finds only the regular half (one plop a second: 60 BPM by either
    # method) does not move the interval method's limit either
    regular = score_detections([ref], [ref.iloc[:30]], [60.0], bpm_method="interval")
    assert regular.iloc[0]["labels_bpm"] == pytest.approx(60.0)
    assert summarize_scores(regular)["bpm_within_10pct_labels"] == 0.0
    both = score_detections([ref, ref], [ref.iloc[:0], ref.iloc[:30]], [60.0, 60.0], bpm_method="count")
    assert summarize_scores(both)["bpm_within_10pct_labels"] == 1.0
    assert summarize_scores(both)["bpm_within_10pct"] == 0.0


def test_false_plops_at_confusers_needs_its_columns_and_is_nan_where_a_group_is_empty():
    with pytest.raises(ValueError, match="n_confusers"):
        false_plops_at_confusers(pd.DataFrame({"fp": [1], "duration_s": [60.0]}))
    r = false_plops_at_confusers(pd.DataFrame({"fp": [3], "n_confusers": [5], "duration_s": [60.0]}))
    assert r["false_plops"] == 3 and r["confusers"] == 5
    assert np.isnan(r["per_minute_without"]) and np.isnan(r["per_confuser"]) and np.isnan(r["share_at_confusers"])
    r = false_plops_at_confusers(pd.DataFrame({"fp": [3, 1], "n_confusers": [0, 0], "duration_s": [60.0, 60.0]}))
    assert r["per_minute_without"] == 2.0 and np.isnan(r["per_confuser"]) and np.isnan(r["share_at_confusers"])
    with pytest.raises(ValueError, match="missing for 1 recordings"):
        false_plops_at_confusers(pd.DataFrame({"fp": [3, 1], "n_confusers": [2, np.nan], "duration_s": [60.0, 60.0]}))
