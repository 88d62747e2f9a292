"""The regression gate as one job: both sides timed interleaved in fresh processes (and
their instructions counted, their semantics observed: :mod:`copybench.measure.gate`), the
results written (:mod:`copybench.formats`), the verdicts drawn
(:func:`copybench.results.compare.compare_gate`).  ``copybench gate`` and the nightly both
run it.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from copybench import formats
from copybench.measure.gate import (
    DEFAULT_BUDGET,
    DEFAULT_PROCESSES,
    FAILING,
    Side,
    check_gate_levels,
    gate_cases,
    gate_levels,
    run_gate,
    want_instructions,
)
from copybench.suite.cases import UsageError

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class GateDesign:
    """What a gate times and how it is judged: the selection (empty: the gate selection),
    the rounds and the budget, whether to count instructions (None: where valgrind can),
    and the levels of the verdicts (None: the gate's own).  A gate and each gate of a power
    study are of one design."""

    methods: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    processes: int = DEFAULT_PROCESSES
    budget: float = DEFAULT_BUDGET
    instructions: bool | None = None
    threshold: float | None = None
    alpha: float | None = None
    instruction_threshold: float | None = None

    def cases(self) -> list[dict[str, Any]]:
        """The gate's case specs (:func:`copybench.measure.gate.gate_cases`)."""
        return gate_cases(self.methods or None, self.sizes or None, self.models or None)

    def check_levels(self) -> None:
        check_gate_levels(self.threshold, self.alpha, self.instruction_threshold)

    def levels(self) -> tuple[float, float, float]:
        """Threshold, alpha and instruction threshold, the gate's own where not given."""
        return gate_levels(self.threshold, self.alpha, self.instruction_threshold)


@dataclass
class GateRun:
    """A gate as asked for: the two sides, its design, where to write its results."""

    base: Side
    head: Side
    design: GateDesign = field(default_factory=GateDesign)
    out: Path | None = None

    def check(self) -> None:
        """UsageError (bad input, before anything runs) for levels out of range, fewer
        than 2 rounds, a budget that is not positive, an interpreter that is not there."""
        self.design.check_levels()
        if self.design.processes < 2 or self.design.budget <= 0:
            raise UsageError("--processes must be at least 2 and --budget positive")
        for py in (self.base.python, self.head.python):
            if shutil.which(py) is None:
                raise UsageError(f"{py}: not an executable interpreter")


def judged_gate(run: GateRun, log: Any = sys.stderr) -> pd.DataFrame:
    """Run the gate, write its results to ``run.out`` (where given), and return its
    verdicts (:func:`copybench.results.compare.compare_gate`; the levels used are in the
    table's ``attrs``)."""
    from copybench.results.compare import compare_gate

    design = run.design
    data = run_gate(
        run.base,
        run.head,
        design.cases(),
        design.processes,
        design.budget,
        log=log,
        instructions=want_instructions(design.instructions),
    )
    if run.out is not None:
        formats.write_gate(run.out, data)
    return compare_gate(data, *design.levels())


def failed(table: pd.DataFrame) -> bool:
    """Whether a verdict fails the gate (a regression, a drift)."""
    return bool(table["verdict"].isin(FAILING).any())
