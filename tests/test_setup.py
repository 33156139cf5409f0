"""The project's set-up stays consistent: pins in one place, environment.yml agreeing with them,
the README's two commands, and CI calling exactly the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^\s*(?:-\s+)?([A-Za-z0-9_.\-]+)==([^\s#]+)")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = PIN.match(line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_every_requirement_is_pinned_exactly_and_explained():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert PIN.match(line), f"not pinned with ==: {line}"
        assert "#" in line, f"say why this dependency is there: {line}"


def test_environment_yml_agrees_with_requirements():
    req = _pins(ROOT / "requirements.txt")
    env = _pins(ROOT / "environment.yml")
    assert req == env
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*-\s*python=3\.11\b", text, re.M)
    for conda_pkg in ("pip", "portaudio", "ffmpeg"):
        assert re.search(rf"^\s*-\s*{conda_pkg}\b", text, re.M), conda_pkg


def test_setuptools_below_81_and_tensorflow_cpu():
    req = _pins(ROOT / "requirements.txt")
    major = int(req["setuptools"].split(".")[0])
    assert major < 81, "sed_eval -> dcase_util imports pkg_resources, gone in setuptools 81"
    assert "tensorflow-cpu" in req and "tensorflow" not in req


def test_installed_versions_match_the_pins():
    from importlib.metadata import PackageNotFoundError, version

    wrong = {}
    for name, pinned in _pins(ROOT / "requirements.txt").items():
        try:
            got = version(name)
        except PackageNotFoundError:
            wrong[name] = "not installed"
            continue
        if got != pinned:
            wrong[name] = got
    assert not wrong, f"installed versions differ from requirements.txt: {wrong} (run make setup)"


def test_readme_has_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", readme, re.S)
    commands = {line.strip() for b in blocks for line in b.splitlines() if line.strip()}
    assert "make run" in commands and "make test" in commands
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M), ".ci/run must call exactly the README's test command"
    workflow = (ROOT / ".github" / "workflows" / "test.yml").read_text()
    assert "bash .ci/run" in workflow


def test_readme_links_point_to_existing_files():
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if re.match(r"[a-z]+://", target):
            continue
        assert (ROOT / target).exists(), f"README links to missing {target}"


def test_readme_lists_every_notebook_in_order():
    readme = (ROOT / "README.md").read_text()
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    positions = [readme.find(f"notebooks/{nb}") for nb in notebooks]
    assert all(p >= 0 for p in positions), "every notebook is listed in the README"
    assert positions == sorted(positions), "listed in order"


@pytest.mark.parametrize("nb", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")),
                         ids=lambda p: p.name)
def test_notebook_structure(nb):
    """Title first, a Setup section, a parameters cell, no error outputs, modest size."""
    import nbformat

    book = nbformat.read(nb, as_version=4)
    cells = book.cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# "), "H1 title first"
    assert any(c.cell_type == "markdown" and c.source.strip() == "## Setup" for c in cells[:4])
    assert any("parameters" in c.metadata.get("tags", []) for c in cells), "a papermill parameters cell"
    for c in cells:
        if c.cell_type == "code":
            assert "import *" not in c.source and "sys.path" not in c.source
            for out in c.get("outputs", []):
                assert out.get("output_type") != "error", f"error output committed in {nb.name}"
    assert nb.stat().st_size < 3_000_000, f"{nb.name} is over 3 MB"
    # every code cell has prose before it (markdown directly above, or it is a continuation
    # of a short sequence right after one)
    run = 0
    for c in cells:
        run = run + 1 if c.cell_type == "code" else 0
        assert run <= 3, f"{nb.name}: more than three code cells in a row without a sentence"


def test_binder_postbuild_prepares_the_data(tmp_path):
    """Binder runs ``postBuild`` when it builds the image: it must be an executable script in
    the repository root (a binder/ folder would make repo2docker ignore the root's files) and
    make the notebooks' data, so that a session does not spend its first minutes on it."""
    import os
    import subprocess
    import sys

    script = ROOT / "postBuild"
    assert os.access(script, os.X_OK)
    assert not (ROOT / "binder").exists() and not (ROOT / ".binder").exists()
    # run it as Binder would, with this interpreter as `python` and the quick profile
    env = {**os.environ, "AED_PROFILE": "quick", "AED_DATA_DIR": str(tmp_path),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "synthetic-quick" / "manifest.csv").exists()
    assert (tmp_path / "synthetic-train-quick" / "manifest.csv").exists()
