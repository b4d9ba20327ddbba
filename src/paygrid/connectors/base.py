"""The connector contract every provider implements: a Protocol, capability flags, the
request/result dataclasses and the ``ConnectorError`` tree."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Flag, auto
from typing import Protocol, runtime_checkable

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
    REDIRECT = auto()  # a hosted page at the provider (Paystack's checkout)
    WEBHOOKS = auto()  # signed inbound events at /v1/provider_webhooks/{account}
    # Refund calls carry an idempotency key, so a refund whose answer was lost can be sent
    # again safely. Without it (Paystack) such a refund is left for status sync/reconciliation.
    IDEMPOTENT_REFUNDS = auto()


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """What a connector instance is built from: one connector account, decrypted."""

    id: str  # the connector account id (``ca_...``); ``simulator`` for the built-in one
    provider: str  # stripe | paystack | simulator
    livemode: bool
    secret_key: str = field(repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    api_base: str | None = None  # test mode only: a local fake
    timeout_seconds: float = 30.0


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
    country: str | None = None  # the issuing country, when the provider says


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    idempotency_key: str  # our attempt id: the provider dedups on it
    amount: int
    currency: str
    capture: bool
    payment_method_token: str | None  # None: a hosted/redirect flow (Paystack initialize)
    return_url: str  # where the provider sends the customer back after an action
    payment_id: str = ""  # ours; sent as metadata so provider events map back
    email: str | None = None  # the customer's; Paystack requires one
    channels: tuple[str, ...] = ()  # Paystack channels: card, bank, ussd, mobile_money, ...
    customer_reference: str | None = None  # the provider's customer id, when known
    # A merchant-initiated charge of a saved method (the customer is not there to
    # authenticate): providers flag it (Stripe ``off_session``) and never ask for 3-D Secure.
    off_session: bool = False
    # Save the method for later off-session charges once this charge is authenticated.
    setup_future_usage: bool = False
    # The merchant's Idempotency-Key, sent as metadata beside ``payment_id`` so that
    # ``paygrid restore`` can re-import a charge made after the backup under its key.
    merchant_idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class AmountRefusal:
    """Why a provider is known to refuse an amount: said before it is called, so the
    payment fails with a clear 400 instead of a provider error."""

    code: str  # amount_too_small, amount_too_large or amount_invalid
    message: str


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
    # A reusable method the provider returned (Paystack's authorization_code), to save.
    saved_method: TokenizedCard | None = None
    channel: str | None = None  # how the customer paid, when the provider says


@dataclass(frozen=True, slots=True)
class OperationResult:
    """The result of a capture, void or refund."""

    succeeded: bool
    provider_reference: str | None
    failure_reason: str | None = None
    pending: bool = False  # accepted, not final yet (Paystack refunds); synced later


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One inbound provider webhook, parsed by the connector's pure mapping code."""

    event_id: str  # the provider's id, for deduplication
    type: str  # the provider's event type, e.g. ``payment_intent.succeeded``
    # What the event is about: an authorization attempt (by our attempt id when the provider
    # echoes it, else the provider's reference) or a refund (by the provider's refund id).
    attempt_id: str | None = None
    provider_reference: str | None = None
    attempt_result: AttemptResult | None = None
    refund_reference: str | None = None
    refund_result: OperationResult | None = None


class Connector(Protocol):
    name: str
    capabilities: Capability

    async def authorize(self, request: AuthorizeRequest) -> AttemptResult:
        """Create and confirm a charge; ``capture=False`` only holds the funds."""
        ...

    async def retrieve(self, attempt_id: str, provider_reference: str | None) -> AttemptResult:
        """Ask the provider for the current outcome of an attempt (status sync). Without a
        provider reference (the create timed out), find it by our attempt id. Raises
        ``OutcomeUnknown`` while the provider cannot say."""
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
        self,
        provider_reference: str,
        amount: int,
        idempotency_key: str,
        *,
        merchant_idempotency_key: str | None = None,
    ) -> OperationResult:
        """Return ``amount`` of captured money to the customer. ``pending`` when the
        provider settles refunds later. ``idempotency_key`` is paygrid's refund id when a
        refund of the API makes the call; ``merchant_idempotency_key`` the merchant's key of
        that refund: providers that keep metadata store both with the refund, so that
        ``paygrid restore`` re-imports it under them."""
        ...

    async def retrieve_refund(self, refund_reference: str) -> OperationResult:
        """The current state of a refund the provider accepted as pending."""
        ...

    def parse_webhook(
        self, raw_body: bytes, headers: Mapping[str, str], now: float
    ) -> ProviderEvent:
        """Verify the signature over the raw bytes (constant time) and map the event;
        raises ``InvalidSignature``. ``now`` is the Unix time, for timestamp tolerance."""
        ...

    async def aclose(self) -> None:
        """Release HTTP connections."""
        ...


