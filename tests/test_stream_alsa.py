"""``python -m helpers listen`` on real audio devices: PyAudio → PortAudio → ALSA.

There is no sound card on a CI machine, so the capture device is ALSA's ``file`` plugin
(part of alsa-lib; ``.ci/run`` installs ``alsa-utils`` and ``libasound2-plugins``): a PCM
whose ``infile`` is read on capture. Each test writes a ``.asoundrc`` into a temporary HOME::

    pcm.filecap {
        type file           # capture reads "infile"; playback would write "file"
        slave.pcm "null"    # the null plugin under it: no hardware, no clock
        file "/dev/null"
        infile "/…/in.raw"  # raw 16-bit mono samples at the device's rate (44.1 kHz)
        format "raw"
    }

and runs the listener as a subprocess with ``HOME`` pointing there. PortAudio's ALSA host
lists user-defined PCMs from the configuration (it skips only the names ``hw``, ``plughw``,
``plug``, ``dsnoop``, ``tee``, ``file``, ``null``, ``shm``, ``cards`` and ``rate_convert``), so
``filecap`` shows up in ``--list-devices`` with 44100 Hz as its default rate; the listener
opens it there and resamples to 16 kHz. The null slave has no clock, so capture runs as fast
as the listener reads (PyAudio's callback waits on the listener's queue). After the end of
``infile`` the plugin repeats stale buffers, hence ``--duration``.

The three pipelines (microphone, ``arecord | listen --stdin`` and a device that stops
delivering audio) start together and run in parallel, to keep the test time down.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from helpers.audio import load_audio, resample
from helpers.config import REPO_ROOT, SR
from helpers.datasets import synthetic
from helpers.labels import read_labels
from helpers.models import Detector

RATE = 44100
SECONDS = 10


def asoundrc(home: Path, infile: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / ".asoundrc").write_text(
        "pcm.filecap {\n"
        "    type file\n"
        '    slave.pcm "null"\n'
        '    file "/dev/null"\n'
        f'    infile "{infile}"\n'
        '    format "raw"\n'
        "}\n")


def env_for(home: Path) -> dict:
    return {**os.environ, "HOME": str(home), "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def listen(*args: str) -> list[str]:
    return [sys.executable, "-m", "helpers", "listen", *args]


@pytest.fixture(scope="module")
def audio():
    """10 s of a real synthetic recording at 44.1 kHz as 16-bit samples, and what the
    listener should hear: the same samples resampled to 16 kHz."""
    m = synthetic(profile="quick", progress=False)
    y = load_audio(m.loc[m["n_plops"].idxmax(), "path"])[: SECONDS * SR]
    pcm = np.round(np.clip(resample(y, SR, RATE), -1, 1) * 32767).astype("<i2")
    heard = resample(pcm.astype(np.float32) / 32768, RATE, SR)
    return pcm, heard


@pytest.fixture(scope="module")
def runs(tmp_path_factory, audio):
    """Start the three pipelines at once; wait for all; return their results."""
    pcm, _ = audio
    root = tmp_path_factory.mktemp("alsa")
    raw = root / "in.raw"
    np.concatenate([pcm, np.zeros(RATE, "<i2")]).tofile(raw)   # a second of slack after the end
    home = root / "home"
    asoundrc(home, raw)
    procs: dict[str, subprocess.Popen] = {}
    popen = dict(cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    listed = subprocess.run(listen("--list-devices"), env=env_for(home), capture_output=True,
                            text=True, timeout=60, cwd=REPO_ROOT)

    procs["mic"] = subprocess.Popen(listen("--device", "filecap", "--duration", str(SECONDS),
                                           "--out", str(root / "mic"), "--log", str(root / "mic.csv"),
                                           "--report-every", "5"),
                                    env=env_for(home), **popen)

    arecord = shutil.which("arecord")
    if arecord:
        rec = subprocess.Popen([arecord, "-q", "-D", "filecap", "-f", "S16_LE", "-r", str(RATE), "-c", "1",
                                "-t", "raw", "-s", str(SECONDS * RATE)],
                               env=env_for(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs["stdin"] = subprocess.Popen(listen("--stdin", "--rate", str(RATE), "--out", str(root / "stdin"),
                                                 "--quiet", "--report-every", "5", "--strict"),
                                          env=env_for(home), stdin=rec.stdout, **popen)
        rec.stdout.close()   # the listener holds the pipe now

    # A device that stops: its infile is a FIFO that gets 3 s of audio and then nothing,
    # while its writer keeps it open (so reading blocks, as with a dead USB microphone).
    fifo_home = root / "fifo"
    fifo = root / "in.fifo"
    os.mkfifo(fifo)
    asoundrc(fifo_home, fifo)
    fd = os.open(fifo, os.O_RDWR)   # O_RDWR: never blocks, never sees the reader go

    def feed():
        try:
            os.write(fd, pcm[: 3 * RATE].tobytes())   # blocks until the device reads it
        except OSError:
            pass

    threading.Thread(target=feed, daemon=True).start()
    procs["vanish"] = subprocess.Popen(listen("--device", "filecap", "--stall-timeout", "1",
                                              "--out", str(root / "vanish"), "--quiet"),
                                       env=env_for(fifo_home), **popen)
    results = {}
    try:
        for name, p in procs.items():
            out, err = p.communicate(timeout=240)
            results[name] = (p.returncode, out, err)
        if arecord:
            rec.wait(timeout=30)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
        os.close(fd)
    return {"root": root, "listed": listed, "arecord": arecord, **results}


@pytest.fixture(scope="module")
def expected(audio):
    return Detector.load().detect(audio[1])   # the model the listener loads by default


def same_events(got, ref):
    assert len(got) == len(ref) > 5
    assert np.abs(got["start"].to_numpy() - ref["start"].to_numpy()).max() <= 0.01 + 1e-5
    assert np.abs(got["end"].to_numpy() - ref["end"].to_numpy()).max() <= 0.01 + 1e-5


def test_list_devices_shows_the_alsa_file_device(runs):
    listed = runs["listed"]
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if "filecap" in line)
    assert "[ALSA," in line and "44100 Hz" in line


def test_microphone_through_pyaudio_gives_the_offline_events(runs, expected):
    status, out, err = runs["mic"]
    assert status == 0, err
    assert "filecap" in err and "at 44100 Hz" in err
    assert "stopped: duration reached after 0:00:10.00" in err
    assert "input overflows: 0" in err
    (labels,) = (runs["root"] / "mic").glob("filecap-*.txt")
    same_events(read_labels(labels), expected)
    assert out.count(" plop ") == len(expected) and out.count(" BPM ") == 2


def test_arecord_into_stdin_gives_the_offline_events(runs, audio):
    """arecord | listen --stdin --strict: the labels of detect --strict on the same audio."""
    if not runs["arecord"]:
        pytest.skip("arecord (alsa-utils) is not installed")
    status, out, err = runs["stdin"]
    assert status == 0, err
    assert "stopped: end of stdin after 0:00:10.00" in err
    assert ", strict)" in err and "dropped by --strict" in err
    (labels,) = (runs["root"] / "stdin").glob("stdin-*.txt")
    same_events(read_labels(labels), Detector.load().detect(audio[1], min_plausibility=0.5))
    assert out.count(" plop ") == 0 and out.count(" BPM ") == 2   # --quiet


def test_a_device_that_stops_ends_the_session_cleanly(runs):
    status, out, err = runs["vanish"]
    assert status == 1, err
    assert "no audio from the input device for 1 s" in err
    assert "plops:" in err   # the summary
    (labels,) = (runs["root"] / "vanish").glob("filecap-*.txt")
    assert len(read_labels(labels)) >= 3   # the plops of the 3 s it heard


def test_a_listener_that_falls_behind_counts_overflows_and_goes_on(tmp_path, audio):
    """The microphone source alone (no model): a consumer that stops for 2.5 s makes the
    queue overflow; the blocks lost are counted and reading goes on to the end."""
    pcm, _ = audio
    raw = tmp_path / "in.raw"
    np.concatenate([pcm, np.zeros(RATE, "<i2")]).tofile(raw)
    asoundrc(tmp_path, raw)
    script = (
        "import time\n"
        "from helpers.stream import Microphone\n"
        "mic = Microphone('filecap', block_s=0.1, queue_s=0.3, max_s=6)\n"
        "n = 0\n"
        "with mic:\n"
        "    for k, block in enumerate(mic):\n"
        "        n += len(block)\n"
        "        if k == 5:\n"
        "            time.sleep(2.5)\n"
        "print(mic.overflows, mic.dropped_blocks, n, mic.end_reason)\n")
    done = subprocess.run([sys.executable, "-c", script], env=env_for(tmp_path), capture_output=True,
                          text=True, timeout=60, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    overflows, dropped, n, reason = done.stdout.split(maxsplit=3)
    assert int(overflows) >= 1 and int(dropped) >= 1
    assert reason.strip() == "duration reached" and int(n) == 6 * SR
