"""Reading, checking and writing audio files.

Every recording in the project goes through :func:`load_audio`, which returns a
``float32`` array at the working rate :data:`helpers.config.SR` (16 kHz), mono
unless asked otherwise. Decoding uses two back-ends:

* ``soundfile`` (libsndfile) for WAV, FLAC, Ogg Vorbis/Opus, MP3 (libsndfile
  1.1 and later), AIFF, CAF, ... It is fast and needs nothing else installed.
* ``ffmpeg`` for everything libsndfile cannot open, such as M4A/AAC, WebM, WMA
  or MP4 videos. The system ``ffmpeg`` on ``PATH`` is preferred, otherwise the
  binary shipped with the ``imageio-ffmpeg`` package. It is looked up when first
  needed, never at import time.

Files that are broken in common ways (empty, cut short while copying, random
bytes with an audio extension, NaN samples, ...) raise :class:`AudioError`,
whose message starts with the file name, says what is wrong and what to do.
Sample rates outside the usual 8-96 kHz still load (they are resampled like
any other rate); just remember that a 4 kHz recording has no content above
2 kHz even after upsampling.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import shutil
import subprocess
import uuid
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from helpers.config import SR

__all__ = [
    "SUPPORTED",
    "AudioError",
    "TruncatedAudio",
    "audio_info",
    "check_file",
    "decoding_failed",
    "find_audio",
    "label_jobs",
    "load_audio",
    "naming",
    "no_samples",
    "output_folder",
    "resample",
    "save_audio",
    "shortfall",
    "to_mono",
]

#: File extensions (lower case) treated as audio by :func:`find_audio` and
#: accepted by :func:`load_audio`.
SUPPORTED = (
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".m4a",
    ".aac",
    ".mp4",
    ".webm",
    ".mka",
    ".wma",
    ".aif",
    ".aiff",
    ".caf",
)

#: Extensions :func:`save_audio` can write, with their libsndfile format name.
_WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".oga": "OGG"}

_INSTALL_FFMPEG = "install ffmpeg (apt-get install ffmpeg) or pip install imageio-ffmpeg"
_REEXPORT = "the file is damaged or not audio; copy, download or export it again"
_BLOCK = 2**16  # frames per block when writing
_READ_BLOCK = 2**20  # frames per block when reading with soundfile


class AudioError(ValueError):
    """An audio file that cannot be used, with a message that says why.

    The message reads ``"<path>: <problem>; <hint>"``. The parts are also
    available as the attributes ``path``, ``problem`` and ``hint``.

    Examples
    --------
    >>> err = AudioError("rec.wav", "is empty (0 bytes)", "record it again")
    >>> str(err)
    'rec.wav: is empty (0 bytes); record it again'
    """

    def __init__(self, path: str | os.PathLike[str], problem: str, hint: str = "") -> None:
        self.path = Path(path)
        self.problem = problem
        self.hint = hint
        super().__init__(f"{path}: {problem}" + (f"; {hint}" if hint else ""))

    def __reduce__(self) -> tuple[Any, ...]:  # keep it picklable (multiprocessing, joblib)
        return (type(self), (str(self.path), self.problem, self.hint))


class TruncatedAudio(AudioError):
    """A file that holds less audio than its header promises (a copy cut short): readers that
    can use the part that is there (``listen``) go on and report it at the end."""


def no_samples(path: str | os.PathLike[str]) -> AudioError:
    """The error for a file that decodes to no samples at all (every reader gives this one)."""
    return AudioError(path, "contains no audio samples (0 frames)", "record or export it again")


def naming(path: str | os.PathLike[str], exc: BaseException) -> str:
    """``exc``'s message for a person, starting with ``path`` unless it names it already
    (a missing file reads ``path: No such file or folder``, not ``[Errno 2] ...``).

    Examples
    --------
    >>> naming("a.wav", ValueError("too short"))
    'a.wav: too short'
    >>> naming("a.wav", AudioError("a.wav", "is empty (0 bytes)"))
    'a.wav: is empty (0 bytes)'
    """
    message = f"{path}: {exc.strerror}" if isinstance(exc, FileNotFoundError) and exc.strerror else str(exc)
    return message if str(path) in message else f"{path}: {message}"


# --------------------------------------------------------------------------- finding


def find_audio(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """List the audio files in some files and folders.

    Parameters
    ----------
    paths
        One path or several. A folder is searched recursively for files whose
        extension (any case) is in :data:`SUPPORTED`; its files are sorted.
        Other files (such as the ``.txt`` label files next to the recordings)
        and hidden files and folders (names starting with ``.``, e.g. macOS
        ``._rec.wav`` resource forks) are skipped. A file named explicitly is
        kept as is.

    Returns
    -------
    list of Path
        In the order given, folders expanded, without duplicates.

    Raises
    ------
    FileNotFoundError
        If a path does not exist.
    AudioError
        If a file named explicitly does not have an audio extension.

    Examples
    --------
    >>> find_audio("data/recordings")  # doctest: +SKIP
    [PosixPath('data/recordings/day1.wav'), PosixPath('data/recordings/day2.m4a')]
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    seen: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            candidates = sorted(
                f
                for f in p.rglob("*")
                if f.suffix.lower() in SUPPORTED
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
                and f.is_file()
            )
        elif p.is_file():
            _check_extension(p)
            candidates = [p]
        else:
            raise _not_found(p)
        for f in candidates:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                found.append(f)
    return found


