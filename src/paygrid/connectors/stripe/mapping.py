"""Pure translation between paygrid and Stripe: request parameters out, PaymentIntents,
Refunds, PaymentMethods and SDK errors in. No I/O; payloads are plain JSON mappings (the
connector passes ``StripeObject.to_dict()``; webhooks pass the parsed body)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Final, Literal, TypeVar, assert_never, cast

import httpx
import stripe
from stripe.params import PaymentIntentCreateParams

from paygrid.connectors.base import (
    AmountRefusal,
    AttemptResult,
    AuthorizeRequest,
    ConnectorError,
    Decline,
    InvalidCredentials,
    OperationResult,
    OutcomeUnknown,
    ProviderUnreachable,
    TokenizedCard,
)
from paygrid.domain.payments import AttemptOutcome

Json = Mapping[str, Any]
_Status = TypeVar("_Status", bound=StrEnum)


class IntentStatus(StrEnum):
    """A PaymentIntent's ``status`` (docs.stripe.com/payments/paymentintents/lifecycle)."""

    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    CANCELED = "canceled"
    SUCCEEDED = "succeeded"


class RefundStatus(StrEnum):
    """A Refund's ``status``: pending and requires_action settle later."""

    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class UnmappedStatus(ValueError):
    """Stripe sent a status this connector does not know: a bug to fix, never a guess."""


DeclineCode = Literal[
    "card_declined",
    "insufficient_funds",
    "expired_card",
    "incorrect_cvc",
    "authentication_required",
    "processing_error",
]

# Stripe's documented charge limits (docs.stripe.com/currencies): at most eight digits in
# minor units, the minimum charge of the currencies it lists (others depend on the account's
# settlement currency, so Stripe itself decides), and three-decimal amounts that end in 0.
STRIPE_MAX_AMOUNT: Final = 99_999_999
STRIPE_MIN_AMOUNTS: Final[dict[str, int]] = {
    "USD": 50,
    "EUR": 50,
    "GBP": 30,
    "INR": 50,
    "JPY": 50,
}
THREE_DECIMAL_CURRENCIES: Final = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})

ATTEMPT_METADATA_KEY: Final = "paygrid_attempt_id"
PAYMENT_METADATA_KEY: Final = "paygrid_payment_id"
IDEMPOTENCY_METADATA_KEY: Final = "paygrid_idempotency_key"
SETUP_METADATA_KEY: Final = "paygrid_setup_intent_id"
REFUND_ID_METADATA_KEY: Final = "paygrid_refund_id"


def refund_metadata(refund_id: str, merchant_idempotency_key: str | None) -> dict[str, str]:
    """What a refund carries to Stripe for ``paygrid restore``: paygrid's refund id (the
    call's own key) and, when the merchant sent one, its Idempotency-Key."""
    tags = {REFUND_ID_METADATA_KEY: refund_id}
    if merchant_idempotency_key is not None:
        tags[IDEMPOTENCY_METADATA_KEY] = merchant_idempotency_key
    return tags


# Stripe's decline_code (more specific) is consulted before its error code.
_BY_DECLINE_CODE: Final[dict[str, DeclineCode]] = {
    "insufficient_funds": "insufficient_funds",
    "expired_card": "expired_card",
    "incorrect_cvc": "incorrect_cvc",
    "invalid_cvc": "incorrect_cvc",
    "authentication_required": "authentication_required",
    "processing_error": "processing_error",
}
_BY_CODE: Final[dict[str, DeclineCode]] = {
    "expired_card": "expired_card",
    "incorrect_cvc": "incorrect_cvc",
    "invalid_cvc": "incorrect_cvc",
    "processing_error": "processing_error",
    "authentication_required": "authentication_required",
    "payment_intent_authentication_failure": "authentication_required",
}
_DEFAULT_MESSAGES: Final[dict[DeclineCode, str]] = {
    "card_declined": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "authentication_required": "The customer did not complete 3-D Secure authentication.",
    "processing_error": "An error occurred while processing the payment.",
}
# When several PaymentIntents carry one attempt id, the one furthest along wins: money that
# moved must never be reported as anything less.
_STATUS_RANK: Final[dict[str, int]] = {
    IntentStatus.SUCCEEDED: 6,
    IntentStatus.REQUIRES_CAPTURE: 5,
    IntentStatus.PROCESSING: 4,
    IntentStatus.REQUIRES_ACTION: 3,
    IntentStatus.CANCELED: 2,
    IntentStatus.REQUIRES_PAYMENT_METHOD: 1,
    IntentStatus.REQUIRES_CONFIRMATION: 0,
}
UNCONFIRMED: Final = frozenset(
    {IntentStatus.REQUIRES_CONFIRMATION, IntentStatus.REQUIRES_PAYMENT_METHOD}
)


