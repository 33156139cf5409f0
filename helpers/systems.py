"""Every plop detector of the project behind one interface, for side-by-side evaluation.

A *system* turns mono 16 kHz audio into an :class:`Output`: the detected events and a
score per frame (larger = more plop-like) from which it decides. ``events_at(output,
threshold)`` re-decides at another threshold without running the system again, which is
what a precision–recall sweep needs. The systems:

=====================  ======================================================  ======================
name                   what it is                                              tuned on
=====================  ======================================================  ======================
energy counter         band level above the recording's median, hysteresis     train + val (threshold, gap)
librosa onsets         ``librosa.onset.onset_detect`` with its defaults        nothing
librosa onsets tuned   the same on a 10 ms hop, ``delta`` and ``wait`` tuned   train + val
GMM-HMM                :func:`helpers.autolabel.autolabel`, unsupervised       nothing
MFCC + LR              :class:`helpers.baselines.MfccBaseline`                 fitted on train, post-processing on val
CRNN float / int8      the shipped detector through LiteRT                     trained on train, post-processing on val
=====================  ======================================================  ======================

:func:`make_systems` builds them for a data set, :func:`run_systems` runs them over its
recordings, :func:`evaluation_tables` scores every system with
:func:`helpers.evaluate.evaluate_recordings`, and :func:`threshold_sweep` draws the
precision–recall trade-off of each.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from helpers.config import PLOP_LABEL, SR
from helpers.evaluate import WINDOW_S, pooled_onset_scores

HOP_S = 0.01
#: Length given to events of detectors that report onsets only (librosa), in seconds.
ONSET_EVENT_S = 0.1


@dataclass
class Output:
    """What a system made of one recording: ``events`` (``start``, ``end``, ``label`` and
    ``probability`` or ``confidence`` where known), one ``scores`` value per frame ``hop_s``
    apart, and whatever ``events_at`` needs to decide again (``state``)."""

    events: pd.DataFrame
    scores: np.ndarray
    hop_s: float
    state: Any = None
    seconds: float = 0.0


def _onset_events(onsets: np.ndarray, duration_s: float) -> pd.DataFrame:
    onsets = np.asarray(onsets, dtype=float)
    return pd.DataFrame({"start": onsets, "end": np.minimum(onsets + ONSET_EVENT_S, duration_s),
                         "label": PLOP_LABEL})


class System:
    """Base class: a name, :meth:`run` and :meth:`events_at`, the thresholds a sweep visits
    (``thresholds``) and the one the system decides at (``threshold``, its operating point)."""

    name: str = "system"
    thresholds: np.ndarray = np.linspace(0.05, 0.95, 19)

    @property
    def threshold(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def run(self, y: np.ndarray) -> Output:  # pragma: no cover - abstract
        raise NotImplementedError

    def events_at(self, out: Output, threshold: float) -> pd.DataFrame:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class EnergySystem(System):
    """The tuned energy-threshold counter (:mod:`helpers.baselines`); its score is the band
    level in dB above the recording's median."""

    thresholds = np.arange(2.0, 40.5, 1.0)

    def __init__(self, counter, *, name: str = "energy counter"):
        self.counter, self.name = counter, name

    @property
    def threshold(self) -> float:
        return self.counter.threshold_db

    def run(self, y: np.ndarray) -> Output:
        from helpers.baselines import band_energy_db

        level = band_energy_db(y, band=self.counter.band)
        out = Output(pd.DataFrame(), level, HOP_S)
        out.events = self.events_at(out, self.threshold)
        return out

    def events_at(self, out: Output, threshold: float) -> pd.DataFrame:
        from helpers.baselines import events_from_level

        return events_from_level(out.scores, threshold_db=float(threshold),
                                 hysteresis_db=self.counter.hysteresis_db, min_gap_s=self.counter.min_gap_s)


