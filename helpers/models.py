"""The CRNN plop detector: building, training, saving, LiteRT export, and inference.

The model sees a window of ``WINDOW`` frames (2 s) of the 64-band front end of
:mod:`helpers.features` and gives one plop probability per frame (every 10 ms):

    input (200 × 64 × 1) → 3 × [conv 3×3 → batch norm → ReLU → max-pool over frequency only]
    → GRU (forward in time) → dense sigmoid per frame

Pooling only in frequency keeps the 10 ms time resolution; the GRU runs forward in time only,
so a frame's probability depends on the past and ~30 ms of future (the convolutions), which
is what makes live streaming give the same answer as offline detection.

A long recording is cut into windows of ``WINDOW`` frames every ``STEP`` frames; each
frame's probability is taken from the window where it has at least ``WINDOW - STEP`` frames
of past context (the first window gives all of its frames). :class:`Detector` does this for
a Keras model and for LiteRT models alike, offline and block by block.

A saved model is a folder::

    MODEL/model.keras          the Keras model
    MODEL/config.json          front end, window, post-processing thresholds, training report
    MODEL/model_float.tflite   LiteRT, float32   (after :func:`export_litert`)
    MODEL/model_int8.tflite    LiteRT, int8 weights and activations
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence, Sized
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.config import REPO_ROOT, SR
from helpers.features import HOP, N_MELS, frame_labels, frontend_features

WINDOW = 200   # frames per model window (2 s)
STEP = 100     # frames between windows (1 s): the live latency bound
HOP_S = HOP / SR

#: The pretrained model shipped in the repository (made by ``make model``).
SHIPPED_MODEL = REPO_ROOT / "models" / "crnn"


def serial_ops() -> bool:
    """Make TensorFlow run one operation at a time (inter-op parallelism 1), so that training
    with the same seed gives the same weights bit for bit on the same machine and TensorFlow
    version; returns whether it is in effect.

    With several operations in flight, the order in which their results meet depends on
    thread scheduling, and floating-point sums then differ in the last digits from run to run,
    more so on a busy machine (measured: 3 of 4 trainings of the same two epochs differed with
    a second core kept busy; with one operation at a time, 0 of 8 did, at the same speed;
    ``enable_op_determinism`` alone did not help). It must be called before TensorFlow's first
    operation (calling it again later is harmless): ``make model``, ``python -m helpers train``,
    :func:`train_on_folders` and :func:`train_detector` call it, notebooks 05 and 09 in their
    first cell.
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:   # TensorFlow is already running with another setting: too late here
        return False
    return True


