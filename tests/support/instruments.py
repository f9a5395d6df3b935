"""Instrument definitions an organisation publishes in the tests."""

from typing import Any

LOCAL: dict[str, Any] = {
    "code": "bdi-local", "version": "1", "name": "Local depression inventory", "kind": "symptom",
    "respondents": ["client"],
    "items": [{"id": "score", "label": "Total score", "min": 0, "max": 63, "step": 1}],
    "subscales": {},
    "direction": "lower_is_better",
    "cutoff": 14,
    "reliable_change": 7,
    "bands": [{"max": 13, "label": "minimal"}, {"max": 19, "label": "mild"},
              {"max": 63, "label": "severe"}],
    "risk_items": [],
    "citation": "Local adaptation.", "license": "used under the organisation's own licence",
}  # fmt: skip
