"""FHIR search parameters as Attune filters: references, tokens, dates, paging; and strict
handling of what a search asks (`Search`)."""

import base64
import binascii
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from urllib.parse import urlencode

from services.fhir.codes import CS_ALERT_TYPE, CS_SCORE, LOINC

MAX_COUNT = 500
DEFAULT_COUNT = 50


class SearchError(ValueError):
    """A search parameter that cannot be understood; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        super().__init__(message)


T = TypeVar("T")


@dataclass(frozen=True)
class Param:
    """A search parameter a resource type supports: the modifiers it takes, and whether it may
    be given more than once (repeats are ANDed; a parameter whose repeats the server cannot AND
    says so: alternatives go in one value, comma-separated)."""

    modifiers: frozenset[str] = frozenset()
    repeats: bool = True


@dataclass
class Search:
    """A search's query judged against what its resource type supports (DESIGN.md §10.6, issue
    14 finding 3). An unknown parameter or modifier, a repeat that cannot be applied, or a value
    that cannot be → `SearchError` naming it; with ``lenient`` (``Prefer: handling=lenient``) it
    is left out instead. Either way `applied` holds exactly the parameters that filter, in the
    order given, for the Bundle's ``self`` link: an EHR reading it never believes a filter held
    that did not."""

    items: Iterable[tuple[str, str]]
    supported: Mapping[str, Param]
    lenient: bool = False
    _given: dict[str, list[tuple[int, str, str | None, str]]] = field(default_factory=dict)
    _applied: list[tuple[int, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for position, (raw, value) in enumerate(self.items):
            name, colon, modifier = raw.partition(":")
            spec = self.supported.get(name)
            if spec is None:
                self._refuse(raw, "unknown search parameter")
            elif colon and modifier not in spec.modifiers:
                self._refuse(raw, f"unknown modifier :{modifier}")
            elif name in self._given and not spec.repeats:
                self._refuse(raw, "give this parameter once (alternatives: comma-separated)")
            else:
                self._given.setdefault(name, []).append(
                    (position, raw, modifier if colon else None, value)
                )

    def _refuse(self, parameter: str, message: str) -> None:
        if not self.lenient:
            raise SearchError(parameter, message)

    def take(self, name: str, parse: Callable[[str | None, str], T]) -> list[T]:
        """Each value of ``name`` parsed (``parse(modifier, value)``), the ones that cannot be
        refused or, when lenient, left out."""
        out: list[T] = []
        for position, raw, modifier, value in self._given.get(name, []):
            try:
                parsed = parse(modifier, value)
            except SearchError as exc:
                self._refuse(raw, str(exc))
                continue
            out.append(parsed)
            self._applied.append((position, raw, value))
        return out

    def first(self, name: str, parse: Callable[[str | None, str], T]) -> T | None:
        found = self.take(name, parse)
        return found[0] if found else None

    def applied(self, *, without: Iterable[str] = ()) -> list[tuple[str, str]]:
        left_out = set(without)
        return [(raw, value) for _, raw, value in sorted(self._applied) if raw not in left_out]


def query_string(pairs: Iterable[tuple[str, str]]) -> str:
    encoded = urlencode(list(pairs), safe="/:|,")
    return f"?{encoded}" if encoded else ""


def is_lenient(prefer: str | None) -> bool:
    """``Prefer: handling=lenient`` (RFC 7240 preferences, as FHIR search uses them); strict
    otherwise, ``handling=strict`` included."""
    if not prefer:
        return False
    tokens = (t.strip().lower().replace(" ", "") for t in re.split(r"[,;]", prefer))
    return "handling=lenient" in tokens


def patient_reference(parameter: str) -> Callable[[str | None, str], uuid.UUID]:
    """A reference search value: ``Patient/{id}``, a URL ending so, the bare id, or with the
    ``:Patient`` type modifier the id."""

    def parse(modifier: str | None, value: str) -> uuid.UUID:
        if modifier == "Patient" and "/" not in value:
            value = f"Patient/{value}"
        return reference_id(parameter, value, "Patient")

    return parse


def reference_id(parameter: str, value: str, resource_type: str) -> uuid.UUID:
    """``Patient/{id}``, a full URL ending so, or the bare id."""
    parts = value.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] != resource_type:
        raise SearchError(parameter, f"a {resource_type} reference")
    try:
        return uuid.UUID(parts[-1])
    except ValueError:
        raise SearchError(parameter, f"a {resource_type} reference") from None


@dataclass(frozen=True)
class ScoreCode:
    """What an Observation ``code`` token selects: an instrument, and a score of it (None: the
    total when ``total_only``, else any), or a LOINC total code."""

    instrument: str | None
    subscale: str | None
    total_only: bool
    loinc: str | None = None


_TOKEN = re.compile(r"[\x21-\x7e]{1,255}")


def _printable(parameter: str, value: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise SearchError(parameter, "printable characters, at most 255")
    return value


def _tokens(value: str) -> list[tuple[str, str]]:
    """A token search value, ``[system|]code,…``, as (system, code) pairs ('' for no system)."""
    _printable("code", value)
    pairs = []
    for token in value.split(","):
        system, sep, code = token.partition("|")
        pairs.append((system, code) if sep else ("", token))
    return pairs


def score_codes(value: str) -> list[ScoreCode]:
    """``code=system|code,…``: LOINC (a total code), Attune's score system
    (``phq-9.total``, ``wai-sr.bond``), or a bare code of either."""
    out = []
    for system, code in _tokens(value):
        if not code:
            raise SearchError("code", "system|code or code")
        if system not in ("", LOINC, CS_SCORE):
            raise SearchError("code", f"codes of {LOINC} or {CS_SCORE}")
        if system == LOINC or (not system and code[:1].isdigit() and "." not in code):
            out.append(ScoreCode(None, None, True, loinc=code))
            continue
        instrument, dot, score = code.partition(".")
        if not dot:
            out.append(ScoreCode(instrument, None, False))
        elif score == "total":
            out.append(ScoreCode(instrument, None, True))
        else:
            out.append(ScoreCode(instrument, score, False))
    return out


# DetectedIssue.status takes ObservationStatus codes (FHIR R4).
OBSERVATION_STATUS = "http://hl7.org/fhir/observation-status"
ISSUE_STATUSES = frozenset(
    {"registered", "preliminary", "final", "amended", "corrected", "cancelled",
     "entered-in-error", "unknown"}
)  # fmt: skip


def issue_statuses(value: str) -> list[str]:
    out = []
    for system, code in _tokens(value):
        if system not in ("", OBSERVATION_STATUS) or code not in ISSUE_STATUSES:
            raise SearchError(
                "status", "a DetectedIssue status: " + ", ".join(sorted(ISSUE_STATUSES))
            )
        out.append(code)
    return out


def alert_types(value: str) -> list[str]:
    out = []
    for system, code in _tokens(value):
        if system not in ("", CS_ALERT_TYPE) or not code:
            raise SearchError("code", f"codes of {CS_ALERT_TYPE}")
        out.append(code)
    return out


@dataclass(frozen=True)
class DateRange:
    """Half-open bounds: ``start <= t < end`` (either may be open)."""

    start: datetime | None
    end: datetime | None


_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


def date_range(parameter: str, value: str) -> DateRange:
    """A date search value (``ge2026-11``, ``lt2026-11-20T15:00:00Z``, ``2026``) as bounds.
    The value's precision makes it a range: ``2026-11`` is all of November."""
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    raw = value[2:] if value[:2] in _PREFIXES else value
    if prefix not in ("eq", "gt", "lt", "ge", "le"):
        raise SearchError(parameter, "prefixes eq, gt, ge, lt, le")
    low, high = _precision_range(parameter, raw)
    if prefix == "eq":
        return DateRange(low, high)
    if prefix == "ge":
        return DateRange(low, None)
    if prefix == "gt":
        return DateRange(high, None)
    if prefix == "lt":
        return DateRange(None, low)
    return DateRange(None, high)  # le


