"""Instructions per call from Valgrind's callgrind: the deterministic signal for CI.

Why: on a shared runner a 300 ns overhead drowns in timing noise, but the number of
instructions the CPU retires for one ``x.clone().detach()`` does not depend on the
neighbours.  For small tensors, where host overhead (dispatcher, autograd bookkeeping,
allocator) dominates, the instruction count *is* the cost that matters, and a change in it
is a change in the code path.

Why not ``torch.utils.benchmark.Timer.collect_callgrind`` (the library that does this, and
the first choice): it starts one Valgrind process per statement, and each pays for
``import torch`` under full instrumentation - about 25 s here, 35-50 s on a loaded 2-core
machine - so the tracked and the untracked clone at one size cost about a minute, too much
for the asv suite's budget.  (It also launches ``python`` from ``PATH``, which outside an
activated virtualenv is an interpreter without torch.)  This module keeps its method -
callgrind with collection toggled around a loop of ``calls`` calls through
``torch._C._valgrind_toggle`` and one dump per statement - but measures every statement and
size in **one** Valgrind process, started with instrumentation off (``import torch`` then
runs about 3x faster) and switched on with ``callgrind_control -i on`` once torch is loaded.

Counts are per call and net of the loop: an empty statement is counted the same way and
subtracted.  Each statement is warmed up with a full untimed loop first (the first loop pays
for one-time dispatcher and allocator work), measured ``rounds`` times, and the median
reported.

Repeatable across invocations, not only within one: the counts follow glibc malloc's state
when the loops start, which is the sum of everything the child did before, so nothing of the
parent's may reach the child - not its environment, working directory, interpreter name,
``$TMPDIR`` or pid (see :func:`_run_valgrind`).  Valgrind lays the guest out the same way
every time, ASLR or not, so with its inputs fixed the child, and its counts, repeat exactly;
fastbins are off so that what history remains (the other sizes and statements counted in the
same run) matters less.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from copybench.suite.cases import INSTRUCTION_METHODS, INSTRUCTION_SIZES

# This module, run under Valgrind (_run_valgrind).
WORKER = "copybench.measure.instructions"
DEFAULT_CALLS = 200
DEFAULT_ROUNDS = 3
# Fewer calls for larger copies (calls_for): about CALL_BYTES copied per loop, and at least
# MIN_CALLS calls.
CALL_BYTES = 2**22
MIN_CALLS = 5
# The child's handshake with the parent around ``callgrind_control -i on``.
_READY = "ready"
_GO = "go"


class ValgrindUnavailable(RuntimeError):
    """valgrind / callgrind_control missing, or torch built without the callgrind hooks."""


def valgrind_available() -> bool:
    """True where callgrind can count instructions for this interpreter's torch."""
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        return False
    import torch

    return bool(getattr(torch._C, "_valgrind_supported_platform", lambda: False)())


@dataclass(frozen=True)
class InstructionCount:
    """Instructions per call of one registry method on one tensor, net of the loop."""

    method: str
    numel: int
    dtype: str
    requires_grad: bool
    instructions: float
    rounds: tuple[float, ...]

    def as_dict(self) -> dict:
        d = asdict(self)
        d["rounds"] = list(self.rounds)
        return d


def tensor_case(
    method: str, numel: int, dtype: str = "float32", requires_grad: bool = True
) -> dict:
    """A tensor statement for :func:`count_cases`: ``method`` on a contiguous CPU tensor."""
    return {
        "kind": "tensor",
        "method": method,
        "numel": int(numel),
        "dtype": dtype,
        "requires_grad": bool(requires_grad),
    }


def module_case(method: str, model: str) -> dict:
    """A module statement for :func:`count_cases`: ``method`` on a reference model."""
    return {"kind": "module", "method": method, "model": model}


