"""Find and download real airlock recordings from YouTube with yt-dlp.

The catalogue ``data/youtube.csv`` lists videos of bubbling airlocks, each with the
time section worth listening to (``start_s`` to ``end_s``). :func:`download` fetches
one section as an audio file, :func:`download_catalogue` fetches them all and reports
which ones worked, and :func:`search` looks for more videos.

Downloads go through the yt-dlp Python API and need:

* **ffmpeg** to cut the time section and extract the audio: the system ``ffmpeg`` when
  it is on ``PATH``, otherwise the copy shipped by the ``imageio-ffmpeg`` package
  (see :func:`ffmpeg_location`);
* a **JavaScript runtime** for YouTube itself (yt-dlp solves YouTube's player
  challenges in JavaScript): ``deno`` from the ``deno`` PyPI package, with the solver
  scripts from ``yt-dlp-ejs`` (see :func:`js_runtime_options`).

Audio is saved as Ogg Opus (``.opus``) by default: YouTube's best audio stream is
usually Opus already, so this keeps it without another lossy step, the files are small
(about 1 MB for two minutes) and ``soundfile`` / ``librosa`` read them directly.

Nothing here touches the network or looks for programs until a function is called.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.config import REPO_ROOT, data_dir

#: Catalogue columns that must be present; ``notes`` and ``url`` are optional.
CATALOGUE_COLUMNS = ("id", "start_s", "end_s")

#: Audio formats :func:`download` can produce, with the file extension of each.
#: ``"best"`` keeps the downloaded codec without re-encoding (the extension then
#: depends on the codec: ``.opus``, ``.m4a``, ``.ogg``, ...).
AUDIO_FORMATS = {
    "opus": ".opus",
    "vorbis": ".ogg",
    "flac": ".flac",
    "wav": ".wav",
    "mp3": ".mp3",
    "m4a": ".m4a",
    "best": None,
}

OFFLINE_HINT = (
    "YouTube unreachable? Check your connection; the notebooks fall back to the synthetic data."
)

_YOUTUBE_ID = re.compile(r"^[0-9A-Za-z_-]{11}$")
_TMP_PREFIX = ".tmp-"
# what yt-dlp's FFmpegExtractAudio can leave with audio_format="best"
_AUDIO_SUFFIXES = {".opus", ".ogg", ".flac", ".wav", ".mp3", ".m4a", ".aac", ".webm", ".mka"}


class DownloadError(RuntimeError):
    """A video (or a search) could not be fetched.

    The message names the video, says why and what to try; the parts are also kept
    as attributes ``video_id``, ``reason`` and ``hint``.

    Examples
    --------
    >>> str(DownloadError("abc", "HTTP Error 404"))  # doctest: +ELLIPSIS
    'Could not download abc: HTTP Error 404. YouTube unreachable? ...'
    """

    def __init__(self, video_id: str, reason: str, hint: str = OFFLINE_HINT) -> None:
        self.video_id, self.reason, self.hint = video_id, reason, hint
        super().__init__(f"Could not download {video_id}: {reason.rstrip('.')}. {hint}")


# --------------------------------------------------------------------------- catalogue


def read_catalogue(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read and check the list of YouTube recordings.

    Parameters
    ----------
    path
        CSV file with columns ``id, start_s, end_s`` and optionally ``notes`` and
        ``url``. Defaults to ``data/youtube.csv`` in the repository.

        ``id`` is normally an 11-character YouTube id; it may also be a full URL, or
        an optional ``url`` column gives where to download from, ``id`` then being
        only the file name (this is how the tests point rows at a local server).
        ``start_s`` / ``end_s`` give the section to download, in seconds.

    Returns
    -------
    pandas.DataFrame
        One row per recording, ``start_s`` and ``end_s`` as floats.

    Raises
    ------
    ValueError
        When a column is missing, an id is empty or repeated, or a section is not
        ``0 <= start_s < end_s``; the message names the CSV line.

    Examples
    --------
    >>> cat = read_catalogue()
    >>> list(cat.columns[:3])
    ['id', 'start_s', 'end_s']
    """
    path = Path(path) if path is not None else REPO_ROOT / "data" / "youtube.csv"
    if not path.is_file():
        raise FileNotFoundError(f"No catalogue at {path}; pass the path of a CSV with columns id,start_s,end_s")
    table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    return _check_catalogue(table, source=str(path))


