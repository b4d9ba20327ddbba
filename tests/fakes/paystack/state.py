"""The fake's state and the rules that change it. One ``Merchant`` per secret key, so tests
that each use a fresh key never see each other's transactions. Only the server's event loop
touches this state, so it needs no locks."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

CURRENCIES: Final = frozenset({"NGN", "GHS", "ZAR", "KES", "USD"})
CHANNELS: Final = ("card", "bank", "ussd", "mobile_money", "bank_transfer", "qr")
SUCCESS_CARD: Final = "4084084084084081"
INSUFFICIENT_FUNDS_CARD: Final = "5061020283705678"
# Cards that pay at checkout (a reusable authorization) and whose later charges of that
# authorization (charge_authorization) fail with Paystack's gateway_response for the issuer's
# answer; the numbers are Stripe's declining test cards, as the simulator's are.
DECLINE_LATER_CARDS: Final[dict[str, str]] = {
    "4000000000000341": "Declined",
    "4000000000009979": "Stolen Card, Pick-Up",
    "4000000000009987": "Lost Card, Pick-Up",
    "4000000000009995": "Insufficient Funds",
    "4000000000000069": "Expired Card",
}
FAULT_MODES: Final = frozenset({"timeout_after", "timeout_before", "error_500_after", "error_503"})


class ApiError(Exception):
    """An error envelope ``{status: false, message, type, code}`` with its HTTP status."""

    def __init__(
        self, http_status: int, message: str, type_: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.type = type_
        self.code = code


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Authorization:
    code: str
    bin: str | None
    last4: str
    exp_month: str
    exp_year: str
    channel: str
    card_type: str
    bank: str
    brand: str
    reusable: bool
    signature: str
    country_code: str = "NG"
    decline_with: str | None = None  # set by a control call: later charges fail with this


@dataclass
class Customer:
    id: int
    email: str
    customer_code: str


@dataclass
class Transaction:
    id: int
    reference: str
    access_code: str
    amount: int
    currency: str
    customer: Customer
    channels: list[str]
    callback_url: str | None
    metadata: dict[str, Any] | str
    source: str  # checkout | merchantApi
    created_at: str = field(default_factory=now)
    status: str = "abandoned"
    gateway_response: str = "The transaction was not completed"
    channel: str = "card"
    paid_at: str | None = None
    authorization: Authorization | None = None
    refunded: int = 0  # refunds not failed (pending ones included): what is left to refund


@dataclass
class Refund:
    id: int
    transaction: Transaction
    amount: int
    merchant_note: str
    customer_note: str
    created_at: str = field(default_factory=now)
    status: str = "pending"
    refunded_at: str | None = None
    settlement: int | None = None  # the settlement that deducted it (settlements.py)


@dataclass
class Fault:
    mode: str
    remaining: int
    path: str | None  # only requests whose path starts with this
    hang_seconds: float


@dataclass
class Delivery:
    id: int
    event: str
    body: bytes
    signature: str
    url: str | None = None
    status_code: int | None = None
    error: str | None = None


@dataclass
class Merchant:
    secret_key: str
    integration: int
    auto_process_refunds: bool = False
    webhook_url: str | None = None
    transactions: dict[str, Transaction] = field(default_factory=dict)
    authorizations: dict[str, Authorization] = field(default_factory=dict)
    refunds: dict[int, Refund] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)


class FakeState:
    def __init__(self) -> None:
        self.merchants: dict[str, Merchant] = {}
        self.checkouts: dict[str, tuple[Merchant, Transaction]] = {}  # by access code
        self.sinks: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(4_100_000_001)

    def next_id(self) -> int:
        return next(self._ids)

    def add_merchant(self, secret_key: str | None, auto_process_refunds: bool) -> Merchant:
        key = secret_key or f"sk_test_{secrets.token_hex(20)}"
        merchant = Merchant(key, self.next_id(), auto_process_refunds)
        self.merchants[key] = merchant
        return merchant

    def customer(self, merchant: Merchant, email: str) -> Customer:
        if email not in merchant.customers:
            code = f"CUS_{secrets.token_hex(8)}"
            merchant.customers[email] = Customer(self.next_id(), email, code)
        return merchant.customers[email]

    def initialize(self, merchant: Merchant, body: dict[str, Any]) -> Transaction:
        email, amount, currency = _charge_fields(body)
        reference = _reference(body) or f"T{secrets.token_hex(8)}"
        if reference in merchant.transactions:
            raise ApiError(
                400, "Duplicate Transaction Reference", "validation_error", "duplicate_reference"
            )
        channels = body.get("channels") or list(CHANNELS)
        if not isinstance(channels, list) or not set(channels) <= set(CHANNELS):
            raise ApiError(400, "Invalid channels passed", "validation_error", "invalid_params")
        callback = body.get("callback_url")
        metadata = body.get("metadata") or {}
        transaction = Transaction(
            id=self.next_id(),
            reference=reference,
            access_code=secrets.token_hex(8),
            amount=amount,
            currency=currency,
            customer=self.customer(merchant, email),
            channels=channels,
            callback_url=callback if isinstance(callback, str) else None,
            metadata=metadata if isinstance(metadata, dict | str) else {},
            source="checkout",
        )
        merchant.transactions[reference] = transaction
        self.checkouts[transaction.access_code] = (merchant, transaction)
        return transaction

    def charge_authorization(self, merchant: Merchant, body: dict[str, Any]) -> Transaction:
        email, amount, currency = _charge_fields(body)
        code = body.get("authorization_code")
        authorization = merchant.authorizations.get(code) if isinstance(code, str) else None
        if authorization is None or not authorization.reusable:
            raise ApiError(400, "Invalid authorization code", "validation_error", "invalid_params")
        reference = _reference(body) or f"T{secrets.token_hex(8)}"
        if reference in merchant.transactions:
            raise ApiError(
                400, "Duplicate Transaction Reference", "validation_error", "duplicate_reference"
            )
        metadata = body.get("metadata") or ""
        transaction = Transaction(
            id=self.next_id(),
            reference=reference,
            access_code=secrets.token_hex(8),
            amount=amount,
            currency=currency,
            customer=self.customer(merchant, email),
            channels=["card"],
            callback_url=None,
            metadata=metadata if isinstance(metadata, dict | str) else "",
            source="merchantApi",
            channel=authorization.channel,
            authorization=authorization,
        )
        merchant.transactions[reference] = transaction
        if authorization.decline_with:
            decline(transaction, authorization.decline_with)
        else:
            succeed(transaction, authorization)
        return transaction

    def create_refund(self, merchant: Merchant, body: dict[str, Any]) -> Refund:
        transaction = find_transaction(merchant, body.get("transaction"))
        if transaction is None:
            raise ApiError(
                404, "Transaction not found", "validation_error", "transaction_not_found"
            )
        if transaction.status != "success":
            raise ApiError(
                400,
                "Cannot refund a transaction that was not successful",
                "validation_error",
                "invalid_params",
            )
        remaining = transaction.amount - transaction.refunded
        amount = _amount(body.get("amount", remaining))
        if amount > remaining:
            raise ApiError(
                400,
                "Refund amount cannot be greater than the transaction amount",
                "validation_error",
                "invalid_params",
            )
        if remaining == 0:
            raise ApiError(
                400,
                "Transaction has been fully reversed",
                "validation_error",
                "transaction_reversed",
            )
        currency = body.get("currency", transaction.currency)
        if currency != transaction.currency:
            raise ApiError(
                400, "Currency does not match the transaction", "validation_error", "invalid_params"
            )
        refund = Refund(
            id=self.next_id(),
            transaction=transaction,
            amount=amount,
            merchant_note=str(body.get("merchant_note") or ""),
            customer_note=str(body.get("customer_note") or ""),
        )
        transaction.refunded += amount
        merchant.refunds[refund.id] = refund
        return refund


def find_transaction(merchant: Merchant, key: object) -> Transaction | None:
    """By reference or by id, as ``POST /refund`` accepts either."""
    if isinstance(key, str) and key in merchant.transactions:
        return merchant.transactions[key]
    text = str(key)
    return next((t for t in merchant.transactions.values() if str(t.id) == text), None)


def succeed(transaction: Transaction, authorization: Authorization) -> None:
    transaction.status = "success"
    transaction.gateway_response = "Approved"
    transaction.paid_at = now()
    transaction.channel = authorization.channel
    transaction.authorization = authorization


def decline(transaction: Transaction, gateway_response: str) -> None:
    transaction.status = "failed"
    transaction.gateway_response = gateway_response


def finish_refund(merchant: Merchant, refund: Refund, status: str) -> None:
    """Settle a pending refund; a fully refunded transaction becomes ``reversed``."""
    refund.status = status
    transaction = refund.transaction
    if status == "failed":
        transaction.refunded -= refund.amount
        return
    refund.refunded_at = now()
    siblings = [r for r in merchant.refunds.values() if r.transaction is transaction]
    fully = transaction.refunded == transaction.amount
    if fully and all(r.status == "processed" for r in siblings if r.status != "failed"):
        transaction.status = "reversed"


def card_authorization(number: str, exp_month: str, exp_year: str) -> Authorization:
    brand = "verve" if number.startswith("506") else "visa" if number[0] == "4" else "mastercard"
    return Authorization(
        code=f"AUTH_{secrets.token_hex(5)}",
        bin=number[:6],
        last4=number[-4:],
        exp_month=exp_month.zfill(2),
        exp_year=exp_year,
        channel="card",
        card_type=f"{brand} ",
        bank="TEST BANK",
        brand=brand,
        reusable=True,
        signature=f"SIG_{secrets.token_hex(10)}",
        decline_with=DECLINE_LATER_CARDS.get(number),
    )


def channel_authorization(channel: str) -> Authorization:
    return Authorization(
        code=f"AUTH_{secrets.token_hex(5)}",
        bin=None,
        last4="X000",
        exp_month="12",
        exp_year="9999",
        channel=channel,
        card_type=channel,
        bank="TEST BANK",
        brand=channel,
        reusable=False,
        signature=f"SIG_{secrets.token_hex(10)}",
    )


def card_outcome(number: str, exp_month: str, exp_year: str) -> str | None:
    """None when the card pays; else Paystack's gateway_response for the failure."""
    if number == INSUFFICIENT_FUNDS_CARD:
        return "Insufficient Funds"
    if not (exp_month.isdigit() and exp_year.isdigit()):
        return "Invalid card expiry"
    today = datetime.now(UTC)
    if (int(exp_year), int(exp_month)) < (today.year, today.month):
        return "Expired Card"
    if number != SUCCESS_CARD and number not in DECLINE_LATER_CARDS:
        return "Declined"
    return None


def _charge_fields(body: dict[str, Any]) -> tuple[str, int, str]:
    email = body.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise ApiError(400, "Invalid Email Address Passed", "validation_error", "invalid_params")
    amount = _amount(body.get("amount"))
    currency = body.get("currency") or "NGN"
    if currency not in CURRENCIES:
        raise ApiError(
            400, "Currency not supported by merchant", "validation_error", "unsupported_currency"
        )
    return email, amount, currency


def _amount(value: object) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ApiError(400, "Invalid Amount Sent", "validation_error", "invalid_amount")
    return value


def _reference(body: dict[str, Any]) -> str | None:
    reference = body.get("reference")
    return reference if isinstance(reference, str) and reference else None
