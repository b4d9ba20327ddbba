"""Object ids: a type prefix plus a ULID, so ids sort by creation time and say what they are.

A ULID is 48 bits of milliseconds then 80 random bits, in Crockford's base32 (26 characters).
Written here rather than with ``python-ulid`` because one payment makes about nine ids and
that library builds a datetime and reads ``os.urandom`` for each (profiled at 4 % of a
payment's CPU): this reads the kernel's randomness in blocks and turns a whole block into
Crockford characters at once (one ``bytes.translate``: each random byte's low five bits
pick a character, uniformly, as 256 is a multiple of 32), so an id's random part is a
slice of 16 characters (80 random bits), and the time part is re-encoded only when the
millisecond changes. The ids are the same format, parseable by any ULID library.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from typing import Final

from paygrid.clock import wall_milliseconds

CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Byte -> Crockford character of its low five bits.
_TO_CROCKFORD: Final = bytes(CROCKFORD.encode()[byte & 31] for byte in range(256))
_RANDOM_CHARACTERS: Final = 16  # 80 bits
_BLOCK: Final = 400 * _RANDOM_CHARACTERS  # 400 ids' worth of randomness per read


class _Randomness:
    """Kernel randomness read ahead, as Crockford characters; a forked child starts with
    none (it must never hand out the parent's)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.characters = ""
        self.position = _BLOCK
        self.millisecond = -1
        self.time_prefix = ""
        self.time_part = ""

    def take(self) -> str:
        start = self.position
        if start == _BLOCK:
            self.characters = os.urandom(_BLOCK).translate(_TO_CROCKFORD).decode("ascii")
            start = 0
        self.position = start + _RANDOM_CHARACTERS
        return self.characters[start : self.position]


_randomness = _Randomness()
os.register_at_fork(after_in_child=_randomness.reset)


# The last two characters of the time part: its low ten bits (1.024 s of milliseconds).
_PAIRS: Final = tuple(CROCKFORD[pair >> 5] + CROCKFORD[pair & 31] for pair in range(1024))


def _time_prefix(millisecond: int) -> str:
    """The first eight characters of the time part (they change every 1.024 s)."""
    return "".join(CROCKFORD[(millisecond >> shift) & 31] for shift in range(45, 9, -5))


def new_ulid() -> str:
    state = _randomness
    millisecond = wall_milliseconds()
    if millisecond != state.millisecond:
        if millisecond >> 10 != state.millisecond >> 10:
            state.time_prefix = _time_prefix(millisecond)
        state.millisecond = millisecond
        state.time_part = state.time_prefix + _PAIRS[millisecond & 1023]
    return state.time_part + state.take()


def new_id(prefix: str) -> str:
    return f"{prefix}_{new_ulid()}"


class _Sequence:
    """The last ordered id's millisecond and 80-bit counter (a forked child starts over)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.millisecond = -1
        self.counter = 0


_sequence = _Sequence()
os.register_at_fork(after_in_child=_sequence.reset)


def new_ordered_id(prefix: str) -> str:
    """An id that sorts after every id this process made with this function before, even
    within one millisecond (where ``new_id``'s random part is in no order): a new
    millisecond starts from random bits, the same one (or a wall clock that stepped back)
    adds a random step of 1 to 2**63 to the last id. For objects whose order is their
    meaning (events, a payment's attempts). The step keeps the next id of a millisecond as
    hard to guess as 63 random bits (an attempt's id is its reference at the provider);
    "monotonic ULIDs" that add one would make it the last one plus one."""
    state = _sequence
    millisecond = wall_milliseconds()
    if millisecond > state.millisecond:
        state.millisecond = millisecond
        # Half the range at most: 2**16 steps of a busy millisecond cannot overflow.
        state.counter = int.from_bytes(os.urandom(10)) >> 1
    else:
        state.counter += 1 + (int.from_bytes(os.urandom(8)) >> 1)
        if state.counter >> 80:  # 2**16 ids or more on a stuck or stepped-back clock
            state.millisecond += 1  # borrow the next millisecond, still in order
            state.counter = int.from_bytes(os.urandom(10)) >> 1
    value = (state.millisecond << 80) | state.counter
    return prefix + "_" + "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def milliseconds_of(object_id: str) -> int | None:
    """When the object of ``object_id`` was made (milliseconds since the epoch, on the
    machine that made it), read from its ULID's time part; None for an id that is not a
    prefixed ULID."""
    _, _, ulid = object_id.rpartition("_")
    if len(ulid) != 26 or not set(ulid) <= _CROCKFORD_SET:
        return None
    value = 0
    for character in ulid[:10]:
        value = value * 32 + CROCKFORD.index(character)
    return value


_CROCKFORD_SET: Final = frozenset(CROCKFORD)


def derived_id(prefix: str, at: datetime, *names: str) -> str:
    """The id of the one object ``names`` name, made at ``at``: the same on every call, in
    every process and database. Its time part is ``at``'s (so it sorts with the ids made
    then) and its random part the first 80 bits of a BLAKE2b hash of ``names``. For objects
    that must come back under the same id when made again from the same facts (a
    subscription's invoice for one period, re-made after a restore, so that the key of its
    charge is the one the provider already saw); never for ids that must be unguessable."""
    millisecond = int(at.timestamp() * 1000)
    digest = hashlib.blake2b("\x1f".join(names).encode(), digest_size=10).digest()
    bits = int.from_bytes(digest, "big")
    random_part = "".join(CROCKFORD[(bits >> shift) & 31] for shift in range(75, -1, -5))
    return f"{prefix}_{_time_prefix(millisecond)}{_PAIRS[millisecond & 1023]}{random_part}"
