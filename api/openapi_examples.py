"""An example of every schema the OpenAPI document names (issue 17): what a generated client's
docs and an integrator's first request start from. One story runs through them: client C-1042
rates session 4 with the SRS, the total of 35.3 is below the cut-off of 36, and an
`alliance.low` alert opens. tests/api/test_openapi.py checks that every schema an operation uses
has one, and that each is valid against its schema.

Instrument examples are the built-in definitions themselves (services/instruments/definitions/),
so they can never drift from what the service serves."""

from typing import Any

from services.alerts.settings import RULES
from services.exports import datapackage
from services.instruments.registry import get_builtin

ORG_ID = "3f2b9c4e-8a1d-4e6f-9b7a-1c2d3e4f5a60"
CLIENT_ID = "5d1e7a2b-3c4f-4a8b-9e0d-6f7a8b9c0d11"
CLINICIAN_ID = "7a9b0c1d-2e3f-4a5b-8c6d-e7f8a9b0c122"
EPISODE_ID = "9c0d1e2f-3a4b-4c5d-8e6f-a7b8c9d0e133"
SUBMISSION_ID = "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d44"
ALERT_ID = "c2d3e4f5-a6b7-4c8d-9e0f-1a2b3c4d5e55"
KEY_ID = "d3e4f5a6-b7c8-4d9e-8f0a-2b3c4d5e6f66"
INVITATION_ID = "e4f5a6b7-c8d9-4e0f-9a1b-3c4d5e6f7a77"
WEBHOOK_ID = "f5a6b7c8-d9e0-4f1a-8b2c-4d5e6f7a8b88"
EVENT_ID = "a6b7c8d9-e0f1-4a2b-9c3d-5e6f7a8b9c99"
EXPORT_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3caa"
FIT_ID = "1b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4dbb"
CONCERN_ID = "2c3d4e5f-6a7b-4c8d-8e9f-1a2b3c4d5ecc"
SMART_CLIENT_ID = "4e5f6a7b-8c9d-4e0f-9a1b-3c4d5e6f7aee"
AT = "2026-11-20T15:05:00+00:00"
OCCURRED = "2026-11-20T15:00:00+00:00"


def _definition(code: str) -> dict[str, Any]:
    return get_builtin(code).model_dump(mode="json", exclude_none=True)


def _page(item: dict[str, Any]) -> dict[str, Any]:
    return {"items": [item], "next_cursor": None}


