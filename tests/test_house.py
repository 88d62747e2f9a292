"""The house declared once: the tidy table's columns, the harnesses' axes, the grids, the
method pairs and the validation live in copybench.suite.cases; everything else derives from them.

Two cases were once merged in the report because a column list typed by hand in one place
lacked ``host_memory``.  These tests fail where a harness, a loader or the report invents a
column or retypes a list of them.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path

import pytest

from copybench.cli import main
from copybench.measure.asvrun import Selection
from copybench.results import tidy as results
from copybench.suite import cases
from copybench.suite.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]
# Where case columns could be retyped: the library, both harnesses, the scripts.
SOURCES = [
    *sorted((ROOT / "src" / "copybench").rglob("*.py")),
    *sorted((ROOT / "benchmarks").glob("*.py")),
    *sorted((ROOT / "tests" / "benchmarks").glob("*.py")),
    *sorted((ROOT / "scripts").glob("*.py")),
]
DECLARED_IN = ROOT / "src" / "copybench" / "suite" / "cases.py"
# Three names of case columns in one literal is a list of them; two can be a comparison.
AT_LEAST = 3


def _strings(items: list) -> set:
    return {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)}


def hand_typed_column_lists(tree: ast.AST) -> list[int]:
    """Lines of list, tuple or set literals holding AT_LEAST case-column names as strings,
    and of dict literals that are a tidy row typed by hand: that many case columns as keys
    beside a measurement or statistic column.  (A worker's spec, a dict with ``dtype`` and
    ``device`` keys, is not a row.)"""
    names = set(cases.CASE_COLUMNS)
    row = {*cases.MEASUREMENT_COLUMNS, *cases.STATISTIC_COLUMNS}
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            typed = _strings(node.elts)
        elif isinstance(node, ast.Dict):
            typed = _strings([k for k in node.keys if k is not None])
            typed = typed if typed & row else set()
        else:
            continue
        if len(typed & names) >= AT_LEAST:
            hits.append(node.lineno)
    return hits


def test_the_checker_finds_a_hand_typed_list():
    found = hand_typed_column_lists(
        ast.parse(
            'cols = ["metric", "method", "numel", "dtype"]\n'
            'pair = ("method", "x")\n'
            'row = {"method": 1, "layout": 2, "device": 3, "median": 4}\n'
            'spec = {"numel": 1, "dtype": 2, "device": 3}\n'
        )
    )
    assert found == [1, 3]


def test_no_list_of_case_columns_is_typed_outside_cases_py():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in SOURCES
        if path != DECLARED_IN
        for line in hand_typed_column_lists(ast.parse(path.read_text(), str(path)))
    ]
    assert offenders == [], (
        "case columns typed by hand (derive them from copybench.suite.cases): "
        + ", ".join(offenders)
    )


# --- method names, declared once -------------------------------------------------------------

# Where a method's name is declared: the registry, and the grids and pairs that name methods.
DECLARES_METHODS = {ROOT / "src" / "copybench" / "suite" / "methods.py", DECLARED_IN}
# Strings that are a method's name by coincidence, each with why: (file, name).
NOT_METHOD_NAMES = {
    ("src/copybench/jobs/history.py", "clone"): "git's subcommand",
    ("src/copybench/jobs/power.py", "clone"): "torch.Tensor's method, a power-study target",
    ("src/copybench/results/tidy.py", "data"): "pytest-benchmark's key for the raw samples",
    ("src/copybench/report/plots.py", "data"): "matplotlib's data coordinates",
    ("scripts/check_report.py", "data"): "the DevTools screenshot's key",
    ("scripts/check_asv_site.py", "data"): "the DevTools screenshot's key",
    ("scripts/fetch_asv_scripts.py", "data"): "tarfile's extraction filter",
}
REGEX = re.compile(r"\\|\(\?|\|")


def _docstrings(tree: ast.AST) -> set[int]:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, kinds)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def retyped_method_names(tree: ast.AST, names: set[str]) -> list[tuple[int, str]]:
    """(line, name) of each registered method's name typed as a string: a literal that is
    one (in a list, a row, a keyword argument, a comparison), or a compound name (one with
    an underscore: ``clone_detach``, not ``clone``) inside a regular expression or the
    literal text of an f-string (``f"clone_detach-{n}"`` is a key typed by hand).  Prose
    (docstrings, help texts, a title's "the tracked clone") may say a word that is a
    method's name."""
    skip = _docstrings(tree)
    texts = {
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for part in node.values
        if isinstance(part, ast.Constant)
    }
    hits = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if id(node) in skip:
            continue
        if node.value in names:
            hits.append((node.lineno, node.value))
        elif id(node) in texts or REGEX.search(node.value):
            words = set(re.findall(r"(?<![.\w])[A-Za-z_]\w*", node.value))
            hits += [(node.lineno, w) for w in sorted(words & names) if "_" in w]
    return sorted(hits)


def test_the_checker_finds_retyped_method_names():
    names = {"clone", "clone_detach", "copy_into"}
    found = retyped_method_names(
        ast.parse(
            'def f():\n    """clone is fine here"""\n'
            'a = ("clone", "copy_into")\n'
            'b = counts[f"clone_detach-{n}"]\n'
            "c = r\"bench\\.T\\.\\w+\\('(clone|copy_into)'\\)\"\n"
            'd = Comparison(base="copy_into")\n'
            'e = "the tracked clone\'s overhead, x.clone()"\n'
        ),
        names,
    )
    assert found == [(3, "clone"), (3, "copy_into"), (4, "clone_detach")] + [
        (5, "copy_into"),
        (6, "copy_into"),
    ]


def test_no_method_name_is_typed_outside_the_registry_and_the_grids():
    """A method's name comes from the registry (methods.METHODS) or a grid or pair of
    cases.py; typed again, it is a second place to change when a method is renamed, and a
    place where a grid can drift from the registry unnoticed."""
    names = set(METHODS)
    offenders = [
        f"{path.relative_to(ROOT)}:{line} {name!r}"
        for path in SOURCES
        if path not in DECLARES_METHODS
        for line, name in retyped_method_names(ast.parse(path.read_text(), str(path)), names)
        if (str(path.relative_to(ROOT)), name) not in NOT_METHOD_NAMES
    ]
    assert offenders == [], "method names typed by hand: " + ", ".join(offenders)


def _asv_classes() -> list[type]:
    sys.path.insert(0, str(ROOT))
    try:
        modules = [
            importlib.import_module(f"benchmarks.{p.stem}")
            for p in sorted((ROOT / "benchmarks").glob("bench_*.py"))
        ]
    finally:
        sys.path.remove(str(ROOT))
    return [
        cls
        for m in modules
        for _, cls in inspect.getmembers(m, inspect.isclass)
        if cls.__module__ == m.__name__ and hasattr(cls, "param_names")
    ]


def test_every_asv_axis_is_a_case_axis():
    """A parameter the tidy table does not know is dropped when results are read, and the
    cases it told apart are merged."""
    classes = _asv_classes()
    assert len(classes) >= 7
    for cls in classes:
        unknown = set(cls.param_names) - set(cases.CASE_AXES)
        assert not unknown, f"{cls.__module__}.{cls.__name__} has axes {unknown}"
        assert len(cls.param_names) == len(cls.params)


def test_every_pytest_benchmark_axis_is_a_case_axis():
    path = ROOT / "tests" / "benchmarks" / "test_copy_harness.py"
    spec = importlib.util.spec_from_file_location("copybench_harness_under_test", path)
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    # ``pair`` names a paired comparison (cases.PAIRS); its rows carry the head as the
    # method, and the metric (time_paired_overhead) is the harness's own.
    allowed = {*cases.CASE_AXES, "pair"}
    tests = [f for name, f in vars(harness).items() if name.startswith("test_")]
    assert len(tests) >= 4
    for f in tests:
        for mark in getattr(f, "pytestmark", []):
            if mark.name != "parametrize":
                continue
            names = mark.args[0]
            names = names.split(",") if isinstance(names, str) else list(names)
            unknown = {n.strip() for n in names} - allowed
            assert not unknown, f"{f.__name__} is parametrized by {unknown}"


def test_the_tidy_table_is_the_declared_one():
    assert list(results.COLUMNS) == list(cases.COLUMNS)
    assert len(set(cases.COLUMNS)) == len(cases.COLUMNS)
    assert set(cases.CASE_AXES) <= set(cases.CASE_COLUMNS) <= set(cases.COLUMNS)
    assert set(cases.CASE_KEY) <= set(cases.COLUMNS)
    from copybench.report import table

    assert set(table.CSV_COLUMNS) <= {*cases.COLUMNS, cases.UNSTABLE}
    assert set(cases.CASE_COLUMNS) <= set(table.CSV_COLUMNS)


def test_every_axis_of_every_harness_is_in_the_case_key():
    for axes in (cases.TENSOR_AXES, cases.MODULE_AXES, cases.CUDA_TENSOR_AXES, cases.TRANSFER_AXES):
        assert set(axes) <= set(cases.CASE_KEY)


@pytest.mark.parametrize(
    "grid, kind",
    [
        (cases.GATE_METHODS, "tensor"),
        (cases.GATE_MODULE_METHODS, "module"),
        (cases.INSTRUCTION_METHODS, "tensor"),
        (cases.BANDWIDTH_METHODS, "tensor"),
        (cases.PEAK_METHODS, "module"),
        (cases.H2D_METHODS, "transfer"),
    ],
)
def test_every_method_a_grid_names_is_registered(grid, kind):
    assert grid
    for name in grid:
        assert METHODS[name].kind == kind


def test_each_pair_is_two_registered_methods_of_one_kind():
    for base, head in cases.PAIRS.values():
        assert METHODS[base].kind == METHODS[head].kind
    assert cases.PAIRS["tracked_clone"] == (cases.UNTRACKED, cases.TRACKED)


def test_every_grid_size_is_known_to_the_validation():
    for grid in (
        cases.SIZES,
        cases.GPU_SIZES,
        cases.OVERHEAD_SIZES,
        cases.INSTRUCTION_SIZES,
        cases.ALLOCATOR_SIZES,
        cases.GATE_SIZES,
        cases.HEADLINE_SIZES,
    ):
        for numel in grid:
            assert cases.check_size(numel) == numel


def test_one_validation_says_the_same_to_every_front(capsys):
    """``copybench run``, asv's selection and ``copybench overhead`` reject a size outside
    the grid with the line cases.check_size writes (each naming the sizes it takes)."""
    with pytest.raises(cases.CaseError) as selection:
        Selection(sizes=[7]).validate()
    assert str(selection.value).startswith("size 7 is not in the grid; known: ")
    for argv in (["run", "--size", "7"], ["overhead", "--sizes", "7"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "size 7 is not in the grid; known: " in err[0], (argv, err)
    assert main(["run", "--size", "seven"]) == 2
    assert "size must be an element count, got 'seven'" in capsys.readouterr().err


# --- the layers: folders, each importing only from itself and the layers below -----------------

PACKAGE = ROOT / "src" / "copybench"
# Bottom first.  A module imports from its own layer and the layers below it, never above,
# wherever the import stands (module level, inside a function, under TYPE_CHECKING).
LAYERS: tuple[str, ...] = ("suite", "formats", "measure", "results", "report", "jobs", "cli")
# Package plumbing, in no layer: the version, and ``python -m copybench``.  ``inject/`` holds
# the sitecustomize an injected child runs; copybench never imports it.
PLUMBING = {"__init__", "__main__"}
NOT_IMPORTED = {"inject"}
# A dotted name of a copybench module in a string: ``python -m copybench.measure.gate``,
# ``run_worker("copybench.measure.paired", ...)``, ``importlib.import_module(...)``.
MODULE_STRING = re.compile(r"^copybench(\.\w+)+$")


def readme_layers() -> list[str]:
    """The layers, bottom first, as the README's Layout section draws them."""
    text = (ROOT / "README.md").read_text()
    block = text.split("`src/copybench/` in layers", 1)[1].split("```", 2)[1]
    return [m.group(1) for m in re.finditer(r"^(\w+)(?:/|\.py)\s", block, re.M)]


def module_name(path: Path) -> str:
    """``copybench.measure.gate`` for ``src/copybench/measure/gate.py`` (a package's
    ``__init__.py`` is the package)."""
    parts = ["copybench", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        module_name(p): p
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.relative_to(PACKAGE).parts[0] not in NOT_IMPORTED
    }


def layer_of(module: str) -> str | None:
    """The layer a copybench module belongs to (None: plumbing, the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] not in PLUMBING else None


def imported(path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(copybench module, line) for every import in ``path``, wherever it stands, and every
    string naming a copybench module (a worker started with ``-m``, an ``import_module``).
    ``from X import name`` counts as X.name where that is a module, else as X."""
    inside = PACKAGE in path.parents
    me = module_name(path) if inside else ""
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level and not inside:
                continue  # the harness's own package (benchmarks/)
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.append((sub if sub in known else target, node.lineno))
        elif isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and MODULE_STRING.match(node.value)
        ):
            out.append((node.value, node.lineno))
    return [(m, line) for m, line in out if m == "copybench" or m.startswith("copybench.")]


def test_the_readme_draws_the_layers_in_order():
    assert readme_layers() == list(LAYERS)


def test_every_module_is_in_a_layer():
    stray = {m for m in _modules() if m != "copybench" and layer_of(m) not in (*LAYERS, None)}
    assert not stray, f"modules outside the declared layers: {sorted(stray)}"


# Where else a module is named: the harnesses, the tests, the scripts, the workflows, the
# README (``python -m copybench.suite.semantics``).
ELSEWHERE = [
    *sorted((ROOT / "benchmarks").glob("*.py")),
    *sorted((ROOT / "tests").rglob("*.py")),
    *sorted((ROOT / "scripts").glob("*.py")),
]
TEXTS = [
    *sorted((ROOT / "scripts").glob("*.sh")),
    *sorted((ROOT / ".github" / "workflows").glob("*.yml")),
    ROOT / "README.md",
]


def test_every_module_named_anywhere_exists():
    """An import, a worker's ``-m`` module or an ``import_module`` name that a move left
    behind fails only when that line runs (a worker process, a CI job)."""
    known = set(_modules())
    named = [
        (path, m, line)
        for path in [*_modules().values(), *ELSEWHERE]
        for m, line in imported(path, known)
    ]
    for path in TEXTS:
        for i, text in enumerate(path.read_text().splitlines(), 1):
            named += [(path, m, i) for m in re.findall(r"-m (copybench(?:\.\w+)+)", text)]
    missing = [f"{path.relative_to(ROOT)}:{line} {m}" for path, m, line in named if m not in known]
    assert missing == [], "names of no copybench module: " + ", ".join(missing)


def test_no_module_imports_from_a_layer_above_its_own():
    """Data flows one way: suite -> formats -> measure -> results -> report -> jobs -> cli;
    nothing downstream reaches back upstream, and no library module imports the CLI."""
    modules = _modules()
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = []
    for me, path in modules.items():
        mine = layer_of(me)
        if mine is None:
            continue
        for target, line in imported(path, set(modules)):
            theirs = layer_of(target)
            if theirs is not None and rank[theirs] > rank[mine]:
                upward.append(f"{path.relative_to(ROOT)}:{line} ({me} imports {target})")
    assert upward == [], "imports against the layers: " + ", ".join(upward)


def test_no_import_circles():
    """No module reaches itself through imports, those inside functions included."""
    modules = _modules()
    graph = {
        me: {t for t, _ in imported(path, set(modules)) if t in modules and t != me}
        for me, path in modules.items()
    }
    circles = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join([*trail[trail.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert circles == [], "import circles: " + "; ".join(circles)


# A function longer than this is doing more than one thing, or saying one thing at length.
LONGEST_FUNCTION = 60


def test_no_function_is_longer_than_60_lines():
    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (n := node.end_lineno - node.lineno + 1) > LONGEST_FUNCTION
    ]
    assert long == [], "functions over 60 lines: " + ", ".join(long)


def test_the_case_records_have_the_harnesses_axes():
    """TensorCase and ModuleCase (whose fields the pytest-benchmark harness parametrizes
    by) carry exactly the axes asv's classes take, in the same order."""
    from dataclasses import fields

    assert [f.name for f in fields(cases.TensorCase)] == ["method", *cases.TENSOR_AXES]
    assert [f.name for f in fields(cases.ModuleCase)] == ["method", *cases.MODULE_AXES]
