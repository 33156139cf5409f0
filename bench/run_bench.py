"""``make bench``: the project and its peers measured in one run.

Writes ``results/bench.json`` (every figure) and ``results/bench.md`` (the table the README
shows between its ``bench`` markers, which this script also updates). Parts:

quality    every system of :mod:`helpers.systems` on the synthetic test split, on a larger
           test set of fresh recordings (``datasets.synthetic_test_extra``), and on the
           held-out families (recordings made only of backgrounds and airlocks that the
           held-out CRNN never heard; the other systems are tuned on the same seen data)
backgrounds  the shipped model on recorded speech and music it never trained on (the
           ``eval`` clips of :mod:`helpers.backgrounds`): false plops per minute in them
           alone, and the test split with them mixed in at 10 and 0 dB
bubbles    the shipped model on recorded bubbles (:mod:`helpers.bubbles`, real sounds that nothing
           trains or tunes on) mixed into every background family at 0, 10 and 20 dB
detect     ``python -m helpers detect`` on one hour of audio in one file, on one core:
           wall time, real-time factor, peak resident memory
train      ``python -m helpers train`` on 6 minutes of labeled recordings (2 cores)
inference  LiteRT int8 and float against Keras: milliseconds per 2 s window, one thread
autolabel  ``bench/autolabel_speed.py`` (one core)
stream     ``bench/stream_bench.py`` (CPU per audio second, latency, memory over 1 h)
notebooks  ``make run`` as a whole: wall time, and each notebook's time and peak memory
notebooks_1cpu  Binder on one CPU (``taskset``): postBuild's synthesis, then the series

Targets are printed beside the figures, never asserted. Run from the repository root::

    .venv/bin/python bench/run_bench.py                  # everything (about 40 minutes)
    .venv/bin/python bench/run_bench.py --only quality,detect
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
PY = sys.executable
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                               "TF_NUM_INTEROP_THREADS")}
PARTS = ("quality", "backgrounds", "bubbles", "detect", "train", "inference", "autolabel", "stream", "notebooks", "notebooks_1cpu")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def machine() -> dict:
    import psutil

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu,
            "cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(terse=True),
            "load_before": round(os.getloadavg()[0], 2)}


def child(cmd: list[str], *, one_core: bool = False, timeout: float = 7200) -> dict:
    """Run ``cmd``; its wall time and peak resident memory (a fresh process, so the peak is its own)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    if one_core:
        env.update(ONE_THREAD)
    code = ("import os, resource, subprocess, sys, time, json\n"
            + ("os.sched_setaffinity(0, {0})\n" if one_core else "")
            + "t = time.perf_counter()\n"
              "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
              "dt = time.perf_counter() - t\n"
              "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
              "print(json.dumps({'rc': r.returncode, 'seconds': dt, 'peak_rss_mb': rss,"
              " 'stdout': r.stdout[-20000:], 'stderr': r.stderr[-4000:]}))\n")
    out = subprocess.run([PY, "-c", code, *cmd], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[:4]}: {out.stderr[-2000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if res["rc"] != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} failed ({res['rc']}): {res['stderr'][-2000:]}")
    return res


# ---------------------------------------------------------------------------------------
def part_quality(work: Path) -> dict:
    """Every system on the synthetic test split, on the larger test set and on the held-out
    families; the labeler's F1 by SNR on the first two."""
    import warnings

    warnings.filterwarnings("ignore")
    from helpers import datasets, systems, training
    from helpers.config import profile

    prof = profile("full")
    out = {}
    main = datasets.synthetic(profile=prof)
    t0 = time.perf_counter()
    contestants = systems.make_systems(main, tune=datasets.synthetic_validation_extra(profile=prof))
    run = systems.run_systems(contestants, main[main["split"] == "test"])
    per_test, overall = systems.evaluation_tables(run)
    out["test"] = _quality_rows(overall, run)
    bpm_methods = {"test split": _bpm_methods(run)}
    out["test_seconds"] = round(time.perf_counter() - t0, 1)
    log(f"quality on the test split in {out['test_seconds']} s")

    # the larger test set: fresh recordings that nothing trained or tuned on
    t0 = time.perf_counter()
    run = systems.run_systems(contestants, datasets.synthetic_test_extra(profile=prof))
    per_large, overall = systems.evaluation_tables(run)
    out["large_test"] = _quality_rows(overall, run)
    out["large_test_bpm_by_plops"] = _bpm_by_plops(per_large[per_large["system"] == "CRNN int8"])
    bpm_methods["larger test set"] = _bpm_methods(run)
    out["bpm_methods"] = bpm_methods
    from helpers.evaluate import false_plops_at_confusers

    out["large_test_false_plops"] = [{"system": name, **false_plops_at_confusers(rows)}
                                     for name, rows in per_large.groupby("system", sort=False)]
    log(f"quality on the larger test set in {round(time.perf_counter() - t0, 1)} s")
    # the GMM-HMM labeler's target (issue 3), its F1 at 10 dB SNR or more, from the same runs:
    # the GMM-HMM system is autolabel with its defaults
    from helpers.autolabel import quality_table

    out["autolabel"] = {}
    for name, per in (("test", per_test), ("large_test", per_large)):
        hmm = per[per["system"] == "GMM-HMM"].assign(split="test")
        table = quality_table(hmm, {}).loc["test"]
        out["autolabel"][name] = {group: {"recordings": int(r["recordings"]), "plops": int(r["plops"]),
                                          "f1": round(float(r["F1"]), 3)} for group, r in table.iterrows()}

    # held out: the CRNN trained without these families (make model --heldout makes it)
    held_sets = training.heldout_sets(profile=prof, progress=False)
    model = held_sets["folder"] / "model-pcen"
    if not (model / "config.json").exists():
        log("the held-out CRNN is missing: training it (training.heldout_estimate, ~10 min)")
        training.heldout_estimate(profile=prof, progress=False)
    unseen = held_sets["unseen"]
    held = systems.make_systems(held_sets["train"], include=[n for n in systems.SYSTEM_NAMES if not n.startswith("CRNN")],
                                tune=held_sets["tune"])
    det = _keras(model)  # the held-out model is kept as Keras only (not exported)
    held.systems.append(systems.ProbabilitySystem(det, det.config.postprocess, name="CRNN keras"))
    run = systems.run_systems(held, unseen)
    _, overall = systems.evaluation_tables(run)
    out["heldout"] = _quality_rows(overall, run)
    out["heldout_recordings"] = int(len(unseen))
    out["heldout_families"] = {"backgrounds": list(training.HELDOUT_BACKGROUNDS),
                               "airlocks": list(training.HELDOUT_AIRLOCKS)}
    return out


def part_backgrounds(work: Path) -> dict:
    """The shipped model (int8, plain and ``--strict``) on the recorded backgrounds' ``eval`` clips."""
    import warnings

    warnings.filterwarnings("ignore")
    from helpers import backgrounds, datasets
    from helpers.autolabel import STRICT_PLAUSIBILITY
    from helpers.config import profile
    from helpers.models import Detector

    det = Detector.load(ROOT / "models" / "crnn", backend="int8")
    strict = SimpleNamespace(detect=functools.partial(det.detect, min_plausibility=STRICT_PLAUSIBILITY))
    main = datasets.synthetic(profile=profile("full"))
    test = main[main["split"] == "test"]
    out = {}
    for name, d in (("int8", det), ("int8 --strict", strict)):
        mixed = backgrounds.scores_in(d, test)
        out[name] = {"false_plops_per_minute": backgrounds.false_plops_per_minute(d),
                     "mixed": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}
                               for r in mixed.to_dict("records")]}
        log(f"recorded backgrounds ({name}): false plops per minute {out[name]['false_plops_per_minute']}; "
            + ", ".join(f"{r['family']} at {r['snr_db']:g} dB F1 {r['f1']:.3f}" for r in out[name]["mixed"]))
    return out