# ---------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------
def build_crnn(*, n_mels: int = N_MELS, frames: int = WINDOW, channels: tuple[int, ...] = (16, 32, 32),
               pools: tuple[int, ...] = (4, 4, 4), gru_units: int = 32, unroll: bool = False,
               dropout: float = 0.1):
    """A small CRNN: convolution blocks pooling only in frequency, a forward GRU, and a
    per-frame sigmoid.

    ``unroll=True`` unrolls the GRU over the ``frames`` steps (needed for the LiteRT
    converter).

    Examples
    --------
    >>> m = build_crnn()          # doctest: +SKIP
    >>> m.count_params()          # doctest: +SKIP
    20737
    """
    import keras
    from keras import layers

    inp = keras.Input((frames, n_mels, 1), name="frames")
    x = inp
    for ch, pool in zip(channels, pools):
        x = layers.Conv2D(ch, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D((1, pool))(x)
    x = layers.Reshape((frames, -1))(x)
    x = layers.Dropout(dropout)(x)
    x = layers.GRU(gru_units, return_sequences=True, unroll=unroll, name="gru")(x)
    out = layers.Dense(1, activation="sigmoid", name="plop")(x)
    return keras.Model(inp, out, name="airlock_crnn")


def operations_per_second(model) -> dict:
    """Multiply-accumulate operations per second of audio and parameters, counted per layer."""
    macs = 0
    for layer in model.layers:
        cls = type(layer).__name__
        if cls == "Conv2D":
            _, t, f, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            c_in = layer.input.shape[-1]
            macs += t * f * c_out * kh * kw * c_in
        elif cls == "GRU":
            t, d = layer.input.shape[1], layer.input.shape[2]
            u = layer.units
            macs += t * 3 * (d * u + u * u)
        elif cls == "Dense":
            t = layer.input.shape[1]
            macs += t * layer.input.shape[-1] * layer.units
    frames = model.input.shape[1]
    per_frame = macs / frames
    return {"params": int(model.count_params()), "macs_per_frame": int(per_frame),
            "macs_per_second": int(per_frame / HOP_S)}


# ---------------------------------------------------------------------------------------
# Windows
# ---------------------------------------------------------------------------------------
def window_starts(n_frames: int) -> np.ndarray:
    """Start frames of the windows covering ``n_frames`` frames (the last one may be padded)."""
    if n_frames <= WINDOW:
        return np.array([0])
    return np.arange(0, n_frames - WINDOW + STEP, STEP)


def stitch(window_probs: np.ndarray, starts: np.ndarray, n_frames: int) -> np.ndarray:
    """Per-frame probabilities from overlapping windows: window 0 gives its frames
    ``[0, WINDOW)``, every later window its last ``STEP`` frames."""
    out = np.zeros(n_frames, dtype=np.float32)
    for k, s in enumerate(starts):
        lo = s if k == 0 else s + WINDOW - STEP
        hi = min(s + WINDOW, n_frames)
        if hi > lo:
            out[lo:hi] = window_probs[k, lo - s:hi - s]
    return out


def windows(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``frames × mels`` features into model windows (zero-padded at the end)."""
    n = len(features)
    starts = window_starts(n)
    total = starts[-1] + WINDOW
    padded = np.zeros((total, features.shape[1]), dtype=np.float32)
    padded[:n] = features
    idx = starts[:, None] + np.arange(WINDOW)[None, :]
    return padded[idx][..., None], starts


# ---------------------------------------------------------------------------------------
# The detector
# ---------------------------------------------------------------------------------------
@dataclass
class DetectorConfig:
    frontend: str = "pcen"
    norm_mean: list[float] = field(default_factory=lambda: [0.0] * N_MELS)
    norm_std: list[float] = field(default_factory=lambda: [1.0] * N_MELS)
    postprocess: dict = field(default_factory=lambda: {"on": 0.5})
    report: dict = field(default_factory=dict)


class Detector:
    """Frame probabilities and plop events from audio, with a Keras or LiteRT model.

    Examples
    --------
    >>> det = Detector.load()                          # doctest: +SKIP
    >>> events = det.detect(load_audio("brew1.wav"))   # doctest: +SKIP
    """

    def __init__(self, model, config: DetectorConfig, *, backend: str = "keras", path: Path | None = None):
        self.model = model
        self.config = config
        self.backend = backend
        self.path = path
        self._mean = np.asarray(config.norm_mean, dtype=np.float32)
        self._std = np.asarray(config.norm_std, dtype=np.float32)
        if backend != "keras":
            with _native_output_kept():   # "INFO: Created TensorFlow Lite XNNPACK delegate"
                self.model.allocate_tensors()
            self._in = self.model.get_input_details()[0]
            self._out = self.model.get_output_details()[0]

    # -- loading ---------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike | None = None, *, backend: str = "auto") -> "Detector":
        """Load a saved model folder (default: the shipped model).

        ``backend``: ``"keras"``, ``"int8"`` or ``"float"`` (LiteRT), or ``"auto"`` — the
        LiteRT int8 model when present, the Keras model otherwise.
        """
        folder = Path(path) if path is not None else SHIPPED_MODEL
        if folder.suffix == ".keras":
            folder = folder.parent
        cfg_path = folder / "config.json"
        if not cfg_path.exists():
            hint = ("run `make model` to train it" if folder == SHIPPED_MODEL
                    else "train one with `python -m helpers train --data DIR --out MODEL`")
            raise FileNotFoundError(f"{folder}: no model here (config.json missing); {hint}")
        config = DetectorConfig(**json.loads(cfg_path.read_text()))
        if backend == "auto":
            backend = "int8" if (folder / "model_int8.tflite").exists() else "keras"
        if backend == "keras":
            import keras

            model = keras.saving.load_model(folder / "model.keras", compile=False)
        elif backend in ("int8", "float"):
            from ai_edge_litert.interpreter import Interpreter

            f = folder / f"model_{backend}.tflite"
            if not f.exists():
                raise FileNotFoundError(f"{f}: not exported; run helpers.models.export_litert")
            model = Interpreter(model_path=str(f), num_threads=1)
        else:
            raise ValueError(f"backend must be auto, keras, int8 or float, not {backend!r}")
        return cls(model, config, backend=backend, path=folder)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``model.keras`` and ``config.json`` into ``folder`` (atomically per file).

        LiteRT exports already in ``folder`` belong to the model saved there before, and
        ``backend="auto"`` would prefer them to this one: they are deleted
        (:func:`export_litert` makes new ones)."""
        if self.backend != "keras":
            raise ValueError("only a Keras detector can be saved; export LiteRT from it")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for kind in ("float", "int8"):
            (folder / f"model_{kind}.tflite").unlink(missing_ok=True)
        tmp = folder / ".model.keras.tmp.keras"
        self.model.save(tmp)
        os.replace(tmp, folder / "model.keras")
        tmpc = folder / ".config.json.tmp"
        tmpc.write_text(json.dumps(asdict(self.config), indent=1))
        os.replace(tmpc, folder / "config.json")
        self.path = folder
        return folder

    # -- inference -------------------------------------------------------------------
    def features(self, y: np.ndarray) -> np.ndarray:
        """Normalized front-end features of mono 16 kHz audio."""
        return self.normalize(frontend_features(y, kind=self.config.frontend))

    def normalize(self, feats: np.ndarray) -> np.ndarray:
        return (feats - self._mean) / self._std

    def predict_windows(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (windows × WINDOW) for a batch of windows (windows × WINDOW × mels × 1)."""
        if len(x) == 0:
            return np.zeros((0, WINDOW), dtype=np.float32)
        if self.backend == "keras":
            return self._compiled()(np.asarray(x, dtype=np.float32)).numpy()[..., 0]
        out = np.empty((len(x), WINDOW), dtype=np.float32)
        for i in range(len(x)):
            self.model.set_tensor(self._in["index"], x[i:i + 1].astype(np.float32))
            self.model.invoke()
            out[i] = self.model.get_tensor(self._out["index"])[0, :, 0]
        return out

    def _compiled(self):
        """The Keras model as a ``tf.function`` with a fixed signature, made once: a window in
        milliseconds instead of ~0.5 s for an eager call, and one graph for offline and live."""
        if getattr(self, "_fn", None) is None:
            import tensorflow as tf

            spec = tf.TensorSpec([None, WINDOW, N_MELS, 1], tf.float32)
            model = self.model
            self._fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        return self._fn

    def probabilities_from_features(self, feats: np.ndarray, *, batch: int = 64) -> np.ndarray:
        x, starts = windows(feats)
        probs = np.concatenate([self.predict_windows(x[i:i + batch]) for i in range(0, len(x), batch)])
        return stitch(probs, starts, len(feats))

    def probabilities(self, y: np.ndarray) -> np.ndarray:
        """One plop probability per 10 ms frame of mono 16 kHz audio."""
        return self.probabilities_from_features(self.features(y))

    def events_from_probabilities(self, probs: np.ndarray) -> pd.DataFrame:
        from helpers.events import probabilities_to_events

        return probabilities_to_events(probs, hop_s=HOP_S, **self.config.postprocess)

    def detect(self, y: np.ndarray, *, min_plausibility: float | None = None) -> pd.DataFrame:
        """Plop events (``start``, ``end``, ``label``, ``probability``) in mono 16 kHz audio.

        With ``min_plausibility`` (``detect --strict``: 0.5) each event is also measured by
        :func:`helpers.autolabel.plausibility` (column ``plausibility``) and those below it are
        dropped: fewer false plops from sounds the model never heard, at the cost of a few
        true ones and of computing a fine spectrum (see the README)."""
        events = self.events_from_probabilities(self.probabilities(y))
        if min_plausibility is not None:
            from helpers.autolabel import keep_plausible

            events = keep_plausible(y, events, min_plausibility)
        return events


# ---------------------------------------------------------------------------------------
# Training data
# ---------------------------------------------------------------------------------------
def feature_stats(feats: list[np.ndarray], *, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of every feature over the frames of all recordings:
    ``np.concatenate(feats).mean(axis=0)`` and ``.std(axis=0)``, the same float32 values bit
    for bit, without the concatenated copy and its squared deviations (two more copies of
    every training feature: about 450 MB for the full profile).

    NumPy sums the rows of such an array one after the other, so running sums over the
    recordings in order, ``block`` rows at a time, add the same numbers in the same order.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> feats = [rng.random((n, 3), dtype=np.float32) for n in (5000, 7, 3000)]
    >>> mean, std = feature_stats(feats)
    >>> bool(np.array_equal(mean, np.concatenate(feats).mean(axis=0)))
    True
    >>> bool(np.array_equal(std, np.concatenate(feats).std(axis=0)))
    True
    """
    n = sum(len(f) for f in feats)
    if n == 0:
        raise ValueError("no feature frames to normalize with")

    def running_sum(parts: Iterable[np.ndarray]) -> np.ndarray:
        total = np.zeros((1, feats[0].shape[1]), dtype=np.float32)
        for part in parts:
            for i in range(0, len(part), block):
                total = np.add.reduce(np.concatenate([total, part[i:i + block]]), axis=0, keepdims=True)
        return total

    def squared_deviations() -> Iterator[np.ndarray]:
        for f in feats:
            d = f - mean
            yield np.multiply(d, d, out=d)

    # the divisions of numpy's own mean and var: the float32 sum over the count, in place
    mean = running_sum(feats)
    np.true_divide(mean, np.intp(n), out=mean, casting="unsafe")
    var = running_sum(squared_deviations())
    np.true_divide(var, np.intp(n), out=var, casting="unsafe")
    return mean[0], np.sqrt(var[0])


def features_and_labels(items: Iterable[tuple[np.ndarray, pd.DataFrame]], *, frontend: str
                        ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Front-end features (frames × mels, un-normalized) and frame labels per recording."""
    feats, labs = [], []
    for y, events in items:
        f = frontend_features(y, kind=frontend)
        lab = frame_labels(events, len(f), hop_s=HOP_S)
        if len(f) < WINDOW:
            f = np.pad(f, ((0, WINDOW - len(f)), (0, 0)))
            lab = np.pad(lab, (0, WINDOW - len(lab)))
        feats.append(f)
        labs.append(lab.astype(np.float32))
    return feats, labs


def epoch_windows(feats: list[np.ndarray], labs: list[np.ndarray], *, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping training windows from every recording, starting at a random offset so
    that each epoch sees other cuts; returned shuffled.

    The windows are written straight into their shuffled places (one array, no shuffled copy),
    which halves the memory of an epoch.
    """
    cuts = []
    for k, f in enumerate(feats):
        off = int(rng.integers(0, min(WINDOW, len(f) - WINDOW + 1)))
        cuts += [(k, s) for s in range(off, len(f) - WINDOW + 1, WINDOW)]
    order = rng.permutation(len(cuts))
    n_mels = feats[0].shape[1] if feats else N_MELS
    x = np.empty((len(cuts), WINDOW, n_mels, 1), dtype=np.float32)
    y = np.empty((len(cuts), WINDOW, 1), dtype=np.float32)
    for i, j in enumerate(order):  # window i of the shuffled epoch is cut number j
        k, s = cuts[j]
        x[i, :, :, 0] = feats[k][s:s + WINDOW]
        y[i, :, 0] = labs[k][s:s + WINDOW]
    return x, y


def augmented_items(items: Sequence[tuple[np.ndarray, pd.DataFrame]], *, copies: int, seed: int,
                    backgrounds: list[str] | None = None) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
    """The recordings, then ``copies`` augmented versions of each (see :mod:`helpers.augment`;
    mixed-in backgrounds drawn from ``backgrounds``, default all families), made one at a time
    as they are consumed (an augmented copy is not kept in memory)."""
    from helpers.augment import augment

    rng = np.random.default_rng(seed)
    yield from items
    for _ in range(copies):
        for y, ev in items:
            yield augment(y, ev, rng=rng, backgrounds=backgrounds)


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------
def train_detector(train: Sequence[tuple[np.ndarray, pd.DataFrame]], val: Sequence[tuple[np.ndarray, pd.DataFrame]],
                   *, epochs: int = 12, frontend: str = "pcen", copies: int = 2, seed: int = 0,
                   init: "Detector | None" = None, patience: int = 4, batch_size: int = 64,
                   learning_rate: float = 2e-3, time_budget_s: float | None = None,
                   progress: bool = True, verbose: int = 0,
                   extra: Iterable[tuple[np.ndarray, pd.DataFrame]] | None = None,
                   backgrounds: list[str] | None = None,
                   tune: Iterable[tuple[np.ndarray, pd.DataFrame]] | None = None,
                   ) -> tuple["Detector", pd.DataFrame]:
    """Train a CRNN detector on recordings with events, keeping the epoch with the best
    validation event F1, then tune the post-processing on the validation recordings and
    ``tune`` (more validation recordings, read once after training; they do not choose the
    epoch, which would cost their inference after every epoch).

    ``train`` and ``val`` are sequences of ``(audio at 16 kHz, events)`` (lists, or
    :class:`helpers.datasets.Recordings` to read them from disk one at a time); ``train`` is
    read ``1 + copies`` times: each recording also gets ``copies`` augmented versions.
    ``extra`` (any iterable of the same pairs, read once) is trained on as it is (no augmented
    copies). ``backgrounds`` limits the background families the augmentation
    mixes in (a held-out estimate must not mix in the families it holds out). ``init`` continues from an existing detector (fine-tuning, same
    front end). Returns the detector and the history
    (loss, val PR-AUC, val event F1 per epoch).
    """
    import warnings

    if not serial_ops():
        warnings.warn("TensorFlow was already running in this process with several operations "
                      "at a time, so this training may differ from a rerun in the last digits; "
                      "call helpers.models.serial_ops() before anything runs TensorFlow (or train in a "
                      "fresh process) for the same weights every time", RuntimeWarning, stacklevel=2)
    import keras
    from tqdm.auto import tqdm

    from helpers.evaluate import pooled_onset_scores
    from helpers.events import probabilities_to_events, tune_postprocessing

    keras.utils.set_random_seed(seed)
    t_start = time.perf_counter()
    if init is not None:
        frontend = init.config.frontend
    extra = [] if extra is None else extra
    n_train = len(train)
    stream = itertools.chain(augmented_items(train, copies=copies, seed=seed, backgrounds=backgrounds), extra)
    total = n_train * (1 + copies) + len(extra) if isinstance(extra, Sized) else None
    feats, labs = features_and_labels(tqdm(stream, total=total, desc="features", unit=" recordings",
                                           disable=not progress), frontend=frontend)
    # memory: from here on the features are all that training needs; a caller that passes the
    # recordings without keeping them (training.train_and_export) lets the audio go now
    train = extra = stream = None
    if init is not None:
        mean, std = init._mean, init._std
    else:
        mean, std = feature_stats(feats)
        std += 1e-3
    for f in feats:  # normalize in place: (f - mean) / std, the same float32 values
        f -= mean
        f /= std
    pos = float(np.concatenate(labs).mean())
    # class imbalance: weight positive frames so both classes weigh the same in the loss
    w_pos = float(np.clip((1 - pos) / max(pos, 1e-4), 1.0, 20.0)) ** 0.5

    config = DetectorConfig(frontend=frontend, norm_mean=[float(v) for v in mean],
                            norm_std=[float(v) for v in std])
    if init is not None:
        model = keras.models.clone_model(init.model)
        model.set_weights(init.model.get_weights())
    else:
        model = build_crnn()
    # the learning rate falls along a cosine over the planned epochs (to 5 %), so that the last
    # epochs refine instead of jumping between solutions (the validation F1 then varies less)
    per_epoch = sum(-(-(len(f) - WINDOW + 1) // WINDOW) for f in feats)
    steps = max(1, epochs * -(-per_epoch // batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.BinaryCrossentropy())
    det = Detector(model, config, backend="keras")
    val_feats, val_refs = [], []
    for y, ev in val:                      # one pass: val may be read from disk
        val_feats.append(det.features(y))
        val_refs.append(ev)

    history = []
    best = (-1.0, None, -1)
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        t0 = time.perf_counter()
        x, yl = epoch_windows(feats, labs, rng=rng)
        sw = np.where(yl[..., 0] > 0.5, w_pos, 1.0).astype(np.float32)
        # batch by batch from the (already shuffled) arrays. fit() on the whole arrays copies the
        # epoch into a tensor first, and fit() on a new PyDataset each epoch keeps every epoch's
        # arrays alive (about 200 MB more per epoch): both took notebook 05 over Binder's 2 GB
        loss = _train_epoch(model, x, yl, sw, batch_size=batch_size, progress=verbose > 0)
        del x, yl, sw
        probs = [det.probabilities_from_features(f) for f in val_feats]
        f1 = pooled_onset_scores([(r, probabilities_to_events(p, hop_s=HOP_S, on=0.5))
                                  for r, p in zip(val_refs, probs)])["f1"] if val else float("nan")
        labels = np.concatenate([frame_labels(r, len(p), hop_s=HOP_S) for r, p in zip(val_refs, probs)]) if val else None
        pr = _pr_auc(labels, np.concatenate(probs)) if val else float("nan")
        history.append({"epoch": epoch + 1, "loss": loss, "val_pr_auc": pr,
                        "val_event_f1": f1, "seconds": round(time.perf_counter() - t0, 1)})
        if progress:
            print(f"epoch {epoch + 1}/{epochs}: loss {history[-1]['loss']:.4f}, "
                  f"val PR-AUC {pr:.3f}, val event F1 {f1:.3f} ({history[-1]['seconds']} s)", flush=True)
        if f1 > best[0]:
            best = (f1, model.get_weights(), epoch + 1)
        if epoch + 1 - best[2] >= patience:
            break
        if time_budget_s is not None and time.perf_counter() - t_start > time_budget_s:
            if progress:
                print(f"stopping: time budget of {time_budget_s:.0f} s reached", flush=True)
            break
    if best[1] is not None:
        model.set_weights(best[1])
    probs = [det.probabilities_from_features(f) for f in val_feats]
    tune_refs = list(val_refs)
    for y, ev in tune or []:               # one at a time: tune may be read from disk
        probs.append(det.probabilities(y))
        tune_refs.append(ev)
    if probs:
        params, _ = tune_postprocessing(probs, tune_refs, hop_s=HOP_S)
        config.postprocess = params
    config.report = {"best_epoch": best[2], "epochs_run": len(history), "val_event_f1": best[0],
                     "train_recordings": n_train, "val_recordings": len(val),
                     "tune_recordings": len(probs),
                     "augmented_copies": copies, "train_seconds": round(time.perf_counter() - t_start, 1),
                     **operations_per_second(model)}
    return det, pd.DataFrame(history)


def _train_epoch(model, x: np.ndarray, y: np.ndarray, weights: np.ndarray, *, batch_size: int,
                 progress: bool = False) -> float:
    """One pass over the (already shuffled) windows, one ``train_on_batch`` per batch of
    consecutive windows; returns the mean weighted loss over the windows."""
    from tqdm.auto import tqdm

    total = 0.0
    for i in tqdm(range(0, len(x), batch_size), desc="batches", disable=not progress, leave=False):
        sl = slice(i, i + batch_size)
        total += float(model.train_on_batch(x[sl], y[sl], sample_weight=weights[sl])) * len(x[sl])
    return total / max(len(x), 1)


def _pr_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    if labels is None or labels.sum() == 0:
        return float("nan")
    return float(average_precision_score(labels, scores))


# ---------------------------------------------------------------------------------------
# LiteRT
# ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def _native_output_kept() -> Iterator[None]:
    """Hold back what native code writes to file descriptor 2 (LiteRT's and the converter's
    C++ logs, which Python cannot redirect) while the block runs; when the block raises, what
    was written is printed to stderr before the error."""
    import sys
    import tempfile

    sys.stderr.flush()
    saved_fd = os.dup(2)
    failed = True
    with tempfile.TemporaryFile(mode="w+b") as native:
        os.dup2(native.fileno(), 2)
        try:
            yield
            failed = False
        finally:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            if failed:
                native.seek(0)
                sys.stderr.write(native.read().decode(errors="replace"))


@contextlib.contextmanager
def _converter_quiet() -> Iterator[None]:
    """Keep the LiteRT converter's chatter (the saved artifact's signature, TensorFlow's INFO
    lines and the quantizer's native log, about fifty lines per model) out of the output;
    when the conversion fails, what it said is printed to stderr before the error."""
    import io
    import logging
    import sys
    import warnings

    said = io.StringIO()
    tf_log = logging.getLogger("tensorflow")
    level = tf_log.level
    tf_log.setLevel(logging.WARNING)
    try:
        with _native_output_kept():
            try:
                with contextlib.redirect_stdout(said), warnings.catch_warnings():
                    # int8 inputs are not asked for: the model keeps float32 inputs and outputs
                    warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
                    yield
            except BaseException:
                sys.stderr.write(said.getvalue())
                raise
    finally:
        tf_log.setLevel(level)


def export_litert(detector: Detector, representative: list[np.ndarray], *, folder: str | os.PathLike | None = None,
                  n_windows: int = 200, seed: int = 0) -> dict:
    """Export the Keras model to LiteRT as float32 and as int8 (weights and activations,
    calibrated on windows of the ``representative`` audio). Returns the file sizes."""
    import tensorflow as tf

    folder = Path(folder or detector.path)
    src = detector.model
    unrolled = build_crnn(unroll=True)
    unrolled.set_weights(src.get_weights())
    rng = np.random.default_rng(seed)
    xs = [windows(detector.features(y))[0] for y in representative]
    pool = np.concatenate(xs)
    pick = pool[rng.choice(len(pool), size=min(n_windows, len(pool)), replace=False)]

    def rep():
        for w in pick:
            yield [w[None].astype(np.float32)]

    sizes = {}
    for kind in ("float", "int8"):
        conv = tf.lite.TFLiteConverter.from_keras_model(unrolled)
        if kind == "int8":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = rep
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        with _converter_quiet():
            blob = conv.convert()
        path = folder / f"model_{kind}.tflite"
        tmp = folder / f".model_{kind}.tflite.tmp"
        tmp.write_bytes(blob)
        os.replace(tmp, path)
        sizes[kind] = len(blob)
    sizes["keras"] = (folder / "model.keras").stat().st_size if (folder / "model.keras").exists() else None
    return sizes


# ---------------------------------------------------------------------------------------
# Batch detection and training on own recordings (the command line's `detect` and `train`)
# ---------------------------------------------------------------------------------------
def detect_paths(paths, *, out_dir: str | os.PathLike, model: str | os.PathLike | None = None,
                 backend: str = "auto", progress: bool = True, on_row=None,
                 bpm_method: str = "interval", min_plausibility: float | None = None,
                 overwrite: bool = False) -> pd.DataFrame:
    """Detect plops in every audio file of ``paths`` (files or folders), write
    ``out_dir/<stem>.txt`` Audacity labels, and return one row per file (``file``,
    ``duration_s``, ``events``, ``bpm``, ``bpm_low``, ``bpm_high``, ``error``).

    ``bpm_method`` (:func:`helpers.events.bpm_from_events`): ``"interval"`` (default), the
    typical gap between plops, robust to a missed plop or a burst; ``"mean"``, the mean of the
    same gaps (not pulled up by their skew, but pulled down by missed plops); ``"count"``,
    plops per minute of the file, what counting by hand gives, exact when the detector is.
    ``min_plausibility``: see :meth:`Detector.detect` (``detect --strict``).

    A file that cannot be read, a path that is not audio or does not exist, and a file whose
    labels would overwrite another's or the labels beside it (:func:`helpers.audio.label_jobs`;
    ``overwrite`` replaces the labels beside a recording in ``out_dir``) are reported in their row's ``error`` (which names the file) and the others are still
    processed. ``on_row(row)`` is called after each file (the command line prints it).
    """
    import sys

    from tqdm.auto import tqdm

    from helpers.audio import AudioError, label_jobs, load_audio, naming, output_folder
    from helpers.events import bpm_from_events
    from helpers.labels import write_labels

    out = output_folder(out_dir)
    jobs = label_jobs(paths, out, overwrite=overwrite)
    det = Detector.load(model, backend=backend)
    rows = []
    for f, target, error in tqdm(jobs, desc="detecting", unit="file",
                                 disable=not progress or len(jobs) < 2, file=sys.stderr):
        row = {"file": str(f), "duration_s": float("nan"), "events": 0, "bpm": float("nan"),
               "bpm_low": float("nan"), "bpm_high": float("nan"), "error": error}
        if target is not None:
            try:
                y = load_audio(f)
                events = det.detect(y, min_plausibility=min_plausibility)
                duration = len(y) / SR
                write_labels(events, target)
                b = bpm_from_events(events, duration_s=duration, method=bpm_method)
                row.update(duration_s=round(duration, 3), events=len(events), bpm=round(b["bpm"], 2),
                           bpm_low=round(b["low"], 2), bpm_high=round(b["high"], 2))
            except (AudioError, OSError, ValueError) as e:
                row["error"] = naming(f, e)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return pd.DataFrame(rows, columns=["file", "duration_s", "events", "bpm", "bpm_low", "bpm_high", "error"])


#: hard negatives that :func:`train_on_folders` adds by default: recordings of 30 s of speech or
#: music alone (the training clips of :mod:`helpers.backgrounds`), and one in six as many to
#: validate on
TRAIN_NEGATIVES = 24


def train_on_folders(folders, *, out: str | os.PathLike, epochs: int = 10, init: str | os.PathLike | None = "shipped",
                     seed: int = 0, export: bool = True, time_budget_s: float | None = 240.0,
                     progress: bool = True, negatives: int | None = None) -> dict:
    """Train (or fine-tune) a detector on folders of own recordings and save it to ``out``.

    Each folder holds audio files with same-stem Audacity ``.txt`` labels. One recording in
    five (at least one) is kept for validation, whole. ``init="shipped"`` starts from the
    shipped model (fine-tuning, best with little data), ``None`` trains from scratch, a path
    starts from that model. Each training recording also gets one augmented copy
    (:func:`helpers.augment.augment`: its backgrounds include the recorded speech and music).

    ``negatives`` recordings of 30 s of speech or music alone (:func:`helpers.backgrounds.negatives`,
    other excerpts for each seed) are trained on beside them, and a sixth as many more join the
    validation recordings (other excerpts of the same 24 minutes of clips, not unheard talk),
    so that the epoch and the thresholds are chosen where false plops cost too. Without them a model fine-tuned on six minutes of one airlock forgot what the
    shipped one had learned of talking and music: on recordings of them alone it found 66 and
    110 plops a minute (the shipped model of the time 3 and 9); with the default 24, 8 and 6
    (the shipped model now 2.7 and 3.0, fine-tuned from it 2.2 and 3.4: ``bench/run_bench.py
    --only bubbles``). ``0`` trains on the folders alone, which is the
    default from scratch (``init=None``): a new model must learn the plops first, and ten
    epochs on six minutes beside 24 negatives taught it none (validation F1 0).
    Returns a report of what was done, with ``false_plops_per_minute``: what the new model
    (``model``) and the one it started from (``start``) find a minute in recorded talk and
    music that nothing trains on (:func:`helpers.backgrounds.false_plops_per_minute`). Fine-tuning on low
    plops can teach a model to fire on voices (on widelands' brewery bubbles near 290 Hz: 7.7 a
    minute in talk, against 2.7 before; 27 against 3.8 with the model and voices of the version
    before), so ``train`` says so.
    """
    from helpers import backgrounds
    from helpers.datasets import Recordings, own_recordings, split_by_recording
    from helpers.labels import read_labels

    t0 = time.perf_counter()
    frames = [own_recordings(f) for f in folders]
    manifest = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    manifest = manifest[manifest["labels"].astype(bool)].reset_index(drop=True)
    if len(manifest) < 2:
        raise ValueError(f"need at least two labeled recordings in {', '.join(map(str, folders))} "
                         f"(found {len(manifest)}): one to train on and one to validate")
    if manifest["recording"].duplicated().any():
        manifest["recording"] = [f"{Path(p).parent.name}/{r}" for p, r in zip(manifest["path"], manifest["recording"])]
    manifest["split"] = split_by_recording(manifest["recording"], seed=seed, fractions=(0.8, 0.2, 0.0))
    if not (manifest["split"] == "val").any():
        manifest.loc[manifest.index[-1], "split"] = "val"
    train_m, val_m = manifest[manifest["split"] != "val"], manifest[manifest["split"] == "val"]
    if negatives is None:
        negatives = TRAIN_NEGATIVES if init is not None else 0
    if negatives < 0:
        raise ValueError(f"negatives must be 0 or more, not {negatives}")
    train, val = Recordings(train_m), Recordings(val_m)   # read from disk as training uses them
    # validation: the held-back recordings (read once, kept: a fifth of the data) and the negatives
    n_val_neg = -(-negatives // 6)
    val_items = list(val) + backgrounds.negatives(n_val_neg, 30.0, seed=seed + 1)
    start = None
    serial_ops()   # before loading the start model starts TensorFlow: the same weights every run
    if init is not None:
        start = Detector.load(None if init == "shipped" else init, backend="keras")
    det, history = train_detector(train, val_items, epochs=epochs, seed=seed, init=start,
                                  copies=1, time_budget_s=time_budget_s, progress=progress,
                                  learning_rate=1e-3 if start is not None else 2e-3,
                                  extra=backgrounds.negatives(negatives, 30.0, seed=seed))
    # what it costs: false plops a minute in recorded talk and music that nothing trains on (the
    # eval clips of helpers.backgrounds), beside those of the model it started from. Teaching a
    # model low plops taught it to fire on voices (README, "Bubbles and drops from other sources")
    false_plops = {"model": backgrounds.false_plops_per_minute(det)}
    if start is not None:
        false_plops["start"] = backgrounds.false_plops_per_minute(start)
    det.config.report.update({"data": [str(f) for f in folders],
                              "started_from": "scratch" if init is None else str(init),
                              "false_plops_per_minute": false_plops})
    det.save(out)
    (Path(out) / "history.csv").write_text(history.to_csv(index=False))
    sizes = export_litert(det, [train[i][0] for i in range(min(8, len(train)))], folder=out) if export else {}
    return {"out": str(out), "recordings_train": len(train_m), "recordings_val": len(val_m),
            "negatives_train": negatives, "negatives_val": n_val_neg,
            "minutes": round(float(manifest["duration_s"].sum()) / 60, 1),
            "plops": int(sum(len(read_labels(p)) for p in manifest["labels"])),
            "epochs_run": int(len(history)), "best_epoch": det.config.report["best_epoch"],
            "val_event_f1": round(float(det.config.report["val_event_f1"]), 3),
            "postprocess": det.config.postprocess, "litert_bytes": sizes,
            "false_plops_per_minute": false_plops,
            "seconds": round(time.perf_counter() - t0, 1)}
