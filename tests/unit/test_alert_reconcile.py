"""Stored alerts kept in line with the rules: one submission at a time (as the API does it, reading
only the first score and the latest sessions) and recomputed from the full history give the same
rows, also when people resolve alerts along the way."""

import itertools
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.alerts import SeriesPoint, settings_with_fallback, validate_override
from services.alerts.engine import SeriesContext, derive_full, evaluate_new
from services.alerts.model import AlertRow
from services.alerts.reconcile import Change, reconcile
from services.alerts.replay import EVENT_RULES, history_needed, replay
from services.alerts.store import SeriesKey
from services.instruments import InstrumentDefinition
from services.instruments.registry import builtin_instruments
from tests.support.examples import examples

NOW = datetime(2026, 11, 25, tzinfo=UTC)
LATER = datetime(2026, 11, 26, tzinfo=UTC)
KEY = SeriesKey(uuid.uuid4(), uuid.uuid4(), "srs", "client", "")
PERSON = uuid.uuid4()
_ids = itertools.count(1)


def _new_id() -> uuid.UUID:
    return uuid.UUID(int=next(_ids))


def ctx_for(code: str, **overrides: Any) -> SeriesContext:
    settings = {rule: validate_override(rule, body) for rule, body in overrides.items()}
    key = SeriesKey(KEY.org_id, KEY.episode_id, code, "client", "")
    return SeriesContext(key, builtin_instruments()[code], "adult", settings)


def apply(
    store: dict[uuid.UUID, dict[str, Any]], writes: Sequence[tuple[Change, Mapping[str, Any]]]
) -> None:
    for change, row in writes:
        if change == "created":
            assert row["id"] not in store
        else:
            assert row["id"] in store
        store[row["id"]] = dict(row)


def history_for(points: Sequence[SeriesPoint], ctx: SeriesContext) -> list[SeriesPoint]:
    """What the service reads before a new submission: the first score and the latest sessions."""
    tail = list(points[-history_needed(ctx.settings) :])
    first = next((p for p in points if p.total is not None), None)
    if first is not None and first not in tail:
        tail.insert(0, first)
    return tail


def stored_rows(store: dict[uuid.UUID, dict[str, Any]]) -> list[AlertRow]:
    """The stored rows, as the stores type them."""
    return cast("list[AlertRow]", list(store.values()))


def rows_for_a_submission(store: dict[uuid.UUID, dict[str, Any]]) -> list[AlertRow]:
    """What the service reads of the series' alerts before a new submission (services/alerts/
    store.load_alert_rows, services/submissions/store_pg.SUBMISSION_CONTEXT)."""
    return [
        r
        for r in stored_rows(store)
        if r["status"] != "resolved"
        or (r["resolved_by_key_id"] is not None and r["type"] in EVENT_RULES)
    ]


def one_by_one(
    ctx: SeriesContext,
    points: Sequence[SeriesPoint],
    person_resolves: Sequence[int] = (),
    person_acknowledges: Sequence[int] = (),
) -> dict[uuid.UUID, dict[str, Any]]:
    """Feed the points as the API does; after point i, a person acknowledges the oldest open alert
    if i is in ``person_acknowledges``, and resolves the oldest unresolved alert if i is in
    ``person_resolves``."""
    store: dict[uuid.UUID, dict[str, Any]] = {}
    for i, new in enumerate(points):
        open_rows = rows_for_a_submission(store)
        writes = evaluate_new(ctx, history_for(points[:i], ctx), new, open_rows, NOW)
        assert writes is not None
        apply(store, writes)
        if i in person_acknowledges:
            opened = [r for r in store.values() if r["status"] == "open"]
            if opened:
                opened[0].update(
                    status="acknowledged", acknowledged_at=NOW, acknowledged_by_key_id=PERSON
                )
        if i in person_resolves:
            unresolved = [r for r in store.values() if r["status"] != "resolved"]
            if unresolved:
                row = unresolved[0]
                row.update(status="resolved", resolution="discussed", resolved_by_key_id=PERSON)
    return store


