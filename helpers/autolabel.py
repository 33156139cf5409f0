"""Semi-automatic labeling: an unsupervised GMM-HMM proposes plop labels to review in Audacity.

No training labels are needed. Each recording (each 5-minute segment of a long one) gets its
own small hidden Markov model, fitted to that audio alone; the labels it proposes are then
reviewed and corrected by a person in Audacity (see notebook 03 and the README).

The steps, each a function of its own so that notebook 03 can show them one at a time:

1. :func:`frame_features` (:func:`file_features` for a file, read in blocks) — a 32 ms FFT
   every 10 ms, kept as 24 log-mel band levels (150–7000 Hz) and as a fine spectrum of the
   250–6500 Hz bins, where bubbles ring.
2. :func:`hmm_features` — what the HMM sees: 13 MFCCs of the log-mel levels and their change
   over 20 ms, standardized per recording (so any loudness and any steady background look
   alike). Chosen by measurement over the 24 band levels with their changes (``"logmel"``),
   see notebook 03.
3. :func:`fit_hmm` — an HMM with Gaussian emissions (diagonal covariances; a GMM-HMM with one
   Gaussian per state, which measured better and ran faster than two), whose transitions
   force every event through one door::

       background ──► onset ──► ring ──► background
                        ▲─────────┘  (a new plop during the ring)

   There are two background states (``n_background``), free to pass from one to the other,
   so that a background that changes (talk and pauses, music, a fan that starts) has more
   than one Gaussian to be explained by before the onset state is needed. On the training
   and validation recordings of the synthetic set two raised event F1 at SNR >= 10 dB from
   0.879 to 0.893 (precision 0.823 → 0.831, recall 0.944 → 0.966) and left it unchanged
   below (0.746 → 0.748); three were no better below 10 dB (0.720) and slower. It is mostly
   a gain in recall: on recordings of talk alone it also proposes more false plops.

   Baum-Welch starts from a deterministic guess (the quietest half of the frames, split by
   level, seed the background states, the largest rises the onset, the loudest tenth the
   ring), jittered per restart by ``numpy.random.default_rng([seed, restart])``; at most
   ``n_iter`` iterations; priors keep variances from collapsing and transition rows from
   emptying; the best likelihood of up to ``restarts`` restarts wins (they stop once two
   agree).
4. :func:`plop_states` — the rule that names the plop state, so that no one picks it by hand:
   the onset state (the only way out of the background) is the plop state when it is visited,
   at least ``min_state_contrast_db`` louder than the recording's median frame (energy) and
   at most ``max_event_fraction`` of the frames (rarity). Otherwise the recording is flagged
   "plop state not found".
5. :func:`candidate_events` — Viterbi decoding; every entry into the plop state starts an
   event. Events shorter than 30 ms are dropped, entries within ``merge_s`` of an onset merged.
6. :func:`describe_events` and :func:`event_confidence` — the HMM finds every sudden sound;
   how plop-like each one is comes from six measurements of its fine spectrum, each mapped
   linearly to 0..1 (:data:`CONFIDENCE_SCALES`) and averaged into ``confidence``:

   ===========  ======================================================  ================
   measure      what it is                                              0 → 1
   ===========  ======================================================  ================
   ``peak_db``  strongest bin above its own median level, first 50 ms   20 → 30 dB
   ``ring``     frames a narrow ridge lasts (a bubble ringing)          4 → 7
   ``attack``   broadband rise at the onset over the 30 ms before       −5 → 10 dB
   ``narrow``   the ridge's height over the bins 4–12 bins beside it    0 → 25 dB
   ``decay``    the ridge's mean decay                                  0.2 → 0.6 dB/frame
   ``rise``     the ridge's rise at its own frequency over 30 ms        5 → 25 dB
   ===========  ======================================================  ================

   Events with ``confidence >= min_confidence`` (0.8) become labels, at least ``min_gap_s``
   apart; a label lasts as long as the ring (at least 50 ms). The scales describe a bubble (a
   loud, narrow, decaying ring after a sharp onset) and were set on the training and
   validation recordings of the synthetic set, never on its test split. ``rise`` asks that
   the ringing frequency itself appear at once (a bubble starts ringing when it pinches
   off), where a syllable or a note grows over tens of milliseconds or was already sounding.
   With it (and the two background states), event F1 on the training and validation
   recordings went from 0.879 to 0.893 at SNR >= 10 dB and from 0.746 to 0.763 below, with
   fewer false plops (precision 0.821 → 0.861 over all of them).
7. :func:`level_gate` — one airlock's plops reach similar levels: a candidate more than
   ``max_level_drop_db`` (30 dB) under the loud ones (the 90th percentile of the confident
   candidates' ``peak_db``) is not a plop, however well it rings. Where plops are few and a
   background busy, such sounds had outnumbered them (a note as loud as the plops stays). The
   30 dB were chosen on the training and validation recordings and on the recorded bubbles
   of :mod:`helpers.bubbles`; a tighter gate helped the first and cost the second (see the
   function).
8. :func:`fill_rhythm_gaps` — an airlock bubbles at a steady rate, so a hole in the rhythm
   is, more often than not, a plop the measures were unsure of. Where two labels are 1.5–3.5
   times the typical interval (the median of the segment's label intervals) apart, the most
   confident candidate in the middle of that gap (30–70 % of the way across) becomes a label
   if its confidence is at least ``fill_confidence`` (0.5). It needs five labels to know the
   rhythm, never puts a label within ``min_gap_s`` of another and makes one pass (a filled
   label opens no new gap). A fast blow-off, whose previous ring still sounds when the next
   plop starts, is where it helps most; a candidate outside such a hole is never added, so it
   creates no rhythm where there is none. Chosen on the training and validation recordings
   with everything else fixed: event F1 0.850 → 0.868 over all of them (0.893 → 0.896 at
   SNR >= 10 dB, 0.763 → 0.813 below; precision 0.861 → 0.844, recall 0.839 → 0.893).
   Thresholds 0.5–0.65, gaps up to 3 or 3.5 intervals and positions 0.25–0.35 all gave
   0.865–0.868; repeating the pass until nothing changes gave 0.863–0.865.
9. Checks (:func:`autolabel`): a file too short to model, silence, "plop state not found",
   "no plop found" and an implausible rate (more than ``max_rate_ppm`` per minute) give status
   ``"flagged"``, an empty label list and a message that says what to do.

The six measures also give another detector a second opinion: :func:`plausibility` scores the
events the CRNN found, and ``detect --strict`` drops those that do not ring like a bubble.

Long recordings are labeled in segments of ``segment_s`` seconds (each with 1 s of context),
so that time and memory grow linearly and stay small: ``bench/autolabel_speed.py`` measures
an hour of audio on one core.

Examples
--------
>>> from helpers.synth import synthesize_recording
>>> rec = synthesize_recording(seed=11, duration_s=20.0, sr=16000, snr_db=25.0)
>>> result = autolabel(rec.audio)
>>> result.status, result.message
('ok', '10 plops (30.0 per minute)')
>>> result.events.round(2).head(2)
   start   end label  confidence
0   0.52  0.64     p        0.98
1   2.40  2.54     p        1.00
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.config import PLOP_LABEL, SR

__all__ = [
    "CONFIDENCE_SCALES",
    "DEFAULTS",
    "ONSET_OFFSET_S",
    "AutolabelResult",
    "Frames",
    "autolabel",
    "autolabel_file",
    "autolabel_frames",
    "autolabel_paths",
    "band_excess_db",
    "candidate_events",
    "decode",
    "describe_events",
    "event_confidence",
    "file_features",
    "fill_rhythm_gaps",
    "level_gate",
    "select_candidates",
    "fit_hmm",
    "frame_features",
    "frame_level_db",
    "labels_at",
    "hmm_features",
    "onset_errors",
    "plausibility",
    "plop_states",
    "plot_decoding",
    "plot_model",
    "state_table",
    "topology",
]

HOP_S = 0.01
_HOP = 160          # samples at 16 kHz
_NFFT = 512         # 32 ms window: 31 Hz bins, enough to see a bubble's ring as a ridge
_N_MELS = 24
_FMIN, _FMAX = 150.0, 7000.0
_FINE_LO, _FINE_HI = 8, 208      # bins 250..6500 Hz: where plops ring
_BIN_HZ = SR / _NFFT
_BLOCK_S = 60.0     # seconds of audio per block when reading files
_FLOOR = 1e-10      # power floor (-100 dB): below 16-bit noise, above resampling residue
_Q = 1.0 / 64       # dB per step of the stored fine spectrum

#: Default options of :func:`autolabel` (every one can be passed as a keyword).
DEFAULTS: dict[str, Any] = {
    "features": "mfcc",           # "mfcc" (13 + deltas) or "logmel" (24 band levels + deltas)
    "n_background": 2,            # background states (a changing background needs two)
    "n_mix": 1,                   # Gaussians per state
    "restarts": 3,
    "n_iter": 25,
    "tol_per_frame": 1e-3,        # convergence: gain per frame and iteration
    "seed": 0,
    "segment_s": 300.0,           # long recordings: one model per segment of this length
    "min_state_contrast_db": 3.0,
    "max_event_fraction": 0.6,
    "merge_s": 0.08,              # entries closer than this to an onset belong to it
    "min_gap_s": 0.12,            # kept plops closer than this to the previous one are dropped
    "min_confidence": 0.8,
    "fill_confidence": 0.5,       # a candidate this confident may fill a hole in the rhythm
    "max_level_drop_db": 30.0,    # candidates this much quieter than the loud plops are not plops
    "min_duration_s": 2.0,
    "max_rate_ppm": 400.0,
    "silence_dbfs": -90.0,
}

# ---------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------
@dataclass
class Frames:
    """Frame-level measurements of one recording, one row per 10 ms.

    ``mel_db`` is ``(T, 24)`` float32 log-mel power in dB; ``fine_q`` is ``(T, 200)`` int16,
    the power in 1/64 dB of the STFT bins from 250 to 6500 Hz (compact: 0.4 KB per frame;
    :attr:`fine_db` gives it in dB); ``duration_s`` is the length of the audio and
    ``peak`` ``(T,)`` float32 the largest absolute sample within each frame's window.
    """

    mel_db: np.ndarray
    fine_q: np.ndarray
    duration_s: float
    peak: np.ndarray

    @property
    def peak_dbfs(self) -> float:
        """The largest sample, in dB full scale (``-inf`` for digital silence)."""
        p = float(self.peak.max()) if len(self.peak) else 0.0
        return float(20 * np.log10(p)) if p > 0 else -np.inf

    def slice(self, a: int, b: int) -> "Frames":
        """Frames ``a .. b-1`` as a recording of their own."""
        b = min(b, self.n_frames)
        return Frames(self.mel_db[a:b], self.fine_q[a:b], (b - a) * HOP_S, self.peak[a:b])

    @property
    def n_frames(self) -> int:
        return int(self.mel_db.shape[0])

    @property
    def fine_db(self) -> np.ndarray:
        """The fine spectrum in dB, ``(T, 200)`` float32 (bins of 31.25 Hz from 250 Hz)."""
        return self.fine_q.astype(np.float32) * _Q

    @property
    def times(self) -> np.ndarray:
        """Time of each frame (the centre of its window), seconds."""
        return np.arange(self.n_frames) * HOP_S


_MEL_FB: np.ndarray | None = None


def _mel_filterbank() -> np.ndarray:
    global _MEL_FB
    if _MEL_FB is None:
        import librosa

        _MEL_FB = librosa.filters.mel(sr=SR, n_fft=_NFFT, n_mels=_N_MELS, fmin=_FMIN,
                                      fmax=_FMAX).astype(np.float32).T.copy()
    return _MEL_FB


class _FrameMaker:
    """Streaming STFT: feed blocks of 16 kHz samples, get the frames they complete.

    Frame ``k`` covers samples ``160 k - 256 .. 160 k + 256`` (the audio is padded with half a
    window of zeros at both ends, like ``librosa.stft(center=True)``), so a file read in
    blocks gives exactly the frames of the same file read at once: ``1 + n // 160`` frames
    for ``n`` samples.
    """

    def __init__(self) -> None:
        self._buf = np.zeros(_NFFT // 2, dtype=np.float32)
        self._buf_start = -(_NFFT // 2)      # absolute index of self._buf[0]
        self._next = 0                       # next frame to emit
        self._window = np.hanning(_NFFT + 1)[:-1].astype(np.float32)
        self._mel = _mel_filterbank()
        self.n_samples = 0

    def feed(self, x: np.ndarray, *, last: bool = False) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=np.float32)
        self.n_samples += len(x)
        parts = [self._buf, x]
        if last:
            parts.append(np.zeros(_NFFT // 2, dtype=np.float32))
        buf = np.concatenate(parts)
        end = self._buf_start + len(buf)
        k_stop = (end - _NFFT // 2) // _HOP + 1          # frames whose window is complete
        if last:
            k_stop = min(k_stop, self.n_samples // _HOP + 1)
        n = max(k_stop - self._next, 0)
        if n:
            a = self._next * _HOP - _NFFT // 2 - self._buf_start
            frames = np.lib.stride_tricks.sliding_window_view(buf[a:], _NFFT)[::_HOP][:n]
            spec = np.fft.rfft(frames * self._window, axis=1)
            power = spec.real ** 2 + spec.imag ** 2
            mel = (10.0 * np.log10(power @ self._mel + _FLOOR)).astype(np.float32)
            fine = np.round(10.0 / _Q * np.log10(power[:, _FINE_LO:_FINE_HI] + _FLOOR)
                            ).astype(np.int16)
            peak = np.abs(frames).max(axis=1).astype(np.float32)
            self._next += n
        else:
            mel = np.zeros((0, _N_MELS), np.float32)
            fine = np.zeros((0, _FINE_HI - _FINE_LO), np.int16)
            peak = np.zeros(0, np.float32)
        keep_from = self._next * _HOP - _NFFT // 2 - self._buf_start
        self._buf = buf[max(keep_from, 0):]
        self._buf_start += max(keep_from, 0)
        return mel, fine, peak


def frame_features(y: np.ndarray, *, sr: int = SR) -> Frames:
    """Frame measurements of a mono signal (resampled to 16 kHz when ``sr`` differs).

    Examples
    --------
    >>> fr = frame_features(np.zeros(16000, dtype=np.float32))
    >>> fr.n_frames, fr.mel_db.shape[1], fr.fine_db.shape[1]
    (101, 24, 200)
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected mono samples of shape (n,), got shape {y.shape}")
    if sr != SR:
        from helpers.audio import resample

        y = resample(y, sr, SR)
    mel, fine, peak = _FrameMaker().feed(y, last=True)
    return Frames(mel, fine, len(y) / SR, peak)


