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

The order within a round is drawn at random, balanced: half the rounds run base first.
A case's verdict then rests on its rounds' log ratios of the two processes' medians
(:func:`copybench.suite.stats.order_balanced_change`): the exact rank-sum test between the rounds
that ran head second and those that ran it first, Holm-adjusted over the cases; the
matching Hodges-Lehmann estimate, in which any advantage of running first or second
cancels.  Under A/A the labels were drawn at random, independent of anything measured, so
the chance that any case comes out significant is at most ``alpha`` whatever the machine
does, without assuming a distribution; a test on how much slower each round was sees a 10%
slowdown that a count of slower rounds (the sign test this gate used until 2026-11) needs
nearly every round to show.  "regressed" needs that *and* the estimate beyond
``1 + threshold``.  With too few rounds for the test to ever reach ``alpha`` over this many
cases, the verdict is "too few processes", never "regressed".

Each side is an interpreter (``--base-python``, ``--head-python``: two torch builds, two
checkouts) with an environment of its own (``--base-env``, ``--head-env`` KEY=VALUE).

Where wall time cannot resolve a change (a few percent in ``deepcopy(model)``, whose
processes spread by 10%; a small one on a busy 2-core machine), instruction counts can: with
callgrind available (``--instructions``, the default there), each side also counts the
instructions per call of every gate case, module copies included, and of its tensor methods
at 32 and 1,024 elements (:mod:`copybench.measure.instructions`: one Valgrind process per side, the
two run at the same time since a count does not depend on the neighbours).  Counts repeat
exactly, so those rows are judged by ``--instruction-threshold`` alone (down to half of it
where that half is ``INSTRUCTION_FLOOR`` instructions a call per tensor copied or more:
``stats.count_threshold``).  Every setting that
tells the two sides' environments apart, every one a side was given, and the loader's
(``PYTHONPATH``, ``LD_PRELOAD``, ``LD_LIBRARY_PATH``) reach both sides' counts alike (see
:func:`instruction_env`), so a slowdown that comes in through the environment shows in both
measures or in neither.

Semantics too: each side runs ``copybench semantics`` (:mod:`copybench.measure.drift`); a method
whose observed behaviour differs between the sides (new storage, requires_grad, grad flow,
leaf, shared version counter) is a "drifted" row, which fails the gate like a regression.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from copybench import formats

if TYPE_CHECKING:
    from copybench.measure.progress import Progress

# This module, run as a worker process: one side's process of one round (measure_process).
WORKER = "copybench.measure.gate"
DEFAULT_PROCESSES = 24
DEFAULT_BUDGET = 0.05  # seconds of timed blocks per case in each process
DEFAULT_THRESHOLD = 0.02  # a timed change smaller than this is "unchanged"
# The same for instruction counts.  Identical sides give identical counts; but the rounds of
# one count still wander (the heap each loop starts from: up to 225 instructions, 2.1%, at
# 32 elements), and a side whose environment differs (another PYTHONPATH, a sitecustomize)
# moved an untouched case's count by up to 1.5% at 32 elements.  Both are a fixed few
# hundred instructions a call, which INSTRUCTION_FLOOR and INSTRUCTION_NOISE below turn
# into a threshold per count.
DEFAULT_INSTRUCTION_THRESHOLD = 0.02
# A count is judged at down to half that threshold where the half is this many instructions
# a call per tensor the case copies, or more (``stats.count_threshold``): 1% for a 4 MiB
# copy and for ``deepcopy(model)`` of 1e6x8.  Eleven times the largest shift of an untouched
# one-tensor count seen between two sides (+274), 24 times the snapshot's per tensor.
INSTRUCTION_FLOOR = 3000
# And never below this many instructions a call per tensor: the largest fixed shifts seen
# were 274 (an environment) and 225 (heap history, between the rounds of one count, a
# 32-element clone); at 32 and 1,024 elements (11,000-15,000 a call) that is 2.7-3.8%.
INSTRUCTION_NOISE = 400
# The rule those make of the threshold, in the words every help text and note uses.
COUNT_RULE = (
    f"down to half of it where that half is {INSTRUCTION_FLOOR:,} instructions a call per "
    f"tensor copied or more, never below {INSTRUCTION_NOISE} a call per tensor"
)
DEFAULT_ALPHA = 0.01  # family-wise, over the timed cases of one gate
BLOCK_SECONDS = 0.001
# The verdicts that fail a gate.
FAILING = ("regressed", "drifted")


