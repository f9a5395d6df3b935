"""FHIR R4 routes: metadata, Patient, Practitioner, EpisodeOfCare, Questionnaire,
QuestionnaireResponse, Observation, DetectedIssue.

Thin, as every route: parse, authorise, call `services.fhir`, shape the answer. The routes are
left out of the OpenAPI document: FHIR clients read the CapabilityStatement instead, and the
bodies are FHIR resources, not Attune schemas.
"""

import uuid
from collections.abc import Sequence
from typing import Annotated

import orjson
from fastapi import Path, Request
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import ValidationError
from starlette.datastructures import URL

from api.deps import (
    ClientsRead,
    OrgKey,
    SessionDep,
    SubmissionsRead,
    UnitOfWorkDep,
    audit_target,
    require,
)
from api.fhir.responses import BadResource, FhirResponse, SearchRefused
from api.routing import router as api_router
from models.base import utcnow
from services.fhir import capability, care_store, parameters, search, store
from services.fhir.questionnaire import to_questionnaire
from services.fhir.resources import QR, instant, parse_questionnaire_ref, questionnaire_response
from services.fhir.search import SearchError
from services.fhir.shapes import Resource
from services.instruments import catalog as instrument_catalog
from services.kernel.auth import Actor
from services.kernel.config import Settings
from services.kernel.errors import NotFound

router = api_router(prefix="/fhir", tags=["fhir"], include_in_schema=False)

# POST QuestionnaireResponse runs the submission service; the key is looked up as on any route.
ResponsesWrite = Annotated[Actor, require("submissions:write")]
AlertsRead = Annotated[Actor, require("alerts:read")]
ResourceId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9\-.]{1,64}$")]
_JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")


def base_url(request: Request) -> str:
    """Absolute URLs start from ATTUNE_PUBLIC_URL, never from the Host header, which any client
    sets (issue 14 finding 9)."""
    settings: Settings = request.app.state.settings
    return settings.base_url + "/fhir"


def public_url(request: Request, url: URL | None = None) -> str:
    """`url` (by default the request's own) with the public base in place of scheme and host."""
    url = url or request.url
    settings: Settings = request.app.state.settings
    return settings.base_url + url.path + (f"?{url.query}" if url.query else "")


def _searchset(
    request: Request,
    resource_type: str,
    applied: search.Search,
    found: Sequence[Resource],
    next_token: str | None,
    *,
    included: Sequence[Resource] = (),
    total: int | None = None,
) -> FhirResponse:
    """The Bundle, its ``self`` link naming exactly the parameters applied (DESIGN.md §10.6)."""
    here = f"{base_url(request)}/{resource_type}"
    self_url = here + search.query_string(applied.applied())
    next_url = None
    if next_token:
        following = [*applied.applied(without=["_cursor"]), ("_cursor", next_token)]
        next_url = here + search.query_string(following)
    return FhirResponse(
        capability.searchset(
            base_url(request),
            found,
            self_url=self_url,
            next_url=next_url,
            included=included,
            total=total,
        )
    )


def _search(request: Request, resource_type: str) -> search.Search:
    """The request's search, judged by what `services.fhir.parameters` says the type supports
    (the same list the CapabilityStatement shows)."""
    return search.Search(
        request.query_params.multi_items(),
        parameters.supported(resource_type),
        lenient=search.is_lenient(request.headers.get("prefer")),
    )


def _wants_total(given: search.Search) -> bool:
    return given.first("_total", lambda _, value: search.total(value)) in ("estimate", "accurate")


def _start(given: search.Search) -> uuid.UUID | None:
    cursor = given.first("_cursor", _cursor)
    return cursor[0] if cursor else None


def _offset_paging(given: search.Search) -> tuple[int, uuid.UUID | None, bool]:
    """A page of a people or response search: its size, the row it starts at, and whether the
    Bundle's total is asked for."""
    return given.first("_count", _count) or search.DEFAULT_COUNT, _start(given), _wants_total(given)


def _ids(given: search.Search) -> list[uuid.UUID] | None:
    return given.first("_id", lambda _, value: search.ids("_id", value))


def _identifiers(given: search.Search) -> list[tuple[str, str]] | None:
    return given.first("identifier", lambda _, value: search.identifiers("identifier", value))


def _patients(given: search.Search, *names: str) -> list[search.PatientRef]:
    return [ref for name in names for ref in given.take(name, search.patient_ref(name))]


def _count(modifier: str | None, value: str) -> int:
    return search.count(value)


