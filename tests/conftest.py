from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


# The files whose fixtures run for a minute or more (nights, asv runs, Valgrind) go first,
# so that under ``pytest -n 2 --dist loadfile`` (scripts/test.sh) the short files fill in
# around them rather than one long file running alone at the end.
LONG_FIRST = (
    "test_nightly.py",
    "test_asv_site.py",
    "test_report.py",
    "test_instructions.py",
    "test_compare.py",
    "test_paired.py",
)


def pytest_configure(config: pytest.Config) -> None:
    # Under xdist each worker gets a home of its own: asv keeps its machine file in
    # ~/.asv-machine.json and rewrites it in place on every `asv machine --yes`, which two
    # workers' asv runs must not do under each other's feet.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and not hasattr(config, "_copybench_home"):
        home = tempfile.mkdtemp(prefix=f"copybench-test-home-{worker}-")
        os.environ.setdefault("MPLCONFIGDIR", os.path.expanduser("~/.config/matplotlib"))
        os.environ["HOME"] = home
        config._copybench_home = home  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    home = getattr(config, "_copybench_home", None)
    if home:
        shutil.rmtree(home, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONG_FIRST.index(name) if name in LONG_FIRST else len(LONG_FIRST)

    items.sort(key=rank)  # stable: the order within a file stays


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def _run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run ``copybench``'s ``main`` in this process, as the entry point does
    (``sys.exit(main())``): its real exit status and what it printed.

    In this process, not a fresh interpreter: a fresh one spends 3 s importing torch, and
    the CLI tests make some forty calls.  The commands run this way read, check and print;
    the ones that measure start their own workers.  ``test_cli`` runs the installed entry
    point in a fresh interpreter too.
    """
    out, err = io.StringIO(), io.StringIO()
    from copybench.cli import main

    old = os.getcwd()
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(list(args))
            except SystemExit as e:  # argparse's usage errors
                status = 0 if e.code is None else e.code if isinstance(e.code, int) else 1
    finally:
        os.chdir(old)
    return subprocess.CompletedProcess(
        [sys.executable, "-m", "copybench", *args], status, out.getvalue(), err.getvalue()
    )


@pytest.fixture(scope="session")
def run_cli():
    return _run_cli
