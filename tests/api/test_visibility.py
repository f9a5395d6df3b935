"""What a caller may read (services/kernel/visibility.py), and the two asyncpg statements that
repeat the rule by hand (services/submissions/store_pg.py, services/exports/ndjson_pg.py) pinned
to it: all run on the same data and must agree."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from models.alerts import CONCERN, Alert
from models.episodes import Episode
from models.people import Client
from models.submissions import Submission
from services.alerts.store import SeriesKey
from services.exports import ndjson_pg
from services.kernel.config import Settings
from services.kernel.database import asyncpg_dsn
from services.kernel.visibility import (
    Reader,
    visible_alerts,
    visible_clients,
    visible_episodes,
    visible_submissions,
)
from services.submissions import store_pg
from tests.support import Attune, bearer, expect, srs, submit

EPISODES = Episode.__table__  # type: ignore[attr-defined]
CLIENTS = Client.__table__  # type: ignore[attr-defined]
SUBMISSIONS = Submission.__table__  # type: ignore[attr-defined]
ALERTS = Alert.__table__  # type: ignore[attr-defined]


@dataclass
class World:
    """Two clinicians: A treats ca, B treats cb, both treat cab (one episode each); nobody treats
    cnone. Every episode has a low SRS (an alert); A's first episode also a concern."""

    org_id: uuid.UUID
    a: uuid.UUID
    b: uuid.UUID
    clients: dict[str, uuid.UUID]  # name -> id
    episodes: dict[uuid.UUID, uuid.UUID]  # episode -> clinician
    episode_clients: dict[uuid.UUID, uuid.UUID]  # episode -> client
    submissions: dict[uuid.UUID, uuid.UUID]  # submission -> episode
    alerts: dict[uuid.UUID, tuple[uuid.UUID, str]]  # alert -> (episode, type)

    def readers(self) -> list[Reader]:
        return [
            Reader(self.org_id, None, True),
            Reader(self.org_id, None, False),
            Reader(self.org_id, self.a, False),
            Reader(self.org_id, self.b, False),
            Reader(self.org_id, uuid.uuid4(), False),  # bound to a clinician with no episodes
            Reader(uuid.uuid4(), None, True),  # another organisation
        ]

    # What each reader may read, written out from the rule in DESIGN.md §4.
    def episodes_for(self, r: Reader) -> set[uuid.UUID]:
        if r.org_id != self.org_id:
            return set()
        return {e for e, c in self.episodes.items() if r.clinician_id in (None, c)}

    def clients_for(self, r: Reader) -> set[uuid.UUID]:
        if r.org_id != self.org_id:
            return set()
        if r.clinician_id is None:
            return set(self.clients.values())
        return {self.episode_clients[e] for e in self.episodes_for(r)}

    def submissions_for(self, r: Reader) -> set[uuid.UUID]:
        episodes = self.episodes_for(r)
        return {s for s, e in self.submissions.items() if e in episodes}

    def alerts_for(self, r: Reader) -> set[uuid.UUID]:
        episodes = self.episodes_for(r)
        return {
            a
            for a, (e, kind) in self.alerts.items()
            if e in episodes and (r.concerns or kind != CONCERN)
        }


