#!/usr/bin/env python3
"""Keep copies of the scripts asv's page loads from CDNs, so that its graphs draw offline.

Fetches each npm package of :data:`copybench.jobs.asvsite.SCRIPTS` with ``npm pack`` (the
registry npm is configured for) and unpacks it into ``<venv>/share/copybench/asv-www/``,
where ``copybench publish`` copies what asv's page needs.  Run by ``scripts/setup.sh``;
quick when every package is there.  Without npm, or where its registry cannot be reached,
it says so in one line and exits 0: asv's page then loads them from the network.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from copybench.jobs.asvsite import SCRIPTS, SCRIPTS_HOME, package_dir


def fetch(spec: str, home: Path) -> None:
    """``npm pack spec``, unpacked into :func:`package_dir` (its ``package/`` folder)."""
    target = package_dir(spec, home)
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            ["npm", "pack", "--silent", "--pack-destination", tmp, spec],
            capture_output=True,
            text=True,
            timeout=300,
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode or len(tarballs) != 1:
            raise RuntimeError(f"npm pack {spec}: {done.stderr.strip()[-200:] or 'no tarball'}")
        with tarfile.open(tarballs[0]) as t:
            t.extractall(tmp, filter="data")
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.move(Path(tmp) / "package", partial)
        partial.rename(target)  # whole or not at all


def main() -> int:
    wanted = sorted({spec for spec, _ in SCRIPTS.values()})
    missing = [s for s in wanted if not package_dir(s).is_dir()]
    if not missing:
        return 0
    if shutil.which("npm") is None:
        print(
            "copybench: no npm; asv's page will load its scripts from the network",
            file=sys.stderr,
        )
        return 0
    SCRIPTS_HOME.mkdir(parents=True, exist_ok=True)
    try:
        for spec in missing:
            fetch(spec, SCRIPTS_HOME)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"copybench: {e}; asv's page will load its scripts from the network", file=sys.stderr)
        return 0
    print(f"copybench: asv's page scripts kept in {SCRIPTS_HOME}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
