"""``copybench compare BASE HEAD``: which benchmarks really got slower.

The process is the statistical unit.  A verdict on wall time needs several fresh processes
per side, run interleaved with the other side's (``copybench gate`` writes such results;
give its ``--out`` file as BASE alone): one log ratio per round, the exact rank-sum test
between the rounds that ran head second and those that ran it first (the order was drawn at
random), Holm-adjusted over every case, and "regressed" only when that is significant *and*
the estimate lies beyond ``--threshold``; a method whose semantics differ between the
gate's sides is "drifted", which fails like a regression.  Two results files (asv,
pytest-benchmark) hold one run per side, whose samples share their process and their hour:
they are compared across runs, with the ratio of medians shown and the verdict "too few
processes" - never "regressed".  Instruction counts repeat exactly and are judged by the
threshold alone.

Inputs: a ``copybench gate`` results file; two asv results files; an asv results folder (or
two) plus ``--base-env`` and ``--head-env``; or two pytest-benchmark JSON files, written by
``--benchmark-json`` or saved by ``--benchmark-autosave``/``--benchmark-save`` and then named
by path or by run id (``0001``) as ``pytest-benchmark compare`` takes them.  A saved run
holds raw samples only with ``--benchmark-save-data``; without them a case keeps its median
alone, and a warning says so.

Both sides must come from the same CPU model and GPU model (a ratio across two machines
measures the machines): different ones are refused unless ``--allow-different-machines``.
A gate results file comes from one machine by construction.

Exit status 0 when nothing regressed (or drifted), 1 when something did, 2 on bad input.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from copybench.formats import (
    PYTEST_BENCHMARK_STORAGE,
    THIS_INTERPRETER_ENVS,
    ResultsError,
    is_gate_results,
    is_pytest_benchmark,
    read_gate,
)
from copybench.suite.cases import CASE_AXES, TENSOR_AXES, ModuleCase, TensorCase
from copybench.suite.units import NOT_A_NUMBER, format_ratio, format_value

if TYPE_CHECKING:
    import pandas as pd


class DifferentMachinesError(ResultsError):
    """BASE and HEAD were measured on different CPU or GPU models."""


# Comparisons across runs (asv, pytest-benchmark): only deterministic rows get verdicts there.
ACROSS_RUNS_THRESHOLD = 0.05
ACROSS_RUNS_ALPHA = 0.05


@dataclass(frozen=True)
class Verdicts:
    """What ``copybench compare`` prints: the table, rendered at its levels, the machines'
    check (None for gate results), and a warning for stderr (or None)."""

    table: pd.DataFrame
    threshold: float
    alpha: float
    machines: dict[str, Any] | None = None
    warning: str | None = None

    @property
    def failed(self) -> bool:
        from copybench.measure.gate import FAILING

        return bool(self.table["verdict"].isin(FAILING).any())

    def render(self, fmt: str = "text") -> str:
        return render(self.table, fmt, self.threshold, self.alpha, self.machines)


def compare_inputs(
    base: str,
    head: str | None = None,
    *,
    storage: str = PYTEST_BENCHMARK_STORAGE,
    base_env: str | None = None,
    head_env: str | None = None,
    allow_different_machines: bool = False,
    threshold: float | None = None,
    alpha: float | None = None,
    instruction_threshold: float | None = None,
) -> Verdicts:
    """The verdicts between ``base`` and ``head`` as ``copybench compare`` takes them:
    gate results alone (judged at the gate's levels unless given), or two results files,
    run ids or an asv folder with two environments (compared across runs)."""
    from copybench.measure.gate import check_gate_levels
    from copybench.results.tidy import saved_run

    check_gate_levels(threshold, alpha, instruction_threshold)
    path = saved_run(base, storage)
    if path.is_file() and is_gate_results(path):
        if head or base_env or head_env:
            raise ResultsError("a copybench gate results file holds both sides: give it alone")
        table = compare_gate(read_gate(path), threshold, alpha, instruction_threshold)
        return Verdicts(table, table.attrs["threshold"], table.attrs["alpha"])
    threshold = ACROSS_RUNS_THRESHOLD if threshold is None else threshold
    alpha = ACROSS_RUNS_ALPHA if alpha is None else alpha
    head_path = saved_run(head, storage) if head is not None else None
    b, h = load_pair(path, head_path, base_env, head_env)
    machines = check_machines(b, h, allow_different=allow_different_machines)
    table = compare(b, h, threshold=threshold, alpha=alpha)
    return Verdicts(table, threshold, alpha, machines, missing_samples(b, h))


def missing_samples(base: pd.DataFrame, head: pd.DataFrame) -> str | None:
    """The warning due where a side's timings hold no raw samples (a run pytest-benchmark
    saved without ``--benchmark-save-data``, asv run without ``--record-samples``): each
    case is then its median alone."""

    def lacking(df: pd.DataFrame) -> bool:
        timed = df[(df["status"] == "ok") & (df["unit"] == "seconds")]
        return not timed.empty and not any(isinstance(s, list) and s for s in timed["samples"])

    sides = [name for name, df in (("BASE", base), ("HEAD", head)) if lacking(df)]
    if not sides:
        return None
    pytest_benchmark = (base["source"] == "pytest-benchmark").any()
    how = (
        "saved without --benchmark-save-data"
        if pytest_benchmark
        else "run without --record-samples"
    )
    verb = "holds" if len(sides) == 1 else "hold"
    return (
        f"{' and '.join(sides)} {verb} no raw samples ({how}): per-case statistics only, "
        "no case can be significant"
    )


def check_machines(
    base: pd.DataFrame, head: pd.DataFrame, allow_different: bool = False
) -> dict[str, Any]:
    """Whether both sides ran on the same CPU model and GPU model: ``{"base", "head"}`` (the
    identities), ``"check"`` ("same", "different" or "unchecked") and ``"note"`` (what the
    output header says, or None).

    Raises DifferentMachinesError for different models unless ``allow_different``.  A GPU
    is compared where both sides name one (a side without CUDA has no GPU case in common).
    The machines' names and core counts may differ (hosted runners, a resized VM).
    """
    from copybench.results.tidy import machine_identity

    def identity(df: pd.DataFrame, side: str) -> Any:
        try:
            return machine_identity(df)
        except ResultsError as e:
            raise ResultsError(f"{side} holds {e}") from None

    b, h = identity(base, "BASE"), identity(head, "HEAD")
    differ, unknown = [], []
    for label, x, y in (("CPU", b.cpu, h.cpu), ("GPU", b.gpu, h.gpu)):
        if x is None or y is None:
            sides = [s for s, v in (("BASE", x), ("HEAD", y)) if v is None]
            unknown.append(
                f"{' and '.join(sides)} {'record' if len(sides) > 1 else 'records'} "
                f"no {label} model"
            )
        elif x != y and "none" not in (x, y):
            differ.append(f"{label} {x!r} vs {y!r}")
    if differ and not allow_different:
        raise DifferentMachinesError(
            f"BASE and HEAD ran on different machines ({'; '.join(differ)}): a ratio would "
            "measure the machines; --allow-different-machines compares them anyway"
        )
    if differ:
        check = "different"
        note = (
            f"different machines, compared as --allow-different-machines asks "
            f"({'; '.join(differ)}): BASE {b.describe()}, HEAD {h.describe()}; each ratio "
            "mixes any change with the difference between the machines"
        )
    elif unknown:
        check = "unchecked"
        note = f"the machines could not be checked: {'; '.join(unknown)}"
    else:
        check, note = "same", None
    return {"base": b.as_dict(), "head": h.as_dict(), "check": check, "note": note}


# --- loading ---------------------------------------------------------------------------------


def _kind(path: Path) -> str:
    if not path.exists():
        raise ResultsError(f"{path}: no such file or directory")
    if path.is_file():
        # A truncated file is malformed, whichever tool wrote it: say so, rather than take
        # it for the other kind and refuse the pair.
        try:
            json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ResultsError(f"{path}: not a readable results file ({e})") from None
        if is_pytest_benchmark(path):
            return "pytest-benchmark"
    return "asv"


def _load(path: Path, kind: str) -> pd.DataFrame:
    from copybench.results.tidy import load_asv, load_pytest_benchmark

    return load_pytest_benchmark(path) if kind == "pytest-benchmark" else load_asv(path)


def load_pair(
    base: str | os.PathLike,
    head: str | os.PathLike | None = None,
    base_env: str | None = None,
    head_env: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two sides to compare, each one environment at one commit (ResultsError if not)."""
    base_path = Path(base)
    head_path = Path(head) if head is not None else base_path
    kinds = {p: _kind(p) for p in (base_path, head_path)}
    if kinds[base_path] != kinds[head_path]:
        raise ResultsError(
            f"cannot compare {kinds[base_path]} results ({base_path}) with "
            f"{kinds[head_path]} results ({head_path})"
        )
    if (base_env or head_env) and kinds[base_path] != "asv":
        raise ResultsError("--base-env/--head-env select environments in asv results only")
    if head is None and not (base_env and head_env):
        raise ResultsError("give HEAD, or an asv results folder with --base-env and --head-env")
    b = _load(base_path, kinds[base_path])
    h = b if head_path == base_path else _load(head_path, kinds[head_path])
    b = _select_env(b, base_env, base_path)
    h = _select_env(h, head_env, head_path)
    return _same_commit(b, h, base_path, head_path)


