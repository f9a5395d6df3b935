"""Ids are UUIDv7 in creation order, also many within one millisecond: lists and keyset
pagination order by id."""

import itertools

from models.base import new_id


def test_ids_made_in_a_burst_are_strictly_increasing_uuid7() -> None:
    ids = [new_id() for _ in range(20_000)]  # far more than one millisecond's worth
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert {i.version for i in ids} == {7}
    assert {i.variant for i in ids} == {"specified in RFC 4122"}
    assert len({i.int >> 80 for i in ids}) > 1  # the burst spans milliseconds
