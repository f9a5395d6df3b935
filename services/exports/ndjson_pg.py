"""The de-identified NDJSON submissions export on PostgreSQL, read straight through asyncpg.

`services.exports.runner` streams every export through SQLAlchemy and shapes and encodes each row
in Python (`services.exports`). Measured on the export benchmark (bench/README.md), that path
spent its time in SQLAlchemy's row and type handling, UUID and datetime conversions, per-row
tuples and dicts, HMACs and JSON encoding, and reached under 20 % of `COPY`'s rows/s. For the
common pull, de-identified submissions as NDJSON, this module writes the same bytes faster:

- one statement with the same joins, filter and order as `export_runner.statement`, read
  through a server-side cursor in batches (`services.exports.batches_pg.stream`: one encoded
  chunk per batch, the next batch asked for before this one is encoded, so the database works
  while Python does);
- the database does what costs it little: ids as text, ``days_since_episode_start`` as an
  integer (UTC calendar days, no datetimes in Python), the scores' fields, and the JSON text of
  subscales and answers, passed through untouched as the generic path does;
- Python writes each line with one f-string; what many rows share is formatted once and kept in
  bounded caches: an episode's, client's and clinician's pseudonyms (per episode), a rater's,
  strings (escaped by orjson) and floats (orjson's notation: ``36.0``, ``1e-7``, which
  PostgreSQL's does not match); only the submission's pseudonym is computed for every row.

Measured alternatives: building whole lines in SQL (``to_json`` per string, HMAC with
``sha256``) cost the database more than `COPY` itself and was slower overall; decoding UUIDs
in Python was slower than having them as text.

The output is byte for byte the generic path's (tests/api/test_exports_api.py compares both on
PostgreSQL, with floats and strings chosen to differ). Other datasets, formats and modes are
written by `services.exports.batches_pg` on PostgreSQL; SQLite takes the generic path.
"""

import uuid
from collections.abc import Hashable
from datetime import datetime

import orjson

from services.exports import Pseudonyms
from services.kernel.database import DriverRecord

# Parameters: $1 org, $2 until, then the optional filters. What costs the database little is
# done here (ints, dates, JSON text); what repeats across rows is formatted in Python, once.
_SELECT = """
SELECT
    s.id::text, s.episode_id::text, e.client_id::text, e.clinician_id::text,
    nullif(s.rater, ''), c.population, s.instrument, s.instrument_version,
    s.session_number::text, s.respondent, s.status,
    ((coalesce(s.occurred_at, s.created_at) AT TIME ZONE 'UTC')::date - e.started_on)::text,
    s.total, CAST(s.scores ->> 'mean' AS FLOAT), s.scores ->> 'band',
    CAST(s.scores ->> 'below_cutoff' AS BOOLEAN), CAST(s.scores ->> 'clinical' AS BOOLEAN),
    coalesce((s.scores -> 'subscales')::text, 'null') || ',"answers":'
        || coalesce(s.answers::text, 'null') || E'}\\n'
FROM submissions s
JOIN episodes e ON e.id = s.episode_id AND e.org_id = s.org_id
JOIN clients c ON c.id = e.client_id AND c.org_id = e.org_id
WHERE s.org_id = $1 AND s.changed_at < $2"""


def submissions_statement(
    *,
    org_id: uuid.UUID,
    since: datetime | None,
    until: datetime,
    instrument: str | None,
    clinician_id: uuid.UUID | None,
) -> tuple[str, list[object]]:
    """The statement and its arguments, filtered as `export_runner.statement` filters."""
    sql, args = _SELECT, [org_id, until]
    if since is not None:
        args.append(since)
        sql += f" AND s.changed_at >= ${len(args)}"
    if instrument is not None:
        args.append(instrument)
        sql += f" AND s.instrument = ${len(args)}"
    # services/kernel/visibility.py's visible_submissions, written for asyncpg (the statement
    # joins the episode already); tests/api/test_visibility.py pins the two together.
    if clinician_id is not None:
        args.append(clinician_id)
        sql += f" AND e.clinician_id = ${len(args)}"
    return sql + "\nORDER BY s.changed_at, s.id", args


CACHE_SIZE = 65_536


class _Bounded(dict[Hashable, str]):
    """A dict that forgets everything once it holds ``size`` entries: memory stays bounded."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        super().__init__()
        self.size = size

    def put(self, key: Hashable, value: str) -> str:
        if len(self) >= self.size:
            self.clear()
        self[key] = value
        return value


_BOOL = {True: "true", False: "false", None: "null"}


class SubmissionLines:
    """Turns the statement's rows into NDJSON lines. Values many rows share (an episode's
    pseudonyms, a rater's, strings, floats) are formatted once and remembered, in bounded caches;
    the submission's pseudonym is computed for each row."""

    def __init__(self, pseudonyms: Pseudonyms) -> None:
        self._p = pseudonyms
        self._episodes = _Bounded()
        self._raters = _Bounded()
        self._strings = _Bounded()
        self._floats = _Bounded()

    def _episode(self, episode: str, client: str | None, clinician: str | None) -> str:
        of = self._p.of
        return self._episodes.put(
            episode,
            f'","episode_id":{_quoted(of("episode", episode))}'
            f',"client_id":{_quoted(of("client", client))}'
            f',"clinician_id":{_quoted(of("clinician", clinician))}',
        )

    def _rater(self, rater: str | None) -> str:
        if rater is None:
            return "null"
        found = self._raters.get(rater)
        if found is None:
            found = self._raters.put(rater, _quoted(self._p.of("rater", rater)))
        return found

    def _string(self, value: str | None) -> str:
        if value is None:
            return "null"
        return self._strings.put(value, orjson.dumps(value).decode())

    def _float(self, value: float | None) -> str:
        if value is None:
            return "null"
        text = orjson.dumps(value).decode()
        # Zeros are not kept: 0.0 and -0.0 are equal keys but written differently.
        if value:
            self._floats.put(value, text)
        return text

    def counted(self, rows: list[DriverRecord]) -> tuple[int, bytes]:
        """The rows' lines, and how many."""
        return len(rows), self.encode(rows)

    def encode(self, rows: list[DriverRecord]) -> bytes:
        episodes, strings, floats = self._episodes.get, self._strings.get, self._floats.get
        episode_of, rater_of = self._episode, self._rater
        string_of, float_of = self._string, self._float
        submission_of = self._p.submission
        out = []
        for (
            sub, episode, client, clinician, rater, population, instrument, version, number,
            respondent, status, days, total, mean, band, below_cutoff, clinical, tail,
        ) in rows:  # fmt: skip
            out.append(
                f'{{"submission_id":"{submission_of(sub)}'
                f"{episodes(episode) or episode_of(episode, client, clinician)}"
                f',"population":{strings(population) or string_of(population)}'
                f',"instrument":{strings(instrument) or string_of(instrument)}'
                f',"instrument_version":{strings(version) or string_of(version)}'
                f',"session_number":{number}'
                f',"respondent":{strings(respondent) or string_of(respondent)}'
                f',"rater":{"null" if rater is None else rater_of(rater)}'
                f',"status":{strings(status) or string_of(status)}'
                f',"days_since_episode_start":{days}'
                f',"total":{floats(total) or float_of(total)}'
                f',"mean":{floats(mean) or float_of(mean)}'
                f',"band":{strings(band) or string_of(band)}'
                f',"below_cutoff":{_BOOL[below_cutoff]},"clinical":{_BOOL[clinical]}'
                f',"subscales":{tail}'
            )
        return "".join(out).encode()


def _quoted(value: str | None) -> str:
    return "null" if value is None else f'"{value}"'
