"""minicnn's modules and what each imports, read from the source with ``ast`` (shared by
test_architecture.py and test_bench_package.py)."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "minicnn"


def _modules():
    """{"minicnn.engine.conv": path, ...} for every .py file of the package."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _is_package(name):
    return MODULES.get(name, Path()).name == "__init__.py"


def _imports(name, path):
    """Every module (of minicnn or not) that ``name`` imports, anywhere in its source."""
    package = name if _is_package(name) else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:   # `from . import conv`: the submodule when there is one
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULES else base)
    return found


ALL_IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}
