"""Tests of the evaluation views (windows, sed_eval events, BPM), the systems behind one
interface (helpers.systems) and ``python -m helpers evaluate``: real audio, the shipped model,
and sed_eval computed independently from the label files the detector writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers import evaluate, synth, systems
from helpers.config import REPO_ROOT, SR
from helpers.evaluate import (detection_errors, evaluate_recordings, sed_eval_scores, window_metrics,
                              window_view)
from helpers.labels import read_labels, write_labels

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import sed_eval


def _recordings(n: int, *, seed: int = 0, duration: float = 15.0, snr: float = 18.0):
    """Synthetic recordings at 16 kHz, downmixed to mono (the generator makes some stereo)."""
    recs = [synth.synthesize_recording(seed=seed + i, duration_s=duration, sr=SR, snr_db=snr) for i in range(n)]
    for r in recs:
        r.audio = r.audio.mean(axis=0) if r.audio.ndim == 2 else r.audio
    return recs


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three labeled recordings (one stereo at 44.1 kHz) and one broken file."""
    d = tmp_path_factory.mktemp("own")
    for i, rec in enumerate(_recordings(3, seed=40)):
        audio, sr = rec.audio, SR
        if i == 1:  # stereo 44.1 kHz, like the held-out recordings
            import librosa
            mono = librosa.resample(rec.audio, orig_sr=SR, target_sr=44100)
            audio, sr = np.stack([mono, 0.5 * mono], axis=1), 44100
        sf.write(d / f"rec{i}.wav", audio, sr)
        write_labels(rec.events, d / f"rec{i}.txt")
    (d / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt junk")
    (d / "broken.txt").write_text("1.0\t1.1\tp\n")
    return d


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "helpers", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


# ----------------------------------------------------------------------------- the views
def test_window_view_marks_onsets_and_scores():
    lab, dec, sc = window_view([0.1, 0.3, 0.6], [0.3], 1.0, scores=np.arange(100) / 100, window_s=0.25)
    assert lab.tolist() == [True, True, True, False]
    assert dec.tolist() == [False, True, False, False]
    assert sc.tolist() == pytest.approx([0.24, 0.49, 0.74, 0.99])


def test_window_metrics_rates():
    m = window_metrics(np.array([1, 1, 0, 0, 0]), np.array([1, 0, 1, 0, 0]))
    assert m["precision"] == 0.5 and m["recall"] == 0.5
    assert m["fpr"] == pytest.approx(1 / 3) and m["fnr"] == 0.5
    assert np.isnan(window_metrics(np.zeros(3), np.zeros(3), np.zeros(3))["pr_auc"])


def test_segment_and_event_scores_are_sed_eval_s():
    rng = np.random.default_rng(1)
    empty = pd.DataFrame({"start": [], "end": [], "label": []})
    # a silent recording scored silent, and one with plops where nothing was found
    two = pd.DataFrame({"start": [2.0, 5.0], "end": [2.1, 5.1], "label": "p"})
    refs, ests, durs = [empty, two], [empty, empty], [30.0, 30.0]
    for _ in range(4):
        r = np.sort(rng.uniform(0, 30, 12))
        e = np.sort(np.r_[r[:9] + rng.normal(0, 0.08, 9), rng.uniform(0, 30, 3)])
        refs.append(pd.DataFrame({"start": r, "end": r + 0.15, "label": "p"}))
        ests.append(pd.DataFrame({"start": e, "end": e + 0.1, "label": "p"}))
        durs.append(30.0)
    out = sed_eval_scores(refs, ests, durs)
    seg = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=["p"], time_resolution=1.0)
    ev = sed_eval.sound_event.EventBasedMetrics(event_label_list=["p"], t_collar=0.2,
                                                evaluate_onset=True, evaluate_offset=False)
    for k, (r, e) in enumerate(zip(refs, ests)):
        rl = [{"filename": f"f{k}", "event_label": "p", "event_onset": a, "event_offset": b}
              for a, b in zip(r["start"], r["end"])]
        el = [{"filename": f"f{k}", "event_label": "p", "event_onset": a, "event_offset": b}
              for a, b in zip(e["start"], e["end"])]
        seg.evaluate(reference_event_list=rl, estimated_event_list=el, evaluated_length_seconds=30.0)
        ev.evaluate(reference_event_list=rl, estimated_event_list=el)
    assert out["segment_1s"]["f1"] == pytest.approx(seg.results_overall_metrics()["f_measure"]["f_measure"])
    assert out["event_200ms"]["f1"] == pytest.approx(ev.results_overall_metrics()["f_measure"]["f_measure"])
    assert 0 < out["event_100ms"]["f1"] < out["event_200ms"]["f1"] < 1
    assert out["event_100ms"]["fn"] >= 2  # the two plops of the recording where nothing was found
    per = out["per_recording"]
    assert np.isnan(per.loc[0, "event_100ms_f1"])  # nothing to find, nothing found: undefined, not 0
    assert per.loc[1, "event_100ms_f1"] == 0.0 and per.loc[1, "event_100ms_fn"] == 2


