"""Every figure that takes more than three lines.

Functions draw on a given ``ax`` (or make a figure) and return the axes or figure, so the
notebooks stay short. Nothing here changes matplotlib's global style.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.config import SR
from helpers.features import HOP_S, log_mel

EVENT_COLOR = "tab:orange"


def _axes(ax, figsize=(10, 3)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def mark_events(ax, events: pd.DataFrame | None, *, color: str = EVENT_COLOR, alpha: float = 0.25,
                label: str = "labeled plop") -> None:
    """Shade each event's span (and a line at its onset) on ``ax``."""
    if events is None or len(events) == 0:
        return
    for i, (s, e) in enumerate(zip(events["start"], events["end"])):
        ax.axvspan(s, max(e, s + 0.01), color=color, alpha=alpha, lw=0,
                   label=label if i == 0 else None)
        ax.axvline(s, color=color, lw=0.8)


def waveform(y: np.ndarray, *, sr: int = SR, events: pd.DataFrame | None = None, ax=None,
             title: str | None = None):
    """The waveform with events shaded."""
    ax = _axes(ax)
    t = np.arange(len(y)) / sr
    step = max(1, len(y) // 20000)  # enough points to look right, few enough to be fast
    ax.plot(t[::step], y[::step], lw=0.5, color="tab:blue")
    mark_events(ax, events)
    ax.set(xlabel="time (s)", ylabel="amplitude", xlim=(0, len(y) / sr))
    if title:
        ax.set_title(title)
    return ax


def spectrogram(y: np.ndarray, *, sr: int = SR, events: pd.DataFrame | None = None, ax=None,
                kind: str = "mel", title: str | None = None, vmin_db: float = -80.0,
                fmax: float | None = None):
    """A spectrogram (``kind="linear"`` Hz axis, or ``"mel"``) with events marked on top.

    The colour scale runs from ``vmin_db`` below the loudest bin to the loudest bin.
    """
    import librosa
    import librosa.display

    ax = _axes(ax)
    hop = int(HOP_S * sr)
    if kind == "mel":
        S = log_mel(y, sr=sr, n_mels=96, fmax=fmax)
        img = librosa.display.specshow(S, sr=sr, hop_length=hop, x_axis="time", y_axis="mel",
                                       ax=ax, vmin=S.max() + vmin_db, vmax=S.max(), fmax=fmax or sr / 2,
                                       cmap="magma")
    elif kind == "linear":
        D = np.abs(librosa.stft(np.asarray(y, dtype=np.float32), n_fft=512, hop_length=hop)) ** 2
        S = librosa.power_to_db(D, amin=1e-10, top_db=None)
        img = librosa.display.specshow(S, sr=sr, hop_length=hop, x_axis="time", y_axis="hz",
                                       ax=ax, vmin=S.max() + vmin_db, vmax=S.max(), cmap="magma")
    else:
        raise ValueError(f"kind must be 'mel' or 'linear', not {kind!r}")
    if events is not None and len(events):
        top = ax.get_ylim()[1]
        for s, e in zip(events["start"], events["end"]):
            ax.plot([s, max(e, s + 0.01)], [top * 0.97] * 2, color="cyan", lw=4,
                    solid_capstyle="butt")
            ax.axvline(s, color="cyan", lw=0.6, alpha=0.7)
    ax.set_xlabel("time (s)")
    if title:
        ax.set_title(title)
    return ax, img


def overview(y: np.ndarray, *, sr: int = SR, events: pd.DataFrame | None = None,
             title: str | None = None, start: float = 0.0, end: float | None = None):
    """Waveform, linear spectrogram and mel spectrogram of ``y[start:end]``, stacked."""
    a, b = int(start * sr), int((end or len(y) / sr) * sr)
    seg = y[a:b]
    ev = None
    if events is not None:
        ev = events[(events["end"] > start) & (events["start"] < (end or np.inf))].copy()
        ev[["start", "end"]] -= start
    fig, axes = plt.subplots(3, 1, figsize=(11, 7), sharex=True, layout="constrained")
    waveform(seg, sr=sr, events=ev, ax=axes[0], title=title)
    spectrogram(seg, sr=sr, events=ev, ax=axes[1], kind="linear")
    spectrogram(seg, sr=sr, events=ev, ax=axes[2], kind="mel")
    for ax in axes[:2]:
        ax.set_xlabel("")
    axes[0].legend(loc="upper right", fontsize=8)
    return fig


def snippet_grid(snippets: Sequence[tuple[str, np.ndarray]], *, sr: int = SR, ncols: int = 4,
                 fmax: float | None = None, title: str | None = None):
    """Small mel spectrograms side by side, one per ``(title, audio)`` pair, on one colour
    scale (so loudness compares too)."""
    n = len(snippets)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.8 * ncols, 2.3 * nrows), squeeze=False,
                             layout="constrained")
    specs = [log_mel(y, sr=sr, n_mels=64, fmax=fmax) for _, y in snippets]
    vmax = max(float(s.max()) for s in specs) if specs else 0.0
    import librosa.display

    for ax, (name, _), S in zip(axes.flat, snippets, specs):
        librosa.display.specshow(S, sr=sr, hop_length=int(HOP_S * sr), x_axis="time",
                                 y_axis="mel", ax=ax, vmin=vmax - 80, vmax=vmax, cmap="magma",
                                 fmax=fmax or sr / 2)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.xaxis.set_major_locator(plt.MaxNLocator(3))
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return fig


