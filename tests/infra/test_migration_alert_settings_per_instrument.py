"""The migration to per-instrument alert-rule settings (DESIGN.md §10.2), run for real: the schema
is built with ``alembic upgrade`` to the revision before it, old-style rows are stored, and the
upgrade carries them over or stops naming the organisation and the rule. SQLite in a file of its
own; PostgreSQL in a schema of its own in the test database."""

import asyncio
import json
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy.dialects.postgresql import JSONB

from alembic import command
from tests.support.migrations import alembic_config, execute, revision_before

REVISION = "9d3b8e4f5a61"


def _config(url: str, schema: str | None) -> Config:
    return alembic_config(url, schema)


def _previous(config: Config) -> str:
    return revision_before(config, REVISION)


_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_ORGS = sa.table(
    "organizations", sa.column("id", sa.Uuid()), sa.column("name", sa.String()),
    sa.column("slug", sa.String()), sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("export_secret", sa.String()),
)  # fmt: skip
_SETTINGS = sa.table(
    "alert_rule_settings", sa.column("org_id", sa.Uuid()), sa.column("rule_id", sa.String()),
    sa.column("body", _JSON), sa.column("updated_at", sa.DateTime(timezone=True)),
)  # fmt: skip
_INSTRUMENTS = sa.table(
    "instrument_definitions", sa.column("id", sa.Uuid()), sa.column("org_id", sa.Uuid()),
    sa.column("code", sa.String()), sa.column("version", sa.String()),
    sa.column("definition", _JSON), sa.column("created_at", sa.DateTime(timezone=True)),
)  # fmt: skip


def _store(
    url: str,
    schema: str | None,
    orgs: list[tuple[str, uuid.UUID, dict[str, dict[str, Any]]]],
    instruments: Sequence[tuple[uuid.UUID, dict[str, Any]]] = (),
) -> None:
    now = datetime.now(UTC)
    statements: list[Any] = []
    for slug, org_id, rules in orgs:
        statements.append(
            _ORGS.insert().values(
                id=org_id, name=slug, slug=slug, created_at=now, export_secret=secrets.token_hex(32)
            )
        )
        for rule_id, body in rules.items():
            statements.append(
                _SETTINGS.insert().values(org_id=org_id, rule_id=rule_id, body=body, updated_at=now)
            )
    for org_id, definition in instruments:
        statements.append(
            _INSTRUMENTS.insert().values(
                id=uuid.uuid4(), org_id=org_id, code=definition["code"], version="1",
                definition=definition, created_at=now,
            )
        )  # fmt: skip
    asyncio.run(execute(url, schema, *statements))


def _bodies(url: str, schema: str | None) -> dict[tuple[str, str], Any]:
    (rows,) = asyncio.run(
        execute(
            url, schema,
            "SELECT o.slug, s.rule_id, s.body FROM alert_rule_settings s "
            "JOIN organizations o ON o.id = s.org_id",
        )
    )  # fmt: skip
    return {(slug, rule): json.loads(b) if isinstance(b, str) else b for slug, rule, b in rows}


BOND_LOCAL = {
    "code": "bond-local", "version": "1", "name": "Local bond", "kind": "alliance",
    "respondents": ["client"],
    "items": [{"id": "a", "label": "a", "min": 0, "max": 5, "step": 1},
              {"id": "b", "label": "b", "min": 0, "max": 5, "step": 1}],
    "direction": "higher_is_better", "cutoff": 6, "citation": "t", "license": "t",
}  # fmt: skip


