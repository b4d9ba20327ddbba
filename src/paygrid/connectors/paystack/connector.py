"""The Paystack connector: HTTP calls with httpx; every translation lives in ``mapping``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

import httpx

from paygrid.connectors.base import (
    AccountConfig,
    AttemptResult,
    AuthorizeRequest,
    Capability,
    ConnectorError,
    InvalidCredentials,
    NoSuchCharge,
    OperationResult,
    OutcomeUnknown,
    ProviderEvent,
    ProviderUnreachable,
)
from paygrid.connectors.paystack import mapping, refund_notes, webhooks
from paygrid.connectors.paystack import reconciliation as recon_mapping
from paygrid.connectors.paystack import resync as resync_mapping
from paygrid.connectors.paystack import settlements as settlement_mapping
from paygrid.connectors.resync import ProviderChargeRecord
from paygrid.connectors.settlements import ProviderSettlement, ProviderSettlementTransaction
from paygrid.domain.reconciliation import ProviderCharge, ProviderRefund

DEFAULT_API_BASE: Final = "https://api.paystack.co"
# How far before a settlement the refunds it may have deducted are looked for.
REFUND_LOOKBACK: Final = timedelta(days=90)
# Failures before a single byte left: the request provably never reached Paystack.
_NEVER_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class PaystackConnector:
    """Paystack: hosted checkout (initialize + redirect), charges on saved authorizations,
    pending refunds and signed webhooks. Paystack deduplicates transaction references, and the
    reference is always our attempt id, so repeating an authorize is safe."""

    name = "paystack"
    capabilities = (
        Capability.REFUND
        | Capability.PARTIAL_REFUND
        | Capability.REDIRECT
        | Capability.SAVED_METHODS
        | Capability.WEBHOOKS
    )

    def __init__(
        self, config: AccountConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._secret_key = config.secret_key
        self._http = httpx.AsyncClient(
            base_url=config.api_base or DEFAULT_API_BASE,
            headers={"Authorization": f"Bearer {config.secret_key}"},
            timeout=config.timeout_seconds,
            transport=transport,
        )

    async def authorize(self, request: AuthorizeRequest) -> AttemptResult:
        """Without a saved method: initialize a transaction and send the customer to
        Paystack's page. With one (an ``AUTH_...`` code): charge it right away.
        Raises ``EmailRequired`` before any call when the request has no email."""
        if request.email is None:
            raise mapping.EmailRequired("Paystack needs the customer's email for every charge")
        if request.payment_method_token is None:
            return await self._initialize(request, request.email)
        return await self._charge_authorization(
            request, request.email, request.payment_method_token
        )

    async def _initialize(self, request: AuthorizeRequest, email: str) -> AttemptResult:
        body = mapping.initialize_body(
            reference=request.idempotency_key,
            email=email,
            amount=request.amount,
            currency=request.currency,
            channels=request.channels,
            callback_url=request.return_url,
            payment_id=request.payment_id,
            idempotency_key=request.merchant_idempotency_key,
        )
        status, envelope = await self._send("POST", "/transaction/initialize", body)
        if status == 200:
            return mapping.initialize_result(envelope)
        if mapping.is_duplicate_reference(envelope):
            # A retry of an attempt Paystack already has (we crashed after sending it).
            return await self.retrieve(request.idempotency_key, request.idempotency_key)
        return mapping.rejected_request(envelope)

    async def _charge_authorization(
        self, request: AuthorizeRequest, email: str, authorization_code: str
    ) -> AttemptResult:
        body = mapping.charge_authorization_body(
            reference=request.idempotency_key,
            email=email,
            amount=request.amount,
            currency=request.currency,
            authorization_code=authorization_code,
            payment_id=request.payment_id,
            idempotency_key=request.merchant_idempotency_key,
        )
        status, envelope = await self._send("POST", "/transaction/charge_authorization", body)
        if status == 200:
            return mapping.transaction_result(mapping.envelope_data(envelope))
        if mapping.is_duplicate_reference(envelope):
            return await self.retrieve(request.idempotency_key, request.idempotency_key)
        return mapping.rejected_request(envelope)

    async def retrieve(self, attempt_id: str, provider_reference: str | None) -> AttemptResult:
        """Verify the transaction: its reference is our attempt id. Raises ``NoSuchCharge``
        when Paystack does not know the reference (the initialize may not have arrived yet,
        or never will), ``OutcomeUnknown`` when it cannot say."""
        reference = provider_reference or attempt_id
        status, envelope = await self._send("GET", f"/transaction/verify/{reference}")
        if status == 404:  # "Transaction reference not found": a definite answer
            raise NoSuchCharge(f"Paystack has no transaction {reference}")
        if status != 200:
            raise OutcomeUnknown(f"Paystack cannot verify {reference}: {mapping.message(envelope)}")
        return mapping.transaction_result(mapping.envelope_data(envelope))

    async def capture(
        self, provider_reference: str, amount: int, idempotency_key: str
    ) -> OperationResult:
        """Paystack captures every charge at once; the service checks capabilities first."""
        raise mapping.UnsupportedOperation("Paystack has no manual capture")

    async def void(self, provider_reference: str, idempotency_key: str) -> OperationResult:
        """Paystack cannot release an authorization; refund instead."""
        raise mapping.UnsupportedOperation("Paystack has no void")

    async def refund(
        self,
        provider_reference: str,
        amount: int,
        idempotency_key: str,
        *,
        merchant_idempotency_key: str | None = None,
    ) -> OperationResult:
        """Create a refund; Paystack settles refunds later, so the result is usually
        ``pending`` with the refund id to sync. Paystack has no idempotency key and no
        metadata for refunds: paygrid's refund id and the merchant's key travel in
        ``merchant_note`` (``refund_notes``), for a person and for ``paygrid restore``."""
        body = {
            "transaction": provider_reference,
            "amount": amount,
            "merchant_note": refund_notes.refund_note(idempotency_key, merchant_idempotency_key),
        }
        status, envelope = await self._send("POST", "/refund", body)
        if status == 200:
            return mapping.refund_result(mapping.envelope_data(envelope))
        return mapping.rejected_refund(envelope)

    async def retrieve_refund(self, refund_reference: str) -> OperationResult:
        """The refund's current state by its Paystack id."""
        status, envelope = await self._send("GET", f"/refund/{refund_reference}")
        if status != 200:
            raise OutcomeUnknown(
                f"Paystack cannot find refund {refund_reference}: {mapping.message(envelope)}"
            )
        return mapping.refund_result(mapping.envelope_data(envelope))

    async def list_transactions(
        self, *, page: int = 1, per_page: int = 50, status: str | None = None
    ) -> tuple[list[mapping.ListedTransaction], int | None]:
        """One page of Paystack's transactions (newest first), for reconciliation; returns
        the rows and the next page number, or ``None`` after the last page."""
        query = f"/transaction?perPage={per_page}&page={page}"
        if status is not None:
            query += f"&status={status}"
        code, envelope = await self._send("GET", query)
        if code != 200:
            raise OutcomeUnknown(
                f"Paystack refused the transaction list: {mapping.message(envelope)}"
            )
        return mapping.listed_transactions(envelope)

    async def list_settlements(self, since: datetime) -> list[ProviderSettlement]:
        """Settlements (``GET /settlement``, newest first) down to those created before
        ``since``."""
        found: list[ProviderSettlement] = []
        page: int | None = 1
        while page is not None:
            items, page = await self._settlement_page(f"/settlement?perPage=50&page={page}")
            for item in items:
                settlement = settlement_mapping.settlement(item)
                if settlement.created_at < since:
                    return found
                found.append(settlement)
        return found

    async def settlement_transactions(
        self, settlement: ProviderSettlement
    ) -> list[ProviderSettlementTransaction]:
        """The transactions a settlement paid out (``GET /settlement/{id}/transactions``),
        and the refunds it deducted (``GET /refund``, newest first, back to
        ``REFUND_LOOKBACK`` before the settlement)."""
        found: list[ProviderSettlementTransaction] = []
        page: int | None = 1
        while page is not None:
            path = f"/settlement/{settlement.provider_id}/transactions?perPage=50&page={page}"
            items, page = await self._settlement_page(path)
            found.extend(settlement_mapping.settlement_transaction(item) for item in items)
        oldest = settlement.created_at - REFUND_LOOKBACK
        page = 1
        while page is not None:
            items, page = await self._settlement_page(f"/refund?perPage=100&page={page}")
            found.extend(
                settlement_mapping.refund_transaction(item)
                for item in items
                if settlement_mapping.deducted_by(item, settlement.provider_id)
            )
            if items and settlement_mapping.refund_created_at(items[-1]) < oldest:
                break
        return found

    async def _settlement_page(self, path: str) -> tuple[list[mapping.Json], int | None]:
        status, envelope = await self._send("GET", path)
        if status != 200:
            raise ConnectorError(f"Paystack refused {path}: {mapping.message(envelope)}")
        return settlement_mapping.settlement_page(envelope)

    async def reconciliation_charges(self, since: int) -> list[ProviderCharge]:
        """Transactions created at or after ``since`` (``GET /transaction``, newest first)."""
        return [
            recon_mapping.charge(item) for item in await self._newest_since("/transaction", since)
        ]

    async def resync_charges(self, since: int) -> list[ProviderChargeRecord]:
        """Transactions created at or after ``since`` with paygrid's metadata, for a
        restore's re-sync (``GET /transaction``, newest first)."""
        items = await self._newest_since("/transaction", since)
        return [resync_mapping.charge_record(item) for item in items]

    async def reconciliation_refunds(self, since: int) -> list[ProviderRefund]:
        """Refunds created at or after ``since`` (``GET /refund``, newest first)."""
        found = [recon_mapping.refund(item) for item in await self._newest_since("/refund", since)]
        return [refund for refund in found if refund is not None]

    async def _newest_since(self, path: str, since: int) -> list[mapping.Json]:
        """Every item of a newest-first list down to the first created before ``since``."""
        found: list[mapping.Json] = []
        page: int | None = 1
        while page is not None:
            status, envelope = await self._send("GET", f"{path}?perPage=100&page={page}")
            if status != 200:
                raise OutcomeUnknown(f"Paystack refused {path}: {mapping.message(envelope)}")
            items, page = recon_mapping.page(envelope)
            for item in items:
                if recon_mapping.unix(item.get("createdAt") or item.get("created_at")) < since:
                    return found
                found.append(item)
        return found

    def parse_webhook(
        self, raw_body: bytes, headers: Mapping[str, str], now: float
    ) -> ProviderEvent:
        """Check ``x-paystack-signature`` (Paystack signs no timestamp, so ``now`` is unused),
        then map the event."""
        payload = webhooks.verified_payload(raw_body, headers, self._secret_key)
        return mapping.event_from_payload(payload)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()

    async def _send(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, Mapping[str, Any]]:
        """One call. Returns (HTTP status, envelope) for answers Paystack gave on purpose;
        raises ``ProviderUnreachable`` when nothing was sent, ``OutcomeUnknown`` when the
        request may have been applied, ``InvalidCredentials`` on 401."""
        try:
            response = await self._http.request(method, path, json=body)
        except _NEVER_SENT as error:
            raise ProviderUnreachable(f"Paystack is unreachable: {type(error).__name__}") from error
        except httpx.TransportError as error:
            # ReadTimeout, ReadError, WriteError, RemoteProtocolError...: sent, maybe applied.
            raise OutcomeUnknown(f"no answer from Paystack: {type(error).__name__}") from error
        if response.status_code == 401:
            raise InvalidCredentials("Paystack rejected the secret key")
        if response.status_code >= 500:
            raise OutcomeUnknown(f"Paystack answered {response.status_code} to {method} {path}")
        try:
            envelope = response.json()
        except ValueError:
            envelope = None
        if not isinstance(envelope, Mapping):
            raise mapping.UnexpectedResponse(
                f"Paystack answered {response.status_code} without JSON"
            )
        return response.status_code, envelope
