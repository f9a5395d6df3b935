"""Paired caseness of the PHQ-9 with the GAD-7, as NHS Talking Therapies reports outcomes
(reference/psychometrics.md, "Paired caseness") [V, except the "no reliable increase" clause: S]:

- caseness: PHQ-9 ≥ 10 **or** GAD-7 ≥ 8;
- reliable improvement: a reliable decrease on at least one measure (PHQ-9 by 6 or more, GAD-7 by
  4 or more) and no reliable increase on the other; reliable deterioration mirrors it;
- recovery: a case at the first paired assessment and not a case (both below) at the last;
- reliable recovery: recovery and reliable improvement together.

A paired assessment is a session with both scores; a finished course has at least two, so with one
the change measures are ``None``. Recovery is ``None`` for a client who was not a case at the
first paired assessment (NHS counts recovery only among cases). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from services.instruments.schema import dec

PAIR = ("phq-9", "gad-7")
PHQ9_CASENESS = Decimal(10)  # NHS Talking Therapies [V]
GAD7_CASENESS = Decimal(8)  # NHS Talking Therapies [V]
PHQ9_RELIABLE_CHANGE = Decimal(6)  # NHS Talking Therapies [V]
GAD7_RELIABLE_CHANGE = Decimal(4)  # NHS Talking Therapies [V]


class PairedOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    instruments: tuple[str, str] = PAIR
    first_session: int
    last_session: int
    n_paired: int
    case_at_first: bool
    case_at_last: bool
    reliable_improvement: bool | None
    reliable_deterioration: bool | None
    recovery: bool | None
    reliable_recovery: bool | None


def is_case(phq9: float, gad7: float) -> bool:
    """A case on either measure: PHQ-9 ≥ 10 or GAD-7 ≥ 8."""
    return dec(phq9) >= PHQ9_CASENESS or dec(gad7) >= GAD7_CASENESS


def paired_outcome(phq9: Mapping[int, float], gad7: Mapping[int, float]) -> PairedOutcome | None:
    """The pair's outcome from each measure's totals by session; ``None`` without a session that
    has both."""
    sessions = sorted(set(phq9) & set(gad7))
    if not sessions:
        return None
    first, last = sessions[0], sessions[-1]
    case_first = is_case(phq9[first], gad7[first])
    case_last = is_case(phq9[last], gad7[last])
    improvement: bool | None = None
    deterioration: bool | None = None
    recovery: bool | None = None
    reliable_recovery: bool | None = None
    if len(sessions) >= 2:
        phq_change = dec(phq9[last]) - dec(phq9[first])
        gad_change = dec(gad7[last]) - dec(gad7[first])
        down = phq_change <= -PHQ9_RELIABLE_CHANGE or gad_change <= -GAD7_RELIABLE_CHANGE
        up = phq_change >= PHQ9_RELIABLE_CHANGE or gad_change >= GAD7_RELIABLE_CHANGE
        improvement = down and not up
        deterioration = up and not down
        if case_first:
            recovery = not case_last
            reliable_recovery = recovery and improvement
    return PairedOutcome(
        first_session=first,
        last_session=last,
        n_paired=len(sessions),
        case_at_first=case_first,
        case_at_last=case_last,
        reliable_improvement=improvement,
        reliable_deterioration=deterioration,
        recovery=recovery,
        reliable_recovery=reliable_recovery,
    )
