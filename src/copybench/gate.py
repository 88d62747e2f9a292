"""``copybench gate``: base and head timed side by side, in alternating fresh processes.

The regression gate of the nightly and of ``copybench compare`` on its results.  Why not
compare two runs, or the samples of one process each:

- **The process is the unit.** A fresh process lands in a state (memory placement, the
  allocator's history) that holds for its whole life and moved a small copy by up to 2x
  on this project's machine; thousands of samples from one process are one observation of
  that state, and a p-value over them is not a p-value (pooled samples gave p ~ 1e-284
  for two runs of the same code).
- **Time is a confounder.** The same code ran 2x slower half an hour later.  So the two
  sides run *interleaved*: process ``i`` of base and process ``i`` of head run back to back
  (base first in even rounds, head first in odd ones), and each round gives one paired
  ratio, head over base, of the processes' medians.

A case's verdict then rests on ``n`` paired ratios: the estimate is their median, with a
distribution-free CI from order statistics; the test is the sign test (how many rounds
head was slower), Holm-adjusted over the cases.  Under A/A the two processes of a round
are exchangeable, so each ratio is as likely above 1 as below, whatever the machine does:
the chance that any case comes out significant is at most ``alpha``, without assuming a
distribution.  "regressed" needs that *and* the whole CI beyond ``1 + threshold``.  With
too few rounds for the sign test to ever reach ``alpha`` over this many cases, the
verdict is "too few processes", never "regressed".

Each side is an interpreter (``--base-python``, ``--head-python``: two torch builds, two
checkouts) with an environment of its own (``--base-env``, ``--head-env`` KEY=VALUE).

Where wall time cannot resolve a change (a 30% slower ``Tensor.clone`` at 4 KiB drowns in
the spread between processes on a shared 2-core machine), instruction counts can: with
callgrind available (``--instructions``, the default there), each side also counts the
instructions per call of the gate's tensor methods at 32 and 1,024 elements, from a source
that requires grad (:mod:`copybench.instructions`: one Valgrind process per side, the two
run at the same time since a count does not depend on the neighbours).  Counts repeat
exactly, so those rows are judged by the threshold alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .progress import Progress

FORMAT = "copybench-gate/1"
DEFAULT_PROCESSES = 12
DEFAULT_BUDGET = 0.1  # seconds of timed blocks per case in each process
DEFAULT_THRESHOLD = 0.05  # a change smaller than this is "unchanged"
BLOCK_SECONDS = 0.001


@dataclass
class Side:
    """One side of the comparison: an interpreter and the environment it runs in."""

    name: str
    python: str = sys.executable
    env: dict[str, str] = field(default_factory=dict)

    def environ(self) -> dict[str, str]:
        out = dict(os.environ)
        for k, v in self.env.items():
            if v == "":
                out.pop(k, None)
            else:
                out[k] = v
        return out


def gate_cases(
    methods: list[str] | None = None,
    sizes: list[int] | None = None,
    models: list[str] | None = None,
    dtype: str = "float32",
) -> list[dict[str, Any]]:
    """Case specs (JSON-able) for the gate: tensor cases, requires_grad both ways,
    contiguous, CPU, 1 thread; module cases on the CPU.  Defaults: the gate selection."""
    from .cases import (
        DEFAULT_THREADS,
        GATE_METHODS,
        GATE_MODELS,
        GATE_MODULE_METHODS,
        GATE_SIZES,
        SIZES,
        CaseError,
        check_model,
        check_size,
    )
    from .methods import get_method

    methods = methods or [*GATE_METHODS, *GATE_MODULE_METHODS]
    out: list[dict[str, Any]] = []
    for name in methods:
        m = get_method(name)
        if m.kind == "tensor":
            for numel in sizes or GATE_SIZES:
                check_size(numel, SIZES)
                for grad in (False, True):
                    out.append(
                        {
                            "kind": "tensor",
                            "args": [name, numel, dtype, grad, "contiguous", "cpu"],
                            "threads": DEFAULT_THREADS,
                        }
                    )
        elif m.kind == "module":
            for model in models or GATE_MODELS:
                check_model(model)
                out.append({"kind": "module", "args": [name, model, "cpu"], "threads": 1})
        else:
            raise CaseError(f"{name!r} is a device transfer: the gate times CPU copies")
    return out


def case_id(spec: dict[str, Any]) -> str:
    from .cases import ModuleCase, TensorCase

    if spec["kind"] == "tensor":
        return TensorCase(*spec["args"], spec["threads"]).id
    return ModuleCase(*spec["args"], spec["threads"]).id


# --- one process -------------------------------------------------------------------------------


def measure_process(spec: dict[str, Any]) -> dict[str, Any]:
    """Every case of ``spec``, in this process: per-call seconds of each timed block."""
    import torch

    from .cases import CaseError
    from .prepare import prepare_module_case, prepare_tensor_case, slowed_down_methods
    from .timing import time_block

    out: dict[str, Any] = {
        "pid": os.getpid(),
        "torch": torch.__version__,
        "slowed_down": slowed_down_methods(),
        "cases": {},
        "skipped": {},
    }
    for c in spec["cases"]:
        prepare = prepare_tensor_case if c["kind"] == "tensor" else prepare_module_case
        try:
            case = prepare(*c["args"], c["threads"])
        except CaseError as e:
            out["skipped"][case_id(c)] = str(e)
            continue
        n = 1
        while time_block(case.run, n) < BLOCK_SECONDS and n < 1 << 20:
            n *= 2
        blocks = []
        end = time.perf_counter() + spec["budget"]
        while len(blocks) < 5 or time.perf_counter() < end:
            blocks.append(time_block(case.run, n) / n)
        out["cases"][case_id(c)] = blocks
    return out


# --- interleaved runs --------------------------------------------------------------------------


def run_gate(
    base: Side,
    head: Side,
    cases: list[dict[str, Any]],
    processes: int = DEFAULT_PROCESSES,
    budget: float = DEFAULT_BUDGET,
    log: Any = None,
    instructions: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """``processes`` rounds; in each, one fresh process per side, back to back, the order
    alternating; then, with ``instructions``, both sides' instruction counts (see
    :func:`count_sides`).  Returns the results (see :func:`copybench.compare` for the
    verdicts).  Progress on the stream ``log``, one step per round; or, where given, on
    ``progress`` (the A/A study counts the rounds of all its gates on one)."""
    from .progress import Progress, note
    from .workers import run_worker

    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    spec = {"cases": cases, "budget": budget}
    rounds = []
    with (
        Progress("copybench gate: round", processes, log)
        if progress is None
        else contextlib.nullcontext(progress)
    ) as steps:
        for i in range(processes):
            order = (base, head) if i % 2 == 0 else (head, base)
            got = {}
            for side in order:
                got[side.name] = run_worker(
                    "copybench.gate", spec, python=side.python, env=side.environ(), timeout=600
                )
            rounds.append({"order": [s.name for s in order], **got})
            steps.step()
    out = {
        "format": FORMAT,
        "sides": {
            s.name: {"python": s.python, "env": s.env, "torch": rounds[0][s.name]["torch"]}
            for s in (base, head)
        },
        "budget": budget,
        "rounds": rounds,
    }
    if instructions:
        note("copybench gate: counting instructions (callgrind)", log)
        out["instructions"] = count_sides(base, head, cases)
    return out


def instruction_methods(cases: list[dict[str, Any]]) -> list[str]:
    """The tensor methods among the gate's cases, in order."""
    return list(dict.fromkeys(c["args"][0] for c in cases if c["kind"] == "tensor"))


