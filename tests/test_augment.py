"""Training augmentation on real synthetic plops: backgrounds from a chosen pool only, non-plop
transients as negatives, and the events kept in step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import augment, synth
from helpers.config import SR


@pytest.fixture(scope="module")
def track():
    from helpers.robustness import plop_track

    y, ev, _ = plop_track(seed=5, duration_s=6.0)
    return y, ev


def _spectral_centroid(x: np.ndarray) -> float:
    mag = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    return float((mag * freqs).sum() / mag.sum())


def test_background_pool_is_respected(track):
    """Only families of the pool are mixed in: the held-out estimate relies on it to keep
    its held-out families out of training."""
    y, ev = track
    a = augment.mix_background(y, ev, rng=np.random.default_rng(3), snr_db=0.0, pool=["hum"])
    # hum is low; hiss is high: the added part says which family was mixed in
    hiss = augment.mix_background(y, ev, rng=np.random.default_rng(3), snr_db=0.0, pool=["hiss"])
    assert 2 * _spectral_centroid(a - y) < _spectral_centroid(hiss - y)


def test_unknown_families_and_confusers_are_clear_errors(track):
    y, ev = track
    with pytest.raises(ValueError, match="unknown background"):
        augment.mix_background(y, ev, rng=np.random.default_rng(0), snr_db=0.0, pool=["fridge"])
    with pytest.raises(ValueError, match="unknown confusers"):
        augment.mix_confusers(y, ev, rng=np.random.default_rng(0), rate_per_min=10, kinds=["sneeze"])


def test_confusers_add_transients_at_plop_level(track):
    y, ev = track
    z = augment.mix_confusers(y, ev, rng=np.random.default_rng(1), rate_per_min=60,
                              level_db=(0.0, 0.0), kinds=["knock"])
    added = z - y
    assert z.shape == y.shape and z.dtype == np.float32
    assert np.count_nonzero(np.abs(added) > 1e-6) > SR * 0.05  # about 6 knocks were added
    plop_peak = np.median([np.abs(y[int(s * SR):int(e * SR)]).max() for s, e in zip(ev["start"], ev["end"])])
    assert np.abs(added).max() == pytest.approx(plop_peak, rel=0.35)  # 0 dB: as loud as a plop


def test_confusers_without_events_or_rate(track):
    y, _ = track
    none = pd.DataFrame(columns=["start", "end", "label"])
    assert np.array_equal(augment.mix_confusers(y, none, rng=np.random.default_rng(0), rate_per_min=0.0), y)
    z = augment.mix_confusers(y, none, rng=np.random.default_rng(0), rate_per_min=120)
    assert np.isfinite(z).all() and not np.array_equal(z, y)


def test_confusers_placed_says_where_they_went_without_changing_the_audio(track):
    y, ev = track
    z = augment.mix_confusers(y, ev, rng=np.random.default_rng(1), rate_per_min=60, kinds=["knock"])
    z2, spots = augment.mix_confusers(y, ev, rng=np.random.default_rng(1), rate_per_min=60, kinds=["knock"],
                                      placed=True)
    assert np.array_equal(z, z2) and len(spots) >= 3 and (spots["kind"] == "knock").all()
    assert (spots["end"] > spots["start"]).all() and (spots["end"] <= len(y) / SR).all()
    changed = np.abs(z - y) > 1e-6
    for start, end in zip(spots["start"], spots["end"]):   # the audio changed where they say
        assert changed[int(round(start * SR)):int(round(end * SR))].any()
    outside = np.ones(len(y), bool)
    for start, end in zip(spots["start"], spots["end"]):
        outside[int(round(start * SR)):int(round(end * SR))] = False
    assert not changed[outside].any()                      # and nowhere else


def test_augment_can_return_its_confusers_as_labelled_events(track):
    y, ev = track
    kw = dict(backgrounds=["pink"], speed_range=(1.0, 1.0), p_background=1.0, p_confusers=1.0)
    z, ev2 = augment.augment(y, ev, rng=np.random.default_rng(3), **kw)
    zx, evx = augment.augment(y, ev, rng=np.random.default_rng(3), confuser_label="x", **kw)
    assert np.array_equal(z, zx) and len(ev2) == len(ev)   # the same audio; the plops alone by default
    extra = evx[evx["label"] == "x"]
    assert len(extra) > 0 and len(evx) == len(ev) + len(extra)
    assert evx[evx["label"] != "x"].reset_index(drop=True)[["start", "end"]].equals(ev2[["start", "end"]])


def test_augment_keeps_events_in_step_and_uses_the_pool(track):
    y, ev = track
    z, ev2 = augment.augment(y, ev, rng=np.random.default_rng(2), backgrounds=["pink"],
                             speed_range=(1.25, 1.25), p_background=1.0, p_confusers=1.0)
    assert len(z) == pytest.approx(len(y) / 1.25, abs=2)
    assert np.allclose(ev2["start"], ev["start"] / 1.25)
    assert set(synth.CONFUSERS) >= {"knock", "glass"}
