"""What ``detect --strict`` does to the detector's scores, outside Jupyter.

Runs the shipped detector (int8) on the validation and test splits of the full synthetic set,
and the held-out model (``make model --heldout``; trained without music, babble, rain and the
drip airlock) on its seen validation and test recordings and on the unseen ones, measures every
detection with :func:`helpers.autolabel.plausibility`, and prints, for each minimum plausibility,
event F1 (precision, recall) and the share of recordings whose BPM is within ±10 % — the same
detections, filtered, so the rows differ only by the filter — and then the held-out model's
false plops on the unseen recordings by background family. The README's ``--strict`` figures
(minimum 0.5) and its false plops per family come from::

    .venv/bin/python bench/strict.py

(about 20 s on two CPUs; the held-out model must exist: ``make model`` makes it).

With ``--live`` it also streams recordings through ``listen --strict``'s detector
(:class:`helpers.stream.StreamingDetector` with ``min_plausibility``, 0.1 s blocks) and counts
the decisions that differ from ``detect --strict``'s (the README's agreement figures; about
2 minutes more): the shipped model on the test split and on the held-out unseen recordings,
and on a 3-minute file made of the quick set's first nine recordings, each with another voice
mixed in (the background changes every 20 s).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--thresholds", default="0,0.3,0.4,0.5,0.6", help="minimum plausibility, comma-separated")
    p.add_argument("--live", action="store_true", help="also compare listen --strict with detect --strict")
    args = p.parse_args()

    import pandas as pd

    from helpers import autolabel, datasets
    from helpers.config import data_dir, profile
    from helpers.evaluate import score_detections, summarize_scores
    from helpers.models import Detector
    from helpers.systems import ProbabilitySystem, run_systems

    def measured(det: Detector, manifest: pd.DataFrame) -> tuple[list, list, list]:
        """References, detections with their ``plausibility`` and durations: ``evaluate
        --strict``'s system, with a minimum of 0 so that it keeps every detection."""
        system = ProbabilitySystem(det, det.config.postprocess, name="crnn", min_plausibility=0.0,
                                   keep_audio=False)
        run = run_systems([system], manifest)
        return run.references, [o.events for o in run.outputs["crnn"]], run.durations

    def scored(runs: tuple[list, list, list], threshold: float) -> pd.DataFrame:
        refs, detections, durations = runs
        return score_detections(refs, [e[e["plausibility"] >= threshold] for e in detections], durations)

    main_set = datasets.synthetic(profile=profile("full"), progress=False)
    base = data_dir() / "heldout-full"
    if not (base / "model-pcen" / "config.json").exists():
        raise SystemExit(f"the held-out model is missing ({base / 'model-pcen'}): run `make model` first")
    shipped = Detector.load(backend="int8")
    held = Detector.load(base / "model-pcen", backend="keras")
    seen = datasets.read_manifest(base / "train")
    sets = {"shipped, validation": measured(shipped, main_set[main_set["split"] == "val"]),
            "shipped, test": measured(shipped, main_set[main_set["split"] == "test"]),
            "held-out model, seen validation": measured(held, seen[seen["split"] == "val"]),
            "held-out model, seen test": measured(held, seen[seen["split"] == "test"]),
            "held-out model, unseen": measured(held, unseen := datasets.read_manifest(base / "unseen"))}
    rows = []
    for threshold in map(float, args.thresholds.split(",")):
        row = {"min plausibility": threshold}
        for name, runs in sets.items():
            s = summarize_scores(scored(runs, threshold))
            row[name] = (f"F1 {s['f1']:.3f} (P {s['precision']:.2f}, R {s['recall']:.2f}), "
                         f"BPM ±10 % {s['bpm_within_10pct']:.0%}")
        rows.append(row)
    with pd.option_context("display.width", 250, "display.max_colwidth", 60):
        print(pd.DataFrame(rows).set_index("min plausibility").T.to_string())

    # where the held-out model's false plops come from (a recording can have several families)
    families = unseen["backgrounds"].fillna("").astype(str).str.split("+")
    names = sorted({f for fs in families for f in fs if f})
    for threshold in (0.0, autolabel.STRICT_PLAUSIBILITY):
        fp = scored(sets["held-out model, unseen"], threshold)["fp"].to_numpy()
        parts = ", ".join(f"{f} {int(sum(n for n, fs in zip(fp, families) if f in fs))}" for f in names)
        print(f"held-out model, unseen, false plops at min plausibility {threshold}: {parts} "
              f"(of {int(fp.sum())} in all)")
    if args.live:
        # the test split's detections and plausibilities are those measured above
        live_against_offline(shipped, {"test split": (main_set[main_set["split"] == "test"],
                                                      sets["shipped, test"][1]),
                                       "held-out unseen": (unseen, None)})


def live_against_offline(det, manifests: dict) -> None:
    """``listen --strict`` (0.1 s blocks) against ``detect --strict``: the detections that one
    keeps and the other does not, with their offline plausibility. ``manifests``: name →
    (manifest, its offline detections with ``plausibility``, or None to detect them here)."""
    import itertools

    import numpy as np

    from helpers import datasets
    from helpers.augment import add_at_snr
    from helpers.autolabel import HOP_S, STRICT_PLAUSIBILITY
    from helpers.backgrounds import excerpt
    from helpers.stream import StreamingDetector

    def differ(y: np.ndarray, offline) -> tuple[int, list[float]]:
        if offline is None:      # every detection, each with its plausibility
            offline = det.detect(y, min_plausibility=0.0)
        sd = StreamingDetector(det, keep_events=True, min_plausibility=STRICT_PLAUSIBILITY)
        for i in range(0, len(y), 1600):
            sd.process(y[i:i + 1600])
        sd.flush()
        live = set(np.round(sd.events()["start"].to_numpy() / HOP_S).astype(int))
        onsets = np.round(offline["start"].to_numpy() / HOP_S).astype(int)
        return len(offline), [float(v) for o, v in zip(onsets, offline["plausibility"])
                              if (o in live) != (v >= STRICT_PLAUSIBILITY)]

    cases = {name: zip(datasets.Recordings(m), offline or itertools.repeat(None))   # read as used
             for name, (m, offline) in manifests.items()}
    quick = datasets.synthetic(profile="quick", progress=False)
    rng = np.random.default_rng(0)
    parts = [add_at_snr(y, ev, excerpt("speech", rng, len(y), split="eval"), snr_db=float(rng.uniform(-3, 10)))
             for y, ev in datasets.Recordings(quick.iloc[:9])]
    cases["3 min, nine recordings with voices"] = [((np.concatenate(parts).astype(np.float32), None), None)]
    for name, pairs in cases.items():
        total, other = 0, []
        for (y, _), offline in pairs:
            n, o = differ(y, offline)
            total += n
            other += o
        span = f" (offline plausibility {min(other):.2f}–{max(other):.2f})" if other else ""
        print(f"listen --strict against detect --strict, {name}: {len(other)} of {total} decisions differ{span}")


if __name__ == "__main__":
    main()