def part_bubbles(work: Path) -> dict:
    """The shipped model (int8) on recorded bubbles in every background family (:mod:`helpers.bubbles`)."""
    import warnings

    warnings.filterwarnings("ignore")
    from helpers import bubbles, robustness
    from helpers.models import Detector

    from helpers.autolabel import autolabel

    # the CRNN and the GMM-HMM labeler on the same mixtures, of the bubbles the CRNN did not train on
    _, held_out = bubbles.split_pool()
    both = bubbles.sweep({"int8": Detector.load(ROOT / "models" / "crnn", backend="int8"),
                          "GMM-HMM": lambda y: autolabel(y).events}, pool=held_out)
    table, labeler = both[both["model"] == "int8"], both[both["model"] == "GMM-HMM"]
    by_snr = robustness.summarize_sweep(table, by=["snr_db"])
    by_snr["bpm_within_10pct"] = table.groupby("snr_db")["within_10"].mean().to_numpy()
    by_snr["bpm_within_10pct_labels"] = table.groupby("snr_db")["bpm_error_oracle"].apply(
        lambda e: (e <= 0.10).mean()).to_numpy()
    by_family = robustness.summarize_sweep(table, by=["family"]).sort_values("f1")

    def records(frame):
        return [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}
                for r in frame.to_dict("records")]

    hmm_by_snr = robustness.summarize_sweep(labeler, by=["snr_db"])
    hmm_by_snr["bpm_within_10pct"] = labeler.groupby("snr_db")["within_10"].mean().to_numpy()
    out = {"bubbles": len(held_out), "bubbles_all": len(bubbles.single_bubbles()), "tracks": int(table["seed"].nunique()),
           "track_seconds": float(table["duration_s"].iloc[0]), "by_snr": records(by_snr),
           "by_family": records(by_family), "labeler_by_snr": records(hmm_by_snr)}
    out["others"] = _bubbles_other_sources(bubbles, records)
    out["own"] = _bubbles_fine_tuned(work, bubbles)
    out["own_low"] = _bubbles_fine_tuned(work, bubbles, _widelands_pools(bubbles), name="widelands")
    for name, key in (("int8", "by_snr"), ("GMM-HMM", "labeler_by_snr")):
        log(f"recorded bubbles, {name}: " + ", ".join(f"{r['snr_db']:g} dB F1 {r['f1']:.3f} (P {r['precision']:.3f}, "
                                                      f"R {r['recall']:.3f})" for r in out[key]))
    return out


#: tracks of 60 s of the other sources' sounds mixed into recorded talk and into recorded music
TALK_TRACKS = 6


