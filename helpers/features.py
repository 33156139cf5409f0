"""Frame-level features: log-mel spectrograms and frame labels from events.

One frame every ``hop_s`` seconds (10 ms by default); frame ``i`` covers the time
``i * hop_s``. Later stages (baseline, CRNN, auto-labeler) build on these.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
import pandas as pd

from helpers.config import SR

HOP_S = 0.01
WIN_S = 0.025


def log_mel(y: np.ndarray, *, sr: int = SR, n_mels: int = 64, hop_s: float = HOP_S,
            win_s: float = WIN_S, fmin: float = 50.0, fmax: float | None = None) -> np.ndarray:
    """Log-mel spectrogram in dB (``n_mels`` × frames), one frame per ``hop_s``.

    Examples
    --------
    >>> S = log_mel(np.zeros(16000, dtype="float32"))
    >>> S.shape
    (64, 101)
    """
    import librosa

    hop = int(round(hop_s * sr))
    n_fft = 1 << int(np.ceil(np.log2(win_s * sr)))
    m = librosa.feature.melspectrogram(y=np.asarray(y, dtype=np.float32), sr=sr, n_fft=n_fft,
                                       hop_length=hop, win_length=int(round(win_s * sr)),
                                       n_mels=n_mels, fmin=fmin, fmax=fmax or sr / 2, power=2.0)
    return librosa.power_to_db(m, ref=1.0, amin=1e-10, top_db=None)


def frame_labels(events: pd.DataFrame, n_frames: int, *, hop_s: float = HOP_S) -> np.ndarray:
    """1 for frames inside an event, 0 elsewhere (point labels mark one frame).

    Examples
    --------
    >>> ev = pd.DataFrame({"start": [0.02], "end": [0.05], "label": ["p"]})
    >>> frame_labels(ev, 8).tolist()
    [0, 0, 1, 1, 1, 0, 0, 0]
    """
    out = np.zeros(n_frames, dtype=np.int8)
    for s, e in zip(events["start"], events["end"]):
        a = int(round(s / hop_s))
        b = max(int(round(e / hop_s)), a + 1)
        out[max(a, 0):min(b, n_frames)] = 1
    return out


# ---------------------------------------------------------------------------------------
# The model front end: identical offline and in a live stream
# ---------------------------------------------------------------------------------------
N_FFT = 512
WIN = 400            # 25 ms at 16 kHz
HOP = 160            # 10 ms at 16 kHz
N_MELS = 64
FMIN, FMAX = 50.0, 8000.0
PCEN_TIME_CONSTANT_S = 0.4
PCEN_ALPHA, PCEN_DELTA, PCEN_R = 0.8, 10.0, 0.25


class Frontend:
    """Mel spectrogram front end that works block by block.

    Frame ``i`` is centred on sample ``i * HOP`` (the signal is padded with ``N_FFT // 2``
    zeros in front), so a frame's time is ``i * 0.01`` s. Feed audio with :meth:`process`
    in blocks of any size and call :meth:`flush` at the end: the frames are exactly those of
    :func:`frontend_features` on the whole signal, which is how a live stream and an offline
    file give the same detections.

    ``kind="pcen"`` applies per-channel energy normalization (an automatic gain control per
    mel band with a 0.4 s smoother, robust to level and stationary noise);
    ``kind="logmel"`` gives log-mel energies in dB.

    Examples
    --------
    >>> y = np.random.default_rng(0).standard_normal(16000).astype("float32")
    >>> f = Frontend(); blocks = [f.process(y[i:i + 1234]) for i in range(0, 16000, 1234)]
    >>> a = np.concatenate(blocks + [f.flush()]); b = frontend_features(y)
    >>> a.shape, bool(np.allclose(a, b, atol=1e-5))
    ((101, 64), True)
    """

    def __init__(self, *, kind: str = "pcen", sr: int = SR):
        if kind not in ("pcen", "logmel"):
            raise ValueError(f"kind must be 'pcen' or 'logmel', not {kind!r}")
        if sr != SR:
            raise ValueError(f"the front end works at {SR} Hz; resample first (got {sr})")
        import librosa

        self.kind = kind
        self._mel = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN,
                                        fmax=FMAX).astype(np.float32)
        w = np.hanning(WIN + 2)[1:-1].astype(np.float32)  # symmetric-free Hann of WIN points
        self._window = np.zeros(N_FFT, dtype=np.float32)
        self._window[(N_FFT - WIN) // 2:(N_FFT - WIN) // 2 + WIN] = w
        self._buf = np.zeros(N_FFT // 2, dtype=np.float32)  # the centring pad
        self._smooth_state: np.ndarray | None = None
        t_frames = PCEN_TIME_CONSTANT_S * SR / HOP
        self._s = float((np.sqrt(1 + 4 * t_frames ** 2) - 1) / (2 * t_frames ** 2))

    #: Frames computed per step: bounds the memory of a long signal (an hour at once would
    #: need several GB for the framed audio and its spectrum) without changing any value.
    CHUNK_FRAMES = 2048

    def _frames(self) -> np.ndarray:
        buf = self._buf
        n = 0 if len(buf) < N_FFT else 1 + (len(buf) - N_FFT) // HOP
        if n == 0:
            return np.zeros((0, N_MELS), dtype=np.float32)
        out = []
        for a in range(0, n, self.CHUNK_FRAMES):
            k = min(self.CHUNK_FRAMES, n - a)
            framed = sliding_window_view(buf[a * HOP:(a + k - 1) * HOP + N_FFT], N_FFT)[::HOP]  # a view, no copy
            spec = np.abs(np.fft.rfft(framed * self._window, axis=1)) ** 2
            out.append(self._normalize(spec.astype(np.float32) @ self._mel.T))
        self._buf = buf[n * HOP:]
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _normalize(self, mel: np.ndarray) -> np.ndarray:
        if self.kind == "logmel":
            return (10 * np.log10(mel + 1e-10)).astype(np.float32)
        from scipy.signal import lfilter

        e = mel * float(2 ** 31)  # the scale of 32-bit integer audio, as librosa's pcen expects
        if self._smooth_state is None:
            self._smooth_state = e[0] * (1 - self._s)  # start at steady state on the first frame
        m, self._smooth_state = lfilter([self._s], [1, self._s - 1], e, axis=0,
                                        zi=self._smooth_state[None, :])
        self._smooth_state = self._smooth_state[0]
        gain = np.exp(-PCEN_ALPHA * (np.log(1e-6) + np.log1p(m / 1e-6)))
        out = (e * gain + PCEN_DELTA) ** PCEN_R - PCEN_DELTA ** PCEN_R
        return out.astype(np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Frames (``n × N_MELS``) completed by this block of mono float32 audio at 16 kHz."""
        self._buf = np.concatenate([self._buf, np.asarray(block, dtype=np.float32)])
        return self._frames()

    def flush(self) -> np.ndarray:
        """The last frames, padding the end with ``N_FFT // 2`` zeros (as at the start)."""
        self._buf = np.concatenate([self._buf, np.zeros(N_FFT // 2, dtype=np.float32)])
        return self._frames()


def frontend_features(y: np.ndarray, *, kind: str = "pcen") -> np.ndarray:
    """Frames × mel bands of a whole mono 16 kHz signal (see :class:`Frontend`)."""
    f = Frontend(kind=kind)
    a = f.process(y)
    return np.concatenate([a, f.flush()])
