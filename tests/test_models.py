"""The CRNN detector: windows, saving, LiteRT export, batch detection, training on own
recordings — with real Keras training on small data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from helpers import backgrounds, cli, synth  # noqa: E402
from helpers.audio import save_audio  # noqa: E402
from helpers.evaluate import pooled_onset_scores  # noqa: E402
from helpers.labels import read_labels, write_labels  # noqa: E402
from helpers.models import (HOP_S, STEP, WINDOW, Detector, DetectorConfig, build_crnn,  # noqa: E402
                            detect_paths, export_litert, operations_per_second, stitch,
                            train_detector, window_starts, windows)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("n", [1, 150, 200, 201, 299, 300, 301, 1234])
def test_windows_cover_every_frame_once(n):
    feats = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 64), dtype=np.float32)
    x, starts = windows(feats)
    assert x.shape[1:] == (WINDOW, 64, 1) and len(x) == len(starts)
    assert starts[0] == 0 and np.all(np.diff(starts) == STEP)
    assert starts[-1] + WINDOW >= n
    # a "model" that returns the frame index shows which frame each output comes from
    probs = x[:, :, 0, 0]
    out = stitch(probs, starts, n)
    np.testing.assert_array_equal(out, np.arange(n))
    # every later window contributes only frames with at least WINDOW - STEP frames of past
    assert all(s + WINDOW - STEP >= WINDOW - STEP for s in starts)


def test_window_starts_small_and_large():
    assert window_starts(10).tolist() == [0]
    assert window_starts(WINDOW + 1).tolist() == [0, STEP]


def test_crnn_shape_and_cost():
    m = build_crnn()
    out = m(np.zeros((2, WINDOW, 64, 1), dtype=np.float32))
    assert tuple(out.shape) == (2, WINDOW, 1)
    cost = operations_per_second(m)
    assert 5_000 < cost["params"] < 200_000
    assert cost["macs_per_second"] == cost["macs_per_frame"] * 100


def _recordings(n, seed, duration=12.0, snr=20.0):
    recs = [synth.synthesize_recording(seed=seed + i, duration_s=duration, sr=16000, snr_db=snr)
            for i in range(n)]
    return [(r.audio if r.audio.ndim == 1 else r.audio.mean(axis=0), r.events) for r in recs]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small detector really trained on synthetic recordings, saved and exported."""
    train = _recordings(8, 10)
    val = _recordings(2, 50)
    det, history = train_detector(train, val, epochs=3, copies=1, seed=0, progress=False)
    folder = tmp_path_factory.mktemp("model")
    det.save(folder)
    sizes = export_litert(det, [y for y, _ in train[:3]], folder=folder)
    return folder, det, history, sizes


def test_training_learns(trained):
    folder, det, history, _ = trained
    assert list(history.columns[:3]) == ["epoch", "loss", "val_pr_auc"]
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    test = _recordings(3, 90)
    s = pooled_onset_scores([(ev, det.detect(y)) for y, ev in test])
    assert s["f1"] > 0.5, s  # easy recordings (SNR 20 dB) after three short epochs
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["frontend"] in ("pcen", "logmel") and "on" in cfg["postprocess"]
    assert cfg["report"]["best_epoch"] >= 1


def test_save_load_round_trip(trained):
    folder, det, _, _ = trained
    y = _recordings(1, 123, duration=5.0)[0][0]
    again = Detector.load(folder, backend="keras")
    np.testing.assert_allclose(again.probabilities(y), det.probabilities(y), atol=1e-5)


def test_litert_float_matches_keras_and_int8_is_close(trained):
    folder, det, _, sizes = trained
    assert sizes["float"] > 0 and sizes["int8"] > 0
    y = _recordings(1, 321, duration=8.0)[0][0]
    p_keras = det.probabilities(y)
    p_float = Detector.load(folder, backend="float").probabilities(y)
    p_int8 = Detector.load(folder, backend="int8").probabilities(y)
    np.testing.assert_allclose(p_float, p_keras, atol=1e-4)
    assert np.abs(p_int8 - p_keras).max() < 0.1
    assert Detector.load(folder).backend == "int8"  # auto prefers int8 when exported


