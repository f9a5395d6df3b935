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
