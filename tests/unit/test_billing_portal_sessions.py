"""The billing portal's session states and secrets (``domain/billing_portal.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from paygrid.domain.billing_portal import (
    LINK_LIFETIME,
    SESSION_LIFETIME,
    PortalSessionState,
    digest,
    matches,
    new_secret,
    state_at,
)

MADE = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
EXPIRES = MADE + LINK_LIFETIME


def test_an_unopened_link_lasts_until_its_expiry_exactly() -> None:
    before = EXPIRES - timedelta(microseconds=1)
    for now, state in ((before, "unopened"), (EXPIRES, "expired")):
        found = state_at(now, expires_at=EXPIRES, opened_at=None, ends_at=None)
        assert found is PortalSessionState(state)


@given(opened_after=st.timedeltas(min_value=timedelta(0), max_value=LINK_LIFETIME))
def test_an_opened_session_lasts_its_lifetime_from_the_opening(opened_after: timedelta) -> None:
    opened = MADE + opened_after
    ends = opened + SESSION_LIFETIME

    def at(now: datetime) -> PortalSessionState:
        return state_at(now, expires_at=EXPIRES, opened_at=opened, ends_at=ends)

    # Past the link's expiry it is still active: only the session's end counts now.
    assert at(max(EXPIRES, opened)) is PortalSessionState.ACTIVE
    assert at(ends - timedelta(seconds=1)) is PortalSessionState.ACTIVE
    assert at(ends) is PortalSessionState.EXPIRED


def test_secrets_are_random_long_and_kept_as_digests() -> None:
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    assert all(len(s) >= 43 for s in secrets)  # 32 bytes in base64url
    secret = next(iter(secrets))
    assert len(digest(secret)) == 32 and digest(secret) != secret.encode()
    assert matches(secret, digest(secret))
    assert not matches(secret + "x", digest(secret))
    assert not matches(None, digest(secret)) and not matches(secret, None)
