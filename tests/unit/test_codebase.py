"""Rules about the code itself, checked by reading it (issue 12)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "services", "models", "tests", "bench", "scripts")


def test_no_private_attribute_of_another_object_is_used() -> None:
    """``x._name`` only on ``self``/``cls``: a private attribute of a library (SQLAlchemy's
    ``_transaction``) or of another class may change or vanish in any release."""
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})
    ]
    assert found == []


# Use cases that reach the database through a store or the unit of work's connection only.
USE_CASES = (
    "services/submissions/service.py",
    "services/alerts/engine.py",
    "services/alerts/lifecycle.py",
    "services/care/clients.py",
    "services/care/episodes.py",
    "services/care/clinicians.py",
)
DATABASE_QUESTIONS = {"driver", "driver_transaction", "has_driver", "dialect", "is_sqlite"}


def test_use_cases_never_ask_which_database_they_are_on() -> None:
    """The storage choice lives behind the store (services/submissions/store.py): no ``if
    driver`` and no dialect check in a use case."""
    found = [
        f"{path}:{node.lineno}: {ast.unparse(node)}"
        for path in USE_CASES
        for node in ast.walk(ast.parse((ROOT / path).read_text(), path))
        if (isinstance(node, ast.Attribute) and node.attr in DATABASE_QUESTIONS)
        or (isinstance(node, ast.Name) and node.id in DATABASE_QUESTIONS)
    ]
    assert found == []
