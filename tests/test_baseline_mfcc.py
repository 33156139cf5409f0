"""The MFCC + logistic-regression baseline: window features and labels against naive loops,
grouped cross-validation without leaks, a real fit on easy synthetic recordings, frame
alignment with the CRNN front end, and the joblib cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import baselines as B
from helpers import synth
from helpers.config import SR
from helpers.evaluate import pooled_onset_scores
from helpers.features import frame_labels, frontend_features


# --------------------------------------------------------------------------- naive references
def naive_window_features(x: np.ndarray, *, h: int) -> np.ndarray:
    """One Python loop per frame: the definition the fast version must match."""
    n = len(x)
    rows = []
    for i in range(n):
        win = x[max(i - h, 0):min(i + h + 1, n)]
        late = x[i:min(i + h + 1, n)]
        early = x[max(i - h, 0):i + 1]
        rows.append(np.concatenate([win.mean(0), win.std(0), win.max(0),
                                    late.mean(0) - early.mean(0)]))
    return np.array(rows)


def naive_onset_labels(onsets, n: int, centre_s: float) -> np.ndarray:
    t = np.arange(n) * 0.01
    return np.array([int(any(abs(ti - o) <= centre_s + 1e-9 for o in onsets)) for ti in t])


@pytest.mark.parametrize("n", [1, 3, 7, 40, 123])
def test_window_features_equal_a_naive_loop(n):
    rng = np.random.default_rng(n)
    # an offset makes the variance from cumulative sums prone to cancellation: it must not be
    x = rng.standard_normal((n, 4)) * [1, 5, 0.1, 2] + [0, 300, -40, 1e3]
    fast = B.window_features(x, window_s=0.1)
    slow = naive_window_features(x, h=5)
    assert fast.shape == (n, 4 * 4)
    np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-3)


def test_window_features_of_real_mfccs_equal_a_naive_loop():
    y, _ = _easy(1, duration_s=2.0)
    settings = B.MfccSettings()
    frames = settings.frames(y)
    assert frames.shape == (len(y) // 160 + 1, 3 * settings.n_mfcc)
    feats = settings.features(y)
    assert feats.shape == (len(frames), len(settings.feature_names()))
    # the core (0.1 s: ±5 frames, all four statistics), then the window (0.4 s: ±20 frames,
    # mean, std and max)
    core = naive_window_features(frames.astype(float), h=5)
    window = naive_window_features(frames.astype(float), h=20)[:, : 3 * frames.shape[1]]
    np.testing.assert_allclose(feats, np.hstack([core, window]), rtol=1e-4, atol=2e-3)


def test_window_labels_from_events():
    ev = pd.DataFrame({"start": [0.10, 0.52, 0.55, 1.995], "end": [0.25, 0.60, 0.70, 2.2],
                       "label": "p"})
    n = 201
    onset = B.window_labels(ev, n, centre_s=0.05)
    np.testing.assert_array_equal(onset, naive_onset_labels(ev["start"], n, 0.05))
    # around 0.10 s: frames 5..15 (±50 ms), and nothing far from an onset
    assert onset[5:16].all() and not onset[4] and not onset[16] and not onset[30]
    # an onset past the last frame still marks the frames within 50 ms of it
    assert onset[-1] == 1
    # the span rule is the CRNN's frame labels
    np.testing.assert_array_equal(B.window_labels(ev, n, rule="span"), frame_labels(ev, n))
    assert B.window_labels(ev.iloc[:0], 10).sum() == 0
    with pytest.raises(ValueError, match="rule"):
        B.window_labels(ev, n, rule="offset")


# --------------------------------------------------------------------------- cross-validation
class _Recorder:
    """A stand-in pipeline that remembers which recordings (column 0) it saw."""

    fitted: list[set] = []

    def fit(self, x, y):
        _Recorder.fitted.append(set(np.unique(x[:, 0]).astype(int).tolist()))
        return self

    def decision_function(self, x):
        return 20 * x[:, 1]  # column 1 is the label (±1, with a little noise)


def _toy_dataset(n_rec=12, per=50, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_rec), per)
    labels = (rng.random(len(groups)) < 0.2).astype(np.int8)
    x = np.column_stack([groups, labels * 2 - 1 + 0.1 * rng.standard_normal(len(groups))])
    return x, labels, groups


def test_grouped_cv_never_splits_a_recording(monkeypatch):
    monkeypatch.setattr(B, "make_pipeline_mfcc", lambda **kw: _Recorder())
    _Recorder.fitted = []
    x, labels, groups = _toy_dataset()
    table = B.cross_validate_baseline(None, dataset=(x, labels, groups), n_splits=4)
    held_out = [set(h) for h in table.attrs["held_out"]]
    assert len(table) == 4 == len(held_out) == len(_Recorder.fitted)
    # each recording is held out in exactly one fold, and never trained on in that fold
    assert sorted(g for s in held_out for g in s) == list(range(12))
    for trained, tested in zip(_Recorder.fitted, held_out):
        assert not trained & tested
        assert trained | tested == set(range(12))
    assert table["windows"].sum() == len(labels)
    np.testing.assert_allclose(table[["precision", "recall", "pr_auc"]].to_numpy(), 1.0)
    # the ungrouped version does put windows of one recording on both sides (the leak)
    _Recorder.fitted = []
    leaky = B.cross_validate_baseline(None, dataset=(x, labels, groups), n_splits=4, grouped=False)
    assert any(tr & set(te) for tr, te in zip(_Recorder.fitted, leaky.attrs["held_out"]))


def test_grouped_cv_needs_enough_recordings():
    x, labels, groups = _toy_dataset(n_rec=3)
    with pytest.raises(ValueError, match="recordings"):
        B.cross_validate_baseline(None, dataset=(x, labels, groups), n_splits=5)


# --------------------------------------------------------------------------- a real fit
def _easy(seed: int, duration_s: float = 15.0):
    rec = synth.synthesize_recording(seed=seed, duration_s=duration_s, sr=SR, snr_db=25,
                                     backgrounds=("pink", "hiss", "hum"), rate_ppm=(30, 50))
    return rec.audio if rec.audio.ndim == 1 else rec.audio.mean(axis=0), rec.events


@pytest.fixture(scope="module")
def easy_items():
    return [_easy(s) for s in (11, 12, 13, 14, 15, 16)]


@pytest.fixture(scope="module")
def fitted(easy_items):
    return B.fit_mfcc_baseline(easy_items[:4], val=easy_items[4:5], seed=0)


def test_baseline_detects_plops_in_a_held_out_recording(fitted, easy_items):
    y, ref = easy_items[5]
    assert len(ref) >= 5
    est = fitted.detect(y)
    scores = pooled_onset_scores([(ref, est)])
    assert scores["f1"] > 0.8, scores
    assert set(fitted.postprocess) == {"on", "off", "min_gap_s", "min_duration_s"}
    assert fitted.report["val_event_f1"] > 0.8
    # the probabilities mean something: higher near onsets than far from them
    p = fitted.probabilities(y)
    lab = B.window_labels(ref, len(p))
    assert p[lab == 1].mean() > p[lab == 0].mean() + 0.3
    # and, corrected for the balanced class weights, they are about as often high as
    # plop windows are common
    assert 0.3 < p.mean() / lab.mean() < 3
    assert fitted.weights().index[0] == "core_mean:mfcc0"


@pytest.mark.parametrize("n", [400, 16000, 16001, 16159, 16160, 3 * SR + 77])
def test_one_probability_per_frontend_frame(fitted, n):
    y = np.random.default_rng(n).standard_normal(n).astype(np.float32) * 0.01
    p = fitted.probabilities(y)
    assert p.shape == (n // 160 + 1,) == (len(frontend_features(y)),)
    assert p.dtype == np.float32 and np.all((p >= 0) & (p <= 1))


def test_fit_refuses_recordings_without_plops(easy_items):
    y, ev = easy_items[0]
    with pytest.raises(ValueError, match="no plop"):
        B.fit_mfcc_baseline([(y, ev.iloc[:0])], seed=0)


# --------------------------------------------------------------------------- the cache
@pytest.fixture(scope="module")
def manifest_on_disk(tmp_path_factory, easy_items):
    from helpers.audio import save_audio
    from helpers.labels import write_labels

    folder = tmp_path_factory.mktemp("easy")
    rows = []
    for i, (split, (y, ev)) in enumerate(zip(["train", "train", "val", "test"], easy_items)):
        save_audio(folder / f"r{i}.flac", y, sr=SR)
        write_labels(ev, folder / f"r{i}.txt")
        rows.append({"recording": f"r{i}", "path": str(folder / f"r{i}.flac"),
                     "labels": str(folder / f"r{i}.txt"), "duration_s": len(y) / SR,
                     "source": "synthetic", "split": split, "config": "abc123"})
    return pd.DataFrame(rows)


def test_cache_round_trips(manifest_on_disk, easy_items, monkeypatch):
    manifest = manifest_on_disk
    folder = Path(manifest["path"].iloc[0]).parent
    first = B.cached_mfcc_baseline(manifest)
    assert (folder / "mfcc_baseline.joblib").exists()
    assert first.report["train_recordings"] == 2 and first.report["val_recordings"] == 1

    calls = []
    real_fit = B.fit_mfcc_baseline
    monkeypatch.setattr(B, "fit_mfcc_baseline", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    second = B.cached_mfcc_baseline(manifest)
    assert not calls, "the second call should load the cache, not refit"
    y = easy_items[5][0]
    np.testing.assert_array_equal(first.probabilities(y), second.probabilities(y))
    assert second.postprocess == first.postprocess and second.settings == first.settings
    # another data set configuration (or seed) is another key: refitted and overwritten
    B.cached_mfcc_baseline(manifest.assign(config="def456"))
    assert calls == [1]
    B.cached_mfcc_baseline(manifest.assign(config="def456"))
    assert calls == [1]
    B.cached_mfcc_baseline(manifest.assign(config="def456"), seed=1)
    assert calls == [1, 1]
    # extra validation recordings to tune on are part of the key, and are tuned on
    tuned = B.cached_mfcc_baseline(manifest, tune=manifest[manifest["split"] == "test"])
    assert calls == [1, 1, 1] and tuned.report["val_recordings"] == 2
    B.cached_mfcc_baseline(manifest, tune=manifest[manifest["split"] == "test"])
    assert calls == [1, 1, 1]
    # a corrupt cache file is refitted, not an error
    (folder / "mfcc_baseline.joblib").write_bytes(b"not a joblib file")
    B.cached_mfcc_baseline(manifest)
    assert calls == [1, 1, 1, 1]


def test_energy_counter_scores_match_its_report(manifest_on_disk, tmp_path):
    table, _ = B.energy_counter_report(manifest_on_disk, folder=tmp_path, progress=False)
    scores = B.energy_counter_scores(manifest_on_disk, table)
    merged = scores.merge(table, on="recording", suffixes=("", "_report"))
    assert len(merged) == len(manifest_on_disk)
    for col in ("tp", "fp", "fn"):
        np.testing.assert_array_equal(merged[col], merged[f"{col}_report"])
    assert {"bpm", "true_bpm", "within_10"} <= set(scores.columns)
