"""A client's signed assertion (RFC 7523 §3, as SMART Backend Services profiles it). Pure.

https://hl7.org/fhir/smart-app-launch/backend-services.html#authenticating-to-the-token-endpoint
and https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html: a JWT signed
RS384 or ES384 with a key of the client's registered JWKS (header ``kid``), ``iss`` = ``sub`` =
the client id, ``aud`` = the token URL, ``exp`` no more than five minutes ahead, and a ``jti``
the client never used before (the store checks that). Every failure is ``invalid_client``.
"""

import base64
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from math import isfinite

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact
from pydantic import JsonValue

from services.smart.errors import invalid_client

ALGORITHMS = ["RS384", "ES384"]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_LIFETIME_SECONDS = 300  # SMART: exp "no more than five minutes in the future"
CLOCK_SKEW_SECONDS = 60
MAX_ASSERTION_LENGTH = 16_384
MAX_JTI_LENGTH = 255


@dataclass(frozen=True)
class Unverified:
    """What the assertion says before its signature is checked: who it claims to be from."""

    client_id: uuid.UUID


@dataclass(frozen=True)
class Verified:
    client_id: uuid.UUID
    jti: str
    replayable_until: datetime


def claimed_client(assertion: str) -> Unverified:
    """The client the assertion names (``iss``), to find the keys to check it with."""
    if not assertion or len(assertion) > MAX_ASSERTION_LENGTH:
        raise invalid_client("client_assertion is not a signed JWT")
    try:
        compact = extract_compact(assertion.encode("ascii"))
        header = compact.headers()
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, TypeError, UnicodeError, AttributeError, RecursionError):
        raise invalid_client("client_assertion is not a signed JWT") from None
    if header.get("alg") not in ALGORITHMS:
        raise invalid_client("client_assertion must be signed RS384 or ES384")
    if not isinstance(header.get("kid"), str):
        raise invalid_client("client_assertion needs a kid header naming a registered key")
    issuer = claims.get("iss") if isinstance(claims, Mapping) else None
    try:
        return Unverified(uuid.UUID(str(issuer)))
    except ValueError:
        raise invalid_client("iss is not a registered client_id") from None


def verify(
    assertion: str, *, jwks: Mapping[str, object], token_url: str, now: datetime
) -> Verified:
    """The assertion checked against the client's registered keys and the rules above."""
    claimed = claimed_client(assertion)
    try:
        keys = KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
        token = jwt.decode(assertion, keys, algorithms=ALGORITHMS)
    except (JoseError, ValueError, TypeError, KeyError):
        raise invalid_client("client_assertion is not signed by a key of this client") from None
    claims = token.claims
    if claims.get("sub") != str(claimed.client_id) or claims.get("iss") != str(claimed.client_id):
        raise invalid_client("iss and sub must both be the client_id")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if token_url not in audiences:
        raise invalid_client(f"aud must be the token URL, {token_url}")
    moment = now.timestamp()
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or isinstance(expires, bool) or not isfinite(expires):
        raise invalid_client("exp is required")
    if expires <= moment - CLOCK_SKEW_SECONDS:
        raise invalid_client("client_assertion has expired")
    if expires > moment + MAX_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS:
        raise invalid_client("exp must be no more than five minutes ahead")
    not_before = claims.get("nbf")
    if isinstance(not_before, int | float) and not (not_before <= moment + CLOCK_SKEW_SECONDS):
        raise invalid_client("client_assertion is not valid yet (nbf)")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 1 <= len(jti) <= MAX_JTI_LENGTH:
        raise invalid_client(f"jti is required (1 to {MAX_JTI_LENGTH} characters)")
    # Kept as long as the assertion could still be accepted (its exp plus the clock skew).
    return Verified(
        claimed.client_id, jti, datetime.fromtimestamp(expires + CLOCK_SKEW_SECONDS, UTC)
    )


def public_jwks(jwks: object) -> tuple[dict[str, JsonValue] | None, str | None]:
    """(the JWKS as stored, None) when it holds 1 to 10 public RSA (≥ 2048 bits) or EC P-384
    signing keys, each with a unique ``kid``; else (None, what is wrong)."""
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list) or not 1 <= len(keys) <= 10:
        return None, "a JWKS: {'keys': [...]} with 1 to 10 public keys"
    kids: set[str] = set()
    for key in keys:
        if not isinstance(key, Mapping) or not isinstance(key.get("kid"), str) or not key["kid"]:
            return None, "every key needs a kid"
        if key["kid"] in kids:
            return None, f"kid {key['kid']!r} appears twice"
        kids.add(key["kid"])
        if "d" in key or any(k in key for k in ("p", "q", "dp", "dq", "qi", "k")):
            return None, f"key {key['kid']!r} holds private material: register public keys only"
        kty = key.get("kty")
        if kty == "EC" and key.get("crv") != "P-384":
            return None, f"key {key['kid']!r}: EC keys must be on P-384 (ES384)"
        if kty not in ("RSA", "EC"):
            return None, f"key {key['kid']!r}: kty RSA (RS384) or EC (ES384)"
        # Before importing: joserfc only warns about short RSA keys (RFC 7518 §3.3: ≥ 2048).
        if kty == "RSA" and len(_b64_bytes(str(key.get("n", "")))) * 8 < 2048:
            return None, f"key {key['kid']!r}: RSA keys need at least 2048 bits"
        try:
            KeySet.import_key_set({"keys": [dict(key)]})
        except (JoseError, ValueError, TypeError, KeyError):
            return None, f"key {key['kid']!r} is not a valid JWK"
    return {"keys": [dict(k) for k in keys]}, None


def _b64_bytes(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).lstrip(b"\x00")
    except ValueError:
        return b""
