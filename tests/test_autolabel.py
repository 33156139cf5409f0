"""Tests of helpers.autolabel on real audio files written to ``tmp_path`` (no mocks).

The labeler is unsupervised, so these tests check what it promises: plops in an easy
recording are found, bad input (silence, noise without plops, a very short or a damaged file)
gives a flagged or empty result with a message instead of a crash, the same input gives the
same labels, and a batch goes on past a bad file and writes label files Audacity (and
helpers.labels) can read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers import autolabel as al
from helpers.audio import AudioError
from helpers.config import SR
from helpers.evaluate import onset_scores
from helpers.labels import read_labels
from helpers.synth import Character, plop, synthesize_recording

#: An easy synthetic recording: 20 s, 25 dB SNR, a steady background, about 20 plops.
EASY_SEED = 11


@pytest.fixture(scope="module")
def easy():
    rec = synthesize_recording(seed=EASY_SEED, duration_s=20.0, sr=SR, snr_db=25.0)
    assert len(rec.events) >= 8, "the easy recording should hold a handful of plops"
    audio = rec.audio if rec.audio.ndim == 1 else rec.audio.mean(axis=0)
    return audio, rec.events


def _wav(path: Path, y: np.ndarray, sr: int = SR) -> Path:
    sf.write(path, np.asarray(y, dtype=np.float32), sr, subtype="PCM_16")
    return path


# ----------------------------------------------------------------------------- finds plops


def test_plops_in_noise_are_found(easy, tmp_path):
    y, truth = easy
    res = al.autolabel_file(_wav(tmp_path / "easy.wav", y))
    assert res.status == "ok", res.message
    score = onset_scores(truth, res.events, collar=0.1)
    assert score["f1"] >= 0.9, score
    assert list(res.events.columns) == ["start", "end", "label", "confidence"]
    assert (res.events["label"] == "p").all()
    assert ((res.events["confidence"] >= 0) & (res.events["confidence"] <= 1)).all()
    assert (res.events["end"] > res.events["start"]).all()
    assert res.events["start"].is_monotonic_increasing
    assert f"{len(res.events)} plops" in res.message


def test_same_input_same_labels(easy, tmp_path):
    y, _ = easy
    a = al.autolabel(y)
    b = al.autolabel(y)
    pd.testing.assert_frame_equal(a.events, b.events)
    # the file path (read in blocks) gives the same labels as the array in memory
    c = al.autolabel_file(_wav(tmp_path / "same.wav", y))
    d = al.autolabel(sf.read(tmp_path / "same.wav", dtype="float32")[0])
    pd.testing.assert_frame_equal(c.events, d.events)


def test_reading_in_blocks_gives_the_frames_of_the_whole_signal(tmp_path):
    y = np.random.default_rng(0).standard_normal(3 * SR + 123).astype(np.float32) * 0.1
    path = _wav(tmp_path / "noise.wav", y)
    whole = al.frame_features(sf.read(path, dtype="float32")[0])
    blocks = al.file_features(path, block_s=0.37)
    assert blocks.n_frames == whole.n_frames == 1 + len(y) // 160
    np.testing.assert_allclose(blocks.mel_db, whole.mel_db, atol=1e-3)
    np.testing.assert_array_equal(blocks.fine_db, whole.fine_db)
    assert blocks.duration_s == pytest.approx(len(y) / SR)


def test_other_sample_rates_and_stereo_files_are_read(easy, tmp_path):
    y, truth = easy
    from helpers.audio import resample

    stereo = np.stack([resample(y, SR, 44_100)] * 2, axis=1)
    sf.write(tmp_path / "stereo44k.flac", stereo, 44_100, subtype="PCM_16")
    res = al.autolabel_file(tmp_path / "stereo44k.flac")
    assert res.status == "ok", res.message
    assert onset_scores(truth, res.events)["f1"] >= 0.9


# ----------------------------------------------------------------------------- bad input


def test_silence_is_flagged(tmp_path):
    res = al.autolabel_file(_wav(tmp_path / "silent.wav", np.zeros(5 * SR)))
    assert res.status == "flagged"
    assert res.message.startswith("silent")
    assert res.events.empty and list(res.events.columns) == ["start", "end", "label", "confidence"]


def test_noise_without_plops_gives_no_labels(tmp_path):
    rng = np.random.default_rng(3)
    t = np.arange(20 * SR) / SR
    noise = 0.05 * rng.standard_normal(len(t)) + 0.02 * np.sin(2 * np.pi * 50 * t)
    res = al.autolabel_file(_wav(tmp_path / "fridge.wav", noise))
    assert res.status == "flagged"
    assert res.events.empty
    assert "no plop found" in res.message or "plop state not found" in res.message


def test_a_very_short_file_is_flagged(tmp_path):
    res = al.autolabel_file(_wav(tmp_path / "blip.wav", 0.1 * np.ones(SR // 2)))
    assert res.status == "flagged"
    assert res.message.startswith("too short")
    assert res.events.empty


def test_a_damaged_file_raises_a_clear_error(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF" + bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)))
    with pytest.raises(AudioError, match="broken.wav"):
        al.autolabel_file(bad)


def test_an_implausible_rate_is_flagged_not_labeled(easy):
    y, _ = easy
    res = al.autolabel(y, max_rate_ppm=5)
    assert res.status == "flagged" and res.events.empty
    assert "implausible" in res.message
    assert len(res.candidates) > 0      # what was found is still there for a look


def test_the_plop_state_rule_rejects_a_model_that_swallowed_the_background():
    class Model:                         # what plop_states reads from a fitted model
        n_components = 3
        transmat_ = np.array([[0.9, 0.1, 0.0], [0.0, 0.5, 0.5], [0.1, 0.1, 0.8]])

    level = np.r_[np.zeros(80), np.full(20, 12.0)]
    fine = np.r_[np.zeros(80), np.ones(5), np.zeros(15)].astype(int)   # plop state: 5 % of frames
    roles, problem = al.plop_states(Model(), fine, level)
    assert roles["plop"] == 1
    assert problem == "" or "louder" in problem
    everything = np.ones(100, dtype=int)                                 # plop state: 100 %
    _, problem = al.plop_states(Model(), everything, np.full(100, 6.0))
    assert "covers 100%" in problem
    quiet = np.r_[np.zeros(90), np.ones(10)].astype(int)                 # not louder than the rest
    _, problem = al.plop_states(Model(), quiet, np.zeros(100))
    assert "louder" in problem


def test_two_background_states_by_default_and_a_background_that_changes(easy):
    """The model has two background states (n_background=2), each left only through the onset;
    a recording whose background changes halfway (noise as loud as the recording switches on)
    is still labeled right, with one background state or two."""
    y, truth = easy
    half = len(y) // 2
    rms = float(np.sqrt(np.mean(y ** 2)))
    noisy = y.copy()
    noisy[half:] += rms * np.random.default_rng(0).standard_normal(len(y) - half).astype(np.float32)
    res = al.autolabel(noisy)
    assert res.status == "ok", res.message
    assert res.model.n_components == 4
    assert res.roles == {"plop": 2, "ring": 3, "background": [0, 1]}
    A = res.model.transmat_
    assert (A[:2, 2] > 0).all() and (A[:2, 3] == 0).all()   # each background: onset only way out
    assert onset_scores(truth, res.events, collar=0.1)["f1"] >= 0.9
    one = al.autolabel(noisy, n_background=1)
    assert one.model.n_components == 3 and one.roles["background"] == [0]
    assert onset_scores(truth, one.events, collar=0.1)["f1"] >= 0.9


def test_unknown_options_are_refused(easy):
    with pytest.raises(TypeError, match="min_confidense"):
        al.autolabel(easy[0], min_confidense=0.5)


# ----------------------------------------------------------------------------- a batch


def test_the_batch_goes_on_past_bad_files_and_writes_readable_labels(easy, tmp_path):
    y, truth = easy
    folder = tmp_path / "recordings"
    folder.mkdir()
    _wav(folder / "a_good.wav", y)
    (folder / "b_broken.wav").write_bytes(b"this is not audio at all")
    _wav(folder / "c_silent.wav", np.zeros(3 * SR))
    out = tmp_path / "proposed"
    table = al.autolabel_paths([folder, tmp_path / "missing.wav"], out_dir=out, progress=False)

    assert list(table.columns[:5]) == ["file", "status", "events", "plops_per_min", "message"]
    by_name = {Path(f).name: row for f, row in zip(table["file"], table.itertuples())}
    assert set(by_name) == {"a_good.wav", "b_broken.wav", "c_silent.wav", "missing.wav"}
    good, broken = by_name["a_good.wav"], by_name["b_broken.wav"]
    silent, missing = by_name["c_silent.wav"], by_name["missing.wav"]

    assert good.status == "ok" and good.events > 0
    assert good.plops_per_min == pytest.approx(good.events / 20.0 * 60, rel=1e-3)
    labels = read_labels(out / "a_good.txt")
    assert len(labels) == good.events and (labels["label"] == "p").all()
    assert onset_scores(truth, labels)["f1"] >= 0.9

    assert broken.status == "error" and "b_broken.wav" in broken.message
    assert not (out / "b_broken.txt").exists()
    assert silent.status == "flagged" and silent.events == 0
    assert read_labels(out / "c_silent.txt").empty          # an empty label file to open
    assert missing.status == "error" and "missing.wav" in missing.message


def test_two_files_with_one_stem_do_not_overwrite_each_other(easy, tmp_path):
    y, _ = easy
    for sub in ("day1", "day2"):
        (tmp_path / sub).mkdir()
        _wav(tmp_path / sub / "brew.wav", y[: 5 * SR])
    table = al.autolabel_paths([tmp_path / "day1", tmp_path / "day2"], out_dir=tmp_path / "out",
                               progress=False)
    assert list(table["status"].isin(["ok", "flagged"])) == [True, False]
    assert "same stem" in table["message"].iloc[1]
    # proposals into the recordings' folder never replace the labels already beside one
    (tmp_path / "day1" / "brew.txt").write_text("1.0\t1.1\tp\n")
    table = al.autolabel_paths([tmp_path / "day1"], out_dir=tmp_path / "day1", progress=False)
    assert table["status"].tolist() == ["error"] and "would be overwritten" in table["message"].iloc[0]
    assert (tmp_path / "day1" / "brew.txt").read_text() == "1.0\t1.1\tp\n"


def test_the_step_by_step_path_of_notebook_03_is_the_labelers(easy):
    """Notebook 03 takes the labeler apart (features, fit with the plop-state rule, decoding,
    candidates); put back together, those steps must give the candidates autolabel uses."""
    y, _ = easy
    frames = al.frame_features(y)
    x, level = al.hmm_features(frames), al.frame_level_db(frames)
    model, _ = al.fit_hmm(x, level, seed=0, accept=al.plop_state_found)
    states = al.decode(model, x)
    roles, problem = al.plop_states(model, states, level)
    assert problem == ""
    steps = al.candidate_events(states, roles)
    result = al.autolabel(y)
    assert result.status == "ok", result.message
    np.testing.assert_allclose(steps["start"], result.candidates["start"])
    assert len(steps) >= len(result.events) > 0  # the confidence may drop candidates, never add


def test_candidates_merge_at_the_labelers_merge_s_by_default():
    """Two entries 100 ms apart: separate events at the labeler's 80 ms, one event at 120 ms."""
    st = np.zeros(60, dtype=int)
    st[10:14] = 1
    st[14:20] = 2
    st[20:24] = 1   # an entry 10 frames (100 ms) after the first
    st[24:30] = 2
    roles = {"plop": 1, "ring": 2, "background": [0]}
    assert al.DEFAULTS["merge_s"] < 0.1
    assert len(al.candidate_events(st, roles)) == 2
    assert len(al.candidate_events(st, roles, merge_s=0.12)) == 1