def event_histograms(events: Sequence[pd.DataFrame]):
    """Histograms of plop durations and of the intervals between consecutive plops."""
    durations = np.concatenate([(e["end"] - e["start"]).to_numpy() for e in events if len(e)])
    intervals = np.concatenate([np.diff(e["start"].to_numpy()) for e in events if len(e) > 1])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), layout="constrained")
    axes[0].hist(durations * 1000, bins=40, color="tab:blue")
    axes[0].set(xlabel="plop duration (ms)", ylabel="plops", title="How long is a plop?")
    axes[1].hist(intervals, bins=np.geomspace(0.1, max(60, intervals.max()), 50), color="tab:green")
    axes[1].set_xscale("log")
    axes[1].set(xlabel="interval to the next plop (s, log scale)", ylabel="pairs",
                title="How far apart are plops?")
    for q, ls in ((np.median(intervals), "--"),):
        axes[1].axvline(q, color="k", ls=ls, lw=1, label=f"median {q:.2f} s")
    axes[1].legend()
    return fig


def manifest_overview(manifest: pd.DataFrame):
    """SNR per recording (coloured by split), plop rate against SNR, and how often each
    background family and airlock type occurs."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), layout="constrained")
    colors = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}
    m = manifest.sort_values("snr_db").reset_index(drop=True)
    axes[0].bar(range(len(m)), m["snr_db"], color=[colors.get(s, "gray") for s in m["split"]])
    axes[0].set(xlabel="recording (sorted by SNR)", ylabel="SNR (dB)", title="SNR per recording")
    from matplotlib.patches import Patch  # empty bars would all take the first colour

    axes[0].legend(handles=[Patch(color=c, label=s) for s, c in colors.items()], fontsize=8)
    axes[1].scatter(manifest["snr_db"], manifest["rate_ppm"], c=[colors.get(s, "gray")
                                                                 for s in manifest["split"]], s=18)
    axes[1].set_yscale("log")
    axes[1].set(xlabel="SNR (dB)", ylabel="plops per minute", title="Rate against SNR")
    fams = manifest["backgrounds"].str.split("+").explode().value_counts().sort_values()
    air = manifest["airlock"].value_counts().sort_values()
    axes[2].barh([f"bg: {k}" for k in fams.index], fams.values, color="tab:gray")
    axes[2].barh([f"airlock: {k}" for k in air.index], air.values, color="tab:brown")
    axes[2].set(xlabel="recordings", title="Backgrounds and airlocks")
    axes[2].tick_params(axis="y", labelsize=8)
    return fig


def f1_by_group(table: pd.DataFrame, *, by: str, value: str = "f1", ax=None, title: str | None = None):
    """Bar chart of a score per group (e.g. F1 per SNR band)."""
    ax = _axes(ax, figsize=(6, 3))
    ax.bar(table[by].astype(str), table[value], color="tab:purple")
    ax.set(xlabel=by, ylabel=value, ylim=(0, 1), title=title)
    for x, v in zip(range(len(table)), table[value]):
        ax.text(x, v + 0.02, f"{v:.2f}", ha="center", fontsize=8)
    return ax


def listen(y: np.ndarray, *, sr: int = SR, seconds: float | None = None, title: str | None = None):
    """An audio player for a notebook, embedded as MP3 (about 10× smaller than the WAV that
    ``IPython.display.Audio`` embeds, which keeps the committed notebooks small).

    The level is normalized to a peak of 0.9 so quiet recordings can be heard.

    Examples
    --------
    >>> player = listen(np.zeros(16000, dtype="float32"))
    >>> "audio/mpeg" in player.data
    True
    """
    import base64
    import html
    import io

    import soundfile as sf
    from IPython.display import HTML

    x = np.asarray(y, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if seconds is not None:
        x = x[: int(seconds * sr)]
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak > 0:
        x = x * (0.9 / peak)
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="MP3", subtype="MPEG_LAYER_III")
    data = base64.b64encode(buf.getvalue()).decode()
    label = f"<div style='font-size:90%'>{html.escape(title)}</div>" if title else ""
    return HTML(f"{label}<audio controls preload='none' src='data:audio/mpeg;base64,{data}'></audio>")


def training_curves(history: pd.DataFrame, *, title: str | None = None):
    """Loss and validation scores per epoch, with the kept (best) epoch marked."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), layout="constrained")
    axes[0].plot(history["epoch"], history["loss"], "o-", label="training loss")
    axes[0].set(xlabel="epoch", ylabel="weighted binary cross-entropy", title="loss")
    for col, label in (("val_pr_auc", "val PR-AUC (frames)"), ("val_event_f1", "val event F1 (onsets)")):
        if col in history:
            axes[1].plot(history["epoch"], history[col], "o-", label=label)
    best = history.loc[history["val_event_f1"].idxmax(), "epoch"] if "val_event_f1" in history else None
    if best is not None:
        axes[1].axvline(best, color="k", ls="--", lw=1, label=f"kept: epoch {best}")
    axes[1].set(xlabel="epoch", ylim=(0, 1), title="validation")
    axes[1].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    return fig


