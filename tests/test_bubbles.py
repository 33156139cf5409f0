"""Recorded bubbles: cutting the committed recordings into single bubbles, airlock-like tracks
of them, and the shipped detector scored on them — real files and real inference."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from helpers import bubbles, robustness  # noqa: E402
from helpers.audio import load_audio  # noqa: E402
from helpers.config import SR  # noqa: E402
from helpers.evaluate import match_onsets  # noqa: E402


def test_the_six_recordings_are_committed():
    found = bubbles.files()
    assert [p.stem for p in found] == [f"sp-bubles_0{i}" for i in range(6)]
    assert (bubbles.FOLDER / "README.md").read_text().count("GPL") >= 1


def test_the_other_sources_are_committed_and_credited():
    """Twelve recordings of nine packages, each named <package>-<name>, each with a row of the
    README that gives its package, version, original path, copyright holder and a license the
    project can ship data under; none of them is among the default folder's recordings."""
    others = bubbles.FOLDER / "others"
    found = bubbles.files(others)
    assert len(found) == 12
    rows = [line.split(" | ") for line in (others / "README.md").read_text().splitlines()
            if line.startswith("| `")]
    for p in found:
        row = next(r for r in rows if f"`{p.name}`" in r[0] or f"`{p.stem[:-3]}_00{p.suffix}`" in r[0])
        package, path, holder, license_ = row[1], row[2], row[3], row[4]
        assert package.startswith(bubbles.package(p.stem)) and any(ch.isdigit() for ch in package)
        assert path.startswith("`") and path.rstrip("`").endswith(p.suffix)
        assert holder.strip()
        assert license_.split()[0] in {"GPL-2", "GPL-2+", "Expat"}
    assert {bubbles.package(p.stem) for p in found} == {
        "blockout2", "funnyboat", "gamine", "hannah", "mate", "rockdodger", "tuxpaint", "vodovod", "widelands"}
    assert not {p.name for p in found} & {p.name for p in bubbles.files(bubbles.FOLDER)}


def test_the_other_sources_cut_into_single_sounds():
    cut = bubbles.single_bubbles(bubbles.FOLDER / "others")
    assert 70 <= len(cut) <= 110
    assert {bubbles.package(b.source) for b in cut} == {bubbles.package(p.stem)
                                                       for p in bubbles.files(bubbles.others_folder())}
    assert not {b.source for b in cut} & {b.source for b in bubbles.single_bubbles()}


def test_others_folder_follows_the_bubbles_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("AED_BUBBLES_DIR", str(tmp_path))
    assert bubbles.others_folder() == tmp_path / "others"
    assert bubbles.package("no_dash") == "no_dash"