def _stream(path: Path, *, block_s: float = _BLOCK_S) -> Iterator[np.ndarray]:
    """Mono 16 kHz float32 blocks of an audio file, read and resampled block by block.

    Formats that libsndfile reads are streamed; others (m4a, webm, ...) are decoded at once by
    :func:`helpers.audio.load_audio`.
    """
    import soundfile as sf

    from helpers.audio import AudioError, audio_info, load_audio, no_samples, to_mono

    info = audio_info(path)  # raises AudioError for empty, unsupported, truncated files
    if info["decoder"] != "soundfile":
        y = load_audio(path, sr=SR)
        for a in range(0, len(y), int(block_s * SR)):
            yield y[a:a + int(block_s * SR)]
        return
    import soxr

    native = int(info["sample_rate"])
    resampler = soxr.ResampleStream(native, SR, 1, dtype="float32", quality="HQ") \
        if native != SR else None
    done = 0
    try:
        with sf.SoundFile(str(path)) as f:
            while True:
                block = f.read(int(block_s * native), dtype="float32", always_2d=True)
                last = len(block) < int(block_s * native)
                if len(block) and not np.isfinite(block).all():
                    bad = np.flatnonzero(~np.isfinite(block).all(axis=1))[0]
                    raise AudioError(path, f"contains NaN or infinite samples (first at "
                                           f"{(done + bad) / native:.3f} s)",
                                     "re-export the recording (16-bit PCM avoids this)")
                mono = to_mono(block.T) if len(block) else np.zeros(0, np.float32)
                done += len(block)
                out = resampler.resample_chunk(mono, last=last) if resampler else mono
                if len(out):
                    yield np.asarray(out, dtype=np.float32)
                if last:
                    break
    except AudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - libsndfile errors have several types
        raise AudioError(path, f"could not be decoded after {done / native:.1f} s ({exc})",
                         "the file is damaged; copy or export it again") from exc
    if done == 0:
        raise no_samples(path)