def test_a_hole_in_a_steady_rhythm_is_filled_by_the_candidate_in_its_middle():
    """Twelve plops of one airlock, one a second, in faint noise: a few of them are measured
    below ``min_confidence``; those in a gap of the rhythm become labels, and each such label
    is one of the true plops."""
    rng = np.random.default_rng(3)
    char = Character.draw(rng, SR, airlocks=("s_type",))
    y = 0.003 * rng.standard_normal(SR * 14)
    truth = np.arange(1.0, 13.0)
    for t in truth:
        x, _ = plop(rng, SR, char)
        y[int(t * SR):int(t * SR) + len(x)] += 0.3 * x / np.abs(x).max()
    plain = al.autolabel(y, fill_confidence=1.0)   # no candidate is that confident and unkept
    filled = al.autolabel(y)
    assert not plain.candidates["filled"].any()
    new = filled.candidates[filled.candidates["filled"]]
    assert len(new) >= 1
    assert len(filled.events) == len(plain.events) + len(new)
    assert np.abs(new["start"].to_numpy()[:, None] - truth).min(axis=1).max() < 0.05
    assert (new["confidence"] < al.DEFAULTS["min_confidence"]).all()


def test_rhythm_gaps_are_filled_only_where_the_rhythm_says_so():
    beat = np.arange(0.0, 10.0)                       # kept plops every second …
    starts = np.r_[beat[beat != 5], 5.0, 5.3, 7.5, 8.02]
    kept = np.r_[np.ones(9, bool), False, False, False, False]
    conf = np.r_[np.ones(9), 0.6, 0.7, 0.9, 0.9]
    order = np.argsort(starts)
    starts, kept, conf = starts[order], kept[order], conf[order]
    filled = al.fill_rhythm_gaps(starts, conf, kept)
    # … the hole at 5 s takes the most confident candidate in its middle (5.3 s, not 5.0 s);
    # 7.5 s and 8.02 s sit between kept plops one interval apart: no hole there
    assert starts[filled].tolist() == [5.3]
    # a more confident candidate off the gap's middle (4.2 s: 10 % of the way) is not chosen
    off = np.r_[starts, 4.2]
    order = np.argsort(off)
    chosen = al.fill_rhythm_gaps(off[order], np.r_[conf, 0.95][order], np.r_[kept, False][order])
    assert off[order][chosen].tolist() == [5.3]
    # below the fill confidence, or without five labels to learn the rhythm from: nothing
    assert not al.fill_rhythm_gaps(starts, conf, kept, min_confidence=0.95).any()
    four = np.isin(starts, [3.0, 4.0, 6.0, 7.0])               # the same hole, four labels
    assert four.sum() == 4 and not al.fill_rhythm_gaps(starts, conf, four).any()
    five = np.isin(starts, [3.0, 4.0, 6.0, 7.0, 8.0])          # a fifth: now the hole is seen
    assert starts[al.fill_rhythm_gaps(starts, conf, five)].tolist() == [5.3]
    # a gap far longer than the rhythm (the airlock stopped) is not a hole
    wide = np.r_[0.0, 1.0, 2.0, 3.0, 4.0, 9.0, 10.0, 6.5]
    assert not al.fill_rhythm_gaps(wide, np.r_[np.ones(7), 0.9], np.r_[np.ones(7, bool), False]).any()


