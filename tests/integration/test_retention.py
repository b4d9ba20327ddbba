"""Data retention: the periodic jobs delete old webhook attempts and processed provider
webhook bodies, and keep what is recent, unfinished or still needs an operator."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import asyncpg

from paygrid.db import events as events_db
from paygrid.dependencies import Deps
from paygrid.ids import new_id
from paygrid.services import maintenance
from paygrid.services.merchants import NewMerchant
from paygrid.worker.registry import JobContext

OLD, RECENT = timedelta(days=40), timedelta(days=2)  # the defaults keep 30 days


def _context(deps: Deps) -> JobContext:
    return JobContext(deps, "job_direct", 1, "wkr_direct")


async def _delivery(pool: asyncpg.Pool, merchant_id: str, endpoint_id: str, status: str) -> str:
    async with pool.acquire() as conn, conn.transaction():
        event_id = await events_db.insert_event(
            conn,
            merchant_id=merchant_id,
            livemode=False,
            event_type="payment.succeeded",
            object_id="pay_retention",
            snapshot={"id": "pay_retention"},
        )
        await conn.execute("UPDATE events SET dispatched_at = now() WHERE id = $1", event_id)
        delivery_id = new_id("whd")
        await conn.execute(
            "INSERT INTO webhook_deliveries (id, merchant_id, livemode, endpoint_id, event_id,"
            " status, attempt_count) VALUES ($1, $2, false, $3, $4, $5, 2)",
            delivery_id,
            merchant_id,
            endpoint_id,
            event_id,
            status,
        )
    return delivery_id


async def _attempt(pool: asyncpg.Pool, delivery_id: str, age: timedelta) -> str:
    attempt_id = new_id("wha")
    await pool.execute(
        "INSERT INTO webhook_attempts (id, delivery_id, attempted_at, status_code, latency_ms,"
        " response_body) VALUES ($1, $2, now() - $3::interval, 500, 12, 'oops')",
        attempt_id,
        delivery_id,
        age,
    )
    return attempt_id


async def _endpoint(pool: asyncpg.Pool, merchant_id: str) -> str:
    endpoint_id = new_id("we")
    await pool.execute(
        "INSERT INTO webhook_endpoints (id, merchant_id, livemode, url, enabled_events,"
        " secret_ciphertext) VALUES ($1, $2, false, 'https://example.com/hook', '{*}', '\\x00')",
        endpoint_id,
        merchant_id,
    )
    return endpoint_id


async def _remaining(pool: asyncpg.Pool, table: str, ids: list[str]) -> set[str]:
    rows = await pool.fetch(
        f"SELECT id FROM {table} WHERE id = ANY($1::text[])",  # noqa: S608 - constant names
        ids,
    )
    return {r["id"] for r in rows}


async def test_old_attempts_of_finished_deliveries_are_purged(
    deps: Deps, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    endpoint = await _endpoint(pool, merchant.id)
    failed = await _delivery(pool, merchant.id, endpoint, "failed")
    succeeded = await _delivery(pool, merchant.id, endpoint, "succeeded")
    pending = await _delivery(pool, merchant.id, endpoint, "pending")
    old_failed = await _attempt(pool, failed, OLD)
    old_succeeded = await _attempt(pool, succeeded, OLD)
    recent = await _attempt(pool, succeeded, RECENT)
    old_pending = await _attempt(pool, pending, OLD)  # still retrying: its history is live

    await maintenance.purge_webhook_attempts({}, _context(deps))

    ids = [old_failed, old_succeeded, recent, old_pending]
    assert await _remaining(pool, "webhook_attempts", ids) == {recent, old_pending}
    deliveries = await _remaining(pool, "webhook_deliveries", [failed, succeeded, pending])
    assert deliveries == {failed, succeeded, pending}  # deliveries and their status stay


async def _connector_account(pool: asyncpg.Pool, merchant_id: str) -> str:
    account_id = new_id("ca")
    await pool.execute(
        "INSERT INTO connector_accounts (id, merchant_id, livemode, provider, currencies,"
        " credentials, secret_key_last4) VALUES ($1, $2, false, 'paystack', '{NGN}', '\\x00',"
        " '0000')",
        account_id,
        merchant_id,
    )
    return account_id


async def _provider_event(pool: asyncpg.Pool, account_id: str, status: str, age: timedelta) -> str:
    event_id = new_id("pwe")
    processed = status in ("applied", "ignored")
    await pool.execute(
        "INSERT INTO provider_webhook_events (id, connector_account_id, provider_event_id, type,"
        " body, status, received_at, processed_at) VALUES ($1, $2, $3, 'charge.success',"
        ' \'{"email": "ada@example.com"}\', $4, now() - $5::interval,'
        " CASE WHEN $6 THEN now() - $5::interval END)",
        event_id,
        account_id,
        f"prov_{event_id}",
        status,
        age,
        processed,
    )
    return event_id


async def test_old_processed_provider_events_are_purged_unmatched_kept(
    deps: Deps, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    account = await _connector_account(pool, merchant.id)
    old_applied = await _provider_event(pool, account, "applied", OLD)
    old_ignored = await _provider_event(pool, account, "ignored", OLD)
    old_unmatched = await _provider_event(pool, account, "unmatched", OLD)
    old_pending = await _provider_event(pool, account, "pending", OLD)
    recent_applied = await _provider_event(pool, account, "applied", RECENT)

    await maintenance.purge_provider_events({}, _context(deps))

    ids = [old_applied, old_ignored, old_unmatched, old_pending, recent_applied]
    assert await _remaining(pool, "provider_webhook_events", ids) == {
        old_unmatched,
        old_pending,
        recent_applied,
    }


async def test_retention_follows_the_settings(
    deps: Deps, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    account = await _connector_account(pool, merchant.id)
    two_days_old = await _provider_event(pool, account, "applied", RECENT)
    endpoint = await _endpoint(pool, merchant.id)
    attempt = await _attempt(pool, await _delivery(pool, merchant.id, endpoint, "failed"), RECENT)
    short = deps.settings.model_copy(
        update={"provider_event_retention_days": 1, "webhook_attempt_retention_days": 1}
    )
    context = JobContext(dataclasses.replace(deps, settings=short), "job_direct", 1, "wkr_direct")

    await maintenance.purge_provider_events({}, context)
    await maintenance.purge_webhook_attempts({}, context)

    assert await _remaining(pool, "provider_webhook_events", [two_days_old]) == set()
    assert await _remaining(pool, "webhook_attempts", [attempt]) == set()
