"""Tests of helpers.youtube against a local HTTP server (no YouTube, no mocks).

yt-dlp's generic extractor treats a URL served as ``audio/*`` as direct media, so a
WAV file on a local ``ThreadingHTTPServer`` goes through the same code path as a
YouTube video from the format choice on: real yt-dlp, real ffmpeg section cutting
and audio extraction. The server honours HTTP Range requests, which ffmpeg uses to
seek to the start of a section.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers import youtube

SR = 16_000
DURATION_S = 20.0


def tone_frequency(t: np.ndarray) -> np.ndarray:
    """The test signal's frequency at time ``t``: 300 Hz, +100 Hz every second."""
    return 300.0 + 100.0 * np.floor(t)


def make_test_wav(path: Path) -> None:
    t = np.arange(int(DURATION_S * SR)) / SR
    phase = 2 * np.pi * np.cumsum(tone_frequency(t)) / SR
    sf.write(path, 0.5 * np.sin(phase), SR, subtype="PCM_16")


def dominant_frequency(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spectrum)])


@pytest.fixture(scope="module")
def server(tmp_path_factory, file_server):
    """Base URL of a local server whose folder holds ``tone.wav`` (20 s, rising pitch)."""
    root = tmp_path_factory.mktemp("www")
    make_test_wav(root / "tone.wav")
    with file_server(root) as url:
        yield url


@pytest.fixture()
def out_dir(tmp_path):
    return tmp_path / "youtube"


def test_full_download(server, out_dir):
    # default section 0-120 s on a 20 s file: clamped to the whole file
    path = youtube.download(f"{server}/tone.wav", out_dir=out_dir)
    assert path == out_dir / "tone.opus"
    assert sorted(p.name for p in out_dir.iterdir()) == ["tone.opus"]
    info = sf.info(str(path))
    assert info.duration == pytest.approx(DURATION_S, abs=0.1)


def test_whole_file_as_wav_without_section(server, out_dir):
    path = youtube.download(f"{server}/tone.wav", out_dir=out_dir, end_s=None,
                            audio_format="wav", name="whole")
    assert path == out_dir / "whole.wav"
    x, sr = sf.read(path)
    assert len(x) / sr == pytest.approx(DURATION_S, abs=0.05)


def test_section_has_right_length_and_content(server, out_dir):
    path = youtube.download(f"{server}/tone.wav", out_dir=out_dir, start_s=5, end_s=12)
    x, sr = sf.read(path)
    if x.ndim > 1:
        x = x.mean(axis=1)
    assert len(x) / sr == pytest.approx(7.0, abs=0.5)
    # 5-12 s of the source: 800 Hz at the start, 1400 Hz at the end
    first = x[int(0.2 * sr):int(0.8 * sr)]
    last = x[-int(0.8 * sr):-int(0.2 * sr)]
    assert dominant_frequency(first, sr) == pytest.approx(800, abs=15)
    assert dominant_frequency(last, sr) == pytest.approx(1400, abs=15)


def test_catalogue_skips_failures_and_caches(server, out_dir, tmp_path):
    csv = tmp_path / "cat.csv"
    csv.write_text(
        "id,start_s,end_s,notes,url\n"
        f"good,2,6,tone,{server}/tone.wav\n"
        f"gone,0,10,missing file,{server}/missing.wav\n"
    )
    report = youtube.download_catalogue(csv, out_dir=out_dir, progress=False)
    assert list(report.columns) == ["id", "status", "path", "error", "duration_s"]
    good, gone = report.set_index("id").loc["good"], report.set_index("id").loc["gone"]
    assert good.status == "downloaded"
    assert Path(good.path) == out_dir / "good.opus"
    assert good.duration_s == pytest.approx(4.0, abs=0.5)
    assert gone.status == "failed"
    assert "404" in gone.error
    assert gone.path is None
    # no partial files or temporary folders left behind
    assert sorted(p.name for p in out_dir.iterdir()) == ["good.opus"]

    # second run: the good file is reused without downloading, the bad one still fails
    mtime = (out_dir / "good.opus").stat().st_mtime_ns
    again = youtube.download_catalogue(csv, out_dir=out_dir, progress=False).set_index("id")
    assert again.loc["good", "status"] == "cached"
    assert again.loc["gone", "status"] == "failed"
    assert (out_dir / "good.opus").stat().st_mtime_ns == mtime