def test_plausibility_is_high_at_plops_and_low_in_plain_background(easy, monkeypatch):
    """The second opinion of ``detect --strict``: the labeler's confidence at other onsets."""
    y, truth = easy
    at_plops = al.plausibility(y, truth)
    assert len(at_plops) == len(truth) and np.median(at_plops) > 0.8
    starts = truth["start"].to_numpy()
    quiet = [t for t in np.arange(0.5, len(y) / SR - 0.5, 0.25) if np.min(np.abs(starts - t)) > 0.6]
    assert len(quiet) >= 3
    elsewhere = al.plausibility(y, pd.DataFrame({"start": quiet}))
    assert elsewhere.max() < al.STRICT_PLAUSIBILITY
    # any order of events gives the same answer for each
    both = pd.DataFrame({"start": np.r_[starts, quiet]})
    ref = al.plausibility(y, both)
    perm = np.random.default_rng(0).permutation(len(both))
    np.testing.assert_allclose(al.plausibility(y, both.iloc[perm].reset_index(drop=True)), ref[perm])
    # in blocks (each with its own noise floor) nearly the same answers in a steady background
    blocks = al.plausibility(y, truth, block_s=5.0)
    assert np.abs(blocks - at_plops).max() < 0.1
    # … and exactly the same with one floor for all: the blocks' edges and context are right
    # (events at and just before an edge, 0.37 s apart so that each bounds the one before)
    edges = pd.DataFrame({"start": np.r_[4.9, 5.0, 5.01, 10.0, np.arange(11.0, 19.0, 0.37)]})
    floor = al._fine_median(al.frame_features(y))
    monkeypatch.setattr(al, "_fine_median", lambda frames, max_rows=20000: floor)
    np.testing.assert_array_equal(al.plausibility(y, edges, block_s=5.0),
                                  al.plausibility(y, edges, block_s=1e6))
    # an onset outside the audio is measured at its nearest frame, never left undefined
    outside = al.plausibility(y, pd.DataFrame({"start": [-0.5, len(y) / SR + 30.0]}))
    assert np.isfinite(outside).all() and ((outside >= 0) & (outside <= 1)).all()
    assert al.plausibility(y, truth.iloc[:0]).shape == (0,)


