"""Train the shipped detector reproducibly (``make model``).

Trains the CRNN on the synthetic training split plus the extra synthetic training set of
the profile, keeps the epoch with the best validation event F1, tunes the post-processing
on the validation split, exports LiteRT float32 and int8, scores all three on the test
split, and writes everything to ``models/crnn/`` (``report.json`` holds the figures).
With ``--heldout`` it also trains the same recipe on data without some background families
and airlock types (and without the recorded speech and music), and scores it on recordings
made only of those (the generalization
estimate of notebook 05), stored in ``report.json`` under ``heldout``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default=None, help="full (default) or quick")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "crnn")
    ap.add_argument("--heldout", action="store_true", help="also estimate held-out performance")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frontend", default="pcen", choices=["pcen", "logmel"],
                    help="features: PCEN (default, chosen by measurement) or log-mel")
    args = ap.parse_args()

    from helpers import datasets, training
    from helpers.config import profile
    from helpers.models import serial_ops

    serial_ops()   # one TensorFlow operation at a time: the same weights bit for bit on every run

    prof = profile(args.profile)
    t0 = time.perf_counter()
    main_set = datasets.synthetic(profile=prof)
    extra = datasets.synthetic_training_extra(profile=prof)
    tune = datasets.synthetic_validation_extra(profile=prof)
    report = training.train_and_export(main_set, extra, out=args.out, profile=prof, seed=args.seed,
                                       frontend=args.frontend, tune=tune)
    if args.heldout:
        report["heldout"] = training.heldout_estimate(profile=prof, seed=args.seed,
                                                      frontend=args.frontend)
    report["total_seconds"] = round(time.perf_counter() - t0, 1)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    print(training.format_report(report))
    if args.out.resolve() == (ROOT / "models" / "crnn").resolve() and args.heldout:
        table = training.report_table(report)
        for doc in (ROOT / "README.md", ROOT / "slides" / "talk.md"):
            if replace_table(doc, table):
                print(f"updated the shipped model's table in {doc.relative_to(ROOT)}")
    return 0


def replace_table(doc: Path, table: str) -> bool:
    """Replace the Markdown table whose header starts like ``table``'s in ``doc``."""
    lines = doc.read_text().split("\n")
    header = table.split("\n", 1)[0].split("|")[1]
    starts = [i for i, line in enumerate(lines) if line.startswith("|") and line.split("|")[1] == header]
    if not starts:
        return False
    i = starts[0]
    j = i
    while j < len(lines) and lines[j].startswith("|"):
        j += 1
    doc.write_text("\n".join(lines[:i] + table.split("\n") + lines[j:]))
    return True


if __name__ == "__main__":
    sys.exit(main())
