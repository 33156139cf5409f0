"""Tests of helpers.brewfather against a local HTTP server (real HTTP, no mocks).

A ``ThreadingHTTPServer`` on 127.0.0.1 plays Brewfather's Custom Stream endpoint. Each
test scripts its answers (a queue of HTTP status codes, or ``("hang", seconds)`` to
make the client time out) and reads back every request the server received. The
client's backoff sleeps go to a recorder, so nothing waits for real backoff.
"""

from __future__ import annotations

import csv
import http.server
import json
import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pytest

from helpers.brewfather import LOG_COLUMNS, BrewfatherStream, redact

#: The stream id of the fake server. No 5 consecutive characters of it may ever
#: appear in a log, a message or an output (the redacted form shows 4).
SECRET = "Zq9xKw7VbT3mPa8R"


def assert_no_secret(text: str) -> None:
    for i in range(len(SECRET) - 4):
        assert SECRET[i : i + 5] not in text, f"secret fragment {SECRET[i:i + 5]!r} leaked"


@dataclass
class Received:
    time: float
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeBrewfather:
    """The scripted answers and the record of the requests of one server."""

    url: str = ""
    script: deque = field(default_factory=deque)
    requests: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self, *actions: Any) -> None:
        """Queue answers: an HTTP status, or ("hang", seconds). Then 200 for ever."""
        self.script.extend(actions)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests]


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that timed out and hung up is expected here


def make_handler(state: FakeBrewfather):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append(
                Received(time.monotonic(), self.path, dict(self.headers), json.loads(body))
            )
            action = state.script.popleft() if state.script else 200
            if isinstance(action, tuple) and action[0] == "hang":
                state.release.wait(action[1])
                action = 200
            try:
                self.send_response(action)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")
            except OSError:
                pass  # the client gave up waiting

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request line holds the secret id; the server must not print it

    return Handler


@pytest.fixture
def server():
    state = FakeBrewfather()
    httpd = QuietServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/stream?id={SECRET}"
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_client(url: str, sleeps: list[float], **options: Any) -> BrewfatherStream:
    options = {"start": 0.0, "timeout_s": 0.5, "sleep": sleeps.append, **options}
    return BrewfatherStream(url, **options)


