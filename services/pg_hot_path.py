"""The submission hot path on PostgreSQL, sent straight to asyncpg.

Measured on the 2-core reference box, SQLAlchemy's layers were the largest single cost of
`POST /v1/submissions`, where the floor it is benchmarked against pays nothing of the kind. These
statements are the ones every submission runs; they go to an asyncpg connection inside the
request's transaction (`UnitOfWork.driver_transaction()`), so the request still commits or rolls
back as one unit. On SQLite the equivalent Core statements in `services/submissions.py` and
`services/auth.py` run instead; the test suite runs on both databases.
"""

import json
import uuid
from datetime import datetime
from typing import Any

import orjson

KEY_BY_HASH = """
    SELECT id, org_id, scopes, clinician_id, key_hash FROM api_keys
    WHERE key_hash = $1 AND revoked_at IS NULL
"""


async def key_by_hash(driver: Any, digest: str) -> tuple[Any, ...] | None:
    row = await driver.fetchrow(KEY_BY_HASH, digest)
    if row is None:
        return None
    # asyncpg hands jsonb back as text unless a codec decodes it.
    scopes = row["scopes"]
    return (
        row["id"],
        row["org_id"],
        json.loads(scopes) if isinstance(scopes, str) else scopes,
        row["clinician_id"],
        row["key_hash"],
    )


EPISODE_FOR_SUBMISSION = """
    SELECT e.status, c.population FROM episodes e JOIN clients c ON c.id = e.client_id
    WHERE e.org_id = $1 AND e.id = $2 AND ($3::uuid IS NULL OR e.clinician_id = $3::uuid)
"""


async def episode_for_submission(
    driver: Any, org_id: uuid.UUID, episode_id: uuid.UUID, clinician_id: uuid.UUID | None
) -> tuple[str, str] | None:
    row = await driver.fetchrow(EPISODE_FOR_SUBMISSION, org_id, episode_id, clinician_id)
    return None if row is None else (row["status"], row["population"])


# The session upsert, the submission insert and its audit event in one statement (data-modifying
# CTEs): one round trip instead of three. The partial index predicate is a literal: PostgreSQL must
# see it to infer the index, and a generic prepared plan would hide a parameter's value.
STORE_SUBMISSION = """
    WITH s AS (
        INSERT INTO sessions (id, org_id, episode_id, session_number, occurred_at, created_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (org_id, episode_id, session_number)
        DO UPDATE SET occurred_at = COALESCE(sessions.occurred_at, EXCLUDED.occurred_at)
        RETURNING id
    ), sub AS (
        INSERT INTO submissions (id, org_id, episode_id, session_id, session_number, instrument,
            instrument_version, respondent, rater, answers, scores, total, status, occurred_at,
            created_at, created_by_key_id)
        SELECT $7, $2, $3, s.id, $4, $8, $9, $10, $11, $12::jsonb, $13::jsonb, $14, 'valid', $5,
            $6, $15
        FROM s
        ON CONFLICT (org_id, episode_id, session_number, instrument, respondent, rater)
            WHERE status = 'valid' DO NOTHING
        RETURNING id
    ), audit AS (
        INSERT INTO audit_events (id, org_id, key_id, action, resource_type, resource_id,
            outcome, client_address, occurred_at)
        SELECT $16, $2, $15, 'submission.create', 'submission', sub.id, 'success', $17, $6
        FROM sub
    )
    SELECT id FROM sub
"""


async def store_submission(
    driver: Any, *, session_id: uuid.UUID, values: dict[str, Any], audit: dict[str, Any]
) -> uuid.UUID | None:
    occurred_at: datetime | None = values["occurred_at"]
    inserted: uuid.UUID | None = await driver.fetchval(
        STORE_SUBMISSION,
        session_id,
        values["org_id"],
        values["episode_id"],
        values["session_number"],
        occurred_at,
        values["created_at"],
        values["id"],
        values["instrument"],
        values["instrument_version"],
        values["respondent"],
        values["rater"],
        orjson.dumps(values["answers"]).decode(),
        orjson.dumps(values["scores"]).decode(),
        values["total"],
        values["created_by_key_id"],
        audit["id"],
        audit["client_address"],
    )
    return inserted


EXISTING_VALID = """
    SELECT id FROM submissions
    WHERE org_id = $1 AND episode_id = $2 AND session_number = $3 AND instrument = $4
        AND respondent = $5 AND rater = $6 AND status = 'valid'
"""


async def existing_valid(driver: Any, *series_key: Any) -> uuid.UUID | None:
    found: uuid.UUID | None = await driver.fetchval(EXISTING_VALID, *series_key)
    return found