def count_sides(base: Side, head: Side, cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Instructions per call of the cases' tensor methods at the instruction sizes, in each
    side's interpreter and environment: ``{"base": {case: n}, "head": {case: n}}``.  The
    two Valgrind processes run at the same time (each is deterministic, see
    :mod:`copybench.instructions`); the rounds of wall time are over by then."""
    from concurrent.futures import ThreadPoolExecutor

    from .cases import DEFAULT_THREADS, INSTRUCTION_SIZES, TensorCase
    from .instructions import count_instructions

    methods = instruction_methods(cases)
    if not methods:
        return {"base": {}, "head": {}}
    dtype = next(c["args"][2] for c in cases if c["kind"] == "tensor")

    def count(side: Side) -> dict[str, float]:
        from .workers import WorkerError

        try:
            got = count_instructions(
                methods, INSTRUCTION_SIZES, dtype=dtype, python=side.python, env=side.env
            )
        except (RuntimeError, subprocess.TimeoutExpired) as e:  # ValgrindUnavailable too
            lines = str(e).strip().splitlines() or [type(e).__name__]
            why = lines[0] + (f" ... {lines[-1].strip()}" if len(lines) > 1 else "")
            raise WorkerError(f"counting instructions in {side.name} failed: {why}") from None
        return {
            TensorCase(m, n, dtype, True, "contiguous", "cpu", DEFAULT_THREADS).id: c.instructions
            for (m, n), c in got.items()
        }

    with ThreadPoolExecutor(2) as pool:
        futures = {s.name: pool.submit(count, s) for s in (base, head)}
        return {name: f.result() for name, f in futures.items()}


def is_gate_results(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def paired_medians(data: dict[str, Any]) -> dict[str, tuple[list[float], list[float]]]:
    """Per case, the base and head process medians, round by round (pairs in time)."""
    from . import stats

    out: dict[str, tuple[list[float], list[float]]] = {}
    for r in data["rounds"]:
        for case, blocks in r["base"]["cases"].items():
            if case in r["head"]["cases"]:
                b, h = out.setdefault(case, ([], []))
                b.append(stats.median(blocks))
                h.append(stats.median(r["head"]["cases"][case]))
    return out


# --- A/A study ----------------------------------------------------------------------------------


def aa_study(
    cases: list[dict[str, Any]],
    repeats: int,
    processes: int = DEFAULT_PROCESSES,
    budget: float = DEFAULT_BUDGET,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = 0.05,
    log: Any = None,
) -> list[dict[str, Any]]:
    """``repeats`` A/A gates (this interpreter on both sides, exactly as the nightly gates),
    and per case: how often it was called regressed or improved (false alarms), the spread
    of the rounds' ratios, and the smallest slowdown every round would show beyond the
    threshold given the least favourable pair of processes observed, ``(1 + threshold) /
    min ratio``: what "regressed" needs from all of a gate's rounds."""
    from .compare import compare_gate
    from .progress import Progress

    per_case: dict[str, dict[str, Any]] = {}
    with Progress("copybench aa-study: A/A gates, round", repeats * processes, log) as progress:
        for _ in range(repeats):
            data = run_gate(Side("base"), Side("head"), cases, processes, budget, progress=progress)
            table = compare_gate(data, threshold=threshold, alpha=alpha).set_index("case")
            for case, (b, h) in paired_medians(data).items():
                row = per_case.setdefault(case, {"case": case, "false_alarms": 0, "ratios": []})
                row["ratios"] += [hh / bb for bb, hh in zip(b, h, strict=True)]
                row["false_alarms"] += table.loc[case, "verdict"] in ("regressed", "improved")
    out = []
    for row in per_case.values():
        r = row.pop("ratios")
        out.append(
            {
                **row,
                "repeats": repeats,
                "rounds": len(r),
                "ratio_min": min(r),
                "ratio_max": max(r),
                "detects": (1 + threshold) / min(r),
            }
        )
    return out


# --- command -------------------------------------------------------------------------------------


def _env_pairs(values: list[str]) -> dict[str, str]:
    from .cases import UsageError

    out = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key:
            raise UsageError(f"environment setting must be KEY=VALUE, got {v!r}")
        out[key] = value
    return out


def register(sub: argparse._SubParsersAction) -> None:
    from .cli import add_command

    s = add_command(
        sub,
        "gate",
        help="time base and head interleaved in fresh processes; exit 1 on a regression",
        description="Time base and head side by side, in rounds of one fresh process per "
        "side, back to back, the order alternating; each round gives one paired ratio of "
        "the two processes' medians per case. A case regressed when the sign test over the "
        "rounds is significant (Holm-adjusted over the cases) and the CI of the median ratio "
        "lies wholly beyond 1 + --threshold; exit status 1 when one did. Each side is an "
        "interpreter with an environment of its own; with callgrind available, both sides' "
        "instruction counts are compared too. The default selection with 12 rounds takes "
        "about 3 minutes (progress on stderr).",
        examples=[
            "copybench gate --base-python /path/to/baseline/python --head-python .venv/bin/python",
            "copybench gate --method clone --size 1024 --head-env COPYBENCH_SLOW_DOWN=clone:8 "
            "--out gate.json",
            "copybench compare gate.json --format markdown   # the verdicts again, from --out",
        ],
    )
    s.add_argument("--base-python", default=sys.executable, help="base interpreter")
    s.add_argument("--head-python", default=sys.executable, help="head interpreter")
    s.add_argument(
        "--base-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment of the base side's processes (KEY= removes KEY); repeatable",
    )
    s.add_argument(
        "--head-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="the same for the head side",
    )
    _selection_options(s)
    instruction_option(s)
    s.add_argument("--out", type=Path, help="also write the results here (JSON)")
    s.add_argument(
        "--format",
        choices=("text", "markdown", "json"),
        default="text",
        help="how to print the verdicts (default text)",
    )
    s.set_defaults(func=cmd_gate)

    s = add_command(
        sub,
        "aa-study",
        help="run the gate A against A several times: false alarms, detectable slowdown",
        description="How often does the gate cry wolf, and what can it see? Run --repeats "
        "A/A gates exactly as the nightly gates (this interpreter on both sides, same rounds, "
        "same statistics) and print per case the false alarms, the range of the rounds' "
        "ratios, and the slowdown every round would still show beyond the threshold given "
        'the least favourable pair of processes seen: what "regressed" needs from all of a '
        "gate's rounds. Each repeat takes as long as a gate: --repeats 3 of the default "
        "selection took about 6 minutes here (progress on stderr).",
        examples=[
            "copybench aa-study --repeats 3",
            "copybench aa-study --method clone --size 1024 --repeats 5 --processes 8 --json",
        ],
    )
    s.add_argument("--repeats", type=int, default=3, help="A/A gates to run (default 3)")
    _selection_options(s)
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=cmd_aa_study)


