"""Rules about the code itself, checked by reading it (issue 12)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "services", "models", "tests", "bench", "scripts")


# namedtuple's public API is spelled with an underscore so it cannot clash with a field name.
NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make"}


def _own_private_names(cls: ast.ClassDef) -> set[str]:
    """The private attributes and methods a class declares in its body: its own instances may
    use them on one another (a cached view reaching its base definition's cache)."""
    names = {
        target.id
        for stmt in cls.body
        if isinstance(stmt, ast.Assign | ast.AnnAssign)
        for target in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])
        if isinstance(target, ast.Name)
    }
    names |= {
        stmt.name for stmt in cls.body if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    return {name for name in names if name.startswith("_")}


def _private_uses(tree: ast.AST, allowed: frozenset[str] = frozenset()) -> list[ast.Attribute]:
    found: list[ast.Attribute] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ClassDef):
            found += _private_uses(node, allowed | _own_private_names(node))
            continue
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and node.attr not in NAMEDTUPLE_API
            and node.attr not in allowed
            and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})
        ):
            found.append(node)
        found += _private_uses(node, allowed)
    return found


def test_no_private_attribute_of_another_object_is_used() -> None:
    """``x._name`` only on ``self``/``cls``, or on another instance of the class that declares
    ``_name``: a private attribute of a library (SQLAlchemy's ``_transaction``) or of another
    class may change or vanish in any release."""
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for node in _private_uses(ast.parse(path.read_text(), str(path)))
    ]
    assert found == []


def test_the_private_attribute_check_sees_what_it_must() -> None:
    """The check above finds a library's private attribute and another class's, and lets a
    class use its own on its instances."""
    source = """
import x
x.engine._transaction
class A:
    _cache: dict = {}
    def f(self, other):
        other._cache
        other._other
"""
    assert [ast.unparse(n) for n in _private_uses(ast.parse(source))] == [
        "x.engine._transaction",
        "other._other",
    ]


# Issue 12: rows and payloads are typed (dataclasses, TypedDicts, Protocols, JsonValue), not Any.
# Counted as `grep -rn '\bAny\b' --include=*.py services | wc -l` counts them: lines, not uses.
ANY = re.compile(r"\bAny\b")
MOST_LINES_USING_ANY = 50  # in services/, from 246 (issue 12's acceptance)


def _lines_using_any(package: str) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if ANY.search(line)
    ]


def test_services_use_any_on_at_most_fifty_lines() -> None:
    """Rows and payloads in services/ are typed; ``Any`` stays only where a value is untyped at
    its source or typing it would cost a hot path a call per value."""
    found = _lines_using_any("services")
    assert len(found) <= MOST_LINES_USING_ANY, found


def test_the_any_count_counts_lines_as_grep_does() -> None:
    """A whole word (``Any``, not ``AnyUrl`` or ``Company``), once per line however often."""
    assert [bool(ANY.search(line)) for line in
            ("x: Any", "d: dict[str, Any] = Any", "u: AnyUrl", "Company", "anything")] == [
        True, True, False, False, False,
    ]  # fmt: skip


DRIVER_ANY = re.compile(r"\bdriver\s*:\s*Any\b")


def test_no_driver_is_typed_any() -> None:
    """The asyncpg connection is a `Driver` (services/kernel/database.py), never ``driver: Any``."""
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if DRIVER_ANY.search(line) and path != Path(__file__)
    ]
    assert found == []
    assert DRIVER_ANY.search("async def f(driver: Any) -> None:")


SQLALCHEMY_PRIVATE = re.compile(r"\b_(start_)?transaction\b")


def test_sqlalchemys_private_transaction_is_not_reached_by_name_either() -> None:
    """The check above sees ``conn._transaction``; this one sees the same reached by name
    (``getattr(conn, "_transaction")``), which an attribute check misses. Issue 12: the unit of
    work shares a transaction through public API only."""
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != Path(__file__)
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if SQLALCHEMY_PRIVATE.search(line)
    ]
    assert found == []
    assert SQLALCHEMY_PRIVATE.search('getattr(conn, "_start_transaction")()')
    assert not SQLALCHEMY_PRIVATE.search("async def _end_transaction(connection: Driver)")


# The storage seams: the only modules under services/ that may know which database they are on.
# Every other module is a use case (or pure) and reaches the database through them.
STORES = {
    "services/kernel/config.py",  # the settings say which database is configured
    "services/kernel/database.py",  # the engine, the driver pool and the unit of work
    "services/kernel/store.py",
    "services/submissions/store.py",
    "services/submissions/store_sql.py",
    "services/submissions/store_pg.py",
    "services/alerts/sweep_store.py",
    "services/exports/store.py",
    "services/exports/ndjson_pg.py",
    "services/exports/batches_pg.py",
    "services/webhooks/delivery_store.py",
}
DATABASE_QUESTIONS = {"driver", "driver_transaction", "has_driver", "dialect", "is_sqlite"}


def _database_questions(path: str) -> list[str]:
    tree = ast.parse((ROOT / path).read_text(), path)
    return [
        f"{path}:{node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if (isinstance(node, ast.Attribute) and node.attr in DATABASE_QUESTIONS)
        or (isinstance(node, ast.Name) and node.id in DATABASE_QUESTIONS)
        or (
            isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("sqlalchemy.dialects")
        )
    ]


def test_use_cases_never_ask_which_database_they_are_on() -> None:
    """The storage choice lives behind the stores (services/submissions/store.py and the other
    seams above): no ``if driver``, no dialect check and no dialect's statements in any other
    module under services/."""
    use_cases = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "services").rglob("*.py")
        if str(path.relative_to(ROOT)) not in STORES
    )
    assert len(use_cases) > 50
    assert [found for path in use_cases for found in _database_questions(path)] == []


def test_the_database_question_check_sees_what_it_must() -> None:
    """The check above finds a driver branch, a dialect check and a dialect's insert."""
    assert len(_database_questions("services/submissions/store_sql.py")) >= 2
    assert _database_questions("services/kernel/store.py")


# PUT /v1/clients/{external_id} answers in one of two shapes (ClientPublic, or ClientWritten for
# a key that may not read clients), each rendered by its model.
TWO_SHAPED = {"api.routes.clients.upsert_client"}


def test_routes_that_declare_a_response_model_return_it_rather_than_a_response() -> None:
    """A route returning a Response bypasses its declared ``response_model``: FastAPI neither
    checks nor renders it, and the OpenAPI then documents a shape nobody enforces."""
    import inspect
    from collections.abc import Iterator, Sequence

    from fastapi.routing import APIRoute
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from api.app import create_app
    from services.kernel.config import Settings

    def api_routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
        for route in routes:
            if isinstance(route, APIRoute):
                yield route
            included = getattr(route, "original_router", None)  # an included router
            if included is not None:
                yield from api_routes(included.routes)

    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    declaring = [r for r in api_routes(app.routes) if r.response_model is not None]
    assert len(declaring) > 10
    bypassing = [
        name
        for route in declaring
        if (name := f"{route.endpoint.__module__}.{route.endpoint.__name__}") not in TWO_SHAPED
        and inspect.isclass(returned := inspect.signature(route.endpoint).return_annotation)
        and issubclass(returned, Response)
    ]
    assert bypassing == []
