"""Tests of the command line, ``python -m helpers <command>``: real subprocesses (and
``helpers.cli.main`` in-process where only the exit status and output matter), real files,
and a local HTTP server standing in for YouTube."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers import synth
from helpers.cli import main
from helpers.config import REPO_ROOT
from helpers.labels import read_labels


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "helpers", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def write_wav(path: Path, seconds: float = 2.0, sr: int = 16000) -> None:
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), sr, subtype="PCM_16")


# ----------------------------------------------------------------------------- synth


def test_synth_writes_the_data_set(tmp_path):
    out = tmp_path / "synth"
    r = run("synth", "--out", str(out), "--recordings", "3", "--duration", "4", "--seed", "1",
            "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # --quiet: no progress bar
    names = sorted(p.name for p in out.iterdir())
    assert names == ["manifest.csv"] + [f"synth_{i:03d}{e}" for i in range(3) for e in (".flac", ".txt")]
    n_plops = 0
    for i in range(3):
        info = sf.info(str(out / f"synth_{i:03d}.flac"))
        assert info.frames == int(round(4 * info.samplerate))
        n_plops += len(read_labels(out / f"synth_{i:03d}.txt"))
    first = r.stdout.splitlines()[0]
    assert first.startswith(f"wrote 3 recordings (0.2 min, {n_plops} plops, ")
    assert f"to {out} in " in first
    assert "split" in r.stdout and "train" in r.stdout
    # the command line makes exactly what the function makes, in another process
    same = tmp_path / "same"
    synth.make_dataset(same, recordings=3, duration_s=4, seed=1, workers=1, progress=False)
    for name in names:
        assert (out / name).read_bytes() == (same / name).read_bytes(), name


def test_synth_rejects_bad_arguments(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "x"), "--recordings", "0", "--quiet"]) == 2
    assert capsys.readouterr().err.startswith("error: recordings must be >= 1")
    assert main(["synth", "--seed", "3", "--quiet"]) == 2  # the embedded sets have the profile's seed
    assert "--seed needs --out" in capsys.readouterr().err
    assert main(["synth", "--duration", "5", "--seed", "3", "--quiet"]) == 2
    assert "--duration, --seed need --out" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path / "y"), "--profile", "quick", "--quiet"]) == 2
    assert "--profile makes the notebooks' sets" in capsys.readouterr().err


def test_synth_without_out_makes_the_notebooks_cached_sets(tmp_path):
    """What Binder's postBuild runs: the profile's main and extra sets where the notebooks
    look for them, and a second run finds them cached instead of making them again."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "AED_DATA_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "helpers", "synth", "--profile", "quick", "--quiet", "--workers", "1"]
    r = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "main set (quick profile): 12 recordings" in r.stdout
    assert "extra training set (quick profile): 6 recordings" in r.stdout
    manifest = tmp_path / "synthetic-quick" / "manifest.csv"
    extra = tmp_path / "synthetic-train-quick" / "manifest.csv"
    assert manifest.exists() and extra.exists()
    before = manifest.stat().st_mtime_ns, extra.stat().st_mtime_ns
    r = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (manifest.stat().st_mtime_ns, extra.stat().st_mtime_ns) == before


# ----------------------------------------------------------------------------- validate


@pytest.fixture()
def good_folder(tmp_path):
    d = tmp_path / "good"
    d.mkdir()
    write_wav(d / "brew1.wav")
    (d / "brew1.txt").write_text("0.5\t0.6\tp\n1.0\t1.1\tp\n")
    return d


