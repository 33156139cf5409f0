"""Post the bubble rate to Brewfather's Custom Stream: rate limit, retries, local log.

Brewfather (https://brewfather.app) logs readings from home-made devices through its
*Custom Stream*: an HTTP ``POST`` of a JSON object to a personal URL of the form
``https://log.brewfather.net/stream?id=<logging-id>``, found in Brewfather under
Settings → Power-ups → Custom Stream.

What Brewfather's documentation says
------------------------------------
From "Custom Stream", https://docs.brewfather.app/integrations/custom-stream (also
served as Markdown at ``.../custom-stream.md``; read in the stored copy of the docs):

* Body: JSON, header ``Content-Type: application/json``. ``name`` (string) is
  required: "Unique name for your device", and the first POST with a new name creates
  the device. Every other field is optional, but "at least one value field must be
  provided (Temp, gravity or pressure, etc)".
* Documented value fields include ``temp``, ``aux_temp`` (fridge), ``ext_temp`` (room),
  ``temp_unit`` (``"C"``, ``"F"`` or ``"K"``, default ``"C"``), ``gravity``,
  ``gravity_unit``, ``pressure``, ``pressure_unit``, ``ph``, **``bpm`` (number,
  "Bubbles Per Minute")**, ``comment`` (free text), ``beer``, ``battery``,
  ``device_source``, ``report_source`` and a few more. So ``bpm`` is a documented
  field, not only a community habit.
* Rate: "Never log more than once every 15 minutes per device name, request logged
  more often than that will be ignored ... maximum rate: one POST per device per 15
  minutes."
* HTTP and HTTPS both work.

The docs say nothing about the answer's body or about error codes, so this client
treats any 2xx answer as success and does not parse the body.

How this client behaves
-----------------------
* **Caller's clock.** :meth:`BrewfatherStream.submit` takes ``now`` in seconds on the
  caller's clock: wall-clock time for a microphone, *audio time* when reading a file.
  The clock starts at ``start`` (default: the first ``now`` the client is given).
  Brewfather judges the 15 minutes by when posts *arrive*: a file read faster than
  real time posts as fast as it is read, and Brewfather ignores all but the first of
  any posts less than 15 minutes apart. Post from files only when read in real time.
* **First report after one full interval.** A report is due when ``now`` is at least
  ``interval_s`` after the start, and then ``interval_s`` after the previous attempt
  series (successful or not). A 31-minute file read from ``start=0`` gives exactly two
  reports, at 15 and at 30 minutes. Ask :meth:`~BrewfatherStream.due` before
  computing an expensive reading; :meth:`~BrewfatherStream.submit` checks it again and
  returns a ``"skipped"`` :class:`Report` without any HTTP when it is not due.
* **Never faster than Brewfather allows.** ``interval_s`` may not be shorter than
  ``min_interval_s`` (900 s). Tests against a local server may lower
  ``min_interval_s``, but only for a loopback host (``127.0.0.1``, ``::1``,
  ``localhost``).
* **Retries.** Time-outs, connection errors and HTTP 5xx are retried up to
  ``retries`` times after ``backoff_s``, ``2*backoff_s``, ``4*backoff_s`` ... seconds;
  after a retried post gets through, the next one waits ``interval_s`` from then, since
  Brewfather counts from the post it received. HTTP 429 (too many requests) is not
  retried: the report goes with the next post. Other 4xx answers (typically 404 for a
  wrong or disabled stream URL) and redirects are not retried either: the error says
  what to check.
* **Failed reports are kept, not dropped.** Brewfather takes one reading per POST, so
  a report whose attempts all failed is merged into the next due post: the newest
  ``bpm`` and ``temp`` are sent and the ``comment`` says, for example,
  ``"1 earlier report(s) failed: bpm 12.3 at 900 s"`` (times of 1e9 s and more are
  taken as Unix time and written in UTC). The failed rows stay in the CSV log.
* **The URL is a secret.** :func:`redact` shows the scheme, the host and at most four
  characters of the id. ``repr()``, log records, report errors and the CSV log only
  ever hold the redacted form; the messages of ``requests`` errors (which quote the
  URL) are scrubbed. Creating a client also adds a filter to the ``urllib3`` loggers
  (whose DEBUG lines quote the request path) that scrubs this client's id.
* **Blocking.** :meth:`~BrewfatherStream.submit` blocks for at most about
  ``(retries + 1) * timeout_s`` plus the backoff sleeps; a live listener whose audio
  loop cannot wait should call it from a worker thread (it holds a lock).

Examples
--------
>>> redact("https://log.brewfather.net/stream?id=abcdefghijklmnop")
'https://log.brewfather.net/stream?id=abcd…'
>>> stream = BrewfatherStream("https://log.brewfather.net/stream?id=abcdefghijklmnop")
>>> stream
BrewfatherStream('https://log.brewfather.net/stream?id=abcd…', name='airlock', interval_s=900.0)
>>> stream.due(0.0), stream.due(899.0), stream.due(900.0)
(False, False, True)
"""

