"""Answers and series as the tests write them: by instrument, in item order."""

from collections.abc import Sequence

from services.alerts import SeriesPoint

SRS_ITEMS = ("relationship", "goals_topics", "approach_method", "overall")
ORS_ITEMS = ("individually", "interpersonally", "socially", "overall")


def srs(*values: float) -> dict[str, float]:
    return dict(zip(SRS_ITEMS, values, strict=True))


def ors(*values: float) -> dict[str, float]:
    return dict(zip(ORS_ITEMS, values, strict=True))


def items(prefix: str, *values: float) -> dict[str, float]:
    return {f"{prefix}{i}": v for i, v in enumerate(values, start=1)}


def phq9(q9: int, *others: int) -> dict[str, float]:
    """PHQ-9 answers: items 1-8 (zeros unless given), item 9 last."""
    first_eight = [*others, *([0] * (8 - len(others)))]
    return items("q", *first_eight, q9)


def wai(*values: float) -> dict[str, float]:
    return items("q", *values)


def totals(values: Sequence[float], sessions: Sequence[int] | None = None) -> list[SeriesPoint]:
    numbers = sessions or range(1, len(values) + 1)
    return [SeriesPoint(n, f"sub-{n}", v, {}, {}) for n, v in zip(numbers, values, strict=True)]