class LibrosaSystem(System):
    """``librosa.onset.onset_detect`` on ``librosa.onset.onset_strength``: the textbook
    onset detector (spectral flux of a mel spectrogram, then adaptive peak picking). Its
    score is the onset envelope scaled to 0..1 per recording, as ``onset_detect`` does, and
    its threshold is ``delta`` (how far a peak must rise above the local mean)."""

    thresholds = np.array([0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.13, 0.17, 0.22, 0.3, 0.4, 0.5, 0.65, 0.8])

    def __init__(self, *, hop_length: int = 512, delta: float = 0.07, wait_s: float = 0.03,
                 name: str = "librosa onsets"):
        self.hop_length, self.delta, self.wait_s, self.name = hop_length, delta, wait_s, name

    @property
    def threshold(self) -> float:
        return self.delta

    def _peaks(self, env: np.ndarray, delta: float) -> np.ndarray:
        import librosa

        # librosa's own peak-picking defaults (30 ms max, 100 ms averages); only delta and wait move
        return librosa.onset.onset_detect(onset_envelope=env, sr=SR, hop_length=self.hop_length, units="time",
                                          normalize=False, delta=float(delta),
                                          wait=self.wait_s * SR // self.hop_length)

    def run(self, y: np.ndarray) -> Output:
        import librosa

        env = librosa.onset.onset_strength(y=np.asarray(y, dtype=np.float32), sr=SR, hop_length=self.hop_length)
        env = env - env.min()  # onset_detect's normalize=True, done once so that a sweep reuses it
        env = env / (env.max() + librosa.util.tiny(env))
        out = Output(pd.DataFrame(), env, self.hop_length / SR, state=len(y) / SR)
        out.events = self.events_at(out, self.threshold)
        return out

    def events_at(self, out: Output, threshold: float) -> pd.DataFrame:
        return _onset_events(self._peaks(out.scores, threshold), out.state)


class HmmSystem(System):
    """The unsupervised GMM-HMM labeler; its score is each candidate event's confidence,
    placed on the candidate's onset frame, and its threshold ``min_confidence``."""

    thresholds = np.linspace(0.0, 0.95, 20)

    def __init__(self, *, name: str = "GMM-HMM", **options: Any):
        self.options, self.name = options, name

    @property
    def threshold(self) -> float:
        from helpers.autolabel import DEFAULTS

        return float(self.options.get("min_confidence", DEFAULTS["min_confidence"]))

    def run(self, y: np.ndarray) -> Output:
        from helpers.autolabel import autolabel

        res = autolabel(y, **self.options)
        n = len(y) // int(SR * HOP_S) + 1
        scores = np.zeros(n)
        # every candidate the HMM found, also in a recording flagged "no plop found" at the
        # default confidence: a lower threshold would have kept some of them
        cand = res.candidates if "confidence" in res.candidates else pd.DataFrame()
        if len(cand):
            idx = np.clip((cand["start"].to_numpy(float) / HOP_S).round().astype(int), 0, n - 1)
            np.maximum.at(scores, idx, cand["confidence"].to_numpy(float))
        return Output(res.events, scores, HOP_S, state=(cand, res.options, res.duration_s))

    def events_at(self, out: Output, threshold: float) -> pd.DataFrame:
        from helpers.autolabel import labels_at

        cand, options, duration = out.state
        if not len(cand):
            return out.events.iloc[:0]
        keep = labels_at(cand, options, min_confidence=float(threshold), duration_s=duration)
        ev = cand[keep]
        return pd.DataFrame({"start": ev["start"].to_numpy(float), "end": ev["end"].to_numpy(float),
                             "label": PLOP_LABEL, "confidence": ev["confidence"].to_numpy(float)})


class ProbabilitySystem(System):
    """A model with one probability per 10 ms frame (the CRNN, the MFCC baseline) and the
    hysteresis post-processing tuned for it; the sweep moves the ``on`` threshold and keeps
    the ratio of ``off`` to ``on``.

    With ``min_plausibility`` (``evaluate --strict``: the strict mode of ``detect``) every
    decision also drops the events below it (:func:`helpers.autolabel.keep_plausible`). To
    decide again at other thresholds the output then keeps the audio (``state``; 230 MB per
    hour): ``keep_audio=False`` saves that memory where only the system's own threshold is
    needed (the command line)."""

    thresholds = np.r_[0.02, np.linspace(0.05, 0.95, 19), 0.98, 0.995]

    def __init__(self, model, postprocess: dict, *, name: str, min_plausibility: float | None = None,
                 keep_audio: bool = True):
        self.model, self.postprocess, self.name = model, dict(postprocess), name
        self.min_plausibility, self.keep_audio = min_plausibility, keep_audio

    @property
    def threshold(self) -> float:
        return float(self.postprocess.get("on", 0.5))

    def run(self, y: np.ndarray) -> Output:
        probs = self.model.probabilities(y)
        strict = self.min_plausibility is not None
        out = Output(pd.DataFrame(), probs, HOP_S, state=y if strict and self.keep_audio else None)
        out.events = self._decide(probs, self.threshold, y)
        return out

    def events_at(self, out: Output, threshold: float) -> pd.DataFrame:
        if self.min_plausibility is not None and out.state is None:
            raise ValueError(f"{self.name}: this output holds no audio to measure plausibility "
                             "in; run the strict system with keep_audio=True to sweep its threshold")
        return self._decide(out.scores, threshold, out.state)

    def _decide(self, probs: np.ndarray, threshold: float, y: np.ndarray | None) -> pd.DataFrame:
        from helpers.events import probabilities_to_events

        p = dict(self.postprocess)
        on = p.get("on", 0.5)
        off = p.get("off") or on
        # the same off/on ratio at the new threshold; min() keeps float rounding from putting
        # off a hair above on (0.4 * 0.4 / 0.4 is 0.4000000000000001)
        p.update(on=float(threshold), off=min(float(threshold) * off / on, float(threshold)))
        events = probabilities_to_events(probs, hop_s=HOP_S, **p)
        if self.min_plausibility is None:
            return events
        from helpers.autolabel import keep_plausible

        return keep_plausible(y, events, self.min_plausibility)


# ---------------------------------------------------------------------------------------
# Building and tuning
# ---------------------------------------------------------------------------------------
def tune_librosa(signals, references, *, hop_length: int = 160,
                 deltas=LibrosaSystem.thresholds, waits=(0.03, 0.06, 0.1, 0.15)) -> tuple[LibrosaSystem, pd.DataFrame]:
    """Grid-search ``delta`` and ``wait`` of the librosa detector (on a 10 ms hop) for the best
    pooled onset F1 over labeled recordings; returns the tuned system and the grid."""
    base = LibrosaSystem(hop_length=hop_length)
    outs = [base.run(y) for y in signals]  # the envelope does not depend on delta or wait
    rows, best = [], None
    for wait in waits:
        sys_ = LibrosaSystem(hop_length=hop_length, wait_s=wait)
        for d in deltas:
            s = pooled_onset_scores([(ref, sys_.events_at(o, d)) for o, ref in zip(outs, references)])
            rows.append({"wait_s": wait, "delta": float(d), **s})
            if best is None or s["f1"] > best[0]:
                best = (s["f1"], wait, float(d))
    grid = pd.DataFrame(rows)
    return LibrosaSystem(hop_length=hop_length, wait_s=best[1], delta=best[2], name="librosa onsets tuned"), grid


@dataclass
class Systems:
    """The systems of :func:`make_systems`, in the order of the tables, and how each was made."""

    systems: list[System]
    notes: dict = field(default_factory=dict)

    def __iter__(self):
        return iter(self.systems)

    def describe(self) -> pd.DataFrame:
        """One row per system: how it was set up (``settings``) and how long that took."""
        rows = []
        for s in self.systems:
            note = {k: v for k, v in self.notes.get(s.name, {}).items() if k not in ("model", "setup_seconds")}
            if isinstance(note.get("postprocess"), dict):
                note.update({k: v for k, v in note.pop("postprocess").items()})
            text = ", ".join(f"{k} {round(v, 3) if isinstance(v, float) else v}" for k, v in note.items())
            rows.append({"system": s.name, "settings": text,
                         "setup_seconds": self.notes.get(s.name, {}).get("setup_seconds", 0.0)})
        return pd.DataFrame(rows).set_index("system")

    def __getitem__(self, name: str) -> System:
        for s in self.systems:
            if s.name == name:
                return s
        raise KeyError(f"no system named {name!r}; have {[s.name for s in self.systems]}")


#: The systems :func:`make_systems` builds, in table order.
SYSTEM_NAMES = ("energy counter", "librosa onsets", "librosa onsets tuned", "GMM-HMM", "MFCC + LR",
                "CRNN float", "CRNN int8")


def make_systems(manifest: pd.DataFrame, *, model=None, include=SYSTEM_NAMES, progress: bool = False,
                 tune: pd.DataFrame | None = None) -> Systems:
    """Every system of the project, tuned on the ``train`` and ``val`` recordings of
    ``manifest`` where it needs tuning (never on ``test``).

    ``model`` is the CRNN folder (default: the shipped model). The MFCC baseline comes from
    :func:`helpers.baselines.cached_mfcc_baseline` (fitted once per data set), its
    post-processing tuned on the ``val`` recordings and those of ``tune``, as the shipped
    CRNN's is (:func:`helpers.datasets.synthetic_validation_extra`).

    Examples
    --------
    >>> systems = make_systems(datasets.synthetic())   # doctest: +SKIP
    >>> [s.name for s in systems]                       # doctest: +SKIP
    """
    from helpers.baselines import EnergyCounter, cached_mfcc_baseline, tune_energy_counter
    from helpers.datasets import load_all
    from helpers.models import Detector

    unknown = sorted(set(include) - set(SYSTEM_NAMES))
    if unknown:
        raise ValueError(f"unknown system(s) {unknown}; choose from {list(SYSTEM_NAMES)}")
    notes, out = {}, []
    tune_m = manifest[manifest["split"].isin(["train", "val"])]
    needs_tuning = {"energy counter", "librosa onsets tuned"} & set(include)
    ys, refs = load_all(tune_m, progress=progress) if needs_tuning and len(tune_m) else ([], [])
    for name in include:
        t0 = time.perf_counter()
        if name == "energy counter":
            counter = tune_energy_counter(ys, refs)[0] if ys else EnergyCounter()
            out.append(EnergySystem(counter))
            notes[name] = {"threshold_db": counter.threshold_db, "min_gap_s": counter.min_gap_s}
        elif name == "librosa onsets":
            out.append(LibrosaSystem())
            notes[name] = {"hop_length": 512, "delta": 0.07, "wait_s": 0.03}
        elif name == "librosa onsets tuned":
            sys_ = tune_librosa(ys, refs)[0] if ys else LibrosaSystem(hop_length=160, name=name)
            out.append(sys_)
            notes[name] = {"hop_length": sys_.hop_length, "delta": sys_.delta, "wait_s": sys_.wait_s}
        elif name == "GMM-HMM":
            out.append(HmmSystem())
            notes[name] = {"options": "defaults"}
        elif name == "MFCC + LR":
            base = cached_mfcc_baseline(manifest, progress=progress, tune=tune)
            out.append(ProbabilitySystem(base, base.postprocess, name=name))
            notes[name] = {"postprocess": base.postprocess}
        else:
            det = Detector.load(model, backend=name.split()[-1])
            out.append(ProbabilitySystem(det, det.config.postprocess, name=name))
            notes[name] = {"model": str(det.path), "postprocess": det.config.postprocess}
        notes[name]["setup_seconds"] = round(time.perf_counter() - t0, 1)
    return Systems(out, notes)


# ---------------------------------------------------------------------------------------
# Running and scoring
# ---------------------------------------------------------------------------------------
@dataclass
class Run:
    """Every system's :class:`Output` on every recording of a manifest (same order)."""

    manifest: pd.DataFrame
    references: list[pd.DataFrame]
    durations: list[float]
    outputs: dict[str, list[Output]]
    #: recordings that could not be read: ``(recording, reason)``
    errors: list[tuple[str, str]] = field(default_factory=list)

    def seconds(self, name: str) -> float:
        """Processing time of system ``name`` over all recordings."""
        return float(sum(o.seconds for o in self.outputs[name]))


def run_systems(systems, manifest: pd.DataFrame, *, progress: bool = False,
                skip_errors: bool = False) -> Run:
    """Run every system over every recording of ``manifest`` (each recording loaded once).

    With ``skip_errors`` a recording that cannot be read is left out of the run and listed
    in ``Run.errors`` with the reason; otherwise the error is raised.
    """
    from tqdm.auto import tqdm

    from helpers.audio import AudioError
    from helpers.datasets import load_recording

    systems = list(systems)
    refs, durs, outputs, kept, errors = [], [], {s.name: [] for s in systems}, [], []
    for i, (_, row) in enumerate(tqdm(manifest.iterrows(), total=len(manifest), desc="running systems",
                                      disable=not progress)):
        try:
            y, ev = load_recording(row)
        except (AudioError, OSError, ValueError) as e:
            if not skip_errors:
                raise
            errors.append((str(row["recording"]), str(e)))
            continue
        kept.append(i)
        refs.append(ev)
        durs.append(len(y) / SR)
        for s in systems:
            t0 = time.perf_counter()
            o = s.run(y)
            o.seconds = time.perf_counter() - t0
            outputs[s.name].append(o)
    return Run(manifest.iloc[kept].reset_index(drop=True), refs, durs, outputs, errors)


def evaluation_tables(run: Run) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every system of ``run``: per recording (one row per system × recording, with
    the manifest's ``split``, ``snr_db``, ``backgrounds``, ``airlock`` and ``n_confusers``,
    beside the measured ``duration_s``) and per system ×
    split (the pooled figures of :func:`helpers.evaluate.evaluate_recordings`, plus the
    real-time factor ``rtf``: processing seconds per second of audio)."""
    from helpers.evaluate import _evaluate, summarize_evaluation

    m = run.manifest
    extra = [c for c in ("split", "snr_db", "backgrounds", "airlock", "n_confusers") if c in m]
    per, overall = [], []
    splits = list(dict.fromkeys(m["split"])) if "split" in m else []
    for name, outs in run.outputs.items():
        table, windows = _evaluate(run.references, [o.events for o in outs], run.durations,
                                   names=m["recording"].tolist(), scores=[o.scores for o in outs],
                                   hop_s=outs[0].hop_s if outs else HOP_S, window_s=WINDOW_S)
        table.insert(0, "system", name)
        for c in extra:  # row i is recording i of the manifest
            table[c] = m[c].to_numpy()
        per.append(table)
        for split in splits + ["all"]:
            idx = np.arange(len(m)) if split == "all" else np.flatnonzero(m["split"] == split)
            if not len(idx):
                continue
            o = summarize_evaluation(table.iloc[idx], [windows[i] for i in idx])
            secs = sum(outs[i].seconds for i in idx)
            overall.append({"system": name, "split": split, **o,
                            "rtf": secs / max(sum(run.durations[i] for i in idx), 1e-9)})
    return pd.concat(per, ignore_index=True), pd.DataFrame(overall)


def breakdown(per: pd.DataFrame, by: str, *, split: str | None = "test", value: str = "f1") -> pd.DataFrame:
    """A systems × groups table of pooled onset scores (``value``: ``f1``, ``precision`` or
    ``recall``) from the per-recording table of :func:`evaluation_tables`; ``by`` is a
    column (``"split"``, ``"airlock"``, ``"backgrounds"``) or ``"snr band"``
    (:func:`helpers.evaluate.scores_by`). Rows keep the systems' order.

    Examples
    --------
    >>> per = pd.DataFrame({"system": ["a", "a"], "split": ["test", "test"], "tp": [9, 1],
    ...                     "fp": [1, 0], "fn": [0, 1], "airlock": ["s", "3p"]})
    >>> breakdown(per, "airlock").round(2).to_dict("index")
    {'a': {'3p': 0.67, 's': 0.95}}
    """
    from helpers.evaluate import scores_by

    t = per if split is None or by == "split" else per[per["split"] == split]
    rows = {}
    for name in dict.fromkeys(t["system"]):
        g = scores_by(t[t["system"] == name], by)
        rows[name] = g.set_index(by)[value]
    out = pd.DataFrame(rows).T
    out.columns.name = by
    return out


def threshold_sweep(system: System, outputs: list[Output], references: list[pd.DataFrame], *,
                    collar: float = 0.1) -> pd.DataFrame:
    """Pooled onset precision and recall of ``system`` at each of its thresholds.

    Returns ``threshold``, ``precision``, ``recall``, ``f1`` (one row per threshold, sorted by
    recall). :func:`sweep_ap` turns it into one threshold-independent number.
    """
    rows = []
    for t in system.thresholds:
        s = pooled_onset_scores([(ref, system.events_at(o, t)) for o, ref in zip(outputs, references)],
                                collar=collar)
        rows.append({"system": system.name, "threshold": float(t), **s})
    return pd.DataFrame(rows).sort_values(["recall", "precision"]).reset_index(drop=True)


def sweeps(systems, run: Run, *, split: str | None = None) -> tuple[dict, dict]:
    """:func:`threshold_sweep` of every system over the recordings of ``run`` (those of one
    ``split`` when given), and each sweep's :func:`sweep_ap`: two dicts keyed by system name."""
    idx = np.arange(len(run.references)) if split is None else np.flatnonzero(run.manifest["split"] == split)
    refs = [run.references[i] for i in idx]
    out = {s.name: threshold_sweep(s, [run.outputs[s.name][i] for i in idx], refs) for s in systems}
    return out, {name: sweep_ap(sw) for name, sw in out.items()}


def sweep_ap(sweep: pd.DataFrame) -> float:
    """Average precision of an event-based precision–recall sweep: the area under the
    curve's upper envelope (precision interpolated as the best at any higher recall), from
    recall 0 to the sweep's highest recall — a score that does not depend on one threshold.

    Examples
    --------
    >>> sweep_ap(pd.DataFrame({"recall": [0.5, 1.0], "precision": [1.0, 0.5]}))
    0.75
    """
    r = sweep["recall"].to_numpy(float)
    p = sweep["precision"].to_numpy(float)
    order = np.argsort(r)
    r, p = r[order], p[order]
    p_env = np.maximum.accumulate(p[::-1])[::-1]
    return float(np.sum(np.diff(np.r_[0.0, r]) * p_env))


def errors_table(run: Run, name: str, *, collar: float = 0.1) -> pd.DataFrame:
    """Every false positive and false negative of system ``name`` over the recordings of
    ``run`` (:func:`helpers.evaluate.detection_errors`), with the recording, ranked: false
    positives by the system's confidence in them, misses by how close the system came."""
    from helpers.evaluate import detection_errors

    parts = []
    for i, o in enumerate(run.outputs[name]):
        e = detection_errors(run.references[i], o.events, collar=collar, scores=o.scores, hop_s=o.hop_s)
        e.insert(0, "recording", run.manifest.loc[i, "recording"])
        e["row"] = i
        parts.append(e)
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return out.sort_values(["kind", "score"], ascending=[False, False], kind="stable",
                           na_position="last").reset_index(drop=True)


__all__ = ["HOP_S", "SYSTEM_NAMES", "EnergySystem", "HmmSystem", "LibrosaSystem", "Output",
           "ProbabilitySystem", "Run", "System", "Systems", "breakdown", "errors_table", "evaluation_tables",
           "make_systems", "run_systems", "sweep_ap", "sweeps", "threshold_sweep", "tune_librosa"]