def comparable(rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    fields = ("type", "subscale", "first_session_number", "status", "resolution", "severity",
              "session_number", "submission_id", "message", "evidence", "rule_params")  # fmt: skip
    return sorted(tuple(repr(r[f]) for f in fields) for r in rows)


def srs_points(totals: Sequence[float], gaps: Sequence[int]) -> list[SeriesPoint]:
    sessions = list(itertools.accumulate(gaps))
    return [
        SeriesPoint(s, str(uuid.UUID(int=10_000 + s)), t, {}, {})
        for s, t in zip(sessions, totals, strict=False)
    ]


def wai_points(
    rows: Sequence[tuple[float, float, float]], gaps: Sequence[int]
) -> list[SeriesPoint]:
    sessions = list(itertools.accumulate(gaps))
    return [
        SeriesPoint(
            s, str(uuid.UUID(int=10_000 + s)), t + b + g, {"task": t, "bond": b, "goal": g}, {}
        )
        for s, (t, b, g) in zip(sessions, rows, strict=False)
    ]


def phq_points(rows: Sequence[tuple[float, int]], gaps: Sequence[int]) -> list[SeriesPoint]:
    sessions = list(itertools.accumulate(gaps))
    return [
        SeriesPoint(s, str(uuid.UUID(int=10_000 + s)), total, {}, {"q9": q9})
        for s, (total, q9) in zip(sessions, rows, strict=False)
    ]


series_strategy = st.one_of(
    st.builds(
        lambda v, g: ("srs", srs_points(v, g)),
        st.lists(st.sampled_from([30.0, 33.5, 35.9, 36.0, 37.0, 38.0, 39.5, 40.0]), max_size=25),
        st.lists(st.integers(1, 3), min_size=25, max_size=25),
    ),
    st.builds(
        lambda v, g: ("wai-sr", wai_points(v, g)),
        st.lists(st.tuples(*[st.sampled_from([8.0, 12.0, 14.0, 15.0, 16.0])] * 3), max_size=20),
        st.lists(st.integers(1, 2), min_size=20, max_size=20),
    ),
    st.builds(
        lambda v, g: ("phq-9", phq_points(v, g)),
        st.lists(
            st.tuples(st.sampled_from([4.0, 9.0, 12.0, 15.0, 19.0, 24.0]), st.integers(0, 3)),
            max_size=20,
        ),
        st.lists(st.integers(1, 4), min_size=20, max_size=20),
    ),
)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    series=series_strategy,
    resolves=st.sets(st.integers(0, 25), max_size=4),
    acknowledges=st.sets(st.integers(0, 25), max_size=6),
)
def test_one_by_one_then_recompute_changes_nothing(
    series: tuple[str, list[SeriesPoint]], resolves: set[int], acknowledges: set[int]
) -> None:
    """The rows built one submission at a time, reading only a bounded history, are exactly what
    a recompute from the whole history derives — with people acknowledging and resolving alerts
    along the way; and at most one alert per key is open."""
    code, points = series
    ctx = ctx_for(code)
    store = one_by_one(ctx, points, sorted(resolves), sorted(acknowledges))
    assert derive_full(ctx, points, stored_rows(store), NOW) == []
    opened = Counter((r["type"], r["subscale"]) for r in store.values() if r["status"] == "open")
    assert all(n == 1 for n in opened.values())


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    series=series_strategy,
    acknowledges=st.sets(st.integers(0, 25), max_size=6),
)
def test_an_event_after_a_person_acknowledged_its_alert_opens_a_new_one(
    series: tuple[str, list[SeriesPoint]], acknowledges: set[int]
) -> None:
    """DESIGN.md §10.3.2: an acknowledged alert of a discrete event never changes again; every
    triggering session after it is in an open (or newer) alert that names it."""
    code, points = series
    ctx = ctx_for(code)
    store = one_by_one(ctx, points, (), sorted(acknowledges))
    rows = sorted(store.values(), key=lambda r: r["first_session_number"])
    for row in rows:
        if row["type"] not in EVENT_RULES:
            continue
        later = [
            r for r in rows
            if (r["type"], r["subscale"]) == (row["type"], row["subscale"])
            and r["first_session_number"] > row["first_session_number"]
        ]  # fmt: skip
        if row["status"] == "acknowledged" and later:
            assert later[0]["evidence"]["previous_alert_id"] == str(row["id"])
        if later:
            assert row["session_number"] < later[0]["first_session_number"]


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(series=series_strategy)
def test_rows_from_one_by_one_equal_rows_from_a_recompute_at_once(
    series: tuple[str, list[SeriesPoint]],
) -> None:
    code, points = series
    ctx = ctx_for(code)
    incremental = one_by_one(ctx, points)
    at_once: dict[uuid.UUID, dict[str, Any]] = {}
    apply(at_once, derive_full(ctx, points, [], NOW))
    assert comparable(list(incremental.values())) == comparable(list(at_once.values()))