def _gate_run(y, onsets, *, block, latency=150, **options):
    """Stream ``y`` through a PlausibilityGate in blocks, pushing each onset (frame) about
    ``latency`` frames after it, as a live detector would; returns {onset: plausibility}."""
    gate = al.PlausibilityGate(**options)
    out, k = {}, 0
    for i in range(0, len(y), block):
        gate.feed(y[i:i + block])
        now = (i + block) // 160
        new = []
        while k < len(onsets) and onsets[k] + latency <= now:
            new.append((onsets[k], onsets[k] + 5, 0.9))
            k += 1
        out.update({a: v for a, _, _, v in gate.push(new, settled=now - latency)})
    gate.finish()
    out.update({a: v for a, _, _, v in gate.push([(a, a + 5, 0.9) for a in onsets[k:]], settled=np.inf)})
    return gate, out


@pytest.mark.parametrize("block", [160, 1600, 50_000])
def test_the_stream_gate_measures_like_plausibility(easy, monkeypatch, block):
    """``listen --strict``: the gate gives each event :func:`plausibility`'s value, whatever
    the blocks, once the noise floor is the same (here: of the whole recording), keeps the
    plops, drops the events in plain background, and waits for an event's 0.3 s of audio and
    for the next event before measuring."""
    y, truth = easy
    n = len(y) / SR
    y = np.tile(y, 4)          # 80 s: the gate's ring of 60 s wraps
    starts = np.concatenate([truth["start"].to_numpy() + k * n for k in range(4)])
    quiet = [t for t in np.arange(0.5, len(y) / SR - 0.5, 0.25) if np.min(np.abs(starts - t)) > 0.6]
    onsets = np.unique(np.round(np.r_[starts, quiet] / al.HOP_S).astype(int))
    events = pd.DataFrame({"start": onsets * al.HOP_S})
    floor = al._fine_median(al.frame_features(y))
    monkeypatch.setattr(al, "_fine_median", lambda frames, max_rows=20000: floor)
    ref = al.plausibility(y, events, block_s=1e6)
    monkeypatch.setattr(al.PlausibilityGate, "_noise_floor", staticmethod(lambda fine_q: floor))
    gate, got = _gate_run(y, onsets, block=block)
    monkeypatch.undo()
    kept = ref >= al.STRICT_PLAUSIBILITY
    assert sorted(got) == onsets[kept].tolist()
    assert gate.dropped == (~kept).sum() and gate.measured == len(onsets)
    np.testing.assert_allclose([got[a] for a in onsets[kept]], ref[kept], atol=1e-6)
    assert set(np.round(starts / al.HOP_S).astype(int)) <= set(got) and len(quiet) >= 3

    # with its own floor (the audio so far) the decisions are the same in this steady background
    _, own = _gate_run(y, onsets, block=block)
    assert sorted(own) == sorted(got)
    assert max(abs(own[a] - got[a]) for a in got) < 0.1

    # an event waits for its 0.3 s of audio, and for the detector to rule out a next event
    gate = al.PlausibilityGate()
    a = int(onsets[0])
    gate.feed(y[: (a + 20) * 160])
    assert gate.push([(a, a + 5, 0.9)], settled=a + 40) == [] and gate.settled_frame == a
    gate.feed(y[(a + 20) * 160: (a + 40) * 160])
    assert gate.push([], settled=a + 10) == []                 # a next event may still come
    assert len(gate.push([], settled=a + 40)) == int(a in got)
    assert gate.settled_frame == np.inf
    # at the end of the audio it still waits for the detector's last word (its closing event)
    gate = al.PlausibilityGate()
    gate.feed(y[: (a + 10) * 160])
    gate.finish()
    assert gate.push([(a, a + 5, 0.9)], settled=a + 5) == [] and gate.measured == 0
    gate.push([], settled=np.inf)
    assert gate.measured == 1 and gate.settled_frame == np.inf