def status_of(enum: type[_Status], obj: Json) -> _Status:
    """The object's ``status`` as ``enum``; ``UnmappedStatus`` (a ``ValueError``) when
    Stripe sent one this connector does not know."""
    raw = obj.get("status")
    try:
        return enum(str(raw))
    except ValueError:
        kind = "PaymentIntent" if enum is IntentStatus else "refund"
        raise UnmappedStatus(f"unmapped Stripe {kind} status {raw!r}") from None


def amount_refusal(amount: int, currency: str) -> AmountRefusal | None:
    """Why Stripe would refuse to charge ``amount`` (minor units) of ``currency``, or None."""
    code = currency.upper()
    minimum = STRIPE_MIN_AMOUNTS.get(code)
    if amount > STRIPE_MAX_AMOUNT:
        return AmountRefusal(
            "amount_too_large",
            f"Stripe charges at most {STRIPE_MAX_AMOUNT} (minor units of {code}).",
        )
    if minimum is not None and amount < minimum:
        return AmountRefusal(
            "amount_too_small", f"Stripe charges at least {minimum} (minor units of {code})."
        )
    if code in THREE_DECIMAL_CURRENCIES and amount % 10:
        return AmountRefusal(
            "amount_invalid",
            f"Stripe needs {code} amounts in minor units to end in 0 (got {amount}).",
        )
    return None


def payment_intent_params(
    request: AuthorizeRequest, *, localstripe: bool = False
) -> PaymentIntentCreateParams:
    """The create parameters. The payment method goes in here because localstripe answers
    500 to a confirm that carries one (real Stripe accepts both). Cards only: API versions
    from 2026-09-30 (the SDK's default) reject ``payment_method_types`` with 400
    ``payment_method_types_no_longer_supported`` and take ``allowed_payment_method_types``,
    which localstripe in turn rejects as unexpected."""
    params: PaymentIntentCreateParams = {
        "amount": request.amount,
        "currency": request.currency.lower(),
        "capture_method": "automatic" if request.capture else "manual",
        "metadata": {
            PAYMENT_METADATA_KEY: request.payment_id,
            ATTEMPT_METADATA_KEY: request.idempotency_key,
        },
        "expand": ["latest_charge"],
    }
    if request.merchant_idempotency_key is not None:  # what paygrid restore re-imports under
        params["metadata"][IDEMPOTENCY_METADATA_KEY] = request.merchant_idempotency_key
    if request.payment_method_token is not None:
        params["payment_method"] = request.payment_method_token
    if request.customer_reference is not None:
        params["customer"] = request.customer_reference
    if request.off_session:
        # Stripe takes off_session only with confirm, in the create itself.
        params["confirm"] = True
        params["off_session"] = True
    elif request.setup_future_usage and not localstripe:  # localstripe does not know it
        params["setup_future_usage"] = "off_session"
    if localstripe:
        cast(dict[str, object], params)["payment_method_types"] = ["card"]
    else:
        params["allowed_payment_method_types"] = ["card"]
    return params


