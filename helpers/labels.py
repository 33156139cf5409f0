r"""Read and write Audacity label files.

An Audacity label file is plain UTF-8 text with one label per line::

    12.345678<TAB>12.401000<TAB>p

The numbers are the start and the end of the label in seconds from the start of the
recording (equal for a point label) and the rest of the line is the label text. A
label made with a spectral selection is followed by a line that starts with a
backslash and holds the lowest and the highest frequency in Hz::

    \<TAB>300.000000<TAB>4200.000000

In this project the events of one recording are a :class:`pandas.DataFrame` with the
columns ``start``, ``end`` (float seconds) and ``label`` (str), one row per event,
sorted by ``start``, index ``0..n-1``. Extra columns (``probability``, ``low_hz``,
``high_hz`` ...) are allowed. The labels of ``recording.wav`` sit beside it in
``recording.txt`` (see :func:`labels_path_for`).

Spectral columns: :func:`parse_labels` and :func:`read_labels` add ``low_hz`` and
``high_hz`` only when the file has at least one spectral line (NaN for the labels
without one), so the frames of ordinary files have just the three core columns.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import re
import secrets
from pathlib import Path
from typing import IO, Union

import numpy as np
import pandas as pd

from helpers.config import PLOP_LABEL

__all__ = [
    "LabelError",
    "empty_events",
    "labels_path_for",
    "parse_labels",
    "read_labels",
    "write_labels",
]

PathLike = Union[str, "os.PathLike[str]"]

#: The columns every events frame has, in this order.
EVENT_COLUMNS = ("start", "end", "label")
#: The optional columns filled from Audacity's spectral-selection lines.
SPECTRAL_COLUMNS = ("low_hz", "high_hz")
#: DCASE column names and the names used here.
DCASE_COLUMNS = {"onset": "start", "offset": "end", "event_label": "label"}

# A decimal number as Audacity writes it, with a dot or (older versions, some
# locales) a comma. Deliberately stricter than float(): no "1_000", no "nan",
# no non-ASCII digits.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SPACES = re.compile(r" +")
_BOM = "\ufeff"
# Audacity writes -1 for the undefined edge of a one-sided spectral selection.
_UNDEFINED_FREQUENCY = -1.0

_TIME_HINT = (
    "Times are seconds from the start of the recording, like 12.345678; "
    "fix the line in a text editor or export the labels again from Audacity "
    "(File > Export > Export Labels)"
)
_LINE_HINT = (
    "Each label line is 'start<TAB>end<TAB>label' (times in seconds); "
    "fix the line in a text editor or export the labels again from Audacity"
)
_SPECTRAL_HINT = (
    "A spectral-selection line is '\\<TAB>low_hz<TAB>high_hz' and follows the "
    "label line it belongs to; fix or delete the line"
)


class LabelError(ValueError):
    r"""A label file (or label text) that cannot be understood.

    The message names the file (when known) and the 1-based line, says what is
    wrong and what to do. The same facts are in the attributes ``source`` and
    ``line`` (``None`` when unknown).

    Examples
    --------
    >>> try:
    ...     parse_labels("2.5\t1.0\tp\n", source="labels.txt")
    ... except LabelError as error:
    ...     print(error.line, str(error).split(":")[0])
    1 labels.txt, line 1
    """

    def __init__(
        self, message: str, *, source: str | None = None, line: int | None = None
    ) -> None:
        super().__init__(message)
        self.source = source
        self.line = line


def _error(source: str, line: int | None, problem: str, hint: str) -> LabelError:
    where = source if line is None else f"{source}, line {line}"
    return LabelError(f"{where}: {problem}. {hint}.", source=source, line=line)


def _show(line: str) -> str:
    """A line as it could be typed: tabs shown as ``<TAB>``."""
    return line.replace("\t", "<TAB>")


def empty_events() -> pd.DataFrame:
    """An events frame with no rows and the right columns and dtypes.

    Returns
    -------
    pandas.DataFrame
        Columns ``start``, ``end`` (float64) and ``label`` (str).

    Examples
    --------
    >>> events = empty_events()
    >>> list(events.columns), len(events), str(events["start"].dtype)
    (['start', 'end', 'label'], 0, 'float64')
    """
    return _frame([], [], [])


def _frame(starts: list[float], ends: list[float], labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "start": np.asarray(starts, dtype=float),
            "end": np.asarray(ends, dtype=float),
            "label": pd.Series(labels, dtype=str),
        }
    )


def labels_path_for(audio_path: PathLike) -> Path:
    """The label file that belongs to an audio file: same folder, same stem, ``.txt``.

    Parameters
    ----------
    audio_path
        Path of the recording, e.g. ``data/recordings/brew1.wav``.

    Returns
    -------
    pathlib.Path
        e.g. ``data/recordings/brew1.txt``.

    Raises
    ------
    ValueError
        If ``audio_path`` already ends in ``.txt``.

    Examples
    --------
    >>> labels_path_for("data/recordings/brew1.wav").as_posix()
    'data/recordings/brew1.txt'
    """
    audio_path = Path(audio_path)
    if audio_path.suffix.lower() == ".txt":
        raise ValueError(
            f"{audio_path} already ends in .txt, so it looks like a label file, not audio; "
            "pass the path of the recording (e.g. brew1.wav) to labels_path_for"
        )
    return audio_path.with_suffix(".txt")


# ----------------------------------------------------------------------------- reading


def _number(field: str, what: str, source: str, line: int, hint: str) -> tuple[float, str]:
    """Parse one numeric field; return the value and the field as written."""
    token = field.strip()
    if _NUMBER.fullmatch(token):
        value = float(token.replace(",", "."))
        if math.isfinite(value):
            return value + 0.0, token  # + 0.0 turns -0.0 into 0.0
        raise _error(source, line, f"{what} {token!r} is too large to be a number", hint)
    if not token:
        raise _error(source, line, f"the {what} is missing", hint)
    if _NON_FINITE.fullmatch(token):
        raise _error(source, line, f"{what} {token!r} is not a finite number", hint)
    raise _error(source, line, f"{what} {token!r} is not a number", hint)


def _fields(stripped: str, maxsplit: int) -> list[str]:
    """Split on tabs; on runs of spaces only when the line has no tab."""
    if "\t" in stripped:
        return stripped.split("\t", maxsplit) if maxsplit >= 0 else stripped.split("\t")
    return _SPACES.split(stripped, maxsplit=max(maxsplit, 0))


def parse_labels(
    text: str, *, source: str = "<text>", default_label: str = PLOP_LABEL
) -> pd.DataFrame:
    r"""Parse the text of an Audacity label file into an events frame.

    Accepted: tab-separated ``start<TAB>end<TAB>label`` lines; point labels
    (start == end); a missing or empty label text (``default_label`` is used);
    label text with spaces or tabs (the label is everything after the second tab,
    surrounding whitespace removed); decimal commas (``1,25``); spectral-selection
    lines ``\<TAB>low_hz<TAB>high_hz`` after a label line (``-1``, Audacity's
    "undefined", becomes NaN); CRLF or CR line ends; a byte-order mark; blank
    lines; trailing whitespace; and, on lines without any tab, fields separated
    by runs of spaces.

    Parameters
    ----------
    text
        The whole content of a label file.
    source
        Name used in error messages, normally the file name.
    default_label
        Label for lines that have no label text.

    Returns
    -------
    pandas.DataFrame
        ``start``, ``end`` (float seconds), ``label`` (str), sorted by start (ties
        keep the file order), index ``0..n-1``. ``low_hz`` and ``high_hz`` (float Hz,
        NaN where a label has no spectral line) are added only if the text has at
        least one spectral line.

    Raises
    ------
    LabelError
        With the line number, for: a start after its end, negative times,
        fields that are not numbers (or NaN / infinite), a spectral line with no
        label before it, a second spectral line for one label, and a spectral line
        with missing, non-numeric or negative frequencies or low above high.

    Examples
    --------
    >>> events = parse_labels("1,5\t2,0\tp\n3.25\t3.25\n")
    >>> events[["start", "end"]].to_numpy().tolist()
    [[1.5, 2.0], [3.25, 3.25]]
    >>> events["label"].tolist()
    ['p', 'p']
    >>> parse_labels("1\t2\tp\n\\\t100\t3000\n")[["low_hz", "high_hz"]].to_numpy().tolist()
    [[100.0, 3000.0]]
    """
    if not isinstance(text, str):
        raise TypeError(
            f"parse_labels expects the text of a label file (str), got {type(text).__name__}; "
            "to read a file use read_labels(path)"
        )
    if not isinstance(default_label, str):
        raise TypeError(f"default_label must be a str, got {type(default_label).__name__}")
    if text.startswith(_BOM):
        text = text[len(_BOM) :]

    starts: list[float] = []
    ends: list[float] = []
    labels: list[str] = []
    lows: list[float] = []
    highs: list[float] = []
    label_line_of: list[int] = []  # line number of each label
    spectral_line_of: list[int | None] = []  # line number of its spectral line, if any

    for number, raw in enumerate(_LINE_BREAK.split(text), start=1):
        stripped = raw.strip()
        if not stripped:
            continue

        if stripped.startswith("\\"):
            fields = [field.strip() for field in _fields(stripped, -1)]
            if fields[0] != "\\" or len(fields) != 3:
                raise _error(
                    source,
                    number,
                    f"a line that starts with a backslash must be a spectral selection "
                    f"with exactly two frequencies, found '{_show(stripped)}'",
                    _SPECTRAL_HINT,
                )
            if not starts:
                raise _error(
                    source, number, "spectral-selection line with no label line before it",
                    _SPECTRAL_HINT,
                )
            if spectral_line_of[-1] is not None:
                raise _error(
                    source,
                    number,
                    f"second spectral-selection line for the label on line "
                    f"{label_line_of[-1]} (the first is on line {spectral_line_of[-1]})",
                    _SPECTRAL_HINT,
                )
            low, low_text = _number(fields[1], "low frequency", source, number, _SPECTRAL_HINT)
            high, high_text = _number(fields[2], "high frequency", source, number, _SPECTRAL_HINT)
            for value, value_text, what in ((low, low_text, "low"), (high, high_text, "high")):
                if value < 0 and value != _UNDEFINED_FREQUENCY:
                    raise _error(
                        source, number, f"{what} frequency {value_text} is negative",
                        _SPECTRAL_HINT,
                    )
            low = math.nan if low == _UNDEFINED_FREQUENCY else low
            high = math.nan if high == _UNDEFINED_FREQUENCY else high
            if low > high:
                raise _error(
                    source, number,
                    f"low frequency {low_text} is above high frequency {high_text}",
                    _SPECTRAL_HINT,
                )
            lows[-1], highs[-1] = low, high
            spectral_line_of[-1] = number
            continue

        fields = _fields(stripped, 2)
        start, start_text = _number(fields[0], "start", source, number, _TIME_HINT)
        if len(fields) < 2:
            raise _error(
                source, number, f"found only a start time ({start_text}) and no end time",
                _LINE_HINT,
            )
        end, end_text = _number(fields[1], "end", source, number, _TIME_HINT)
        if start < 0:
            raise _error(source, number, f"start {start_text} is negative", _TIME_HINT)
        if end < 0:
            raise _error(source, number, f"end {end_text} is negative", _TIME_HINT)
        if start > end:
            raise _error(
                source,
                number,
                f"start {start_text} is after end {end_text}",
                "Swap the two numbers or fix the typo; a point label has start equal to end",
            )
        label = fields[2].strip() if len(fields) == 3 else ""
        starts.append(start)
        ends.append(end)
        labels.append(label or default_label)
        lows.append(math.nan)
        highs.append(math.nan)
        label_line_of.append(number)
        spectral_line_of.append(None)

    events = _frame(starts, ends, labels)
    if any(line is not None for line in spectral_line_of):
        events["low_hz"] = np.asarray(lows, dtype=float)
        events["high_hz"] = np.asarray(highs, dtype=float)
    return events.sort_values("start", kind="stable", ignore_index=True)


def _missing_file_message(path: Path) -> str:
    message = f"Label file {path} does not exist. "
    if path.parent.is_dir():
        siblings = sorted(p.name for p in path.parent.glob(f"{glob.escape(path.stem)}.*"))
        if siblings:
            message += f"Found {', '.join(siblings[:3])} beside it. "
    else:
        message += f"Its folder {path.parent} does not exist either. "
    return message + (
        "Labels must sit beside the audio with the same stem and the extension .txt "
        "(brew1.wav -> brew1.txt, see labels_path_for); export them from Audacity "
        "with File > Export > Export Labels."
    )


def read_labels(
    path: PathLike | IO[str] | IO[bytes], *, default_label: str = PLOP_LABEL
) -> pd.DataFrame:
    r"""Read an Audacity label file into an events frame.

    See :func:`parse_labels` for what is accepted and what the frame looks like.

    Parameters
    ----------
    path
        Path of the ``.txt`` label file (str or Path), or an open file.
    default_label
        Label for lines that have no label text.

    Returns
    -------
    pandas.DataFrame
        ``start``, ``end``, ``label`` (and ``low_hz``, ``high_hz`` when the file
        has spectral lines), sorted by start, index ``0..n-1``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    LabelError
        If the file is not UTF-8 text or a line cannot be understood; the message
        names the file and the line.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "brew1.txt"
    >>> _ = path.write_text("0.5\t0.6\tp\n2\t2\n", encoding="utf-8")
    >>> read_labels(path)["start"].tolist()
    [0.5, 2.0]
    """
    if hasattr(path, "read"):
        source = str(getattr(path, "name", "<stream>"))
        content = path.read()  # type: ignore[union-attr]
    else:
        path = Path(path)  # type: ignore[arg-type]
        source = str(path)
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(_missing_file_message(path)) from None
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError as error:
            line = content.count(b"\n", 0, error.start) + 1
            raise _error(
                source,
                line,
                f"byte 0x{content[error.start]:02x} is not UTF-8 text",
                "Save the file as UTF-8 (Audacity always does; in a text editor choose "
                "'Save with encoding: UTF-8')",
            ) from None
    return parse_labels(content, source=source, default_label=default_label)


# ----------------------------------------------------------------------------- writing


def _first_bad(mask: np.ndarray, index: pd.Index) -> str:
    rows = np.flatnonzero(mask)
    first = index[rows[0]]
    more = f" (and {len(rows) - 1} more)" if len(rows) > 1 else ""
    return f"row {first!r}{more}"


def _numeric(column: pd.Series, name: str, fail) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce")
    not_numbers = (values.isna() & column.notna()).to_numpy()
    if not_numbers.any():
        value = column.iloc[np.flatnonzero(not_numbers)[0]]
        fail(f"{name} {value!r} in {_first_bad(not_numbers, column.index)} is not a number")
    return values.to_numpy(dtype=float, na_value=np.nan) + 0.0  # + 0.0: no -0.0


def _prepare_events(events: pd.DataFrame, *, destination: str, default_label: str) -> pd.DataFrame:
    """Check ``events`` for writing; return start/end/label(/low_hz/high_hz), sorted."""

    def fail(problem: str) -> None:
        raise ValueError(
            f"Cannot write labels to {destination}: {problem}. Every event needs a finite "
            "start and end in seconds with 0 <= start <= end; fix or drop the bad rows first."
        )

    if not isinstance(events, pd.DataFrame):
        raise TypeError(
            f"write_labels expects a pandas DataFrame with columns start, end (and label), "
            f"got {type(events).__name__}"
        )
    renames = {
        old: new for old, new in DCASE_COLUMNS.items() if old in events and new not in events
    }
    events = events.rename(columns=renames)
    missing = [name for name in ("start", "end") if name not in events]
    if missing:
        fail(
            f"missing column(s) {missing}; the frame has {list(map(str, events.columns))} "
            "(use start/end/label, or DCASE onset/offset/event_label)"
        )

    starts = _numeric(events["start"], "start", fail)
    ends = _numeric(events["end"], "end", fail)
    for name, values in (("start", starts), ("end", ends)):
        bad = ~np.isfinite(values)
        if bad.any():
            fail(f"{name} in {_first_bad(bad, events.index)} is missing or not finite")
        bad = values < 0
        if bad.any():
            fail(f"{name} in {_first_bad(bad, events.index)} is negative")
    bad = starts > ends
    if bad.any():
        row = np.flatnonzero(bad)[0]
        fail(f"start {starts[row]} is after end {ends[row]} in {_first_bad(bad, events.index)}")

    labels: list[str] = []
    raw_labels = events["label"] if "label" in events else [None] * len(events)
    for row, value in zip(events.index, raw_labels):
        text = "" if value is None or (np.ndim(value) == 0 and pd.isna(value)) else str(value)
        text = text.strip()
        if any(char in text for char in "\t\r\n"):
            fail(
                f"label {text!r} in row {row!r} contains a tab or a line break, which would "
                "break the file; replace them with spaces"
            )
        labels.append(text or default_label)

    prepared = _frame(starts.tolist(), ends.tolist(), labels)
    if any(name in events for name in SPECTRAL_COLUMNS):
        nan = np.full(len(events), np.nan)
        lows = _numeric(events["low_hz"], "low_hz", fail) if "low_hz" in events else nan
        highs = _numeric(events["high_hz"], "high_hz", fail) if "high_hz" in events else nan
        for name, values in (("low_hz", lows), ("high_hz", highs)):
            bad = np.isinf(values)
            if bad.any():
                fail(f"{name} in {_first_bad(bad, events.index)} is infinite (use NaN for none)")
            bad = values < 0
            if bad.any():
                fail(f"{name} in {_first_bad(bad, events.index)} is negative")
        bad = lows > highs
        if bad.any():
            fail(f"low_hz is above high_hz in {_first_bad(bad, events.index)}")
        prepared["low_hz"] = lows
        prepared["high_hz"] = highs
    return prepared.sort_values("start", kind="stable", ignore_index=True)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(temporary, flags, 0o666)  # 0o666 so the umask applies as usual
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_labels(
    events: pd.DataFrame,
    path: PathLike,
    *,
    precision: int = 6,
    default_label: str = PLOP_LABEL,
) -> Path:
    r"""Write events as an Audacity label file.

    Lines are ``start<TAB>end<TAB>label`` with ``precision`` decimals, sorted by
    start, ``\n`` line ends, UTF-8 without byte-order mark. Rows with a ``low_hz``
    or ``high_hz`` value get a spectral-selection line ``\<TAB>low<TAB>high``
    (a missing edge is written as ``-1``, as Audacity does). Other columns are not
    written. Parent folders are created and the file is replaced atomically
    (a temporary file in the same folder, then :func:`os.replace`), so a crash
    never leaves half a label file.

    Parameters
    ----------
    events
        Frame with ``start`` and ``end`` in seconds and optionally ``label``
        (missing or empty labels become ``default_label``), ``low_hz``, ``high_hz``.
        DCASE names ``onset``, ``offset``, ``event_label`` are accepted too.
    path
        Where to write, normally ``labels_path_for(audio_path)``.
    precision
        Number of decimals of times and frequencies.
    default_label
        Label written for rows without label text.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        If a column is missing or a value is not a number, not finite, negative,
        a start is after its end, or a label contains a tab or line break.

    Examples
    --------
    >>> import tempfile
    >>> events = pd.DataFrame({"start": [1.0, 0.25], "end": [1.5, 0.25]})
    >>> path = write_labels(events, Path(tempfile.mkdtemp()) / "brew1.txt", precision=2)
    >>> path.read_text(encoding="utf-8")
    '0.25\t0.25\tp\n1.00\t1.50\tp\n'
    """
    whole = isinstance(precision, (int, np.integer)) and not isinstance(precision, bool)
    if not whole or precision < 0:
        raise ValueError(f"precision must be a whole number of decimals >= 0, got {precision!r}")
    path = Path(path)
    prepared = _prepare_events(events, destination=str(path), default_label=default_label)

    def fmt(value: float) -> str:
        return f"{value:.{precision}f}"

    lines: list[str] = []
    spectral = "low_hz" in prepared
    for row in prepared.itertuples(index=False):
        lines.append(f"{fmt(row.start)}\t{fmt(row.end)}\t{row.label}")
        if spectral and not (math.isnan(row.low_hz) and math.isnan(row.high_hz)):
            low, high = (
                _UNDEFINED_FREQUENCY if math.isnan(value) else value
                for value in (row.low_hz, row.high_hz)
            )
            lines.append(f"\\\t{fmt(low)}\t{fmt(high)}")
    text = "".join(line + "\n" for line in lines)
    _write_atomically(path, text.encode("utf-8"))
    return path