def test_training_from_disk_gives_the_same_weights(tmp_path):
    """Training on recordings read from disk one at a time (datasets.Recordings, as make model
    and train do) gives the weights of training on the same audio held in lists, bit for bit:
    the lazy reading and the copy-free normalization change nothing but the memory."""
    from helpers.datasets import Recordings

    train, val = _recordings(3, 800), _recordings(1, 900)
    rows = []
    for i, (y, ev) in enumerate(train + val):
        save_audio(tmp_path / f"r{i}.flac", y, sr=16000)
        write_labels(ev, tmp_path / f"r{i}.txt")
        rows.append({"path": str(tmp_path / f"r{i}.flac"), "labels": str(tmp_path / f"r{i}.txt")})
    on_disk = pd.DataFrame(rows)
    held = [(y.astype(np.float32), ev) for y, ev in Recordings(on_disk)]   # what the files hold
    kwargs = dict(epochs=1, copies=1, seed=0, progress=False)
    a, _ = train_detector(held[:3], held[3:], extra=[held[0]], **kwargs)
    b, _ = train_detector(Recordings(on_disk.iloc[:3]), Recordings(on_disk.iloc[3:]),
                          extra=iter([held[0]]), **kwargs)
    assert a.config.norm_mean == b.config.norm_mean and a.config.norm_std == b.config.norm_std
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_postprocessing_is_tuned_on_val_and_the_extra_validation_recordings():
    """``tune`` recordings join the validation split for the thresholds (not for choosing the
    epoch): the stored settings are those tune_postprocessing picks on all of them."""
    from helpers.events import tune_postprocessing

    train, val, tune = _recordings(3, 1000), _recordings(1, 1100), _recordings(2, 1200, snr=3.0)
    det, history = train_detector(train, val, tune=iter(tune), epochs=1, copies=1, seed=0, progress=False)
    assert det.config.report["val_recordings"] == 1 and det.config.report["tune_recordings"] == 3
    expected, _ = tune_postprocessing([det.probabilities(y) for y, _ in val + tune],
                                      [ev for _, ev in val + tune], hop_s=HOP_S)
    assert det.config.postprocess == expected
    alone, _ = tune_postprocessing([det.probabilities(y) for y, _ in val], [ev for _, ev in val], hop_s=HOP_S)
    assert len(history) == 1 and det.config.report["best_epoch"] == 1
    # the quiet extra recordings matter: the thresholds differ from those of val alone
    assert expected != alone


def test_the_converter_is_quiet_unless_it_fails(capfd):
    """export_litert hides the converter's Python and native output, and shows both when the
    conversion fails, before the error."""
    from helpers.models import _converter_quiet

    with _converter_quiet():
        print("Saved artifact at /tmp/x")
        os.write(2, b"fully_quantize: 0\n")
    assert capfd.readouterr() == ("", "")
    with pytest.raises(RuntimeError, match="conversion failed"):
        with _converter_quiet():
            print("what the converter printed")
            os.write(2, b"what it logged natively\n")
            raise RuntimeError("conversion failed")
    err = capfd.readouterr().err
    assert "what the converter printed" in err and "what it logged natively" in err


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        Detector.load(tmp_path)


