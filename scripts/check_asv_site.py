#!/usr/bin/env python3
"""Open asv's published site in headless Chromium, served by asv's own ``asv preview``, and
check that a benchmark's graph draws, offline.

Checks, for the benchmark ``--benchmark`` (default:
``bench_tensor_copy.TensorCopy.time_tensor_copy``):

- the page made no failed request (no script left on a CDN: this machine has no network),
  logged no console error and threw no exception;
- asv's graph of that benchmark drew (Flot's plot object holds its series), and how many
  points each series has (``--points N``: every series has exactly N);
- which tags asv wrote on the graph's time axis (``--tag TEXT``: one of them is TEXT).

Prints one line per failed check on stderr, then a summary on stdout (the points per series
and the tags), and saves a screenshot.  Exit status: 0 every check passed; 1 a check failed;
2 no Chromium, or no site at HTML.

    scripts/check_asv_site.py .asv/html [--benchmark NAME] [--param "method='clone'"]
        [--points 3] [--tag torch-2.13.0+cpu]
"""

from __future__ import annotations

import argparse
import base64
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_report import Browser, _evaluate, find_chromium, page_problems  # noqa: E402

DEFAULT_BENCHMARK = "bench_tensor_copy.TensorCopy.time_tensor_copy"

# The graph as Flot holds it: each series' points with a value, their x (asv's revision or
# date), and the tag labels asv wrote above the graph (on its time axis: graphdisplay.js).
GRAPH_JS = r"""(() => {
  const p = window.$ && $('#main-graph').data('plot');
  if (!p || !p.getData().length) return JSON.stringify(null);
  const series = p.getData().map(s => s.data.filter(d => d && d[1] !== null && d[1] !== undefined)
                                            .map(d => d[0]));
  const tags = Array.from(document.querySelectorAll('#main-graph > div[style*="-2ex"]'),
                          d => d.textContent)
                    .filter(t => t.trim());
  return JSON.stringify({series, tags});
})()"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(html: Path, folder: Path) -> tuple[subprocess.Popen, int]:
    """``asv preview`` over ``html`` (a minimal config naming it), on a free port."""
    config = folder / "asv.conf.json"
    config.write_text(
        json.dumps({"version": 1, "project": "site", "repo": ".", "html_dir": str(html)})
    )
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "asv", "preview", "--config", str(config), "--port", str(port)],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return server, port
        if server.poll() is not None:
            raise RuntimeError("asv preview exited: " + server.stderr.read().decode()[-300:])
        time.sleep(0.2)
    server.kill()
    raise TimeoutError("asv preview did not start serving in 30 s")


def _graph(b: Browser, s: str, timeout: float = 60) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = _evaluate(b, s, GRAPH_JS)
        if got is not None:
            time.sleep(0.5)  # the tags are drawn just after the plot
            return _evaluate(b, s, GRAPH_JS)
        time.sleep(0.2)
    return None


def check(html: Path, benchmark: str, screenshot: Path, select: list[str] | None = None) -> dict:
    """Serve ``html``, open ``benchmark``'s graph (with the parameter values ``select``
    names, ``NAME=VALUE`` as asv writes them: ``method='clone'``, ``numel=1024``); what was
    seen, ``problems`` included."""
    from urllib.parse import quote

    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("chromium not found (scripts/install-system-deps.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="copybench-asv-site-") as tmp:
        server, port = _serve(html.resolve(), Path(tmp))
        b = Browser(exe, str(Path(tmp) / "profile"), 1400, 1000)
        try:
            target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            s = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Network"):
                b.send(f"{domain}.enable", session=s)
            query = "&".join(
                f"p-{quote(k)}={quote(v)}" for k, v in (x.split("=", 1) for x in select or [])
            )
            url = f"http://127.0.0.1:{port}/#{benchmark}" + (f"?{query}" if query else "")
            start = len(b.events)
            b.send("Page.navigate", {"url": url}, session=s)
            graph = _graph(b, s)
            shot = b.send("Page.captureScreenshot", {"format": "png"}, session=s)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        finally:
            b.close()
            server.kill()
            server.wait()
    problems = page_problems(b.events, start)
    if graph is None:
        problems.append(f"no graph of {benchmark} drew in 60 s")
    return {"graph": graph, "problems": problems, "url": url, "screenshot": str(screenshot)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("html", type=Path, help="asv's published site (its html_dir)")
    p.add_argument("--benchmark", default=DEFAULT_BENCHMARK)
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="show the series with this parameter value, as asv writes it (method='clone')",
    )
    p.add_argument("--points", type=int, help="every series has exactly this many points")
    p.add_argument("--tag", action="append", default=[], help="a tag the graph must show")
    p.add_argument("--screenshot", type=Path, help="default: asv-site.png beside the site")
    args = p.parse_args(argv)
    if not (args.html / "index.html").is_file():
        print(f"check_asv_site: {args.html}: no asv site (index.html)", file=sys.stderr)
        return 2
    shot = args.screenshot or args.html.parent / "asv-site.png"
    try:
        result = check(args.html, args.benchmark, shot, args.param)
    except FileNotFoundError as e:
        print(f"check_asv_site: {e}", file=sys.stderr)
        return 2
    problems, graph = result["problems"], result["graph"] or {"series": [], "tags": []}
    counts = sorted({len(xs) for xs in graph["series"]})
    if args.points is not None and graph["series"] and counts != [args.points]:
        problems.append(f"series with {counts} points, not {args.points} each")
    for tag in args.tag:
        if tag not in graph["tags"]:
            problems.append(f"tag {tag!r} not on the graph (found: {graph['tags']})")
    for problem in problems:
        print(f"check_asv_site: {problem[:300]}", file=sys.stderr)
    print(
        f"check_asv_site: {'FAILED' if problems else 'ok'}: {result['url']}: "
        f"{len(graph['series'])} series, points per series {counts}, tags {graph['tags']}; "
        f"screenshot {result['screenshot']}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
