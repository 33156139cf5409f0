"""Performance in conditions nobody recorded: plops mixed into backgrounds at chosen SNRs.

A recording tells you how a detector does in *its* conditions. To ask "and next to the
fridge, at 0 dB?", take plops whose onsets are known, mix them into a background family at a
chosen signal-to-noise ratio, and score the detector on the mixture — over a grid of SNRs and
families, a few plop tracks each. The mixing is :func:`helpers.augment.mix_background`, the
same code that augments the training data, so a sweep also shows what that augmentation buys.

- :func:`plop_track`: clean plops (no background, no confusers) from :mod:`helpers.synth`:
  one airlock's character, its timing, its room and microphone; events with known onsets.
- :func:`mix`: the plops in one background family at an exact SNR (deterministic);
  :func:`measured_snr_db` measures it again from the two parts.
- :func:`sweep`: one or several detectors over SNR × family × plop track → a tidy table of
  per-recording scores (:func:`helpers.evaluate.score_detections`: event F1 on onsets with a
  100 ms collar, BPM error); :func:`summarize_sweep` pools it per cell and
  :func:`required_snr` finds the SNR each family needs.
- :func:`augmented_copies` and :func:`train_pair`: two detectors trained with the same recipe,
  seed and budget, with and without background mixing; :func:`select_recordings` picks a
  training subset (e.g. quiet recordings without some backgrounds).
- :func:`plot_vs_snr`: a score against SNR, one line per family (or per model).

**SNR, as defined here** (the definition of :mod:`helpers.synth` and
:func:`helpers.augment.mix_background`)::

    SNR = 10 log10( mean power of the plop track over the labeled events
                    / mean power of the background over the whole recording )   [dB]

The plop power counts only the samples inside events (onset to where 97 % of a plop's energy
has passed), so the SNR does not depend on how often the airlock plops: at 0 dB a plop is, while
it lasts, as loud as the background on average. The background's power is its mean over the
whole recording, gaps included — for a gated background (compressor, babble, music) the
moments next to a plop can be louder or quieter than that.

Examples
--------
>>> y, ev, info = plop_track(seed=0, duration_s=5.0)
>>> m = mix(y, ev, family="fan", snr_db=0.0, seed=0)
>>> round(measured_snr_db(m["plops"], m["background"], m["events"]), 2)
0.0
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from helpers import augment, synth
from helpers.config import PLOP_LABEL, SR
from helpers.evaluate import prf, score_detections

#: SNRs of a sweep (dB), from "plops drowned" to "plops clearly above the background".
SNR_GRID_DB = (-10.0, -5.0, 0.0, 5.0, 10.0, 20.0, 30.0)
#: Columns of :func:`sweep`'s table before the scores.
SWEEP_KEYS = ("model", "family", "snr_db", "seed", "recording", "snr_measured_db", "airlock",
              "duration_s")


# ---------------------------------------------------------------------------------------
# Clean plops and mixtures
# ---------------------------------------------------------------------------------------
def plop_track(*, seed: int, duration_s: float = 25.0, rate_ppm: tuple[float, float] = (30.0, 150.0),
               airlocks: tuple[str, ...] = synth.AIRLOCKS, room: bool = True, sr: int = SR
               ) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Plops alone, with known onsets: one airlock from :mod:`helpers.synth`, no background.

    The airlock's character, the plop timing (a rate drawn log-uniformly from ``rate_ppm``
    plops per minute, drifting, with burps) and every plop come from the same generator as the
    synthetic data set; with ``room=True`` they also go through a drawn room (reverberation)
    and microphone response. The track is scaled so that its power over the events is 1.

    Parameters
    ----------
    seed
        The same seed gives the same track.
    duration_s
        Length in seconds.
    rate_ppm
        Range of the plop rate, plops per minute (between 2 and 240).
    airlocks
        Airlock types to draw from (:data:`helpers.synth.AIRLOCKS`).
    room
        Add the room and microphone of the recording chain.
    sr
        Sample rate (Hz).

    Returns
    -------
    audio, events, info
        float32 audio, events (``start``, ``end``, ``label``) and what was drawn
        (``airlock``, ``rate_ppm``, ``n_plops``).

    Examples
    --------
    >>> y, ev, info = plop_track(seed=1, duration_s=10.0)
    >>> len(y) == 10 * SR, len(ev) == info["n_plops"] > 0, info["airlock"] in synth.AIRLOCKS
    (True, True, True)
    """
    rate_ppm = check_track(duration_s, rate_ppm)
    unknown = set(airlocks) - set(synth.AIRLOCKS)
    if unknown or not airlocks:
        raise ValueError(f"unknown or empty airlocks {sorted(unknown)}; choose from {synth.AIRLOCKS}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 9]))
    char = synth.Character.draw(rng, sr, airlocks=tuple(airlocks))
    onsets = track_onsets(rng, duration_s, rate_ppm)
    n = int(round(duration_s * sr))
    track = np.zeros(n)
    starts, ends = [], []
    for i, t in enumerate(onsets):  # the same spacing rules as synth.synthesize_recording
        nxt = onsets[i + 1] if i + 1 < len(onsets) else duration_s
        max_dur = float(min(0.3, nxt - t - 0.02, duration_s - t))
        if max_dur < 0.05:
            continue
        x, d = synth.plop(rng, sr, char, max_dur=max_dur)
        synth._add(track, x * 10 ** (rng.normal(0, char.level_sd_db) / 20), int(round(t * sr)))
        starts.append(float(t))
        ends.append(float(t + d))
    if room:
        track = recording_chain(track, rng, distance_m=char.distance_m, sr=sr)
    events = pd.DataFrame({"start": np.round(starts, 4), "end": np.round(ends, 4), "label": PLOP_LABEL})
    info = {"airlock": char.airlock, "rate_ppm": round(len(events) / duration_s * 60, 2),
            "n_plops": len(events)}
    return unit_event_power(track, events, sr=sr), events, info


def check_track(duration_s: float, rate_ppm: tuple[float, float]) -> tuple[float, float]:
    """The ``(low, high)`` plops per minute of a track, or a clear error for a bad length or range."""
    if not duration_s > 0.5:
        raise ValueError(f"duration_s must be more than 0.5 s, not {duration_s}")
    lo, hi = (float(r) for r in rate_ppm)
    if not 2.0 <= lo <= hi <= 240.0:
        raise ValueError(f"rate_ppm {rate_ppm} must be (low, high) with 2 <= low <= high <= 240")
    return lo, hi


def track_onsets(rng: np.random.Generator, duration_s: float, rate_ppm: tuple[float, float]) -> np.ndarray:
    """Onsets of a track: a rate drawn log-uniformly from ``rate_ppm`` that drifts a little,
    with :func:`helpers.synth.plop_times`' gamma intervals and burps."""
    lo, hi = rate_ppm
    rate = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return synth.plop_times(rng, duration_s, rate_start=rate,
                            rate_end=float(np.clip(rate * np.exp(rng.normal(0, 0.2)), lo, hi)),
                            jitter_shape=float(rng.uniform(5, 40)),
                            burst_prob=float(rng.choice([0.0, 0.03, 0.08])))


def recording_chain(track: np.ndarray, rng: np.random.Generator, *, distance_m: float, sr: int = SR
                    ) -> np.ndarray:
    """``track`` as a microphone ``distance_m`` away in a room would hear it: a drawn room
    response (reverberation) and microphone (:class:`helpers.synth.Chain`), same length."""
    from scipy import signal

    chain = synth.Chain.draw(rng, sr, distance_m)
    rir = synth._room_response(rng, sr, rt60=chain.rt60_s, drr_db=chain.drr_db)
    return synth._sos_filter(signal.oaconvolve(track, rir)[:len(track)], chain.filters(sr))


def unit_event_power(track: np.ndarray, events: pd.DataFrame, *, sr: int = SR) -> np.ndarray:
    """``track`` (float32) scaled so that its mean power over the labeled events is 1."""
    mask = augment.event_mask(events, len(track), sr=sr)
    if mask.any():
        track = track / math.sqrt(float(np.mean(np.square(track[mask]))) + 1e-20)
    return np.asarray(track, dtype=np.float32)


def measured_snr_db(plops: np.ndarray, background: np.ndarray, events: pd.DataFrame, *,
                    sr: int = SR) -> float:
    """The SNR of a mixture from its two parts (see the module docstring for the definition).

    Examples
    --------
    >>> ev = pd.DataFrame({"start": [0.0], "end": [0.5], "label": ["p"]})
    >>> p = np.r_[np.ones(8000), np.zeros(8000)]
    >>> round(measured_snr_db(p, 0.1 * np.ones(16000), ev), 1)
    20.0
    """
    mask = augment.event_mask(events, len(plops), sr=sr)
    if not mask.any():
        raise ValueError("no events inside the audio: the SNR is measured over the plops")
    p_sig = np.mean(np.square(plops[mask], dtype=np.float64))
    p_bg = np.mean(np.square(background, dtype=np.float64))
    return float(10 * np.log10(p_sig / p_bg))


def _family_seed(seed: int, family: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), zlib.crc32(family.encode())])


