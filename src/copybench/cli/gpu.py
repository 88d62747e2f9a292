"""``copybench gpu-figures`` and ``copybench gpu-check``: the GPU."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from copybench.cli.options import add_command


def register(sub: argparse._SubParsersAction) -> None:
    _gpu_figures(sub)
    _gpu_check(sub)


def _gpu_figures(sub: argparse._SubParsersAction) -> None:
    from copybench.measure.gpu import DEFAULT_PROCESSES, OVERHEAD_BUDGET

    s = add_command(
        sub,
        "gpu-figures",
        help="measure the README's GPU figures on this machine's GPU (fresh processes)",
        description="Measure the README's GPU figures in fresh worker processes run one after "
        "another: device-to-device bandwidth of clone() and of copy_ into a buffer (256 MiB), "
        "the tracked-clone overhead at 4 KiB and 4 MiB timed by CUDA events and by the host "
        "clock with a sync per call, host-to-device copies from pageable and pinned memory "
        "with and without non_blocking, and the GPU peak memory of a model's deepcopy "
        "against load_state_dict. Prints the README's markdown; needs a CUDA GPU. About 75 s "
        "with the defaults on an H100 (progress on stderr).",
        examples=[
            "copybench gpu-figures",
            "copybench gpu-figures --processes 3 --json figures.json > figures.md",
        ],
    )
    s.add_argument(
        "--processes",
        type=int,
        default=DEFAULT_PROCESSES,
        help=f"fresh worker processes (default {DEFAULT_PROCESSES})",
    )
    s.add_argument(
        "--budget",
        type=float,
        default=OVERHEAD_BUDGET,
        help="seconds of paired measurement per size and timer in each process "
        f"(default {OVERHEAD_BUDGET:g})",
    )
    s.add_argument("--json", metavar="FILE", help="also write the raw figures here as JSON")
    s.set_defaults(func=cmd_gpu_figures)


def _gpu_check(sub: argparse._SubParsersAction) -> None:
    from copybench.jobs.gpucheck import DEFAULT_DEADLINE

    s = add_command(
        sub,
        "gpu-check",
        help="the GPU check's steps, bounded in time (scripts/gpu_check.sh calls this)",
        description="Run the GPU check's steps one after another, each in its own process "
        "group with its own time limit, all within --deadline seconds: device information, "
        "the CUDA tests, the semantics on CUDA, the GPU figures, a CUDA subset of the asv "
        "suite in four chunks, and the report of those results, written under OUTPUT_DIR "
        "with a log per step. steps.json, rewritten after every step, says what ran and how "
        "it ended, so a check cut short keeps what it measured. Needs a CUDA GPU; about 3 "
        "minutes on an H100, never more than --deadline (a line on stderr as each step "
        "starts and ends). scripts/gpu_check.sh prepares the interpreter and calls this.",
        examples=[
            "bash scripts/gpu_check.sh OUTPUT_DIR WHEEL_DIR   # prepares, then runs this",
            "copybench gpu-check /tmp/gpu-check --deadline 300",
        ],
    )
    s.add_argument("out", metavar="OUTPUT_DIR", help="where the check writes what it measured")
    s.add_argument(
        "--deadline",
        type=float,
        default=DEFAULT_DEADLINE,
        help=f"seconds for all steps together (default {DEFAULT_DEADLINE:g})",
    )
    s.add_argument(
        "--processes", type=int, default=6, help="fresh processes for gpu-figures (default 6)"
    )
    s.add_argument(
        "--installed",
        metavar="DIR",
        type=Path,
        help="the folder scripts/gpu_check.sh installed the check's packages into: "
        "versions.txt lists them",
    )
    s.add_argument(
        "--wheels", metavar="DIR", type=Path, help="the wheel folder they were installed from"
    )
    s.set_defaults(func=cmd_gpu_check)


def cmd_gpu_figures(args: argparse.Namespace) -> int:
    from copybench.jobs.gpucheck import gpu_figures

    json_path = Path(args.json) if args.json else None
    print(gpu_figures(args.processes, args.budget, json_path, log=sys.stderr))
    return 0


def cmd_gpu_check(args: argparse.Namespace) -> int:
    from copybench.jobs.gpucheck import run_check

    return run_check(Path(args.out), args.deadline, args.processes, args.installed, args.wheels)