def _selection_options(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--method",
        action="append",
        default=[],
        metavar="NAME",
        help="only this method (repeatable; default: the gate selection)",
    )
    s.add_argument(
        "--size",
        action="append",
        default=[],
        type=int,
        metavar="NUMEL",
        help="tensor size in elements (repeatable)",
    )
    s.add_argument("--model", action="append", default=[], help="reference model (repeatable)")
    s.add_argument(
        "--processes",
        type=int,
        default=DEFAULT_PROCESSES,
        help=f"rounds: fresh processes per side (default {DEFAULT_PROCESSES})",
    )
    s.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET,
        help=f"seconds per case in each process (default {DEFAULT_BUDGET:g})",
    )
    s.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help=f"smallest change that counts, as a fraction (default {DEFAULT_THRESHOLD:g})",
    )
    s.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="significance level after Holm's correction (default 0.05)",
    )


def instruction_option(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--instructions",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also count both sides' instructions per call with callgrind (default: where "
        "valgrind is available)",
    )


def want_instructions(flag: bool | None) -> bool:
    """``--instructions``: None (not given) means where valgrind can count; asked for
    where it cannot is bad input."""
    from .cases import UsageError
    from .instructions import valgrind_available

    if flag is None:
        return valgrind_available()
    if flag and not valgrind_available():
        raise UsageError("--instructions needs valgrind with callgrind_control (not found)")
    return flag