def test_a_longer_repair_window_reads_a_longer_history() -> None:
    """WAI-SR bond ruptures at 5 and is back only at 12: inside a 9-session window, so the
    rupture is repaired, which the step can only see if it reads back to the rupture."""
    ctx = ctx_for("wai-sr", **{"alliance.rupture": {"params": {"repair_window": 9}}})
    rows = [(14.0, 16.0, 14.0)] * 4 + [(14.0, 8.0, 14.0)] + [(14.0, 10.0, 14.0)] * 6
    points = wai_points([*rows, (14.0, 16.0, 14.0)], [1] * 12)
    store = one_by_one(ctx, points)
    bond = [r for r in store.values() if r["subscale"] == "bond"]
    assert [(r["status"], r["resolution"]) for r in bond] == [("resolved", "repaired")]
    assert derive_full(ctx, points, stored_rows(store), NOW) == []


def test_a_late_entry_is_left_to_a_recompute() -> None:
    ctx = ctx_for("srs")
    points = srs_points([38.0, 38.0, 37.0], [1, 1, 2])
    late = SeriesPoint(3, str(uuid.uuid4()), 30.0, {}, {})
    assert evaluate_new(ctx, points, late, [], NOW) is None


def test_voided_trigger_is_retracted_and_a_persons_note_stays() -> None:
    ctx = ctx_for("srs")
    points = srs_points([38.0, 35.0], [1, 1])
    store = one_by_one(ctx, points)
    (low,) = [r for r in store.values() if r["type"] == "alliance.low"]
    low.update(status="acknowledged", note="talked about it")
    writes = derive_full(ctx, points[:1], stored_rows(store), NOW)
    changed = {row["type"]: (change, row) for change, row in writes}
    change, row = changed["alliance.low"]
    assert change == "resolved"
    assert (row["status"], row["resolution"], row["note"]) == (
        "resolved",
        "retracted",
        "talked about it",
    )


def test_a_persons_resolution_is_never_changed_by_a_recompute() -> None:
    ctx = ctx_for("phq-9")
    points = phq_points([(12.0, 1)], [1])
    store = one_by_one(ctx, points)
    (risk,) = store.values()
    risk.update(status="resolved", resolution="referred", resolved_by_key_id=PERSON)
    assert derive_full(ctx, [], stored_rows(store), NOW) == []


def test_voiding_the_clearing_score_reopens_the_alert_and_keeps_its_acknowledgement() -> None:
    ctx = ctx_for("srs")
    points = srs_points([35.0, 37.0], [1, 1])
    store = one_by_one(ctx, points)
    (low,) = store.values()
    assert (low["status"], low["resolution"]) == ("resolved", "condition_cleared")
    low["acknowledged_at"] = NOW
    (write,) = derive_full(ctx, points[:1], stored_rows(store), NOW)
    assert write[0] == "updated"
    assert (write[1]["status"], write[1]["resolution"], write[1]["resolved_at"]) == (
        "acknowledged", None, None,
    )  # fmt: skip


def test_a_trigger_after_a_person_resolved_opens_a_new_alert() -> None:
    ctx = ctx_for("phq-9")
    points = phq_points([(12.0, 1), (12.0, 2)], [1, 1])
    store = one_by_one(ctx, points, person_resolves=[0])
    risks = sorted(store.values(), key=lambda r: r["first_session_number"])
    assert [(r["first_session_number"], r["status"]) for r in risks] == [
        (1, "resolved"), (2, "open"),
    ]  # fmt: skip
    assert risks[0]["resolution"] == "discussed"


def test_a_stored_raised_risk_threshold_is_ignored_and_the_alert_stays() -> None:
    """DESIGN.md §10.3.1: a threshold above the definition's is refused by the API; one stored
    anyway (before that rule) is not used, so the risk alert stays."""
    points = phq_points([(12.0, 1)], [1])
    store = one_by_one(ctx_for("phq-9"), points)
    raised = {"risk.item": {"instruments": {"phq-9": {"thresholds": {"q9": 2}}}}}
    settings, problems = settings_with_fallback(raised)
    assert [field for field, _ in problems] == ["risk.item.instruments.phq-9.thresholds.q9"]
    ctx = SeriesContext(
        ctx_for("phq-9").key,
        builtin_instruments()["phq-9"],
        "adult",
        {str(k): v for k, v in settings.items()},
    )
    assert derive_full(ctx, points, stored_rows(store), NOW) == []