AUTHENTICATION_REQUIRED: Final = Decline(
    "authentication_required",
    "The card needs the customer's authentication, which an off-session charge cannot "
    "give; bring the customer back to authenticate.",
    "authentication_required",
)


def off_session_result(intent: Json) -> AttemptResult:
    """An off-session PaymentIntent. One that wants the customer's authentication (Stripe
    refuses with ``authentication_required``; localstripe answers ``requires_action``)
    waits for the customer: it is never authenticated on their behalf."""
    result = attempt_result(intent)
    wants_customer = result.outcome is AttemptOutcome.REQUIRES_ACTION or (
        result.decline is not None and result.decline.code == "authentication_required"
    )
    if not wants_customer:
        return result
    return AttemptResult(
        AttemptOutcome.REQUIRES_ACTION,
        result.provider_reference,
        redirect_url=result.redirect_url,
        decline=AUTHENTICATION_REQUIRED,
    )


def setup_result(setup_intent: Json) -> AttemptResult:
    """Map a SetupIntent (the same statuses as a PaymentIntent's) to a setup's outcome:
    ``AUTHORIZED`` once the method is set up."""
    reference = str(setup_intent["id"])
    status = status_of(IntentStatus, setup_intent)
    match status:
        case IntentStatus.SUCCEEDED:
            return AttemptResult(AttemptOutcome.AUTHORIZED, reference)
        case IntentStatus.REQUIRES_ACTION:
            url = redirect_url(setup_intent.get("next_action"))
            return AttemptResult(AttemptOutcome.REQUIRES_ACTION, reference, redirect_url=url)
        case IntentStatus.PROCESSING:
            return AttemptResult(AttemptOutcome.UNKNOWN, reference)
        case (
            IntentStatus.REQUIRES_PAYMENT_METHOD
            | IntentStatus.REQUIRES_CONFIRMATION
            | IntentStatus.REQUIRES_CAPTURE
            | IntentStatus.CANCELED
        ):
            error = setup_intent.get("last_setup_error")
            found = decline_from_error_object(error) if error else _NOT_SET_UP
            return AttemptResult(AttemptOutcome.DECLINED, reference, decline=found)
        case _:
            assert_never(status)


def decline(code: str | None, decline_code: str | None, message: str | None) -> Decline:
    """Our decline for Stripe's error ``code`` and ``decline_code``; the latter is kept."""
    ours: DeclineCode = (
        _BY_DECLINE_CODE.get(decline_code or "") or _BY_CODE.get(code or "") or "card_declined"
    )
    return Decline(ours, message or _DEFAULT_MESSAGES[ours], decline_code)


def decline_from_error_object(error: Json | None) -> Decline:
    """A decline from a ``last_payment_error`` (or an API error body's ``error``)."""
    if not error:
        return decline("processing_error", None, None)
    return decline(error.get("code"), error.get("decline_code"), error.get("message"))


def attempt_result(intent: Json) -> AttemptResult:
    """Map a PaymentIntent (``latest_charge`` expanded) to our attempt outcome."""
    reference = str(intent["id"])
    status = status_of(IntentStatus, intent)
    match status:
        case IntentStatus.SUCCEEDED:
            return AttemptResult(AttemptOutcome.CAPTURED, reference)
        case IntentStatus.REQUIRES_CAPTURE:
            return AttemptResult(AttemptOutcome.AUTHORIZED, reference)
        case IntentStatus.REQUIRES_ACTION:
            url = redirect_url(intent.get("next_action"))
            return AttemptResult(AttemptOutcome.REQUIRES_ACTION, reference, redirect_url=url)
        case IntentStatus.PROCESSING:
            return AttemptResult(AttemptOutcome.UNKNOWN, reference)
        case IntentStatus.REQUIRES_PAYMENT_METHOD | IntentStatus.REQUIRES_CONFIRMATION:
            # Never confirmed, or a failed confirm/authentication put it back here.
            error = intent.get("last_payment_error")
            found = decline_from_error_object(error) if error else _NOT_CONFIRMED
            if _wants_authentication(error):  # off-session: the customer must come back
                return AttemptResult(
                    AttemptOutcome.REQUIRES_ACTION, reference, decline=AUTHENTICATION_REQUIRED
                )
            return AttemptResult(AttemptOutcome.DECLINED, reference, decline=found)
        case IntentStatus.CANCELED:
            if _charge_succeeded(intent.get("latest_charge")):
                # Authorized, then released by a void: the attempt itself was authorized.
                return AttemptResult(AttemptOutcome.AUTHORIZED, reference)
            error = intent.get("last_payment_error")
            found = decline_from_error_object(error) if error else _CANCELED
            return AttemptResult(AttemptOutcome.DECLINED, reference, decline=found)
        case _:
            assert_never(status)


