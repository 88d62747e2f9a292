"""The nightly regression run, the same steps on GitHub and on a workstation.

``python -m copybench.nightly`` (wrapped by ``scripts/nightly.sh`` and run by
``.github/workflows/nightly.yml``):

1. runs the asv suite against the installed torch with raw samples recorded
   (``asv run --python=same --record-samples``), into a results folder that persists;
2. archives that night's results file, with the torch version, git hash and date in its
   name and in its sidecar: asv keys results by commit and environment only, so a second
   night at the same commit would otherwise overwrite the first;
3. publishes asv's HTML;
4. compares the night with the previous archived night (``copybench compare``), prints the
   table, appends it as markdown to ``$GITHUB_STEP_SUMMARY`` (or ``--summary``), and exits 1
   when something regressed.
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

from .asvrun import Selection, project_root, run_asv, strip_json_comments
from .results import ENV_SUFFIX, ResultsError, read_env_sidecar


def asv_config(root: Path, results: Path, html: Path, folder: Path) -> Path:
    """A copy of the project's asv.conf.json whose results and HTML go where the nightly
    keeps them (absolute paths, so the copy can live anywhere)."""
    conf = json.loads(strip_json_comments((root / "asv.conf.json").read_text()))
    conf.update(
        repo=str(root),
        benchmark_dir=str(root / conf.get("benchmark_dir", "benchmarks")),
        env_dir=str(root / conf.get("env_dir", "env")),
        results_dir=str(results.resolve()),
        html_dir=str(html.resolve()),
    )
    target = folder / "asv.conf.json"
    target.write_text(json.dumps(conf, indent=2))
    return target


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
) -> int:
    """Print the comparison, append its markdown to ``summary``; 1 if anything regressed."""
    from .compare import compare, load_pair, render

    base, head = load_pair(previous, tonight)
    table = compare(base, head, threshold=threshold, alpha=alpha)
    print(render(table, "text", threshold=threshold, alpha=alpha))
    _append(summary, render(table, "markdown", threshold=threshold, alpha=alpha))
    return 1 if (table["verdict"] == "regressed").any() else 0


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
            config = asv_config(root, args.results, args.html, Path(tmp))
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
        return compare_nights(before[-1], tonight, args.threshold, args.alpha, args.summary)
    except ResultsError as e:
        print(f"copybench nightly: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f"copybench nightly: {' '.join(map(str, e.cmd[:5]))} ... failed", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
