"""No import cycles between the project's own modules, counting imports made inside functions too.

    python -m pytest -q tests/test_import_cycles.py

A function-local import that exists only to dodge a cycle hides the cycle from Python, not from a reader, so it
counts here like a top-level one. Two kinds of import are left out because they cannot tie modules in a loop:
those under `if TYPE_CHECKING:` never run (they let a lower module name a type from a higher one for the type
checker), and those under `if __name__ == "__main__":` run only when the file is the program, as the module
`__main__`, which nothing imports (`python -m judge.ratings export` hands over to judge.export that way).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_DIRS = {".venv", ".git", "data", "outputs", "logs", "test-artifacts", "__pycache__", "node_modules"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    """Module name -> file, for every .py file of the repository (walked with pruning: .venv alone is huge)."""
    modules = {}
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if d not in SKIPPED_DIRS and not d.startswith(".")]
        for file in files:
            if file.endswith(".py"):
                path = Path(folder, file)
                modules[_module_name(path)] = path
    return modules


def _never_imported_block(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:` or `if __name__ == "__main__":` (see the module docstring)."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    if isinstance(test, ast.Name | ast.Attribute):
        return (test.id if isinstance(test, ast.Name) else test.attr) == "TYPE_CHECKING"
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of the file, at any depth, except in blocks that never run on import."""
    found = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif not _never_imported_block(node):
            stack.extend(ast.iter_child_nodes(node))
    return found


def _own_module(name: str, modules: dict[str, Path]) -> str | None:
    """`name` or its nearest enclosing package that is a project module (`a.b.c` -> `a.b` when c is a name)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports. A package's __init__ is not implied by importing a submodule
    (Python runs it, but it is the package's face, not a dependency of the importer)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative import: resolve against this module's package
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    package = package[: len(package) - (node.level - 1)]
                    base = ".".join([*package, base] if base else package)
                # `from pkg import sub` imports the submodule when there is one, else a name defined in pkg
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                own = _own_module(target, modules)
                if own and own != name:
                    graph[name].add(own)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (iterative depth-first search, colours white/grey/black)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for start in sorted(graph):
        if state.get(start):
            continue
        path = [start]
        iterators = [iter(sorted(graph[start]))]
        state[start] = 1
        while iterators:
            child = next(iterators[-1], None)
            if child is None:
                state[path.pop()] = 2
                iterators.pop()
            elif state.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                iterators.append(iter(sorted(graph[child])))
    return None


def test_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_sees_function_local_and_relative_imports(tmp_path: Path) -> None:
    source = (
        "def f():\n    from . import b\n\nclass C:\n    def g(self):\n        import pkg.d\n\n"
        "if TYPE_CHECKING:\n    import pkg.c\nif __name__ == '__main__':\n    import pkg.e\n"
    )
    assert sorted(type(node).__name__ for node in _imports(ast.parse(source))) == ["Import", "ImportFrom"]
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from .b import x\n")
    (package / "b.py").write_text("import pkg.a\nx = 1\n")
    modules = {"pkg": package / "__init__.py", "pkg.a": package / "a.py", "pkg.b": package / "b.py"}
    assert find_cycle(import_graph(modules)) == ["pkg.a", "pkg.b", "pkg.a"]


def test_the_repository_has_no_import_cycle() -> None:
    modules = project_modules()
    assert {"models.base", "models.hub", "judge.ratings", "trainer.train", "app"} <= set(modules)
    graph = import_graph(modules)
    assert "models.base" in graph["models.hub"], "the graph lost a known import; the parser is broken"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