@runtime_checkable
class CardTokenizer(Protocol):
    async def tokenize_card(self, card: CardDetails) -> TokenizedCard:
        """Turn raw card data into a reusable token; raises ``InvalidCard``."""
        ...


@runtime_checkable
class TokenDescriber(Protocol):
    """Providers whose own client-side fields tokenize cards (Stripe.js): paygrid accepts
    their token and asks the provider what card it is."""

    async def describe_token(self, token: str) -> TokenizedCard:
        """The card behind a provider token; raises ``InvalidCard`` when there is none."""
        ...


@dataclass(frozen=True, slots=True)
class SetupRequest:
    """Verify and authenticate a saved method for later off-session charges, without
    charging it (a setup intent's confirm)."""

    idempotency_key: str  # the setup intent's attempt key: the provider dedups on it
    payment_method_token: str
    return_url: str  # where the provider sends the customer back after 3-D Secure
    setup_intent_id: str = ""  # ours; sent as metadata
    customer_reference: str | None = None  # the provider's customer id, when known


@runtime_checkable
class MethodSetup(Protocol):
    """Providers that can save a method for off-session use without charging it (a
    zero-amount verification with 3-D Secure when the card needs it)."""

    async def setup_method(self, request: SetupRequest) -> AttemptResult:
        """``AUTHORIZED`` when the method is set up, ``REQUIRES_ACTION`` (with the
        customer's URL) while 3-D Secure is pending, ``DECLINED`` otherwise."""
        ...

    async def retrieve_setup(self, idempotency_key: str, reference: str) -> AttemptResult:
        """The current outcome of a setup (after the customer's 3-D Secure)."""
        ...


@runtime_checkable
class CustomerVault(Protocol):
    """Providers that keep customers and attach saved payment methods to them (Stripe)."""

    async def create_customer(
        self, email: str | None, name: str | None, idempotency_key: str
    ) -> str:
        """Create the provider's customer; returns its id."""
        ...

    async def attach_payment_method(self, token: str, customer_reference: str) -> None:
        """Attach a tokenized payment method to the provider's customer."""
        ...


@dataclass(frozen=True, slots=True)
class ProviderFacts:
    """What paygrid knows of a provider without building a connector: the one interface each
    provider package exports (as ``FACTS``) and the registry collects. Services and routing
    read these from the registry, never from a provider module by name."""

    name: str  # stored on accounts, attempts and payment methods: stripe, paystack, ...
    display_name: str  # in messages: Stripe, Paystack, ...
    capabilities: Capability
    currencies: frozenset[str]  # what an account of this provider may process
    # A connector for one account; ``None`` for the built-in simulator (the registry's own).
    build: Callable[[AccountConfig], Connector] | None
    credentials_required: bool = True  # a secret key (and the prefixes below) is required
    test_key_prefixes: tuple[str, ...] = ()
    live_key_prefixes: tuple[str, ...] = ()
    webhook_key_prefix: str | None = None  # a separate webhook secret is taken: its prefix
    webhook_key_refusal: str | None = None  # why a webhook secret is refused, when it is
    signature_headers: frozenset[str] = frozenset()  # lowercase; kept with inbound events
    requires_email: bool = False  # the customer's email is needed to charge
    # The default order: accounts of providers that prefer the payment's currency first, then
    # by rank (lower first), then by account id.
    preferred_currencies: frozenset[str] = frozenset()
    default_rank: int = 100
    test_mode_only: str | None = None  # why live accounts are refused, when they are
    # Why the provider is known to refuse an amount (minor units, currency), before a call.
    amount_refusal: Callable[[int, str], AmountRefusal | None] | None = None

    def key_prefixes(self, livemode: bool) -> tuple[str, ...]:
        return self.live_key_prefixes if livemode else self.test_key_prefixes

    def refusal_of(self, amount: int, currency: str) -> AmountRefusal | None:
        return None if self.amount_refusal is None else self.amount_refusal(amount, currency)


class ConnectorError(Exception):
    """The provider call failed."""


class ProviderUnreachable(ConnectorError):
    """The request provably never reached the provider (safe to fail over)."""


class OutcomeUnknown(ConnectorError):
    """The request may have reached the provider; the outcome must be synced."""


class NoSuchCharge(OutcomeUnknown):
    """The provider answered, definitely, that it has no charge made with this attempt's
    idempotency key. Soon after the attempt started the request may still be on its way, so
    this is an unknown outcome; status sync treats it as "never sent" once the attempt is
    older than ``PAYGRID_NOT_SENT_GRACE_SECONDS``."""


class InvalidSignature(ConnectorError):
    """An inbound webhook's signature did not verify (or was missing or too old)."""


class InvalidCredentials(ConnectorError):
    """The provider rejected the account's secret key (401)."""


class InvalidCard(ConnectorError):
    """The tokenizer rejected the card data; ``param`` names the card field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param