def _select_env(df: pd.DataFrame, env: str | None, path: Path) -> pd.DataFrame:
    """Rows of one environment: ``env`` is an asv env name or a torch version (``2.13.0``
    also matches ``2.13.0+cpu``).  Without ``env`` the input must hold a single one."""
    envs = sorted(set(zip(df["env"].astype(str), df["torch_version"].astype(str), strict=True)))
    described = "; ".join(f"{e} (torch {t})" for e, t in envs)
    if env is None:
        if len(envs) > 1:
            raise ResultsError(
                f"{path}: holds {len(envs)} environments ({described}); "
                "choose with --base-env/--head-env"
            )
        return df
    torch_base = df["torch_version"].astype(str).str.split("+").str[0]
    chosen = df[(df["env"] == env) | (df["torch_version"] == env) | (torch_base == env)]
    if chosen.empty:
        raise ResultsError(f"{path}: no environment matches {env!r}; found: {described}")
    if chosen["env"].nunique() > 1:
        # The main job's environment (this interpreter: "installed-...", or asv's
        # "existing-..." before it) beside the matrix's: a torch version names the one the
        # matrix built.
        built = sorted(e for e in chosen["env"].unique() if not _this_interpreter(str(e)))
        if len(built) == 1:
            return chosen[chosen["env"] == built[0]]
        names = ", ".join(sorted(map(str, chosen["env"].unique())))
        raise ResultsError(
            f"{path}: {env!r} matches {chosen['env'].nunique()} environments; name one of: {names}"
        )
    return chosen


