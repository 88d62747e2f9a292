"""``copybench power-study``: what the gate catches, and how often it cries wolf, measured.

A gate that never cries wolf but misses a 10% regression fails its users as surely as one
that cries wolf every night; neither can be argued from the statistics alone, because the
machine is not the model.  So this study *makes* regressions and counts how many the gate
names.  The head side gets a real slowdown that copybench does not cooperate with: a
wrapper around ``Tensor.clone`` or ``Tensor.copy_`` that takes ``F`` times as long,
installed at interpreter start by ``inject/sitecustomize.py`` through the environment
(:mod:`copybench.injection`).  An A/A head (nothing injected) runs beside them.

How the study's gates are run, and why it is still the gate: study gate ``k`` runs its
rounds once for every variant together.  In each round one fresh base process and one fresh
process per variant run back to back; each variant has its own balanced random order
(:func:`copybench.gate.balanced_orders`), and the heads that run second in this round for
their variant go after the base process, the others before it, each group shuffled.  So
every variant's gate has exactly the gate's design - same rounds, same budget, same
randomisation, hence the same exact test - and shares its base processes with the other
variants, which makes the study ``1 + V`` processes a round instead of ``2V``.  The one
difference: a head may run a few processes away from its base instead of next to it, which
can only add noise; a detection rate here is, if anything, low.  Then each variant's
instruction counts (one Valgrind process per variant and one for base) and its verdicts,
through :func:`copybench.compare.compare_gate`, exactly as ``copybench gate`` prints them.

Per case, the study reports in how many of its ``K`` gates each variant named it
(regressed), by wall time, by instruction count, and by either; for the A/A variant, how
often anything was named (regressed or improved: a false alarm).  Which cases call the
wrapped method is observed (:func:`calls_into`), not declared, so the table can say where a
detection is expected and where a "detection" is a false alarm.

``--load`` runs :mod:`copybench.load`, a bursty neighbour on the other core, for the whole
study.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "copybench-power/1"
# What can be slowed down: the wrapped methods, by the name the study prints.
TARGETS: dict[str, str] = {"clone": "Tensor.clone", "copy_": "Tensor.copy_"}
DEFAULT_FACTORS: tuple[float, ...] = (1.05, 1.1, 1.2)
DEFAULT_GATES = 10
AA = "A/A"


@dataclass(frozen=True)
class Variant:
    """One head of the study: nothing injected (A/A), or ``target`` slowed ``factor`` x."""

    target: str | None = None
    factor: float = 1.0

    @property
    def name(self) -> str:
        return AA if self.target is None else f"{self.target} x{self.factor:g}"

    def record(self) -> dict[str, Any]:
        """How a study's results name the variant."""
        return {"name": self.name, "target": self.target, "factor": self.factor}

    def side(self, allocator: dict[str, str]) -> Any:
        import os

        from .gate import Side
        from .injection import pythonpath_with_inject

        if self.target is None:
            return Side(self.name, allocator=allocator)
        env = {
            "PYTHONPATH": pythonpath_with_inject(os.environ.get("PYTHONPATH")),
            "INJECT_SLOWDOWN": f"{TARGETS[self.target]}:{self.factor}",
        }
        return Side(self.name, env=env, allocator=allocator)


def variants(targets: list[str], factors: list[float]) -> list[Variant]:
    """A/A first, then every target at every factor; UsageError for bad input."""
    from .cases import UsageError

    for t in targets:
        if t not in TARGETS:
            raise UsageError(f"unknown target {t!r}: choose from {', '.join(TARGETS)}")
    for f in factors:
        if not f >= 1:
            raise UsageError(f"a slowdown factor must be at least 1, got {f:g}")
    return [Variant(), *(Variant(t, f) for t in targets for f in factors)]


