"""Listening live: audio sources, the streaming detector, the rolling BPM, and ``listen``.

The detector of :mod:`helpers.models` sees windows of ``WINDOW`` = 200 frames (2 s) of the
front end of :mod:`helpers.features` (one frame every ``HOP`` = 160 samples, 10 ms). Offline,
a recording is cut into windows every ``STEP`` = 100 frames and each frame's probability is
taken from the window in which it has at least 100 frames of past (:func:`~helpers.models.stitch`).
A live stream does exactly the same, block by block:

1. **Front end.** :class:`~helpers.features.Frontend` turns each incoming block of audio into
   the frames it completes; they are normalized like offline and appended to a
   :class:`FrameRing`, a fixed-size ring buffer of frames addressed by their absolute index.
   Only the frames of the window still in use are kept.
2. **Windows.** Frame ``f`` belongs to window ``0`` when ``f < 200`` and to the window
   starting at ``100 * (f // 100) - 100`` otherwise (:func:`window_start_for`). The model runs
   on that window as soon as its frame is *final*.
3. **Early frames.** The network convolves over ±1 frame three times and its GRU runs forward
   in time, so the probability of frame ``f`` depends on the window's frames up to ``f + 3``
   only. A window can therefore be run before it is complete (the missing end zero-padded)
   and its frames up to ``available − lookahead`` are already exactly those of the complete
   window. The lookahead is read from the model's architecture when the detector is built
   and checked by experiment (:func:`model_lookahead`: 3 frames for the CRNN); a model that
   is not known to be causal falls back to running complete windows only (latency up to 1 s
   more). The model runs at most every ``update_s`` (0.25 s).
4. **Events.** :class:`EventTracker` applies the same hysteresis, gap merging and minimum
   duration as :func:`helpers.events.probabilities_to_events`, frame by frame, carrying its
   state across windows. An event is emitted as soon as it can no longer change: it has
   ended, and no later event can start close enough to be merged with it.
5. **The end.** :meth:`StreamingDetector.flush` pads the end exactly like the offline path,
   so a whole file streamed in blocks of any size gives the events of
   :meth:`Detector.detect <helpers.models.Detector.detect>` (the front end agrees to float
   round-off, so times agree to the 10 ms frame, almost always exactly).

Latency from a plop's onset to its line: the plop's length (50–300 ms), plus the merging gap
(``min_gap_s`` of the model's post-processing), the model's 30 ms lookahead, up to one update
period (0.25 s) and one block (0.1 s): under 1 s (``bench/stream_bench.py`` measures it).

Clocks
------
Every time is **audio time**: samples received / 16000, from the start of the session. For a
file or stdin this is the position in the audio (a 31-minute file gives Brewfather reports at
15 and 30 minutes however fast it is read). For a microphone it is real time, except that
samples lost to an input overflow (counted and reported) make it fall behind the wall clock by
their length; microphone lines also show the wall-clock time.

Rolling BPM
-----------
:class:`RollingBPM` keeps the onsets of the last ``window_s`` seconds (300) and reports
:func:`helpers.events.bpm_from_events` of ``[t − window_s, t)`` every ``every_s`` (60 s), once
every event starting before ``t`` has been emitted (shorter windows ``[0, t)`` before ``t``
reaches ``window_s``); the same numbers as :func:`helpers.events.bpm_over_time` on the offline
events.

Sources
-------
:class:`FileSource` (a file, as fast as possible or ``realtime``), :class:`RawSource` (raw
16-bit PCM from stdin or any binary stream, e.g. ``arecord -t raw … |``) and
:class:`Microphone` (PyAudio). Each yields float32 mono blocks at 16 kHz, resampling the
device's or file's own rate block by block with ``soxr.ResampleStream`` (the same samples as
resampling the whole signal with :func:`helpers.audio.resample`).

The command line
----------------
``python -m helpers listen (--device N|NAME | --file PATH [--realtime] | --stdin --rate SR)``
with ``--list-devices``, ``--out DIR``, ``--log CSV``, ``--strict`` (``detect --strict``'s second
opinion, live: :class:`helpers.autolabel.PlausibilityGate`), ``--brewfather-url URL`` and more; see
``python -m helpers listen --help`` and :func:`run_session`, which the command line and the
notebook ``08_live_streaming`` share.

Brewfather
----------
With ``--brewfather-url URL`` (or ``$BREWFATHER_URL``, which keeps the secret out of ``ps``)
the rolling BPM is posted through :class:`helpers.brewfather.BrewfatherStream` every 15
minutes of audio and never more often; time-outs and server errors are retried with backoff,
and a report that still fails is merged into the next post. From a live source the posts run
in a worker thread, so the audio never waits for the network. ``--temp-file`` adds a
temperature (a number in a file, or a DS18B20's ``w1_slave``).

Without a sound card
--------------------
ALSA's ``file`` plugin (part of alsa-lib) makes a capture device out of a raw file, which is
how the tests run the microphone path on a machine without audio hardware::

    # ~/.asoundrc
    pcm.filecap {
        type file
        slave.pcm "null"
        file "/dev/null"
        infile "/path/to/in.raw"   # 16-bit mono samples at 44.1 kHz (PortAudio's default)
        format "raw"
    }

``python -m helpers listen --list-devices`` then shows ``filecap`` and ``--device filecap
--duration 10`` listens to the file (as fast as it is read: the null slave has no clock).

Examples
--------
>>> det = StreamingDetector()                               # doctest: +SKIP
>>> for block in FileSource("brew1.flac", block_s=0.1):     # doctest: +SKIP
...     for ev in det.process(block):
...         print(f"plop at {ev.start:.2f} s, p = {ev.probability:.2f}")
>>> tail = det.flush()                                      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import queue
import re
import sys
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from helpers.audio import AudioError, to_mono
from helpers.config import PLOP_LABEL, SR
from helpers.features import HOP, N_MELS, Frontend
from helpers.models import STEP, WINDOW

__all__ = [
    "Event",
    "EventTracker",
    "FileSource",
    "FrameRing",
    "Microphone",
    "RawSource",
    "RollingBPM",
    "StreamingDetector",
    "add_parser",
    "list_devices",
    "architecture_lookahead",
    "measure_lookahead",
    "model_lookahead",
    "read_temperature",
    "run_session",
    "window_start_for",
]

HOP_S = HOP / SR

#: Seconds between model runs on a live stream (the early-frames update period).
UPDATE_S = 0.25
#: Block length of live sources (microphone, stdin, a file in real time), seconds.
LIVE_BLOCK_S = 0.1
#: Block length of a file read as fast as possible, seconds (many windows per model call).
FAST_BLOCK_S = 30.0
#: Audio is fed to the front end in pieces of at most this many frames, which bounds the ring.
_PIECE_FRAMES = 3200
_RING_FRAMES = 2 * WINDOW + STEP + _PIECE_FRAMES + 128
_EPS = 1e-9  # the same slack as helpers.events for times that went through floating point


# ---------------------------------------------------------------------------------------
# The ring buffer
# ---------------------------------------------------------------------------------------
class FrameRing:
    """A fixed-size ring buffer of feature frames addressed by absolute frame index.

    Frames are appended at the end; :meth:`discard` forgets the oldest ones. The memory is
    allocated once (``capacity × width`` float32), however long the stream runs.

    Examples
    --------
    >>> ring = FrameRing(4, 1)
    >>> ring.append(np.arange(3, dtype="float32")[:, None])
    >>> ring.discard(2); ring.append(np.array([[3.0], [4.0], [5.0]], dtype="float32"))
    >>> ring.start, ring.stop, ring.get(2, 6)[:, 0].tolist()
    (2, 6, [2.0, 3.0, 4.0, 5.0])
    >>> ring.get(4, 6, pad_to=4)[:, 0].tolist()      # zero-padded to 4 frames
    [4.0, 5.0, 0.0, 0.0]
    """

    def __init__(self, capacity: int, width: int):
        self.capacity = int(capacity)
        self._a = np.zeros((self.capacity, int(width)), dtype=np.float32)
        self.start = 0   # absolute index of the oldest frame kept
        self.stop = 0    # absolute index one past the newest frame

    def __len__(self) -> int:
        return self.stop - self.start

    def append(self, frames: np.ndarray) -> None:
        n = len(frames)
        if n == 0:
            return
        if len(self) + n > self.capacity:
            raise OverflowError(f"FrameRing: {len(self)} + {n} frames exceed the capacity "
                                f"{self.capacity}; discard old frames first")
        i = self.stop % self.capacity
        first = min(n, self.capacity - i)
        self._a[i:i + first] = frames[:first]
        self._a[:n - first] = frames[first:]
        self.stop += n

    def get(self, lo: int, hi: int, *, pad_to: int | None = None) -> np.ndarray:
        """A copy of frames ``[lo, hi)``, zero-padded at the end to ``pad_to`` frames."""
        if lo < self.start or hi > self.stop or hi < lo:
            raise IndexError(f"frames [{lo}, {hi}) are not in the ring [{self.start}, {self.stop})")
        out = np.zeros((max(hi - lo, pad_to or 0), self._a.shape[1]), dtype=np.float32)
        idx = np.arange(lo, hi) % self.capacity
        out[:hi - lo] = self._a[idx]
        return out

    def discard(self, before: int) -> None:
        """Forget the frames before absolute index ``before``."""
        self.start = min(max(self.start, int(before)), self.stop)


def window_start_for(frame: int) -> int:
    """First frame of the window whose probability frame ``frame`` takes (as in ``stitch``).

    Examples
    --------
    >>> [window_start_for(f) for f in (0, 199, 200, 299, 300)]
    [0, 0, 100, 100, 200]
    """
    return 0 if frame < WINDOW else STEP * (frame // STEP) - STEP


# ---------------------------------------------------------------------------------------
# Frames to events, in a stream
# ---------------------------------------------------------------------------------------
class EventTracker:
    """:func:`helpers.events.probabilities_to_events`, one block of frames at a time.

    Push probabilities as they become final; each call returns the events that can no longer
    change, as ``(first frame, one past the last frame, highest probability)``. :meth:`close`
    ends the curve (an event still on ends at the last frame, as offline). The state is a
    handful of numbers, whatever the length of the stream.

    Examples
    --------
    >>> prob = np.array([0, .6, .9, .4, .6] + [0] * 9 + [.8, .8, .8, 0])
    >>> t = EventTracker()
    >>> t.push(prob[:3]), t.push(prob[3:14]), t.push(prob[14:]), t.close()
    ([], [(1, 5, 0.9)], [], [(14, 17, 0.8)])

    The first event is final once 8 frames (``min_gap_s``) have passed after it with no new
    event. The same as offline: ``probabilities_to_events(prob)`` gives 0.01–0.05 s and
    0.14–0.17 s.
    """

    def __init__(self, *, hop_s: float = HOP_S, on: float = 0.5, off: float | None = None,
                 min_duration_s: float = 0.03, min_gap_s: float = 0.08, label: str = PLOP_LABEL):
        self.hop_s = float(hop_s)
        self.on = float(on)
        self.off = self.on / 2 if off is None else float(off)
        if not (math.isfinite(self.on) and math.isfinite(self.off)) or self.off > self.on:
            raise ValueError(f"need finite thresholds with off <= on, got on={on!r}, off={off!r}")
        if not (self.hop_s > 0 and min_duration_s >= 0 and min_gap_s >= 0):
            raise ValueError("hop_s must be > 0, min_duration_s and min_gap_s >= 0")
        self.min_duration_s = float(min_duration_s)
        self.min_gap_s = float(min_gap_s)
        self.label = label
        self.next_frame = 0          # index of the next frame to be pushed
        self._on = False
        self._run_start = 0
        self._run_peak = -math.inf
        self._pending: tuple[int, int, float] | None = None   # an ended event that may merge
        self._gap_peak = -math.inf

    @property
    def settled_frame(self) -> int:
        """Every event starting before this frame has been emitted."""
        if self._pending is not None:
            return self._pending[0]
        return self._run_start if self._on else self.next_frame

    def _finish(self, event: tuple[int, int, float], out: list) -> None:
        start, end, peak = event
        if (end - start) * self.hop_s >= self.min_duration_s - _EPS:
            out.append((start, end, float(peak)))

    def _merges(self, run_start: int) -> bool:
        return (run_start - self._pending[1]) * self.hop_s < self.min_gap_s - _EPS

    def push(self, prob: np.ndarray) -> list[tuple[int, int, float]]:
        """Feed the next frames' probabilities; returns the events now final."""
        p = np.asarray(prob, dtype=np.float64).reshape(-1)
        if not np.isfinite(p).all():
            raise ValueError("probabilities must be finite (a NaN often means corrupt audio)")
        out: list[tuple[int, int, float]] = []
        base, n, k = self.next_frame, len(p), 0
        while k < n:
            if not self._on:
                hits = np.flatnonzero(p[k:] >= self.on)
                j = k + int(hits[0]) if len(hits) else n
                if self._pending is not None and j > k:
                    self._gap_peak = max(self._gap_peak, float(p[k:j].max()))
                if j == n:
                    break
                start = base + j
                if self._pending is not None and self._merges(start):
                    self._run_start = self._pending[0]
                    self._run_peak = max(self._pending[2], self._gap_peak)
                else:
                    if self._pending is not None:
                        self._finish(self._pending, out)
                    self._run_start, self._run_peak = start, -math.inf
                self._pending, self._gap_peak = None, -math.inf
                self._on, k = True, j
            else:
                lows = np.flatnonzero(p[k:] < self.off)
                j = k + int(lows[0]) if len(lows) else n
                if j > k:
                    self._run_peak = max(self._run_peak, float(p[k:j].max()))
                if j == n:
                    break
                self._pending = (self._run_start, base + j, self._run_peak)
                self._gap_peak = -math.inf
                self._on, k = False, j
        self.next_frame = base + n
        if self._pending is not None and not self._on and not self._merges(self.next_frame):
            self._finish(self._pending, out)   # no later run can start close enough to merge
            self._pending = None
        return out

    def close(self) -> list[tuple[int, int, float]]:
        """End of the curve: finish the open event (it ends at the last frame)."""
        out: list[tuple[int, int, float]] = []
        if self._on:
            self._pending = (self._run_start, self.next_frame, self._run_peak)
            self._on = False
        if self._pending is not None:
            self._finish(self._pending, out)
            self._pending = None
        return out


