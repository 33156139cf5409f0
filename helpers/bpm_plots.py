"""Figures of notebook 06: frame probabilities → events → Bubbles Per Minute.

Every function draws on a given matplotlib ``ax`` and returns it, so a notebook can lay
several of them out in one figure. Nothing here changes matplotlib's global style. The
numbers drawn come from :mod:`helpers.events` (the same functions the detector uses), so a
figure never disagrees with the measurement it illustrates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter

from helpers.events import (
    DEFAULT_IQR_K,
    DEFAULT_IQR_SCALE,
    bpm_from_events,
    probabilities_to_events,
)

__all__ = [
    "bpm_scatter",
    "f1_heatmap",
    "fermentation_curve",
    "hysteresis_stages",
    "interval_fences",
    "interval_plot",
    "probability_curve",
    "zoom_where_rules_matter",
]

REFERENCE_COLOR = "tab:orange"
DETECTION_COLOR = "tab:red"


def _mark_spans(ax, starts, ends, *, y0: float, y1: float, color: str, label: str | None,
                alpha: float = 0.9) -> None:
    """Filled boxes ``[start, end] × [y0, y1]`` (one legend entry)."""
    for i, (s, e) in enumerate(zip(starts, ends)):
        ax.fill_between([s, max(e, s + 0.01)], y0, y1, color=color, alpha=alpha, lw=0,
                        label=label if i == 0 else None)


def _plain_log_ticks(axis) -> None:
    """Plain numbers (0.2, 1, 5 …) instead of 2×10⁻¹ on a log axis; minor labels at 2, 5."""

    def major(v, _):
        return f"{v:g}"

    def minor(v, _):
        if v <= 0:
            return ""
        mantissa = v / 10 ** math.floor(math.log10(v) + 1e-9)
        whole = abs(mantissa - round(mantissa)) < 1e-6
        return f"{v:g}" if whole and round(mantissa) in (2, 5) else ""

    axis.set_major_formatter(FuncFormatter(major))
    axis.set_minor_formatter(FuncFormatter(minor))


# --------------------------------------------------------------------------- probabilities


def probability_curve(ax, prob: np.ndarray, *, hop_s: float = 0.01, start_s: float = 0.0,
                      reference: pd.DataFrame | None = None,
                      detections: pd.DataFrame | None = None, on: float | None = None,
                      off: float | None = None, title: str | None = None):
    """The frame probabilities of a detector, with labels, detections and thresholds.

    Labeled plops are shaded orange, detected events drawn as red bars under the curve,
    and the ``on`` / ``off`` thresholds as dashed lines.

    Parameters
    ----------
    ax
        Matplotlib axes to draw on.
    prob
        One probability per frame, frame ``i`` at ``start_s + i * hop_s``.
    hop_s, start_s
        Seconds between frames, and the time of frame 0.
    reference, detections
        Events frames (``start``, ``end``) in the same time base as ``start_s``.
    on, off
        Thresholds to draw (None: not drawn).
    title
        Axes title.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> prob = np.zeros(300); prob[100:110] = 0.9
    >>> ref = pd.DataFrame({"start": [1.0], "end": [1.1]})
    >>> ax = probability_curve(plt.figure().gca(), prob, reference=ref, on=0.5, off=0.25)
    >>> [float(v) for v in ax.get_ylim()]
    [-0.12, 1.05]
    """
    prob = np.asarray(prob, dtype=float)
    t = start_s + np.arange(len(prob)) * hop_s
    if reference is not None:
        for i, (s, e) in enumerate(zip(reference["start"], reference["end"])):
            ax.axvspan(s, max(e, s + 0.01), color=REFERENCE_COLOR, alpha=0.25, lw=0,
                       label="labeled plop" if i == 0 else None)
    ax.plot(t, prob, color="tab:blue", lw=1, label="plop probability")
    if detections is not None:
        _mark_spans(ax, detections["start"], detections["end"], y0=-0.1, y1=-0.03,
                    color=DETECTION_COLOR, label="detected event")
    for value, name, style in ((on, "on", "--"), (off, "off", ":")):
        if value is not None:
            ax.axhline(value, color="k", ls=style, lw=1, label=f"{name} = {value:.2f}")
    ax.set(xlim=(t[0] if len(t) else start_s, t[-1] + hop_s if len(t) else start_s + 1),
           ylim=(-0.12, 1.05), xlabel="time (s)", ylabel="probability")
    if title:
        ax.set_title(title)
    return ax


def _stages(on: float, off: float, min_gap_s: float, min_duration_s: float) -> list[tuple]:
    """(name, options of probabilities_to_events, colour) of each post-processing stage."""
    return [
        ("one threshold (on)", dict(on=on, off=on, min_gap_s=0.0, min_duration_s=0.0),
         "tab:gray"),
        ("hysteresis (on/off)", dict(on=on, off=off, min_gap_s=0.0, min_duration_s=0.0),
         "tab:purple"),
        (f"+ merge gaps < {min_gap_s * 1000:.0f} ms",
         dict(on=on, off=off, min_gap_s=min_gap_s, min_duration_s=0.0), "tab:cyan"),
        (f"+ drop < {min_duration_s * 1000:.0f} ms",
         dict(on=on, off=off, min_gap_s=min_gap_s, min_duration_s=min_duration_s),
         DETECTION_COLOR),
    ]


def hysteresis_stages(ax, prob: np.ndarray, *, hop_s: float = 0.01,
                      view: tuple[float, float] | None = None, on: float = 0.5,
                      off: float | None = None, min_gap_s: float = 0.08,
                      min_duration_s: float = 0.03, reference: pd.DataFrame | None = None,
                      title: str | None = None):
    """The post-processing rules one at a time, as rows of events under the curve.

    The curve is drawn with its ``on`` and ``off`` thresholds; under it, one row per
    stage of :func:`helpers.events.probabilities_to_events`, each with the number of events
    that start in the view:

    1. one threshold (``on`` only, nothing else),
    2. hysteresis (start at ``on``, end below ``off``),
    3. + merging events closer than ``min_gap_s``,
    4. + dropping events shorter than ``min_duration_s`` (the final events).

    The events are found on the whole curve and then shown in ``view``, so a zoom does not
    cut events at its edges.

    Parameters
    ----------
    ax
        Matplotlib axes.
    prob
        One probability per frame; frame ``i`` at ``i * hop_s``.
    hop_s
        Seconds between frames.
    view
        ``(start, end)`` in seconds to show (default: the whole curve).
    on, off, min_gap_s, min_duration_s
        The settings of :func:`helpers.events.probabilities_to_events` (``off`` defaults to
        ``on / 2``).
    reference
        Labeled events to shade, or None.
    title
        Axes title.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> prob = np.r_[np.zeros(20), [.9, .9, .3, .9, .9], np.zeros(20), [.9], np.zeros(20)]
    >>> ax = hysteresis_stages(plt.figure().gca(), prob, on=0.5, off=0.2)
    >>> [t.get_text() for t in ax.texts]      # doctest: +NORMALIZE_WHITESPACE
    ['one threshold (on): 3', 'hysteresis (on/off): 2', '+ merge gaps < 80 ms: 2',
     '+ drop < 30 ms: 1']
    """
    prob = np.asarray(prob, dtype=float)
    off = on / 2 if off is None else off
    start_s, end_s = view if view is not None else (0.0, len(prob) * hop_s)
    a = max(int(math.floor(start_s / hop_s)), 0)
    b = min(int(math.ceil(end_s / hop_s)) + 1, len(prob))
    if reference is not None:
        ref = reference[(reference["end"] > start_s) & (reference["start"] < end_s)]
        for i, (s, e) in enumerate(zip(ref["start"], ref["end"])):
            ax.axvspan(s, max(e, s + 0.01), color=REFERENCE_COLOR, alpha=0.2, lw=0,
                       label="labeled plop" if i == 0 else None)
    ax.plot(np.arange(a, b) * hop_s, prob[a:b], color="tab:blue", lw=1.2,
            label="plop probability")
    ax.axhline(on, color="k", ls="--", lw=1, label=f"on = {on:.2f}")
    ax.axhline(off, color="k", ls=":", lw=1, label=f"off = {off:.2f}")
    row_h = 0.13
    stages = _stages(on, off, min_gap_s, min_duration_s)
    for k, (name, options, color) in enumerate(stages):
        events = probabilities_to_events(prob, hop_s=hop_s, **options)
        events = events[(events["end"] > start_s) & (events["start"] < end_s)]
        y1 = -0.05 - k * row_h
        _mark_spans(ax, events["start"], events["end"], y0=y1 - 0.08, y1=y1, color=color,
                    label=None)
        n = int(((events["start"] >= start_s) & (events["start"] < end_s)).sum())
        ax.text(-0.01, y1 - 0.04, f"{name}: {n}", transform=ax.get_yaxis_transform(),
                va="center", ha="right", fontsize=8, color=color)
    ax.set(xlim=(start_s, end_s), ylim=(-0.1 - len(stages) * row_h, 1.05), xlabel="time (s)")
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_ylabel("probability", y=0.7)
    if title:
        ax.set_title(title, loc="left")
    return ax


def zoom_where_rules_matter(probs: Sequence[np.ndarray], *, hop_s: float = 0.01,
                            references: Sequence[pd.DataFrame] | None = None,
                            window_s: float = 3.0, on: float = 0.5, off: float | None = None,
                            min_gap_s: float = 0.08, min_duration_s: float = 0.03
                            ) -> tuple[int, float]:
    """Where a zoom shows the rules at work: the curve and window (of ``window_s``) in which
    the most stages of :func:`hysteresis_stages` change the number of events.

    Events are counted by onset. Ties go, in turn, to the window where the rules fix the
    count of a single threshold the most (``|n_single − n_labeled| − |n_rules −
    n_labeled|``, with ``references``, the labeled events of each curve), to the window
    with more single-threshold events (something to see), and to the first curve and
    window.

    Returns ``(index of the curve, start of the window in s)``; windows start on whole
    multiples of ``window_s / 2``.

    Examples
    --------
    >>> calm = np.zeros(600)
    >>> busy = np.zeros(600); busy[320:330] = busy[331:333] = busy[400:401] = 0.9
    >>> zoom_where_rules_matter([calm, busy], window_s=2.0)
    (1, 3.0)
    """
    off = on / 2 if off is None else off
    best, where = None, (0, 0.0)
    step = window_s / 2
    stages = _stages(on, off, min_gap_s, min_duration_s)
    for i, prob in enumerate(probs):
        onsets = [probabilities_to_events(prob, hop_s=hop_s, **options)["start"].to_numpy()
                  for _, options, _ in stages]
        labeled = None if references is None else references[i]["start"].to_numpy(dtype=float)
        duration = len(prob) * hop_s
        for start in np.arange(0.0, max(duration - window_s, 0.0) + 1e-9, step):
            counts = [int(np.count_nonzero((o >= start) & (o < start + window_s)))
                      for o in onsets]
            changes = sum(x != y for x, y in zip(counts, counts[1:]))
            fixed = 0
            if labeled is not None:
                n_ref = int(np.count_nonzero((labeled >= start) & (labeled < start + window_s)))
                fixed = abs(counts[0] - n_ref) - abs(counts[-1] - n_ref)
            key = (changes, fixed, counts[0])
            if best is None or key > best:
                best, where = key, (i, float(start))
    return where


# --------------------------------------------------------------------------- tuning


def f1_heatmap(ax, table: pd.DataFrame, *, x: str, y: str, value: str = "f1",
               annotate: bool = True, title: str | None = None, vmin: float | None = None):
    """A grid-search table (from :func:`helpers.events.tune_postprocessing`) as a heat map.

    Each cell is the best ``value`` over the grid settings other than ``x`` and ``y``; the
    best cell is outlined.

    Parameters
    ----------
    ax
        Matplotlib axes.
    table
        One row per setting, with columns ``x``, ``y`` and ``value``.
    x, y
        The two settings on the axes (e.g. ``"on"`` and ``"off_ratio"``).
    value
        Score to show.
    annotate
        Write each cell's score (two decimals).
    title
        Axes title.
    vmin
        Lower end of the colour scale (default: the table's 5th percentile).

    Returns
    -------
    matplotlib.image.AxesImage
        The image (for a colour bar).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> table = pd.DataFrame({"on": [.3, .3, .5, .5], "gap": [0, .1, 0, .1],
    ...                       "f1": [.5, .6, .9, .7]})
    >>> img = f1_heatmap(plt.figure().gca(), table, x="on", y="gap")
    >>> float(img.get_array().max())
    0.9
    """
    grid = table.pivot_table(index=y, columns=x, values=value, aggfunc="max").sort_index()
    data = grid.to_numpy(dtype=float)
    low = float(np.nanpercentile(data, 5)) if vmin is None else vmin
    img = ax.imshow(data, origin="lower", aspect="auto", cmap="viridis", vmin=low,
                    vmax=float(np.nanmax(data)))
    ax.set_xticks(range(grid.shape[1]), [f"{v:g}" for v in grid.columns], rotation=90,
                  fontsize=7)
    ax.set_yticks(range(grid.shape[0]), [f"{v:g}" for v in grid.index], fontsize=7)
    ax.set(xlabel=x, ylabel=y)
    if annotate:
        for (r, c), v in np.ndenumerate(data):
            if np.isfinite(v):
                ax.text(c, r, f"{v:.2f}"[1:] if 0 <= v < 1 else f"{v:.1f}", ha="center",
                        va="center", fontsize=5.5, color="white" if v < (low + data.max()) / 2
                        else "black")
    r, c = np.unravel_index(np.nanargmax(data), data.shape)
    ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec="red", lw=2))
    if title:
        ax.set_title(title)
    return img


# --------------------------------------------------------------------------- BPM


def bpm_scatter(ax, true_bpm, estimated_bpm, *, low=None, high=None, tol: float = 0.10,
                band: bool = True, label: str | None = None, color: str | None = None,
                marker: str = "o"):
    """Estimated against true BPM on log axes, with the ``±tol`` band around the diagonal.

    Points inside the band are filled, points outside hollow; ``low``/``high`` (a
    confidence interval per point) are drawn as vertical error bars. Call it once per
    method with ``band=False`` after the first to overlay several.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> ax = bpm_scatter(plt.figure().gca(), [10, 60], [10.5, 80], label="count")
    >>> ax.get_xscale(), len(ax.collections)
    ('log', 3)
    """
    true_bpm = np.asarray(true_bpm, dtype=float)
    est = np.asarray(estimated_bpm, dtype=float)
    positive = np.concatenate([true_bpm[true_bpm > 0], est[est > 0]])
    lo_v, hi_v = (positive.min() / 1.5, positive.max() * 1.5) if len(positive) else (1, 300)
    if band:
        line = np.geomspace(lo_v, hi_v, 50)
        ax.fill_between(line, line * (1 - tol), line * (1 + tol), color="tab:green", alpha=0.15,
                        lw=0, label=f"±{tol:.0%}")
        ax.plot(line, line, color="tab:green", lw=0.8)
    inside = np.abs(est - true_bpm) <= tol * true_bpm + 1e-9
    if low is not None and high is not None:
        low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
        ok = np.isfinite(low) & np.isfinite(high)
        ax.errorbar(true_bpm[ok], est[ok], yerr=[est[ok] - np.minimum(low[ok], est[ok]),
                                                 np.maximum(high[ok], est[ok]) - est[ok]],
                    fmt="none", ecolor=color or "tab:blue", alpha=0.5, lw=1)
    sc = ax.scatter(true_bpm[inside], est[inside], color=color, marker=marker, s=28,
                    label=f"{label}: {inside.mean():.0%} within" if label else None, zorder=3)
    ax.scatter(true_bpm[~inside], est[~inside], facecolors="none",
               edgecolors=sc.get_facecolor()[0] if len(sc.get_facecolor()) else color,
               marker=marker, s=28, zorder=3)
    ax.set(xscale="log", yscale="log", xlabel="true BPM", ylabel="estimated BPM")
    _plain_log_ticks(ax.xaxis)
    _plain_log_ticks(ax.yaxis)
    return ax


def interval_fences(onsets, *, iqr_k: float | None = DEFAULT_IQR_K,
                    iqr_scale: str = DEFAULT_IQR_SCALE) -> tuple[np.ndarray, float, float]:
    """The inter-plop intervals and the rejection fences that
    :func:`helpers.events.bpm_from_events` applies to them.

    Returns ``(intervals in onset order, low fence, high fence)``; the fences are
    ``-inf, inf`` when nothing is rejected (``iqr_k=None``, fewer than three onsets, or
    fences that would keep fewer than two intervals — the same fallbacks as
    :func:`~helpers.events.bpm_from_events`).

    Examples
    --------
    >>> onsets = np.r_[np.arange(0, 20, 2.0), 20.2, np.arange(22, 40, 2.0)]
    >>> intervals, low, high = interval_fences(onsets)
    >>> int(((intervals >= low) & (intervals <= high)).sum()), len(intervals)
    (17, 19)
    """
    onsets = np.sort(np.asarray(onsets if not isinstance(onsets, pd.DataFrame)
                                else onsets["start"], dtype=float))
    intervals = np.diff(onsets)
    if len(onsets) < 3 or iqr_k is None or not math.isfinite(iqr_k):
        return intervals, -math.inf, math.inf
    eps = 1e-9
    if iqr_scale == "log":
        positive = intervals[intervals > 0]
        if len(positive) < 2:
            return intervals, -math.inf, math.inf
        q1, q3 = np.log(np.quantile(positive, [0.25, 0.75]))
        slack = iqr_k * (q3 - q1) + eps
        low, high = math.exp(q1 - slack), math.exp(q3 + slack)
    else:
        q1, q3 = np.quantile(intervals, [0.25, 0.75])
        slack = iqr_k * (q3 - q1) + eps * max(q3, 1.0)
        low, high = q1 - slack, q3 + slack
    if np.count_nonzero((intervals >= low) & (intervals <= high)) < 2:
        return intervals, -math.inf, math.inf
    return intervals, float(low), float(high)


def interval_plot(ax, onsets, *, iqr_k: float | None = DEFAULT_IQR_K,
                  iqr_scale: str = DEFAULT_IQR_SCALE, confidence: float = 0.95,
                  true_bpm: float | None = None, title: str | None = None):
    """The interval method at work: each inter-plop interval against time (log scale),
    the IQR fences, the rejected intervals (red crosses), the median of the kept ones (the
    BPM) and the Student-t interval of their mean (the band).

    The legend gives the BPM and its interval, computed by
    :func:`helpers.events.bpm_from_events` with the same options; ``true_bpm`` adds the
    truth as a dashed green line.

    Returns
    -------
    dict
        The result of :func:`~helpers.events.bpm_from_events` (``bpm``, ``low``, ``high``, …).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> onsets = np.r_[np.arange(0, 20, 2.0), 20.2, np.arange(22, 40, 2.0)]
    >>> r = interval_plot(plt.figure().gca(), onsets, true_bpm=30)
    >>> r["bpm"], r["n_intervals"]
    (30.0, 17)
    """
    onsets = np.sort(np.asarray(onsets if not isinstance(onsets, pd.DataFrame)
                                else onsets["start"], dtype=float))
    result = bpm_from_events(onsets, confidence=confidence, iqr_k=iqr_k, iqr_scale=iqr_scale)
    intervals, low, high = interval_fences(onsets, iqr_k=iqr_k, iqr_scale=iqr_scale)
    if len(intervals) == 0:
        ax.set_title(title or "no intervals")
        return result
    at = onsets[1:]
    kept = (intervals >= low) & (intervals <= high)
    ax.scatter(at[kept], intervals[kept], s=10, color="tab:blue", label="interval", zorder=3)
    if (~kept).any():
        ax.scatter(at[~kept], intervals[~kept], s=30, marker="x", color="tab:red",
                   label=f"rejected ({np.count_nonzero(~kept)})", zorder=3)
    if math.isfinite(low) and math.isfinite(high):
        ax.axhspan(low, high, color="tab:gray", alpha=0.12, lw=0, label="IQR fences")
    if math.isfinite(result["bpm"]) and result["bpm"] > 0:
        ax.axhline(60 / result["bpm"], color="tab:blue", lw=1.2,
                   label=f"median → {result['bpm']:.1f} BPM")
    if math.isfinite(result["low"]) and result["low"] > 0:
        top = 60 / result["low"]
        bottom = 60 / result["high"] if math.isfinite(result["high"]) else 0.0
        ax.axhspan(bottom, top, color="tab:blue", alpha=0.25, lw=0,
                   label=f"{confidence:.0%} t-interval {result['low']:.1f}–{result['high']:.1f}")
    if true_bpm:
        ax.axhline(60 / true_bpm, color="tab:green", ls="--", lw=1,
                   label=f"truth {true_bpm:.1f} BPM")
    ax.set(yscale="log", xlabel="time of the plop (s)", ylabel="interval to previous (s)")
    _plain_log_ticks(ax.yaxis)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title)
    return result


def fermentation_curve(ax, curve: pd.DataFrame, *, x=None, truth=None, tol: float = 0.10,
                       label: str = "detector", color: str = "tab:blue",
                       xlabel: str = "hours", band: bool = True):
    """A rolling BPM (from :func:`helpers.events.bpm_over_time`) with its interval band,
    against the true rate and its ``±tol`` band.

    Parameters
    ----------
    ax
        Matplotlib axes.
    curve
        ``bpm``, ``low``, ``high`` per window (``time_s`` is the default x, in hours).
    x
        x value of each window (default ``curve["time_s"] / 3600``).
    truth
        True rate per window (same length as ``curve``), or None. Windows whose BPM is
        outside ``±tol`` of it are marked with red dots.
    tol
        Relative tolerance of the band around the truth.
    label, color
        Legend text and colour of the detector's curve.
    xlabel
        Label of the x axis.
    band
        Draw the confidence band (``low``–``high``).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> curve = pd.DataFrame({"time_s": [300., 360.], "bpm": [30., 40.],
    ...                       "low": [28., 37.], "high": [32., 43.]})
    >>> ax = fermentation_curve(plt.figure().gca(), curve, truth=[30., 30.])
    >>> len(ax.lines) >= 2
    True
    """
    xs = np.asarray(curve["time_s"] / 3600 if x is None else x, dtype=float)
    bpm = curve["bpm"].to_numpy(dtype=float)
    if truth is not None:
        truth = np.asarray(truth, dtype=float)
        ax.fill_between(xs, truth * (1 - tol), truth * (1 + tol), color="tab:green", alpha=0.15,
                        lw=0, label=f"truth ±{tol:.0%}")
        ax.plot(xs, truth, color="tab:green", lw=1.5, label="true rate")
    if band:
        high = np.minimum(curve["high"].to_numpy(dtype=float), np.nanmax(bpm) * 3)
        ax.fill_between(xs, curve["low"].to_numpy(dtype=float), high, color=color, alpha=0.25,
                        lw=0, label=f"{label}: 95 % interval")
    ax.plot(xs, bpm, color=color, lw=1.2, label=label)
    if truth is not None:
        out = np.abs(bpm - truth) > tol * truth + 1e-9
        if out.any():
            ax.scatter(xs[out], bpm[out], s=12, color="tab:red", zorder=3,
                       label=f"outside ±{tol:.0%} ({out.mean():.0%})")
    ax.set(xlabel=xlabel, ylabel="bubbles per minute")
    return ax