def calls_into(cases: list[dict[str, Any]], target: str) -> list[str]:
    """The gate cases (and counted cases) whose copy calls ``torch.Tensor.<target>`` from
    Python, observed: the method is wrapped with a counter, each case's copy runs once on a
    small input, and the cases that called it are returned by id."""
    import torch

    from .cases import make_model, make_tensor
    from .gate import instruction_cases
    from .methods import get_method

    attr = TARGETS[target].split(".", 1)[1]
    original = getattr(torch.Tensor, attr)
    calls = [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    out = []
    setattr(torch.Tensor, attr, counted)
    try:
        for key, c in instruction_cases(cases):
            m = get_method(c["method"])
            if c["kind"] == "tensor":
                fn = m.bind(make_tensor(64, c["dtype"], c["requires_grad"], "contiguous", "cpu"))
            else:
                model, spec = make_model(c["model"], "cpu")
                fn = m.bind(model, spec.build)
            calls[0] = 0
            fn()
            if calls[0]:
                out.append(key)
    finally:
        setattr(torch.Tensor, attr, original)
    return out


def round_order(base: Any, heads: list[Any], head_second: list[bool], rng: random.Random) -> list:
    """One round's processes: the heads that run first (shuffled), base, the heads that run
    second (shuffled)."""
    first = [h for h, s in zip(heads, head_second, strict=True) if not s]
    second = [h for h, s in zip(heads, head_second, strict=True) if s]
    rng.shuffle(first)
    rng.shuffle(second)
    return [*first, base, *second]


def _medians(result: dict[str, Any]) -> dict[str, Any]:
    """A worker's result with each case's blocks reduced to their median (all the verdicts
    read), to keep the study's file small."""
    from . import stats

    return {
        **result,
        "cases": {k: [stats.median(v)] for k, v in result["cases"].items()},
        "references": {k: [stats.median(v)] for k, v in result.get("references", {}).items()},
    }


def study_gate(
    cases: list[dict[str, Any]],
    heads: list[Variant],
    processes: int,
    budget: float,
    instructions: bool,
    progress: Any,
    allocator: dict[str, str],
) -> dict[str, dict[str, Any]]:
    """One study gate: the gate results (``copybench gate``'s format) of every variant."""
    from .gate import FORMAT as GATE_FORMAT
    from .gate import Side, balanced_orders
    from .workers import run_worker

    rng = random.SystemRandom()
    base = Side("base", allocator=allocator)
    sides = [v.side(allocator) for v in heads]
    orders = [balanced_orders(processes, rng) for _ in heads]
    spec = {"cases": cases, "budget": budget}
    rounds: list[dict[str, Any]] = []
    for r in range(processes):
        got = {}
        order = round_order(base, sides, [o[r] for o in orders], rng)
        for side in order:
            got[side.name] = _medians(
                run_worker("copybench.gate", spec, python=side.python, env=side.environ())
            )
        rounds.append({"order": [s.name for s in order], **got})
        progress.step()
    out = {}
    for v, side, o in zip(heads, sides, orders, strict=True):
        out[v.name] = {
            "format": GATE_FORMAT,
            "design": "balanced random order (power study: shared base processes)",
            "sides": {
                "base": {"env": {}, "allocator": allocator},
                "head": {"env": side.env, "allocator": allocator},
            },
            "budget": budget,
            "rounds": [
                {
                    "order": ["base", "head"] if s else ["head", "base"],
                    "base": rd["base"],
                    "head": rd[side.name],
                }
                for rd, s in zip(rounds, o, strict=True)
            ],
        }
    if instructions:
        from concurrent.futures import ThreadPoolExecutor

        from .gate import count_side, instruction_env

        # Base's count is the same for every variant (so is its environment): once a gate.
        # Two Valgrind processes at a time: a count does not depend on the neighbours.
        envs = [instruction_env(base, side) for side in sides]
        with ThreadPoolExecutor(2) as pool:
            base_counts = pool.submit(count_side, base, envs[0][0], cases)
            heads_counts = [
                pool.submit(count_side, side, env[1], cases)
                for side, env in zip(sides, envs, strict=True)
            ]
            for v, env, got in zip(heads, envs, heads_counts, strict=True):
                out[v.name]["instructions"] = {
                    "base": base_counts.result(),
                    "head": got.result(),
                    "env": sorted(env[1]),
                }
    return out


def run_study(
    cases: list[dict[str, Any]],
    heads: list[Variant],
    gates: int,
    processes: int,
    budget: float,
    instructions: bool,
    load: bool,
    log: Any = None,
    allocator: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``gates`` study gates (see the module's docstring); returns every gate's results per
    variant, for :func:`summarize`.  ``allocator``: glibc's settings in every process
    (default: the gate's, ``cases.GATE_ALLOCATOR``)."""
    from .gate import allocator_of
    from .load import neighbour
    from .progress import Progress

    allocator = allocator_of("fixed") if allocator is None else allocator
    started = time.time()
    per_gate = []
    with (
        neighbour(load),
        Progress("copybench power-study: round", gates * processes, log) as progress,
    ):
        for _ in range(gates):
            per_gate.append(
                study_gate(cases, heads, processes, budget, instructions, progress, allocator)
            )
    return {
        "format": FORMAT,
        "load": load,
        "allocator": allocator,
        "processes": processes,
        "budget": budget,
        "variants": [v.record() for v in heads],
        "calls": {t: calls_into(cases, t) for t in {v.target for v in heads} if t},
        "gates": per_gate,
        "seconds": time.time() - started,
    }


def summarize(
    data: dict[str, Any], threshold: float, alpha: float, instruction_threshold: float
) -> list[dict[str, Any]]:
    """Per variant and case: in how many gates it was named (regressed; for A/A, regressed
    or improved) by wall time, by instruction count, by either; the median over gates of
    the wall-time estimate; and whether the case calls the variant's wrapped method."""
    from .compare import compare_gate

    rows: dict[tuple[str, str], dict[str, Any]] = {}
    either_way = ("regressed", "improved")
    for gate in data["gates"]:
        for v in data["variants"]:
            table = compare_gate(gate[v["name"]], threshold, alpha, instruction_threshold)
            hits = ("regressed",) if v["target"] else either_way
            calls = set(data["calls"].get(v["target"], [])) if v["target"] else set()
            for case, group in table.groupby("case"):
                row = rows.setdefault(
                    (v["name"], case),
                    {
                        "variant": v["name"],
                        "case": case,
                        "calls": case in calls,
                        "gates": 0,
                        "raw": 0,
                        "relative": 0,
                        "wall": 0,
                        "instructions": 0,
                        "either": 0,
                        "wall_ratios": [],
                        "instruction_ratios": [],
                    },
                )
                row["gates"] += 1
                by = {b: g.iloc[0] for b, g in group.groupby("benchmark")}

                def hit(benchmark: str, by=by, hits=hits) -> bool:
                    return benchmark in by and by[benchmark]["verdict"] in hits

                raw, relative = hit("gate"), hit("gate-relative")
                wall = raw or relative
                counted = hit("gate-instructions")
                row["raw"] += raw
                row["relative"] += relative
                row["wall"] += wall
                row["instructions"] += counted
                row["either"] += wall or counted
                if "gate" in by:
                    row["wall_ratios"].append(float(by["gate"]["ratio"]))
                if "gate-instructions" in by:
                    row["instruction_ratios"].append(float(by["gate-instructions"]["ratio"]))
    from . import stats

    out = []
    for row in rows.values():
        w, i = row.pop("wall_ratios"), row.pop("instruction_ratios")
        row["wall_ratio"] = stats.median(w) if w else None
        row["instruction_ratio"] = stats.median(i) if i else None
        out.append(row)
    return out


def format_table(rows: list[dict[str, Any]], data: dict[str, Any]) -> str:
    """Cases down, variants across; a cell is ``either/K (wall W)`` with the median wall
    ratio; ``*`` marks a case that calls the variant's wrapped method (a detection is
    expected there; elsewhere it is a false alarm)."""
    from .units import format_ratio

    names = [v["name"] for v in data["variants"]]
    by = {(r["variant"], r["case"]): r for r in rows}
    cases = sorted({r["case"] for r in rows})
    header = ["case", *names]
    body = []
    for case in cases:
        cells = [case]
        for n in names:
            r = by.get((n, case))
            if r is None:
                cells.append("")
                continue
            ratio = r["wall_ratio"] if r["wall_ratio"] is not None else r["instruction_ratio"]
            mark = "*" if r["calls"] else " "
            cells.append(
                f"{mark}{r['either']}/{r['gates']} (wall {r['wall']}) {format_ratio(ratio)}"
            )
        body.append(cells)
    widths = [max(len(c) for c in col) for col in zip(header, *body, strict=True)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in (header, *body)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def allocator_word(data: dict[str, Any]) -> str:
    """How the study's processes ran glibc's allocator.  Studies saved before the gate
    fixed it (and warmed every case up) carry no "allocator": their processes ran glibc's
    dynamic default."""
    allocator = data.get("allocator")
    if allocator is None:
        return "dynamic allocator (saved before the gate fixed it)"
    return "fixed allocator" if allocator else "dynamic allocator"


def _load(path: Path) -> dict[str, Any]:
    from .results import ResultsError

    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsError(f"{path}: not a power study's results ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ResultsError(f"{path}: not a power study's results")
    return data


def _check_same_study(old: dict[str, Any], new: dict[str, Any]) -> None:
    """ResultsError unless ``new`` (a study's results, or the plan of one) is the same
    study as ``old``: variants, rounds, budget, load and allocator."""
    from .results import ResultsError

    for key in ("variants", "processes", "budget", "load", "allocator"):
        if old.get(key) != new.get(key):
            raise ResultsError(f"cannot append: the saved study has another {key}")


def _appended(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` with ``new``'s gates added; ResultsError unless the two studies are the same
    study (:func:`_check_same_study`)."""
    _check_same_study(old, new)
    calls = {t: sorted(set(old["calls"].get(t, [])) | set(c)) for t, c in new["calls"].items()}
    return {
        **old,
        "calls": calls,
        "gates": old["gates"] + new["gates"],
        "seconds": old["seconds"] + new["seconds"],
    }


# --- command -------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    from .cli import add_command
    from .gate import allocator_option, instruction_option, selection_options

    s = add_command(
        sub,
        "power-study",
        help="run gates against injected slowdowns and A/A: detection and false-alarm rates",
        description="What does the gate catch, and how often does it cry wolf? Run --gates "
        "gates of the gate's design in which the head is this interpreter with nothing "
        "injected (A/A) or with torch.Tensor.clone / torch.Tensor.copy_ wrapped, from "
        "outside copybench (a sitecustomize on PYTHONPATH), to take --factor times as long. "
        "Prints per case and variant in how many gates it was named, by either measure and "
        "by wall time alone, and the median wall ratio; * marks the cases that call the "
        "wrapped method. --load runs a bursty neighbour on the other core. Each study gate "
        "runs 1 + variants processes a round (about 5 minutes a gate here for 4 variants).",
        examples=[
            "copybench power-study --gates 10 --target clone --factor 1.1 --out power.json",
            "copybench power-study --gates 10 --load --target clone --target copy_ "
            "--factor 1.05 --factor 1.1 --factor 1.2",
            "copybench power-study --from power.json --alpha 0.05   # re-judge saved gates",
        ],
    )
    s.add_argument("--gates", type=int, default=DEFAULT_GATES, help="study gates (default 10)")
    s.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME",
        help=f"the method to slow down: {' or '.join(TARGETS)} (repeatable; default clone)",
    )
    s.add_argument(
        "--factor",
        action="append",
        default=[],
        type=float,
        help="how many times as long it takes (repeatable; default 1.05, 1.1 and 1.2)",
    )
    s.add_argument(
        "--aa-only",
        action="store_true",
        help="no slowdown, the A/A head alone: false alarms at 2 processes a round",
    )
    s.add_argument("--load", action="store_true", help="a bursty neighbour on the other core")
    selection_options(s)
    instruction_option(s)
    allocator_option(s)
    s.add_argument("--out", type=Path, help="also write every gate's results here (JSON)")
    s.add_argument(
        "--append",
        action="store_true",
        help="add this run's gates to those already in --out (same variants, rounds and "
        "load): a study too long for one sitting",
    )
    s.add_argument("--from", dest="source", type=Path, help="judge a saved study, run nothing")
    s.add_argument("--json", action="store_true", help="print the rows as JSON")
    s.set_defaults(func=cmd_power_study)


def cmd_power_study(args: argparse.Namespace) -> int:
    from .cases import UsageError
    from .gate import allocator_of, check_gate_levels, gate_cases, want_instructions
    from .results import atomic_write_text

    check_gate_levels(args.threshold, args.alpha, args.instruction_threshold)
    if args.append and args.out is None:
        raise UsageError("--append needs --out")
    if args.source is not None:
        data = _load(args.source)
    else:
        if args.gates < 1 or args.processes < 2 or args.budget <= 0:
            raise UsageError("--gates must be at least 1, --processes 2, --budget positive")
        if args.aa_only and (args.target or args.factor):
            raise UsageError("--aa-only runs no slowdown: leave out --target and --factor")
        heads = (
            variants([], [])
            if args.aa_only
            else variants(args.target or ["clone"], args.factor or list(DEFAULT_FACTORS))
        )
        cases = gate_cases(args.method or None, args.size or None, args.model or None)
        allocator = allocator_of(args.allocator)
        if args.append and args.out.exists():
            # Before a study that may take an hour, not after it.
            planned = {
                "variants": [v.record() for v in heads],
                "processes": args.processes,
                "budget": args.budget,
                "load": args.load,
                "allocator": allocator,
            }
            _check_same_study(_load(args.out), planned)
        data = run_study(
            cases,
            heads,
            args.gates,
            args.processes,
            args.budget,
            want_instructions(args.instructions),
            args.load,
            sys.stderr,
            allocator,
        )
        if args.out:
            if args.append and args.out.exists():
                data = _appended(_load(args.out), data)
            atomic_write_text(args.out, json.dumps(data))
    from .gate import DEFAULT_ALPHA, DEFAULT_INSTRUCTION_THRESHOLD, DEFAULT_THRESHOLD

    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    alpha = DEFAULT_ALPHA if args.alpha is None else args.alpha
    ithreshold = (
        DEFAULT_INSTRUCTION_THRESHOLD
        if args.instruction_threshold is None
        else args.instruction_threshold
    )
    rows = summarize(data, threshold, alpha, ithreshold)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"power study: {len(data['gates'])} gates of {data['processes']} rounds per variant, "
        f"{'loaded' if data['load'] else 'quiet'}, {allocator_word(data)}, "
        f"{data['seconds'] / 60:.0f} min; threshold "
        f"{threshold:.0%} (instructions {ithreshold:.0%}), alpha {alpha:g}"
    )
    print(format_table(rows, data))
    print(
        "\ncell: gates that named the case (regressed; for A/A, regressed or improved) by "
        "either measure, of all; (wall W): by wall time alone; then the median ratio "
        "(wall time, else instructions). *: the case calls the wrapped method."
    )
    return 0
