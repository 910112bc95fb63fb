"""The shape of the package: public and private apart, no import cycles, pytest's
private API in one module, and the option table typed for type checkers."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import dotevals
from dotevals.options import KEYWORDS, RunnerOptions, RunOptionsKeywords

PACKAGE = Path(dotevals.__file__).parent
#: The one module allowed to touch pytest's private API.
INTERNALS = PACKAGE / "_pytest_bridge" / "internals.py"
#: Private names of pytest's objects that dotevals uses (see internals.py).
PYTEST_PRIVATE_ATTRIBUTES = {
    "_setupstate",
    "_request",
    "_fillfixtures",
    "_fixtureinfo",
    "_arg2scope",
    "_genfunctions",
    "_must_rewrite",
    "_marked_for_rewrite_cache",
    "_prepareconfig",
    "_do_configure",
    "_ensure_unconfigure",
    "_finalizers",
    "_fixture_defs",
    "_pyfuncitem",
    "_use_item_location",
}

#: What users import, by module: the public paths of this project and of dotevals 0.23.
PUBLIC = {
    "dotevals": ["foreach", "ForEach", "Score", "Result", "run", "arun", "Runner", "load"],
    "dotevals.core": [
        "foreach",
        "ForEach",
        "Result",
        "Score",
        "Record",
        "EvaluationSummary",
        "run_evaluation",
    ],
    "dotevals.sessions": ["SessionManager"],
    "dotevals.evaluators": [
        "evaluator",
        "exact_match",
        "numeric_match",
        "valid_json",
        "python_ast_match",
        "ast_evaluation",
        "registry",
    ],
    "dotevals.evaluators.ast_evaluation": ["ast_evaluation"],
    "dotevals.metrics": ["metric", "accuracy", "mean", "Metric", "registry", "get_metric"],
    "dotevals.models": ["Score", "Result", "Record", "EvaluationSummary", "Evaluation"],
    "dotevals.storage": ["Storage", "get_storage", "register", "EvaluationInfo", "ExperimentInfo"],
    "dotevals.storage.json": ["JSONStorage"],
    "dotevals.storage.sqlite": ["SQLiteStorage"],
    "dotevals.runners": ["Runner", "RunReporter", "EvaluationOutcome", "run", "arun"],
    "dotevals.datasets": ["Dataset", "DatasetRegistry", "register_dataset", "get_dataset"],
    "dotevals.providers": ["ModelProvider", "ModelHandle"],
    "dotevals.concurrency": ["Adaptive", "SlidingWindow", "Sequential", "Batch"],
    "dotevals.errors": ["DotevalsError", "StorageError", "RowTimeoutError"],
    "dotevals.options": ["RunOptions", "OPTIONS"],
    "dotevals.collect": ["evaluation_items"],
    "dotevals.compare": ["compare_evaluation"],
    "dotevals.export": ["load", "to_frame"],
    "dotevals.intervals": ["Estimate", "bootstrap"],
    "dotevals.plugin": ["pytest_addoption"],
    "dotevals.cli": ["main"],
    "dotevals.llm": [
        "Usage",
        "track",
        "add_usage",
        "set_price",
        "cost_of",
        "OpenAIModel",
        "OpenAIProvider",
        "GenerateSettings",
        "ResponseCache",
        "Limits",
        "ModelLimiter",
        "limiter_for",
        "is_retryable",
        "retry_after",
        "current_row",
        "current_epoch",
        "RowCalls",
        "CallTally",
    ],
    "dotevals.llm.retries": ["is_retryable", "retry_after", "wait_seconds", "mark_retried"],
    "dotevals.llm.context": ["CallTally"],
    "dotevals.llm.row": ["Row", "RowCalls", "current_row", "current_epoch", "record_settings"],
}


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules ``name`` imports, at the top or on first use (in a function,
    through ``importlib.import_module``, ``lazy`` or a ``_HOMES`` table), leaving out the
    imports made for type checkers only."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    package = (
                        name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    )
                    package = package[: len(package) - child.level + 1]
                    base = ".".join([*package, *([base] if base else [])])
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in child.names)
            elif isinstance(child, ast.Call) and ast.unparse(child.func).split(".")[-1] in (
                "import_module",
                "lazy",
            ):
                found.update(a.value for a in child.args if isinstance(a, ast.Constant))
            elif isinstance(child, ast.Assign) and ast.unparse(child.targets[0]) == "_HOMES":
                found.update(c.value for c in ast.walk(child.value) if isinstance(c, ast.Constant))
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {module for module in found if module in known and module != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_package_has_no_import_cycle_lazy_imports_included():
    known = modules()
    graph = {name: imported(name, path, set(known)) for name, path in known.items()}
    assert "dotevals.runners" in graph["dotevals.foreach"]  # a lazy import is seen
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_internals_module_touches_pytests_private_api():
    touching = {}
    for name, path in modules().items():
        if path == INTERNALS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        touches = [
            ast.unparse(node)
            for node in ast.walk(tree)
            if (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("_pytest"))
            or (
                isinstance(node, ast.Import)
                and any(a.name.startswith("_pytest") for a in node.names)
            )
            or (isinstance(node, ast.Attribute) and node.attr in PYTEST_PRIVATE_ATTRIBUTES)
            or (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value in PYTEST_PRIVATE_ATTRIBUTES
            )
        ]
        if touches:
            touching[name] = touches
    assert touching == {}
    assert "_pytest" in INTERNALS.read_text(encoding="utf-8")


def test_the_top_level_shows_at_most_twenty_public_names():
    names = [
        path.stem if path.is_file() else path.name
        for path in PACKAGE.iterdir()
        if not path.name.startswith(("_", "."))
        and (path.suffix == ".py" or (path / "__init__.py").is_file())
    ]
    assert len(names) <= 20, sorted(names)
    private = [
        path.name for path in PACKAGE.iterdir() if path.name.startswith("_") and path.is_dir()
    ]
    assert {"_declare", "_run", "_pytest_bridge", "_engine", "_report", "_util"} <= set(private)


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_import_paths_import(module: str):
    imported_module = importlib.import_module(module)
    for name in PUBLIC[module]:
        assert getattr(imported_module, name) is not None, f"{module}.{name}"


@pytest.mark.parametrize(
    "statement",
    [
        "import dotevals.cli",
        "import dotevals; dotevals.load",
        "from dotevals.storage.location import find_project; find_project()",
    ],
)
def test_the_command_line_and_reading_results_load_no_pytest(statement: str):
    code = f"import sys\n{statement}\nprint(sorted(m for m in sys.modules if 'pytest' in m))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_typed_keywords_are_the_option_table():
    assert set(RunOptionsKeywords.__annotations__) == KEYWORDS
    assert set(RunnerOptions.__annotations__) == KEYWORDS - {"samples", "concurrent"}
    assert RunOptionsKeywords.__optional_keys__ == KEYWORDS  # every option may be left out
