"""Keeps this process's lookup caches (``paygrid.lookup_cache``) honest: LISTENs on the
channel that writes to cached tables notify (``paygrid.db.lookup_notices``) and drops the
topic named. The caches answer only while this LISTEN is up; each time it (re)starts, they
start afresh, since changes committed meanwhile notified nobody here."""

from __future__ import annotations

from paygrid.db.listener import Notifications, Subscription
from paygrid.db.lookup_notices import CHANNEL
from paygrid.lookup_cache import Lookups


async def listen(lookups: Lookups, notifications: Notifications) -> Subscription:
    """Listen for ``lookups`` on the process's LISTEN hub; ``stop()`` the returned
    subscription at shutdown (the caches then stop answering)."""
    subscription = await notifications.subscribe(
        CHANNEL, lookups.invalidate, on_listening=lookups.invalidate_all
    )
    lookups.heard_through(lambda: subscription.listening)
    lookups.invalidate_all()  # anything loaded before the LISTEN may have missed a change
    return subscription
