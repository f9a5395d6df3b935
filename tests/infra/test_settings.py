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


def test_a_bootstrap_key_without_the_att_prefix_is_refused_at_start() -> None:
    # Such a key was accepted at start and then never authenticated (issue 14): every API key
    # starts with att_.
    with pytest.raises(ValidationError, match="ATTUNE_BOOTSTRAP_KEY must start with 'att_'"):
        Settings(bootstrap_key=SecretStr("no-prefix-0123456789abcdefghijkl"))


def test_a_bootstrap_key_with_the_att_prefix_is_accepted() -> None:
    key = "att_0123456789abcdefghijklmnop"
    settings = Settings(bootstrap_key=SecretStr(key))
    assert settings.bootstrap_key is not None
    assert settings.bootstrap_key.get_secret_value() == key


def test_rate_limits_are_parsed_and_a_malformed_one_is_refused() -> None:
    assert Settings().rate_limit_auth_failures == "20/minute"
    assert Settings().rate_limit_per_key is None
    with pytest.raises(ValidationError, match="rate_limit_per_key"):
        Settings(rate_limit_per_key="lots")


def test_trusted_proxies_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTUNE_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.0/8")
    assert Settings().trusted_proxies == ["10.0.0.1", "10.0.0.0/8"]


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
