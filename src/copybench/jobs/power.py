"""``copybench power-study``: what the gate catches, and how often it cries wolf, measured.

A gate that never cries wolf but misses a 10% regression fails its users as surely as one
that cries wolf every night; neither can be argued from the statistics alone, because the
machine is not the model.  So this study *makes* regressions and counts how many the gate
names.  The head side gets a real slowdown that copybench does not cooperate with: a
wrapper around ``Tensor.clone`` or ``Tensor.copy_`` that takes ``F`` times as long,
installed at interpreter start by ``inject/sitecustomize.py`` through the environment
(:mod:`copybench.measure.injection`).  An A/A head (nothing injected) runs beside them.

How the study's gates are run, and why it is still the gate: study gate ``k`` runs its
rounds once for every variant together.  In each round one fresh base process and one fresh
process per variant run back to back; each variant has its own balanced random order
(:func:`copybench.measure.gate.balanced_orders`), and the heads that run second in this round for
their variant go after the base process, the others before it, each group shuffled.  So
every variant's gate has exactly the gate's design - same rounds, same budget, same
randomisation, hence the same exact test - and shares its base processes with the other
variants, which makes the study ``1 + V`` processes a round instead of ``2V``.  The one
difference: a head may run a few processes away from its base instead of next to it, which
can only add noise; a detection rate here is, if anything, low.  Then each variant's
instruction counts (one Valgrind process per variant and one for base) and its verdicts,
through :func:`copybench.results.compare.compare_gate`, exactly as ``copybench gate`` prints them.

Per case, the study reports in how many of its ``K`` gates each variant named it
(regressed), by wall time, by instruction count, and by either; for the A/A variant, how
often anything was named (regressed or improved: a false alarm).  Which cases call the
wrapped method is observed (:func:`calls_into`), not declared, so the table can say where a
detection is expected and where a "detection" is a false alarm.

``--load`` runs :mod:`copybench.measure.load`, a bursty neighbour on the other core, for the whole
study.

``--placebo`` puts the wrapper in every process: the base and the A/A head carry each of the
study's targets wrapped at a factor of 1.0, a slowed head its own target at ``F`` and the
others at 1.0, and the sitecustomize then leaves its own cost on both sides
(``INJECT_PLACEBO``).  The sides then differ in the injected wait alone.  Without it they
also differ in the monkeypatch itself, which is a real change: with ``Tensor.copy_``
wrapped, clones that never call it executed 167-232 more instructions a call at 128 KiB and
ran 1.012-1.037 times as long, and wall time named them in 6-10 of 10 loaded gates; with
the placebo, in none.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copybench import formats
from copybench.jobs.gate import GateDesign

# What can be slowed down: torch.Tensor's methods, by the name the study prints (the first
# is the default).  Not the registry's copy methods: a wrapped Tensor.clone slows every copy
# that calls it (calls_into says which).
TARGETS: dict[str, str] = {"clone": "Tensor.clone", "copy_": "Tensor.copy_"}
DEFAULT_TARGET = next(iter(TARGETS))
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

    def side(self, allocator: dict[str, str], placebo: tuple[str, ...] = ()) -> Any:
        """The variant's head side; ``placebo``: the study's targets, each wrapped at 1.0
        where this variant does not slow it (:func:`injected`)."""
        from copybench.measure.gate import Side

        env = injected(self.target, self.factor, placebo)
        return Side(self.name, env=env, allocator=allocator)


def injected(target: str | None, factor: float, placebo: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment that slows ``target`` ``factor`` x (None: nothing), from outside
    (``inject/sitecustomize.py``).  With ``placebo`` (targets), each of those is wrapped too,
    at 1.0 unless it is ``target``, and the wrapper's own cost is left on every side
    (``INJECT_PLACEBO=1``): the base of a placebo study is ``injected(None, 1.0, placebo)``."""
    import os

    from copybench.measure.injection import pythonpath_with_inject

    factors = {t: 1.0 for t in placebo}
    if target is not None:
        factors[target] = factor
    if not factors:
        return {}
    slowdown = ",".join(f"{TARGETS[t]}:{factors[t]}" for t in TARGETS if t in factors)
    env = {
        "PYTHONPATH": pythonpath_with_inject(os.environ.get("PYTHONPATH")),
        "INJECT_SLOWDOWN": slowdown,
    }
    if placebo:
        env["INJECT_PLACEBO"] = "1"
    return env


def study_targets(targets: Any) -> tuple[str, ...]:
    """The :data:`TARGETS` among ``targets`` (the heads' targets; None for A/A), in
    :data:`TARGETS`' order: what a placebo study wraps in every process."""
    named = set(targets)
    return tuple(t for t in TARGETS if t in named)


