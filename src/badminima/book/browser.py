"""The built book as a reader meets it: every page served on 127.0.0.1 and opened in headless Chromium, with what
a reader would notice turned into problems (an image that does not load, a traceback or error output, raw LaTeX
or MyST, a link to nowhere, a request leaving the machine) and a screenshot of each page.

    python -m badminima.book.browser _build/html --screenshots _build/screenshots
"""
from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import urldefrag, urljoin, urlparse

CHROMIUM = "/usr/bin/chromium"
# As root in a sandbox with a closed network: no sandbox, no GPU, and none of Chromium's own background traffic.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Pages of Sphinx's own machinery, not of the book.
SKIPPED = {"genindex.html", "search.html"}
REDIRECT = re.compile(r'<meta http-equiv="refresh" content="\d+;\s*url=([^"]+)"', re.IGNORECASE)
RAW_MYST = re.compile(r"```|\{(admonition|code-cell|doc|note|figure)\}")   # a directive or role that did not render
RAW_LATEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\\(frac|le|ge|sqrt|mathrm|text)\b")


@dataclass
class PageReport:
    page: str
    problems: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)     # internal links, as absolute URLs
    anchors: set[str] = field(default_factory=set)     # ids on the page
    animations: int = 0                                 # matplotlib animations with their controls


def missing_browser() -> str | None:
    """Why the check cannot run here, or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (requirements.txt pins it)"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (Debian's package chromium; .ci/run installs it)"
    return None


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """The folder over HTTP on 127.0.0.1 (a free port), as a base URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def pages(html: Path) -> list[str]:
    """The book's pages, relative to the HTML folder."""
    return sorted(str(p.relative_to(html)) for p in html.rglob("*.html")
                  if p.name not in SKIPPED and not any(part[0] in "._" for part in p.relative_to(html).parts))


# Runs in the page once it has loaded and MathJax has typeset: what the checks need, read off the DOM.
_READ_PAGE = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const article = document.querySelector('main') || document.body;
  const prose = article.cloneNode(true);
  prose.querySelectorAll('pre, code, script, style, .highlight, mjx-container, .MathJax').forEach(e => e.remove());
  return {
    images: [...document.images].map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0})),
    text: prose.innerText,
    errors: document.querySelectorAll('.output.traceback, .output.error, .output.stderr').length,
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    animations: [...document.querySelectorAll('.animation')].filter(
        a => a.querySelectorAll('button').length >= 3 && a.querySelector('input[type=range]')).length,
  };
}"""


def check_page(browser, base: str, name: str, shot: Path | None, text: str = "") -> PageReport:
    """One page in a tab of its own, so every request and response seen is this page's. A page that only
    redirects (Sphinx's top-level index.html) is checked for where it points, not opened."""
    report = PageReport(name)
    redirect = REDIRECT.search(text)
    if redirect:
        report.links = [urljoin(base + name, redirect.group(1))]
        return report
    outside: list[str] = []
    failed: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("request", lambda r: outside.append(r.url) if urlparse(r.url).hostname not in (None, "127.0.0.1")
            and not r.url.startswith("data:") else None)
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(base + name, wait_until="load")
    seen = page.evaluate(_READ_PAGE)
    problems = report.problems
    problems += [f"requests outside 127.0.0.1: {url}" for url in outside]
    problems += [f"failed request: {item}" for item in failed]
    problems += [f"image does not load: {i['src']}" for i in seen["images"] if not i["ok"]]
    if seen["errors"] or "Traceback (most recent call last)" in seen["text"]:
        problems.append("shows a traceback or error output")
    raw = RAW_LATEX.search(seen["text"])
    if raw:
        start = max(0, raw.start() - 40)
        problems.append(f"raw LaTeX in the text: ...{seen['text'][start:raw.end() + 40]!r}...")
    myst = RAW_MYST.search(seen["text"])
    if myst:
        start = max(0, myst.start() - 40)
        problems.append(f"raw MyST in the text: ...{seen['text'][start:myst.end() + 40]!r}...")
    report.links = [url for url in seen["links"] if url.startswith(base)]
    report.anchors = set(seen["ids"])
    report.animations = seen["animations"]
    if shot is not None:
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
    page.close()
    return report


def check_book(html: Path, screenshots: Path | None = None) -> list[PageReport]:
    """Open every page of the built book and check it, then every internal link against the pages' files and
    ids. Returns one report per page (problems empty where the page is fine)."""
    from playwright.sync_api import sync_playwright

    html = Path(html)
    names = pages(html)
    with serve(html) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        reports = [check_page(browser, base, name, screenshots / (name.replace("/", "__")[:-5] + ".png")
                              if screenshots else None, (html / name).read_text()) for name in names]
        browser.close()
    by_url = {base + r.page: r for r in reports}
    for report in reports:
        for url in report.links:
            target, fragment = urldefrag(url)
            path = urlparse(target).path.lstrip("/") or "index.html"
            if not (html / path).is_file():
                report.problems.append(f"link to a missing page: {url}")
            elif fragment and base + path in by_url and fragment not in by_url[base + path].anchors:
                report.problems.append(f"link to a missing section: {url}")
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Open every page of the built book in headless Chromium.")
    parser.add_argument("html", type=Path, help="the built book's HTML folder (e.g. _build/html)")
    parser.add_argument("--screenshots", type=Path, help="folder for one screenshot per page")
    args = parser.parse_args(argv)
    why = missing_browser()
    if why:
        print(f"cannot check the book: {why}", file=sys.stderr)
        return 2
    if args.screenshots:
        shutil.rmtree(args.screenshots, ignore_errors=True)
    reports = check_book(args.html, args.screenshots)
    for r in reports:
        print(f"{r.page}: " + ("ok" if not r.problems else "; ".join(r.problems)))
    print(f"{len(reports)} pages, {sum(bool(r.problems) for r in reports)} with problems, "
          f"{sum(r.animations for r in reports)} animation(s)")
    return 1 if any(r.problems for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
