"""asv's "installed" environment: this interpreter, named by its Python and torch build.

An asv plugin (``asv.conf.json``'s ``plugins``, added to the config ``copybench run`` hands
asv: :func:`copybench.measure.asvrun.run_config`).  asv's own ``existing`` environment, which
copybench ran until 2026-11, names its results after the interpreter's *path*
(``existing-py_work_main_.venv_bin_python``), records the path as the graph parameter
``python`` and no requirements at all.  So asv's graphs and ``asv compare`` mixed torch
builds under one name, and every checkout at another path started a new series.

This environment is the same interpreter, run the same way, but:

- its name is ``installed-py<X.Y>-torch<build>`` (``installed-py3.11-torch2.13.0+cpu``);
- its requirements, and so asv's graph parameters, hold ``torch``: the build
  (:func:`copybench.formats.torch_build`); and ``python`` holds the version, not the path.

Two torch builds are two environments, two series in asv's graphs, two sides of
``asv compare``; one build at two paths is one.

Imported by asv in asv's own process (no torch there: the build is asked of the
interpreter, once, as asv asks it for its Python version).
"""

from __future__ import annotations

import json
import subprocess

from asv.environment import EnvironmentUnavailable, ExistingEnvironment, get_env_name

from copybench.formats import INSTALLED_ENV, torch_build

# Run by the benchmarked interpreter: its Python version, torch version and CUDA version.
_PROBE = (
    "import json, sys, torch; print(json.dumps([f'{sys.version_info[0]}.{sys.version_info[1]}', "
    "torch.__version__, torch.version.cuda]))"
)


class InstalledEnvironment(ExistingEnvironment):
    """``asv run -E installed:PYTHON``: like ``existing``, named and parametrised by the
    interpreter's Python version and torch build (see the module's docstring)."""

    tool_name = INSTALLED_ENV

    def __init__(self, conf, executable, requirements, tagged_env_vars):
        super().__init__(conf, executable, requirements, tagged_env_vars)
        try:
            out = subprocess.run(
                [self._executable, "-c", _PROBE], capture_output=True, text=True, check=True
            ).stdout
            python, version, cuda = json.loads(out.strip().splitlines()[-1])
        except (subprocess.CalledProcessError, ValueError, IndexError) as e:
            raise EnvironmentUnavailable(f"{self._executable}: cannot import torch ({e})") from e
        self._python = python
        self._requirements = {"torch": torch_build(version, cuda)}
        self._global_env_vars["ASV_ENV_NAME"] = self.name

    @classmethod
    def matches(cls, python):
        return False  # only ever chosen by name (``-E installed:...``)

    @property
    def name(self):
        return get_env_name(self.tool_name, self._python, self._requirements, self._tagged_env_vars)
