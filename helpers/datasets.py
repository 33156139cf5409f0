"""One manifest for every source of recordings, splits by recording, and caches.

A *manifest* is a DataFrame with one row per recording and at least the columns
:data:`MANIFEST_COLUMNS`:

========== ==============================================================================
recording  the file stem, which identifies the recording
path       the audio file (absolute in the DataFrame, relative to the folder on disk)
labels     the Audacity label file, or empty when the recording has no labels yet
duration_s length in seconds
source     ``synthetic``, ``own`` or ``youtube``
split      ``train``, ``val`` or ``test``: whole recordings, never frames of one recording
           in two splits
========== ==============================================================================

The synthetic manifest adds the generation parameters (SNR, rate, background families,
airlock type, …), see :mod:`helpers.synth`.

Own recordings follow one convention: a folder of audio files, each with an Audacity label
file of the same stem and the extension ``.txt`` beside it (``brew1.wav`` + ``brew1.txt``).
:func:`validate_recordings` reports what is wrong with such a folder before training.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import synth
from helpers.audio import AudioError, audio_info, find_audio, load_audio, no_samples
from helpers.config import SR, Profile, profile as get_profile
from helpers.labels import LabelError, empty_events, labels_path_for, read_labels

MANIFEST_COLUMNS = ("recording", "path", "labels", "duration_s", "source", "split")
SPLITS = ("train", "val", "test")


# ---------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------
def _stable_key(name: str, seed: int) -> str:
    return hashlib.sha1(f"{seed}:{name}".encode()).hexdigest()


def split_by_recording(recordings: list[str] | pd.Series, *, seed: int = 0,
                       fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> list[str]:
    """Assign each recording to ``train``, ``val`` or ``test``.

    The order comes from a hash of the name, so a recording keeps its split when others are
    added or removed (mostly) and the result does not depend on the order given. With three
    or more recordings, validation and test get at least one each.

    Examples
    --------
    >>> split_by_recording(["a", "b", "c", "d", "e"])
    ['val', 'train', 'train', 'train', 'test']
    """
    names = list(recordings)
    n = len(names)
    if len(set(names)) != n:
        raise ValueError("recording names must be unique to split by recording")
    if not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise ValueError(f"fractions must be non-negative and sum to 1, got {fractions}")
    order = sorted(range(n), key=lambda i: _stable_key(names[i], seed))
    n_val = int(round(fractions[1] * n))
    n_test = int(round(fractions[2] * n))
    if n >= 3:
        n_val = max(n_val, 1 if fractions[1] > 0 else 0)
        n_test = max(n_test, 1 if fractions[2] > 0 else 0)
    out = ["train"] * n
    for k, i in enumerate(order):
        if k < n_test:
            out[i] = "test"
        elif k < n_test + n_val:
            out[i] = "val"
    return out


# ---------------------------------------------------------------------------------------
# The synthetic set (the default)
# ---------------------------------------------------------------------------------------
def _absolute(manifest: pd.DataFrame, folder: Path) -> pd.DataFrame:
    m = manifest.copy()
    for col in ("path", "labels"):
        m[col] = [str(folder / p) if isinstance(p, str) and p else "" for p in m[col]]
    return m


def read_manifest(folder: str | os.PathLike) -> pd.DataFrame:
    """Read ``folder/manifest.csv`` with paths made absolute."""
    folder = Path(folder)
    path = folder / "manifest.csv"
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no manifest here. Make one with `python -m helpers synth --out {folder}` "
            "or, for your own recordings, use helpers.datasets.own_recordings(folder)."
        )
    # identifiers stay text: a stem like "001" or a cache key like "52235e606084" must not
    # become a number
    m = pd.read_csv(path, keep_default_na=False, na_values=[""],
                    dtype={c: str for c in ("recording", "path", "labels", "config")})
    missing = [c for c in MANIFEST_COLUMNS if c not in m.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; expected at least {MANIFEST_COLUMNS}")
    m["labels"] = m["labels"].fillna("")
    return _absolute(m, folder)


def synthetic(*, profile: str | Profile | None = None, folder: str | os.PathLike | None = None,
              progress: bool = True, workers: int | None = None) -> pd.DataFrame:
    """The synthetic data set of the current profile, generated when missing.

    The set lives in ``data/synthetic`` (``data/synthetic-quick`` for the quick profile, or
    ``folder``). It is regenerated when its manifest is missing, when it was made with other
    settings or another generator version, or when a file has disappeared. ``workers``
    processes make it (default: one per core).

    Examples
    --------
    >>> m = synthetic(profile="quick", progress=False)  # doctest: +SKIP
    >>> m.groupby("split").size()                       # doctest: +SKIP
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    folder = Path(folder) if folder is not None else prof.synth_dir
    return cached_synthetic(folder, recordings=prof.synth_recordings,
                            duration_s=prof.synth_duration_s, seed=prof.synth_seed,
                            progress=progress, workers=workers)


