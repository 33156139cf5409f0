"""Every figure of the talk, made by the project's own code (``helpers``) from the embedded
synthetic data set and the shipped detector.

    python slides/make_figures.py [--out slides/build/figures] [--force] [--only NAME ...]

The profile comes from ``$AED_PROFILE`` (``full`` by default, ``quick`` for the tests), as
in the notebooks. The figures are cached: a ``.stamp`` file in the output folder records a
hash of this script, the ``helpers`` modules it uses, the shipped model and the data set's settings,
and nothing is redrawn while it matches (``--force`` redraws everything).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from helpers import autolabel, baselines, bpm_plots, datasets, plots, stream  # noqa: E402
from helpers.config import SR, profile  # noqa: E402
from helpers.evaluate import score_detections  # noqa: E402
from helpers.events import bpm_from_events, bpm_over_time, simulate_onsets  # noqa: E402
from helpers.features import HOP_S, frame_labels  # noqa: E402
from helpers.labels import read_labels  # noqa: E402
from helpers.models import SHIPPED_MODEL, Detector  # noqa: E402

SLIDES = Path(__file__).resolve().parent
DEFAULT_OUT = SLIDES / "build" / "figures"
DPI = 110                     # an 11-inch figure is 1210 px: sharp on a 1280 × 720 slide
STYLE = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 9,
         "figure.facecolor": "white", "savefig.facecolor": "white"}

#: name → function(Context) that returns a Figure; filled by @figure in talk order
FIGURES: dict[str, Callable[["Context"], plt.Figure]] = {}


def figure(name: str):
    def register(fn):
        FIGURES[name] = fn
        return fn
    return register


class Context:
    """What several figures share, computed once and only when a figure asks for it."""

    def __init__(self, prof):
        self.prof = prof

    @cached_property
    def manifest(self) -> pd.DataFrame:
        return datasets.synthetic(profile=self.prof, progress=False)

    @cached_property
    def test(self) -> pd.DataFrame:
        m = self.manifest
        test = m[m["split"] == "test"]
        return (test if len(test) else m).reset_index(drop=True)

    @cached_property
    def detector(self) -> Detector:
        return Detector.load()

    @cached_property
    def hero_row(self) -> pd.Series:
        """A typical test recording, as notebook 00 picks it: the median SNR of those with
        at least 8 plops."""
        pool = self.test[self.test["n_plops"] >= 8]
        pool = (pool if len(pool) else self.test).sort_values("snr_db")
        return pool.iloc[len(pool) // 2]

    @cached_property
    def hero(self) -> dict:
        y, labels = datasets.load_recording(self.hero_row)
        probs = self.detector.probabilities(y)
        plops = self.detector.events_from_probabilities(probs)
        duration = len(y) / SR
        return {"y": y, "labels": labels, "probs": probs, "plops": plops, "duration": duration,
                "bpm": bpm_from_events(plops, duration_s=duration)}

    @cached_property
    def autolabel(self) -> autolabel.AutolabelResult:
        return autolabel.autolabel(self.hero["y"])

    @cached_property
    def scores(self) -> dict:
        """The shipped detector on every test recording: frame probabilities, events and
        the three kinds of scores (frame-wise, event, BPM)."""
        det = self.detector
        on = det.config.postprocess.get("on", 0.5)
        refs, ests, probs, durs, frame_f1 = [], [], [], [], []
        for _, row in self.test.iterrows():
            y, ev = datasets.load_recording(row)
            p = det.probabilities(y)
            truth = frame_labels(ev, len(p)) > 0
            pred = p >= on
            tp = int((truth & pred).sum())
            frame_f1.append(2 * tp / max(int(truth.sum() + pred.sum()), 1))
            refs.append(ev)
            probs.append(p)
            ests.append(det.events_from_probabilities(p))
            durs.append(len(y) / SR)
        table = score_detections(refs, ests, durs, names=self.test["recording"].tolist())
        table["frame_f1"] = frame_f1
        return {"table": table, "refs": refs, "probs": probs}


# --------------------------------------------------------------------------- the figures
# (in the order of the talk)


@figure("hero")
def hero(ctx: Context):
    h, row = ctx.hero, ctx.hero_row
    b = h["bpm"]
    return plots.probability_track(
        h["y"], h["probs"], events=h["labels"], detected=h["plops"], end=min(10.0, h["duration"]),
        thresholds=ctx.detector.config.postprocess,
        title=f"{row['recording']}: {len(h['plops'])} plops in {h['duration']:.0f} s → "
              f"{b['bpm']:.1f} BPM (95 % interval {b['low']:.1f}–{b['high']:.1f}); "
              f"labels say {len(h['labels']) / h['duration'] * 60:.1f}")


@figure("plop")
def plop(ctx: Context):
    m = ctx.manifest
    row = m[m["n_plops"] >= 5].sort_values("snr_db").iloc[-1]   # the clearest recording
    y, events = datasets.load_recording(row)
    t0 = float(events["start"].iloc[len(events) // 2])
    return plots.overview(y, events=events, start=max(t0 - 0.15, 0), end=t0 + 0.45,
                          title=f"one plop ({row['airlock']} airlock, {row['snr_db']:.0f} dB SNR)")


@figure("sounds")
def sounds(ctx: Context):
    return plots.sound_gallery(seed=1, title="plops (first row) and sounds that are not plops")


@figure("dataset")
def dataset(ctx: Context):
    return plots.manifest_overview(ctx.manifest)


@figure("intervals")
def intervals(ctx: Context):
    return plots.event_histograms([read_labels(p) for p in ctx.manifest["labels"]])


@figure("hmm_model")
def hmm_model(ctx: Context):
    result = ctx.autolabel
    return autolabel.plot_model(result.model)[0].figure


@figure("hmm_decoding")
def hmm_decoding(ctx: Context):
    h, result = ctx.hero, ctx.autolabel
    return autolabel.plot_decoding(autolabel.frame_features(h["y"]), result.states,
                                   events=result.events, truth=h["labels"],
                                   end=min(10.0, h["duration"]),
                                   title=f"{ctx.hero_row['recording']}: decoded states and "
                                         "proposed labels")


@figure("review")
def review(ctx: Context):
    """As notebook 03: the three weakest proposals and the three strongest rejections."""
    y, cand = ctx.hero["y"], ctx.autolabel.candidates
    if len(cand) == 0:
        cand = pd.DataFrame({"start": [1.0], "confidence": [np.nan], "kept": [False]})
    least = pd.concat([cand[cand["kept"]].nsmallest(3, "confidence"),
                       cand[~cand["kept"]].nlargest(3, "confidence")])

    def clip(t):
        return y[max(int((t - 0.2) * SR), 0): int((t + 0.6) * SR)]

    return plots.snippet_grid([(f"{t:.2f} s · {c:.2f} · {'proposed' if k else 'rejected'}",
                                clip(t)) for t, c, k in
                               zip(least["start"], least["confidence"], least["kept"])],
                              ncols=3, title="the labeler's least sure calls: review these first")


@figure("baseline")
def baseline(ctx: Context):
    model = baselines.cached_mfcc_baseline(ctx.manifest)
    h = ctx.hero
    probs = model.probabilities(h["y"])
    return plots.probability_track(h["y"], probs, events=h["labels"],
                                   detected=model.events_from_probabilities(probs),
                                   end=min(10.0, h["duration"]), thresholds=model.postprocess,
                                   title="MFCC + logistic regression on the same recording")


@figure("features")
def features(ctx: Context):
    m = ctx.manifest
    pool = m[(m["split"] == "val") & (m["n_plops"] >= 5)].sort_values("snr_db")
    pool = pool if len(pool) else m.sort_values("snr_db")
    row = pool.iloc[min(2, len(pool) - 1)]                        # a fairly noisy one
    y, events = datasets.load_recording(row)
    fig = plots.feature_comparison(y, events=events, end=min(8.0, len(y) / SR))
    fig.suptitle(f"{row['recording']}: {row['snr_db']:.0f} dB SNR, background {row['backgrounds']}")
    return fig


@figure("training")
def training(ctx: Context):
    history = pd.read_csv(SHIPPED_MODEL / "history.csv")
    return plots.training_curves(history, title="the shipped CRNN (models/crnn/history.csv)")


@figure("hysteresis")
def hysteresis(ctx: Context):
    s = ctx.scores
    rules = dict(on=0.5, off=0.25, min_gap_s=0.08, min_duration_s=0.03)   # as in notebook 06
    i, t0 = bpm_plots.zoom_where_rules_matter(s["probs"], hop_s=HOP_S, references=s["refs"], **rules)
    fig, ax = plt.subplots(figsize=(11, 4), layout="constrained")
    bpm_plots.hysteresis_stages(ax, s["probs"][i], hop_s=HOP_S, view=(t0, t0 + 3.0), **rules,
                                reference=s["refs"][i], title=f"{s['table']['recording'][i]}, zoomed")
    ax.legend(loc="lower right", bbox_to_anchor=(1, 1), fontsize=8, ncols=5)
    return fig


@figure("bpm_interval")
def bpm_interval(ctx: Context):
    clean = simulate_onsets(rate_bpm=30, duration_s=180, shape=40, seed=1)
    edited = np.sort(np.r_[np.delete(clean, 40), clean[60] + [0.2, 0.45]])
    noisy = simulate_onsets(rate_bpm=30, duration_s=300, shape=40, miss_prob=0.1, burst_prob=0.1,
                            seed=1)
    fig, axes = plt.subplots(2, 1, figsize=(11, 5.5), layout="constrained")
    bpm_plots.interval_plot(axes[0], edited, true_bpm=30, title="one miss, one burst")
    bpm_plots.interval_plot(axes[1], noisy, true_bpm=30, title="10 % misses, 10 % bursts")
    return fig


@figure("evaluation")
def evaluation(ctx: Context):
    return plots.evaluation_views(ctx.scores["table"],
                                  title="the shipped CRNN on the test recordings: three views")


@figure("bpm_scatter")
def bpm_scatter(ctx: Context):
    t = ctx.scores["table"]
    fig, ax = plt.subplots(figsize=(6, 5), layout="constrained")
    bpm_plots.bpm_scatter(ax, t["true_bpm"], t["bpm"], low=t["bpm_low"], high=t["bpm_high"],
                          label="interval method", color="tab:blue")
    ax.legend(loc="upper left")
    ax.set_title("test recordings: BPM from detected plops")
    return fig


@figure("stream_windows")
def stream_windows(ctx: Context):
    return stream.plot_windows().figure


@figure("live_bpm")
def live_bpm(ctx: Context):
    from helpers.synth import synthesize_recording

    minutes = 6 if ctx.prof.name == "full" else 3
    window_s, every_s = 120.0, 30.0
    rec = synthesize_recording(seed=100, duration_s=minutes * 60, sr=SR, snr_db=12.0)  # as notebook 08
    y = rec.audio.mean(axis=0) if rec.audio.ndim == 2 else rec.audio
    found = []
    live = stream.StreamingDetector(ctx.detector, on_event=found.append)
    block = int(0.1 * SR)
    for i in range(0, len(y), block):
        live.process(y[i:i + block])
    live.flush()
    rolling = stream.RollingBPM(window_s=window_s, every_s=every_s)
    reports, pending = [], sorted(e.start for e in found)
    while rolling.next_report <= len(y) / SR:
        t = rolling.advance()
        while pending and pending[0] < t:
            rolling.add(pending.pop(0))
        reports.append(rolling.at(t))
    truth = bpm_over_time(rec.events, duration_s=len(y) / SR, window_s=window_s, step_s=every_s)
    ax = stream.plot_bpm(pd.DataFrame(reports), truth=truth,
                         title=f"{minutes} min streamed block by block: rolling BPM over "
                               f"{window_s:.0f} s, every {every_s:.0f} s")
    return ax.figure


# --------------------------------------------------------------------------- the cache


def fingerprint(prof) -> str:
    """Hash of everything the figures depend on: this script, the ``helpers`` modules it
    imports (not the whole package: new modules elsewhere leave the figures alone), the
    shipped model and the data set's settings."""
    import helpers.synth  # noqa: F401  (imported lazily by some figures)

    h = hashlib.sha256()
    modules = sorted({Path(m.__file__).resolve() for name, m in list(sys.modules.items())
                      if name == "helpers" or name.startswith("helpers.")
                      if getattr(m, "__file__", None)})
    files = [Path(__file__).resolve(), *modules,
             *sorted(p for p in SHIPPED_MODEL.iterdir() if p.is_file())]
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    h.update(json.dumps({"profile": prof.name, "recordings": prof.synth_recordings,
                         "duration_s": prof.synth_duration_s, "seed": prof.synth_seed,
                         "dpi": DPI, "style": STYLE}, sort_keys=True).encode())
    return h.hexdigest()[:16]