def test_voiding_the_risk_answer_keeps_its_critical_alert_for_a_person() -> None:
    """DESIGN.md §10.3.3: no automatic retraction of a critical alert; it says its answer was
    voided, once."""
    ctx = ctx_for("phq-9")
    points = phq_points([(12.0, 1)], [1])
    store = one_by_one(ctx, points)
    ((change, row),) = derive_full(ctx, [], stored_rows(store), NOW)
    assert (change, row["type"], row["status"], row["resolution"]) == (
        "updated", "risk.item", "open", None,
    )  # fmt: skip
    assert row["evidence"]["source_voided"] is True
    apply(store, [(change, row)])
    assert derive_full(ctx, [], stored_rows(store), NOW) == []


def test_voiding_a_warning_still_retracts_it() -> None:
    ctx = ctx_for("srs")
    points = srs_points([35.0], [1])
    store = one_by_one(ctx, points)
    ((change, row),) = derive_full(ctx, [], stored_rows(store), NOW)
    assert (change, row["type"], row["resolution"]) == ("resolved", "alliance.low", "retracted")


def test_a_failing_rule_does_not_stop_the_risk_alert(monkeypatch: pytest.MonkeyPatch) -> None:
    """DESIGN.md §6: risk answers raise their alert whatever else fails."""
    from services.alerts import rules

    def broken(*args: Any) -> list[Any]:
        raise ZeroDivisionError("a bug in another rule")

    monkeypatch.setitem(rules.SERIES_RULES, "outcome.deterioration", broken)
    ctx = ctx_for("phq-9")
    new = SeriesPoint(1, str(uuid.uuid4()), 12.0, {}, {"q9": 1})
    writes = evaluate_new(ctx, [], new, [], NOW)
    assert writes is not None
    assert [(c, r["type"], r["severity"]) for c, r in writes] == [
        ("created", "risk.item", "critical"),
    ]  # fmt: skip


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.tuples(st.sampled_from([4.0, 12.0, 24.0]), st.integers(0, 3)), max_size=15),
    acknowledges=st.sets(st.integers(0, 15), max_size=6),
    resolves=st.sets(st.integers(0, 15), max_size=3),
)
def test_the_latest_risk_answer_is_in_an_open_critical_alert_until_a_person_acts(
    rows: list[tuple[float, int]], acknowledges: set[int], resolves: set[int]
) -> None:
    """Issue 13 acceptance: a risk answer at or above the threshold always yields an open critical
    alert for that submission (or a newer one), whatever a person did with the earlier ones."""
    points = phq_points(rows, [1] * len(rows))
    ctx = ctx_for("phq-9")
    store = one_by_one(ctx, points, sorted(resolves), sorted(acknowledges))
    risky = [i for i, (_, q9) in enumerate(rows) if q9 >= 1]
    if not risky or any(i >= risky[-1] for i in acknowledges | resolves):
        return
    session = points[risky[-1]].session_number
    opened = [
        r for r in store.values()
        if r["type"] == "risk.item" and r["status"] == "open" and r["severity"] == "critical"
    ]  # fmt: skip
    assert [r["session_number"] for r in opened] == [session]


# ----- what each write says (survivors of `make mutate`) ------------------------------------------

LATER = datetime(2026, 11, 26, tzinfo=UTC)


def test_a_cleared_alert_is_written_as_resolved_when_it_clears_and_not_again() -> None:
    ctx = ctx_for("srs")
    points = srs_points([35.0, 37.0], [1, 1])
    store: dict[uuid.UUID, dict[str, Any]] = {}
    apply(store, evaluate_new(ctx, [], points[0], [], NOW) or [])
    ((change, row),) = evaluate_new(ctx, points[:1], points[1], stored_rows(store), LATER) or []
    assert (change, row["status"], row["resolution"], row["resolved_at"]) == (
        "resolved", "resolved", "condition_cleared", LATER,
    )  # fmt: skip
    apply(store, [(change, row)])
    # A recompute at a later time leaves the resolution and its time alone.
    assert derive_full(ctx, points, stored_rows(store), datetime(2027, 1, 1, tzinfo=UTC)) == []


def test_voiding_the_clearing_score_reopens_an_unacknowledged_alert_as_open() -> None:
    ctx = ctx_for("srs")
    points = srs_points([35.0, 37.0], [1, 1])
    store = one_by_one(ctx, points)
    ((change, row),) = derive_full(ctx, points[:1], stored_rows(store), LATER)
    assert (change, row["status"], row["resolution"], row["resolved_at"]) == (
        "updated", "open", None, None,
    )  # fmt: skip


def test_a_recompute_under_a_new_setting_writes_the_parameters_used() -> None:
    points = srs_points([33.0], [1])
    store = one_by_one(ctx_for("srs"), points)
    stricter = ctx_for("srs", **{"alliance.low": {"instruments": {"srs": {"cutoff": 34}}}})
    ((change, row),) = derive_full(stricter, points, stored_rows(store), LATER)
    assert (change, row["rule_params"], row["rule_version"]) == ("updated", {"cutoff": 34.0}, "1")