def _wants_authentication(error: Json | None) -> bool:
    """Stripe's off-session refusal (not a failed 3-D Secure, which is a decline)."""
    if not error:
        return False
    return "authentication_required" in (error.get("code"), error.get("decline_code"))


_NOT_SET_UP: Final = Decline("card_declined", "The card could not be set up at Stripe.")
_NOT_CONFIRMED: Final = Decline("processing_error", "The payment was never confirmed at Stripe.")
_CANCELED: Final = Decline("processing_error", "The payment was canceled before it completed.")


def _charge_succeeded(charge: object) -> bool:
    return isinstance(charge, Mapping) and charge.get("status") == "succeeded"


def redirect_url(next_action: Json | None) -> str | None:
    """The customer's authentication URL. Only ``redirect_to_url`` has one; localstripe
    answers ``use_stripe_sdk`` (Stripe.js handles it in the browser), which has none."""
    if not next_action or next_action.get("type") != "redirect_to_url":
        return None
    target = next_action.get("redirect_to_url") or {}
    url = target.get("url")
    return str(url) if url else None


def is_unconfirmed(intent: Json) -> bool:
    """Never confirmed (no payment error either): a confirm could still make it charge."""
    return intent.get("status") in UNCONFIRMED and not intent.get("last_payment_error")


def attempt_id_of(intent: Json) -> str | None:
    metadata = intent.get("metadata") or {}
    value = metadata.get(ATTEMPT_METADATA_KEY)
    return str(value) if value else None


def best_match(intents: Sequence[Json], attempt_id: str) -> Json | None:
    """The PaymentIntent for ``attempt_id`` among ``intents``, furthest along first."""
    matching = [intent for intent in intents if attempt_id_of(intent) == attempt_id]
    if not matching:
        return None
    return max(matching, key=lambda intent: _STATUS_RANK.get(str(intent.get("status")), -1))


def search_query(attempt_id: str) -> str:
    escaped = attempt_id.replace("\\", "\\\\").replace("'", "\\'")
    return f"metadata['{ATTEMPT_METADATA_KEY}']:'{escaped}'"


def capture_result(intent: Json) -> OperationResult:
    reference = str(intent["id"])
    status = status_of(IntentStatus, intent)
    match status:
        case IntentStatus.SUCCEEDED:
            return OperationResult(True, reference)
        case IntentStatus.PROCESSING:
            return OperationResult(False, reference, pending=True)
        case (
            IntentStatus.REQUIRES_CAPTURE
            | IntentStatus.REQUIRES_ACTION
            | IntentStatus.REQUIRES_PAYMENT_METHOD
            | IntentStatus.REQUIRES_CONFIRMATION
            | IntentStatus.CANCELED
        ):
            return OperationResult(False, reference, f"payment_intent_{status.value}")
        case _:
            assert_never(status)


