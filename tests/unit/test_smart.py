"""The pure parts of SMART Backend Services: assertions checked, scopes granted. Inputs are wide
(anything a client may send), so hypothesis drives them."""

import time
import uuid
from datetime import UTC, datetime
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey

from services.smart import scopes
from services.smart.assertions import verify
from services.smart.errors import OAuthError

TOKEN_URL = "https://attune.example.org/auth/token"
CLIENT = str(uuid.UUID(int=7))


@cache
def _key() -> ECKey:
    return ECKey.generate_key("P-384", parameters={"kid": "k1"})


def _jwks() -> dict[str, object]:
    return {"keys": [_key().as_dict(private=False)]}


def _assertion(**claims: object) -> str:
    body = {"iss": CLIENT, "sub": CLIENT, "aud": TOKEN_URL, "exp": int(time.time()) + 120,
            "jti": "j-1", **claims}  # fmt: skip
    return jwt.encode({"alg": "ES384", "kid": "k1"}, body, _key(), algorithms=["ES384"])


def _now() -> datetime:
    return datetime.now(UTC)


def test_a_good_assertion_names_its_client_and_jti() -> None:
    verified = verify(_assertion(), jwks=_jwks(), token_url=TOKEN_URL, now=_now())
    assert (str(verified.client_id), verified.jti) == (CLIENT, "j-1")


@given(st.text(max_size=400))
def test_any_text_as_an_assertion_is_an_invalid_client(text: str) -> None:
    with pytest.raises(OAuthError) as refused:
        verify(text, jwks=_jwks(), token_url=TOKEN_URL, now=_now())
    assert refused.value.error == "invalid_client"


@given(st.data())
def test_a_changed_character_anywhere_voids_the_assertion(data: st.DataObject) -> None:
    good = _assertion()
    position = data.draw(st.integers(0, len(good) - 1))
    replacement = data.draw(st.sampled_from("AQgw_-.0x=+/ "))
    tampered = good[:position] + replacement + good[position + 1 :]
    if tampered == good:
        return
    try:
        verified = verify(tampered, jwks=_jwks(), token_url=TOKEN_URL, now=_now())
    except OAuthError as refused:
        error = refused.error
    else:
        # base64url's last character carries spare bits: a few changes decode to the same bytes.
        error = "invalid_client" if str(verified.client_id) == CLIENT else "accepted"
    assert error == "invalid_client"


@given(
    st.dictionaries(
        st.sampled_from(["iss", "sub", "aud", "exp", "jti", "nbf"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=20), st.floats(allow_nan=False),
                  st.lists(st.text(max_size=5), max_size=2)),
        min_size=1,
    )
)  # fmt: skip
def test_wrong_claims_are_an_invalid_client_never_a_crash(claims: dict[str, object]) -> None:
    error = "invalid_client"
    try:
        verify(_assertion(**claims), jwks=_jwks(), token_url=TOKEN_URL, now=_now())
    except OAuthError as refused:
        error = refused.error
    assert error == "invalid_client"


_PART = st.sampled_from(
    ["system/", "patient/", "user/", "*", "Patient", "Observation", "Foo", ".", "rs", "cruds",
     "read", "write", "*", "c", " ", "?x=1"]
)  # fmt: skip
_ATTUNE = st.sets(
    st.sampled_from(sorted({s for pair in scopes.RESOURCES.values() for s in pair if s}))
)


@given(st.lists(_PART, max_size=12).map("".join), _ATTUNE)
def test_a_grant_never_carries_a_scope_the_client_was_not_registered_with(
    requested: str, allowed: set[str]
) -> None:
    granted = scopes.grant(requested, allowed)
    assert granted.attune <= allowed
    for scope in granted.smart:
        assert scope.startswith("system/")


def test_wildcards_expand_to_what_each_type_offers() -> None:
    granted = scopes.grant("system/*.cruds", {"submissions:read", "submissions:write"})
    assert granted.smart == (
        "system/Observation.rs", "system/Questionnaire.rs", "system/QuestionnaireResponse.cruds",
    )  # fmt: skip
    assert granted.attune == {"submissions:read", "submissions:write"}
    v1 = scopes.grant("system/Patient.read system/DetectedIssue.*", {"clients:read", "alerts:read"})
    assert v1.smart == ("system/DetectedIssue.rs", "system/Patient.rs")
