"""The Paystack fake's settlements against Paystack's OpenAPI spec (PAYGRID_TEST_PAYSTACK_SPEC,
read in place), its discrepancy controls, and the Paystack connector reading them.

The spec describes ``GET /settlement`` with its generic ``Response`` (``data`` an object, no
fields), while Paystack answers a list like every other list: the envelope is validated
against the spec, the items against the fields Paystack documents for a settlement. A
settlement's transactions are transactions: ``GET /settlement/{id}/transactions`` is
validated whole against the spec's ``GET /transaction`` answer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jsonschema

from paygrid.connectors.base import AccountConfig
from paygrid.connectors.paystack.connector import PaystackConnector
from paygrid.domain.settlements import SettlementStatus, SettlementTransactionType
from tests.connectors.test_paystack_fake import (
    _spec,
    assert_conforms,
    paid_transaction,
    response_schema,
)
from tests.fakes.paystack import FakeMerchant, PaystackFake

# The fields of a settlement as Paystack documents them (List Settlements).
SETTLEMENT = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "id",
        "domain",
        "status",
        "currency",
        "integration",
        "total_amount",
        "effective_amount",
        "total_fees",
        "total_processed",
        "deductions",
        "settlement_date",
        "settled_by",
        "createdAt",
        "updatedAt",
    ],
    "properties": {
        "id": {"type": "integer"},
        "domain": {"type": "string"},
        "status": {"enum": ["success", "processing", "pending", "failed"]},
        "currency": {"type": "string"},
        "integration": {"type": "integer"},
        "total_amount": {"type": "integer"},
        "effective_amount": {"type": "integer"},
        "total_fees": {"type": "integer"},
        "total_processed": {"type": "integer"},
        "deductions": {"type": ["integer", "null"]},
        "settlement_date": {"type": "string"},
        "settled_by": {"type": ["string", "null"]},
        "createdAt": {"type": "string"},
        "updatedAt": {"type": "string"},
    },
}


def _reference() -> str:
    return f"ref-{uuid.uuid4().hex[:12]}"


async def test_settlement_answers_match_the_spec(paystack_merchant: FakeMerchant) -> None:
    first, second = _reference(), _reference()
    await paid_transaction(paystack_merchant, first, amount=40_000)
    await paid_transaction(paystack_merchant, second, amount=60_000)
    await paystack_merchant.api("POST", "/refund", {"transaction": first, "amount": 5_000})
    await paystack_merchant.process_refunds()
    made = await paystack_merchant.settle()

    listed = await paystack_merchant.api("GET", "/settlement?perPage=10&page=1")
    assert_conforms_envelope(listed.json())
    (settlement,) = listed.json()["data"]
    jsonschema.Draft7Validator(SETTLEMENT).validate(settlement)
    assert settlement == made
    assert (settlement["total_processed"], settlement["deductions"]) == (100_000, 5_000)
    assert settlement["total_fees"] == 40_000 * 15 // 1000 + 60_000 * 15 // 1000
    assert (
        settlement["total_processed"] - settlement["deductions"] - settlement["total_fees"]
        == settlement["effective_amount"]
    )

    lines = await paystack_merchant.api("GET", f"/settlement/{settlement['id']}/transactions")
    assert_conforms(lines, "/transaction", "get", "200")
    assert {t["reference"] for t in lines.json()["data"]} == {first, second}
    assert lines.json()["meta"]["total"] == 2

    refunds = await paystack_merchant.api("GET", "/refund?perPage=10&page=1")
    assert_conforms(refunds, "/refund", "get", "200")
    (refund,) = refunds.json()["data"]
    assert (refund["settlement"], refund["amount"]) == (settlement["id"], 5_000)

    parameters = {p["name"] for p in _spec_operation("/settlement")["parameters"]}
    assert {"perPage", "page"} <= parameters
    (path_id,) = _spec_operation("/settlement/{id}/transactions")["parameters"]
    assert path_id["schema"]["type"] == "integer" and isinstance(settlement["id"], int)


async def test_settlement_errors_match_the_spec(
    paystack_fake: PaystackFake, paystack_merchant: FakeMerchant
) -> None:
    missing = await paystack_merchant.api("GET", "/settlement/12345/transactions")
    assert_conforms(missing, "/settlement/{id}/transactions", "get", "404")
    async with httpx.AsyncClient(base_url=paystack_fake.base_url) as http:
        refused = await http.get("/settlement", headers={"Authorization": "Bearer sk_test_nobody"})
    assert_conforms(refused, "/settlement", "get", "401")


async def test_an_injected_fee_is_charged_in_the_next_settlement(
    paystack_merchant: FakeMerchant,
) -> None:
    reference = _reference()
    await paid_transaction(paystack_merchant, reference, amount=100_000)
    await paystack_merchant.inject("fee", reference=reference, fee=2_345)
    made = await paystack_merchant.settle()
    assert (made["total_fees"], made["effective_amount"]) == (2_345, 100_000 - 2_345)
    lines = await paystack_merchant.api("GET", f"/settlement/{made['id']}/transactions")
    assert [t["fees"] for t in lines.json()["data"]] == [2_345]
    nothing = await paystack_merchant.api("POST", "/_fake/settlements", {})
    assert nothing.status_code == 400  # a transaction is settled once


async def test_the_other_discrepancies_change_what_paystack_reports(
    paystack_merchant: FakeMerchant,
) -> None:
    gone, drifted, refunded = _reference(), _reference(), _reference()
    for reference in (gone, drifted, refunded):
        await paid_transaction(paystack_merchant, reference, amount=30_000)
    await paystack_merchant.inject("missing_charge", reference=gone)
    assert (await paystack_merchant.api("GET", f"/transaction/verify/{gone}")).status_code == 404
    await paystack_merchant.inject("amount", reference=drifted, amount=31_000)
    await paystack_merchant.inject("status", reference=drifted, status="reversed")
    verified = (await paystack_merchant.api("GET", f"/transaction/verify/{drifted}")).json()
    assert (verified["data"]["amount"], verified["data"]["status"]) == (31_000, "reversed")
    unknown = await paystack_merchant.inject("unknown_charge", amount=12_000, currency="NGN")
    found = await paystack_merchant.api("GET", f"/transaction/verify/{unknown['reference']}")
    assert found.json()["data"]["status"] == "success"
    refund = await paystack_merchant.inject("dashboard_refund", reference=refunded, amount=1_000)
    fetched = (await paystack_merchant.api("GET", f"/refund/{refund['id']}")).json()
    assert (fetched["data"]["status"], fetched["data"]["amount"]) == ("processed", 1_000)
    sent = {d.event for d in await paystack_merchant.webhooks()}
    assert not sent & {"refund.pending", "refund.processed"}, "paygrid never hears of it"


async def test_the_connector_reads_settlements(
    paystack_fake: PaystackFake, paystack_merchant: FakeMerchant
) -> None:
    reference = _reference()
    await paid_transaction(paystack_merchant, reference, amount=70_000)
    await paystack_merchant.api("POST", "/refund", {"transaction": reference, "amount": 2_000})
    await paystack_merchant.process_refunds()
    made = await paystack_merchant.settle(status="processing")
    created = datetime.fromisoformat(made["createdAt"].replace("Z", "+00:00"))
    config = AccountConfig(
        id="ca_test",
        provider="paystack",
        livemode=False,
        secret_key=paystack_merchant.secret_key,
        api_base=paystack_fake.base_url,
    )
    connector = PaystackConnector(config)
    try:
        (settlement,) = await connector.list_settlements(created - timedelta(days=1))
        (line, deducted) = await connector.settlement_transactions(settlement)
        later = await connector.list_settlements(created + timedelta(seconds=1))
    finally:
        await connector.aclose()
    assert (settlement.status, settlement.net) == (
        SettlementStatus.IN_TRANSIT,
        70_000 - 1_050 - 2_000,
    )
    assert (line.payment_reference, line.gross, line.fee) == (reference, 70_000, 1_050)
    assert (deducted.type, deducted.gross, deducted.fee, deducted.net) == (
        SettlementTransactionType.REFUND,
        -2_000,
        0,
        -2_000,
    )
    assert deducted.refund_reference is not None and deducted.source_id == reference
    assert later == []
    assert settlement.created_at.tzinfo is UTC or settlement.created_at.utcoffset() == timedelta(0)


def assert_conforms_envelope(body: dict[str, Any]) -> None:
    """The envelope (status, message, meta) against the spec's answer for ``/settlement``;
    ``data`` is a list of settlements (checked with ``SETTLEMENT``)."""
    schema = response_schema("/settlement", "get", "200")
    jsonschema.Draft7Validator(schema).validate({k: v for k, v in body.items() if k != "data"})
    assert set(schema["properties"]) >= {"status", "message", "data"}
    assert body["status"] is True and isinstance(body["data"], list)


def _spec_operation(path: str) -> dict[str, Any]:
    response_schema(path, "get", "200")  # skips (or fails in CI) without the spec
    spec = _spec()
    assert spec is not None
    operation: dict[str, Any] = spec["paths"][path]["get"]
    return operation