def test_an_alert_the_engine_retracted_is_never_named_as_the_previous_one() -> None:
    """Only an alert a person acknowledged or resolved is ``previous_alert_id``."""
    ctx = ctx_for("srs")
    points = srs_points([39.0, 38.0], [1, 1])
    store = one_by_one(ctx, points)
    (drop,) = [r for r in store.values() if r["type"] == "alliance.drop"]
    drop.update(status="resolved", resolution="retracted", resolved_at=NOW)
    later = srs_points([39.0, 39.0, 39.0, 38.0], [1, 1, 1, 1])  # session 2 re-entered as 39
    writes = derive_full(ctx, later, stored_rows(store), LATER)
    created = [r for c, r in writes if c == "created" and r["type"] == "alliance.drop"]
    assert [r["first_session_number"] for r in created] == [4]
    assert "previous_alert_id" not in created[0]["evidence"]
    drop["acknowledged_at"] = NOW
    writes = derive_full(ctx, later, stored_rows(store), LATER)
    created = [r for c, r in writes if c == "created" and r["type"] == "alliance.drop"]
    assert created[0]["evidence"]["previous_alert_id"] == str(drop["id"])


def test_a_critical_alert_already_resolved_is_not_kept_open_by_a_recompute() -> None:
    """DESIGN.md §10.3.3 keeps *unresolved* critical alerts that the history no longer derives; a
    critical row already resolved without a person (as no current rule does) is retracted like
    any other, not marked as a voided source and left as it was."""
    ctx = ctx_for("phq-9")
    store = one_by_one(ctx, phq_points([(12.0, 1)], [1]))
    (row,) = store.values()
    row.update(status="resolved", resolution="condition_cleared", resolved_at=NOW)
    ((change, after),) = derive_full(ctx, [], stored_rows(store), NOW)
    assert (change, after["status"], after["resolution"]) == ("updated", "resolved", "retracted")
    assert "source_voided" not in after["evidence"]


def test_a_gradual_ruptures_repair_at_the_end_of_its_window_is_seen_one_submission_at_a_time() -> (
    None
):
    """The longest history a new submission needs (:func:`history_needed`): a six-step decline
    ends in a rupture at session 14, judged on the SD of sessions 4-8, and is repaired at 17, the
    last session of its window. Read one submission at a time, the history must reach back to
    session 4, or the repair is missed and the rupture left open (mutants shortened it)."""
    ctx = ctx_for("srs")
    totals = [30.0, *[38.0] * 7, 37.65, 37.3, 36.95, 36.6, 36.25, 35.9, 36.0, 37.0, 38.0]
    points = srs_points(totals, [1] * 17)
    store = one_by_one(ctx, points)
    ruptures = [r for r in store.values() if r["type"] == "alliance.rupture"]
    assert [
        (r["first_session_number"], r["evidence"]["pattern"], r["status"], r["resolution"])
        for r in ruptures
    ] == [(14, "gradual", "resolved", "repaired")]
    assert derive_full(ctx, points, stored_rows(store), NOW) == []


def test_a_recompute_relabels_a_resolution_the_history_now_explains_otherwise() -> None:
    """A row the engine had retracted (its trigger voided, or a setting changed) that the history
    derives again as cleared is relabelled ``condition_cleared`` with the rule version that
    derived it (mutants kept the old label, and the old version)."""
    ctx = ctx_for("srs")
    points = srs_points([30.0, 38.0], [1, 1])
    store = one_by_one(ctx, points)
    (row,) = store.values()
    assert (row["type"], row["status"], row["resolution"]) == (
        "alliance.low", "resolved", "condition_cleared",
    )  # fmt: skip
    row.update(resolution="retracted", rule_version="0")
    ((change, after),) = derive_full(ctx, points, stored_rows(store), LATER)
    assert (change, after["status"], after["resolution"], after["rule_version"]) == (
        "updated", "resolved", "condition_cleared", "1",
    )  # fmt: skip
    assert (after["resolved_at"], after["updated_at"], after["created_at"]) == (LATER, LATER, NOW)