def _cursor(modifier: str | None, value: str) -> tuple[uuid.UUID, int]:
    return search.decode_cursor(value)


def _refused(exc: SearchError) -> SearchRefused:
    return SearchRefused(exc.parameter, str(exc))


@router.get("/metadata")
async def metadata(request: Request) -> FhirResponse:
    """The CapabilityStatement; public, as FHIR clients read it before they authenticate."""
    return FhirResponse(capability.capability_statement(base_url(request), instant(utcnow())))


@router.get("/Questionnaire")
async def search_questionnaires(
    request: Request, actor: OrgKey, session: SessionDep
) -> FhirResponse:
    try:
        query = _search(request, "Questionnaire")
        url = query.first("url", lambda _, value: value)
    except SearchError as exc:
        raise _refused(exc) from None
    found = [
        to_questionnaire(d) for d in await instrument_catalog.list_instruments(session, actor=actor)
    ]
    if url is not None:
        wanted = parse_questionnaire_ref(url)
        found = [q for q in found if wanted is not None and q["id"] == wanted[0]]
    return _searchset(request, "Questionnaire", query, found, None)


@router.get("/Questionnaire/{code}")
async def read_questionnaire(code: ResourceId, actor: OrgKey, session: SessionDep) -> FhirResponse:
    definition = await instrument_catalog.resolve(session, actor=actor, code=code)
    return FhirResponse(to_questionnaire(definition))