def test_old_overrides_are_carried_to_the_instruments_they_apply_to(
    blank_database: tuple[str, str | None],
) -> None:
    url, schema = blank_database
    config = _config(url, schema)
    command.upgrade(config, _previous(config))
    org_id = uuid.uuid4()
    _store(
        url, schema,
        [("clinic", org_id, {
            "alliance.low": {"params": {"cutoff": 34}},
            "alliance.drop": {"enabled": False, "params": {"min_drop": 2}},
            "alliance.rupture": {"params": {"k": 1.5, "min_drop": 8}},
            "risk.item": {"params": {"thresholds": {"phq-9": {"q9": 1}}}},
            "outcome.not_on_track": {"params": {"min_session": 5}},
        })],
        [(org_id, BOND_LOCAL)],
    )  # fmt: skip
    command.upgrade(config, "head")
    bodies = _bodies(url, schema)
    # 34 lies on the SRS scale; bond-local (0-10) has a cut-off but 34 is off its scale; the
    # WAI-SR has no cut-off, so the old value never meant anything there.
    assert bodies["clinic", "alliance.low"] == {"instruments": {"srs": {"cutoff": 34}}}
    assert bodies["clinic", "alliance.drop"] == {
        "enabled": False, "instruments": {"srs": {"min_drop": 2}},
    }  # fmt: skip
    assert bodies["clinic", "alliance.rupture"] == {
        "params": {"k": 1.5},
        # Every alliance total whose range holds 8 (bond-local: 0-10 took part with it before).
        "instruments": {
            "bond-local": {"min_drop": 8},
            "srs": {"min_drop": 8},
            "wai-sr": {"min_drop": 8},
        },
    }
    assert bodies["clinic", "risk.item"] == {"instruments": {"phq-9": {"thresholds": {"q9": 1}}}}
    assert bodies["clinic", "outcome.not_on_track"] == {"params": {"min_session": 5}}

    # What was carried is what the API now accepts.
    from services.alerts import validate_override
    from services.instruments import InstrumentDefinition, builtin_instruments

    catalog = {
        **builtin_instruments(),
        "bond-local": InstrumentDefinition.model_validate(BOND_LOCAL),
    }
    for (_, rule_id), body in bodies.items():
        validate_override(rule_id, body, catalog)


@pytest.mark.parametrize(
    ("rule_id", "body", "reason"),
    [
        ("risk.item", {"params": {"thresholds": {"phq-9": {"q9": 3}}}}, "may only be lowered"),
        ("risk.item", {"params": {"thresholds": {"phq-9": {"q1": 1}}}}, "not a risk item"),
        ("alliance.low", {"params": {"cutoff": 1000}}, "cutoff 1000"),
        ("alliance.drop", {"params": {"min_drop": 50}}, "min_drop 50"),
        ("alliance.rupture", {"params": {"min_drop": 100}}, "min_drop 100"),
    ],
)
def test_overrides_without_a_valid_meaning_stop_the_upgrade_naming_org_and_rule(
    blank_database: tuple[str, str | None], rule_id: str, body: dict[str, Any], reason: str
) -> None:
    url, schema = blank_database
    config = _config(url, schema)
    command.upgrade(config, _previous(config))
    _store(url, schema, [("north-clinic", uuid.uuid4(), {rule_id: body})])
    with pytest.raises(RuntimeError) as info:
        command.upgrade(config, "head")
    message = str(info.value)
    assert f"organization 'north-clinic', rule '{rule_id}'" in message
    assert reason in message
    assert _bodies(url, schema)["north-clinic", rule_id] == body  # nothing half-done


def test_stored_instruments_whose_risk_item_could_be_skipped_stop_the_upgrade(
    blank_database: tuple[str, str | None],
) -> None:
    url, schema = blank_database
    config = _config(url, schema)
    command.upgrade(config, _previous(config))
    org_id = uuid.uuid4()
    prorated = {
        "code": "phq-local", "version": "1", "name": "PHQ clone", "kind": "symptom",
        "respondents": ["client"],
        "items": [{"id": f"q{i}", "label": "q", "min": 0, "max": 3, "step": 1}
                  for i in range(1, 10)],
        "scoring": {"method": "sum", "max_missing_prorated": 2},
        "direction": "lower_is_better",
        "risk_items": [{"item": "q9", "threshold": 1, "label": "Item 9"}],
        "citation": "t", "license": "t",
    }  # fmt: skip
    _store(url, schema, [("south-clinic", org_id, {})], [(org_id, prorated)])
    with pytest.raises(RuntimeError, match="organization 'south-clinic', instrument 'phq-local'"):
        command.upgrade(config, "head")