def _precision_range(parameter: str, raw: str) -> tuple[datetime, datetime]:
    try:
        if len(raw) == 4:
            year = int(raw)
            return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
        if len(raw) == 7:
            year, month = int(raw[:4]), int(raw[5:7])
            start = datetime(year, month, 1, tzinfo=UTC)
            end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
            return start, end
        if len(raw) == 10:
            start = datetime.fromisoformat(raw).replace(tzinfo=UTC)
            return start, start + timedelta(days=1)
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise SearchError(parameter, "a FHIR date or dateTime") from None
    if moment.tzinfo is None or "T" not in raw:
        raise SearchError(parameter, "a dateTime needs a time zone")
    moment = moment.astimezone(UTC)
    step = timedelta(microseconds=1) if moment.microsecond else timedelta(seconds=1)
    return moment, moment + step


def count(value: str | None) -> int:
    if value is None:
        return DEFAULT_COUNT
    try:
        number = int(value)
    except ValueError:
        raise SearchError("_count", f"a whole number from 1 to {MAX_COUNT}") from None
    if not 1 <= number <= MAX_COUNT:
        raise SearchError("_count", f"a whole number from 1 to {MAX_COUNT}")
    return number


def encode_cursor(last: uuid.UUID, skip: int = 0) -> str:
    """An opaque page token: the last row's id and, within it, how many resources were sent."""
    raw = last.bytes + (skip.to_bytes(1, "big") if skip else b"")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[uuid.UUID, int]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        if len(raw) not in (16, 17):
            raise ValueError(value)
        return uuid.UUID(bytes=raw[:16]), raw[16] if len(raw) == 17 else 0
    except (binascii.Error, ValueError):
        raise SearchError("_cursor", "a page token this server issued") from None