async def build_world(attune: Attune) -> World:
    tenant = await attune.tenant()
    a = (await tenant.clinician("Dr A"))["id"]
    b = (await tenant.clinician("Dr B"))["id"]
    names = ("ca", "cb", "cab", "cnone")
    clients = {name: (await tenant.client())["id"] for name in names}
    plan = [("ca", a), ("cb", b), ("cab", a), ("cab", b)]
    episodes: dict[uuid.UUID, uuid.UUID] = {}
    episode_clients: dict[uuid.UUID, uuid.UUID] = {}
    submissions: dict[uuid.UUID, uuid.UUID] = {}
    for client, clinician in plan:
        episode = await tenant.episode(client_id=clients[client], clinician_id=clinician)
        episodes[uuid.UUID(episode["id"])] = uuid.UUID(clinician)
        episode_clients[uuid.UUID(episode["id"])] = uuid.UUID(clients[client])
        posted = await submit(tenant, episode["id"], "srs", 1, srs(1, 1, 1, 1))
        submissions[uuid.UUID(posted["id"])] = uuid.UUID(episode["id"])
    first = next(iter(episodes))
    invitation = expect(
        await tenant.http.post(
            f"/v1/episodes/{first}/invitations",
            json={"instruments": ["srs"], "session_number": 2},
            headers=tenant.admin,
        ),
        201,
    )
    expect(
        await attune.http.post(
            "/v1/invitation/concerns",
            json={"message": "a concern"},
            headers=bearer(invitation["token"]),
        ),
        201,
    )
    listed = expect(await tenant.http.get("/v1/alerts?limit=500", headers=tenant.admin), 200)
    alerts = {uuid.UUID(x["id"]): (uuid.UUID(x["episode_id"]), x["type"]) for x in listed["items"]}
    assert {kind for _, kind in alerts.values()} >= {CONCERN, "alliance.low"}, alerts
    return World(
        org_id=uuid.UUID(tenant.org_id),
        a=uuid.UUID(a),
        b=uuid.UUID(b),
        clients={k: uuid.UUID(v) for k, v in clients.items()},
        episodes=episodes,
        episode_clients=episode_clients,
        submissions=submissions,
        alerts=alerts,
    )


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(settings.database_url)
    yield engine
    await engine.dispose()


async def ids(
    engine: AsyncEngine, table: sa.Table, where: sa.ColumnElement[bool]
) -> set[uuid.UUID]:
    async with engine.connect() as conn:
        return set((await conn.scalars(sa.select(table.c.id).where(where))).all())


async def test_each_caller_reads_its_organisation_and_caseload_only(
    attune: Attune, engine: AsyncEngine
) -> None:
    world = await build_world(attune)
    for r in world.readers():
        assert await ids(engine, EPISODES, visible_episodes(r)) >= world.episodes_for(r)
        mine = EPISODES.c.org_id == world.org_id
        assert await ids(engine, EPISODES, sa.and_(visible_episodes(r), mine)) == (
            world.episodes_for(r)
        ), r
        in_world = CLIENTS.c.id.in_(list(world.clients.values()))
        assert await ids(engine, CLIENTS, sa.and_(visible_clients(r), in_world)) == (
            world.clients_for(r)
        ), r
        in_world = SUBMISSIONS.c.id.in_(list(world.submissions))
        assert await ids(engine, SUBMISSIONS, sa.and_(visible_submissions(r), in_world)) == (
            world.submissions_for(r)
        ), r
        in_world = ALERTS.c.id.in_(list(world.alerts))
        assert await ids(engine, ALERTS, sa.and_(visible_alerts(r), in_world)) == (
            world.alerts_for(r)
        ), r


@pytest.fixture
async def driver(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    if settings.is_sqlite:
        pytest.skip("the asyncpg statements run on PostgreSQL only")
    connection = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    yield connection
    await connection.close()


async def test_the_asyncpg_statements_see_what_the_visibility_statements_see(
    attune: Attune, engine: AsyncEngine, driver: asyncpg.Connection
) -> None:
    world = await build_world(attune)
    for r in world.readers():
        # The submission hot path finds an episode exactly when visible_episodes does.
        found = set()
        for episode in world.episodes:
            key = SeriesKey(r.org_id, episode, "srs", "client", "")
            context = await store_pg.submission_context(
                driver, key, r.clinician_id, None, default_window=3, extra=1
            )
            if context is not None:
                found.add(episode)
        in_world = EPISODES.c.id.in_(list(world.episodes))
        assert found == await ids(engine, EPISODES, sa.and_(visible_episodes(r), in_world)), r

        # The NDJSON export writes exactly the submissions visible_submissions selects.
        sql, args = ndjson_pg.submissions_statement(
            org_id=r.org_id,
            since=None,
            until=datetime(2200, 1, 1, tzinfo=UTC),
            instrument=None,
            clinician_id=r.clinician_id,
        )
        exported = {uuid.UUID(row[0]) for row in await driver.fetch(sql, *args)}
        assert exported == await ids(engine, SUBMISSIONS, visible_submissions(r)), r