def test_voiding_the_first_of_two_risk_answers_leaves_one_open_alert_on_the_second() -> None:
    """DESIGN.md §10.3.3 with one open alert per key: the open critical alert (raised at 1, last
    triggered at 2) follows the answer that still stands instead of a second alert being raised
    beside it."""
    ctx = ctx_for("phq-9")
    points = phq_points([(12.0, 1), (12.0, 1)], [1, 1])
    store = one_by_one(ctx, points)
    assert [(r["first_session_number"], r["session_number"]) for r in store.values()] == [(1, 2)]
    assert derive_full(ctx, points[1:], stored_rows(store), NOW) == []


def test_a_new_row_holds_every_column_of_an_alert() -> None:
    """The row a rule creates, column by column (mutants renamed columns or mixed up the times);
    one that is already cleared when it is created is resolved at the same time."""
    ctx = ctx_for("srs")
    ((change, row),) = derive_full(ctx, srs_points([30.0, 38.0], [1, 1]), [], NOW)
    assert change == "created"
    assert {k: v for k, v in row.items() if k not in ("id", "message", "evidence")} == {
        **ctx.row_columns(),
        "type": "alliance.low", "severity": "warning", "status": "resolved",
        "resolution": "condition_cleared", "instrument": "srs", "subscale": "",
        "session_number": 1, "submission_id": uuid.UUID(int=10_001), "first_session_number": 1,
        "rule_version": "1", "rule_params": {"cutoff": 36.0}, "created_at": NOW,
        "updated_at": NOW, "acknowledged_at": None, "acknowledged_by_key_id": None,
        "resolved_at": NOW, "resolved_by_key_id": None, "note": None, "escalated_at": None,
    }  # fmt: skip
    ((_, still_open),) = derive_full(ctx, srs_points([30.0], [1]), [], NOW)
    assert (still_open["status"], still_open["resolution"], still_open["resolved_at"]) == (
        "open", None, None,
    )  # fmt: skip


def test_an_organisations_longer_repair_window_is_read_back_far_enough() -> None:
    """:func:`history_needed` reads the organisation's ``repair_window``, not the default: a
    gradual rupture at 14 repaired at 23, the end of a 9-session window, needs 19 sessions before
    the repair (a mutant read the default window and missed the repair)."""
    ctx = ctx_for("srs", **{"alliance.rupture": {"params": {"repair_window": 9}}})
    decline = [37.65, 37.3, 36.95, 36.6, 36.25, 35.9]
    totals = [30.0, *[38.0] * 7, *decline, *[36.0, 36.5, 37.0, 36.5] * 2, 38.0]
    points = srs_points(totals, [1] * 23)
    assert len(points) == len(totals) == 23
    store = one_by_one(ctx, points)
    ruptures = [r for r in store.values() if r["type"] == "alliance.rupture"]
    assert [(r["first_session_number"], r["status"], r["resolution"]) for r in ruptures] == [
        (14, "resolved", "repaired")
    ]
    assert derive_full(ctx, points, stored_rows(store), NOW) == []


def test_a_critical_alert_a_setting_no_longer_raises_is_left_as_it_is() -> None:
    """DESIGN.md §10.3.3: an organisation lowered a risk threshold (3 to 2), an answer of 2 raised
    a critical alert, and the setting went back. The answer still stands, so the alert stays as
    it is, not marked as voided (a mutant checked the answer against the derived alerts only)."""
    defn = InstrumentDefinition.model_validate(
        {
            "code": "mood-local", "version": "1", "name": "Local mood", "kind": "symptom",
            "respondents": ["client"],
            "items": [{"id": "score", "label": "score", "min": 0, "max": 30, "step": 1},
                      {"id": "harm", "label": "harm", "min": 0, "max": 4, "step": 1,
                       "in_total": False}],
            "direction": "lower_is_better",
            "risk_items": [{"item": "harm", "threshold": 3, "label": "Harm"}],
            "citation": "test", "license": "test",
        }
    )  # fmt: skip
    key = SeriesKey(KEY.org_id, KEY.episode_id, defn.code, "client", "")
    lowered = {
        "risk.item": validate_override(
            "risk.item", {"instruments": {"mood-local": {"thresholds": {"harm": 2}}}},
            {defn.code: defn},
        )
    }  # fmt: skip
    points = [SeriesPoint(1, str(uuid.UUID(int=10_001)), 12.0, {}, {"score": 12.0, "harm": 2.0})]
    store = one_by_one(SeriesContext(key, defn, "adult", lowered), points)
    assert [(r["type"], r["status"]) for r in store.values()] == [("risk.item", "open")]
    assert derive_full(SeriesContext(key, defn, "adult", {}), points, stored_rows(store), NOW) == []