def test_the_stream_gate_keeps_its_memory_bounded(easy):
    """A minute of floor is all it keeps (here two seconds). An event handed over after its
    onset has left the ring is dropped, not measured on other audio; one the detector keeps it
    waiting on (the next event may still start in its window) is measured on a copy of its own
    frames, however long the wait."""
    y, truth = easy
    a = int(round(truth["start"].iloc[0] / al.HOP_S))
    gate = al.PlausibilityGate(floor_s=2.0)
    gate.feed(y[: (a + 40) * 160])
    assert gate.push([(a, a + 5, 0.9)], settled=a + 5) == []          # waiting on the detector
    gate.feed(y[(a + 40) * 160: (a + 800) * 160])                      # 8 s: the ring wrapped
    kept = gate.push([(a + 700, a + 705, 0.9)], settled=a + 700)
    assert [k[0] for k in kept] == [a] and kept[0][3] >= al.STRICT_PLAUSIBILITY
    # onsets handed over twice or out of order do not break it
    gate.push([(a + 750, a + 755, 0.9), (a + 750, a + 756, 0.9)], settled=np.inf)
    assert gate.measured == 4 and gate.settled_frame == np.inf

    rng = np.random.default_rng(0)
    gate = al.PlausibilityGate(floor_s=2.0)
    for _ in range(30):
        gate.feed((0.01 * rng.standard_normal(16000)).astype(np.float32))
    assert gate._ring.shape == (200, 200) and gate.frames == 30 * 100 - 1   # the last needs more
    assert gate.push([(100, 2900, 0.9)], settled=3000) == [] and gate.dropped == 1
    gate.finish()
    assert gate.frames == 1 + 30 * 16000 // 160                           # as offline
    # a block longer than the ring: the frames are counted, the newest kept
    y = (0.01 * rng.standard_normal(5 * 16000)).astype(np.float32)
    big = al.PlausibilityGate(floor_s=2.0)
    big.feed(y)
    assert big.frames == 499
    np.testing.assert_array_equal(big._ring[np.arange(299, 499) % 200], al.frame_features(y).fine_q[299:499])
    with pytest.raises(RuntimeError, match="finish"):
        gate.feed(np.zeros(10, np.float32))
    with pytest.raises(ValueError):
        al.PlausibilityGate(floor_s=0)


