"""Tests of helpers.stream: the streaming detector against offline detection, the sources,
the rolling BPM, and ``python -m helpers listen`` with a real HTTP server as Brewfather.

The PyAudio / ALSA / stdin pipelines run as real subprocesses in ``test_stream_alsa.py``.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers import stream
from helpers.audio import load_audio
from helpers.cli import main
from helpers.config import SR
from helpers.datasets import synthetic
from helpers.events import bpm_from_events, bpm_over_time, probabilities_to_events
from helpers.labels import read_labels
from helpers.models import SHIPPED_MODEL, Detector
from helpers.stream import (EventTracker, FileSource, FrameRing, RawSource, RollingBPM,
                            StreamingDetector, architecture_lookahead, model_lookahead)

HOP_S = 0.01
#: The stream id of the fake Brewfather. No 5 consecutive characters of it may be printed.
SECRET = "Hq7ZmX2vRk9TbW4c"


def assert_no_secret(text: str) -> None:
    for i in range(len(SECRET) - 4):
        assert SECRET[i:i + 5] not in text, f"secret fragment {SECRET[i:i + 5]!r} leaked"


def assert_same_events(got: pd.DataFrame, ref: pd.DataFrame, *, tol: float = HOP_S + 1e-9) -> None:
    assert len(got) == len(ref), f"{len(got)} events streamed, {len(ref)} offline"
    if len(ref):
        assert np.abs(got["start"].to_numpy() - ref["start"].to_numpy()).max() <= tol
        assert np.abs(got["end"].to_numpy() - ref["end"].to_numpy()).max() <= tol


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def detector():
    """The shipped model as the command line loads it (LiteRT int8 when exported, else Keras)."""
    return Detector.load()


@pytest.fixture(scope="module")
def manifest():
    return synthetic(profile="quick", progress=False).set_index("recording")


@pytest.fixture(scope="module")
def busy(manifest):
    """A real synthetic recording with many plops (an 8 kHz file, loaded at 16 kHz)."""
    path = manifest["path"][manifest["n_plops"].idxmax()]
    return Path(path), load_audio(path)


@pytest.fixture(scope="module")
def busy_ref(detector, busy):
    """Its events by offline detection."""
    return detector.detect(busy[1])


# ----------------------------------------------------------------------------- parts
def test_frame_ring_wraps_and_refuses_overflow():
    ring = FrameRing(5, 2)
    x = np.arange(16, dtype=np.float32).reshape(8, 2)
    ring.append(x[:4])
    ring.discard(3)
    ring.append(x[4:8])   # wraps around the end of the array
    assert (ring.start, ring.stop) == (3, 8)
    np.testing.assert_array_equal(ring.get(3, 8), x[3:8])
    with pytest.raises(OverflowError):
        ring.append(x[:1])
    with pytest.raises(IndexError):
        ring.get(2, 4)


@pytest.mark.parametrize("seed", range(40))
def test_event_tracker_equals_offline_postprocessing(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    # bursts of high probability on a noisy floor, with dips that test hysteresis and merging
    prob = rng.uniform(0, 0.3, n)
    for start in rng.integers(0, n, size=max(1, n // 60)):
        prob[start:start + int(rng.integers(1, 40))] = rng.uniform(0.2, 1.0)
    prob = np.clip(prob + rng.normal(0, 0.1, n), 0, 1)
    on = float(rng.uniform(0.3, 0.8))
    params = {"on": on, "off": float(rng.uniform(0.1, on)) if rng.random() < 0.7 else None,
              "min_duration_s": float(rng.choice([0.0, 0.03, 0.05])),
              "min_gap_s": float(rng.choice([0.0, 0.03, 0.08, 0.2]))}
    ref = probabilities_to_events(prob, hop_s=HOP_S, **params)
    tracker = EventTracker(hop_s=HOP_S, **params)
    found, i = [], 0
    while i < n:   # random chunk sizes, including single frames
        k = int(rng.choice([1, 2, 7, 25, 100, 1000]))
        found += tracker.push(prob[i:i + k])
        i += k
        # an event is only emitted once it can no longer change
        assert tracker.settled_frame <= tracker.next_frame
    found += tracker.close()
    assert [(s, e) for s, e, _ in found] == [(round(a / HOP_S), round(b / HOP_S))
                                            for a, b in zip(ref["start"], ref["end"])]
    np.testing.assert_allclose([p for *_, p in found], ref["probability"], rtol=0, atol=1e-12)


def test_rolling_bpm_equals_bpm_over_time():
    rng = np.random.default_rng(3)
    onsets = np.sort(rng.uniform(0, 1800, 700))
    rolling = RollingBPM(window_s=300, every_s=60)
    for t in onsets:
        rolling.add(t)
    curve = bpm_over_time(onsets, duration_s=1800, window_s=300, step_s=60)
    got = []
    while rolling.next_report <= 1800:
        t = rolling.advance()
        if t >= 300:
            got.append(rolling.at(t))
    assert [g["time_s"] for g in got] == curve["time_s"].tolist()
    np.testing.assert_allclose([g["bpm"] for g in got], curve["bpm"])
    np.testing.assert_allclose([g["low"] for g in got], curve["low"])
    assert [g["n_events"] for g in got] == curve["n_events"].tolist()
    # before a whole window: [0, t) with its own length
    r = RollingBPM(window_s=300)
    for t in onsets[onsets < 90]:
        r.add(t)
    assert r.at(90.0)["bpm"] == bpm_from_events(onsets[onsets < 90], duration_s=90.0)["bpm"]


@pytest.mark.parametrize("recording", ["synth_001", "synth_004"])  # 16 kHz stereo, 48 kHz mono
def test_file_source_gives_the_samples_of_load_audio(manifest, recording):
    path = manifest["path"][recording]
    whole = load_audio(path)
    for block_s in (0.1, 1.3, 30.0):
        blocks = list(FileSource(path, block_s=block_s))
        assert max(len(b) for b in blocks) <= block_s * SR + 2000
        np.testing.assert_array_equal(np.concatenate(blocks), whole)
    limited = np.concatenate(list(FileSource(path, block_s=0.1, max_s=5.0)))
    assert len(limited) == 5 * SR
    np.testing.assert_allclose(limited[:4 * SR], whole[:4 * SR], atol=1e-4)


def test_raw_source_reads_a_real_pipe_in_odd_pieces():
    rng = np.random.default_rng(0)
    pcm = (rng.standard_normal((44100 * 2, 2)) * 3000).astype("<i2")   # 2 s, stereo, 44.1 kHz
    data = pcm.tobytes()
    r, w = os.pipe()

    def writer():
        with os.fdopen(w, "wb", buffering=0) as f:
            for i in range(0, len(data), 9999):   # pieces that split frames and samples
                f.write(data[i:i + 9999])

    threading.Thread(target=writer, daemon=True).start()
    with os.fdopen(r, "rb") as f:
        src = RawSource(f, rate=44100, channels=2)
        got = np.concatenate(list(src))
    assert src.end_reason == "end of stdin"
    from helpers.audio import resample

    mono = (pcm.astype(np.float32) / 32768).mean(axis=1, dtype=np.float64).astype(np.float32)
    np.testing.assert_array_equal(got, resample(mono, 44100, SR))


def test_the_shipped_model_looks_three_frames_ahead(detector):
    assert model_lookahead(detector) == 3
    bad = [{"class_name": "Bidirectional", "config": {}}]
    assert architecture_lookahead(bad) is None
    pooled = [{"class_name": "MaxPooling2D", "config": {"pool_size": [2, 2], "strides": [2, 2]}}]
    assert architecture_lookahead(pooled) is None


# ----------------------------------------------------------------------------- streaming = offline
@pytest.mark.parametrize("block", [160, 1600, 16000])
def test_streaming_gives_the_offline_events(detector, busy, busy_ref, block):
    _, y = busy
    ref = busy_ref
    assert len(ref) >= 20
    sd = StreamingDetector(detector, keep_events=True)
    live, ring = [], 0
    for i in range(0, len(y), block):
        live += sd.process(y[i:i + block])
        ring = max(ring, len(sd._ring))
    before_flush = len(live)
    live += sd.flush()
    assert_same_events(sd.events(), ref)
    assert [e.start for e in live] == sd.events()["start"].tolist()
    assert before_flush >= len(ref) - 2        # events come out while streaming, not at the end
    # memory: the ring holds the window in use and what the next update needs, no more
    assert ring <= stream.WINDOW + stream.STEP + block // 160 + 1
    assert len(sd._frontend._buf) < 1024
    if block <= 1600:   # live-sized blocks: every plop is out within 1 s of audio
        latency = np.array([e.emitted_at - e.start for e in live[:before_flush]])
        assert latency.max() <= 1.0, latency.max()


def test_complete_windows_only_for_a_model_not_known_to_be_causal(detector, busy, busy_ref):
    _, y = busy
    sd = StreamingDetector(detector)
    sd.lookahead = None   # as for an unknown architecture
    found = []
    for i in range(0, len(y), 4000):
        found += sd.process(y[i:i + 4000])
    found += sd.flush()
    got = pd.DataFrame({"start": [e.start for e in found], "end": [e.end for e in found]})
    assert_same_events(got, busy_ref)
    with pytest.raises(ValueError, match="keep_events"):
        sd.events()


@pytest.mark.parametrize("backend", ["keras", "int8"])
def test_streaming_gives_the_offline_events_of_each_backend(busy, backend):
    if backend != "keras" and not (SHIPPED_MODEL / f"model_{backend}.tflite").exists():
        pytest.skip(f"the shipped model has no LiteRT export (model_{backend}.tflite)")
    _, y = busy
    det = Detector.load(backend=backend)
    sd = StreamingDetector(det, keep_events=True)
    assert sd.lookahead == 3   # read from model.keras, also for LiteRT
    for i in range(0, len(y), 1600):
        sd.process(y[i:i + 1600])
    sd.flush()
    assert_same_events(sd.events(), det.detect(y))


@pytest.fixture(scope="module")
def talking(manifest, tmp_path_factory):
    """A real busy recording with recorded speech (a voice the model never trained on) mixed in
    at −4 dB: the detector fires on some syllables that ``--strict`` drops. Written to a file.
    (The excerpt and the level are chosen so that the shipped model drops several and no
    detection's plausibility is within 0.01 of the 0.5 threshold, where the stream's value,
    equal to 0.01, may fall on the other side; the model shipped since it heard ten voices fires
    less on talk, and at 0 dB dropped one.)"""
    from helpers.augment import add_at_snr
    from helpers.backgrounds import excerpt
    from helpers.datasets import load_recording

    y, ev = load_recording(manifest.loc["synth_008"].to_dict() | {"recording": "synth_008"})
    z = add_at_snr(y, ev, excerpt("speech", np.random.default_rng(5), len(y), split="eval"), snr_db=-4)
    path = tmp_path_factory.mktemp("talking") / "talking.wav"
    sf.write(path, z, SR, subtype="FLOAT")
    return path, load_audio(path)


def test_strict_streaming_keeps_what_detect_strict_keeps(detector, talking):
    """``listen --strict``: the stream's events need the same plausibility as ``detect
    --strict``'s. Given this 20 s recording at once (one piece, so the gate's floor is that of
    the whole file, as offline's), the same events and values; live (0.1 s blocks) its noise
    floor is the audio so far, so only borderline events may go the other way."""
    from helpers.autolabel import plausibility

    _, z = talking
    plain = detector.detect(z)
    ref = detector.detect(z, min_plausibility=0.5)
    assert len(plain) - len(ref) >= 2, "the talking should fool the detector a few times"
    offline = pd.Series(plausibility(z, plain), index=plain["start"].round(2))
    assert (offline - 0.5).abs().min() > 0.01, "no detection may sit on the threshold (see `talking`)"
    sd = StreamingDetector(detector, keep_events=True, min_plausibility=0.5)
    sd.process(z)
    sd.flush()
    assert_same_events(sd.events(), ref)
    np.testing.assert_allclose(sd.events()["plausibility"], ref["plausibility"], atol=0.01)
    assert sd.dropped == len(plain) - len(ref) and sd.strict

    sd = StreamingDetector(detector, keep_events=True, min_plausibility=0.5)
    live = []
    for i in range(0, len(z), 1600):
        live += sd.process(z[i:i + 1600])
    before_flush = len(live)
    live += sd.flush()
    got = sd.events()
    assert sd.n_events + sd.dropped == len(plain)
    assert [e.plausibility for e in live] == got["plausibility"].tolist()
    assert (got["plausibility"] >= 0.5).all()
    # the decisions that differ from offline are borderline ones
    differ = set(got["start"].round(2)) ^ set(ref["start"].round(2))
    assert len(differ) <= 3 and all(abs(offline[t] - 0.5) < 0.15 for t in differ), differ
    # the gate waits for each plop's 0.3 s measuring window: every plop is out within 1.35 s
    latency = np.array([e.emitted_at - e.start for e in live[:before_flush]])
    assert before_flush >= len(got) - 2 and latency.max() <= 1.35, latency.max()


# ----------------------------------------------------------------------------- the command line
def test_listen_file_prints_logs_and_writes_the_offline_labels(busy, busy_ref, tmp_path, capsys):
    path, _ = busy
    log = tmp_path / "log.csv"
    status = main(["listen", "--file", str(path), "--out", str(tmp_path / "out"), "--log", str(log),
                   "--report-every", "5"])
    out, err = capsys.readouterr()
    assert status == 0, err
    ref = busy_ref
    labels = read_labels(tmp_path / "out" / f"{path.stem}.txt")
    assert_same_events(labels, ref, tol=HOP_S + 1e-5)
    lines = out.splitlines()
    assert sum(" plop " in line for line in lines) == len(ref)
    bpm_lines = [line for line in lines if " BPM " in line]
    assert len(bpm_lines) == 4                     # at 5, 10, 15 and 20 s
    expected = bpm_from_events(ref[ref["start"] < 10.0], duration_s=10.0)["bpm"]
    assert f"BPM {expected:.1f}" in bpm_lines[1]
    assert "stopped: end of file" in err and f"plops: {len(ref)}" in err
    rows = pd.read_csv(log)
    assert rows["kind"].tolist().count("plop") == len(ref)
    assert rows["kind"].tolist().count("bpm") == 4
    assert rows["kind"].iloc[0] == "start" and rows["kind"].iloc[-1] == "end"
    np.testing.assert_allclose(rows.loc[rows["kind"] == "plop", "start_s"], ref["start"], atol=HOP_S + 1e-5)

    # appending: a second session adds to the same log, and --quiet prints only the BPM
    assert main(["listen", "--file", str(path), "--log", str(log), "--quiet", "--report-every", "10"]) == 0
    out, _ = capsys.readouterr()
    assert out.count(" plop ") == 0 and out.count(" BPM ") == 2
    rows = pd.read_csv(log)
    assert rows["session"].nunique() == 2 or len(rows) > 2 * len(ref)


def test_listen_strict_writes_the_labels_of_detect_strict(talking, tmp_path, capsys):
    """``listen --strict --file`` (read in 30 s blocks: this file at once) writes the labels
    ``detect --strict`` writes, prints each plop's plausibility and logs it, and says how many
    detections it dropped."""
    path, _ = talking
    assert main(["detect", str(path), "--strict", "--out", str(tmp_path / "offline")]) == 0
    capsys.readouterr()
    log = tmp_path / "log.csv"
    assert main(["listen", "--file", str(path), "--strict", "--out", str(tmp_path / "live"),
                 "--log", str(log)]) == 0
    out, err = capsys.readouterr()
    ref = read_labels(tmp_path / "offline" / f"{path.stem}.txt")
    assert_same_events(read_labels(tmp_path / "live" / f"{path.stem}.txt"), ref, tol=HOP_S + 1e-5)
    plops = [line for line in out.splitlines() if " plop " in line]
    assert len(plops) == len(ref) and all("plausibility 0." in line or "plausibility 1." in line
                                          for line in plops)
    dropped = int(err.split("plops: ")[1].split("(")[1].split()[0])
    assert dropped >= 2 and "dropped by --strict" in err and ", strict)" in err
    rows = pd.read_csv(log)
    details = rows.loc[rows["kind"] == "plop", "detail"]
    assert len(details) == len(ref) and details.str.match(r"plausibility [01]\.\d{3}$").all()


def test_listen_realtime_paces_the_file(tmp_path, capsys):
    path = tmp_path / "short.wav"
    sf.write(path, np.zeros(int(1.5 * SR), dtype=np.float32), SR)
    t0 = time.monotonic()
    assert main(["listen", "--file", str(path), "--realtime", "--quiet"]) == 0
    assert time.monotonic() - t0 >= 1.4
    assert "end of file after 0:00:01.50" in capsys.readouterr().err


def test_ctrl_c_ends_the_session_cleanly(long_file, tmp_path, capsys):
    import signal

    path, _ = long_file
    done = threading.Event()
    # a shell's background job (``make test &``) starts with Ctrl-C ignored, and the listener
    # leaves an ignored Ctrl-C alone (as under nohup): give the test a terminal's Ctrl-C
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)

    def press_ctrl_c():   # once the listener has taken over Ctrl-C, and a second later
        while not done.is_set() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            time.sleep(0.05)
        if not done.wait(1.0):
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    try:
        status = main(["listen", "--file", str(path), "--realtime", "--quiet", "--out", str(tmp_path)])
        restored = signal.getsignal(signal.SIGINT)
    finally:
        done.set()
        signal.signal(signal.SIGINT, inherited)
    err = capsys.readouterr().err
    assert status == 0, err
    assert "stopped: interrupted (Ctrl-C) after 0:00:0" in err and "plops:" in err
    assert (tmp_path / f"{path.stem}.txt").exists()
    assert restored is signal.default_int_handler   # the listener gave Ctrl-C back


def test_devices_are_found_by_index_or_name():
    devices = [{"index": 0, "name": "HDA Intel PCH: ALC3246 Analog (hw:0,0)", "default": False},
               {"index": 3, "name": "USB PnP Sound Device: Audio (hw:1,0)", "default": True},
               {"index": 5, "name": "pulse", "default": False}]
    assert stream._find_device(devices, None)["index"] == 3
    assert stream._find_device(devices, "5")["index"] == 5
    assert stream._find_device(devices, "usb")["index"] == 3
    assert stream._find_device(devices, "pulse")["index"] == 5
    with pytest.raises(ValueError, match="no input device named like 'webcam'.*3: USB"):
        stream._find_device(devices, "webcam")
    with pytest.raises(ValueError, match="several"):
        stream._find_device(devices, "hw:")
    with pytest.raises(OSError, match="no audio input device"):
        stream._find_device([], None)


@pytest.mark.parametrize("args, message", [
    ([], "exactly one source"),
    (["--file", "nope.wav", "--stdin"], "exactly one source"),
    (["--stdin", "--realtime"], "--realtime goes with --file"),
    (["--file", "/no/such/file.wav"], "no such file"),
])
def test_listen_reports_bad_arguments(args, message, capsys):
    assert main(["listen", *args]) == 2
    assert message in capsys.readouterr().err


# ----------------------------------------------------------------------------- Brewfather
class FakeBrewfather(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass   # a client that timed out and hung up


@pytest.fixture
def brewfather():
    """A local Custom Stream endpoint: scripted answers (status, or ("hang", s)), then 200."""
    state = {"script": deque(), "bodies": [], "paths": [], "release": threading.Event()}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            state["bodies"].append(body)
            state["paths"].append(self.path)
            action = state["script"].popleft() if state["script"] else 200
            if isinstance(action, tuple):
                state["release"].wait(action[1])
                action = 200
            try:
                self.send_response(action)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")
            except OSError:
                pass

        def log_message(self, *args):
            pass

    httpd = FakeBrewfather(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{httpd.server_address[1]}/stream?id={SECRET}"
    yield state
    state["release"].set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def long_file(tmp_path_factory, busy):
    """31 minutes of airlock (a real synthetic recording, repeated) as a 16 kHz WAV."""
    _, y = busy
    reps = int(np.ceil(31 * 60 * SR / len(y)))
    audio = np.tile(y, reps)[:31 * 60 * SR]
    path = tmp_path_factory.mktemp("long") / "brew31.wav"
    sf.write(path, audio, SR, subtype="PCM_16")
    return path, audio


def offline_bpm(events: pd.DataFrame, t: float, window: float = 300.0) -> float:
    lo = max(0.0, t - window)
    chunk = events[(events["start"] >= lo) & (events["start"] < t)]
    return round(bpm_from_events(chunk, duration_s=t - lo)["bpm"], 1)


def test_a_31_minute_file_gives_two_brewfather_reports(long_file, brewfather, tmp_path, capsys):
    path, _ = long_file
    log = tmp_path / "log.csv"
    status = main(["listen", "--file", str(path), "--quiet", "--log", str(log),
                   "--brewfather-url", brewfather["url"], "--brewfather-name", "fermenter 2"])
    out, err = capsys.readouterr()
    assert status == 0, err
    bodies = brewfather["bodies"]
    assert len(bodies) == 2, bodies
    assert all(b["name"] == "fermenter 2" and "plops in 5 min" in b["comment"] for b in bodies)
    assert all(p == f"/stream?id={SECRET}" for p in brewfather["paths"])
    # the posted BPM is that of the plops of the 5 minutes before 15 and 30 minutes (the
    # plops themselves equal offline detection: tested above)
    rows = pd.read_csv(log)
    plops = rows[rows["kind"] == "plop"].rename(columns={"start_s": "start"})
    assert [b["bpm"] for b in bodies] == [offline_bpm(plops, 900.0), offline_bpm(plops, 1800.0)]
    bf = rows[rows["kind"] == "brewfather"]
    assert bf["time_s"].tolist() == [900.0, 1800.0] and (bf["status"] == "sent").all()
    assert "2 sent, 0 failed, 0 pending" in err
    for text in (out, err, log.read_text()):
        assert_no_secret(text)


def test_brewfather_retries_and_keeps_a_failed_report(long_file, brewfather, tmp_path, capsys):
    path, _ = long_file
    brewfather["script"].extend([500, 200, ("hang", 2.0), ("hang", 2.0)])
    log = tmp_path / "log.csv"
    (tmp_path / "temp").write_text("19,5\n")   # a decimal comma is fine too
    t0 = time.monotonic()
    status = main(["listen", "--file", str(path), "--duration", "200", "--quiet", "--log", str(log),
                   "--temp-file", str(tmp_path / "temp"),
                   "--brewfather-url", brewfather["url"], "--brewfather-interval", "60",
                   "--brewfather-timeout", "0.3", "--brewfather-retries", "1",
                   "--brewfather-backoff", "0.01"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert time.monotonic() - t0 < 60
    bodies = brewfather["bodies"]
    # 60 s: 500, then sent on the retry; 60 s after the post Brewfather received (the retry, a
    # moment later): two time-outs, failed and kept; 60 s after that: sent with the failed one
    # merged into its comment
    assert len(bodies) == 5, bodies
    assert bodies[0] == bodies[1] and bodies[2] == bodies[3]
    assert all(b["temp"] == 19.5 and b["temp_unit"] == "C" for b in bodies)
    assert "1 earlier report(s) failed" in bodies[4]["comment"] and "at 120 s" in bodies[4]["comment"]
    rows = pd.read_csv(log)
    bf = rows[rows["kind"] == "brewfather"]
    t = bf["time_s"].tolist()
    assert t[0] == 60.0 and 120.0 < t[1] < 121.0 and t[2] == pytest.approx(t[1] + 60.0, abs=0.002)
    assert bf["status"].tolist() == ["sent", "failed", "sent"]
    assert "within 0.3 s" in bf["detail"].iloc[1]
    assert "2 sent, 1 failed, 0 pending" in err
    for text in (out, err, log.read_text()):
        assert_no_secret(text)


def test_brewfather_rate_limit_is_enforced(capsys, tmp_path):
    path = tmp_path / "x.wav"
    sf.write(path, np.zeros(SR, dtype=np.float32), SR)
    url = f"https://log.brewfather.net/stream?id={SECRET}"
    assert main(["listen", "--file", str(path), "--brewfather-url", url,
                 "--brewfather-interval", "60"]) == 2
    err = capsys.readouterr().err
    assert "15 minutes" in err
    assert_no_secret(err)


# ----------------------------------------------------------------------------- nothing lost
#: ``python -m helpers`` with a terminal's Ctrl-C: a child inherits an ignored SIGINT from a
#: shell's background job (``make test &``), and the listener leaves an ignored Ctrl-C alone
_WITH_CTRL_C = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                "runpy.run_module('helpers', run_name='__main__', alter_sys=True)")


def _listen_process(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    env = env or {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env = {**env, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, "-c", _WITH_CTRL_C, "listen", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_listen_checks_out_first_and_keeps_hand_labels(busy, tmp_path, capsys):
    """--out is checked before any audio is read, and the labels beside a recording in --out
    are kept unless --overwrite asks to replace them."""
    path, _ = busy
    mine = tmp_path / "mine"
    mine.mkdir()
    rec = mine / "brew1.flac"
    sf.write(rec, load_audio(path), SR)
    (mine / "brew1.txt").write_text("1.000000\t1.100000\tp\n")          # made by hand
    (tmp_path / "afile").write_text("")
    log = tmp_path / "log.csv"
    assert main(["listen", "--file", str(rec), "--out", str(tmp_path / "afile"), "--log", str(log)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and not log.exists()
    assert main(["listen", "--file", str(rec), "--out", str(mine), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (mine / "brew1.txt").read_text() == "1.000000\t1.100000\tp\n"
    assert main(["listen", "--file", str(rec), "--out", str(mine), "--quiet", "--overwrite"]) == 0
    assert len(read_labels(mine / "brew1.txt")) > 10


def test_listen_keeps_what_it_found_in_a_damaged_file(busy, detector, tmp_path, capsys):
    """A FLAC that is cut short breaks its decoder, a cut WAV just ends early: either way the
    plops found so far are in the labels and the log, the session ends with its summary and
    status 1, and the reason says what is wrong with the file."""
    _, y = busy
    full = tmp_path / "full.flac"
    sf.write(full, y, SR)
    cut = {"cut.flac": full.read_bytes()[: full.stat().st_size * 6 // 10]}
    sf.write(tmp_path / "whole.wav", y, SR, subtype="PCM_16")
    cut["cut.wav"] = (tmp_path / "whole.wav").read_bytes()[: (tmp_path / "whole.wav").stat().st_size * 6 // 10]
    for name, data in cut.items():
        (tmp_path / name).write_bytes(data)
        log = tmp_path / f"{name}.csv"
        status = main(["listen", "--file", str(tmp_path / name), "--out", str(tmp_path / "labels"),
                       "--log", str(log), "--quiet"])
        err = capsys.readouterr().err
        assert status == 1, err
        assert "truncated" in err and "stopped:" in err, err
        rows = pd.read_csv(log)
        found = read_labels(tmp_path / "labels" / f"{Path(name).stem}.txt")
        assert rows["kind"].iloc[-1] == "end" and "truncated" in rows["status"].iloc[-1]
        assert 5 < len(found) == (rows["kind"] == "plop").sum()
        # the plops of the part that could be read, as offline detection finds them there
        heard = found["start"].max()
        offline = detector.detect(y[: int((heard + 3) * SR)])
        assert len(found) >= (offline["start"] <= heard).sum() - 1


def test_a_log_torn_by_a_crash_still_reads(busy, tmp_path, capsys):
    """A session killed mid-row (a full disk, a power cut) leaves a row without its line end:
    the next session ends that row before appending its own, so the CSV still reads."""
    path, _ = busy
    log = tmp_path / "log.csv"
    assert main(["listen", "--file", str(path), "--duration", "5", "--quiet", "--log", str(log)]) == 0
    for torn in (b"2026-01-01T00:00:00,plop,12.5,12.4",                  # cut between cells
                 b'2026-01-01T00:00:00,end,20.0,,,,,,,"end of fi'):        # cut inside quotes
        log.write_bytes(log.read_bytes() + torn)
        assert main(["listen", "--file", str(path), "--duration", "5", "--quiet", "--log", str(log)]) == 0
        rows = pd.read_csv(log)
        assert rows["kind"].iloc[-1] == "end"
    assert list(rows["kind"]).count("start") == 3


def test_listen_rejects_nonsense_options_at_once(busy, capsys, tmp_path):
    path, _ = busy
    for option, value in (("--block", "-1"), ("--duration", "0"), ("--duration", "nan"),
                          ("--brewfather-interval", "0"), ("--bpm-window", "inf"), ("--channels", "0")):
        with pytest.raises(SystemExit) as exit_:
            main(["listen", "--file", str(path), option, value])
        assert exit_.value.code == 2
        assert f"argument {option}: expected" in capsys.readouterr().err
    url = f"https://log.brewfather.net/stream?id={SECRET}"
    assert main(["listen", "--file", str(path), "--brewfather-url", url, "--brewfather-interval", "60"]) == 2
    err = capsys.readouterr().err
    assert "--brewfather-interval must be at least 900 s" in err and SECRET not in err
    assert main(["listen", "--file", str(path), "--brewfather-url",
                 f"http://127.0.0.1:99999/stream?id={SECRET}"]) == 2
    err = capsys.readouterr().err
    assert "--brewfather-url" in err and "port" in err.lower() and SECRET not in err
    local = f"http://127.0.0.1:9/stream?id={SECRET}"
    assert main(["listen", "--file", str(path), "--brewfather-url", local,
                 "--temp-file", str(tmp_path / "no-sensor")]) == 2
    assert "--temp-file" in capsys.readouterr().err


@pytest.mark.skipif(os.name != "posix", reason="SIGHUP and select on pipes are POSIX")
def test_a_hangup_or_sigterm_ends_a_quiet_stdin_session_cleanly(busy, tmp_path):
    """SIGHUP (the SSH session closed) and SIGTERM (systemd, docker stop) end a session whose
    input has gone quiet at once, with its labels, log and summary, as Ctrl-C does."""
    _, y = busy
    pcm = (np.clip(y[: 8 * SR], -1, 1) * 32767).astype("<i2").tobytes()
    for sig in (signal.SIGHUP, signal.SIGTERM):
        out, log = tmp_path / sig.name, tmp_path / f"{sig.name}.csv"
        p = _listen_process("--stdin", "--quiet", "--out", str(out), "--log", str(log),
                            stdin=subprocess.PIPE)
        os.write(p.stdin.fileno(), pcm)        # 8 s of audio, then nothing (the pipe stays open)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (log.exists() and b"plop" in log.read_bytes()):
            time.sleep(0.2)
        time.sleep(1.0)
        p.send_signal(sig)
        try:
            p.wait(timeout=20)   # stdin stays open: only the signal can end the session
        finally:
            p.kill()
        err = p.stderr.read()
        p.stdin.close()
        assert p.returncode == 0, err
        assert f"{sig.name} received" in err
        rows = pd.read_csv(log)
        assert rows["kind"].iloc[-1] == "end"
        labels = list(out.glob("stdin-*.txt"))
        assert len(labels) == 1 and len(read_labels(labels[0])) == (rows["kind"] == "plop").sum() > 0


def test_a_closed_stdout_does_not_end_the_session(busy, tmp_path):
    """`listen ... | head -2`: once the reader of stdout has gone, the session goes on quietly
    and still writes every label."""
    path, _ = busy
    p = _listen_process("--file", str(path), "--out", str(tmp_path))
    p.stdout.readline()
    p.stdout.close()                             # head has read its lines
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert "Broken pipe" not in err and "Traceback" not in err
    n = len(read_labels(tmp_path / f"{path.stem}.txt"))
    assert n > 10 and f"plops: {n}" in err


def test_a_failed_brewfather_post_is_reported_once(busy, brewfather, tmp_path):
    """The listener says itself that a post failed; the client's log record does not repeat it."""
    path, _ = busy
    brewfather["script"].extend([404])
    p = _listen_process("--file", str(path), "--quiet", "--brewfather-url", brewfather["url"],
                        "--brewfather-interval", "10", "--duration", "15")
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert err.count("Brewfather: report at") == 1 and "not sent after" not in err, err
    assert "plops in 10 s" in brewfather["bodies"][0]["comment"]