SRS = _definition("srs")
PHQ9 = _definition("phq-9")
RUPTURE_CHECK = _definition("rupture-check")
ORS = _definition("ors")
ITEM_DISPLAY = {
    "text": "How well did you feel heard today?",
    "min_label": "Not at all",
    "max_label": "Completely",
}
ANSWERS = {"relationship": 9.1, "goals_topics": 8.4, "approach_method": 9.0, "overall": 8.8}
SCORES = {
    "total": 35.3,
    "mean": 8.825,
    "subscales": {},
    "band": None,
    "below_cutoff": True,
    "clinical": None,
    "risk_flags": [],
}
ALERT_RULE = {"id": "alliance.low", "version": RULES["alliance.low"].version, "params": {}}
ALERT = {
    "id": ALERT_ID,
    "type": "alliance.low",
    "severity": "warning",
    "status": "open",
    "resolution": None,
    "episode_id": EPISODE_ID,
    "client_id": CLIENT_ID,
    "clinician_id": CLINICIAN_ID,
    "instrument": "srs",
    "respondent": "client",
    "rater": None,
    "subscale": None,
    "session_number": 4,
    "submission_id": SUBMISSION_ID,
    "message": "SRS total 35.3 is below the cut-off of 36: a possible problem in the working "
    "relationship.",
    "evidence": {
        "current": 35.3,
        "cutoff": 36,
        "population": "adult",
        "direction": "higher_is_better",
        "sessions": [4],
    },
    "rule": ALERT_RULE,
    "created_at": AT,
    "updated_at": AT,
    "acknowledged_at": None,
    "resolved_at": None,
    "note": None,
    "escalated_at": None,
    "concern": None,
}
ALERT_IN_SUBMISSION = ALERT | {"change": "created"}
SUBMISSION = {
    "id": SUBMISSION_ID,
    "episode_id": EPISODE_ID,
    "instrument": "srs",
    "instrument_version": SRS["version"],
    "session_number": 4,
    "occurred_at": OCCURRED,
    "respondent": "client",
    "rater": None,
    "status": "valid",
    "answers": ANSWERS,
    "scores": SCORES,
    "alerts": [ALERT_IN_SUBMISSION],
    "created_at": AT,
    "voided_at": None,
    "void_reason": None,
}
API_KEY = {
    "id": KEY_ID,
    "org_id": ORG_ID,
    "name": "EHR integration",
    "prefix": "att_Zx81",
    "scopes": ["clients:read", "clients:write", "submissions:write"],
    "clinician_id": None,
    "created_at": AT,
    "revoked_at": None,
}
CLIENT = {
    "id": CLIENT_ID,
    "external_id": "C-1042",
    "population": "adult",
    "birth_year": 1988,
    "created_at": AT,
    "updated_at": AT,
}
CLINICIAN = {
    "id": CLINICIAN_ID,
    "display_name": "Dr. Ana Ruiz",
    "external_id": "P-17",
    "created_at": AT,
}
EPISODE = {
    "id": EPISODE_ID,
    "client_id": CLIENT_ID,
    "clinician_id": CLINICIAN_ID,
    "status": "active",
    "started_on": "2026-10-02",
    "ended_on": None,
    "created_at": AT,
    "updated_at": AT,
}
AUDIT_EVENT = {
    "id": "5f6a7b8c-9d0e-4f1a-8b2c-4d5e6f7a8bff",
    "key_id": KEY_ID,
    "action": "submission.create",
    "resource_type": "submission",
    "resource_id": SUBMISSION_ID,
    "outcome": "success",
    "client_address": "203.0.113.7",
    "occurred_at": AT,
    "details": None,
}
INVITATION = {
    "id": INVITATION_ID,
    "episode_id": EPISODE_ID,
    "session_number": 4,
    "instruments": ["srs"],
    "status": "active",
    "expires_at": "2026-11-23T15:05:00+00:00",
    "created_at": AT,
    "revoked_at": None,
}
JWKS = {
    "keys": [
        {
            "kty": "EC",
            "crv": "P-384",
            "kid": "ehr-2026",
            "alg": "ES384",
            "x": "nVtK2d3PUhr9ZXaLj1Pp4WGaSu0oZcvFzSVOXpkLtT2yqGCcg6aGVs6ez4ONlr8g",
            "y": "TrHNyH2z2wKfbY8dYzgT-9tp8lHz0eKQLxYr8xFFjuUKyD5HdCjp76q7mQ1fpTD6",
        }
    ]
}
SMART_CLIENT = {
    "client_id": SMART_CLIENT_ID,
    "name": "Northside EHR",
    "jwks": JWKS,
    "scopes": ["clients:read", "submissions:read", "submissions:write"],
    "clinician_id": None,
    "created_at": AT,
    "token_url": "https://attune.example.org/auth/token",
}
WEBHOOK = {
    "id": WEBHOOK_ID,
    "url": "https://ehr.example.org/attune/events",
    "description": "Alerts into the EHR inbox",
    "event_types": ["alert.created", "alert.updated", "alert.resolved"],
    "enabled": True,
    "disabled_reason": None,
    "consecutive_failures": 0,
    "created_at": AT,
    "receives_concerns": False,
}
WEBHOOK_ATTEMPT = {
    "attempted_at": AT,
    "status_code": 204,
    "error": None,
    "duration_ms": 87,
}
WEBHOOK_DELIVERY = {
    "id": "6a7b8c9d-0e1f-4a2b-9c3d-5e6f7a8b9c00",
    "event_id": EVENT_ID,
    "event_type": "alert.created",
    "episode_id": EPISODE_ID,
    "status": "delivered",
    "attempts": 1,
    "next_attempt_at": None,
    "delivered_at": AT,
    "last_status_code": 204,
    "last_error": None,
    "created_at": AT,
    "attempt_log": [WEBHOOK_ATTEMPT],
}
RULE_SETTING = {
    "rule_id": "alliance.low",
    "version": RULES["alliance.low"].version,
    "enabled": True,
    "can_disable": RULES["alliance.low"].can_disable,
    "severity": RULES["alliance.low"].severity,
    "clears": RULES["alliance.low"].clears,
    "summary": RULES["alliance.low"].summary,
    "params": {},
    "instruments": {"srs": {"cutoff": 36}},
    "sources": {"instruments.srs.cutoff": "default"},
    "updated_at": None,
}
EXPECTED_SCORE = {"session": 2, "p10": 18.0, "p50": 23.5, "p90": 29.0}
INTAKE_RANGE = {"intake_min": 0.0, "intake_max": 20.0}
INTAKE_BAND = INTAKE_RANGE | {"sessions": [EXPECTED_SCORE], "n_episodes": 412, "coverage": 0.8}
SUDDEN_CHANGE = {"from_session": 2, "to_session": 3, "change": 6.2}
RUPTURE = {"session_number": 4, "subscale": None, "drop": 2.1, "repaired_at_session": None}
CUTOFFS = {"a": 17.4, "b": 33.6, "c": 25.0}
PAIRED = {
    "instruments": ["ors", "srs"],
    "first_session": 1,
    "last_session": 4,
    "n_paired": 4,
    "case_at_first": True,
    "case_at_last": False,
    "reliable_improvement": True,
    "reliable_deterioration": False,
    "recovery": True,
    "reliable_recovery": True,
}
TRAJECTORY_POINT = {
    "session_number": 4,
    "occurred_at": OCCURRED,
    "total": 35.3,
    "subscales": {},
    "change_from_previous": -2.1,
    "change_from_first": 1.2,
    "reliable_change": "none",
    "clinical": True,
    "rci": 0.4,
    "expected": {"p10": 30.1, "p50": 35.8, "p90": 38.9},
}
TRAJECTORY_SUMMARY = {
    "classification": "unchanged",
    "sudden_gains": [],
    "sudden_losses": [SUDDEN_CHANGE | {"change": -2.1, "from_session": 3, "to_session": 4}],
    "ruptures": [RUPTURE],
    "first_session": 1,
    "latest_session": 4,
    "n_points": 4,
    "on_track": None,
    "se": None,
    "s_diff": None,
    "cutoffs": None,
    "paired_caseness": None,
}

