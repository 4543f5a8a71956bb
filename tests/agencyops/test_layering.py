"""Rules of the code's shape, read from the code itself (its syntax trees), so a change that
breaks one fails here rather than in a review:

- dependencies point one way: the kernel imports no app and not the composition root
  (`agencyops`); `clients` imports neither `backups` nor `lifecycle`; `backups` imports no
  `lifecycle` module, not by name through `apps.get_model` either; no app imports the
  composition root;
- no import cycle joins modules of different packages (function-level imports included);
- a view, API, page, form, selector or dashboard module never reads every organization's rows:
  it neither enters `system_scope()` nor calls `unscoped_for_system_task` (both are for tasks,
  services run by tasks, commands and the operator's admin).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("clients", "backups", "lifecycle")
PACKAGES = ("kernel", *APPS, "agencyops")
# package -> the packages it may not import
FORBIDDEN = {
    "kernel": ("agencyops", *APPS),
    "clients": ("agencyops", "backups", "lifecycle"),
    "backups": ("agencyops", "lifecycle"),
    "lifecycle": ("agencyops",),
}
# Modules that answer a request (or shape what a request reads).
REQUEST_MODULES = ("views", "api", "pages", "forms", "selectors", "dashboard", "templatetags")


def _modules(app: str) -> Iterator[Path]:
    for path in sorted((ROOT / app).rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def _imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def _named_models(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """App labels named in `apps.get_model("label", …)` / `get_model("label.Model")` calls."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "get_model"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value.split(".")[0]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_nothing_above_it(package: str) -> None:
    found = []
    for path in _modules(package):
        tree = ast.parse(path.read_text(), str(path))
        for line, module in _imported(tree):
            if module.split(".")[0] in FORBIDDEN[package]:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
        for line, label in _named_models(tree):
            if label in FORBIDDEN[package]:
                found.append(f"{path.relative_to(ROOT)}:{line} loads a {label} model by name")
    assert not found, "\n".join(found)
    assert len(list(_modules(package))) > 10  # the walk reads the package's files


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (`from a.b import c` counts a.b, and a.b.c
    when that is a module)."""
    paths = {_module_name(p): p for package in PACKAGES for p in _modules(package)}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        targets: set[str] = set()
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name in paths)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module in paths:
                    targets.add(node.module)
                named = (f"{node.module}.{a.name}" for a in node.names)
                targets.update(n for n in named if n in paths)
        graph[name] = targets - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def test_no_import_cycle_joins_two_packages() -> None:
    graph = _import_graph()
    crossing = [
        sorted(component)
        for component in _cycles(graph)
        if len({module.split(".")[0] for module in component}) > 1
    ]
    assert not crossing, "\n".join(" <-> ".join(c) for c in crossing)
    # The graph is the real one: every package is in it, and the apps import the kernel.
    assert {m.split(".")[0] for m in graph} == set(PACKAGES)
    clients_imports = graph["clients.services.inventory"] | graph["clients.models.organizations"]
    assert any(t.startswith("kernel.") for t in clients_imports)


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a planted two-package circle is found."""
    graph = {"a.x": {"b.y"}, "b.y": {"b.z"}, "b.z": {"a.x"}, "c": {"a.x"}}
    assert _cycles(graph) == [{"a.x", "b.y", "b.z"}]


def _is_request_module(path: Path) -> bool:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return any(part in REQUEST_MODULES for part in parts)


SYSTEM_SCOPE_NAMES = frozenset({"unscoped_for_system_task", "system_scope", "scopes_disabled"})


def _names_system_scope(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr in SYSTEM_SCOPE_NAMES
    if isinstance(node, ast.Name):
        return node.id in SYSTEM_SCOPE_NAMES
    if isinstance(node, ast.ImportFrom):
        return any(alias.name in SYSTEM_SCOPE_NAMES for alias in node.names)
    return False


def test_the_system_scope_check_can_fail() -> None:
    tree = ast.parse("from kernel.tenancy import system_scope\nwith system_scope():\n    pass\n")
    assert sum(_names_system_scope(node) for node in ast.walk(tree)) == 2
    assert not any(_names_system_scope(n) for n in ast.walk(ast.parse("organization_scope(1)")))


def test_no_request_module_reads_every_organization() -> None:
    request_modules = [p for app in APPS for p in _modules(app) if _is_request_module(p)]
    calls = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in request_modules
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if _names_system_scope(node)
    ]
    assert not calls, "\n".join(calls)
    # The walk covers the request side of every app (a rename must not empty it).
    names = {p.relative_to(ROOT).parts[0] for p in request_modules}
    assert names == set(APPS)
    assert len(request_modules) > 10


def test_the_tenant_filter_is_written_once() -> None:
    """`visible_to` (organization first, then the grant rule) lives in kernel.tenancy only; an
    app's queryset states its rule as `visible_rows` or as declared paths, never a filter of its
    own that could forget the organization."""
    overrides = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for app in APPS
        for path in _modules(app)
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.FunctionDef) and node.name == "visible_to"
    ]
    assert not overrides, "\n".join(overrides)
    kernel = (ROOT / "kernel" / "tenancy.py").read_text()
    assert "def visible_to(self, actor: Actor)" in kernel