# ---------------------------------------------------------------------------------------
# The streaming detector
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    """One plop found by the streaming detector (times in seconds of audio).

    ``emitted_at`` is the audio time when it was emitted (``emitted_at - start`` is the
    latency in audio time); ``plausibility`` is its second opinion in strict mode
    (:class:`helpers.autolabel.PlausibilityGate`), None otherwise.
    """

    start: float
    end: float
    probability: float
    emitted_at: float
    plausibility: float | None = None


def measure_lookahead(predict: Callable[[np.ndarray], np.ndarray], *, probes: tuple[int, ...] = (60, 130),
                      scales: tuple[float, ...] = (1.0, 3.0), seed: int = 0) -> int:
    """A lower bound of the frames of future the model's output depends on, by experiment.

    Runs random windows whole and with their end (from each probe frame on) set to zero; the
    first frame whose output changes shows the lookahead. Only a lower bound: an output that
    is saturated (or quantized, as in int8) may hide a dependence, which is why
    :func:`model_lookahead` reads the architecture and uses this as a cross-check.

    Examples
    --------
    >>> def causal(x):              # each frame's output: the mean of its frame and the next two
    ...     m = x[..., 0].mean(axis=2)
    ...     return (m + np.roll(m, -1, 1) + np.roll(m, -2, 1)) / 3
    >>> measure_lookahead(causal)
    2
    >>> measure_lookahead(lambda x: np.repeat(x.mean(axis=(1, 2, 3))[:, None], WINDOW, 1))
    130
    """
    rng = np.random.default_rng(seed)
    lookahead = 0
    for scale in scales:
        x = (scale * rng.standard_normal((1, WINDOW, N_MELS, 1))).astype(np.float32)
        full = np.asarray(predict(x))[0]
        for m in probes:
            cut = x.copy()
            cut[0, m:] = 0.0
            changed = np.flatnonzero(np.asarray(predict(cut))[0] != full)
            first = int(changed[0]) if len(changed) else WINDOW
            lookahead = max(lookahead, m - first)
    return lookahead


