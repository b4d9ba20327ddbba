"""Settlements in the Paystack fake, and the controls that make the provider's books disagree
with paygrid's (for reconciliation tests).

API (the merchant's Bearer key):

- ``GET /settlement`` (perPage, page): the merchant's settlements, newest first, in the shape
  of Paystack's documented answer: ``total_processed`` (what customers paid), ``total_fees``,
  ``deductions`` (refunds taken from it, ``null`` when none), ``effective_amount`` and
  ``total_amount`` (what reached the bank), ``status`` success|processing|pending|failed.
- ``GET /settlement/{id}/transactions`` (perPage, page): the transactions it paid out, each in
  the shape of ``GET /transaction``'s items, with the ``fees`` the settlement charged.
- ``GET /refund`` (perPage, page): the merchant's refunds, newest first; ``settlement`` names
  the settlement that deducted a refund (``null`` before).

Controls:

- ``POST /_fake/settlements`` ``{references?, status=success, effective_amount_delta=0}``:
  settle the given transactions (default: every successful one not settled yet), deducting
  refunds processed since the last settlement. A non-zero ``effective_amount_delta`` makes
  the settlement's totals disagree (nonsense a client must refuse).
- ``POST /_fake/discrepancies/fee`` ``{reference, fee}``: the next settlement charges this fee.
- ``POST /_fake/discrepancies/missing_charge`` ``{reference}``: the transaction vanishes from
  the API (verify answers 404, lists omit it): a payment missing at the provider.
- ``POST /_fake/discrepancies/unknown_charge`` ``{amount, currency=NGN, email?}``: a successful
  transaction paygrid never made; returns its ``reference``.
- ``POST /_fake/discrepancies/amount`` ``{reference, amount}``: the provider's amount differs.
- ``POST /_fake/discrepancies/status`` ``{reference, status}``: the provider's status differs.
- ``POST /_fake/discrepancies/dashboard_refund`` ``{reference, amount?}``: a processed refund
  made in Paystack's dashboard (no webhook); returns its ``id``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.routing import Route

from tests.fakes.paystack import payloads
from tests.fakes.paystack.state import (
    ApiError,
    Merchant,
    Refund,
    Transaction,
    channel_authorization,
    finish_refund,
    now,
    succeed,
)

if TYPE_CHECKING:
    from tests.fakes.paystack.app import FakePaystack

SETTLEMENT_STATUSES = frozenset({"success", "processing", "pending", "failed"})
TRANSACTION_STATUSES = frozenset({"success", "failed", "reversed", "abandoned", "pending"})


@dataclass
class Settlement:
    id: int
    currency: str
    status: str
    lines: list[tuple[Transaction, int]]  # each transaction with the fee charged on it
    deductions: int
    delta: int
    created_at: str = field(default_factory=now)

    @property
    def total_processed(self) -> int:
        return sum(t.amount for t, _ in self.lines)

    @property
    def total_fees(self) -> int:
        return sum(fee for _, fee in self.lines)

    @property
    def effective_amount(self) -> int:
        return self.total_processed - self.total_fees - self.deductions + self.delta


@dataclass
class Book:
    """One merchant's settlement state."""

    settlements: dict[int, Settlement] = field(default_factory=dict)
    settled: set[str] = field(default_factory=set)  # transaction references
    deducted: set[int] = field(default_factory=set)  # refund ids
    fees: dict[str, int] = field(default_factory=dict)  # injected fee by reference
    hidden: dict[str, Transaction] = field(default_factory=dict)  # missing at the provider


def default_fee(t: Transaction) -> int:
    """Paystack's fee as the fake's transaction payloads state it (1.5 %)."""
    return t.amount * 15 // 1000


