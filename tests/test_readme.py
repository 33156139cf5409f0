"""The README is the landing page: every link in it resolves, every notebook is listed (and
every listed notebook exists), the Binder badge opens a notebook that exists, and the results
table is the one ``make bench`` wrote."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _links(text: str) -> list[str]:
    return LINK.findall(text)


@pytest.mark.parametrize("doc", ["README.md", "slides/README.md"])
def test_every_relative_link_exists(doc):
    text = (ROOT / doc).read_text()
    missing = []
    for target in _links(text):
        if urlparse(target).scheme or target.startswith("#"):
            continue
        path = (ROOT / doc).parent / unquote(target.split("#")[0])
        if not path.exists():
            missing.append(target)
    assert not missing, f"{doc} links to files that do not exist: {missing}"


def test_every_notebook_is_listed_once_and_exists():
    on_disk = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    listed = re.findall(r"\(notebooks/([0-9]{2}_[^)]+\.ipynb)\)", README.split("## The notebooks")[1].split("\n## ")[0])
    assert listed == on_disk, "the README's notebook table must list every notebook, in order"


def test_binder_badge_opens_an_existing_notebook_of_this_repository():
    urls = re.findall(r"\((https://mybinder\.org/v2/[^)\s]+)\)", README)
    assert urls, "the README has no Binder badge"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    repo = urlparse(project["urls"]["Repository"]).path.strip("/")
    for url in urls:
        u = urlparse(url)
        assert u.path.startswith(f"/v2/gh/{repo}/"), f"{url} is not for {repo} (pyproject's Repository)"
        target = dict(p.split("=", 1) for p in u.query.split("&"))["urlpath"]
        assert target.startswith("lab/tree/")
        assert (ROOT / target.removeprefix("lab/tree/")).exists(), url
    badge = re.findall(r"!\[[^\]]*\]\((https://mybinder\.org/badge[^)]*)\)", README)
    assert badge, "the Binder link should be the usual badge image"


def test_results_table_is_the_one_bench_wrote():
    start, end = "<!-- bench:start -->\n", "<!-- bench:end -->"
    assert start in README and end in README, "the README needs the bench markers"
    table = README.split(start, 1)[1].split(end, 1)[0]
    written = (ROOT / "results" / "bench.md").read_text()
    assert table == written, "README's results table differs from results/bench.md: rerun make bench"
    assert "Measured by `make bench` (" in table


def test_readme_documents_every_command():
    from helpers.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:
        assert f"python -m helpers {name}" in README, f"the README does not show `{name}`"


@pytest.mark.parametrize("doc", ["README.md", "slides/talk.md"])
def test_shipped_model_table_is_its_report(doc):
    """The shipped model's figures in the README and the talk are the table of its own
    ``report.json`` (``make model`` rewrites both), never numbers typed by hand."""
    import json

    from helpers.training import report_table

    report = json.loads((ROOT / "models" / "crnn" / "report.json").read_text())
    table = report_table(report)
    assert table in (ROOT / doc).read_text(), f"{doc}: the shipped model table differs from report.json:\n{table}"