def _check_families(families) -> list[str]:
    families = [families] if isinstance(families, str) else list(families)
    unknown = sorted(set(families) - set(synth.BACKGROUNDS))
    if unknown or not families:
        raise ValueError(f"unknown or empty background families {unknown}; choose from "
                         f"{sorted(synth.BACKGROUNDS)}")
    return families


def _background(plops: np.ndarray, events: pd.DataFrame, *, family: str, seed: int, sr: int
                ) -> np.ndarray:
    """The background of ``family`` for these plops at 0 dB SNR, mixed in by
    :func:`helpers.augment.mix_background` (float64; any other SNR is this times a gain)."""
    rng = np.random.default_rng(_family_seed(seed, family))
    z = augment.mix_background(plops, events, rng=rng, snr_db=0.0, families=[family], sr=sr)
    return z.astype(np.float64) - plops


def _check_mix_input(plops, events, snr_db, sr) -> np.ndarray:
    y = np.asarray(plops, dtype=np.float32)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"plops must be non-empty mono audio, got shape {y.shape}")
    if not np.isfinite(snr_db):
        raise ValueError(f"snr_db must be a finite number of dB, not {snr_db}")
    if events is None or len(events) == 0 or not augment.event_mask(events, len(y), sr=sr).any():
        raise ValueError("no events inside the audio: the SNR is defined over the plops, "
                         "so mix needs at least one labeled plop")
    return y


