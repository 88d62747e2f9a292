#!/usr/bin/env python3
"""Open a copybench report in headless Chromium and check that it renders and reads.

Checks, in a window 1,400 px wide (``--width``):

- every image loaded (complete, with a natural width); the page logged no console error,
  threw no exception and made no failed request;
- every in-page link (``href="#..."``) names an element's id, and every link to a file
  beside the page (``results.csv``, asv's HTML) names one that exists;
- the page does not scroll sideways: its scroll width is at most the window's width;
- no table cell is squeezed to about a word a line (four words or more, in lines of under
  12 characters on average);
- a plot's smallest text (``data-min-font-px`` on its ``<img>``: the size in the PNG's own
  pixels) is at least 10 px as the page shows it, that is times the image's displayed
  width over its natural width; and no text of the page itself is smaller than 10 px;
- the page weighs under 1 MB: the HTML and every image it loads (inlined images are part
  of the HTML).

Saves a screenshot.  Talks to Chromium over the DevTools protocol on a pipe
(``--remote-debugging-pipe``): no network port, no websocket library, only the standard
library.

    scripts/check_report.py reports/latest/index.html [--screenshot PATH] [--width PX]

Prints one line per failed check on stderr, then a summary on stdout.  Exit status: 0 every
check passed; 1 a check failed; 2 no Chromium or no such report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """A headless Chromium driven over fds 3 (commands in) and 4 (replies out)."""

    def __init__(self, exe: str, profile: str, width: int, height: int) -> None:
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()

        def fds() -> None:
            # Via fresh duplicates: dup2 onto itself would keep the pipe's close-on-exec flag.
            a, b = os.dup(cmd_r), os.dup(out_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.proc = subprocess.Popen(
            [
                exe,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            preexec_fn=fds,
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        os.close(cmd_r)
        os.close(out_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def send(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = 30,
    ) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._next(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, event: str, timeout: float = 30) -> dict:
        for e in self.events:
            if e.get("method") == event:
                return e
        deadline = time.monotonic() + timeout
        while True:
            e = self._next(deadline)
            self.events.append(e)
            if e.get("method") == event:
                return e

    def _next(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._out_r], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._out_r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium exited: " + self.stderr_tail())
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def stderr_tail(self) -> str:
        try:
            self.proc.kill()
            return self.proc.communicate(timeout=5)[1].decode(errors="replace")[-2000:]
        except Exception:  # noqa: BLE001
            return ""

    def close(self) -> None:
        with contextlib.suppress(Exception):  # it may already be gone
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._out_r)


# What the page must meet: text a person reads without zooming, a page that loads at once.
MIN_TEXT_PX = 10.0
MAX_PAGE_BYTES = 1_000_000

IMAGES_JS = """JSON.stringify(Array.from(document.images).map(i => ({
  src: i.src.slice(0, 48), alt: i.alt, complete: i.complete, width: i.naturalWidth,
  shown: i.clientWidth, minFontPx: i.dataset.minFontPx ?? null})))"""

# The page as laid out: its scroll width against the window's (documentElement.clientWidth:
# the viewport without a scroll bar), the outermost elements that stick out past it, every
# link, and the smallest text the page itself sets (elements that hold text and are shown).
LAYOUT_JS = r"""(() => {
  const root = document.documentElement, width = root.clientWidth;
  // An element by tag, id and class, and the section (the last h2 with an id before it).
  const section = e => {
    let h = null;
    for (const x of document.querySelectorAll('h2[id]'))
      if (x.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING) h = x;
    return h ? ' in #' + h.id : '';
  };
  const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
    + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ')[0] : '')
    + section(e);
  const past = e => e.getBoundingClientRect().right > width + 0.5;
  // Inside a box that scrolls or clips (the tidy table's), an element widens nothing.
  const clipped = e => {
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement)
      if (getComputedStyle(a).overflowX !== 'visible') return true;
    return false;
  };
  const wide = [];
  for (const e of document.body.querySelectorAll('*'))
    if (e.getBoundingClientRect().width && past(e) && !past(e.parentElement) && !clipped(e))
      wide.push(name(e) + ' (right edge ' + Math.round(e.getBoundingClientRect().right) + ' px)');
  let smallest = null;
  for (const e of document.body.querySelectorAll('*')) {
    const text = Array.from(e.childNodes).some(n => n.nodeType === 3 && n.data.trim());
    if (!text || !e.getClientRects().length) continue;
    const px = parseFloat(getComputedStyle(e).fontSize);
    if (smallest === null || px < smallest.px) smallest = {px, where: name(e)};
  }
  // Table cells too narrow to read: four words or more, wrapped into lines of under 12
  // characters on average (a column squeezed to about a word a line; a long identifier
  // broken across lines of a narrow column is not that).
  const narrow = [];
  for (const td of document.querySelectorAll('td')) {
    const text = td.textContent.trim().replace(/\s+/g, ' ');
    const words = text.split(' ').filter(Boolean).length;
    if (words < 4 || !td.getClientRects().length) continue;
    const range = document.createRange();
    range.selectNodeContents(td);
    const lines = new Set(Array.from(range.getClientRects(), r => Math.round(r.bottom))).size;
    if (text.length / lines < 12)
      narrow.push(name(td) + ': ' + words + ' words on ' + lines + ' lines, "'
                  + td.textContent.trim().slice(0, 40) + '"');
  }
  const links = Array.from(document.querySelectorAll('a[href]')).map(a => ({
    href: a.getAttribute('href'), url: a.href,
    target: a.getAttribute('href').startsWith('#')
      ? !!document.getElementById(decodeURIComponent(a.getAttribute('href').slice(1)))
      : null}));
  return JSON.stringify({scrollWidth: root.scrollWidth, width, wide: wide.slice(0, 3),
                         smallest, narrow, links});
})()"""


def page_problems(events: list[dict], start: int = 0) -> list[str]:
    """What went wrong on the page, from the DevTools events from ``start`` on: console
    errors, exceptions, logged errors, failed requests, dialogs."""
    problems = []
    urls = {
        e["params"]["requestId"]: e["params"]["request"]["url"]
        for e in events
        if e.get("method") == "Network.requestWillBeSent"
    }
    for e in events[start:]:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            problems.append(f"console {p['type']}: {p.get('args')}")
        elif m == "Runtime.exceptionThrown":
            problems.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            problems.append(f"log error: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif m == "Network.loadingFailed":
            url = urls.get(p.get("requestId"), "")
            # A request sent before the navigation (the blank start page's) is not the page's.
            if url and not url.startswith("about:"):
                problems.append(f"request failed: {p.get('errorText')} {url[:80]}")
        elif m == "Page.javascriptDialogOpening":
            problems.append(f"a dialog opened: {p.get('message')}")
    return problems


def _wait_loaded(b: Browser, session: str, url: str, timeout: float = 60) -> None:
    """Until the report (not the blank start page) has finished loading, images included."""
    expr = f"document.readyState === 'complete' && location.href === {json.dumps(url)}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = b.send("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session)
        if r["result"].get("value") is True:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not finish loading in {timeout} s")


def _evaluate(b: Browser, session: str, expression: str):
    r = b.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
    return json.loads(r["result"]["value"])


def page_bytes(index: Path, image_urls: list[str]) -> int:
    """The page's weight: the HTML, and every image it loads from a file (an inlined image
    is part of the HTML already)."""
    from urllib.parse import unquote, urlparse

    total = index.stat().st_size
    for url in dict.fromkeys(image_urls):
        u = urlparse(url)
        if u.scheme == "file":
            f = Path(unquote(u.path))
            total += f.stat().st_size if f.is_file() else 0
    return total


def check(index: Path, screenshot: Path, width: int = 1400, height: int = 2400) -> dict:
    """Load ``index`` and return what was seen; ``problems`` lists every failed check."""
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("chromium not found (scripts/install-system-deps.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="copybench-chromium-") as profile:
        b = Browser(exe, profile, width, height)
        try:
            targets = b.send("Target.getTargets")["targetInfos"]
            page = next((t for t in targets if t["type"] == "page"), None)
            target = (
                page["targetId"]
                if page
                else b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            )
            s = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                b.send(f"{domain}.enable", session=s)
            b.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=s,
            )
            url = index.resolve().as_uri()
            start = len(b.events)
            b.send("Page.navigate", {"url": url}, session=s)
            _wait_loaded(b, s, url)
            images = _evaluate(b, s, IMAGES_JS)
            image_urls = _evaluate(b, s, "JSON.stringify(Array.from(document.images, i => i.src))")
            layout = _evaluate(b, s, LAYOUT_JS)
            shot = b.send("Page.captureScreenshot", {"format": "png"}, session=s)
            import base64

            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        finally:
            b.close()
    problems = page_problems(b.events, start)
    expected = index.read_text().count("<img ")
    if len(images) != expected:
        problems.append(f"{len(images)} images in the DOM, {expected} <img> tags in the file")
    for img in images:
        if not img["complete"] or img["width"] == 0:
            problems.append(f"image did not load: {img['alt']} ({img['src']}...)")
    # Links: an in-page one must name an element; one to a file beside the page, a file.
    from urllib.parse import unquote, urlparse

    links = layout["links"]
    for link in links:
        u = urlparse(link["url"])
        if link["target"] is False:
            problems.append(f"link {link['href']} names no element of the page")
        elif link["target"] is None and u.scheme == "file" and not Path(unquote(u.path)).exists():
            problems.append(f"link {link['href']} names no file ({unquote(u.path)})")
    in_page = sum(1 for link in links if link["target"] is not None)
    if layout["scrollWidth"] > layout["width"]:
        problems.append(
            f"the page scrolls sideways: {layout['scrollWidth']} px wide in a "
            f"{layout['width']} px window; past the edge: {', '.join(layout['wide']) or '?'}"
        )
    # Text sizes as shown: a plot's smallest text in its PNG's pixels, times the image's
    # displayed width over its natural width.
    plot_px = []
    for img in images:
        if not img["width"]:
            continue  # did not load: said above
        if img["minFontPx"] is None:
            problems.append(f"image without data-min-font-px, text size unknown: {img['alt']}")
            continue
        px = float(img["minFontPx"]) * img["shown"] / img["width"]
        plot_px.append(px)
        if px < MIN_TEXT_PX:
            problems.append(
                f"plot text {px:.1f} px as shown (under {MIN_TEXT_PX:g} px): {img['alt']} "
                f"({float(img['minFontPx']):.1f} px in a {img['width']} px image shown "
                f"{img['shown']} px wide)"
            )
    smallest = layout["smallest"]
    if smallest and smallest["px"] < MIN_TEXT_PX:
        problems.append(
            f"page text {smallest['px']:g} px (under {MIN_TEXT_PX:g} px): {smallest['where']}"
        )
    for cell in layout["narrow"]:
        problems.append(f"a table cell wraps about a word a line: {cell}")
    weight = page_bytes(index, image_urls)
    if weight >= MAX_PAGE_BYTES:
        problems.append(f"the page weighs {weight:,} bytes (limit {MAX_PAGE_BYTES:,})")
    return {
        "images": len(images),
        "problems": problems,
        "screenshot": str(screenshot),
        "links": in_page,
        "scroll_width": layout["scrollWidth"],
        "width": layout["width"],
        "plot_text_px": min(plot_px) if plot_px else None,
        "page_text_px": smallest["px"] if smallest else None,
        "bytes": weight,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("index", type=Path)
    p.add_argument("--screenshot", type=Path, help="default: screenshot.png beside index.html")
    p.add_argument("--width", type=int, default=1400, help="window width in px (default: 1400)")
    args = p.parse_args(argv)
    if not args.index.is_file():
        print(f"check_report: {args.index}: no such report", file=sys.stderr)
        return 2
    shot = args.screenshot or args.index.with_name("screenshot.png")
    try:
        result = check(args.index, shot, width=args.width)
    except FileNotFoundError as e:
        print(f"check_report: {e}", file=sys.stderr)
        return 2
    for problem in result["problems"]:
        print(f"check_report: {problem[:300]}", file=sys.stderr)
    status = "FAILED" if result["problems"] else "ok"
    plot_px, page_px = result["plot_text_px"], result["page_text_px"]
    print(
        f"check_report: {status}: {args.index}: {result['images']} images loaded, "
        f"{len(result['problems'])} problems; {result['links']} in-page links; scroll width "
        f"{result['scroll_width']} px in a {result['width']} px window; smallest text "
        f"{'-' if plot_px is None else f'{plot_px:.1f}'} px in plots, "
        f"{'-' if page_px is None else f'{page_px:g}'} px on the page; "
        f"{result['bytes']:,} bytes; screenshot {result['screenshot']}"
    )
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
