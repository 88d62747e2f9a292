"""The house declared once: the tidy table's columns, the harnesses' axes, the grids, the
method pairs and the validation live in copybench.cases; everything else derives from them.

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

from copybench import cases, results
from copybench.asvrun import Selection
from copybench.cli import main
from copybench.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]
# Where case columns could be retyped: the library, both harnesses, the scripts.
SOURCES = [
    *sorted((ROOT / "src" / "copybench").rglob("*.py")),
    *sorted((ROOT / "benchmarks").glob("*.py")),
    *sorted((ROOT / "tests" / "benchmarks").glob("*.py")),
    *sorted((ROOT / "scripts").glob("*.py")),
]
DECLARED_IN = ROOT / "src" / "copybench" / "cases.py"
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
        "case columns typed by hand (derive them from copybench.cases): " + ", ".join(offenders)
    )


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


# --- the layers the README draws ---------------------------------------------------------------

PACKAGE = ROOT / "src" / "copybench"
# Package plumbing, in no layer: the version, and ``python -m copybench``.
PLUMBING = {"__init__", "__main__"}


def readme_layers() -> dict[str, int]:
    """Module -> layer index (0 is core), from the README's Layout section."""
    text = (ROOT / "README.md").read_text()
    block = text.split("`src/copybench/` in layers", 1)[1].split("```", 2)[1]
    layers: dict[str, int] = {}
    index = -1
    for line in block.splitlines():
        m = re.match(r"^(\w+)?\s+(\w+)(\.py|/)\s", line)
        if not m:
            continue
        if m.group(1):
            index += 1
        assert m.group(2) not in layers, f"{m.group(2)} is drawn twice"
        layers[m.group(2)] = index
    return layers


def _imports(path: Path) -> list[tuple[str, str | None, int]]:
    """(copybench module imported, the top-level function it is imported in, line)."""
    package = path.relative_to(PACKAGE).parent.parts
    out = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = function
            if function is None and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = child.name
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = list(package[: len(package) - child.level + 1])
                    target = [*base, *(child.module.split(".") if child.module else [])]
                    if not target:  # ``from . import x``: a module, or a name of __init__
                        name = child.names[0].name
                        is_module = (PACKAGE / f"{name}.py").is_file() or (PACKAGE / name).is_dir()
                        target = [name if is_module else "__init__"]
                elif (child.module or "").startswith("copybench."):
                    target = child.module.split(".")[1:]
                else:
                    target = []
                if target:
                    out.append((target[0], function, child.lineno))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("copybench."):
                        out.append((alias.name.split(".")[1], function, child.lineno))
            visit(child, inner)

    visit(ast.parse(path.read_text(), str(path)), None)
    return out


def _module_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_the_readme_draws_every_module_in_one_layer():
    drawn = readme_layers()
    modules = {_module_of(p) for p in PACKAGE.rglob("*.py")} - PLUMBING
    assert set(drawn) == modules
    assert sorted(set(drawn.values())) == [0, 1, 2, 3]


def test_no_module_imports_from_a_layer_below_its_own():
    """Data flows one way: core <- measurement <- pipeline <- front.  A module's command
    (``register``, ``cmd_*``) is front code wherever it lives, so it may import the CLI."""
    layer = readme_layers()
    front = max(layer.values())
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        mine = _module_of(path)
        if mine in PLUMBING:
            continue
        for target, function, line in _imports(path):
            if target in PLUMBING or target == mine:
                continue
            command = function is not None and (
                function == "register" or function.startswith("cmd_")
            )
            allowed = front if command else layer[mine]
            if layer[target] > allowed:
                upward.append(f"{path.relative_to(ROOT)}:{line} ({mine} imports {target})")
    assert upward == [], "imports against the layers: " + ", ".join(upward)


def test_the_case_records_have_the_harnesses_axes():
    """TensorCase and ModuleCase (whose fields the pytest-benchmark harness parametrizes
    by) carry exactly the axes asv's classes take, in the same order."""
    from dataclasses import fields

    assert [f.name for f in fields(cases.TensorCase)] == ["method", *cases.TENSOR_AXES]
    assert [f.name for f in fields(cases.ModuleCase)] == ["method", *cases.MODULE_AXES]