def make_figures(out: str | Path = DEFAULT_OUT, *, only: list[str] | None = None,
                 force: bool = False, quiet: bool = False) -> list[Path]:
    """Draw the figures into ``out`` (``<name>.png``) unless the cache says they are up to
    date; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    prof = profile()
    names = list(only or FIGURES)
    unknown = sorted(set(names) - set(FIGURES))
    if unknown:
        raise SystemExit(f"unknown figures {unknown}; choose from {list(FIGURES)}")
    paths = [out / f"{n}.png" for n in names]
    stamp = out / ".stamp"
    key = fingerprint(prof)
    if not force and not only and stamp.exists() and stamp.read_text().strip() == key \
            and all(p.exists() for p in paths):
        if not quiet:
            print(f"figures up to date in {out} ({prof.name} profile)")
        return paths
    stamp.unlink(missing_ok=True)
    ctx = Context(prof)
    t_all = time.perf_counter()
    for name, path in zip(names, paths):
        t0 = time.perf_counter()
        with plt.rc_context(STYLE):
            fig = FIGURES[name](ctx)
            fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
        plt.close("all")
        if not quiet:
            print(f"  {path.name:<20} {time.perf_counter() - t0:5.1f} s")
    if not only:
        stamp.write_text(key + "\n")
    if not quiet:
        print(f"{len(paths)} figures in {out} ({prof.name} profile, "
              f"{time.perf_counter() - t_all:.0f} s)")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--force", action="store_true", help="redraw even when up to date")
    parser.add_argument("--only", nargs="+", metavar="NAME", help=f"some of {list(FIGURES)}")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    make_figures(args.out, only=args.only, force=args.force, quiet=args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