@pytest.fixture()
def bad_folder(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    write_wav(d / "brew1.wav")
    (d / "brew1.txt").write_text("0.5\t0.6\tp\n")
    write_wav(d / "brew2.wav")  # no labels
    write_wav(d / "brew3.wav", seconds=1.0)
    (d / "brew3.txt").write_text("0.5\t0.6\tp\n1.5\t1.6\tp\n")  # past the end
    return d


def test_validate_good_folder(good_folder):
    r = run("validate", str(good_folder))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{good_folder}: no problems found"


def test_validate_bad_folder(bad_folder):
    r = run("validate", str(bad_folder))
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert any("brew2" in line and "error" in line and "no labels" in line for line in lines)
    assert any("brew3" in line and "labels past the end" in line for line in lines)
    assert not any("brew1" in line for line in lines)


def test_validate_warnings_only_exit_zero(tmp_path, capsys):
    write_wav(tmp_path / "a.wav")
    (tmp_path / "a.txt").write_text("0.5\t0.5\tp\n")  # a point label: a warning
    assert main(["validate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "warning" in out and "zero-length events" in out


def test_validate_several_folders(good_folder, bad_folder, tmp_path, capsys):
    assert main(["validate", str(good_folder), str(bad_folder)]) == 1
    out = capsys.readouterr().out
    assert f"{good_folder}: no problems found" in out and "no labels" in out
    # a folder that does not exist is reported and the others still checked
    assert main(["validate", str(tmp_path / "nowhere"), str(good_folder)]) == 1
    captured = capsys.readouterr()
    assert "nowhere" in captured.err and "no problems found" in captured.out


def test_validate_folder_without_audio(tmp_path, capsys):
    """A folder with no recordings at all is a mistake (wrong folder), not 'no problems'."""
    (tmp_path / "brew1.txt").write_text("0.5\t0.6\tp\n")
    assert main(["validate", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "no audio files found" in captured.err and "no problems" not in captured.out


# ----------------------------------------------------------------------------- download


@pytest.fixture(scope="module")
def server(tmp_path_factory, file_server):
    """Base URL of a local server with ``tone.wav`` (3 s, 16 kHz, 440 Hz)."""
    root = tmp_path_factory.mktemp("www")
    write_wav(root / "tone.wav", seconds=3.0)
    with file_server(root) as url:
        yield url


def test_download_good_and_missing_url(server, tmp_path):
    out = tmp_path / "yt"
    good, missing = f"{server}/tone.wav", f"{server}/missing.wav"
    r = run("download", "--out", str(out), "--format", "wav", "--quiet", missing, good)
    assert r.returncode == 1
    # the missing one is named on stderr with the reason, the good one still downloaded
    assert f"{missing}: " in r.stderr and "404" in r.stderr
    assert "1 of 2 available" in r.stderr
    assert good not in r.stderr.replace(missing, "")
    assert sorted(p.name for p in out.iterdir()) == ["tone.wav"]
    y, sr = sf.read(out / "tone.wav")
    assert len(y) / sr == pytest.approx(3.0, abs=0.05)
    spectrum = np.abs(np.fft.rfft(y if y.ndim == 1 else y.mean(axis=1)))
    assert np.fft.rfftfreq(len(y), 1 / sr)[np.argmax(spectrum)] == pytest.approx(440, abs=2)
    table = r.stdout
    assert "downloaded" in table and "failed" in table

    # again: the file is cached, everything available, exit 0
    r = run("download", "--out", str(out), "--format", "wav", "--quiet", good)
    assert r.returncode == 0, r.stderr
    assert "cached" in r.stdout and "1 of 1 available" in r.stderr


def test_download_section(server, tmp_path, capsys):
    out = tmp_path / "yt"
    status = main(["download", "--out", str(out), "--format", "wav", "--quiet",
                   "--start", "1", "--end", "2.5", f"{server}/tone.wav"])
    assert status == 0, capsys.readouterr().err
    y, sr = sf.read(out / "tone.wav")
    assert len(y) / sr == pytest.approx(1.5, abs=0.1)


# ----------------------------------------------------------------------------- autolabel


def test_autolabel_command_labels_good_files_and_reports_bad_ones(tmp_path):
    """One line per file on stdout, the bad file on stderr, label files written, exit 1."""
    rec = synth.synthesize_recording(seed=11, duration_s=15.0, sr=16000, snr_db=25.0)
    audio = rec.audio if rec.audio.ndim == 1 else rec.audio.mean(axis=0)
    sf.write(tmp_path / "brew.wav", audio, 16000)
    (tmp_path / "broken.flac").write_bytes(b"fLaC not really")
    r = run("autolabel", str(tmp_path), "--out", str(tmp_path / "proposed"), "--quiet")
    assert r.returncode == 1
    assert re.search(r"brew\.wav: \d+ plops, [\d.]+ per minute", r.stdout)
    assert "broken.flac" in r.stderr
    proposed = read_labels(tmp_path / "proposed" / "brew.txt")
    assert len(proposed) > 0 and set(proposed["label"]) == {"p"}
    assert not (tmp_path / "proposed" / "broken.txt").exists()


def test_autolabel_rerun_into_the_recordings_folder_needs_overwrite(tmp_path):
    """Labels written beside the recordings are kept on a rerun (they may have been corrected
    by hand since) unless --overwrite asks to replace them."""
    rec = synth.synthesize_recording(seed=11, duration_s=15.0, sr=16000, snr_db=25.0)
    sf.write(tmp_path / "brew.wav", rec.audio, 16000)
    assert run("autolabel", str(tmp_path / "brew.wav"), "--out", str(tmp_path), "--quiet").returncode == 0
    (tmp_path / "brew.txt").write_text("1.000000\t1.100000\tp\n")         # corrected by hand
    kept = run("autolabel", str(tmp_path / "brew.wav"), "--out", str(tmp_path), "--quiet")
    assert kept.returncode == 1 and "--overwrite" in kept.stderr
    assert (tmp_path / "brew.txt").read_text() == "1.000000\t1.100000\tp\n"
    again = run("autolabel", str(tmp_path / "brew.wav"), "--out", str(tmp_path), "--quiet", "--overwrite")
    assert again.returncode == 0, again.stderr
    assert len(read_labels(tmp_path / "brew.txt")) > 1
