"""Benchmark of the live listener (helpers.stream): CPU, latency and memory over a long stream.

    .venv/bin/python bench/stream_bench.py                 # about 5–15 minutes
    .venv/bin/python bench/stream_bench.py --hours 24      # the full 24-hour memory run

What it measures, on synthetic airlock recordings (helpers.synth) with their true plop onsets:

CPU per second of audio
    Live-sized blocks (0.1 s) fed as fast as possible to a :class:`StreamingDetector` with the
    default update period (0.25 s); CPU time of the process (all threads) divided by the audio
    length. The issue's budget: 0.05 s per second of audio (5 % of one core). For the LiteRT
    int8 model and for Keras, and for int8 with ``listen --strict`` (the plausibility gate).
Latency
    Each detected plop matched to a true onset (within 0.1 s): audio latency = audio time when
    the event was emitted − true onset; wall latency = wall-clock time when it was emitted −
    the wall-clock time at which its onset was "captured", with the blocks fed at real-time
    pace (each 0.1 s block handed over when its last sample would have been recorded).
    Budget: 1 s.
Memory
    A whole listening session (:func:`helpers.stream.run_session`: detector, rolling BPM, CSV
    log; no session labels) fed as fast as possible with a looped recording for ``--hours``
    of audio. The resident set size (RSS) is sampled every 10 minutes of audio; growth is
    measured after the first hour (warm-up: allocator pools, the model's first calls) and a
    straight line through the samples gives the slope, extrapolated to 24 hours and 14 days.
    Budget: under 10 MB over 24 hours.

The int8 model is exported (helpers.models.export_litert, about 40 s) into
``build/stream_bench/`` when the model folder has none.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import psutil  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

from helpers.autolabel import STRICT_PLAUSIBILITY  # noqa: E402
from helpers.config import SR  # noqa: E402
from helpers.models import SHIPPED_MODEL, Detector, export_litert  # noqa: E402
from helpers.stream import StreamingDetector, run_session  # noqa: E402
from helpers.synth import synthesize_recording  # noqa: E402


def recording(seed: int, seconds: float, snr_db: float = 15.0):
    rec = synthesize_recording(seed=seed, duration_s=seconds, sr=SR, snr_db=snr_db)
    y = rec.audio.mean(axis=0).astype(np.float32) if rec.audio.ndim == 2 else rec.audio
    return y, rec.events["start"].to_numpy()


def int8_folder(model: Path, cache: Path) -> Path | None:
    """A model folder with model_int8.tflite: the model's own, or an export cached in ``cache``."""
    if (model / "model_int8.tflite").exists():
        return model
    stamp = f"{(model / 'model.keras').stat().st_size}-{int((model / 'model.keras').stat().st_mtime)}"
    if (cache / "model_int8.tflite").exists() and (cache / "stamp").read_text() == stamp:
        return cache
    print(f"exporting {model.name} to LiteRT int8 in {cache} (about 40 s) ...", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    for name in ("model.keras", "config.json"):
        shutil.copy2(model / name, cache / name)
    det = Detector.load(cache, backend="keras")
    reps = [recording(seed, 20.0)[0] for seed in (101, 102, 103, 104)]
    export_litert(det, reps, folder=cache)
    (cache / "stamp").write_text(stamp)
    return cache


# ----------------------------------------------------------------------------- CPU
def cpu_per_audio_second(det: Detector, y: np.ndarray, *, block_s: float, update_s: float,
                         strict: float | None = None) -> dict:
    sd = StreamingDetector(det, update_s=update_s, min_plausibility=strict)
    n = int(block_s * SR)
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(0, len(y), n):
        sd.process(y[i:i + n])
    sd.flush()
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    seconds = len(y) / SR
    return {"cpu_s_per_audio_s": cpu / seconds, "wall_s_per_audio_s": wall / seconds,
            "model_s_per_audio_s": sd.model_seconds / seconds,
            "frontend_s_per_audio_s": sd.frontend_seconds / seconds,
            "strict_s_per_audio_s": sd.strict_seconds / seconds,
            "model_runs_per_audio_s": sd.windows_run / seconds, "events": sd.n_events}


# ----------------------------------------------------------------------------- latency
def latency(det: Detector, y: np.ndarray, truth: np.ndarray, *, block_s: float, update_s: float,
            realtime: bool, strict: float | None = None) -> dict:
    emitted: list[tuple[float, float, float]] = []   # (start, emitted_at audio, wall)
    sd = StreamingDetector(det, update_s=update_s, min_plausibility=strict,
                           on_event=lambda e: emitted.append((e.start, e.emitted_at, time.monotonic())))
    n = int(block_s * SR)
    t0 = time.monotonic()
    for i in range(0, len(y), n):
        if realtime:   # hand the block over when its last sample would have been recorded
            due = t0 + min(i + n, len(y)) / SR
            while (left := due - time.monotonic()) > 0:
                time.sleep(min(left, 0.05))
        sd.process(y[i:i + n])
    flushed_from = len(emitted)
    sd.flush()
    audio_lat, wall_lat = [], []
    for k, (start, at, wall) in enumerate(emitted[:flushed_from]):
        j = np.argmin(np.abs(truth - start)) if len(truth) else None
        if j is None or abs(truth[j] - start) > 0.1:
            continue   # a false detection: no true onset to measure from
        audio_lat.append(at - truth[j])
        wall_lat.append(wall - (t0 + truth[j]))
    out = {"matched": len(audio_lat), "true_plops": int(len(truth)), "detected": len(emitted)}
    for name, values in (("audio", audio_lat), ("wall", wall_lat if realtime else [])):
        if values:
            v = np.asarray(values)
            out[f"{name}_median_s"] = float(np.median(v))
            out[f"{name}_p95_s"] = float(np.percentile(v, 95))
            out[f"{name}_max_s"] = float(v.max())
    return out


# ----------------------------------------------------------------------------- memory
class LoopedAudio:
    """A source for run_session: a recording repeated for ``hours``, in blocks, as fast as possible."""

    live = False
    name = "bench"
    description = "looped synthetic recording"
    end_reason = "end of the bench stream"
    overflows = 0

    def __init__(self, y: np.ndarray, *, hours: float, block_s: float, sample_every_s: float = 600.0):
        self.y, self.total = y, int(hours * 3600 * SR)
        self.n = int(block_s * SR)
        self.sample_every = int(sample_every_s * SR)
        self.samples: list[tuple[float, float, float]] = []   # (audio hours, RSS MB, wall s)
        self._proc = psutil.Process()

    def close(self) -> None:
        pass

    def __iter__(self):
        pos, t0 = 0, time.perf_counter()
        next_sample = 0
        y, n = self.y, self.n
        while pos < self.total:
            if pos >= next_sample:
                self.samples.append((pos / SR / 3600, self._proc.memory_info().rss / 2**20,
                                     time.perf_counter() - t0))
                next_sample += self.sample_every
            i = pos % len(y)
            block = y[i:i + n] if i + n <= len(y) else np.concatenate([y[i:], y[:i + n - len(y)]])
            block = block[: self.total - pos]
            pos += len(block)
            yield block
        self.samples.append((pos / SR / 3600, self._proc.memory_info().rss / 2**20, time.perf_counter() - t0))


def memory(det: Detector, y: np.ndarray, *, hours: float, block_s: float, update_s: float) -> dict:
    src = LoopedAudio(y, hours=hours, block_s=block_s)
    sd = StreamingDetector(det, update_s=update_s)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log.csv"
        sink = open(os.devnull, "w")
        summary = run_session(src, detector=sd, log=log, quiet=True, stdout=sink, stderr=sink,
                              stop=threading.Event())
        sink.close()
        log_mb = log.stat().st_size / 2**20
    s = np.asarray(src.samples)
    after = s[s[:, 0] >= min(1.0, hours / 4)]
    slope = float(np.polyfit(after[:, 0], after[:, 1], 1)[0]) if len(after) >= 3 else float("nan")
    return {"hours": hours, "block_s": block_s, "events": summary["events"],
            "wall_s": float(s[-1, 2]), "cpu_s": summary["cpu_s"],
            "rss_start_mb": float(s[0, 1]), "rss_after_warmup_mb": float(after[0, 1]),
            "rss_end_mb": float(s[-1, 1]), "rss_max_mb": float(s[:, 1].max()),
            "growth_after_warmup_mb": float(s[-1, 1] - after[0, 1]),
            "slope_mb_per_hour": slope, "extrapolated_24h_mb": slope * 24,
            "extrapolated_14d_mb": slope * 24 * 14, "log_file_mb": log_mb,
            "out_labels_cost_mb_per_24h": summary["events"] / hours * 24 * 24 / 2**20,
            "samples": [[round(a, 3), round(b, 2)] for a, b, _ in src.samples]}


# ----------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    ap.add_argument("--backends", default="int8,keras", help="comma-separated: int8, keras, float")
    ap.add_argument("--cpu-seconds", type=float, default=600.0, help="audio for the CPU measurement")
    ap.add_argument("--latency-seconds", type=float, default=60.0, help="audio for the real-time latency run")
    ap.add_argument("--hours", type=float, default=4.0, help="hours of audio for the memory run (24: the full run)")
    ap.add_argument("--memory-backend", default="int8")
    ap.add_argument("--memory-block", type=float, default=1.0, help="block length of the memory run (s)")
    ap.add_argument("--block", type=float, default=0.1, help="live block length (s)")
    ap.add_argument("--update", type=float, default=0.25, help="update period of the detector (s)")
    ap.add_argument("--cache", type=Path, default=ROOT / "build" / "stream_bench")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: cpu, latency, memory")
    ap.add_argument("--no-strict", action="store_true", help="do not also measure int8 with listen --strict")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    results: dict = {"machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
                     "block_s": args.block, "update_s": args.update}

    detectors, strict = {}, {}
    for b in args.backends.split(","):
        folder = int8_folder(args.model, args.cache / "model") if b == "int8" else args.model
        detectors[b] = Detector.load(folder, backend=b)
    if not args.no_strict and "int8" in detectors:   # listen --strict: the same model and a gate
        detectors["int8 --strict"] = detectors["int8"]
        strict["int8 --strict"] = STRICT_PLAUSIBILITY

    base, truth = recording(20, 60.0)   # about 28 plops per minute, 15 dB SNR
    print(f"recording: 60 s, {len(truth)} true plops; backends: {', '.join(detectors)}", flush=True)

    if "cpu" not in skip:
        y = np.tile(base, int(np.ceil(args.cpu_seconds / 60)))[: int(args.cpu_seconds * SR)]
        results["cpu"] = {}
        for b, det in detectors.items():
            r = cpu_per_audio_second(det, y, block_s=args.block, update_s=args.update, strict=strict.get(b))
            results["cpu"][b] = r
            print(f"CPU {b}: {r['cpu_s_per_audio_s']:.4f} s per audio second "
                  f"({100 * r['cpu_s_per_audio_s']:.1f} % of one core; model {r['model_s_per_audio_s']:.4f}, "
                  f"front end {r['frontend_s_per_audio_s']:.4f}, gate {r['strict_s_per_audio_s']:.4f}; "
                  f"{r['model_runs_per_audio_s']:.1f} model runs/s)",
                  flush=True)

    if "latency" not in skip:
        y, tr = recording(27, args.latency_seconds, snr_db=20.0)   # about 75 plops per minute
        results["latency"] = {}
        for b, det in detectors.items():
            r = latency(det, y, tr, block_s=args.block, update_s=args.update, realtime=True, strict=strict.get(b))
            results["latency"][b] = r
            g = {k: r.get(k, float("nan")) for k in ("audio_median_s", "audio_p95_s", "audio_max_s",
                                                      "wall_median_s", "wall_p95_s", "wall_max_s")}
            print(f"latency {b} (real-time feed, {r['matched']} of {r['true_plops']} plops): audio median "
                  f"{g['audio_median_s']:.2f} s, 95 % {g['audio_p95_s']:.2f} s, max {g['audio_max_s']:.2f} s; "
                  f"wall median {g['wall_median_s']:.2f} s, 95 % {g['wall_p95_s']:.2f} s, "
                  f"max {g['wall_max_s']:.2f} s", flush=True)

    if "memory" not in skip:
        det = detectors.get(args.memory_backend) or next(iter(detectors.values()))
        print(f"memory: {args.hours:g} h of audio in {args.memory_block:g} s blocks with {det.backend} ...", flush=True)
        r = memory(det, base, hours=args.hours, block_s=args.memory_block, update_s=args.update)
        results["memory"] = r
        print(f"memory {det.backend}: {r['hours']:g} h of audio in {r['wall_s']:.0f} s ({r['events']} plops); RSS "
              f"{r['rss_start_mb']:.0f} MB at start, {r['rss_after_warmup_mb']:.1f} MB after warm-up, "
              f"{r['rss_end_mb']:.1f} MB at the end: growth {r['growth_after_warmup_mb']:+.2f} MB, slope "
              f"{r['slope_mb_per_hour']:+.3f} MB/h → {r['extrapolated_24h_mb']:+.1f} MB per 24 h, "
              f"{r['extrapolated_14d_mb']:+.1f} MB per 14 days (CSV log {r['log_file_mb']:.1f} MB on disk; "
              f"--out would keep {r['out_labels_cost_mb_per_24h']:.1f} MB of labels per 24 h)", flush=True)

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    print(json.dumps({k: v for k, v in results.items() if k != "memory"} |
                     ({"memory": {k: v for k, v in results["memory"].items() if k != "samples"}}
                      if "memory" in results else {}), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