def cached_synthetic(folder: str | os.PathLike, *, recordings: int, duration_s: float, seed: int,
                     progress: bool = True, **options) -> pd.DataFrame:
    """The synthetic set in ``folder`` made with these settings, generated when missing,
    made with other settings or another generator version, or when a file has gone.
    ``options`` go to :func:`helpers.synth.make_dataset` (``airlocks``, ``backgrounds``,
    ``prefix``)."""
    folder = Path(folder)
    choices = {k: v for k, v in options.items() if k in ("airlocks", "backgrounds")}
    key = synth.config_key(recordings=recordings, duration_s=duration_s, seed=seed, **choices)
    try:
        m = read_manifest(folder)
        fresh = (m["config"].astype(str) == key).all() and len(m) == recordings
        fresh = fresh and all(Path(p).exists() for p in list(m["path"]) + list(m["labels"]))
    except (FileNotFoundError, ValueError, KeyError):
        fresh = False
    if fresh:
        return m
    synth.make_dataset(folder, recordings=recordings, duration_s=duration_s, seed=seed,
                       progress=progress, **options)
    return read_manifest(folder)


def synthetic_extra(prof: Profile, role: str, *, progress: bool = True, workers: int | None = None,
                    folder: str | os.PathLike | None = None, seed: int | None = None,
                    prefix: str | None = None, **choices) -> pd.DataFrame:
    """One of the profile's extra synthetic sets (``role``: ``"train"``, ``"val"`` or
    ``"test"``; its size from the profile's ``<role>_extra_*`` fields), every recording in that
    split; empty when the profile has none. ``folder``, ``seed``, ``prefix`` and ``choices``
    (``airlocks``, ``backgrounds``) make another set of the same size, as the held-out
    estimate does with the sounds it has seen."""
    n = getattr(prof, f"{role}_extra_recordings")
    if n < 1:
        return pd.DataFrame(columns=list(MANIFEST_COLUMNS))
    m = cached_synthetic(folder if folder is not None else prof.extra_dir(role), recordings=n,
                         duration_s=getattr(prof, f"{role}_extra_duration_s"),
                         seed=seed if seed is not None else getattr(prof, f"{role}_extra_seed"),
                         progress=progress, prefix=prefix or role, workers=workers, **choices)
    m["split"] = role
    return m


def synthetic_training_extra(*, profile: str | Profile | None = None, progress: bool = True,
                             workers: int | None = None) -> pd.DataFrame:
    """Extra synthetic recordings (all ``train``) that only the detector trains on: more
    airlocks, rooms and backgrounds than the 36 training recordings of the main set. Cached
    in ``data/synthetic-train`` and regenerated like :func:`synthetic`."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    return synthetic_extra(prof, "train", progress=progress, workers=workers,
                           airlocks=tuple(prof.train_extra_airlocks))


def synthetic_validation_extra(*, profile: str | Profile | None = None, progress: bool = True,
                               workers: int | None = None) -> pd.DataFrame:
    """Extra synthetic validation recordings (all ``val``; 60 minutes in the full profile)
    that the detectors' post-processing thresholds are tuned on beside the main set's
    validation split. Twelve recordings are too few to set thresholds on: one loud or quiet
    recording moves them. Nothing trains on these. Cached in ``data/synthetic-val``."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    return synthetic_extra(prof, "val", progress=progress, workers=workers)