def variants(targets: list[str], factors: list[float]) -> list[Variant]:
    """A/A first, then every target at every factor; UsageError for bad input."""
    from copybench.suite.cases import UsageError

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

    from copybench.measure.gate import instruction_cases
    from copybench.suite.cases import make_model, make_tensor
    from copybench.suite.methods import get_method

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
    from copybench.suite import stats

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
    placebo: tuple[str, ...] = (),
) -> dict[str, dict[str, Any]]:
    """One study gate: the gate results (``copybench gate``'s format) of every variant;
    ``placebo``: the targets every process carries (the module's docstring)."""
    from copybench.measure.gate import WORKER as GATE_WORKER
    from copybench.measure.gate import Side, balanced_orders
    from copybench.measure.workers import run_worker

    rng = random.SystemRandom()
    base = Side("base", env=injected(None, 1.0, placebo), allocator=allocator)
    sides = [v.side(allocator, placebo) for v in heads]
    orders = [balanced_orders(processes, rng) for _ in heads]
    spec = {"cases": cases, "budget": budget}
    rounds: list[dict[str, Any]] = []
    for r in range(processes):
        got = {}
        order = round_order(base, sides, [o[r] for o in orders], rng)
        for side in order:
            got[side.name] = _medians(
                run_worker(GATE_WORKER, spec, python=side.python, env=side.environ())
            )
        rounds.append({"order": [s.name for s in order], **got})
        progress.step()
    out = {}
    for v, side, o in zip(heads, sides, orders, strict=True):
        out[v.name] = formats.gate_results(
            design="balanced random order (power study: shared base processes)",
            sides={
                "base": {"env": base.env, "allocator": allocator},
                "head": {"env": side.env, "allocator": allocator},
            },
            budget=budget,
            rounds=[
                {
                    "order": ["base", "head"] if s else ["head", "base"],
                    "base": rd["base"],
                    "head": rd[side.name],
                }
                for rd, s in zip(rounds, o, strict=True)
            ],
        )
    if instructions:
        _count(out, cases, base, heads, sides)
    return out


def _count(
    out: dict[str, dict[str, Any]], cases: list[dict[str, Any]], base: Any, heads: list, sides: list
) -> None:
    """Each variant's instruction counts beside its gate results in ``out``."""
    from concurrent.futures import ThreadPoolExecutor

    from copybench.measure.gate import count_side, instruction_env

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
    placebo: bool = False,
) -> dict[str, Any]:
    """``gates`` study gates (see the module's docstring); returns every gate's results per
    variant, for :func:`summarize`.  ``allocator``: glibc's settings in every process
    (default: the gate's, ``cases.GATE_ALLOCATOR``); ``placebo``: every process carries
    the wrappers of the heads' targets."""
    from copybench.measure.gate import allocator_of
    from copybench.measure.load import neighbour
    from copybench.measure.progress import Progress

    allocator = allocator_of("fixed") if allocator is None else allocator
    wrapped = study_targets(v.target for v in heads) if placebo else ()
    started = time.time()
    per_gate = []
    with (
        neighbour(load),
        Progress("copybench power-study: round", gates * processes, log) as progress,
    ):
        for _ in range(gates):
            per_gate.append(
                study_gate(
                    cases, heads, processes, budget, instructions, progress, allocator, wrapped
                )
            )
    return formats.POWER.stamp(
        {
            "load": load,
            "allocator": allocator,
            "placebo": placebo,
            "processes": processes,
            "budget": budget,
            "variants": [v.record() for v in heads],
            "calls": {t: calls_into(cases, t) for t in study_targets(v.target for v in heads)},
            "gates": per_gate,
            "seconds": time.time() - started,
        }
    )


def summarize(
    data: dict[str, Any], threshold: float, alpha: float, instruction_threshold: float
) -> list[dict[str, Any]]:
    """Per variant and case: in how many gates it was named (regressed; for A/A, regressed
    or improved) by wall time, by instruction count, by either; the median over gates of
    the wall-time estimate; and whether the case calls the variant's wrapped method."""
    from copybench.results.compare import compare_gate

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
    from copybench.suite import stats

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
    from copybench.suite.units import format_ratio

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
    if not allocator:
        return "dynamic allocator"
    if "GLIBC_TUNABLES" not in allocator:
        return "fixed allocator, tcache on (saved before the gate turned it off)"
    return "fixed allocator"


def placebo_word(data: dict[str, Any]) -> str:
    """What the base and A/A processes carried: the wrappers at 1.0 (``--placebo``), or
    nothing."""
    if not data.get("placebo"):
        return ""
    wrapped = study_targets(v["target"] for v in data["variants"])
    return f"placebo base ({', '.join(wrapped)} wrapped at 1.0 in every process), "


