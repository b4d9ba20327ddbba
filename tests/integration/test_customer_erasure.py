"""GDPR erasure (``paygrid customers erase``): the customer's personal data disappears from
every table that held it, snapshots included; payments and their amounts stay; the erasure is
in the audit log."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import asyncpg
import pytest

from paygrid.clock import SYSTEM_CLOCK
from paygrid.domain.errors import ResourceMissing
from paygrid.services.customers import erase_customer
from paygrid.services.merchants import NewMerchant
from tests.conftest import Api, confirmed_payment

EMAIL = "ada.erasure@example.com"
NAME = "Ada Erasure-Lovelace"
PHONE = "+2348011122233"
OTHER_RECEIPT = "ada.work@example.org"
SECRETS = (EMAIL, NAME, PHONE, OTHER_RECEIPT, "Analytical Engine Street 12", "Tea for Ada")


async def _text_of(pool: asyncpg.Pool, merchant_id: str) -> dict[str, str]:
    """Every row the merchant owns in the tables that can hold personal data, as text."""
    queries = {
        "customers": "SELECT c::text FROM customers c WHERE merchant_id = $1",
        "payments": "SELECT p::text FROM payments p WHERE merchant_id = $1",
        "payment_methods": "SELECT m::text FROM payment_methods m WHERE merchant_id = $1",
        "events": "SELECT e::text FROM events e WHERE merchant_id = $1",
        "idempotency_keys": "SELECT convert_from(response_body, 'UTF8') FROM idempotency_keys"
        " WHERE merchant_id = $1 AND response_body IS NOT NULL",
        "audit_log": "SELECT a::text FROM audit_log a WHERE merchant_id = $1",
    }
    return {
        table: "\n".join(r[0] for r in await pool.fetch(sql, merchant_id))
        for table, sql in queries.items()
    }


async def _person(api: Api) -> dict[str, Any]:
    customer = await api.post(
        "/v1/customers",
        {
            "email": EMAIL,
            "name": NAME,
            "phone": PHONE,
            "metadata": {"address": "Analytical Engine Street 12"},
        },
    )
    assert customer.status_code == 200, customer.text
    cus = customer.json()["id"]
    renamed = await api.post(f"/v1/customers/{cus}", {"metadata": {"tier": "gold"}})
    assert renamed.status_code == 200, renamed.text
    method = await api.post(
        "/v1/payment_methods",
        {
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
            "customer": cus,
            "metadata": {"holder": NAME},
        },
    )
    assert method.status_code == 200, method.text
    paid = await api.post(
        "/v1/payments",
        confirmed_payment(
            customer=cus,
            receipt_email=EMAIL,
            description="Tea for Ada",
            metadata={"order_number": "1043"},
        ),
        **{"Idempotency-Key": "erase-me-1"},
    )
    assert paid.status_code == 200, paid.text
    # Same person, another address, not linked to the customer object.
    by_email = await api.post(
        "/v1/payments", confirmed_payment(receipt_email=EMAIL, description=f"For {OTHER_RECEIPT}")
    )
    assert by_email.status_code == 200, by_email.text
    work = await api.post(
        "/v1/payments", confirmed_payment(customer=cus, receipt_email=OTHER_RECEIPT)
    )
    assert work.status_code == 200, work.text
    return {
        "customer": cus,
        "payments": [paid.json()["id"], by_email.json()["id"], work.json()["id"]],
        "method": method.json()["id"],
    }


async def test_erasure_removes_personal_data_everywhere_and_keeps_payments(
    api: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    person = await _person(api)
    stranger = await api.post(
        "/v1/payments",
        confirmed_payment(
            receipt_email="grace@example.com",
            description="Shipped to Canada",
            metadata={"note": "Ada is not this customer"},
        ),
    )
    before = await _text_of(pool, merchant.id)
    assert EMAIL in before["events"] and EMAIL in before["idempotency_keys"]
    assert NAME in before["audit_log"]

    erasure = await erase_customer(
        pool, merchant.id, person["customer"], "cli:dpo", now=SYSTEM_CLOCK.now()
    )

    after = await _text_of(pool, merchant.id)
    for table, text in after.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} still in {table}"
    assert erasure.payments == 3 and erasure.payment_methods == 1 and erasure.events > 0

    rows = await pool.fetch(
        "SELECT id, amount, status, metadata, receipt_email FROM payments WHERE id = ANY($1)",
        person["payments"],
    )
    assert len(rows) == 3 and all(r["amount"] == 1000 and r["status"] == "succeeded" for r in rows)
    assert {r["receipt_email"] for r in rows} == {None}
    assert {"order_number": "[erased]"} in [r["metadata"] for r in rows]  # keys stay
    customer = await api.get(f"/v1/customers/{person['customer']}")
    assert customer.status_code == 200
    assert customer.json() | {"email": None, "name": None, "phone": None, "metadata": {}} == (
        customer.json()
    )
    unrelated = await api.get(f"/v1/payments/{stranger.json()['id']}")
    assert unrelated.json()["receipt_email"] == "grace@example.com"
    assert unrelated.json()["description"] == "Shipped to Canada"

    entry = await pool.fetchrow(
        "SELECT actor, before, after FROM audit_log WHERE action = 'customer.erased'"
        " AND object_id = $1",
        person["customer"],
    )
    assert entry is not None and entry["actor"] == "cli:dpo" and entry["before"] is None
    assert entry["after"]["payments"] == 3


async def test_erasing_another_merchants_customer_is_refused(
    api: Api, other_merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    created = await api.post("/v1/customers", {"email": EMAIL})
    with pytest.raises(ResourceMissing):
        await erase_customer(
            pool, other_merchant.id, created.json()["id"], "cli:dpo", now=SYSTEM_CLOCK.now()
        )
    assert (await api.get(f"/v1/customers/{created.json()['id']}")).json()["email"] == EMAIL


async def test_cli_erase(database_url: str, api: Api, merchant: NewMerchant) -> None:
    created = await api.post("/v1/customers", {"email": EMAIL, "name": NAME})
    cus = created.json()["id"]
    result = subprocess.run(
        [sys.executable, "-m", "paygrid.cli", "customers", "erase", cus,
         "--merchant", merchant.id, "--actor", "ops:ticket-42", "--yes"],
        env={**os.environ, "PAYGRID_DATABASE_URL": database_url, "COLUMNS": "200"},
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"erased {cus}" in result.stdout
    assert (await api.get(f"/v1/customers/{cus}")).json()["email"] is None
    # The merchant is found from the customer id when not given.
    other = (await api.post("/v1/customers", {"email": EMAIL, "name": NAME})).json()["id"]
    bare = subprocess.run(
        [sys.executable, "-m", "paygrid.cli", "customers", "erase", other, "--yes"],
        env={**os.environ, "PAYGRID_DATABASE_URL": database_url, "COLUMNS": "200"},
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert bare.returncode == 0, bare.stderr
    assert (await api.get(f"/v1/customers/{other}")).json()["name"] is None
