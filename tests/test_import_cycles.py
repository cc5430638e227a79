"""No import cycle among mmscale's modules, and imports at the top of a module.

The graph is built from the source with ``ast``, without importing anything: an edge A -> B for each
``import``/``from ... import`` at module level of A (``if TYPE_CHECKING:`` blocks aside, since they
never run) that names B, a module of mmscale, or a package on the way to it, whose ``__init__`` runs
first. Any cycle is printed as the chain of modules (``python tests/test_import_cycles.py`` prints
them too). The same graph with the imports inside functions added must have no cycle either, but the
one listed in ``KNOWN_HIDDEN``: an import moved into a function must not be what keeps a cycle from
failing at import time. And every import inside a function says why in a comment (an optional
dependency, a measured cost), or sits in a ``try`` that handles the package being absent.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "mmscale"


def module_files() -> dict[str, Path]:
    """``mmscale.bench.load.runner`` -> its file, for every module of the package."""
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports resolved against ``module``)."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


KNOWN_HIDDEN: list[set[str]] = []


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def top_level_imports(tree: ast.Module) -> list[ast.stmt]:
    """Import statements that run when the module is imported: at module level, including inside
    ``try``/``if`` blocks there, but not under ``if TYPE_CHECKING:`` and not inside functions or classes."""
    found = []

    def visit(body):
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif isinstance(node, ast.If):
                if not is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody, *[h.body for h in node.handlers]):
                    visit(block)
            elif isinstance(node, ast.With):
                visit(node.body)

    visit(tree.body)
    return found


def imported_modules(node: ast.stmt, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The mmscale modules an import statement needs to have run: the named module, or for ``from P
    import name`` the submodule ``P.name`` where it is one (and P where a name is not), each with the
    packages above it, except the importer's own packages (they run before it does, so that edge is
    no dependency; one it names is)."""
    if isinstance(node, ast.Import):
        named = [alias.name for alias in node.names]
    else:
        base = resolve(node, module, is_package)
        submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known]
        # ``from P import submodule`` needs P only to have started; a name P defines needs P to have run
        named = submodules + ([base] if len(submodules) < len(node.names) else [])
    out = set()
    for name in named:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in known and (prefix == name or not module.startswith(prefix + ".")):
                out.add(prefix)
    return out


def function_imports(tree: ast.Module) -> list[tuple[ast.stmt, list[ast.AST]]]:
    """Imports inside functions (``if TYPE_CHECKING:`` aside), each with the nodes enclosing it."""
    found = []

    def visit(node, parents, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and is_type_checking(child.test):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)) and in_function:
                found.append((child, parents))
            visit(child, parents + [child], in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(tree, [], False)
    return found


def import_graph(in_functions: bool = False) -> dict[str, set[str]]:
    """Module -> the mmscale modules its top-level imports run (``in_functions``: and its function-level ones)."""
    files = module_files()
    known = set(files)
    graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        edges = set()
        nodes = top_level_imports(tree) + ([n for n, _ in function_imports(tree)] if in_functions else [])
        for node in nodes:
            edges |= imported_modules(node, module, is_package, known)
        graph[module] = edges - {module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component with more than one module, as a chain A -> B -> ... -> A."""
    return [chain(graph, sorted(c)) for c in components(graph)]


def components(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(set(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def chain(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One closed path through a component, from its first module back to it (breadth-first)."""
    start, members = component[0], set(component)
    parents, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                path = [v]
                while parents[path[-1]] is not None:
                    path.append(parents[path[-1]])
                return list(reversed(path)) + [start]
            if w not in parents:
                parents[w] = v
                queue.append(w)
    return component


def test_the_graph_sees_the_package():
    graph = import_graph()
    assert "mmscale.bench.load.runner" in graph
    assert "mmscale.bench.load.client" in graph["mmscale.bench.load.runner"]
    assert {"mmscale.cli.bench.args", "mmscale.cli.out"} <= graph["mmscale.cli.bench.checkpoint"]
    assert "mmscale.cli" in graph["mmscale.cli.bench"]  # named: `from mmscale.cli import command_modules`
    assert "mmscale.bench" not in graph["mmscale.bench.load.runner"]  # its own package: runs first anyway


def test_find_cycles_reports_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]


def test_no_import_cycle_among_mmscale_modules():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_cycle_is_hidden_by_an_import_inside_a_function():
    graph = import_graph(in_functions=True)
    hidden = [c for c in components(graph) if c not in KNOWN_HIDDEN]
    assert not hidden, "cycles closed by imports inside functions:\n" + "\n".join(
        " -> ".join(chain(graph, sorted(c))) for c in hidden)


def handles_absence(parents: list[ast.AST]) -> bool:
    """Inside a ``try`` whose handler catches the import failing (ImportError or broader)."""
    for node in parents:
        if isinstance(node, ast.Try):
            for handler in node.handlers:
                names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
                if handler.type is None or any(isinstance(n, ast.Name) and n.id in (
                        "ImportError", "ModuleNotFoundError", "Exception") for n in names):
                    return True
    return False


def test_every_import_inside_a_function_says_why():
    unexplained = []
    for module, path in module_files().items():
        lines = path.read_text().splitlines()
        for node, parents in function_imports(ast.parse("\n".join(lines))):
            here = lines[node.lineno - 1]
            above = node.lineno - 2  # the line above the run of imports (blank lines in it) this one ends
            while above >= 0 and (not lines[above].strip() or lines[above].strip().startswith(("import ", "from "))):
                above -= 1
            if "#" in here or (above >= 0 and lines[above].strip().startswith("#")) or handles_absence(parents):
                continue
            unexplained.append(f"{path.relative_to(SRC)}:{node.lineno}: {here.strip()}")
    assert not unexplained, "imports inside functions without a reason:\n" + "\n".join(unexplained)


if __name__ == "__main__":  # python tests/test_import_cycles.py: print the cycles, if any
    for c in find_cycles(import_graph()):
        print(" -> ".join(c))