from __future__ import annotations

import csv
import ipaddress
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional, Union
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import requests

__all__ = [
    "LOG_COLUMNS",
    "MIN_INTERVAL_S",
    "BrewfatherStream",
    "Report",
    "redact",
]

logger = logging.getLogger(__name__)
#: a report asked for at :meth:`BrewfatherStream.next_due` is due even where floating point
#: rounds ``anchor + interval - anchor`` just below the interval
_SLACK_S = 1e-6

PathLike = Union[str, "os.PathLike[str]"]

#: Brewfather ignores posts made more often than once every 15 minutes per device.
MIN_INTERVAL_S = 900.0

#: The columns of the CSV log, one row per HTTP attempt. ``time`` is the caller's
#: ``now``; ``status`` is ``sent``, ``retry`` (failed, will be retried) or ``failed``
#: (the last attempt of a series); ``pending`` is the number of reports waiting to be
#: merged after this attempt; ``merged`` the number of earlier reports this post
#: carried; ``logged_at`` the wall-clock time of the attempt (UTC, ISO 8601).
LOG_COLUMNS = (
    "time",
    "bpm",
    "temp",
    "status",
    "http_status",
    "error",
    "attempt",
    "pending",
    "merged",
    "logged_at",
)

_TEMP_UNITS = ("C", "F", "K")
_ELLIPSIS = "…"
#: At most this many failed reports are spelled out in a merged comment.
_MAX_LISTED = 6
_UNIX_TIME_FROM = 1e9  # 2001-09-09: larger ``now`` values are taken as Unix time


