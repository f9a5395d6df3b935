"""GET/POST /v1/instruments: built-ins for everyone, organisation-defined ones for their owner."""

import copy
from typing import Any

import pytest

from tests.support import Attune, bearer, expect, submit
from tests.support.instruments import LOCAL


async def test_builtins_are_listed_for_any_key_without_licensed_wording(attune: Attune) -> None:
    tenant = await attune.tenant()
    key = bearer(await tenant.key("alerts:read"))
    listing = expect(await attune.http.get("/v1/instruments", headers=key), 200)
    codes = {i["code"] for i in listing}
    assert {"srs", "ors", "wai-sr", "phq-9", "gad-7", "chs", "rupture-check"} <= codes
    srs = expect(await attune.http.get("/v1/instruments/srs", headers=key), 200)
    assert srs["version"] == "3.0"
    assert [i["id"] for i in srs["items"]] == [
        "relationship",
        "goals_topics",
        "approach_method",
        "overall",
    ]
    assert all(len(i["label"]) <= 40 for i in srs["items"])


async def test_organisation_defines_its_own_instrument_and_submits_to_it(attune: Attune) -> None:
    tenant = await attune.tenant()
    created = expect(
        await attune.http.post("/v1/instruments", json=LOCAL, headers=tenant.admin), 201
    )
    assert created["code"] == "bdi-local"
    got = expect(await attune.http.get("/v1/instruments/bdi-local", headers=tenant.admin), 200)
    assert got["cutoff"] == 14
    eid = (await tenant.episode())["id"]
    sub = await submit(tenant, eid, "bdi-local", 1, {"score": 17})
    assert sub["scores"]["band"] == "mild"
    assert sub["scores"]["clinical"] is True


async def test_own_instruments_are_invisible_to_other_organisations(attune: Attune) -> None:
    mine = await attune.tenant()
    theirs = await attune.tenant()
    expect(await attune.http.post("/v1/instruments", json=LOCAL, headers=mine.admin), 201)
    assert (
        await attune.http.get("/v1/instruments/bdi-local", headers=theirs.admin)
    ).status_code == 404
    listing = expect(await attune.http.get("/v1/instruments", headers=theirs.admin), 200)
    assert "bdi-local" not in {i["code"] for i in listing}
    eid = (await theirs.episode())["id"]
    await submit(theirs, eid, "bdi-local", 1, {"score": 3}, status=422)


async def test_same_version_twice_and_builtin_codes_are_conflicts(attune: Attune) -> None:
    tenant = await attune.tenant()
    expect(await attune.http.post("/v1/instruments", json=LOCAL, headers=tenant.admin), 201)
    again = await attune.http.post("/v1/instruments", json=LOCAL, headers=tenant.admin)
    assert again.status_code == 409
    builtin = await attune.http.post(
        "/v1/instruments", json={**LOCAL, "code": "srs"}, headers=tenant.admin
    )
    assert builtin.status_code == 409
    newer = expect(
        await attune.http.post(
            "/v1/instruments", json={**LOCAL, "version": "2", "cutoff": 20}, headers=tenant.admin
        ),
        201,
    )
    assert newer["version"] == "2"
    current = expect(await attune.http.get("/v1/instruments/bdi-local", headers=tenant.admin), 200)
    assert current["cutoff"] == 20


def _broken(change: Any) -> dict[str, Any]:
    definition = copy.deepcopy(LOCAL)
    change(definition)
    return definition


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        (_broken(lambda d: d["items"][0].update(min=10, max=1)), "body.items"),
        (_broken(lambda d: d.update(subscales={"a": ["nope"]})), "body.subscales"),
        (_broken(lambda d: d["items"].append(dict(d["items"][0]))), "body.items"),
        (
            _broken(
                lambda d: d.update(risk_items=[{"item": "ghost", "threshold": 1, "label": "x"}])
            ),
            "body.risk_items",
        ),
        (_broken(lambda d: d.update(surprise=1)), "body.surprise"),
        (_broken(lambda d: d.pop("items")), "body.items"),
    ],
)
async def test_inconsistent_definitions_are_422_naming_the_field(
    attune: Attune, definition: dict[str, Any], field: str
) -> None:
    tenant = await attune.tenant()
    response = await attune.http.post("/v1/instruments", json=definition, headers=tenant.admin)
    assert response.status_code == 422, response.text
    assert any(e["field"].startswith(field) for e in response.json()["errors"]), response.text