def mix(plops: np.ndarray, events: pd.DataFrame, *, family: str, snr_db: float, seed: int,
        level_dbfs: float = -30.0, sr: int = SR) -> dict:
    """Mix plops into one background family at exactly ``snr_db``.

    The background is made by :data:`helpers.synth.BACKGROUNDS` and added by
    :func:`helpers.augment.mix_background` (the training augmentation). Its random draws depend
    on ``seed`` and ``family`` only, so the same plops at several SNRs hear the same
    background, only louder or quieter. The mixture is then scaled to ``level_dbfs`` (RMS;
    lowered if its peak would pass 0.99), which leaves the SNR unchanged.

    Parameters
    ----------
    plops, events
        A clean plop track (mono) and its events, e.g. from :func:`plop_track`.
    family
        A background family, one of :data:`helpers.synth.BACKGROUNDS`.
    snr_db
        The SNR in dB (see the module docstring).
    seed
        Seed of the background.
    level_dbfs
        RMS level of the mixture.
    sr
        Sample rate (Hz).

    Returns
    -------
    dict
        ``audio`` (float32 mixture), ``events``, ``plops`` and ``background`` (the two parts,
        scaled like the mixture: ``audio == plops + background`` up to float32 rounding),
        ``snr_db`` (measured) and ``family``.

    Examples
    --------
    >>> y, ev, _ = plop_track(seed=2, duration_s=4.0)
    >>> m = mix(y, ev, family="babble", snr_db=-5.0, seed=1)
    >>> m["audio"].dtype, len(m["audio"]) == len(y), round(m["snr_db"], 2)
    (dtype('float32'), True, -5.0)
    """
    (family,) = _check_families([family])
    y = _check_mix_input(plops, events, snr_db, sr)
    bg0 = _background(y, events, family=family, seed=seed, sr=sr)
    return _scaled_mix(y, events, bg0, family=family, snr_db=snr_db, level_dbfs=level_dbfs, sr=sr)