# Parameters of every search: ids, identifiers, sorting, totals, includes (issue 17).


def ids(parameter: str, value: str) -> list[uuid.UUID]:
    """``_id=a,b``: any of these ids (every id of this server is a UUID)."""
    out = []
    for token in _printable(parameter, value).split(","):
        try:
            out.append(uuid.UUID(token))
        except ValueError:
            raise SearchError(parameter, "ids of this server (UUIDs), comma-separated") from None
    return out


def identifiers(parameter: str, value: str) -> list[tuple[str, str]]:
    """``identifier=[system|]value,…`` as (system, value) pairs ('' for no system)."""
    pairs = []
    for token in _printable(parameter, value).split(","):
        system, sep, code = token.partition("|")
        if sep and not code:
            raise SearchError(parameter, "system|value or value")
        pairs.append((system, code) if sep else ("", token))
    return pairs


@dataclass(frozen=True)
class Sort:
    key: str
    descending: bool


def sort(parameter: str, value: str, keys: Iterable[str]) -> Sort:
    """``_sort=key`` or ``_sort=-key`` (newest first for dates), on one of ``keys``."""
    allowed = set(keys)
    descending = value.startswith("-")
    key = value[1:] if descending else value
    if key not in allowed or "," in value:
        raise SearchError(parameter, "one of " + ", ".join(sorted(allowed)) + " (- for descending)")
    return Sort(key, descending)


TOTALS = ("none", "estimate", "accurate")


def total(value: str) -> str:
    if value not in TOTALS:
        raise SearchError("_total", "none, estimate or accurate")
    return value


def include(value: str, allowed: Iterable[str]) -> str:
    if value not in set(allowed):
        raise SearchError("_include", "one of " + ", ".join(sorted(allowed)))
    return value


@dataclass(frozen=True)
class PatientRef:
    """A reference search value: a client id, or (``:identifier``) the client's external id."""

    id: uuid.UUID | None = None
    identifier: tuple[str, str] | None = None


def patient_ref(parameter: str) -> Callable[[str | None, str], PatientRef]:
    """`patient_reference`, and with the ``:identifier`` modifier one ``[system|]value``."""
    by_id = patient_reference(parameter)

    def parse(modifier: str | None, value: str) -> PatientRef:
        if modifier == "identifier":
            found = identifiers(parameter, value)
            if len(found) != 1:
                raise SearchError(parameter, "one identifier, [system|]value")
            return PatientRef(identifier=found[0])
        return PatientRef(id=by_id(modifier, value))

    return parse