# By component schema name.
SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "urn:attune:problem:validation",
        "title": "Invalid input",
        "status": 422,
        "detail": "1 field is invalid",
        "instance": "/v1/submissions",
        "errors": [
            {
                "field": "body.answers.relationship",
                "message": "above the item's maximum of 10",
                "type": "range",
            }
        ],
    },
    "FieldError": {
        "field": "body.answers.relationship",
        "message": "above the item's maximum of 10",
        "type": "range",
    },
    "OrganizationCreate": {"name": "Northside Counselling", "slug": "northside"},
    "OrganizationPublic": {
        "id": ORG_ID,
        "name": "Northside Counselling",
        "slug": "northside",
        "created_at": AT,
    },
    "ApiKeyCreate": {
        "name": "EHR integration",
        "scopes": ["clients:read", "clients:write", "submissions:write"],
    },
    "ApiKeyPublic": API_KEY,
    "ApiKeyCreated": API_KEY | {"key": "att_Zx81q0VfJ2mW9sT4bC7yN3kL6pR8dH1g"},
    "Page_ApiKeyPublic_": _page(API_KEY),
    "ClinicianCreate": {"display_name": "Dr. Ana Ruiz", "external_id": "P-17"},
    "ClinicianPublic": CLINICIAN,
    "Page_ClinicianPublic_": _page(CLINICIAN),
    "ClientCreate": {"external_id": "C-1042", "population": "adult", "birth_year": 1988},
    "ClientUpsert": {"population": "adult", "birth_year": 1988},
    "ClientPublic": CLIENT,
    "ClientWritten": {
        "id": CLIENT_ID,
        "external_id": "C-1042",
        "birth_year": 1988,
        "updated_at": AT,
    },
    "Page_ClientPublic_": _page(CLIENT),
    "EpisodeCreate": {
        "client_id": CLIENT_ID,
        "clinician_id": CLINICIAN_ID,
        "started_on": "2026-10-02",
    },
    "EpisodeUpdate": {"status": "closed", "ended_on": "2027-01-15"},
    "EpisodePublic": EPISODE,
    "Page_EpisodePublic_": _page(EPISODE),
    "InstrumentDefinition": SRS,
    "Item": PHQ9["items"][0],
    "AnswerCode": PHQ9["items"][0]["answer_loinc"][0],
    "Condition": next(i["when"] for i in RUPTURE_CHECK["items"] if "when" in i),
    "ItemDisplay": ITEM_DISPLAY,
    "ItemDisplays": {
        "en": ITEM_DISPLAY,
        "es": {"text": "¿Cuánto te sentiste escuchado hoy?", "min_label": "Nada"},
    },
    "CutoffByRespondent": ORS["cutoff"],
    "CutoffByPopulation": ORS["cutoff"]["client"],
    "ReliableChangeByRespondent": ORS["reliable_change"],
    "Scoring": SRS["scoring"],
    "Band": PHQ9["bands"][0],
    "RiskItem": PHQ9["risk_items"][0],
    "Norms": {"clinical": {"mean": 19.6, "sd": 8.7}, "functional": {"mean": 28.0, "sd": 6.9}},
    "NormGroup": {"mean": 19.6, "sd": 8.7},
    "ReliableChangeFromNorms": {"sd": 6.9, "reliability": 0.87},
    "SubmissionCreate": {
        "episode_id": EPISODE_ID,
        "instrument": "srs",
        "session_number": 4,
        "occurred_at": OCCURRED,
        "respondent": "client",
        "answers": ANSWERS,
    },
    "SubmissionPublic": SUBMISSION,
    "ScoresPublic": SCORES,
    "SubmissionVoid": {"reason": "entered for the wrong session"},
    "Page_SubmissionPublic_": _page(SUBMISSION),
    "AlertPublic": ALERT,
    "AlertInSubmission": ALERT_IN_SUBMISSION,
    "AlertRule": ALERT_RULE,
    "Page_AlertPublic_": _page(ALERT),
    "AlertAcknowledge": {"note": "Discussed at the start of session 5"},
    "AlertResolve": {"resolution": "repaired", "note": "Agreed a change of focus"},
    "ConcernPublic": {
        "id": CONCERN_ID,
        "category": "relationship",
        "message": "I do not feel listened to.",
        "created_at": AT,
    },
    "AlertRuleSettingPublic": RULE_SETTING,
    "AlertRuleUpdate": {"enabled": True, "instruments": {"srs": {"cutoff": 35}}},
    "RecomputedRuleSetting": RULE_SETTING
    | {
        "instruments": {"srs": {"cutoff": 35}},
        "sources": {"instruments.srs.cutoff": "organization"},
        "updated_at": AT,
        "recomputed": {"episodes": 120, "created": 0, "updated": 0, "resolved": 3},
    },
    "Recomputed": {"episodes": 120, "created": 0, "updated": 0, "resolved": 3},
    "Trajectory": {
        "instrument": "srs",
        "cutoff": 36.0,
        "points": [TRAJECTORY_POINT],
        "summary": TRAJECTORY_SUMMARY,
    },
    "TrajectoryPoint": TRAJECTORY_POINT,
    "TrajectorySummary": TRAJECTORY_SUMMARY,
    "ExpectedOut": {"p10": 30.1, "p50": 35.8, "p90": 38.9},
    "SuddenChangeOut": SUDDEN_CHANGE,
    "RuptureOut": RUPTURE,
    "CutoffsOut": CUTOFFS,
    "PairedOutcome": PAIRED,
    "ExpectedResponse": {
        "bands": [INTAKE_BAND],
        "source": "fitted",
        "n_episodes": 412,
        "coverage": 0.8,
    },
    "IntakeBand": INTAKE_BAND,
    "IntakeRange": INTAKE_RANGE,
    "ExpectedScore": EXPECTED_SCORE,
    "FitRequest": {"intake_bands": [INTAKE_RANGE, {"intake_min": 20.0, "intake_max": 40.0}]},
    "ExpectedResponseFitPublic": {
        "id": FIT_ID,
        "instrument": "ors",
        "status": "running",
        "stage": "fitting",
        "progress": 0.4,
        "error": None,
        "created_at": AT,
        "updated_at": AT,
    },
    "AuditEventPublic": AUDIT_EVENT,
    "AuditDetails": {"filters": {"status": "open", "severity": "critical"}},
    "Page_AuditEventPublic_": _page(AUDIT_EVENT),
    "WebhookCreate": {
        "url": "https://ehr.example.org/attune/events",
        "event_types": ["alert.created", "alert.updated", "alert.resolved"],
        "description": "Alerts into the EHR inbox",
    },
    "WebhookPublic": WEBHOOK,
    "WebhookCreated": WEBHOOK | {"secret": "whsec_MfKQ9r8GKYqXoEc1ZbHa2V7uLwqJp3sY"},
    "Page_WebhookPublic_": _page(WEBHOOK),
    "WebhookDeliveryPublic": WEBHOOK_DELIVERY,
    "WebhookAttemptPublic": WEBHOOK_ATTEMPT,
    "Page_WebhookDeliveryPublic_": _page(WEBHOOK_DELIVERY),
    "InvitationCreate": {"instruments": ["srs"], "session_number": 4, "expires_in_hours": 72},
    "InvitationCreated": {
        "id": INVITATION_ID,
        "token": "inv_4mT8qY2vN6pB1xK9cR3sW7hD5gJ0fL2a",
        "url": "https://attune.example.org/r/#inv_4mT8qY2vN6pB1xK9cR3sW7hD5gJ0fL2a",
        "expires_at": "2026-11-23T15:05:00+00:00",
        "episode_id": EPISODE_ID,
        "session_number": 4,
        "instruments": ["srs"],
    },
    "InvitationPublic": INVITATION,
    "Page_InvitationPublic_": _page(INVITATION),
    "InvitationView": {
        "session_number": 4,
        "expires_at": "2026-11-23T15:05:00+00:00",
        "instruments": [SRS],
        "completed": [],
        "remaining": ["srs"],
    },
    "InvitationSubmissionCreate": {"instrument": "srs", "answers": ANSWERS},
    "InvitationReceipt": {
        "id": SUBMISSION_ID,
        "instrument": "srs",
        "instrument_version": SRS["version"],
        "session_number": 4,
        "created_at": AT,
        "remaining": [],
    },
    "ConcernCreate": {"message": "I do not feel listened to.", "category": "relationship"},
    "ConcernReceipt": {"id": CONCERN_ID, "created_at": AT},
    "ExportRun": {
        "id": EXPORT_ID,
        "dataset": "submissions",
        "format": "parquet",
        "identified": False,
        "instrument": None,
        "since": "2026-11-01T00:00:00+00:00",
        "until": AT,
        "source": "primary",
        "status": "complete",
        "rows": 1834,
        "started_at": AT,
        "finished_at": AT,
    },
    "SmartClientCreate": {
        "name": "Northside EHR",
        "jwks": JWKS,
        "scopes": ["clients:read", "submissions:read", "submissions:write"],
    },
    "SmartClientPublic": SMART_CLIENT,
    "Page_SmartClientPublic_": _page(SMART_CLIENT),
}