@pytest.mark.skipif(os.name != "posix", reason="RLIMIT_FSIZE and SIGXFSZ are POSIX")
def test_a_full_disk_stops_the_log_not_the_session(busy, tmp_path):
    """When the log can no longer grow (here a file-size limit, as a full disk gives EFBIG or
    ENOSPC), the listener says so once and goes on: every plop still reaches the labels."""
    path, _ = busy
    log = tmp_path / "log.csv"
    row = "earlier,plop,1.0,1.0,1.1,0.9,,,,,,,2026-01-01T00:00:00+00:00\r\n"
    log.write_text(",".join(stream.LOG_COLUMNS) + "\r\n" + row * (60_000 // len(row)))
    limit = log.stat().st_size + 2_000          # room for a few rows, then "File too large"
    # the limit is set by the child itself (no preexec_fn in this threaded test process)
    limited = ("import resource, runpy, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
               f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
               "sys.argv = ['helpers', *sys.argv[1:]]; runpy.run_module('helpers', run_name='__main__')")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "TF_CPP_MIN_LOG_LEVEL": "2"}
    p = subprocess.Popen([sys.executable, "-c", limited, "listen", "--file", str(path), "--quiet", "--log", str(log),
                          "--out", str(tmp_path / "labels")], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert err.count("log: cannot write") == 1 and "the session goes on" in err, err
    n = len(read_labels(tmp_path / "labels" / f"{path.stem}.txt"))
    assert n > 10 and f"plops: {n}" in err
    assert log.stat().st_size <= limit


@pytest.mark.skipif(os.name != "posix" or not shutil.which("nohup"), reason="nohup and SIGHUP are POSIX")
def test_under_nohup_a_hangup_is_ignored_as_asked(busy, tmp_path):
    """`nohup python -m helpers listen …`: SIGHUP is ignored, so the session goes on; SIGTERM
    still ends it cleanly."""
    _, y = busy
    pcm = (np.clip(y[: 4 * SR], -1, 1) * 32767).astype("<i2").tobytes()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "TF_CPP_MIN_LOG_LEVEL": "2"}
    log = tmp_path / "log.csv"
    p = subprocess.Popen(["nohup", sys.executable, "-m", "helpers", "listen", "--stdin", "--quiet", "--log", str(log)],
                         env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        os.write(p.stdin.fileno(), pcm)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (log.exists() and b"plop" in log.read_bytes()):
            time.sleep(0.2)
        p.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        assert p.poll() is None, p.stderr.read()
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
    finally:
        p.kill()
    err = p.stderr.read()
    assert p.returncode == 0 and "SIGTERM received" in err and "SIGHUP" not in err, err


def test_a_second_ctrl_c_gives_up_a_hanging_brewfather_post(busy, brewfather, tmp_path):
    """The labels are written before the listener waits for a post under way; a second Ctrl-C
    gives that post up at once (it runs in a daemon thread), with the summary printed."""
    path, _ = busy
    brewfather["script"].extend([("hang", 60.0)])
    p = _listen_process("--file", str(path), "--realtime", "--quiet", "--out", str(tmp_path),
                        "--brewfather-url", brewfather["url"], "--brewfather-interval", "3",
                        "--brewfather-timeout", "50")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not brewfather["bodies"]:
            time.sleep(0.1)
        assert brewfather["bodies"], "no post was made"
        p.send_signal(signal.SIGINT)
        waiting = ""
        while "waiting for the Brewfather post" not in waiting:
            waiting += p.stderr.readline()
        assert len(read_labels(tmp_path / f"{path.stem}.txt")) > 0   # written before the wait
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        p.wait(timeout=20)
        gave_up_in = time.monotonic() - t0
    finally:
        p.kill()
    err = waiting + p.stderr.read()
    assert p.returncode == 0, err
    assert gave_up_in < 5 and "given up" in err and "stopped: interrupted" in err, err


def test_a_console_that_cannot_show_every_character_gets_them_replaced(busy):
    path, _ = busy
    env_enc = {"PYTHONIOENCODING": "ascii"}
    p = _listen_process("--file", str(path), "--report-every", "10",
                        env={**os.environ, **env_enc, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert "BPM" in out and "95% CI" in out and "?" in out       # "–" became "?"


def test_listen_file_refuses_a_folder(tmp_path, capsys):
    assert main(["listen", "--file", str(tmp_path), "--out", str(tmp_path / "labels")]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_raw_source_reads_a_given_stream_from_where_the_caller_left_it(tmp_path):
    """A caller's own stream (here a file whose 44-byte header was read first) is read through
    its buffer: nothing it holds already is skipped."""
    samples = (np.arange(48_000) % 1000 - 500).astype("<i2")
    raw = tmp_path / "x.raw"
    raw.write_bytes(b"H" * 44 + samples.tobytes())
    with open(raw, "rb") as f:
        f.read(44)
        got = np.concatenate(list(RawSource(f, rate=16000)))
    np.testing.assert_allclose(got, samples.astype(np.float32) / 32768, atol=1e-6)