def free_port_url() -> str:
    """A URL on a local port where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/stream?id={SECRET}"


# ----------------------------------------------------------------------------- posting
def test_successful_post_sends_the_documented_json(server, sleeps):
    client = make_client(server.url, sleeps, name="fermenter-1")
    report = client.submit(12.345, now=900.0, temp=19.54, comment="hello")

    assert report.status == "sent" and report.ok
    assert (report.attempts, report.http_status, report.error) == (1, 200, None)
    assert len(server.requests) == 1
    request = server.requests[0]
    assert request.body == {
        "name": "fermenter-1",
        "bpm": 12.3,
        "temp": 19.54,
        "temp_unit": "C",
        "comment": "hello",
    }
    assert request.headers["Content-Type"] == "application/json"
    assert request.path == f"/stream?id={SECRET}"
    assert sleeps == []


def test_only_fields_that_are_set_are_sent(server, sleeps):
    client = make_client(server.url, sleeps)
    client.submit(0.0, now=900.0)
    assert server.bodies == [{"name": "airlock", "bpm": 0.0}]


def test_first_report_after_one_interval_then_one_per_interval(server, sleeps):
    """31 simulated minutes, a submit every 5 s: posts at 15 and 30 minutes only."""
    client = make_client(server.url, sleeps)
    reports = [client.submit(10.0, now=float(t)) for t in range(0, 31 * 60 + 1, 5)]

    sent = [r.time for r in reports if r.status == "sent"]
    assert sent == [900.0, 1800.0]
    assert len(server.requests) == 2
    assert {r.status for r in reports} == {"sent", "skipped"}
    assert client.summary()["posts_sent"] == 2
    assert client.next_due() == 2700.0


def test_due_starts_the_clock_at_the_first_now_when_no_start_is_given(server, sleeps):
    client = make_client(server.url, sleeps, start=None)
    assert client.next_due() is None
    assert not client.due(1000.0)  # starts the clock at 1000
    assert not client.due(1899.0)
    assert client.due(1900.0)


def test_a_shorter_interval_is_refused_unless_lowered_for_a_local_server(server, sleeps):
    real = f"https://log.brewfather.net/stream?id={SECRET}"
    with pytest.raises(ValueError, match="15 minutes") as excinfo:
        BrewfatherStream(real, interval_s=60)
    assert_no_secret(str(excinfo.value))
    with pytest.raises(ValueError, match="local test server") as excinfo:
        BrewfatherStream(real, interval_s=60, min_interval_s=0)
    assert_no_secret(str(excinfo.value))

    client = make_client(server.url, sleeps, interval_s=60, min_interval_s=0)
    statuses = [client.submit(5.0, now=float(t)).status for t in range(0, 181, 30)]
    assert statuses.count("sent") == 3  # at 60, 120 and 180 s


# ----------------------------------------------------------------------------- retries
def test_server_errors_are_retried_with_exponential_backoff(server, sleeps):
    server.answer(500, 502)
    client = make_client(server.url, sleeps)
    report = client.submit(9.0, now=900.0)

    assert report.status == "sent"
    assert (report.attempts, report.http_status) == (3, 200)
    assert sleeps == [1.0, 2.0]
    assert len(server.requests) == 3
    assert server.bodies[0] == server.bodies[1] == server.bodies[2]
    summary = client.summary()
    assert (summary["posts_sent"], summary["failed_attempts"], summary["pending"]) == (1, 2, 0)
    # Brewfather received the post on the last attempt, later than 900 s: the next one waits
    # a full interval from then, or Brewfather would ignore it as too early
    assert client.next_due() > 900.0 + client.interval_s
    assert client.submit(9.0, now=1800.0).status == "skipped"


def test_too_many_requests_is_not_retried_but_kept(server, sleeps):
    server.answer(429)
    client = make_client(server.url, sleeps)
    report = client.submit(9.0, now=900.0)

    assert (report.status, report.attempts, report.http_status) == ("failed", 1, 429)
    assert sleeps == [] and len(server.requests) == 1
    assert "Not retried" in report.error and client.summary()["pending"] == 1
    later = client.submit(8.0, now=1800.0)
    assert later.status == "sent" and "1 earlier report(s) failed" in server.bodies[-1]["comment"]


def test_a_timeout_is_retried(server, sleeps):
    server.answer(("hang", 3.0))
    client = make_client(server.url, sleeps, timeout_s=0.3, backoff_s=0.5)
    started = time.monotonic()
    report = client.submit(4.0, now=900.0)

    assert report.status == "sent" and report.attempts == 2
    assert sleeps == [0.5]
    assert len(server.requests) == 2
    assert time.monotonic() - started < 2.0  # the client did not wait for the hang


def test_a_failed_report_is_kept_and_merged_into_the_next_post(server, sleeps):
    server.answer(500, 500, 500)
    client = make_client(server.url, sleeps, retries=2)
    failed = client.submit(7.0, now=900.0, temp=20.0)

    assert failed.status == "failed" and failed.attempts == 3
    assert "500" in failed.error
    assert sleeps == [1.0, 2.0]
    assert client.summary()["pending"] == 1

    # Never more than one attempt series per interval, even after a failure.
    assert client.submit(8.0, now=1000.0).status == "skipped"
    assert len(server.requests) == 3

    sent = client.submit(11.04, now=1800.0, temp=19.0, comment="day 3")
    assert sent.status == "sent" and sent.merged == 1
    body = server.bodies[-1]
    assert body["bpm"] == 11.0 and body["temp"] == 19.0
    assert body["comment"] == "day 3; 1 earlier report(s) failed: bpm 7.0, 20.0 C at 900 s"
    summary = client.summary()
    assert (summary["pending"], summary["posts_sent"], summary["posts_failed"]) == (0, 1, 1)
    assert summary["failed_attempts"] == 3 and summary["last_status"] == "sent"


def test_wall_clock_times_are_written_in_utc_in_the_merge_comment(server, sleeps):
    server.answer(503)
    t0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
    client = make_client(server.url, sleeps, start=t0, retries=0)
    assert client.submit(3.0, now=t0 + 900).status == "failed"
    assert client.submit(2.0, now=t0 + 1800).status == "sent"
    assert server.bodies[-1]["comment"] == (
        "1 earlier report(s) failed: bpm 3.0 at 2023-11-14 22:28 UTC"
    )


def test_404_is_not_retried_and_says_the_url_is_wrong(server, sleeps):
    server.answer(404)
    client = make_client(server.url, sleeps)
    report = client.submit(5.0, now=900.0)

    assert report.status == "failed"
    assert (report.attempts, report.http_status) == (1, 404)
    assert sleeps == [] and len(server.requests) == 1
    assert "404" in report.error and "URL" in report.error and "Not retried" in report.error
    assert "Custom Stream" in report.error
    assert_no_secret(report.error)
    assert client.summary()["pending"] == 1  # kept: the stream may be enabled again


def test_other_4xx_are_not_retried_and_point_at_the_payload(server, sleeps):
    server.answer(400)
    client = make_client(server.url, sleeps)
    report = client.submit(5.0, now=900.0)
    assert (report.status, report.attempts, report.http_status) == ("failed", 1, 400)
    assert "refused" in report.error and "Not retried" in report.error
    assert sleeps == []


def test_connection_refused_is_retried_then_reported_without_the_secret(sleeps):
    client = make_client(free_port_url(), sleeps, retries=1)
    report = client.submit(5.0, now=900.0)

    assert report.status == "failed" and report.attempts == 2
    assert report.http_status is None
    assert "could not connect" in report.error
    assert "Zq9x…" in report.error  # requests quoted the URL; it is redacted
    assert_no_secret(report.error)
    assert sleeps == [1.0]


# ----------------------------------------------------------------------------- secrets
def test_the_secret_never_appears_in_repr_logs_errors_or_output(
    server, sleeps, tmp_path, caplog, capsys
):
    caplog.set_level(logging.DEBUG)
    log_path = tmp_path / "brewfather.csv"
    server.answer(500, ("hang", 3.0), 404)
    client = make_client(server.url, sleeps, timeout_s=0.3, log_path=log_path)
    reports = [
        client.submit(6.0, now=900.0),  # 500, timeout, 404: failed
        client.submit(6.5, now=1800.0),  # 200 with the merged report
    ]
    refused = make_client(free_port_url(), sleeps, retries=0, log_path=log_path)
    reports.append(refused.submit(1.0, now=900.0))
    with pytest.raises(ValueError) as excinfo:
        BrewfatherStream(server.url.replace("http://", "ftp://"))
    print(client, client.summary(), reports)
    logging.getLogger("helpers").warning("stream: %r", client)

    assert [r.status for r in reports] == ["failed", "sent", "failed"]
    port = server.url.split(":")[2].split("/")[0]
    assert repr(client) == (
        f"BrewfatherStream('http://127.0.0.1:{port}/stream?id=Zq9x…', "
        "name='airlock', interval_s=900.0)"
    )
    # urllib3 logs the request line at DEBUG: it was captured, and scrubbed.
    assert any(
        r.name.startswith("urllib3") and "id=Zq9x…" in r.getMessage() for r in caplog.records
    )
    captured = capsys.readouterr()
    for text in (
        repr(client), str(client), str(client.summary()), str(refused.summary()),
        *(str(r) for r in reports), str(excinfo.value), caplog.text,
        *(r.getMessage() for r in caplog.records), captured.out, captured.err,
        log_path.read_text(encoding="utf-8"),
    ):
        assert_no_secret(text)


def test_redact_shows_scheme_host_and_at_most_four_characters():
    assert redact("https://log.brewfather.net/stream?id=abcdefghijklmnop") == (
        "https://log.brewfather.net/stream?id=abcd…"
    )
    assert redact("http://user:pw@127.0.0.1:8080/stream/abcdefghij#x") == (
        "http://127.0.0.1:8080/stream/abcd…"
    )
    assert redact("https://log.brewfather.net/stream?abcdefghij") == (
        "https://log.brewfather.net/stream?abcd…"
    )
    assert redact("http://[::1]:9/stream?id=abcdef") == "http://[::1]:9/stream?id=abc…"
    assert redact("https://log.brewfather.net/stream?id=ab") == (
        "https://log.brewfather.net/stream?id=a…"
    )


# ----------------------------------------------------------------------------- log
def test_log_csv_is_appended_and_flushed_at_every_attempt(server, sleeps, tmp_path):
    log_path = tmp_path / "logs" / "brewfather.csv"
    log_path.parent.mkdir()
    server.answer(500, 500, 500, 500)
    client = make_client(server.url, sleeps, retries=1, log_path=log_path)
    client.submit(7.0, now=900.0, temp=18.5)  # 500, 500: failed

    # Readable while the client lives: every attempt is already on disk.
    with open(log_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(LOG_COLUMNS)
    assert [(r["status"], r["http_status"], r["attempt"]) for r in rows] == [
        ("retry", "500", "1"),
        ("failed", "500", "2"),
    ]
    assert rows[-1]["bpm"] == "7.0" and rows[-1]["temp"] == "18.5"
    assert rows[-1]["pending"] == "1" and rows[-1]["time"] == "900.0"

    client.submit(8.0, now=1800.0)  # 500, 500: failed again, 2 pending
    other = make_client(server.url, sleeps, log_path=log_path)
    other.submit(9.0, now=900.0)  # 200
    client.submit(10.0, now=2700.0)  # 200, carries the 2 pending reports

    with open(log_path, newline="", encoding="utf-8") as f:
        text = f.read()
    assert text.count("time,bpm,temp") == 1  # one header, rows appended
    rows = list(csv.DictReader(text.splitlines()))
    assert [(r["status"], r["pending"], r["merged"]) for r in rows] == [
        ("retry", "0", "0"),
        ("failed", "1", "0"),
        ("retry", "1", "1"),
        ("failed", "2", "1"),
        ("sent", "0", "0"),
        ("sent", "0", "2"),
    ]
    assert "2 earlier report(s) failed: bpm 7.0, 18.5 C at 900 s, bpm 8.0 at 1800 s" in (
        server.bodies[-1]["comment"]
    )


# ----------------------------------------------------------------------------- checks
@pytest.mark.parametrize(
    "url, message",
    [
        ("log.brewfather.net/stream?id=abcdefgh", "not an http"),
        ("https://log.brewfather.net/stream", "no '\\?id="),
    ],
)
def test_a_bad_url_says_where_to_copy_the_right_one(url, message):
    with pytest.raises(ValueError, match=message) as excinfo:
        BrewfatherStream(url)
    assert "Custom Stream" in str(excinfo.value)


def test_bad_readings_are_refused_before_anything_is_sent(server, sleeps):
    client = make_client(server.url, sleeps)
    with pytest.raises(ValueError, match="bpm"):
        client.submit(float("nan"), now=900.0)
    with pytest.raises(ValueError, match="temp_unit"):
        client.submit(1.0, now=900.0, temp=20.0, temp_unit="celsius")
    assert server.requests == []
    assert client.due(900.0)  # a refused reading does not use up the interval


def test_the_next_due_time_is_due_after_a_retried_post(server, sleeps):
    """After a retried post the schedule starts from an odd time; asking at exactly
    next_due() must still find the report due, whatever floating point does to the sum."""
    for k in range(40):
        now = 40.0 + 0.37 * k         # the sum crosses a power of two: its last bit is rounded
        server.answer(500)
        client = make_client(server.url, sleeps, interval_s=60.0, min_interval_s=0.0, start=now - 60.0)
        assert client.submit(9.0, now=now).status == "sent"
        assert client.due(client.next_due()), k
