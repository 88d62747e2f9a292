"""Fresh worker processes: the one place copybench starts them.

Why processes: on the machines this project measures on, a fresh process lands in a state
(memory placement, allocator history) that holds for its whole life and moves a small
copy's time by up to 2x; samples from one process are not independent.  Measurements that
must hold up are spread over several processes started here, one after another (never in
parallel: two workers would time each other), each a ``python -m MODULE SPEC`` that prints
its result as JSON on stdout.  Spawned, not forked: a fork shares the parent's virtual
layout, and a CUDA context cannot cross a fork.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import copybench

if TYPE_CHECKING:
    from copybench.measure.progress import Progress


# The folder of this copybench package, and the folder that holds it: what a child needs on
# its path to run this copybench's code whatever copybench (if any) its interpreter has.
PACKAGE_DIR = os.path.dirname(os.path.abspath(copybench.__file__))
PACKAGE_ROOT = os.path.dirname(PACKAGE_DIR)


class WorkerError(RuntimeError):
    """A worker exited non-zero, printed no JSON, or ran past its time."""


def run_workers(
    module: str,
    spec: dict[str, Any],
    count: int,
    timeout: float | None = None,
    progress: Progress | None = None,
) -> list[Any]:
    """Run ``python -m module JSON(spec)`` ``count`` times in a row; return what each printed
    (parsed from JSON).  ``timeout`` bounds each worker, in seconds; ``progress`` is
    stepped as each worker ends."""
    if count < 1:
        raise ValueError(f"workers must be at least 1, got {count}")
    out = []
    for _ in range(count):
        out.append(run_worker(module, spec, timeout=timeout))
        if progress is not None:
            progress.step()
    return out


def run_worker(
    module: str,
    spec: dict[str, Any],
    python: str = sys.executable,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> Any:
    """One worker: ``python -m module JSON(spec)`` (another interpreter and environment if
    given, e.g. the other side of a comparison, or glibc's allocator settings); what it
    printed, parsed from JSON.  ``env`` replaces the whole environment: build it from
    ``os.environ``.  A failure raises WorkerError with the end of the worker's stderr."""
    try:
        proc = subprocess.run(
            [python, "-m", module, json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise WorkerError(f"{module} worker ran past {timeout:g} s") from None
    except OSError as e:
        raise WorkerError(f"{module} worker could not start: {e}") from None
    if proc.returncode:
        raise WorkerError(f"{module} worker failed: {proc.stderr.strip()[-500:]}")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise WorkerError(f"{module} worker printed no JSON: {proc.stdout[-200:]!r}") from None


def worker_main(measure: Any) -> None:
    """The body of a worker module's ``if __name__ == "__main__"``: read the spec from
    argv, print ``measure(spec)`` as JSON."""
    print(json.dumps(measure(json.loads(sys.argv[1]))))


# Set, with a value of its own, in the environment of every process run_bounded starts,
# and so inherited by everything that process starts in turn.
RUN_TAG = "COPYBENCH_RUN"


def run_bounded(
    cmd: list[str], timeout: float | None, **kwargs: Any
) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, timeout=...)``, except that on timeout (or interruption) the
    command is killed with everything it started; then ``subprocess.TimeoutExpired`` (or
    the interruption) is raised.

    Killing the command's process group is not enough: asv runs its benchmark server in a
    group of its own (``asv.util.check_output`` calls ``setpgid``), which would be left
    running, on a GPU with its CUDA context.  So the command's environment (``env=``, else
    this process's) carries a tag, and every process of this user that carries it is killed
    too (:func:`kill_tagged`)."""
    import os
    import signal
    import uuid

    tag = uuid.uuid4().hex
    kwargs["env"] = {**(kwargs.get("env") or os.environ), RUN_TAG: tag}
    proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        kill_tagged(f"{RUN_TAG}={tag}")
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def kill_tagged(entry: str, patience: float = 5.0) -> int:
    """SIGKILL every process of this user whose environment holds ``entry`` (``NAME=value``),
    again until none is left or ``patience`` seconds have passed; return how many kills
    were sent.  Linux (``/proc``); elsewhere nothing is killed."""
    import contextlib
    import os
    import signal
    import time
    from pathlib import Path

    needle = entry.encode()
    sent = 0
    end = time.monotonic() + patience
    while time.monotonic() < end:
        found = []
        for p in Path("/proc").glob("[0-9]*"):
            try:
                if needle in (p / "environ").read_bytes().split(b"\0"):
                    found.append(int(p.name))
            except (OSError, ValueError):
                continue  # gone, another user's, or not a process
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                sent += 1
        time.sleep(0.05)
    return sent
