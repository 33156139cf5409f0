"""The embedded default data set: physically motivated airlock recordings.

Each recording is built the way a real one comes about:

1. **Plops** (:func:`plop`). A plop is the gas slug breaking through the water (a short
   broadband burst), one to four bubbles ringing at their Minnaert frequency
   ``f0 ≈ 3.26 m·Hz / radius`` with the pitch rising as they rise (van den Doel 2005:
   ``f(t) = f0 (1 + ξ d t)`` with decay ``d = 0.043 f0 + 0.0014 f0^1.5`` per second), the water
   sloshing back (a low "glug"), and, in three-piece airlocks, the cap knocking. Every
   recording has its own *character* (airlock type, bubble radius range, fill level, distance,
   damping of the tube) and every plop varies around it. The four types of :data:`AIRLOCKS`
   make every catalogued set; a fifth, the :data:`BUBBLER` (big bubbles down to 160 Hz), is
   drawn only when asked for: the detector's extra training set does.
2. **Timing** (:func:`plop_times`). A rate between 2 and 240 plops per minute that drifts as
   fermentation does, with gamma-distributed jitter and occasional burps (several plops in
   quick succession).
3. **Backgrounds** (:data:`BACKGROUNDS`): eleven procedural families (pink, brown and white
   noise, mains hum, fan, compressor cycling, speech-like babble, music, rain, a ticking clock,
   traffic), layered, and **confusers** (:data:`CONFUSERS`): transients that are not plops
   (knocks, taps, clicks, doors, clinking glass, typing).
4. **The recording chain** (:func:`render_recording`): room reverberation, distance, a
   microphone and device frequency response, level, occasional clipping, sample rates from 8 to
   48 kHz and some stereo.

The signal-to-noise ratio of a recording is the mean power of the plops (after the chain, over
the labeled events) over the mean power of the continuous background; it is drawn from −5 to
+30 dB. A plop that the background would mask in every frequency band is raised until it is at
least :data:`AUDIBLE_DB` above the background in its best band (``min_audibility_db`` in the
manifest), so every labeled plop can be heard.

Everything is deterministic: the same seed gives byte-identical files, whatever the number of
worker processes.

Examples
--------
>>> from helpers.synth import synthesize_recording
>>> rec = synthesize_recording(seed=1, duration_s=5.0)
>>> rec.audio.dtype, rec.sr >= 8000, len(rec.events) >= 0
(dtype('float32'), True, True)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage, signal

from helpers.config import PLOP_LABEL

#: Minnaert's constant for air bubbles in water: f0 · radius ≈ 3.26 m·Hz.
MINNAERT_HZ_M = 3.26
#: The largest bubble radius of the four airlock types of :data:`AIRLOCKS` (mm; blow-off
#: tubes): their bubbles ring from MINNAERT_HZ_M / 8 mm ≈ 410 Hz up, while a real airlock's
#: big bubbles can ring lower. Only the :data:`BUBBLER` draws bigger ones.
LARGEST_RADIUS_MM = 8.0
#: The largest bubble radius of the :data:`BUBBLER` (mm): down to MINNAERT_HZ_M / 20 mm ≈ 160 Hz.
BUBBLER_RADIUS_MM = 20.0
#: Every plop is at least this many dB above the background in its best band.
AUDIBLE_DB = 6.0
#: Output sample rates (Hz); users' recordings come at all of these.
SAMPLE_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)
SAMPLE_RATE_WEIGHTS = (0.06, 0.04, 0.16, 0.10, 0.04, 0.10, 0.30, 0.20)
#: The airlock types of the catalogued data sets (the main set, the validation and test sets)
#: and the default of every draw.
AIRLOCKS = ("s_type", "three_piece", "blowoff", "drip")
#: A fifth type, only drawn when asked for: a blow-off tube into a bucket, or a bubbler in a
#: carboy, whose big bubbles (radius 6–20 mm) ring at 160–540 Hz, as low as real big bubbles
#: do and lower than the other four. The detector's extra training set draws it
#: (:attr:`helpers.config.Profile.train_extra_airlocks`); the catalogued sets keep the four
#: types their figures were measured on.
BUBBLER = "bubbler"
AIRLOCK_TYPES = AIRLOCKS + (BUBBLER,)
AIRLOCK_WEIGHTS = {"s_type": 0.35, "three_piece": 0.3, "blowoff": 0.2, "drip": 0.15, BUBBLER: 0.25}
#: Version of the generator; part of the cache key, bump it when the sound changes.
GENERATOR_VERSION = 5


# ---------------------------------------------------------------------------------------
# Small signal builders
# ---------------------------------------------------------------------------------------
def _damped_tone(
    sr: int, f0: float, decay: float, *, rise: float = 0.0, dur: float | None = None,
    attack_s: float = 0.001, phase: float = 0.0,
) -> np.ndarray:
    """A ring-down ``exp(-decay t) sin(2π ∫f)`` with ``f(t) = f0 (1 + rise · decay · t)``."""
    if dur is None:
        dur = min(6.9 / decay, 2.0)  # until −60 dB
    n = max(int(dur * sr), 2)
    t = np.arange(n) / sr
    nyq = 0.45 * sr
    f = np.minimum(f0 * (1.0 + rise * decay * t), nyq)
    ph = phase + 2 * np.pi * np.cumsum(f) / sr
    env = np.exp(-decay * t)
    na = max(int(attack_s * sr), 1)
    env[:na] *= np.linspace(0.0, 1.0, na, endpoint=False)
    out = env * np.sin(ph)
    # fade out where the frequency would alias
    if f0 * (1.0 + rise * decay * t[-1]) > nyq:
        out[f >= nyq] = 0.0
    return out


def _resonant_burst(rng: np.random.Generator, sr: int, fc: float, q: float, dur: float,
                    decay: float) -> np.ndarray:
    """A noise burst through a resonator: slugs breaking, knocks, taps and clicks."""
    n = max(int(dur * sr), 4)
    t = np.arange(n) / sr
    x = rng.standard_normal(n) * np.exp(-decay * t)
    fc = min(fc, 0.45 * sr)
    bw = fc / q
    b, a = _resonator(sr, fc, bw)
    return signal.lfilter(b, a, x)


def _resonator(sr: int, fc: float, bw: float) -> tuple[np.ndarray, np.ndarray]:
    r = math.exp(-math.pi * bw / sr)
    theta = 2 * math.pi * fc / sr
    a = np.array([1.0, -2 * r * math.cos(theta), r * r])
    b = np.array([(1 - r * r) / 2, 0.0, -(1 - r * r) / 2])
    return b, a


def _add(track: np.ndarray, x: np.ndarray, start: int) -> None:
    """Add ``x`` into ``track`` at sample ``start`` (clipped to the track)."""
    if start >= len(track) or start + len(x) <= 0:
        return
    lo = max(start, 0)
    hi = min(start + len(x), len(track))
    track[lo:hi] += x[lo - start : hi - start]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x), dtype=np.float64)) + 1e-12)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / _rms(x)


def _colored_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power spectrum ∝ 1/f^exponent (0 white, 1 pink, 2 brown)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    spec *= f ** (-exponent / 2)
    return _unit(np.fft.irfft(spec, n))


def _sos_filter(x: np.ndarray, sos: np.ndarray) -> np.ndarray:
    return signal.sosfilt(sos, x)


# ---------------------------------------------------------------------------------------
# Plops
# ---------------------------------------------------------------------------------------
@dataclass
class Character:
    """What one airlock in one room sounds like: fixed for a recording."""

    airlock: str
    radius_mm: tuple[float, float]
    fill: float                  # 0 (nearly empty) … 1 (full): lower, stronger glug when full
    distance_m: float
    damping: float               # multiplies the bubble decay (tube resonance rings longer)
    rise: float                  # ξ in f(t) = f0 (1 + ξ d t)
    n_bubbles: tuple[int, int]
    slug_level: float
    slosh_prob: float
    knock_prob: float
    level_sd_db: float           # plop-to-plop loudness variation

    @classmethod
    def draw(cls, rng: np.random.Generator, sr: int, *, airlocks: tuple[str, ...] = AIRLOCKS
             ) -> "Character":
        weights = np.array([AIRLOCK_WEIGHTS[a] for a in airlocks])
        airlock = str(rng.choice(list(airlocks), p=weights / weights.sum()))
        if airlock == "blowoff":
            r_lo, r_hi = rng.uniform(2.5, 4.5), rng.uniform(4.5, LARGEST_RADIUS_MM)
            nb = (2, 4)
        elif airlock == BUBBLER:
            r_lo, r_hi = rng.uniform(6.0, 10.0), rng.uniform(10.0, BUBBLER_RADIUS_MM)
            nb = (1, 3)
        elif airlock == "drip":
            r_lo, r_hi = rng.uniform(0.6, 1.5), rng.uniform(1.5, 3.5)
            nb = (1, 1)
        else:
            r_lo, r_hi = rng.uniform(0.8, 2.5), rng.uniform(2.5, 5.0)
            nb = (1, 4) if airlock == "s_type" else (1, 3)
        # no bubble above 40 % of the sample rate
        r_min = MINNAERT_HZ_M / (0.4 * sr) * 1000
        r_lo = max(r_lo, r_min)
        r_hi = max(r_hi, r_lo * 1.2)
        return cls(
            airlock=airlock,
            radius_mm=(float(r_lo), float(r_hi)),
            fill=float(rng.uniform(0.2, 1.0)),
            distance_m=float(np.exp(rng.uniform(np.log(0.05), np.log(2.0)))),
            damping=float(rng.uniform(0.25, 1.1)),
            rise=float(rng.uniform(0.04, 0.2)),
            n_bubbles=nb,
            slug_level=float(rng.uniform(0.05, 0.6)),
            slosh_prob=float(rng.uniform(0.2, 0.95)) if airlock != "drip" else 0.1,
            knock_prob=float(rng.uniform(0.4, 0.9)) if airlock == "three_piece" else 0.0,
            level_sd_db=float(rng.uniform(1.0, 4.0)),
        )


def plop(rng: np.random.Generator, sr: int, char: Character, *, max_dur: float = 0.3
         ) -> tuple[np.ndarray, float]:
    """Synthesize one plop.

    Returns the waveform (starting at the onset, at most ``max_dur`` long) and the duration
    of the event to label: where 97 % of its energy has passed, between 50 ms and
    ``max_dur``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x, d = plop(rng, 16000, Character.draw(rng, 16000))
    >>> 0.05 <= d <= 0.3
    True
    """
    n = int(max_dur * sr)
    x = np.zeros(n)
    # 1. the gas slug breaking through the surface: a short band-limited burst
    slug = _resonant_burst(rng, sr, fc=rng.uniform(600, 4000), q=rng.uniform(0.7, 3),
                           dur=rng.uniform(0.003, 0.012), decay=rng.uniform(300, 900))
    _add(x, _unit(slug) * char.slug_level * rng.uniform(0.5, 1.5), 0)
    # 2. one to four bubbles ringing at their Minnaert frequency, pitch rising
    nb = int(rng.integers(char.n_bubbles[0], char.n_bubbles[1] + 1))
    t0 = rng.uniform(0.0, 0.004)
    lo, hi = np.log(char.radius_mm[0]), np.log(char.radius_mm[1])
    for i in range(nb):
        radius_m = float(np.exp(rng.uniform(lo, hi))) / 1000
        f0 = MINNAERT_HZ_M / radius_m
        d = (0.043 * f0 + 0.0014 * f0 ** 1.5) * char.damping * rng.uniform(0.8, 1.25)
        amp = rng.uniform(0.5, 1.0) * (1.0 if i == 0 else rng.uniform(0.3, 0.9))
        # larger bubbles radiate more: amplitude ∝ radius^0.5 (rough, keeps big ones audible)
        amp *= (radius_m * 1000 / 2.0) ** 0.5
        tone = _damped_tone(sr, f0, d, rise=char.rise * rng.uniform(0.6, 1.4),
                            attack_s=rng.uniform(0.0005, 0.003), phase=rng.uniform(0, 2 * np.pi))
        _add(x, amp * tone, int(t0 * sr))
        t0 += rng.uniform(0.006, 0.045)
    # 3. the water sloshing back: a low glug, lower when the airlock is full
    if rng.random() < char.slosh_prob:
        f_glug = rng.uniform(110, 250) * (1.6 - 0.8 * char.fill)
        d = rng.uniform(25, 70)
        glug = _damped_tone(sr, f_glug, d, rise=rng.uniform(-0.05, 0.1), attack_s=0.008)
        noise = _resonant_burst(rng, sr, fc=f_glug * 2, q=2, dur=0.08, decay=d)
        glug[: len(noise)] += 0.3 * _unit(noise)[: len(glug)] * _rms(glug)
        _add(x, rng.uniform(0.15, 0.6) * glug, int(rng.uniform(0.02, 0.08) * sr))
    # 4. three-piece airlocks: the cap knocking
    if rng.random() < char.knock_prob:
        knock = _resonant_burst(rng, sr, fc=rng.uniform(900, 3500), q=rng.uniform(4, 12),
                                dur=0.03, decay=rng.uniform(150, 400))
        _add(x, _unit(knock) * rng.uniform(0.05, 0.3), int(rng.uniform(0.01, 0.06) * sr))
    # fade the end so the plop never runs into the next one
    nf = min(int(0.006 * sr), n // 4)
    x[n - nf:] *= np.linspace(1, 0, nf)
    e = np.cumsum(x * x)
    end = int(np.searchsorted(e, 0.97 * e[-1])) / sr
    return x, float(np.clip(end, 0.05, max_dur))


def plop_times(rng: np.random.Generator, duration_s: float, *, rate_start: float,
               rate_end: float, jitter_shape: float = 12.0, burst_prob: float = 0.05,
               min_interval_s: float = 0.12) -> np.ndarray:
    """Onset times of the plops of one recording.

    The rate (plops per minute) moves log-linearly from ``rate_start`` to ``rate_end`` with a
    slow wobble; intervals are gamma distributed (shape ``jitter_shape``: larger is more
    regular); with probability ``burst_prob`` a plop starts a burp of 2–4 more plops 0.12–0.3 s
    apart.

    Examples
    --------
    >>> t = plop_times(np.random.default_rng(0), 60.0, rate_start=60, rate_end=60)
    >>> 40 < len(t) < 90
    True
    """
    wobble_f = rng.uniform(0.005, 0.05)
    wobble_a = rng.uniform(0.0, 0.25)
    wobble_p = rng.uniform(0, 2 * np.pi)

    def rate(t: float) -> float:  # plops per second
        frac = t / max(duration_s, 1e-9)
        r = math.exp(math.log(rate_start) * (1 - frac) + math.log(rate_end) * frac)
        r *= 1 + wobble_a * math.sin(2 * math.pi * wobble_f * t + wobble_p)
        return float(np.clip(r, 2.0, 240.0)) / 60.0

    times: list[float] = []
    t = rng.uniform(0.05, 1.0 / rate(0.0))
    while t < duration_s - 0.1:
        times.append(t)
        if rng.random() < burst_prob:
            for _ in range(int(rng.integers(2, 5))):
                t += rng.uniform(0.12, 0.3)
                if t >= duration_s - 0.1:
                    break
                times.append(t)
        r = rate(t)
        t += max(rng.gamma(jitter_shape, 1.0 / (jitter_shape * r)), min_interval_s)
    return np.asarray(times, dtype=float)


# ---------------------------------------------------------------------------------------
# Backgrounds (continuous) — each returns n samples with unit RMS
# ---------------------------------------------------------------------------------------
def _bg_pink(rng, n, sr):
    return _colored_noise(rng, n, 1.0)


def _bg_brown(rng, n, sr):
    x = _colored_noise(rng, n, 2.0)
    return _unit(_sos_filter(x, signal.butter(2, 20, "highpass", fs=sr, output="sos")))


def _bg_hiss(rng, n, sr):
    """Preamp or tape hiss: white, tilted up a little."""
    x = rng.standard_normal(n)
    return _unit(x + 0.5 * np.diff(x, prepend=0.0))


def _bg_hum(rng, n, sr):
    """Mains hum at 50 or 60 Hz with a random set of harmonics."""
    f = 50.0 if rng.random() < 0.5 else 60.0
    t = np.arange(n) / sr
    drift = 1 + 0.002 * np.sin(2 * np.pi * rng.uniform(0.01, 0.1) * t)
    x = np.zeros(n)
    for k in range(1, 12):
        if k * f > 0.45 * sr:
            break
        a = rng.uniform(0.1, 1.0) / k ** rng.uniform(0.3, 1.2)
        x += a * np.sin(2 * np.pi * k * f * t * drift + rng.uniform(0, 2 * np.pi))
    return _unit(x + 0.02 * rng.standard_normal(n))


def _bg_fan(rng, n, sr):
    """A fan: low-passed noise plus blade-pass tones with a slow wobble."""
    fc = rng.uniform(300, 2500)
    x = _sos_filter(rng.standard_normal(n), signal.butter(2, min(fc, 0.45 * sr), fs=sr, output="sos"))
    t = np.arange(n) / sr
    bp = rng.uniform(25, 140)
    tones = sum(rng.uniform(0.2, 1) / k * np.sin(2 * np.pi * k * bp * t + rng.uniform(0, 6))
                for k in range(1, 5))
    mod = 1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t)
    return _unit((_unit(x) + rng.uniform(0.2, 1.0) * _unit(tones)) * mod)


def _bg_compressor(rng, n, sr):
    """A fridge or freezer compressor cycling on and off, with a clunk at each switch."""
    t = np.arange(n) / sr
    f = rng.uniform(45, 120)
    hum = sum(rng.uniform(0.2, 1) / k * np.sin(2 * np.pi * k * f * t + rng.uniform(0, 6))
              for k in range(1, 8) if k * f < 0.45 * sr)
    rumble = _sos_filter(rng.standard_normal(n),
                         signal.butter(2, [60, min(900, 0.45 * sr)], "bandpass", fs=sr, output="sos"))
    x = _unit(hum) + rng.uniform(0.3, 1.0) * _unit(rumble)
    gate = np.zeros(n)
    pos, on = 0.0, rng.random() < 0.6
    dur = n / sr
    while pos < dur:
        length = rng.uniform(8, 40) if on else rng.uniform(4, 25)
        a, b = int(pos * sr), int(min(pos + length, dur) * sr)
        if on:
            gate[a:b] = 1.0
            clunk = _resonant_burst(rng, sr, rng.uniform(80, 300), 3, 0.15, 40)
            _add(x, _unit(clunk) * 2.0, a)
        pos += length
        on = not on
    ramp = int(0.3 * sr)
    gate = ndimage.uniform_filter1d(gate, ramp)
    return _unit(x * (0.05 + gate))


def _bg_babble(rng, n, sr):
    """Speech-like babble: voiced syllables (glottal pulses through moving formants),
    fricatives and pauses, from one to four talkers."""
    out = np.zeros(n)
    for _ in range(int(rng.integers(1, 5))):
        f0_base = rng.uniform(90, 240)
        pos = rng.uniform(0, 1.0)
        talker = np.zeros(n)
        while pos < n / sr:
            if rng.random() < 0.15:  # a pause
                pos += rng.uniform(0.3, 1.5)
                continue
            dur = rng.uniform(0.08, 0.3)
            m = int(dur * sr)
            tt = np.arange(m) / sr
            f0 = f0_base * (1 + rng.uniform(-0.15, 0.15) + rng.uniform(-0.2, 0.2) * tt / dur)
            ph = np.cumsum(f0) / sr
            pulses = (np.diff(np.floor(ph), prepend=0.0) > 0).astype(float)
            src = pulses + 0.05 * rng.standard_normal(m)
            if rng.random() < 0.3:  # a fricative
                src = rng.standard_normal(m) * 0.3
            y = np.zeros(m)
            for fmin, fmax, bw in ((300, 900, 90), (900, 2500, 120), (2400, 3300, 200)):
                fc = rng.uniform(fmin, fmax)
                if fc < 0.45 * sr:
                    b, a = _resonator(sr, fc, bw)
                    y += signal.lfilter(b, a, src)
            env = np.sin(np.pi * tt / dur) ** 0.7
            _add(talker, y * env, int(pos * sr))
            pos += dur + rng.uniform(0.0, 0.08)
        out += _unit(talker) * rng.uniform(0.4, 1.0)
    return _unit(out)


def _bg_music(rng, n, sr):
    """Music-like: a melody and chords of harmonic notes in a key, plucked or sustained,
    with an optional hi-hat."""
    t_total = n / sr
    out = np.zeros(n)
    root = rng.uniform(110, 330)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    beat = 60.0 / rng.uniform(60, 160)
    plucked = rng.random() < 0.5
    pos = 0.0
    while pos < t_total:
        chord = rng.random() < 0.4
        degrees = rng.choice(scale, size=3 if chord else 1, replace=False)
        octave = 2.0 ** rng.integers(-1, 2)
        dur = beat * float(rng.choice([0.5, 1, 1, 2]))
        m = int((dur + 0.3) * sr)
        tt = np.arange(m) / sr
        note = np.zeros(m)
        for deg in degrees:
            f = root * octave * 2 ** (deg / 12)
            for k in range(1, 7):
                if k * f > 0.45 * sr:
                    break
                note += rng.uniform(0.3, 1) / k ** 1.3 * np.sin(2 * np.pi * k * f * tt)
        if plucked:
            env = np.exp(-tt * rng.uniform(3, 10))
        else:
            env = np.clip(tt / 0.03, 0, 1) * np.clip((dur + 0.3 - tt) / 0.3, 0, 1)
        _add(out, note * env, int(pos * sr))
        if rng.random() < 0.3:  # hi-hat
            hat = _resonant_burst(rng, sr, min(8000, 0.4 * sr), 1, 0.05, 80)
            _add(out, _unit(hat) * 0.3, int(pos * sr))
        pos += dur
    return _unit(out)


def _bg_rain(rng, n, sr):
    """Rain on a window or roof: dense tiny drops over a soft hiss."""
    hiss = _sos_filter(rng.standard_normal(n),
                       signal.butter(2, min(2000, 0.4 * sr), "highpass", fs=sr, output="sos"))
    x = 0.5 * _unit(hiss)
    n_drops = int(rng.uniform(20, 200) * n / sr)
    starts = rng.integers(0, n, n_drops)
    for s in starts:
        drop = _resonant_burst(rng, sr, rng.uniform(1500, 7000), rng.uniform(2, 8), 0.01, 600)
        _add(x, drop * rng.uniform(0.2, 1.5) * 20, int(s))
    return _unit(x)


def _bg_clock(rng, n, sr):
    """A ticking clock: tick-tock at 1 or 2 Hz, each a short resonant click."""
    out = np.zeros(n)
    period = 1.0 if rng.random() < 0.6 else 0.5
    f_tick = rng.uniform(1500, 5000)
    k = 0
    pos = rng.uniform(0, period)
    while pos < n / sr:
        fc = f_tick * (1.0 if k % 2 == 0 else rng.uniform(0.75, 0.85))
        click = _resonant_burst(rng, sr, fc, 10, 0.02, 500)
        _add(out, _unit(click), int(pos * sr))
        pos += period
        k += 1
    return _unit(out + 0.01 * rng.standard_normal(n))


def _bg_traffic(rng, n, sr):
    """Traffic outside: low rumble with cars passing by."""
    x = _colored_noise(rng, n, 1.6)
    x = _sos_filter(x, signal.butter(2, min(700, 0.4 * sr), fs=sr, output="sos"))
    t = np.arange(n) / sr
    env = 0.3 * np.ones(n)
    for c in rng.uniform(0, n / sr, int(rng.integers(1, 2 + n / sr / 10))):
        env += rng.uniform(0.5, 2) * np.exp(-0.5 * ((t - c) / rng.uniform(1.5, 5)) ** 2)
    return _unit(x * env)


#: Background families: name → generator ``(rng, n_samples, sr) → unit-RMS signal``.
BACKGROUNDS = {
    "pink": _bg_pink, "brown": _bg_brown, "hiss": _bg_hiss, "hum": _bg_hum, "fan": _bg_fan,
    "compressor": _bg_compressor, "babble": _bg_babble, "music": _bg_music, "rain": _bg_rain,
    "clock": _bg_clock, "traffic": _bg_traffic,
}


# ---------------------------------------------------------------------------------------
# Confusers (transients that are not plops) — each returns a short signal, unit peak
# ---------------------------------------------------------------------------------------
def _cf_knock(rng, sr):
    thump = _damped_tone(sr, rng.uniform(70, 250), rng.uniform(25, 80), dur=0.25, attack_s=0.002)
    click = _resonant_burst(rng, sr, rng.uniform(800, 2500), 2, 0.02, 300)
    _add(thump, 0.3 * _unit(click) * _rms(thump), 0)
    return thump


def _cf_tap(rng, sr):
    return _resonant_burst(rng, sr, rng.uniform(300, 2000), rng.uniform(3, 15), 0.12,
                           rng.uniform(60, 300))


def _cf_click(rng, sr):
    return _resonant_burst(rng, sr, rng.uniform(1000, 6000), 0.8, 0.006, 1200)


def _cf_door(rng, sr):
    x = np.zeros(int(0.6 * sr))
    _add(x, _damped_tone(sr, rng.uniform(50, 120), 15, dur=0.5, attack_s=0.003), 0)
    for _ in range(int(rng.integers(2, 6))):
        r = _resonant_burst(rng, sr, rng.uniform(500, 3000), 5, 0.03, 200)
        _add(x, 0.3 * _unit(r), int(rng.uniform(0.0, 0.35) * sr))
    return x


def _cf_glass(rng, sr):
    """Clinking glass: inharmonic partials with a long decay and no rising pitch."""
    f = rng.uniform(1200, 4000)
    x = np.zeros(int(0.8 * sr))
    for ratio in (1.0, 2.32, 4.25, 6.63):
        if f * ratio < 0.45 * sr:
            _add(x, rng.uniform(0.3, 1) * _damped_tone(sr, f * ratio, rng.uniform(6, 25) * ratio ** 0.5,
                                                       dur=0.8, attack_s=0.0003), 0)
    return x


def _cf_typing(rng, sr):
    x = np.zeros(int(1.5 * sr))
    for _ in range(int(rng.integers(4, 15))):
        _add(x, _unit(_cf_click(rng, sr)) * rng.uniform(0.3, 1), int(rng.uniform(0, 1.4) * sr))
    return x


def _cf_clunk(rng, sr):
    """A spoon, a lid or a cupboard: a plop-length hollow resonance with a few inharmonic
    partials and a hard attack, but no rising pitch."""
    f = rng.uniform(300, 1500)
    x = np.zeros(int(0.3 * sr))
    for ratio in (1.0, rng.uniform(1.5, 2.9), rng.uniform(3.1, 5.3)):
        if f * ratio < 0.45 * sr:
            _add(x, rng.uniform(0.3, 1.0) / ratio * _damped_tone(
                sr, f * ratio, rng.uniform(30, 120) * ratio ** 0.5, dur=0.3, attack_s=0.0005), 0)
    _add(x, 0.5 * _rms(x) * _unit(_resonant_burst(rng, sr, rng.uniform(500, 3000), 1, 0.01, 500)), 0)
    return x


#: Confuser transients: name → generator ``(rng, sr) → signal``.
CONFUSERS = {"knock": _cf_knock, "tap": _cf_tap, "click": _cf_click, "door": _cf_door,
             "glass": _cf_glass, "typing": _cf_typing, "clunk": _cf_clunk}


# ---------------------------------------------------------------------------------------
# The recording chain
# ---------------------------------------------------------------------------------------
def _room_response(rng: np.random.Generator, sr: int, *, rt60: float, drr_db: float) -> np.ndarray:
    """A room impulse response: the direct sound, a few early reflections and an
    exponentially decaying diffuse tail, scaled to a direct-to-reverberant ratio."""
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail = _sos_filter(tail, signal.butter(1, min(0.35 * sr, rng.uniform(3000, 8000)), fs=sr,
                                           output="sos"))
    tail[: int(0.002 * sr)] = 0.0
    for _ in range(4):
        k = int(rng.uniform(0.002, 0.02) * sr)
        if k < n:
            tail[k] += rng.uniform(-1, 1) * 3 * _rms(tail)
    tail *= 10 ** (-drr_db / 20) / math.sqrt(np.sum(tail ** 2) + 1e-12)
    h = tail
    h[0] = 1.0
    return h


def _peaking(sr: int, fc: float, gain_db: float, q: float) -> np.ndarray:
    """RBJ peaking-EQ biquad as second-order sections."""
    a_ = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * fc / sr
    alpha = math.sin(w0) / (2 * q)
    b = [1 + alpha * a_, -2 * math.cos(w0), 1 - alpha * a_]
    a = [1 + alpha / a_, -2 * math.cos(w0), 1 - alpha / a_]
    return np.array([[b[0] / a[0], b[1] / a[0], b[2] / a[0], 1.0, a[1] / a[0], a[2] / a[0]]])


@dataclass
class Chain:
    """Room, microphone and device of one recording."""

    rt60_s: float
    drr_db: float
    highpass_hz: float
    lowpass_hz: float
    eq: list[tuple[float, float, float]] = field(default_factory=list)  # (fc, gain_db, q)
    mic: str = "generic"

    @classmethod
    def draw(cls, rng: np.random.Generator, sr: int, distance_m: float) -> "Chain":
        mic = str(rng.choice(["generic", "phone", "laptop", "studio"], p=[0.4, 0.25, 0.2, 0.15]))
        nyq = sr / 2
        if mic == "phone":
            hp, lp = rng.uniform(150, 350), min(rng.uniform(3400, 7000), 0.45 * sr)
        elif mic == "laptop":
            hp, lp = rng.uniform(100, 250), min(rng.uniform(6000, 12000), 0.45 * sr)
        elif mic == "studio":
            hp, lp = rng.uniform(20, 40), 0.45 * sr
        else:
            hp, lp = rng.uniform(30, 150), min(rng.uniform(8000, 20000), 0.45 * sr)
        eq = [(float(np.exp(rng.uniform(np.log(150), np.log(min(7000, 0.4 * nyq * 2))))),
               float(rng.uniform(-9, 9)), float(rng.uniform(0.7, 3)))
              for _ in range(int(rng.integers(0, 4)))]
        # farther away: more reverberant sound (direct-to-reverberant ratio falls ~6 dB per doubling)
        drr = 12 - 20 * math.log10(distance_m / 0.1) * 0.5 + rng.uniform(-3, 3)
        return cls(rt60_s=float(rng.uniform(0.08, 0.9)), drr_db=float(drr), highpass_hz=float(hp),
                   lowpass_hz=float(lp), eq=eq, mic=mic)

    def filters(self, sr: int) -> np.ndarray:
        sos = [signal.butter(2, self.highpass_hz, "highpass", fs=sr, output="sos")]
        if self.lowpass_hz < 0.45 * sr - 1:
            sos.append(signal.butter(4, self.lowpass_hz, fs=sr, output="sos"))
        sos += [_peaking(sr, fc, g, q) for fc, g, q in self.eq if fc < 0.45 * sr]
        return np.vstack(sos)


# ---------------------------------------------------------------------------------------
# A whole recording
# ---------------------------------------------------------------------------------------
@dataclass
class Recording:
    """One synthesized recording: audio (float32, (n,) or (channels, n)) at ``sr``, its
    events and the parameters that made it."""

    audio: np.ndarray
    sr: int
    events: pd.DataFrame
    params: dict


def _band_power(x: np.ndarray, sr: int, n_fft: int, edges: np.ndarray) -> np.ndarray:
    """Power per (band, frame) of a signal, frames hop n_fft/2."""
    _, _, z = signal.stft(x, fs=sr, nperseg=n_fft, noverlap=n_fft // 2, boundary=None,
                          padded=True)
    p = np.abs(z) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    idx = np.clip(np.searchsorted(edges, freqs) - 1, -1, len(edges) - 2)
    out = np.zeros((len(edges) - 1, p.shape[1]))
    for b in range(len(edges) - 1):
        sel = idx == b
        if sel.any():
            out[b] = p[sel].sum(axis=0)
    return out


def synthesize_recording(*, seed: int | np.random.SeedSequence, duration_s: float = 60.0,
                         sr: int | None = None, snr_db: float | None = None,
                         airlocks: tuple[str, ...] = AIRLOCKS,
                         backgrounds: tuple[str, ...] | None = None,
                         rate_ppm: tuple[float, float] | None = None) -> Recording:
    """Generate one airlock recording.

    Parameters
    ----------
    seed
        Seed or :class:`numpy.random.SeedSequence`; the same seed gives the same recording.
    duration_s
        Length in seconds.
    sr, snr_db
        Force the sample rate or the signal-to-noise ratio (otherwise drawn).
    airlocks, backgrounds
        Draw the airlock type and the background families from these only (default: all).
        This is how a data set holds out whole airlock types or background families, to
        estimate how a detector does on sounds it never heard.
    rate_ppm
        Force the plop rate at the start and at the end (plops per minute; drawn otherwise).

    Examples
    --------
    >>> rec = synthesize_recording(seed=3, duration_s=4.0, sr=16000, snr_db=20.0)
    >>> rec.sr, round(rec.params["snr_target_db"])
    (16000, 20)
    """
    rng = np.random.default_rng(seed)
    if sr is None:
        sr = int(rng.choice(SAMPLE_RATES, p=SAMPLE_RATE_WEIGHTS))
    n = int(round(duration_s * sr))
    unknown = (set(airlocks) - set(AIRLOCK_TYPES)) | (set(backgrounds or ()) - set(BACKGROUNDS))
    if unknown or not airlocks or (backgrounds is not None and not backgrounds):
        raise ValueError(f"unknown or empty choices {sorted(unknown)}: airlocks come from {AIRLOCK_TYPES}, "
                         f"backgrounds from {tuple(BACKGROUNDS)}")
    char = Character.draw(rng, sr, airlocks=tuple(airlocks))
    chain = Chain.draw(rng, sr, char.distance_m)
    if snr_db is None:
        snr_db = float(rng.uniform(-5.0, 30.0))

    # --- timing and plops ------------------------------------------------------------
    rate_start = float(np.exp(rng.uniform(np.log(2), np.log(240))))
    rate_end = float(np.clip(rate_start * np.exp(rng.normal(0, 0.4)), 2, 240))
    if rate_ppm is not None:
        rate_start, rate_end = (float(np.clip(r, 2, 240)) for r in rate_ppm)
    onsets = plop_times(rng, duration_s, rate_start=rate_start, rate_end=rate_end,
                        jitter_shape=float(rng.uniform(5, 40)),
                        burst_prob=float(rng.choice([0.0, 0.03, 0.08])))
    plops: list[tuple[int, np.ndarray]] = []
    ev_start, ev_end, gains = [], [], []
    for i, t in enumerate(onsets):
        nxt = onsets[i + 1] if i + 1 < len(onsets) else duration_s
        max_dur = float(min(0.3, nxt - t - 0.02, duration_s - t))
        if max_dur < 0.05:
            continue
        x, d = plop(rng, sr, char, max_dur=max_dur)
        g = 10 ** (rng.normal(0, char.level_sd_db) / 20)
        plops.append((int(round(t * sr)), x))
        gains.append(g)
        ev_start.append(float(t))
        ev_end.append(float(t + d))
    gains_arr = np.asarray(gains)

    # --- backgrounds and confusers --------------------------------------------------
    pool = sorted(backgrounds) if backgrounds is not None else sorted(BACKGROUNDS)
    n_fam = min(int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25])), len(pool))
    families = sorted(rng.choice(pool, size=n_fam, replace=False).tolist())
    background = np.zeros(n)
    for k, fam in enumerate(families):
        level = 1.0 if k == 0 else 10 ** (rng.uniform(-12, 0) / 20)
        background += level * BACKGROUNDS[fam](rng, n, sr)
    # a faint floor of sensor noise under everything
    background += 10 ** (rng.uniform(-40, -20) / 20) * _rms(background) * rng.standard_normal(n)

    confuser_rate = float(rng.choice([0.0, 2.0, 6.0, 15.0], p=[0.2, 0.3, 0.3, 0.2]))  # per minute
    n_conf = int(rng.poisson(confuser_rate * duration_s / 60))
    conf_kinds = sorted(rng.choice(sorted(CONFUSERS), size=min(3, len(CONFUSERS)),
                                   replace=False).tolist())
    confusers = np.zeros(n)
    conf_used: list[str] = []
    conf_list: list[tuple[int, np.ndarray, float]] = []
    for _ in range(n_conf):
        kind = conf_kinds[int(rng.integers(len(conf_kinds)))]
        x = CONFUSERS[kind](rng, sr)
        x = x / (np.max(np.abs(x)) + 1e-12)
        conf_list.append((int(rng.integers(0, n)), x, float(rng.uniform(-10, 6))))
        conf_used.append(kind)

    # --- the recording chain (linear part) -------------------------------------------
    rir = _room_response(rng, sr, rt60=chain.rt60_s, drr_db=chain.drr_db)
    sos = chain.filters(sr)

    def render_plops(g: np.ndarray) -> np.ndarray:
        track = np.zeros(n)
        for (s, x), gi in zip(plops, g):
            _add(track, gi * x, s)
        return _sos_filter(signal.oaconvolve(track, rir)[:n], sos)

    plop_track = render_plops(gains_arr)
    bg_track = _sos_filter(background, sos)
    mask = np.zeros(n, dtype=bool)
    for s, e in zip(ev_start, ev_end):
        mask[int(s * sr): int(e * sr)] = True
    p_bg = np.mean(bg_track ** 2)
    if mask.any():
        scale = math.sqrt(p_bg * 10 ** (snr_db / 10) / (np.mean(plop_track[mask] ** 2) + 1e-20))
    else:
        scale = 1.0
    gains_arr *= scale
    plop_track *= scale
    plop_peak = float(np.median([np.max(np.abs(gi * x)) for (s, x), gi in zip(plops, gains_arr)])
                      if plops else _rms(bg_track) * 3)
    for s, x, level_db in conf_list:
        _add(confusers, x * plop_peak * 10 ** (level_db / 20), s)
    conf_track = _sos_filter(signal.oaconvolve(confusers, rir)[:n], sos) if conf_list else confusers

    # --- every plop audible: at least AUDIBLE_DB above the background in its best band --
    audibility = np.full(len(plops), np.inf)
    if plops:
        n_fft = 1 << int(round(math.log2(0.032 * sr)))
        hop = n_fft // 2
        edges = np.geomspace(80, 0.45 * sr, 25)
        masker = _band_power(bg_track + conf_track, sr, n_fft, edges) + 1e-20
        for attempt in range(4):  # measure, boost the quiet plops, measure again
            target = _band_power(plop_track, sr, n_fft, edges)
            for i, (s, e) in enumerate(zip(ev_start, ev_end)):
                f0, f1 = int(s * sr) // hop, max(int(e * sr) // hop, int(s * sr) // hop + 1)
                ratio = target[:, f0:f1 + 1].sum(axis=1) / masker[:, f0:f1 + 1].sum(axis=1)
                audibility[i] = 10 * math.log10(float(ratio.max()) + 1e-20)
            low = audibility < AUDIBLE_DB
            if not low.any() or attempt == 3:
                break  # the reported audibility is always that of the final mix
            gains_arr[low] *= 10 ** (np.minimum(AUDIBLE_DB + 1 - audibility[low], 30) / 20)
            plop_track = render_plops(gains_arr)
    snr_measured = (10 * math.log10(np.mean(plop_track[mask] ** 2) / p_bg) if mask.any()
                    else float("nan"))

    # --- level, clipping, channels ---------------------------------------------------
    mix = plop_track + bg_track + conf_track
    channels = 2 if rng.random() < 0.3 else 1
    if channels == 2:
        dly = int(rng.uniform(0, 0.0008) * sr)
        shift = int(rng.uniform(0.005, 0.03) * sr)
        second = (10 ** (rng.uniform(-2, 2) / 20) * np.roll(plop_track + conf_track, dly)
                  + np.roll(bg_track, shift))
        mix = np.vstack([mix, second])
    level_dbfs = float(rng.uniform(-40, -14))
    mix *= 10 ** (level_dbfs / 20) / _rms(mix)
    clipped = bool(rng.random() < 0.12)
    if clipped:
        mix *= 10 ** (rng.uniform(1, 8) / 20) / np.max(np.abs(mix))
        mix = np.clip(mix, -1, 1) if rng.random() < 0.5 else np.tanh(mix)
    peak = np.max(np.abs(mix))
    if peak > 0.99:
        mix *= 0.99 / peak
    audio = mix.astype(np.float32)

    events = pd.DataFrame({"start": np.round(ev_start, 4), "end": np.round(ev_end, 4),
                           "label": PLOP_LABEL})
    n_ev = len(events)
    params = {
        "sample_rate": sr, "channels": channels, "airlock": char.airlock,
        "radius_mm_min": round(char.radius_mm[0], 3), "radius_mm_max": round(char.radius_mm[1], 3),
        "fill": round(char.fill, 3), "distance_m": round(char.distance_m, 3),
        "rate_start_ppm": round(rate_start, 2), "rate_end_ppm": round(rate_end, 2),
        "rate_ppm": round(n_ev / duration_s * 60, 2), "n_plops": n_ev,
        "snr_target_db": round(snr_db, 2), "snr_db": round(snr_measured, 2),
        "min_audibility_db": round(float(np.min(audibility)) if n_ev else float("nan"), 2),
        "backgrounds": "+".join(families), "confusers": "+".join(sorted(set(conf_used))),
        "n_confusers": len(conf_used), "rt60_s": round(chain.rt60_s, 3),
        "drr_db": round(chain.drr_db, 2), "mic": chain.mic, "level_dbfs": round(level_dbfs, 2),
        "clipped": clipped,
    }
    return Recording(audio=audio, sr=sr, events=events, params=params)


# ---------------------------------------------------------------------------------------
# Data sets on disk
# ---------------------------------------------------------------------------------------
def _write_flac(path: Path, audio: np.ndarray, sr: int) -> None:
    import soundfile as sf

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = audio.T if audio.ndim == 2 else audio
    with sf.SoundFile(tmp, "w", samplerate=sr, channels=1 if audio.ndim == 1 else audio.shape[0],
                      format="FLAC", subtype="PCM_16") as f:
        for i in range(0, len(data), 1 << 16):
            f.write(data[i:i + (1 << 16)])
    os.replace(tmp, path)


def _make_one(args: tuple) -> dict:
    from helpers.labels import write_labels

    out_dir, name, seed_seq, duration_s, choices = args
    rec = synthesize_recording(seed=seed_seq, duration_s=duration_s, **choices)
    audio_path = Path(out_dir) / f"{name}.flac"
    labels_path = Path(out_dir) / f"{name}.txt"
    _write_flac(audio_path, rec.audio, rec.sr)
    write_labels(rec.events, labels_path)
    return {"recording": name, "path": audio_path.name, "labels": labels_path.name,
            "duration_s": round(duration_s, 3), "source": "synthetic", **rec.params}


def config_key(*, recordings: int, duration_s: float, seed: int,
               airlocks: tuple[str, ...] = AIRLOCKS, backgrounds: tuple[str, ...] | None = None) -> str:
    """A short hash of what defines a synthetic set (cache key)."""
    cfg = {"recordings": recordings, "duration_s": float(duration_s), "seed": seed,
           "version": GENERATOR_VERSION}
    if tuple(airlocks) != AIRLOCKS or backgrounds is not None:
        cfg["airlocks"] = sorted(airlocks)
        cfg["backgrounds"] = sorted(backgrounds) if backgrounds is not None else None
    return hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]


def make_dataset(out_dir: str | os.PathLike, *, recordings: int = 60, duration_s: float = 60.0,
                 seed: int = 2024, workers: int | None = None, progress: bool = True,
                 airlocks: tuple[str, ...] = AIRLOCKS, backgrounds: tuple[str, ...] | None = None,
                 prefix: str = "synth") -> pd.DataFrame:
    """Write a synthetic data set: ``<name>.flac`` + ``<name>.txt`` per recording and
    ``manifest.csv``. ``airlocks`` and ``backgrounds`` restrict the draws (see
    :func:`synthesize_recording`); ``prefix`` starts every recording's name.

    Recording ``i`` is made from the ``i``-th child of ``SeedSequence(seed)``, so results do not
    depend on ``workers``. Returns the manifest.

    Examples
    --------
    >>> import tempfile
    >>> m = make_dataset(tempfile.mkdtemp(), recordings=2, duration_s=3, progress=False)
    >>> list(m["split"].unique()) != []
    True
    """
    from tqdm.auto import tqdm

    if recordings < 1 or duration_s <= 0:
        raise ValueError("recordings must be >= 1 and duration_s > 0")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    children = np.random.SeedSequence(seed).spawn(recordings)
    choices = {"airlocks": tuple(airlocks), "backgrounds": tuple(backgrounds) if backgrounds else None}
    jobs = [(str(out), f"{prefix}_{i:03d}", children[i], float(duration_s), choices)
            for i in range(recordings)]
    workers = workers or min(os.cpu_count() or 1, recordings)
    rows: list[dict] = []
    bar = tqdm(total=recordings, desc="synthesizing", unit="rec", disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            for row in ex.map(_make_one, jobs):
                rows.append(row)
                bar.update()
    else:
        for job in jobs:
            rows.append(_make_one(job))
            bar.update()
    bar.close()
    manifest = pd.DataFrame(rows)
    from helpers.datasets import split_by_recording  # (datasets imports this module)

    manifest.insert(5, "split", split_by_recording(manifest["recording"], seed=seed))
    manifest["seed"] = seed
    manifest["config"] = config_key(recordings=recordings, duration_s=duration_s, seed=seed,
                                    **choices)
    tmp = out / ".manifest.csv.tmp"
    manifest.to_csv(tmp, index=False)
    os.replace(tmp, out / "manifest.csv")
    return manifest


def fermentation_rate(t_hours: np.ndarray | float, *, peak_ppm: float = 120.0,
                      peak_hours: float = 36.0, lag_hours: float = 8.0, final_ppm: float = 2.0) -> np.ndarray:
    """A typical fermentation curve in plops per minute: a lag phase, a rise to the peak of
    activity, then a slow decay towards the end (a log-normal-like bump).

    Examples
    --------
    >>> r = fermentation_rate(np.array([0.0, 36.0, 200.0]))
    >>> bool(r[1] > r[0] and r[1] > r[2])
    True
    """
    t = np.maximum(np.asarray(t_hours, dtype=float), 1e-3)
    shape = np.exp(-0.5 * (np.log(t / peak_hours) / 0.55) ** 2)
    lag = 1.0 / (1.0 + np.exp(-(t - lag_hours) / (lag_hours / 4)))
    return final_ppm + (peak_ppm - final_ppm) * shape * lag


def synthesize_session(*, seed: int, hours: float, start_hour: float = 0.0, chunk_s: float = 60.0,
                       rate=fermentation_rate, airlock: str = "s_type",
                       backgrounds: tuple[str, ...] = ("fan", "pink"), snr_db: float = 15.0):
    """A long recording of one airlock, made chunk by chunk (yields ``(start_s, audio at
    16 kHz, events with times from the session start, true rate)``), whose plop rate follows
    ``rate(hours)`` — the fermentation curve of notebook 06. Memory stays that of one chunk.

    Examples
    --------
    >>> chunks = list(synthesize_session(seed=1, hours=0.05, chunk_s=60))
    >>> len(chunks), chunks[1][0]
    (3, 60.0)
    """
    n = int(np.ceil(hours * 3600 / chunk_s))
    children = np.random.SeedSequence(seed).spawn(n)
    for k in range(n):
        t0 = float(k * chunk_s)
        r0 = float(rate(start_hour + t0 / 3600))
        r1 = float(rate(start_hour + (t0 + chunk_s) / 3600))
        rec = synthesize_recording(seed=children[k], duration_s=chunk_s, sr=16000, snr_db=snr_db,
                                   airlocks=(airlock,), backgrounds=tuple(backgrounds),
                                   rate_ppm=(r0, r1))
        audio = rec.audio if rec.audio.ndim == 1 else rec.audio.mean(axis=0)
        events = rec.events.copy()
        events[["start", "end"]] += t0
        yield t0, audio, events, (r0 + r1) / 2
