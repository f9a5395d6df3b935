"""Scoring of submissions: answer validation, totals, subscales, bands, cut-offs and risk flags."""

from services.scoring.engine import (
    AnswerProblem,
    InvalidAnswers,
    Scores,
    cutoff_for,
    in_clinical_range,
    score,
    validate_answers,
)

__all__ = [
    "AnswerProblem",
    "InvalidAnswers",
    "Scores",
    "cutoff_for",
    "in_clinical_range",
    "score",
    "validate_answers",
]