def _scaled_mix(y: np.ndarray, events: pd.DataFrame, bg0: np.ndarray, *, family: str,
                snr_db: float, level_dbfs: float, sr: int) -> dict:
    """Plops plus the 0 dB background ``bg0`` turned down to ``snr_db``, at ``level_dbfs``."""
    background = bg0 * 10 ** (-float(snr_db) / 20)
    z = y + background
    gain = 10 ** (level_dbfs / 20) / (np.sqrt(np.mean(np.square(z))) + 1e-20)
    gain = min(gain, 0.99 / (float(np.max(np.abs(z))) + 1e-20))
    return {"audio": (z * gain).astype(np.float32), "events": events.reset_index(drop=True),
            "plops": (y * gain).astype(np.float32), "background": (background * gain).astype(np.float32),
            "snr_db": measured_snr_db(y.astype(np.float64), background, events, sr=sr),
            "family": family}


# ---------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------
def sweep(detectors, *, snrs_db: Sequence[float] = SNR_GRID_DB, families: Sequence[str] | None = None,
          seeds: Sequence[int] = (0, 1, 2, 3), duration_s: float = 25.0,
          rate_ppm: tuple[float, float] = (30.0, 150.0), airlocks: tuple[str, ...] = synth.AIRLOCKS,
          bpm_method: str = "interval", progress: bool = False,
          track: Callable[[int], tuple[np.ndarray, pd.DataFrame, dict]] | None = None) -> pd.DataFrame:
    """Score detectors on plops mixed into every background ``family`` at every SNR.

    Each seed gives one plop track (:func:`plop_track`), used in every cell of the grid (a
    paired design: the cells differ only by background and SNR); the ``i``-th track is of
    airlock type ``airlocks[i % len(airlocks)]``, so a few seeds cover the types evenly. Each
    mixture (:func:`mix`) is made once and given to every detector.

    Parameters
    ----------
    detectors
        A :class:`helpers.models.Detector`, or a mapping name → detector (compared on the
        same mixtures). A detector may also be any function ``audio → events`` (e.g.
        ``lambda y: helpers.autolabel.autolabel(y).events``, the GMM-HMM labeler).
    snrs_db, families, seeds
        The grid (default families: all of :data:`helpers.synth.BACKGROUNDS`).
    duration_s, rate_ppm, airlocks
        Of each plop track (see :func:`plop_track`).
    bpm_method
        How the BPM is estimated from the detections (:func:`helpers.events.bpm_from_events`;
        default ``"interval"``, the project's BPM). The true BPM is the count of plops per
        minute; ``bpm_error_oracle`` is the error the same method makes on the true onsets
        (a detector cannot do better than that floor).
    progress
        Show a progress bar.
    track
        Makes the plop track of a seed instead of :func:`plop_track`: ``track(seed)`` returns
        ``(audio, events, info)`` with ``info["airlock"]`` (``duration_s``, ``rate_ppm`` and
        ``airlocks`` are then the track's business), e.g. recorded bubbles
        (:func:`helpers.bubbles.bubble_track`).

    Returns
    -------
    pandas.DataFrame
        One row per model × family × SNR × seed: :data:`SWEEP_KEYS`, then the columns of
        :func:`helpers.evaluate.score_detections` (``tp``, ``fp``, ``fn``, ``f1``,
        ``true_bpm``, ``bpm``, ``bpm_error``, ...; onsets within 100 ms), and
        ``bpm_error_oracle``.

    Examples
    --------
    >>> from helpers.models import Detector
    >>> t = sweep(Detector.load(backend="keras"), snrs_db=[0, 30], families=["hum"], seeds=[0],
    ...           duration_s=6.0)   # doctest: +SKIP
    >>> t[["family", "snr_db", "f1"]].shape   # doctest: +SKIP
    (2, 3)
    """
    from tqdm.auto import tqdm

    from helpers.features import frontend_features

    dets = dict(detectors) if isinstance(detectors, Mapping) else {"detector": detectors}
    if not dets:
        raise ValueError("no detectors to sweep: give a Detector or a non-empty {name: Detector}")
    families = _check_families(sorted(synth.BACKGROUNDS) if families is None else families)
    snrs = [float(s) for s in snrs_db]
    seeds = [int(s) for s in seeds]
    if not snrs or not seeds:
        raise ValueError("snrs_db and seeds must each hold at least one value")
    if not all(np.isfinite(snrs)):
        raise ValueError(f"snrs_db must be finite numbers of dB, not {snrs_db}")
    airlocks = tuple(airlocks)
    if not airlocks or set(airlocks) - set(synth.AIRLOCKS):
        raise ValueError(f"unknown or empty airlocks {airlocks}; choose from {synth.AIRLOCKS}")
    rows = []
    bar = tqdm(total=len(seeds) * len(families) * len(snrs), desc="sweep", unit="mix",
               disable=not progress)
    for i, seed in enumerate(seeds):
        if track is None:
            y, ev, info = plop_track(seed=seed, duration_s=duration_s, rate_ppm=rate_ppm,
                                     airlocks=(airlocks[i % len(airlocks)],))
        else:
            y, ev, info = track(seed)
            duration_s = len(y) / SR
        oracle = float(score_detections([ev], [ev], [duration_s], bpm_method=bpm_method)["bpm_error"].iloc[0])
        for family in families:
            bg0 = _background(y, ev, family=family, seed=seed, sr=SR)  # one draw for all SNRs
            for snr in snrs:
                m = _scaled_mix(y, ev, bg0, family=family, snr_db=snr, level_dbfs=-30.0, sr=SR)
                feats = {}
                for name, det in dets.items():
                    if not hasattr(det, "probabilities_from_features"):
                        est = det(m["audio"])              # a function audio → events
                    else:                                  # a Detector: features shared by front end
                        kind = det.config.frontend
                        if kind not in feats:
                            feats[kind] = frontend_features(m["audio"], kind=kind)
                        est = det.events_from_probabilities(det.probabilities_from_features(det.normalize(feats[kind])))
                    rec = f"s{seed}_{family}_{snr:+g}dB"
                    score = score_detections([ev], [est], [duration_s], names=[rec],
                                             bpm_method=bpm_method).iloc[0].to_dict()
                    rows.append({"model": name, "family": family, "snr_db": snr, "seed": seed,
                                 "recording": rec, "snr_measured_db": round(m["snr_db"], 3),
                                 "airlock": info["airlock"], "duration_s": duration_s,
                                 **{k: v for k, v in score.items() if k != "recording"},
                                 "bpm_error_oracle": oracle})
                bar.update()
    bar.close()
    return pd.DataFrame(rows)


