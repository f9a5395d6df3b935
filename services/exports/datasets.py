"""What each export dataset holds, and how a stored row becomes an export row (pure).

Three datasets:
- ``submissions``: one row per submission, with its answers and scores;
- ``scores``: one row per submission and score: the total, the mean and each subscale;
- ``alerts``: one row per alert, with its lifecycle.

De-identified (the default), a row carries no id, external id, date or free text: ids become
stable keyed pseudonyms (`services.exports.pseudonyms`) in the same ``*_id`` columns as the
identified export's ids, raters' labels too; dates become
``days_since_episode_start`` (UTC calendar days from the episode's start to the session, or to
the alert), and the alert lifecycle becomes durations (``hours_to_acknowledge``,
``hours_to_resolve``); free text (void reasons, alert messages and notes) and a concern's evidence
are left out. Identified rows carry the ids, external ids, timestamps and text instead.

The columns are fixed per (dataset, identified), so CSV and Parquet have a schema whatever the
instruments: answers and subscales are JSON objects of numbers (nested in NDJSON, JSON text in
CSV, maps of string to double in Parquet); an alert's parameters and evidence are JSON objects
of any shape (nested in NDJSON, JSON text in CSV and Parquet). The client and clinician are the
episode's at the time of the pull.
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, get_args

from services.exports.pseudonyms import Pseudonyms

Dataset = Literal["submissions", "scores", "alerts"]
DATASETS: tuple[str, ...] = get_args(Dataset)
# "numbers": a JSON object of numbers (or nulls) by name: answers by item, subscales by name.
ColumnKind = Literal["str", "int", "float", "bool", "timestamp", "json", "numbers"]
JSON_KINDS = frozenset({"json", "numbers"})
CONCERN = "concern.reported"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: ColumnKind


def _columns(spec: str) -> tuple[Column, ...]:
    """``"name:kind name:kind ..."`` → columns."""
    out = []
    for item in spec.split():
        name, _, kind = item.partition(":")
        assert kind in get_args(ColumnKind), item
        out.append(Column(name, kind))  # type: ignore[arg-type]
    return tuple(out)


# The columns that name people and objects: pseudonyms when de-identified, ids when identified.
# One naming in both modes (an analyst's code reads either): de-identified, the *_id columns hold
# pseudonyms.
_KEYS = "episode_id:str client_id:str clinician_id:str"
_IDS = (
    "episode_id:str client_id:str clinician_id:str client_external_id:str clinician_external_id:str"
)
_SERIES = (
    "population:str instrument:str instrument_version:str session_number:int respondent:str "
    "rater:str status:str days_since_episode_start:int"
)
_SCORES = (
    "total:float mean:float band:str below_cutoff:bool clinical:bool subscales:numbers "
    "answers:numbers"
)
_SUBMISSION_TIMES = "occurred_at:timestamp created_at:timestamp voided_at:timestamp void_reason:str"
_ALERT = (
    "type:str severity:str status:str resolution:str instrument:str respondent:str rater:str "
    "subscale:str session_number:int rule_version:str rule_params:json evidence:json "
    "days_since_episode_start:int hours_to_acknowledge:float hours_to_resolve:float"
)
_ALERT_TIMES = (
    "message:str note:str created_at:timestamp updated_at:timestamp "
    "acknowledged_at:timestamp resolved_at:timestamp"
)

COLUMNS: dict[tuple[str, bool], tuple[Column, ...]] = {
    ("submissions", False): _columns(f"submission_id:str {_KEYS} {_SERIES} {_SCORES}"),
    ("submissions", True): _columns(
        f"submission_id:str {_IDS} {_SERIES} {_SCORES} {_SUBMISSION_TIMES} changed_at:timestamp"
    ),
    ("scores", False): _columns(
        f"submission_id:str {_KEYS} {_SERIES} score:str subscale:str value:float"
    ),
    ("scores", True): _columns(
        f"submission_id:str {_IDS} {_SERIES} score:str subscale:str value:float "
        "occurred_at:timestamp created_at:timestamp changed_at:timestamp"
    ),
    ("alerts", False): _columns(f"alert_id:str {_KEYS} submission_id:str {_ALERT}"),
    ("alerts", True): _columns(f"alert_id:str {_IDS} submission_id:str {_ALERT} {_ALERT_TIMES}"),
}


def columns(dataset: str, *, identified: bool) -> tuple[Column, ...]:
    return COLUMNS[(dataset, identified)]


def days_between(start: date | None, at: datetime | None) -> int | None:
    """Whole UTC calendar days from ``start`` to the day of ``at``."""
    if start is None or at is None:
        return None
    return (at.date() - start).days


def hours_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / 3600, 2)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


Shaper = Callable[[Iterable[Any]], Iterator[tuple[Any, ...]]]


class Shapers:
    """Turns stored rows (objects with the attributes the export query selects) into export rows
    whose values follow `columns(dataset, identified)`."""

    def __init__(self, pseudonyms: Pseudonyms, *, identified: bool) -> None:
        self._p = pseudonyms
        self._identified = identified
        # An episode's three pseudonyms, computed once per episode (bounded like the pseudonyms').
        self._episodes: dict[tuple[Any, Any], tuple[Any, ...]] = {}

    def for_dataset(self, dataset: str) -> Shaper:
        shapers: dict[str, Shaper] = {
            "submissions": self.submissions,
            "scores": self.scores,
            "alerts": self.alerts,
        }
        return shapers[dataset]

    def _people(self, r: Any) -> tuple[Any, ...]:
        if self._identified:
            return (
                _str(r.episode_id),
                _str(r.client_id),
                _str(r.clinician_id),
                r.client_external_id,
                r.clinician_external_id,
            )
        key = (r.episode_id, r.clinician_id)
        found = self._episodes.get(key)
        if found is None:
            if len(self._episodes) >= 65_536:
                self._episodes.clear()
            of = self._p.of
            found = self._episodes[key] = (
                of("episode", r.episode_id),
                of("client", r.client_id),
                of("clinician", r.clinician_id),
            )
        return found

    def _rater(self, rater: str) -> str | None:
        if self._identified:
            return rater or None
        return self._p.repeated("rater", rater)

    def _series(self, r: Any) -> tuple[Any, ...]:
        rater, at = r.rater, r.event_at
        return (
            r.population,
            r.instrument,
            r.instrument_version,
            r.session_number,
            r.respondent,
            self._rater(rater) if rater else None,
            r.status,
            None if at is None else (at.date() - r.started_on).days,
        )

    def submissions(self, rows: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
        identified = self._identified
        for r in rows:
            key = _str(r.id) if identified else self._p.of("submission", r.id)
            out = (
                key,
                *self._people(r),
                *self._series(r),
                r.total,
                r.mean,
                r.band,
                r.below_cutoff,
                r.clinical,
                r.subscales,
                r.answers,
            )
            if identified:
                out += (r.occurred_at, r.created_at, r.voided_at, r.void_reason, r.changed_at)
            yield out

    def scores(self, rows: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
        """Rows carry ``scores``: the stored scores object (total, mean, subscales)."""
        identified = self._identified
        for r in rows:
            key = _str(r.id) if identified else self._p.of("submission", r.id)
            head = (key, *self._people(r), *self._series(r))
            tail = (r.occurred_at, r.created_at, r.changed_at) if identified else ()
            scores = r.scores or {}
            yield (*head, "total", None, scores.get("total"), *tail)
            yield (*head, "mean", None, scores.get("mean"), *tail)
            for name, value in (scores.get("subscales") or {}).items():
                yield (*head, "subscale", name, value, *tail)

    def alerts(self, rows: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
        identified = self._identified
        for r in rows:
            if identified:
                key, submission = _str(r.id), _str(r.submission_id)
            else:
                key = self._p.of("alert", r.id)
                submission = self._p.of("submission", r.submission_id)
            out = (
                key,
                *self._people(r),
                submission,
                r.type,
                r.severity,
                r.status,
                r.resolution,
                r.instrument or None,
                r.respondent or None,
                self._rater(r.rater),
                r.subscale or None,
                r.session_number,
                r.rule_version,
                r.rule_params,
                # A concern's evidence names what the client raised: never de-identified.
                None if r.type == CONCERN and not identified else r.evidence,
                days_between(r.started_on, r.created_at),
                hours_between(r.created_at, r.acknowledged_at),
                hours_between(r.created_at, r.resolved_at),
            )
            if identified:
                out += (
                    r.message,
                    r.note,
                    r.created_at,
                    r.updated_at,
                    r.acknowledged_at,
                    r.resolved_at,
                )
            yield out