def test_download_cached_and_overwrite(server, out_dir):
    url = f"{server}/tone.wav"
    first = youtube.download(url, out_dir=out_dir, start_s=0, end_s=3)
    first.write_bytes(b"marker")  # would not survive a real download
    assert youtube.download(url, out_dir=out_dir, start_s=0, end_s=3) == first
    assert first.read_bytes() == b"marker"
    again = youtube.download(url, out_dir=out_dir, start_s=0, end_s=3, overwrite=True)
    assert again == first
    assert sf.info(str(again)).duration == pytest.approx(3.0, abs=0.5)


def test_download_error_is_clear(server, out_dir):
    with pytest.raises(youtube.DownloadError, match=r"missing.*404.*Check your connection"):
        youtube.download(f"{server}/missing.wav", out_dir=out_dir)
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_imageio_ffmpeg_fallback(server, out_dir, monkeypatch):
    # without a system ffmpeg on PATH, the imageio-ffmpeg build (no ffprobe) is used
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent.parent / "no-such-dir"))
    location = youtube.ffmpeg_location()
    assert location is not None and shutil.which("ffmpeg") is None
    assert "imageio_ffmpeg" in location
    path = youtube.download(f"{server}/tone.wav", out_dir=out_dir, start_s=1, end_s=4)
    assert sf.info(str(path)).duration == pytest.approx(3.0, abs=0.5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,start_s\nabc,0\n", r"missing column.*end_s"),
        ("id,start_s,end_s\n,0,10\n", r"line 2: empty id"),
        ("id,start_s,end_s\nabc,0,10\nxyz,20,10\n", r"line 3 \(id 'xyz'\).*0 <= start_s < end_s"),
        ("id,start_s,end_s\nabc,-1,10\n", r"line 2 .*invalid"),
        ("id,start_s,end_s\nabc,0,ten\n", r"line 2 .*not numbers"),
        ("id,start_s,end_s\nabc,0,10\nabc,0,10\n", r"line 3: id 'abc' appears twice"),
    ],
)
def test_read_catalogue_errors(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        youtube.read_catalogue(path)


def test_read_catalogue_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No catalogue"):
        youtube.read_catalogue(tmp_path / "nope.csv")


def test_shipped_catalogue():
    cat = youtube.read_catalogue()
    assert list(cat.columns) == ["id", "start_s", "end_s", "notes"]
    assert len(cat) == 10 and cat["id"].is_unique
    assert {"by0e-EkAsOE", "q2srYoC3FOo", "ZPmEByu-4xQ", "WHlSNkq29k4", "51ytpDZj8v4",
            "gQFo3Lg2MAc", "po2u_qI7-us", "f3bLQLT48Yc", "MN0Mg1uyznU", "0_wDLNikm2M"} == set(cat["id"])
    assert all(len(i) == 11 for i in cat["id"])
    assert cat.set_index("id").loc["ZPmEByu-4xQ", "end_s"] == 60
    assert (cat["end_s"] <= 120).all() and (cat["start_s"] == 0).all()


def test_js_runtime_points_to_deno():
    opts = youtube.js_runtime_options()
    path = opts["js_runtimes"]["deno"]["path"]
    assert os.path.isfile(path) and os.access(path, os.X_OK)
    # yt-dlp itself accepts the option and finds a supported deno there
    from yt_dlp.utils._jsruntime import DenoJsRuntime

    info = DenoJsRuntime(path=path).info
    assert info is not None and info.supported


def test_search_table_filters_by_duration():
    entries = [
        {"id": "a" * 11, "title": "short", "duration": 10, "url": "https://www.youtube.com/watch?v=" + "a" * 11},
        {"id": "b" * 11, "title": "ok", "duration": 300, "channel": "brewer"},
        {"id": "c" * 11, "title": "live", "duration": None},
        {"id": "d" * 11, "title": "long", "duration": 4000},
    ]
    table = youtube._search_table(entries, min_duration_s=30, max_duration_s=3600)
    assert list(table.columns) == ["id", "title", "duration_s", "url", "channel"]
    assert table["id"].tolist() == ["b" * 11]
    assert table.loc[0, "url"] == "https://www.youtube.com/watch?v=" + "b" * 11
    assert table.loc[0, "channel"] == "brewer"
    assert isinstance(youtube.DownloadError("x", "y"), RuntimeError)
