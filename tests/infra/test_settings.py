"""Settings come from the environment and refuse placeholder secrets outside development."""

import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import text

from services.kernel.config import Settings
from services.kernel.database import create_engine


def test_production_refuses_the_placeholder_secret() -> None:
    with pytest.raises(ValidationError, match="ATTUNE_SECRET_KEY"):
        Settings(environment="production", secret_key=SecretStr("dev-secret-key"))


def test_production_refuses_a_short_bootstrap_key() -> None:
    with pytest.raises(ValidationError, match="ATTUNE_BOOTSTRAP_KEY"):
        Settings(
            environment="production",
            secret_key=SecretStr("a" * 40),
            bootstrap_key=SecretStr("short"),
        )


def test_development_runs_on_defaults_with_sqlite_under_var() -> None:
    settings = Settings()
    assert settings.is_sqlite
    assert str(settings.sqlite_path()) == "var/attune.db"


def test_settings_read_the_attune_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTUNE_PORT", "9001")
    monkeypatch.setenv("ATTUNE_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    settings = Settings()
    assert settings.port == 9001
    assert not settings.is_sqlite


async def test_the_sqlite_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    """Health data at rest (issue 14 finding 11): the database file, its write-ahead log and
    shared-memory file are created 0600 whatever the umask, and a file left readable by others
    is tightened at start."""
    old_umask = os.umask(0o022)
    try:
        existing = tmp_path / "old.db"
        existing.touch(mode=0o644)
        for path in (tmp_path / "var" / "new.db", existing):
            settings = Settings(database_url=f"sqlite+aiosqlite:///{path}")
            engine = create_engine(settings)
            try:
                async with engine.begin() as conn:
                    await conn.execute(text("CREATE TABLE t (x INTEGER)"))
                    await conn.execute(text("INSERT INTO t VALUES (1)"))
                    files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
                    assert {p.name for p in files} >= {path.name, f"{path.name}-wal"}
                    for file in files:
                        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
            finally:
                await engine.dispose()
    finally:
        os.umask(old_umask)


def test_old_secret_keys_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTUNE_SECRET_KEYS_OLD", "first-old-secret, second-old-secret")
    settings = Settings()
    assert [s.get_secret_value() for s in settings.secret_keys_old] == [
        "first-old-secret",
        "second-old-secret",
    ]