def _check_catalogue(table: pd.DataFrame, *, source: str) -> pd.DataFrame:
    missing = [c for c in CATALOGUE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(
            f"{source}: missing column(s) {missing}; a catalogue needs columns "
            f"{', '.join(CATALOGUE_COLUMNS)} (and optionally notes, url)"
        )
    table = table.reset_index(drop=True).copy()
    table["id"] = table["id"].fillna("").astype(str).str.strip()
    for col in ("notes", "url"):
        if col in table.columns:
            table[col] = table[col].fillna("").astype(str).str.strip()
    seen: set[str] = set()
    starts, ends = [], []
    for i, row in table.iterrows():
        where = f"{source}, line {i + 2}"  # +1 header, +1 one-based
        vid = row["id"]
        if not vid:
            raise ValueError(f"{where}: empty id; give a YouTube id (or a URL) in the id column")
        if vid in seen:
            raise ValueError(f"{where}: id {vid!r} appears twice; each recording needs its own id")
        seen.add(vid)
        try:
            start, end = float(row["start_s"]), float(row["end_s"])
        except (TypeError, ValueError):
            raise ValueError(
                f"{where} (id {vid!r}): start_s={row['start_s']!r}, end_s={row['end_s']!r} "
                "are not numbers; give the section in seconds"
            ) from None
        if not (0 <= start < end) or end == float("inf"):
            raise ValueError(
                f"{where} (id {vid!r}): section {start:g}-{end:g} s is invalid; "
                "need 0 <= start_s < end_s (finite)"
            )
        starts.append(start)
        ends.append(end)
    table["start_s"] = pd.Series(starts, dtype=float)
    table["end_s"] = pd.Series(ends, dtype=float)
    return table


# --------------------------------------------------------------------------- tools


def ffmpeg_location() -> str | None:
    """Path of the ffmpeg executable yt-dlp should use, or ``None`` if there is none.

    The system ``ffmpeg`` on ``PATH`` first (it comes with ``ffprobe``), otherwise the
    static build shipped by the ``imageio-ffmpeg`` package.

    Examples
    --------
    >>> ffmpeg_location()  # doctest: +SKIP
    '/usr/bin/ffmpeg'
    """
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None


def js_runtime_options() -> dict[str, Any]:
    """yt-dlp options that enable the ``deno`` JavaScript runtime, or ``{}``.

    YouTube only hands out working audio URLs after a JavaScript challenge, which
    yt-dlp solves by running the solver scripts of ``yt-dlp-ejs`` in an external
    runtime. ``deno`` is yt-dlp's default runtime, but it is looked up by name (on
    ``PATH``), which fails e.g. in a Jupyter kernel started without the virtual
    environment's ``bin`` on ``PATH``; this gives yt-dlp the exact path of the binary
    shipped by the ``deno`` PyPI package (``deno.find_deno_bin()``), falling back to a
    ``deno`` on ``PATH``. The solver scripts are picked up automatically when
    ``yt-dlp-ejs`` is installed (yt-dlp also carries a copy of them).

    Returns
    -------
    dict
        ``{"js_runtimes": {"deno": {"path": ...}}}``, or ``{}`` when no deno is found
        (the download is still attempted, but YouTube may then refuse it: install
        deno with ``pip install deno``).

    Examples
    --------
    >>> js_runtime_options()  # doctest: +SKIP
    {'js_runtimes': {'deno': {'path': '/.../bin/deno'}}}
    """
    path: str | None
    try:
        from deno import find_deno_bin

        path = os.fsdecode(find_deno_bin())
    except (ImportError, FileNotFoundError):
        path = shutil.which("deno")
    if not path or not os.path.isfile(path):
        return {}
    return {"js_runtimes": {"deno": {"path": path}}}


class _YtdlpLogger:
    """Keeps yt-dlp quiet: its messages go to :mod:`logging` at DEBUG level.

    Errors are not lost: they reach the caller as :class:`DownloadError`.
    """

    def __init__(self) -> None:
        import logging

        self._log = logging.getLogger(__name__)

    def debug(self, msg: str) -> None:
        self._log.debug(msg)

    info = warning = error = debug


def _base_options(*, quiet: bool) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "noplaylist": True,  # a watch URL with &list=... means this one video
        "socket_timeout": 30,
        **js_runtime_options(),
    }
    if quiet:
        opts.update(quiet=True, no_warnings=True, noprogress=True, logger=_YtdlpLogger())
    return opts


