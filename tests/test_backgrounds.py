"""The recorded backgrounds: committed clips of speech and music, their excerpts for
training, the hard negatives, and the measurements on the evaluation clips."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from helpers import augment, backgrounds
from helpers.audio import audio_info
from helpers.config import SR


def test_catalogue_lists_committed_clips_and_the_splits_share_no_source():
    cat = backgrounds.catalogue()
    assert set(cat["split"]) == {"train", "eval"}
    assert set(cat["family"]) == set(backgrounds.FAMILIES.values())
    for _, row in cat.iterrows():
        info = audio_info(backgrounds.FOLDER / row["file"])
        assert info["sample_rate"] == SR and info["channels"] == 1
        assert abs(info["duration_s"] - row["seconds"]) < 0.2
    # no voice, no instrument (lead, chords or bass) and no drum kit both trains and evaluates
    def sounds(split: str) -> set[str]:
        out = set()
        for source in cat.loc[cat["split"] == split, "source"]:
            if source.startswith("Festival"):
                out.add(source)
            else:
                out |= {f"program {n}" for n in re.findall(r"(?:lead|chords|bass) (\d+)", source)}
                out |= set(re.findall(r"drum kit \d+", source))
        return out

    train, held = sounds("train"), sounds("eval")
    assert len(train) >= 10 and len(held) >= 10
    assert not train & held
    assert cat.groupby(["split", "family"]).size().min() >= 3


def test_excerpt_is_unit_rms_of_any_length_and_rate_and_repeatable():
    a = backgrounds.excerpt("speech", np.random.default_rng(1), 3 * SR)
    b = backgrounds.excerpt("speech", np.random.default_rng(1), 3 * SR)
    assert np.array_equal(a, b) and len(a) == 3 * SR
    assert np.sqrt(np.mean(a ** 2)) == pytest.approx(1.0, rel=1e-6)
    # longer than all the clips together: they repeat, sample for sample
    total = sum(len(c) for c in backgrounds.clips("instruments"))
    long = backgrounds.excerpt("instruments", np.random.default_rng(2), total + SR)
    assert len(long) == total + SR and np.isfinite(long).all()
    np.testing.assert_array_equal(long[:SR], long[total:])
    # another rate: resampled, so a 44.1 kHz second is 44100 samples of the same sound
    hi = backgrounds.excerpt("speech", np.random.default_rng(1), 44100, sr=44100)
    assert len(hi) == 44100
    with pytest.raises(ValueError, match="unknown recorded background 'radio'"):
        backgrounds.excerpt("radio", np.random.default_rng(0), SR)
    with pytest.raises(ValueError, match="no speech clips in split 'test'"):
        backgrounds.clips("speech", "test")


def test_training_mixes_recorded_backgrounds_at_the_asked_snr():
    from helpers.robustness import plop_track

    y, ev, _ = plop_track(seed=5, duration_s=6.0)
    assert {"speech", "instruments"} <= set(augment.background_families())
    z = augment.mix_background(y, ev, rng=np.random.default_rng(0), snr_db=5.0, families=["speech"])
    added = z - y
    mask = augment.event_mask(ev, len(y))
    snr = 10 * np.log10(np.mean(y[mask].astype(float) ** 2) / np.mean(added.astype(float) ** 2))
    assert snr == pytest.approx(5.0, abs=0.01)
    with pytest.raises(ValueError, match="unknown background families"):
        augment.mix_background(y, ev, rng=np.random.default_rng(0), snr_db=0.0, pool=["radio"])


def test_negatives_are_empty_at_varied_levels_and_alternate_speech_and_music(monkeypatch):
    negs = backgrounds.negatives(6, 2.0, seed=3)
    assert len(negs) == 6
    for y, ev in negs:
        assert y.dtype == np.float32 and len(y) == 2 * SR and ev.empty
    peaks_db = [20 * np.log10(np.abs(y).max()) for y, _ in negs]
    assert max(peaks_db) < 0 and max(peaks_db) - min(peaks_db) > 3   # not all at one level
    again = backgrounds.negatives(6, 2.0, seed=3)
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(negs, again))
    # which family each one comes from
    asked = []
    real = backgrounds.excerpt
    monkeypatch.setattr(backgrounds, "excerpt", lambda family, *a, **k: asked.append(family) or real(family, *a, **k))
    backgrounds.negatives(4, 1.0, seed=0)
    assert asked == ["speech", "instruments", "speech", "instruments"]


class _Energy:
    """A plain energy detector: a run of loud 10 ms frames is an event."""

    def detect(self, y):
        frames = np.sqrt(np.mean(y[: len(y) // 160 * 160].reshape(-1, 160) ** 2, axis=1))
        loud = frames > 4 * np.median(frames)
        starts = np.flatnonzero(loud & ~np.r_[False, loud[:-1]])
        return pd.DataFrame({"start": starts * 0.01, "end": starts * 0.01 + 0.05})


def test_false_plops_counts_every_evaluation_clip():
    table = backgrounds.false_plops(_Energy())
    cat = backgrounds.catalogue()
    assert len(table) == (cat["split"] == "eval").sum()
    # each clip is counted once, over its whole length
    assert table["minutes"].sum() == pytest.approx(cat.loc[cat["split"] == "eval", "seconds"].sum() / 60, abs=0.05)
    first = backgrounds.clips("speech", "eval")[0]
    assert table["detections"].iloc[0] == len(_Energy().detect(first)) > 0   # speech has loud onsets
    # per family: the sums over its clips
    fam = backgrounds.false_plops(_Energy(), per_family=True)
    assert list(fam.index) == sorted(backgrounds.FAMILIES)
    assert fam["detections"].sum() == table["detections"].sum()
    np.testing.assert_allclose(fam["per_minute"], fam["detections"] / fam["minutes"])
    # the figure train and the bench report: per family over all its clips, to a tenth
    assert backgrounds.false_plops_per_minute(_Energy()) == {f: round(float(v), 1)
                                                            for f, v in fam["per_minute"].items()}


def test_scores_in_speech_and_music_mixes_plops_with_the_evaluation_clips(tmp_path):
    from helpers.audio import save_audio
    from helpers.labels import write_labels
    from helpers.robustness import plop_track

    rows = []
    for i in range(2):
        y, ev, _ = plop_track(seed=10 + i, duration_s=8.0)
        save_audio(tmp_path / f"r{i}.wav", y, sr=SR)
        write_labels(ev, tmp_path / f"r{i}.txt")
        rows.append({"recording": f"r{i}", "path": str(tmp_path / f"r{i}.wav"),
                     "labels": str(tmp_path / f"r{i}.txt")})
    table = backgrounds.scores_in(_Energy(), pd.DataFrame(rows), snr_db=(30.0, -10.0))
    assert list(table["family"]) == ["speech", "speech", "instruments", "instruments"]
    assert table[["f1", "precision", "recall"]].apply(lambda c: c.between(0, 1)).all().all()
    # louder speech and music (-10 dB) cost the energy detector precision
    for _, fam in table.groupby("family"):
        assert fam["precision"].iloc[0] > fam["precision"].iloc[1]
    # the same recordings as (audio, events) pairs, as tracks of recorded bubbles come: the same table
    from helpers.datasets import load_recording

    pairs = [load_recording(row) for row in rows]
    pd.testing.assert_frame_equal(backgrounds.scores_in(_Energy(), pairs, snr_db=(30.0, -10.0)), table)
    with pytest.raises(ValueError, match="no recordings"):
        backgrounds.scores_in(_Energy(), [])


class _Stop(Exception):
    pass


def test_only_the_shipped_recipe_trains_on_recorded_speech_and_music(monkeypatch, tmp_path):
    """The held-out estimate must never hear talking or music: its augmentation draws from the
    seen procedural families only and it gets no hard negatives, and no recorded bubbles (mixed
    into every family); the shipped recipe gets all of them."""
    from helpers import datasets, training
    from helpers.config import profile

    calls = []

    def stop(train, val, **kw):
        calls.append(kw)
        raise _Stop

    monkeypatch.setattr(training, "train_detector", stop)
    quick = profile("quick")
    with pytest.raises(_Stop):
        training.heldout_estimate(profile=quick, progress=False)
    held = calls.pop()
    assert not set(held["backgrounds"]) & (set(backgrounds.FAMILIES) | set(training.HELDOUT_BACKGROUNDS))
    assert len(list(held["extra"])) == quick.train_extra_recordings    # no negatives among them
    with pytest.raises(_Stop):
        training.train_and_export(datasets.synthetic(profile=quick, progress=False), None, out=tmp_path,
                                  profile=quick, progress=False, export=False)
    shipped = calls.pop()
    assert shipped["backgrounds"] is None                                # every family, recorded ones too
    extra = list(shipped["extra"])                                      # read as training would
    assert quick.train_negatives > 0 and quick.train_bubbles > 0
    assert len(extra) == quick.train_negatives + quick.train_bubbles   # talk and music, then bubbles
    assert all(ev.empty for _, ev in extra[:quick.train_negatives])
    assert all(len(ev) > 0 for _, ev in extra[quick.train_negatives:])