def test_rise_tells_a_ringing_bubble_from_a_tone_that_swells():
    """``rise``: a bubble's ring appears at once at its own frequency; a note that swells over
    250 ms rises slowly there. Real synthesized plops against a 1 kHz tone with a slow onset in
    quiet noise, its event starting once it is loud enough to be heard (80 ms in)."""
    rng = np.random.default_rng(3)
    rec = synthesize_recording(seed=EASY_SEED, duration_s=8.0, sr=SR, snr_db=30.0)
    plop_audio = rec.audio if rec.audio.ndim == 1 else rec.audio.mean(axis=0)
    t = np.arange(int(0.5 * SR)) / SR
    note = np.sin(2 * np.pi * 1000 * t) * np.minimum(t / 0.25, 1.0)
    swell = 1e-3 * rng.standard_normal(4 * SR)
    for start in (0.5, 1.5, 2.5, 3.3):
        i = int(start * SR)
        swell[i:i + len(note)] += 0.3 * note
    def at(starts):  # events as candidate_events gives them: onset frames
        starts = np.asarray(starts, dtype=float)
        return pd.DataFrame({"start": starts, "frame": np.round(starts / al.HOP_S).astype(int)})

    bubble_rise = al.describe_events(al.frame_features(plop_audio), at(rec.events["start"]))["rise"]
    swell_rise = al.describe_events(al.frame_features(swell), at([0.58, 1.58, 2.58, 3.38]))["rise"]
    assert bubble_rise.median() > 15.0, bubble_rise.describe()
    assert swell_rise.max() < 10.0, swell_rise.tolist()


