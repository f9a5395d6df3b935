"""Settings come from the environment and refuse placeholder secrets outside development."""

import pytest
from pydantic import SecretStr, ValidationError

from services.kernel.config import Settings


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
