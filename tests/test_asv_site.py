"""asv's own site of copybench's results, as asv users meet it.

- ``copybench run`` files its results under asv's "installed" environment: named, and
  parametrised in asv's graphs, by the torch build (copybench.measure.asvenv);
- three real nights at one copybench commit are three points in asv's graph, with the torch
  build on its time axis (copybench.jobs.asvsite.publish_nights): checked in headless
  Chromium, the site served by asv's own ``asv preview``, offline (every script asv's page
  loads from a CDN is a local copy: a request to the network would fail here, and the
  check counts failed requests);
- ``copybench publish`` and ``copybench preview``, and their bad input.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from copybench.formats import nights, read_night, torch_build
from copybench.jobs.asvsite import SCRIPTS, _night_commits
from copybench.measure.asvrun import config_copy

ROOT = Path(__file__).resolve().parents[1]
BUILD = torch_build(torch.__version__, torch.version.cuda)
PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
CASES = ["--method", "clone", "--size", "1024", "--dtype", "float32"]
needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian's chromium"
)


@pytest.fixture(scope="module")
def three_nights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three nights of machine "alpha" at this one checkout's commit, run as the nightly
    runs them (each archives itself and publishes asv's site of the archive)."""
    tmp = tmp_path_factory.mktemp("three-nights")
    for _ in range(3):
        night = subprocess.run(
            [sys.executable, "-m", "copybench", "nightly", *CASES, "--machine", "alpha"]
            + ["--results", str(tmp / "results"), "--archive", str(tmp / "nightly")]
            + ["--html", str(tmp / "html")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert night.returncode == 0, night.stderr[-3000:]
    return tmp


def test_results_are_filed_under_the_torch_build(three_nights):
    (results,) = (three_nights / "results" / "alpha").glob("*-installed-*.json")
    assert results.name.endswith(f"-installed-py{PYTHON}-torch{BUILD}.json")
    data = json.loads(results.read_text())
    assert data["env_name"] == f"installed-py{PYTHON}-torch{BUILD}"
    assert data["requirements"] == {"torch": BUILD}
    # asv's graph parameters: the build, and the Python version rather than the path
    assert data["params"]["torch"] == BUILD and data["params"]["python"] == PYTHON


def test_three_nights_at_one_commit_are_three_points_in_asvs_graph(three_nights):
    found = nights(three_nights / "nightly")
    assert len(found) == 3 and len({read_night(n)["commit"] for n in found}) == 1
    index = json.loads((three_nights / "html" / "index.json").read_text())
    assert len(index["revision_to_hash"]) == 3  # one commit per night
    assert list(index["tags"]) == [f"torch-{BUILD}"]
    page = (three_nights / "html" / "index.html").read_text()
    assert not [url for url in SCRIPTS if url in page]  # every CDN file is a local copy
    if shutil.which("chromium") is None:
        pytest.skip("needs Debian's chromium")
    check = subprocess.run(
        [sys.executable, "scripts/check_asv_site.py", str(three_nights / "html")]
        + ["--param", "method='clone'", "--param", "numel=1024", "--param", "dtype='float32'"]
        + ["--param", "device='cpu'"]
        + ["--points", "3"]
        + ["--tag", f"torch-{BUILD}", "--screenshot", str(three_nights / "asv.png")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert check.returncode == 0, check.stderr + check.stdout
    assert "points per series [3]" in check.stdout


def test_a_torch_build_change_is_a_tag_and_every_night_a_commit(tmp_path):
    # The nights' repository alone, from records as the archive gives them: machine m1
    # changes builds on its third night; m2's first night has m1's first build.
    records = [
        {"stamp": s, "machine": m, "build": b, "commit": "c" * 40, "file": tmp_path / f"{s}.json"}
        for s, m, b in [
            ("20261128T010000Z", "m1", "2.13.0+cpu"),
            ("20261128T020000Z", "m2", "2.13.0+cpu"),
            ("20261129T010000Z", "m1", "2.13.0+cpu"),
            ("20261130T010000Z", "m1", "2.14.1+cu128"),
        ]
    ]
    repo = tmp_path / "repo"
    repo.mkdir()
    _night_commits(repo, records)

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()

    log = git("log", "--reverse", "--format=%H %cI %s").splitlines()
    assert [line.split()[0] for line in log] == [r["hash"] for r in records]
    assert [line.split()[1] for line in log][0] == "2026-11-28T01:00:00+00:00"
    assert "torch 2.14.1+cu128" in log[3]
    tags = {t: git("rev-list", "-n", "1", t) for t in git("tag").split()}
    assert tags == {
        "torch-2.13.0+cpu": records[0]["hash"],
        "torch-2.13.0+cpu-m2": records[1]["hash"],
        "torch-2.14.1+cu128": records[3]["hash"],
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_preview_publishes_and_serves_asvs_site(three_nights, tmp_path):
    config = config_copy(ROOT, three_nights / "results", tmp_path / "html", tmp_path)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "copybench", "preview", "--config", str(config)]
        + ["--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline, page = time.monotonic() + 120, None
        while page is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    page = r.read().decode()
            except OSError:
                time.sleep(0.5)
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert page is not None, err[-2000:]
    assert f"http://127.0.0.1:{port}/" in out
    assert "vendor/jquery@3.3.1/dist/jquery.min.js" in page and "code.jquery.com" not in page
    index = json.loads((tmp_path / "html" / "index.json").read_text())
    assert index["params"]["torch"] == [BUILD]  # the main job's site: a series per build


def test_publish_and_preview_refuse_bad_input(run_cli, tmp_path):
    config = config_copy(ROOT, tmp_path / "no-results", tmp_path / "html", tmp_path)
    for args in (["publish", "--config", str(config)], ["preview", "--port", "70000"]):
        got = run_cli(*args)
        assert got.returncode == 2, got
        assert len(got.stderr.strip().splitlines()) == 1 and got.stdout == ""
    assert re.search(
        r"no asv results to publish", run_cli("publish", "--config", str(config)).stderr
    )