def summarize_sweep(table: pd.DataFrame, *, by: Sequence[str] = ("model", "family", "snr_db")
                    ) -> pd.DataFrame:
    """Pooled scores per cell of a :func:`sweep` table: event F1, precision and recall from
    the summed matches, and the median and mean BPM error over the recordings.

    Examples
    --------
    >>> t = pd.DataFrame({"family": ["hum", "hum"], "snr_db": [0.0, 0.0], "tp": [8, 2],
    ...                   "fp": [0, 2], "fn": [2, 8], "bpm_error": [0.2, 0.8]})
    >>> summarize_sweep(t, by=["family", "snr_db"]).round(2).values.tolist()
    [['hum', 0.0, 2, 20, 0.83, 0.5, 0.62, 0.5, 0.5]]
    """
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in (*by, "tp", "fp", "fn", "bpm_error") if c not in table]
    if missing:
        raise ValueError(f"table lacks columns {missing}; make it with helpers.robustness.sweep")
    rows = []
    for key, d in table.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        s = prf(int(d["tp"].sum()), int(d["fp"].sum()), int(d["fn"].sum()))
        rows.append({**dict(zip(by, key)), "recordings": len(d), "plops": int(d["tp"].sum() + d["fn"].sum()),
                     "precision": s["precision"], "recall": s["recall"], "f1": s["f1"],
                     "bpm_error_median": float(d["bpm_error"].median()),
                     "bpm_error_mean": float(d["bpm_error"].mean())})
    return pd.DataFrame(rows)


