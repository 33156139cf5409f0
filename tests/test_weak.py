"""Weak labels (helpers.weak): clip labels from events, the temporal poolings, and a real
(small) Keras training run on synthesized recordings that must learn and localize."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from helpers import synth, weak  # noqa: E402
from helpers.config import SR  # noqa: E402
from helpers.datasets import load_recording, synthetic  # noqa: E402


# --------------------------------------------------------------------------- clip labels
def _brute_force_label(events: pd.DataFrame, start: float, end: float, min_overlap: float) -> float:
    """The rule, written out plainly: positive when a plop overlaps by ``min_overlap`` (or
    lies inside whole), ambiguous when one only grazes the clip, negative otherwise."""
    grazed = False
    for s, e in zip(events["start"], events["end"]):
        e = max(e, s + 0.01)
        overlap = min(e, end) - max(s, start)
        if overlap <= 0:
            continue
        if overlap >= min(min_overlap, e - s) - 1e-9:
            return 1.0
        grazed = True
    return np.nan if grazed else 0.0


def test_clip_labels_edge_cases():
    ev = pd.DataFrame({"start": [0.5, 4.9, 12.0, 17.0], "end": [0.6, 5.2, 12.0, 17.02], "label": "p"})
    labels, plops = weak.clip_labels(ev, np.array([0.0, 5.0, 10.0, 15.0, 20.0]), clip_s=5.0)
    # 4.9–5.2 overlaps clip 0 by 0.1 s and clip 1 by 0.2 s: both positive; the point label at
    # 12.0 and the 20 ms plop at 17.0 lie inside their clips whole; the last clip is empty
    assert labels.tolist() == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert plops.tolist() == [2, 1, 1, 1, 0]
    grazing = pd.DataFrame({"start": [4.98], "end": [5.3], "label": "p"})
    labels, _ = weak.clip_labels(grazing, np.array([0.0, 5.0]), clip_s=5.0)
    assert np.isnan(labels[0]) and labels[1] == 1.0
    none, counts = weak.clip_labels(pd.DataFrame({"start": [], "end": []}), np.array([0.0, 5.0]))
    assert none.tolist() == [0.0, 0.0] and counts.tolist() == [0, 0]


@pytest.fixture(scope="module")
def quick_set():
    return synthetic(profile="quick", progress=False)


def test_clip_labels_match_the_rule_on_real_recordings(quick_set):
    for _, row in quick_set.head(6).iterrows():
        _, ev = load_recording(row)
        duration = float(row["duration_s"])
        for clip_s in (1.0, 2.0, 5.0):
            t = weak.cut_clips(ev, duration, clip_s=clip_s, recording=row["recording"])
            grid = np.arange(0.0, duration - clip_s + 1e-9, clip_s)
            expected = [_brute_force_label(ev, s, s + clip_s, weak.MIN_OVERLAP_S) for s in grid]
            kept = [s for s, lab in zip(grid, expected) if not np.isnan(lab)]
            assert t["start"].tolist() == pytest.approx(kept)
            assert t["label"].tolist() == [int(lab) for lab in expected if not np.isnan(lab)]
            assert set(t["label"]) <= {0, 1} and (t["end"] - t["start"]).eq(clip_s).all()


def test_gap_clips_stay_clear_of_plops(quick_set):
    row = quick_set.sort_values("n_plops").iloc[0]  # a slow airlock: long gaps
    _, ev = load_recording(row)
    t = weak.cut_clips(ev, float(row["duration_s"]), clip_s=2.0, gap_clips=20,
                       rng=np.random.default_rng(1))
    gaps = t[t["kind"] == "gap"]
    assert len(gaps) == 20 and (gaps["label"] == 0).all()
    for s, e in zip(gaps["start"], gaps["end"]):
        assert ((ev["end"] + 0.1 <= s + 1e-9) | (ev["start"] - 0.1 >= e - 1e-9)).all()


def test_balance_and_missing_class():
    t = pd.DataFrame({"label": [1] * 7 + [0] * 3, "i": range(10)})
    b = weak.balance(t, seed=0)
    assert b["label"].value_counts().to_dict() == {1: 3, 0: 3}
    assert set(b.loc[b["label"] == 0, "i"]) == {7, 8, 9}
    assert len(weak.balance(t, max_per_class=2)) == 4
    busy = [(np.zeros(4 * SR, dtype=np.float32),
             pd.DataFrame({"start": np.arange(0.2, 4.0, 0.5), "end": np.arange(0.3, 4.0, 0.5), "label": "p"}))]
    with pytest.raises(ValueError, match="shorter clips"):
        weak.prepare(weak.load_features(busy), [], clip_s=2.0)


# --------------------------------------------------------------------------- pooling
def test_numpy_pooling_bounds():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, size=(50, 40)) ** 3
    mean, mx = p.mean(axis=1), p.max(axis=1)
    assert np.allclose(weak.pool(p, kind="max"), mx)
    assert np.allclose(weak.pool(p, kind="mean"), mean)
    for kind, kw in (("linear_softmax", {}), ("autopool", {"alpha": 0.5}), ("autopool", {"alpha": 5.0})):
        v = weak.pool(p, kind=kind, **kw)
        assert np.all(v >= mean - 1e-9) and np.all(v <= mx + 1e-9), kind
        assert np.any(v > mean + 1e-3)
    assert np.allclose(weak.pool(p, kind="autopool", alpha=0.0), mean)
    assert np.allclose(weak.pool(p, kind="autopool", alpha=500.0), mx, atol=1e-3)
    logits = rng.normal(size=p.shape)
    att = weak.pool(p, kind="attention", logits=logits)
    assert np.all(att >= p.min(axis=1) - 1e-9) and np.all(att <= mx + 1e-9)
    assert np.allclose(weak.pool(p, kind="attention", logits=np.zeros_like(p)), mean)
    with pytest.raises(ValueError):
        weak.pool(p, kind="median")


@pytest.mark.parametrize("kind", ["max", "mean", "linear_softmax", "autopool"])
def test_keras_pooling_matches_numpy(kind):
    rng = np.random.default_rng(1)
    p = (rng.uniform(0, 1, size=(4, 30, 1)) ** 2).astype(np.float32)
    layer = weak.temporal_pooling(kind, alpha=2.0)
    out = np.asarray(layer(p))
    assert out.shape == (4, 1)
    np.testing.assert_allclose(out[:, 0], weak.pool(p[..., 0], kind=kind, alpha=2.0), rtol=1e-5, atol=1e-6)


def test_keras_attention_pooling_matches_numpy():
    rng = np.random.default_rng(2)
    p = rng.uniform(0, 1, size=(3, 25, 1)).astype(np.float32)
    a = rng.normal(size=(3, 25, 1)).astype(np.float32)
    out = np.asarray(weak.temporal_pooling("attention")([p, a]))
    np.testing.assert_allclose(out[:, 0], weak.pool(p[..., 0], kind="attention", logits=a[..., 0]), rtol=1e-5)
    a[:, 7] = 50.0  # all attention on frame 7
    np.testing.assert_allclose(np.asarray(weak.temporal_pooling("attention")([p, a]))[:, 0], p[:, 7, 0], rtol=1e-4)


@pytest.mark.parametrize("pooling", weak.POOLINGS)
def test_weak_model_shapes_and_pooling(pooling):
    clip_model, frame_model = weak.build_weak_model(pooling=pooling, frames=120)
    x = np.random.default_rng(3).normal(size=(2, 120, 64, 1)).astype(np.float32)
    clip, frames = np.asarray(clip_model(x)), np.asarray(frame_model(x))
    assert clip.shape == (2, 1) and frames.shape == (2, 120, 1)
    f = frames[..., 0]
    assert np.all(clip[:, 0] <= f.max(axis=1) + 1e-6) and np.all(clip[:, 0] >= f.min(axis=1) - 1e-6)
    if pooling in ("max", "mean", "linear_softmax"):
        np.testing.assert_allclose(clip[:, 0], weak.pool(f, kind=pooling), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- training
def _recordings(n: int, seed: int, duration: float = 12.0) -> list[tuple[np.ndarray, pd.DataFrame]]:
    """Clear recordings at a slow airlock (4–20 plops a minute): 2 s clips of both kinds."""
    out = []
    for i in range(n):
        rate = float(np.random.default_rng(seed + i).uniform(4, 20))
        r = synth.synthesize_recording(seed=seed + i, duration_s=duration, sr=SR, snr_db=25.0,
                                       rate_ppm=(rate, rate))
        out.append((r.audio if r.audio.ndim == 1 else r.audio.mean(axis=0), r.events))
    return out


@pytest.fixture(scope="module")
def trained():
    """Linear-softmax pooling on 2 s clips of 30 short recordings (about 10 s of training;
    clip AUC 0.96–1.0 on the held-out clips with seeds 0, 1 and 2)."""
    train = weak.load_features(_recordings(30, 300, duration=15.0))
    val = weak.load_features(_recordings(4, 400))
    data = weak.prepare(train, val, clip_s=2.0, seed=0)
    run = weak.train_weak(data, pooling="linear_softmax", epochs=10, batch_size=8, seed=0)
    return data, run


def test_training_learns_clip_labels(trained):
    data, run = trained
    assert data.train.y.mean() == 0.5 and len(data.train.y) >= 100
    assert list(run.history.columns[:3]) == ["epoch", "loss", "val_clip_auc"]
    assert run.history["loss"].iloc[-1] < run.history["loss"].iloc[0]
    held_out = weak.load_features(_recordings(6, 500))
    labels, scores = weak.clip_scores(run, held_out)
    assert 0.2 < labels.mean() < 0.8
    assert weak.clip_auc(labels, scores) > 0.8  # chance is 0.5
    # the frame activations, never trained on a plop's time, find the plops
    assert weak.scores(run, held_out)["event F1"] > 0.5


def test_localization_gives_valid_events(trained):
    _, run = trained
    y, ref = _recordings(1, 600, duration=15.0)[0]
    probs, events = weak.localize(run.detector, y)
    assert probs.shape == (int(round(15.0 / weak.HOP_S)) + 1,) and np.all((probs >= 0) & (probs <= 1))
    assert list(events.columns) == ["start", "end", "label", "probability"]
    assert (events["end"] > events["start"]).all() and events["start"].is_monotonic_increasing
    assert events["start"].min() >= 0 and events["end"].max() <= 15.0 + 0.02
    assert set(run.detector.config.postprocess) == {"on", "off", "min_gap_s", "min_duration_s"}
    table, summary = weak.evaluate(run.detector, weak.load_features([(y, ref)]))
    assert len(table) == 1 and 0.0 <= summary["f1"] <= 1.0 and summary["tp"] + summary["fn"] == len(ref)
    row = weak.scores(run, weak.load_features([(y, ref)]))
    assert set(row) == {"event F1", "precision", "recall", "event F1, on=0.5", "clip AUC"}
