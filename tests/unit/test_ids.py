"""paygrid's ids are ULIDs any ULID library reads: time first (so they sort by creation),
then randomness never shared between processes."""

from __future__ import annotations

import os
import time

from ulid import ULID

from paygrid.clock import wall_milliseconds
from paygrid.ids import new_id, new_ulid


def test_an_id_is_its_prefix_and_a_ulid_of_now() -> None:
    before = wall_milliseconds() / 1000
    value = new_id("pay")
    after = wall_milliseconds() / 1000
    prefix, _, ulid = value.partition("_")
    assert prefix == "pay" and len(ulid) == 26
    parsed = ULID.from_str(ulid)
    assert before - 0.001 <= parsed.timestamp <= after + 0.001
    assert str(parsed) == ulid


def test_ids_are_unique_and_sort_by_time() -> None:
    first = [new_ulid() for _ in range(5000)]
    time.sleep(0.002)
    later = new_ulid()
    assert len(set(first)) == len(first)
    assert all(later > earlier for earlier in first)


def test_a_forked_child_does_not_reuse_the_parents_randomness() -> None:
    new_ulid()  # the parent holds randomness read ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id's random part
        os.write(write, new_ulid()[10:].encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child_random = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert child_random != new_ulid()[10:]
