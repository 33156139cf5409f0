"""The talk (slides/): `make slides` builds it offline, every figure it shows exists, and
headless Chromium renders its slides.

The slides are built once per run, in the quick profile, into a temporary folder (about
20 s: the figures are drawn by slides/make_figures.py); reveal.js comes from slides/node_modules
(`npm ci` the first time). Chromium and npm are required, not optional: .ci/run installs them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.config import REPO_ROOT

SLIDES = REPO_ROOT / "slides"
BUILD = [sys.executable, str(SLIDES / "build.py")]
INSTALL = ("install it (Debian/Ubuntu: sudo apt-get install nodejs npm chromium; "
           ".ci/run installs them), then rerun the tests")


def _tool(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(f"{names[0]} not found: the slides test needs it ({' or '.join(names)}); {INSTALL}",
                pytrace=False)


@pytest.fixture(scope="module")
def chromium() -> str:
    return _tool("chromium", "chromium-browser")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The slides built into a temporary folder (quick profile)."""
    _tool("npm")
    out = tmp_path_factory.mktemp("slides") / "build"
    env = {**os.environ, "AED_PROFILE": "quick"}
    run = subprocess.run([*BUILD, "--out", str(out), "--quiet"], env=env, text=True,
                         capture_output=True, timeout=300)
    assert run.returncode == 0, f"slides/build.py failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return out


def _check(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*BUILD, "--check", "--out", str(out)], text=True, capture_output=True,
                          timeout=60)


def _markdown_images() -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)\s]+)", (SLIDES / "talk.md").read_text(encoding="utf-8"))


def _screenshot(chromium: str, page: Path, slide: int, png: Path, profile_dir: Path) -> np.ndarray:
    cmd = [chromium, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
           "--no-first-run", f"--user-data-dir={profile_dir}", "--virtual-time-budget=2000",
           f"--screenshot={png}", "--window-size=1280,720", f"{page.as_uri()}#/{slide}"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert png.exists(), f"chromium wrote no screenshot of slide {slide}:\n{run.stderr[-2000:]}"
    return np.asarray(Image.open(png).convert("L"), dtype=float)


def test_every_referenced_file_exists(built):
    page = (built / "index.html").read_text(encoding="utf-8")
    images = _markdown_images()
    assert len(images) >= 10, "the talk should show the project's figures"
    for src in images:
        assert f'src="{src}"' in page, f"{src} of talk.md is not in the page"
        assert (built / src).is_file(), f"{src} was not made by make_figures.py"
    run = _check(built)
    assert run.returncode == 0, run.stderr


def test_slides_have_speaker_notes(built):
    page = (built / "index.html").read_text(encoding="utf-8")
    sections = re.findall(r"<section[^>]*>(.*?)</section>", page, re.S)
    assert 20 <= len(sections) <= 30
    without = [i for i, s in enumerate(sections) if '<aside class="notes">' not in s]
    assert not without, f"slides without speaker notes: {without}"
    assert "http://" not in page.split("<body>")[0] and "https://" not in page.split("<body>")[0]


def test_check_fails_when_a_figure_is_missing(built, tmp_path):
    copy = tmp_path / "build"
    shutil.copytree(built, copy)
    (copy / "figures" / "hero.png").unlink()
    run = _check(copy)
    assert run.returncode == 1
    assert "missing file: figures/hero.png" in run.stderr


def test_check_fails_on_a_cdn_script(built, tmp_path):
    copy = tmp_path / "build"
    shutil.copytree(built, copy)
    page = copy / "index.html"
    page.write_text(page.read_text(encoding="utf-8").replace(
        'src="reveal/reveal.js"', 'src="https://cdn.jsdelivr.net/npm/reveal.js/dist/reveal.js"'),
        encoding="utf-8")
    run = _check(copy)
    assert run.returncode == 1
    assert "not offline" in run.stderr


def test_chromium_renders_the_slides(built, chromium, tmp_path):
    page = built / "index.html"
    shots = {n: _screenshot(chromium, page, n, tmp_path / f"slide{n}.png", tmp_path / "profile")
             for n in (0, 1, 20)}
    for n, img in shots.items():
        assert img.shape == (720, 1280), f"slide {n}: {img.shape}"
        assert img.std() > 10, f"slide {n} looks blank (pixel std {img.std():.1f})"
    # slide 1 is the figure of the detector's output: much of it is not white background
    assert (shots[1] < 200).mean() > 0.15
    # the hash navigates: the slides differ
    assert np.abs(shots[0] - shots[1]).mean() > 5
    assert np.abs(shots[1] - shots[20]).mean() > 5


def test_build_script_examples():
    run = subprocess.run([sys.executable, "-m", "doctest", str(SLIDES / "build.py")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