def calls_for(case: dict, calls: int = DEFAULT_CALLS) -> int:
    """Calls per counted loop: ``calls`` for a small tensor, fewer as the copy grows, so
    that every loop costs about the same under Valgrind (a 4 MiB clone takes ~25 ms there);
    at least MIN_CALLS.  The per-call count is the loop's total over its calls, so how many
    calls only changes how finely the loop's fixed cost is spread."""
    from copybench.suite.cases import MODELS, nbytes

    if case["kind"] == "module":
        size = MODELS[case["model"]].n_params * 4
    else:
        size = nbytes(case["numel"], case["dtype"])
    return max(MIN_CALLS, min(calls, CALL_BYTES // max(size, 1)))


def count_instructions(
    methods: Sequence[str] = INSTRUCTION_METHODS,
    sizes: Sequence[int] = INSTRUCTION_SIZES,
    *,
    dtype: str = "float32",
    requires_grad: bool = True,
    calls: int = DEFAULT_CALLS,
    rounds: int = DEFAULT_ROUNDS,
    timeout: float = 600,
    python: str | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[tuple[str, int], InstructionCount]:
    """Instructions per call of each tensor method at each size, from one Valgrind run
    (:func:`count_cases` over the grid, sizes outermost)."""
    for m in methods:
        from copybench.suite.methods import get_method

        if get_method(m).kind != "tensor":
            raise ValueError(f"{m!r} does not copy tensors")
    cases = [tensor_case(m, s, dtype, requires_grad) for s in sizes for m in methods]
    got = count_cases(cases, calls=calls, rounds=rounds, timeout=timeout, python=python, env=env)
    return {
        (c["method"], c["numel"]): InstructionCount(
            c["method"], c["numel"], dtype, requires_grad, stats_median(r), tuple(r)
        )
        for c, r in zip(cases, got, strict=True)
    }


def count_cases(
    cases: Sequence[dict],
    *,
    calls: int = DEFAULT_CALLS,
    rounds: int = DEFAULT_ROUNDS,
    timeout: float = 600,
    python: str | None = None,
    env: Mapping[str, str] | None = None,
) -> list[list[float]]:
    """Instructions per call of each case (:func:`tensor_case`, :func:`module_case`), one
    list of ``rounds`` counts per case, from one Valgrind run.

    CPU only, one thread (callgrind serialises threads anyway).  ``python`` counts in
    another interpreter (another torch build; it must be able to import torch, and gets
    this copybench on its path); ``env`` adds settings to the child's fixed environment
    (a ``PYTHONPATH`` goes before this copybench's folder; an empty value removes the key):
    both are part of what is measured, like the two sides of ``copybench gate``.  Raises
    ValgrindUnavailable where callgrind cannot run, CaseError/UnknownMethodError for bad
    input (checked here, before Valgrind starts).
    """
    from copybench.suite.cases import check_model, dtype_of
    from copybench.suite.methods import get_method

    for c in cases:
        if get_method(c["method"]).kind != c["kind"]:
            raise ValueError(f"{c['method']!r} does not copy a {c['kind']}")
        if c["kind"] == "tensor":
            dtype_of(c["dtype"])
        else:
            check_model(c["model"])
    if not valgrind_available():
        raise ValgrindUnavailable("valgrind with callgrind_control is needed to count")
    spec = {
        "cases": [{**c, "calls": calls_for(c, calls)} for c in cases],
        "rounds": rounds,
    }
    # Absolute: the child runs in this copybench's folder, where a relative path (e.g.
    # ``--baseline-python .baseline/bin/python``) would name nothing.
    exe = os.path.abspath(python) if python else sys.executable
    run = {"python": _interpreter(exe), "env": dict(env or {})}
    # Under /tmp, not $TMPDIR: the output path is on Valgrind's command line, which, like
    # everything else the child sees, should not depend on the parent's environment.
    base = "/tmp" if os.path.isdir("/tmp") and os.access("/tmp", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="copybench-callgrind-", dir=base) as tmp:
        try:
            totals = _run_valgrind(spec, tmp, instr_atstart=False, timeout=timeout, **run)
        except _InstrumentationNotSwitched:
            totals = _run_valgrind(spec, tmp, instr_atstart=True, timeout=timeout, **run)
    return _per_call(spec, totals)


def stats_median(values: Sequence[float]) -> float:
    from copybench.suite import stats

    return stats.median(values)


class _InstrumentationNotSwitched(RuntimeError):
    pass


def _run_valgrind(
    spec: dict,
    tmp: str,
    *,
    instr_atstart: bool,
    timeout: float,
    python: str,
    env: Mapping[str, str],
) -> list[int]:
    """One Valgrind process for every statement; the callgrind totals of its dumps, in order.

    Why so much care over the child's surroundings: the counts depend on glibc malloc's
    state when the loops start (the data of each tensor comes from ``posix_memalign``, which
    bypasses the tcache and walks the bins, coalescing and splitting whatever lies there),
    and that state is the sum of every allocation the child made before.  Anything of the
    parent's that reaches the child - environment variables (``PATH``), the working
    directory (``sys.path[0]`` under ``-m``), the pid that ``callgrind_control`` was given,
    its output - changes that history, and moved the 1,024-element overhead by up to 6%
    between invocations while runs from one shell repeated exactly.  Under Valgrind the
    guest's address space is laid out the same every time (ASLR does not reach it), so with
    the inputs fixed the child is deterministic and so are its counts.  ``python`` and
    ``env`` are the inputs a caller chooses (see :func:`count_instructions`).
    """
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    switch_on = not instr_atstart
    root = _package_root()
    valgrind = shutil.which("valgrind") or "valgrind"
    child_env = _child_environ(env, root, valgrind)
    cmd = [
        valgrind,
        "--tool=callgrind",
        f"--callgrind-out-file={os.path.join(tmp, 'callgrind.out')}",
        f"--instr-atstart={'yes' if instr_atstart else 'no'}",
        "--collect-atstart=no",
        python,
        "-m",
        WORKER,
        json.dumps({**spec, "switch_on": switch_on}, sort_keys=True),
    ]
    _run_child(cmd, child_env, root, tmp, switch_on, timeout)
    totals = _dump_totals(tmp)
    if switch_on and totals and not any(totals):
        raise _InstrumentationNotSwitched("no instructions counted")
    return totals


def _child_environ(env: Mapping[str, str], root: str, valgrind: str) -> dict[str, str]:
    """The child's whole environment: nothing from the parent's, a fixed, minimal one, with
    ``env`` (the caller's settings) on top.  PYTHONPATH and the working directory are the
    folder holding this copybench, so the child imports the same code whatever the
    parent's path and cwd were."""
    fixed = {
        "PATH": os.pathsep.join([os.path.dirname(valgrind), "/usr/bin", "/bin"]),
        "HOME": "/nonexistent",
        "LC_ALL": "C",
        "PYTHONPATH": root,
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        # No fastbins: a freed small chunk then coalesces at once instead of waiting for a
        # malloc_consolidate that some later request may or may not trigger, which was the
        # bulk of the dependence on heap history (the 1,024-element overhead moved 7% with
        # the order of the sizes counted before it, 0.1% without fastbins).
        "GLIBC_TUNABLES": "glibc.malloc.mxfast=0",
    }
    for key, value in env.items():
        if key == "PYTHONPATH":  # this copybench stays on the path, after the side's own
            # Absolute, as the parent's working directory resolves them: the child runs in
            # another one (``root``), where a relative entry would name nothing.
            own = [os.path.abspath(p) for p in value.split(os.pathsep) if p]
            fixed[key] = os.pathsep.join([*own, root])
        elif value == "":
            fixed.pop(key, None)
        else:
            fixed[key] = value
    return fixed


def _run_child(
    cmd: list[str], env: dict[str, str], root: str, tmp: str, switch_on: bool, timeout: float
) -> None:
    """Run the Valgrind child (switching its instrumentation on once it is ready, where
    asked); RuntimeError with the end of its stderr where it fails."""
    with open(os.path.join(tmp, "stderr"), "w+") as err:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            cwd=root,
            text=True,
        )
        try:
            if switch_on and not _switch_instrumentation_on(proc, env, timeout):
                proc.kill()
                proc.wait()
                raise _InstrumentationNotSwitched("callgrind_control -i on failed")
            proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        err.seek(0)
        stderr = err.read()
    if proc.returncode:
        tail = "\n".join(stderr.strip().splitlines()[-10:])
        raise RuntimeError(f"callgrind run failed (status {proc.returncode}):\n{tail}")


def _dump_totals(tmp: str) -> list[int]:
    """The totals of the child's dumps, one per measured loop, in the order the child ran
    them (``callgrind.out.1``, ``callgrind.out.2`` ...)."""
    parts = sorted(
        (int(f.rsplit(".", 1)[1]), f)
        for f in os.listdir(tmp)
        if re.fullmatch(r"callgrind\.out\.\d+", f)
    )
    return [_total_instructions(os.path.join(tmp, f)) for _, f in parts]


def _interpreter(exe: str) -> str:
    """An interpreter (``sys.executable`` for this one), under one name whatever name
    started it.

    ``.venv/bin/python`` (``python -c``) and ``.venv/bin/python3`` (the ``copybench``
    script's shebang) are the same program, but the name becomes ``sys.executable`` in the
    child and its length moved the counts by 0.1-0.2%.  The first of ``python3``, ``python``
    next to ``exe`` that is the same file is used.
    """
    for name in ("python3", "python"):
        candidate = os.path.join(os.path.dirname(exe), name)
        if os.path.exists(candidate) and os.path.samefile(candidate, exe):
            return candidate
    return exe


def _package_root() -> str:
    """The folder that holds the ``copybench`` package this module was imported from."""
    from copybench.measure.workers import PACKAGE_ROOT

    return PACKAGE_ROOT


def _switch_instrumentation_on(proc: subprocess.Popen, env: dict, timeout: float) -> bool:
    """Wait for the child to be ready, switch its instrumentation on, and let it go on.

    The parent runs ``callgrind_control`` rather than the child, so that no subprocess, pid
    or captured output enters the child's heap history (see :func:`_run_valgrind`).  It runs
    in the child's environment: with another ``TMPDIR`` its ``vgdb`` looks for Valgrind's
    FIFOs under another prefix, and the counts moved by up to 0.1%.  False where the child
    died first or ``callgrind_control`` could not reach it.
    """
    assert proc.stdin is not None and proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready or proc.stdout.readline().strip() != _READY:
        return False
    r = subprocess.run(
        [shutil.which("callgrind_control") or "callgrind_control", "-i", "on", str(proc.pid)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if r.returncode:
        return False
    proc.stdin.write(_GO + "\n")
    proc.stdin.flush()
    return True


def _total_instructions(path: str) -> int:
    """The Ir total of one callgrind dump (its ``totals:`` or ``summary:`` line)."""
    with open(path) as f:
        for line in f:
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def _statements(spec: dict) -> list[int]:
    """The measured loops, in order, as indices into ``spec["cases"]``: per round, the
    empty statement (-1) then every case; one round more than ``spec["rounds"]``, the first
    of which is not reported (its first loops still moved by up to 2% from the heap the
    warm-up left, where later rounds agree to 0.1%)."""
    return [-1, *range(len(spec["cases"]))] * (spec["rounds"] + 1)


def _per_call(spec: dict, totals: list[int]) -> list[list[float]]:
    order = _statements(spec)
    if len(totals) != len(order):
        raise RuntimeError(f"expected {len(order)} callgrind dumps, found {len(totals)}")
    out: list[list[float]] = [[] for _ in spec["cases"]]
    noop = 0.0
    first = len(order) // (spec["rounds"] + 1)
    for k, (i, total) in enumerate(zip(order, totals, strict=True)):
        if i < 0:
            noop = total / DEFAULT_CALLS
        elif k >= first:
            out[i].append(total / spec["cases"][i]["calls"] - noop)
    return out


def _child(spec: dict) -> int:
    """Runs under Valgrind: prepare every case, wait to be switched on, count loops.

    The cyclic garbage collector is off from the warm-up on: a collection fires every 700
    container allocations, so whether one lands in a 200-call loop is a matter of phase,
    and it would add its (heap-dependent) cost to whichever statement it hit.  The counted
    statements make no reference cycles, so nothing is left for it to free.
    """
    import gc

    import torch

    from copybench.suite.cases import make_model, make_tensor
    from copybench.suite.methods import get_method

    torch.set_num_threads(1)
    noop = (lambda: None, DEFAULT_CALLS)
    fns: list[tuple[object, int]] = []
    sources: dict[tuple, object] = {}  # one source per tensor or model, as first named
    for c in spec["cases"]:
        m = get_method(c["method"])
        if c["kind"] == "tensor":
            key = (c["numel"], c["dtype"], c["requires_grad"])
            if key not in sources:
                sources[key] = make_tensor(*key, "contiguous", "cpu")
            fns.append((m.bind(sources[key]), c["calls"]))
        else:
            key = ("model", c["model"])
            if key not in sources:
                sources[key] = make_model(c["model"], "cpu")
            model, model_spec = sources[key]
            fns.append((m.bind(model, model_spec.build), c["calls"]))
    gc.collect()
    gc.disable()
    for fn, calls in fns:  # a full untimed loop each: one-time costs stay out
        for _ in range(calls):
            fn()
    if spec["switch_on"]:
        # The parent switches instrumentation on (_switch_instrumentation_on) in between.
        sys.stdout.write(_READY + "\n")
        sys.stdout.flush()
        if sys.stdin.readline().strip() != _GO:
            return 3
    toggle = torch._C._valgrind_toggle
    toggle_and_dump = torch._C._valgrind_toggle_and_dump_stats
    for i in _statements(spec):
        fn, calls = noop if i < 0 else fns[i]
        toggle()
        for _ in range(calls):
            fn()
        toggle_and_dump()
    return 0


if __name__ == "__main__":
    sys.exit(_child(json.loads(sys.argv[1])))
