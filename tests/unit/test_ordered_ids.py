"""Ordered ids (events): each sorts after the last one, even within a millisecond, and the
time of any prefixed ULID can be read back."""

from __future__ import annotations

from paygrid.clock import wall_milliseconds
from paygrid.ids import milliseconds_of, new_id, new_ordered_id


def test_ordered_ids_sort_in_the_order_they_were_made() -> None:
    made = [new_ordered_id("evt") for _ in range(5000)]  # many per millisecond
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(len(i) == len("evt_") + 26 for i in made)


def test_the_time_of_an_id_is_when_it_was_made() -> None:
    before = wall_milliseconds()
    ids = [new_id("pay"), new_ordered_id("evt")]
    after = wall_milliseconds()
    for object_id in ids:
        moment = milliseconds_of(object_id)
        assert moment is not None and before <= moment <= after
    assert milliseconds_of("evt_1") is None
    assert milliseconds_of("evt_" + "u" * 26) is None