def test_voiding_a_later_trigger_retracts_its_alert_and_leaves_the_earlier_one() -> None:
    """Every row the history no longer derives is retracted, not just those before the first one
    it still derives (a mutant stopped at that one); a second recompute changes nothing."""
    ctx = ctx_for("srs")
    points = srs_points([30.0, 38.0, 30.0], [1, 1, 1])
    store = one_by_one(ctx, points)
    writes = derive_full(ctx, points[:2], stored_rows(store), LATER)
    assert sorted(
        (c, r["type"], r["first_session_number"], r["resolution"]) for c, r in writes
    ) == [
        ("resolved", "alliance.drop", 3, "retracted"),
        ("resolved", "alliance.low", 3, "retracted"),
    ]
    apply(store, writes)
    assert derive_full(ctx, points[:2], stored_rows(store), LATER) == []


def test_an_escalated_rupture_is_stored_at_its_higher_severity() -> None:
    """SRS 38 x4, then 34 x4: a rupture at session 5, unrepaired when its window ends at session
    8, escalates to high; the stored row says so (mutants: the update wrote the new severity under
    another key, leaving the row at warning)."""
    store = one_by_one(ctx_for("srs"), srs_points([38.0] * 4 + [34.0] * 4, [1] * 8))
    (rupture,) = [r for r in store.values() if r["type"] == "alliance.rupture"]
    assert (rupture["severity"], rupture["status"]) == ("high", "open")


def test_a_recompute_leaves_alone_a_risk_alert_a_person_acknowledged_after_its_update() -> None:
    """q9 = 2 at sessions 1 and 2: one risk alert, updated at session 2, then acknowledged. A
    recompute must not read session 2's answer as new (mutants: the person's alert frozen at its
    first session, so the recompute let it go and opened a second alert for the same answer)."""
    ctx = ctx_for("phq-9")
    points = phq_points([(15.0, 2), (15.0, 2)], [1, 1])
    store = one_by_one(ctx, points, person_acknowledges=[1])
    (risk,) = [r for r in store.values() if r["type"] == "risk.item"]
    assert (risk["first_session_number"], risk["session_number"], risk["status"]) == (
        1,
        2,
        "acknowledged",
    )
    assert derive_full(ctx, points, stored_rows(store), NOW) == []


def test_an_acknowledged_risk_alert_stays_as_the_person_left_it_after_a_new_risk_answer() -> None:
    """DESIGN.md §10.3.2: q9 = 2 at session 1, acknowledged; q9 = 2 again at session 2 opens a
    second alert, and the first stays acknowledged, on the next submission and on a recompute
    (mutants: the engine marked the person's alert resolved, or a recompute retracted it)."""
    ctx = ctx_for("phq-9")
    points = phq_points([(15.0, 2), (15.0, 2)], [1, 1])
    store = one_by_one(ctx, points, person_acknowledges=[0])
    risks = sorted(
        (r["first_session_number"], r["status"], r["resolution"])
        for r in store.values()
        if r["type"] == "risk.item"
    )
    assert risks == [(1, "acknowledged", None), (2, "open", None)]
    assert derive_full(ctx, points, stored_rows(store), NOW) == []


def test_a_recompute_retracts_every_alert_its_voided_sessions_raised_and_says_when() -> None:
    """SRS 35, 36, 30: alliance.low at session 1 (cleared at 2), alliance.low and alliance.drop at
    3. Voiding session 3 retracts both of its alerts, now; voiding everything also retracts the
    cleared one, keeping when it had cleared (mutants: the retraction pass stopped at the first
    row still derived, stamped times under other keys, or moved or dropped ``resolved_at``)."""
    ctx = ctx_for("srs")
    points = srs_points([35.0, 36.0, 30.0], [1, 1, 1])
    store = one_by_one(ctx, points)

    def retracted(kept: list[SeriesPoint]) -> list[tuple[Any, ...]]:
        writes = derive_full(ctx, kept, stored_rows(store), LATER)
        return sorted(
            (r["type"], r["first_session_number"], change, r["status"], r["resolution"],
             r["resolved_at"], r["updated_at"])
            for change, r in writes
        )  # fmt: skip

    assert retracted(points[:2]) == [
        ("alliance.drop", 3, "resolved", "resolved", "retracted", LATER, LATER),
        ("alliance.low", 3, "resolved", "resolved", "retracted", LATER, LATER),
    ]
    assert retracted([]) == [
        ("alliance.drop", 3, "resolved", "resolved", "retracted", LATER, LATER),
        ("alliance.low", 1, "updated", "resolved", "retracted", NOW, LATER),
        ("alliance.low", 3, "resolved", "resolved", "retracted", LATER, LATER),
    ]