def output_folder(out_dir: str | os.PathLike[str]) -> Path:
    """Create ``out_dir`` (and its parents) and check that files can be written in it, before
    a batch spends minutes on files whose results could not be saved.

    Raises
    ------
    ValueError
        With a message that names the folder and the problem (it is a file, or not writable).

    Examples
    --------
    >>> import tempfile
    >>> output_folder(Path(tempfile.mkdtemp()) / "labels").is_dir()
    True
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: is a file, not a folder; --out needs a folder for the label files")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"{out}: cannot write there ({exc.strerror or exc}); choose another --out "
                         "folder") from exc
    return out


def label_jobs(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
               out_dir: str | os.PathLike[str], *, overwrite: bool = False
               ) -> list[tuple[Path, Path | None, str]]:
    """The audio files of ``paths`` and the label file each one gets in ``out_dir``, for the
    commands that write ``out_dir/<stem>.txt`` (``detect``, ``autolabel``).

    Returns ``(file, target, error)`` triples in the order of ``paths`` (folders expanded by
    :func:`find_audio`, each file once). ``target`` is
    None, and ``error`` says why, when nothing must be written for that path, so that nothing
    is lost and the batch goes on with the others:

    * the path does not exist, or is a file that is not audio (``find_audio``'s message);
    * an earlier file has the same stem (``a/rec.wav`` and ``b/rec.flac``): its labels would
      overwrite the other's;
    * ``out_dir`` holds a recording of that stem and its ``<stem>.txt``: the labels beside
      that audio (often made by hand) would be overwritten; ``overwrite=True`` (the commands'
      ``--overwrite``) replaces them instead when the file *is* that recording (a rerun into the
      recordings' own folder), never the labels of another recording of the same stem.

    Examples
    --------
    >>> label_jobs(["brew/day1.wav", "old/day1.wav"], "labels")  # doctest: +SKIP
    [(PosixPath('brew/day1.wav'), PosixPath('labels/day1.txt'), ''),
     (PosixPath('old/day1.wav'), None, 'old/day1.wav: same stem as brew/day1.wav: ...')]
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = Path(out_dir)
    entries: list[tuple[Path, str]] = []   # (file, "") or (path, why it is not one), in order
    seen: set[Path] = set()
    for p in paths:
        try:
            found = find_audio(p)
        except (OSError, ValueError) as exc:  # AudioError is a ValueError
            entries.append((Path(p), naming(p, exc)))
            continue
        for f in found:  # a file named directly and through its folder is labeled once
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                entries.append((f, ""))
    # recordings that live in out_dir: their .txt there are their labels, not ours to replace
    recorded = {g.stem for g in out.iterdir() if g.suffix.lower() in SUPPORTED} if out.is_dir() else set()
    jobs: list[tuple[Path, Path | None, str]] = []
    taken: dict[str, Path] = {}
    home = out.resolve()

    def own(f: Path) -> bool:   # the recording lives in out_dir: the labels there are its own
        return f.resolve().parent == home

    for f, error in entries:
        target = out / f"{f.stem}.txt"
        if error:
            jobs.append((f, None, error))
        elif f.stem in taken:
            jobs.append((f, None, f"{f}: same stem as {taken[f.stem]}: its labels would overwrite "
                                  f"{target}; rename one of them or give them separate --out folders"))
        elif f.stem in recorded and target.exists() and not (overwrite and own(f)):
            hint = ("choose another --out folder, or pass --overwrite to replace them" if own(f) else
                    "choose another --out folder (--overwrite replaces only the labels of the "
                    "recording itself)")
            jobs.append((f, None, f"{f}: {target} holds the labels of a recording in that folder "
                                  f"(made by hand?) and would be overwritten; {hint}"))
        else:
            taken[f.stem] = f
            jobs.append((f, target, ""))
    return jobs


# --------------------------------------------------------------------------- loading


def load_audio(
    path: str | os.PathLike[str], *, sr: int | None = SR, mono: bool = True
) -> np.ndarray:
    """Read an audio file as ``float32`` samples in [-1, 1].

    Parameters
    ----------
    path
        An audio file, see :data:`SUPPORTED`.
    sr
        Sample rate of the result in Hz; the recording is resampled with
        ``soxr`` (high quality) when its own rate differs. ``None`` keeps the
        file's rate (ask :func:`audio_info` for it).
    mono
        ``True`` averages the channels (shape ``(n,)``; see :func:`to_mono` for
        channels that cancel out); ``False`` keeps them
        (shape ``(channels, n)``, also for a mono file).

    Returns
    -------
    numpy.ndarray
        ``float32``, C-contiguous.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    AudioError
        If the file is a folder, has an unsupported extension, is empty,
        truncated or corrupt, holds no samples or NaN/infinite samples, or
        needs ffmpeg and none is installed.

    Notes
    -----
    Integer (16/24/32-bit) and float (32/64-bit) files all come back as
    ``float32``. Lossy codecs (MP3, AAC, Opus) may add a few ms of silence at
    the end (up to one codec frame, about 23 ms for AAC at 44.1 kHz).

    Examples
    --------
    >>> y = load_audio("data/recordings/day1.wav")  # doctest: +SKIP
    >>> y.dtype, y.ndim  # doctest: +SKIP
    (dtype('float32'), 1)
    """
    if sr is not None and not sr > 0:
        raise ValueError(f"sr must be a positive sample rate in Hz or None, not {sr!r}")
    path = check_file(path)
    y, native_sr, _ = _decode(path)
    if y.shape[1] == 0:
        raise no_samples(path)
    finite = np.isfinite(y)
    if not finite.all():
        bad = np.flatnonzero(~finite.all(axis=0))
        raise AudioError(
            path,
            f"contains {bad.size} frames with NaN or infinite sample values "
            f"(first at {bad[0] / native_sr:.3f} s)",
            "the float samples are corrupt; re-export the recording (16-bit PCM avoids this)",
        )
    if mono:
        y, kept = downmix(y)
        if kept is not None:
            warnings.warn(f"{path}: its channels cancel out when averaged (opposite polarity?); "
                          f"using channel {kept + 1} alone", stacklevel=2)
    if sr is not None and sr != native_sr:
        y = resample(y, native_sr, sr)
    return np.ascontiguousarray(y, dtype=np.float32)


def audio_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Sample rate, channels, duration and format of an audio file, without decoding it.

    Formats libsndfile reads only have their header read. Other formats ask
    ffmpeg, which decodes a fraction of a second. Like :func:`load_audio`,
    empty, unsupported and visibly truncated files (WAV, Ogg) raise
    :class:`AudioError`; damage deeper inside a file shows only when it is
    loaded.

    Returns
    -------
    dict
        ``sample_rate`` (int, Hz), ``channels`` (int), ``duration_s`` (float,
        or None when the container does not say), ``format`` (container, e.g.
        ``"wav"``, ``"ogg"``, ``"m4a"``), ``codec`` (e.g. ``"pcm_16"``,
        ``"vorbis"``, ``"aac"``) and ``decoder`` (``"soundfile"`` or
        ``"ffmpeg"``).

    Examples
    --------
    >>> audio_info("data/recordings/day1.wav")  # doctest: +SKIP
    {'sample_rate': 44100, 'channels': 2, 'duration_s': 61.5, 'format': 'wav',
     'codec': 'pcm_16', 'decoder': 'soundfile'}
    """
    import soundfile as sf

    path = check_file(path)
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile cannot open it: ask ffmpeg
        y, native_sr, meta = _read_ffmpeg(path, sf_error=exc, seconds=0.1)
        return {
            "sample_rate": native_sr,
            "channels": int(y.shape[0]),
            "duration_s": meta["duration_s"],
            "format": meta["format"],
            "codec": meta["codec"],
            "decoder": "ffmpeg",
        }
    return {
        "sample_rate": int(info.samplerate),
        "channels": int(info.channels),
        "duration_s": info.frames / info.samplerate if info.samplerate > 0 else None,
        "format": info.format.lower(),
        "codec": info.subtype.lower(),
        "decoder": "soundfile",
    }


#: :func:`to_mono` keeps one channel instead of the average when the average has less than
#: this share of the channels' mean power (-20 dB): the channels cancel out.
CANCEL_POWER_RATIO = 0.01


def downmix(y: np.ndarray) -> tuple[np.ndarray, int | None]:
    """:func:`to_mono`, and which channel it kept (``None`` when it averaged them)."""
    y = np.asarray(y)
    if y.ndim == 1:
        return y.astype(np.float32, copy=False), None
    if y.ndim != 2:
        raise ValueError(f"expected samples of shape (n,) or (channels, n), got shape {y.shape}")
    if y.shape[0] == 1:   # mono in a channel axis: nothing to average
        return y[0].astype(np.float32), None
    # the channels' mean in float64, one channel at a time: y is usually a transposed view of
    # soundfile's (n, channels) array, where y.mean(axis=0) took 2.4 s for an hour of audio
    mix = y[0].astype(np.float64)
    for channel in y[1:]:
        mix += channel
    mix /= y.shape[0]
    if y.shape[1]:
        power = np.einsum("ij,ij->i", y, y, dtype=np.float64) / y.shape[1]
        if power.max() > 0 and float(mix @ mix) / len(mix) < CANCEL_POWER_RATIO * float(power.mean()):
            keep = int(np.argmax(power))
            return y[keep].astype(np.float32), keep
    return mix.astype(np.float32), None


def to_mono(y: np.ndarray) -> np.ndarray:
    """Average the channels of ``y`` — unless they cancel out.

    A microphone pair wired in opposite polarity (or a stereo "widening" effect) gives
    channels that are loud alone and nearly silent averaged. When the average keeps less
    than :data:`CANCEL_POWER_RATIO` (1 %, -20 dB) of the channels' mean power, the loudest
    channel is returned instead (:func:`load_audio` warns when that happens).

    Parameters
    ----------
    y
        Shape ``(n,)`` (returned unchanged) or ``(channels, n)``.

    Returns
    -------
    numpy.ndarray
        ``float32``, shape ``(n,)``.

    Examples
    --------
    >>> to_mono(np.array([[1.0, 0.0], [0.0, 0.0]]))
    array([0.5, 0. ], dtype=float32)
    >>> to_mono(np.array([[0.5, -0.25], [-0.5, 0.25]]))   # opposite polarity: the first channel
    array([ 0.5 , -0.25], dtype=float32)
    """
    return downmix(y)[0]


def resample(y: np.ndarray, orig_sr: float, target_sr: float) -> np.ndarray:
    """Change the sample rate of ``y`` with ``soxr`` (high quality).

    Parameters
    ----------
    y
        Shape ``(n,)`` or ``(channels, n)``.
    orig_sr, target_sr
        Sample rates in Hz (any positive value).

    Returns
    -------
    numpy.ndarray
        ``float32``, same number of dimensions, about ``n * target_sr / orig_sr``
        frames. ``y`` itself (as float32) when the rates are equal.

    Notes
    -----
    Each call treats ``y`` as a whole signal. To resample a live stream block
    by block without clicks at the block edges use ``soxr.ResampleStream``.

    Examples
    --------
    >>> resample(np.zeros(44_100), 44_100, 16_000).shape
    (16000,)
    """
    import soxr

    if not (orig_sr > 0 and target_sr > 0):
        raise ValueError(f"sample rates must be positive, got {orig_sr!r} -> {target_sr!r}")
    y = np.asarray(y, dtype=np.float32)
    if orig_sr == target_sr:
        return y
    if y.ndim == 1:
        return soxr.resample(y, orig_sr, target_sr, quality="HQ")
    if y.ndim == 2:
        out = soxr.resample(np.ascontiguousarray(y.T), orig_sr, target_sr, quality="HQ")
        return np.ascontiguousarray(out.T)
    raise ValueError(f"expected samples of shape (n,) or (channels, n), got shape {y.shape}")


# --------------------------------------------------------------------------- saving


def save_audio(
    path: str | os.PathLike[str], y: np.ndarray, *, sr: int, subtype: str | None = None
) -> Path:
    """Write samples to a ``.wav``, ``.flac`` or ``.ogg`` file, atomically.

    The samples go to a hidden temporary file next to ``path`` which then
    replaces ``path``, so a crash never leaves a half-written file behind.
    They are written in blocks, which also keeps libsndfile's Vorbis encoder
    happy with long recordings. Missing parent folders are created.

    Parameters
    ----------
    path
        Destination; the extension picks the format.
    y
        Samples, shape ``(n,)`` or ``(channels, n)``, nominally in [-1, 1].
        Integer subtypes clip values outside that range.
    sr
        Sample rate in Hz.
    subtype
        libsndfile subtype such as ``"PCM_16"`` (default for WAV and FLAC),
        ``"PCM_24"``, ``"FLOAT"`` or ``"VORBIS"`` (default for Ogg).

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> t = np.arange(16_000) / 16_000
    >>> save_audio("tone.flac", 0.1 * np.sin(2 * np.pi * 440 * t), sr=16_000)  # doctest: +SKIP
    PosixPath('tone.flac')
    """
    import soundfile as sf

    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(
            path,
            f"cannot write {path.suffix or 'extension-less'} files",
            f"save as {', '.join(_WRITE_FORMATS)} (convert with ffmpeg afterwards if needed)",
        )
    if not sr > 0:
        raise ValueError(f"sr must be a positive sample rate in Hz, not {sr!r}")
    y = np.asarray(y)
    if y.ndim == 1:
        y = y[np.newaxis, :]
    if y.ndim != 2 or y.shape[0] == 0:
        raise ValueError(f"expected samples of shape (n,) or (channels, n), got shape {y.shape}")
    if y.shape[0] > 16:
        raise ValueError(
            f"samples of shape {y.shape} would have {y.shape[0]} channels; "
            "pass (channels, n), e.g. y.T for an (n, channels) array"
        )
    if not np.isfinite(y).all():
        raise ValueError(f"refusing to write NaN or infinite samples to {path}")

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    frames = y.T  # (n, channels) as soundfile expects
    try:
        with sf.SoundFile(
            str(tmp), "w", samplerate=int(sr), channels=y.shape[0], format=fmt, subtype=subtype
        ) as f:
            for start in range(0, frames.shape[0], _BLOCK):
                f.write(np.ascontiguousarray(frames[start : start + _BLOCK], dtype=np.float32))
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, (sf.SoundFileError, RuntimeError, ValueError)) and not isinstance(
            exc, AudioError
        ):
            raise AudioError(
                path,
                f"could not be written ({exc})",
                f"check sr and subtype; soundfile.available_subtypes({fmt!r}) lists valid subtypes",
            ) from exc
        raise
    return path


# --------------------------------------------------------------------------- checks


def _not_found(path: Path) -> FileNotFoundError:
    where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
    return FileNotFoundError(errno.ENOENT, f"No such file or folder{where}", str(path))


def _check_extension(path: Path) -> None:
    ext = path.suffix.lower()
    if ext in SUPPORTED:
        return
    if ext == ".txt":
        problem = "is a text file (an Audacity label file?), not audio"
    else:
        problem = f"has an unsupported extension {ext or '(none)'!r}"
    raise AudioError(
        path,
        problem,
        f"audio files end in {', '.join(SUPPORTED)}; convert others with ffmpeg -i IN OUT.wav",
    )


def check_file(path: str | os.PathLike[str]) -> Path:
    """Existence, type, extension, size and container structure (a WAV or Ogg file cut short
    raises :class:`TruncatedAudio`) before any decoding; returns a Path."""
    path = Path(path)
    if path.is_dir():
        raise AudioError(
            path, "is a folder, not an audio file", f"list its audio with find_audio({str(path)!r})"
        )
    if not path.is_file():
        raise _not_found(path)
    _check_extension(path)
    size = path.stat().st_size
    if size == 0:
        raise AudioError(
            path, "is empty (0 bytes)", "the recording or download failed; create the file again"
        )
    with open(path, "rb") as f:
        magic = f.read(4)
        if magic == b"RIFF":
            _check_wav(path, f, size)
        elif magic == b"OggS":
            _check_ogg(path, f, size)
    return path


def _truncated(path: Path, problem: str) -> AudioError:
    return TruncatedAudio(
        path,
        f"is truncated: {problem}",
        "the copy, download or recording was cut short; copy or export it again",
    )


def _check_wav(path: Path, f: Any, size: int) -> None:
    """Compare the size the WAV ``data`` chunk declares with the bytes in the file."""
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[8:12] != b"WAVE":
        return  # not a RIFF/WAVE file; soundfile decides
    pos, byte_rate = 12, 0
    while True:
        f.seek(pos)
        chunk = f.read(8)
        if len(chunk) < 8:
            raise _truncated(
                path, f"the file ends after {size} bytes, before the audio ('data' chunk) starts"
            )
        cid, csize = chunk[:4], int.from_bytes(chunk[4:], "little")
        if cid == b"fmt ":
            fmt = f.read(16)
            if len(fmt) >= 12:
                byte_rate = int.from_bytes(fmt[8:12], "little")
        elif cid == b"data":
            if csize in (0, 0xFFFFFFFF):  # size unknown (written to a pipe): read to the end
                return
            held = size - (pos + 8)
            if held < csize:
                if byte_rate:
                    promised = f"{csize} bytes of audio ({csize / byte_rate:.2f} s)"
                    holds = f"{held} ({max(held, 0) / byte_rate:.2f} s)"
                else:
                    promised, holds = f"{csize} bytes of audio", str(held)
                raise _truncated(
                    path, f"its header promises {promised} but the file holds only {holds}"
                )
            return
        pos += 8 + csize + (csize & 1)


def _check_ogg(path: Path, f: Any, size: int) -> None:
    """Walk the Ogg pages: the last one must be complete and end every stream."""
    pos, open_streams = 0, set()
    while pos < size:
        f.seek(pos)
        head = f.read(27)
        if not b"OggS".startswith(head[:4]) or len(head) < 4:
            break  # trailing junk after the pages; leave it to the decoder
        if len(head) < 27:
            raise _truncated(path, f"the last Ogg page header is cut off at byte {size}")
        flags, nseg = head[5], head[26]
        serial = int.from_bytes(head[14:18], "little")
        lacing = f.read(nseg)
        end = pos + 27 + nseg + sum(lacing)
        if len(lacing) < nseg or end > size:
            raise _truncated(path, f"the last Ogg page needs {end} bytes but the file has {size}")
        if flags & 0x02:
            open_streams.add(serial)
        if flags & 0x04:
            open_streams.discard(serial)
        pos = end
    if open_streams:
        raise _truncated(path, "its Ogg stream has no end-of-stream page")


# --------------------------------------------------------------------------- decoding


def _decode(path: Path) -> tuple[np.ndarray, int, str]:
    """Samples ``(channels, n)`` float32, native rate and the decoder used."""
    import soundfile as sf

    try:
        f = sf.SoundFile(str(path))
    except Exception as exc:  # libsndfile cannot open it: ask ffmpeg
        y, native_sr, _ = _read_ffmpeg(path, sf_error=exc)
        return y, native_sr, "ffmpeg"
    with f:
        native_sr, declared, fmt, channels = f.samplerate, f.frames, f.format, f.channels
        blocks = []
        try:
            while True:
                block = f.read(_READ_BLOCK, dtype="float32", always_2d=True)
                if len(block) == 0:
                    break
                blocks.append(block)
        except Exception as exc:
            raise decoding_failed(path, exc, declared=declared, sr=native_sr) from exc
    if native_sr <= 0:
        raise AudioError(path, f"declares a sample rate of {native_sr} Hz", _REEXPORT)
    data = np.concatenate(blocks) if blocks else np.zeros((0, channels), np.float32)
    problem = shortfall(path, fmt=fmt, declared=declared, got=data.shape[0], sr=native_sr)
    if problem is not None:
        raise problem
    return np.ascontiguousarray(data.T), int(native_sr), "soundfile"


def decoding_failed(path: str | os.PathLike[str], exc: BaseException, *, declared: int, sr: int
                    ) -> AudioError:
    """The error for a file whose decoder failed part-way (``load_audio`` and ``listen``)."""
    promised = f" of the {declared / sr:.2f} s its header promises" if sr > 0 else ""
    return AudioError(
        path,
        f"is truncated or corrupt: decoding failed{promised} ({_one_line(exc)})",
        "the copy, download or recording was cut short or damaged; copy or export it again",
    )


def shortfall(path: str | os.PathLike[str], *, fmt: str, declared: int, got: int, sr: int
              ) -> AudioError | None:
    """The error for a soundfile-decoded file that gave fewer frames than its header declares
    (a truncated copy), or None. Lossless formats know their exact length; MP3 and OGG only
    estimate it (MP3 when the encoder wrote no Xing/Info header), so they get some slack."""
    slack = 0 if fmt in ("WAV", "WAVEX", "FLAC", "AIFF", "CAF", "W64", "RF64") else max(
        int(0.05 * declared), sr // 10
    )
    if sr > 0 and 0 < declared < 2**62 and got < declared - slack:
        return _truncated(
            Path(path),
            f"its header promises {declared / sr:.2f} s of audio "
            f"but only {got / sr:.2f} s could be decoded",
        )
    return None


@functools.lru_cache(maxsize=1)
def _ffmpeg_exe() -> str | None:
    """The ffmpeg binary: ``ffmpeg`` on PATH, else imageio-ffmpeg's, else None."""
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # not installed, or no binary for this platform
        return None


def _one_line(exc: BaseException | str) -> str:
    text = " ".join(str(exc).split())
    # libsndfile's MP3 reader reports unreadable data with a misleading message
    misleading = "File does not exist or is not a regular file (possibly a pipe?)."
    return text.replace(misleading, "Format not recognised.")


def _read_ffmpeg(
    path: Path, *, sf_error: BaseException | None = None, seconds: float | None = None
) -> tuple[np.ndarray, int, dict[str, Any]]:
    """Decode the first audio stream with ffmpeg to float32 WAV on a pipe.

    The WAV header gives the native rate and channel count; ffmpeg's log gives
    the declared duration, container and codec. ``seconds`` limits decoding
    (for :func:`audio_info`).
    """
    exe = _ffmpeg_exe()
    sf_said = f" (soundfile: {_one_line(sf_error)})" if sf_error is not None else ""
    if exe is None:
        raise AudioError(
            path,
            f"cannot be decoded: soundfile does not read this format{sf_said} "
            "and ffmpeg was not found",
            _INSTALL_FFMPEG,
        )
    cmd = [exe, "-hide_banner", "-nostdin", "-nostats", "-v", "info", "-i", f"file:{path}"]
    if seconds is not None:
        cmd += ["-t", str(seconds)]
    cmd += ["-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1", "-fflags", "+bitexact"]
    cmd += ["-f", "wav", "-c:a", "pcm_f32le", "-"]
    try:
        proc = subprocess.run(cmd, capture_output=True, check=False)
    except OSError as exc:
        raise AudioError(path, f"could not run ffmpeg at {exe} ({exc})", _INSTALL_FFMPEG) from exc
    log = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        if "matches no streams" in log:
            raise AudioError(path, "contains no audio stream", "check that this is the right file")
        errors = [
            line.strip()
            for line in log.splitlines()
            if line.strip() and not line.startswith(" ") and "Input #" not in line
        ]
        detail = _one_line(errors[-1]) if errors else f"exit code {proc.returncode}"
        raise AudioError(
            path,
            f"could not be decoded by ffmpeg ({detail.replace(f'file:{path}: ', '')})"
            + (f" nor by soundfile ({_one_line(sf_error)})" if sf_error is not None else ""),
            _REEXPORT,
        )
    y, native_sr = _parse_wav_pipe(path, proc.stdout)
    meta = _parse_ffmpeg_log(path, log)
    declared = meta["duration_s"]
    got = y.shape[1] / native_sr
    if seconds is None and declared is not None and got < declared - max(0.25, 0.02 * declared):
        problem = (
            f"the container promises {declared:.2f} s of audio "
            f"but only {got:.2f} s could be decoded"
        )
        raise _truncated(path, problem)
    return y, native_sr, meta


def _parse_wav_pipe(path: Path, raw: bytes) -> tuple[np.ndarray, int]:
    """Samples ``(channels, n)`` and rate from ffmpeg's float32 WAV output."""
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise AudioError(path, "ffmpeg produced no audio", _REEXPORT)
    pos, channels, rate = 12, 0, 0
    while pos + 8 <= len(raw):
        cid, csize = raw[pos : pos + 4], int.from_bytes(raw[pos + 4 : pos + 8], "little")
        if cid == b"fmt ":
            channels = int.from_bytes(raw[pos + 10 : pos + 12], "little")
            rate = int.from_bytes(raw[pos + 12 : pos + 16], "little")
        elif cid == b"data":
            body = raw[pos + 8 :]
            if channels <= 0 or rate <= 0:
                break
            n = len(body) // (4 * channels)
            y = np.frombuffer(body, dtype="<f4", count=n * channels).reshape(n, channels)
            return np.ascontiguousarray(y.T, dtype=np.float32), rate
        pos += 8 + csize + (csize & 1)
    raise AudioError(path, "ffmpeg output could not be parsed", _REEXPORT)


def _parse_ffmpeg_log(path: Path, log: str) -> dict[str, Any]:
    """Declared duration, container and codec from ffmpeg's input description."""
    duration = None
    m = re.search(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)", log)
    if m:
        h, mnt, s = m.groups()
        duration = int(h) * 3600 + int(mnt) * 60 + float(s)
    fmt = ""
    m = re.search(r"Input #0, ([^ ]+), from", log)
    if m:
        names = m.group(1).split(",")
        ext = path.suffix.lower().lstrip(".")
        fmt = ext if ext in names else names[0]
    m = re.search(r"Stream #0:\d+.*?: Audio: (\w+)", log)
    codec = m.group(1) if m else ""
    return {"duration_s": duration, "format": fmt, "codec": codec}