def cmd_gate(args: argparse.Namespace) -> int:
    from .cases import UsageError
    from .compare import compare_gate, render
    from .results import atomic_write_text

    if args.processes < 1 or args.budget <= 0:
        raise UsageError("--processes must be at least 1 and --budget positive")
    for py in (args.base_python, args.head_python):
        if shutil.which(py) is None:
            raise UsageError(f"{py}: not an executable interpreter")
    cases = gate_cases(args.method or None, args.size or None, args.model or None)
    base = Side("base", args.base_python, _env_pairs(args.base_env))
    head = Side("head", args.head_python, _env_pairs(args.head_env))
    instructions = want_instructions(args.instructions)
    data = run_gate(
        base, head, cases, args.processes, args.budget, log=sys.stderr, instructions=instructions
    )
    if args.out:
        atomic_write_text(args.out, json.dumps(data))
    table = compare_gate(data, threshold=args.threshold, alpha=args.alpha)
    print(render(table, args.format, threshold=args.threshold, alpha=args.alpha))
    return 1 if (table["verdict"] == "regressed").any() else 0


def cmd_aa_study(args: argparse.Namespace) -> int:
    from .cases import UsageError

    if args.repeats < 1 or args.processes < 1 or args.budget <= 0:
        raise UsageError("--repeats and --processes must be at least 1, --budget positive")
    cases = gate_cases(args.method or None, args.size or None, args.model or None)
    rows = aa_study(
        cases, args.repeats, args.processes, args.budget, args.threshold, args.alpha, sys.stderr
    )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"A/A: {args.repeats} gates of {args.processes} rounds, threshold "
        f"{args.threshold:.0%}, alpha {args.alpha:g}"
    )
    print(f"{'case':<55} {'false alarms':>12} {'round ratios':>15} {'detects':>8}")
    for r in sorted(rows, key=lambda r: r["case"]):
        print(
            f"{r['case']:<55} {r['false_alarms']:>5} of {r['repeats']:<4} "
            f"{r['ratio_min']:>6.2f}-{r['ratio_max']:<6.2f}  x{r['detects']:.2f}"
        )
    return 0


if __name__ == "__main__":
    from .workers import worker_main

    worker_main(measure_process)