def _bubbles_other_sources(bubbles, records) -> dict:
    """The shipped model (int8) on the bubbles and drops of eight other games and a desktop
    (``data/bubbles/others``, which the shipped model never trains on): pooled by SNR, by package
    at 10 dB (:func:`helpers.bubbles.by_package`), and in recorded talk and music
    (:func:`helpers.bubbles.in_talk_and_music`)."""
    import pandas as pd

    from helpers.evaluate import summarize_scores
    from helpers.models import Detector

    det = Detector.load(ROOT / "models" / "crnn", backend="int8")
    pool = bubbles.single_bubbles(bubbles.others_folder())
    table = bubbles.sweep(det, pool=pool)
    by_snr = [{"snr_db": float(snr), **summarize_scores(g)} for snr, g in table.groupby("snr_db")]
    per = bubbles.by_package(det, pool, snr_db=10.0)
    talk = bubbles.in_talk_and_music(det, pool, tracks=TALK_TRACKS)
    out = {"sounds": len(pool), "packages": len(per), "by_snr": records(pd.DataFrame(by_snr)),
           "by_package": records(per), "package_mean_f1": round(float(per["f1"].mean()), 3),
           "in_talk_and_music": {"tracks": TALK_TRACKS, "by_snr": records(talk)}}
    log("other sources, int8: " + ", ".join(f"{r['snr_db']:g} dB F1 {r['f1']:.3f}" for r in out["by_snr"])
        + f"; mean over packages at 10 dB {out['package_mean_f1']:.3f}; in talk and music: "
        + ", ".join(f"{r['family']} {r['snr_db']:g} dB F1 {r['f1']:.3f}" for r in out["in_talk_and_music"]["by_snr"]))
    return out


def _bubbles_fine_tuned(work: Path, bubbles, pools=None, name: str = "bubbles") -> dict:
    """``train`` on 6 minutes of labeled recordings made of the sounds of ``pools[0]``, then
    ``evaluate`` the shipped and the fine-tuned model on 6 other minutes made of ``pools[1]``:
    44.1 kHz stereo FLAC, WAV and Ogg files with their labels, through the command line.
    Default: the bubbles of three of the game's six recordings, then of the other three."""
    folders = {"train": work / f"{name}-train", "test": work / f"{name}-test"}
    train_pool, test_pool = pools if pools is not None else bubbles.split_pool()
    for role, seeds, pool in (("train", range(100, 112), train_pool), ("test", range(200, 212), test_pool)):
        if folders[role].exists():
            shutil.rmtree(folders[role])
        bubbles.write_recordings(folders[role], seeds=seeds, pool=pool, duration_s=30.0)
    t = child([PY, "-m", "helpers", "train", "--data", str(folders["train"]), "--out", str(work / f"model-{name}"),
               "--epochs", "10", "--quiet"])
    out = {"train_minutes": 6.0, "train_seconds": round(t["seconds"], 1),
           "train_sounds": len(train_pool), "test_sounds": len(test_pool),
           "val_event_f1": json.loads(t["stdout"].strip().splitlines()[-1])["val_event_f1"]}
    for label, model in (("shipped", ROOT / "models" / "crnn"), ("fine-tuned", work / f"model-{name}")):
        r = child([PY, "-m", "helpers", "evaluate", "--data", str(folders["test"]), "--model", str(model),
                   "--json", "--quiet"])
        s = json.loads(r["stdout"].strip().splitlines()[-1])
        out[label] = {k: round(s[k], 3) for k in ("f1", "precision", "recall", "bpm_within_10pct")}
        out[label]["plops"] = s["plops"]
        out[label]["false_plops_per_minute"] = _false_plops_int8(str(model))
        log(f"{name}, own recordings: {label} F1 {s['f1']:.3f} (P {s['precision']:.3f}, R {s['recall']:.3f})")
    return out


@functools.lru_cache(maxsize=None)
def _false_plops_int8(model: str) -> dict:
    """:func:`helpers.backgrounds.false_plops_per_minute` of the int8 model in ``model``, once per
    model (both fine-tuning cases compare with the shipped one)."""
    from helpers import backgrounds
    from helpers.models import Detector

    return backgrounds.false_plops_per_minute(Detector.load(model, backend="int8"))


def _widelands_pools(bubbles):
    """The brewery's and winery's bubbles of widelands (``data/bubbles/others``, near 290 Hz, which
    the shipped model misses a quarter to a third of): those of its ``_00`` recordings to train on, of its ``_01``
    ones to test on, as a brewer with low plops would label one session and check another."""
    mine = [b for b in bubbles.single_bubbles(bubbles.others_folder()) if bubbles.package(b.source) == "widelands"]
    return ([b for b in mine if b.source.endswith("_00")], [b for b in mine if b.source.endswith("_01")])


def _keras(model: Path):
    from helpers.models import Detector

    return Detector.load(model, backend="keras")


#: plops per recording: the bands of the BPM breakdown (a recording of the larger test set: 60 s in
#: the full profile, at 2–240 BPM)
PLOP_BANDS = (0, 10, 20, 40, float("inf"))


def _bpm_by_plops(per) -> list[dict]:
    """BPM within ±10 % by plops per recording (one system's rows of ``evaluation_tables``):
    how much of the BPM figure is the short, slow recordings, where one plop more or less is
    over 10 % and the median interval of a few intervals is noisy even on the labels."""
    import math

    import pandas as pd

    from helpers.evaluate import summarize_scores

    bands = pd.cut(per["n_ref"], PLOP_BANDS, right=False)
    rows = []
    for band, d in per.groupby(bands, observed=True):
        if band.left == 0:
            name = f"under {int(band.right)}"
        elif math.isinf(band.right):
            name = f"{int(band.left)} or more"
        else:
            name = f"{int(band.left)}–{int(band.right) - 1}"
        s = summarize_scores(d)
        rows.append({"plops": name, "recordings": s["recordings"],
                     **{k: round(s[k], 3) for k in ("bpm_within_10pct", "bpm_within_10pct_labels", "f1")}})
    return rows


