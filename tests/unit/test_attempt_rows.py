"""Attempt statuses and operations as enums, checked against the schema, and the one attempt
builder."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from paygrid.db.rows import column_values
from paygrid.domain.payments import (
    OPEN_ATTEMPT_STATUSES,
    AttemptOperation,
    AttemptOutcome,
    AttemptStatus,
    attempt_status_for,
)
from paygrid.services.payments.attempts import UNREACHABLE, new_attempt

MIGRATIONS = Path(__file__).parents[2] / "src" / "paygrid" / "db" / "migrations" / "versions"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _last_check(column_check: str) -> set[str]:
    """The values the newest migration allows in a ``CHECK (... IN (...))`` constraint."""
    found: list[str] = []
    for path in sorted(MIGRATIONS.glob("*.py")):
        pattern = rf"{column_check}[^(]*\((.*?)\)\)"
        upgrade = re.split(r"(?i)downgrade", path.read_text())[0]
        found += re.findall(pattern, upgrade, re.S)
    assert found, column_check
    return set(re.findall(r"'(\w+)'", found[-1]))


def test_attempt_statuses_are_what_the_schema_allows() -> None:
    allowed = _last_check("payment_attempts_status_check CHECK \\(status IN")
    assert {status.value for status in AttemptStatus} == allowed


def test_attempt_operations_are_what_the_schema_allows() -> None:
    schema = (MIGRATIONS / "0001_payment_core.py").read_text()
    [values] = re.findall(r"operation\s+text NOT NULL CHECK \(operation IN \((.*?)\)\)", schema)
    assert {op.value for op in AttemptOperation} == set(re.findall(r"'(\w+)'", values))


@pytest.mark.parametrize("outcome", list(AttemptOutcome))
def test_every_provider_outcome_has_its_attempt_status(outcome: AttemptOutcome) -> None:
    status = attempt_status_for(outcome)
    assert status.value == outcome.value
    assert (status in OPEN_ATTEMPT_STATUSES) == (
        outcome in (AttemptOutcome.REQUIRES_ACTION, AttemptOutcome.UNKNOWN)
    )


def test_a_pending_attempt_is_open_and_a_skipped_one_closed() -> None:
    pending = new_attempt(
        "pay_1",
        AttemptOperation.AUTHORIZE,
        connector="simulator",
        account_id=None,
        amount=500,
        now=NOW,
        payment_method_id="pm_1",
    )
    assert pending.is_open and pending.completed_at is None and pending.sync_count == 0
    assert pending.id.startswith("att_") and pending.payment_method_id == "pm_1"
    skipped = new_attempt(
        "pay_1",
        AttemptOperation.AUTHORIZE,
        connector="stripe",
        account_id="ca_1",
        amount=500,
        now=NOW,
        status=AttemptStatus.UNREACHABLE,
        error=UNREACHABLE,
    )
    assert not skipped.is_open and skipped.completed_at == NOW
    assert (skipped.error_code, skipped.error_message) == (UNREACHABLE.code, UNREACHABLE.message)
    # Inserted with its enums as their stored text.
    columns = column_values(skipped)
    assert columns["status"] == "unreachable" and columns["operation"] == "authorize"
