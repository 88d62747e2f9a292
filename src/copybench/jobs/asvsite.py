"""asv's own site of copybench's results: published, opened offline, and the nightly's
nights as a time series.

**Offline.**  asv's ``index.html`` loads jQuery, Flot, Bootstrap and three small plugins
from public CDNs, so on a machine without network its graphs never draw.  ``scripts/
setup.sh`` fetches exactly those files from the npm registry into the virtual environment
(:data:`SCRIPTS`, ``scripts/fetch_asv_scripts.py``); :func:`publish` runs ``asv publish``
and then points the page at copies of them beside it (:func:`use_local_scripts`).  Without
them (no npm at set-up) the page is left as asv wrote it, and :func:`publish` says that it
needs network.

**The nights as a time series.**  asv keys results by commit and environment, and draws
one point per commit of its repository.  Two nights at one copybench commit are one commit
to asv, so its site could not show the nightly over torch builds, and a second night at a
commit overwrote the first.  :func:`publish_nights` therefore publishes the nightly's
*archive* (every night kept, :func:`copybench.formats.archive_night`) against a repository
made for the purpose, in which each archived night is one commit:

- dated at the night (asv's time axis is then the nights');
- its message names the night, the machine, the torch build and copybench's commit;
- tagged ``torch-<build>`` where the machine's torch build changed (asv draws tags as
  labelled lines on its time axis: the build is on the graph);
- the night's results filed under that commit, in an environment named by the machine's
  Python alone (``nights-py3.11``), so that a machine's nights are one series whatever
  torch built them.

The repository is rebuilt from the archive at each publish (deterministically: the same
archive gives the same commits), so it needs no keeping.  A night is never overwritten: it
is its own commit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from copybench.formats import (
    ResultsError,
    atomic_write_text,
    nights,
    read_json,
    read_night,
    torch_build,
)
from copybench.measure.asvrun import checkout_config, config_copy, html_dir, results_dir

# asv's CDN scripts and stylesheet (its ``www/index.html``, asv 0.6), each as the npm
# package and the file in it that serves the same code.  cdnjs's stupidtable 1.0.1 is not
# on npm; 1.1.3 is the same plugin (``$.fn.stupidtable``), and Flot 0.8.3's npm package
# ships its plugins unminified.
SCRIPTS: dict[str, tuple[str, str]] = {
    "https://code.jquery.com/jquery-3.3.1.min.js": ("jquery@3.3.1", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js": (
        "flot@0.8.3",
        "jquery.flot.js",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js": (
        "flot@0.8.3",
        "jquery.flot.time.js",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js": (
        "flot@0.8.3",
        "jquery.flot.selection.js",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js": (
        "flot@0.8.3",
        "jquery.flot.categories.js",
    ),
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": (
        "flot-orderbars@1.0.0",
        "js/jquery.flot.orderBars.js",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js": (
        "stupid-table-plugin@1.1.3",
        "stupidtable.min.js",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js": (
        "blueimp-md5@2.19.0",
        "js/md5.min.js",
    ),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": (
        "bootstrap@3.1.1",
        "dist/js/bootstrap.min.js",
    ),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css": (
        "bootstrap@3.1.1",
        "dist/css/bootstrap.min.css",
    ),
}
# Files a vendored file loads in turn (Bootstrap's stylesheet, its icon fonts), by package.
_ALSO = {"bootstrap@3.1.1": ("dist/fonts",)}
# Where scripts/setup.sh puts the packages: <venv>/share/copybench/asv-www/<package>/.
SCRIPTS_HOME = Path(sys.prefix) / "share" / "copybench" / "asv-www"
# The folder beside asv's index.html the copies go to.
LOCAL = "vendor"


def package_dir(spec: str, home: Path = SCRIPTS_HOME) -> Path:
    """Where an npm package (``name@version``) of :data:`SCRIPTS` is unpacked."""
    return home / spec


def use_local_scripts(html: Path, home: Path = SCRIPTS_HOME) -> list[str]:
    """Point asv's published ``index.html`` in ``html`` at local copies of its CDN files
    (copied into ``html/vendor/``), where ``home`` holds them; return the addresses still
    loaded from the network (none where every file was there)."""
    index = html / "index.html"
    text = index.read_text()
    remote = []
    for url, (spec, path) in SCRIPTS.items():
        if url not in text:
            continue
        source = package_dir(spec, home) / path
        if not source.is_file():
            remote.append(url)
            continue
        local = Path(LOCAL) / spec / path
        (html / local).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, html / local)
        for extra in _ALSO.get(spec, ()):
            if (package_dir(spec, home) / extra).is_dir():
                shutil.copytree(
                    package_dir(spec, home) / extra, html / LOCAL / spec / extra, dirs_exist_ok=True
                )
        text = _relink(text, url, local.as_posix())
    atomic_write_text(index, text)
    return remote


def _relink(text: str, url: str, local: str) -> str:
    """The tag that loads ``url`` loading ``local`` instead, without the attributes that only
    a cross-origin load needs (``integrity``, ``crossorigin``, ``referrerpolicy``)."""

    def fix(m: re.Match) -> str:
        tag = m.group(0).replace(f'"{url}"', f'"{local}"')
        return re.sub(r'\s(?:integrity|crossorigin|referrerpolicy)="[^"]*"', "", tag)

    return re.sub(r"<(?:script|link)\b[^>]*\"" + re.escape(url) + r"\"[^>]*>", fix, text)


def publish(config: Path, root: Path, home: Path = SCRIPTS_HOME) -> list[str]:
    """``asv publish`` of ``config`` (run in ``root``), then :func:`use_local_scripts`; the
    addresses its page still loads from the network."""
    subprocess.run(
        [sys.executable, "-m", "asv", "publish", "--config", str(config)],
        cwd=root,
        check=True,
    )
    html = html_dir(config)
    remote = use_local_scripts(html, home)
    if remote:
        print(
            f"copybench: asv's page at {html / 'index.html'} loads {len(remote)} scripts from "
            "the network (run scripts/setup.sh where npm can reach its registry to keep "
            "copies)",
            file=sys.stderr,
        )
    return remote


def publish_results(config: Path | None = None) -> Path:
    """``copybench publish``: :func:`publish` of the project's results (or ``config``'s);
    asv's ``index.html``.  ResultsError where there are no results to publish."""
    root, config = checkout_config(config)
    results = results_dir(config)
    if not any(p.is_dir() for p in results.glob("*")):
        raise ResultsError(f"{results}: no asv results to publish (run copybench run first)")
    publish(config, root)
    return html_dir(config) / "index.html"