def _bpm_methods(run, system: str = "CRNN int8") -> dict:
    """BPM within ±10 % of one system's detections and of the labels, by ``detect
    --bpm-method``: the same detections, three estimators."""
    from helpers.evaluate import score_detections, summarize_scores

    ests = [o.events for o in run.outputs[system]]
    out = {}
    for method in ("interval", "mean", "count"):
        s = summarize_scores(score_detections(run.references, ests, run.durations, bpm_method=method))
        out[method] = {"bpm_within_10pct": round(s["bpm_within_10pct"], 3),
                       "bpm_within_10pct_labels": round(s["bpm_within_10pct_labels"], 3)}
    return out


def _quality_rows(overall, run) -> list[dict]:
    rows = []
    for r in overall[overall["split"] == "all"].itertuples():
        rows.append({"system": r.system, "f1": round(r.f1, 3), "precision": round(r.precision, 3),
                     "recall": round(r.recall, 3), "f1_200ms": round(r.f1_200ms, 3),
                     "window_pr_auc": round(r.window_pr_auc, 3), "segment_f1_1s": round(r.segment_f1_1s, 3),
                     "bpm_error_median": round(r.bpm_error_median, 3),
                     "bpm_within_10pct": round(r.bpm_within_10pct, 3),
                     "bpm_ci_coverage": round(r.bpm_ci_coverage, 3),
                     "bpm_within_10pct_labels": round(r.bpm_within_10pct_labels, 3), "rtf": round(r.rtf, 5),
                     "recordings": int(r.recordings), "plops": int(r.plops)})
    return rows


def hour_file(work: Path) -> Path:
    """One hour of audio in one 16 kHz WAV (the synthetic set joined end to end): the file
    ``bench/autolabel_speed.py`` labels too, built once in ``work`` for both."""
    from autolabel_speed import build_hour_file  # bench/ is this script's folder

    path = work / "one_hour_16000.wav"
    if not path.exists():
        build_hour_file(path, 16000)
    return path


def part_detect(work: Path) -> dict:
    path = hour_file(work)
    import soundfile as sf

    seconds = sf.info(str(path)).duration
    res = {}
    for name, backend, extra in (("int8", "int8", []), ("keras", "keras", []),
                                 ("int8 --strict", "int8", ["--strict"])):
        r = child([PY, "-m", "helpers", "detect", str(path), "--out", str(work / f"detect-{backend}{len(extra)}"),
                   "--backend", backend, "--quiet", *extra], one_core=True)
        res[name] = {"audio_s": round(seconds, 1), "seconds": round(r["seconds"], 1),
                        "realtime_factor": round(seconds / r["seconds"], 1),
                        "peak_rss_mb": round(r["peak_rss_mb"]), "csv": r["stdout"].strip().splitlines()[-1]}
        log(f"detect {backend}: 1 h of audio in {r['seconds']:.1f} s on one core, peak {r['peak_rss_mb']:.0f} MB")
    return res


def part_train(work: Path) -> dict:
    """``helpers train`` (fine-tuning the shipped model, the default) on 6 minutes of labeled audio."""
    from helpers import datasets

    folder = work / "six_minutes"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    m = datasets.synthetic(profile="full")
    rows = m[m["split"] == "train"].head(6)
    for r in rows.itertuples():
        shutil.copy(r.path, folder / Path(r.path).name)
        shutil.copy(r.labels, folder / Path(r.labels).name)
    minutes = float(rows["duration_s"].sum()) / 60
    out = {}
    for mode, extra in (("fine-tune", []), ("from scratch", ["--from-scratch"])):
        r = child([PY, "-m", "helpers", "train", "--data", str(folder), "--out", str(work / f"model-{mode[:4]}"),
                   "--epochs", "10", "--quiet", *extra])
        report = json.loads(r["stdout"].strip().splitlines()[-1])
        out[mode] = {"minutes_of_audio": round(minutes, 1), "seconds": round(r["seconds"], 1),
                     "epochs_run": report["epochs_run"], "val_event_f1": report["val_event_f1"],
                     "peak_rss_mb": round(r["peak_rss_mb"])}
        log(f"train ({mode}) on {minutes:.1f} min: {r['seconds']:.0f} s, validation F1 {report['val_event_f1']}")
    return out


def part_inference(work: Path) -> dict:
    code = r"""
import json, time, numpy as np, os
os.sched_setaffinity(0, {0})
from helpers.models import Detector, WINDOW, N_MELS
out = {}
x = np.random.default_rng(0).normal(size=(1, WINDOW, N_MELS, 1)).astype("float32")
for backend in ("keras", "float", "int8"):
    d = Detector.load(backend=backend)
    d.predict_windows(x)
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < 5.0:
        d.predict_windows(x); n += 1
    out[backend] = round(1000 * (time.perf_counter() - t) / n, 2)
import pathlib
sizes = {k: pathlib.Path(d.path, f).stat().st_size for k, f in
         (("keras", "model.keras"), ("float", "model_float.tflite"), ("int8", "model_int8.tflite"))}
print(json.dumps({"ms_per_window": out, "bytes": sizes}))
"""
    r = child([PY, "-c", code], one_core=True)
    res = json.loads(r["stdout"].strip().splitlines()[-1])
    ms = res["ms_per_window"]
    res["int8_speedup_vs_keras"] = round(ms["keras"] / ms["int8"], 1)
    log(f"inference per 2 s window: {ms}")
    return res