def test_detection_errors_lists_every_miss_and_false_alarm():
    ref = pd.DataFrame({"start": [1.0, 2.0, 3.0]})
    est = pd.DataFrame({"start": [1.03, 2.5, 5.0], "probability": [0.9, 0.6, 0.95]})
    err = detection_errors(ref, est)
    assert err["kind"].tolist() == ["FP", "FP", "FN", "FN"]
    assert err["time"].tolist()[:2] == [5.0, 2.5]  # the most confident false alarm first
    assert err["score"].tolist()[:2] == [0.95, 0.6]
    assert err["score"].iloc[2:].isna().all()  # no frame scores given: how close is unknown
    assert sorted(err.loc[err["kind"] == "FN", "time"]) == [2.0, 3.0]
    scores = np.zeros(600)
    scores[300] = 0.4  # the detector nearly fired at 3.0 s
    err = detection_errors(ref, est, scores=scores)
    assert err.loc[err["kind"] == "FN"].iloc[0].tolist() == [3.0, "FN", 0.4]


# ----------------------------------------------------------------------------- the systems
@pytest.fixture(scope="module")
def quick_run():
    recs = _recordings(4, seed=70)
    man = pd.DataFrame({"recording": [f"r{i}" for i in range(4)], "split": ["train", "val", "test", "test"]})
    syss = systems.make_systems(man.assign(path="", labels=""), include=("librosa onsets", "GMM-HMM",
                                                                         "CRNN int8"))
    outputs = {s.name: [] for s in syss}
    for rec in recs:
        for s in syss:
            outputs[s.name].append(s.run(rec.audio))
    return syss, systems.Run(man, [r.events for r in recs], [15.0] * 4, outputs)


def test_librosa_system_is_librosa_onset_detect():
    import librosa

    y = _recordings(1, seed=3)[0].audio
    ours = systems.LibrosaSystem().run(y).events["start"].to_numpy()
    theirs = librosa.onset.onset_detect(y=y, sr=SR, units="time")
    assert len(ours) == len(theirs) > 5
    assert np.allclose(ours, theirs)


def test_each_system_decides_at_its_own_threshold_as_in_the_sweep(quick_run):
    syss, run = quick_run
    for s in syss:
        for o in run.outputs[s.name]:
            again = s.events_at(o, s.threshold)
            assert len(again) == len(o.events), s.name
            assert np.allclose(again["start"].to_numpy(), o.events["start"].to_numpy()), s.name


