"""The image and compose.yaml (DESIGN.md §10.7), checked without a Docker engine: one image,
three roles that are real `attune` commands, a health check that works for the API and the
worker, and a compose file whose services start in the right order against PostgreSQL."""

import re
from typing import Any

import pytest
import yaml
from pytest_httpserver import HTTPServer
from sqlalchemy.engine import make_url

from api import healthcheck
from api.cli import PROJECT_ROOT, subcommands
from services.kernel.config import Settings

COMPOSE = yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text())
DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()
ROLES = {"migrate": "migrate", "api": "serve", "worker": "worker"}


def _instructions(name: str) -> list[str]:
    """The arguments of each `NAME` instruction of the Dockerfile (continuation lines joined)."""
    text = DOCKERFILE.replace("\\\n", " ")
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.*)$", text, re.MULTILINE)]


def _service(name: str) -> dict[str, Any]:
    return COMPOSE["services"][name]  # type: ignore[no-any-return]


def test_every_role_in_compose_is_a_command_of_the_cli() -> None:
    assert set(COMPOSE["services"]) == {"postgres", *ROLES}
    for service, command in ROLES.items():
        assert _service(service)["command"] == [command]
        assert command in subcommands()


def test_the_image_runs_the_cli_and_serves_by_default() -> None:
    assert _instructions("ENTRYPOINT") == ['["/app/.venv/bin/attune"]']
    assert _instructions("CMD") == ['["serve"]']
    assert set(ROLES.values()) <= subcommands()
    # Every package of the service is copied in.
    copied = {source for line in _instructions("COPY") for source in line.split()[:-1]}
    assert {"api", "models", "services", "alembic", "alembic.ini", "uv.lock"} <= copied


def test_the_image_exposes_the_ports_the_service_listens_on() -> None:
    env = dict(re.findall(r"(ATTUNE_\w+)=(\S+)", " ".join(_instructions("ENV"))))
    defaults = Settings()
    assert env["ATTUNE_HOST"] == "0.0.0.0"  # noqa: S104  (inside a container)
    ports = {int(env["ATTUNE_PORT"]), int(env["ATTUNE_WORKER_PORT"])}
    assert ports == {defaults.port, defaults.worker_port}
    assert {int(p) for line in _instructions("EXPOSE") for p in line.split()} == ports


def test_the_health_check_is_the_image_s_and_a_module_that_exists() -> None:
    (check,) = _instructions("HEALTHCHECK")
    assert check.endswith('CMD ["/app/.venv/bin/python", "-m", "api.healthcheck"]')
    assert (PROJECT_ROOT / "api" / "healthcheck.py").exists()


@pytest.mark.parametrize("which", ["ATTUNE_PORT", "ATTUNE_WORKER_PORT"])
def test_the_health_check_passes_when_the_api_or_the_worker_answers(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    httpserver.expect_request("/healthz").respond_with_json({"status": "ok"})
    closed = "9"  # discard: nothing listens there
    monkeypatch.setenv("ATTUNE_PORT", closed)
    monkeypatch.setenv("ATTUNE_WORKER_PORT", closed)
    assert healthcheck.main() == 1
    monkeypatch.setenv(which, str(httpserver.port))
    assert healthcheck.main() == 0


def test_the_health_check_fails_on_an_unhealthy_answer(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpserver.expect_request("/healthz").respond_with_json({"status": "down"}, status=503)
    monkeypatch.setenv("ATTUNE_PORT", str(httpserver.port))
    monkeypatch.setenv("ATTUNE_WORKER_PORT", "0")
    assert healthcheck.main() == 1


def test_migrate_runs_once_after_postgres_is_healthy_and_everything_waits_for_it() -> None:
    assert "healthcheck" in _service("postgres")
    migrate = _service("migrate")
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert migrate["restart"] == "no"
    assert migrate["healthcheck"] == {"disable": True}  # a one-off job serves nothing
    for service in ("api", "worker"):
        assert _service(service)["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
        assert _service(service)["restart"] == "unless-stopped"


def test_two_api_replicas_and_one_worker_from_the_one_image() -> None:
    assert _service("api")["deploy"]["replicas"] == 2
    assert "deploy" not in _service("worker")  # one worker (more may run: SKIP LOCKED)
    images = {_service(s)["image"] for s in ROLES}
    builds = {_service(s)["build"] for s in ROLES}
    assert (images, builds) == ({"attune:latest"}, {"."})


def test_every_attune_service_reaches_the_compose_postgres_database() -> None:
    postgres = _service("postgres")["environment"]
    for service in ROLES:
        env = _service(service)["environment"]
        # Interpolated by `docker compose` from its environment: here, any value will do.
        url = make_url(re.sub(r"\$\{[^}]*\}", "secret", env["ATTUNE_DATABASE_URL"]))
        assert (url.drivername, url.host, url.port) == ("postgresql+asyncpg", "postgres", 5432)
        assert (url.username, url.database) == (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"])
        # Secrets come from the environment of `docker compose`, and are required.
        assert env["ATTUNE_SECRET_KEY"] == "${ATTUNE_SECRET_KEY:?set ATTUNE_SECRET_KEY}"


def test_the_readme_shows_the_whole_deployment() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    docker = readme[readme.index("## Docker") :]
    docker = docker[: docker.index("\n## ", 1)] if "\n## " in docker[1:] else docker
    for needed in ("docker compose up", "migrate", "serve", "worker", "/metrics", "/healthz"):
        assert needed in docker, needed
