"""A Frictionless data package for each export (pure): what every column holds, typed, so pandas,
DuckDB, R and `frictionless validate` read an export as it is meant (Table Schema,
https://specs.frictionlessdata.io/table-schema/). `GET /v1/exports/{dataset}/datapackage.json`
serves it; saved beside the CSV export (same folder, the export's file name), it describes it.

`instrument_version` is a string ("3.0", "1"): without a schema every reader takes it for a
number, which loses "3.0" and sorts "10" before "9". JSON columns are Table Schema `object`s:
JSON text in CSV, nested in NDJSON, maps or JSON text in Parquet (`services.exports.encoders`).
"""

from pydantic import JsonValue

from services.exports.datasets import Column, ColumnKind, columns

TABLE_SCHEMA_TYPES: dict[ColumnKind, str] = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "timestamp": "datetime",
    "json": "object",
    "numbers": "object",
}

_PSEUDONYM = " De-identified: a stable pseudonym (HMAC-SHA256 under the organisation's own secret)."
DESCRIPTIONS: dict[str, str] = {
    "submission_id": "The submission (one instrument completed for one session)." + _PSEUDONYM,
    "alert_id": "The alert." + _PSEUDONYM,
    "episode_id": "The episode of care." + _PSEUDONYM,
    "client_id": "The client of the episode." + _PSEUDONYM,
    "clinician_id": "The clinician the episode is with, at the time of the export." + _PSEUDONYM,
    "client_external_id": "The client's id in the organisation's own system (identified only).",
    "clinician_external_id": "The clinician's id in the organisation's own system.",
    "population": "The client's norm population (adult, adolescent, child).",
    "instrument": "Instrument code, e.g. srs, ors, phq9.",
    "instrument_version": "Version of the instrument definition: text, not a number.",
    "session_number": "The session of the episode the rating is for (1 = first).",
    "respondent": "Who rated: client, clinician or collateral.",
    "rater": "A collateral rater's label, when several rate." + _PSEUDONYM,
    "status": "valid or voided (submissions); open, acknowledged or resolved (alerts).",
    "days_since_episode_start": "Whole UTC days from the episode's start to the rating/alert.",
    "total": "The instrument's total score, on its own scale; empty when not scored.",
    "mean": "The mean item score; empty when the instrument has none.",
    "band": "The severity band of the total, from the instrument definition.",
    "below_cutoff": "Whether the total is below the clinical cut-off for this respondent.",
    "clinical": "Whether the total is in the clinical range (direction-aware).",
    "subscales": "Subscale scores by name (JSON object).",
    "answers": "The answers by item id (JSON object); an item left blank is absent or null.",
    "occurred_at": "When the session took place, as recorded (UTC).",
    "created_at": "When the row was created in Attune (UTC).",
    "voided_at": "When the submission was voided (UTC); empty if valid.",
    "void_reason": "Why the submission was voided (free text; identified only).",
    "changed_at": "When the row last changed: the export window is on this (UTC).",
    "score": "Which score the row holds: total, mean or subscale.",
    "subscale": "The subscale's name (score = subscale) or the alert's subscale.",
    "value": "The score's value, on the instrument's scale.",
    "type": "The alert rule, e.g. risk.item, alliance.rupture, outcome.not_on_track.",
    "severity": "warning, high or critical.",
    "resolution": "How a resolved alert was closed (repaired, discussed, referred, ...).",
    "rule_version": "Version of the rule that raised the alert.",
    "rule_params": "The rule's effective parameters when it fired (JSON object).",
    "evidence": "What the rule saw (JSON object); left out for concerns when de-identified.",
    "hours_to_acknowledge": "Hours from the alert to its acknowledgement; empty if none.",
    "hours_to_resolve": "Hours from the alert to its resolution; empty if unresolved.",
    "message": "The alert's message (identified only).",
    "note": "The clinician's note on the alert (free text; identified only).",
    "updated_at": "When the alert last changed (UTC).",
    "acknowledged_at": "When the alert was acknowledged (UTC).",
    "resolved_at": "When the alert was resolved (UTC).",
}
# Never empty in any row (Table Schema `required`).
REQUIRED = frozenset(
    {"submission_id", "alert_id", "episode_id", "client_id", "clinician_id", "instrument",
     "instrument_version", "session_number", "respondent", "status", "score", "type", "severity"}
)  # fmt: skip


def field(column: Column) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {
        "name": column.name,
        "type": TABLE_SCHEMA_TYPES[column.kind],
        "description": DESCRIPTIONS[column.name],
    }
    if column.kind == "bool":
        # What the CSV export writes (R's read.csv, pandas and DuckDB read these as logical).
        out["trueValues"], out["falseValues"] = ["TRUE"], ["FALSE"]
    if column.kind == "timestamp":
        out["format"] = "any"  # ISO 8601 with offset, microseconds when there are any
    if column.name in REQUIRED:
        out["constraints"] = {"required": True}
    return out


def package(dataset: str, *, identified: bool, filename: str) -> dict[str, JsonValue]:
    """The data package of one export: one tabular resource, the CSV export as ``filename``."""
    mode = "identified" if identified else "de-identified"
    return {
        "profile": "tabular-data-package",
        "name": f"attune-{dataset}-{mode}",
        "title": f"Attune export: {dataset} ({mode})",
        "resources": [
            {
                "profile": "tabular-data-resource",
                "name": f"attune-{dataset}",
                "path": filename,
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "dialect": {
                    "delimiter": ",",
                    "lineTerminator": "\r\n",
                    "quoteChar": '"',
                    "doubleQuote": True,
                    "header": True,
                },
                "schema": {
                    "fields": [field(c) for c in columns(dataset, identified=identified)],
                    "missingValues": [""],
                },
            }
        ],
    }
