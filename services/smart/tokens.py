"""The token endpoint's use case: a client_credentials grant authenticated by a signed assertion
(SMART Backend Services, https://hl7.org/fhir/smart-app-launch/backend-services.html).

Each assertion's ``jti`` is stored until the assertion expires, keyed by client, so a replay is
refused by every replica (the primary key decides, also between two concurrent requests). The
access token is random, stored as its keyed hash like an API key, and expires after
``ATTUNE_SMART_TOKEN_SECONDS``.
"""

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.base import utcnow
from models.smart import SmartAccessToken, SmartAssertionJti, SmartClient
from models.tenancy import ApiKey
from services.kernel import audit
from services.kernel.auth import Actor, Principal, hash_key
from services.kernel.config import ACCESS_TOKEN_PREFIX
from services.smart import assertions, scopes
from services.smart.errors import OAuthError, invalid_client, invalid_request

GRANT_TYPE = "client_credentials"


@dataclass(frozen=True)
class Issued:
    access_token: str
    expires_in: int
    scope: str

    def body(self) -> dict[str, str | int]:
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }


def form_fields(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The token request's parameters; RFC 6749 §3.2: none may be sent twice."""
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise invalid_request(f"{name} is sent more than once")
        fields[name] = value
    return fields


def _check_request(fields: Mapping[str, str]) -> tuple[str, str]:
    grant_type = fields.get("grant_type")
    if grant_type is None:
        raise invalid_request("grant_type is required")
    if grant_type != GRANT_TYPE:
        raise OAuthError("unsupported_grant_type", f"only {GRANT_TYPE} is supported")
    if fields.get("client_assertion_type") != assertions.ASSERTION_TYPE:
        raise invalid_request(f"client_assertion_type must be {assertions.ASSERTION_TYPE}")
    assertion = fields.get("client_assertion")
    if not assertion:
        raise invalid_request("client_assertion is required")
    requested = fields.get("scope", "").strip()
    if not requested or len(requested) > scopes.MAX_SCOPE_LENGTH:
        raise OAuthError("invalid_scope", "scope is required, e.g. system/*.rs")
    return assertion, requested


async def issue(
    session: AsyncSession,
    *,
    fields: Mapping[str, str],
    token_url: str,
    secret: str,
    lifetime_seconds: int,
    client_address: str | None,
) -> Issued:
    assertion, requested = _check_request(fields)
    claimed = assertions.claimed_client(assertion)
    if fields.get("client_id", str(claimed.client_id)) != str(claimed.client_id):
        # RFC 7521 §4.2: a client_id sent beside the assertion must name the same client.
        raise invalid_client("client_id is not the client the assertion is from")
    found = (
        await session.execute(
            select(SmartClient, col(ApiKey.clinician_id))
            .join(ApiKey, col(ApiKey.id) == col(SmartClient.api_key_id))
            .where(col(SmartClient.id) == claimed.client_id)
            .where(col(SmartClient.deleted_at).is_(None))
            .where(col(ApiKey.revoked_at).is_(None))
        )
    ).one_or_none()
    if found is None:
        raise invalid_client("unknown client_id")
    client, clinician_id = found
    now = utcnow()
    verified = assertions.verify(assertion, jwks=client.jwks, token_url=token_url, now=now)
    granted = scopes.grant(requested, client.scopes)
    if not granted.smart:
        raise OAuthError(
            "invalid_scope", "none of the requested scopes is one this client may be granted"
        )
    await _spend(session, client, verified, now=now)
    token = ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        SmartAccessToken(
            token_hash=hash_key(token, secret),
            org_id=client.org_id,
            smart_client_id=client.id,
            api_key_id=client.api_key_id,
            scopes=sorted(granted.attune),
            expires_at=now + timedelta(seconds=lifetime_seconds),
            created_at=now,
        )
    )
    actor = Actor(
        Principal(client.api_key_id, client.org_id, granted.attune, clinician_id), client_address
    )
    audit.record(
        session, actor, action="smart_token.issue", resource_type="smart_client",
        resource_id=client.id, details={"scope": " ".join(granted.smart)},
    )  # fmt: skip
    await session.flush()
    return Issued(token, lifetime_seconds, " ".join(granted.smart))


async def _spend(
    session: AsyncSession, client: SmartClient, verified: assertions.Verified, *, now: datetime
) -> None:
    """Record the assertion's jti, or refuse it as a replay. Expired jtis and tokens of this
    client are dropped on the way, which bounds what is kept."""
    await session.execute(
        delete(SmartAssertionJti).where(
            col(SmartAssertionJti.smart_client_id) == client.id,
            col(SmartAssertionJti.expires_at) < now,
        )
    )
    await session.execute(
        delete(SmartAccessToken).where(
            col(SmartAccessToken.smart_client_id) == client.id,
            col(SmartAccessToken.expires_at) < now,
        )
    )
    used = await session.scalar(
        select(col(SmartAssertionJti.jti)).where(
            col(SmartAssertionJti.smart_client_id) == client.id,
            col(SmartAssertionJti.jti) == verified.jti,
        )
    )
    if used is not None:
        raise invalid_client("this client_assertion (its jti) was used before")
    session.add(
        SmartAssertionJti(
            smart_client_id=client.id, jti=verified.jti, expires_at=verified.replayable_until
        )
    )
    try:
        await session.flush()
    except IntegrityError:  # a concurrent request spent it first
        raise invalid_client("this client_assertion (its jti) was used before") from None