def test_sweep_trades_precision_for_recall(quick_run):
    syss, run = quick_run
    for s in syss:
        sweep = systems.threshold_sweep(s, run.outputs[s.name], run.references)
        assert len(sweep) == len(s.thresholds)
        assert sweep["recall"].max() > sweep["recall"].min() or sweep["precision"].nunique() > 1, s.name
        assert 0 < systems.sweep_ap(sweep) <= 1
    crnn = systems.threshold_sweep(syss["CRNN int8"], run.outputs["CRNN int8"], run.references)
    by_t = crnn.sort_values("threshold")
    assert (np.diff(by_t["tp"] + by_t["fn"]) == 0).all()  # the same references at every threshold
    assert by_t["recall"].is_monotonic_decreasing
    # the sweeps of one split are those of its recordings alone
    test_sweeps, test_ap = systems.sweeps(syss, run, split="test")
    idx = [2, 3]  # the test recordings of quick_run
    alone = systems.threshold_sweep(syss["GMM-HMM"], [run.outputs["GMM-HMM"][i] for i in idx],
                                    [run.references[i] for i in idx])
    assert test_sweeps["GMM-HMM"].equals(alone)
    assert test_ap["GMM-HMM"] == systems.sweep_ap(alone)


def test_evaluation_tables_per_split_and_errors(quick_run):
    syss, run = quick_run
    per, overall = systems.evaluation_tables(run)
    assert set(overall["split"]) == {"train", "val", "test", "all"}
    assert len(per) == 3 * 4
    crnn_all = overall[(overall["system"] == "CRNN int8") & (overall["split"] == "all")].iloc[0]
    assert crnn_all["f1"] > 0.9  # clean-ish recordings: the shipped model finds the plops
    err = systems.errors_table(run, "GMM-HMM")
    n_err = per[per["system"] == "GMM-HMM"][["fp", "fn"]].to_numpy().sum()
    assert len(err) == n_err


def test_false_plops_at_confusers_from_the_evaluation_tables():
    """The manifest's confusers reach the per-recording table beside the measured durations;
    the attribution counts every false plop of each system once, and its rate without
    confusers is that of the recordings without them (seeds 74 and 76 have none)."""
    recs = _recordings(4, seed=73)
    man = pd.DataFrame({"recording": [f"r{i}" for i in range(4)], "split": "test",
                        "n_confusers": [r.params["n_confusers"] for r in recs], "duration_s": 15.0})
    assert (man["n_confusers"] == 0).any() and (man["n_confusers"] > 0).any()
    syss = systems.make_systems(man.assign(path="", labels=""), include=("librosa onsets", "CRNN int8"))
    run = systems.Run(man, [r.events for r in recs], [15.0] * 4, {s.name: [s.run(r.audio) for r in recs] for s in syss})
    per, _ = systems.evaluation_tables(run)
    assert per["n_confusers"].tolist() == man["n_confusers"].tolist() * 2
    assert per["duration_s"].tolist() == pytest.approx([15.0] * 8)
    for name, rows in per.groupby("system"):
        r = evaluate.false_plops_at_confusers(rows)
        assert r["false_plops"] == rows["fp"].sum() and r["confusers"] == man["n_confusers"].sum()
        none = rows[rows["n_confusers"] == 0]
        assert r["per_minute_without"] == pytest.approx(none["fp"].sum() / (none["duration_s"].sum() / 60), abs=1e-3)
    assert per[per["system"] == "librosa onsets"]["fp"].sum() > 0   # something to attribute


def test_unknown_system_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown system"):
        systems.make_systems(pd.DataFrame({"split": []}), include=("deep magic",))


