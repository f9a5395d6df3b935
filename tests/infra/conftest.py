"""Fixtures of the infrastructure tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import migrations


@pytest.fixture
def blank_database(tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(url, PostgreSQL schema or None): an empty database for this test alone."""
    yield from migrations.blank_database(tmp_path)