def _short_error(exc: BaseException) -> str:
    """First line of an error, without yt-dlp's ``ERROR:`` prefix and colours."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    text = re.sub(r"^(ERROR|WARNING):\s*", "", text)
    text = re.sub(r"\s*\(caused by .*$", "", text)  # the same error again, as a repr
    return text if len(text) <= 200 else text[:199] + "\u2026"


# --------------------------------------------------------------------------- search


def search(
    query: str = "airlock bubbling fermentation",
    *,
    n: int = 20,
    min_duration_s: float | None = 30,
    max_duration_s: float | None = None,
) -> pd.DataFrame:
    """Search YouTube for videos, without downloading anything.

    Uses yt-dlp's ``ytsearch{n}:`` with flat extraction (``extract_flat``): one
    request for the result list, no visit to each video page.

    Parameters
    ----------
    query
        Search words.
    n
        How many results to ask for (before the duration filter).
    min_duration_s, max_duration_s
        Keep videos at least / at most this long; ``None`` for no bound. Results
        without a known duration (live streams) are dropped when a bound is set.

    Returns
    -------
    pandas.DataFrame
        Columns ``id, title, duration_s, url, channel``.

    Raises
    ------
    DownloadError
        When the search fails (e.g. no connection).

    Examples
    --------
    >>> hits = search("airlock bubbling", n=5)  # doctest: +SKIP
    >>> list(hits.columns)  # doctest: +SKIP
    ['id', 'title', 'duration_s', 'url', 'channel']
    """
    if n < 1:
        raise ValueError(f"n={n}: ask for at least one search result")
    import yt_dlp

    opts = {**_base_options(quiet=True), "extract_flat": True, "skip_download": True}
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            result = ydl.extract_info(f"ytsearch{int(n)}:{query}", download=False)
    except yt_dlp.utils.YoutubeDLError as exc:
        raise DownloadError(f"search results for {query!r}", _short_error(exc)) from exc
    return _search_table((result or {}).get("entries") or [],
                         min_duration_s=min_duration_s, max_duration_s=max_duration_s)


def _search_table(entries, *, min_duration_s: float | None, max_duration_s: float | None) -> pd.DataFrame:
    rows = []
    for e in entries:
        if not e or not e.get("id"):
            continue
        duration = e.get("duration")
        if duration is None and (min_duration_s is not None or max_duration_s is not None):
            continue
        if min_duration_s is not None and duration < min_duration_s:
            continue
        if max_duration_s is not None and duration > max_duration_s:
            continue
        url = e.get("url") or ""
        if not url.startswith("http"):
            url = f"https://www.youtube.com/watch?v={e['id']}"
        rows.append({
            "id": e["id"],
            "title": e.get("title") or "",
            "duration_s": float(duration) if duration is not None else float("nan"),
            "url": url,
            "channel": e.get("channel") or e.get("uploader") or "",
        })
    return pd.DataFrame(rows, columns=["id", "title", "duration_s", "url", "channel"])


# --------------------------------------------------------------------------- download


def _to_url(url_or_id: str) -> str:
    url_or_id = url_or_id.strip()
    if _YOUTUBE_ID.match(url_or_id):
        return f"https://www.youtube.com/watch?v={url_or_id}"
    return url_or_id


def _guess_id(url: str) -> str:
    """The id yt-dlp will most likely report for ``url``, found without the network."""
    from yt_dlp.extractor.youtube import YoutubeIE

    if YoutubeIE.suitable(url):
        try:
            return YoutubeIE.extract_id(url)
        except Exception:  # noqa: BLE001 - fall through to the generic rule
            pass
    # the generic extractor's rule: the URL's last path part without its extension
    path = urllib.parse.urlparse(url).path
    return urllib.parse.unquote(os.path.splitext(path.rstrip("/").split("/")[-1])[0]) or "audio"


def _safe_name(name: str) -> str:
    from yt_dlp.utils import sanitize_filename

    return sanitize_filename(name, restricted=True) or "audio"


def _existing(out_dir: Path, name: str, audio_format: str) -> Path | None:
    ext = AUDIO_FORMATS[audio_format]
    if ext is not None:
        path = out_dir / f"{name}{ext}"
        return path if path.is_file() else None
    for path in sorted(out_dir.glob(f"{glob.escape(name)}.*")):
        if path.is_file() and path.suffix.lower() in _AUDIO_SUFFIXES:
            return path
    return None


def download(
    url_or_id: str,
    *,
    out_dir: str | os.PathLike | None = None,
    start_s: float = 0.0,
    end_s: float | None = 120.0,
    audio_format: str = "opus",
    name: str | None = None,
    overwrite: bool = False,
    quiet: bool = True,
) -> Path:
    """Download one time section of a video as an audio file.

    Parameters
    ----------
    url_or_id
        An 11-character YouTube id (becomes ``https://www.youtube.com/watch?v=<id>``)
        or any URL yt-dlp understands, including a direct link to a media file.
    out_dir
        Destination folder, created if needed; defaults to ``data_dir()/"youtube"``.
    start_s, end_s
        The section to keep, in seconds. ``end_s`` past the end of the video means "to
        the end"; ``start_s=0, end_s=None`` downloads the whole video.
    audio_format
        One of :data:`AUDIO_FORMATS`. ``"opus"`` (default) gives small Ogg Opus files
        that ``soundfile`` reads; ``"flac"`` or ``"wav"`` give lossless files;
        ``"best"`` keeps the downloaded codec without re-encoding.
    name
        File name (without extension); defaults to the id yt-dlp reports (for a direct
        link that is the file name in the URL, without extension).
    overwrite
        Download again even if the file exists.
    quiet
        Hide yt-dlp's messages and progress bar.

    Returns
    -------
    pathlib.Path
        ``out_dir/<name>.<ext>``. The file appears only once it is complete: yt-dlp
        works in a temporary folder inside ``out_dir`` that is removed afterwards,
        whatever happens.

    Raises
    ------
    DownloadError
        When the video is unavailable, the network is down or ffmpeg is missing.

    Examples
    --------
    >>> path = download("ZPmEByu-4xQ", end_s=60)  # doctest: +SKIP
    >>> path.name  # doctest: +SKIP
    'ZPmEByu-4xQ.opus'
    """
    path, _ = _download(url_or_id, out_dir=out_dir, start_s=start_s, end_s=end_s,
                        audio_format=audio_format, name=name, overwrite=overwrite, quiet=quiet)
    return path


def _download(
    url_or_id: str,
    *,
    out_dir: str | os.PathLike | None,
    start_s: float,
    end_s: float | None,
    audio_format: str,
    name: str | None,
    overwrite: bool,
    quiet: bool,
) -> tuple[Path, bool]:
    """:func:`download`, also telling whether the file was already there (cached)."""
    if audio_format not in AUDIO_FORMATS:
        raise ValueError(f"audio_format={audio_format!r}; choose one of {sorted(AUDIO_FORMATS)}")
    if not start_s >= 0 or (end_s is not None and not end_s > start_s):
        raise ValueError(f"Section {start_s}-{end_s} s is invalid; need 0 <= start_s < end_s (or end_s=None)")
    url = _to_url(str(url_or_id))
    out_dir = Path(out_dir) if out_dir is not None else data_dir() / "youtube"

    file_name = _safe_name(name or _guess_id(url))
    if not overwrite and (found := _existing(out_dir, file_name, audio_format)):
        return found, True

    ffmpeg = ffmpeg_location()
    if ffmpeg is None:
        raise DownloadError(
            str(url_or_id), "ffmpeg not found (needed to cut the section and extract the audio)",
            hint="Install ffmpeg (e.g. `apt install ffmpeg`) or `pip install imageio-ffmpeg`.",
        )

    import yt_dlp
    from yt_dlp.utils import download_range_func

    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{file_name}-", dir=out_dir)).resolve()
    opts: dict[str, Any] = {
        **_base_options(quiet=quiet),
        "format": "bestaudio/best",
        # everything (fragments, .part files, intermediate formats) stays in tmp
        "paths": {"home": str(tmp), "temp": str(tmp)},
        "outtmpl": {"default": "audio.%(ext)s"},
        "ffmpeg_location": ffmpeg,
        "postprocessors": [{"key": "FFmpegExtractAudio", "preferredcodec": audio_format}],
        "overwrites": True,
    }
    if start_s > 0 or end_s is not None:
        opts["download_ranges"] = download_range_func(
            None, [(float(start_s), float("inf") if end_s is None else float(end_s))])
        # re-encode at the cut: exact section boundaries and clean timestamps
        opts["force_keyframes_at_cuts"] = True
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            info = ydl.extract_info(url, download=False, process=False)
            if name is None and info and info.get("id"):
                real_name = _safe_name(str(info["id"]))
                if real_name != file_name:
                    file_name = real_name
                    if not overwrite and (found := _existing(out_dir, file_name, audio_format)):
                        return found, True
            info = ydl.process_ie_result(info, download=True)
        produced = [Path(d["filepath"]) for d in (info or {}).get("requested_downloads") or []
                    if d.get("filepath")]
        produced = [p for p in produced if p.is_file()] or [
            p for p in tmp.iterdir() if p.is_file() and p.suffix not in (".part", ".ytdl")]
        if not produced:
            raise DownloadError(str(url_or_id), "yt-dlp finished but wrote no audio file")
        try:
            from helpers.audio import AudioError, audio_info

            seconds = audio_info(produced[0]).get("duration_s")
        except (AudioError, OSError) as exc:
            raise DownloadError(str(url_or_id), f"the downloaded audio is unreadable ({exc})") from exc
        if seconds is not None and seconds < 0.1:
            raise DownloadError(str(url_or_id), f"the downloaded section holds {seconds:.2f} s of "
                                "audio (does the server support HTTP range requests?)")
        target = out_dir / f"{file_name}{produced[0].suffix}"
        os.replace(produced[0], target)
        return target, False
    except yt_dlp.utils.YoutubeDLError as exc:
        raise DownloadError(str(url_or_id), _short_error(exc)) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _audio_duration(path: Path) -> float:
    try:
        import soundfile

        return float(soundfile.info(str(path)).duration)
    except Exception:  # noqa: BLE001 - a format soundfile cannot read
        return float("nan")


def download_catalogue(
    catalogue: pd.DataFrame | str | os.PathLike | None = None,
    *,
    out_dir: str | os.PathLike | None = None,
    audio_format: str = "opus",
    overwrite: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Download the section of every catalogue row, skipping the ones that fail.

    Parameters
    ----------
    catalogue
        A table as returned by :func:`read_catalogue`, or the path of a catalogue
        CSV; defaults to ``data/youtube.csv``. Rows download from their ``url``
        column when present and non-empty, otherwise from ``id`` (a YouTube id or a
        URL); the file is named after ``id`` unless ``id`` is itself a URL.
    out_dir
        Destination folder; defaults to ``data_dir()/"youtube"``.
    audio_format, overwrite
        As in :func:`download`.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per recording: ``id``, ``status`` (``"downloaded"``, ``"cached"`` or
        ``"failed"``), ``path`` (``None`` when failed), ``error`` (short reason, empty
        unless failed) and ``duration_s`` of the file (NaN when unknown). A failing
        video never stops the others.

    Examples
    --------
    >>> report = download_catalogue()  # doctest: +SKIP
    >>> report.status.value_counts()  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    if catalogue is None or isinstance(catalogue, (str, os.PathLike)):
        catalogue = read_catalogue(catalogue)
    else:
        catalogue = _check_catalogue(catalogue, source="catalogue table")

    rows = []
    for _, row in tqdm(catalogue.iterrows(), total=len(catalogue), desc="YouTube", unit="video",
                       disable=not progress):
        vid = row["id"]
        url = (row["url"] or "") if "url" in catalogue.columns else ""
        source = url or vid
        name = vid if (url or _YOUTUBE_ID.match(vid)) else None
        try:
            path, cached = _download(source, out_dir=out_dir, start_s=row["start_s"], end_s=row["end_s"],
                                     audio_format=audio_format, name=name, overwrite=overwrite, quiet=True)
        except Exception as exc:  # noqa: BLE001 - one bad video must not stop the rest
            reason = exc.reason if isinstance(exc, DownloadError) else _short_error(exc)
            rows.append({"id": vid, "status": "failed", "path": None, "error": reason,
                         "duration_s": float("nan")})
            continue
        rows.append({"id": vid, "status": "cached" if cached else "downloaded", "path": path,
                     "error": "", "duration_s": _audio_duration(path)})
    return pd.DataFrame(rows, columns=["id", "status", "path", "error", "duration_s"])
