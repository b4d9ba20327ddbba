"""The error tree. Each error knows its public type, code and HTTP status; exactly one place
(``paygrid.api.errors``) turns them into responses."""

from __future__ import annotations

from typing import Any, ClassVar


class PaygridError(Exception):
    """An unexpected error occurred."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "api_error"
    default_code: ClassVar[str] = "api_error"

    def __init__(
        self,
        message: str | None = None,
        *,
        param: str | None = None,
        code: str | None = None,
        **extra: Any,
    ) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.param = param
        self.code = code or self.default_code
        self.extra = extra
        super().__init__(self.message)


class InvalidRequest(PaygridError):
    """The request is invalid."""

    status_code = 400
    error_type = "invalid_request_error"
    default_code = "parameter_invalid"


class InvalidAmount(InvalidRequest):
    """The amount is invalid."""

    default_code = "amount_invalid"


class UnsupportedCurrency(InvalidRequest):
    """The currency is not supported."""

    default_code = "currency_not_supported"


class ResourceMissing(PaygridError):
    """No such object."""

    status_code = 404
    error_type = "invalid_request_error"
    default_code = "resource_missing"


class PaymentInvalidState(PaygridError):
    """The payment is not in a state that allows this operation."""

    status_code = 409
    error_type = "invalid_request_error"
    default_code = "payment_invalid_state"


class SubscriptionInvalidState(PaygridError):
    """The subscription is not in a state that allows this operation."""

    status_code = 409
    error_type = "invalid_request_error"
    default_code = "subscription_invalid_state"


class RefundExceedsAvailable(PaygridError):
    """The refund amount exceeds what remains refundable on the payment."""

    status_code = 422
    error_type = "invalid_request_error"
    default_code = "refund_exceeds_available"


class CardError(PaygridError):
    """The card was declined."""

    status_code = 402
    error_type = "card_error"
    default_code = "card_declined"


class AuthenticationFailed(PaygridError):
    """Invalid API key provided."""

    status_code = 401
    error_type = "authentication_error"
    default_code = "api_key_invalid"


class PermissionDenied(PaygridError):
    """This API key is not allowed to perform this request."""

    status_code = 403
    error_type = "permission_error"
    default_code = "permission_denied"


class IdempotencyKeyReused(PaygridError):
    """This idempotency key was already used with a different request."""

    status_code = 422
    error_type = "idempotency_error"
    default_code = "idempotency_key_reused"


class IdempotencyKeyOtherApiKey(IdempotencyKeyReused):
    """This idempotency key was first used by another API key, with other permissions."""

    default_code = "idempotency_key_other_api_key"


class IdempotencyResponseUnreadable(IdempotencyKeyReused):
    """The stored response to this idempotency key was sealed under an encryption key that
    is no longer configured; use a new idempotency key."""

    default_code = "idempotency_response_unreadable"


class IdempotencyKeyInUse(PaygridError):
    """A request with this idempotency key is still being processed; retry later."""

    status_code = 409
    error_type = "idempotency_error"
    default_code = "idempotency_key_in_use"


class ProviderUnavailable(PaygridError):
    """The payment provider could not be reached."""

    status_code = 502
    error_type = "api_error"
    default_code = "provider_unavailable"


class CardNumberInText(InvalidRequest):
    """The text contains what looks like a payment card number; paygrid never stores card
    numbers in text."""

    default_code = "card_number_in_text"


class CapabilityNotSupported(InvalidRequest):
    """The payment's connector cannot do what was asked (e.g. manual capture on Paystack)."""

    default_code = "capability_not_supported"


class PaymentMethodNotOwned(InvalidRequest):
    """This payment method cannot be used for this payment."""

    default_code = "payment_method_not_owned"


class PaymentMethodAlreadyAttached(InvalidRequest):
    """This payment method is attached to another customer; detach it first."""

    default_code = "payment_method_already_attached"


class LockTimeout(PaygridError):
    """Other requests kept changing this object at the same moment; nothing was changed by
    this one. Retry the request."""

    status_code = 409
    error_type = "invalid_request_error"
    default_code = "lock_timeout"


class RateLimited(PaygridError):
    """Too many requests; retry after the number of seconds in the Retry-After header."""

    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class ServiceUnavailable(PaygridError):
    """paygrid cannot reach its database right now; nothing was changed. Retry after the
    number of seconds in the Retry-After header."""

    status_code = 503
    error_type = "api_error"
    default_code = "service_unavailable"
