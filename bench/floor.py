"""The floor: the least a submission endpoint can do, written directly on asyncpg.

`POST /v1/submissions` validates the same body as the service (SRS or ORS: four items 0-10, step
0.1),
checks that a bearer header is present, and in one transaction reads the episode's last five
totals for the instrument and inserts one row. No ORM, no scoring engine, no alerts, no audit:
the benchmark compares the service against this to see what its layers cost.

Run (bench/run does this):
    FLOOR_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/db FLOOR_POOL_SIZE=16 \
    .venv/bin/uvicorn --app-dir bench floor:app --port 8001 --no-access-log
"""

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SCHEMA = """
CREATE TABLE IF NOT EXISTS floor_submissions (
    id uuid PRIMARY KEY,
    episode_id uuid NOT NULL,
    instrument text NOT NULL,
    session_number integer NOT NULL,
    respondent text NOT NULL,
    answers jsonb NOT NULL,
    total numeric(8, 2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_floor_submissions_session
        UNIQUE (episode_id, instrument, session_number, respondent)
)
"""
RECENT = """
SELECT total FROM floor_submissions
WHERE episode_id = $1 AND instrument = $2
ORDER BY session_number DESC LIMIT 5
"""
INSERT = """
INSERT INTO floor_submissions
    (id, episode_id, instrument, session_number, respondent, answers, total)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
RETURNING created_at
"""


def _on_step(value: float) -> float:
    if abs(value * 10 - round(value * 10)) > 1e-6:
        raise ValueError("must be a multiple of 0.1")
    return value


Item = Annotated[
    float, Field(ge=0, le=10, strict=True, allow_inf_nan=False), AfterValidator(_on_step)
]


class SrsAnswers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    relationship: Item
    goals_topics: Item
    approach_method: Item
    overall: Item


class OrsAnswers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    individually: Item
    interpersonally: Item
    socially: Item
    overall: Item


class _Submission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    episode_id: uuid.UUID
    session_number: int = Field(ge=1, le=1_000_000_000)
    occurred_at: datetime | None = None
    respondent: Literal["client", "clinician", "collateral"]


class SrsSubmission(_Submission):
    instrument: Literal["srs"]
    answers: SrsAnswers


class OrsSubmission(_Submission):
    instrument: Literal["ors"]
    answers: OrsAnswers


# The instrument picks the answers' schema (`INSTRUMENT=ors bench/run` sends ORS).
SubmissionIn = Annotated[SrsSubmission | OrsSubmission, Field(discriminator="instrument")]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    size = int(os.environ.get("FLOOR_POOL_SIZE", "16"))
    pool = await asyncpg.create_pool(os.environ["FLOOR_DATABASE_URL"], min_size=size, max_size=size)
    async with pool.acquire() as conn:
        await conn.execute(SCHEMA)
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(title="Attune benchmark floor", lifespan=lifespan)


def _problem(status: int, title: str) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"type": "about:blank", "title": title, "status": status},
        media_type="application/problem+json",
    )


@app.post("/v1/submissions", status_code=201)
async def submit(
    body: SubmissionIn, authorization: Annotated[str | None, Header()] = None
) -> JSONResponse:
    if not authorization or not authorization.lower().startswith("bearer "):
        return _problem(401, "missing API key")
    answers = body.answers.model_dump()
    total = round(sum(answers.values()), 1)
    row_id = uuid.uuid4()
    pool: asyncpg.Pool = app.state.pool
    try:
        async with pool.acquire() as conn, conn.transaction():
            recent = await conn.fetch(RECENT, body.episode_id, body.instrument)
            created_at = await conn.fetchval(
                INSERT,
                row_id,
                body.episode_id,
                body.instrument,
                body.session_number,
                body.respondent,
                json.dumps(answers),
                Decimal(str(total)),
            )
    except asyncpg.UniqueViolationError:
        return _problem(409, "this session already has a submission")
    content: dict[str, Any] = {
        "id": str(row_id),
        "episode_id": str(body.episode_id),
        "instrument": body.instrument,
        "session_number": body.session_number,
        "respondent": body.respondent,
        "answers": answers,
        "total": total,
        "recent_totals": [float(r["total"]) for r in recent],
        "created_at": created_at.isoformat(),
    }
    return JSONResponse(status_code=201, content=content)
