"""How fast is the auto-labeler? Real-time factor on one core and peak memory.

Two measurements, each in a fresh child process pinned to one CPU core with every thread pool
limited to one thread (``sched_setaffinity`` + ``OMP/OPENBLAS/MKL_NUM_THREADS=1`` +
threadpoolctl), so that the numbers mean "one core":

1. **one hour in one file**: the 60 recordings of the synthetic set (full profile, 60 × 60 s)
   joined end to end, written once as a 16 kHz mono 16-bit WAV (``--rate`` changes the rate,
   e.g. 44100 for a typical phone or recorder file), labeled with
   :func:`helpers.autolabel.autolabel_file`. Its labels are also scored against the joined
   true labels (event F1, onsets within 100 ms). A long file is labeled in segments of 5
   minutes, each with its own model; here every segment spans five unrelated recordings,
   which is harder than a real long recording of one airlock.
2. **one hour in sixty files**: the same recordings as they are on disk (FLAC at their own
   rates, 8-48 kHz, some stereo), labeled with :func:`helpers.autolabel.autolabel_paths`,
   and scored against the label files beside them.

The target is 100× real time or more: an hour of audio in at most 36 s.

Run it from the repository root::

    .venv/bin/python bench/autolabel_speed.py            # both measurements
    .venv/bin/python bench/autolabel_speed.py --only file --rate 44100

Output: one line per measurement, then a JSON summary (also written with ``--json PATH``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")}


def build_hour_file(path: Path, rate: int) -> tuple[float, int]:
    """Join the synthetic recordings into one file; write the joined labels beside it."""
    import numpy as np
    import pandas as pd

    from helpers import datasets
    from helpers.audio import resample, save_audio
    from helpers.labels import write_labels

    manifest = datasets.synthetic(profile="full")
    parts, events, offset = [], [], 0.0
    for _, row in manifest.iterrows():
        y, ev = datasets.load_recording(row)
        parts.append(y)
        events.append(ev.assign(start=ev["start"] + offset, end=ev["end"] + offset))
        offset += len(y) / 16000
    y = np.concatenate(parts)
    if rate != 16000:
        y = resample(y, 16000, rate)
    save_audio(path, y, sr=rate, subtype="PCM_16")
    truth = pd.concat(events, ignore_index=True)
    write_labels(truth, path.with_suffix(".txt"))
    return offset, len(truth)


def measure(kind: str, target: str, out_dir: str) -> dict:
    """Run in the pinned child: label, time it, report."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    from helpers import autolabel as al
    from helpers.evaluate import onset_scores
    from helpers.labels import read_labels

    t0, c0 = time.perf_counter(), time.process_time()
    if kind == "file":
        res = al.autolabel_file(target)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        truth = read_labels(Path(target).with_suffix(".txt"))
        score = onset_scores(truth, res.events, collar=0.1)
        audio_s, events = res.duration_s, len(res.events)
        extra = {"status": res.status, "f1": round(score["f1"], 3),
                 "precision": round(score["precision"], 3), "recall": round(score["recall"], 3),
                 "restarts": len(res.restarts) if res.restarts is not None else 0}
    else:
        table = al.autolabel_paths([target], out_dir=out_dir, progress=False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        audio_s, events = float(table["duration_s"].sum()), int(table["events"].sum())
        extra = {"files": len(table), "statuses": table["status"].value_counts().to_dict()}
        pairs = [(read_labels(Path(f).with_suffix(".txt")), read_labels(lab))
                 for f, lab in zip(table["file"], table["labels"])
                 if lab and Path(f).with_suffix(".txt").exists()]
        if pairs:
            from helpers.evaluate import pooled_onset_scores

            score = pooled_onset_scores(pairs, collar=0.1)
            extra.update(f1=round(score["f1"], 3), precision=round(score["precision"], 3),
                         recall=round(score["recall"], 3))
    peak_mb = _peak_rss_mb()
    return {"measurement": kind, "audio_s": round(audio_s, 1), "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "realtime_factor": round(audio_s / wall, 1),
            "realtime_factor_cpu": round(audio_s / cpu, 1),
            "peak_memory_mb": round(peak_mb), "events": events, **extra}


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM: unlike ``ru_maxrss`` it is not inherited
    from the parent across fork and exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load() -> str:
    try:
        return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def run_child(kind: str, target: Path, out_dir: Path) -> dict:
    env = {**os.environ, **ONE_THREAD}
    cmd = [sys.executable, __file__, "--child", kind, str(target), str(out_dir)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"the {kind} measurement failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["file", "files"], help="run one measurement only")
    ap.add_argument("--rate", type=int, default=16000, help="sample rate of the hour file")
    ap.add_argument("--work", type=Path, default=None, help="folder for the hour file "
                    "(default: a temporary folder, deleted afterwards)")
    ap.add_argument("--json", type=Path, default=None, help="also write the summary here")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:  # the measuring process: one core, one thread
        if args.child[0] == "build":
            print(json.dumps(build_hour_file(Path(args.child[1]), int(args.child[2]))))
            return 0
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        print(json.dumps(measure(*args.child)))
        return 0

    from helpers import datasets
    from helpers.config import profile

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.only in (None, "file"):
            hour = work / f"one_hour_{args.rate}.wav"
            if not hour.exists():
                print(f"writing {hour.name} (the synthetic set joined end to end) ...", flush=True)
                subprocess.run([sys.executable, __file__, "--child", "build", str(hour),
                                str(args.rate)], check=True, cwd=ROOT, capture_output=True)
            results.append(run_child("file", hour, work / "labels_file"))
        if args.only in (None, "files"):
            datasets.synthetic(profile="full")
            results.append(run_child("files", profile("full").synth_dir, work / "labels_files"))

    pinned = hasattr(os, "sched_setaffinity")
    print(f"one core ({'pinned' if pinned else 'not pinned'}, one thread per pool), "
          f"{os.cpu_count()} cores on this machine, {_load()}; "
          "target: 100x real time (an hour in 36 s)")
    print("real-time factor = audio time / processing time; 'CPU' counts only the time the "
          "core spent on the labeler (equal to the wall time on an idle machine)")
    for r in results:
        what = ("one hour in one file" if r["measurement"] == "file"
                else f"one hour in {r['files']} files")
        line = (f"{what:24s} {r['audio_s'] / 60:5.1f} min of audio: wall {r['wall_s']:6.1f} s "
                f"({r['realtime_factor']:.0f}x), CPU {r['cpu_s']:.1f} s "
                f"({r['realtime_factor_cpu']:.0f}x), peak memory {r['peak_memory_mb']} MB, "
                f"{r['events']} plops")
        if "f1" in r:
            line += f", event F1 {r['f1']:.3f} against the true labels"
        print(line)
    summary = {"python": sys.version.split()[0], "machine": _load(), "results": results}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
