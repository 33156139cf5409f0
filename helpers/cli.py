"""``python -m helpers <command>``: every stage of the pipeline without Jupyter.

Commands
--------
synth     write the synthetic airlock data set (audio + labels + manifest.csv); without
          --out, make the cached sets the notebooks use (Binder's postBuild does)
download  download sections of the catalogued YouTube videos (or given URLs) as audio
validate  check a folder of own recordings (audio + same-stem Audacity .txt labels)
autolabel propose plop labels with an unsupervised GMM-HMM, for review in Audacity
listen    detect plops live from a microphone, a file or stdin; rolling BPM; Brewfather
detect    find the plops in audio files with a trained model; labels + a CSV of BPM
train     train or fine-tune the detector on own recordings
evaluate  score a model on labeled recordings: windows, events (sed_eval), BPM

Each command prints what it did; a bad input is reported on stderr with its name and the
reason, the others are still processed, and the exit status is non-zero at the end.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def _cmd_synth(args: argparse.Namespace) -> int:
    if args.out is None:
        return _prepare_embedded(args)
    if args.profile is not None:
        raise ValueError("--profile makes the notebooks' sets; with --out, give --recordings, --duration "
                         "and --seed instead")
    from helpers.synth import make_dataset

    t0 = time.perf_counter()
    given = {"recordings": args.recordings, "duration_s": args.duration, "seed": args.seed}
    m = make_dataset(args.out, **{k: v for k, v in given.items() if v is not None}, workers=args.workers,
                     progress=not args.quiet)  # make_dataset's defaults for the rest
    dt = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in Path(args.out).iterdir() if f.is_file())
    print(f"wrote {len(m)} recordings ({m['duration_s'].sum() / 60:.1f} min, "
          f"{int(m['n_plops'].sum())} plops, {size / 1e6:.1f} MB) to {args.out} in {dt:.1f} s")
    print(m.groupby("split").agg(recordings=("recording", "size"),
                                 plops=("n_plops", "sum")).to_string())
    return 0


def _prepare_embedded(args: argparse.Namespace) -> int:
    """``synth`` without ``--out``: the cached sets that the notebooks use (the profile's main
    set and its extra training and validation sets under ``data/``), made when missing. Binder's ``postBuild``
    runs this, so that a session starts with the data."""
    from helpers import datasets
    from helpers.config import profile

    given = [f"--{k}" for k in ("recordings", "duration", "seed") if getattr(args, k) is not None]
    if given:
        raise ValueError(f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} --out: the embedded sets are defined by the profile")
    prof = profile(args.profile)
    for name, make in (("main set", datasets.synthetic), ("extra training set", datasets.synthetic_training_extra),
                       ("extra validation set", datasets.synthetic_validation_extra)):
        t0 = time.perf_counter()
        m = make(profile=prof, progress=not args.quiet, workers=args.workers)
        if len(m):
            print(f"{name} ({prof.name} profile): {len(m)} recordings, {m['duration_s'].sum() / 60:.1f} min "
                  f"in {Path(m['path'].iloc[0]).parent} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    import pandas as pd

    from helpers import youtube

    if args.urls:
        if not 0 <= args.start < args.end:
            raise ValueError(f"--start {args.start} and --end {args.end}: need 0 <= start < end")
        catalogue = pd.DataFrame({"id": args.urls, "start_s": args.start, "end_s": args.end})
    else:
        catalogue = youtube.read_catalogue(args.catalogue)
    table = youtube.download_catalogue(catalogue, out_dir=args.out, audio_format=args.format,
                                       progress=not args.quiet)
    print(table.to_string(index=False))
    failed = table[table["status"] == "failed"]
    for r in failed.itertuples():
        print(f"{r.id}: {r.error}", file=sys.stderr)
    ok = len(table) - len(failed)
    print(f"{ok} of {len(table)} available", file=sys.stderr)
    return 1 if len(failed) else 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from helpers.audio import SUPPORTED, find_audio
    from helpers.datasets import validate_recordings

    status = 0
    for folder in args.folders:
        try:
            report = validate_recordings(folder)
        except FileNotFoundError as e:
            print(e, file=sys.stderr)
            status = 1
            continue
        if not find_audio(folder):
            print(f"{folder}: no audio files found (looked for {', '.join(SUPPORTED)}); "
                  "is this the folder of your recordings?", file=sys.stderr)
            status = 1
        elif report.empty:
            print(f"{folder}: no problems found")
        else:
            print(report.drop(columns="path").to_string(index=False))
            if (report["severity"] == "error").any():
                status = 1
    return status


def _cmd_autolabel(args: argparse.Namespace) -> int:
    from helpers.autolabel import autolabel_paths

    table = autolabel_paths(args.paths, out_dir=args.out, progress=not args.quiet,
                            overwrite=args.overwrite)
    for r in table.itertuples():
        if r.status == "error":
            print(r.message, file=sys.stderr)   # the message names the file
        else:
            note = f" ({r.message})" if r.status == "flagged" and r.message else ""
            print(f"{r.file}: {r.events} plops, {r.plops_per_min:.1f} per minute, {r.status}{note}")
    errors = int((table["status"] == "error").sum())
    print(f"labels in {args.out}: {len(table) - errors} files labeled"
          + (f", {errors} failed" if errors else ""), file=sys.stderr)
    return 1 if errors or not len(table) else 0


def _cmd_detect(args: argparse.Namespace) -> int:
    import csv
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from helpers.autolabel import STRICT_PLAUSIBILITY
    from helpers.models import detect_paths

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["file", "duration_s", "events", "bpm"])

    def emit(row: dict) -> None:
        if row["error"]:
            print(row["error"], file=sys.stderr)   # the message names the file
        else:
            writer.writerow([row["file"], f"{row['duration_s']:.2f}", row["events"], f"{row['bpm']:.1f}"])
        sys.stdout.flush()

    table = detect_paths(args.paths, out_dir=args.out, model=args.model, backend=args.backend,
                         progress=not args.quiet, on_row=emit, bpm_method=args.bpm_method,
                         min_plausibility=STRICT_PLAUSIBILITY if args.strict else None,
                         overwrite=args.overwrite)
    bad = int((table["error"] != "").sum()) if len(table) else 0
    if not len(table):
        print("no audio files found in " + ", ".join(map(str, args.paths)), file=sys.stderr)
        return 1
    if bad:
        print(f"{bad} of {len(table)} files failed", file=sys.stderr)
    return 1 if bad else 0


def _fires_more(new: dict, start: dict) -> bool:
    """Whether a trained model's false plops a minute (per family of recorded sound) are more than
    twice, and more than three above, those of the model it started from in some family.

    >>> _fires_more({"speech": 27.3, "instruments": 9.0}, {"speech": 3.8, "instruments": 4.9})
    True
    >>> _fires_more({"speech": 5.5, "instruments": 4.1}, {"speech": 3.8, "instruments": 4.9})
    False
    """
    return any(new[f] > max(2 * start[f], start[f] + 3) for f in new if f in start)


def _cmd_train(args: argparse.Namespace) -> int:
    import json
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from helpers.models import train_on_folders

    init = None if args.from_scratch else (args.init or "shipped")
    report = train_on_folders(args.data, out=args.out, epochs=args.epochs, init=init,
                              seed=args.seed, export=not args.no_litert,
                              time_budget_s=args.time_budget, progress=not args.quiet,
                              negatives=args.negatives)
    print(f"trained on {report['recordings_train']} recordings, validated on "
          f"{report['recordings_val']} ({report['minutes']} min, {report['plops']} plops; with "
          f"{report['negatives_train']} and {report['negatives_val']} half-minutes of talk and music alone) in "
          f"{report['seconds']:.0f} s: best epoch {report['best_epoch']} of {report['epochs_run']}, "
          f"validation event F1 {report['val_event_f1']:.3f}")
    fp = report["false_plops_per_minute"]
    new, start = fp["model"], fp.get("start")
    print(f"false plops a minute in recorded talk and music it never heard: {new['speech']:.1f} and "
          f"{new['instruments']:.1f}" + (f" (the model it started from: {start['speech']:.1f} and "
                                         f"{start['instruments']:.1f})" if start else ""))
    if start and _fires_more(new, start):
        print("warning: the new model fires more often on talk or music than the one it started from; "
              "record a few minutes of your room's own talk and music without the airlock, give them "
              "empty label files and add that folder to --data, or raise --negatives (it may then learn "
              "less of your plops: check both with `evaluate` and `detect`)", file=sys.stderr)
    print(f"saved to {report['out']} (use it with: python -m helpers detect PATH --model {report['out']} --out DIR)")
    print(json.dumps(report))
    return 0


def _evaluation_manifest(folders) -> tuple["pd.DataFrame", int]:
    """The labeled recordings of ``folders`` and how many audio files were left out (each
    reported on stderr by :func:`helpers.datasets.own_recordings`)."""
    import pandas as pd

    from helpers.audio import find_audio
    from helpers.datasets import own_recordings, read_manifest

    parts, skipped = [], 0
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: not a folder; give the folder of your labeled recordings")
        if (folder / "manifest.csv").exists():
            m = read_manifest(folder)
        else:  # unreadable files are reported by own_recordings and count as failures
            m = own_recordings(folder, require_labels=False)
            skipped += len(find_audio(folder)) - len(m)
        labeled = m["labels"].astype(str).str.len() > 0
        for path in m.loc[~labeled, "path"]:
            print(f"{path}: no labels (no same-stem .txt), not evaluated", file=sys.stderr)
        parts.append(m[labeled])
    manifest = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if not len(manifest):
        raise ValueError(f"no labeled recordings in {', '.join(map(str, folders))}: evaluate needs "
                         "audio files with same-stem Audacity .txt labels")
    if manifest["recording"].duplicated().any():  # the same stem in several folders: name by path
        manifest["recording"] = [str(Path(p).with_suffix("")) for p in manifest["path"]]
    return manifest, skipped


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import json
    import math
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import pandas as pd

    from helpers.autolabel import STRICT_PLAUSIBILITY
    from helpers.evaluate import evaluate_recordings
    from helpers.models import Detector
    from helpers.systems import ProbabilitySystem, run_systems

    manifest, skipped = _evaluation_manifest(args.data)
    det = Detector.load(args.model, backend=args.backend)
    strict = STRICT_PLAUSIBILITY if args.strict else None
    system = ProbabilitySystem(det, det.config.postprocess, name=f"CRNN {det.backend}",
                               min_plausibility=strict, keep_audio=False)
    run = run_systems([system], manifest, progress=not args.quiet, skip_errors=True)
    for name, reason in run.errors:
        print(f"{name}: {reason}", file=sys.stderr)
    if not run.references:
        print("no recording could be read", file=sys.stderr)
        return 1
    outs = run.outputs[system.name]
    table, overall = evaluate_recordings(run.references, [o.events for o in outs], run.durations,
                                         names=run.manifest["recording"].tolist(),
                                         scores=[o.scores for o in outs])
    audio_s = sum(run.durations)
    overall.update(model=str(det.path), backend=det.backend, strict=strict, audio_s=round(audio_s, 1),
                   rtf=run.seconds(system.name) / max(audio_s, 1e-9), failed=len(run.errors) + skipped)
    show = table.rename(columns={"duration_s": "seconds", "n_ref": "plops", "n_est": "found",
                                 "precision": "P", "recall": "R", "f1": "F1", "f1_200ms": "F1@200ms",
                                 "seg_f1": "seg F1@1s",
                                 "win_precision": "win P", "win_recall": "win R", "win_pr_auc": "win PR-AUC",
                                 "true_bpm": "true BPM", "bpm": "BPM", "bpm_error": "BPM err"})
    cols = ["recording", "seconds", "plops", "found", "P", "R", "F1", "F1@200ms", "seg F1@1s", "win P", "win R",
            "win PR-AUC", "true BPM", "BPM", "bpm_low", "bpm_high", "BPM err", "within_10", "ci_covers"]
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(show[cols].round(3).to_string(index=False))
    print(f"\n{det.path} ({det.backend}{', strict' if strict else ''}) on {overall['recordings']} recordings, {audio_s / 60:.1f} min, "
          f"{overall['plops']} plops; {overall['rtf'] * 3600:.1f} s per hour of audio")
    print(f"  windows of 0.25 s : precision {overall['window_precision']:.3f}  recall {overall['window_recall']:.3f}  "
          f"FPR {overall['window_fpr']:.4f}  FNR {overall['window_fnr']:.3f}  PR-AUC {overall['window_pr_auc']:.3f}")
    print(f"  events (sed_eval) : onsets ±100 ms F1 {overall['f1']:.3f} (P {overall['precision']:.3f}, "
          f"R {overall['recall']:.3f}); ±200 ms F1 {overall['f1_200ms']:.3f}; segments of 1 s F1 "
          f"{overall['segment_f1_1s']:.3f}")
    print(f"  BPM               : median error {overall['bpm_error_median']:.1%}, within ±10 % on "
          f"{overall['bpm_within_10pct']:.0%} of recordings, true rate inside the 95 % interval on "
          f"{overall['bpm_ci_coverage']:.0%}")
    if args.json:  # strict JSON: NaN and infinity (undefined figures) become null
        print(json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                          for k, v in overall.items()}, allow_nan=False))
    return 1 if overall["failed"] else 0


def _model_options(parser: argparse.ArgumentParser) -> None:
    """``--model`` and ``--backend``, the same for every command that runs the detector."""
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    parser.add_argument("--backend", default="auto", choices=["auto", "keras", "int8", "float"],
                        help="auto: LiteRT int8 when exported, else Keras")


def _overwrite_option(parser: argparse.ArgumentParser) -> None:
    """``--overwrite``, for the commands that write ``<stem>.txt`` labels (``detect``, ``autolabel``)."""
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the labels of recordings that are in --out themselves (by default "
                             "those files are kept, since they are often made by hand, and reported)")


def _count(text: str) -> int:
    """A whole number of 0 or more, for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; give 0 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m helpers", description="Every stage of the airlock pipeline without Jupyter.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("synth", help="write the synthetic airlock data set")
    s.add_argument("--out", type=Path, default=None, help="folder to write to; without it, make the "
                   "notebooks' cached sets under data/ (main + extra training set of --profile)")
    s.add_argument("--profile", default=None, help="without --out: full or quick (default $AED_PROFILE, full)")
    s.add_argument("--recordings", type=int, default=None, help="number of recordings (60)")
    s.add_argument("--duration", type=float, default=None, help="seconds per recording (60)")
    s.add_argument("--seed", type=int, default=None, help="random seed (2024)")
    s.add_argument("--workers", type=int, default=None, help="processes (all cores)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_cmd_synth)

    d = sub.add_parser("download", help="download sections of airlock videos as audio")
    d.add_argument("urls", nargs="*", metavar="URL", help="video URLs or ids (default: the catalogue)")
    d.add_argument("--catalogue", type=Path, default=None, help="CSV id,start_s,end_s,notes "
                   "(default data/youtube.csv)")
    d.add_argument("--out", type=Path, default=None, help="folder (default data/youtube)")
    d.add_argument("--start", type=float, default=0.0, help="section start for URLs (s)")
    d.add_argument("--end", type=float, default=120.0, help="section end for URLs (s)")
    d.add_argument("--format", default="opus", help="audio format: opus, flac, wav, m4a, mp3, best")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=_cmd_download)

    v = sub.add_parser("validate", help="check a folder of own recordings and labels")
    v.add_argument("folders", nargs="+", type=Path, metavar="DIR")
    v.set_defaults(func=_cmd_validate)
    a = sub.add_parser("autolabel", help="propose plop labels (GMM-HMM) for review in Audacity")
    a.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="audio files or folders")
    a.add_argument("--out", required=True, type=Path, help="folder for the <stem>.txt labels")
    _overwrite_option(a)
    a.add_argument("--quiet", action="store_true", help="no progress bar")
    a.set_defaults(func=_cmd_autolabel)

    t = sub.add_parser("detect", help="detect plops in audio files with a trained model")
    t.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="audio files or folders")
    t.add_argument("--out", required=True, type=Path, help="folder for the <stem>.txt labels")
    _overwrite_option(t)
    t.add_argument("--bpm-method", choices=("interval", "mean", "count"), default="interval",
                   help="interval: the typical (median) gap between plops, robust to a miss or a burst "
                        "(default); mean: the mean of the same gaps, not pulled up by their skew but pulled down by "
                        "missed plops; "
                        "count: plops per minute of the file, as counted by hand")
    t.add_argument("--strict", action="store_true",
                   help="also drop detections that do not ring like a bubble (the labeler's measures): "
                        "for rooms with sounds the model never heard (talk, music); slower")
    _model_options(t)
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_detect)

    r = sub.add_parser("train", help="train or fine-tune the detector on own recordings")
    r.add_argument("--data", required=True, nargs="+", type=Path, metavar="DIR",
                   help="folders of audio files with same-stem .txt labels")
    r.add_argument("--out", required=True, type=Path, help="folder to save the model in")
    r.add_argument("--epochs", type=int, default=10, help="at most this many epochs (10)")
    r.add_argument("--init", type=Path, default=None, help="start from this model (default: the shipped one)")
    r.add_argument("--from-scratch", action="store_true", help="start from random weights")
    r.add_argument("--time-budget", type=float, default=240.0, help="stop training after this many seconds (240)")
    r.add_argument("--no-litert", action="store_true", help="skip the LiteRT export")
    r.add_argument("--negatives", type=_count, default=None, metavar="N",
                   help="half-minutes of recorded talk and music alone to train on beside your recordings, "
                        "so that fine-tuning does not forget them (default: 24 when fine-tuning, and a sixth "
                        "as many to validate on; 0 from scratch)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--quiet", action="store_true", help="no progress output")
    r.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="score a model on labeled recordings (windows, events, BPM)")
    e.add_argument("--data", required=True, nargs="+", type=Path, metavar="DIR",
                   help="folders of audio files with same-stem .txt labels (or a synthetic set)")
    _model_options(e)
    e.add_argument("--strict", action="store_true", help="score detect --strict: only the detections that "
                   "ring like a bubble (the labeler's measures), to see whether it helps on your recordings")
    e.add_argument("--json", action="store_true", help="end with one line of JSON with the overall figures")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=_cmd_evaluate)

    from helpers import stream  # the live listener registers its own command

    stream.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    import warnings

    args = build_parser().parse_args(argv)
    # the commands print what a person needs; the library's log records (the Brewfather
    # client's warnings) would say it twice through Python's last-resort handler
    library = logging.getLogger("helpers")
    if not any(isinstance(h, logging.NullHandler) for h in library.handlers):
        library.addHandler(logging.NullHandler())
    # a warning for a person at a terminal: one line, without the source line that raised it
    plain, warnings.formatwarning = warnings.formatwarning, lambda message, *_, **__: f"warning: {message}\n"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = plain
