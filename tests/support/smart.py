"""SMART Backend Services from the client's side: a key pair of the test's own, registration with
its public JWKS, signed assertions and the token request."""

import time
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from services.smart.assertions import ASSERTION_TYPE
from tests.support import Tenant, expect

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@cache
def rsa_key() -> RSAKey:
    """One RSA key for the run: generating 2048-bit keys is slow."""
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})


@dataclass(frozen=True)
class Signer:
    client_id: str
    key: RSAKey | ECKey
    alg: str
    token_url: str  # the assertion's aud, as registration answered it

    def assertion(self, **claims: Any) -> str:
        """A fresh assertion; ``claims`` override or (as None) remove the defaults."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "exp": now + 240,
            "jti": uuid.uuid4().hex,
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        header = {"alg": self.alg, "kid": self.key.kid, "typ": "JWT"}
        return jwt.encode(header, body, self.key, algorithms=[self.alg])


def new_key(alg: str) -> RSAKey | ECKey:
    if alg == "RS384":
        return rsa_key()
    return ECKey.generate_key("P-384", parameters={"kid": f"ec-{uuid.uuid4().hex[:8]}"})


async def register(
    tenant: Tenant, *scopes: str, alg: str = "ES384", clinician_id: str | None = None
) -> Signer:
    key = new_key(alg)
    body: dict[str, Any] = {
        "name": "EHR backend",
        "jwks": {"keys": [key.as_dict(private=False)]},
        "scopes": list(scopes) or ["clients:read", "submissions:read", "submissions:write"],
    }
    if clinician_id is not None:
        body["clinician_id"] = clinician_id
    created = expect(
        await tenant.http.post("/v1/smart-clients", json=body, headers=tenant.admin), 201
    )
    return Signer(created["client_id"], key, alg, created["token_url"])


def token_form(assertion: str, scope: str = "system/*.rs", **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        **extra,
    }


async def request_token(http: httpx.AsyncClient, form: dict[str, str]) -> httpx.Response:
    return await http.post("/auth/token", data=form)


async def access_token(http: httpx.AsyncClient, signer: Signer, scope: str = "system/*.rs") -> str:
    body = expect(await request_token(http, token_form(signer.assertion(), scope)), 200)
    return str(body["access_token"])
