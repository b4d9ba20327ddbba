"""The connector contract every provider implements: a Protocol, capability flags, the
request/result dataclasses and the ``ConnectorError`` tree."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Flag, auto
from typing import Protocol

from paygrid.domain.payments import AttemptOutcome


class Capability(Flag):
    MANUAL_CAPTURE = auto()
    PARTIAL_CAPTURE = auto()
    VOID = auto()
    REFUND = auto()
    PARTIAL_REFUND = auto()
    THREE_DS = auto()
    SAVED_METHODS = auto()
    CARD_TOKENIZATION = auto()


@dataclass(frozen=True, slots=True)
class CardDetails:
    """Raw card data in transit to a tokenizer. Never stored, never logged."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str

    def __repr__(self) -> str:  # keeps the PAN out of tracebacks and logs
        return "CardDetails(<redacted>)"


@dataclass(frozen=True, slots=True)
class TokenizedCard:
    token: str  # the provider's reference for the card
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    idempotency_key: str  # our attempt id: the provider dedups on it
    amount: int
    currency: str
    capture: bool
    payment_method_token: str
    return_url: str  # where the provider sends the customer back after an action


@dataclass(frozen=True, slots=True)
class Decline:
    code: str  # one of our decline codes: card_declined, insufficient_funds, ...
    message: str
    decline_code: str | None = None


@dataclass(frozen=True, slots=True)
class AttemptResult:
    outcome: AttemptOutcome
    provider_reference: str | None
    redirect_url: str | None = None
    decline: Decline | None = None


@dataclass(frozen=True, slots=True)
class OperationResult:
    """The result of a capture, void or refund."""

    succeeded: bool
    provider_reference: str | None
    failure_reason: str | None = None


class Connector(Protocol):
    name: str
    capabilities: Capability

    async def authorize(self, request: AuthorizeRequest) -> AttemptResult:
        """Create and confirm a charge; ``capture=False`` only holds the funds."""
        ...

    async def retrieve(self, provider_reference: str) -> AttemptResult:
        """Ask the provider for the current outcome of an attempt (status sync)."""
        ...

    async def capture(
        self, provider_reference: str, amount: int, idempotency_key: str
    ) -> OperationResult:
        """Capture ``amount`` of an authorization; the rest is released."""
        ...

    async def void(self, provider_reference: str, idempotency_key: str) -> OperationResult:
        """Release an authorization."""
        ...

    async def refund(
        self, provider_reference: str, amount: int, idempotency_key: str
    ) -> OperationResult:
        """Return ``amount`` of captured money to the customer."""
        ...


class CardTokenizer(Protocol):
    async def tokenize_card(self, card: CardDetails) -> TokenizedCard:
        """Turn raw card data into a reusable token; raises ``InvalidCard``."""
        ...


class ConnectorError(Exception):
    """The provider call failed."""


class ProviderUnreachable(ConnectorError):
    """The request provably never reached the provider (safe to fail over)."""


class OutcomeUnknown(ConnectorError):
    """The request may have reached the provider; the outcome must be synced."""


class InvalidCard(ConnectorError):
    """The tokenizer rejected the card data; ``param`` names the card field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param
