"""The nightly's durable history: every night's archive and asv results, kept in a branch
of a git repository (committed and pushed each night, restored before the next), not in
a cache that expires.  Runners of a matrix push to one branch, each its own machine's files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from copybench.formats import nights

HISTORY_BRANCH = "copybench-results"


class HistoryError(RuntimeError):
    """The history repository could not be read or written."""


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    env.setdefault("GIT_AUTHOR_NAME", "copybench nightly")
    env.setdefault("GIT_AUTHOR_EMAIL", "copybench-nightly@users.noreply.github.com")
    env.setdefault("GIT_COMMITTER_NAME", env["GIT_AUTHOR_NAME"])
    env.setdefault("GIT_COMMITTER_EMAIL", env["GIT_AUTHOR_EMAIL"])
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if done.returncode:
        raise HistoryError(f"git {args[0]} failed: {done.stderr.strip()[-300:]}")
    return done


def _checkout_history(repo: str, branch: str, into: Path) -> bool:
    """Clone ``branch`` of ``repo`` into ``into``; False (an empty repository there, on an
    orphan ``branch``) when the branch does not exist yet."""
    remote = _git("ls-remote", "--heads", repo, branch).stdout.strip()
    if remote:
        _git("clone", "--quiet", "--depth", "1", "--branch", branch, repo, str(into))
        return True
    into.mkdir(parents=True)
    _git("init", "--quiet", cwd=into)
    _git("checkout", "--quiet", "--orphan", branch, cwd=into)
    _git("remote", "add", "origin", repo, cwd=into)
    return False


def copy_tree(src: Path, dst: Path, replace: bool = False) -> None:
    """Copy files of ``src`` that ``dst`` lacks (a night's files never change once
    written, except asv's per-machine index files, which the newer copy replaces);
    ``replace``: every file of ``src`` replaces its namesake."""
    for f in src.rglob("*"):
        if f.is_file() and ".git" not in f.relative_to(src).parts:
            t = dst / f.relative_to(src)
            if replace or not t.exists() or f.name in ("machine.json", "benchmarks.json"):
                t.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, t)


def restore_history(repo: str, branch: str, results: Path, archive: Path) -> int:
    """Bring the branch's nights into ``archive`` and its asv results into ``results``;
    return how many nights the history held (0: empty or no branch yet)."""
    with tempfile.TemporaryDirectory(prefix="copybench-history-") as tmp:
        work = Path(tmp) / "history"
        if not _checkout_history(repo, branch, work):
            return 0
        if (work / "nightly").is_dir():
            copy_tree(work / "nightly", archive)
        if (work / "results").is_dir():
            copy_tree(work / "results", results)
        return len(nights(work / "nightly"))


def save_history(
    repo: str, branch: str, results: Path, archive: Path, message: str, tries: int = 3
) -> None:
    """Commit the archive and the asv results to ``branch`` of ``repo`` and push; runners
    of a matrix push to one branch, each its own machine's files, so a rejected push is
    retried on top of the others' commits."""
    with tempfile.TemporaryDirectory(prefix="copybench-history-") as tmp:
        work = Path(tmp) / "history"
        _checkout_history(repo, branch, work)
        for attempt in range(tries):
            copy_tree(archive, work / "nightly")
            copy_tree(results, work / "results")
            _git("add", "--all", cwd=work)
            if _git("status", "--porcelain", cwd=work).stdout.strip():
                _git("commit", "--quiet", "-m", message, cwd=work)
            try:
                _git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
                return
            except HistoryError:
                if attempt == tries - 1:
                    raise
                _git("fetch", "--quiet", "origin", branch, cwd=work)
                _git("rebase", "--quiet", f"origin/{branch}", cwd=work)
