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
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--thresholds", default="0,0.3,0.4,0.5,0.6", help="minimum plausibility, comma-separated")
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


if __name__ == "__main__":
    main()
