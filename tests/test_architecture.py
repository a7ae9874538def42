"""The shape of the package, read from its source with ``ast``: imports run one way,
``layers -> engine -> ops -> backend``, with no cycle anywhere (imports inside
functions included), and every file stays readable in one sitting."""
import ast
import os

import pytest

from package_imports import ALL_IMPORTS, MODULES, PACKAGE

MAX_LINES = 600           # no file of minicnn over this many lines
MAX_CONV2D_LINES = 150    # the Conv2D class, docstring included


GRAPH = {name: {m for m in ALL_IMPORTS[name] if m in MODULES and m != name}
         for name in MODULES}


def _part(name):
    """The architectural part of module ``name``: layers, engine, ops, backend or other."""
    for part in ("layers", "engine", "ops", "backend"):
        if name == f"minicnn.{part}" or name.startswith(f"minicnn.{part}."):
            return part
    return "other"


def test_the_package_has_no_import_cycle():
    state = {}   # name -> "visiting" | "done"

    def visit(name, trail):
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = trail[trail.index(name):] + [name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        state[name] = "visiting"
        for imported in sorted(GRAPH[name]):
            visit(imported, trail + [name])
        state[name] = "done"

    for name in sorted(GRAPH):
        visit(name, [])


@pytest.mark.parametrize("part,allowed", [
    ("ops", {"ops", "backend"}),
    ("engine", {"engine", "ops", "backend"}),
    ("layers", {"layers", "engine", "ops", "backend", "other"}),
])
def test_imports_run_one_way(part, allowed):
    """layers -> engine -> ops -> backend: nothing below imports anything above."""
    wrong = [f"{name} imports {imported}" for name, imports in GRAPH.items()
             if _part(name) == part for imported in imports if _part(imported) not in allowed]
    assert not wrong, wrong
    if part == "layers":   # the layers' other imports are their maths: activations...
        others = {imported for name, imports in GRAPH.items() if _part(name) == part
                  for imported in imports if _part(imported) == "other"}
        assert others <= {"minicnn.activations", "minicnn.initializers", "minicnn.random",
                          "minicnn.regularizers"}


def test_only_the_backend_imports_cupy_and_only_the_engine_numba():
    cupy = sorted(name for name, imports in ALL_IMPORTS.items()
                  if any(m == "cupy" or m.startswith("cupy.") for m in imports))
    assert cupy == ["minicnn.backend"]
    numba = sorted(name for name, imports in ALL_IMPORTS.items()
                   if any(m == "numba" or m.startswith("numba.") for m in imports))
    assert numba and all(_part(name) == "engine" for name in numba), numba


def test_no_file_is_longer_than_one_sitting():
    long = {str(path.relative_to(PACKAGE.parent)): lines for path in MODULES.values()
            if (lines := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_conv2d_reads_in_one_sitting():
    tree = ast.parse((PACKAGE / "layers" / "conv.py").read_text())
    conv2d = next(node for node in tree.body
                  if isinstance(node, ast.ClassDef) and node.name == "Conv2D")
    first = min([conv2d.lineno] + [d.lineno for d in conv2d.decorator_list])
    assert conv2d.end_lineno - first + 1 < MAX_CONV2D_LINES


def test_the_graph_sees_the_package():
    """(The tests above would pass vacuously on an empty graph.)"""
    assert {"minicnn.layers.conv", "minicnn.engine.conv", "minicnn.ops.conv",
            "minicnn.backend"} <= set(MODULES)
    assert "minicnn.engine" in GRAPH["minicnn.layers.conv"]
    assert os.path.basename(MODULES["minicnn.engine"]) == "__init__.py"
