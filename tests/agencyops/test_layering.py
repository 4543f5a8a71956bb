"""Rules of the code's shape, read from the code itself (its syntax trees), so a change that
breaks one fails here rather than in a review:

- dependencies point one way between the apps: `clients` imports neither `backups` nor
  `lifecycle`; `backups` imports no `lifecycle` module;
- a view, API, page, form, selector or dashboard module never reads every organization's rows
  (`unscoped_for_system_task` is for tasks, services run by tasks, and commands).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("clients", "backups", "lifecycle")
# app -> the apps it may not import
FORBIDDEN = {"clients": ("backups", "lifecycle"), "backups": ("lifecycle",)}
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


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_an_app_imports_no_app_above_it(app: str) -> None:
    found = []
    for path in _modules(app):
        for line, module in _imported(ast.parse(path.read_text(), str(path))):
            if module.split(".")[0] in FORBIDDEN[app]:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not found, "\n".join(found)
    assert len(list(_modules(app))) > 10  # the walk reads the app's files


def _is_request_module(path: Path) -> bool:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return any(part in REQUEST_MODULES for part in parts)


def test_no_request_module_reads_every_organization() -> None:
    request_modules = [p for app in APPS for p in _modules(app) if _is_request_module(p)]
    calls = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in request_modules
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Attribute) and node.attr == "unscoped_for_system_task"
    ]
    assert not calls, "\n".join(calls)
    # The walk covers the request side of every app (a rename must not empty it).
    names = {p.relative_to(ROOT).parts[0] for p in request_modules}
    assert names == set(APPS)
    assert len(request_modules) > 10
