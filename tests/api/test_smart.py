"""SMART Backend Services (DESIGN.md §10.6): discovery, client registration by an admin, the token
endpoint with signed assertions (RS384, ES384), scopes, expiry, replay protection, and the access
token standing in for an API key."""

import asyncio
import base64
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey
from sqlalchemy import update

from api.app import create_app
from models.base import utcnow
from models.smart import SmartAccessToken
from services.kernel.config import Settings
from tests.support import Attune, Tenant, bearer, expect, srs, submit
from tests.support.smart import (
    FORM,
    Signer,
    access_token,
    new_key,
    register,
    request_token,
    token_form,
)


def oauth_error(response: httpx.Response, status: int, error: str) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["error"] == error, body
    assert set(body) == {"error", "error_description"}, body
    assert response.headers["cache-control"] == "no-store"
    return str(body["error_description"])


@pytest.mark.parametrize(
    "path", ["/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"]
)
async def test_discovery_names_the_token_endpoint_and_algorithms(
    http: httpx.AsyncClient, settings: Settings, path: str
) -> None:
    config = expect(await http.get(path), 200)
    assert config["token_endpoint"] == f"{settings.base_url}/auth/token"
    assert config["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert set(config["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    assert config["grant_types_supported"] == ["client_credentials"]
    assert "client-confidential-asymmetric" in config["capabilities"]
    assert "system/*.rs" in config["scopes_supported"]


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
async def test_a_signed_assertion_buys_a_token_that_works_where_a_key_does(
    attune: Attune, settings: Settings, alg: str
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    signer = await register(tenant, alg=alg)
    response = await request_token(attune.http, token_form(signer.assertion(), "system/*.rs"))
    body = expect(response, 200)
    assert response.headers["cache-control"] == "no-store"
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.smart_token_seconds
    assert body["scope"].split() == [
        "system/EpisodeOfCare.rs", "system/Observation.rs", "system/Patient.rs",
        "system/Practitioner.rs", "system/Questionnaire.rs", "system/QuestionnaireResponse.rs",
    ]  # fmt: skip
    token = bearer(body["access_token"])
    client = expect(
        await attune.http.get(f"/v1/clients/{episode['client_id']}", headers=token), 200
    )
    assert client["id"] == episode["client_id"]
    expect(await attune.http.get("/fhir/Observation", headers=token), 200)
    # system/*.rs reads: writing needs a write scope in the grant.
    response = await attune.http.post("/v1/clients", json={}, headers=token)
    assert response.status_code == 403, response.text


async def test_a_write_scope_lets_the_token_submit(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    signer = await register(tenant)
    token = await access_token(attune.http, signer, "system/QuestionnaireResponse.crs")
    created = await submit(
        Tenant(tenant.http, tenant.org_id, tenant.slug, token), episode["id"], "srs", 1,
        srs(9, 9, 9, 9),
    )  # fmt: skip
    assert created["scores"]["total"] == 36.0


async def test_the_grant_is_never_wider_than_the_registration(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    signer = await register(tenant, "submissions:read")
    body = expect(
        await request_token(attune.http, token_form(signer.assertion(), "system/*.cruds")), 200
    )
    assert body["scope"].split() == [
        "system/Observation.rs",
        "system/Questionnaire.rs",
        "system/QuestionnaireResponse.rs",
    ]
    token = bearer(body["access_token"])
    response = await attune.http.get(f"/v1/clients/{episode['client_id']}", headers=token)
    assert response.status_code == 403
    only_patients = token_form(signer.assertion(), "system/Patient.rs")
    oauth_error(await request_token(attune.http, only_patients), 400, "invalid_scope")


@pytest.mark.parametrize("scopes", [["admin"], ["system"], ["exports:identified"]])
async def test_registration_refuses_scopes_beyond_resource_access(
    attune: Attune, scopes: list[str]
) -> None:
    tenant = await attune.tenant()
    body = {
        "name": "EHR",
        "jwks": {"keys": [new_key("ES384").as_dict(private=False)]},
        "scopes": scopes,
    }
    response = await attune.http.post("/v1/smart-clients", json=body, headers=tenant.admin)
    assert response.status_code == 422, response.text
    assert {e["field"] for e in response.json()["errors"]} == {"body.scopes.0"}


def _small_rsa_jwk() -> dict[str, str]:
    small = rsa.generate_private_key(65537, 1024)  # noqa: S505  (the point of the test)
    numbers = small.public_key().public_numbers()

    def b64(number: int) -> str:
        raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    return {"kty": "RSA", "n": b64(numbers.n), "e": b64(numbers.e), "kid": "small"}


@pytest.mark.parametrize(
    ("jwks", "why"),
    [
        ({"keys": []}, "1 to 10"),
        ({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "a"}]}, "P-384"),
        ("private", "private"),
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "a"}]}, "private"),
        ("rsa-1024", "2048"),
        ("no-kid", "kid"),
    ],
)
async def test_registration_refuses_a_jwks_it_cannot_verify_with(
    attune: Attune, jwks: object, why: str
) -> None:
    tenant = await attune.tenant()
    key = ECKey.generate_key("P-384", parameters={"kid": "k1"})
    if jwks == "private":
        jwks = {"keys": [key.as_dict(private=True)]}
    elif jwks == "rsa-1024":
        jwks = {"keys": [_small_rsa_jwk()]}
    elif jwks == "no-kid":
        jwks = {"keys": [{k: v for k, v in key.as_dict(private=False).items() if k != "kid"}]}
    response = await attune.http.post(
        "/v1/smart-clients",
        json={"name": "EHR", "jwks": jwks, "scopes": ["clients:read"]},
        headers=tenant.admin,
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "body.jwks"
    assert why in error["message"]


async def test_registration_needs_an_unbound_admin_key(attune: Attune) -> None:
    tenant = await attune.tenant()
    key = bearer(await tenant.key("clients:read", "submissions:read"))
    body = {
        "name": "EHR",
        "jwks": {"keys": [new_key("ES384").as_dict(private=False)]},
        "scopes": ["clients:read"],
    }
    assert (await attune.http.post("/v1/smart-clients", json=body, headers=key)).status_code == 403
    assert (await attune.http.get("/v1/smart-clients", headers=key)).status_code == 403


async def test_a_replayed_assertion_is_refused(attune: Attune) -> None:
    tenant = await attune.tenant()
    signer = await register(tenant)
    assertion = signer.assertion()
    expect(await request_token(attune.http, token_form(assertion)), 200)
    described = oauth_error(
        await request_token(attune.http, token_form(assertion)), 401, "invalid_client"
    )
    assert "jti" in described


async def test_the_same_jti_of_another_client_is_not_a_replay(attune: Attune) -> None:
    tenant = await attune.tenant()
    first, second = await register(tenant), await register(tenant)
    expect(await request_token(attune.http, token_form(first.assertion(jti="shared"))), 200)
    expect(await request_token(attune.http, token_form(second.assertion(jti="shared"))), 200)


def _other_key_signer(signer: Signer) -> Signer:
    """Signs with a key of the same kid that was never registered."""
    return Signer(
        signer.client_id,
        ECKey.generate_key("P-384", parameters={"kid": str(signer.key.kid)}),
        "ES384",
        signer.token_url,
    )


@pytest.mark.parametrize(
    ("tamper", "why"),
    [
        (lambda s: s.assertion(exp=int(time.time()) + 3600), "five minutes"),
        (lambda s: s.assertion(exp=int(time.time()) - 600), "expired"),
        (lambda s: s.assertion(exp=None), "exp"),
        (lambda s: s.assertion(jti=None), "jti"),
        (lambda s: s.assertion(aud="https://elsewhere.example/token"), "aud"),
        (lambda s: s.assertion(sub=str(uuid.uuid4())), "sub"),
        (lambda s: s.assertion(iss=str(uuid.uuid4()), sub=None), "client"),
        (lambda s: _other_key_signer(s).assertion(), "signed"),
        (
            lambda s: jwt.encode(
                {"alg": "HS256", "kid": s.key.kid},
                {
                    "iss": s.client_id,
                    "sub": s.client_id,
                    "aud": s.token_url,
                    "jti": "x",
                    "exp": int(time.time()) + 60,
                },
                OctKey.import_key("k" * 32),
            ),
            "RS384 or ES384",
        ),
        (lambda s: "not-a-jwt", "JWT"),
    ],
)
async def test_a_bad_assertion_is_an_invalid_client(
    attune: Attune, tamper: object, why: str
) -> None:
    tenant = await attune.tenant()
    signer = await register(tenant)
    assert callable(tamper)
    described = oauth_error(
        await request_token(attune.http, token_form(tamper(signer))), 401, "invalid_client"
    )
    assert why in described


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": None}, 400, "invalid_request"),
        ({"client_assertion_type": "urn:other"}, 400, "invalid_request"),
        ({"client_assertion": None}, 400, "invalid_request"),
        ({"scope": None}, 400, "invalid_scope"),
        ({"scope": "patient/*.read launch"}, 400, "invalid_scope"),
    ],
)
async def test_a_bad_token_request_says_what_is_wrong(
    attune: Attune, change: dict[str, str | None], status: int, error: str
) -> None:
    tenant = await attune.tenant()
    signer = await register(tenant)
    given = {**token_form(signer.assertion()), **change}
    form = {k: v for k, v in given.items() if v is not None}
    oauth_error(await request_token(attune.http, form), status, error)


