"""Mixtures at a chosen SNR, the SNR × background sweep with the shipped detector, and the
with/without background-mixing training pair — on real audio and real inference."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from helpers import robustness as rb  # noqa: E402
from helpers.config import SR  # noqa: E402
from helpers.evaluate import score_detections  # noqa: E402
from helpers.synth import BACKGROUNDS  # noqa: E402


@pytest.fixture(scope="module")
def track():
    return rb.plop_track(seed=3, duration_s=8.0)


@pytest.fixture(scope="module")
def shipped():
    from helpers.models import Detector

    return Detector.load(backend="keras")


@pytest.mark.parametrize("family", sorted(BACKGROUNDS))
@pytest.mark.parametrize("snr_db", [-10.0, 0.0, 12.5, 30.0])
def test_measured_snr_is_the_requested_one(track, family, snr_db):
    y, ev, _ = track
    m = rb.mix(y, ev, family=family, snr_db=snr_db, seed=1)
    assert m["snr_db"] == pytest.approx(snr_db, abs=0.1)
    # measured again from the returned (scaled, float32) parts, with the documented definition
    mask = np.zeros(len(y), dtype=bool)
    for s, e in zip(ev["start"], ev["end"]):
        mask[int(s * SR):int(e * SR)] = True
    p_plops = np.mean(m["plops"][mask].astype(np.float64) ** 2)
    p_bg = np.mean(m["background"].astype(np.float64) ** 2)
    assert 10 * np.log10(p_plops / p_bg) == pytest.approx(snr_db, abs=0.1)
    np.testing.assert_allclose(m["audio"], m["plops"] + m["background"], atol=1e-6)
    assert np.max(np.abs(m["audio"])) <= 0.99 + 1e-6
    assert m["family"] == family and m["events"].equals(ev.reset_index(drop=True))


def test_same_seed_same_audio_and_other_seeds_differ(track):
    y1, ev1, info1 = rb.plop_track(seed=3, duration_s=8.0)
    y, ev, info = track
    np.testing.assert_array_equal(y1, y)
    pd.testing.assert_frame_equal(ev1, ev)
    assert info1 == info
    a = rb.mix(y, ev, family="babble", snr_db=0.0, seed=5)["audio"]
    b = rb.mix(y, ev, family="babble", snr_db=0.0, seed=5)["audio"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, rb.mix(y, ev, family="babble", snr_db=0.0, seed=6)["audio"])
    assert not np.array_equal(y, rb.plop_track(seed=4, duration_s=8.0)[0])


def test_the_same_background_at_every_snr(track):
    """Only the level of the background changes with the SNR: the parts are proportional."""
    y, ev, _ = track
    lo = rb.mix(y, ev, family="music", snr_db=-10.0, seed=2)
    hi = rb.mix(y, ev, family="music", snr_db=30.0, seed=2)
    r = np.corrcoef(lo["background"], hi["background"])[0, 1]
    assert r > 0.9999
    ratio = np.sqrt(np.mean(lo["background"].astype(np.float64) ** 2) / np.mean(lo["plops"].astype(np.float64) ** 2)) \
        / np.sqrt(np.mean(hi["background"].astype(np.float64) ** 2) / np.mean(hi["plops"].astype(np.float64) ** 2))
    assert 20 * np.log10(ratio) == pytest.approx(40.0, abs=0.01)


def test_events_match_the_plops_placed():
    y, ev, info = rb.plop_track(seed=8, duration_s=12.0, room=False)
    assert len(ev) == info["n_plops"] >= 5
    assert list(ev.columns) == ["start", "end", "label"] and (ev["label"] == "p").all()
    assert (ev["start"].diff().dropna() > 0).all() and (ev["end"] > ev["start"]).all()
    assert ((ev["end"] - ev["start"]) >= 0.05 - 1e-4).all() and (ev["end"] <= 12.0).all()
    # silence before the first plop; nearly all the energy inside the events (each event ends
    # where 97 % of its plop's energy has passed); every event holds a plop
    first = int(ev["start"].iloc[0] * SR)
    assert np.all(y[:first] == 0)
    energy = y.astype(np.float64) ** 2
    inside = np.zeros(len(y), dtype=bool)
    per_event = []
    for s, e in zip(ev["start"], ev["end"]):
        inside[int(s * SR):int(e * SR) + 1] = True
        per_event.append(energy[int(s * SR):int(e * SR) + 1].sum())
    assert energy[inside].sum() / energy.sum() > 0.9
    assert min(per_event) > 0.01 * np.mean(per_event)
    # a perfect detector scores 1 on these events: the scoring sees the same onsets
    assert score_detections([ev], [ev], [12.0]).iloc[0]["f1"] == 1.0


def test_sweep_table_and_f1_falls_with_snr(shipped):
    table = rb.sweep({"shipped": shipped}, snrs_db=[-10, 30], families=["pink", "fan"], seeds=[0, 1],
                     duration_s=15.0)
    assert len(table) == 1 * 2 * 2 * 2
    assert list(table.columns[:len(rb.SWEEP_KEYS)]) == list(rb.SWEEP_KEYS)
    for col in ("tp", "fp", "fn", "precision", "recall", "f1", "true_bpm", "bpm", "bpm_error",
                "bpm_error_oracle"):
        assert col in table
    assert set(table["family"]) == {"pink", "fan"} and set(table["snr_db"]) == {-10.0, 30.0}
    assert np.allclose(table["snr_measured_db"], table["snr_db"], atol=0.1)
    assert table.groupby("seed")["n_ref"].nunique().eq(1).all()  # one plop track per seed
    s = rb.summarize_sweep(table, by=["snr_db"]).set_index("snr_db")
    assert s.loc[30.0, "f1"] > 0.9
    assert s.loc[-10.0, "f1"] < s.loc[30.0, "f1"] - 0.2
    per_family = rb.summarize_sweep(table, by=["family", "snr_db"])
    assert len(per_family) == 4 and (per_family["recordings"] == 2).all()
    ax = rb.plot_vs_snr(table, metric="f1")
    assert len(ax.lines) == 2
    ax = rb.plot_vs_snr(table, metric="bpm_error_median", line="model")
    assert len(ax.lines) == 1


def test_sweep_compares_several_detectors_on_the_same_mixtures(shipped):
    table = rb.sweep({"a": shipped, "b": shipped}, snrs_db=[0], families=["hum"], seeds=[2], duration_s=6.0)
    assert table["model"].tolist() == ["a", "b"]
    cols = ["n_ref", "n_est", "tp", "fp", "fn", "bpm"]
    pd.testing.assert_frame_equal(table.loc[[0], cols].reset_index(drop=True),
                                  table.loc[[1], cols].reset_index(drop=True))


def test_bad_input_gives_clear_errors(track, shipped):
    y, ev, _ = track
    with pytest.raises(ValueError, match="unknown or empty background families.*'fridge'"):
        rb.mix(y, ev, family="fridge", snr_db=0.0, seed=0)
    with pytest.raises(ValueError, match="non-empty mono audio"):
        rb.mix(np.zeros(0, dtype=np.float32), ev, family="hum", snr_db=0.0, seed=0)
    with pytest.raises(ValueError, match="no events"):
        rb.mix(y, ev.iloc[:0], family="hum", snr_db=0.0, seed=0)
    with pytest.raises(ValueError, match="finite"):
        rb.mix(y, ev, family="hum", snr_db=float("nan"), seed=0)
    with pytest.raises(ValueError, match="unknown or empty background families"):
        rb.sweep(shipped, families=[], seeds=[0])
    with pytest.raises(ValueError, match="unknown or empty background families.*'tv'"):
        rb.sweep(shipped, families=["hum", "tv"], seeds=[0])
    with pytest.raises(ValueError, match="at least one value"):
        rb.sweep(shipped, families=["hum"], seeds=[])
    with pytest.raises(ValueError, match="at least one value"):
        rb.sweep(shipped, families=["hum"], snrs_db=[])
    with pytest.raises(ValueError, match="no detectors"):
        rb.sweep({}, families=["hum"])
    with pytest.raises(ValueError, match="airlocks"):
        rb.plop_track(seed=0, airlocks=("jar",))
    with pytest.raises(ValueError, match="rate_ppm"):
        rb.plop_track(seed=0, rate_ppm=(60.0, 1000.0))
    with pytest.raises(ValueError, match="metric"):
        rb.plot_vs_snr(pd.DataFrame(), metric="auc")
    with pytest.raises(ValueError, match="lacks columns"):
        rb.summarize_sweep(pd.DataFrame({"family": ["hum"]}), by=["family"])
    with pytest.raises(ValueError, match="unknown or empty background families"):
        rb.augmented_copies([(y, ev)], seed=0, families=["fridge"])


def test_augmented_copies_differ_only_by_the_background(track):
    y, ev, _ = track
    without = rb.augmented_copies([(y, ev)], seed=4, mix_backgrounds=False)
    again = rb.augmented_copies([(y, ev)], seed=4, mix_backgrounds=False)
    with_bg = rb.augmented_copies([(y, ev)], seed=4, families=["pink"], snr_db=(0.0, 0.0))
    np.testing.assert_array_equal(without[0][0], again[0][0])
    assert len(with_bg[0][0]) == len(without[0][0]) != len(y)  # the same speed change
    pd.testing.assert_frame_equal(with_bg[0][1], without[0][1])
    extra = with_bg[0][0].astype(np.float64) - without[0][0]
    assert np.sqrt(np.mean(extra ** 2)) > 0.1 * np.sqrt(np.mean(without[0][0].astype(np.float64) ** 2))


def test_train_pair_trains_two_detectors_alike():
    items = [rb.plop_track(seed=s, duration_s=4.0, rate_ppm=(90, 150))[:2] for s in range(3)]
    pair = rb.train_pair(items[:2], items[2:], epochs=1, seed=0, families=["hum"])
    assert list(pair) == ["without mixing", "with mixing"]
    for det, history in pair.values():
        assert len(history) == 1 and det.config.report["train_recordings"] == 2
        assert len(det.detect(items[2][0]).columns) >= 3
    with pytest.raises(ValueError, match="non-empty"):
        rb.train_pair(items[:2], [], epochs=1)


def test_compare_bands_pools_each_band_and_skips_the_middle():
    t = pd.DataFrame({"background": ["hum"] * 6, "model": ["a"] * 6,
                      "snr_db": [-10.0, 0.0, 5.0, 10.0, 30.0, 30.0],
                      "tp": [1, 3, 9, 4, 5, 5], "fp": [0, 1, 9, 0, 0, 0], "fn": [3, 1, 9, 1, 0, 0],
                      "bpm_error": [0.5, 0.1, 9.0, 0.0, 0.0, 0.0]})
    out = rb.compare_bands(t)
    row = out.loc[("hum", "a")]
    assert row["−10…0 dB"] == pytest.approx(2 * 4 / (2 * 4 + 1 + 4))      # pooled over −10 and 0 dB
    assert row["10…30 dB"] == pytest.approx(2 * 14 / (2 * 14 + 0 + 1))
    assert row["median BPM error, −10…0 dB (%)"] == pytest.approx(30.0)  # the 5 dB row is left out


def test_mixing_experiment_data_is_the_quiet_kitchen_and_mixed_validation(tmp_path):
    """A small real set: only quiet recordings without the unrecorded families, the families
    that the mixing may draw from, and each validation recording followed by a mixed copy."""
    from helpers.synth import make_dataset

    m = make_dataset(tmp_path, recordings=16, duration_s=4.0, seed=4, progress=False, workers=1)
    m["path"] = [str(tmp_path / p) for p in m["path"]]
    m["labels"] = [str(tmp_path / p) for p in m["labels"]]
    data = rb.mixing_experiment_data(m, unrecorded=("babble",), never_heard=("rain",), min_snr_db=0.0)
    for rows, split in ((data.train_rows, "train"), (data.val_rows, "val")):
        assert (rows["split"] == split).all() and (rows["snr_db"] >= 0).all()
        assert not rows["backgrounds"].str.contains("babble").any()
    assert len(data.train) == len(data.train_rows) and len(data.val) == 2 * len(data.val_rows)
    assert data.families == sorted(f for f in BACKGROUNDS if f != "rain")
    n = len(data.val_rows)
    assert n > 0 and len(data.train_rows) > 0
    for (y, ev), (y_mixed, ev_mixed) in zip(data.val[:n], data.val[n:]):
        assert not np.array_equal(y[: len(y_mixed)], y_mixed[: len(y)])  # a background was added