def feature_comparison(y: np.ndarray, *, sr: int = SR, events: pd.DataFrame | None = None,
                       start: float = 0.0, end: float | None = None):
    """Log-mel energies beside PCEN (the two model inputs) for the same audio."""
    from helpers.features import frontend_features

    a, b = int(start * sr), int((end or len(y) / sr) * sr)
    seg = y[a:b]
    fig, axes = plt.subplots(2, 1, figsize=(11, 5), sharex=True, layout="constrained")
    for ax, kind, name in zip(axes, ("logmel", "pcen"), ("log-mel energy (dB)", "PCEN")):
        f = frontend_features(seg, kind=kind).T
        lo, hi = np.percentile(f, [2, 99.5])
        ax.imshow(f, origin="lower", aspect="auto", cmap="magma", vmin=lo, vmax=hi,
                  extent=(0, f.shape[1] * HOP_S, 0, f.shape[0]))
        ax.set(ylabel="mel band", title=name)
        if events is not None:
            ev = events[(events["end"] > start) & (events["start"] < (end or np.inf))]
            for s in ev["start"] - start:
                ax.axvline(s, color="cyan", lw=0.8, alpha=0.8)
    axes[-1].set_xlabel("time (s)")
    return fig


def probability_track(y: np.ndarray, probs: np.ndarray, *, sr: int = SR, events: pd.DataFrame | None = None,
                      detected: pd.DataFrame | None = None, start: float = 0.0, end: float | None = None,
                      thresholds: dict | None = None, title: str | None = None):
    """Spectrogram with the labels above the detector's probability per frame and its events."""
    a, b = int(start * sr), int((end or len(y) / sr) * sr)
    fig, axes = plt.subplots(2, 1, figsize=(11, 5), sharex=True, layout="constrained",
                             gridspec_kw={"height_ratios": [2, 1]})

    def window(ev):
        if ev is None:
            return None
        ev = ev[(ev["end"] > start) & (ev["start"] < (end or np.inf))].copy()
        ev[["start", "end"]] -= start
        return ev

    spectrogram(y[a:b], sr=sr, events=window(events), ax=axes[0], kind="mel", title=title)
    f0, f1 = int(start / HOP_S), int((end or len(y) / sr) / HOP_S)
    t = np.arange(f1 - f0) * HOP_S
    axes[1].plot(t, probs[f0:f1][: len(t)], color="tab:red", lw=1, label="plop probability")
    for name, v in (thresholds or {}).items():
        if name in ("on", "off"):
            axes[1].axhline(v, ls="--" if name == "on" else ":", color="k", lw=0.8, label=f"{name} {v:.2f}")
    mark_events(axes[1], window(detected), color="tab:red", alpha=0.15, label="detected")
    axes[1].set(ylim=(0, 1.02), xlabel="time (s)", ylabel="probability")
    axes[1].legend(fontsize=8, loc="upper right")
    axes[0].set_xlabel("")
    return fig