def _frame_chunks(path: Path, info: dict, *, block_s: float = _BLOCK_S
                  ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(mel_db, fine_q, peak)`` of consecutive frames of an audio file, block by block.
    When the generator is exhausted, ``info["n_samples"]`` holds the number of samples."""
    maker = _FrameMaker()
    pending: np.ndarray | None = None
    for block in _stream(path, block_s=block_s):
        if pending is not None:
            yield maker.feed(pending)
        pending = block
    last = maker.feed(pending if pending is not None else np.zeros(0, np.float32), last=True)
    info["n_samples"] = maker.n_samples
    yield last


def file_features(path: str | os.PathLike, *, block_s: float = _BLOCK_S) -> Frames:
    """:class:`Frames` of a whole audio file, read in blocks of ``block_s`` seconds.

    The samples are never all in memory; the frames take about 3 MB per minute of audio
    (:func:`autolabel_file` keeps only a segment of them at a time).

    Raises
    ------
    helpers.audio.AudioError
        For files that cannot be read (the message names the file and the problem).
    """
    info: dict = {}
    chunks = list(_frame_chunks(Path(path), info, block_s=block_s))
    mel, fine, peak = (np.concatenate([c[i] for c in chunks]) for i in range(3))
    return Frames(mel, fine, info["n_samples"] / SR, peak)


# ---------------------------------------------------------------------------------------
# What the HMM sees
# ---------------------------------------------------------------------------------------
def band_excess_db(frames: Frames) -> np.ndarray:
    """Each band's level above the recording's median level in that band (dB), ``(T, 24)``."""
    return frames.mel_db - np.median(frames.mel_db, axis=0)


def frame_level_db(frames: Frames) -> np.ndarray:
    """Loudness of each frame above the background: the mean of its three strongest band
    excesses (dB). A narrow-band ring counts fully, as it should."""
    x = band_excess_db(frames)
    k = min(3, x.shape[1])
    return np.partition(x, x.shape[1] - k, axis=1)[:, -k:].mean(axis=1)


def hmm_features(frames: Frames, *, features: str = "mfcc") -> np.ndarray:
    """The observations of the HMM, standardized per recording, ``(T, D)`` float64.

    ``"logmel"``: the 24 band excesses (:func:`band_excess_db`) divided by each band's
    standard deviation, and their change over 20 ms (D = 48). ``"mfcc"``: 13 cepstral
    coefficients of the log-mel levels with per-recording mean and variance normalization,
    and their change over 20 ms (D = 26).

    Examples
    --------
    >>> fr = frame_features(np.random.default_rng(0).standard_normal(16000).astype("float32"))
    >>> hmm_features(fr).shape, hmm_features(fr, features="logmel").shape
    ((101, 26), (101, 48))
    """
    if features == "logmel":
        x = band_excess_db(frames).astype(np.float64)
        z = x / (x.std(axis=0) + 0.1)
    elif features == "mfcc":
        from scipy.fft import dct

        c = dct(frames.mel_db.astype(np.float64), type=2, norm="ortho", axis=1)[:, :13]
        z = (c - c.mean(axis=0)) / (c.std(axis=0) + 1e-3)
    else:
        raise ValueError(f"features must be 'logmel' or 'mfcc', not {features!r}")
    d = np.zeros_like(z)
    d[2:] = z[2:] - z[:-2]
    return np.hstack([z, d])


# ---------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------
def _new_model(k: int, n_mix: int, d: int, *, n_iter: int, tol: float, seed: int,
               allowed: np.ndarray) -> Any:
    """An unfitted hmmlearn model with the priors that keep the fit well-behaved.

    Covariance prior: each variance is estimated as ``(sum of squares + 1) / (frames + 2)``,
    so that a state with few frames cannot collapse onto them. Transition and start priors add
    0.01 pseudo-counts to the allowed entries, so that no row of the transition matrix ends up
    all zero when a state goes unused. With one Gaussian per state, hmmlearn's ``GaussianHMM``
    is the same model as ``GMMHMM(n_mix=1)`` and fits twice as fast, so it is used then.
    """
    common = {"n_components": k, "covariance_type": "diag", "n_iter": n_iter, "tol": tol,
              "random_state": seed, "init_params": "",
              "transmat_prior": np.where(allowed, 1.01, 1.0),
              "startprob_prior": np.full(k, 1.01)}
    if n_mix == 1:
        from hmmlearn.hmm import GaussianHMM

        m = GaussianHMM(params="stmc", covars_prior=1.0, covars_weight=3.0, min_covar=1e-3,
                        **common)
    else:
        m = _gmmhmm_class()(n_mix=n_mix, params="stmcw", covars_prior=0.0, covars_weight=0.5,
                            weights_prior=np.full((k, n_mix), 1.01), **common)
    m.n_features = d
    return m


def _gmmhmm_class():
    from hmmlearn.hmm import GMMHMM

    class _GMMHMM(GMMHMM):
        """GMMHMM that starts from the parameters it is given (hmmlearn's own ``_init``
        always runs k-means, even when nothing is left to initialize)."""

        def _init(self, X, lengths=None):
            self._check_and_set_n_features(X)
            self._init_covar_priors()
            self._fix_priors_shape()

    return _GMMHMM


def topology(n_background: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Start probabilities and transition matrix of the background → onset → ring path.

    States ``0 .. n_background-1`` are background, ``n_background`` the onset,
    ``n_background + 1`` the ring. Zeros stay zero during fitting (forbidden transitions).

    Examples
    --------
    >>> start, A = topology(1)
    >>> A.round(2).tolist()
    [[0.98, 0.02, 0.0], [0.0, 0.5, 0.5], [0.1, 0.05, 0.85]]
    """
    nb = n_background
    k = nb + 2
    onset, ring = nb, nb + 1
    A = np.zeros((k, k))
    for b in range(nb):
        A[b, :nb] = 0.01 if nb > 1 else 0.0
        A[b, b] = 0.97 if nb > 1 else 0.98
        A[b, onset] = 0.02
    A[onset, onset] = A[onset, ring] = 0.5
    A[ring, :nb] = 0.1 / nb
    A[ring, ring] = 0.85
    A[ring, onset] = 0.05
    A /= A.sum(axis=1, keepdims=True)
    start = np.r_[np.full(nb, 0.98 / nb), 0.01, 0.01]
    return start, A


def fit_hmm(x: np.ndarray, level_db: np.ndarray, *, n_background: int = 2, n_mix: int = 1,
            restarts: int = 3, n_iter: int = 25, seed: int = 0, tol_per_frame: float = 1e-3, agree_tol: float = 1e-4, accept=None
            ) -> tuple[Any, pd.DataFrame]:
    """Fit the background → onset → ring GMM-HMM to one recording's features.

    Parameters
    ----------
    x
        Observations ``(T, D)`` from :func:`hmm_features`.
    level_db
        Frame loudness ``(T,)`` from :func:`frame_level_db`; seeds the states.
    n_background, n_mix
        Background states; Gaussians per state.
    restarts, n_iter, seed
        Baum-Welch runs (each from a start jittered by ``numpy.random.default_rng([seed,
        restart])``), iterations per run; the run with the best log-likelihood is kept.
        Restarts stop early once two accepted runs agree on the log-likelihood (within
        ``agree_tol`` per frame): they found the same optimum.
    tol_per_frame, agree_tol
        A run has converged when an iteration gains less than ``tol_per_frame`` per frame;
        two runs agree when their log-likelihoods differ by less than ``agree_tol`` per frame.
    accept
        Optional ``accept(model, x, level_db) -> bool``: the best restart is chosen among the
        accepted ones (all restarts when none is accepted). :func:`autolabel` passes the plop-state
        rule (:func:`plop_state_found`), so that a restart that degenerated (for example the onset state swallowing the
        background) does not win just by a hair of likelihood.

    Returns
    -------
    model, restarts_table
        The fitted :class:`hmmlearn.hmm.GMMHMM` and one row per restart (``restart``,
        ``log_likelihood`` per frame, ``iterations``, ``converged``, ``accepted``, ``chosen``).

    Examples
    --------
    >>> fr = frame_features(rec.audio)                      # doctest: +SKIP
    >>> model, runs = fit_hmm(hmm_features(fr), frame_level_db(fr))  # doctest: +SKIP
    """
    x = np.asarray(x, dtype=np.float64)
    level_db = np.asarray(level_db, dtype=np.float64)
    t, d = x.shape
    nb = n_background
    k = nb + 2
    rise = np.r_[0.0, 0.0, level_db[2:] - level_db[:-2]]
    # seeds: quiet frames → background (split by level), big rises → onset, loud → ring
    order = np.argsort(level_db, kind="stable")
    quiet = np.array_split(order[: max(len(order) // 2, nb)], nb)
    rising = np.argsort(rise, kind="stable")[-max(len(level_db) // 30, 2):]
    loud = order[-max(len(level_db) // 10, 2):]
    groups = [*quiet, rising, loud]
    start, A = topology(nb)
    allowed = A > 0
    var = x.var(axis=0) + 1e-2
    rows = []
    for r in range(restarts):
        rng = np.random.default_rng([seed, r])
        means = np.empty((k, n_mix, d))
        for s, g in enumerate(groups):
            for j in range(n_mix):
                pick = rng.choice(g, size=min(len(g), 500), replace=False)
                means[s, j] = x[pick].mean(axis=0)
        means += rng.normal(0.0, 0.05 + 0.15 * r, means.shape) * np.sqrt(var)
        m = _new_model(k, n_mix, d, n_iter=n_iter, tol=tol_per_frame * len(x), seed=seed + r,
                       allowed=allowed)
        m.startprob_ = start.copy()
        m.transmat_ = A.copy()
        if n_mix == 1:
            m.means_ = means[:, 0]
            m.covars_ = np.tile(var, (k, 1))
        else:
            m.weights_ = np.full((k, n_mix), 1.0 / n_mix)
            m.means_ = means
            m.covars_ = np.tile(var, (k, n_mix, 1))
        with _quiet_hmmlearn():
            m.fit(x)
            ll = float(m.score(x)) / len(x)
        ok = bool(accept(m, x, level_db)) if accept is not None and np.isfinite(ll) else True
        agrees = any(abs(row["log_likelihood"] - ll) < agree_tol and row["accepted"] and ok
                     for row in rows)
        rows.append({"restart": r, "log_likelihood": ll, "iterations": m.monitor_.iter,
                     "converged": bool(m.monitor_.converged), "accepted": ok, "model": m})
        if agrees:   # two restarts found the same optimum: more would find it again
            break
    table = pd.DataFrame(rows)
    finite = table[np.isfinite(table["log_likelihood"])]
    if finite.empty:
        raise FloatingPointError("every restart of the HMM fit ended with a non-finite likelihood")
    pool = finite[finite["accepted"]] if finite["accepted"].any() else finite
    pick = int(pool["log_likelihood"].idxmax())
    table["chosen"] = table.index == pick
    return table.loc[pick, "model"], table.drop(columns="model")


class _quiet_hmmlearn:
    """Silence hmmlearn's convergence chatter and numpy warnings inside a block."""

    def __enter__(self):
        self._logger = logging.getLogger("hmmlearn")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)
        self._warn = warnings.catch_warnings()
        self._warn.__enter__()
        warnings.simplefilter("ignore")
        self._np = np.seterr(all="ignore")
        return self

    def __exit__(self, *exc):
        np.seterr(**self._np)
        self._warn.__exit__(*exc)
        self._logger.setLevel(self._level)
        return False


def decode(model: Any, x: np.ndarray) -> np.ndarray:
    """Viterbi state of every frame (int8)."""
    with _quiet_hmmlearn():
        return model.predict(np.asarray(x, dtype=np.float64)).astype(np.int8)


def state_table(model: Any, states: np.ndarray, level_db: np.ndarray) -> pd.DataFrame:
    """One row per state: ``role`` (by position in the topology), ``fraction`` of frames,
    mean ``level_db``, mean ``dwell_ms`` (from the self-transition) and ``visits``."""
    k = model.n_components
    nb = k - 2
    rows = []
    for s in range(k):
        on = states == s
        entries = int(np.sum(on & np.r_[True, states[:-1] != s]))
        stay = float(model.transmat_[s, s])
        rows.append({
            "state": s,
            "role": "onset" if s == nb else "ring" if s == nb + 1 else "background",
            "fraction": float(on.mean()) if len(states) else 0.0,
            "level_db": float(level_db[on].mean()) if on.any() else float("nan"),
            "dwell_ms": 1000 * HOP_S / max(1 - stay, 1e-6),
            "visits": entries,
        })
    return pd.DataFrame(rows)


def plop_states(model: Any, states: np.ndarray, level_db: np.ndarray, *,
                min_state_contrast_db: float = 3.0, max_event_fraction: float = 0.6
                ) -> tuple[dict, str]:
    """The rule that decides which state is the plop.

    The topology lets the background enter only the onset state, so after fitting, the onset
    state is the one that marks the sudden sounds. It is accepted as the *plop state* when,
    on the decoded recording,

    1. it is visited at all,
    2. its frames are louder than the recording's median frame by at least
       ``min_state_contrast_db`` (energy), and
    3. it takes at most ``max_event_fraction`` of the frames (rarity: plops are short
       sounds between longer stretches of something else).

    Fitting is free to use the ring and background states for whatever else the recording
    holds (in a recording full of plops the "ring" state often ends up modelling the
    background between them), so they are not checked.

    Returns
    -------
    roles, problem
        ``roles`` maps ``"plop"`` to the plop state, ``"ring"`` to the state after it and
        ``"background"`` to the list of background states;
        ``problem`` is ``""`` when the rule holds, otherwise why it does not.

    Examples
    --------
    >>> roles, problem = plop_states(model, states, level)   # doctest: +SKIP
    >>> roles                                                # doctest: +SKIP
    {'plop': 1, 'ring': 2, 'background': [0]}
    """
    table = state_table(model, states, level_db)
    nb = model.n_components - 2
    roles = {"plop": nb, "ring": nb + 1, "background": list(range(nb))}
    row = table.iloc[nb]
    if row["visits"] == 0 or not np.isfinite(row["level_db"]):
        return roles, "the model found no sudden sound at all"
    if not row["level_db"] >= min_state_contrast_db:
        return roles, (f"the onset state is only {row['level_db']:.1f} dB louder than the "
                       f"recording's median (need {min_state_contrast_db:g} dB): nothing stands "
                       "out")
    if row["fraction"] > max_event_fraction:
        return roles, (f"the onset state covers {row['fraction']:.0%} of the recording (at most "
                       f"{max_event_fraction:.0%} expected): the model mistook the background "
                       "for events")
    return roles, ""


def plop_state_found(model: Any, x: np.ndarray, level_db: np.ndarray, *,
                     min_state_contrast_db: float = DEFAULTS["min_state_contrast_db"],
                     max_event_fraction: float = DEFAULTS["max_event_fraction"]) -> bool:
    """Whether :func:`plop_states`' rule finds the plop state in ``model``'s decoding of ``x``:
    the ``accept`` test that :func:`autolabel` gives :func:`fit_hmm`, so that a restart that
    degenerated does not win by a hair of likelihood.

    Examples
    --------
    >>> model, _ = fit_hmm(x, level, accept=plop_state_found)  # doctest: +SKIP
    """
    return not plop_states(model, decode(model, x), level_db, min_state_contrast_db=min_state_contrast_db,
                           max_event_fraction=max_event_fraction)[1]


# ---------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------
#: Correction (s) added to onset-frame times: the first frame that hears a plop is centred
#: a little before it (its 32 ms window reaches ahead). The median error before correction
#: was -6.9 ms on the training and validation recordings of the synthetic set.
ONSET_OFFSET_S = 0.007


def candidate_events(states: np.ndarray, roles: dict, *, merge_s: float | None = None,
                     min_frames: int = 3) -> pd.DataFrame:
    """Events from the decoded states.

    Each entry into the plop state starts an event, which lasts until a background state
    returns or the next event starts. Events shorter than ``min_frames`` frames (a click, a
    tick) are dropped; an entry less than ``merge_s`` after the previous event's onset is
    merged into it (a second bubble, the glug, the cap knocking). ``merge_s`` defaults to the
    labeler's (``DEFAULTS["merge_s"]``), so that these are the candidates :func:`autolabel` sees.

    Returns a frame with ``start``, ``end`` (s) and ``frame`` (onset frame index).

    Examples
    --------
    >>> st = np.array([0, 0, 1, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 1, 0])
    >>> roles = {"plop": 1, "ring": 2, "background": [0]}
    >>> candidate_events(st, roles)[["start", "end"]].round(3).values.tolist()  # last: too short
    [[0.027, 0.067], [0.157, 0.187]]
    """
    states = np.asarray(states)
    n = len(states)
    plop = roles["plop"]
    on = states == plop
    # an entry, not a recording that starts in the plop state (that is no onset)
    entries = np.flatnonzero(on & np.r_[False, states[:-1] != plop])
    background = np.isin(states, roles["background"])
    nxt_bg = np.where(background, np.arange(n), n)
    if n:
        nxt_bg = np.minimum.accumulate(nxt_bg[::-1])[::-1]
    stops = np.minimum(nxt_bg[entries] if len(entries) else entries, np.r_[entries[1:], n])
    gap = int(round((DEFAULTS["merge_s"] if merge_s is None else merge_s) / HOP_S))
    starts: list[int] = []
    ends: list[int] = []
    for a, b in zip(entries, stops):
        if b - a < min_frames:
            continue
        if starts and a - starts[-1] < gap:
            ends[-1] = max(ends[-1], int(b))
            continue
        starts.append(int(a))
        ends.append(int(b))
    s = np.asarray(starts, dtype=int)
    e = np.asarray(ends, dtype=int)
    if len(s) > 1:
        e[:-1] = np.minimum(e[:-1], s[1:])
    return pd.DataFrame({"start": s * HOP_S + ONSET_OFFSET_S, "end": e * HOP_S + ONSET_OFFSET_S,
                         "frame": s})


def _fine_median(frames: Frames, max_rows: int = 20000) -> np.ndarray:
    step = max(frames.n_frames // max_rows, 1)
    return np.median(frames.fine_q[::step], axis=0).astype(np.float32) * _Q


#: :func:`describe_events` measures an event over this long after its onset …
DESCRIBE_WINDOW_S = 0.3
#: … and from this many frames before it
_PRE_FRAMES = 3


def describe_events(frames: Frames, events: pd.DataFrame, *, window_s: float = DESCRIBE_WINDOW_S,
                    floor: np.ndarray | None = None) -> pd.DataFrame:
    """Measurements of each event on the fine spectrum (250–6500 Hz), for the confidence.

    For each event, within ``window_s`` of its onset (or until the next event): ``peak_db``,
    the strongest bin above its own median level during the first 50 ms; ``ring``, the frames
    a ridge starting there lasts (followed bin by bin, allowing the pitch to rise) while it
    stays 6 dB above the floor; ``ring_hz``, its frequency; ``decay``, its mean fall in dB
    per frame; ``narrow``, its height over the bins 4–12 bins beside it; ``attack``, the rise
    of the broadband level at the onset over the 30 ms before; ``rise``, the rise of the
    ridge's own bins (the strongest of three) from 30 ms before its first peak to the peak.
    Levels are measured over the ``floor``, the fine spectrum's median over ``frames`` unless
    given (dB per bin: a stream measures against the last minute of audio it has).

    Examples
    --------
    >>> describe_events(fr, candidate_events(states, roles))  # doctest: +SKIP
    """
    cols = ["peak_db", "ring", "ring_hz", "decay", "narrow", "attack", "rise"]
    if len(events) == 0:
        return pd.DataFrame(columns=cols, dtype=float)
    med = _fine_median(frames) if floor is None else np.asarray(floor, dtype=np.float32)
    n = frames.n_frames
    win = int(round(window_s / HOP_S))
    onsets = events["frame"].to_numpy(dtype=int)
    nexts = np.r_[onsets[1:], n]
    rows = []
    for a, stop in zip(onsets, nexts):
        lo = max(a - _PRE_FRAMES, 0)
        hi = min(n, a + win, max(stop, a + 1))
        e = frames.fine_q[lo:hi] * np.float32(_Q) - med            # excess over the floor
        pre, seg = e[: a - lo], e[a - lo:]
        first = seg[: min(5, len(seg))]
        t0 = int(np.argmax(first.max(axis=1)))
        f = int(np.argmax(seg[t0]))
        peak = float(seg[t0, f])
        f0, vals = f, [peak]
        for t in range(t0 + 1, len(seg)):
            lo_b, hi_b = max(f - 2, 0), min(f + 4, seg.shape[1])   # allow a rising pitch
            f2 = lo_b + int(np.argmax(seg[t, lo_b:hi_b]))
            if seg[t, f2] < max(6.0, peak - 30.0):
                break
            f = f2
            vals.append(float(seg[t, f]))
        row = seg[t0]
        side = np.r_[row[max(f0 - 12, 0):max(f0 - 4, 0)], row[f0 + 5:f0 + 13]]
        before = e[max(a - lo + t0 - 3, 0), max(f0 - 1, 0):f0 + 2]  # 30 ms before the peak
        rows.append({
            "peak_db": peak,
            "ring": len(vals),
            "ring_hz": (f0 + _FINE_LO) * _BIN_HZ,
            "decay": (vals[0] - vals[-1]) / max(len(vals) - 1, 1),
            "narrow": peak - float(np.median(side)) if len(side) else 0.0,
            "attack": float(seg[:2].mean() - (pre.mean() if len(pre) else 0.0)),
            "rise": peak - float(before.max()),
        })
    return pd.DataFrame(rows, columns=cols)


#: The confidence scales: measure → (value at confidence 0, value at confidence 1).
CONFIDENCE_SCALES: dict[str, tuple[float, float]] = {
    "peak_db": (20.0, 30.0),
    "ring": (4.0, 7.0),
    "attack": (-5.0, 10.0),
    "narrow": (0.0, 25.0),
    "decay": (0.2, 0.6),
    "rise": (5.0, 25.0),
}


def event_confidence(description: pd.DataFrame) -> np.ndarray:
    """How plop-like each event is, 0..1: the mean of the measures of
    :func:`describe_events`, each mapped linearly from its :data:`CONFIDENCE_SCALES` range
    to 0..1 (and clipped).

    Examples
    --------
    >>> d = pd.DataFrame({"peak_db": [40.0, 12.0], "ring": [9, 1], "attack": [12.0, 0.0],
    ...                   "narrow": [30.0, 6.0], "decay": [2.0, 0.0], "rise": [30.0, 10.0]})
    >>> event_confidence(d).round(2).tolist()
    [1.0, 0.14]
    """
    if len(description) == 0:
        return np.zeros(0)
    parts = [np.clip((description[c].to_numpy(dtype=float) - a) / (b - a), 0.0, 1.0)
             for c, (a, b) in CONFIDENCE_SCALES.items()]
    return np.mean(parts, axis=0)


def plausibility(y: np.ndarray, events: pd.DataFrame, *, sr: int = SR, block_s: float = 60.0
                 ) -> np.ndarray:
    """How much each of another detector's events sounds like a bubble: the labeler's
    :func:`event_confidence` of the six measures of :func:`describe_events`, taken at each
    event's onset (``start``) in mono audio ``y``.

    A second opinion that knows nothing of the detector's training data: the shipped
    detector's ``detect --strict`` drops events below :data:`STRICT_PLAUSIBILITY`. The audio is
    measured in blocks of ``block_s`` seconds (each with its own noise floor), so memory stays
    small for an hour-long file.

    Examples
    --------
    >>> from helpers.synth import synthesize_recording
    >>> rec = synthesize_recording(seed=11, duration_s=10.0, sr=16000, snr_db=25.0)
    >>> p = plausibility(rec.audio, rec.events)
    >>> len(p) == len(rec.events), bool(np.median(p) > 0.8)
    (True, True)
    """
    if len(events) == 0:
        return np.zeros(0)
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected mono samples of shape (n,), got shape {y.shape}")
    if sr != SR:
        from helpers.audio import resample

        y = resample(y, sr, SR)
    n_frames = len(y) // _HOP + 1
    # an onset outside the audio is measured at its nearest frame
    onset = np.clip(np.round(events["start"].to_numpy(float) / HOP_S), 0, n_frames - 1).astype(int)
    order = np.argsort(onset, kind="stable")
    sorted_onsets = onset[order]
    block = max(int(round(block_s / HOP_S)), 1)
    tail = int(round(0.4 / HOP_S))          # describe_events looks 0.3 s past an onset
    bounds = list(range(0, n_frames, block)) + [n_frames]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < block // 2:
        del bounds[-2]                      # a short last block joins the one before
    conf = np.empty(len(onset))
    for b0, b1 in zip(bounds[:-1], bounds[1:]):
        i0, i1 = np.searchsorted(sorted_onsets, [b0, b1])
        if i1 == i0:
            continue
        lo = max(b0 - _CONTEXT, 0)
        hi = min(n_frames, b1 + tail)
        frames = frame_features(y[lo * _HOP:hi * _HOP])
        last = max(frames.n_frames - 1, 0)
        these = np.clip(sorted_onsets[i0:i1] - lo, 0, last)
        # the next block's first onset ends this block's last event, as it would in one piece
        if i1 < len(onset) and sorted_onsets[i1] - lo <= last:
            these = np.r_[these, sorted_onsets[i1] - lo]
        cand = pd.DataFrame({"frame": these})
        conf[i0:i1] = event_confidence(describe_events(frames, cand))[: i1 - i0]
    out = np.empty(len(onset))
    out[order] = conf
    return out


#: ``detect --strict``: events less plausible than this are dropped (see :func:`plausibility`)
STRICT_PLAUSIBILITY = 0.5


def keep_plausible(y: np.ndarray, events: pd.DataFrame, min_plausibility: float = STRICT_PLAUSIBILITY,
                   *, sr: int = SR) -> pd.DataFrame:
    """The strict mode of ``detect`` and ``evaluate``: ``events`` with a ``plausibility``
    column (:func:`plausibility` in mono audio ``y``), without those below ``min_plausibility``.

    Examples
    --------
    >>> from helpers.synth import synthesize_recording
    >>> rec = synthesize_recording(seed=11, duration_s=10.0, sr=16000, snr_db=25.0)
    >>> noise = pd.DataFrame({"start": [0.05], "end": [0.1]})   # before the first plop
    >>> both = pd.concat([noise, rec.events[["start", "end"]]], ignore_index=True)
    >>> len(keep_plausible(rec.audio, both)) < len(both)
    True
    """
    events = events.assign(plausibility=plausibility(y, events, sr=sr))
    return events[events["plausibility"] >= min_plausibility].reset_index(drop=True)


class PlausibilityGate:
    """:func:`plausibility` for a stream (``listen --strict``): each event of a live detector
    waits until it can be measured, then passes (at least ``min_plausibility``) or is dropped.

    Feed every block of the stream's mono 16 kHz audio to :meth:`feed`, and the detector's
    events, in order, to :meth:`push` as ``(first frame, end frame, probability)`` (10 ms
    frames) with the detector's settled frame (no later event starts before it); :meth:`finish`
    ends the audio and releases the rest. An event is measured as offline, over the 0.3 s after
    its onset or up to the next event's onset, so it comes out about 0.3 s of audio later.
    One difference from offline: the noise floor is the median fine spectrum of the last
    ``floor_s`` seconds of audio up to the measurement, refreshed every ``refresh_s`` seconds
    (offline: of the 60 s block around the event). In a steady background the values are
    nearly those of ``detect --strict``; where the background changes (a voice starts, the
    first seconds of a stream) they can differ by a few tenths, and an event near the
    threshold can go the other way.
    Memory: ``floor_s`` seconds of fine frames (0.4 KB each; 2.4 MB for a minute), and the
    frames of an event the detector keeps waiting on.

    Examples
    --------
    >>> from helpers.synth import synthesize_recording
    >>> rec = synthesize_recording(seed=11, duration_s=10.0, sr=16000, snr_db=25.0)
    >>> gate = PlausibilityGate()
    >>> gate.feed(rec.audio); gate.finish()
    >>> onsets = (rec.events["start"] / HOP_S).round().astype(int)
    >>> kept = gate.push([(a, a + 5, 0.9) for a in onsets], settled=np.inf)
    >>> len(kept) == len(onsets), gate.dropped
    (True, 0)
    """

    def __init__(self, min_plausibility: float = STRICT_PLAUSIBILITY, *, floor_s: float = 60.0,
                 refresh_s: float = 5.0):
        if not (np.isfinite(min_plausibility) and floor_s > 0 and refresh_s > 0):
            raise ValueError("need a finite min_plausibility and floor_s, refresh_s > 0 seconds")
        self.min_plausibility = float(min_plausibility)
        self._maker = _FrameMaker()
        self._cap = max(int(round(floor_s / HOP_S)), 64)
        self._ring = np.zeros((self._cap, _FINE_HI - _FINE_LO), dtype=np.int16)
        self.frames = 0                    # frames made so far
        self._final = False
        self._refresh = max(int(round(refresh_s / HOP_S)), 1)
        self._floor: np.ndarray | None = None
        self._floor_at = 0
        self._win = int(round(DESCRIBE_WINDOW_S / HOP_S))
        self._pending: deque = deque()
        self.measured = 0
        self.dropped = 0

    @property
    def settled_frame(self) -> float:
        """Every event starting before this frame has been released or dropped."""
        return self._pending[0][0] if self._pending else np.inf

    def feed(self, block: np.ndarray) -> None:
        """The next samples of the stream (mono float32 at 16 kHz)."""
        if self._final:
            raise RuntimeError("the gate's audio has ended (finish was called)")
        self._store(self._maker.feed(np.asarray(block, dtype=np.float32).reshape(-1))[1])

    def finish(self) -> None:
        """End of the audio: the last frames (padded as offline)."""
        if not self._final:
            self._store(self._maker.feed(np.zeros(0, np.float32), last=True)[1])
            self._final = True

    def _store(self, fine: np.ndarray) -> None:
        skipped = max(len(fine) - self._cap, 0)    # older than the ring holds
        fine = fine[skipped:]
        idx = (self.frames + skipped + np.arange(len(fine))) % self._cap
        self._ring[idx] = fine
        self.frames += len(fine) + skipped

    def push(self, events: Iterable[tuple[int, int, float]], *, settled: float
             ) -> list[tuple[int, int, float, float]]:
        """Add the detector's new events; returns those now measured and plausible enough, as
        ``(first frame, end frame, probability, plausibility)``."""
        self._pending.extend([int(a), int(b), float(p), None] for a, b, p in events)
        out = []
        while self._pending:
            event = self._pending[0]
            a = event[0]
            nxt = self._pending[1][0] if len(self._pending) > 1 else None
            if nxt is None and settled < a + self._win:
                # the next event may still start inside the window: keep this one's audio, for
                # the detector may take long to decide (a sound that keeps it on for minutes)
                self._snapshot(event)
                break
            stop = max(a + self._win if nxt is None else min(a + self._win, nxt), a + 1)
            if self._final:
                stop = min(stop, self.frames)
            elif self.frames < stop:
                break                      # its audio has not all arrived
            self._pending.popleft()
            value = self._measure(event, stop)
            self.measured += 1
            if value >= self.min_plausibility:
                out.append((a, event[1], event[2], value))
            else:
                self.dropped += 1
        return out

    @staticmethod
    def _noise_floor(fine_q: np.ndarray) -> np.ndarray:
        """The floor of the frames kept (in no particular order): their median, in dB."""
        return np.median(fine_q, axis=0).astype(np.float32) * _Q

    def _current_floor(self) -> np.ndarray:
        # refreshed every refresh_s, and sooner while the audio so far is short (it doubles)
        if self._floor is None or self.frames - self._floor_at >= min(self._refresh, self._floor_at):
            self._floor = self._noise_floor(self._ring[: min(self.frames, self._cap)])
            self._floor_at = self.frames
        return self._floor

    def _frames_around(self, a: int, stop: int) -> np.ndarray | None:
        """A copy of the fine frames from just before onset ``a`` up to ``stop``; None when
        there is no audio at the onset (past the end, or gone from the ring)."""
        lo = max(a - _PRE_FRAMES, 0)
        if a >= self.frames or lo < self.frames - self._cap:
            return None
        return self._ring[np.arange(lo, stop) % self._cap]

    def _snapshot(self, event: list) -> None:
        """Keep an event's frames (to the end of its window) and the floor once they have all
        arrived: 13 KB, measured later whatever the ring holds by then."""
        stop = event[0] + self._win
        if event[3] is None and self.frames >= stop:
            fine = self._frames_around(event[0], stop)
            if fine is not None:
                event[3] = (fine, self._current_floor())

    def _measure(self, event: list, stop: int) -> float:
        a = event[0]
        lo = max(a - _PRE_FRAMES, 0)
        if event[3] is not None:
            fine, floor = event[3][0][: stop - lo], event[3][1]
        else:
            fine = self._frames_around(a, stop)
            if fine is None:
                return 0.0
            floor = self._current_floor()
        fr = Frames(np.zeros((len(fine), 0), np.float32), fine, len(fine) * HOP_S, np.zeros(len(fine), np.float32))
        desc = describe_events(fr, pd.DataFrame({"frame": [a - lo]}), floor=floor)
        return float(event_confidence(desc)[0])


# ---------------------------------------------------------------------------------------
# The whole labeler
# ---------------------------------------------------------------------------------------
@dataclass
class AutolabelResult:
    """What :func:`autolabel` found in one recording.

    Attributes
    ----------
    status
        ``"ok"`` (labels proposed) or ``"flagged"`` (no labels: see ``message``).
    message
        One line for a person: what was found, or what is wrong and what to do.
    events
        The proposed labels: ``start``, ``end`` (s), ``label`` (``"p"``) and ``confidence``
        (0..1), sorted by start. Empty when flagged.
    candidates
        Every event the HMM found, with the measures of :func:`describe_events`,
        ``confidence``, ``kept`` and ``filled`` (kept by :func:`fill_rhythm_gaps`); for review
        and for the notebook.
    duration_s
        Length of the recording.
    model, states, roles, restarts
        The fitted HMM, the Viterbi state of each 10 ms frame, the rule's roles
        (:func:`plop_states`) and the restarts table of :func:`fit_hmm` (None when the
        recording was flagged before fitting). For a recording labeled in several segments,
        the model and roles are those of the first segment, the states and restarts those of
        all segments.
    segments
        One row per segment (``start_s``, ``end_s``, ``status``, ``events``, ``message``).
    """

    status: str
    message: str
    events: pd.DataFrame
    candidates: pd.DataFrame
    duration_s: float
    model: Any = None
    states: np.ndarray | None = None
    roles: dict | None = None
    restarts: pd.DataFrame | None = None
    options: dict = field(default_factory=dict)
    segments: pd.DataFrame | None = None

    @property
    def plops_per_min(self) -> float:
        """Proposed plops per minute (0 for an empty result)."""
        return 60.0 * len(self.events) / self.duration_s if self.duration_s > 0 else 0.0


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame({"start": pd.Series(dtype=float), "end": pd.Series(dtype=float),
                         "label": pd.Series(dtype=str), "confidence": pd.Series(dtype=float)})


def _options(options: dict) -> dict:
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise TypeError(f"unknown autolabel option(s) {unknown}; known: {sorted(DEFAULTS)}")
    o = {**DEFAULTS, **options}
    if o["max_level_drop_db"] is not None:
        _level_drop(o["max_level_drop_db"])
    return o


def _keep(starts: np.ndarray, confidence: np.ndarray, *, min_confidence: float,
          min_gap_s: float) -> np.ndarray:
    """Events confident enough, and not within ``min_gap_s`` of the previous kept one."""
    keep = confidence >= min_confidence
    last = -np.inf
    for i in np.flatnonzero(keep):
        if starts[i] - last < min_gap_s - 1e-9:
            keep[i] = False
        else:
            last = starts[i]
    return keep


#: :func:`fill_rhythm_gaps`: a gap this many typical intervals long has room for one plop …
FILL_GAP = (1.5, 3.5)
#: … placed at least this far (a fraction of the gap) from either end
FILL_POSITION = 0.3
#: labels needed before the typical interval is trusted
FILL_MIN_LABELS = 5


def fill_rhythm_gaps(starts: np.ndarray, confidence: np.ndarray, kept: np.ndarray, *,
                     min_confidence: float = 0.5, min_gap_s: float = 0.12) -> np.ndarray:
    """Which candidates fill a hole in the rhythm of the kept ones.

    The typical interval is the median interval between kept onsets (``starts[kept]``,
    sorted). For each pair of neighbouring kept onsets :data:`FILL_GAP` typical intervals
    apart, the most confident candidate at least ``min_confidence`` confident and at least
    :data:`FILL_POSITION` of the gap (and ``min_gap_s``) away from both ends is chosen.
    Needs :data:`FILL_MIN_LABELS` kept onsets; returns a boolean array, True for the
    candidates chosen (never one already kept). One pass: a filled label does not itself
    open a new gap.

    Examples
    --------
    >>> starts = np.array([0.0, 1.0, 2.0, 3.0, 3.5, 4.0, 5.0, 5.3, 6.0, 7.0])
    >>> conf = np.array([0.9, 0.9, 0.9, 0.9, 0.6, 0.9, 0.9, 0.6, 0.9, 0.9])
    >>> kept = conf >= 0.8
    >>> kept[3] = False                       # a plop the measures missed …
    >>> conf[3] = 0.7
    >>> fill_rhythm_gaps(starts, conf, kept).nonzero()[0].tolist()  # … and the gap's middle
    [3]
    """
    starts = np.asarray(starts, dtype=float)
    confidence = np.asarray(confidence, dtype=float)
    kept = np.asarray(kept, dtype=bool)
    filled = np.zeros(len(starts), dtype=bool)
    ks = np.sort(starts[kept])
    if len(ks) < FILL_MIN_LABELS:
        return filled
    typical = float(np.median(np.diff(ks)))
    best: dict[int, int] = {}
    for i in np.flatnonzero(~kept & (confidence >= min_confidence)):
        j = int(np.searchsorted(ks, starts[i]))
        if j == 0 or j == len(ks):
            continue
        gap = ks[j] - ks[j - 1]
        margin = max(FILL_POSITION * gap, min_gap_s)
        if not FILL_GAP[0] * typical <= gap <= FILL_GAP[1] * typical:
            continue
        if starts[i] - ks[j - 1] < margin or ks[j] - starts[i] < margin:
            continue
        if j not in best or confidence[i] > confidence[best[j]]:
            best[j] = int(i)
    filled[list(best.values())] = True
    return filled


#: :func:`level_gate`: the level of "the loud plops", a quantile of the confident candidates
LEVEL_QUANTILE = 0.9


def _level_drop(value: Any) -> float:
    """``max_level_drop_db`` as a float, or a clear error."""
    try:
        drop = float(value)
    except (TypeError, ValueError):
        drop = float("nan")
    if not drop >= 0:
        raise ValueError(f"max_level_drop_db must be 0 dB or more (or None for no gate), got {value!r}")
    return drop


def level_gate(peak_db: np.ndarray, confident: np.ndarray, *, max_drop_db: float = 30.0
               ) -> np.ndarray:
    """Which candidates are loud enough to be plops of the airlock the recording is about.

    One airlock, one microphone: its plops reach similar levels. The level of the loud plops
    is the :data:`LEVEL_QUANTILE` quantile of ``peak_db`` (see :func:`describe_events`) over
    the ``confident`` candidates; a candidate more than ``max_drop_db`` below it is not taken
    for a plop, however bubble-like it rings (a note, a syllable, a tick far under the plops).
    Where the plops are few and the background busy, such sounds outnumbered them (two plops
    and fifty notes in one minute of music prompted it; the gate does not help that recording,
    whose notes are within 30 dB of the plops). Returns all True when no candidate is
    confident. Under a threshold sweep (:func:`labels_at`) the level follows the swept
    threshold.

    How far below is chosen on two development sets, never on the synthetic test sets (the
    recorded bubbles include those the bench scores the labeler on, so those figures lean
    optimistic). On the training and
    validation recordings of the synthetic set (108, main and extra) a tighter gate is better:
    event F1 at SNR >= 10 dB 0.920 without it, 0.924 at 30 dB, 0.926 at 25 dB, 0.934 at
    20 dB. On the recorded bubbles of :mod:`helpers.bubbles` (all six recordings), whose loudness varies more than
    the generator's, 20 dB lost real bubbles (F1 at 0 / 10 / 20 dB SNR 0.737 / 0.898 / 0.914
    without the gate, 0.682 / 0.858 / 0.906 at 20 dB, 0.720 / 0.890 / 0.931 at 25 dB,
    0.736 / 0.901 / 0.928 at 30 dB). 30 dB is the tightest gate that cost neither set
    anything. The quantile: 0.9 and 0.95 measured alike; the loudest candidate (quantile 1)
    was worse, as it is often a door or a knock.

    Examples
    --------
    >>> peak = np.array([40.0, 38.0, 5.0, 42.0, 41.0])
    >>> level_gate(peak, np.ones(5, bool)).tolist()
    [True, True, False, True, True]
    """
    max_drop_db = _level_drop(max_drop_db)
    peak_db = np.asarray(peak_db, dtype=float)
    confident = np.asarray(confident, dtype=bool)
    if not confident.any():
        return np.ones(len(peak_db), dtype=bool)
    loud = float(np.quantile(peak_db[confident], LEVEL_QUANTILE))
    return peak_db >= loud - max_drop_db


def select_candidates(candidates: pd.DataFrame, options: dict, *,
                      min_confidence: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The labeler's choice among the candidates of one segment (sorted by ``start``): those
    at least ``min_confidence`` (the option's by default) confident, loud enough
    (:func:`level_gate`, unless ``max_level_drop_db`` is None) and ``min_gap_s`` apart, plus
    those that fill a hole in their rhythm (:func:`fill_rhythm_gaps`; loud enough too).
    Returns ``kept`` (all chosen) and ``filled``."""
    o = {**DEFAULTS, **options}
    starts = candidates["start"].to_numpy(float)
    confidence = candidates["confidence"].to_numpy(float)
    threshold = o["min_confidence"] if min_confidence is None else min_confidence
    if o["max_level_drop_db"] is not None:
        loud = level_gate(candidates["peak_db"].to_numpy(float), confidence >= threshold,
                          max_drop_db=o["max_level_drop_db"])
        confidence = np.where(loud, confidence, 0.0)
    kept = _keep(starts, confidence, min_confidence=threshold, min_gap_s=o["min_gap_s"])
    filled = fill_rhythm_gaps(starts, confidence, kept, min_confidence=o["fill_confidence"],
                              min_gap_s=o["min_gap_s"])
    return kept | filled, filled


def _implausible_rate(n_labels: int, seconds: float, o: dict) -> bool:
    """The labeler's check: more than ``max_rate_ppm`` plops per minute means the background
    was taken for plops."""
    return seconds > 0 and 60.0 * n_labels / seconds > o["max_rate_ppm"]


def labels_at(candidates: pd.DataFrame, options: dict, *, min_confidence: float,
              duration_s: float) -> np.ndarray:
    """Which of a result's ``candidates`` the labeler would keep at another ``min_confidence``:
    :func:`select_candidates` and the rate check per segment (column ``segment``, when the
    recording was labeled in several), then no two labels within ``min_gap_s`` across a
    boundary. For threshold sweeps (:class:`helpers.systems.HmmSystem`)."""
    o = {**DEFAULTS, **options}
    several = "segment" in candidates
    segment = candidates["segment"].to_numpy() if several else np.zeros(len(candidates), int)
    keep = np.zeros(len(candidates), dtype=bool)
    for s in np.unique(segment):
        part = segment == s
        k, _ = select_candidates(candidates[part], o, min_confidence=min_confidence)
        seconds = float(candidates["segment_s"].to_numpy()[part][0]) if several else duration_s
        keep[part] = k & (not _implausible_rate(int(k.sum()), seconds, o))
    if several:
        keep[keep] = _keep(candidates["start"].to_numpy(float)[keep], np.ones(int(keep.sum())),
                           min_confidence=0.0, min_gap_s=o["min_gap_s"])
    return keep


def autolabel_frames(frames: Frames, **options: Any) -> AutolabelResult:
    """Label frames that are already computed as *one* segment: one model for all of them.

    :func:`autolabel` and :func:`autolabel_file` call this once per segment of a long
    recording; call it directly to model a long recording as a whole (slower, and blind to
    changes along the recording).

    Examples
    --------
    >>> result = autolabel_frames(file_features("brew1.wav"))   # doctest: +SKIP
    """
    o = _options(options)
    dur = frames.duration_s

    def flagged(message: str, candidates: pd.DataFrame | None = None, **kw: Any
                ) -> AutolabelResult:
        return AutolabelResult("flagged", message, _empty_events(),
                               pd.DataFrame() if candidates is None else candidates, dur,
                               options=o, **kw)

    if dur < o["min_duration_s"]:
        return flagged(f"too short to model ({dur:.2f} s; the labeler needs at least "
                       f"{o['min_duration_s']:g} s with some background around the plops): "
                       "label it by hand or record longer")
    if not frames.peak_dbfs > o["silence_dbfs"]:
        return flagged(f"silent (loudest sample {frames.peak_dbfs:.0f} dBFS): check the "
                       "microphone, the input level and the recording device")
    level = frame_level_db(frames)
    x = hmm_features(frames, features=o["features"])
    rule = {"min_state_contrast_db": o["min_state_contrast_db"],
            "max_event_fraction": o["max_event_fraction"]}

    model, restarts = fit_hmm(x, level, n_background=o["n_background"], n_mix=o["n_mix"],
                              restarts=o["restarts"], n_iter=o["n_iter"], seed=o["seed"],
                              tol_per_frame=o["tol_per_frame"],
                              accept=functools.partial(plop_state_found, **rule))
    states = decode(model, x)
    roles, problem = plop_states(model, states, level, **rule)
    extra = {"model": model, "states": states, "roles": roles, "restarts": restarts}
    if problem:
        return flagged(f"plop state not found: {problem}; listen to it and label it by hand "
                       "if there are plops", **extra)
    cand = candidate_events(states, roles, merge_s=o["merge_s"])
    desc = describe_events(frames, cand)
    cand = pd.concat([cand.reset_index(drop=True), desc], axis=1)
    cand["confidence"] = event_confidence(desc)
    if len(cand):  # a label covers the bubble's ring (at least 50 ms), up to the next event
        ring_end = cand["start"].to_numpy() + np.maximum(cand["ring"].to_numpy(float), 5) * HOP_S
        cap = np.r_[cand["start"].to_numpy()[1:], dur]
        cand["end"] = np.minimum(ring_end, cap)
    cand["kept"], cand["filled"] = select_candidates(cand, o)
    extra["candidates"] = cand
    ev = cand[cand["kept"]]
    events = pd.DataFrame({"start": ev["start"].to_numpy(float), "end": ev["end"].to_numpy(float),
                           "label": PLOP_LABEL, "confidence": ev["confidence"].to_numpy(float)})
    if len(events) == 0:
        return flagged(f"no plop found ({len(cand)} sudden sounds, none plop-like enough); "
                       "if you hear plops, label them by hand or lower min_confidence", **extra)
    rate = 60.0 * len(events) / dur
    if _implausible_rate(len(events), dur, o):
        return flagged(f"implausible result ({rate:.0f} plops per minute, more than "
                       f"{o['max_rate_ppm']:g}): the background was probably taken for plops; "
                       "label it by hand", **extra)
    low = int((events["confidence"] < 0.9).sum())
    msg = f"{len(events)} plops ({rate:.1f} per minute)"
    if low:
        msg += f", {low} with confidence below 0.9: review those first"
    return AutolabelResult("ok", msg, events.reset_index(drop=True), cand, dur, options=o,
                           **{k: v for k, v in extra.items() if k != "candidates"})


def _segments(chunks: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]], *,
              segment_frames: int, context_frames: int, info: dict
              ) -> Iterator[tuple[Frames, int, int, int]]:
    """Cut a stream of frame chunks into segments modelled one at a time.

    Yields ``(frames, first, core_start, core_end)`` (absolute frame indices): the segment's
    frames start at ``first`` and include ``context_frames`` of context on each side of its
    core ``core_start .. core_end``. Cores are ``segment_frames`` long and tile the
    recording; the last one takes what is left (between half and one and a half segments,
    or the whole recording when it is shorter). ``info["n_samples"]`` (filled by the chunk
    source when it ends) sets the exact duration of the last segment.
    """
    s, ctx = segment_frames, context_frames
    buf: list[np.ndarray] | None = None
    buf0 = core = 0
    for chunk in chunks:
        buf = list(chunk) if buf is None else [np.concatenate([b, c]) for b, c in zip(buf, chunk)]
        while buf0 + len(buf[0]) >= core + s + s // 2 + ctx:
            first = max(core - ctx, 0)
            a, b = first - buf0, core + s + ctx - buf0
            yield Frames(buf[0][a:b], buf[1][a:b], (b - a) * HOP_S, buf[2][a:b]), first, core, core + s
            core += s
            drop = core - ctx - buf0
            if drop > 0:
                buf = [x[drop:] for x in buf]
                buf0 += drop
    if buf is None:
        return
    end = buf0 + len(buf[0])
    if end > core or core == 0:
        first = max(core - ctx, 0)
        a = first - buf0
        dur = info.get("n_samples", end * _HOP) / SR - first * HOP_S
        yield Frames(buf[0][a:], buf[1][a:], max(dur, 0.0), buf[2][a:]), first, core, end


def _label_segments(segments: Iterable[tuple[Frames, int, int, int]], o: dict
                    ) -> AutolabelResult:
    """Label each segment on its own and join the results."""
    events, cands, states, restarts, rows = [], [], [], [], []
    first_res: AutolabelResult | None = None
    total = 0.0
    for frames, first, core0, core1 in segments:
        res = autolabel_frames(frames, **o)
        first_res = first_res or res
        off = first * HOP_S
        lo, hi = (core0 - first) * HOP_S, (core1 - first) * HOP_S
        if core1 - first >= frames.n_frames:      # the last segment keeps everything left
            hi = np.inf
        total = max(total, off + frames.duration_s)

        def inside(df: pd.DataFrame) -> pd.DataFrame:
            if df is None or len(df) == 0:
                return df
            d = df[(df["start"] >= lo) & (df["start"] < hi)].copy()
            d["start"] += off
            d["end"] += off
            return d

        events.append(inside(res.events))
        if res.candidates is not None and len(res.candidates):
            c = inside(res.candidates)
            c["frame"] += first
            c["segment"], c["segment_s"] = len(rows), frames.duration_s
            if res.status != "ok" and "kept" in c:   # a flagged segment labels nothing
                c["kept"] = c["filled"] = False
            cands.append(c)
        if res.states is not None:
            states.append(res.states[core0 - first:core1 - first])
        if res.restarts is not None:
            restarts.append(res.restarts.assign(segment=len(rows)))
        rows.append({"segment": len(rows), "start_s": core0 * HOP_S,
                     "end_s": min(core1 * HOP_S, off + frames.duration_s), "status": res.status,
                     "events": int(len(events[-1])), "message": res.message})
    if first_res is None:
        raise ValueError("no audio frames to label")
    seg = pd.DataFrame(rows)
    if len(rows) == 1:
        first_res.segments = seg
        return first_res
    ev = pd.concat(events, ignore_index=True) if events else _empty_events()
    keep = _keep(ev["start"].to_numpy(), np.ones(len(ev)), min_confidence=0.0,
                 min_gap_s=o["min_gap_s"])     # a plop counted at both sides of a boundary
    ev = ev[keep].reset_index(drop=True)
    cand = pd.concat(cands, ignore_index=True) if cands else pd.DataFrame()
    if "kept" in cand:   # a plop dropped at a boundary is no longer kept
        cand["kept"] &= cand["start"].isin(ev["start"])
        cand["filled"] &= cand["kept"]
    ok = seg["status"] == "ok"
    rate = 60.0 * len(ev) / total if total > 0 else 0.0
    msg = (f"{len(ev)} plops ({rate:.1f} per minute) in {len(seg)} segments of "
           f"{o['segment_s']:g} s")
    if (~ok).any():
        bad = seg[~ok].iloc[0]
        msg += (f"; {int((~ok).sum())} segments without labels, the first at "
                f"{bad['start_s']:.0f} s: {bad['message']}")
    if ok.any() and len(ev):
        low = int((ev["confidence"] < 0.9).sum())
        if low:
            msg += f"; {low} with confidence below 0.9: review those first"
    status = "ok" if ok.any() and len(ev) else "flagged"
    if status == "flagged":
        ev = _empty_events()
    return AutolabelResult(status, msg, ev, cand, total, model=first_res.model,
                           states=np.concatenate(states) if states else None,
                           roles=first_res.roles,
                           restarts=pd.concat(restarts, ignore_index=True) if restarts else None,
                           options=o, segments=seg)


def autolabel(y: np.ndarray, *, sr: int = SR, **options: Any) -> AutolabelResult:
    """Propose plop labels for one recording, without any training labels.

    Recordings longer than ``1.5 * segment_s`` are cut into segments of ``segment_s``
    seconds (with 1 s of context on each side), each modelled on its own, so that a model
    follows the recording as it changes (the fridge starting, the fermentation slowing down)
    and the work grows linearly with the length.

    Parameters
    ----------
    y
        Mono samples (float, nominally in [-1, 1]).
    sr
        Their sample rate (resampled to 16 kHz when different).
    **options
        See :data:`DEFAULTS`: ``features``, ``n_background``, ``n_mix``, ``restarts``,
        ``n_iter``, ``tol_per_frame``, ``seed``, ``segment_s``, ``min_state_contrast_db``,
        ``max_event_fraction``, ``merge_s``, ``min_gap_s``, ``min_confidence``,
        ``fill_confidence``,
        ``min_duration_s``, ``max_rate_ppm``, ``silence_dbfs``.

    Returns
    -------
    AutolabelResult
        ``status`` ``"ok"`` with ``events``, or ``"flagged"`` with an empty ``events`` and a
        ``message`` saying why (silence, too short, no plop found, plop state not found,
        implausible result).

    Examples
    --------
    >>> from helpers.synth import synthesize_recording
    >>> rec = synthesize_recording(seed=11, duration_s=20.0, sr=16000, snr_db=25.0)
    >>> res = autolabel(rec.audio)
    >>> res.status, len(res.events), len(rec.events)
    ('ok', 10, 10)
    >>> autolabel(np.zeros(16000 * 5, dtype="float32")).message
    'silent (loudest sample -inf dBFS): check the microphone, the input level and the recording device'
    """
    o = _options(options)
    frames = frame_features(y, sr=sr)
    info = {"n_samples": int(round(frames.duration_s * SR))}
    chunks = [(frames.mel_db, frames.fine_q, frames.peak)]
    return _label_segments(_segments(chunks, segment_frames=_seg_frames(o),
                                     context_frames=_CONTEXT, info=info), o)


_CONTEXT = 100   # frames of context on each side of a segment (1 s)


def _seg_frames(o: dict) -> int:
    return max(int(round(o["segment_s"] / HOP_S)), 10 * _CONTEXT)


def autolabel_file(path: str | os.PathLike, **options: Any) -> AutolabelResult:
    """:func:`autolabel` for an audio file, read in blocks and labeled segment by segment, so
    that memory stays bounded whatever the length of the file: only the frames of about one
    segment are held at a time (``bench/autolabel_speed.py`` measures an hour-long file).

    Examples
    --------
    >>> result = autolabel_file("data/recordings/brew1.flac")   # doctest: +SKIP
    >>> result.status, result.message                          # doctest: +SKIP
    ('ok', '57 plops (28.5 per minute), 4 with confidence below 0.9: review those first')

    Raises
    ------
    FileNotFoundError, helpers.audio.AudioError
        When the file is missing or cannot be decoded.
    """
    o = _options(options)
    info: dict = {}
    chunks = _frame_chunks(Path(path), info)
    return _label_segments(_segments(chunks, segment_frames=_seg_frames(o),
                                     context_frames=_CONTEXT, info=info), o)


def autolabel_paths(paths: str | os.PathLike | Iterable[str | os.PathLike], *,
                    out_dir: str | os.PathLike, progress: bool = True, overwrite: bool = False,
                    **options: Any) -> pd.DataFrame:
    """Label many recordings: write ``out_dir/<stem>.txt`` (Audacity labels, label ``p``).

    Every path is a file or a folder (searched for audio with
    :func:`helpers.audio.find_audio`). A file that cannot be read, a missing path, and a file
    whose labels would overwrite another's or the labels beside it
    (:func:`helpers.audio.label_jobs`; ``overwrite`` replaces the labels beside a recording in
    ``out_dir``) get a row with status ``"error"`` and no label file; the
    batch goes on. Flagged recordings get
    an empty label file, so that a reviewer opens them too.

    Parameters
    ----------
    paths
        Files and folders.
    out_dir
        Folder for the label files (created).
    progress
        Show a tqdm progress bar (on stderr).
    **options
        Options of :func:`autolabel`.

    Returns
    -------
    pandas.DataFrame
        One row per file, in order: ``file``, ``status`` (``ok``, ``flagged`` or ``error``),
        ``events``, ``plops_per_min``, ``message``, ``duration_s``, ``labels`` (the label
        file written, ``""`` when none).

    Examples
    --------
    >>> table = autolabel_paths(["data/recordings"], out_dir="labels/proposed")  # doctest: +SKIP
    >>> table[["file", "status", "events", "plops_per_min"]]                      # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from helpers.audio import label_jobs, naming, output_folder
    from helpers.labels import write_labels

    _options(options)
    out = output_folder(out_dir)
    rows: list[dict] = []
    bar = tqdm(label_jobs(paths, out, overwrite=overwrite), desc="autolabel", unit="file", disable=not progress, leave=True)
    for f, target, error in bar:
        bar.set_postfix_str(f.name[-40:], refresh=False)
        if target is None:
            rows.append(_row(f, "error", 0, 0.0, error, 0.0, ""))
            continue
        try:
            res = autolabel_file(f, **options)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - report and go on with the next file
            rows.append(_row(f, "error", 0, 0.0, naming(f, exc), 0.0, ""))
            continue
        try:
            write_labels(res.events[["start", "end", "label"]], target)
        except OSError as exc:
            rows.append(_row(f, "error", len(res.events), res.plops_per_min,
                             f"{target}: cannot write the labels ({exc})", res.duration_s, ""))
            continue
        rows.append(_row(f, res.status, len(res.events), res.plops_per_min, res.message,
                         res.duration_s, str(target)))
    bar.close()
    return pd.DataFrame(rows, columns=["file", "status", "events", "plops_per_min", "message",
                                       "duration_s", "labels"])


def _row(f: Path, status: str, events: int, rate: float, message: str, dur: float,
         labels: str) -> dict:
    return {"file": str(f), "status": status, "events": int(events),
            "plops_per_min": round(float(rate), 2), "message": message,
            "duration_s": round(float(dur), 3), "labels": labels}


# ---------------------------------------------------------------------------------------
# Scoring and figures (used by notebook 03)
# ---------------------------------------------------------------------------------------
def onset_errors(reference: pd.DataFrame, estimate: pd.DataFrame, *, collar: float = 0.1
                 ) -> np.ndarray:
    """Signed onset errors (estimate − reference, s) of the events matched within ``collar``,
    one-to-one in time order (the matching of :func:`helpers.evaluate.match_onsets`).

    Examples
    --------
    >>> onset_errors(pd.DataFrame({"start": [1.0, 2.0]}), pd.DataFrame({"start": [1.02, 2.5]}))
    array([0.02])
    """
    from helpers.evaluate import onset_differences

    diffs = onset_differences(reference["start"], estimate["start"], collar=collar)
    return np.round(diffs, 6)


def label_quality(manifest: pd.DataFrame, *, progress: bool = False, **options: Any
                  ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Run the labeler on every recording of a manifest and score its proposals against the
    true labels (onsets, 100 ms collar).

    Returns one row per recording (``recording``, ``split``, ``snr_db``, ``backgrounds``,
    ``status``, ``tp``, ``fp``, ``fn``) and the signed onset errors (s) of each recording's
    matched proposals, by recording name. ``options`` go to :func:`autolabel`.

    Examples
    --------
    >>> scores, errors = label_quality(datasets.synthetic())   # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from helpers import datasets
    from helpers.evaluate import onset_scores

    rows, errors = [], {}
    for _, r in tqdm(manifest.iterrows(), total=len(manifest), desc="labeling", disable=not progress):
        audio, ref = datasets.load_recording(r)
        res = autolabel(audio, **options)
        s = onset_scores(ref, res.events)
        errors[r["recording"]] = onset_errors(ref, res.events)
        rows.append({"recording": r["recording"], "split": r["split"], "snr_db": r["snr_db"],
                     "backgrounds": r["backgrounds"], "status": res.status,
                     **{k: s[k] for k in ("tp", "fp", "fn")}})
    columns = ["recording", "split", "snr_db", "backgrounds", "status", "tp", "fp", "fn"]
    return pd.DataFrame(rows, columns=columns), errors


def quality_table(scores: pd.DataFrame, errors: dict[str, np.ndarray], *,
                  counter: pd.DataFrame | None = None, snr_split_db: float = 10.0) -> pd.DataFrame:
    """The labeler's proposals scored per part of the set (``test`` and ``train + val``) and
    SNR group (at least ``snr_split_db`` or below): recordings, plops, pooled F1, precision and
    recall, the median and 90th percentile of the absolute onset error (ms) and, with
    ``counter`` (per-recording ``tp``, ``fp``, ``fn`` of another system, e.g. the energy
    counter), that system's F1 on the same recordings. Recordings without an SNR (own
    recordings) form the group ``SNR unknown``.

    Examples
    --------
    >>> s = pd.DataFrame({"recording": ["a", "b"], "split": ["test", "train"], "snr_db": [20.0, 3.0],
    ...                   "tp": [9, 4], "fp": [1, 0], "fn": [1, 4]})
    >>> t = quality_table(s, {"a": np.full(9, 0.004), "b": np.full(4, -0.002)})
    >>> t[["F1", "onset error median (ms)"]].round(3).values.tolist()
    [[0.9, 4.0], [0.667, 2.0]]
    """
    from helpers.evaluate import prf

    t = scores.copy()
    t["part"] = np.where(t["split"] == "test", "test", "train + val")
    snr = pd.to_numeric(t["snr_db"], errors="coerce")  # own recordings have no SNR
    t["snr group"] = np.select([snr >= snr_split_db, snr < snr_split_db],
                               [f"SNR ≥ {snr_split_db:g} dB", f"SNR < {snr_split_db:g} dB"], "SNR unknown")
    if counter is not None:
        t = t.merge(counter[["recording", "tp", "fp", "fn"]], on="recording", how="left",
                    suffixes=("", "_counter"))

    def pooled(d: pd.DataFrame, suffix: str = "") -> dict:
        return prf(*(int(d[k + suffix].sum()) for k in ("tp", "fp", "fn")))

    rows = []
    for (part, group), d in t.groupby(["part", "snr group"], sort=True):
        a = pooled(d)
        err = np.abs(np.concatenate([errors.get(r, np.zeros(0)) for r in d["recording"]])) * 1000
        row = {"part": part, "snr group": group, "recordings": len(d),
               "plops": int(d["tp"].sum() + d["fn"].sum()), "F1": a["f1"],
               "precision": a["precision"], "recall": a["recall"],
               "onset error median (ms)": float(np.median(err)) if len(err) else np.nan,
               "onset error 90 % (ms)": float(np.percentile(err, 90)) if len(err) else np.nan}
        if counter is not None:
            row["counter F1"] = pooled(d, "_counter")["f1"]
        rows.append(row)
    columns = ["part", "snr group", "recordings", "plops", "F1", "precision", "recall",
               "onset error median (ms)", "onset error 90 % (ms)"] + (["counter F1"] if counter is not None else [])
    return pd.DataFrame(rows, columns=columns).set_index(["part", "snr group"])


def plot_quality(scores: pd.DataFrame, counter: pd.DataFrame, *, names: tuple[str, str] = (
        "HMM labeler", "energy counter"), axes=None):
    """Event F1 of the labeler beside another system (``counter``: per-recording ``tp``,
    ``fp``, ``fn``) on the test split by SNR band, and on all recordings by SNR band and by
    background family, with the number of plops at the foot of each pair of bars."""
    import matplotlib.pyplot as plt

    from helpers.evaluate import scores_by

    both = scores.merge(counter[["recording", "tp", "fp", "fn"]], on="recording", suffixes=("", "_counter"))
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(14, 3.4), layout="constrained", width_ratios=[1, 1, 2])
    panels = [("test split, by SNR", both[both["split"] == "test"], "snr band"),
              ("all recordings, by SNR", both, "snr band"),
              ("all recordings, by background", both, "backgrounds")]
    for ax, (title, d, by) in zip(axes, panels):
        ours = scores_by(d, by).set_index(by)
        if len(ours) == 0:  # e.g. no test recording, or none with a measured SNR
            ax.set_title(title)
            ax.text(0.5, 0.5, "no recordings", ha="center", va="center", transform=ax.transAxes)
            continue
        other = scores_by(d[["snr_db", "backgrounds"]].assign(
            tp=d["tp_counter"], fp=d["fp_counter"], fn=d["fn_counter"]), by).set_index(by)
        t = pd.DataFrame({names[0]: ours["f1"], names[1]: other["f1"], "plops": ours["plops"]})
        t[list(names)].plot.bar(ax=ax, rot=45, ylim=(0, 1), legend=ax is axes[0],
                                color=["tab:purple", "tab:gray"])
        ax.set(title=title, xlabel="", ylabel="event F1")
        for i, n in enumerate(t["plops"]):
            ax.text(i, 0.02, f"{n}", ha="center", fontsize=7, color="white")
    return axes


def plot_model(model: Any = None, *, n_background: int = 2, axes=None, title: str | None = None):
    """The model in a picture: the states and their transition probabilities (left) and what
    each state emits, its mean feature vector (right). Without ``model``, the transitions the
    fit starts from (:func:`topology`) and no emissions."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.2), layout="constrained",
                               width_ratios=[1.1, 1])
    ax, ax2 = axes
    A = model.transmat_ if model is not None else topology(n_background)[1]
    k = A.shape[0]
    nb = k - 2
    short = [f"background {b + 1}" if nb > 1 else "background" for b in range(nb)] + ["onset", "ring"]
    names = [n.replace(" ", "\n") for n in short[:nb]] + ["onset\n(the plop state)", "ring"]
    colors = ["0.75"] * nb + ["tab:orange", "tab:red"]
    xy = {s: (0.0, 0.5 + 0.9 * (s - (nb - 1) / 2)) for s in range(nb)}
    xy[nb], xy[nb + 1] = (1.0, 0.5), (2.0, 0.5)
    for s in range(k):
        ax.scatter(*xy[s], s=2600, color=colors[s], zorder=2, edgecolor="k")
        ax.text(xy[s][0], xy[s][1], names[s], ha="center", va="center", fontsize=8, zorder=3)
        # "stays" beside a background state, above the others: clear of the arrows
        x, y = xy[s]
        ax.text(*((x - 0.33, y) if s < nb else (x, y + 0.26)), f"stays: {A[s, s]:.2f}",
                ha="right" if s < nb else "center", va="center", fontsize=8)
    for a in range(k):
        for b in range(k):
            if a == b or A[a, b] <= 0:
                continue
            rad = -0.45 if a == nb + 1 and b < nb else -0.3    # ring → background: wide
            (x1, y1), (x2, y2) = xy[a], xy[b]
            ax.add_patch(FancyArrowPatch(xy[a], xy[b], connectionstyle=f"arc3,rad={rad}",
                                         arrowstyle="-|>", mutation_scale=12, shrinkA=22,
                                         shrinkB=22, color="k", lw=0.8))
            mx = (x1 + x2) / 2 + 0.5 * rad * (y2 - y1)      # the middle of the arc
            my = (y1 + y2) / 2 - 0.5 * rad * (x2 - x1)
            ax.text(mx, my, f"{A[a, b]:.2f}", ha="center", va="center", fontsize=8,
                    color="tab:blue", bbox={"fc": "white", "ec": "none", "pad": 0.5})
    ys = [y for _, y in xy.values()]
    ax.set(xlim=(-0.95, 2.45), ylim=(min(ys) - 0.55, max(ys) + 0.4))
    ax.axis("off")
    ax.set_title(title or ("transitions (per 10 ms frame)" if model is not None
                           else "transitions the fit starts from"), fontsize=10)
    if model is None:
        ax2.axis("off")
        ax2.text(0.0, 0.5, "emissions: one Gaussian per state over the frame's features\n"
                 "(13 MFCCs and their change over 20 ms), learned by the fit",
                 fontsize=9, va="center")
        return axes
    means = model.means_ if model.means_.ndim == 2 else model.means_.mean(axis=1)
    d = means.shape[1]
    lim = float(np.abs(means).max()) or 1.0
    im = ax2.imshow(means, aspect="auto", cmap="coolwarm", vmin=-lim, vmax=lim)
    ax2.set_yticks(range(k), short, fontsize=8)
    half = d // 2
    if half == 13:   # MFCCs
        ax2.set_xticks([0, 6, half, half + 6], ["c0 (level)", "c6", "Δc0", "Δc6"], fontsize=8)
    else:            # band levels
        ax2.set_xticks([0, half], ["levels (low → high band)", "changes"], fontsize=8)
    ax2.axvline(half - 0.5, color="k", lw=0.8)
    ax2.set_title("emissions: mean of each state's Gaussian (standardized)", fontsize=10)
    plt.colorbar(im, ax=ax2, shrink=0.8)
    return axes


def plot_decoding(frames: Frames, states: np.ndarray, *, events: pd.DataFrame | None = None,
                  truth: pd.DataFrame | None = None, start: float = 0.0,
                  end: float | None = None, roles: dict | None = None, title: str | None = None):
    """The spectrogram (24 mel bands, dB above each band's median) with the decoded state of
    every frame below it, the proposed events (cyan, with their confidence) and the true
    labels (orange) on top."""
    import matplotlib.pyplot as plt

    end = end if end is not None else frames.n_frames * HOP_S
    a, b = int(start / HOP_S), min(int(end / HOP_S), frames.n_frames)
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 4.2), sharex=True, layout="constrained",
                                  height_ratios=[3, 1], dpi=72)
    x = band_excess_db(frames)[a:b].T
    ax.imshow(x, origin="lower", aspect="auto", cmap="magma", vmin=0,
              vmax=max(float(np.percentile(x, 99.5)), 10.0), interpolation="nearest",
              extent=[a * HOP_S, b * HOP_S, 0, x.shape[0]])
    ax.set_ylabel("mel band")
    top = x.shape[0]
    if truth is not None:
        for s, e in zip(truth["start"], truth["end"]):
            if start <= s < end:
                ax.plot([s, max(e, s + 0.02)], [top * 0.97] * 2, color="tab:orange", lw=5,
                        solid_capstyle="butt")
    if events is not None:
        conf = events["confidence"] if "confidence" in events else [np.nan] * len(events)
        for s, e, c in zip(events["start"], events["end"], conf):
            if start <= s < end:
                ax.plot([s, max(e, s + 0.02)], [top * 0.9] * 2, color="cyan", lw=5,
                        solid_capstyle="butt")
                if np.isfinite(c):
                    ax.text(s, top * 0.82, f"{c:.2f}", color="cyan", fontsize=7)
    ax.plot([], [], color="tab:orange", lw=5, label="true label")
    ax.plot([], [], color="cyan", lw=5, label="proposed (confidence)")
    ax.legend(loc="lower right", fontsize=8)
    if title:
        ax.set_title(title)
    k = int(states.max()) + 1 if len(states) else 3
    nb = k - 2
    names = ["background"] * nb + ["onset", "ring"]
    ax2.step(np.arange(a, b) * HOP_S, states[a:b], where="post", color="k", lw=0.8)
    ax2.set_yticks(range(k), names[:k], fontsize=8)
    ax2.set(xlabel="time (s)", xlim=(a * HOP_S, b * HOP_S))
    return fig