def test_voiding_the_risk_answer_stamps_the_kept_alert_as_updated_now() -> None:
    """The kept critical alert that now says its answer was voided is updated at the time of the
    recompute, not left with the time of its last change (mutants dropped the stamp or wrote it
    under another key)."""
    ctx = ctx_for("phq-9")
    store = one_by_one(ctx, phq_points([(12.0, 1)], [1]))
    ((_, row),) = derive_full(ctx, [], stored_rows(store), LATER)
    assert (row["evidence"]["source_voided"], row["created_at"], row["updated_at"]) == (
        True, NOW, LATER,
    )  # fmt: skip
    assert set(row) == set(next(iter(store.values())))


def test_voiding_every_phq9_answer_keeps_the_risk_alert_and_retracts_the_deterioration() -> None:
    """PHQ-9 5 (q9 = 1), then 20: a critical risk alert at session 1 and a reliable deterioration
    at 2. Voiding both keeps the risk alert for a person (DESIGN.md §10.3.3) and still retracts
    the deterioration stored after it (a mutant stopped the retraction pass at the kept row)."""
    ctx = ctx_for("phq-9")
    store = one_by_one(ctx, phq_points([(5.0, 1), (20.0, 0)], [1, 1]))
    writes = derive_full(ctx, [], stored_rows(store), LATER)
    assert sorted(
        (c, r["type"], r["status"], r["resolution"], r["evidence"].get("source_voided"))
        for c, r in writes
    ) == [
        ("resolved", "outcome.deterioration", "resolved", "retracted", None),
        ("updated", "risk.item", "open", None, True),
    ]


def test_a_recompute_after_an_earlier_retraction_still_retracts_the_rest() -> None:
    """SRS 30, 38, 30: voiding session 1 retracts its (cleared) alliance.low; voiding session 3
    afterwards retracts the two alerts it raised, though the retracted row comes first (a mutant
    stopped the retraction pass at the first row already retracted)."""
    ctx = ctx_for("srs")
    points = srs_points([30.0, 38.0, 30.0], [1, 1, 1])
    store = one_by_one(ctx, points)
    ((change, row),) = derive_full(ctx, points[1:], stored_rows(store), LATER)
    assert (change, row["first_session_number"], row["resolution"]) == ("updated", 1, "retracted")
    apply(store, [(change, row)])
    w = derive_full(ctx, points[1:2], stored_rows(store), LATER)
    retracted = sorted((c, r["type"], r["first_session_number"], r["resolution"]) for c, r in w)
    assert retracted == [
        ("resolved", "alliance.drop", 3, "retracted"),
        ("resolved", "alliance.low", 3, "retracted"),
    ]


def test_a_new_alert_of_another_rule_does_not_take_over_the_kept_risk_alert() -> None:
    """PHQ-9 12 with q9 = 1 at session 1 raises a critical risk alert; session 1 is voided and
    sessions 2 and 3 (5, then 20) come in. The risk alert is kept for a person and the reliable
    deterioration at 3 gets a row of its own (mutants let any open alert take over a kept critical
    row of another rule: the risk row would then carry the deterioration)."""
    ctx = ctx_for("phq-9")
    store = one_by_one(ctx, phq_points([(12.0, 1)], [1]))
    later = phq_points([(5.0, 0), (5.0, 0), (20.0, 0)], [1, 1, 1])[1:]
    writes = derive_full(ctx, later, stored_rows(store), LATER)
    assert sorted(
        (c, r["type"], r["first_session_number"], r["session_number"], r["severity"])
        for c, r in writes
    ) == [
        ("created", "outcome.deterioration", 3, 3, "high"),
        ("updated", "risk.item", 1, 1, "critical"),
    ]


def test_rows_created_together_get_ascending_ids_in_the_order_the_rules_derived_them() -> None:
    """A UUIDv7 only orders by the millisecond, so the rows of one write are given their ids in
    ascending order, whatever order they were drawn in (mutants left them as drawn)."""
    ctx = ctx_for("srs")
    derived = replay(ctx.definition, srs_points([38.0, 30.0], [1, 1]))
    assert [s.rule_id for s in derived] == ["alliance.low", "alliance.drop"]
    descending = iter(uuid.UUID(int=n) for n in range(100, 0, -1))
    writes = reconcile(
        derived, [], series=ctx.row_columns(), now=NOW, full=True, new_id=lambda: next(descending)
    )
    assert [(c, r["type"], r["id"]) for c, r in writes] == [
        ("created", "alliance.low", uuid.UUID(int=99)),
        ("created", "alliance.drop", uuid.UUID(int=100)),
    ]
