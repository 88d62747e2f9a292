"""The nightly regression run, the same steps on GitHub and on a workstation.

``python -m copybench.nightly`` (wrapped by ``scripts/nightly.sh`` and run by
``.github/workflows/nightly.yml``):

1. runs the asv suite against the installed torch with raw samples recorded
   (``asv run -E existing:same --record-samples``), into a results folder that persists;
2. archives that night's results file, with the torch version, git hash and date in its
   name and in its sidecar: asv keys results by commit and environment only, so a second
   night at the same commit would otherwise overwrite the first;
3. publishes asv's HTML;
4. compares the night with the previous archived night (``copybench compare``), prints the
   table and appends it as markdown to ``$GITHUB_STEP_SUMMARY`` (or ``--summary``);
5. re-runs every case that regressed, in fresh processes, ``--confirm`` times (default 2)
   and exits 1 only for the cases that regressed against the previous night every time.

Why step 5: a run's samples share that run's machine and allocator state, so no statistic
computed within one run can see a shift that moves a whole run.  On this project's 2-core
machine a 128 KiB clone ran 2.3 us in most runs and 4.3 us in about one in six - the same
code, a different heap layout.  A real regression reproduces in every fresh run; such
noise does not, three times in a row.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from .asvrun import Selection, config_copy, project_root, run_asv
from .results import ENV_SUFFIX, ResultsError, read_env_sidecar

if TYPE_CHECKING:
    import pandas as pd


def archive_night(results_file: Path, archive: Path) -> Path:
    """Copy a results file (and its sidecar) to ``archive`` under a name that sorts by date:
    ``<UTC date-time>-torch<version>-<commit>.json``."""
    side = read_env_sidecar(results_file)
    data = json.loads(results_file.read_text())
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    torch_version = str(side.get("torch_version", "unknown")).replace("+", "_")
    name = f"{stamp}-torch{torch_version}-{str(data.get('commit_hash', 'unknown'))[:8]}.json"
    archive.mkdir(parents=True, exist_ok=True)
    target = archive / name
    shutil.copyfile(results_file, target)
    side.update(night=stamp, commit=data.get("commit_hash"), asv_file=results_file.name)
    (archive / (name + ENV_SUFFIX)).write_text(json.dumps(side, indent=2, sort_keys=True))
    bench_meta = results_file.parent.parent / "benchmarks.json"
    if bench_meta.is_file():  # lets the archive be read on its own (parameter names)
        shutil.copyfile(bench_meta, archive / "benchmarks.json")
    return target


def nights(archive: Path) -> list[Path]:
    """Archived nights, oldest first."""
    if not archive.is_dir():
        return []
    return sorted(p for p in archive.glob("*.json") if p.name != "benchmarks.json")


def publish(config: Path, root: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "asv", "publish", "--config", str(config)], cwd=root, check=True
    )


def compare_nights(
    previous: Path, tonight: Path, threshold: float, alpha: float, summary: Path | None
) -> list[str]:
    """Print the comparison, append its markdown to ``summary``; return the asv names of
    the cases that regressed."""
    from .compare import compare, load_pair, render

    base, head = load_pair(previous, tonight)
    table = compare(base, head, threshold=threshold, alpha=alpha)
    print(render(table, "text", threshold=threshold, alpha=alpha))
    _append(summary, render(table, "markdown", threshold=threshold, alpha=alpha))
    return _regressed(table)


def _regressed(table: pd.DataFrame) -> list[str]:
    return sorted(str(n) for n in table.loc[table["verdict"] == "regressed", "asv_name"])


def confirm(
    previous: Path,
    regressed: list[str],
    root: Path,
    rounds: int,
    threshold: float,
    alpha: float,
    summary: Path | None,
) -> list[str]:
    """Re-run exactly the ``regressed`` cases ``rounds`` times, each into a fresh results
    folder, and return those that regressed against ``previous`` every time."""
    import re

    from .compare import compare, load_pair

    still = list(regressed)
    for i in range(1, rounds + 1):
        if not still:
            break
        with tempfile.TemporaryDirectory(prefix="copybench-confirm-") as tmp:
            config = config_copy(root, Path(tmp) / "results", Path(tmp) / "html", Path(tmp))
            benches = ["^" + re.escape(name) + "$" for name in still]
            rerun = run_asv(Selection(), config=config, benches=benches)
            base, head = load_pair(previous, rerun)
            table = compare(base, head, threshold=threshold, alpha=alpha)
        again = set(_regressed(table))
        gone = [n for n in still if n not in again]
        still = [n for n in still if n in again]
        text = (
            f"copybench nightly: confirmation {i}/{rounds}: {len(still)} regression(s) "
            f"reproduced, {len(gone)} did not" + "".join(f"\n- not reproduced: `{n}`" for n in gone)
        )
        print(text)
        _append(summary, text)
    return still


def _append(summary: Path | None, text: str) -> None:
    if summary is not None:
        with summary.open("a") as f:
            f.write(text + "\n\n")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m copybench.nightly", description=__doc__)
    p.add_argument("--results", type=Path, default=Path(".asv/results"), help="asv results")
    p.add_argument("--archive", type=Path, default=Path(".asv/nightly"), help="one file per night")
    p.add_argument("--html", type=Path, default=Path(".asv/html"), help="asv publish output")
    p.add_argument("--method", action="append", default=[], help="narrow the run (repeatable)")
    p.add_argument("--size", action="append", default=[], type=int, help="narrow the run")
    p.add_argument("--dtype", action="append", default=[])
    p.add_argument("--model", action="append", default=[])
    p.add_argument("--device", action="append", default=[])
    p.add_argument("--threshold", type=float, default=0.05)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument(
        "--summary",
        type=Path,
        default=Path(os.environ["GITHUB_STEP_SUMMARY"])
        if os.environ.get("GITHUB_STEP_SUMMARY")
        else None,
        help="file to append the markdown table to (default: $GITHUB_STEP_SUMMARY)",
    )
    p.add_argument("--no-publish", action="store_true", help="skip asv publish")
    p.add_argument(
        "--confirm",
        type=int,
        default=2,
        metavar="N",
        help="re-run regressed cases N times in fresh processes; fail only on those that "
        "regress every time (default 2; 0 fails on the first comparison)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = project_root()
    sel = Selection(
        methods=args.method,
        sizes=args.size,
        dtypes=args.dtype,
        models=args.model,
        devices=args.device or ["cpu"],
    )
    try:
        with tempfile.TemporaryDirectory(prefix="copybench-nightly-") as tmp:
            config = config_copy(root, args.results, args.html, Path(tmp))
            before = nights(args.archive)
            results_file = run_asv(sel, config=config, extra=["--record-samples"])
            tonight = archive_night(results_file, args.archive)
            print(f"copybench nightly: results archived as {tonight}")
            if not args.no_publish:
                publish(config, root)
        if not before:
            text = f"copybench nightly: first night ({tonight.name}); nothing to compare yet."
            print(text)
            _append(args.summary, text)
            return 0
        print(f"copybench nightly: comparing {before[-1].name} -> {tonight.name}")
        regressed = compare_nights(before[-1], tonight, args.threshold, args.alpha, args.summary)
        confirmed = confirm(
            before[-1], regressed, root, args.confirm, args.threshold, args.alpha, args.summary
        )
        for name in confirmed:
            print(f"copybench nightly: regressed: {name}", file=sys.stderr)
        return 1 if confirmed else 0
    except ResultsError as e:
        print(f"copybench nightly: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f"copybench nightly: {' '.join(map(str, e.cmd[:5]))} ... failed", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