#: Layers whose output at a frame depends on that frame only (time axis 1 kept as is).
_FRAMEWISE = {"InputLayer", "BatchNormalization", "ReLU", "LeakyReLU", "ELU", "Activation", "Dropout",
              "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "Dense"}


def architecture_lookahead(layers: list[dict]) -> int | None:
    """Frames of future a Keras model's per-frame output depends on, from its layer configs.

    Convolutions with ``"same"`` padding look ``ceil((k - 1) / 2) × dilation`` frames ahead
    (summed over layers: an upper bound for any graph), ``"causal"`` ones none; pooling only
    in frequency, forward recurrent layers and frame-wise layers add nothing. Anything else
    (a backward or bidirectional RNN, pooling or strides in time, an unknown layer) → ``None``:
    not causal, or not known to be.

    Examples
    --------
    >>> conv = {"class_name": "Conv2D", "config": {"kernel_size": [3, 3], "padding": "same",
    ...                                            "strides": [1, 1], "dilation_rate": [1, 1]}}
    >>> gru = {"class_name": "GRU", "config": {"go_backwards": False}}
    >>> architecture_lookahead([conv, conv, conv, gru])
    3
    >>> architecture_lookahead([conv, {"class_name": "Bidirectional", "config": {}}]) is None
    True
    """
    total = 0
    for layer in layers:
        kind, cfg = layer.get("class_name", ""), layer.get("config", {}) or {}
        if kind in _FRAMEWISE:
            continue
        if kind in ("Conv1D", "Conv2D"):
            k = np.atleast_1d(cfg.get("kernel_size", 1))[0]
            d = np.atleast_1d(cfg.get("dilation_rate", 1))[0]
            stride = np.atleast_1d(cfg.get("strides", 1))[0]
            if stride != 1 or cfg.get("data_format", "channels_last") != "channels_last":
                return None
            pad = cfg.get("padding", "valid")
            if pad == "same":
                total += int(math.ceil((int(k) - 1) / 2)) * int(d)
            elif pad != "causal":
                return None
        elif kind in ("MaxPooling2D", "AveragePooling2D", "MaxPooling1D", "AveragePooling1D"):
            pool = np.atleast_1d(cfg.get("pool_size", 1))[0]
            stride = np.atleast_1d(cfg.get("strides") or cfg.get("pool_size", 1))[0]
            if pool != 1 or stride != 1:
                return None
        elif kind in ("GRU", "LSTM", "SimpleRNN"):
            if cfg.get("go_backwards", False):
                return None
        elif kind == "Reshape":
            if list(cfg.get("target_shape", []))[:1] != [WINDOW]:
                return None
        else:
            return None
    return total


def model_lookahead(detector, *, predict: Callable[[np.ndarray], np.ndarray] | None = None,
                    max_lookahead: int = STEP // 2) -> int | None:
    """Frames of lookahead for early frames, or None (run complete windows only).

    Read from the Keras architecture (of the detector's Keras model, or of ``model.keras``
    in its folder for a LiteRT model, without loading TensorFlow), and checked by
    :func:`measure_lookahead` when ``predict`` is given (the larger of the two is used). A
    model that is not known to be causal, or looks further than ``max_lookahead``, gets None.
    """
    layers = None
    if detector.backend == "keras" and hasattr(detector.model, "get_config"):
        with contextlib.suppress(Exception):
            layers = detector.model.get_config().get("layers")
    elif detector.path is not None and (Path(detector.path) / "model.keras").exists():
        import json
        import zipfile

        with contextlib.suppress(Exception), zipfile.ZipFile(Path(detector.path) / "model.keras") as z:
            layers = json.loads(z.read("config.json"))["config"]["layers"]
    arch = architecture_lookahead(layers) if layers else None
    if arch is None:
        return None
    seen = measure_lookahead(predict) if predict is not None else 0
    lookahead = max(arch, seen)
    return lookahead if lookahead <= max_lookahead else None


class StreamingDetector:
    """Plop events from a stream of audio blocks, equal to offline detection.

    Parameters
    ----------
    detector
        A :class:`helpers.models.Detector`; default: ``Detector.load(model, backend=backend)``
        (``backend="auto"``: the LiteRT int8 model when the folder has one, else Keras).
    model, backend
        Passed to :meth:`Detector.load <helpers.models.Detector.load>` when ``detector`` is None.
    update_s
        Run the model at most this often (seconds of audio) on a live stream; each run
        makes the frames up to the newest minus the model's lookahead final. Larger blocks
        simply run once per block.
    keep_events
        Keep every event (compactly: three float arrays) for :meth:`events` — needed for the
        labels of a whole session, not for listening.
    on_event
        Called with each :class:`Event` as soon as it is final.
    min_plausibility
        Strict mode (``listen --strict``, like ``detect --strict``): each event also needs
        this :func:`plausibility <helpers.autolabel.plausibility>`, measured by a
        :class:`helpers.autolabel.PlausibilityGate` on the audio around it (it waits for the
        0.3 s after the onset; the noise floor of the last minute instead of offline's 60 s
        block, so an event near the threshold can go the other way where the background
        changes). :attr:`dropped` counts those it drops.

    Feed mono float32 blocks at 16 kHz of any size to :meth:`process`; call :meth:`flush`
    at the end. Memory is bounded: a ring of frames, the front end's last samples and the
    event tracker's few numbers.

    Examples
    --------
    >>> from helpers.synth import synthesize_recording               # doctest: +SKIP
    >>> y = synthesize_recording(seed=1, duration_s=20, sr=16000).audio  # doctest: +SKIP
    >>> det = StreamingDetector()                                     # doctest: +SKIP
    >>> live = [e for i in range(0, len(y), 1600) for e in det.process(y[i:i + 1600])]  # doctest: +SKIP
    >>> live += det.flush()                                           # doctest: +SKIP
    >>> len(live) == len(det.detector.detect(y))                      # doctest: +SKIP
    True
    """

    def __init__(self, detector=None, *, model: str | os.PathLike | None = None, backend: str = "auto",
                 update_s: float = UPDATE_S, keep_events: bool = False,
                 on_event: Callable[[Event], Any] | None = None, min_plausibility: float | None = None):
        if detector is None:
            from helpers.models import Detector

            detector = Detector.load(model, backend=backend)
        if not update_s > 0:
            raise ValueError(f"update_s must be > 0 seconds, got {update_s!r}")
        self.detector = detector
        self.backend = detector.backend
        # at least one run per STEP (1 s): the cost of offline detection, and a bounded ring
        self.update_frames = min(STEP, max(1, int(round(update_s / HOP_S))))
        self.on_event = on_event
        self.keep_events = keep_events
        self._predict = detector.predict_windows
        t0 = time.perf_counter()
        self.lookahead = model_lookahead(detector, predict=self._predict)  # also warms up
        self.warmup_s = time.perf_counter() - t0
        self._frontend = Frontend(kind=detector.config.frontend)
        self._ring = FrameRing(_RING_FRAMES, N_MELS)
        self._tracker = EventTracker(hop_s=HOP_S, **detector.config.postprocess)
        self._gate = None
        if min_plausibility is not None:
            from helpers.autolabel import PlausibilityGate

            self._gate = PlausibilityGate(min_plausibility)
        self.strict_seconds = 0.0
        self._next = 0            # first frame whose probability has not been computed
        self._samples = 0
        self._flushed = False
        self._kept = (array("d"), array("d"), array("d"), array("d"))
        self.n_events = 0
        self.windows_run = 0
        self.model_seconds = 0.0
        self.frontend_seconds = 0.0

    # -- state ------------------------------------------------------------------------
    @property
    def time_s(self) -> float:
        """Audio received so far, in seconds."""
        return self._samples / SR

    @property
    def settled_s(self) -> float:
        """Every event that starts before this time (s) has been emitted."""
        if self._flushed:
            return math.inf
        frame = self._tracker.settled_frame
        if self._gate is not None:
            frame = min(frame, self._gate.settled_frame)
        return frame * HOP_S

    @property
    def strict(self) -> bool:
        """Whether events need a plausibility too (``min_plausibility``)."""
        return self._gate is not None

    @property
    def dropped(self) -> int:
        """Events the strict mode dropped (0 without it)."""
        return self._gate.dropped if self._gate is not None else 0

    @property
    def frames_final(self) -> int:
        """Frames whose probability is final."""
        return self._next

    def events(self) -> pd.DataFrame:
        """Every event so far (``keep_events=True``), like :meth:`Detector.detect` (in strict
        mode with its ``plausibility`` column, like ``detect(..., min_plausibility=...)``)."""
        if not self.keep_events:
            raise ValueError("create the StreamingDetector with keep_events=True to keep the events")
        starts, ends, probs, plaus = (np.frombuffer(a, dtype=np.float64) if len(a) else np.zeros(0)
                                      for a in self._kept)
        table = pd.DataFrame({"start": starts.copy(), "end": ends.copy(),
                              "label": pd.Series([PLOP_LABEL] * len(starts), dtype=str),
                              "probability": probs.copy()})
        if self._gate is not None:
            table["plausibility"] = plaus.copy()
        return table

    # -- feeding ----------------------------------------------------------------------
    def process(self, block: np.ndarray) -> list[Event]:
        """Feed a block of mono float32 audio at 16 kHz; returns the events now final."""
        if self._flushed:
            raise RuntimeError("this stream was flushed; make a new StreamingDetector")
        y = np.asarray(block, dtype=np.float32).reshape(-1)
        out: list[Event] = []
        piece = _PIECE_FRAMES * HOP
        for i in range(0, len(y), piece):
            part = y[i:i + piece]
            self._samples += len(part)
            t0 = time.perf_counter()
            frames = self._frontend.process(part)
            self.frontend_seconds += time.perf_counter() - t0
            if self._gate is not None:
                t0 = time.perf_counter()
                self._gate.feed(part)
                self.strict_seconds += time.perf_counter() - t0
            self._append(frames)
            out += self._advance(final=False)
        return out

    def flush(self) -> list[Event]:
        """End of the stream: the last frames, padded like offline, and the open events."""
        if self._flushed:
            return []
        t0 = time.perf_counter()
        frames = self._frontend.flush()
        self.frontend_seconds += time.perf_counter() - t0
        if self._gate is not None:
            self._gate.finish()
        self._append(frames)
        out = self._advance(final=True)
        out += self._emit(self._tracker.close(), final=True)
        self._flushed = True
        return out

    def _append(self, frames: np.ndarray) -> None:
        if len(frames):
            t0 = time.perf_counter()
            self._ring.append(self.detector.normalize(frames).astype(np.float32))
            self.frontend_seconds += time.perf_counter() - t0

    def _target(self, final: bool) -> int:
        m = self._ring.stop
        if final:
            return m
        if self.lookahead is not None:
            return m - self.lookahead
        return STEP * (m // STEP) if m >= WINDOW else 0   # complete windows only

    def _advance(self, *, final: bool) -> list[Event]:
        target = self._target(final)
        if target <= self._next or (not final and target - self._next < self.update_frames):
            return []
        m = self._ring.stop
        parts = []   # (window start, first frame, end frame)
        e = self._next
        while e < target:
            s = window_start_for(e)
            hi = min(s + WINDOW, target)
            parts.append((s, e, hi))
            e = hi
        x = np.stack([self._ring.get(s, min(s + WINDOW, m), pad_to=WINDOW) for s, _, _ in parts])
        t0 = time.perf_counter()
        probs = np.asarray(self._predict(x[..., None]), dtype=np.float32)
        self.model_seconds += time.perf_counter() - t0
        self.windows_run += len(parts)
        curve = np.concatenate([probs[k, lo - s:hi - s] for k, (s, lo, hi) in enumerate(parts)])
        self._next = target
        self._ring.discard(window_start_for(self._next))
        return self._emit(self._tracker.push(curve))

    def _emit(self, found: list[tuple[int, int, float]], *, final: bool = False) -> list[Event]:
        if self._gate is None:
            passed = [(a, b, p, None) for a, b, p in found]
        else:
            t0 = time.perf_counter()
            passed = self._gate.push(found, settled=math.inf if final else self._tracker.settled_frame)
            self.strict_seconds += time.perf_counter() - t0
        events = []
        for start, end, peak, plausible in passed:
            ev = Event(start * HOP_S, end * HOP_S, peak, self.time_s, plausible)
            events.append(ev)
            self.n_events += 1
            if self.keep_events:
                for arr, v in zip(self._kept, (ev.start, ev.end, ev.probability, plausible)):
                    if v is not None:          # the fourth, plausibility, in strict mode only
                        arr.append(v)
            if self.on_event is not None:
                self.on_event(ev)
        return events


# ---------------------------------------------------------------------------------------
# Rolling BPM
# ---------------------------------------------------------------------------------------
class RollingBPM:
    """The BPM of the last ``window_s`` seconds, every ``every_s`` seconds.

    Add onsets as they come (:meth:`add`); :meth:`at` gives
    :func:`helpers.events.bpm_from_events` of the onsets in ``[t − window_s, t)`` (``[0, t)``
    while ``t < window_s``) with ``duration_s`` the window's length. Queries must not go
    back in time: older onsets are forgotten.

    Examples
    --------
    >>> r = RollingBPM(window_s=300, every_s=60)
    >>> for t in np.arange(0, 400, 2.0):
    ...     r.add(float(t))
    >>> r.next_report, r.at(360.0)["bpm"], r.at(360.0)["n_events"]
    (60.0, 30.0, 150)
    """

    def __init__(self, *, window_s: float = 300.0, every_s: float = 60.0, confidence: float = 0.95):
        if not (window_s > 0 and every_s > 0):
            raise ValueError(f"window_s and every_s must be > 0, got {window_s!r}, {every_s!r}")
        self.window_s = float(window_s)
        self.every_s = float(every_s)
        self.confidence = confidence
        self.next_report = self.every_s
        self._onsets: deque[float] = deque()
        self._k = 1

    def add(self, onset_s: float) -> None:
        self._onsets.append(float(onset_s))

    def at(self, t: float) -> dict:
        """BPM (``bpm``, ``low``, ``high``, ``n_events``, ...) of the window ending at ``t``."""
        from helpers.events import bpm_from_events

        lo = max(0.0, t - self.window_s)
        while self._onsets and self._onsets[0] < lo:
            self._onsets.popleft()
        chunk = [o for o in self._onsets if o < t]
        r = bpm_from_events(np.asarray(chunk, dtype=float), duration_s=t - lo,
                            confidence=self.confidence)
        r.update(time_s=float(t), window_s=float(t - lo))
        return r

    def advance(self) -> float:
        """Move to the next report time and return the one just due."""
        t = self.next_report
        self._k += 1
        self.next_report = self._k * self.every_s
        return t


# ---------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------
class _Converter:
    """Interleaved samples at ``rate`` with ``channels`` → mono float32 at 16 kHz, streaming.

    The channels are averaged by :func:`helpers.audio.to_mono` (block by block), and the rate changed with
    ``soxr.ResampleStream`` (HQ), which gives the same samples as resampling the whole signal
    at once. ``max_s`` stops after that many seconds of input.
    """

    def __init__(self, rate: float, channels: int, *, max_s: float | None = None):
        if not rate > 0:
            raise ValueError(f"the sample rate must be positive, got {rate!r}")
        if channels < 1:
            raise ValueError(f"need at least one channel, got {channels!r}")
        self.rate, self.channels = float(rate), int(channels)
        self._left = None if max_s is None else int(round(max_s * rate))
        self.frames_in = 0
        self._soxr = None
        if self.rate != SR:
            import soxr

            self._soxr = soxr.ResampleStream(self.rate, SR, 1, dtype="float32", quality="HQ")

    @property
    def exhausted(self) -> bool:
        return self._left is not None and self._left <= 0

    def feed(self, frames: np.ndarray) -> np.ndarray:
        """``frames``: float32 of shape (n, channels) or (n,)."""
        x = np.asarray(frames, dtype=np.float32)
        if x.ndim == 1:
            x = x.reshape(-1, self.channels)
        if self._left is not None:
            x = x[:max(self._left, 0)]
            self._left -= len(x)
        self.frames_in += len(x)
        y = x[:, 0] if self.channels == 1 else to_mono(x.T)
        y = np.ascontiguousarray(y)
        return self._soxr.resample_chunk(y) if self._soxr is not None else y

    def finish(self) -> np.ndarray:
        if self._soxr is None:
            return np.zeros(0, dtype=np.float32)
        return self._soxr.resample_chunk(np.zeros(0, dtype=np.float32), last=True)


class _Source:
    """What every source has: ``name``, ``description``, ``live``, ``end_reason``, ``overflows``."""

    name = "stream"
    description = ""
    live = False
    overflows = 0
    end_reason = ""
    wall_clock = False
    #: a threading.Event that ends the reading even while the input is quiet (run_session sets it)
    stop: threading.Event | None = None

    def __iter__(self) -> Iterator[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        pass


class FileSource(_Source):
    """An audio file as blocks of float32 mono 16 kHz audio.

    ``realtime=True`` paces the blocks at the speed of the audio (as if live); otherwise they
    come as fast as they are asked for. Files that soundfile reads (wav, flac, ogg, mp3…) are
    read block by block; others (m4a, opus…) are decoded whole with
    :func:`helpers.audio.load_audio` first. The samples are those of ``load_audio(path)``.

    Examples
    --------
    >>> import tempfile, soundfile as sf
    >>> path = Path(tempfile.mkdtemp()) / "tone.wav"
    >>> sf.write(path, np.zeros(44100), 44100)
    >>> sum(len(b) for b in FileSource(path, block_s=0.25))
    16000
    """

    def __init__(self, path: str | os.PathLike, *, block_s: float = FAST_BLOCK_S, realtime: bool = False,
                 max_s: float | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such file; give the path of an audio file")
        if self.path.is_dir():
            raise ValueError(f"{self.path} is a folder; --file needs one audio file")
        self.block_s = float(block_s)
        self.realtime = realtime
        self.live = realtime
        self.max_s = max_s
        self.name = self.path.stem
        self.description = f"file {self.path.name}" + (" (real time)" if realtime else "")
        #: set when the file turns out shorter than its header says (the session's status is 1)
        self.problem: Exception | None = None
        from helpers.audio import TruncatedAudio, check_file

        try:
            check_file(self.path)      # an empty file, a wrong extension: said now
        except TruncatedAudio as e:    # a copy cut short: the part that is there is listened to
            self.problem = e

    def _raw_blocks(self) -> Iterator[tuple[np.ndarray, float, int]]:
        import soundfile as sf

        try:
            f = sf.SoundFile(str(self.path))
        except Exception:
            from helpers.audio import load_audio

            y = load_audio(self.path)
            n = max(1, int(self.block_s * SR))
            for i in range(0, len(y), n):
                yield y[i:i + n], SR, 1
            return
        from helpers.audio import decoding_failed, no_samples, shortfall

        with f:
            if f.frames == 0:   # as detect reports it
                raise no_samples(self.path)
            n = max(1, int(round(self.block_s * f.samplerate)))
            step = min(n, f.samplerate)   # decoded a second at a time: a damaged file loses little
            got = 0
            while True:
                parts, have = [], 0
                try:
                    while have < n:
                        part = f.read(min(step, n - have), dtype="float32", always_2d=True)
                        if len(part) == 0:
                            break
                        parts.append(part)
                        have += len(part)
                except Exception as exc:   # a damaged file: what was decoded so far still counts
                    if parts:
                        yield np.concatenate(parts), f.samplerate, f.channels
                    raise decoding_failed(self.path, exc, declared=f.frames, sr=f.samplerate) from exc
                if not parts:
                    break
                got += have
                yield (parts[0] if len(parts) == 1 else np.concatenate(parts)), f.samplerate, f.channels
            # a copy cut short ends early: say so, as detect does
            self.problem = self.problem or shortfall(self.path, fmt=f.format, declared=f.frames,
                                                     got=got, sr=f.samplerate)

    def __iter__(self) -> Iterator[np.ndarray]:
        conv = None
        t0 = time.monotonic()
        out = 0
        for block, rate, channels in self._raw_blocks():
            if conv is None:
                conv = _Converter(rate, channels, max_s=self.max_s)
            y = conv.feed(block)
            if len(y):
                out += len(y)
                if self.realtime:
                    _sleep_until(t0 + out / SR)
                yield y
            if conv.exhausted:
                break
        if conv is not None:
            y = conv.finish()
            if len(y):
                yield y
        if conv is not None and conv.exhausted:
            self.end_reason, self.problem = "duration reached", None
        else:
            self.end_reason = "end of file" + (f", but {self.problem}" if self.problem is not None else "")


def _sleep_until(t: float) -> None:
    while True:
        left = t - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.1))


class RawSource(_Source):
    """Raw 16-bit little-endian PCM from a binary stream (default: stdin).

    ``arecord -D plughw:1 -f S16_LE -r 48000 -c 1 -t raw | python -m helpers listen --stdin --rate 48000``

    Examples
    --------
    >>> import io
    >>> pcm = (np.ones(32000) * 1000).astype("<i2").tobytes()
    >>> blocks = list(RawSource(io.BytesIO(pcm), rate=16000))
    >>> len(blocks), sum(map(len, blocks)), round(float(blocks[0][0]), 4)
    (20, 32000, 0.0305)
    """

    def __init__(self, stream: IO[bytes] | None = None, *, rate: float = SR, channels: int = 1,
                 block_s: float = LIVE_BLOCK_S, max_s: float | None = None, name: str = "stdin"):
        self.stream = stream
        self.rate, self.channels = float(rate), int(channels)
        self.block_s = float(block_s)
        self.max_s = max_s
        self.live = True
        self.name = name
        self.description = f"raw 16-bit PCM on {name} at {self.rate:g} Hz, {self.channels} channel(s)"
        _Converter(self.rate, self.channels)   # check the options now

    def __iter__(self) -> Iterator[np.ndarray]:
        stream = self.stream if self.stream is not None else sys.stdin.buffer
        conv = _Converter(self.rate, self.channels, max_s=self.max_s)
        frame_bytes = 2 * self.channels
        n = max(1, int(round(self.block_s * self.rate))) * frame_bytes
        rest = b""
        read = self._reader(stream)
        while not conv.exhausted:
            data = read(n)
            if data is None:       # stopped while the input was quiet
                break
            if not data:
                break
            data = rest + data
            usable = len(data) - len(data) % frame_bytes
            rest = data[usable:]
            if usable:
                x = np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0
                y = conv.feed(x.reshape(-1, self.channels))
                if len(y):
                    yield y
        y = conv.finish()
        if len(y):
            yield y
        self.end_reason = "duration reached" if conv.exhausted else f"end of {self.name}"

    def _reader(self, stream) -> Callable[[int], bytes | None]:
        """``read(n)``: up to ``n`` bytes, ``b""`` at the end of the input, or None once
        ``self.stop`` (set by :func:`run_session`) is set while no data comes. The process's
        own stdin (``stream=None``, nothing read from it before) is read from its file
        descriptor after ``select`` says it has data (POSIX), so that Ctrl-C or SIGTERM ends a
        session whose input has gone quiet; a stream given by the caller (which may have
        buffered data already) is read as it is."""
        import select

        if self.stream is not None or os.name != "posix":   # select takes only sockets on Windows
            return stream.read
        try:
            fd = stream.fileno()
            select.select([fd], [], [], 0)
        except (AttributeError, OSError, ValueError):
            return stream.read

        def read(n: int) -> bytes | None:
            while not select.select([fd], [], [], 0.25)[0]:
                if self.stop is not None and self.stop.is_set():
                    return None
            return os.read(fd, n)

        return read


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the C libraries' chatter on stderr (ALSA and JACK probing devices)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):   # no real stderr (e.g. some notebook front ends)
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _pyaudio():
    try:
        import pyaudio
    except ImportError as e:  # pragma: no cover - PyAudio is in requirements.txt
        raise OSError("PyAudio is not installed: install portaudio19-dev (apt) and then "
                      "`pip install PyAudio`") from e
    with _quiet_stderr():
        return pyaudio, pyaudio.PyAudio()


def _input_devices(pa) -> list[dict]:
    try:
        default = pa.get_default_input_device_info()["index"]
    except OSError:
        default = None
    out = []
    for i in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(i)
        if info.get("maxInputChannels", 0) > 0:
            api = pa.get_host_api_info_by_index(info["hostApi"])["name"]
            out.append({"index": i, "name": info["name"], "host_api": api,
                        "channels": int(info["maxInputChannels"]),
                        "rate": float(info["defaultSampleRate"]), "default": i == default})
    return out


def list_devices() -> list[dict]:
    """The audio input devices PortAudio sees: ``index``, ``name``, ``host_api``,
    ``channels`` (max input channels), ``rate`` (default sample rate), ``default``.

    Examples
    --------
    >>> for d in list_devices():                      # doctest: +SKIP
    ...     print(d["index"], d["name"], d["rate"])
    0 USB PnP Sound Device: Audio (hw:1,0) 48000.0
    """
    _, pa = _pyaudio()
    try:
        with _quiet_stderr():
            return _input_devices(pa)
    finally:
        pa.terminate()


def _find_device(devices: list[dict], device: int | str | None) -> dict:
    shown = "; ".join(f"{d['index']}: {d['name']}" for d in devices) or "none"
    if not devices:
        raise OSError("no audio input device found (PortAudio sees none). Plug in a microphone, "
                      "check `arecord -l`, or use --file / --stdin")
    if device is None:
        for d in devices:
            if d["default"]:
                return d
        return devices[0]
    if isinstance(device, int) or str(device).strip().isdigit():
        idx = int(device)
        for d in devices:
            if d["index"] == idx:
                return d
        raise ValueError(f"no input device with index {idx}; input devices: {shown}")
    exact = [d for d in devices if d["name"] == device]
    if exact:
        return exact[0]
    near = [d for d in devices if str(device).lower() in d["name"].lower()]
    if len(near) == 1:
        return near[0]
    if not near:
        raise ValueError(f"no input device named like {device!r}; input devices: {shown}")
    raise ValueError(f"{device!r} matches several input devices ({'; '.join(d['name'] for d in near)}); "
                     "give its index or more of its name")


class Microphone(_Source):
    """A PyAudio input device as blocks of float32 mono 16 kHz audio.

    The device is opened at its own default sample rate (or ``rate``), 16-bit, one channel
    (two, averaged, when it has no mono mode), and read in callback mode: PortAudio's thread
    puts each block in a queue of ``queue_s`` seconds that this iterator empties. An input
    overflow (PortAudio's flag, or a full queue when the listener falls behind) is counted in
    :attr:`overflows` and listening goes on. The iteration ends cleanly when the device stops
    delivering audio for ``stall_s`` seconds or its stream stops (a vanished device), with
    the reason in :attr:`end_reason`.

    Examples
    --------
    >>> with Microphone("USB") as mic:          # doctest: +SKIP
    ...     for block in mic:
    ...         ...
    """

    def __init__(self, device: int | str | None = None, *, rate: float | None = None,
                 block_s: float = LIVE_BLOCK_S, max_s: float | None = None, queue_s: float = 10.0,
                 stall_s: float = 5.0):
        self.device, self.rate, self.block_s, self.max_s = device, rate, float(block_s), max_s
        self.queue_s, self.stall_s = float(queue_s), float(stall_s)
        self.live = True
        self.wall_clock = True
        self.overflows = 0
        self.dropped_blocks = 0
        self.vanished = False
        self.stuck = False
        self._done = False
        self._pa = self._stream = None
        self._queue: queue.Queue = queue.Queue(maxsize=max(2, int(math.ceil(self.queue_s / self.block_s))))
        self.info: dict = {}
        self.name = "mic"
        self.description = "microphone"

    # PortAudio's thread: never raise, never wait long
    def _callback(self, in_data, frame_count, time_info, status):
        if self._done:
            return (None, self._pyaudio.paComplete)
        if status & self._pyaudio.paInputOverflow:
            self.overflows += 1
        try:
            self._queue.put(in_data, timeout=1.0)
        except queue.Full:
            self.overflows += 1
            self.dropped_blocks += 1
        return (None, self._pyaudio.paContinue)

    def open(self) -> "Microphone":
        self._pyaudio, self._pa = _pyaudio()
        try:
            with _quiet_stderr():
                devices = _input_devices(self._pa)
            d = _find_device(devices, self.device)
            self.info = d
            rates = [self.rate] if self.rate else list(dict.fromkeys([d["rate"], 48000.0, 44100.0, float(SR)]))
            tried = []
            for channels in sorted({1, min(2, d["channels"])}):
                for rate in rates:
                    try:
                        with _quiet_stderr():
                            self._stream = self._pa.open(
                                format=self._pyaudio.paInt16, channels=channels, rate=int(rate), input=True,
                                input_device_index=d["index"], stream_callback=self._callback,
                                frames_per_buffer=max(1, int(round(self.block_s * rate))), start=False)
                        self.channels, self.device_rate = channels, float(rate)
                        break
                    except (OSError, ValueError) as e:
                        tried.append(f"{channels} ch at {rate:g} Hz: {e}")
                if self._stream is not None:
                    break
            if self._stream is None:
                raise OSError(f"could not open input device {d['index']} ({d['name']}): " + "; ".join(tried))
            self.name = re.sub(r"[^A-Za-z0-9_.-]+", "_", d["name"]).strip("_") or "mic"
            self.description = (f"device {d['index']} ({d['name']}) at {self.device_rate:g} Hz, "
                                f"{self.channels} channel(s)")
            self._stream.start_stream()
        except BaseException:
            self.close()
            raise
        return self

    def __enter__(self) -> "Microphone":
        return self.open() if self._stream is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        stream, pa = self._stream, self._pa
        self._stream = self._pa = None
        # unblock a callback waiting on a full queue, then stop
        with contextlib.suppress(Exception):
            while True:
                self._queue.get_nowait()
        if stream is not None and not self.vanished:
            with contextlib.suppress(Exception):
                stream.stop_stream()
            with contextlib.suppress(Exception):
                stream.close()
        elif stream is not None:
            # A device that stopped delivering may leave PortAudio's thread stuck inside the
            # driver, and closing would wait for it for ever: close from a helper thread and
            # give up after two seconds (the process can still exit).
            closer = threading.Thread(target=lambda: (stream.close(), pa.terminate()), daemon=True)
            closer.start()
            closer.join(2.0)
            self.stuck = closer.is_alive()
            return
        if pa is not None:
            with contextlib.suppress(Exception):
                pa.terminate()

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._stream is None:
            self.open()
        conv = _Converter(self.device_rate, self.channels, max_s=self.max_s)
        last = time.monotonic()
        while not conv.exhausted:
            try:
                data = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self.stop is not None and self.stop.is_set():
                    break
                try:
                    active = self._stream is not None and self._stream.is_active()
                except Exception:
                    active = False
                if not active:
                    self.end_reason, self.vanished = "the input device stopped (unplugged?)", True
                    break
                if time.monotonic() - last > self.stall_s:
                    self.end_reason = f"no audio from the input device for {self.stall_s:g} s (unplugged?)"
                    self.vanished = True
                    break
                continue
            last = time.monotonic()
            x = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
            y = conv.feed(x.reshape(-1, self.channels))
            if len(y):
                yield y
        else:
            self.end_reason = "duration reached"
        self._done = True   # PortAudio's thread stops queueing (and counting overflows)
        y = conv.finish()
        if len(y):
            yield y


# ---------------------------------------------------------------------------------------
# A listening session: console, CSV log, labels, Brewfather
# ---------------------------------------------------------------------------------------
LOG_COLUMNS = ("session", "kind", "time_s", "start_s", "end_s", "probability", "bpm", "low", "high",
               "n_events", "status", "detail", "wall_time")


def _clock(t: float) -> str:
    """``h:mm:ss.ss`` of a time in seconds."""
    if not math.isfinite(t):
        return str(t)
    h, rem = divmod(t, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h)}:{int(m):02d}:{s:05.2f}"


def _num(x: float, fmt: str = ".1f") -> str:
    return format(x, fmt) if x is not None and math.isfinite(x) else "n/a"


class _Log:
    """The CSV log: one row per event and per report, appended, flushed and synced at once."""

    def __init__(self, path: str | os.PathLike, session: str, *,
                 on_error: Callable[[str], Any] | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        torn = not new and not _ends_with_newline(self.path)
        self._f = open(self.path, "a", newline="", encoding="utf-8")
        self._w = csv.writer(self._f)
        self._lock = threading.Lock()
        self.session = session
        self._on_error = on_error
        self.failed = False
        if new:
            self._w.writerow(LOG_COLUMNS)
            self._sync()
        elif torn:   # the last session died mid-row (a full disk, a power cut): end that row
            self._f.write('"\r\n' if _last_line(self.path).count(b'"') % 2 else "\r\n")  # inside quotes?
            self._sync()

    def _sync(self) -> None:
        self._f.flush()
        with contextlib.suppress(OSError):
            os.fsync(self._f.fileno())

    def row(self, kind: str, time_s: float, **values: Any) -> None:
        def fmt(v):
            if v is None:
                return ""
            if isinstance(v, float):
                return "" if not math.isfinite(v) else repr(round(v, 6))
            return str(v)

        cells = [self.session, kind, fmt(round(float(time_s), 3))]
        cells += [fmt(values.get(k)) for k in LOG_COLUMNS[3:-1]]
        cells.append(datetime.now(timezone.utc).isoformat(timespec="seconds"))
        with self._lock:
            if self.failed or self._f.closed:   # closed: a post given up at the end came back late
                return
            try:
                self._w.writerow(cells)
                self._sync()
            except OSError as e:   # a full disk must not stop the listener (or lose the labels)
                self.failed = True
                if self._on_error is not None:
                    self._on_error(f"log: cannot write {self.path} ({e.strerror or e}); the session "
                                   "goes on without the log")
                else:
                    raise

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._f.close()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _last_line(path: Path, most: int = 65536) -> bytes:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - most))
        return f.read().rsplit(b"\n", 1)[-1]


def run_session(source: Iterable[np.ndarray], *, detector: StreamingDetector,
                bpm_window_s: float = 300.0, report_every_s: float = 60.0, quiet: bool = False,
                log: str | os.PathLike | None = None, out_dir: str | os.PathLike | None = None,
                brewfather=None, brewfather_async: bool | None = None,
                temperature: Callable[[], float | None] | None = None,
                stop: threading.Event | None = None, stdout: IO[str] | None = None,
                stderr: IO[str] | None = None, on_event: Callable[[Event], Any] | None = None,
                on_report: Callable[[dict], Any] | None = None) -> dict:
    """Listen to ``source`` until it ends, ``stop`` is set or Ctrl-C; returns a summary.

    Prints a line per plop (audio time, probability; for a microphone also the wall-clock
    time) and every ``report_every_s`` the BPM of the last ``bpm_window_s`` seconds with its
    95 % interval (``quiet``: the BPM lines only). ``log``: a CSV that gets every event and
    report at once (appended, flushed and synced, so a crash or power cut loses nothing).
    ``out_dir``: the Audacity labels of the whole session, ``<source name>.txt``, appended as
    the plops are found and rewritten whole at the end (``detector`` must keep its events).
    An error while listening (a damaged file) ends the session with status 1 and everything
    found so far kept; a log or label file that cannot be written (a full disk) is said once
    and the session goes on. ``brewfather``: a
    :class:`helpers.brewfather.BrewfatherStream` (with ``start=0.0``: audio time) that gets
    the rolling BPM whenever a post is due; from a live source the posts go through a
    worker thread so that the audio never waits for the network (``brewfather_async``).
    ``temperature``: called at each post for a ``temp`` (°C) to send along, or None.

    The summary (a dict) has ``reason``, ``audio_s``, ``wall_s``, ``events``, ``last_report``,
    ``overflows``, ``labels``, ``brewfather`` and ``status`` (0; 1 when the device vanished, the
    file was damaged or shorter than its header says, or reading failed). An error that is not
    about the audio or a file (a bug, a callback's error) is raised again once the labels,
    the log and the summary are written.
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    stop = stop or threading.Event()
    live = bool(getattr(source, "live", False))
    wall = bool(getattr(source, "wall_clock", False))
    started = datetime.now()
    session = started.strftime("%Y-%m-%dT%H:%M:%S")
    printer = threading.Lock()
    if out_dir is not None and not detector.keep_events:
        raise ValueError("out_dir needs a StreamingDetector(keep_events=True)")
    say = _Printer(stdout, printer)
    if brewfather is not None and brewfather.next_due() is None:
        raise ValueError("give the BrewfatherStream start=0.0: the session runs on audio time")
    logf = _Log(log, session, on_error=lambda line: say(line, err=stderr)) if log is not None else None
    rolling = RollingBPM(window_s=bpm_window_s, every_s=report_every_s)
    last_report: dict | None = None
    bf_next = brewfather.next_due() if brewfather is not None else None
    labels = None   # opened once every argument is known to be right (it truncates the file)
    if out_dir is not None:
        name = getattr(source, "name", "stream")
        if live and not isinstance(source, FileSource):
            name = f"{name}-{started.strftime('%Y%m%d-%H%M%S')}"
        labels = _Labels(Path(out_dir) / f"{name}.txt", say, stderr)
    if isinstance(source, _Source):
        source.stop = stop
    worker = None
    if brewfather is not None and (live if brewfather_async is None else brewfather_async):
        worker = _Poster()

    if logf:
        logf.row("start", 0.0, status="started", detail=getattr(source, "description", ""))

    def event_line(ev: Event) -> None:
        rolling.add(ev.start)
        if labels is not None:
            labels.add(ev)
        if logf:
            logf.row("plop", ev.emitted_at, start_s=ev.start, end_s=ev.end, probability=ev.probability,
                     detail=None if ev.plausibility is None else f"plausibility {ev.plausibility:.3f}")
        if not quiet:
            stamp = datetime.now().strftime("%H:%M:%S  ") if wall else ""
            second = "" if ev.plausibility is None else f"  plausibility {ev.plausibility:.2f}"
            say(f"{stamp}{_clock(ev.start)}  plop  p={ev.probability:.2f}{second}")
        if on_event is not None:
            on_event(ev)

    def post(bpm: dict, t: float) -> None:
        w = bpm["window_s"]
        comment = (f"{bpm['n_events']} plops in " + (f"{w / 60:.0f} min" if w >= 120 else f"{w:.0f} s")
                   + f"; 95% CI {_num(bpm['low'])}-{_num(bpm['high'])}")
        temp = None
        if temperature is not None:
            try:
                temp = temperature()
            except (OSError, ValueError) as e:
                say(f"temperature not read: {e}", err=stderr)
        try:
            rep = brewfather.submit(bpm["bpm"], now=t, comment=comment, temp=temp)
        except Exception as e:   # a bug or bad value must not stop the listener
            say(f"Brewfather: report at {_clock(t)} not made ({type(e).__name__}: {e})", err=stderr)
            return
        if rep.status == "sent":
            msg = f"Brewfather: sent bpm {bpm['bpm']:.1f} at {_clock(t)} (HTTP {rep.http_status}" + (
                f", with {rep.merged} earlier report(s))" if rep.merged else ")")
        elif rep.status == "failed":
            msg = (f"Brewfather: report at {_clock(t)} failed after {rep.attempts} attempt(s), kept "
                   f"for the next post: {rep.error}")
        else:
            msg = f"Brewfather: report at {_clock(t)} skipped (not due)"
        say(msg, err=stderr if rep.status != "sent" or quiet else None)
        if logf:
            logf.row("brewfather", t, bpm=bpm["bpm"], status=rep.status,
                     detail=rep.error or f"HTTP {rep.http_status}")

    def reports(settled: float) -> None:
        nonlocal last_report, bf_next
        if bf_next is not None and (worker is None or worker.idle):
            # a post that got through after retries moves the next one later (Brewfather counts
            # its 15 minutes from the post it received)
            bf_next = max(bf_next, brewfather.next_due() or bf_next)
        while True:
            t = min(rolling.next_report, bf_next if bf_next is not None else math.inf)
            if t > settled:
                return
            r = rolling.at(t)
            if t == rolling.next_report:
                rolling.advance()
                last_report = r
                stamp = datetime.now().strftime("%H:%M:%S  ") if wall else ""
                say(f"{stamp}{_clock(t)}  BPM {_num(r['bpm'])}  (95% CI {_num(r['low'])}–{_num(r['high'])}, "
                    f"{r['n_events']} plops in the last {r['window_s']:.0f} s)")
                if logf:
                    logf.row("bpm", t, bpm=r["bpm"], low=r["low"], high=r["high"], n_events=r["n_events"])
                if on_report is not None:
                    on_report(r)
            if bf_next is not None and t == bf_next:
                bf_next = t + brewfather.interval_s
                if worker is not None:
                    worker.submit(post, r, t)
                else:
                    post(r, t)
                    bf_next = max(bf_next, brewfather.next_due() or bf_next)

    previous = detector.on_event
    detector.on_event = event_line
    reason, status = "", 0
    failure: Exception | None = None
    t_wall = time.perf_counter()
    cpu0 = time.process_time()
    final = None
    try:
        try:
            for block in source:
                detector.process(block)
                reports(detector.settled_s)
                if stop.is_set():
                    reason = getattr(stop, "reason", "") or "stopped"
                    break
            else:
                reason = getattr(source, "end_reason", "") or "end of stream"
        except KeyboardInterrupt:
            reason = "interrupted (Ctrl-C)"
        except Exception as e:   # a damaged file, a lost device, a bug: keep what was found so far
            failure, status = e, 1
            reason = (f"error: {e}" if isinstance(e, (AudioError, OSError))
                      else f"error: {type(e).__name__}: {e}")
        finally:
            with contextlib.suppress(Exception):
                source.close()
        if stop.is_set() and not reason.startswith(getattr(stop, "reason", "") or "stopped"):
            reason = getattr(stop, "reason", "") or "stopped"
        problem = getattr(source, "problem", None)   # a file shorter than its header says
        if problem is not None and str(problem) not in reason:
            reason += f"; {problem}"
        if getattr(source, "vanished", False) or problem is not None:
            status = 1
        try:
            detector.flush()
            end = detector.time_s
            reports(end)   # every report due up to the end (the stream is settled now)
            final = rolling.at(end) if end > 0 else None
        except Exception as e:  # e.g. interrupted in the middle of a block
            reason += f" (the last frames could not be processed: {type(e).__name__}: {e})"
    finally:
        detector.on_event = previous
        if labels is not None:   # first, before anything that may wait or fail
            labels.finish(detector.events())
        if worker is not None:
            worker.finish(say, stderr)
    wall_s = time.perf_counter() - t_wall
    cpu_s = time.process_time() - cpu0
    labels_path = labels.path if labels is not None and labels.ok else None
    summary = {"reason": reason, "status": status, "audio_s": detector.time_s, "wall_s": wall_s,
               "cpu_s": cpu_s, "events": detector.n_events, "dropped": detector.dropped,
               "strict": detector.strict, "last_report": last_report,
               "final": final, "overflows": int(getattr(source, "overflows", 0)),
               "labels": str(labels_path) if labels_path else None,
               "log": str(log) if log is not None else None,
               "brewfather": (brewfather.summary(wait=worker is None or not worker.given_up)
                              if brewfather is not None else None),
               "windows_run": detector.windows_run, "model_s": detector.model_seconds}
    if logf:
        logf.row("end", detector.time_s, n_events=detector.n_events,
                 bpm=final["bpm"] if final else None, status=reason)
        logf.close()
    for line in _summary_lines(summary, source):
        say(line, err=stderr)
    if failure is not None and not isinstance(failure, (AudioError, OSError)):
        raise failure   # a bug (or a callback's error) is not an ending: its traceback matters
    return summary


class _Poster:
    """Runs the Brewfather posts one at a time in a daemon thread, so that the audio never
    waits for the network, and a post given up at the end keeps no process alive."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._busy = 0
        self._idle = threading.Event()
        self._idle.set()
        self.given_up = False
        threading.Thread(target=self._run, name="brewfather", daemon=True).start()

    @property
    def idle(self) -> bool:
        return self._idle.is_set()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            self._busy += 1
            self._idle.clear()
        self._queue.put((fn, args))

    def _run(self) -> None:
        while True:
            fn, args = self._queue.get()
            try:
                fn(*args)
            except Exception:   # post() says what went wrong; nothing may end this thread
                pass
            finally:
                with self._lock:
                    self._busy -= 1
                    if self._busy == 0:
                        self._idle.set()

    def finish(self, say: Callable[..., None], stderr: IO[str]) -> None:
        """Wait for the posts under way (saying so); a second Ctrl-C gives them up."""
        if self.idle:
            return
        try:   # the message inside: a Ctrl-C right after it is printed is already a "give up"
            say("waiting for the Brewfather post under way (Ctrl-C again to give it up)…", err=stderr)
            while not self._idle.wait(0.2):
                pass
        except KeyboardInterrupt:
            self.given_up = True
            say("Brewfather: the post under way was given up", err=stderr)


class _Labels:
    """The session's Audacity labels, ``<name>.txt``: each plop is appended as it is found
    (flushed, so a crash, a power cut or a killed process keeps them), and the file is
    rewritten whole at the end (sorted, atomically). A write error is said once; the session
    goes on."""

    def __init__(self, path: Path, say: Callable[..., None], stderr: IO[str]):
        self.path, self._say, self._stderr = path, say, stderr
        self.ok = True
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(path, "w", encoding="utf-8", newline="\n")
        except OSError as e:
            self._fail(e)

    def _fail(self, e: OSError) -> None:
        if self.ok:
            self._say(f"labels: cannot write {self.path} ({e.strerror or e}); the session goes on "
                      "without them", err=self._stderr)
        self.ok = False
        with contextlib.suppress(Exception):
            self._f.close()

    def add(self, ev: Event) -> None:
        if self.ok:
            try:
                self._f.write(f"{ev.start:.6f}\t{max(ev.end, ev.start):.6f}\t{PLOP_LABEL}\n")
                self._f.flush()
                with contextlib.suppress(OSError):   # to the disk, as the log: a power cut keeps it
                    os.fsync(self._f.fileno())
            except OSError as e:
                self._fail(e)

    def finish(self, events: pd.DataFrame) -> None:
        from helpers.labels import write_labels

        with contextlib.suppress(Exception):
            self._f.close()
        try:
            write_labels(events, self.path)
            self.ok = True
        except OSError as e:
            self.ok = True   # say it even if appending had failed before
            self._fail(e)


class _Printer:
    """Prints a line to stdout (or ``err``). When the reader of stdout has gone (``listen |
    head``, a closed terminal), the session goes on silently: its log, labels and Brewfather
    posts matter more than its console."""

    def __init__(self, stdout: IO[str], lock: threading.Lock):
        self.stdout, self.lock = stdout, lock
        self.gone: set[int] = set()

    def __call__(self, line: str, *, err: IO[str] | None = None) -> None:
        f = err or self.stdout
        with self.lock:
            if id(f) in self.gone:
                return
            try:
                try:
                    print(line, file=f, flush=True)
                except UnicodeEncodeError:   # a console that cannot show "–" or "…"
                    enc = getattr(f, "encoding", None) or "ascii"
                    print(line.encode(enc, "replace").decode(enc), file=f, flush=True)
            except (OSError, ValueError):   # the reader has gone (EPIPE, EIO) or the file is closed
                self.gone.add(id(f))
                with contextlib.suppress(Exception):
                    if f.fileno() in (1, 2):   # no "Exception ignored" when Python exits
                        os.dup2(os.open(os.devnull, os.O_WRONLY), f.fileno())


def _summary_lines(s: dict, source) -> list[str]:
    speed = s["audio_s"] / s["wall_s"] if s["wall_s"] > 0 else math.inf
    lines = [f"stopped: {s['reason']} after {_clock(s['audio_s'])} of audio "
             f"({s['wall_s']:.1f} s, {speed:.0f}× real time, CPU {s['cpu_s']:.1f} s)",
             f"plops: {s['events']}" + (f" ({s['dropped']} more dropped by --strict as implausible)"
                                        if s.get("strict") else "")]
    f = s["final"]
    if f:
        lines[-1] += (f"; BPM over the last {f['window_s']:.0f} s: {_num(f['bpm'])} "
                      f"(95% CI {_num(f['low'])}–{_num(f['high'])})")
    if isinstance(source, Microphone) or s["overflows"]:
        lines.append(f"input overflows: {s['overflows']}")
    bf = s["brewfather"]
    if bf:
        lines.append(f"Brewfather ({bf['url']}): {bf['posts_sent']} sent, {bf['posts_failed']} failed, "
                     f"{bf['pending']} pending" + (" (never sent: the session ended before the next post"
                                                   + ("; the log has them as failed rows)" if s["log"] else ")")
                                                   if bf["pending"] else "")
                     + (f"; last error: {bf['last_error']}" if bf["last_error"] else ""))
    if s["labels"]:
        lines.append(f"labels: {s['labels']}")
    if s["log"]:
        lines.append(f"log: {s['log']}")
    return lines


def read_temperature(path: str | os.PathLike) -> float:
    r"""A temperature in °C from a text file: a plain number, or a 1-wire sensor's
    ``w1_slave`` file (``… t=19437``, milli-degrees), e.g.
    ``/sys/bus/w1/devices/28-*/w1_slave`` of a DS18B20 on a Raspberry Pi.

    Examples
    --------
    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "w1_slave"
    >>> _ = f.write_text("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n")
    >>> read_temperature(f)
    23.125
    """
    text = Path(path).read_text().strip()
    m = re.search(r"t=(-?\d+)\s*$", text)
    if m:
        if "YES" not in text.splitlines()[0]:
            raise ValueError(f"{path}: the sensor's CRC check failed (no YES); reading skipped")
        return int(m.group(1)) / 1000.0
    try:
        return float(text.replace(",", "."))
    except ValueError:
        raise ValueError(f"{path}: expected a temperature in °C (e.g. 19.5), found {text[:40]!r}") from None


# ---------------------------------------------------------------------------------------
# The command line: python -m helpers listen
# ---------------------------------------------------------------------------------------
def _cmd_listen(args) -> int:
    import signal

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.list_devices:
        devices = list_devices()
        if not devices:
            print("no audio input devices found", file=sys.stderr)
            return 1
        for d in devices:
            mark = " (default)" if d["default"] else ""
            print(f"{d['index']:>3}  {d['name']}  [{d['host_api']}, {d['channels']} ch, "
                  f"{d['rate']:g} Hz]{mark}")
        return 0
    chosen = [x for x in (args.device is not None, args.file is not None, args.stdin) if x]
    if len(chosen) != 1:
        print("error: give exactly one source: --device N|NAME, --file PATH or --stdin "
              "(or --list-devices)", file=sys.stderr)
        return 2
    if args.realtime and args.file is None:
        print("error: --realtime goes with --file", file=sys.stderr)
        return 2

    if args.out is not None:   # checked now, not after days of listening
        from helpers.audio import output_folder

        output_folder(args.out)

    brew = None
    url = args.brewfather_url or os.environ.get("BREWFATHER_URL") or None
    if url:
        from urllib.parse import urlsplit

        from helpers.brewfather import MIN_INTERVAL_S, BrewfatherStream, is_loopback, redact

        try:
            parts = urlsplit(url.strip())
            parts.port   # raises for a port that is not a number from 0 to 65535
        except ValueError as e:
            print(f"error: --brewfather-url {redact(url)}: {e}", file=sys.stderr)
            return 2
        host = parts.hostname or ""
        if args.brewfather_interval < MIN_INTERVAL_S and not is_loopback(host):
            print(f"error: --brewfather-interval must be at least {MIN_INTERVAL_S:g} s for Brewfather, "
                  "which ignores posts less than 15 minutes apart (shorter only for a local test "
                  "server)", file=sys.stderr)
            return 2
        brew = BrewfatherStream(url, name=args.brewfather_name, interval_s=args.brewfather_interval,
                                min_interval_s=min(MIN_INTERVAL_S, args.brewfather_interval),
                                start=0.0, timeout_s=args.brewfather_timeout,
                                retries=args.brewfather_retries, backoff_s=args.brewfather_backoff)
        if args.file is not None and not args.realtime and not is_loopback(host):
            print(f"warning: --file without --realtime posts to {redact(url)} as fast as the file is "
                  "read; Brewfather ignores posts less than 15 minutes apart", file=sys.stderr)
        if args.temp_file is not None:   # a missing sensor file is said now, not in 15 minutes
            try:
                read_temperature(args.temp_file)
            except OSError as e:
                print(f"error: --temp-file {args.temp_file}: {e.strerror or e}", file=sys.stderr)
                return 2
            except ValueError as e:   # a bad reading (a failed CRC) may be a moment's
                print(f"warning: {e}", file=sys.stderr)

    block = args.block
    if args.file is not None:
        source = FileSource(args.file, block_s=block or (LIVE_BLOCK_S if args.realtime else FAST_BLOCK_S),
                            realtime=args.realtime, max_s=args.duration)
    elif args.stdin:
        source = RawSource(None, rate=args.rate, channels=args.channels, block_s=block or LIVE_BLOCK_S,
                           max_s=args.duration)
    else:
        dev = int(args.device) if str(args.device).strip().isdigit() else args.device
        source = Microphone(dev, rate=args.device_rate, block_s=block or LIVE_BLOCK_S, max_s=args.duration,
                            stall_s=args.stall_timeout)

    if args.out is not None and isinstance(source, FileSource):
        from helpers.audio import label_jobs

        (_, target, problem), = label_jobs([source.path], args.out, overwrite=args.overwrite)
        if target is None:
            print(f"error: {problem}", file=sys.stderr)
            return 2

    from helpers.autolabel import STRICT_PLAUSIBILITY

    det = StreamingDetector(model=args.model, backend=args.backend, update_s=args.update,
                            keep_events=args.out is not None,
                            min_plausibility=STRICT_PLAUSIBILITY if args.strict else None)
    if isinstance(source, Microphone):
        source.open()
    where = det.detector.path
    print(f"listening to {source.description} with the {det.backend} model "
          f"({where}{', strict' if args.strict else ''}); Ctrl-C ends", file=sys.stderr, flush=True)

    stop = threading.Event()
    handlers = {}

    def on_signal(signum, frame):
        if stop.is_set():   # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        stop.reason = "interrupted (Ctrl-C)" if signum == signal.SIGINT else f"{signal.Signals(signum).name} received"
        stop.set()

    if threading.current_thread() is threading.main_thread():
        # SIGHUP: the terminal or SSH session closed; end as cleanly as on SIGTERM (unless it is
        # ignored, as under nohup: then the listener goes on, as asked)
        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
                handlers[sig] = signal.signal(sig, on_signal)
    try:
        summary = run_session(source, detector=det, bpm_window_s=args.bpm_window,
                              report_every_s=args.report_every, quiet=args.quiet, log=args.log,
                              out_dir=args.out, brewfather=brew, stop=stop,
                              temperature=(lambda: read_temperature(args.temp_file)) if args.temp_file else None)
    finally:
        for sig, h in handlers.items():
            signal.signal(sig, h)
    return summary["status"]


def _number(kind: str, *, minimum: float = 0.0, above: bool = True, whole: bool = False):
    """An argparse type: a finite number above (or at least) ``minimum``."""
    import argparse

    def parse(text: str):
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, not {text!r}") from None
        if not math.isfinite(value) or value < minimum or (above and value == minimum):
            bound = f"more than {minimum:g}" if above else f"at least {minimum:g}"
            raise argparse.ArgumentTypeError(f"expected {kind} {bound}, not {text}")
        return value

    return parse


def add_parser(sub) -> None:
    """Register ``python -m helpers listen`` on an argparse subparsers object."""
    import argparse

    seconds = _number("a number of seconds")

    p = sub.add_parser(
        "listen", help="detect plops live (microphone, file or stdin), rolling BPM, Brewfather",
        description="Detect plops in a live stream and report the rolling BPM.\n\n"
                    "Sources: a microphone (--device), a file (--file, as fast as possible or\n"
                    "--realtime), raw 16-bit PCM on stdin (--stdin --rate SR, e.g. from arecord).\n"
                    "Times are audio time. The session ends at the end of the file or stdin, on\n"
                    "Ctrl-C, or when the device vanishes (exit status 1), with a summary.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  python -m helpers listen --list-devices\n"
               "  python -m helpers listen --device USB --log brew.csv --out labels/\n"
               "  python -m helpers listen --file brew1.flac --out labels/\n"
               "  arecord -D plughw:1 -f S16_LE -r 48000 -c 1 -t raw | "
               "python -m helpers listen --stdin --rate 48000\n")
    src = p.add_argument_group("source (give one)")
    src.add_argument("--device", default=None, metavar="N|NAME", help="input device index or (part of) its name")
    src.add_argument("--file", type=Path, default=None, metavar="PATH", help="an audio file")
    src.add_argument("--stdin", action="store_true", help="raw signed 16-bit little-endian PCM on stdin")
    src.add_argument("--list-devices", action="store_true", help="list the input devices and exit")
    src.add_argument("--realtime", action="store_true", help="read --file at the speed of the audio")
    hz = _number("a sample rate in Hz")
    src.add_argument("--rate", type=hz, default=float(SR), metavar="SR", help="sample rate of --stdin in Hz (16000)")
    src.add_argument("--channels", type=_number("a number of channels", minimum=1, above=False, whole=True),
                     default=1, metavar="N", help="channels of --stdin, averaged (1)")
    src.add_argument("--device-rate", type=hz, default=None, metavar="SR",
                     help="open the device at this rate (default: the device's own)")
    src.add_argument("--duration", type=seconds, default=None, metavar="S", help="stop after S seconds of audio")
    src.add_argument("--block", type=seconds, default=None, metavar="S",
                     help=f"block length (default {LIVE_BLOCK_S} s live, {FAST_BLOCK_S} s for a fast file)")
    src.add_argument("--stall-timeout", type=seconds, default=5.0, metavar="S",
                     help="a device silent for S seconds has vanished (5)")
    det = p.add_argument_group("detector")
    det.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    det.add_argument("--backend", default="auto", choices=["auto", "keras", "int8", "float"],
                     help="auto (default): LiteRT int8 when exported, else Keras")
    det.add_argument("--update", type=seconds, default=UPDATE_S, metavar="S",
                     help=f"run the model every S seconds of audio: latency vs CPU ({UPDATE_S})")
    det.add_argument("--strict", action="store_true",
                     help="like detect --strict: keep only the plops that also ring like a bubble "
                          "(plausibility >= 0.5; about 0.2 s more latency)")
    out = p.add_argument_group("outputs")
    out.add_argument("--quiet", action="store_true", help="print the BPM reports only")
    out.add_argument("--bpm-window", type=seconds, default=300.0, metavar="S", help="BPM of the last S seconds (300)")
    out.add_argument("--report-every", type=seconds, default=60.0, metavar="S", help="print the BPM every S seconds (60)")
    out.add_argument("--log", type=Path, default=None, metavar="CSV",
                     help="append every event and report to this CSV (flushed at once)")
    out.add_argument("--out", type=Path, default=None, metavar="DIR",
                     help="write the Audacity labels of the session to DIR (each plop as it is found)")
    out.add_argument("--overwrite", action="store_true",
                     help="with --file and --out: replace the labels of a recording that is in DIR "
                          "itself (by default they are kept: often made by hand)")
    bf = p.add_argument_group("Brewfather")
    bf.add_argument("--brewfather-url", default=None, metavar="URL",
                    help="Custom Stream URL (or set $BREWFATHER_URL, which keeps it out of `ps`)")
    bf.add_argument("--brewfather-name", default="airlock", metavar="NAME", help="device name in Brewfather (airlock)")
    bf.add_argument("--temp-file", type=Path, default=None, metavar="PATH",
                    help="send the temperature (°C) read from this file with each post: a number, "
                         "or a 1-wire sensor's w1_slave")
    bf.add_argument("--brewfather-interval", type=seconds, default=900.0, metavar="S",
                    help="seconds between posts (900, Brewfather's limit; less only for a local test server)")
    bf.add_argument("--brewfather-timeout", type=seconds, default=10.0, metavar="S", help="time-out per attempt (10)")
    bf.add_argument("--brewfather-retries", type=_number("a whole number", above=False, whole=True), default=3, metavar="N",
                    help="retries after a time-out or 5xx (3)")
    bf.add_argument("--brewfather-backoff", type=_number("a number of seconds", above=False), default=1.0, metavar="S",
                    help="first retry delay, doubled each time (1)")
    p.set_defaults(func=_cmd_listen)


# ---------------------------------------------------------------------------------------
# Figures for the notebook
# ---------------------------------------------------------------------------------------
def plot_windows(*, n_frames: int = 560, lookahead: int = 3, now: int = 452, ax=None):
    """The windows of a stream: which window gives which frames, and what the ring holds.

    Each bar is a model window of 200 frames; the thick part is the frames it gives (window
    0: all of its own; later ones: their last 100). At frame ``now`` the ring buffer holds
    the frames from the start of the window in use; frames up to ``now − lookahead`` are final.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.2), layout="constrained")
    starts = list(range(0, n_frames - WINDOW + STEP, STEP))
    for k, s in enumerate(starts):
        y = len(starts) - k
        ax.barh(y, WINDOW, left=s, height=0.35, color="lightgray", edgecolor="gray")
        lo = s if k == 0 else s + STEP
        ax.barh(y, s + WINDOW - lo, left=lo, height=0.35, color="tab:blue")
        ax.text(s - 5, y, f"window {k}", ha="right", va="center", fontsize=8)
    final = now - lookahead
    ring_lo = window_start_for(final)
    ax.axvspan(ring_lo, now, color="tab:orange", alpha=0.15, label="ring buffer (frames kept)")
    ax.axvline(now, color="tab:red", lw=1.5, label=f"newest frame ({now})")
    ax.axvline(final, color="tab:green", lw=1.5, ls="--", label=f"final up to here (lookahead {lookahead})")
    ax.set(xlabel="frame (10 ms each)", yticks=[], xlim=(-90, starts[-1] + WINDOW + 10),
           title="windows of 200 frames every 100: blue = the frames each window gives")
    ax.legend(loc="upper right", fontsize=8)
    return ax


def plot_bpm(reports: pd.DataFrame, *, truth: pd.DataFrame | None = None, ax=None, title: str | None = None):
    """The rolling BPM (``time_s``, ``bpm``, ``low``, ``high``) with its interval, and an
    optional reference curve (``time_s``, ``bpm``) drawn dashed."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3), layout="constrained")
    t = reports["time_s"] / 60
    ax.fill_between(t, reports["low"], reports["high"], color="tab:blue", alpha=0.2, label="95 % interval")
    ax.plot(t, reports["bpm"], "o-", color="tab:blue", ms=3, label="live BPM")
    if truth is not None:
        ax.plot(truth["time_s"] / 60, truth["bpm"], "k--", lw=1, label="from the labels")
    ax.set(xlabel="minutes", ylabel="bubbles per minute", title=title, ylim=(0, None))
    ax.legend(loc="best", fontsize=8)
    return ax