# Responses whose schema is written inline (no component to carry an example): by operationId
# and media type.
RESPONSES: dict[str, dict[str, Any]] = {
    "healthz": {"application/json": {"status": "ok"}},
    "readyz": {"application/json": {"status": "ready", "database": "ok"}},
    "metrics": {
        "text/plain": "# TYPE attune_http_requests_total counter\n"
        'attune_http_requests_total{method="POST",route="/v1/submissions",status="201"} 1834\n'
    },
    "list_instruments": {"application/json": [SRS, PHQ9]},
    "list_alert_rules": {"application/json": {"items": [RULE_SETTING]}},
    "get_export_datapackage": {
        "application/json": datapackage.package(
            "submissions", identified=False, filename="attune-submissions.csv"
        )
    },
    "get_trajectory_chart": {
        "image/svg+xml": '<svg xmlns="http://www.w3.org/2000/svg" role="img"><title>SRS '
        "by session</title></svg>",
        "application/json": {"$schema": "https://vega.github.io/schema/vega-lite/v5.json"},
    },
    "export_dataset": {
        "application/x-ndjson": '{"submission_id": "sub_8f3a2c", "instrument": "srs", '
        '"instrument_version": "3.0", "session_number": 4, "total": 35.3}\n',
        "text/csv": "submission_id,instrument,instrument_version,session_number,total\r\n"
        "sub_8f3a2c,srs,3.0,4,35.3\r\n",
    },
}