def sound_gallery(*, seed: int = 1, sr: int = SR, ncols: int = 4, title: str | None = None):
    """One synthetic plop of each airlock type beside each kind of sound that is not a plop
    (knock, tap, click, door …), as small mel spectrograms on one colour scale.

    The sounds come from :mod:`helpers.synth` (the generator of the embedded data set); the
    look-alikes are scaled to a peak of 0.5 so their shape, not their level, compares.

    Parameters
    ----------
    seed
        Seed of the random generator that draws the airlocks and sounds.
    sr
        Sample rate of the sounds.
    ncols
        Spectrograms per row.
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = sound_gallery(seed=1)
    >>> fig.axes[0].get_title()
    'plop: s_type'
    """
    from helpers import synth

    rng = np.random.default_rng(seed)
    snippets = []
    for airlock in synth.AIRLOCKS:
        char = synth.Character.draw(rng, sr)
        char.airlock = airlock
        x, _ = synth.plop(rng, sr, char)
        snippets.append((f"plop: {airlock}", np.concatenate([np.zeros(sr // 20), x, np.zeros(sr // 4)])))
    for name, make in synth.CONFUSERS.items():
        x = make(rng, sr)
        x = x / max(float(np.abs(x).max()), 1e-9) * 0.5
        snippets.append((name, np.concatenate([np.zeros(sr // 20), x,
                                               np.zeros(max(0, int(0.375 * sr) - len(x)))])))
    return snippet_grid(snippets, sr=sr, ncols=ncols, title=title)


def evaluation_views(table: pd.DataFrame, *, tol: float = 0.10, title: str | None = None):
    """Three scores of the same detections, one row per recording: frame-wise F1, event F1
    (onsets) and the BPM error, so that the places where they disagree stand out.

    Recordings are sorted by event F1 (worst at the top) on all three panels; a BPM error
    within ``±tol`` is drawn green, outside red.

    Parameters
    ----------
    table
        One row per recording with ``recording``, ``frame_f1``, ``f1`` (event F1) and
        ``bpm_error`` (relative, as from :func:`helpers.evaluate.score_detections`).
    tol
        The BPM tolerance to mark (relative).
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> t = pd.DataFrame({"recording": ["a", "b"], "frame_f1": [0.4, 0.9], "f1": [0.95, 0.5],
    ...                   "bpm_error": [0.02, 0.4]})
    >>> fig = evaluation_views(t)
    >>> [ax.get_title() for ax in fig.axes]
    ['frame-wise F1', 'event F1 (onsets)', 'BPM error']
    """
    t = table.sort_values("f1", ascending=False).reset_index(drop=True)
    fig, axes = plt.subplots(1, 3, figsize=(12, 0.32 * len(t) + 1.6), sharey=True,
                             layout="constrained")
    rows = np.arange(len(t))
    err = t["bpm_error"].to_numpy(dtype=float)
    shown = np.minimum(np.nan_to_num(err, nan=1.0, posinf=1.0), 1.0)
    for ax, col, name, color in ((axes[0], "frame_f1", "frame-wise F1", "tab:gray"),
                                 (axes[1], "f1", "event F1 (onsets)", "tab:purple")):
        ax.barh(rows, t[col], color=color)
        ax.set(xlim=(0, 1), title=name)
        for r, v in zip(rows, t[col]):
            ax.text(min(v, 0.8) + 0.02, r, f"{v:.2f}", va="center", fontsize=8)
    axes[2].barh(rows, shown * 100, color=np.where(err <= tol + 1e-9, "tab:green", "tab:red"))
    axes[2].axvline(tol * 100, color="k", ls="--", lw=1, label=f"±{tol:.0%}")
    axes[2].set(xlim=(0, 100), title="BPM error", xlabel="% of the true BPM (capped at 100)")
    axes[2].legend(fontsize=8, loc="lower right")
    axes[0].set_yticks(rows, t["recording"], fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
