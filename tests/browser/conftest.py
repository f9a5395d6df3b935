"""Browser tests of the rating page: the service served by uvicorn on a free local port against
the test database, driven by Playwright in Debian's Chromium (`make chromium` installs it).

One browser per module; each test opens its own context (a fresh profile) at a phone's size.
Screenshots of each state go to `test-artefacts/rating-page/` (gitignored), for a person to look at.
"""

import asyncio
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from api.app import create_app
from models.base import utcnow
from models.invitations import Invitation
from services.kernel.config import Settings
from tests.support import SYSTEM_KEY, TEST_SECRET, bearer, expect

playwright_api = pytest.importorskip("playwright.sync_api")

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "rating-page"
# A mid-range phone (CSS pixels), as in the acceptance criteria of the rating page.
PHONE = {"width": 360, "height": 740}
# WCAG 2.1 A and AA: what axe-core must find no violation of, on every state of the page.
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def chromium_executable() -> str | None:
    """Debian's Chromium (Playwright's own browser download is not used): the path in
    ATTUNE_TEST_CHROMIUM, else the first of chromium / chromium-browser on PATH."""
    named = os.environ.get("ATTUNE_TEST_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class LiveServer:
    url: str
    database_url: str

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


@pytest.fixture(scope="module")
def live_server(database_url: str) -> Iterator[LiveServer]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    settings = Settings(
        environment="test",
        database_url=database_url,
        # The links the service writes point at this server.
        public_url=f"http://127.0.0.1:{port}",
        secret_key=SecretStr(TEST_SECRET),
        bootstrap_key=SecretStr(SYSTEM_KEY),
        db_pool_size=5,
        worker=False,
        rate_limit_auth_failures="1000000/hour",
    )
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    assert server.started, "the test server did not start"
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", database_url=database_url)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


@pytest.fixture(scope="module")
def browser(live_server: LiveServer) -> Iterator[Any]:
    executable = chromium_executable()
    if executable is None:
        pytest.skip(
            "Chromium is not installed, so the rating page's browser tests cannot run: "
            "`make chromium` installs Debian's chromium package (as root)"
        )
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A fresh page at 360 by 740 with touch, as a client's phone."""
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="en-GB"
    )
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: Any, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


def assert_accessible(page: Any, state: str) -> None:
    """axe-core finds no WCAG 2.1 AA violation on the page as it is now; the screenshot of the
    state is kept whatever the outcome."""
    from axe_playwright_python.sync_playwright import Axe

    screenshot(page, state)
    results = Axe().run(
        page,
        options={"runOnly": {"type": "tag", "values": WCAG_21_AA}, "resultTypes": ["violations"]},
    )
    assert results.violations_count == 0, f"{state}: {results.generate_report()}"


@dataclass
class Clinic:
    """An organisation on the live server, as a clinic's EHR integration would drive it."""

    http: httpx.Client
    admin: dict[str, str]

    @classmethod
    def create(cls, server: LiveServer) -> "Clinic":
        http = server.api()
        org = expect(
            http.post(
                "/v1/organizations",
                json={"name": "Clinic", "slug": f"b-{uuid.uuid4().hex[:12]}"},
                headers=bearer(SYSTEM_KEY),
            ),
            201,
        )
        key = expect(
            http.post(
                f"/v1/organizations/{org['id']}/api-keys",
                json={"name": "admin", "scopes": ["admin"]},
                headers=bearer(SYSTEM_KEY),
            ),
            201,
        )
        return cls(http=http, admin=bearer(key["key"]))

    def episode(self) -> str:
        client = expect(self.http.post("/v1/clients", json={}, headers=self.admin), 201)
        clinician = expect(
            self.http.post("/v1/clinicians", json={"display_name": "Dr B"}, headers=self.admin),
            201,
        )
        episode = expect(
            self.http.post(
                "/v1/episodes",
                json={"client_id": client["id"], "clinician_id": clinician["id"]},
                headers=self.admin,
            ),
            201,
        )
        return str(episode["id"])

    def invite(self, episode_id: str, *instruments: str, session_number: int = 1) -> Any:
        return expect(
            self.http.post(
                f"/v1/episodes/{episode_id}/invitations",
                json={"instruments": list(instruments), "session_number": session_number},
                headers=self.admin,
            ),
            201,
        )

    def submissions(self, episode_id: str) -> list[dict[str, Any]]:
        page = expect(
            self.http.get(f"/v1/episodes/{episode_id}/submissions", headers=self.admin), 200
        )
        return page["items"]  # type: ignore[no-any-return]


@pytest.fixture
def clinic(live_server: LiveServer) -> Iterator[Clinic]:
    made = Clinic.create(live_server)
    try:
        yield made
    finally:
        made.http.close()


def expire(database_url: str, invitation_id: str) -> None:
    """Move an invitation's expiry into the past, as time would."""

    async def run() -> None:
        engine = create_async_engine(database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    update(Invitation)
                    .where(Invitation.id == uuid.UUID(invitation_id))  # type: ignore[arg-type]
                    .values(expires_at=utcnow() - timedelta(minutes=1))
                )
        finally:
            await engine.dispose()

    # Playwright's sync API keeps an event loop running on this thread: use another.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, run()).result()
