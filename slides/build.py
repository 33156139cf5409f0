"""Build the talk: ``slides/talk.md`` → ``slides/build/index.html`` (reveal.js), offline.

    python slides/build.py [--out DIR] [--no-figures]   # what `make slides` runs
    python slides/build.py --check [--out DIR]          # only check a built DIR

1. reveal.js comes from npm, pinned in ``package.json`` / ``package-lock.json``: ``npm ci``
   runs in ``slides/`` when ``node_modules`` is missing or holds another version (the only
   step that needs the network, once). Its files are copied into ``DIR/reveal/`` and loaded
   by relative path, so the built folder works from a USB stick, without any CDN.
2. ``make_figures.py`` draws every figure into ``DIR/figures/`` with the project's own code
   (cached: nothing is redrawn while the code, the model and the data are unchanged).
3. The Markdown is rendered here, in Python, to one ``<section>`` per slide: slides are
   separated by a line ``---``, a line starting with ``Note:`` begins
   the speaker notes (``<aside class="notes">``, press **S** in the browser), and
   ``<!-- .slide: class="..." -->`` sets attributes of the slide — the conventions of
   reveal.js's own Markdown plugin, so ``talk.md`` reads the same there.
   Paths under ``figures/`` are build products (relative to ``DIR``); any other relative link
   or image is relative to ``talk.md`` and is rewritten to work from ``DIR``.
4. Every local file the page refers to (images, links, scripts, styles) must exist, and no
   script, style or image may come from the network: otherwise the build fails and lists them.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

SLIDES = Path(__file__).resolve().parent
TALK = SLIDES / "talk.md"
DEFAULT_OUT = SLIDES / "build"
REVEAL = SLIDES / "node_modules" / "reveal.js"
#: the files of the reveal.js package that the page loads (plus its licence)
REVEAL_FILES = ("dist/reset.css", "dist/reveal.css", "dist/theme/white.css", "dist/reveal.js",
                "dist/plugin/notes.js", "LICENSE")

SLIDE_SEPARATOR = re.compile(r"^---[ \t]*$", re.M)
NOTES = re.compile(r"^Note:[ \t]*", re.M)
SLIDE_ATTRS = re.compile(r"<!--\s*\.slide:\s*(.*?)\s*-->", re.S)
ATTR = re.compile(r'([\w-]+)="([^"]*)"')


class BuildError(RuntimeError):
    """A step of the build failed; the message says what to do."""


# --------------------------------------------------------------------------- reveal.js


def pinned_version() -> str:
    lock = json.loads((SLIDES / "package-lock.json").read_text())
    return lock["packages"]["node_modules/reveal.js"]["version"]


def installed_version() -> str | None:
    try:
        return json.loads((REVEAL / "package.json").read_text())["version"]
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return None


def ensure_reveal(*, quiet: bool = False) -> str:
    """Install the pinned reveal.js with ``npm ci`` unless it is already there."""
    want = pinned_version()
    have = installed_version()
    if have == want and all((REVEAL / f).exists() for f in REVEAL_FILES):
        return have
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError("npm not found: the slides need reveal.js from npm once. Install Node.js "
                         "and npm (Debian/Ubuntu: sudo apt-get install nodejs npm), then rerun "
                         "`make slides`.")
    if not quiet:
        print(f"installing reveal.js {want} with npm ci (node_modules has {have or 'nothing'})")
    run = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=SLIDES, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if run.returncode != 0 or installed_version() != want:
        raise BuildError(f"`npm ci` in {SLIDES} failed (is the npm registry reachable?):\n"
                         f"{run.stdout[-2000:]}")
    return want


def copy_reveal(out: Path) -> None:
    for f in REVEAL_FILES:
        target = out / "reveal" / f.removeprefix("dist/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REVEAL / f, target)


# --------------------------------------------------------------------------- Markdown


def split_slides(text: str) -> list[dict]:
    """The slides of a talk: ``{"attrs": {...}, "body": markdown, "notes": markdown}``.

    >>> [s["body"] for s in split_slides("# A\\n\\n---\\n\\n## B\\n\\nNote:\\nsay B")]
    ['# A', '## B']
    >>> split_slides("## B\\n\\nNote: say B")[0]["notes"]
    'say B'
    """
    slides = []
    for chunk in SLIDE_SEPARATOR.split(text.replace("\r\n", "\n")):
        attrs = {}
        for m in SLIDE_ATTRS.finditer(chunk):
            attrs.update(ATTR.findall(m.group(1)))
        chunk = SLIDE_ATTRS.sub("", chunk)
        parts = NOTES.split(chunk, maxsplit=1)
        body = parts[0].strip()
        notes = parts[1].strip() if len(parts) > 1 else ""
        if body or notes:
            slides.append({"attrs": attrs, "body": body, "notes": notes})
    return slides


def _markdown():
    import mistune  # with nbconvert (the notebooks' HTML copies), so always in .venv

    return mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])


def _rewrite(url: str, out: Path) -> str:
    """A relative URL of talk.md as seen from ``out`` (``figures/…`` stays as it is)."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith(("#", "/")) or url.startswith("figures/"):
        return url
    target = (SLIDES / unquote(parts.path)).resolve()
    rel = Path(os.path.relpath(target, out.resolve())).as_posix()
    return rel + (f"#{parts.fragment}" if parts.fragment else "")