def synthetic_test_extra(*, profile: str | Profile | None = None, progress: bool = True,
                         workers: int | None = None) -> pd.DataFrame:
    """A larger synthetic test set (all ``test``; 120 fresh recordings of 60 s in the full
    profile) that nothing trains or tunes on. The main set's test split has 12 recordings, so
    one hard recording moves its F1 by several points; ``make bench`` scores every system on
    this set too. Cached in ``data/synthetic-test``."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    return synthetic_extra(prof, "test", progress=progress, workers=workers)


# ---------------------------------------------------------------------------------------
# Own recordings
# ---------------------------------------------------------------------------------------
def _duration_s(path: Path) -> float:
    """Length of an audio file in seconds, decoding it when the container does not say
    (streamed WebM/Matroska, e.g. browser recordings)."""
    info = audio_info(path)
    if info["duration_s"] is not None:
        return float(info["duration_s"])
    return len(load_audio(path, sr=None)) / info["sample_rate"]


#: Label texts that say "plop" (case-insensitive); an empty text reads as ``p``.
PLOP_TEXTS = ("p", "plop", "plops", "bubble", "b")
#: :func:`validate_recordings`' problem for labels with another text (training and scoring warn)
NOT_PLOPS = "labels that are not plops?"


def validate_recordings(folder: str | os.PathLike, *, overlap_tolerance_s: float = 0.0
                        ) -> pd.DataFrame:
    """Check a folder of own recordings before training.

    Reports, one row per problem (``recording``, ``path``, ``severity``, ``problem``,
    ``detail``): unreadable or empty audio, audio without a label file, unreadable label files,
    labels past the end of the audio, overlapping events, zero-length (point) events and
    labels whose text is not a plop's (:data:`PLOP_TEXTS`: every label counts as a plop). Errors stop
    a recording from being used; warnings are worth a look in Audacity.

    Examples
    --------
    >>> validate_recordings("data/recordings")  # doctest: +SKIP
      recording  severity       problem                          detail
    0     brew2     error     no labels  brew2.txt not found beside brew2.wav
    """
    rows: list[dict] = []

    def report(f: Path, severity: str, problem: str, detail: str) -> None:
        rows.append({"recording": f.stem, "path": str(f), "severity": severity,
                     "problem": problem, "detail": detail})

    files = find_audio(folder)
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            report(f, "error", "duplicate name",
                   f"{stems[f.stem].name} has the same stem; rename one (the stem identifies a recording)")
            continue
        stems[f.stem] = f
        try:
            duration = _duration_s(f)
        except (AudioError, OSError) as e:
            report(f, "error", "unreadable audio", str(e))
            continue
        if duration <= 0:
            report(f, "error", "unreadable audio", str(no_samples(f)))
            continue
        lab = labels_path_for(f)
        if not lab.exists():
            report(f, "error", "no labels",
                   f"{lab.name} not found beside {f.name}: label it in Audacity (or run "
                   f"`python -m helpers autolabel`) and export the labels with the same stem")
            continue
        try:
            ev = read_labels(lab)
        except (LabelError, OSError, UnicodeDecodeError) as e:
            report(f, "error", "unreadable labels", str(e))
            continue
        past = ev[ev["end"] > duration + 1e-3]
        if len(past):
            report(f, "error", "labels past the end",
                   f"{len(past)} events end after the audio ({duration:.2f} s), first at "
                   f"{past['start'].iloc[0]:.2f} s: were the labels made for another file?")
        zero = ev[ev["end"] <= ev["start"]]
        if len(zero):
            report(f, "warning", "zero-length events",
                   f"{len(zero)} point labels (start = end), first at {zero['start'].iloc[0]:.3f} s; "
                   "they count as plops with the plop length of the model")
        if len(ev) > 1:
            s, e = ev["start"].to_numpy(), ev["end"].to_numpy()
            # compare with the latest end so far: a long event can cover several later ones
            ov = np.flatnonzero(s[1:] < np.maximum.accumulate(e)[:-1] - overlap_tolerance_s)
            if len(ov):
                report(f, "warning", "overlapping events",
                       f"{len(ov)} events start before an earlier one ends, first at "
                       f"{s[ov[0] + 1]:.3f} s; split or merge them in Audacity")
        if len(ev) == 0:
            report(f, "warning", "no events", "the label file is empty: no plops in this recording?")
        other = ev["label"][~ev["label"].astype(str).str.strip().str.lower().isin(PLOP_TEXTS)]
        if len(other):
            kinds = ", ".join(f"{text!r} ×{n}" for text, n in other.value_counts().head(3).items())
            report(f, "warning", NOT_PLOPS,
                   f"{len(other)} labels have another text ({kinds}); every label counts as a plop, "
                   "whatever its text: delete the labels of other sounds")
    folders = [Path(folder)] if Path(folder).is_dir() else []
    for d in folders:
        for lab in sorted(d.rglob("*.txt")):
            if lab.stem not in stems and not lab.name.startswith(".") and lab.parent == d:
                report(lab, "warning", "labels without audio",
                       f"{lab.name} has no audio file of the same stem beside it: a typo in a name?")
    return pd.DataFrame(rows, columns=["recording", "path", "severity", "problem", "detail"])


def own_recordings(folder: str | os.PathLike, *, seed: int = 0, require_labels: bool = True,
                   fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> pd.DataFrame:
    """Manifest of a folder of own recordings (audio + same-stem ``.txt`` labels).

    Recordings with an error in :func:`validate_recordings` are left out (and reported as
    a warning on stderr); with ``require_labels=False`` recordings without labels are kept
    with an empty ``labels`` field (for example to auto-label or detect them).
    """
    import sys

    folder = Path(folder)
    report = validate_recordings(folder)
    bad = report[report["severity"] == "error"]
    if not require_labels:
        bad = bad[bad["problem"] != "no labels"]
    skip = set(bad["path"])
    for r in bad.itertuples():
        print(f"skipping {r.path}: {r.problem}: {r.detail}", file=sys.stderr)
    for r in report[report["problem"] == NOT_PLOPS].itertuples():
        print(f"warning: {r.path}: {r.detail}", file=sys.stderr)
    rows = []
    for f in find_audio(folder):
        if str(f) in skip:
            continue
        lab = labels_path_for(f)
        rows.append({"recording": f.stem, "path": str(f),
                     "labels": str(lab) if lab.exists() else "",
                     "duration_s": round(_duration_s(f), 3),
                     "source": "own"})
    m = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS[:-1]))
    m["split"] = split_by_recording(m["recording"], seed=seed, fractions=fractions)
    return m


def youtube(folder: str | os.PathLike | None = None, *, seed: int = 0) -> pd.DataFrame:
    """Manifest of the downloaded YouTube sections in ``data/youtube`` (labels where a
    same-stem ``.txt`` exists, for example from auto-labeling). Empty when nothing has been
    downloaded (offline)."""
    from helpers.config import data_dir

    folder = Path(folder) if folder is not None else data_dir() / "youtube"
    if not folder.exists():
        return pd.DataFrame(columns=list(MANIFEST_COLUMNS))
    m = own_recordings(folder, seed=seed, require_labels=False)
    m["source"] = "youtube"
    return m


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------
def load_recording(row: pd.Series | dict, *, sr: int = SR) -> tuple[np.ndarray, pd.DataFrame]:
    """Audio (mono float32 at ``sr``) and events of one manifest row.

    Examples
    --------
    >>> m = synthetic(profile="quick", progress=False)  # doctest: +SKIP
    >>> y, events = load_recording(m.iloc[0])           # doctest: +SKIP
    """
    y = load_audio(row["path"], sr=sr)
    lab = row.get("labels", "") if hasattr(row, "get") else row["labels"]
    events = read_labels(lab) if isinstance(lab, str) and lab else empty_events()
    return y, events


class Recordings(Sequence):
    """The ``(audio, events)`` pairs of a manifest's rows, read from disk each time one is
    asked for (:func:`load_recording`), so that only one recording is in memory at a time.

    A sequence: ``len``, indexing and iteration, in the manifest's order, as often as needed
    (each pass reads the files again). Training reads its recordings this way; holding an hour
    and a half of audio at once took notebook 05 close to Binder's 2 GB. For example
    ``Recordings(manifest[manifest["split"] == "train"])[0]`` is the first training recording's
    ``(audio, events)``.
    """

    def __init__(self, manifest: pd.DataFrame, *, sr: int = SR):
        self._rows = manifest.reset_index(drop=True)
        self._sr = sr

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: int) -> tuple[np.ndarray, pd.DataFrame]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"recording {i} of {len(self)}")
        return load_recording(self._rows.iloc[i], sr=self._sr)

    def __iter__(self) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
        for _, row in self._rows.iterrows():
            yield load_recording(row, sr=self._sr)


def load_all(manifest: pd.DataFrame, *, sr: int = SR, progress: bool = False
             ) -> tuple[list[np.ndarray], list[pd.DataFrame]]:
    """Audio and events of every row of a manifest, in order."""
    from tqdm.auto import tqdm

    ys, evs = [], []
    for y, ev in tqdm(Recordings(manifest, sr=sr), total=len(manifest), desc="loading", disable=not progress):
        ys.append(y)
        evs.append(ev)
    return ys, evs


def summarize(*manifests: pd.DataFrame) -> pd.DataFrame:
    """One row per source and split: recordings, labeled recordings, minutes and plops
    (counted from the label files).

    Examples
    --------
    >>> summarize(synthetic(profile="quick", progress=False))  # doctest: +SKIP
    """
    frames = [m for m in manifests if m is not None and len(m)]
    if not frames:
        return pd.DataFrame(columns=["source", "split", "recordings", "labeled", "minutes", "plops"])
    m = pd.concat(frames, ignore_index=True)
    plops = [len(read_labels(p)) if isinstance(p, str) and p else 0 for p in m["labels"]]
    m = m.assign(plops=plops, labeled=[bool(isinstance(p, str) and p) for p in m["labels"]])
    out = m.groupby(["source", "split"], sort=True).agg(
        recordings=("recording", "size"), labeled=("labeled", "sum"),
        minutes=("duration_s", lambda s: round(float(s.sum()) / 60, 1)), plops=("plops", "sum"))
    return out.reset_index()
