"""The nightly regression run, the same steps on GitHub and on a workstation.

``python -m copybench.nightly`` (wrapped by ``scripts/nightly.sh`` and run by
``.github/workflows/nightly.yml``):

1. runs the asv suite against the installed torch with raw samples recorded
   (``asv run -E existing:same --record-samples``), into a results folder that persists:
   the history behind asv's plots;
2. archives that night's results file, with the torch version, git hash and date in its
   name and in its sidecar: asv keys results by commit and environment only, so a second
   night at the same commit would otherwise overwrite the first;
3. publishes asv's HTML;
4. sets the night beside the previous archived night (``copybench compare``), for the
   record: two runs hours apart get no verdict on wall time (see :mod:`copybench.compare`);
5. **gates**: with ``--baseline-python`` (an interpreter with the baseline torch: the
   previous night's build or a pinned release), ``copybench gate`` times the gate
   selection in both, interleaved in fresh processes, and counts both sides'
   instructions where valgrind is available; the night fails on the cases that regressed
   there, and names them.  The gate's results are archived beside the night's
   (``<night>.gate.json``).  Whatever the machine does during the gate hits
   both sides alike; the statistics take the process as the unit (:mod:`copybench.gate`).
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
from .cases import CaseError
from .cli import UsageError
from .results import ENV_SUFFIX, ResultsError, read_env_sidecar
from .workers import WorkerError

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


# Beside a night's asv results, the gate's results (``copybench compare`` reads them alone).
GATE_SUFFIX = ".gate.json"


def nights(archive: Path) -> list[Path]:
    """Archived nights (their asv results files), oldest first."""
    if not archive.is_dir():
        return []
    return sorted(
        p
        for p in archive.glob("*.json")
        if p.name != "benchmarks.json" and not p.name.endswith(GATE_SUFFIX)
    )


def publish(config: Path, root: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "asv", "publish", "--config", str(config)], cwd=root, check=True
    )


def compare_nights(
    previous: Path, tonight: Path, threshold: float, alpha: float, summary: Path | None
) -> list[str]:
    """Print the comparison, append its markdown to ``summary``; return the asv names of
    the cases that regressed (instruction counts only: wall time across runs gets no
    verdict)."""
    from .compare import compare, load_pair, render

    base, head = load_pair(previous, tonight)
    table = compare(base, head, threshold=threshold, alpha=alpha)
    print(render(table, "text", threshold=threshold, alpha=alpha))
    _append(summary, render(table, "markdown", threshold=threshold, alpha=alpha))
    return _regressed(table)


def _regressed(table: pd.DataFrame) -> list[str]:
    return sorted(str(n) for n in table.loc[table["verdict"] == "regressed", "asv_name"])


def gate(
    baseline: str,
    baseline_env: dict[str, str],
    sel: Selection,
    processes: int,
    threshold: float,
    alpha: float,
    summary: Path | None,
    instructions: bool = False,
    out: Path | None = None,
    budget: float | None = None,
) -> list[str]:
    """Time the gate selection (narrowed like the night's run) in ``baseline`` and in this
    interpreter, interleaved (and count both sides' instructions); write the gate results
    to ``out``; print and record the table; return the regressed cases."""
    from .compare import compare_gate, render
    from .gate import DEFAULT_BUDGET, Side, gate_cases, run_gate
    from .results import atomic_write_text

    cases = gate_cases(sel.methods or None, sel.sizes or None, sel.models or None)
    data = run_gate(
        Side("base", baseline, baseline_env),
        Side("head"),
        cases,
        processes,
        DEFAULT_BUDGET if budget is None else budget,
        log=sys.stderr,
        instructions=instructions,
    )
    if out is not None:
        atomic_write_text(out, json.dumps(data))
        print(f"copybench nightly: gate results written to {out}")
    table = compare_gate(data, threshold=threshold, alpha=alpha)
    print(render(table, "text", threshold=threshold, alpha=alpha))
    _append(summary, render(table, "markdown", threshold=threshold, alpha=alpha))
    return sorted(table.loc[table["verdict"] == "regressed", "case"])


def _append(summary: Path | None, text: str) -> None:
    if summary is not None:
        with summary.open("a") as f:
            f.write(text + "\n\n")


def _parser() -> argparse.ArgumentParser:
    from .gate import DEFAULT_BUDGET, DEFAULT_THRESHOLD, instruction_option

    p = argparse.ArgumentParser(prog="python -m copybench.nightly", description=__doc__)
    p.add_argument("--results", type=Path, default=Path(".asv/results"), help="asv results")
    p.add_argument("--archive", type=Path, default=Path(".asv/nightly"), help="one file per night")
    p.add_argument("--html", type=Path, default=Path(".asv/html"), help="asv publish output")
    p.add_argument("--method", action="append", default=[], help="narrow the run (repeatable)")
    p.add_argument("--size", action="append", default=[], type=int, help="narrow the run")
    p.add_argument("--dtype", action="append", default=[])
    p.add_argument("--model", action="append", default=[])
    p.add_argument("--device", action="append", default=[])
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
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
        "--baseline-python",
        metavar="PYTHON",
        help="interpreter with the baseline torch; the night is gated against it "
        "(without it the night is recorded, not gated)",
    )
    p.add_argument(
        "--baseline-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment of the baseline's processes (KEY= removes KEY); repeatable",
    )
    p.add_argument(
        "--processes",
        type=int,
        default=12,
        help="gate rounds: fresh processes per side (default 12)",
    )
    p.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET,
        help=f"gate: seconds per case in each process (default {DEFAULT_BUDGET:g})",
    )
    instruction_option(p)
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
        failed: list[str] = []
        if before:
            print(f"copybench nightly: {before[-1].name} -> {tonight.name} (across runs)")
            failed += compare_nights(before[-1], tonight, args.threshold, args.alpha, args.summary)
        else:
            text = f"copybench nightly: first night ({tonight.name}); nothing to set beside it."
            print(text)
            _append(args.summary, text)
        if args.baseline_python:
            from .gate import _env_pairs, want_instructions

            failed += gate(
                args.baseline_python,
                _env_pairs(args.baseline_env),
                sel,
                args.processes,
                args.threshold,
                args.alpha,
                args.summary,
                instructions=want_instructions(args.instructions),
                out=tonight.with_name(tonight.stem + GATE_SUFFIX),
                budget=args.budget,
            )
        else:
            text = "copybench nightly: no --baseline-python: recorded, not gated."
            print(text)
            _append(args.summary, text)
        for name in failed:
            print(f"copybench nightly: regressed: {name}", file=sys.stderr)
        return 1 if failed else 0
    except (ResultsError, CaseError, UsageError, WorkerError) as e:
        print(f"copybench nightly: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f"copybench nightly: {' '.join(map(str, e.cmd[:5]))} ... failed", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