def _json_body(raw: bytes, content_type: str) -> dict[str, object]:
    media = content_type.split(";")[0].strip().lower()
    if media and media not in _JSON_TYPES:
        raise BadResource(f"send {_JSON_TYPES[0]}, not {media}")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadResource("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadResource("the body is not a FHIR resource")
    return body


def _conditional_identifier(header: str | None) -> dict[str, str] | None:
    """``If-None-Exist: identifier=system|value`` (the only search conditional creates take)."""
    if header is None:
        return None
    name, sep, token = header.partition("=")
    system, bar, value = token.partition("|")
    if not bar:
        system, value = "", token
    if name.strip() != "identifier" or not sep or not value:
        raise BadResource(
            "If-None-Exist takes identifier=system|value",
            [
                {
                    "field": "header.If-None-Exist",
                    "message": "identifier=system|value",
                    "type": "fhir",
                }
            ],
        )
    return {"system": system, "value": value} if system else {"value": value}


def _validated_response(body: dict[str, object]) -> None:
    if body.get("resourceType") != QR:
        raise BadResource(
            f"expected a {QR}",
            [{"field": "resourceType", "message": f"must be {QR}", "type": "fhir"}],
        )
    try:
        QuestionnaireResponse.model_validate(body)
    except ValidationError as exc:
        raise BadResource(
            f"not a valid FHIR R4 {QR}",
            [
                {
                    "field": ".".join([QR, *(str(p) for p in e["loc"])]),
                    "message": e["msg"],
                    "type": e["type"],
                }
                for e in exc.errors(include_url=False, include_input=False)
            ],
        ) from None


@router.post("/QuestionnaireResponse", status_code=201)
async def create_questionnaire_response(
    request: Request, actor: ResponsesWrite, uow: UnitOfWorkDep
) -> FhirResponse:
    """Scored exactly as ``POST /v1/submissions``; 201 with Location. With an ``identifier`` (or
    ``If-None-Exist: identifier=…``) a repeat answers 200 with the response it created."""
    body = _json_body(await request.body(), request.headers.get("content-type", ""))
    conditional = _conditional_identifier(request.headers.get("if-none-exist"))
    if conditional is not None:
        if body.get("identifier") not in (None, conditional):
            raise BadResource(
                "If-None-Exist names another identifier than the resource",
                [{"field": f"{QR}.identifier", "message": "differs", "type": "fhir"}],
            )
        body = {**body, "identifier": conditional}
    _validated_response(body)
    audit_target(request, "submission.create", "episode", None)
    posted = await store.post_response(uow, actor=actor, resource=body)
    resource = questionnaire_response(posted.row, posted.definition)
    location = f"{base_url(request)}/{QR}/{posted.row.id}"
    return FhirResponse(
        resource, status_code=201 if posted.created else 200, headers={"Location": location}
    )


@router.get("/QuestionnaireResponse/{response_id}")
async def read_questionnaire_response(
    response_id: ResourceId, request: Request, actor: SubmissionsRead, session: SessionDep
) -> FhirResponse:
    submission_id = _uuid(response_id, QR)
    audit_target(request, "submission.read", "submission", submission_id)
    return FhirResponse(
        await store.read_response(session, actor=actor, submission_id=submission_id)
    )


def _uuid(value: str, resource_type: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"{resource_type}/{value} not found") from None


@router.get("/Observation")
async def search_observations(
    request: Request, actor: SubmissionsRead, session: SessionDep
) -> FhirResponse:
    try:
        given = _search(request, "Observation")
        subjects = _patients(given, "subject", "patient")
        codes = [
            c for codes in given.take("code", lambda _, v: search.score_codes(v)) for c in codes
        ]
        dates = given.take("date", lambda _, value: search.date_range("date", value))
        sort = given.first("_sort", lambda _, value: search.sort("_sort", value, ["date"]))
        include = given.first(
            "_include",
            lambda _, value: search.include(value, [parameters.INCLUDE_DERIVED_FROM]),
        )
        want_total = _wants_total(given)
        count = given.first("_count", _count) or search.DEFAULT_COUNT
        cursor = given.first("_cursor", _cursor)
    except SearchError as exc:
        raise _refused(exc) from None
    audit_target(request, "observation.search", "submission", None)
    query = store.ObservationQuery(
        subjects=await care_store.resolve(session, actor, subjects), codes=codes, dates=dates
    )
    found, following = await store.search_observations(
        session, actor=actor, query=query, count=count, cursor=cursor, sort=sort
    )
    included: Sequence[Resource] = ()
    if include is not None:
        sources = {
            uuid.UUID(ref["reference"].rpartition("/")[2])
            for observation in found
            for ref in observation.get("derivedFrom", [])
        }
        included = await care_store.responses_by_id(
            session, actor=actor, submission_ids=sorted(sources)
        )
    total = (
        await store.count_observations(session, actor=actor, query=query) if want_total else None
    )
    token = search.encode_cursor(*following) if following else None
    return _searchset(request, "Observation", given, found, token, included=included, total=total)


@router.get("/Observation/{observation_id}")
async def read_observation(
    observation_id: ResourceId, request: Request, actor: SubmissionsRead, session: SessionDep
) -> FhirResponse:
    audit_target(request, "observation.read", "submission", None)
    return FhirResponse(
        await store.read_observation(session, actor=actor, observation_id=observation_id)
    )


@router.get("/DetectedIssue")
async def search_detected_issues(
    request: Request, actor: AlertsRead, session: SessionDep
) -> FhirResponse:
    try:
        given = _search(request, "DetectedIssue")
        patient_refs = _patients(given, "patient", "subject")
        types = [
            t for found in given.take("code", lambda _, v: search.alert_types(v)) for t in found
        ]
        statuses = given.first("status", lambda _, value: search.issue_statuses(value))
        count = given.first("_count", _count) or search.DEFAULT_COUNT
        cursor = given.first("_cursor", _cursor)
    except SearchError as exc:
        raise _refused(exc) from None
    audit_target(request, "alert.list", "alert", None)
    patients = await care_store.resolve(session, actor, patient_refs)
    found, last = await store.search_issues(
        session,
        actor=actor,
        patients=patients,
        types=types,
        statuses=statuses or (),
        count=count,
        after=cursor[0] if cursor else None,
    )
    token = search.encode_cursor(last) if last else None
    return _searchset(request, "DetectedIssue", given, found, token)


@router.get("/DetectedIssue/{issue_id}")
async def read_detected_issue(
    issue_id: ResourceId, request: Request, actor: AlertsRead, session: SessionDep
) -> FhirResponse:
    alert_id = _uuid(issue_id, "DetectedIssue")
    audit_target(request, "alert.read", "alert", alert_id)
    return FhirResponse(await store.read_issue(session, actor=actor, alert_id=alert_id))


# Patient, Practitioner, EpisodeOfCare: clients, clinicians and episodes (scope clients:read,
# as GET /v1/clients, /v1/clinicians, /v1/episodes; a clinician-bound key: its caseload).


@router.get("/Patient")
async def search_patients(
    request: Request, actor: ClientsRead, session: SessionDep
) -> FhirResponse:
    try:
        given = _search(request, "Patient")
        ids, identifiers = _ids(given), _identifiers(given)
        count, start, want_total = _offset_paging(given)
    except SearchError as exc:
        raise _refused(exc) from None
    audit_target(request, "client.list", "client", None)
    page = await care_store.search_patients(
        session, actor=actor, ids=ids, identifiers=identifiers, count=count, start=start,
        want_total=want_total,
    )  # fmt: skip
    return _page(request, "Patient", given, page)


@router.get("/Patient/{client_id}")
async def read_patient(
    client_id: ResourceId, request: Request, actor: ClientsRead, session: SessionDep
) -> FhirResponse:
    found = _uuid(client_id, "Patient")
    audit_target(request, "client.read", "client", found)
    return FhirResponse(await care_store.read_patient(session, actor=actor, client_id=found))


@router.get("/Practitioner")
async def search_practitioners(
    request: Request, actor: ClientsRead, session: SessionDep
) -> FhirResponse:
    try:
        given = _search(request, "Practitioner")
        ids, identifiers = _ids(given), _identifiers(given)
        count, start, want_total = _offset_paging(given)
    except SearchError as exc:
        raise _refused(exc) from None
    audit_target(request, "clinician.list", "clinician", None)
    page = await care_store.search_practitioners(
        session, actor=actor, ids=ids, identifiers=identifiers, count=count, start=start,
        want_total=want_total,
    )  # fmt: skip
    return _page(request, "Practitioner", given, page)


@router.get("/Practitioner/{clinician_id}")
async def read_practitioner(
    clinician_id: ResourceId, request: Request, actor: ClientsRead, session: SessionDep
) -> FhirResponse:
    found = _uuid(clinician_id, "Practitioner")
    audit_target(request, "clinician.read", "clinician", found)
    return FhirResponse(
        await care_store.read_practitioner(session, actor=actor, clinician_id=found)
    )


@router.get("/EpisodeOfCare")
async def search_episodes(
    request: Request, actor: ClientsRead, session: SessionDep
) -> FhirResponse:
    try:
        given = _search(request, "EpisodeOfCare")
        ids, refs = _ids(given), _patients(given, "patient")
        status = given.first("status", lambda _, value: _episode_status(value))
        count, start, want_total = _offset_paging(given)
    except SearchError as exc:
        raise _refused(exc) from None
    audit_target(request, "episode.list", "episode", None)
    page = await care_store.search_episodes(
        session, actor=actor, ids=ids, patients=await care_store.resolve(session, actor, refs),
        status=status, count=count, start=start, want_total=want_total,
    )  # fmt: skip
    return _page(request, "EpisodeOfCare", given, page)


def _episode_status(value: str) -> str:
    if value not in ("active", "finished"):
        raise SearchError("status", "active or finished")
    return value


@router.get("/EpisodeOfCare/{episode_id}")
async def read_episode(
    episode_id: ResourceId, request: Request, actor: ClientsRead, session: SessionDep
) -> FhirResponse:
    found = _uuid(episode_id, "EpisodeOfCare")
    audit_target(request, "episode.read", "episode", found)
    return FhirResponse(await care_store.read_episode(session, actor=actor, episode_id=found))


@router.get("/QuestionnaireResponse")
async def search_questionnaire_responses(
    request: Request, actor: SubmissionsRead, session: SessionDep
) -> FhirResponse:
    try:
        given = _search(request, QR)
        ids, refs = _ids(given), _patients(given, "patient", "subject")
        questionnaire = given.first("questionnaire", lambda _, value: _questionnaire(value))
        authored = given.take("authored", lambda _, value: search.date_range("authored", value))
        identifier = given.first("identifier", lambda _, value: _one_identifier(value))
        sort = given.first("_sort", lambda _, value: search.sort("_sort", value, ["authored"]))
        count, start, want_total = _offset_paging(given)
    except SearchError as exc:
        raise _refused(exc) from None
    audit_target(request, "submission.search", "submission", None)
    query = care_store.ResponseQuery(
        ids=ids, patients=await care_store.resolve(session, actor, refs),
        questionnaire=questionnaire, authored=authored, identifier=identifier,
    )  # fmt: skip
    page = await care_store.search_responses(
        session, actor=actor, query=query, sort=sort, count=count, start=start,
        want_total=want_total,
    )  # fmt: skip
    return _page(request, QR, given, page)


def _questionnaire(value: str) -> tuple[str, str | None]:
    found = parse_questionnaire_ref(value)
    if found is None:
        raise SearchError("questionnaire", "the canonical URL of a Questionnaire [|version]")
    return found


def _one_identifier(value: str) -> tuple[str, str]:
    found = search.identifiers("identifier", value)
    if len(found) != 1:
        raise SearchError("identifier", "one identifier, [system|]value")
    return found[0]


def _page(
    request: Request, resource_type: str, given: search.Search, page: care_store.Page
) -> FhirResponse:
    token = search.encode_cursor(page.next_start) if page.next_start else None
    return _searchset(request, resource_type, given, page.resources, token, total=page.total)
