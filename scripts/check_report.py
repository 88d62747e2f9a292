#!/usr/bin/env python3
"""Open a copybench report in headless Chromium and check that it renders.

Checks that every image loaded (complete, with a natural width), that the page logged no
console error, threw no exception and made no failed request, and saves a screenshot.
Talks to Chromium over the DevTools protocol on a pipe (``--remote-debugging-pipe``): no
network port, no websocket library, only the standard library.

    scripts/check_report.py reports/latest/index.html [--screenshot PATH]

Exit status: 0 rendered cleanly; 1 a check failed; 2 no Chromium or no such report.
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


IMAGES_JS = """JSON.stringify(Array.from(document.images).map(i => ({
  src: i.src.slice(0, 48), alt: i.alt, complete: i.complete, width: i.naturalWidth})))"""


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


def check(index: Path, screenshot: Path, width: int = 1280, height: int = 2400) -> dict:
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
            images = json.loads(
                b.send(
                    "Runtime.evaluate", {"expression": IMAGES_JS, "returnByValue": True}, session=s
                )["result"]["value"]
            )
            shot = b.send("Page.captureScreenshot", {"format": "png"}, session=s)
            import base64

            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        finally:
            b.close()
    problems = []
    urls = {
        e["params"]["requestId"]: e["params"]["request"]["url"]
        for e in b.events
        if e.get("method") == "Network.requestWillBeSent"
    }
    for e in b.events[start:]:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            problems.append(f"console {p['type']}: {p.get('args')}")
        elif m == "Runtime.exceptionThrown":
            problems.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            problems.append(f"log error: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif m == "Network.loadingFailed":
            url = urls.get(p.get("requestId"), "")
            # A request sent before the navigation (the blank start page's) is not the report's.
            if url and not url.startswith("about:"):
                problems.append(f"request failed: {p.get('errorText')} {url[:80]}")
        elif m == "Page.javascriptDialogOpening":
            problems.append(f"a dialog opened: {p.get('message')}")
    expected = index.read_text().count("<img ")
    if len(images) != expected:
        problems.append(f"{len(images)} images in the DOM, {expected} <img> tags in the file")
    for img in images:
        if not img["complete"] or img["width"] == 0:
            problems.append(f"image did not load: {img['alt']} ({img['src']}...)")
    return {"images": len(images), "problems": problems, "screenshot": str(screenshot)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("index", type=Path)
    p.add_argument("--screenshot", type=Path, help="default: screenshot.png beside index.html")
    args = p.parse_args(argv)
    if not args.index.is_file():
        print(f"check_report: {args.index}: no such report", file=sys.stderr)
        return 2
    shot = args.screenshot or args.index.with_name("screenshot.png")
    try:
        result = check(args.index, shot)
    except FileNotFoundError as e:
        print(f"check_report: {e}", file=sys.stderr)
        return 2
    for problem in result["problems"]:
        print(f"check_report: {problem[:300]}", file=sys.stderr)
    status = "FAILED" if result["problems"] else "ok"
    print(
        f"check_report: {status}: {args.index}: {result['images']} images loaded, "
        f"{len(result['problems'])} problems; screenshot {result['screenshot']}"
    )
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
