"""The Stripe connector: implements ``Connector`` and ``CardTokenizer`` with the official SDK's
async methods. Every outcome goes through the pure ``mapping`` module; this module only talks
to Stripe and decides which answer is definite."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from datetime import datetime
from typing import Any, Final, TypeVar

import httpx
import stripe
from stripe.params import (
    CustomerCreateParams,
    PaymentIntentConfirmParams,
    SetupIntentConfirmParams,
    SetupIntentCreateParams,
)

from paygrid.connectors.base import (
    AccountConfig,
    AttemptResult,
    AuthorizeRequest,
    Capability,
    CardDetails,
    Decline,
    InvalidCard,
    NoSuchCharge,
    OperationResult,
    OutcomeUnknown,
    ProviderEvent,
    ProviderUnreachable,
    SetupRequest,
    TokenizedCard,
)
from paygrid.connectors.resync import ProviderChargeRecord
from paygrid.connectors.settlements import ProviderSettlement, ProviderSettlementTransaction
from paygrid.connectors.stripe import listing, mapping, payouts, resync, webhooks
from paygrid.domain.payments import AttemptOutcome
from paygrid.domain.reconciliation import ProviderCharge, ProviderRefund

T = TypeVar("T")
EXPAND: Final = ["latest_charge"]
LIST_PAGE_SIZE: Final = 100
# Real Stripe lists newest first, so a recent attempt is on the first page; localstripe lists
# oldest first, so the scan may need to walk its whole (test-sized) store.
MAX_LIST_PAGES: Final = 20


class StripeConnector:
    """Stripe PaymentIntents for card payments, with manual capture, 3-D Secure, refunds,
    saved methods and signed webhooks."""

    name = "stripe"
    capabilities = (
        Capability.MANUAL_CAPTURE
        | Capability.PARTIAL_CAPTURE
        | Capability.VOID
        | Capability.REFUND
        | Capability.PARTIAL_REFUND
        | Capability.THREE_DS
        | Capability.SAVED_METHODS
        | Capability.CARD_TOKENIZATION
        | Capability.WEBHOOKS
        | Capability.IDEMPOTENT_REFUNDS
    )

    def __init__(self, config: AccountConfig, *, localstripe: bool = False) -> None:
        """``localstripe``: the account points at localstripe, which rejects ``return_url``
        on confirm (it has no redirect flow; 3-D Secure is ``use_stripe_sdk`` there)."""
        self.account_id = config.id
        self._webhook_secret = config.webhook_secret
        self._localstripe = localstripe
        self._http = _HTTPXClient(timeout=httpx.Timeout(config.timeout_seconds))
        # No SDK retries: a retry would hide the first failure's kind, which decides failover.
        self._client = stripe.StripeClient(
            config.secret_key,
            base_addresses={"api": config.api_base} if config.api_base else None,
            http_client=self._http,
            max_network_retries=0,
        )

    async def authorize(self, request: AuthorizeRequest) -> AttemptResult:
        """Create the PaymentIntent with the card, then confirm it. Both POSTs carry keys
        derived from the attempt id, so a repeated call replays instead of charging twice."""
        if request.payment_method_token is None:
            raise ValueError("Stripe needs a payment method token; it has no redirect flow")
        key = request.idempotency_key
        if request.off_session:
            return await self._charge_off_session(request)
        intents = self._client.v1.payment_intents
        try:
            created = await _call(
                intents.create_async(
                    mapping.payment_intent_params(request, localstripe=self._localstripe),
                    {"idempotency_key": f"{key}:create"},
                )
            )
        except stripe.InvalidRequestError as error:  # nothing was created
            return AttemptResult(AttemptOutcome.DECLINED, None, decline=_rejected(error))
        confirm: PaymentIntentConfirmParams = {"expand": EXPAND}
        if not self._localstripe:
            confirm["return_url"] = request.return_url
        try:
            confirmed = await _call(
                intents.confirm_async(created.id, confirm, {"idempotency_key": f"{key}:confirm"})
            )
        except stripe.CardError as error:
            return AttemptResult(AttemptOutcome.DECLINED, created.id, decline=_declined(error))
        except stripe.InvalidRequestError as error:
            return await self._after_rejected_confirm(created.id, key, error)
        return mapping.attempt_result(confirmed.to_dict())

    async def _charge_off_session(self, request: AuthorizeRequest) -> AttemptResult:
        """Create and confirm in one call with ``off_session=true`` (Stripe takes it only
        so), keyed by the attempt id."""
        key = request.idempotency_key
        intents = self._client.v1.payment_intents
        try:
            intent = await _call(
                intents.create_async(
                    mapping.payment_intent_params(request, localstripe=self._localstripe),
                    {"idempotency_key": f"{key}:create"},
                )
            )
        except stripe.CardError as error:
            body = mapping.error_body(error) or {}
            failed = body.get("payment_intent")
            if isinstance(failed, Mapping):
                return mapping.off_session_result(failed)
            return AttemptResult(AttemptOutcome.DECLINED, None, decline=_declined(error))
        except stripe.InvalidRequestError as error:
            return AttemptResult(AttemptOutcome.DECLINED, None, decline=_rejected(error))
        return mapping.off_session_result(intent.to_dict())

    async def setup_method(self, request: SetupRequest) -> AttemptResult:
        """A SetupIntent for off-session use: created, then confirmed with the method (both
        keyed by the setup intent's attempt key, so a repeat replays)."""
        key = request.idempotency_key
        intents = self._client.v1.setup_intents
        params: SetupIntentCreateParams = {
            "usage": "off_session",
            "metadata": {mapping.SETUP_METADATA_KEY: request.setup_intent_id},
        }
        if request.customer_reference is not None:
            params["customer"] = request.customer_reference
        created = await _call(intents.create_async(params, {"idempotency_key": f"{key}:create"}))
        confirm: SetupIntentConfirmParams = {"payment_method": request.payment_method_token}
        try:
            confirmed = await _call(
                intents.confirm_async(created.id, confirm, {"idempotency_key": f"{key}:confirm"})
            )
        except stripe.CardError as error:
            return AttemptResult(AttemptOutcome.DECLINED, created.id, decline=_declined(error))
        except stripe.InvalidRequestError as error:
            return AttemptResult(AttemptOutcome.DECLINED, created.id, decline=_rejected(error))
        return mapping.setup_result(confirmed.to_dict())

    async def retrieve_setup(self, idempotency_key: str, reference: str) -> AttemptResult:
        """The SetupIntent's current outcome; ``OutcomeUnknown`` when Stripe cannot say."""
        try:
            found = await _call(self._client.v1.setup_intents.retrieve_async(reference))
        except ProviderUnreachable as unreachable:
            raise OutcomeUnknown(str(unreachable)) from unreachable
        except stripe.InvalidRequestError as error:
            raise OutcomeUnknown(f"Stripe cannot retrieve {reference}") from error
        return mapping.setup_result(found.to_dict())

    async def _after_rejected_confirm(
        self, reference: str, attempt_id: str, error: stripe.InvalidRequestError
    ) -> AttemptResult:
        """A 400 on confirm may mean an earlier confirm already moved the intent on; its
        current state is the answer, and an unconfirmed one is canceled to make it final."""
        try:
            intent = await self._settled_intent(reference, attempt_id)
        except ProviderUnreachable as unreachable:
            raise OutcomeUnknown(str(unreachable)) from unreachable
        if intent.get("status") == mapping.IntentStatus.CANCELED and not intent.get(
            "last_payment_error"
        ):
            return AttemptResult(AttemptOutcome.DECLINED, reference, decline=_rejected(error))
        return mapping.attempt_result(intent)

    async def retrieve(self, attempt_id: str, provider_reference: str | None) -> AttemptResult:
        """The attempt's current outcome. Without a reference (the create timed out) the
        PaymentIntent is found by the attempt id in its metadata. Raises ``OutcomeUnknown``
        when Stripe cannot be asked, and when no PaymentIntent is found *yet*: search lags
        writes by up to a minute, so a search miss is not proof the create never happened.
        A miss in the complete (consistent) list raises ``NoSuchCharge``.

        An intent that was created but never confirmed is canceled here, so the decline
        reported is final: no late confirm can charge it afterwards."""
        try:
            reference = provider_reference or await self._find(attempt_id)
            if reference is None:
                raise OutcomeUnknown(f"no Stripe PaymentIntent found yet for {attempt_id}")
            intent = await self._settled_intent(reference, attempt_id)
        except ProviderUnreachable as unreachable:
            raise OutcomeUnknown(str(unreachable)) from unreachable
        except stripe.InvalidRequestError as error:
            raise OutcomeUnknown(f"Stripe cannot look up {attempt_id}: {error.code}") from error
        return mapping.attempt_result(intent)

    async def _settled_intent(self, reference: str, attempt_id: str) -> mapping.Json:
        intents = self._client.v1.payment_intents
        intent = (await _call(intents.retrieve_async(reference, {"expand": EXPAND}))).to_dict()
        if mapping.is_unconfirmed(intent):
            canceled = await _call(
                intents.cancel_async(
                    reference, {"expand": EXPAND}, {"idempotency_key": f"{attempt_id}:abandon"}
                )
            )
            intent = canceled.to_dict()
        return intent

    async def _find(self, attempt_id: str) -> str | None:
        intents = self._client.v1.payment_intents
        try:
            found = await _call(intents.search_async({"query": mapping.search_query(attempt_id)}))
            candidates = [intent.to_dict() for intent in found.data]
        except stripe.InvalidRequestError:  # no search: localstripe, and Stripe in India
            candidates = []
        match = mapping.best_match(candidates, attempt_id)
        if match is None:  # search may lag; the list is consistent
            match, complete = await self._scan_list(attempt_id)
            if match is None and complete:
                raise NoSuchCharge(f"Stripe has no PaymentIntent for {attempt_id}")
        return None if match is None else str(match["id"])

    async def _scan_list(self, attempt_id: str) -> tuple[mapping.Json | None, bool]:
        """The best match in the account's PaymentIntents, and whether every one was seen
        (a miss is then a definite "not found")."""
        intents = self._client.v1.payment_intents
        seen: list[mapping.Json] = []
        after: str | None = None
        complete = False
        for _ in range(MAX_LIST_PAGES):
            page = await _call(
                intents.list_async(
                    {"limit": LIST_PAGE_SIZE, **({"starting_after": after} if after else {})}
                )
            )
            seen.extend(intent.to_dict() for intent in page.data)
            if not page.has_more or not page.data:
                complete = True
                break
            after = page.data[-1].id
        return mapping.best_match(seen, attempt_id), complete

    async def capture(
        self, provider_reference: str, amount: int, idempotency_key: str
    ) -> OperationResult:
        """Capture ``amount``; Stripe releases the rest of the authorization."""
        try:
            intent = await _call(
                self._client.v1.payment_intents.capture_async(
                    provider_reference,
                    {"amount_to_capture": amount, "expand": EXPAND},
                    {"idempotency_key": idempotency_key},
                )
            )
        except (stripe.InvalidRequestError, stripe.CardError) as error:
            return mapping.rejected_operation(error)
        return mapping.capture_result(intent.to_dict())

    async def void(self, provider_reference: str, idempotency_key: str) -> OperationResult:
        """Cancel the PaymentIntent, releasing the authorization."""
        try:
            intent = await _call(
                self._client.v1.payment_intents.cancel_async(
                    provider_reference, {"expand": EXPAND}, {"idempotency_key": idempotency_key}
                )
            )
        except stripe.InvalidRequestError as error:
            return mapping.rejected_operation(error)
        return mapping.void_result(intent.to_dict())

    async def refund(
        self,
        provider_reference: str,
        amount: int,
        idempotency_key: str,
        *,
        merchant_idempotency_key: str | None = None,
    ) -> OperationResult:
        """Refund ``amount`` of the PaymentIntent; ``pending`` while Stripe settles it. The
        refund's metadata names paygrid's refund and the merchant's key, for a restore."""
        try:
            refund = await _call(
                self._client.v1.refunds.create_async(
                    {
                        "payment_intent": provider_reference,
                        "amount": amount,
                        "metadata": mapping.refund_metadata(
                            idempotency_key, merchant_idempotency_key
                        ),
                    },
                    {"idempotency_key": idempotency_key},
                )
            )
        except stripe.InvalidRequestError as error:
            return mapping.rejected_operation(error)
        return mapping.refund_result(refund.to_dict())

    async def retrieve_refund(self, refund_reference: str) -> OperationResult:
        """The refund's current state; raises ``OutcomeUnknown`` when Stripe cannot say."""
        try:
            refund = await _call(self._client.v1.refunds.retrieve_async(refund_reference))
        except ProviderUnreachable as unreachable:
            raise OutcomeUnknown(str(unreachable)) from unreachable
        except stripe.InvalidRequestError as error:
            raise OutcomeUnknown(f"Stripe cannot retrieve {refund_reference}") from error
        return mapping.refund_result(refund.to_dict())

    async def list_settlements(self, since: datetime) -> list[ProviderSettlement]:
        """Payouts created at or after ``since``, newest first (``payouts.py``)."""
        return await payouts.list_payouts(self._client, since)

    async def settlement_transactions(
        self, settlement: ProviderSettlement
    ) -> list[ProviderSettlementTransaction]:
        """The payout's balance transactions, its own transfer left out (``payouts.py``)."""
        return await payouts.payout_transactions(self._client, settlement)

    async def reconciliation_charges(self, since: int) -> list[ProviderCharge]:
        """PaymentIntents created at or after ``since``, with fees (``listing.py``)."""
        return await listing.charges(self._client, since)

    async def resync_charges(self, since: int) -> list[ProviderChargeRecord]:
        """PaymentIntents created at or after ``since`` with paygrid's metadata, for a
        restore's re-sync (``resync.py``)."""
        return await resync.charges(self._client, since)

    async def reconciliation_refunds(self, since: int) -> list[ProviderRefund]:
        """Refunds created at or after ``since`` (``listing.py``)."""
        return await listing.refunds(self._client, since)

    async def charge_exists(self, attempt_id: str, reference: str) -> bool | None:
        """Whether Stripe has this PaymentIntent: ``False`` only on a definite 404 (or a
        complete list without the attempt), ``None`` when Stripe cannot say."""
        try:
            if not reference.startswith("pi_"):
                return await self._find(attempt_id) is not None or None
            await _call(self._client.v1.payment_intents.retrieve_async(reference))
        except NoSuchCharge:
            return False
        except stripe.InvalidRequestError as error:
            return False if error.http_status == 404 else None
        except (OutcomeUnknown, ProviderUnreachable):
            return None
        return True

    async def tokenize_card(self, card: CardDetails) -> TokenizedCard:
        """Create a card PaymentMethod from raw card data (test mode only: real Stripe
        accepts raw numbers only from accounts allowed to send them)."""
        try:
            method = await _call(
                self._client.v1.payment_methods.create_async(
                    {
                        "type": "card",
                        "card": {
                            "number": card.number.replace(" ", "").replace("-", ""),
                            "exp_month": card.exp_month,
                            "exp_year": card.exp_year,
                            "cvc": card.cvc,
                        },
                    }
                )
            )
        except (stripe.InvalidRequestError, stripe.CardError) as error:
            message = error.user_message or "Your card could not be saved."
            raise InvalidCard(message, mapping.card_param(getattr(error, "param", None))) from None
        return mapping.tokenized_card(method.to_dict())

    async def describe_token(self, token: str) -> TokenizedCard:
        """A PaymentMethod the merchant collected with Stripe.js (``pm_...``), for live mode;
        an unknown or non-card one raises ``InvalidCard``."""
        try:
            method = await _call(self._client.v1.payment_methods.retrieve_async(token))
        except stripe.InvalidRequestError:
            raise InvalidCard(f"Stripe has no card PaymentMethod '{token}'.", "token") from None
        if method.type != "card":
            raise InvalidCard(f"'{token}' is not a card PaymentMethod.", "token")
        return mapping.tokenized_card(method.to_dict())

    async def create_customer(
        self, email: str | None, name: str | None, idempotency_key: str
    ) -> str:
        """Create a Stripe Customer; returns its id (``cus_...``)."""
        params: CustomerCreateParams = {}
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        customer = await _call(
            self._client.v1.customers.create_async(params, {"idempotency_key": idempotency_key})
        )
        return str(customer.id)

    async def attach_payment_method(self, token: str, customer_reference: str) -> None:
        """Save a PaymentMethod on a Customer; a card the issuer declines raises
        ``InvalidCard``."""
        try:
            await _call(
                self._client.v1.payment_methods.attach_async(
                    token, {"customer": customer_reference}
                )
            )
        except stripe.CardError as error:
            message = error.user_message or "Your card was declined."
            raise InvalidCard(message, "number") from None

    def parse_webhook(
        self, raw_body: bytes, headers: Mapping[str, str], now: float
    ) -> ProviderEvent:
        """Verify ``Stripe-Signature`` over the raw bytes, then map the event."""
        signature = webhooks.header(headers, webhooks.SIGNATURE_HEADER)
        webhooks.verify_signature(raw_body, signature, self._webhook_secret, now)
        return webhooks.parse_event(raw_body)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.close_async()  # type: ignore[no-untyped-call]  # SDK leaves it bare


class _HTTPXClient(stripe.HTTPXClient):
    """The SDK's httpx client, sending the encoded form as ``content``: it passes a string
    as ``data``, which httpx deprecates with a warning on every request (an error under
    ``-W error``, which the SDK would then report as a network failure)."""

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> list[Any]:
        args: list[Any] = super()._get_request_args_kwargs(method, url, headers, post_data)
        options: dict[str, Any] = args[1]
        body = options.pop("data", None)
        if body:
            options["content"] = body
        return args


async def _call(request: Awaitable[T]) -> T:
    """Await one SDK call, turning transport-level failures into our classification;
    definite answers (card errors, invalid requests) pass through for the caller."""
    try:
        return await request
    except stripe.StripeError as error:
        failure = mapping.transport_failure(error)
        if failure is None:
            raise
        raise failure from error


def _declined(error: stripe.CardError) -> Decline:
    return mapping.decline_from_error_object(mapping.error_body(error))


def _rejected(error: stripe.StripeError) -> Decline:
    """A request Stripe refused outright (400): nothing will charge; its message says why."""
    return Decline("processing_error", error.user_message or "Stripe refused the payment.")
