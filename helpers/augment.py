"""Training-time augmentation: the same plops in conditions the recordings did not have.

Four kinds, applied to a recording and its events together:

- :func:`mix_background`: add a background at a chosen signal-to-noise ratio — one of the
  procedural families of :mod:`helpers.synth` or the recorded speech and music of
  :mod:`helpers.backgrounds` (:func:`background_families`) — the most useful one, and the
  one notebook 09 uses to estimate performance in conditions nobody recorded.
- :func:`mix_confusers`: add transients that are *not* plops (knocks, taps, clicks, doors,
  glass, typing, clunks) — hard negatives, so that a sharp sound alone is not taken for a plop.
- :func:`speed`: play faster or slower (resampling), which moves every pitch and stretches
  time; the events are stretched with it.
- :func:`channel`: the recording chain — gain, a random equalizer, high- and low-pass
  filters, soft clipping and coloured noise, from the maintained ``audiomentations`` library.

:func:`augment` draws one of each at random. Everything takes an explicit
:class:`numpy.random.Generator`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.config import SR


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)) + 1e-20)


def _event_slices(events: pd.DataFrame, *, sr: int = SR) -> list[slice]:
    """The samples of each event; every event covers at least one sample."""
    return [slice(int(s * sr), max(int(e * sr), int(s * sr) + 1)) for s, e in zip(events["start"], events["end"])]


def _check_known(names, known: dict, what: str) -> None:
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; known: {sorted(known)}")


def event_mask(events: pd.DataFrame, n: int, *, sr: int = SR) -> np.ndarray:
    """The samples (of ``n``) inside the events: where the plop power of an SNR is measured.
    Every event covers at least one sample.

    Examples
    --------
    >>> event_mask(pd.DataFrame({"start": [0.25], "end": [0.5]}), 8, sr=8).nonzero()[0].tolist()
    [2, 3]
    """
    mask = np.zeros(n, dtype=bool)
    for sl in _event_slices(events, sr=sr):
        mask[sl] = True
    return mask


def background_families() -> dict:
    """Every background family :func:`mix_background` knows: name → generator ``(rng,
    n_samples, sr) → unit-RMS signal``; the procedural :data:`helpers.synth.BACKGROUNDS`,
    then the recorded ``speech`` and ``instruments`` (:data:`helpers.backgrounds.GENERATORS`).

    Examples
    --------
    >>> list(background_families())[-2:]
    ['speech', 'instruments']
    """
    from helpers.backgrounds import GENERATORS
    from helpers.synth import BACKGROUNDS

    return {**BACKGROUNDS, **GENERATORS}


def mix_background(y: np.ndarray, events: pd.DataFrame, *, rng: np.random.Generator,
                   snr_db: float, families: list[str] | None = None, pool: list[str] | None = None,
                   sr: int = SR) -> np.ndarray:
    """Add a background to ``y`` so that the plops are ``snr_db`` above it.

    ``families`` mixes exactly those families; otherwise one or two are drawn from ``pool``
    (default: every family of :func:`background_families`, procedural and recorded). The
    plop power is measured over the labeled events of ``y`` (the whole signal when there are
    none), the same definition as the synthetic set's SNR (:func:`add_at_snr`).

    Examples
    --------
    >>> y = np.zeros(16000, dtype="float32"); y[1000:1800] = 0.5
    >>> ev = pd.DataFrame({"start": [0.0625], "end": [0.1125], "label": ["p"]})
    >>> z = mix_background(y, ev, rng=np.random.default_rng(0), snr_db=10, families=["pink"])
    >>> round(10 * np.log10(0.25 / np.mean((z - y) ** 2)))
    10
    """
    known = background_families()
    names = list(families) if families else sorted(pool or known)
    _check_known(names, known, "background families")
    k = int(rng.integers(1, 3)) if not families else len(names)
    chosen = rng.choice(names, size=min(k, len(names)), replace=False)
    bg = np.zeros(len(y))
    for i, name in enumerate(chosen):
        bg += (1.0 if i == 0 else 10 ** (rng.uniform(-12, 0) / 20)) * known[str(name)](rng, len(y), sr)
    return add_at_snr(y, events, bg, snr_db=snr_db, sr=sr)


def add_at_snr(y: np.ndarray, events: pd.DataFrame, background: np.ndarray, *, snr_db: float,
               sr: int = SR) -> np.ndarray:
    """``y`` plus ``background`` (as long as ``y``) scaled so that the plops are ``snr_db`` above
    it; the plop power is measured over the labeled events of ``y`` (the whole signal when
    there are none)."""
    mask = event_mask(events, len(y), sr=sr)
    p_sig = _power(y[mask]) if mask.any() else _power(y)
    bg = np.asarray(background, dtype=np.float64) * np.sqrt(p_sig / (_power(background) * 10 ** (snr_db / 10)))
    return (y + bg).astype(np.float32)


def mix_confusers(y: np.ndarray, events: pd.DataFrame, *, rng: np.random.Generator,
                  rate_per_min: float, level_db: tuple[float, float] = (-10.0, 6.0),
                  kinds: list[str] | None = None, sr: int = SR, placed: bool = False
                  ) -> np.ndarray | tuple[np.ndarray, pd.DataFrame]:
    """Add non-plop transients (:data:`helpers.synth.CONFUSERS`) at random times, about
    ``rate_per_min`` of them per minute, each with its peak ``level_db`` (drawn from the range)
    relative to the median plop peak of ``y``. The events are unchanged: these are negatives.
    With ``placed``, also return where they went (``start``, ``end`` in seconds and ``kind``;
    the same draws, so the same audio).

    Examples
    --------
    >>> y = np.zeros(32000, dtype="float32"); y[1000:1800] = 0.5
    >>> ev = pd.DataFrame({"start": [0.0625], "end": [0.1125], "label": ["p"]})
    >>> z = mix_confusers(y, ev, rng=np.random.default_rng(1), rate_per_min=120, kinds=["knock"])
    >>> z.shape == y.shape, bool(np.abs(z - y).max() > 0.05)
    (True, True)
    """
    from helpers.synth import CONFUSERS

    names = sorted(kinds or CONFUSERS)
    _check_known(names, CONFUSERS, "confusers")
    n = len(y)
    peaks = [np.max(np.abs(y[sl]), initial=0.0) for sl in _event_slices(events, sr=sr)]
    ref = float(np.median(peaks)) if peaks else 3 * np.sqrt(_power(y))
    z = np.asarray(y, dtype=np.float64).copy()
    spots = []
    for _ in range(int(rng.poisson(rate_per_min * n / sr / 60))):
        kind = str(rng.choice(names))
        x = CONFUSERS[kind](rng, sr)
        x = x / (np.max(np.abs(x)) + 1e-12) * ref * 10 ** (rng.uniform(*level_db) / 20)
        at = int(rng.integers(0, n))
        m = min(len(x), n - at)
        z[at:at + m] += x[:m]
        spots.append((at / sr, (at + m) / sr, kind))
    if placed:
        return z.astype(np.float32), pd.DataFrame(spots, columns=["start", "end", "kind"])
    return z.astype(np.float32)


def speed(y: np.ndarray, events: pd.DataFrame, *, factor: float, sr: int = SR
          ) -> tuple[np.ndarray, pd.DataFrame]:
    """Play ``factor`` times faster (pitch up, shorter) and scale the events to match.

    Examples
    --------
    >>> ev = pd.DataFrame({"start": [1.0], "end": [1.1], "label": ["p"]})
    >>> z, ev2 = speed(np.zeros(32000, dtype="float32"), ev, factor=1.25)
    >>> len(z), ev2["start"].item()
    (25600, 0.8)
    """
    from helpers.audio import resample

    if not 0.5 <= factor <= 2.0:
        raise ValueError(f"speed factor {factor} is outside 0.5–2")
    z = resample(y, sr * factor, sr)
    ev = events.copy()
    ev[["start", "end"]] = ev[["start", "end"]] / factor
    return z, ev


def channel(y: np.ndarray, *, rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    """A random recording chain from ``audiomentations``: gain, equalizer, filters, soft
    clipping and coloured noise (each applied with some probability)."""
    import audiomentations as am

    seed = int(rng.integers(2 ** 31))
    import random

    state = random.getstate()
    np_state = np.random.get_state()
    random.seed(seed)          # audiomentations draws from the global generators;
    np.random.seed(seed)       # seed them from ours and restore them afterwards
    try:
        chain = am.Compose([
            am.Gain(min_gain_db=-12, max_gain_db=12, p=0.8),
            am.SevenBandParametricEQ(min_gain_db=-9, max_gain_db=9, p=0.6),
            am.HighPassFilter(min_cutoff_freq=50, max_cutoff_freq=400, p=0.3),
            am.LowPassFilter(min_cutoff_freq=3000, max_cutoff_freq=7500, p=0.3),
            am.TanhDistortion(min_distortion=0.01, max_distortion=0.3, p=0.1),
            am.AddColorNoise(min_snr_db=10, max_snr_db=40, p=0.3),
        ])
        out = chain(samples=np.asarray(y, dtype=np.float32), sample_rate=sr)
    finally:
        random.setstate(state)
        np.random.set_state(np_state)
    return np.clip(out, -1, 1).astype(np.float32)


def augment(y: np.ndarray, events: pd.DataFrame, *, rng: np.random.Generator, sr: int = SR,
            snr_db: tuple[float, float] = (-5.0, 25.0), speed_range: tuple[float, float] = (0.85, 1.18),
            p_background: float = 0.7, backgrounds: list[str] | None = None,
            p_confusers: float = 0.5, confuser_rate: tuple[float, float] = (2.0, 20.0),
            confuser_label: str | None = None,
            ) -> tuple[np.ndarray, pd.DataFrame]:
    """One random augmentation of a recording: speed, then (with ``p_confusers``) non-plop
    transients at a rate per minute drawn from ``confuser_rate``, then (with ``p_background``)
    a background from ``backgrounds`` (default: every family of :func:`background_families`,
    procedural and recorded) at an SNR drawn from ``snr_db``,
    then the channel. With ``confuser_label``, the transients come back among the events with
    that label (for a training that treats them apart); the audio is the same.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.zeros(32000, dtype="float32"); ev = pd.DataFrame(columns=["start", "end", "label"])
    >>> z, ev2 = augment(y, ev, rng=rng)
    >>> z.dtype, abs(len(z) - 32000) < 6000
    (dtype('float32'), True)
    """
    z, ev = speed(y, events, factor=float(np.exp(rng.uniform(*np.log(speed_range)))), sr=sr)
    spots = None
    if rng.random() < p_confusers:
        z, spots = mix_confusers(z, ev, rng=rng, rate_per_min=float(rng.uniform(*confuser_rate)), sr=sr,
                                 placed=True)
    if rng.random() < p_background:
        z = mix_background(z, ev, rng=rng, snr_db=float(rng.uniform(*snr_db)), pool=backgrounds, sr=sr)
    z = channel(z, rng=rng, sr=sr)
    if confuser_label is not None and spots is not None and len(spots):
        ev = pd.concat([ev, spots[["start", "end"]].assign(label=confuser_label)], ignore_index=True)
    return z, ev
