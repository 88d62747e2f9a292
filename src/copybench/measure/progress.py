"""How far a long command has got, on stderr: the one place copybench reports progress.

Commands that spend minutes in fresh processes (``overhead``, ``noise-study``, ``gate``,
``power-study``, ``gpu-figures``, the paired study of ``run``) would otherwise be silent that
long.  On a terminal the progress is one line rewritten in place; written to a file or a
pipe (a CI log, a test) it is one line per step, so a log shows when each step ended.
Progress never goes to stdout: that is for results (``--json`` must stay parseable).
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TextIO


class Progress:
    """``total`` steps of one kind, each reported as ``LABEL i/total done (elapsed, about
    N left)`` on ``stream`` (nothing at all when ``stream`` is None).

    The label says what is measured and what a step is, e.g. ``"copybench gate: round"``
    gives ``copybench gate: round 3/12 done (41 s, about 2 min 4 s left)``.  The estimate
    of what is left assumes the remaining steps take as long as the finished ones did on
    average.  Use it as a context manager, so that a terminal's line is ended even when a
    step fails.
    """

    def __init__(self, label: str, total: int, stream: TextIO | None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream
        self.tty = stream is not None and stream.isatty()
        self._start = time.monotonic()
        self._width = 0  # of the line now on a terminal, to blank what a shorter one leaves
        self._closed = False
        if self.tty:
            self._write(f"{label} 0/{total}")

    def step(self) -> None:
        """One more step done."""
        self.done += 1
        elapsed = time.monotonic() - self._start
        left = self.total - self.done
        timing = _duration(elapsed)
        if left > 0:
            timing += f", about {_duration(elapsed / self.done * left)} left"
        self._write(f"{self.label} {self.done}/{self.total} done ({timing})")

    def close(self) -> None:
        """End the terminal's line (a no-op where every step had a line of its own)."""
        if self.tty and self._width and not self._closed:
            self.stream.write("\n")
            self.stream.flush()
        self._closed = True

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _write(self, line: str) -> None:
        if self.stream is None:
            return
        if self.tty:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def note(text: str, stream: TextIO | None) -> None:
    """One line of progress that is not a counted step (a phase starting, a step's
    outcome), on ``stream``; nothing when ``stream`` is None."""
    if stream is not None:
        stream.write(text + "\n")
        stream.flush()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60} s"