def render(text: str, out: Path) -> tuple[str, str]:
    """The ``<section>`` elements of the talk, and its title (the first heading)."""
    md = _markdown()
    sections = []
    for s in split_slides(text):
        body = md(s["body"])
        body = re.sub(r'(src|href)="([^"]+)"',
                      lambda m: f'{m.group(1)}="{html.escape(_rewrite(html.unescape(m.group(2)), out))}"',
                      body)
        notes = f'\n<aside class="notes">\n{md(s["notes"])}</aside>' if s["notes"] else ""
        attrs = "".join(f' {k}="{html.escape(v)}"' for k, v in s["attrs"].items())
        sections.append(f"<section{attrs}>\n{body}{notes}\n</section>")
    title = re.search(r"^#{1,2} (.+)$", text, re.M)
    return "\n\n".join(sections), (title.group(1).strip() if title else "Slides")


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<meta name="generator" content="slides/build.py from slides/talk.md, reveal.js {version}">
<title>{title}</title>
<link rel="stylesheet" href="reveal/reset.css">
<link rel="stylesheet" href="reveal/reveal.css">
<link rel="stylesheet" href="reveal/theme/white.css">
<style>
  .reveal {{ font-size: 28px; }}
  .reveal h1 {{ font-size: 2.1em; }}
  .reveal h2 {{ font-size: 1.45em; margin-bottom: 0.4em; }}
  .reveal p, .reveal li {{ line-height: 1.3; }}
  .reveal ul, .reveal ol {{ display: block; margin-left: 1.2em; }}
  .reveal li {{ margin: 0.25em 0; }}
  .reveal section img {{ display: block; margin: 0.2em auto 0.4em; max-width: 100%;
                         max-height: 430px; border: 0; box-shadow: none; }}
  .reveal section img + p, .reveal section p:has(img) + p {{ font-size: 0.75em; color: #444; }}
  .reveal table {{ font-size: 0.78em; margin: 0.3em auto; }}
  .reveal table th, .reveal table td {{ padding: 0.2em 0.5em; }}
  .reveal pre {{ font-size: 0.68em; width: 100%; box-shadow: none; }}
  .reveal pre code {{ max-height: none; background: #f6f6f6; color: #222; padding: 0.6em; }}
  .reveal code {{ font-size: 0.9em; }}
  .reveal .slides section.title-slide {{ padding-top: 170px; }}
  .reveal .title-slide h1 {{ margin-bottom: 0.3em; }}
  .reveal .title-slide h2 {{ color: #555; font-weight: normal; }}
</style>
</head>
<body>
<div class="reveal">
<div class="slides">
{sections}
</div>
</div>
<script src="reveal/reveal.js"></script>
<script src="reveal/plugin/notes.js"></script>
<script>
  Reveal.initialize({{ hash: true, width: 1280, height: 720, margin: 0.03, center: false,
                       transition: "none", slideNumber: "c/t", plugins: [RevealNotes] }});
</script>
</body>
</html>
"""


# --------------------------------------------------------------------------- checking


class _Refs(HTMLParser):
    """Every ``src`` and ``href`` of a page, with the tag it came from."""

    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.refs.append((tag, value))


def check(out: str | Path) -> list[str]:
    """Problems with the built page ``out/index.html``: local files it refers to that do not
    exist, and scripts, styles or images it would fetch from the network. Empty when fine.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "index.html").write_text('<img src="figures/a.png"><a href="#/2">x</a>')
    >>> check(d)
    ['missing file: figures/a.png (<img src>)']
    """
    out = Path(out)
    page = out / "index.html"
    if not page.exists():
        return [f"{page} does not exist: build the slides first"]
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    problems = []
    for tag, url in parser.refs:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") or url.startswith("//"):
            if tag != "a":
                problems.append(f"not offline: {url} (<{tag}>): copy it into the build instead")
            continue
        if parts.scheme or not parts.path:        # mailto:, data:, #/3 …
            continue
        if not (out / unquote(parts.path)).exists():
            problems.append(f"missing file: {url} (<{tag} {'href' if tag in ('a', 'link') else 'src'}>)")
    return problems


# --------------------------------------------------------------------------- the build


def build(out: str | Path = DEFAULT_OUT, *, figures: bool = True, quiet: bool = False) -> Path:
    """Build the slides into ``out``; returns the path of ``index.html``."""
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    version = ensure_reveal(quiet=quiet)
    copy_reveal(out)
    if figures:
        cmd = [sys.executable, str(SLIDES / "make_figures.py"), "--out", str(out / "figures")]
        if quiet:
            cmd.append("--quiet")
        if subprocess.run(cmd).returncode != 0:
            raise BuildError("make_figures.py failed (see above)")
    sections, title = render(TALK.read_text(encoding="utf-8"), out)
    page = out / "index.html"
    page.write_text(PAGE.format(title=html.escape(title), sections=sections, version=version),
                    encoding="utf-8")
    problems = check(out)
    if problems:
        raise BuildError(f"{page}:\n  " + "\n  ".join(problems))
    if not quiet:
        n = sections.count("<section")
        print(f"{n} slides in {page} ({time.perf_counter() - t0:.0f} s); open it in a browser, "
              "press S for the speaker notes")
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default slides/build)")
    parser.add_argument("--no-figures", action="store_true", help="do not (re)draw the figures")
    parser.add_argument("--check", action="store_true", help="only check an existing build")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = check(args.out)
            if problems:
                raise BuildError(f"{args.out / 'index.html'}:\n  " + "\n  ".join(problems))
            if not args.quiet:
                print(f"{args.out / 'index.html'}: every referenced file exists")
        else:
            build(args.out, figures=not args.no_figures, quiet=args.quiet)
    except BuildError as e:
        print(f"slides: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
