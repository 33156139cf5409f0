"""Tests for helpers.bpm_plots: the figures of notebook 06 draw what helpers.events computes."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from helpers import bpm_plots  # noqa: E402
from helpers.events import (  # noqa: E402
    bpm_from_events,
    bpm_over_time,
    probabilities_to_events,
    simulate_onsets,
    tune_postprocessing,
)


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def bumpy_curve(seed: int = 0, n: int = 3000) -> tuple[np.ndarray, pd.DataFrame]:
    """A probability curve with plops (some split by a dip), blips and noise, and its labels."""
    rng = np.random.default_rng(seed)
    prob = np.clip(rng.normal(0.05, 0.05, n), 0, 1)
    starts = np.sort(rng.choice(np.arange(20, n - 40, 40), size=n // 150, replace=False))
    for s in starts:
        prob[s:s + 12] = rng.uniform(0.7, 1.0)
        if rng.random() < 0.4:
            prob[s + 5] = rng.uniform(0.1, 0.45)  # a dip inside the plop
    for b in rng.choice(np.arange(n), size=10):
        prob[b] = max(prob[b], rng.uniform(0.55, 0.95))  # one-frame blips
    ref = pd.DataFrame({"start": starts * 0.01, "end": (starts + 12) * 0.01, "label": "p"})
    return prob, ref


# ------------------------------------------------------------------ probability_curve


def test_probability_curve_draws_thresholds_labels_and_detections(ax):
    prob, ref = bumpy_curve()
    detections = probabilities_to_events(prob, on=0.6, off=0.3)
    bpm_plots.probability_curve(ax, prob, reference=ref, detections=detections, on=0.6,
                                off=0.3, start_s=2.0, title="t")
    labels = [h.get_label() for h in ax.get_legend_handles_labels()[0]]
    assert {"labeled plop", "plop probability", "detected event", "on = 0.60",
            "off = 0.30"} <= set(ax.get_legend_handles_labels()[1])
    assert len(labels) == 5
    curve = ax.lines[0]
    assert curve.get_xdata()[0] == pytest.approx(2.0)
    np.testing.assert_allclose(curve.get_ydata(), prob)
    assert len(ax.collections) == len(detections)  # one filled bar per detected event
    assert ax.get_title() == "t"


# ------------------------------------------------------------------ hysteresis_stages


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hysteresis_stage_counts_are_those_of_probabilities_to_events(ax, seed):
    prob, ref = bumpy_curve(seed)
    options = dict(on=0.6, off=0.2, min_gap_s=0.05, min_duration_s=0.03)
    bpm_plots.hysteresis_stages(ax, prob, reference=ref, **options)
    counts = [int(t.get_text().rsplit(": ", 1)[1]) for t in ax.texts]
    assert ax.get_xlim() == (0.0, len(prob) * 0.01)
    expected = [
        len(probabilities_to_events(prob, on=0.6, off=0.6, min_gap_s=0, min_duration_s=0)),
        len(probabilities_to_events(prob, on=0.6, off=0.2, min_gap_s=0, min_duration_s=0)),
        len(probabilities_to_events(prob, on=0.6, off=0.2, min_gap_s=0.05, min_duration_s=0)),
        len(probabilities_to_events(prob, **options)),
    ]
    assert counts == expected
    # the rules only ever remove or merge events
    assert expected[0] >= expected[1] >= expected[2] >= expected[3]
    assert ax.texts[2].get_text().startswith("+ merge gaps < 50 ms")


def test_hysteresis_stages_zoom_counts_events_found_on_the_whole_curve(ax):
    prob = np.zeros(1000)
    prob[495:520] = 0.9  # an event that starts before the view and ends inside it
    prob[600:602] = 0.9  # a 20 ms blip inside the view
    bpm_plots.hysteresis_stages(ax, prob, view=(5.0, 8.0), on=0.5)
    assert [int(t.get_text().rsplit(": ", 1)[1]) for t in ax.texts] == [1, 1, 1, 0]
    assert ax.get_xlim() == (5.0, 8.0)
    assert ax.lines[0].get_xdata()[0] == pytest.approx(5.0)
    # the event that started before the view is still drawn (clipped by the axes)
    assert len(ax.collections) == 2 + 2 + 2 + 1


def test_hysteresis_stages_default_off_is_half_of_on(ax):
    bpm_plots.hysteresis_stages(ax, np.zeros(100), on=0.8)
    assert sorted(line.get_ydata()[0] for line in ax.lines[1:]) == [0.4, 0.8]


# ------------------------------------------------------------------ zoom_where_rules_matter


def test_zoom_prefers_where_most_rules_act_then_where_they_fix_the_count():
    hop = 0.01
    harmed = np.zeros(1000)
    starts = np.array([200, 215, 230, 245])  # four real plops 50 ms apart: the gap merges them
    for s in starts:
        harmed[s:s + 10] = 0.9
    ref_harmed = pd.DataFrame({"start": starts * hop})
    blip = np.zeros(1000)
    blip[500:510] = 0.9                      # a plop and a blip 50 ms later: the gap merges
    blip[515:517] = 0.9
    ref_blip = pd.DataFrame({"start": [5.0]})
    # only the gap rule acts in both; without labels, the window with more events wins ...
    assert bpm_plots.zoom_where_rules_matter([harmed, blip], window_s=2.0) == (0, 1.0)
    # ... with labels, the window where the rule fixes the count
    assert bpm_plots.zoom_where_rules_matter([harmed, blip], window_s=2.0,
                                             references=[ref_harmed, ref_blip]) == (1, 4.0)
    # a window where all three rules act beats both
    every = np.zeros(1000)
    every[700:720] = 0.9
    every[705] = 0.4                         # a dip: split by one threshold, not by hysteresis
    every[760:770] = every[775:777] = 0.9    # merged by the gap rule
    every[800] = 0.9                         # a 10 ms blip, dropped
    assert bpm_plots.zoom_where_rules_matter([harmed, blip, every], hop_s=hop,
                                             window_s=2.0) == (2, 7.0)


def test_zoom_on_calm_curves_prefers_a_window_with_something_in_it():
    calm = np.zeros(900)
    some = np.zeros(900)
    some[650:670] = 0.9
    assert bpm_plots.zoom_where_rules_matter([calm, some], window_s=3.0) == (1, 4.5)


# ------------------------------------------------------------------ f1_heatmap


def test_f1_heatmap_shows_the_best_score_over_the_hidden_settings(ax):
    prob, ref = bumpy_curve(3)
    grid = {"on": [0.3, 0.5, 0.7, 0.9], "off_ratio": [0.25, 0.5, 1.0],
            "min_gap_s": [0.0, 0.08]}
    best, table = tune_postprocessing([prob], [ref], grid=grid)
    img = bpm_plots.f1_heatmap(ax, table, x="on", y="off_ratio", annotate=True)
    data = np.asarray(img.get_array())
    assert data.shape == (3, 4)
    expected = table.groupby(["off_ratio", "on"])["f1"].max().unstack().to_numpy()
    np.testing.assert_allclose(data, expected)
    assert len(ax.texts) == 12
    outline = ax.patches[-1]
    r, c = np.unravel_index(np.argmax(data), data.shape)
    assert outline.get_xy() == (c - 0.5, r - 0.5)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.3", "0.5", "0.7", "0.9"]


# ------------------------------------------------------------------ bpm_scatter


def test_bpm_scatter_fills_points_within_the_band_only(ax):
    true = np.array([10.0, 20.0, 40.0, 80.0])
    est = np.array([10.5, 25.0, 39.0, 60.0])
    bpm_plots.bpm_scatter(ax, true, est, low=est * 0.9, high=est * 1.1, tol=0.1, label="m")
    inside, outside = ax.collections[-2], ax.collections[-1]
    assert len(inside.get_offsets()) == 2 and len(outside.get_offsets()) == 2
    assert "m: 50% within" in ax.get_legend_handles_labels()[1]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    major, minor = ax.yaxis.get_major_formatter(), ax.yaxis.get_minor_formatter()
    assert (major(10.0, 0), minor(0.2, 0), minor(50.0, 0), minor(30.0, 0)) == ("10", "0.2", "50", "")
    n = len(ax.collections)
    bpm_plots.bpm_scatter(ax, true, est, band=False)  # overlay: no second band
    assert len(ax.collections) == n + 2


# ------------------------------------------------------------------ interval_fences / plot


@pytest.mark.parametrize("scale", ["log", "linear"])
@pytest.mark.parametrize("k", [0.0, 1.0, 1.5, None])
def test_interval_fences_keep_what_bpm_from_events_keeps(scale, k):
    rng = np.random.default_rng(11)
    for _ in range(60):
        onsets = simulate_onsets(rate_bpm=float(np.exp(rng.uniform(np.log(3), np.log(200)))),
                                 duration_s=float(rng.uniform(20, 300)),
                                 shape=float(rng.uniform(2, 40)), miss_prob=0.1,
                                 burst_prob=0.05, false_ratio=0.05, seed=rng)
        if len(onsets) < 3:
            continue
        intervals, low, high = bpm_plots.interval_fences(onsets, iqr_k=k, iqr_scale=scale)
        kept = np.count_nonzero((intervals >= low) & (intervals <= high))
        r = bpm_from_events(onsets, iqr_k=k, iqr_scale=scale)
        assert kept == r["n_intervals"]


def test_interval_fences_reject_a_missed_plop_and_a_burst():
    onsets = np.arange(0, 120, 2.0)
    noisy = np.sort(np.r_[np.delete(onsets, 20), onsets[40] + np.array([0.2, 0.45])])
    intervals, low, high = bpm_plots.interval_fences(noisy)
    rejected = np.sort(intervals[(intervals < low) | (intervals > high)])
    np.testing.assert_allclose(rejected, [0.2, 0.25, 1.55, 4.0])
    assert bpm_plots.interval_fences([0.0, 1.0])[1:] == (-math.inf, math.inf)


def test_interval_plot_returns_and_draws_the_bpm_from_events_result(ax):
    onsets = simulate_onsets(rate_bpm=40, duration_s=240, shape=20, miss_prob=0.1,
                             burst_prob=0.05, seed=4)
    r = bpm_plots.interval_plot(ax, pd.DataFrame({"start": onsets}), true_bpm=40)
    expected = bpm_from_events(onsets)
    assert r == expected
    labels = ax.get_legend_handles_labels()[1]
    assert f"median → {expected['bpm']:.1f} BPM" in labels
    n_rejected = len(onsets) - 1 - expected["n_intervals"]
    assert f"rejected ({n_rejected})" in labels
    assert "truth 40.0 BPM" in labels


def test_interval_plot_with_too_few_plops_does_not_fail(ax):
    r = bpm_plots.interval_plot(ax, [1.0])
    assert math.isnan(r["bpm"])


# ------------------------------------------------------------------ fermentation_curve


def test_fermentation_curve_marks_the_windows_outside_the_band(ax):
    onsets = np.r_[simulate_onsets(rate_bpm=30, duration_s=900, shape=30, seed=1),
                   900 + simulate_onsets(rate_bpm=60, duration_s=900, shape=30, seed=2)]
    curve = bpm_over_time(onsets, duration_s=1800, window_s=300, step_s=60)
    truth = np.where(curve["time_s"] <= 900, 30.0, 60.0)
    bpm_plots.fermentation_curve(ax, curve, truth=truth, xlabel="h")
    outside = np.abs(curve["bpm"] - truth) > 0.1 * truth
    assert outside.any() and not outside.all()  # the windows straddling the jump
    dots = ax.collections[-1]
    assert len(dots.get_offsets()) == outside.sum()
    assert f"outside ±10% ({outside.mean():.0%})" in ax.get_legend_handles_labels()[1]
    np.testing.assert_allclose(ax.lines[-1].get_xdata(), curve["time_s"] / 3600)


def test_fermentation_curve_survives_an_infinite_upper_limit(ax):
    curve = pd.DataFrame({"time_s": [60.0, 120.0], "bpm": [3.0, 4.0], "low": [1.0, 2.0],
                          "high": [math.inf, 9.0]})
    bpm_plots.fermentation_curve(ax, curve, x=[1, 2])
    assert np.isfinite(ax.get_ylim()).all()