LOW_BAND, HIGH_BAND = "−10…0 dB", "10…30 dB"


def compare_bands(table: pd.DataFrame, *, by: str = "background") -> pd.DataFrame:
    """Event F1 per ``by`` × ``model`` at low (−10…0 dB) and high (10…30 dB) SNR, and the
    median BPM error (%) at low SNR, from a :func:`sweep` table with a ``model`` column
    (the middle of the grid, 5 dB, is in neither band). Notebook 09's comparison of the
    models trained with and without background mixing."""
    t = table[~table["snr_db"].between(0.5, 9.5)]
    t = t.assign(snr=pd.cut(t["snr_db"], [-99, 0, 99], labels=[LOW_BAND, HIGH_BAND]).astype(str))
    s = summarize_sweep(t, by=[by, "model", "snr"])
    out = s.pivot(index=[by, "model"], columns="snr", values="f1")
    low = s[s["snr"] == LOW_BAND].set_index([by, "model"])["bpm_error_median"]
    return out.assign(**{f"median BPM error, {LOW_BAND} (%)": 100 * low})


def required_snr(table: pd.DataFrame, *, by: str = "family", metric: str = "f1",
                 at_least: float = 0.9) -> pd.Series:
    """The lowest SNR of the grid from which ``metric`` stays at least ``at_least`` (at that
    SNR and every higher one), per value of ``by``; NaN where it never gets there.

    Examples
    --------
    >>> t = pd.DataFrame({"family": ["hum"] * 3, "snr_db": [-10.0, 0.0, 10.0], "tp": [3, 9, 10],
    ...                   "fp": [0, 0, 0], "fn": [7, 1, 0], "bpm_error": [0.5, 0.1, 0.0]})
    >>> required_snr(t).to_dict()
    {'hum': 0.0}
    """
    summary = summarize_sweep(table, by=[by, "snr_db"])
    out = {}
    for key, d in summary.groupby(by, sort=True):
        d = d.sort_values("snr_db")
        ok = (d[metric] >= at_least).to_numpy()
        tail = np.logical_and.accumulate(ok[::-1])[::-1]  # good from here upwards
        out[key] = float(d["snr_db"].to_numpy()[tail][0]) if tail.any() else float("nan")
    return pd.Series(out, name=f"SNR for {metric} >= {at_least:g} (dB)")


def select_recordings(manifest: pd.DataFrame, *, split: str, min_snr_db: float = -np.inf,
                      without: Sequence[str] = ()) -> pd.DataFrame:
    """Rows of a synthetic manifest in ``split`` with an SNR of at least ``min_snr_db`` and none
    of the background families ``without`` (e.g. "quiet kitchen" recordings).

    Examples
    --------
    >>> m = pd.DataFrame({"split": ["train"] * 3, "snr_db": [20.0, 3.0, 15.0],
    ...                   "backgrounds": ["hum+fan", "hum", "babble+hum"]})
    >>> select_recordings(m, split="train", min_snr_db=10, without=["babble"]).index.tolist()
    [0]
    """
    if len(without):
        _check_families(without)
    rows = manifest[manifest["split"] == split]
    has = rows["backgrounds"].astype(str).str.split("+").map(lambda fams: bool(set(fams) & set(without)))
    return rows[(rows["snr_db"] >= min_snr_db) & ~has]


# ---------------------------------------------------------------------------------------
# Background mixing as training augmentation
# ---------------------------------------------------------------------------------------
class MixingData(NamedTuple):
    """The data of notebook 09's mixing experiment (:func:`mixing_experiment_data`)."""

    train: list[tuple[np.ndarray, pd.DataFrame]]
    val: list[tuple[np.ndarray, pd.DataFrame]]
    train_rows: pd.DataFrame
    val_rows: pd.DataFrame
    families: list[str]