# ----------------------------------------------------------------------------- the command
def test_cli_evaluate_equals_sed_eval_on_the_detected_labels(folder, tmp_path):
    r = _cli("evaluate", "--data", str(folder), "--json", "--quiet", "--backend", "int8")
    assert r.returncode == 1, r.stderr  # the broken file makes the exit status non-zero
    assert "broken" in r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["recordings"] == 3 and result["failed"] == 1
    for name in ("rec0", "rec1", "rec2"):
        assert name in r.stdout
    # detect writes the labels; sed_eval scores them against the references, independently
    out = tmp_path / "det"
    d = _cli("detect", str(folder / "rec0.wav"), str(folder / "rec1.wav"), str(folder / "rec2.wav"),
             "--out", str(out), "--backend", "int8", "--quiet")
    assert d.returncode == 0, d.stderr
    metrics = sed_eval.sound_event.EventBasedMetrics(event_label_list=["p"], t_collar=0.1,
                                                     evaluate_onset=True, evaluate_offset=False)
    within = []
    for name, row in zip(("rec0", "rec1", "rec2"), d.stdout.strip().splitlines()[1:]):
        ref, est = read_labels(folder / f"{name}.txt"), read_labels(out / f"{name}.txt")
        metrics.evaluate(
            reference_event_list=[{"filename": name, "event_label": "p", "event_onset": a, "event_offset": b}
                                  for a, b in zip(ref["start"], ref["end"])],
            estimated_event_list=[{"filename": name, "event_label": "p", "event_onset": a, "event_offset": b}
                                  for a, b in zip(est["start"], est["end"])])
        bpm = float(row.split(",")[-1])
        true = len(ref) / 15.0 * 60
        within.append(abs(bpm - true) / true <= 0.10 + 0.001)
    f = metrics.results_overall_metrics()["f_measure"]
    # labels are written with 6 decimals; the figures must still be sed_eval's
    assert result["f1"] == pytest.approx(f["f_measure"], abs=1e-9)
    assert result["precision"] == pytest.approx(f["precision"], abs=1e-9)
    assert result["recall"] == pytest.approx(f["recall"], abs=1e-9)
    assert result["bpm_within_10pct"] == pytest.approx(np.mean(within))
    assert set(result) >= {"f1", "precision", "recall", "bpm_error_median", "bpm_within_10pct"}
    assert result["rtf"] > 0


def test_cli_evaluate_without_labels_says_what_is_needed(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(SR, dtype="float32"), SR)
    r = _cli("evaluate", "--data", str(tmp_path), "--quiet")
    assert r.returncode != 0
    assert "no labeled recordings" in r.stderr


def test_evaluate_recordings_matches_score_detections_for_bpm():
    from helpers.evaluate import score_detections

    recs = _recordings(2, seed=5)
    refs = [r.events for r in recs]
    ests = [r.events.iloc[::2] for r in recs]
    table, overall = evaluate_recordings(refs, ests, [15.0, 15.0])
    assert overall["recall"] == pytest.approx(sum(len(e) for e in ests) / sum(len(r) for r in refs))
    assert overall["precision"] == 1.0
    assert (table["n_est"] == [len(e) for e in ests]).all()
    bpm = score_detections(refs, ests, [15.0, 15.0])
    for col in ("true_bpm", "bpm", "bpm_error", "within_10"):
        assert table[col].tolist() == bpm[col].tolist(), col
    assert overall["bpm_error_median"] == pytest.approx(bpm["bpm_error"].median())
    assert overall["bpm_error_median"] > 0.2  # every other plop found: far from the true rate


def test_duplicate_names_keep_one_row_per_recording():
    table, overall = evaluate_recordings([[1.0], [2.0]], [[1.0], []], [5.0, 5.0], names=["a", "a"])
    assert len(table) == 2
    assert (overall["tp"], overall["fn"], overall["plops"]) == (1, 1, 2)
    assert table["tp"].tolist() == [1, 0]