async def test_overlapping_subscales_are_refused(attune: Attune) -> None:
    tenant = await attune.tenant()
    definition = copy.deepcopy(LOCAL)
    definition["items"].append({"id": "extra", "label": "Extra", "min": 0, "max": 3, "step": 1})
    definition["bands"][-1]["max"] = 66
    definition["subscales"] = {"a": ["score", "extra"], "b": ["extra"]}
    response = await attune.http.post("/v1/instruments", json=definition, headers=tenant.admin)
    assert response.status_code == 422
    assert any(e["field"].startswith("body.subscales") for e in response.json()["errors"])


async def test_only_admins_publish_instruments(attune: Attune) -> None:
    tenant = await attune.tenant()
    writer = bearer(await tenant.key("submissions:write"))
    assert (
        await attune.http.post("/v1/instruments", json=LOCAL, headers=writer)
    ).status_code == 403


def _replica(settings: Any, **update: Any) -> Any:
    """Another app instance (its own engine), as another replica would be."""
    from api.app import create_app

    return create_app(settings.model_copy(update=update))


async def test_definitions_over_the_size_limit_are_413_naming_it(
    attune: Attune, settings: Any
) -> None:
    import httpx

    tenant = await attune.tenant()
    app = _replica(settings, instrument_max_bytes=2048)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as http:
            big = {**LOCAL, "citation": "x" * 3000}
            problem = expect(
                await http.post("/v1/instruments", json=big, headers=tenant.admin), 413
            )
            assert problem["errors"][0]["field"] == "body"
            assert "2048" in problem["detail"]
            expect(await http.post("/v1/instruments", json=LOCAL, headers=tenant.admin), 201)


async def test_versions_per_instrument_are_limited_with_422_naming_the_version(
    attune: Attune, settings: Any
) -> None:
    import httpx

    tenant = await attune.tenant()
    app = _replica(settings, instrument_max_versions=3)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as http:
            for version in ("1", "2", "3"):
                body = {**LOCAL, "version": version}
                expect(await http.post("/v1/instruments", json=body, headers=tenant.admin), 201)
            body = {**LOCAL, "version": "4"}
            problem = expect(
                await http.post("/v1/instruments", json=body, headers=tenant.admin), 422
            )
            assert problem["errors"][0]["field"] == "body.version"
            assert "3 versions" in problem["errors"][0]["message"]
            # Another code still has room.
            other = {**LOCAL, "code": "bdi-other"}
            expect(await http.post("/v1/instruments", json=other, headers=tenant.admin), 201)


async def test_definitions_are_parsed_once_and_a_new_version_replaces_them_on_every_replica(
    attune: Attune, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    from services.instruments import catalog

    parsed: list[str] = []
    real = catalog.parse_stored

    def counting(raw: dict[str, Any]) -> Any:
        parsed.append(str(raw["version"]))
        return real(raw)

    monkeypatch.setattr(catalog, "parse_stored", counting)
    tenant = await attune.tenant()
    expect(await attune.http.post("/v1/instruments", json=LOCAL, headers=tenant.admin), 201)
    eid = (await tenant.episode())["id"]
    for session in (1, 2):
        expect(await attune.http.get("/v1/instruments/bdi-local", headers=tenant.admin), 200)
        expect(await attune.http.get("/v1/instruments", headers=tenant.admin), 200)
        expect(await attune.http.get("/fhir/Questionnaire/bdi-local", headers=tenant.admin), 200)
        await submit(tenant, eid, "bdi-local", session, {"score": 17})
    assert parsed == ["1"]

    # Another replica publishes version 2: this one serves it from then on.
    other = _replica(settings)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as http:
            body = {**LOCAL, "version": "2", "cutoff": 20}
            expect(await http.post("/v1/instruments", json=body, headers=tenant.admin), 201)
    got = expect(await attune.http.get("/v1/instruments/bdi-local", headers=tenant.admin), 200)
    assert (got["version"], got["cutoff"]) == ("2", 20)
    listed = expect(await attune.http.get("/v1/instruments", headers=tenant.admin), 200)
    assert next(d for d in listed if d["code"] == "bdi-local")["version"] == "2"
    sub = await submit(tenant, eid, "bdi-local", 3, {"score": 17})
    assert sub["instrument_version"] == "2"
    assert sub["scores"]["clinical"] is False  # 17 is under the new cut-off
    assert parsed.count("2") == 1
