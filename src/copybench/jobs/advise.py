"""``copybench advise MODEL``: measure the routes on the model, write what was asked for
(the results as JSON, the page), and return what the terminal shows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from copybench.formats import ADVICE, atomic_write_text, write_advice
from copybench.measure.advise import ADVISE_BUDGET, ADVISE_PROCESSES, advise
from copybench.report.advice import format_advice, render_advice_html
from copybench.suite.cases import DEFAULT_THREADS
from copybench.suite.usermodel import ModelSource


def run_advise(
    source: ModelSource,
    routes: Sequence[str] | None = None,
    *,
    processes: int = ADVISE_PROCESSES,
    budget: float = ADVISE_BUDGET,
    threads: int | str = DEFAULT_THREADS,
    as_json: bool = False,
    out: Path | None = None,
    html: Path | None = None,
    log: TextIO | None = None,
) -> str:
    """Advise on ``source``'s model; write ``out`` (the results, :data:`ADVICE`) and
    ``html`` (the page) atomically where given; return the text to print (the JSON with
    ``as_json``)."""
    result = advise(source, routes, processes=processes, budget=budget, threads=threads, log=log)
    if out is not None:
        write_advice(out, result)
    if html is not None:
        atomic_write_text(html, render_advice_html(result))
    return json.dumps(ADVICE.stamp(result), indent=2) if as_json else format_advice(result)