class SettlementRoutes:
    def __init__(self, fake: FakePaystack) -> None:
        self.fake = fake
        self.books: dict[str, Book] = {}

    def book(self, merchant: Merchant) -> Book:
        return self.books.setdefault(merchant.secret_key, Book())

    def routes(self) -> list[Route]:
        api, ctl = self.fake._api, self.fake._control
        controls: dict[str, Callable[[Request, Merchant], Awaitable[dict[str, Any]]]] = {
            "fee": self.inject_fee,
            "missing_charge": self.inject_missing_charge,
            "unknown_charge": self.inject_unknown_charge,
            "amount": self.inject_amount,
            "status": self.inject_status,
            "dashboard_refund": self.inject_dashboard_refund,
        }
        return [
            Route("/settlement", api(self.list_settlements), methods=["GET"]),
            Route("/refund", api(self.list_refunds), methods=["GET"]),
            Route("/settlement/{id}/transactions", api(self.list_lines), methods=["GET"]),
            Route("/_fake/settlements", ctl(self.settle), methods=["POST"]),
            *(
                Route(f"/_fake/discrepancies/{kind}", ctl(handler), methods=["POST"])
                for kind, handler in controls.items()
            ),
        ]

    # -- Paystack's API -------------------------------------------------------------------

    async def list_settlements(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        rows = list(reversed(self.book(merchant).settlements.values()))
        chosen, meta = _page(request, rows)
        data = [self.settlement_json(merchant, s) for s in chosen]
        return payloads.envelope("Settlements retrieved", data, meta=meta)

    async def list_lines(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        raw = request.path_params["id"]
        settlement = self.book(merchant).settlements.get(int(raw)) if raw.isdigit() else None
        if settlement is None:
            raise ApiError(404, "Settlement not found", "validation_error")
        chosen, meta = _page(request, settlement.lines)
        meta["total_volume"] = sum(t.amount for t, _ in settlement.lines)
        data = [{**payloads.listed(t), "fees": fee} for t, fee in chosen]
        return payloads.envelope("Transactions retrieved", data, meta=meta)

    async def list_refunds(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        """``GET /refund``: newest first, each naming the settlement that deducted it."""
        rows = list(reversed(merchant.refunds.values()))
        chosen, meta = _page(request, rows)
        meta["perPage"] = str(meta["perPage"])  # a string in the spec's list meta
        meta["failedRefundCount"] = sum(1 for r in rows if r.status == "failed")
        data = [payloads.refund_fetched(merchant, r) for r in chosen]
        return payloads.envelope("Refunds retrieved", data, meta=meta)

    def settlement_json(self, merchant: Merchant, s: Settlement) -> dict[str, Any]:
        return {
            "id": s.id,
            "domain": payloads.DOMAIN,
            "status": s.status,
            "currency": s.currency,
            "integration": merchant.integration,
            "total_amount": s.effective_amount,
            "effective_amount": s.effective_amount,
            "total_fees": s.total_fees,
            "total_processed": s.total_processed,
            "deductions": s.deductions or None,
            "settlement_date": s.created_at,
            "settled_by": None,
            "createdAt": s.created_at,
            "updatedAt": s.created_at,
        }

    # -- controls -------------------------------------------------------------------------

    async def settle(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        body = await _json(request)
        book = self.book(merchant)
        status = body.get("status", "success")
        if status not in SETTLEMENT_STATUSES:
            raise ApiError(400, f"status must be one of {sorted(SETTLEMENT_STATUSES)}")
        references = body.get("references")
        chosen = [
            t
            for t in merchant.transactions.values()
            if t.status == "success"
            and t.reference not in book.settled
            and (references is None or t.reference in references)
        ]
        if not chosen:
            raise ApiError(400, "Nothing to settle")
        currency = chosen[0].currency
        if any(t.currency != currency for t in chosen):
            raise ApiError(400, "A settlement is in one currency: pass references")
        refunds = [
            r
            for r in merchant.refunds.values()
            if r.status == "processed"
            and r.id not in book.deducted
            and r.transaction.currency == currency
        ]
        settlement = Settlement(
            id=self.fake.state.next_id(),
            currency=currency,
            status=status,
            lines=[(t, book.fees.pop(t.reference, default_fee(t))) for t in chosen],
            deductions=sum(r.amount for r in refunds),
            delta=int(body.get("effective_amount_delta", 0)),
        )
        book.settlements[settlement.id] = settlement
        book.settled.update(t.reference for t in chosen)
        book.deducted.update(r.id for r in refunds)
        for refund in refunds:
            refund.settlement = settlement.id
        return self.settlement_json(merchant, settlement)

    async def inject_fee(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        body = await _json(request)
        transaction = _transaction(merchant, body)
        self.book(merchant).fees[transaction.reference] = int(body["fee"])
        return {"reference": transaction.reference, "fee": int(body["fee"])}

    async def inject_missing_charge(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        transaction = _transaction(merchant, await _json(request))
        del merchant.transactions[transaction.reference]
        self.book(merchant).hidden[transaction.reference] = transaction
        return {"reference": transaction.reference}

    async def inject_unknown_charge(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        body = await _json(request)
        email = str(body.get("email") or "walk-in@example.com")
        fields = {"email": email, "amount": body["amount"], "currency": body.get("currency")}
        transaction = self.fake.state.initialize(merchant, {k: v for k, v in fields.items() if v})
        transaction.source = "merchantApi"
        auth = channel_authorization("bank_transfer")
        merchant.authorizations[auth.code] = auth
        succeed(transaction, auth)
        return {"reference": transaction.reference, "id": transaction.id}

    async def inject_amount(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        body = await _json(request)
        transaction = _transaction(merchant, body)
        transaction.amount = int(body["amount"])
        return {"reference": transaction.reference, "amount": transaction.amount}

    async def inject_status(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        body = await _json(request)
        if body.get("status") not in TRANSACTION_STATUSES:
            raise ApiError(400, f"status must be one of {sorted(TRANSACTION_STATUSES)}")
        transaction = _transaction(merchant, body)
        transaction.status = str(body["status"])
        return {"reference": transaction.reference, "status": transaction.status}

    async def inject_dashboard_refund(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        body = await _json(request)
        transaction = _transaction(merchant, body)
        refund_body: dict[str, Any] = {"transaction": transaction.reference}
        if "amount" in body:
            refund_body["amount"] = body["amount"]
        refund: Refund = self.fake.state.create_refund(merchant, refund_body)
        finish_refund(merchant, refund, "processed")
        return {"id": refund.id, "amount": refund.amount, "reference": transaction.reference}


def _transaction(merchant: Merchant, body: dict[str, Any]) -> Transaction:
    transaction = merchant.transactions.get(str(body.get("reference")))
    if transaction is None:
        raise ApiError(404, "Transaction reference not found", "validation_error")
    return transaction


def _page(request: Request, rows: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    query = request.query_params
    per_page = max(1, int(query.get("perPage") or 50))
    page = max(1, int(query.get("page") or 1))
    meta = {
        "total": len(rows),
        "skipped": (page - 1) * per_page,
        "perPage": per_page,
        "page": page,
        "pageCount": max(1, -(-len(rows) // per_page)),
    }
    return rows[(page - 1) * per_page : page * per_page], meta


async def _json(request: Request) -> dict[str, Any]:
    from tests.fakes.paystack.app import _body

    return await _body(request)