def part_autolabel(work: Path) -> dict:
    path = work / "autolabel.json"
    subprocess.run([PY, str(ROOT / "bench" / "autolabel_speed.py"), "--json", str(path), "--work", str(work)],
                   check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(path.read_text())


def part_stream(work: Path) -> dict:
    path = work / "stream.json"
    subprocess.run([PY, str(ROOT / "bench" / "stream_bench.py"), "--json", str(path), "--hours", "1",
                    "--cpu-seconds", "300", "--cache", str(work / "stream")],
                   check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(path.read_text())


def _make_run(prefix: list[str] = (), env: dict | None = None) -> tuple[float, list]:
    """``make run`` (behind ``prefix``, e.g. ``taskset``; in ``env``): its wall time and the
    per-notebook rows of ``build/summary.json``."""
    t0 = time.perf_counter()
    subprocess.run([*prefix, "make", "run"], check=True, cwd=ROOT, env=env)
    seconds = time.perf_counter() - t0
    summary = json.loads((ROOT / "build" / "summary.json").read_text())
    return round(seconds, 1), summary.get("notebooks", summary)


def part_notebooks(work: Path) -> dict:
    """``make run``: every notebook, full profile, in order, from a fresh kernel each."""
    seconds, notebooks = _make_run()
    return {"make_run_seconds": seconds, "notebooks": notebooks}


def part_notebooks_1cpu(work: Path) -> dict:
    """Binder on one CPU (``taskset -c``): the image build's ``postBuild`` (the data synthesized
    into an empty data folder), then ``make run`` as a session runs it, on that folder and
    nothing else (every other cache the notebooks use is made during the run)."""
    if not shutil.which("taskset"):
        return {"skipped": "taskset (util-linux) is not installed"}
    cpu = ["taskset", "-c", str(sorted(os.sched_getaffinity(0))[0])]
    fresh = work / "fresh-data"
    shutil.rmtree(fresh, ignore_errors=True)
    env = {**os.environ, "AED_DATA_DIR": str(fresh), "PATH": f"{Path(PY).parent}{os.pathsep}{os.environ['PATH']}"}
    t0 = time.perf_counter()
    subprocess.run([*cpu, str(ROOT / "postBuild")], check=True, cwd=ROOT, env=env)
    postbuild = round(time.perf_counter() - t0, 1)
    seconds, notebooks = _make_run(cpu, env=env)
    shutil.rmtree(fresh, ignore_errors=True)
    return {"seconds": seconds, "cpus": 1, "postbuild_seconds": postbuild, "data": "postBuild's only",
            "notebooks": notebooks}


# ---------------------------------------------------------------------------------------
def finite(obj):
    """The results with NaN and infinity (undefined figures) as None: strict JSON."""
    import math

    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _scores(r: dict) -> str:
    """The event F1, precision, recall and BPM-within-±10 % cells of one table row."""
    return f"{r['f1']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['bpm_within_10pct']:.0%}"


def fmt_table(results: dict) -> str:
    """The Markdown table the README shows."""
    lines = []
    m = results["machine"]
    dates = sorted(d for k, d in results.get("part_date", {}).items() if k in results) or [m["date"]]
    last = dates[-1][11:] if dates[-1][:10] == dates[0][:10] else dates[-1]  # the day too when it differs
    when = dates[0] if dates[0] == dates[-1] else f"{dates[0]} – {last}"
    lines.append(f"Measured by `make bench` ({when}): {m['cpu']}, {m['cores']} cores, "
                 f"{m['memory_gb']} GB, Python {m['python']}.")
    loads = results.get("part_load", {})
    if loads:
        lines.append(f"Load average at the end of each part ({m['cores']} cores; where it is above 1, other work "
                     "shared the machine and the speeds are lower bounds): "
                     + ", ".join(f"{k} {v}" for k, v in loads.items() if k in results) + ".")
    q = results.get("quality")
    if q:
        lines += ["", "**Quality** — event F1 (onsets, ±100 ms, sed_eval), BPM within ±10 % of the true rate, "
                  "median BPM error:", "",
                  "| system | test F1 | test BPM ±10 % | test BPM error | held-out F1 | held-out BPM ±10 % |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        held = {r["system"].replace("CRNN keras", "CRNN float"): r for r in q["heldout"]}
        for r in q["test"]:
            h = held.get(r["system"], {})
            hf = f"{h['f1']:.3f}" if h else "–"
            hb = f"{h['bpm_within_10pct']:.0%}" if h else "–"
            lines.append(f"| {r['system']} | {r['f1']:.3f} | {r['bpm_within_10pct']:.0%} | "
                         f"{r['bpm_error_median']:.1%} | {hf} | {hb} |")
        lines.append("")
        lines.append(f"Test split: {q['test'][0]['recordings']} recordings, {q['test'][0]['plops']} plops. "
                     f"Held out: {q['heldout_recordings']} recordings of "
                     f"{', '.join(q['heldout_families']['backgrounds'])} backgrounds and "
                     f"{', '.join(q['heldout_families']['airlocks'])} airlocks, scored with a CRNN trained "
                     "without them (Keras; its row is under CRNN float) and the other systems tuned on the same seen data.")
        if "bpm_within_10pct_labels" in q["test"][0]:
            lines[-1] += (f" The BPM estimator on the labels themselves (a perfect detector) is within ±10 % on "
                          f"{q['test'][0]['bpm_within_10pct_labels']:.0%} of the test recordings and "
                          f"{q['heldout'][0]['bpm_within_10pct_labels']:.0%} of the held-out ones.")
    if q and "large_test" in q:
        large = q["large_test"]
        lines += ["", f"**A larger test set**: {large[0]['recordings']} fresh synthetic recordings "
                  f"({large[0]['plops']} plops) that nothing trained or tuned on "
                  "(`datasets.synthetic_test_extra`). The test split's 12 recordings are few: one of them "
                  "(rain over a drip airlock at 0.6 dB) holds a fifth of its plops.", "",
                  "| system | event F1 | precision | recall | BPM ±10 % | BPM error | BPM ±10 %, labels |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in large:
            lines.append(f"| {r['system']} | {_scores(r)} | {r['bpm_error_median']:.1%} | "
                         f"{r['bpm_within_10pct_labels']:.0%} |")
        by = q.get("large_test_bpm_by_plops")
        if by:
            lines += ["", "BPM within ±10 % of the CRNN int8 on the larger test set by plops per recording, "
                      "beside the same estimator on the labels: slow recordings hold few plops, where one "
                      "plop more or less is over 10 % and the median of a few intervals is noisy even on the "
                      "labels:", "",
                      "| plops per recording | recordings | event F1 | BPM ±10 % | BPM ±10 %, labels |",
                      "| --- | ---: | ---: | ---: | ---: |"]
            lines += [f"| {r['plops']} | {r['recordings']} | {r['f1']:.3f} | {r['bpm_within_10pct']:.0%} | "
                      f"{r['bpm_within_10pct_labels']:.0%} |" for r in by]
        bm = q.get("bpm_methods")
        if bm:
            lines += ["", "BPM within ±10 % of the CRNN int8 by estimator (`detect --bpm-method`), the same "
                      "detections, beside the same estimator on the labels: `interval` the median of the gaps "
                      "the IQR fences keep (the default), `mean` their mean, `count` plops per minute:", "",
                      "| estimator | " + " | ".join(f"{k}, detections | {k}, labels" for k in bm) + " |",
                      "| --- |" + " ---: | ---: |" * len(bm)]
            lines += [f"| {m} | " + " | ".join(f"{v[m]['bpm_within_10pct']:.0%} | {v[m]['bpm_within_10pct_labels']:.0%}"
                                               for v in bm.values()) + " |" for m in next(iter(bm.values()))]
        fps = q.get("large_test_false_plops")
        if fps:
            lines += ["", "Where the false plops come from on the larger test set. The synthesizer mixes sounds "
                      "that are not plops (knocks, taps, clicks, a door, glass, typing, clunks: "
                      f"{fps[0]['confusers']} in all) into most of its recordings. False plops a minute in the "
                      "recordings without them and in those with them; per confuser, the false plops in the "
                      "recordings with confusers beyond what the rate without them predicts, divided by the "
                      "number of confusers (`evaluate.false_plops_at_confusers`). It is an estimate: the two "
                      "groups also differ in their backgrounds, so it can come out below zero (as for the "
                      "onset counters), and then the share is 0 %:", "",
                      "| system | false plops | a minute, without confusers | a minute, with them | per confuser | "
                      "share at confusers |",
                      "| --- | ---: | ---: | ---: | ---: | ---: |"]
            lines += [f"| {r['system']} | {r['false_plops']} | {r['per_minute_without']:.2f} | "
                      f"{r['per_minute_with']:.2f} | {r['per_confuser']:.2f} | {r['share_at_confusers']:.0%} |"
                      for r in fps]
        a = q.get("autolabel")
        if a:
            def cell(part: str, group: str) -> str:
                v = a[part].get(group)
                return f"{v['f1']:.3f} ({v['recordings']} recordings)" if v else "–"

            lines += ["", "The GMM-HMM labeler's proposals (`autolabel`), event F1 by SNR:", "",
                      "| set | SNR ≥ 10 dB | SNR < 10 dB |", "| --- | ---: | ---: |",
                      f"| test split | {cell('test', 'SNR ≥ 10 dB')} | {cell('test', 'SNR < 10 dB')} |",
                      f"| larger test set | {cell('large_test', 'SNR ≥ 10 dB')} | "
                      f"{cell('large_test', 'SNR < 10 dB')} |"]
    b = results.get("backgrounds")
    if b:
        lines += ["", "**Recorded speech and music** the model never trained on (other voices, texts, "
                  "instruments, drum kits and songs than its training clips; `helpers.backgrounds`): false plops per "
                  "minute in them alone, and event F1 / BPM within ±10 % on the test split with them mixed in:", "",
                  "| model | false plops/min, speech | false plops/min, music | " + " | ".join(
                      f"{r['family'].replace('instruments', 'music')} at {r['snr_db']:g} dB"
                      for r in next(iter(b.values()))["mixed"]) + " |",
                  "| --- | ---: | ---: | " + " | ".join("---:" for _ in next(iter(b.values()))["mixed"]) + " |"]
        for name, v in b.items():
            fp = v["false_plops_per_minute"]
            lines.append(f"| {name} | {fp['speech']:.1f} | {fp['instruments']:.1f} | " + " | ".join(
                f"{r['f1']:.3f} / {r['bpm_within_10pct']:.0%}" for r in v["mixed"]) + " |")
    rb = results.get("bubbles")
    if rb:
        worst = rb["by_family"][:2]
        held = (f"the {rb['bubbles']} real bubbles of three of six recordings of a free game's sound effects "
                "(the shipped CRNN trains on those of the other three, `bubbles.split_pool`)"
                if "bubbles_all" in rb else f"{rb['bubbles']} real bubbles cut from six recordings of a free game's "
                "sound effects")
        caveat = ("nothing trains on them, but the number of recorded-bubble recordings in the CRNN's training "
                  "(40, against 20 and none) was chosen on them, and the labeler's level gate on the bubbles of all "
                  "six, so both systems' rows lean optimistic"
                  if "bubbles_all" in rb else "nothing trains or tunes on them")
        lines += ["", f"**Recorded bubbles** (`helpers.bubbles`): {held}, spaced at an airlock's rates in "
                  f"{rb['tracks']} tracks of {rb['track_seconds']:.0f} s and mixed into each of the "
                  f"{len(rb['by_family'])} background families; {caveat}. The labels themselves give a BPM "
                  f"within ±10 % on {min(r['bpm_within_10pct_labels'] for r in rb['by_snr']):.0%} of the "
                  "mixtures.", "",
                  "| system | SNR | plops | event F1 | precision | recall | BPM ±10 % |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, key in (("CRNN int8 (shipped)", "by_snr"), ("GMM-HMM (`autolabel`)", "labeler_by_snr")):
            for r in rb.get(key, []):
                lines.append(f"| {name} | {r['snr_db']:g} dB | {r['plops']} | {_scores(r)} |")
        lines += ["", "Hardest backgrounds for the CRNN: " + ", ".join(f"{r['family']} (F1 {r['f1']:.3f})" for r in worst)
                  + "."]
        ot = rb.get("others")
        if ot:
            lines += ["", f"**Bubbles and drops from other sources** (`data/bubbles/others`): {ot['sounds']} sounds "
                      f"cut from the sound effects of {ot['packages']} other packages (games and a desktop's "
                      "sound theme; the shipped model never trains on them, but its recipe was chosen among a few "
                      "variants on them, README), mixed like the bubbles above. "
                      "The CRNN int8 (shipped), pooled over all sounds (most of them from two packages, so see each "
                      "package below):", "",
                      "| SNR | plops | event F1 | precision | recall | BPM ±10 % |",
                      "| ---: | ---: | ---: | ---: | ---: | ---: |"]
            for r in ot["by_snr"]:
                lines.append(f"| {r['snr_db']:g} dB | {r['tp'] + r['fn']} | {_scores(r)} |")
            lines += ["", "Each package's sounds alone at 10 dB (mean event F1 over packages "
                      f"{ot['package_mean_f1']:.3f}; a package of one to three sounds gives a rough figure):", "",
                      "| package | sounds | pitch | event F1 | precision | recall | BPM ±10 % |",
                      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
            for r in ot["by_package"]:
                lines.append(f"| {r['package']} | {r['sounds']} | {r['pitch_hz']} Hz | {_scores(r)} |")
            tm = ot.get("in_talk_and_music")
            if tm:
                lines += ["", f"The same sounds in {tm['tracks']} tracks of 60 s mixed into the recorded talk and music "
                          "that nothing trains on (other voices and instruments than the training ones; "
                          "`bubbles.in_talk_and_music`), the closest the repository comes to a stranger's airlock beside a "
                          "radio:", "",
                          "| background | SNR | event F1 | precision | recall | BPM ±10 % |",
                          "| --- | ---: | ---: | ---: | ---: | ---: |"]
                for r in tm["by_snr"]:
                    lines.append(f"| {r['family'].replace('instruments', 'music')} | {r['snr_db']:g} dB | {_scores(r)} |")
        own = rb.get("own")
        if own:
            low = rb.get("own_low")
            lines += ["", f"**Fine-tuned on recorded bubbles**: `train` on {own['train_minutes']:.0f} minutes of labeled "
                      "recordings made of the bubbles of three of the six recordings (those the shipped model trained "
                      "on; 44.1 kHz stereo FLAC, WAV and "
                      f"Ogg, one background each at 0–20 dB; {own['train_seconds']:.0f} s), `evaluate` on 6 other minutes "
                      "made of the other three, and the false plops per minute in the recorded speech and music it never "
                      "trained on"
                      + (f"; and the same with the low bubbles of widelands' brewery and winery (other sources; "
                         f"{low['train_sounds']} sounds of two recordings to train, {low['test_sounds']} of the other two "
                         f"to test; {low['train_seconds']:.0f} s), of which the shipped model finds {low['shipped']['recall']:.0%}" if low else "")
                      + ":", "",
                      "| sounds | model | event F1 | precision | recall | BPM ±10 % | false plops/min, speech | "
                      "false plops/min, music |",
                      "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
            for sounds, case in (("the game's bubbles", own), ("widelands' low bubbles", low)):
                for name in ("shipped", "fine-tuned") if case else ():
                    v = case[name]
                    fp = v.get("false_plops_per_minute", {})
                    lines.append(f"| {sounds} | {name} | {_scores(v)} | {fp.get('speech', float('nan')):.1f} | "
                                 f"{fp.get('instruments', float('nan')):.1f} |")
    rows = []
    d = results.get("detect")
    if d:
        for b in ("int8", "keras", "int8 --strict"):
            if b in d:  # (--strict is an option, outside the target)
                rows.append((f"`detect`, 1 h of audio, one core ({b})", f"{d[b]['seconds']:.1f} s "
                             f"({d[b]['realtime_factor']:.0f}× real time), peak {d[b]['peak_rss_mb']} MB",
                             "≤ 10 s" if "strict" not in b else "(an option)"))
    a = results.get("autolabel")
    if a:
        for v in a.get("results", []):
            what = "1 h in one file" if v["measurement"] == "file" else f"1 h in {v.get('files', '')} files"
            rows.append((f"`autolabel`, {what}, one core", f"{v['wall_s']:.1f} s ({v['realtime_factor']:.0f}× "
                         f"real time), peak {v['peak_memory_mb']} MB", "≥ 100× (≤ 36 s)"))
    s = results.get("stream")
    if s and "cpu" in s:
        for b, v in s["cpu"].items():
            rows.append((f"live listening ({b}), CPU per second of audio",
                         f"{v['cpu_s_per_audio_s']:.2%} of a core", "≤ 5 %"))
    if s and "latency" in s:
        for b, v in s["latency"].items():
            rows.append((f"live listening ({b}), latency of a plop", f"median {v['wall_median_s']:.2f} s, "
                         f"max {v['wall_max_s']:.2f} s", "≤ 1 s"))
    if s and "memory" in s:
        v = s["memory"]
        rows.append((f"live listening, memory over {v['hours']:g} h", f"{v['growth_after_warmup_mb']:+.1f} MB after "
                     f"warm-up ({v['extrapolated_24h_mb']:+.1f} MB per 24 h extrapolated)", "< 10 MB per 24 h"))
    i = results.get("inference")
    if i:
        ms = i["ms_per_window"]
        rows.append(("inference per 2 s window, one thread", f"Keras {ms['keras']} ms, LiteRT float {ms['float']} ms, "
                     f"int8 {ms['int8']} ms ({i['int8_speedup_vs_keras']}× Keras)", ""))
    t = results.get("train")
    if t:
        for mode, v in t.items():
            rows.append((f"`train` ({mode}) on {v['minutes_of_audio']} min of labeled audio",
                         f"{v['seconds']:.0f} s, validation F1 {v['val_event_f1']:.3f}", "≤ 300 s"))
    n = results.get("notebooks")
    if n:
        rows.append(("`make run` (every notebook, full profile)", f"{n['make_run_seconds'] / 60:.1f} min", "≤ 15 min"))
    n1 = results.get("notebooks_1cpu")
    if n1 and "seconds" in n1:
        worst = max(n1["notebooks"], key=lambda nb: nb["seconds"])
        where = "data from `postBuild` only" if n1.get("data") else "data in place"
        rows.append((f"every notebook on one CPU (`taskset`), {where}", f"{n1['seconds'] / 60:.1f} min; slowest "
                     f"{worst['notebook'].removesuffix('.ipynb')} {worst['seconds']:.0f} s", "≤ 15 min"))
        if "postbuild_seconds" in n1:
            rows.append(("Binder's image build on one CPU: `postBuild` synthesizes the data",
                         f"{n1['postbuild_seconds']:.0f} s (a fresh machine without it: "
                         f"{(n1['seconds'] + n1['postbuild_seconds']) / 60:.1f} min in all)", ""))
        nbs = n["notebooks"]
        for nb in nbs if isinstance(nbs, list) else []:
            rows.append((f"notebook {nb['notebook'].removesuffix('.ipynb')}", f"{nb['seconds']:.0f} s, peak "
                         f"{nb['peak_memory_mb']} MB" + ("" if nb.get("ok", True) else " (FAILED)"), "≤ 2048 MB"))
    if rows:
        lines += ["", "**Speed and memory**:", "", "| what | measured | target |", "| --- | --- | --- |"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines) + "\n"


def update_readme(table: str) -> bool:
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{table}{end}{tail}")
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {', '.join(PARTS)}")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "bench")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        ap.error(f"unknown parts {unknown}; choose from {list(PARTS)}")
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "bench.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results["machine"] = machine()
    t_all = time.perf_counter()
    for p in parts:
        log(f"part {p}")
        t0 = time.perf_counter()
        results[p] = globals()[f"part_{p}"](args.work)
        results.setdefault("part_seconds", {})[p] = round(time.perf_counter() - t0, 1)
        # the load average over the part's last minute: speeds measured under load are lower bounds
        results.setdefault("part_load", {})[p] = round(os.getloadavg()[0], 2)
        results.setdefault("part_date", {})[p] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        path.write_text(json.dumps(finite(results), indent=1, default=str, allow_nan=False))  # nothing lost if a later part fails
    table = fmt_table(results)
    (args.out / "bench.md").write_text(table)
    print(table)
    print(f"wrote {path} and {args.out / 'bench.md'}" + (" and the README table" if args.out.resolve() == RESULTS and update_readme(table) else ""))
    log(f"done in {(time.perf_counter() - t_all) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