@dataclass
class Side:
    """One side of the comparison: an interpreter and the environment it runs in."""

    name: str
    python: str = sys.executable
    env: dict[str, str] = field(default_factory=dict)
    # glibc's allocator settings under the inherited environment (``cases.GATE_ALLOCATOR``;
    # empty: glibc's dynamic default)
    allocator: dict[str, str] = field(default_factory=lambda: allocator_of("fixed"))

    def environ(self) -> dict[str, str]:
        out = {**self.allocator, **os.environ}
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
    from copybench.suite.cases import (
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
    from copybench.suite.methods import get_method

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
    from copybench.suite.cases import ModuleCase, TensorCase

    if spec["kind"] == "tensor":
        return TensorCase(*spec["args"], spec["threads"]).id
    return ModuleCase(*spec["args"], spec["threads"]).id


# --- one process -------------------------------------------------------------------------------


def reference_of(source: Any) -> Callable[[], Any]:
    """The in-process reference timed beside a case: ``torch.mul(x, 1, out=buf)`` over the
    case's source tensor (each parameter of a model's), into buffers made and touched
    here.  The same bytes read and written as the copy, in the same process and so the
    same memory placement, but none of the copy's entry points (``clone``, ``copy_``,
    ``deepcopy``), so a regression of the copy does not reach it: the ratio of a case to its
    reference cancels the process's state (a fresh process can land 1.5x slower at 128 KiB
    here) and keeps the copy's own cost."""
    import torch

    tensors = [source] if isinstance(source, torch.Tensor) else list(source.parameters())
    pairs = [(t.detach(), torch.empty_like(t).fill_(0)) for t in tensors]

    def reference() -> None:
        for x, buf in pairs:
            torch.mul(x, 1, out=buf)

    return reference


def _calls_per_block(fn: Callable[[], Any]) -> int:
    from copybench.suite.timing import time_block

    n = 1
    while time_block(fn, n) < BLOCK_SECONDS and n < 1 << 20:
        n *= 2
    return n


def measure_process(spec: dict[str, Any]) -> dict[str, Any]:
    """Every case of ``spec``, in this process: per-call seconds of each timed block of the
    case, and of its reference (:func:`reference_of`), in ABBA order (case, reference,
    reference, case, ...) so that a drift within the process hits both alike."""
    import torch

    from copybench.suite.cases import CaseError
    from copybench.suite.prepare import (
        prepare_module_case,
        prepare_tensor_case,
        slowed_down_methods,
    )

    out: dict[str, Any] = {
        "pid": os.getpid(),
        "torch": torch.__version__,
        "slowed_down": slowed_down_methods(),
        "cases": {},
        "references": {},
        "skipped": {},
    }
    # Each case is run untimed first (ABBA beside its reference, half the budget), then
    # timed on the same tensors.  The first calls of a 4 MiB case fault a fresh heap region
    # in (about 1,024 minor faults), and without this warm-up the cases that did so ran
    # 1.5-2x slower for their whole timed run: the first 4 MiB cases of each process, in
    # either order of the cases.  A warm pass over all cases before timing any did not
    # help: the first 4 MiB cases then faulted 1,000-2,000 pages in again while timed.
    # Warmed case by case, 6 fresh processes: every 4 MiB case 92-118 us, no fault while
    # timed.
    for c in spec["cases"]:
        prepare = prepare_tensor_case if c["kind"] == "tensor" else prepare_module_case
        try:
            case = prepare(*c["args"], c["threads"])
        except CaseError as e:
            out["skipped"][case_id(c)] = str(e)
            continue
        reference = reference_of(case.source)
        _abba(case.run, reference, spec["budget"], timed=False)
        blocks, refs = _abba(case.run, reference, spec["budget"], timed=True)
        out["cases"][case_id(c)] = blocks
        out["references"][case_id(c)] = refs
    return out


def _abba(
    run: Callable[[], Any], reference: Callable[[], Any], budget: float, timed: bool
) -> tuple[list[float], list[float]]:
    """Per-call seconds of blocks of ``run`` and ``reference`` in ABBA order: at least 6
    of each and ``budget`` seconds in all (untimed, the warm-up: 2 of each, half the
    budget)."""
    from copybench.suite.timing import time_block

    n, k = _calls_per_block(run), _calls_per_block(reference)
    blocks: list[float] = []
    refs: list[float] = []
    least, end = (
        (6, time.perf_counter() + budget) if timed else (2, time.perf_counter() + budget / 2)
    )
    while len(blocks) < least or time.perf_counter() < end:
        blocks.append(time_block(run, n) / n)
        refs.append(time_block(reference, k) / k)
        refs.append(time_block(reference, k) / k)
        blocks.append(time_block(run, n) / n)
    return blocks, refs


# --- interleaved runs --------------------------------------------------------------------------


def balanced_orders(rounds: int, rng: random.Random | None = None) -> list[bool]:
    """Whether head runs second, per round: half the rounds each way (the odd one out by a
    coin), in an order drawn at random.  Balanced, so that an advantage of running first or
    second cancels in the estimate; random, so that the test is exact (see
    :func:`copybench.suite.stats.order_balanced_change`)."""
    rng = rng or random.SystemRandom()
    half = [True] * (rounds // 2) + [False] * (rounds // 2)
    if rounds % 2:
        half.append(rng.random() < 0.5)
    rng.shuffle(half)
    return half


def run_gate(
    base: Side,
    head: Side,
    cases: list[dict[str, Any]],
    processes: int = DEFAULT_PROCESSES,
    budget: float = DEFAULT_BUDGET,
    log: Any = None,
    instructions: bool = False,
    progress: Progress | None = None,
    semantics: bool = True,
) -> dict[str, Any]:
    """``processes`` rounds; in each, one fresh process per side, back to back, in the
    order :func:`balanced_orders` drew; then, with ``instructions``, both sides' instruction
    counts (see :func:`count_sides`), and with ``semantics``, both sides' observed
    semantics (:mod:`copybench.measure.drift`).  Returns the results (see
    :func:`copybench.results.compare` for the verdicts).  Progress on the stream ``log``, one step
    per round; or, where given, on ``progress``."""
    from copybench.measure.progress import Progress, note
    from copybench.measure.workers import run_worker

    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    spec = {"cases": cases, "budget": budget}
    rounds = []
    with (
        Progress("copybench gate: round", processes, log)
        if progress is None
        else contextlib.nullcontext(progress)
    ) as steps:
        for head_second in balanced_orders(processes):
            order = (base, head) if head_second else (head, base)
            got = {}
            for side in order:
                got[side.name] = run_worker(
                    WORKER, spec, python=side.python, env=side.environ(), timeout=600
                )
            rounds.append({"order": [s.name for s in order], **got})
            steps.step()
    out = formats.gate_results(
        design="balanced random order",
        sides={
            s.name: {
                "python": s.python,
                "env": s.env,
                "allocator": s.allocator,
                "torch": rounds[0][s.name]["torch"],
            }
            for s in (base, head)
        },
        budget=budget,
        rounds=rounds,
    )
    if instructions:
        note("copybench gate: counting instructions (callgrind)", log)
        out["instructions"] = count_sides(base, head, cases)
    if semantics:
        note("copybench gate: observing semantics on both sides", log)
        out["semantics"] = observe_sides(base, head)
    return out


def observe_sides(base: Side, head: Side) -> dict[str, Any]:
    """``copybench semantics`` in each side's interpreter and environment, at the same time
    (what a method does does not depend on the neighbours)."""
    from concurrent.futures import ThreadPoolExecutor

    from copybench.measure.drift import observe_side

    with ThreadPoolExecutor(2) as pool:
        futures = {s.name: pool.submit(observe_side, s.python, s.environ()) for s in (base, head)}
        return {name: f.result() for name, f in futures.items()}


def instruction_cases(cases: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """What the gate counts, as ``(case id, instructions.count_cases case)``: every gate case
    (tensor cases at their sizes, both ways of requires_grad; module copies), then each
    tensor method at the instruction sizes (32 and 1,024 elements, requiring grad), where
    host overhead is all there is."""
    from copybench.measure.instructions import module_case, tensor_case
    from copybench.suite.cases import DEFAULT_THREADS, INSTRUCTION_SIZES, TensorCase

    out: dict[str, dict[str, Any]] = {}
    for c in cases:
        if c["kind"] == "tensor":
            method, numel, dtype, grad = c["args"][:4]
            out[case_id(c)] = tensor_case(method, numel, dtype, grad)
        else:
            out[case_id(c)] = module_case(c["args"][0], c["args"][1])
    tensors = [c for c in cases if c["kind"] == "tensor"]
    for method in dict.fromkeys(c["args"][0] for c in tensors):
        dtype = tensors[0]["args"][2]
        for numel in INSTRUCTION_SIZES:
            key = TensorCase(method, numel, dtype, True, "contiguous", "cpu", DEFAULT_THREADS).id
            out.setdefault(key, tensor_case(method, numel, dtype, True))
    return list(out.items())


# Variables that decide what code an interpreter loads: carried to both sides' counts
# whenever either side has one, shared or not (see :func:`instruction_env`).
LOADER_VARIABLES = ("PYTHONPATH", "LD_PRELOAD", "LD_LIBRARY_PATH")


def instruction_env(base: Side, head: Side) -> tuple[dict[str, str], dict[str, str]]:
    """The settings each side's Valgrind child gets on top of its fixed environment, each
    side with its own value (an empty one removes it): every variable whose value tells the
    two sides' environments apart (set on one side only, or to different values), every
    variable a side was given (``--head-env``, ``--base-env``), and the
    :data:`LOADER_VARIABLES` either side has.

    The child's environment is otherwise fixed, so that counts repeat exactly (see
    :mod:`copybench.measure.instructions`); but a variable that makes the two sides differ - a
    ``PYTHONPATH`` with a sitecustomize, an ``LD_PRELOAD``, one of torch's switches - is
    part of what the gate compares, whether the side was given it or inherited it.  A
    difference can also need a shared variable to act: a sitecustomize on a ``PYTHONPATH``
    both sides inherit, reading a variable they set apart (the power study's ``--placebo``
    sides share the wrapper and differ in its factor).  So the loader's variables go to
    both counts even where they agree, and so does what a side was given: it was given for
    a reason.  Other shared variables are left out: they cannot tell the sides apart.
    """
    b, h = base.environ(), head.environ()
    given = base.env.keys() | head.env.keys()
    keys = sorted(
        k
        for k in b.keys() | h.keys() | given
        if b.get(k) != h.get(k) or k in given or k in LOADER_VARIABLES
    )
    return {k: b.get(k, "") for k in keys}, {k: h.get(k, "") for k in keys}


def count_sides(base: Side, head: Side, cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Instructions per call of :func:`instruction_cases`, in each side's interpreter and
    environment (:func:`instruction_env`): ``{"base": {case: n}, "head": {case: n}, "env":
    [the variables that reached both]}``.  The two Valgrind processes run at the same time
    (each is deterministic, see :mod:`copybench.measure.instructions`); the rounds of wall time are
    over by then."""
    from concurrent.futures import ThreadPoolExecutor

    envs = dict(zip((base.name, head.name), instruction_env(base, head), strict=True))
    with ThreadPoolExecutor(2) as pool:
        futures = {s.name: pool.submit(count_side, s, envs[s.name], cases) for s in (base, head)}
        out: dict[str, Any] = {name: f.result() for name, f in futures.items()}
    out["env"] = sorted(envs[base.name])
    return out


def count_side(side: Side, env: dict[str, str], cases: list[dict[str, Any]]) -> dict[str, float]:
    """Instructions per call of :func:`instruction_cases` in ``side``'s interpreter, with
    ``env`` on top of the counting child's fixed environment; WorkerError on failure."""
    from copybench.measure.instructions import count_cases
    from copybench.measure.workers import WorkerError
    from copybench.suite import stats

    counted = instruction_cases(cases)
    if not counted:
        return {}
    try:
        got = count_cases([c for _, c in counted], python=side.python, env=env)
    except (RuntimeError, subprocess.TimeoutExpired) as e:  # ValgrindUnavailable too
        lines = str(e).strip().splitlines() or [type(e).__name__]
        why = lines[0] + (f" ... {lines[-1].strip()}" if len(lines) > 1 else "")
        raise WorkerError(f"counting instructions in {side.name} failed: {why}") from None
    return {key: stats.median(r) for (key, _), r in zip(counted, got, strict=True)}


def paired_medians(
    data: dict[str, Any], relative: bool = False
) -> dict[str, tuple[list[float], list[float], list[bool]]]:
    """Per case, the base and head process medians round by round - or, ``relative``, each
    process's median over the median of its reference (:func:`reference_of`; rounds whose
    processes recorded none are left out) - and whether head ran second in that round (the
    order the results record)."""
    from copybench.suite import stats

    def value(side: dict[str, Any], case: str) -> float | None:
        m = stats.median(side["cases"][case])
        if not relative:
            return m
        ref = side.get("references", {}).get(case)
        return m / stats.median(ref) if ref else None

    out: dict[str, tuple[list[float], list[float], list[bool]]] = {}
    for r in data["rounds"]:
        head_second = list(r.get("order", ["base", "head"])) == ["base", "head"]
        for case in r["base"]["cases"]:
            if case not in r["head"]["cases"]:
                continue
            b, h = value(r["base"], case), value(r["head"], case)
            if b is None or h is None:
                continue
            bs, hs, o = out.setdefault(case, ([], [], []))
            bs.append(b)
            hs.append(h)
            o.append(head_second)
    return out


# --- checks of what a gate is asked for ----------------------------------------------------------


def check_gate_levels(
    threshold: float | None, alpha: float | None, instruction_threshold: float | None = None
) -> None:
    """UsageError unless the thresholds are fractions of at least 0 and alpha lies in
    (0, 1); None (the default) passes."""
    from copybench.suite.cases import UsageError

    for name, value in (
        ("--threshold", threshold),
        ("--instruction-threshold", instruction_threshold),
    ):
        if value is not None and not 0 <= value < 10:
            raise UsageError(f"{name} must be a fraction such as 0.02, got {value:g}")
    if alpha is not None and not 0 < alpha < 1:
        raise UsageError(f"--alpha must be between 0 and 1, got {alpha:g}")


def gate_levels(
    threshold: float | None, alpha: float | None, instruction_threshold: float | None = None
) -> tuple[float, float, float]:
    """The levels a gate is judged at: those given, the gate's own where None."""
    return (
        DEFAULT_THRESHOLD if threshold is None else threshold,
        DEFAULT_ALPHA if alpha is None else alpha,
        DEFAULT_INSTRUCTION_THRESHOLD if instruction_threshold is None else instruction_threshold,
    )


def allocator_of(choice: str) -> dict[str, str]:
    """``--allocator``'s environment: the gate's fixed thresholds, or none."""
    from copybench.suite.cases import GATE_ALLOCATOR

    return dict(GATE_ALLOCATOR) if choice == "fixed" else {}


def want_instructions(flag: bool | None) -> bool:
    """``--instructions``: None (not given) means where valgrind can count; asked for
    where it cannot is bad input."""
    from copybench.measure.instructions import valgrind_available
    from copybench.suite.cases import UsageError

    if flag is None:
        return valgrind_available()
    if flag and not valgrind_available():
        raise UsageError("--instructions needs valgrind with callgrind_control (not found)")
    return flag


if __name__ == "__main__":
    from copybench.measure.workers import worker_main

    worker_main(measure_process)