def test_label_quality_scores_a_set_and_compares_with_another_system(tmp_path):
    """Notebook 03's section 5 on a small real set: per-recording counts that add up to the
    labels, a summary per part and SNR group, and the bar chart beside a second system."""
    import matplotlib

    matplotlib.use("Agg")
    from helpers.synth import make_dataset

    m = make_dataset(tmp_path, recordings=4, duration_s=8.0, seed=5, progress=False, workers=1)
    m["path"] = [str(tmp_path / p) for p in m["path"]]
    m["labels"] = [str(tmp_path / p) for p in m["labels"]]
    scores, errors = al.label_quality(m)
    assert list(scores["recording"]) == list(m["recording"])
    assert (scores["tp"] + scores["fn"]).tolist() == m["n_plops"].tolist()
    assert set(errors) == set(m["recording"])
    assert all(len(errors[r]) == tp for r, tp in zip(scores["recording"], scores["tp"]))
    other = scores[["recording"]].assign(tp=0, fp=1, fn=scores["tp"] + scores["fn"])
    table = al.quality_table(scores, errors, counter=other)
    assert table["recordings"].sum() == 4 and (table["counter F1"] == 0).all()
    assert table["plops"].sum() == m["n_plops"].sum()
    # own recordings have no SNR: their own group, not "below 10 dB"
    unknown = al.quality_table(scores.assign(snr_db=np.nan), errors)
    assert list(unknown.index.get_level_values("snr group").unique()) == ["SNR unknown"]
    empty, no_errors = al.label_quality(m.iloc[:0])
    assert len(al.quality_table(empty, no_errors)) == 0
    axes = al.plot_quality(scores, other)
    assert len(axes) == 3 and len(axes[1].patches) > 0 and len(axes[2].patches) > 0


def test_a_quiet_ringing_sound_far_under_the_plops_is_not_labeled():
    """Plops of one airlock every two seconds and, between them, the same kind of plop 45 dB
    quieter (a bubble-like ring far under the airlock: a note, a tick): the level gate keeps
    only the loud ones; without it (``max_level_drop_db=None``) the quiet ones become labels
    too, and bad values of the option are refused before any work."""
    rng = np.random.default_rng(5)
    char = Character.draw(rng, SR, airlocks=("s_type",))
    y = 1e-5 * rng.standard_normal(SR * 22)
    loud, quiet = np.arange(1.0, 21.0, 2.0), np.arange(2.0, 21.0, 2.0)
    for times, gain in ((loud, 0.3), (quiet, 0.3 * 10 ** (-45 / 20))):
        for t in times:
            x, _ = plop(rng, SR, char)
            y[int(t * SR):int(t * SR) + len(x)] += gain * x / np.abs(x).max()
    gated, plain = al.autolabel(y), al.autolabel(y, max_level_drop_db=None)
    assert onset_scores(pd.DataFrame({"start": loud}), gated.events)["f1"] == 1.0
    both = pd.DataFrame({"start": np.sort(np.r_[loud, quiet])})
    assert onset_scores(both, plain.events)["tp"] > len(loud)      # the quiet ones ring too
    for bad in (-3.0, "loud"):
        with pytest.raises(ValueError, match="max_level_drop_db"):
            al.autolabel(y, max_level_drop_db=bad)


def test_the_level_gate_measures_from_the_confident_candidates():
    peak = np.array([40.0, 41.0, 39.0, 42.0, 5.0, 60.0])
    # a loud sound the measures are unsure of does not set the level of the plops
    confident = np.array([True, True, True, True, True, False])
    assert al.level_gate(peak, confident).tolist() == [True] * 4 + [False, True]
    assert al.level_gate(peak, confident, max_drop_db=40.0).all()
    assert al.level_gate(peak, np.zeros(6, bool)).all()          # nothing confident: no gate
