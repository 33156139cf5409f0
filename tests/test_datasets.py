"""Tests of helpers.datasets: splits, checking a folder of own recordings, the synthetic cache
and loading. Real files in ``tmp_path``, no mocks."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers import datasets, synth
from helpers.config import SR, Profile
from helpers.datasets import (
    MANIFEST_COLUMNS,
    SPLITS,
    load_recording,
    own_recordings,
    read_manifest,
    split_by_recording,
    validate_recordings,
)

# ----------------------------------------------------------------------------- splits


def test_split_docstring_example_and_determinism():
    assert split_by_recording(["a", "b", "c", "d", "e"]) == ["val", "train", "train", "train", "test"]
    names = [f"rec{i}" for i in range(40)]
    assert split_by_recording(names, seed=3) == split_by_recording(names, seed=3)


def test_split_does_not_depend_on_the_order_given():
    names = [f"brew_{i:02d}" for i in range(25)]
    ref = dict(zip(names, split_by_recording(names, seed=1)))
    for k in range(5):
        shuffled = names[:]
        random.Random(k).shuffle(shuffled)
        got = dict(zip(shuffled, split_by_recording(pd.Series(shuffled), seed=1)))
        assert got == ref


def test_split_sizes():
    for n in range(3, 60):
        out = split_by_recording([f"r{i}" for i in range(n)])
        assert len(out) == n and set(out) <= set(SPLITS)
        assert out.count("val") >= 1 and out.count("test") >= 1 and out.count("train") >= 1
        assert abs(out.count("test") - 0.2 * n) <= 1 and abs(out.count("val") - 0.2 * n) <= 1
    out = split_by_recording([f"r{i}" for i in range(10)])
    assert (out.count("train"), out.count("val"), out.count("test")) == (6, 2, 2)
    assert split_by_recording(["only"]) == ["train"]
    assert split_by_recording([]) == []
    # a fraction of zero means none, even with many recordings
    assert set(split_by_recording([f"r{i}" for i in range(10)], fractions=(1.0, 0.0, 0.0))) == {"train"}


def test_split_depends_on_the_seed_and_is_mostly_stable_when_adding():
    names = [f"r{i}" for i in range(30)]
    assert split_by_recording(names, seed=0) != split_by_recording(names, seed=1)
    before = dict(zip(names, split_by_recording(names)))
    after = dict(zip(names + ["new"], split_by_recording(names + ["new"])))
    assert sum(before[n] == after[n] for n in names) >= 27


def test_split_errors():
    with pytest.raises(ValueError, match="unique"):
        split_by_recording(["a", "b", "a"])
    with pytest.raises(ValueError, match="fractions"):
        split_by_recording(["a", "b", "c"], fractions=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="fractions"):
        split_by_recording(["a", "b", "c"], fractions=(1.2, -0.1, -0.1))


# ----------------------------------------------------------------------------- own recordings

DUR = 2.0


def write_wav(path, seconds=DUR, sr=SR, channels=1):
    t = np.arange(int(seconds * sr)) / sr
    x = 0.1 * np.sin(2 * np.pi * 440 * t)
    sf.write(path, np.stack([x] * channels, axis=1) if channels > 1 else x, sr, subtype="PCM_16")


def write_labels(path, text):
    path.write_text(text, encoding="utf-8")


@pytest.fixture()
def own_folder(tmp_path):
    """One recording per problem (and two good ones)."""
    d = tmp_path / "recordings"
    d.mkdir()
    write_wav(d / "good.wav")
    write_labels(d / "good.txt", "0.5\t0.6\tp\n1.2\t1.3\tp\n")
    write_wav(d / "good2.flac", sr=44100, channels=2)
    write_labels(d / "good2.txt", "0.25\t0.35\n")  # no label text: still a plop
    write_wav(d / "nolabels.wav")
    write_wav(d / "past.wav")
    write_labels(d / "past.txt", "0.5\t0.6\tp\n1.95\t2.4\tp\n3.0\t3.1\tp\n")
    write_wav(d / "overlap.wav")
    # the long first event covers the next two: two overlaps, not one
    write_labels(d / "overlap.txt", "0.1\t1.5\tp\n0.3\t0.4\tp\n0.6\t0.7\tp\n1.6\t1.7\tp\n")
    write_wav(d / "point.wav")
    write_labels(d / "point.txt", "0.5\t0.5\tp\n1.0\t1.1\tp\n")
    write_wav(d / "empty.wav")
    write_labels(d / "empty.txt", "")
    (d / "corrupt.wav").write_bytes(b"RIFF" + np.random.default_rng(0).bytes(2000))
    write_labels(d / "corrupt.txt", "0.5\t0.6\tp\n")
    write_wav(d / "badlabels.wav")
    write_labels(d / "badlabels.txt", "0.5\t0.6\tp\nzero point five\t0.7\tp\n")
    write_wav(d / "latin1.wav")
    (d / "latin1.txt").write_bytes("0.5\t0.6\tplöp\n".encode("latin-1"))
    write_wav(d / "dup.flac")
    write_wav(d / "dup.wav")
    write_labels(d / "dup.txt", "0.5\t0.6\tp\n")
    write_wav(d / "door.wav")
    write_labels(d / "door.txt", "0.5\t0.6\tPlop\n0.8\t0.9\tdoor\n1.2\t1.3\tdoor\n1.5\t1.6\tbubble\n")
    import soundfile as sf
    sf.write(d / "nosamples.wav", np.zeros(0, np.int16), 16000, subtype="PCM_16")
    write_labels(d / "nosamples.txt", "0.5\t0.6\tp\n")
    (d / "notes.md").write_text("not audio")
    return d


EXPECTED = {
    ("nolabels", "error", "no labels"),
    ("past", "error", "labels past the end"),
    ("overlap", "warning", "overlapping events"),
    ("point", "warning", "zero-length events"),
    ("empty", "warning", "no events"),
    ("corrupt", "error", "unreadable audio"),
    ("badlabels", "error", "unreadable labels"),
    ("latin1", "error", "unreadable labels"),
    ("dup", "error", "duplicate name"),
    ("door", "warning", "labels that are not plops?"),
    ("nosamples", "error", "unreadable audio"),
}


def test_validate_reports_each_problem(own_folder):
    report = validate_recordings(own_folder)
    assert list(report.columns) == ["recording", "path", "severity", "problem", "detail"]
    got = set(zip(report["recording"], report["severity"], report["problem"]))
    assert got == EXPECTED
    assert len(report) == len(EXPECTED)  # one row per problem, nothing twice
    detail = dict(zip(report["problem"], report["detail"]))
    assert "2 events end after the audio (2.00 s)" in detail["labels past the end"]
    assert "first at 1.95" in detail["labels past the end"]
    assert detail["overlapping events"].startswith("2 events")
    assert "0.300" in detail["overlapping events"]
    assert "1 point labels" in detail["zero-length events"]
    assert "nolabels.txt not found" in detail["no labels"]
    assert "corrupt.wav" in report.loc[report["recording"] == "corrupt", "detail"].iloc[0]
    assert "no audio samples" in report.loc[report["recording"] == "nosamples", "detail"].iloc[0]
    # "Plop" and "bubble" say plop; the two doors are named, and counted as plops all the same
    assert detail["labels that are not plops?"].startswith("2 labels have another text ('door' ×2)")
    assert "line 2" in report.loc[report["recording"] == "badlabels", "detail"].iloc[0]
    assert "UTF-8" in report.loc[report["recording"] == "latin1", "detail"].iloc[0]
    # the path names the file; the duplicate reported is the second one found
    paths = dict(zip(report["recording"], report["path"]))
    assert paths["corrupt"] == str(own_folder / "corrupt.wav")
    assert paths["dup"] == str(own_folder / "dup.wav")


def test_validate_clean_folder_and_missing_folder(tmp_path):
    write_wav(tmp_path / "a.wav")
    write_labels(tmp_path / "a.txt", "0.5\t0.6\tp\n")
    assert validate_recordings(tmp_path).empty
    with pytest.raises(FileNotFoundError):
        validate_recordings(tmp_path / "nowhere")


def test_overlap_tolerance(tmp_path):
    write_wav(tmp_path / "a.wav")
    write_labels(tmp_path / "a.txt", "0.5\t0.61\tp\n0.6\t0.7\tp\n")
    assert list(validate_recordings(tmp_path)["problem"]) == ["overlapping events"]
    assert validate_recordings(tmp_path, overlap_tolerance_s=0.02).empty


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program")
def test_recording_without_declared_duration(tmp_path):
    """A streamed WebM (what a browser's MediaRecorder saves) has no duration in its header;
    the duration must come from decoding, not crash the check."""
    write_wav(tmp_path / "src.wav", seconds=DUR)
    d = tmp_path / "rec"
    d.mkdir()
    with open(d / "browser.webm", "wb") as out:
        subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(tmp_path / "src.wav"),
                        "-f", "webm", "pipe:"], stdout=out, check=True)
    assert datasets.audio_info(d / "browser.webm")["duration_s"] is None  # the case tested
    write_labels(d / "browser.txt", "0.5\t0.6\tp\n1.9\t2.5\tp\n")
    report = validate_recordings(d)
    assert list(report["problem"]) == ["labels past the end"]
    write_labels(d / "browser.txt", "0.5\t0.6\tp\n")
    assert validate_recordings(d).empty
    m = own_recordings(d)
    assert m["duration_s"].iloc[0] == pytest.approx(DUR, abs=0.05)


def test_own_recordings_keeps_the_usable_ones(own_folder, capsys):
    m = own_recordings(own_folder)
    assert list(m.columns) == list(MANIFEST_COLUMNS)
    # errors are left out, warnings kept; of two files with one stem the first is kept
    assert sorted(m["recording"]) == ["door", "dup", "empty", "good", "good2", "overlap", "point"]
    assert m.set_index("recording").loc["dup", "path"] == str(own_folder / "dup.flac")
    assert (m["source"] == "own").all()
    assert m["duration_s"].tolist() == [DUR] * len(m)
    assert all(lab == str(own_folder / f"{r}.txt") for r, lab in zip(m["recording"], m["labels"]))
    assert list(m["split"]) == split_by_recording(m["recording"])
    err = capsys.readouterr().err
    for name in ("nolabels.wav", "past.wav", "corrupt.wav", "badlabels.wav", "dup.wav", "nosamples.wav"):
        assert f"skipping {own_folder / name}" in err, name
    assert "good.wav" not in err
    # kept, but the labels that do not say plop are pointed out: they are trained on as plops
    assert f"warning: {own_folder / 'door.wav'}: 2 labels have another text" in err


def test_own_recordings_without_labels(own_folder):
    m = own_recordings(own_folder, require_labels=False, seed=3)
    labels = dict(zip(m["recording"], m["labels"]))
    assert labels["nolabels"] == ""
    assert "past" not in labels and "corrupt" not in labels  # other errors still skip
    assert labels["good"] == str(own_folder / "good.txt")
    assert list(m["split"]) == split_by_recording(m["recording"], seed=3)


def test_own_recordings_of_an_empty_folder(tmp_path):
    m = own_recordings(tmp_path)
    assert m.empty and list(m.columns) == list(MANIFEST_COLUMNS)


# ----------------------------------------------------------------------------- loading


def test_load_recording_gives_mono_float32_at_16k(tmp_path):
    sr = 44100
    t = np.arange(int(1.5 * sr)) / sr
    left, right = 0.4 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "st.wav", np.stack([left, right], axis=1), sr, subtype="FLOAT")
    write_labels(tmp_path / "st.txt", "0.2\t0.3\tp\n0.1\t0.15\n")
    row = pd.Series({"path": str(tmp_path / "st.wav"), "labels": str(tmp_path / "st.txt")})
    y, events = load_recording(row)
    assert y.dtype == np.float32 and y.ndim == 1
    assert len(y) == pytest.approx(1.5 * SR, abs=2)
    # mono is the mean of the channels: a 0.3 amplitude sine, RMS 0.3/sqrt(2)
    assert np.sqrt(np.mean(y[1000:-1000] ** 2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.01)
    assert events["start"].tolist() == [0.1, 0.2] and events["end"].tolist() == [0.15, 0.3]
    assert (events["label"] == "p").all()
    # a dict works, and no labels means no events
    y2, ev2 = load_recording({"path": str(tmp_path / "st.wav"), "labels": ""})
    np.testing.assert_array_equal(y2, y)
    assert ev2.empty and list(ev2.columns) == ["start", "end", "label"]
    y8, _ = load_recording(row, sr=8000)
    assert len(y8) == pytest.approx(1.5 * 8000, abs=2)


# ----------------------------------------------------------------------------- the synthetic cache

TINY = Profile("tiny", synth_recordings=3, synth_duration_s=2.0, synth_seed=5)


def mtimes(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.is_file()}


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AED_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_synthetic_generates_once_then_reuses_the_cache(data_dir):
    m = datasets.synthetic(profile=TINY, progress=False)
    folder = data_dir / "synthetic-tiny"
    assert TINY.synth_dir == folder
    assert len(m) == 3 and tuple(m.columns[:6]) == MANIFEST_COLUMNS
    assert all(os.path.isabs(p) and os.path.exists(p) for p in list(m["path"]) + list(m["labels"]))
    assert all(os.path.dirname(p) == str(folder) for p in m["path"])
    before = mtimes(folder)
    flac_bytes = (folder / "synth_001.flac").read_bytes()

    again = datasets.synthetic(profile=TINY, progress=False)
    pd.testing.assert_frame_equal(again, m)
    assert mtimes(folder) == before  # nothing written

    (folder / "synth_001.flac").unlink()
    third = datasets.synthetic(profile=TINY, progress=False)
    assert (folder / "synth_001.flac").read_bytes() == flac_bytes  # regenerated, same bytes
    assert mtimes(folder)["manifest.csv"] != before["manifest.csv"]
    pd.testing.assert_frame_equal(third, m)

    (folder / "synth_002.txt").unlink()  # a missing label file counts too
    datasets.synthetic(profile=TINY, progress=False)
    assert (folder / "synth_002.txt").exists()


def test_synthetic_regenerates_for_other_settings(data_dir):
    folder = data_dir / "set"
    m1 = datasets.synthetic(profile=TINY, folder=folder, progress=False)
    other = Profile("tiny", synth_recordings=2, synth_duration_s=2.0, synth_seed=6)
    m2 = datasets.synthetic(profile=other, folder=folder, progress=False)
    assert len(m2) == 2
    assert (m2["config"] == synth.config_key(recordings=2, duration_s=2.0, seed=6)).all()
    assert m2["config"].iloc[0] != m1["config"].iloc[0]


def test_synthetic_cache_key_that_looks_like_a_number(data_dir):
    """Regression: a cache key such as 52235e606084 was read back as the float inf, so the
    set was regenerated on every call. Find a seed whose key looks like a number."""
    import re

    seed = next(s for s in range(100_000)
                if re.fullmatch(r"[0-9]+(e[0-9]+)?", synth.config_key(recordings=1, duration_s=3.0, seed=s)))
    key = synth.config_key(recordings=1, duration_s=3.0, seed=seed)
    prof = Profile("numkey", synth_recordings=1, synth_duration_s=3.0, synth_seed=seed)
    m = datasets.synthetic(profile=prof, progress=False)
    assert m["config"].iloc[0] == key
    before = mtimes(prof.synth_dir)
    datasets.synthetic(profile=prof, progress=False)
    assert mtimes(prof.synth_dir) == before


def test_synthetic_by_profile_name(data_dir, monkeypatch):
    """The profile comes from AED_PROFILE; an unknown one is a clear error."""
    monkeypatch.setenv("AED_PROFILE", "nonsense")
    with pytest.raises(ValueError, match="AED_PROFILE"):
        datasets.synthetic(progress=False)


def test_extra_sets_have_their_own_folders_splits_and_recordings(data_dir):
    """The profile's extra training, validation and test sets: each in its own folder, every
    recording in its role's split, none of them a recording of another set, cached."""
    from dataclasses import replace

    prof = replace(TINY, train_extra_recordings=2, train_extra_duration_s=2.0,
                   val_extra_recordings=2, val_extra_duration_s=2.0,
                   test_extra_recordings=3, test_extra_duration_s=2.0)
    main = datasets.synthetic(profile=prof, progress=False)
    sets = {"train": datasets.synthetic_training_extra(profile=prof, progress=False),
            "val": datasets.synthetic_validation_extra(profile=prof, progress=False),
            "test": datasets.synthetic_test_extra(profile=prof, progress=False)}
    for role, m in sets.items():
        folder = data_dir / f"synthetic-{role}-tiny"
        assert prof.extra_dir(role) == folder
        assert len(m) == getattr(prof, f"{role}_extra_recordings")
        assert set(m["split"]) == {role}
        assert all(os.path.dirname(p) == str(folder) for p in m["path"])
        assert all(name.startswith(f"{role}_") for name in m["recording"])
    audio = [load_recording(r)[0] for m in (main, *sets.values()) for _, r in m.iterrows()]
    firsts = {a[:4000].tobytes() for a in audio}
    assert len(firsts) == len(audio), "an extra set repeats a recording of another set"
    before = mtimes(data_dir / "synthetic-val-tiny")
    datasets.synthetic_validation_extra(profile=prof, progress=False)
    assert mtimes(data_dir / "synthetic-val-tiny") == before
    empty = datasets.synthetic_test_extra(profile=TINY, progress=False)   # none in this profile
    assert len(empty) == 0 and tuple(empty.columns[:6]) == MANIFEST_COLUMNS


def test_load_recording_of_a_synthetic_row(data_dir):
    m = datasets.synthetic(profile=TINY, progress=False)
    for _, row in m.iterrows():
        y, events = load_recording(row)
        assert y.dtype == np.float32 and y.ndim == 1
        assert len(y) == pytest.approx(row["duration_s"] * SR, abs=2)
        assert len(events) == row["n_plops"]
    ys, evs = datasets.load_all(m)
    assert len(ys) == len(evs) == len(m)


def test_recordings_read_each_file_when_asked(data_dir):
    """Recordings gives what load_recording gives, in the manifest's order, on every pass,
    and reads the file again each time (a file changed on disk is read as it is now)."""
    m = datasets.synthetic(profile=TINY, progress=False)
    part = m.iloc[[2, 0]]                       # any rows, any index
    recs = datasets.Recordings(part)
    assert len(recs) == 2
    for got, (_, row) in zip(recs, part.iterrows()):
        y, ev = load_recording(row)
        np.testing.assert_array_equal(got[0], y)
        pd.testing.assert_frame_equal(got[1], ev)
    first, second = list(recs), list(recs)
    assert [len(y) for y, _ in first] == [len(y) for y, _ in second]
    np.testing.assert_array_equal(recs[-1][0], recs[1][0])
    with pytest.raises(IndexError):
        recs[2]
    Path(part["labels"].iloc[0]).write_text("0.5\t0.6\tp\n")
    assert recs[0][1]["start"].tolist() == [0.5]


def test_read_manifest_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m helpers synth"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.csv").write_text("recording,path\nx,x.wav\n")
    with pytest.raises(ValueError, match="missing columns"):
        read_manifest(tmp_path)


def test_read_manifest_keeps_names_as_text(tmp_path):
    (tmp_path / "manifest.csv").write_text(
        "recording,path,labels,duration_s,source,split\n007,007.wav,,2.0,own,train\n")
    m = read_manifest(tmp_path)
    assert m["recording"].tolist() == ["007"]
    assert m["labels"].tolist() == [""]
    assert m["path"].tolist() == [str(tmp_path / "007.wav")]
