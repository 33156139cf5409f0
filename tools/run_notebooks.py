"""Execute the notebooks in order with papermill and print a summary (``make run``).

Each notebook runs in its own process, so its wall time and peak memory (of the kernel, the
largest process) are measured separately. Executed copies and HTML go to ``OUT/notebooks``;
the summary goes to stdout and ``OUT/summary.json``. With ``--in-place`` the executed
notebooks also replace the ones in ``notebooks/`` (to refresh the committed outputs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_one(nb: Path, out_dir: Path, env: dict) -> dict:
    out_nb = out_dir / nb.name
    cmd = [sys.executable, "-m", "papermill", str(nb), str(out_nb), "--cwd", str(nb.parent),
           "--kernel", "python3", "--log-level", "WARNING", "--progress-bar"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    # ru_maxrss of the papermill process covers its waited-for children: the kernel
    peak_mb = usage.ru_maxrss / 1024
    html_ok = False
    if out_nb.exists():
        html = subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", str(out_nb),
                               "--output-dir", str(out_dir), "--log-level", "WARN"], env=env)
        html_ok = html.returncode == 0
    return {"notebook": nb.name, "ok": code == 0, "seconds": round(elapsed, 1),
            "peak_memory_mb": round(peak_mb), "html": html_ok}


def dataset_summary() -> dict:
    from helpers.config import profile
    from helpers.datasets import read_manifest

    prof = profile()
    try:
        m = read_manifest(prof.synth_dir)
    except FileNotFoundError:
        return {}
    by_split = m.groupby("split").agg(recordings=("recording", "size"), plops=("n_plops", "sum"),
                                      minutes=("duration_s", lambda s: round(s.sum() / 60, 1)))
    size = sum(f.stat().st_size for f in prof.synth_dir.iterdir() if f.is_file())
    out = {"profile": prof.name, "recordings": len(m), "minutes": round(m["duration_s"].sum() / 60, 1),
           "plops": int(m["n_plops"].sum()), "megabytes": round(size / 1e6, 1),
           "by_split": by_split.reset_index().to_dict(orient="records")}
    report = prof.synth_dir / "energy_counter.json"
    if report.exists():
        out["energy_counter"] = json.loads(report.read_text())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "build")
    ap.add_argument("--in-place", action="store_true")
    args = ap.parse_args()
    out_dir = args.out / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("AED_PROFILE", "full")
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    rows = []
    t0 = time.perf_counter()
    for nb in args.notebooks:
        print(f"==> {nb.name}", flush=True)
        row = run_one(nb, out_dir, env)
        rows.append(row)
        print(f"    {'ok' if row['ok'] else 'FAILED'} in {row['seconds']} s, "
              f"peak memory {row['peak_memory_mb']} MB", flush=True)
        if not row["ok"]:
            break
        if args.in_place:
            shutil.copyfile(out_dir / nb.name, nb)
    total = time.perf_counter() - t0
    summary = {"profile": env["AED_PROFILE"], "total_seconds": round(total, 1), "notebooks": rows,
               "dataset": dataset_summary()}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))

    print("\nSummary")
    print("-------")
    width = max(len(r["notebook"]) for r in rows)
    for r in rows:
        print(f"{r['notebook']:<{width}}  {'ok' if r['ok'] else 'FAILED':6}  {r['seconds']:7.1f} s"
              f"  {r['peak_memory_mb']:6d} MB")
    print(f"{'all notebooks':<{width}}          {total:7.1f} s")
    d = summary["dataset"]
    if d:
        print(f"\nSynthetic data set ({d['profile']} profile): {d['recordings']} recordings, "
              f"{d['minutes']} min, {d['plops']} plops, {d['megabytes']} MB")
        for s in d["by_split"]:
            print(f"  {s['split']:<5}  {s['recordings']:3d} recordings  {s['plops']:5d} plops  "
                  f"{s['minutes']:5.1f} min")
        if "energy_counter" in d:
            e = d["energy_counter"]
            print(f"Energy-threshold counter, tuned on one half, scored on the other: "
                  f"event F1 {e['f1']:.3f} (precision {e['precision']:.3f}, recall {e['recall']:.3f})")
    print(f"\nExecuted notebooks and HTML: {out_dir}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