def mixing_experiment_data(manifest: pd.DataFrame, *, unrecorded: Sequence[str] = ("babble", "music", "rain"),
                           never_heard: Sequence[str] = ("rain",), min_snr_db: float = 10.0,
                           val_seed: int = 1000) -> MixingData:
    """The "quiet kitchen" recordings of the train and val splits (SNR at least
    ``min_snr_db``, none of the ``unrecorded`` backgrounds), the families the mixing may draw
    from (all but ``never_heard``), and the validation recordings plus one mixed copy of each
    (drawn with ``val_seed``): what :func:`train_pair` needs.

    Examples
    --------
    >>> data = mixing_experiment_data(datasets.synthetic())   # doctest: +SKIP
    >>> pair = train_pair(data.train, data.val, epochs=5, families=data.families)  # doctest: +SKIP
    """
    from helpers.datasets import load_all

    rows = {split: select_recordings(manifest, split=split, min_snr_db=min_snr_db, without=unrecorded)
            for split in ("train", "val")}
    train, val = (list(zip(*load_all(rows[split]))) for split in ("train", "val"))
    families = [f for f in sorted(synth.BACKGROUNDS) if f not in never_heard]
    val = val + augmented_copies(val, seed=val_seed, families=families)
    return MixingData(train, val, rows["train"], rows["val"], families)


def augmented_copies(items: Sequence[tuple[np.ndarray, pd.DataFrame]], *, seed: int,
                     mix_backgrounds: bool = True, families: Sequence[str] | None = None,
                     snr_db: tuple[float, float] = (-5.0, 25.0),
                     speed_range: tuple[float, float] = (0.85, 1.18), sr: int = SR
                     ) -> list[tuple[np.ndarray, pd.DataFrame]]:
    """One augmented copy of each recording, as :func:`helpers.augment.augment` makes it
    (speed, then a background, then the recording chain), with the background optional.

    The speed and the chain come from one random stream and the background from another, so
    ``mix_backgrounds=True`` and ``False`` give copies that differ *only* by the mixed-in
    background: one or two families drawn from ``families`` (default: all), at an SNR drawn
    from ``snr_db``, added by :func:`helpers.augment.mix_background`.

    Examples
    --------
    >>> y, ev, _ = plop_track(seed=0, duration_s=3.0)
    >>> (a, ev_a), = augmented_copies([(y, ev)], seed=0, mix_backgrounds=False)
    >>> (b, ev_b), = augmented_copies([(y, ev)], seed=0, families=["hum"])
    >>> len(a) == len(b), ev_a.equals(ev_b), bool(np.abs(a - b).max() > 0)
    (True, True, True)
    """
    pool = sorted(_check_families(sorted(synth.BACKGROUNDS) if families is None else families))
    out = []
    for i, (y, ev) in enumerate(items):
        chain_ss, bg_ss = np.random.SeedSequence([int(seed), i]).spawn(2)
        rng_chain, rng_bg = np.random.default_rng(chain_ss), np.random.default_rng(bg_ss)
        factor = float(np.exp(rng_chain.uniform(*np.log(speed_range))))
        z, ev2 = augment.speed(y, ev, factor=factor, sr=sr)
        if mix_backgrounds:
            k = min(int(rng_bg.integers(1, 3)), len(pool))
            chosen = [str(f) for f in rng_bg.choice(pool, size=k, replace=False)]
            z = augment.mix_background(z, ev2, rng=rng_bg, snr_db=float(rng_bg.uniform(*snr_db)),
                                       families=chosen, sr=sr)
        out.append((augment.channel(z, rng=rng_chain, sr=sr), ev2))
    return out


