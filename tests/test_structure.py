"""The package's structure: every module imports on its own, config.py imports nothing of the
project, and no import cycle hides behind a function-level import."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "tscnn"




def module_names() -> list[str]:
    """Every module of the package, found on disk (packages by their ``__init__``)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_module_imports_in_a_fresh_interpreter():
    """Each module imported first, alone, in its own interpreter: an import cycle breaks the entry
    points it is reached from, which a single test process (modules already loaded) never sees."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}

    def run(name: str) -> tuple[str, int, str]:
        done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, env=env,
                              timeout=300)
        return name, done.returncode, done.stderr.strip().splitlines()[-1:]

    names = module_names()
    assert len(names) > 20 and "tscnn.config" in names and "tscnn.datasets.base" in names
    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [(name, err) for name, code, err in pool.map(run, names) if code != 0]
    assert not failures, failures


def project_imports(path: Path) -> dict[str, bool]:
    """Project modules a source file imports -> whether only inside a function (a lazy import).
    Imports under ``if TYPE_CHECKING:`` are not run and are left out."""
    known = set(module_names())
    found: dict[str, bool] = {}

    def add(name: str, lazy: bool) -> None:
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in known:
            found[name] = found.get(name, True) and lazy
            parts = name.split(".")
            for i in range(2, len(parts)):  # importing a.b.c runs the package a.b first
                parent = ".".join(parts[:i])
                found[parent] = found.get(parent, True) and lazy

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("tscnn"):
                        add(alias.name, lazy)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and (child.module or "").startswith("tscnn"):
                add(child.module, lazy)
                for alias in child.names:
                    add(f"{child.module}.{alias.name}", lazy)
            visit(child, lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text()), False)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> project modules it imports anywhere in its source (module level or in a function)."""
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        graph[name] = {m for m in project_imports(path) if m != name and not name.startswith(m + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (sets of modules importing one another)."""
    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reach = {m: reachable(m) for m in graph}
    components: list[set[str]] = []
    for m in sorted(graph):
        if m in reach[m] and not any(m in c for c in components):
            components.append({m} | {n for n in reach[m] if m in reach[n]})
    return components


def test_no_import_cycle_even_through_function_level_imports():
    """Every module's imports, those inside functions included, parsed with ``ast``: the package's import
    graph has no cycle (the run -> report -> run and run <-> saved-model circles were closed by splitting the
    run into its facts, one fold, the fold backends, the runner and the application verbs)."""
    found = cycles(import_graph())
    assert not found, f"import cycles: {[sorted(c) for c in found]}"


def test_the_run_is_split_by_concern():
    """The facts of a run sit below the reports and the saved model, which read them; the application verbs
    sit on top and nothing of the package imports them (besides the command line and the package's API)."""
    graph = import_graph()
    assert "tscnn.experiment" not in graph
    for low in ("tscnn.run_facts", "tscnn.fold", "tscnn.backends", "tscnn.runner"):
        assert not graph[low] & {"tscnn.app", "tscnn.report", "tscnn.html_report", "tscnn.predict", "tscnn.cli"}, low
    users = {m for m, imports in graph.items() if "tscnn.app" in imports}
    assert users <= {"tscnn", "tscnn.cli", "tscnn.bench"}, users


def test_the_cycle_detector_sees_function_level_imports(tmp_path):
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import tscnn.train\n"
                      "def f():\n    from tscnn.pretrain import pretrain\n")
    assert project_imports(source) == {"tscnn.pretrain": True}


@pytest.mark.parametrize("relative, allowed", [("config.py", {"tscnn.protocol_specs", "tscnn.errors"}),
                                               ("errors.py", set()),
                                               ("protocol_specs.py", {"tscnn._registry"}),
                                               ("_registry.py", set())])
def test_leaf_modules_import_nothing_of_the_project(relative, allowed):
    """config.py and errors.py sit below everything: any project import there would make a cycle. config.py
    reads the protocols' names from the registry of protocols, which imports nothing of the project when
    imported but the registries' add/look-up helpers, a leaf (its fold makers import tscnn.protocols when called),
    and the error types from errors.py, a leaf."""
    eager = {name for name, lazy in project_imports(PACKAGE / relative).items() if not lazy}
    assert eager <= allowed, eager
    graph = import_graph()
    below = set().union(*(graph[m] for m in allowed)) if allowed else set()
    assert "tscnn.config" not in below and not below & {"tscnn.runner", "tscnn.fold", "tscnn.app"}


def test_a_protocol_is_one_entry_of_its_registry():
    """The Config's protocol names, their checks, fold makers, report titles and folder names all come from
    ``tscnn.protocol_specs``."""
    import pandas as pd

    from tscnn.config import PROTOCOLS, Config
    from tscnn.protocol_specs import PROTOCOL_SPECS, get_protocol

    assert PROTOCOLS == tuple(PROTOCOL_SPECS) == ("loso", "cross")
    with pytest.raises(ValueError, match=r"protocol 'cross' needs train_datasets and test_datasets \(e.g."):
        Config(protocol="cross", train_datasets=("casme2",))
    config = Config(protocol="cross", train_datasets=("casme2", "smic"), test_datasets=("samm",))
    cross = get_protocol("cross")
    assert cross.title(config) == "cross-database: train casme2+smic, test samm"
    assert cross.folder(config) == "casme2+smic-to-samm" and get_protocol("loso").folder(config) == ""
    table = pd.DataFrame({"dataset": ["casme2", "smic", "samm", "samm"], "subject": ["a", "b", "c", "d"]})
    (fold,) = cross.folds(config, table, 0, 0.0)
    assert list(fold.test) == [2, 3] and sorted(fold.train) == [0, 1]
    assert [f.test_subject for f in get_protocol("loso").folds(Config(), table, 0, 0.0)] == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="unknown protocol 'kfold'"):
        get_protocol("kfold")
    from tscnn.models import get_model, register_model
    from tscnn.protocol_specs import register_protocol

    with pytest.raises(ValueError, match="protocol 'loso' is registered twice"):
        register_protocol(get_protocol("loso"))
    with pytest.raises(ValueError, match="model 'tscnn' is registered twice"):
        register_model(get_model("tscnn"))
    with pytest.raises(ValueError, match=r"unknown model 'resnet'; expected one of \['hoof', "):
        get_model("resnet")


def test_models_are_asked_what_they_can_do_not_named():
    """Streams, epochs, fusion with the floor, ONNX export and pre-trained weights are attributes of a model's
    registry entry: no module decides them by comparing a model's name."""
    from tscnn.models import MODELS

    names = "|".join(MODELS)
    named = re.compile(rf"""(model|name)\s*[!=]=\s*["']({names})["']""")
    found = [f"{path.relative_to(SRC)}:{i}" for path in sorted(PACKAGE.rglob("*.py"))
             for i, line in enumerate(path.read_text().splitlines(), 1) if named.search(line)]
    assert not found, found
    tscnn, linear, ststnet = MODELS["tscnn"], MODELS["linear"], MODELS["ststnet"]
    assert tscnn.any_streams and tscnn.pretrained_weights and tscnn.exports_onnx and tscnn.fuses_with_floor
    assert ststnet.trains_by_epochs and ststnet.exports_onnx and not ststnet.any_streams
    assert linear.is_features and not (linear.trains_by_epochs or linear.fuses_with_floor or linear.exports_onnx)


def test_one_loader_of_weights():
    """Every weights file (model files, pre-trained weights, training checkpoints) is read by
    ``tscnn.checkpoints.load_weights``, with ``weights_only=True``: no other module calls ``torch.load``."""
    calls = [f"{path.relative_to(SRC)}:{node.lineno}" for path in sorted(PACKAGE.rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load"]
    assert calls and all(c.startswith(os.path.join("tscnn", "checkpoints.py")) for c in calls), calls