def _check_same_study(old: dict[str, Any], new: dict[str, Any]) -> None:
    """ResultsError unless ``new`` (a study's results, or the plan of one) is the same
    study as ``old``: variants, rounds, budget, load, allocator and placebo (studies saved
    before ``--placebo`` had none)."""
    default = {"placebo": False}
    for key in ("variants", "processes", "budget", "load", "allocator", "placebo"):
        if old.get(key, default.get(key)) != new.get(key, default.get(key)):
            raise formats.ResultsError(f"cannot append: the saved study has another {key}")


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


# --- the study as one job (``copybench power-study``) ------------------------------------------


@dataclass
class PowerStudy:
    """A power study as asked for: the variants (``targets`` at ``factors``, or the A/A head
    alone), the gates and their design (selection, rounds, budget, instructions, levels),
    the allocator, the neighbour; where its results go (``out``, ``append``) or come from
    (``source``: judge a saved study, run nothing)."""

    design: GateDesign = field(default_factory=GateDesign)
    gates: int = DEFAULT_GATES
    targets: list[str] = field(default_factory=list)
    factors: list[float] = field(default_factory=list)
    aa_only: bool = False
    load: bool = False
    placebo: bool = False
    allocator: str = "fixed"
    out: Path | None = None
    append: bool = False
    source: Path | None = None


def _heads(study: PowerStudy) -> list[Variant]:
    from copybench.suite.cases import UsageError

    if study.gates < 1 or study.design.processes < 2 or study.design.budget <= 0:
        raise UsageError("--gates must be at least 1, --processes 2, --budget positive")
    if study.aa_only and (study.targets or study.factors):
        raise UsageError("--aa-only runs no slowdown: leave out --target and --factor")
    if study.aa_only and study.placebo:
        raise UsageError("--placebo wraps the methods a study slows: --aa-only slows none")
    if study.aa_only:
        return variants([], [])
    return variants(study.targets or [DEFAULT_TARGET], study.factors or list(DEFAULT_FACTORS))


def _run(study: PowerStudy, log: Any) -> dict[str, Any]:
    """Run the study (after checking it, and an ``--append`` against the saved one) and
    write it where asked; its results."""
    from copybench.measure.gate import allocator_of, want_instructions

    design = study.design
    heads = _heads(study)
    cases = design.cases()
    allocator = allocator_of(study.allocator)
    appending = study.append and study.out is not None and study.out.exists()
    if appending:
        # Before a study that may take an hour, not after it.
        planned = {
            "variants": [v.record() for v in heads],
            "processes": design.processes,
            "budget": design.budget,
            "load": study.load,
            "allocator": allocator,
            "placebo": study.placebo,
        }
        _check_same_study(formats.read_power(study.out), planned)
    data = run_study(
        cases,
        heads,
        study.gates,
        design.processes,
        design.budget,
        want_instructions(design.instructions),
        study.load,
        log,
        allocator,
        study.placebo,
    )
    if study.out:
        if appending:
            data = _appended(formats.read_power(study.out), data)
        formats.write_power(study.out, data)
    return data


def power_text(rows: list[dict[str, Any]], data: dict[str, Any], levels: tuple) -> str:
    """The study as ``power-study`` prints it: a line on the study, the table, the key."""
    from copybench.measure.gate import COUNT_RULE

    threshold, alpha, ithreshold = levels
    return "\n".join(
        [
            f"power study: {len(data['gates'])} gates of {data['processes']} rounds per "
            f"variant, {'loaded' if data['load'] else 'quiet'}, {allocator_word(data)}, "
            f"{placebo_word(data)}"
            f"{data['seconds'] / 60:.0f} min; threshold {threshold:.0%} (instructions "
            f"{ithreshold:.0%}, {COUNT_RULE}), alpha {alpha:g}",
            format_table(rows, data),
            "\ncell: gates that named the case (regressed; for A/A, regressed or improved) by "
            "either measure, of all; (wall W): by wall time alone; then the median ratio "
            "(wall time, else instructions). *: the case calls the wrapped method.",
        ]
    )


def power_study(study: PowerStudy, *, as_json: bool = False, log: Any = None) -> str:
    """What ``copybench power-study`` prints: the study run (or read from ``source``) and
    judged at the levels asked for, as a table or JSON rows."""
    from copybench.suite.cases import UsageError

    study.design.check_levels()
    if study.append and study.out is None:
        raise UsageError("--append needs --out")
    data = formats.read_power(study.source) if study.source is not None else _run(study, log)
    levels = study.design.levels()
    rows = summarize(data, *levels)
    return json.dumps(rows, indent=2) if as_json else power_text(rows, data, levels)