def serve(config: Path | None, port: int) -> None:
    """Become asv's own server (``asv preview``) over ``config``'s published site, on
    ``port``: this process is replaced by it (so that Ctrl-C or a signal stops the server
    itself), and never returns."""
    root, config = checkout_config(config)
    os.chdir(root)
    cmd = [sys.executable, "-m", "asv", "preview", "--config", str(config), "--port", str(port)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, cmd)


# --- the nights as a time series ---------------------------------------------------------------


def _git(repo: Path, *args: str, when: str | None = None) -> str:
    env = {
        "GIT_AUTHOR_NAME": "copybench nightly",
        "GIT_AUTHOR_EMAIL": "copybench-nightly@users.noreply.github.com",
        "GIT_COMMITTER_NAME": "copybench nightly",
        "GIT_COMMITTER_EMAIL": "copybench-nightly@users.noreply.github.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
    }
    if when:
        env.update(GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when)
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=env)
    if done.returncode:
        raise ResultsError(f"git {args[0]} failed: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


def _night_record(night: Path) -> dict[str, Any]:
    """What a night's commit is made of: its stamp, machine, build, copybench commit, Python
    version, and its results."""
    side = read_night(night)
    data = read_json(night, "a readable asv results file")
    if not isinstance(data, dict) or "results" not in data:
        raise ResultsError(f"{night}: not an asv results file")
    stamp = str(side.get("night") or "")
    if not re.fullmatch(r"\d{8}T\d{6}Z", stamp):
        raise ResultsError(f"{night}: its sidecar names no night (YYYYMMDDTHHMMSSZ)")
    python = str(side.get("python") or data.get("params", {}).get("python", ""))
    return {
        "file": night,
        "stamp": stamp,
        "machine": str(side.get("machine") or data.get("params", {}).get("machine", "unknown")),
        "build": torch_build(str(side.get("torch_version", "unknown")), side.get("cuda")),
        "commit": str(side.get("commit") or data.get("commit_hash", "unknown")),
        "python": ".".join(python.split(".")[:2]) if re.match(r"\d+\.\d+", python) else "",
        "asv": data,
    }


def _tag_name(build: str, taken: set[str], machine: str, stamp: str) -> str:
    """``torch-<build>``, or with the machine and then the night after it where taken."""
    for name in (f"torch-{build}", f"torch-{build}-{machine}", f"torch-{build}-{machine}-{stamp}"):
        name = re.sub(r"[^A-Za-z0-9._+@-]", "_", name).rstrip(".")
        if name not in taken:
            return name
    raise ResultsError(f"two nights of {machine} at {stamp}")


def _night_commits(repo: Path, records: list[dict[str, Any]]) -> None:
    """One commit per night, oldest first (each record gains its ``hash``), and a tag where
    a machine's torch build changed."""
    _git(repo, "init", "--quiet", "--initial-branch=main")
    last_build: dict[str, str] = {}
    tags: set[str] = set()
    for r in records:
        s = r["stamp"]
        when = f"{s[0:4]}-{s[4:6]}-{s[6:8]}T{s[9:11]}:{s[11:13]}:{s[13:15]}+00:00"
        message = (
            f"night {s} on {r['machine']}: torch {r['build']}, copybench {r['commit'][:12]}\n\n"
            f"archived as {r['file'].name}"
        )
        _git(repo, "commit", "--quiet", "--allow-empty", "-m", message, when=when)
        r["hash"] = _git(repo, "rev-parse", "HEAD")
        if last_build.get(r["machine"]) != r["build"]:
            tag = _tag_name(r["build"], tags, r["machine"], s)
            _git(repo, "tag", tag, when=when)
            tags.add(tag)
        last_build[r["machine"]] = r["build"]


def _filed(r: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A night's asv results, filed under its own commit: (file name, contents)."""
    data = dict(r["asv"])
    env_name = f"nights-py{r['python']}" if r["python"] else "nights"
    date = datetime.strptime(r["stamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    params = {k: v for k, v in dict(data.get("params", {})).items() if k != "torch"}
    params["python"] = r["python"]
    data.update(
        commit_hash=r["hash"],
        env_name=env_name,
        date=int(date.timestamp() * 1000),
        params=params,
        python=r["python"],
        requirements={},
        env_vars={},
    )
    return f"{r['hash'][:8]}-{env_name}.json", data


def publish_nights(
    root: Path, archive: Path, results: Path, html: Path, home: Path = SCRIPTS_HOME
) -> int:
    """asv's site of every night in ``archive`` (see the module's docstring), written to
    ``html``; the machines' ``machine.json`` from ``results``.  Returns the nights published;
    ResultsError where the archive holds none or a night is unreadable."""
    found = nights(archive)
    if not found:
        raise ResultsError(f"{archive}: no archived nights to publish")
    records = sorted((_night_record(n) for n in found), key=lambda r: (r["stamp"], r["machine"]))
    with tempfile.TemporaryDirectory(prefix="copybench-nights-") as tmp:
        repo, res = Path(tmp) / "nights", Path(tmp) / "results"
        repo.mkdir()
        _night_commits(repo, records)
        for machine in sorted({r["machine"] for r in records}):
            _machine_file(results, archive, machine, res / machine)
        for r in records:
            name, data = _filed(r)
            atomic_write_text(res / r["machine"] / name, json.dumps(data))
        if (archive / "benchmarks.json").is_file():
            shutil.copyfile(archive / "benchmarks.json", res / "benchmarks.json")
        config = config_copy(root, res, html, Path(tmp), repo=repo)
        conf = json.loads(config.read_text())
        conf.update(branches=["main"], show_commit_url="", project=f"{conf['project']} nights")
        atomic_write_text(config, json.dumps(conf, indent=2))
        publish(config, root, home)
    return len(records)


def _machine_file(results: Path, archive: Path, machine: str, into: Path) -> None:
    """A machine's ``machine.json``: the results folder's, else one made from the params of
    its newest archived night (asv needs one per machine folder)."""
    into.mkdir(parents=True, exist_ok=True)
    known = results / machine / "machine.json"
    if known.is_file():
        shutil.copyfile(known, into / "machine.json")
        return
    params: dict[str, Any] = {}
    for n in nights(archive, machine):
        params = dict(read_json(n, "a readable asv results file").get("params", {}))
    fields = ("arch", "cpu", "machine", "num_cpu", "os", "ram")
    entry = {k: str(params.get(k, "")) for k in fields} | {"machine": machine, "version": 1}
    atomic_write_text(into / "machine.json", json.dumps(entry))