def _this_interpreter(env_name: str) -> bool:
    """Whether an asv environment is the interpreter copybench ran in (not one the matrix
    built)."""
    return env_name.split("-", 1)[0] in THIS_INTERPRETER_ENVS


def _same_commit(
    b: pd.DataFrame, h: pd.DataFrame, base_path: Path, head_path: Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep one commit per side: the newest both sides share, else each side's newest."""

    def newest(df: pd.DataFrame, among: set | None = None) -> Any:
        d = df if among is None else df[df["commit"].isin(among)]
        return d.sort_values("date", na_position="first")["commit"].iloc[-1]

    if b["commit"].nunique() <= 1 and h["commit"].nunique() <= 1:
        return b, h
    shared = set(b["commit"]) & set(h["commit"])
    if shared:
        c = newest(b, shared)
        return b[b["commit"] == c], h[h["commit"] == c]
    return b[b["commit"] == newest(b)], h[h["commit"] == newest(h)]


# --- comparing -------------------------------------------------------------------------------


# The axes an id can do without: requires_grad (a tensor case without it does not require
# grad; an id outside the grid leaves it out) and threads (``-t<threads>`` where present).
_OPTIONAL_AXES = ("requires_grad", "threads")
# What a grid tensor case's id needs: its method and the tensor axes but those.
_TENSOR_ID_AXES = tuple(a for a in ("method", *TENSOR_AXES) if a not in _OPTIONAL_AXES)
# An id outside the grid: every axis present, in the case axes' order, the device last as
# in the grid's own ids.
_OTHER_ID_AXES = sorted(
    (a for a in CASE_AXES if a not in _OPTIONAL_AXES), key=lambda a: a == "device"
)


def _case_id(row: Any) -> str:
    """The case's id as the harnesses name it (``clone-1024-float32-grad-...-t1``) for the
    grid's own benchmarks; otherwise asv's parameter list, e.g. ``1024, 'all'``."""
    threads = row.get("threads")
    threads = int(threads) if isinstance(threads, int | float) and _present(threads) else threads
    if _present(row.get("model")) and _present(row.get("device")):
        return ModuleCase(row["method"], row["model"], row["device"], threads).id
    if all(_present(row.get(k)) for k in _TENSOR_ID_AXES):
        return TensorCase(
            row["method"],
            int(row["numel"]),
            row["dtype"],
            bool(row["requires_grad"]),
            row["layout"],
            row["device"],
            threads,
        ).id
    name = row.get("asv_name")
    if isinstance(name, str) and name.endswith(")") and "(" in name:
        return name[name.index("(") + 1 : -1]
    # Outside the grid (transfers, the harness's paired-overhead tests): every axis present.
    parts = [
        str(int(v)) if k == "numel" else str(v) for k in _OTHER_ID_AXES if _present(v := row.get(k))
    ]
    if _present(threads):
        parts.append(f"t{threads}")
    return "-".join(parts)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _indexed(df: pd.DataFrame, side: str) -> pd.DataFrame:
    ok = df[df["status"] == "ok"].copy()
    ok["case"] = [_case_id(r) for _, r in ok.iterrows()]
    dup = ok.duplicated(["metric", "case"], keep=False)
    if dup.any():
        first = ok[dup].iloc[0]
        raise ResultsError(
            f"{side} holds {int(dup.sum())} measurements of the same cases "
            f"(e.g. {first['metric']} {first['case']}): several machines or commits; "
            "pass a single results file"
        )
    return ok.set_index(["metric", "case"])


# Units of measures that repeat exactly (callgrind instruction counts: 0.000% spread over
# runs and invocations, see copybench.measure.instructions): a change beyond the threshold is real
# without samples or a significance test.
DETERMINISTIC_UNITS = frozenset({"instructions"})


def compare(
    base: pd.DataFrame, head: pd.DataFrame, threshold: float = 0.05, alpha: float = 0.05
) -> pd.DataFrame:
    """One row per benchmark present on both sides, sorted by ratio (worst first).

    Columns: benchmark, case, unit, base_median, head_median, ratio, ci_low, ci_high, p
    (Holm-adjusted), n_base, n_head, verdict.  Raises ResultsError when nothing is shared.
    """
    import pandas as pd

    from copybench.suite import stats

    b, h = _indexed(base, "BASE"), _indexed(head, "HEAD")
    common = b.index.intersection(h.index)
    if common.empty:
        raise ResultsError(
            f"no benchmarks in common (BASE has {len(b)} measurements, HEAD {len(h)})"
        )
    out = []
    for key in common:
        rb, rh = b.loc[key], h.loc[key]
        bs, hs = _samples(rb), _samples(rh)
        base_median, head_median = stats.median(bs), stats.median(hs)
        ratio = head_median / base_median if base_median else math.nan
        deterministic = rb["unit"] in DETERMINISTIC_UNITS
        ci = ratio if deterministic else math.nan
        c = stats.Change(base_median, head_median, ratio, ci, ci, math.nan, len(bs), len(hs))
        if deterministic:
            verdict = stats.verdict(c, threshold=threshold, deterministic=True)
        else:
            # One run per side: its samples share one process (or asv's few, which it does
            # not tell apart) and one hour; no statistic over them separates a change from
            # where and when the run landed.
            verdict = "too few processes"
        out.append(_row(key[0], key[1], rb["unit"], c, verdict, asv_name=rh.get("asv_name")))
    table = pd.DataFrame(out)
    return table.sort_values(["ratio", "benchmark", "case"], ascending=[False, True, True])


def compare_gate(
    data: dict[str, Any],
    threshold: float | None = None,
    alpha: float | None = None,
    instruction_threshold: float | None = None,
) -> pd.DataFrame:
    """The verdicts of a ``copybench gate`` run (see :mod:`copybench.measure.gate`): per timed case,
    the rounds' order-balanced estimate and exact rank-sum test, Holm-adjusted over the
    cases; per counted case, the instruction ratio against ``instruction_threshold``; per
    method and property whose observed semantics differ between the sides, "drifted".
    Thresholds and alpha default to the gate's."""
    import pandas as pd

    from copybench.measure.gate import gate_levels, paired_medians
    from copybench.suite import stats

    threshold, alpha, instruction_threshold = gate_levels(threshold, alpha, instruction_threshold)
    # Each case twice: its raw time, and its time over its in-process reference; one Holm
    # family over both, so that either may name it and A/A still names nothing with
    # probability 1 - alpha.
    timed = {
        "gate": paired_medians(data),
        "gate-relative": paired_medians(data, relative=True),
    }
    if not timed["gate"]:
        raise ResultsError("the gate results hold no case measured on both sides")
    tests = [
        (benchmark, case, stats.order_balanced_change(b, h, o, confidence=1 - alpha))
        for benchmark, pairs in timed.items()
        for case, (b, h, o) in pairs.items()
    ]
    adjusted = stats.holm_adjust([c.p for _, _, c in tests])
    out = _drift_rows(data.get("semantics"))
    out += _instruction_rows(data.get("instructions") or {}, instruction_threshold)
    raw = {case: c for benchmark, case, c in tests if benchmark == "gate"}
    for (benchmark, case, c), p in zip(tests, adjusted, strict=True):
        verdict = stats.process_verdict(c, len(tests), threshold=threshold, alpha=alpha, p=p)
        if benchmark == "gate-relative":
            verdict = stats.relative_verdict(verdict, raw[case], threshold)
        unit = "seconds" if benchmark == "gate" else "relative"
        out.append(_row(benchmark, case, unit, c, verdict, p=p, processes=c.n_base))
    table = pd.DataFrame(out)
    table.attrs["gate"] = True
    table.attrs["threshold"] = threshold
    table.attrs["alpha"] = alpha
    table.attrs["instruction_threshold"] = instruction_threshold
    table.attrs["instruction_env"] = (data.get("instructions") or {}).get("env")
    return table.sort_values(["ratio", "case"], ascending=[False, True], na_position="first")


def _row(
    benchmark: str,
    case: str,
    unit: str,
    c: Any,
    verdict: str,
    *,
    p: float = math.nan,
    processes: int = 1,
    asv_name: str | None = None,
) -> dict[str, Any]:
    """One row of a comparison table: the case, both sides' medians, the ratio with its CI
    (``c``, a :class:`copybench.suite.stats.Change`), the p-value after correction, the
    samples and processes behind it, and the verdict."""
    return {
        "benchmark": benchmark,
        "case": case,
        "unit": unit,
        "asv_name": asv_name,
        "base_median": c.base_median,
        "head_median": c.head_median,
        "ratio": c.ratio,
        "ci_low": c.ci_low,
        "ci_high": c.ci_high,
        "p": p,
        "n_base": c.n_base,
        "n_head": c.n_head,
        "processes": processes,
        "verdict": verdict,
    }


def _drift_rows(semantics: dict[str, Any] | None) -> list[dict]:
    """One "drifted" row per method and property whose observed semantics differ between
    the gate's sides (:mod:`copybench.measure.drift`); none where the results hold no semantics."""
    from copybench.measure.drift import drift_rows

    if not semantics or "base" not in semantics or "head" not in semantics:
        return []
    from copybench.suite.stats import Change

    nan = math.nan
    return [
        _row(
            "gate-semantics",
            f"{d['method']}: {d['property']}",
            "observed",
            Change(d["base"], d["head"], nan, nan, nan, nan, 1, 1),
            "drifted",
        )
        for d in drift_rows(semantics["base"], semantics["head"])
    ]


def _instruction_rows(counts: dict[str, dict[str, float]], threshold: float) -> list[dict]:
    """The gate's instruction counts, both sides (one Valgrind process each): exact, so
    judged by the threshold alone, and outside the timed tests' multiplicity."""
    from copybench.measure.gate import INSTRUCTION_FLOOR, INSTRUCTION_NOISE
    from copybench.suite import stats
    from copybench.suite.cases import tensors_of_case_id

    base, head = counts.get("base", {}), counts.get("head", {})
    rows = []
    for case in sorted(set(base) & set(head)):
        b, h = base[case], head[case]
        ratio = h / b if b else math.nan
        c = stats.Change(b, h, ratio, ratio, ratio, math.nan, 1, 1)
        tensors = tensors_of_case_id(case)
        floor = INSTRUCTION_FLOOR * tensors if tensors else None
        noise = INSTRUCTION_NOISE * tensors if tensors else None
        level = stats.count_threshold(b, threshold, floor, noise)
        verdict = stats.verdict(c, threshold=level, deterministic=True)
        rows.append(_row("gate-instructions", case, "instructions", c, verdict))
    return rows


def _samples(row: Any) -> list[float]:
    """Raw samples, or the median alone where none were recorded (never significant)."""
    s = row["samples"]
    return list(s) if isinstance(s, list) and s else [float(row["median"])]


# --- rendering -------------------------------------------------------------------------------


def ratio_text(r: Any) -> str:
    """A comparison row's ratio with its CI: ``1.234 [1.100, 1.400]``, or ``[no CI]``."""
    if not _present(r["ci_low"]):
        return f"{format_ratio(r['ratio'])} [no CI]"
    return f"{format_ratio(r['ratio'])} [{format_ratio(r['ci_low'])}, {format_ratio(r['ci_high'])}]"


def _fmt_p(p: float) -> str:
    return NOT_A_NUMBER if not _present(p) else f"{p:.2g}"


def measured_cells(r: Any) -> list[str]:
    """A comparison row's base, head, ratio [CI] and p, as every rendering of it prints
    them (this table, the nightly's job summary)."""
    if r["unit"] == "observed":  # a semantics row: what each side observed
        from copybench.measure.drift import word

        return [word(r["base_median"]), word(r["head_median"]), "", ""]
    return [
        format_value(r["base_median"], r["unit"]),
        format_value(r["head_median"], r["unit"]),
        ratio_text(r),
        _fmt_p(r["p"]),
    ]


def summary_line(table: pd.DataFrame) -> str:
    counts = table["verdict"].value_counts()
    from copybench.suite.stats import VERDICTS

    parts = [f"{int(counts.get(v, 0))} {v}" for v in VERDICTS]
    return f"{len(table)} benchmarks compared: " + ", ".join(parts)


def _how(table: pd.DataFrame, alpha: float) -> str:
    """How the verdicts were reached, in words: the note under the table."""
    if not table.attrs.get("gate"):
        return (
            "compared across runs: each side is one run, one process per case, so wall "
            "times get no verdict (too few processes: time both with `copybench gate`); "
            "instruction counts are judged by the threshold alone"
        )
    from copybench.suite.stats import processes_for

    timed = table[table["benchmark"].isin(("gate", "gate-relative"))]
    n = int(timed["processes"].min()) if len(timed) else 0
    how = (
        f"{n} rounds of one fresh process per side, back to back, in a random order "
        f"balanced over the rounds; ratio = Hodges-Lehmann estimate over rounds of the "
        f"head/base process medians, {(1 - alpha) * 100:.4g}% CI, exact rank-sum p between "
        "the two orders, Holm-adjusted; regressed = significant and the estimate beyond "
        f"the threshold; {processes_for(alpha, len(timed))} rounds needed "
        f"for a verdict on {len(timed)} tests; gate-relative: each process's time over "
        "its in-process reference (a mul over the same bytes), judged the same way, "
        "beside the raw time, and not significant where the raw time's CI rules its "
        "verdict out (the reference moved, not the case)"
    )
    if (table["benchmark"] == "gate-instructions").any():
        from copybench.measure.gate import COUNT_RULE

        seen = table.attrs.get("instruction_env")
        how += (
            "; gate-instructions: callgrind instructions per call, one count per side, "
            "exact, judged by the instruction threshold "
            f"({table.attrs.get('instruction_threshold', 0.02):.0%}) alone, {COUNT_RULE}"
            + (f"; the counts saw the sides' {', '.join(seen)}" if seen else "")
        )
    if (table["benchmark"] == "gate-semantics").any():
        how += "; gate-semantics: `copybench semantics` differs between the sides (drifted)"
    return how


def _json(table: pd.DataFrame, threshold: float, alpha: float, machines: Any) -> str:
    records = json.loads(table.to_json(orient="records"))
    return json.dumps(
        {
            "threshold": threshold,
            "alpha": alpha,
            "regressed": int((table["verdict"] == "regressed").sum()),
            "drifted": int((table["verdict"] == "drifted").sum()),
            "machines": machines,
            "benchmarks": records,
        },
        indent=2,
    )


def _markdown(header: list[str], body: list[list[str]], note: str, header_note: Any) -> str:
    lines = [
        "### copybench compare",
        "",
        *([f"**{header_note}**", ""] if header_note else []),
        note,
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for cells in body:
        cells[-1] = f"**{cells[-1]}**" if cells[-1] in ("regressed", "drifted") else cells[-1]
        lines.append(
            "| " + " | ".join(f"`{cells[1]}`" if i == 1 else c for i, c in enumerate(cells)) + " |"
        )
    return "\n".join(lines)


def _text(header: list[str], body: list[list[str]], note: str, header_note: Any) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *body)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([*([header_note, ""] if header_note else []), *lines, "", note])


def render(
    table: pd.DataFrame,
    fmt: str = "text",
    threshold: float = 0.05,
    alpha: float = 0.05,
    machines: dict[str, Any] | None = None,
) -> str:
    """The comparison as plain text, a markdown table (CI job summaries) or JSON.

    ``machines`` (:func:`check_machines`) puts its note, where it has one, above the table.
    """
    if fmt == "json":
        return _json(table, threshold, alpha, machines)
    header = ["benchmark", "case", "base", "head", "ratio [CI]", "p", "verdict"]
    body = [
        [r["benchmark"], r["case"], *measured_cells(r), r["verdict"]] for _, r in table.iterrows()
    ]
    note = (
        f"{summary_line(table)} (threshold {threshold:.0%}, alpha {alpha:g}; {_how(table, alpha)})"
    )
    lay_out = _markdown if fmt == "markdown" else _text
    return lay_out(header, body, note, (machines or {}).get("note"))