def void_result(intent: Json) -> OperationResult:
    reference = str(intent["id"])
    status = status_of(IntentStatus, intent)
    match status:
        case IntentStatus.CANCELED:
            return OperationResult(True, reference)
        case (
            IntentStatus.SUCCEEDED
            | IntentStatus.PROCESSING
            | IntentStatus.REQUIRES_CAPTURE
            | IntentStatus.REQUIRES_ACTION
            | IntentStatus.REQUIRES_PAYMENT_METHOD
            | IntentStatus.REQUIRES_CONFIRMATION
        ):
            return OperationResult(False, reference, f"payment_intent_{status.value}")
        case _:
            assert_never(status)


def refund_result(refund: Json) -> OperationResult:
    """Stripe refund statuses: pending/requires_action settle later, the rest are final."""
    reference = str(refund["id"])
    status = status_of(RefundStatus, refund)
    match status:
        case RefundStatus.SUCCEEDED:
            return OperationResult(True, reference)
        case RefundStatus.PENDING | RefundStatus.REQUIRES_ACTION:
            return OperationResult(False, reference, pending=True)
        case RefundStatus.FAILED | RefundStatus.CANCELED:
            reason = refund.get("failure_reason") or f"refund_{status.value}"
            return OperationResult(False, reference, str(reason))
        case _:
            assert_never(status)


def rejected_operation(error: stripe.StripeError) -> OperationResult:
    """Stripe definitively refused a capture, void or refund (a 400/402/404)."""
    return OperationResult(False, None, error.code or "invalid_request")


def tokenized_card(payment_method: Json) -> TokenizedCard:
    card = payment_method["card"]
    country = card.get("country")
    return TokenizedCard(
        token=str(payment_method["id"]),
        brand=str(card.get("brand") or "unknown").lower(),
        last4=str(card["last4"]),
        exp_month=int(card["exp_month"]),
        exp_year=int(card["exp_year"]),
        country=str(country) if country else None,
    )


def card_param(param: str | None) -> str:
    """``card[exp_month]`` -> ``exp_month``; the number when Stripe does not say."""
    if not param:
        return "number"
    if param.startswith("card[") and param.endswith("]"):
        return param[5:-1]
    return param


def error_body(error: stripe.StripeError) -> Json | None:
    body = error.json_body
    if isinstance(body, Mapping):
        inner = body.get("error")
        if isinstance(inner, Mapping):
            return inner
    return None


# Exceptions from httpx that prove no byte of the request reached the server.
_NEVER_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def transport_failure(error: stripe.StripeError) -> ConnectorError | None:
    """Classify an SDK error for failover safety, or ``None`` when Stripe gave a definite
    answer about this request (a card error or an invalid request), handled per operation.

    Only a failure that provably never reached Stripe, or that Stripe documents as rejected
    before processing (429: rate limit and lock timeout), is ``ProviderUnreachable``. A 5xx
    is ambiguous even with ``Stripe-Should-Retry: true``: that header says a retry with the
    same idempotency key is safe, not that nothing happened."""
    described = _describe(error)
    if isinstance(error, stripe.APIConnectionError):
        if isinstance(error.__cause__, _NEVER_SENT):
            return ProviderUnreachable(f"Stripe could not be reached: {described}")
        return OutcomeUnknown(f"no answer from Stripe after sending: {described}")
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        return InvalidCredentials(f"Stripe rejected the secret key: {described}")
    if isinstance(error, stripe.RateLimitError):
        return ProviderUnreachable(f"Stripe rejected the request unprocessed: {described}")
    if isinstance(error, stripe.CardError | stripe.InvalidRequestError):
        return None
    return OutcomeUnknown(f"Stripe's answer was ambiguous: {described}")


def _describe(error: stripe.StripeError) -> str:
    cause = error.__cause__
    parts = [type(error).__name__]
    if error.http_status is not None:
        parts.append(f"HTTP {error.http_status}")
    if cause is not None:
        parts.append(f"caused by {type(cause).__name__}")
    if error.request_id:
        parts.append(f"request {error.request_id}")
    return ", ".join(parts)
