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
from typing import Literal, Protocol, TypedDict, get_args

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


def _str(value: object) -> str | None:
    return None if value is None else str(value)


# An export row: its values follow `columns(dataset, identified)`, each as the encoders take it
# (None, a bool, a number, text, a datetime, or a JSON value parsed or as its JSON text).
ExportRow = tuple[object, ...]


class _EpisodeSource(Protocol):
    """What a stored row of every dataset carries of its episode and people (the external ids
    are selected for identified exports only). Values the export passes on unchanged are
    ``object``: as the database returns them."""

    @property
    def episode_id(self) -> object: ...
    @property
    def client_id(self) -> object: ...
    @property
    def clinician_id(self) -> object: ...
    @property
    def client_external_id(self) -> object: ...
    @property
    def clinician_external_id(self) -> object: ...
    @property
    def started_on(self) -> date: ...
    @property
    def id(self) -> object: ...
    @property
    def instrument(self) -> object: ...
    @property
    def respondent(self) -> object: ...
    @property
    def rater(self) -> str: ...
    @property
    def session_number(self) -> object: ...
    @property
    def status(self) -> object: ...


class _SeriesSource(_EpisodeSource, Protocol):
    """A stored submission as the submissions and scores datasets select it."""

    @property
    def population(self) -> object: ...
    @property
    def instrument_version(self) -> object: ...
    @property
    def event_at(self) -> datetime | None: ...
    @property
    def occurred_at(self) -> object: ...
    @property
    def changed_at(self) -> object: ...


class SubmissionSource(_SeriesSource, Protocol):
    """A stored row of the submissions dataset (answers and subscales as JSON text)."""

    @property
    def created_at(self) -> object: ...
    @property
    def total(self) -> object: ...
    @property
    def mean(self) -> object: ...
    @property
    def band(self) -> object: ...
    @property
    def below_cutoff(self) -> object: ...
    @property
    def clinical(self) -> object: ...
    @property
    def subscales(self) -> object: ...
    @property
    def answers(self) -> object: ...
    @property
    def voided_at(self) -> object: ...
    @property
    def void_reason(self) -> object: ...


class StoredScores(TypedDict, total=False):
    """The ``scores`` object of a stored submission, as far as the scores dataset reads it."""

    total: float | None
    mean: float | None
    subscales: dict[str, float | None] | None


class ScoreSource(_SeriesSource, Protocol):
    """A stored row of the scores dataset."""

    @property
    def created_at(self) -> object: ...
    @property
    def scores(self) -> StoredScores | None: ...


class AlertSource(_EpisodeSource, Protocol):
    """A stored row of the alerts dataset: an ``alerts`` row and its episode's people."""

    @property
    def submission_id(self) -> object: ...
    @property
    def type(self) -> object: ...
    @property
    def severity(self) -> object: ...
    @property
    def resolution(self) -> object: ...
    @property
    def subscale(self) -> object: ...
    @property
    def rule_version(self) -> object: ...
    @property
    def rule_params(self) -> object: ...
    @property
    def evidence(self) -> object: ...
    @property
    def message(self) -> object: ...
    @property
    def note(self) -> object: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> object: ...
    @property
    def acknowledged_at(self) -> datetime | None: ...
    @property
    def resolved_at(self) -> datetime | None: ...


class StoredRow(AlertSource, SubmissionSource, ScoreSource, Protocol):
    """A row of the export statement (`services.exports.runner.statement`), whichever the
    dataset: each dataset's shaper reads only what its statement selects."""


Shaper = Callable[[Iterable[StoredRow]], Iterator[ExportRow]]


class Shapers:
    """Turns stored rows (objects with the attributes the export query selects) into export rows
    whose values follow `columns(dataset, identified)`."""

    def __init__(self, pseudonyms: Pseudonyms, *, identified: bool) -> None:
        self._p = pseudonyms
        self._identified = identified
        # An episode's three pseudonyms, computed once per episode (bounded like the pseudonyms').
        self._episodes: dict[tuple[object, object], ExportRow] = {}

    def for_dataset(self, dataset: str) -> Shaper:
        shapers: dict[str, Shaper] = {
            "submissions": self.submissions,
            "scores": self.scores,
            "alerts": self.alerts,
        }
        return shapers[dataset]

    def _people(self, r: _EpisodeSource) -> ExportRow:
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

    def _series(self, r: _SeriesSource) -> ExportRow:
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

    def submissions(self, rows: Iterable[SubmissionSource]) -> Iterator[ExportRow]:
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

    def scores(self, rows: Iterable[ScoreSource]) -> Iterator[ExportRow]:
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

    def alerts(self, rows: Iterable[AlertSource]) -> Iterator[ExportRow]:
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
