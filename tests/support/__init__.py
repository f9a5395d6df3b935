"""Test helpers, once: the API driven as an integrator would (`api`), answers and series
(`answers`), alerts (`alerts`), organisation instruments (`instruments`), webhooks (`webhooks`),
the FHIR facade (`fhir`) and the schema fuzz test's world (`fuzz`). The most used are here."""

from tests.support.answers import items, ors, phq9, srs, totals, wai
from tests.support.api import (
    SYSTEM_KEY,
    TEST_SECRET,
    Attune,
    Tenant,
    assert_audit_events_carry_no_content,
    bearer,
    expect,
    submit,
)

__all__ = [
    "SYSTEM_KEY",
    "TEST_SECRET",
    "Attune",
    "Tenant",
    "assert_audit_events_carry_no_content",
    "bearer",
    "expect",
    "items",
    "ors",
    "phq9",
    "srs",
    "submit",
    "totals",
    "wai",
]