def test_single_bubbles_are_cut_at_their_onsets():
    cut = bubbles.single_bubbles()
    assert 70 <= len(cut) <= 110
    assert {b.source for b in cut} == {p.stem for p in bubbles.files()}
    early = 0
    for b in cut:
        assert b.audio.dtype == np.float32 and not b.audio.flags.writeable
        assert bubbles.MIN_BUBBLE_S * SR <= len(b.audio) <= bubbles.MAX_BUBBLE_S * SR
        assert np.max(np.abs(b.audio)) == pytest.approx(1.0)
        assert abs(b.audio[-1]) < 1e-6                     # faded out: no click at the cut
        frames = np.square(b.audio[: len(b.audio) // 160 * 160]).reshape(-1, 160).sum(axis=1)
        early += np.argmax(frames) < 6
    # a bubble starts at its onset: its loudest 10 ms come within the first 60 ms, but for a
    # few whose ring ends in the louder splash of the bubble reaching the surface
    assert early >= 0.9 * len(cut)
    assert bubbles.single_bubbles() is cut                 # cached


def test_bubble_onsets_of_a_real_train_are_spaced_like_its_rings():
    y = load_audio(bubbles.files()[2])                     # 1.8 s, about twenty rings
    t = bubbles.bubble_onsets(y)
    assert 15 <= len(t) <= 25
    assert np.all(np.diff(t) >= 0.05 - 1e-9)
    assert bubbles.bubble_onsets(np.zeros(100, dtype=np.float32)).size == 0


def test_files_of_an_empty_folder_say_where_they_come_from(tmp_path):
    with pytest.raises(FileNotFoundError, match="data/bubbles"):
        bubbles.files(tmp_path)
    with pytest.raises(FileNotFoundError, match="no bubble recordings"):
        bubbles.single_bubbles(tmp_path)


def test_bubble_track_is_an_airlock_of_recorded_bubbles():
    y, ev, info = bubbles.bubble_track(seed=5, duration_s=30.0, rate_ppm=(30.0, 60.0))
    y2, ev2, _ = bubbles.bubble_track(seed=5, duration_s=30.0, rate_ppm=(30.0, 60.0))
    assert np.array_equal(y, y2) and ev.equals(ev2)
    assert not np.array_equal(y, bubbles.bubble_track(seed=6, duration_s=30.0, rate_ppm=(30.0, 60.0))[0])
    assert y.dtype == np.float32 and len(y) == 30 * SR
    assert info["airlock"] == "recorded bubbles" and info["n_plops"] == len(ev)
    assert 10 <= len(ev) <= 40                           # 30-60 a minute for half a minute
    assert (ev["end"] > ev["start"]).all() and ev["end"].max() <= 30.0
    mask = np.zeros(len(y), dtype=bool)
    for s, e in zip(ev["start"], ev["end"]):
        mask[int(round(s * SR)):int(round(e * SR))] = True
    assert np.mean(np.square(y[mask].astype(np.float64))) == pytest.approx(1.0, rel=1e-3)
    assert np.mean(np.square(y[~mask].astype(np.float64))) < 0.05   # quiet between bubbles
    # the onsets are where the bubbles start: a plain level detector finds each one
    env = np.convolve(np.abs(y), np.ones(80) / 80, mode="same")
    rising = np.flatnonzero((env[1:] > 0.05) & (env[:-1] <= 0.05)) / SR
    assert match_onsets(ev["start"].to_numpy(), rising, collar=0.03) >= 0.9 * len(ev)


def test_bubble_track_rejects_bad_arguments():
    with pytest.raises(ValueError, match="duration_s"):
        bubbles.bubble_track(seed=0, duration_s=0.2)
    with pytest.raises(ValueError, match="rate_ppm"):
        bubbles.bubble_track(seed=0, rate_ppm=(1.0, 500.0))
    with pytest.raises(ValueError, match="16000"):
        bubbles.bubble_track(seed=0, sr=44100)


def test_the_shipped_detector_on_recorded_bubbles():
    """A small sweep through helpers.robustness.sweep: the track's own length is used, and
    the shipped model finds most recorded bubbles in a quiet hum with few false plops."""
    from helpers.models import Detector

    table = bubbles.sweep({"int8": Detector.load(backend="int8")}, snrs_db=[-5.0, 30.0],
                          families=["hum"], seeds=[0, 1], duration_s=20.0, rate_ppm=(20.0, 60.0))
    assert len(table) == 4 and set(table["airlock"]) == {"recorded bubbles"}
    assert (table["duration_s"] == 20.0).all()
    s = robustness.summarize_sweep(table, by=["snr_db"]).set_index("snr_db")
    assert s.loc[30.0, "precision"] > 0.9 and s.loc[30.0, "recall"] > 0.5


def test_a_pool_limits_the_bubbles_drawn():
    cut = bubbles.single_bubbles()
    one = cut[:1]
    y, ev, _ = bubbles.bubble_track(seed=1, duration_s=10.0, rate_ppm=(30.0, 30.0), pool=one, room=False)
    b = one[0].audio
    for s in ev["start"]:                   # every plop is that bubble, at some level
        i = int(round(s * SR))
        seg = y[i:i + len(b)].astype(np.float64)
        assert abs(np.corrcoef(seg, b)[0, 1]) > 0.95   # (onsets are rounded to 0.1 ms)
    with pytest.raises(ValueError, match="no bubbles"):
        bubbles.bubble_track(seed=1, pool=())


def test_written_recordings_go_through_the_command_line(tmp_path):
    """Stereo 44.1 kHz FLAC, WAV and Ogg with same-stem labels: validate finds nothing wrong and
    evaluate scores the shipped model on them (a real run of the command line)."""
    import json
    import subprocess
    import sys

    import soundfile as sf

    from helpers.labels import read_labels

    table = bubbles.write_recordings(tmp_path, seeds=[0, 1, 2], duration_s=8.0, pool=bubbles.single_bubbles()[1::2],
                                     snr_db=(15.0, 20.0))
    assert table["file"].tolist() == ["bubbles_000.flac", "bubbles_001.wav", "bubbles_002.ogg"]
    for row in table.itertuples():
        info = sf.info(tmp_path / row.file)
        assert (info.samplerate, info.channels) == (44100, 2) and info.duration == pytest.approx(8.0, abs=0.01)
        assert len(read_labels(tmp_path / row.file.replace(row.file.split(".")[-1], "txt"))) == row.plops
        assert 15.0 <= row.snr_db <= 20.0
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    v = subprocess.run([sys.executable, "-m", "helpers", "validate", str(tmp_path)], capture_output=True, text=True, env=env)
    assert v.returncode == 0, v.stdout + v.stderr
    r = subprocess.run([sys.executable, "-m", "helpers", "evaluate", "--data", str(tmp_path), "--json", "--quiet"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["recordings"] == 3 and s["plops"] == table["plops"].sum() and s["precision"] > 0.8


def test_bubble_track_events_never_overlap():
    """Bubbles that would run into the next one (burps, fast rates) are cut short."""
    for seed in range(6):
        _, ev, _ = bubbles.bubble_track(seed=seed, duration_s=60.0, rate_ppm=(120.0, 240.0), room=False)
        assert (ev["start"].to_numpy()[1:] >= ev["end"].to_numpy()[:-1]).all()
        assert (ev["end"] - ev["start"] >= bubbles.MIN_BUBBLE_S - 1e-3).all()


def test_write_recordings_checks_everything_before_writing(tmp_path):
    bad = [dict(formats=["mp3"]), dict(families=["kitchen"]), dict(families=[]), dict(snr_db=(20.0, 0.0)),
           dict(seeds=[])]
    for options in bad:
        with pytest.raises(ValueError):
            bubbles.write_recordings(tmp_path / "out", **{"seeds": [0], **options})
    # a seed whose short, slow track holds no bubble is named, and nothing is written
    empty = next(s for s in range(200) if bubbles.bubble_track(seed=s, duration_s=3.0, rate_ppm=(2.0, 2.0))[1].empty)
    with pytest.raises(ValueError, match=f"seed {empty}: .*no bubble"):
        bubbles.write_recordings(tmp_path / "out", seeds=[0, empty], duration_s=3.0, rate_ppm=(2.0, 2.0))
    assert not (tmp_path / "out").exists()


def test_a_sweep_also_scores_a_function_of_the_audio():
    """Any function audio → events stands beside the detectors, on the same mixtures."""
    from helpers.labels import empty_events

    heard = []

    def silent(y):
        heard.append(len(y))
        return empty_events()

    table = bubbles.sweep({"silent": silent}, snrs_db=[10.0], families=["hum", "fan"], seeds=[0],
                          duration_s=10.0, rate_ppm=(60.0, 60.0))
    assert heard == [10 * SR, 10 * SR] and (table["tp"] == 0).all() and (table["fn"] == table["n_ref"]).all()


def test_the_bubbles_split_by_recording_into_training_and_held_out(tmp_path):
    train, held_out = bubbles.split_pool()
    assert {b.source for b in train} == {"sp-bubles_00", "sp-bubles_02", "sp-bubles_04"}
    assert {b.source for b in held_out} == {"sp-bubles_01", "sp-bubles_03", "sp-bubles_05"}
    assert len(train) + len(held_out) == len(bubbles.single_bubbles())
    # one recording saved twice (OGG and WAV) is one recording: it never lands on both sides
    import shutil

    import soundfile as sf

    for path in bubbles.files()[:3]:
        shutil.copy(path, tmp_path / path.name)
    y = load_audio(bubbles.files()[0])
    sf.write(tmp_path / "sp-bubles_00.wav", y, SR)
    train, held_out = bubbles.split_pool(tmp_path)
    assert {b.source for b in train} == {"sp-bubles_00", "sp-bubles_02"}
    assert {b.source for b in held_out} == {"sp-bubles_01"}


def test_training_recordings_draw_from_the_training_half_in_every_family_in_turn(monkeypatch):
    """A spy on the real functions: every track draws from the training half only, and the
    backgrounds rotate through the families; a seed whose short track holds no bubble is
    passed over, not an error."""
    from helpers import synth

    pools, families, seeds = [], [], []
    track, mix = bubbles.bubble_track, robustness.mix

    def spy_track(**kw):
        pools.append({b.source for b in kw["pool"]})
        seeds.append(kw["seed"])
        return track(**kw)

    def spy_mix(*a, **kw):
        families.append(kw["family"])
        return mix(*a, **kw)

    monkeypatch.setattr(bubbles, "bubble_track", spy_track)
    monkeypatch.setattr(robustness, "mix", spy_mix)
    out = bubbles.training_recordings(3, 2.0)       # 2 s: some tracks hold no bubble
    assert len(out) == 3 and all(len(ev) for _, ev in out)
    train, _ = bubbles.split_pool()
    assert all(p == {b.source for b in train} for p in pools)
    assert families == sorted(synth.BACKGROUNDS)[:3]
    assert len(seeds) > 3 and seeds == list(range(seeds[0], seeds[0] + len(seeds)))   # empty ones passed over
    with pytest.raises(ValueError, match="snr_db"):
        bubbles.training_recordings(1, snr_db=(20.0, 0.0))


def test_training_recordings_are_real_bubbles_in_a_background_and_repeatable():
    first = bubbles.training_recordings(2, 10.0)
    again = bubbles.training_recordings(2, 10.0)
    other = bubbles.training_recordings(2, 10.0, seed=1)
    assert len(first) == 2
    for (y, ev), (y2, ev2) in zip(first, again):
        assert len(y) == 10 * SR and len(ev) > 0 and ev["start"].between(0, 10).all()
        np.testing.assert_array_equal(y, y2)
        assert ev.equals(ev2)
    assert not np.array_equal(first[0][0], other[0][0])
    assert bubbles.training_recordings(0) == []
    with pytest.raises(ValueError, match="count"):
        bubbles.training_recordings(-1)


def test_a_sweep_draws_from_its_pool_only():
    with pytest.raises(ValueError, match="no bubbles"):
        bubbles.sweep({"none": lambda y: y[:0]}, pool=(), families=["hum"], seeds=[0], snrs_db=[10.0])


def test_by_package_scores_each_package_alone(monkeypatch):
    """Two packages of the other sources, each in its own tracks (a spy on the real sweep sees
    one package per pool): one row each, with the pitch that tells a big, low bubble
    (funnyboat) from a drop (mate), and scores pooled over that package's tracks only."""
    from helpers.models import Detector

    pool = [b for b in bubbles.single_bubbles(bubbles.FOLDER / "others")
            if bubbles.package(b.source) in ("funnyboat", "mate")]
    pools, real_sweep = [], bubbles.sweep

    def spy(detector, **kwargs):
        pools.append({bubbles.package(b.source) for b in kwargs["pool"]})
        return real_sweep(detector, **kwargs)

    monkeypatch.setattr(bubbles, "sweep", spy)
    det = Detector.load(backend="int8")
    table = bubbles.by_package(det, pool, families=["hum"], seeds=[0], duration_s=20.0)
    assert pools == [{"funnyboat"}, {"mate"}]
    assert table["package"].tolist() == ["funnyboat", "mate"]
    assert table["sounds"].tolist() == [3, 1]
    pitch = table.set_index("package")["pitch_hz"]
    assert pitch["funnyboat"] < 200 < 800 < pitch["mate"]
    alone = real_sweep(det, pool=[b for b in pool if bubbles.package(b.source) == "mate"], snrs_db=[10.0],
                       families=["hum"], seeds=[0], duration_s=20.0)
    assert table.set_index("package").loc["mate", "tp"] == alone["tp"].sum()


def test_in_talk_and_music_scores_tracks_of_the_pool_in_the_recorded_eval_clips():
    """The pool's sounds in tracks of seeds 0, 1, … mixed into the recorded eval talk and music:
    backgrounds.scores_in on exactly those tracks."""
    from helpers import backgrounds

    class Energy:   # a plain energy detector: a run of loud 10 ms frames is an event
        def detect(self, y):
            frames = np.sqrt(np.mean(y[: len(y) // 160 * 160].reshape(-1, 160) ** 2, axis=1))
            loud = frames > 4 * np.median(frames)
            starts = np.flatnonzero(loud & ~np.r_[False, loud[:-1]])
            return pd.DataFrame({"start": starts * 0.01, "end": starts * 0.01 + 0.05})

    pool = [b for b in bubbles.single_bubbles(bubbles.FOLDER / "others") if bubbles.package(b.source) == "mate"]
    table = bubbles.in_talk_and_music(Energy(), pool, tracks=2, snr_db=(10.0,), duration_s=10.0)
    assert list(zip(table["family"], table["snr_db"])) == [("speech", 10.0), ("instruments", 10.0)]
    tracks = [bubbles.bubble_track(seed=s, duration_s=10.0, pool=pool) for s in range(2)]
    pd.testing.assert_frame_equal(table, backgrounds.scores_in(Energy(), tracks, snr_db=(10.0,)))
