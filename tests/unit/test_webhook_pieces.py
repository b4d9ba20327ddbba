"""Pure webhook pieces: Standard Webhooks signing (verified with the reference library),
the retry decision, and encryption at rest."""

from __future__ import annotations

import base64
import os
import random
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from paygrid.clock import SYSTEM_CLOCK
from paygrid.crypto import DecryptionFailed, KeyRing
from paygrid.db.webhooks import EndpointTarget, UndispatchedEvent
from paygrid.webhooks import signing
from paygrid.webhooks.dispatcher import plan_deliveries, subscribed
from paygrid.webhooks.retries import Outcome, decide, parse_retry_after

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SCHEDULE = [0, 60, 300, 1800, 7200, 18000, 36000, 86400]


def _verify(secret: str, body: bytes, headers: dict[str, str]) -> object:
    return Webhook(secret).verify(body, headers)


def test_signatures_verify_with_the_reference_library() -> None:
    secret = signing.new_secret()
    body = b'{"id":"evt_1","type":"payment.succeeded"}'
    headers = signing.headers([secret], "evt_1", int(SYSTEM_CLOCK.now().timestamp()), body)
    assert _verify(secret, body, headers) == {"id": "evt_1", "type": "payment.succeeded"}
    with pytest.raises(WebhookVerificationError):
        _verify(secret, body + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        _verify(signing.new_secret(), body, headers)


def test_rotation_signs_with_both_secrets() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    body = b'{"id":"evt_2"}'
    headers = signing.headers([new, old], "evt_2", int(SYSTEM_CLOCK.now().timestamp()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert _verify(old, body, headers) == {"id": "evt_2"}
    assert _verify(new, body, headers) == {"id": "evt_2"}


def test_secret_format() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"))) <= 64


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_2xx_succeeds(status: int) -> None:
    assert decide(status, None, 1, SCHEDULE, NOW).outcome is Outcome.SUCCEEDED


@pytest.mark.parametrize("status", [None, 199, 301, 400, 404, 500, 502])
def test_other_answers_retry_on_the_schedule_with_jitter(status: int | None) -> None:
    decision = decide(status, None, 2, SCHEDULE, NOW, random.Random(7))
    assert decision.outcome is Outcome.RETRY
    assert decision.next_attempt_at is not None
    delay = (decision.next_attempt_at - NOW).total_seconds()
    assert 300 * 0.9 <= delay <= 300 * 1.1


def test_schedule_used_up_dead_letters() -> None:
    assert decide(500, None, len(SCHEDULE), SCHEDULE, NOW).outcome is Outcome.FAILED
    assert decide(500, None, len(SCHEDULE) - 1, SCHEDULE, NOW).outcome is Outcome.RETRY


def test_410_disables_the_endpoint() -> None:
    decision = decide(410, None, 1, SCHEDULE, NOW)
    assert (decision.outcome, decision.disable_endpoint) == (Outcome.FAILED, True)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(status: int) -> None:
    decision = decide(status, "3600", 1, SCHEDULE, NOW, random.Random(1))
    assert decision.next_attempt_at is not None
    assert decision.next_attempt_at - NOW >= timedelta(seconds=3600)
    dated = decide(status, "Sun, 22 Nov 2026 14:00:00 GMT", 1, SCHEDULE, NOW, random.Random(1))
    assert dated.next_attempt_at == NOW + timedelta(hours=2)


def test_retry_after_parsing() -> None:
    assert parse_retry_after("120", NOW) == timedelta(seconds=120)
    assert parse_retry_after("soon", NOW) is None


def test_key_ring_round_trip_context_and_rotation() -> None:
    old_key, new_key = os.urandom(32), os.urandom(32)
    old_ring = KeyRing([old_key])
    sealed = old_ring.encrypt("whsec_abc", context="we_1")
    assert b"whsec_abc" not in sealed
    assert old_ring.decrypt(sealed, context="we_1") == "whsec_abc"
    with pytest.raises(DecryptionFailed):
        old_ring.decrypt(sealed, context="we_2")
    rotated = KeyRing([new_key, old_key])
    assert rotated.decrypt(sealed, context="we_1") == "whsec_abc"
    assert not rotated.is_current(sealed)
    assert rotated.is_current(rotated.encrypt("x", context="c"))
    with pytest.raises(DecryptionFailed):
        KeyRing([new_key]).decrypt(sealed, context="we_1")


def test_plan_deliveries_matches_tenant_type_and_age() -> None:
    before, after = NOW - timedelta(minutes=1), NOW + timedelta(minutes=1)
    endpoints = [
        EndpointTarget("we_all", "m1", False, ("*",), before),
        EndpointTarget("we_refunds", "m1", False, ("refund.succeeded",), before),
        EndpointTarget("we_live", "m1", True, ("*",), before),
        EndpointTarget("we_new", "m1", False, ("*",), after),
        EndpointTarget("we_other", "m2", False, ("*",), before),
    ]
    events = [UndispatchedEvent("evt_1", "m1", False, "payment.succeeded", NOW)]
    planned = plan_deliveries(events, endpoints)
    assert [(p[3], p[4]) for p in planned] == [("we_all", "evt_1")]
    assert subscribed(["refund.succeeded"], "refund.succeeded")