def test_detect_paths_continues_past_a_bad_file(trained, tmp_path):
    folder = trained[0]
    data = tmp_path / "in"
    data.mkdir()
    for i, (y, _) in enumerate(_recordings(2, 200, duration=6.0)):
        save_audio(data / f"rec{i}.flac", y, sr=16000)
    (data / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    table = detect_paths([data], out_dir=tmp_path / "out", model=folder, progress=False)
    assert len(table) == 3
    assert (table["error"] != "").sum() == 1
    assert "broken.wav" in table.loc[table["error"] != "", "file"].item()
    for i in range(2):
        assert isinstance(read_labels(tmp_path / "out" / f"rec{i}.txt"), pd.DataFrame)


def test_detect_never_overwrites_labels_and_goes_past_bad_paths(trained, tmp_path):
    """Nothing lost: the hand labels beside a recording when --out is its folder, and a second
    file of one stem, are reported and left alone; a missing path does not stop the batch."""
    y, ev = _recordings(1, 300, duration=6.0)[0]
    own = tmp_path / "own"
    (own / "older").mkdir(parents=True)
    save_audio(own / "brew.flac", y, sr=16000)
    write_labels(ev, own / "brew.txt")                         # made by hand
    hand = (own / "brew.txt").read_bytes()
    save_audio(own / "older" / "brew.wav", y, sr=16000)        # same stem, another folder
    save_audio(own / "fresh.wav", y, sr=16000)                 # no labels yet
    table = detect_paths([tmp_path / "missing.wav", own], out_dir=own, model=trained[0],
                         progress=False)
    assert (own / "brew.txt").read_bytes() == hand
    errors = dict(zip(table["file"].map(lambda f: Path(f).relative_to(tmp_path).as_posix()), table["error"]))
    assert list(errors) == ["missing.wav", "own/brew.flac", "own/fresh.wav", "own/older/brew.wav"]
    assert "No such file" in errors["missing.wav"]
    assert "would be overwritten" in errors["own/brew.flac"] and "own/brew.txt" in errors["own/brew.flac"]
    assert "would be overwritten" in errors["own/older/brew.wav"]   # also brew.flac's labels
    assert errors["own/fresh.wav"] == "" and (own / "fresh.txt").exists()
    assert all(str(tmp_path) in e for e in errors.values() if e)    # every message names its file
    again = detect_paths([own / "brew.flac"], out_dir=own, model=trained[0], progress=False, overwrite=True)
    assert list(again["error"]) == [""] and (own / "brew.txt").read_bytes() != hand   # asked for


def test_saving_a_model_deletes_the_older_litert_exports(trained, tmp_path):
    """Detector.load's "auto" prefers model_int8.tflite: after a new model.keras is saved into
    a folder, exports of the model saved there before must not be picked up."""
    folder, det, _, _ = trained
    copy = tmp_path / "model"
    copy.mkdir()
    for f in folder.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    assert Detector.load(copy).backend == "int8"
    det.save(copy)
    assert not list(copy.glob("*.tflite"))
    assert Detector.load(copy).backend == "keras"


def _run(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "helpers", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_cli_detect_stereo_44k_and_bad_file(trained, tmp_path):
    """Any sample rate, stereo, several formats; CSV on stdout; bad file on stderr, exit 1."""
    folder = trained[0]
    rec = synth.synthesize_recording(seed=7, duration_s=8.0, sr=44100, snr_db=25)
    stereo = np.vstack([rec.audio, rec.audio]) if rec.audio.ndim == 1 else rec.audio
    save_audio(tmp_path / "stereo44k.wav", stereo, sr=44100)
    save_audio(tmp_path / "mono.ogg", rec.audio if rec.audio.ndim == 1 else rec.audio[0], sr=44100)
    (tmp_path / "empty.flac").write_bytes(b"")
    r = _run("detect", tmp_path, tmp_path / "gone.wav", "--model", folder, "--out", tmp_path / "labels",
             "--quiet")
    assert r.returncode == 1
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "file,duration_s,events,bpm"
    assert len(lines) == 3 and all(line.count(",") == 3 for line in lines)
    assert "empty.flac" in r.stderr and f"{tmp_path / 'gone.wav'}: No such file" in r.stderr
    assert r.stderr.count(str(tmp_path / "empty.flac")) == 1   # named once, not twice
    assert "2 of 4 files failed" in r.stderr
    assert (tmp_path / "labels" / "stereo44k.txt").exists()


def test_cli_train_on_own_recordings(trained, tmp_path):
    """`train` fine-tunes from a model on a folder of labeled recordings; `detect` uses it."""
    folder = trained[0]
    own = tmp_path / "recordings"
    own.mkdir()
    for i, (y, ev) in enumerate(_recordings(4, 400, duration=10.0)):
        save_audio(own / f"brew{i}.wav", y, sr=16000)
        write_labels(ev, own / f"brew{i}.txt")
    # the room without the airlock (talk), with an empty label file: a negative example
    talk = synth.BACKGROUNDS["babble"](np.random.default_rng(3), 10 * 16000, 16000)
    save_audio(own / "kitchen_talk.wav", 0.1 * talk / np.abs(talk).max(), sr=16000)
    write_labels(pd.DataFrame({"start": [], "end": []}), own / "kitchen_talk.txt")
    out = tmp_path / "mymodel"
    r = _run("train", "--data", own, "--out", out, "--epochs", "1", "--init", folder,
             "--no-litert", "--quiet", "--negatives", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["recordings_train"] + report["recordings_val"] == 5
    assert (report["negatives_train"], report["negatives_val"]) == (2, 1)
    assert (out / "model.keras").exists() and (out / "config.json").exists()
    # what it costs: false plops a minute in recorded talk and music, the new model's and the start
    # model's, counted on the real clips (the same as helpers.backgrounds.false_plops finds)
    fp = report["false_plops_per_minute"]
    assert set(fp) == {"model", "start"} and all(set(v) == {"speech", "instruments"} for v in fp.values())
    start = backgrounds.false_plops(Detector.load(folder, backend="keras"), per_family=True)["per_minute"]
    assert fp["start"] == {f: round(float(v), 1) for f, v in start.items()}
    assert json.loads((out / "config.json").read_text())["report"]["false_plops_per_minute"] == fp
    assert (f"false plops a minute in recorded talk and music it never heard: {fp['model']['speech']:.1f} and "
            f"{fp['model']['instruments']:.1f} (the model it started from: {fp['start']['speech']:.1f}") in r.stdout
    assert ("fires more often" in r.stderr) == cli._fires_more(fp["model"], fp["start"])
    r = _run("detect", own / "brew0.wav", "--model", out, "--out", tmp_path / "l", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]


def test_train_on_folders_adds_talk_and_music_to_training_and_validation(tmp_path, monkeypatch):
    """The hard negatives reach train_detector: ``negatives`` half-minutes of recorded speech
    and music alone (no plops) as extra training recordings, and a sixth as many (rounded up)
    after the held-back recordings in the validation set; none with ``negatives=0``."""
    import helpers.models as models_module

    own = tmp_path / "own"
    own.mkdir()
    for i, (y, ev) in enumerate(_recordings(3, 600, duration=4.0)):
        save_audio(own / f"r{i}.wav", y, sr=16000)
        write_labels(ev, own / f"r{i}.txt")
    seen = {}

    class Stop(Exception):
        pass

    def capture(train, val, **kwargs):
        seen["val"] = list(val)
        seen["extra"] = list(kwargs["extra"])
        raise Stop

    monkeypatch.setattr(models_module, "train_detector", capture)
    for n, n_val in ((7, 2), (0, 0)):
        with pytest.raises(Stop):
            models_module.train_on_folders([own], out=tmp_path / "m", negatives=n, init=None, export=False)
        assert len(seen["extra"]) == n and len(seen["val"]) == 1 + n_val
        for y, ev in seen["extra"] + seen["val"][1:]:
            assert len(y) == 30 * 16000 and len(ev) == 0
        assert len(seen["val"][0][1]) > 0                  # the held-back recording comes first, with its plops
    with pytest.raises(Stop):                              # from scratch: none unless asked
        models_module.train_on_folders([own], out=tmp_path / "m", init=None, export=False)
    assert seen["extra"] == [] and len(seen["val"]) == 1
    with pytest.raises(Stop):                              # fine-tuning the shipped model: the default
        models_module.train_on_folders([own], out=tmp_path / "m", export=False)
    assert len(seen["extra"]) == models_module.TRAIN_NEGATIVES == 24 and len(seen["val"]) == 1 + 4
    with pytest.raises(ValueError, match="negatives"):
        models_module.train_on_folders([own], out=tmp_path / "m", negatives=-1, init=None)


def test_train_needs_two_labeled_recordings(tmp_path):
    own = tmp_path / "one"
    own.mkdir()
    y, ev = _recordings(1, 500, duration=4.0)[0]
    save_audio(own / "only.wav", y, sr=16000)
    write_labels(ev, own / "only.txt")
    r = _run("train", "--data", own, "--out", tmp_path / "m", "--from-scratch", "--no-litert")
    assert r.returncode != 0 and "at least two labeled recordings" in r.stderr


def test_detector_config_defaults():
    cfg = DetectorConfig()
    assert cfg.frontend == "pcen" and len(cfg.norm_mean) == 64


def test_cli_detect_bpm_methods(trained, tmp_path):
    """`--bpm-method count` prints the detected plops per minute of the file; the default
    (interval) prints 60 over the median gap between them, `mean` 60 over their mean."""
    from helpers.events import bpm_from_events

    folder = trained[0]
    rec = synth.synthesize_recording(seed=21, duration_s=12.0, sr=16000, snr_db=25)
    save_audio(tmp_path / "brew.wav", rec.audio, sr=16000)
    rows = {}
    for method in ("interval", "mean", "count"):
        r = _run("detect", tmp_path / "brew.wav", "--model", folder, "--out", tmp_path / method,
                 "--bpm-method", method, "--quiet")
        assert r.returncode == 0, r.stderr[-2000:]
        _, duration, events, bpm = r.stdout.strip().splitlines()[1].split(",")
        rows[method] = (float(duration), int(events), float(bpm))
        labels = read_labels(tmp_path / method / "brew.txt")
        assert len(labels) == int(events)
    duration, events, bpm = rows["count"]
    assert events >= 3 and bpm == pytest.approx(events / duration * 60, abs=0.05)
    expected = bpm_from_events(read_labels(tmp_path / "interval" / "brew.txt"), duration_s=duration)["bpm"]
    assert rows["interval"][2] == pytest.approx(expected, abs=0.05)
    mean = bpm_from_events(read_labels(tmp_path / "mean" / "brew.txt"), duration_s=duration, method="mean")
    assert mean["method"] == "mean" and rows["mean"][2] == pytest.approx(mean["bpm"], abs=0.06)
    assert rows["mean"][2] != rows["interval"][2]   # irregular plops: the mean gap is not the median
    assert _run("detect", tmp_path / "brew.wav", "--out", tmp_path / "x", "--bpm-method", "mode").returncode == 2


def test_cli_detect_strict_drops_the_implausible_detections(tmp_path, talk_and_music):
    """`detect --strict` (shipped model): the plain detections whose plausibility, measured
    here on their own, reaches STRICT_PLAUSIBILITY, and nothing else. In this recording (talk
    and music at 5 dB SNR, 40 plops) the shipped model also fires on one other sound;
    strict mode drops it and keeps every plop."""
    from helpers.audio import load_audio
    from helpers.autolabel import STRICT_PLAUSIBILITY, plausibility
    from helpers.evaluate import onset_scores

    rec = talk_and_music
    save_audio(tmp_path / "kitchen.wav", rec.audio, sr=16000)
    counts = {}
    for name, extra in (("plain", []), ("strict", ["--strict"])):
        r = _run("detect", tmp_path / "kitchen.wav", "--out", tmp_path / name, "--quiet", *extra)
        assert r.returncode == 0, r.stderr[-2000:]
        counts[name] = int(r.stdout.strip().splitlines()[1].split(",")[2])
    plain = read_labels(tmp_path / "plain" / "kitchen.txt")
    strict = read_labels(tmp_path / "strict" / "kitchen.txt")
    p = plausibility(load_audio(tmp_path / "kitchen.wav"), plain)
    np.testing.assert_allclose(strict["start"], plain["start"][p >= STRICT_PLAUSIBILITY], atol=1e-6)
    assert counts == {"plain": len(plain), "strict": len(strict)}
    assert len(strict) < len(plain)
    assert onset_scores(rec.events, strict)["tp"] == onset_scores(rec.events, plain)["tp"] == len(rec.events)


_TRAIN_AND_HASH = """
import hashlib, sys
import numpy as np
sys.path.insert(0, "tests")
from test_models import _recordings
from helpers.models import train_detector
det, _ = train_detector(_recordings(6, 600, duration=30.0), _recordings(2, 700, duration=30.0),
                        epochs=2, copies=1, seed=0, progress=False)
print(hashlib.sha256(b"".join(w.tobytes() for w in det.model.get_weights())).hexdigest())
"""


def test_training_gives_the_same_weights_on_a_busy_machine():
    """Two trainings with the same seed in fresh processes give the same weights bit for bit,
    even with every core kept busy by other work (with several TensorFlow operations in
    flight, most such pairs differed in the last digits; models.serial_ops)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_NUM_INTEROP_THREADS"}
    env.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(os.cpu_count() or 2)]
    try:
        hashes = []
        for _ in range(2):
            r = subprocess.run([sys.executable, "-c", _TRAIN_AND_HASH], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, r.stderr[-2000:]
            hashes.append(r.stdout.strip().splitlines()[-1])
    finally:
        for p in busy:
            p.kill()
            p.wait()
    assert len(hashes[0]) == 64 and hashes[0] == hashes[1]


@pytest.mark.parametrize("started", [False, True])
def test_serial_ops_only_before_tensorflow_runs(started):
    """serial_ops takes effect in a fresh process and says so when TensorFlow already runs
    (an environment variable set too late does not count)."""
    code = ("import tensorflow as tf\n"
            + ("tf.constant(1.0) + 1.0\nimport os\nos.environ['TF_NUM_INTEROP_THREADS'] = '1'\n" if started else "")
            + "from helpers.models import serial_ops\nprint(serial_ops(), serial_ops())\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_NUM_INTEROP_THREADS"}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env=dict(env, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2"), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == f"{not started} {not started}"  # and again


def test_train_negatives_option_is_checked_at_once(tmp_path):
    r = _run("train", "--data", tmp_path, "--out", tmp_path / "m", "--negatives", "-3")
    assert r.returncode == 2 and "negative; give 0 or more" in r.stderr