def test_cli_json_is_strict_when_a_figure_is_undefined(tmp_path):
    """A background-only recording (empty label file) with a detection has no relative BPM
    error (infinite); the JSON line must still parse with a strict parser."""
    rec = _recordings(1, seed=90, snr=25.0)[0]
    sf.write(tmp_path / "busy.wav", rec.audio, SR)
    (tmp_path / "busy.txt").write_text("")  # labeled as "no plops" although there are some
    sf.write(tmp_path / "unlabeled.wav", rec.audio, SR)  # noted on stderr, not a failure
    r = _cli("evaluate", "--data", str(tmp_path), "--json", "--quiet", "--backend", "int8")
    assert r.returncode == 0, r.stderr
    assert "unlabeled.wav: no labels" in r.stderr
    line = r.stdout.strip().splitlines()[-1]
    result = json.loads(line, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert result["recordings"] == 1 and result["plops"] == 0 and result["detections"] > 0
    assert result["bpm_error_median"] is None and result["precision"] == 0.0


def test_probability_system_without_hysteresis_at_any_threshold():
    """Post-processing with off == on (no hysteresis) must survive moving the threshold: the
    ratio off/on once came out a hair above 1 through float rounding and stopped the bench."""
    from helpers.models import Detector

    det = Detector.load(backend="keras")
    s = systems.ProbabilitySystem(det, {"on": 0.4, "off": 0.4, "min_gap_s": 0.0, "min_duration_s": 0.03},
                                  name="CRNN")
    probs = np.zeros(300, dtype=np.float32)
    probs[100:110] = 0.9
    out = systems.Output(pd.DataFrame(), probs, 0.01)
    for threshold in (0.4, 0.35, 0.7):
        ev = s.events_at(out, threshold)
        assert len(ev) == 1 and abs(ev["start"].iloc[0] - 1.0) < 0.011


def test_cli_evaluate_strict_scores_what_detect_strict_writes(tmp_path, talk_and_music):
    """`evaluate --strict` scores exactly the detections of `detect --strict` (talk and music
    at 5 dB, 40 plops: the shipped model fires on one other sound, strict mode drops it),
    and a threshold sweep of the strict system keeps what plausibility keeps."""
    from helpers.audio import load_audio, save_audio
    from helpers.autolabel import STRICT_PLAUSIBILITY, plausibility
    from helpers.models import Detector

    rec = talk_and_music
    save_audio(tmp_path / "kitchen.wav", rec.audio, sr=SR)
    write_labels(rec.events, tmp_path / "kitchen.txt")
    results = {}
    for name, extra in (("plain", []), ("strict", ["--strict"])):
        r = _cli("evaluate", "--data", str(tmp_path), "--json", "--quiet", *extra)
        assert r.returncode == 0, r.stderr
        results[name] = json.loads(r.stdout.strip().splitlines()[-1])
    d = _cli("detect", str(tmp_path / "kitchen.wav"), "--out", str(tmp_path / "det"), "--strict", "--quiet")
    assert d.returncode == 0, d.stderr
    written = read_labels(tmp_path / "det" / "kitchen.txt")
    assert results["strict"]["strict"] == STRICT_PLAUSIBILITY and results["plain"]["strict"] is None
    assert results["strict"]["detections"] == len(written) < results["plain"]["detections"]
    assert results["strict"]["tp"] == results["plain"]["tp"] == len(rec.events)
    assert results["strict"]["precision"] > results["plain"]["precision"]
    # the sweep: at a lower threshold the strict system keeps the plausible events of the plain one
    det = Detector.load()
    y = load_audio(tmp_path / "kitchen.wav")
    plain = systems.ProbabilitySystem(det, det.config.postprocess, name="plain")
    strict = systems.ProbabilitySystem(det, det.config.postprocess, name="strict",
                                       min_plausibility=STRICT_PLAUSIBILITY)
    out_plain, out_strict = plain.run(y), strict.run(y)
    for threshold in (0.3, 0.75):
        ev = plain.events_at(out_plain, threshold)
        kept = ev[plausibility(y, ev) >= STRICT_PLAUSIBILITY].reset_index(drop=True)
        assert 0 < len(kept) < len(ev)
        got = strict.events_at(out_strict, threshold)
        pd.testing.assert_frame_equal(got[kept.columns], kept)
        assert (got["plausibility"] >= STRICT_PLAUSIBILITY).all()
    # without the audio a strict output cannot decide again, and says so
    lean = systems.ProbabilitySystem(det, det.config.postprocess, name="strict", keep_audio=False,
                                     min_plausibility=STRICT_PLAUSIBILITY)
    out_lean = lean.run(y)
    pd.testing.assert_frame_equal(out_lean.events, out_strict.events)
    with pytest.raises(ValueError, match="no audio"):
        lean.events_at(out_lean, 0.5)
