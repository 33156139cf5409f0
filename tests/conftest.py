"""Shared test fixtures: a local HTTP server for real downloads (yt-dlp, the CLI), and the
recording of the strict-mode tests. TensorFlow runs one operation at a time here, as in
``make model``, so that the tests that train do so reproducibly."""

from __future__ import annotations

import http.server
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest

from helpers.models import serial_ops

serial_ops()   # before any test starts TensorFlow


@pytest.fixture
def talk_and_music():
    """20 s with 40 plops under talk and music at 5 dB SNR (16 kHz): the shipped model also
    fires on one other sound there, and strict mode drops it. Tied to the shipped model: when
    it is retrained, look for a seed where this holds again (seed 261 served the model trained
    with 24 speech and music clips alone; this one the model trained with 72)."""
    from helpers import synth

    return synth.synthesize_recording(seed=213, duration_s=20.0, sr=16000, snr_db=5.0,
                                      backgrounds=("babble", "music"))


class RangeRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with support for single ``Range: bytes=a-b`` requests."""

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def send_head(self):
        self._range = None
        header = self.headers.get("Range")
        path = self.translate_path(self.path)
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip()) if header else None
        if not match or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        first, last = match.groups()
        if first:
            start, end = int(first), int(last) if last else size - 1
        else:  # suffix range: the last N bytes
            start, end = max(size - int(last or 0), 0), size - 1
        end = min(end, size - 1)
        if start >= size or start > end:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return None
        f = open(path, "rb")
        f.seek(start)
        self._range = end - start + 1
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(self._range))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return f

    def end_headers(self) -> None:
        if getattr(self, "_range", None) is None and self.command in ("GET", "HEAD"):
            self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    def copyfile(self, source, outputfile) -> None:
        if self._range is None:
            return super().copyfile(source, outputfile)
        remaining = self._range
        while remaining > 0:
            chunk = source.read(min(64 * 1024, remaining))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)


@contextmanager
def serving(root: Path) -> Iterator[str]:
    """Serve the files of ``root`` on 127.0.0.1 (with HTTP range requests, which ffmpeg uses
    to cut a section); yields the base URL and shuts the server down afterwards."""
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(RangeRequestHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def file_server():
    """``file_server(folder)``: a context manager serving ``folder``, yielding its base URL."""
    return serving
