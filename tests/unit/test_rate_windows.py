"""The in-memory rate-limit windows and the lookup cache's rules, on a fake clock."""

from __future__ import annotations

import limits

from paygrid.api.rate_limits import SWEEP_SECONDS, FixedWindows
from paygrid.clock import FakeClock
from paygrid.lookup_cache import Lookups

THREE_A_MINUTE = limits.parse("3/minute")


def test_a_window_admits_its_limit_then_refuses_until_it_closes() -> None:
    clock = FakeClock()
    windows = FixedWindows(clock)
    assert [windows.hit(THREE_A_MINUTE, ("key", "a")) for _ in range(3)] == [None] * 3
    clock.advance(20)
    assert windows.hit(THREE_A_MINUTE, ("key", "a")) == 40.0  # seconds until it closes
    assert windows.hit(THREE_A_MINUTE, ("key", "b")) is None  # another counter
    clock.advance(40)
    assert windows.hit(THREE_A_MINUTE, ("key", "a")) is None  # a new window opened


def test_refused_requests_are_not_counted() -> None:
    clock = FakeClock()
    windows = FixedWindows(clock)
    for _ in range(10):
        windows.hit(THREE_A_MINUTE, ("ip", "x"))
    clock.advance(60)
    assert [windows.hit(THREE_A_MINUTE, ("ip", "x")) for _ in range(4)] == [None] * 3 + [60.0]


def test_closed_windows_are_swept_from_memory() -> None:
    clock = FakeClock()
    windows = FixedWindows(clock)
    for n in range(100):
        windows.hit(THREE_A_MINUTE, ("ip", str(n)))
    clock.advance(SWEEP_SECONDS + 1)
    windows.hit(THREE_A_MINUTE, ("ip", "new"))
    assert len(windows._windows) == 1


def test_a_value_loaded_before_a_change_is_not_stored() -> None:
    clock = FakeClock()
    lookups = Lookups(clock, ttl=5.0)
    lookups.heard_through(lambda: True)
    cache = lookups.cache("topic")
    before = cache.generation
    lookups.invalidate("topic")  # a change was heard while the value was being loaded
    cache.put("key", "stale", before)
    assert cache.get("key") is None
    cache.put("key", "fresh", cache.generation)
    assert cache.get("key") == "fresh"
    clock.advance(5.0)
    assert cache.get("key") is None  # the TTL is the backstop


def test_another_topics_change_keeps_the_entry() -> None:
    lookups = Lookups(FakeClock())
    lookups.heard_through(lambda: True)
    cache = lookups.cache("api_keys")
    cache.put("key", "value", cache.generation)
    lookups.invalidate("routing")
    assert cache.get("key") == "value"
    lookups.invalidate_all()
    assert cache.get("key") is None
