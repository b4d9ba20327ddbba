"""Ordered ids (events, attempts): each sorts after the last one, even within a
millisecond, by a random step, and the time of any prefixed ULID can be read back."""

from __future__ import annotations

import itertools

import pytest
from ulid import ULID

from paygrid import ids
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


def test_ids_of_one_millisecond_step_by_random_amounts(monkeypatch: pytest.MonkeyPatch) -> None:
    """In one millisecond each id is the last one plus a random step, so the next id cannot
    be told from the last (an attempt's id is its reference at the provider)."""
    monkeypatch.setattr(ids, "_sequence", ids._Sequence())  # restored after, with the real time
    monkeypatch.setattr(ids, "wall_milliseconds", lambda: 2_000_000_000_000)
    made = [new_ordered_id("att") for _ in range(200)]
    values = [_value(i) for i in made]
    steps = [later - earlier for earlier, later in itertools.pairwise(values)]
    assert all(step >= 1 for step in steps)  # in order, no two alike
    assert len(set(steps)) == len(steps)  # no fixed step
    assert max(steps) > 2**40  # each step carries tens of random bits
    assert {milliseconds_of(i) for i in made} == {2_000_000_000_000}


def test_a_stuck_clock_borrows_the_next_millisecond_instead_of_overflowing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ids, "_sequence", ids._Sequence())  # restored after, with the real time
    monkeypatch.setattr(ids, "wall_milliseconds", lambda: 3_000_000_000_000)
    made = [new_ordered_id("evt") for _ in range(300_000)]  # 2**62 on average: 1.1 * 2**80
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    moments = sorted({_value(i) >> 80 for i in made})
    assert moments[0] == 3_000_000_000_000 and len(moments) > 1


def _value(object_id: str) -> int:
    return int(ULID.from_str(object_id.rpartition("_")[2]))