def train_pair(train: Sequence[tuple[np.ndarray, pd.DataFrame]],
               val: Sequence[tuple[np.ndarray, pd.DataFrame]], *, epochs: int, seed: int = 0,
               families: Sequence[str] | None = None, snr_db: tuple[float, float] = (-5.0, 25.0),
               batch_size: int = 32, progress: bool = False) -> dict:
    """Train two CRNNs with one recipe, seed and budget — without and with background mixing.

    Both see the training recordings plus one augmented copy of each
    (:func:`augmented_copies`, the same speeds and chains); only the copies of the second
    have backgrounds mixed in. Both train for ``epochs`` epochs with
    :func:`helpers.models.train_detector` (same seed, early stopping and post-processing tuned
    on ``val``). ``batch_size`` is 32 windows rather than the 64 of ``make model``: it halves
    the memory that training takes (Binder gives 2 GB), for both alike.

    Returns
    -------
    dict
        ``{"without mixing": (detector, history), "with mixing": (detector, history)}``.

    Examples
    --------
    >>> pair = train_pair(train, val, epochs=4)       # doctest: +SKIP
    >>> det_without, history = pair["without mixing"]  # doctest: +SKIP
    """
    from helpers.models import train_detector

    if not train or not val:
        raise ValueError("train_pair needs training and validation recordings (both non-empty)")
    # both sets of copies before any training: making backgrounds takes memory for a moment,
    # and that moment costs less before TensorFlow's training memory has grown
    copies = {name: augmented_copies(train, seed=seed, mix_backgrounds=on, families=families, snr_db=snr_db)
              for name, on in (("without mixing", False), ("with mixing", True))}
    out = {}
    for name in list(copies):
        out[name] = train_detector(list(train), list(val), epochs=epochs, copies=0, extra=copies.pop(name),
                                   seed=seed, batch_size=batch_size, progress=progress)
    return out


# ---------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------
METRIC_LABELS = {"f1": "event F1 (onsets, 100 ms)", "precision": "precision", "recall": "recall",
                 "bpm_error_median": "median BPM error", "bpm_error_mean": "mean BPM error"}


def plot_vs_snr(table: pd.DataFrame, *, metric: str = "f1", line: str = "family", ax=None,
                title: str | None = None, styles: Mapping[str, dict] | None = None, legend: bool = True):
    """A score against SNR, one line per value of ``line`` (``"family"`` or ``"model"``).

    ``table`` is a :func:`sweep` table (pooled here with :func:`summarize_sweep`) or already a
    summary. ``metric``: ``f1``, ``precision``, ``recall``, ``bpm_error_median`` or
    ``bpm_error_mean`` (errors shown in %). ``styles`` maps a line's name to matplotlib
    keywords (e.g. ``{"shipped": {"color": "gray", "ls": "--"}}``).

    Examples
    --------
    >>> t = pd.DataFrame({"family": ["hum"] * 2, "snr_db": [0.0, 30.0], "tp": [1, 9], "fp": [0, 0],
    ...                   "fn": [9, 1], "bpm_error": [0.9, 0.1]})
    >>> ax = plot_vs_snr(t, metric="f1")
    >>> len(ax.lines)
    1
    """
    import matplotlib.pyplot as plt

    if metric not in METRIC_LABELS:
        raise ValueError(f"metric must be one of {sorted(METRIC_LABELS)}, not {metric!r}")
    summary = table if metric in table and "tp" not in table else summarize_sweep(table, by=[line, "snr_db"])
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    is_error = metric.startswith("bpm_error")
    n_lines = summary[line].nunique()
    colors = plt.get_cmap("tab20" if n_lines > 10 else "tab10").colors
    for k, (name, d) in enumerate(summary.groupby(line, sort=True)):
        d = d.groupby("snr_db", as_index=False)[metric].mean()
        values = d[metric] * 100 if is_error else d[metric]
        style = {"color": colors[k % len(colors)], **(styles or {}).get(str(name), {})}
        ax.plot(d["snr_db"], values, marker="o", ms=3, lw=1.2, label=str(name), **style)
    ax.set(xlabel="SNR (dB)", ylabel=METRIC_LABELS[metric] + (" (%)" if is_error else ""), title=title)
    ax.set_ylim(0, None if is_error else 1.02)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=7, ncols=2 if n_lines > 6 else 1)
    return ax
