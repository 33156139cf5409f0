"""Figures of the evaluation (notebook 07 and the slides): the three views side by side,
precision–recall sweeps, breakdowns as heat maps, true versus reported BPM, and the errors
of a detector as spectrogram snippets.

Every function takes the tables of :mod:`helpers.systems` and returns a matplotlib figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.config import SR

#: One colour per system, the same in every figure.
SYSTEM_COLORS = {"energy counter": "tab:gray", "librosa onsets": "tab:olive",
                 "librosa onsets tuned": "tab:green", "GMM-HMM": "tab:purple", "MFCC + LR": "tab:orange",
                 "CRNN float": "tab:blue", "CRNN int8": "tab:cyan"}


def _color(name: str) -> str:
    return SYSTEM_COLORS.get(name, "tab:red")


def _f1(p: pd.Series, r: pd.Series) -> pd.Series:
    return (2 * p * r / (p + r)).where(p + r > 0, 0.0)


def three_views(overall: pd.DataFrame, *, split: str = "test"):
    """One bar per system in three panels: window-wise F1 (and PR-AUC as a dot), onset F1 at
    100 ms (and 200 ms as a dot), and the share of recordings whose BPM is within ±10 %.

    ``overall`` is the second table of :func:`helpers.systems.evaluation_tables`.

    Examples
    --------
    >>> fig = three_views(overall)   # doctest: +SKIP
    """
    t = overall[overall["split"] == split].reset_index(drop=True)
    views = [("windows of 0.25 s", _f1(t["window_precision"], t["window_recall"]), t["window_pr_auc"],
              "F1 (bar), PR-AUC (dot)"),
             ("events: onsets, sed_eval", t["f1"], t["f1_200ms"], "F1 ±100 ms (bar), ±200 ms (dot)"),
             ("bubbles per minute", t["bpm_within_10pct"], 1 - t["bpm_error_median"].clip(upper=1),
              "within ±10 % (bar), 1 − median error (dot)")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.45 * len(t) + 1.4), sharey=True, layout="constrained")
    y = np.arange(len(t))[::-1]
    for ax, (title, bar, dot, xlabel) in zip(axes, views):
        ax.barh(y, bar, color=[_color(n) for n in t["system"]])
        ax.plot(dot, y, "k.", ms=8)
        for yi, v in zip(y, bar):
            ax.text(min(v, 1.0) + 0.01, yi, f"{v:.2f}", va="center", fontsize=8)
        ax.set(xlim=(0, 1.12), title=title, xlabel=xlabel)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, t["system"])
    fig.suptitle(f"{split} split: the same detections seen three ways")
    return fig


def pr_curves(sweeps: Mapping[str, pd.DataFrame], *, operating: Mapping[str, tuple[float, float]] | None = None,
              ap: Mapping[str, float] | None = None, title: str = "onsets, 100 ms collar"):
    """Event-based precision–recall curves (one per system, from
    :func:`helpers.systems.threshold_sweep`), each system's operating point as a dot."""
    fig, ax = plt.subplots(figsize=(6.5, 5), layout="constrained")
    for name, sw in sweeps.items():
        s = sw.sort_values("recall")
        label = name + (f" (AP {ap[name]:.2f})" if ap and name in ap else "")
        ax.plot(s["recall"], s["precision"], "-", color=_color(name), label=label, lw=1.6)
        if operating and name in operating:
            p, r = operating[name]
            ax.plot([r], [p], "o", color=_color(name), mec="k")
    for f in (0.6, 0.8, 0.9, 0.95):  # iso-F1 lines
        r = np.linspace(f / (2 - f) + 1e-3, 1, 100)
        ax.plot(r, f * r / (2 * r - f), ":", color="0.75", lw=0.8)
        ax.text(1.0, f / (2 - f), f"F1 {f}", fontsize=7, color="0.5", ha="right", va="bottom")
    ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="recall", ylabel="precision", title=title)
    ax.legend(fontsize=8, loc="lower left")
    return fig


def breakdown_heatmap(table: pd.DataFrame, *, title: str, value: str = "event F1", ax=None):
    """A systems × groups table of scores as a heat map with the numbers written in."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.1 * table.shape[1] + 3, 0.42 * table.shape[0] + 1.3),
                               layout="constrained")
    else:
        fig = ax.figure
    im = ax.imshow(table.to_numpy(float), vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns], rotation=30, ha="right")
    ax.set_yticks(range(table.shape[0]), table.index)
    for (i, j), v in np.ndenumerate(table.to_numpy(float)):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label=value, shrink=0.8)
    return fig


def bpm_scatter(per: pd.DataFrame, *, systems: Sequence[str], split: str = "test"):
    """Reported against true BPM per recording, one panel per system, with each reported
    rate's confidence interval and the ±10 % band."""
    t = per[per["split"] == split] if "split" in per else per
    fig, axes = plt.subplots(1, len(systems), figsize=(3.6 * len(systems), 3.6), sharey=True,
                             layout="constrained", squeeze=False)
    hi = max(float(t["true_bpm"].max()) * 1.5, 10.0)
    lo = max(float(t["true_bpm"][t["true_bpm"] > 0].min()) / 1.5, 0.5) if (t["true_bpm"] > 0).any() else 0.5
    grid = np.geomspace(lo, hi, 50)
    for ax, name in zip(axes[0], systems):
        s = t[t["system"] == name]
        ax.fill_between(grid, grid * 0.9, grid * 1.1, color="tab:green", alpha=0.15, label="±10 %")
        ax.plot(grid, grid, "k-", lw=0.6)
        low = (s["bpm"] - s["bpm_low"]).clip(lower=0).fillna(0).replace(np.inf, 0)
        high = (s["bpm_high"] - s["bpm"]).clip(lower=0).fillna(0).replace(np.inf, 0)
        ax.errorbar(s["true_bpm"], s["bpm"].clip(lower=lo), yerr=[low, high], fmt="o", ms=4,
                    color=_color(name), ecolor="0.6", elinewidth=0.8)
        ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel="true BPM",
               title=f"{name}: {s['within_10'].mean():.0%} within ±10 %")
    axes[0][0].set_ylabel("reported BPM (95 % interval)")
    axes[0][0].legend(fontsize=8, loc="upper left")
    return fig


def error_snippets(errors: pd.DataFrame, audio: Mapping[str, np.ndarray], *, n: int = 8,
                   half_s: float = 0.4, sr: int = SR, title: str | None = None
                   ) -> tuple[plt.Figure, list[tuple[str, np.ndarray]]]:
    """Spectrogram snippets of the first ``n`` rows of an errors table (from
    :func:`helpers.systems.errors_table`), centred on each error; also returns the
    ``(title, audio)`` snippets so a notebook can play them.

    ``audio`` maps each recording name to its samples.
    """
    from helpers.plots import snippet_grid

    if not len(errors):
        fig, ax = plt.subplots(figsize=(6, 1), layout="constrained")
        ax.axis("off")
        ax.text(0.5, 0.5, f"{title or 'errors'}: none", ha="center", va="center")
        return fig, []
    snippets = []
    for r in errors.head(n).itertuples():
        y = audio[r.recording]
        a = max(int((r.time - half_s) * sr), 0)
        score = "" if not np.isfinite(r.score) else f", score {r.score:.2f}"
        snippets.append((f"{r.kind} {r.recording} {r.time:.2f} s{score}", y[a:a + int(2 * half_s * sr)]))
    fig = snippet_grid(snippets, sr=sr, ncols=4, title=title)
    return fig, snippets