# --------------------------------------------------------------------------- secrets
def _shorten(secret: str) -> str:
    """At most the first four characters of ``secret`` (fewer if it is short) and "…"."""
    return secret[: min(4, len(secret) // 2)] + _ELLIPSIS


def redact(url: str) -> str:
    """A Custom Stream URL with its secret id cut to at most four characters.

    Keeps the scheme, the host (and port) and the first path segment; every query
    value, and every path segment after the first, is cut to at most its first four
    characters followed by "…". User names, passwords and fragments are dropped.

    Parameters
    ----------
    url : str
        The URL, e.g. ``https://log.brewfather.net/stream?id=<logging-id>``.

    Returns
    -------
    str
        A form that is safe to print and log.

    Examples
    --------
    >>> redact("https://log.brewfather.net/stream?id=abcdefghijklmnop")
    'https://log.brewfather.net/stream?id=abcd…'
    >>> redact("http://127.0.0.1:8080/stream/abcdefghijk")
    'http://127.0.0.1:8080/stream/abcd…'
    """
    try:
        parts = urlsplit(str(url).strip())
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unreadable URL>"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host + (f":{port}" if port is not None else "")
    segments = parts.path.split("/")
    kept, first_seen = [], False
    for segment in segments:
        if not segment:
            kept.append(segment)
        elif not first_seen:
            kept.append(segment)
            first_seen = True
        else:
            kept.append(_shorten(segment))
    path = "/".join(kept)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(f"{k}={_shorten(v)}" if v else _shorten(k) for k, v in pairs)
    scheme = f"{parts.scheme}://" if parts.scheme else ""
    return scheme + netloc + path + (f"?{query}" if query else "")


def _secret_tokens(url: str) -> dict[str, str]:
    """The secret parts of ``url`` (and their URL-quoted forms) mapped to their redaction."""
    try:
        parts = urlsplit(str(url).strip())
    except ValueError:
        return {}
    secrets: list[str] = []
    segments = [s for s in parts.path.split("/") if s]
    secrets += segments[1:]
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        secrets.append(value if value else key)
    tokens: dict[str, str] = {}
    for secret in secrets:
        if len(secret) < 4:
            continue
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            tokens[form] = _shorten(secret)
    if parts.password:
        tokens[parts.password] = _ELLIPSIS
    return tokens


def _scrub(text: str, tokens: dict[str, str]) -> str:
    """``text`` with every secret token replaced, longest first."""
    for token in sorted(tokens, key=len, reverse=True):
        if token in text:
            text = text.replace(token, tokens[token])
    return text


class _SecretFilter(logging.Filter):
    """Scrubs the secrets of every client from records of the loggers it is added to."""

    def __init__(self) -> None:
        super().__init__()
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, tokens: dict[str, str]) -> None:
        with self._lock:
            self._tokens.update(tokens)

    def filter(self, record: logging.LogRecord) -> bool:
        tokens = self._tokens
        if tokens:
            try:
                message = record.getMessage()
            except Exception:  # a broken record is not ours to fix
                return True
            scrubbed = _scrub(message, tokens)
            if scrubbed != message:
                record.msg, record.args = scrubbed, ()
        return True


_FILTER = _SecretFilter()


def _protect_library_logs(tokens: dict[str, str]) -> None:
    """Add the scrubbing filter to the loggers of ``urllib3`` and ``requests``.

    Filters on a logger only see that logger's own records, so the filter goes on
    every existing ``urllib3.*`` / ``requests.*`` logger (they exist once ``requests``
    is imported).
    """
    _FILTER.add(tokens)
    names = [
        name
        for name in list(logging.root.manager.loggerDict)
        if name.split(".")[0] in ("urllib3", "requests")
    ]
    for name in names + ["urllib3.connectionpool", "urllib3.util.retry"]:
        library_logger = logging.getLogger(name)
        if _FILTER not in library_logger.filters:
            library_logger.addFilter(_FILTER)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class Report:
    """What became of one :meth:`BrewfatherStream.submit` call.

    Attributes
    ----------
    status : str
        ``"sent"`` (Brewfather answered 2xx), ``"failed"`` (every attempt failed; the
        reading is kept and merged into the next post) or ``"skipped"`` (not due yet:
        nothing was sent).
    time : float
        The caller's ``now``.
    bpm : float
        The bubbles per minute given to ``submit``.
    attempts : int
        HTTP attempts made (0 when skipped).
    http_status : int or None
        The last HTTP status code, None when there was no answer.
    error : str or None
        What went wrong and what to do, with the URL redacted.
    payload : dict or None
        The JSON body that was posted.
    merged : int
        How many earlier failed reports this post carried.
    """

    status: str
    time: float
    bpm: float
    attempts: int = 0
    http_status: Optional[int] = None
    error: Optional[str] = None
    payload: Optional[dict[str, Any]] = field(default=None, compare=False)
    merged: int = 0

    @property
    def ok(self) -> bool:
        """True when Brewfather accepted the post."""
        return self.status == "sent"


@dataclass(frozen=True)
class _Pending:
    time: float
    bpm: float
    temp: Optional[float]
    temp_unit: str


def _format_time(t: float) -> str:
    if t >= _UNIX_TIME_FROM:
        return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{t:.0f} s"


def _merge_note(pending: list[_Pending]) -> str:
    """``"2 earlier report(s) failed: bpm 12.3 at 900 s, bpm 11.0 at 1800 s"``."""
    listed = pending[-_MAX_LISTED:]
    items = []
    for p in listed:
        temp = f", {p.temp:.1f} {p.temp_unit}" if p.temp is not None else ""
        items.append(f"bpm {p.bpm:.1f}{temp} at {_format_time(p.time)}")
    note = f"{len(pending)} earlier report(s) failed: " + ", ".join(items)
    if len(pending) > len(listed):
        note += f" (and {len(pending) - len(listed)} older)"
    return note


def _finite(name: str, value: Any, *, minimum: Optional[float] = None) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number; got {value!r}") from None
    if not math.isfinite(number) or (minimum is not None and number < minimum):
        bound = f" and at least {minimum:g}" if minimum is not None else ""
        raise ValueError(f"{name} must be finite{bound}; got {value!r}")
    return number


# --------------------------------------------------------------------------- client
class BrewfatherStream:
    """A Custom Stream client that posts at most once per interval and never loses a reading.

    The client has state (the schedule, the pending failed reports, counters), hence
    a class. Nothing is sent when it is created.

    Parameters
    ----------
    url : str
        The Custom Stream URL, e.g. ``https://log.brewfather.net/stream?id=<logging-id>``.
        It holds a secret and is only ever shown redacted (see :func:`redact`).
    name : str, default "airlock"
        The device name: Brewfather creates (and later identifies) the device by it.
    interval_s : float, default 900
        Seconds between posts, on the caller's clock. The first post is due one
        full interval after ``start``.
    min_interval_s : float, default 900
        The shortest allowed ``interval_s``. Brewfather ignores faster posts, so values
        below 900 are only accepted for a loopback host (tests with a local server).
    start : float, optional
        When the clock starts, on the caller's clock. Default: the first ``now`` given
        to :meth:`due` or :meth:`submit`. Pass ``0.0`` when ``now`` is audio time.
    timeout_s : float, default 10
        Time-out of each HTTP attempt (connect and read).
    retries : int, default 3
        Further attempts after a time-out, a connection error or HTTP 5xx (HTTP 429
        is not retried: the report goes with the next post).
    backoff_s : float, default 1.0
        Sleep before the first retry; doubled before each further one (1, 2, 4 ...).
    log_path : str or path-like, optional
        A CSV file that gets one row per attempt (columns :data:`LOG_COLUMNS`),
        appended and flushed at once; the header is written when the file is new.
    sleep : callable, default time.sleep
        Called with the backoff in seconds; tests pass a recorder.

    Examples
    --------
    >>> stream = BrewfatherStream(
    ...     "https://log.brewfather.net/stream?id=abcdefghijklmnop", start=0.0)
    >>> stream.submit(12.0, now=60.0).status      # not due: nothing is sent
    'skipped'
    >>> stream.summary()["posts_sent"]
    0
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "airlock",
        interval_s: float = MIN_INTERVAL_S,
        min_interval_s: float = MIN_INTERVAL_S,
        start: Optional[float] = None,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        log_path: Optional[PathLike] = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        if not isinstance(url, str):
            raise TypeError(f"url must be a str; got {type(url).__name__}")
        self._url = url.strip()
        shown = redact(self._url)
        try:
            parts = urlsplit(self._url)
            host = parts.hostname or ""
        except ValueError:
            parts, host = None, ""
        if parts is None or parts.scheme not in ("http", "https") or not host:
            raise ValueError(
                f"the Brewfather URL {shown!r} is not an http(s) URL with a host. Copy "
                "the Custom Stream URL from Brewfather → Settings → Power-ups → Custom "
                "Stream; it looks like https://log.brewfather.net/stream?id=…"
            )
        if host.endswith("brewfather.net") and "id=" not in parts.query:
            raise ValueError(
                f"the Brewfather URL {shown!r} has no '?id=…'. Copy the whole Custom "
                "Stream URL from Brewfather → Settings → Power-ups → Custom Stream."
            )
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name must be a non-empty device name; got {name!r}")
        min_interval_s = _finite("min_interval_s", min_interval_s, minimum=0.0)
        if min_interval_s < MIN_INTERVAL_S and not is_loopback(host):
            raise ValueError(
                f"min_interval_s={min_interval_s:g} is below {MIN_INTERVAL_S:g} s for the "
                f"host {host!r}: Brewfather ignores posts made more often than once every "
                "15 minutes per device. Lower it only for a local test server (127.0.0.1)."
            )
        interval_s = _finite("interval_s", interval_s, minimum=0.0)
        if interval_s < min_interval_s:
            raise ValueError(
                f"interval_s={interval_s:g} is shorter than {min_interval_s:g} s: Brewfather "
                "ignores posts made more often than once every 15 minutes per device. Use "
                f"interval_s >= {min_interval_s:g}."
            )
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ValueError(f"retries must be an int >= 0; got {retries!r}")
        timeout_s = _finite("timeout_s", timeout_s, minimum=0.0)
        if timeout_s == 0:
            raise ValueError("timeout_s must be > 0 (seconds per HTTP attempt)")

        self.name = name
        self.interval_s = interval_s
        self.min_interval_s = min_interval_s
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = _finite("backoff_s", backoff_s, minimum=0.0)
        self.log_path = Path(log_path) if log_path is not None else None
        self._sleep = sleep
        self._start = None if start is None else _finite("start", start)
        self._last_attempt: Optional[float] = None
        self._pending: list[_Pending] = []
        self._lock = threading.RLock()
        self._counts = {"posts_sent": 0, "posts_failed": 0, "attempts": 0, "failed_attempts": 0}
        self._last: Optional[Report] = None
        self._tokens = _secret_tokens(self._url)
        _protect_library_logs(self._tokens)

    # ------------------------------------------------------------------ display
    @property
    def redacted_url(self) -> str:
        """The stream URL with its id cut short (safe to print)."""
        return redact(self._url)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.redacted_url!r}, name={self.name!r}, "
            f"interval_s={self.interval_s!r})"
        )

    __str__ = __repr__

    # ------------------------------------------------------------------ schedule
    def _anchor(self, now: float) -> float:
        if self._start is None:
            self._start = now
        anchor = self._start if self._last_attempt is None else self._last_attempt
        if now < anchor:  # the clock went backwards: restart the schedule from here
            if self._last_attempt is None:
                self._start = now
            else:
                self._last_attempt = now
            anchor = now
        return anchor

    def due(self, now: float) -> bool:
        """Whether a report is due at ``now`` (seconds on the caller's clock).

        True once ``now`` is ``interval_s`` after the start, then ``interval_s`` after
        the last attempt series. The first call starts the clock when ``start`` was
        not given.

        Examples
        --------
        >>> stream = BrewfatherStream("https://log.brewfather.net/stream?id=abcdefgh")
        >>> stream.due(100.0), stream.due(1000.0)
        (False, True)
        """
        now = _finite("now", now)
        with self._lock:
            # a microsecond of slack: next_due() must be due, whatever the rounding of its sum
            return now - self._anchor(now) >= self.interval_s - _SLACK_S

    def next_due(self) -> Optional[float]:
        """When the next report is due on the caller's clock (None before the clock starts)."""
        with self._lock:
            return self._next_due()

    def _next_due(self) -> Optional[float]:
        if self._start is None:
            return None
        anchor = self._start if self._last_attempt is None else self._last_attempt
        return anchor + self.interval_s

    # ------------------------------------------------------------------ posting
    def submit(
        self,
        bpm: float,
        *,
        now: float,
        temp: Optional[float] = None,
        temp_unit: str = "C",
        comment: Optional[str] = None,
    ) -> Report:
        """Post a reading if one is due; otherwise do nothing and say so.

        Parameters
        ----------
        bpm : float
            Bubbles per minute (>= 0); sent rounded to 0.1.
        now : float
            Seconds on the caller's clock (wall clock, or audio time for a file).
        temp : float, optional
            Temperature, sent as ``temp`` with ``temp_unit``.
        temp_unit : {"C", "F", "K"}
            Unit of ``temp``.
        comment : str, optional
            Free text; a note about earlier failed reports is appended to it.

        Returns
        -------
        Report
            ``status`` is ``"sent"``, ``"failed"`` (kept for the next post) or
            ``"skipped"`` (not due: no HTTP request was made).

        Examples
        --------
        >>> stream = BrewfatherStream(
        ...     "https://log.brewfather.net/stream?id=abcdefgh", start=0.0)
        >>> stream.submit(8.5, now=10.0, temp=19.5).status   # due only at now=900
        'skipped'
        """
        bpm = _finite("bpm", bpm, minimum=0.0)
        now = _finite("now", now)
        if temp is not None:
            temp = _finite("temp", temp)
        if temp_unit not in _TEMP_UNITS:
            raise ValueError(f"temp_unit must be one of {_TEMP_UNITS}; got {temp_unit!r}")
        if comment is not None and not isinstance(comment, str):
            raise TypeError(f"comment must be a str or None; got {type(comment).__name__}")

        with self._lock:
            if not self.due(now):
                return Report(status="skipped", time=now, bpm=bpm)
            self._last_attempt = now
            earlier = list(self._pending)
            payload = self._payload(bpm, temp, temp_unit, comment, earlier)
            began = time.monotonic()
            report = self._post(payload, now=now, bpm=bpm, temp=temp, earlier=len(earlier))
            if report.ok:
                # Brewfather counts its 15 minutes from the post it received: after retries
                # that is later than ``now``, and the next post must wait as much longer
                self._last_attempt = now + (time.monotonic() - began if report.attempts > 1 else 0.0)
                self._pending.clear()
                self._counts["posts_sent"] += 1
                logger.info(
                    "Brewfather: sent bpm %.1f at %s (attempt %d%s)",
                    bpm, _format_time(now), report.attempts,
                    f", with {len(earlier)} earlier report(s)" if earlier else "",
                )
            else:
                self._pending.append(_Pending(now, bpm, temp, temp_unit))
                self._counts["posts_failed"] += 1
                logger.warning(
                    "Brewfather: report at %s not sent after %d attempt(s); kept for the "
                    "next post (%d pending). %s",
                    _format_time(now), report.attempts, len(self._pending), report.error,
                )
            self._last = report
            return report

    def _payload(
        self,
        bpm: float,
        temp: Optional[float],
        temp_unit: str,
        comment: Optional[str],
        earlier: list[_Pending],
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"name": self.name, "bpm": round(bpm, 1)}
        if temp is not None:
            payload["temp"] = round(temp, 2)
            payload["temp_unit"] = temp_unit
        notes = [c for c in (comment, _merge_note(earlier) if earlier else None) if c]
        if notes:
            payload["comment"] = "; ".join(notes)
        return payload

    def _clean(self, text: str) -> str:
        return _scrub(text, self._tokens)

    def _post(
        self, payload: dict[str, Any], *, now: float, bpm: float, temp: Optional[float],
        earlier: int,
    ) -> Report:
        shown = self.redacted_url
        http_status: Optional[int] = None
        error: Optional[str] = None
        attempt = 0
        for attempt in range(1, self.retries + 2):
            http_status, error, retryable = None, None, False
            try:
                response = requests.post(
                    self._url, json=payload, timeout=self.timeout_s, allow_redirects=False
                )
                http_status = response.status_code
                reason = response.reason or ""
                response.close()
            except requests.Timeout as exc:
                retryable = True
                error = (
                    f"no answer from {shown} within {self.timeout_s:g} s "
                    f"({type(exc).__name__}: {self._clean(str(exc))})"
                )
            except requests.ConnectionError as exc:
                retryable = True
                error = (
                    f"could not connect to {shown}; check the network "
                    f"({type(exc).__name__}: {self._clean(str(exc))})"
                )
            except requests.RequestException as exc:
                error = (
                    f"could not post to {shown} "
                    f"({type(exc).__name__}: {self._clean(str(exc))})"
                )
            else:
                if 200 <= http_status < 300:
                    self._count_attempt(ok=True)
                    self._log_row(now, bpm, temp, "sent", http_status, None, attempt, 0,
                                  earlier)
                    return Report("sent", now, bpm, attempt, http_status, None, payload,
                                  earlier)
                if http_status == 429:   # too soon: retrying in seconds cannot help
                    error = (
                        f"Brewfather answered HTTP 429 {reason}".rstrip() + " (too many requests: "
                        "it takes one post per 15 minutes; is another device posting to this "
                        "stream?). Not retried; sent with the next post."
                    )
                elif http_status >= 500:
                    retryable = True
                    error = f"Brewfather answered HTTP {http_status} {reason}".rstrip() + " (server error)"
                elif 300 <= http_status < 400:
                    error = (
                        f"Brewfather answered a redirect (HTTP {http_status}) for {shown}: "
                        "use the Custom Stream URL exactly as shown in Brewfather's "
                        "settings. Not retried."
                    )
                elif http_status in (401, 403, 404, 410):
                    error = (
                        f"Brewfather answered HTTP {http_status} {reason}".rstrip()
                        + f" for {shown}: the Custom Stream URL is probably wrong or the "
                        "stream is disabled. Copy the URL again from Brewfather → Settings → "
                        "Power-ups → Custom Stream. Not retried."
                    )
                else:
                    error = (
                        f"Brewfather refused the post with HTTP {http_status} {reason}".rstrip()
                        + f" ({shown}): check the device name and the values sent "
                        f"({sorted(payload)}). Not retried."
                    )
            error = self._clean(error)
            self._count_attempt(ok=False)
            if retryable and attempt <= self.retries:
                self._log_row(now, bpm, temp, "retry", http_status, error, attempt, earlier,
                              earlier)
                delay = self.backoff_s * 2 ** (attempt - 1)
                logger.info(
                    "Brewfather: attempt %d failed (%s); retrying in %g s", attempt, error, delay
                )
                self._sleep(delay)
                continue
            break
        self._log_row(now, bpm, temp, "failed", http_status, error, attempt, earlier + 1, earlier)
        return Report("failed", now, bpm, attempt, http_status, error, payload, earlier)

    def _count_attempt(self, *, ok: bool) -> None:
        self._counts["attempts"] += 1
        if not ok:
            self._counts["failed_attempts"] += 1

    def _log_row(
        self, now: float, bpm: float, temp: Optional[float], status: str,
        http_status: Optional[int], error: Optional[str], attempt: int, pending: int,
        merged: int,
    ) -> None:
        if self.log_path is None:
            return
        row = [
            repr(now), f"{bpm:.1f}", "" if temp is None else f"{temp:g}", status,
            "" if http_status is None else str(http_status),
            "" if error is None else self._clean(error), str(attempt), str(pending),
            str(merged), datetime.now(timezone.utc).isoformat(timespec="seconds"),
        ]
        try:
            new = not self.log_path.exists() or self.log_path.stat().st_size == 0
            with open(self.log_path, "a", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                if new:
                    writer.writerow(LOG_COLUMNS)
                writer.writerow(row)
                f.flush()
        except OSError as exc:
            # Losing a log line must not stop the listener; say where and why.
            logger.error(
                "Brewfather: could not append to the log %s (%s); check that its folder "
                "exists and is writable.", self.log_path, exc,
            )

    # ------------------------------------------------------------------ summary
    def summary(self, *, wait: bool = True) -> dict[str, Any]:
        """Counters for the end-of-session summary (``wait=False``: without waiting for a post
        under way in another thread, as it stands).

        Returns
        -------
        dict
            ``url`` (redacted), ``name``, ``posts_sent``, ``posts_failed`` (attempt
            series that failed), ``attempts``, ``failed_attempts``, ``pending``
            (reports waiting to be merged), ``last_status``, ``last_http_status``,
            ``last_error`` and ``next_due``.

        Examples
        --------
        >>> BrewfatherStream("https://log.brewfather.net/stream?id=abcdefgh").summary()["pending"]
        0
        """
        locked = self._lock.acquire(timeout=-1 if wait else 0)
        try:
            last = self._last
            return {
                "url": self.redacted_url,
                "name": self.name,
                **self._counts,
                "pending": len(self._pending),
                "last_status": None if last is None else last.status,
                "last_http_status": None if last is None else last.http_status,
                "last_error": None if last is None else last.error,
                "next_due": self._next_due(),
            }
        finally:
            if locked:
                self._lock.release()
