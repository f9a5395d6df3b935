"""Whatever a client posts to the token endpoint, it gets an OAuth error body naming what is wrong,
never a 500. Hypothesis draws the forms (the inputs are anything on the wire); they are then sent
to the app, which runs on the test's event loop."""

import base64
import json
from typing import Any
from urllib.parse import urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from services.smart.assertions import ASSERTION_TYPE
from tests.support import Attune
from tests.support.smart import FORM, register

ERRORS = {"invalid_request", "invalid_client", "invalid_scope", "unsupported_grant_type"}
_FIELD = st.sampled_from(
    ["grant_type", "scope", "client_assertion_type", "client_assertion", "client_id", "x"]
)
_JWT_LIKE = st.lists(st.text("ABCDEFabcdef0123456789-_", max_size=40), min_size=3, max_size=3)


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _forms(client_id: str) -> list[list[tuple[str, str]]]:
    values = st.one_of(
        st.sampled_from(["client_credentials", ASSERTION_TYPE, "system/*.rs", "", client_id]),
        st.text(max_size=80),
        _JWT_LIKE.map(".".join),  # structurally a JWT: three base64url segments
    )
    drawn: list[list[tuple[str, str]]] = []

    @settings(max_examples=80, deadline=None, database=None)
    @given(st.lists(st.tuples(_FIELD, values), max_size=6))
    def draw(form: list[tuple[str, str]]) -> None:
        drawn.append(form)

    draw()
    return drawn


async def test_any_token_request_gets_an_oauth_error_never_a_crash(attune: Attune) -> None:
    tenant = await attune.tenant()
    signer = await register(tenant)
    complete = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("scope", "system/*.rs"),
    ]
    forms = _forms(signer.client_id)
    forms += [
        [*complete, ("client_assertion", ".".join(parts))] for parts in ([""] * 3, ["e30"] * 3)
    ]
    for form in forms:
        response = await attune.http.post("/auth/token", content=urlencode(form), headers=FORM)
        assert response.status_code in (400, 401), (form, response.text)
        body = response.json()
        assert body["error"] in ERRORS, (form, body)
        assert isinstance(body["error_description"], str)
