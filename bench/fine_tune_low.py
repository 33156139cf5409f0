"""The experiment behind the README's fine-tuning settings on low bubbles: does ``train`` learn
widelands' low bubbles (near 290 Hz) better with more epochs, more augmented copies or a
higher learning rate than its defaults (10 epochs, one augmented copy, 1e-3 from the shipped
model)?

The data are those of ``bench/run_bench.py --only bubbles`` (``_widelands_pools``): six minutes
made of the bubbles of two widelands recordings to train on, six made of the other two to
evaluate on. Each setting fine-tunes the shipped model once (``models.train_on_folders``, as
``python -m helpers train`` does, without its four-minute time budget), then ``python -m
helpers evaluate`` scores the int8 export; the false plops a minute in recorded talk and music
are those ``train`` reports (the Keras model).
Nothing of it is shipped. Run from the repository root, e.g. (one to three minutes each)::

    .venv/bin/python bench/fine_tune_low.py 10,1,0.001 20,1,0.001 10,3,0.001 10,1,0.002

Each argument is ``epochs,copies,learning rate``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("settings", nargs="+", help="epochs,copies,learning rate")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "fine-tune-low")
    args = ap.parse_args()
    if len(args.settings) > 1:   # one process each: a fresh TensorFlow gives the same weights every run
        for s in args.settings:
            subprocess.run([sys.executable, __file__, s, "--work", str(args.work)], check=True)
        return 0
    epochs, copies, lr = args.settings[0].split(",")
    epochs, copies, lr = int(epochs), int(copies), float(lr)

    from helpers import bubbles, models
    from run_bench import _widelands_pools

    folders = {"train": args.work / "train", "test": args.work / "test"}
    for (role, seeds), pool in zip((("train", range(100, 112)), ("test", range(200, 212))), _widelands_pools(bubbles)):
        if not folders[role].exists():
            bubbles.write_recordings(folders[role], seeds=seeds, pool=pool, duration_s=30.0)
    real = models.train_detector

    def train_detector(*a, **k):
        return real(*a, **{**k, "copies": copies, "learning_rate": lr})

    models.train_detector = train_detector
    out = args.work / f"model-e{epochs}-c{copies}-lr{lr:g}"
    t0 = time.perf_counter()
    report = models.train_on_folders([folders["train"]], out=out, epochs=epochs, progress=False, time_budget_s=None)
    seconds = time.perf_counter() - t0
    r = subprocess.run([sys.executable, "-m", "helpers", "evaluate", "--data", str(folders["test"]), "--model", str(out),
                        "--json", "--quiet"], capture_output=True, text=True, cwd=ROOT, check=False)
    if r.returncode:
        sys.exit(f"evaluate failed ({r.returncode}):\n{r.stderr}")
    s = json.loads(r.stdout.strip().splitlines()[-1])
    result = {"epochs": epochs, "copies": copies, "learning_rate": lr, "seconds": round(seconds),
              "best_epoch": report["best_epoch"], "epochs_run": report["epochs_run"],
              **{k: round(s[k], 3) for k in ("f1", "precision", "recall", "bpm_within_10pct")},
              "false_plops_per_minute": report["false_plops_per_minute"]["model"]}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
