"""The apps depend on each other one way only (DESIGN.md, "The direction of dependencies").

    scoring <- studies <- accounts <- patients <- crfs <- safety <- review <- exports <- api
        <- reminders <- demo

with audit, notifications, core and formats as leaves that any app may use. Every name an
app's Python files give of another app counts, wherever it is written: imports at module
level and inside functions (a deferred import is still a dependency), relative imports,
`import_module("ecrf....")`, `apps.get_model("label", ...)` and a model field's
`ForeignKey("label.Model")`. A lower app reacts to a higher one through a hook or a signal
bound to its sender, never by naming it. Migrations may name other apps' models and are
left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

ECRF = Path(__file__).resolve().parent.parent / "ecrf"

# Lowest first; an app may use the apps of the layers below its own.
LAYERS = [
    {"scoring"},
    {"studies"},
    {"accounts"},
    {"patients"},
    {"crfs"},
    {"safety"},
    {"review"},
    # The ODM export carries the review's electronic signatures.
    {"exports"},
    # The API serves every app's data, the export jobs included, through their services.
    {"api"},
    # Reminders read every app's deadlines, the review's open queries included.
    {"reminders"},
    {"demo"},
]
RANK = {app: rank for rank, layer in enumerate(LAYERS) for app in layer}
# Any app may use these; they use nothing but each other.
LEAVES = frozenset({"audit", "notifications", "core", "formats"})
# Project modules that app code may use: the environment helpers, the embedded PostgreSQL.
PROJECT_MODULES = frozenset({"env", "embedded_pg"})
RELATED_FIELDS = frozenset({"ForeignKey", "OneToOneField", "ManyToManyField"})

# Edges that break the order today and are another item's of issue 11, each with its
# reason. Each must still exist: the test fails once it is gone, so that its line goes too.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


def _module_of(path: Path) -> list[str]:
    return list(path.relative_to(ECRF.parent).with_suffix("").parts)


def _app_of_module(module: str | None) -> str | None:
    """The top-level package under ecrf of a dotted module name (None: not ecrf's)."""
    parts = (module or "").split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "ecrf" else None


def named_apps(source: str, path: Path) -> list[tuple[int, str, str]]:
    """(line, package under ecrf, how) for every name of an ecrf package in the source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if app := _app_of_module(alias.name):
                    found.append((node.lineno, app, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _module_of(path)[: -node.level]
                module = ".".join([*package, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module == "ecrf":  # from ecrf import crfs, env
                for alias in node.names:
                    found.append((node.lineno, alias.name, f"from ecrf import {alias.name}"))
            elif app := _app_of_module(module):
                found.append((node.lineno, app, f"from {module} import ..."))
        elif isinstance(node, ast.Call) and node.args:
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            if name in ("import_module", "__import__"):
                if app := _app_of_module(first.value):
                    found.append((node.lineno, app, f"{name}({first.value!r})"))
            elif name == "get_model":
                found.append(
                    (node.lineno, first.value.split(".")[0], f"get_model({first.value!r})")
                )
            elif name in RELATED_FIELDS and first.value.count(".") == 1:
                found.append((node.lineno, first.value.split(".")[0], f"{name}({first.value!r})"))
    return found


def app_files():
    for path in sorted(ECRF.glob("*/**/*.py")):
        parts = path.relative_to(ECRF).parts
        if "migrations" not in parts:
            yield parts[0], path


def allowed(app: str, other: str) -> bool:
    if other == app or other in PROJECT_MODULES:
        return True
    if app in LEAVES:
        return other in LEAVES
    return other in LEAVES or (other in RANK and RANK[other] < RANK[app])


def edges() -> dict[tuple[str, str], list[str]]:
    """Every dependency that the order refuses, with where it is written."""
    refused: dict[tuple[str, str], list[str]] = {}
    for app, path in app_files():
        for line, other, how in named_apps(path.read_text(), path):
            if not allowed(app, other):
                where = f"{path.relative_to(ECRF.parent)}:{line} {how}"
                refused.setdefault((app, other), []).append(where)
    return refused


def test_every_app_has_a_place_in_the_order():
    packages = {path.parent.name for path in ECRF.glob("*/__init__.py")}
    assert packages - RANK.keys() - LEAVES == set(), "place the new app in LAYERS or LEAVES"


def test_apps_use_only_the_apps_below_them():
    refused = {edge: where for edge, where in edges().items() if edge not in KNOWN_EXCEPTIONS}
    assert refused == {}


def test_each_known_exception_is_still_there():
    gone = KNOWN_EXCEPTIONS.keys() - edges().keys()
    assert gone == set(), "remove these lines from KNOWN_EXCEPTIONS: they are fixed"


def test_scoring_imports_nothing_from_django_or_the_other_apps():
    imported = set()
    for app, path in app_files():
        if app != "scoring":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                imported.add((node.module or "").split(".")[0])
        assert {a for _line, a, _how in named_apps(path.read_text(), path)} <= {"scoring"}
    assert "django" not in imported


def test_the_collector_sees_every_way_of_naming_an_app():
    path = ECRF / "patients" / "views.py"
    source = """
from ecrf.crfs.models import Consent
import ecrf.safety.services
from ecrf import demo
from ..crfs import forms
from . import casebook

def later():
    from ecrf.review.services import sdv_mark
    importlib.import_module("ecrf.exports.csv")
    apps.get_model("safety", "AdverseEvent")
    return models.ForeignKey("crfs.Mrss", on_delete=models.PROTECT)
"""
    assert [app for _line, app, _how in named_apps(source, path)] == [
        "crfs",
        "safety",
        "demo",
        "crfs",
        "patients",
        "review",
        "exports",
        "safety",
        "crfs",
    ]
    assert not any(allowed("patients", app) for app in ("crfs", "safety", "demo", "review"))
    assert all(allowed("patients", app) for app in ("accounts", "studies", "scoring", "audit"))
    assert not allowed("audit", "patients")
