"""The CapabilityStatement lists exactly what works (issue 17): its resource types and
interactions are the facade's routes, every search parameter it lists is one the search accepts,
and parameters it does not list are refused."""

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from tests.api.test_isolation_matrix import app_operations
from tests.support import Attune, expect
from tests.support.fhir import fhir

# A value of each parameter type that a search may refuse as a value, never as a parameter.
_PROBE = {"number": "1", "date": "2026", "token": "x", "reference": "x", "uri": "x",
          "string": "x", "special": "x"}  # fmt: skip
_NOT_OFFERED = ("_lastUpdated", "_elements", "_summary", "name", "_has", "_revinclude")


def _route_interactions(app: FastAPI) -> set[tuple[str, str]]:
    """(type, interaction) of every FHIR route the app serves."""
    found = set()
    for method, path in app_operations(app):
        match = re.fullmatch(r"/fhir/([A-Z][A-Za-z]+)(/\{\w+\})?", path)
        if match is None:
            continue
        kind, instance = match.group(1), match.group(2)
        if method == "GET":
            found.add((kind, "read" if instance else "search-type"))
        if method == "POST" and not instance:
            found.add((kind, "create"))
    return found


async def _statement(http: httpx.AsyncClient) -> dict[str, Any]:
    statement = fhir(await http.get("/fhir/metadata"), 200)
    CapabilityStatement.model_validate(statement)
    return statement


async def test_the_statement_lists_every_route_and_only_those(
    http: httpx.AsyncClient, app: FastAPI
) -> None:
    statement = await _statement(http)
    listed = {
        (resource["type"], interaction["code"])
        for resource in statement["rest"][0]["resource"]
        for interaction in resource["interaction"]
    }
    assert listed == _route_interactions(app)
    assert {"Patient", "Practitioner", "EpisodeOfCare"} <= {kind for kind, _ in listed}


async def test_every_listed_search_parameter_is_accepted_and_no_other(attune: Attune) -> None:
    tenant = await attune.tenant()
    statement = await _statement(attune.http)
    for resource in statement["rest"][0]["resource"]:
        kind = resource["type"]
        names = {p["name"] for p in resource.get("searchParam", [])}
        for param in resource.get("searchParam", []):
            url = f"/fhir/{kind}?{param['name']}={_PROBE[param['type']]}"
            response = await attune.http.get(url, headers=tenant.admin)
            if response.status_code == 400:  # a value it cannot apply, named, never "unknown"
                issue = response.json()["issue"][0]
                assert not issue["diagnostics"].startswith("unknown search"), (url, issue)
            else:
                assert response.status_code == 200, (url, response.text)
        for name in _NOT_OFFERED:
            if name in names:
                continue
            response = await attune.http.get(f"/fhir/{kind}?{name}=x", headers=tenant.admin)
            assert response.status_code == 400, (kind, name, response.text)
        for include in resource.get("searchInclude", []):
            url = f"/fhir/{kind}?_include={include}"
            expect(await attune.http.get(url, headers=tenant.admin), 200)


@pytest.mark.parametrize("path", ["/.well-known/smart-configuration"])
async def test_the_statement_names_the_smart_token_endpoint(
    http: httpx.AsyncClient, path: str
) -> None:
    statement = await _statement(http)
    security = statement["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    [uris] = security["extension"]
    token = next(e["valueUri"] for e in uris["extension"] if e["url"] == "token")
    assert token == expect(await http.get(path), 200)["token_endpoint"]
