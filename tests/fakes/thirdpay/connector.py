"""Thirdpay's connector: charges kept in memory, cards tokenized by their last four digits."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Final

from paygrid.connectors.base import (
    AccountConfig,
    AttemptResult,
    AuthorizeRequest,
    Capability,
    CardDetails,
    InvalidSignature,
    OperationResult,
    ProviderEvent,
    TokenizedCard,
)
from paygrid.domain.payments import AttemptOutcome

NAME: Final = "thirdpay"
SIGNATURE_HEADER: Final = "x-thirdpay-signature"


class ThirdpayConnector:
    name = NAME
    capabilities = Capability.REFUND | Capability.CARD_TOKENIZATION | Capability.WEBHOOKS

    def __init__(self, config: AccountConfig) -> None:
        self._secret = config.secret_key
        self.charges: dict[str, AuthorizeRequest] = {}  # by our attempt id

    async def tokenize_card(self, card: CardDetails) -> TokenizedCard:
        """Any card is accepted; the token names its last four digits."""
        last4 = card.number[-4:]
        return TokenizedCard(f"tp_card_{last4}", "visa", last4, card.exp_month, card.exp_year)

    async def authorize(self, request: AuthorizeRequest) -> AttemptResult:
        """Every charge succeeds at once (Thirdpay has no manual capture)."""
        self.charges[request.idempotency_key] = request
        return AttemptResult(AttemptOutcome.CAPTURED, f"tp_{request.idempotency_key}")

    async def retrieve(self, attempt_id: str, provider_reference: str | None) -> AttemptResult:
        return AttemptResult(AttemptOutcome.CAPTURED, f"tp_{attempt_id}")

    async def capture(
        self, provider_reference: str, amount: int, idempotency_key: str
    ) -> OperationResult:
        return OperationResult(False, provider_reference, "thirdpay_has_no_manual_capture")

    async def void(self, provider_reference: str, idempotency_key: str) -> OperationResult:
        return OperationResult(False, provider_reference, "thirdpay_has_no_void")

    async def refund(
        self,
        provider_reference: str,
        amount: int,
        idempotency_key: str,
        *,
        merchant_idempotency_key: str | None = None,
    ) -> OperationResult:
        return OperationResult(True, f"tp_re_{idempotency_key}")

    async def retrieve_refund(self, refund_reference: str) -> OperationResult:
        return OperationResult(True, refund_reference)

    def parse_webhook(
        self, raw_body: bytes, headers: Mapping[str, str], now: float
    ) -> ProviderEvent:
        expected = hmac.new(self._secret.encode(), raw_body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get(SIGNATURE_HEADER, "").encode(), expected.encode()):
            raise InvalidSignature("the x-thirdpay-signature header does not match the body")
        event = json.loads(raw_body)
        return ProviderEvent(str(event["id"]), str(event["type"]))

    async def aclose(self) -> None:
        return None