async def test_a_token_request_must_be_a_form_with_each_parameter_once(attune: Attune) -> None:
    tenant = await attune.tenant()
    signer = await register(tenant)
    form = token_form(signer.assertion())
    as_json = await attune.http.post("/auth/token", json=form)
    oauth_error(as_json, 400, "invalid_request")
    twice = "&".join(f"{k}={v}" for k, v in form.items()) + "&scope=system/*.rs"
    oauth_error(
        await attune.http.post("/auth/token", content=twice, headers=FORM), 400, "invalid_request"
    )


async def test_an_expired_token_is_refused(attune: Attune, app: FastAPI) -> None:
    tenant = await attune.tenant()
    signer = await register(tenant)
    token = bearer(await access_token(attune.http, signer))
    expect(await attune.http.get("/fhir/Observation", headers=token), 200)
    async with app.state.engine.begin() as conn:
        await conn.execute(
            update(SmartAccessToken)
            .where(SmartAccessToken.org_id == uuid.UUID(tenant.org_id))  # type: ignore[arg-type]
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    response = await attune.http.get("/fhir/Observation", headers=token)
    assert response.status_code == 401, response.text


async def test_deleting_a_client_ends_its_tokens_and_assertions(attune: Attune) -> None:
    tenant = await attune.tenant()
    signer = await register(tenant)
    token = bearer(await access_token(attune.http, signer))
    listed = expect(await attune.http.get("/v1/smart-clients", headers=tenant.admin), 200)
    assert [c["client_id"] for c in listed["items"]] == [signer.client_id]
    assert "d" not in listed["items"][0]["jwks"]["keys"][0]
    other = await attune.tenant("Other")
    path = f"/v1/smart-clients/{signer.client_id}"
    assert (await attune.http.delete(path, headers=other.admin)).status_code == 404
    assert (await attune.http.delete(path, headers=tenant.admin)).status_code == 204
    assert (await attune.http.get("/fhir/Observation", headers=token)).status_code == 401
    oauth_error(
        await request_token(attune.http, token_form(signer.assertion())), 401, "invalid_client"
    )
    listed = expect(await attune.http.get("/v1/smart-clients", headers=tenant.admin), 200)
    assert listed["items"] == []
    assert (await attune.http.delete(path, headers=tenant.admin)).status_code == 404


async def test_a_client_bound_to_a_clinician_reads_its_caseload_only(attune: Attune) -> None:
    tenant = await attune.tenant()
    mine, theirs = await tenant.clinician("Dr Mine"), await tenant.clinician("Dr Theirs")
    my_episode = await tenant.episode(clinician_id=mine["id"])
    their_episode = await tenant.episode(clinician_id=theirs["id"])
    signer = await register(tenant, "clients:read", clinician_id=mine["id"])
    token = bearer(await access_token(attune.http, signer, "system/Patient.rs"))
    expect(await attune.http.get(f"/v1/clients/{my_episode['client_id']}", headers=token), 200)
    response = await attune.http.get(f"/v1/clients/{their_episode['client_id']}", headers=token)
    assert response.status_code == 404


async def test_token_issuance_is_audited_without_the_token(attune: Attune) -> None:
    tenant = await attune.tenant()
    signer = await register(tenant)
    token = await access_token(attune.http, signer, "system/Observation.rs")
    events = expect(await attune.http.get("/v1/audit-events", headers=tenant.admin), 200)["items"]
    issued = [e for e in events if e["action"] == "smart_token.issue"]
    assert len(issued) == 1
    assert issued[0]["resource_id"] == signer.client_id
    assert issued[0]["details"]["scope"] == "system/Observation.rs"
    assert token not in str(events)


async def test_one_assertion_sent_at_once_to_two_replicas_buys_one_token(
    attune: Attune, settings: Settings
) -> None:
    """The database decides (DESIGN.md §2: no in-process state that matters): of the same
    assertion posted concurrently to two app instances, exactly one is accepted."""
    tenant = await attune.tenant()
    signer = await register(tenant)
    form = token_form(signer.assertion())
    other = create_app(settings)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other, client=("203.0.113.8", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://b.test") as second:
            answers = await asyncio.gather(
                *(client.post("/auth/token", data=form) for client in [attune.http, second] * 3)
            )
    assert sorted(a.status_code for a in answers) == [200, 401, 401, 401, 401, 401]
    for refused in (a for a in answers if a.status_code == 401):
        assert refused.json()["error"] == "invalid_client"


async def test_a_client_id_sent_beside_the_assertion_must_be_the_same_client(
    attune: Attune,
) -> None:
    """RFC 7521 §4.2: a client_id parameter, when sent, names the client the assertion is from."""
    tenant = await attune.tenant()
    signer = await register(tenant)
    same = token_form(signer.assertion(), client_id=signer.client_id)
    expect(await request_token(attune.http, same), 200)
    other = token_form(signer.assertion(), client_id=str(uuid.uuid4()))
    described = oauth_error(await request_token(attune.http, other), 401, "invalid_client")
    assert "client_id" in described
