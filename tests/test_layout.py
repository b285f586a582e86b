"""The package's layout: imports point one way (no cycle), and files stay small enough to
read whole (over 350 lines only where the module docstring says why it is one concern)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "l2dlib"
MAX_LINES = 350


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, anywhere in it (lazy imports included)."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                subs = {f"{target}.{a.name}" for a in node.names} & set(modules)
                deps |= subs or ({target} & set(modules))
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names} & set(modules)
        graph[name] = deps - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return path[path.index(dep) :] + [dep]
            if dep not in state and (cycle := visit(dep, [*path, dep])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert {"l2dlib.batch", "l2dlib.cluster", "l2dlib.runner", "l2dlib.data.mog"} <= set(graph)
    assert "l2dlib.runner" not in graph["l2dlib.cluster"]  # the cycle this layout removed
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
    # The check itself finds a planted cycle.
    assert find_cycle(graph | {"l2dlib.config": graph["l2dlib.config"] | {"l2dlib.pages"}})


def test_no_file_is_long_unless_it_says_why():
    long = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = len(path.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES and "one concern" not in doc.lower():
            long[str(path.relative_to(PACKAGE))] = lines
    assert not long, f"over {MAX_LINES} lines without saying why they are one concern: {long}"
