"""Tests for helpers.audio on real files written to tmp_path.

Lossy formats (mp3, m4a, opus) are encoded with the same ffmpeg binary the
module uses (system ffmpeg or imageio-ffmpeg's), so they run wherever
load_audio could read them.
"""

from __future__ import annotations

import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import audio
from helpers.audio import (
    SUPPORTED,
    AudioError,
    audio_info,
    find_audio,
    label_jobs,
    load_audio,
    output_folder,
    resample,
    save_audio,
    to_mono,
)
from helpers.config import SR

LOSSY = ("mp3", "m4a", "opus")
LOSSLESS = ("wav", "flac")
ALL_FORMATS = ("wav", "flac", "ogg", "mp3", "m4a", "opus")
DURATION = 1.0
FREQ = 1000.0
NATIVE_SR = 44_100


# --------------------------------------------------------------------------- helpers


def tone(freq: float = FREQ, sr: int = NATIVE_SR, seconds: float = DURATION, amp: float = 0.5):
    t = np.arange(round(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(y: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spectrum) * sr / len(y))


def ffmpeg() -> str:
    exe = audio._ffmpeg_exe()
    if exe is None:  # only when neither system ffmpeg nor imageio-ffmpeg is installed
        pytest.skip("no ffmpeg binary available to encode mp3/m4a/opus")
    return exe


def encode(src: Path, dst: Path, *extra: str) -> Path:
    subprocess.run(
        [ffmpeg(), "-y", "-v", "error", "-nostdin", "-i", str(src), *extra, str(dst)], check=True
    )
    return dst


def make(folder: Path, fmt: str, y: np.ndarray, sr: int = NATIVE_SR, stem: str = "tone") -> Path:
    """Write ``y`` (shape (n,) or (n, channels)) as ``folder/stem.fmt``."""
    wav = folder / f"{stem}-src.wav"
    sf.write(wav, y, sr, subtype="PCM_16")
    if fmt == "wav":
        return wav.rename(folder / f"{stem}.wav")
    if fmt in ("flac", "ogg"):
        sf.write(folder / f"{stem}.{fmt}", y, sr)
        return folder / f"{stem}.{fmt}"
    return encode(wav, folder / f"{stem}.{fmt}")


def cut(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A 1 s, 1 kHz mono tone at 44.1 kHz in every format (encoded once)."""
    folder = tmp_path_factory.mktemp("formats")
    return {fmt: make(folder, fmt, tone()) for fmt in ALL_FORMATS}


# --------------------------------------------------------------------------- loading


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_each_format_loads_as_float32_mono_at_sr(files, fmt):
    y = load_audio(files[fmt])
    assert y.dtype == np.float32 and y.ndim == 1 and y.flags.c_contiguous
    expected = round(DURATION * SR)
    # lossless: +-1 frame; lossy: ffmpeg < 6 leaves AAC's end padding (<= 1024 frames at 44.1 kHz)
    tolerance = 1 if fmt in ("wav", "flac", "ogg") else (0.024 * SR if fmt == "m4a" else 0.005 * SR)
    assert abs(len(y) - expected) <= tolerance
    assert abs(peak_hz(y, SR) - FREQ) < 2
    assert 0.4 < np.abs(y).max() < 0.6


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_onsets_stay_aligned(tmp_path, fmt):
    """Encoder delay (mp3, aac, opus) must be removed so label times stay right."""
    y = np.zeros(NATIVE_SR, np.float32)
    y[NATIVE_SR // 4 : 3 * NATIVE_SR // 4] = tone(seconds=0.5)
    z = np.abs(load_audio(make(tmp_path, fmt, y)))
    onset, offset = np.argmax(z > 0.25) / SR, (len(z) - np.argmax(z[::-1] > 0.25)) / SR
    assert abs(onset - 0.25) < 0.003 and abs(offset - 0.75) < 0.003


def test_decoder_choice(files):
    infos = {fmt: audio_info(path) for fmt, path in files.items()}
    assert infos["m4a"]["decoder"] == "ffmpeg"
    for fmt in ("wav", "flac", "ogg"):
        assert infos[fmt]["decoder"] == "soundfile"
    for info in infos.values():
        assert info["channels"] == 1
        assert abs(info["duration_s"] - DURATION) < 0.03
        assert info["sample_rate"] == (48_000 if info["codec"] == "opus" else NATIVE_SR)
    assert infos["wav"]["format"] == "wav" and infos["wav"]["codec"] == "pcm_16"
    assert infos["m4a"]["format"] == "m4a" and infos["m4a"]["codec"] == "aac"


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "m4a"])
def test_stereo_downmix_and_keep_channels(tmp_path, fmt):
    stereo = np.stack([tone(440), tone(1000, amp=0.2)], axis=1)
    path = make(tmp_path, fmt, stereo)
    both = load_audio(path, mono=False)
    assert both.shape[0] == 2 and both.dtype == np.float32
    assert abs(peak_hz(both[0], SR) - 440) < 2 and abs(peak_hz(both[1], SR) - 1000) < 2
    mono = load_audio(path)
    np.testing.assert_allclose(mono, both.mean(axis=0), atol=1e-6)


def test_mono_false_on_mono_file_gives_one_channel(files):
    y = load_audio(files["wav"], mono=False)
    assert y.shape == (1, SR)


def test_more_than_two_channels_downmix(tmp_path):
    y = np.stack([tone(f, amp=0.1) for f in (300, 500, 700, 900, 1100, 1300)], axis=1)
    sf.write(tmp_path / "six.wav", y, NATIVE_SR, subtype="FLOAT")
    expected = resample(y.mean(axis=1), NATIVE_SR, SR)
    np.testing.assert_allclose(load_audio(tmp_path / "six.wav"), expected, atol=1e-6)
    assert load_audio(tmp_path / "six.wav", mono=False).shape == (6, SR)
    # through ffmpeg: the WAV it pipes back uses WAVE_FORMAT_EXTENSIBLE
    m4a = encode(tmp_path / "six.wav", tmp_path / "six.m4a")
    assert load_audio(m4a, mono=False).shape[0] == 6


@pytest.mark.parametrize("rate", [8_000, 11_025, 22_050, 44_100, 48_000, 96_000])
def test_resample_from_common_rates(tmp_path, rate):
    sf.write(tmp_path / "r.wav", tone(sr=rate), rate)
    y = load_audio(tmp_path / "r.wav")
    assert abs(len(y) - SR) <= 1
    assert abs(peak_hz(y, SR) - FREQ) < 2
    assert audio_info(tmp_path / "r.wav")["sample_rate"] == rate


@pytest.mark.parametrize("rate", [2_000, 4_000, 192_000, 384_000])
def test_unusual_rates_still_load(tmp_path, rate):
    sf.write(tmp_path / "odd.wav", tone(freq=440, sr=rate), rate)
    y = load_audio(tmp_path / "odd.wav")
    assert abs(len(y) - SR) <= 2 and np.isfinite(y).all()
    assert abs(peak_hz(y, SR) - 440) < 2


def test_sr_none_keeps_native_rate(files):
    assert len(load_audio(files["wav"], sr=None)) == NATIVE_SR
    assert len(load_audio(files["m4a"], sr=None, mono=False)[0]) >= NATIVE_SR


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_wav_sample_formats(tmp_path, subtype):
    y = tone(sr=SR)
    sf.write(tmp_path / "s.wav", y, SR, subtype=subtype)
    z = load_audio(tmp_path / "s.wav")
    assert z.dtype == np.float32
    np.testing.assert_allclose(z, y, atol=1e-4 if subtype == "PCM_16" else 1e-6)


def test_imageio_ffmpeg_fallback(files, monkeypatch):
    """Without ffmpeg on PATH the binary from imageio-ffmpeg decodes m4a."""
    pytest.importorskip("imageio_ffmpeg")
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    audio._ffmpeg_exe.cache_clear()
    try:
        assert "imageio_ffmpeg" in audio._ffmpeg_exe()
        y = load_audio(files["m4a"])
        assert abs(len(y) - SR) <= 0.024 * SR and abs(peak_hz(y, SR) - FREQ) < 2
    finally:
        monkeypatch.undo()
        audio._ffmpeg_exe.cache_clear()


# --------------------------------------------------------------------------- errors


def assert_audio_error(path: Path, *words: str) -> AudioError:
    with pytest.raises(AudioError) as info:
        load_audio(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    for word in words:
        assert word in message, message
    return info.value


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        audio_info(tmp_path / "nope.wav")


def test_folder_instead_of_file(tmp_path):
    assert_audio_error(tmp_path, "folder", "find_audio")


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_empty_file(tmp_path, fmt):
    (tmp_path / f"e.{fmt}").touch()
    assert_audio_error(tmp_path / f"e.{fmt}", "empty")
    with pytest.raises(AudioError, match="empty"):
        audio_info(tmp_path / f"e.{fmt}")


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3", "opus", "m4a"])
def test_truncated_file(files, tmp_path, fmt):
    src = files[fmt]
    if fmt == "m4a":  # the default m4a keeps its index at the end: halving it loses the index
        src = encode(files["wav"], tmp_path / "fast.m4a", "-movflags", "+faststart")
    half = cut(src, tmp_path / f"half.{fmt}")
    assert_audio_error(half, "truncated")


@pytest.mark.parametrize("fmt", ["wav", "ogg", "opus"])
def test_truncated_is_said_plainly(files, tmp_path, fmt):
    """The cheap structural checks name the problem, also in audio_info."""
    half = cut(files[fmt], tmp_path / f"half.{fmt}")
    assert_audio_error(half, "is truncated")
    with pytest.raises(AudioError, match="truncated"):
        audio_info(half)


def test_truncated_wav_header(files, tmp_path):
    head = tmp_path / "head.wav"
    head.write_bytes(files["wav"].read_bytes()[:30])
    assert_audio_error(head, "truncated")


def test_ogg_without_end_of_stream(files, tmp_path):
    data = bytearray(files["ogg"].read_bytes())
    last = data.rfind(b"OggS")
    (tmp_path / "noeos.ogg").write_bytes(data[:last])  # cut exactly at a page boundary
    assert_audio_error(tmp_path / "noeos.ogg", "end-of-stream")


@pytest.mark.parametrize("fmt", ALL_FORMATS + ("wma",))
def test_corrupt_file(tmp_path, fmt):
    path = tmp_path / f"junk.{fmt}"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    assert_audio_error(path, "could not be decoded")


@pytest.mark.parametrize("name", ["labels.txt", "notes.xyz", "noextension"])
def test_unsupported_extension(tmp_path, name):
    path = tmp_path / name
    path.write_text("0.5\t0.6\tp\n")
    assert_audio_error(path, "audio files end in")


def test_text_file_is_recognised_as_labels(tmp_path):
    (tmp_path / "labels.txt").write_text("0.5\t0.6\tp\n")
    assert_audio_error(tmp_path / "labels.txt", "label")


def test_no_samples(tmp_path):
    sf.write(tmp_path / "zero.wav", np.zeros(0, np.float32), SR)
    assert_audio_error(tmp_path / "zero.wav", "no audio samples")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_nan_or_inf_samples(tmp_path, bad, subtype):
    y = tone(sr=SR)
    y[SR // 2] = bad
    sf.write(tmp_path / "nan.wav", y, SR, subtype=subtype)
    assert_audio_error(tmp_path / "nan.wav", "NaN or infinite", "0.500 s")


def test_needs_ffmpeg_but_none_found(files, monkeypatch):
    monkeypatch.setattr(audio, "_ffmpeg_exe", lambda: None)
    assert_audio_error(
        files["m4a"], "ffmpeg was not found", "apt-get install ffmpeg", "imageio-ffmpeg"
    )
    assert load_audio(files["flac"]).shape == (SR,)  # soundfile formats need no ffmpeg


def test_no_audio_stream(tmp_path):
    video = tmp_path / "silent.mp4"
    subprocess.run(
        [ffmpeg(), "-y", "-v", "error", "-f", "lavfi", "-i", "color=size=32x32:duration=0.2",
         "-c:v", "mpeg4", str(video)],
        check=True,
    )
    assert_audio_error(video, "no audio stream")


def test_bad_arguments(files):
    with pytest.raises(ValueError, match="sr"):
        load_audio(files["wav"], sr=0)


def test_audio_error_is_a_value_error_and_pickles():
    err = AudioError("x.wav", "is empty (0 bytes)", "record it again")
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) == "x.wav: is empty (0 bytes); record it again"
    assert again.path == Path("x.wav")


# --------------------------------------------------------------------------- finding


def test_find_audio(tmp_path):
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    names = ["b/deep/z.flac", "a.WAV", "b/c.m4a", "b/c.txt", "a.txt", "._a.wav", ".hidden/x.wav"]
    for name in names + ["notes.md"]:
        (tmp_path / name).write_bytes(b"x")
    found = find_audio(tmp_path)
    relative = [p.relative_to(tmp_path).as_posix() for p in found]
    assert relative == ["a.WAV", "b/c.m4a", "b/deep/z.flac"]
    assert find_audio(str(tmp_path / "b")) == [tmp_path / "b/c.m4a", tmp_path / "b/deep/z.flac"]
    # explicit files kept in order, duplicates dropped
    both = find_audio([tmp_path / "b/c.m4a", tmp_path / "b"])
    assert both == [tmp_path / "b/c.m4a", tmp_path / "b/deep/z.flac"]
    with pytest.raises(FileNotFoundError, match="missing"):
        find_audio([tmp_path, tmp_path / "missing"])
    with pytest.raises(AudioError, match="c.txt"):
        find_audio(tmp_path / "b/c.txt")
    assert find_audio([]) == []


def test_supported_extensions_are_lowercase_with_dot():
    assert all(ext.startswith(".") and ext == ext.lower() for ext in SUPPORTED)
    assert {".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".opus"} <= set(SUPPORTED)


# --------------------------------------------------------------------------- small helpers


def test_to_mono():
    y = np.array([[1.0, 0.0, -1.0], [0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(to_mono(y), [0.5, 0.0, 0.0])
    assert to_mono(y).dtype == np.float32
    assert to_mono(np.ones(3, np.float64)).dtype == np.float32
    with pytest.raises(ValueError, match="shape"):
        to_mono(np.zeros((1, 2, 3)))


@pytest.mark.parametrize("channels", [1, 2, 3, 6])
def test_to_mono_of_a_transposed_file_array_is_the_float64_mean(channels):
    """soundfile gives (n, channels); to_mono gets its transposed view and averages it one
    channel at a time (fast), to exactly the mean in float64."""
    frames = np.random.default_rng(channels).standard_normal((10_001, channels)).astype(np.float32)
    mono = to_mono(frames.T)
    assert mono.dtype == np.float32 and mono.shape == (10_001,)
    np.testing.assert_array_equal(mono, frames.mean(axis=1, dtype=np.float64).astype(np.float32))


def test_to_mono_keeps_one_channel_when_they_cancel(tmp_path):
    """A pair in opposite polarity averages to silence: the louder channel is kept, and
    load_audio says so; ordinary stereo (a quiet second channel too) is still averaged."""
    rng = np.random.default_rng(0)
    left = rng.standard_normal(SR).astype(np.float32) * 0.3
    inverted = np.stack([left, -0.98 * left])
    np.testing.assert_array_equal(to_mono(inverted), left)
    np.testing.assert_array_equal(to_mono(inverted[::-1]), left)    # the louder one, wherever
    quiet_right = np.stack([left, 0.05 * rng.standard_normal(SR).astype(np.float32)])
    np.testing.assert_allclose(to_mono(quiet_right), quiet_right.mean(axis=0), atol=1e-7)
    np.testing.assert_array_equal(to_mono(np.zeros((2, 5))), np.zeros(5))  # silence stays silence
    save_audio(tmp_path / "inv.wav", inverted, sr=SR, subtype="FLOAT")
    with pytest.warns(UserWarning, match="cancel out.*channel 1"):
        y = load_audio(tmp_path / "inv.wav")
    np.testing.assert_allclose(y, left, atol=1e-6)


def test_label_jobs_never_overwrite_labels(tmp_path):
    """Missing and non-audio paths, a second file of one stem, and a label file that belongs
    to a recording in the output folder give an error instead of a target."""
    rec = tmp_path / "rec"
    (rec / "old").mkdir(parents=True)
    for name in ("a.wav", "b.flac", "old/a.ogg"):
        save_audio(rec / name, np.zeros(SR // 10, np.float32), sr=SR)
    (rec / "b.txt").write_text("0.1\t0.2\tp\n")               # hand labels beside b.flac
    jobs = label_jobs([rec / "a.wav", rec, tmp_path / "nope.wav", rec / "b.txt"], tmp_path / "out")
    got = {(f.relative_to(tmp_path).as_posix() if f.is_relative_to(tmp_path) else str(f)):
           (t, e) for f, t, e in jobs}
    assert [str(f.relative_to(tmp_path)) for f, *_ in jobs] == [
        "rec/a.wav", "rec/b.flac", "rec/old/a.ogg", "nope.wav", "rec/b.txt"]  # a.wav once
    assert got["rec/a.wav"] == (tmp_path / "out" / "a.txt", "")
    assert got["rec/b.flac"] == (tmp_path / "out" / "b.txt", "")       # another folder: fine
    target, error = got["rec/old/a.ogg"]
    assert target is None and "same stem as" in error and str(rec / "old" / "a.ogg") in error
    target, error = got["nope.wav"]
    assert target is None and error.startswith(f"{tmp_path / 'nope.wav'}: No such file")
    assert got["rec/b.txt"][0] is None and "text file" in got["rec/b.txt"][1]
    # into the recordings' own folder: b.txt is b.flac's labels, a.txt does not exist yet
    inside = {f.name: (t, e) for f, t, e in label_jobs([rec / "a.wav", rec / "b.flac"], rec)}
    assert inside["a.wav"] == (rec / "a.txt", "")
    assert inside["b.flac"][0] is None and "would be overwritten" in inside["b.flac"][1]
    # another folder's recording whose stem has labels in out: protected too
    assert label_jobs([rec / "old" / "a.ogg"], rec)[0][1] == rec / "a.txt"
    (rec / "a.txt").write_text("")
    assert label_jobs([rec / "old" / "a.ogg"], rec)[0][1] is None
    # --overwrite: the labels beside a recording are replaced on request; one stem is still once
    assert "--overwrite" in inside["b.flac"][1]
    again = label_jobs([rec / "a.wav", rec / "b.flac", rec / "old" / "a.ogg"], rec, overwrite=True)
    assert [(t, e == "") for _, t, e in again] == [(rec / "a.txt", True), (rec / "b.txt", True), (None, False)]
    # never the labels of *another* recording of that stem (a.wav's, for old/a.ogg)
    other = label_jobs([rec / "old" / "a.ogg"], rec, overwrite=True)[0]
    assert other[1] is None and "only the labels of the recording itself" in other[2]


def test_output_folder_is_made_and_checked(tmp_path):
    assert output_folder(tmp_path / "x" / "y").is_dir()
    assert list((tmp_path / "x" / "y").iterdir()) == []    # the write test leaves nothing
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        output_folder(tmp_path / "file")
    if os.geteuid() != 0:   # root writes anywhere: a read-only folder only stops other users
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(ValueError, match="cannot write there"):
            output_folder(ro)
    with pytest.raises(ValueError, match="cannot write there"):
        output_folder("/proc/aed-test")     # not writable even for root


def test_resample_shapes():
    assert resample(np.zeros(44_100), 44_100, 16_000).shape == (16_000,)
    assert resample(np.zeros((2, 48_000)), 48_000, 16_000).shape == (2, 16_000)
    y = np.ones(10, np.float32)
    assert resample(y, SR, SR) is y
    with pytest.raises(ValueError):
        resample(y, 0, SR)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(0, 5000),
    orig=st.sampled_from([8_000, 11_025, 16_000, 22_050, 44_100, 48_000, 96_000]),
    channels=st.integers(1, 3),
)
def test_resample_length_property(n, orig, channels):
    y = np.random.default_rng(n).standard_normal((channels, n)).astype(np.float32)
    out = resample(y, orig, SR)
    assert out.shape[0] == channels and out.dtype == np.float32
    assert abs(out.shape[1] - n * SR / orig) <= 1


# --------------------------------------------------------------------------- saving


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "oga"])
@pytest.mark.parametrize("channels", [1, 2])
def test_save_round_trip(tmp_path, fmt, channels):
    y = np.stack([tone(440 * (c + 1), sr=SR) for c in range(channels)])
    y = y[0] if channels == 1 else y
    path = save_audio(tmp_path / "sub" / f"out.{fmt}", y, sr=SR)
    assert path == tmp_path / "sub" / f"out.{fmt}"
    z = load_audio(path, mono=False)
    assert z.shape == (channels, SR)
    if fmt in ("wav", "flac"):
        np.testing.assert_allclose(z.reshape(y.shape), y, atol=1e-4)
    else:
        for c in range(channels):
            assert abs(peak_hz(z[c], SR) - 440 * (c + 1)) < 2
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind


def test_save_subtype_and_clipping(tmp_path):
    y = np.array([0.5, 1.5, -2.0, 0.25], np.float32)
    save_audio(tmp_path / "f.wav", y, sr=SR, subtype="FLOAT")
    assert sf.info(tmp_path / "f.wav").subtype == "FLOAT"
    np.testing.assert_array_equal(sf.read(tmp_path / "f.wav", dtype="float32")[0], y)
    save_audio(tmp_path / "i.wav", y, sr=SR, subtype="PCM_24")
    assert sf.info(tmp_path / "i.wav").subtype == "PCM_24"
    np.testing.assert_allclose(sf.read(tmp_path / "i.wav")[0], [0.5, 1.0, -1.0, 0.25], atol=1e-6)


def test_save_long_ogg_in_blocks(tmp_path):
    n = 10 * 60 * SR
    t = np.arange(n, dtype=np.float64) / SR
    y = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = save_audio(tmp_path / "long.ogg", y, sr=SR)
    info = audio_info(path)
    assert info["duration_s"] == pytest.approx(600.0) and info["codec"] == "vorbis"
    z = load_audio(path)
    assert len(z) == n
    assert abs(peak_hz(z[-SR:], SR) - 440) < 2


def test_save_replaces_atomically(tmp_path):
    path = save_audio(tmp_path / "x.flac", tone(sr=SR), sr=SR)
    before = path.read_bytes()
    with pytest.raises(AudioError, match="x.flac"):
        save_audio(path, tone(sr=SR), sr=SR, subtype="VORBIS")  # not valid for FLAC
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]
    save_audio(path, np.zeros(100), sr=SR)
    assert sf.info(path).frames == 100 and list(tmp_path.iterdir()) == [path]


def test_save_rejects_bad_input(tmp_path):
    with pytest.raises(AudioError, match=r"out\.mp3.*\.wav"):
        save_audio(tmp_path / "out.mp3", np.zeros(10), sr=SR)
    with pytest.raises(ValueError, match="NaN"):
        save_audio(tmp_path / "out.wav", np.array([0.0, np.nan]), sr=SR)
    with pytest.raises(ValueError, match="y.T"):
        save_audio(tmp_path / "out.wav", np.zeros((SR, 2)), sr=SR)
    with pytest.raises(ValueError, match="sr"):
        save_audio(tmp_path / "out.wav", np.zeros(10), sr=0)
    assert list(tmp_path.iterdir()) == []
