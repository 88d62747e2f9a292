"""pytest-benchmark harness configuration: when to time, and what the saved JSON records.

Benchmarks are timed only under ``--benchmark-only`` or ``--benchmark-enable``; in every
other run (the normal test run) each case runs its copy once, as a smoke test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from copybench.suite.prepare import slowed_down_methods


def _git_hash() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def _cuda_driver() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """What pytest-benchmark does not record: the torch build, this checkout's git hash,
    CUDA and driver versions, the CPU model and the thread count the harness sets."""
    from copybench.measure.asvrun import environment_info, observed_semantics
    from copybench.suite.cases import DEFAULT_THREADS

    info = environment_info()
    info.update(
        git_hash=_git_hash(),
        cuda_driver=_cuda_driver() if info["cuda_available"] else None,
        gpu=info.get("gpu", "none"),
        cpu_count=os.cpu_count(),
        threads=DEFAULT_THREADS,
        slowed_down=sorted(slowed_down_methods()),
        semantics=observed_semantics(),
    )
    machine_info["copybench"] = info


@pytest.fixture(scope="session")
def timing_enabled(pytestconfig: pytest.Config) -> bool:
    return bool(
        pytestconfig.getoption("benchmark_only") or pytestconfig.getoption("benchmark_enable")
    )


@pytest.fixture
def measure(benchmark: Any, timing_enabled: bool) -> Any:
    """The ``benchmark`` fixture, in pytest-benchmark's disabled mode (one plain call, no
    statistics: what ``--benchmark-disable`` does) unless this run times benchmarks."""
    if not timing_enabled:
        benchmark.disabled = True
    return benchmark
