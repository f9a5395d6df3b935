"""The rating page as served (DESIGN.md §10.4): our own files only, a strict CSP, small, in the
client's language. What it does in a browser is tested in tests/browser/."""

import re

import httpx
from hypothesis import given
from hypothesis import strategies as st

from api.routes.rating_page import choose_language
from tests.support import Attune, expect

PAGE_FILES = ("/r/", "/r/rating.js", "/r/rating.css", "/r/icon.svg")
# The issue's budget for the whole page, uncompressed.
PAGE_BUDGET_BYTES = 60 * 1024


async def test_the_whole_page_weighs_at_most_60_kb_uncompressed(http: httpx.AsyncClient) -> None:
    sizes = {}
    for path in PAGE_FILES:
        response = await http.get(path, headers={"Accept-Encoding": "identity"})
        assert response.status_code == 200, path
        sizes[path] = len(response.content)
    assert sum(sizes.values()) <= PAGE_BUDGET_BYTES, sizes


async def test_the_page_runs_only_its_own_script_and_style(http: httpx.AsyncClient) -> None:
    response = await http.get("/r/")
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert response.headers["referrer-policy"] == "no-referrer"
    html = response.text
    # No inline script or style, and nothing from another host.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="rating.js" defer>']
    assert "style=" not in html
    assert "<style" not in html
    for path in PAGE_FILES:
        body = (await http.get(path)).text
        addresses = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", body))
        assert addresses <= {"http://www.w3.org/2000/svg"}, (path, addresses)
    script = await http.get("/r/rating.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["content-security-policy"] == policy
    assert (await http.get("/r/rating.css")).headers["content-type"].startswith("text/css")


async def test_the_language_is_asked_for_or_negotiated(http: httpx.AsyncClient) -> None:
    cases: tuple[tuple[dict[str, str], dict[str, str], str], ...] = (
        ({}, {}, "en"),
        ({"lang": "es"}, {}, "es"),
        ({"lang": "es-MX"}, {"Accept-Language": "en"}, "es"),
        ({"lang": "en"}, {"Accept-Language": "es"}, "en"),
        ({"lang": "fr"}, {"Accept-Language": "es-ES,es;q=0.9"}, "es"),
        ({}, {"Accept-Language": "fr-FR, es;q=0.8, en;q=0.5"}, "es"),
        ({}, {"Accept-Language": "en;q=0.4, es;q=0.6"}, "es"),
        ({}, {"Accept-Language": "es;q=0, en-GB"}, "en"),
        ({}, {"Accept-Language": "de"}, "en"),
    )
    for params, headers, expected in cases:
        response = await http.get("/r/", params=params, headers=headers)
        assert response.status_code == 200
        assert f'<html lang="{expected}">' in response.text, (params, headers)
        assert response.headers["content-language"] == expected
        assert "accept-language" in response.headers["vary"].lower()
    assert "<title>Valora tu sesión</title>" in (await http.get("/r/?lang=es")).text


@given(st.one_of(st.none(), st.text(max_size=40)), st.one_of(st.none(), st.text(max_size=200)))
def test_any_language_header_gives_one_we_have(asked: str | None, header: str | None) -> None:
    assert choose_language(asked, header) in ("en", "es")


async def test_the_page_without_its_slash_redirects_and_keeps_the_query(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/r?lang=es")
    assert response.status_code == 308
    assert response.headers["location"] == "/r/?lang=es"


async def test_an_items_own_wording_is_checked_like_the_rest_of_a_definition(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    item = {"id": "heard", "label": "Heard", "min": 0, "max": 10, "step": 0.1}
    definition = {
        "code": "own-wording",
        "version": "1",
        "name": "Own wording",
        "kind": "alliance",
        "respondents": ["client"],
        "items": [{**item, "display": {"english": {"text": "I felt heard"}}}],
        "subscales": {},
        "direction": "higher_is_better",
        "citation": "test",
        "license": "test",
    }
    problem = expect(
        await attune.http.post("/v1/instruments", json=definition, headers=tenant.admin), 422
    )
    assert any("display" in e["field"] for e in problem["errors"]), problem
    definition["items"] = [{**item, "display": {"es-MX": {"text": "Me sentí escuchado"}}}]
    created = expect(
        await attune.http.post("/v1/instruments", json=definition, headers=tenant.admin), 201
    )
    assert created["items"][0]["display"] == {"es-MX": {"text": "Me sentí escuchado"}}
