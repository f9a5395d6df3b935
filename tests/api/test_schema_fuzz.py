"""Schema fuzzing: schemathesis generates requests for every operation in the app's own OpenAPI
document and checks every answer against it: never a server error, only documented status
codes, the documented content type, headers and body schema; invalid requests refused, missing
keys answered 401.

Requests carry a valid key (the `system` key on /v1/organizations, an org admin key elsewhere),
so they reach the handlers; in about half the valid cases, path, query and body fields named like
an object (`episode_id`, `client_id`, ...) are set to a real object's id, submissions answer a real
instrument's items and instrument definitions are real ones (tests/support/fuzz.py), so that
handlers get past their lookups. Operations are read from the OpenAPI document: a new route is
fuzzed without changes here.

The FHIR facade (`/fhir/...`) is not in the OpenAPI document, so it is not fuzzed here: its bodies
are FHIR resources validated by the FHIR R4B models, not Attune schemas, its errors are
OperationOutcomes rather than the documented Problem, and its contract is the CapabilityStatement
(`GET /fhir/metadata`). tests/api/test_fhir*.py send it malformed input instead.

`ATTUNE_FUZZ_EXAMPLES` sets the examples per operation. Unset (CI), it is 100 on SQLite and 50 on
PostgreSQL, and the examples are derandomized: the same on every run, so that CI never fails by
chance. Set, every run draws new examples:

    ATTUNE_FUZZ_EXAMPLES=1000 .venv/bin/pytest -m fuzz
"""

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from api.app import create_app
from services.kernel.config import Settings
from tests.support import Attune
from tests.support.fuzz import (
    TARGET,
    BearerKeys,
    Case,
    FuzzWorld,
    Target,
    build_world,
    sometimes_aimed,
)

_CONFIGURED = os.environ.get("ATTUNE_FUZZ_EXAMPLES")
_ON_POSTGRES = os.environ.get("ATTUNE_TEST_DATABASE_URL", "").startswith("postgresql")
EXAMPLES = int(_CONFIGURED) if _CONFIGURED else 50 if _ON_POSTGRES else 100

# The document needs no database: an app that is never started builds it.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(environment="test", secret_key=SecretStr("openapi-only-" * 3))).openapi(),
    config=schemathesis.Config.from_dict(
        # Off: a schema-valid request may still be refused with a documented 422 for what no
        # JSON schema can say (an unknown instrument or client, a cursor this API never issued,
        # an inconsistent instrument definition).
        {"checks": {"positive_data_acceptance": {"enabled": False}}}
    ),
)
schema.app = TARGET
schema.auth(refresh_interval=None)(BearerKeys)


@schema.hook
def flatmap_case(context: schemathesis.HookContext, case: Case) -> st.SearchStrategy[Case]:
    return sometimes_aimed(case)


@pytest.fixture
async def fuzz_world(attune: Attune) -> FuzzWorld:
    return await build_world(attune)


@pytest.fixture
def fuzz_target(settings: Settings, fuzz_world: FuzzWorld) -> Iterator[Target]:
    # An app instance of its own on the suite's database: schemathesis runs it on its own event
    # loop in a worker thread, starts its lifespan on the first request and (its pytest plugin)
    # ends it when the test ends.
    TARGET.app = create_app(settings)
    TARGET.world = fuzz_world
    yield TARGET
    TARGET.app = TARGET.world = None


@pytest.mark.fuzz
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=_CONFIGURED is None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_every_operation_answers_as_documented(case: Case, fuzz_target: Target) -> None:
    case.call_and_validate()
