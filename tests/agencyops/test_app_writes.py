"""Each app owns its writes, read from the code itself (its syntax trees): no module of
`lifecycle` writes a model of `clients` or `backups`, and no module of `backups` a model of
`clients` — they call the owning app's services, whose signals then fire.

A write is a call of `update`, `delete`, `save`, `create`, `get_or_create`, `update_or_create`,
`bulk_create` or `bulk_update` on a lower app's model class (`Dataset.objects.filter(…).update(…)`)
or on a name that holds one of its rows or querysets: a parameter or variable annotated with the
model, a variable assigned from the model (`d = Dataset.objects.get(…)`), a loop over either.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# app -> the apps below it whose models it must not write
LOWER = {"lifecycle": ("clients", "backups"), "backups": ("clients",)}
WRITES = frozenset(
    {
        "update",
        "delete",
        "save",
        "create",
        "get_or_create",
        "update_or_create",
        "bulk_create",
        "bulk_update",
    }
)
def _modules(app: str) -> Iterator[Path]:
    for path in sorted((ROOT / app).rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def _lower_models(tree: ast.AST, lower: tuple[str, ...]) -> set[str]:
    """Names imported from a lower app's models (`from clients.models import Dataset`)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            app, *rest = node.module.split(".")
            if app in lower and "models" in rest:
                names.update(alias.asname or alias.name for alias in node.names)
    return names


def _root(node: ast.expr) -> ast.expr:
    """The start of a chain: `Dataset` in `Dataset.objects.filter(x).update(y)`."""
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute | ast.Subscript):
            node = node.value
        else:
            return node


def _root_name(node: ast.expr) -> str | None:
    root = _root(node)
    return root.id if isinstance(root, ast.Name) else None


def _names_in(annotation: ast.expr | None) -> set[str]:
    if annotation is None:
        return set()
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        return _names_in(ast.parse(annotation.value, mode="eval").body)
    return {n.id for n in ast.walk(annotation) if isinstance(n, ast.Name)}


def _targets(target: ast.expr) -> Iterator[str]:
    for node in ast.walk(target):
        if isinstance(node, ast.Name):
            yield node.id


def _holders(scope: ast.AST, models: set[str]) -> set[str]:
    """Names in `scope` that hold a lower model's rows (see the module docstring)."""
    held: set[str] = set()
    for node in ast.walk(scope):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
                if _names_in(arg.annotation) & models:
                    held.add(arg.arg)
    # Assignments and loops feed each other (`for d in ds` after `ds = Dataset.objects…`).
    for _ in range(3):
        for node in ast.walk(scope):
            if isinstance(node, ast.AnnAssign) and _names_in(node.annotation) & models:
                held.update(_targets(node.target))
            elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                if _root_name(node.value) in models | held:
                    for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                        held.update(_targets(target))
            elif isinstance(node, ast.For) and _root_name(node.iter) in models | held:
                held.update(_targets(node.target))
    return held


def _writes(statements: list[ast.stmt], targets: set[str]) -> Iterator[tuple[int, str]]:
    for node in (n for statement in statements for n in ast.walk(statement)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in WRITES
            and _root_name(node.func.value) in targets
        ):
            yield node.lineno, f"{_root_name(node.func.value)}.{node.func.attr}"


def lower_writes(source: str, lower: tuple[str, ...]) -> list[tuple[int, str]]:
    """(line, "<root>.<write>") for every write on a lower app's model in `source`."""
    tree = ast.parse(source)
    models = _lower_models(tree, lower)
    # Module level (functions and classes aside), then each function with the names it holds.
    found = set(
        _writes(
            [
                s
                for s in tree.body
                if not isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            ],
            models,
        )
    )
    for scope in ast.walk(tree):
        if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
            found.update(_writes([scope], models | _holders(scope, models)))
    return sorted(found)


def test_no_app_writes_a_lower_apps_models() -> None:
    unexpected: list[str] = []
    modules = 0
    for app, lower in LOWER.items():
        for path in _modules(app):
            modules += 1
            name = str(path.relative_to(ROOT))
            found = lower_writes(path.read_text(), lower)
            unexpected += [f"{name}:{line} {write}" for line, write in found]
    assert not unexpected, "\n".join(unexpected)
    assert modules > 50  # the walk reads both apps' files


PLANTED = """
from backups.models import BackupSchedule, DatasetProtection as Protection
from clients.models import Dataset, LifecycleState
from lifecycle.models import DeletionRequest


def stop(datasets: list[Dataset], request: DeletionRequest) -> None:
    Dataset.objects.filter(pk__in=[d.pk for d in datasets]).update(lifecycle_state="deleted")
    BackupSchedule.objects.filter(dataset__in=datasets).delete()
    for dataset in datasets:
        dataset.save(update_fields=["lifecycle_state"])
    protection = Protection.objects.get(dataset=datasets[0])
    protection.wrapped_key = None
    protection.save()
    Protection.objects.create(dataset=datasets[0])
    request.save()  # lifecycle's own row
    {}.update(a=1)  # not a model


def one(dataset: "Dataset | None") -> None:
    if dataset is not None:
        dataset.delete()
"""


def test_the_write_finder_finds_every_kind_of_write() -> None:
    """The check above can fail: a planted module's writes are all found, its own are not."""
    assert lower_writes(PLANTED, ("clients", "backups")) == [
        (8, "Dataset.update"),
        (9, "BackupSchedule.delete"),
        (11, "dataset.save"),
        (14, "protection.save"),
        (15, "Protection.create"),
        (22, "dataset.delete"),
    ]
    assert lower_writes(PLANTED, ("clients",)) == [
        (8, "Dataset.update"),
        (11, "dataset.save"),
        (22, "dataset.delete"),
    ]
