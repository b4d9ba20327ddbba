"""The Stripe connector's pure parts: status and decline mapping, failure classification and
webhook signatures (checked against the SDK's own signer)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, get_args

import httpx
import pytest
import stripe

from paygrid.connectors.base import (
    AccountConfig,
    AuthorizeRequest,
    ConnectorError,
    InvalidCredentials,
    InvalidSignature,
    OperationResult,
    OutcomeUnknown,
    ProviderUnreachable,
)
from paygrid.connectors.stripe import build, mapping, webhooks
from paygrid.domain.payments import AttemptOutcome

SECRET = "whsec_dGVzdHNlY3JldA"
# Some SDK error constructors are unannotated; build those through an untyped alias.
sdk: Any = stripe
NOW = 1_800_000_000


def intent(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": "pi_123",
        "object": "payment_intent",
        "status": status,
        "metadata": {"paygrid_attempt_id": "att_1", "paygrid_payment_id": "pay_1"},
        "last_payment_error": None,
        "next_action": None,
        "latest_charge": None,
        **fields,
    }


# --- requests out ---------------------------------------------------------------------------


def request(**overrides: Any) -> AuthorizeRequest:
    fields: dict[str, Any] = {
        "idempotency_key": "att_1",
        "amount": 1234,
        "currency": "EUR",
        "capture": False,
        "payment_method_token": "pm_1",
        "return_url": "https://shop.example/back",
        "payment_id": "pay_1",
        **overrides,
    }
    return AuthorizeRequest(**fields)


def test_create_params_carry_our_ids_and_lowercase_currency() -> None:
    params = mapping.payment_intent_params(request(customer_reference="cus_9"))
    assert params["amount"] == 1234
    assert params["currency"] == "eur"
    assert params["capture_method"] == "manual"
    assert params["payment_method"] == "pm_1"
    assert params["customer"] == "cus_9"
    assert params["metadata"] == {"paygrid_payment_id": "pay_1", "paygrid_attempt_id": "att_1"}
    assert params.get("allowed_payment_method_types") == ["card"]
    assert "payment_method_types" not in params


def test_create_params_for_localstripe_use_the_older_card_parameter() -> None:
    params: dict[str, Any] = dict(
        mapping.payment_intent_params(request(capture=True), localstripe=True)
    )
    assert params["capture_method"] == "automatic"
    assert params["payment_method_types"] == ["card"]
    assert "allowed_payment_method_types" not in params
    assert "customer" not in params


def test_off_session_params_confirm_in_the_create_with_the_mit_flag() -> None:
    params: dict[str, Any] = dict(mapping.payment_intent_params(request(off_session=True)))
    assert (params["confirm"], params["off_session"]) == (True, True)
    assert "setup_future_usage" not in params
    on_session: dict[str, Any] = dict(mapping.payment_intent_params(request()))
    assert "off_session" not in on_session and "confirm" not in on_session


def test_setup_future_usage_goes_to_stripe_but_not_to_localstripe() -> None:
    saving = request(setup_future_usage=True)
    assert mapping.payment_intent_params(saving).get("setup_future_usage") == "off_session"
    assert "setup_future_usage" not in mapping.payment_intent_params(saving, localstripe=True)


@pytest.mark.parametrize(
    "answer",
    [
        # Real Stripe: a 402 authentication_required, the intent back to requires_payment_method.
        intent(
            "requires_payment_method",
            last_payment_error={"code": "authentication_required", "message": "auth"},
        ),
        intent(
            "requires_payment_method",
            last_payment_error={"code": "card_declined", "decline_code": "authentication_required"},
        ),
        # localstripe: it does not know off_session and asks for 3-D Secure.
        intent("requires_action", next_action={"type": "use_stripe_sdk"}),
    ],
)
def test_an_off_session_intent_needing_authentication_waits_for_the_customer(
    answer: dict[str, Any],
) -> None:
    result = mapping.off_session_result(answer)
    assert result.outcome is AttemptOutcome.REQUIRES_ACTION
    assert result.decline is not None and result.decline.code == "authentication_required"


def test_a_failed_3ds_is_still_a_decline_and_off_session_success_is_success() -> None:
    failed = intent(
        "requires_payment_method",
        last_payment_error={"code": "payment_intent_authentication_failure", "message": "no"},
    )
    assert mapping.attempt_result(failed).outcome is AttemptOutcome.DECLINED
    assert mapping.off_session_result(intent("succeeded")).outcome is AttemptOutcome.CAPTURED


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("succeeded", AttemptOutcome.AUTHORIZED),
        ("requires_action", AttemptOutcome.REQUIRES_ACTION),
        ("processing", AttemptOutcome.UNKNOWN),
        ("requires_payment_method", AttemptOutcome.DECLINED),
        ("canceled", AttemptOutcome.DECLINED),
    ],
)
def test_setup_intent_statuses(status: str, outcome: AttemptOutcome) -> None:
    setup = {"id": "seti_1", "status": status, "next_action": None, "last_setup_error": None}
    assert mapping.setup_result(setup).outcome is outcome


def test_search_query_escapes_quotes() -> None:
    assert mapping.search_query("att_1") == "metadata['paygrid_attempt_id']:'att_1'"
    assert mapping.search_query("a'b") == "metadata['paygrid_attempt_id']:'a\\'b'"


# --- PaymentIntents in ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("succeeded", AttemptOutcome.CAPTURED),
        ("requires_capture", AttemptOutcome.AUTHORIZED),
        ("processing", AttemptOutcome.UNKNOWN),
        ("requires_action", AttemptOutcome.REQUIRES_ACTION),
        ("requires_payment_method", AttemptOutcome.DECLINED),
        ("requires_confirmation", AttemptOutcome.DECLINED),
        ("canceled", AttemptOutcome.DECLINED),
    ],
)
def test_every_payment_intent_status_maps(status: str, outcome: AttemptOutcome) -> None:
    result = mapping.attempt_result(intent(status))
    assert result.outcome is outcome
    assert result.provider_reference == "pi_123"


def test_an_unmapped_status_fails_loudly() -> None:
    with pytest.raises(ValueError, match="unmapped"):
        mapping.attempt_result(intent("teleported"))


def test_the_status_enum_is_every_status_the_sdk_declares() -> None:
    declared, _ = get_args(stripe.PaymentIntent.__annotations__["status"])
    assert set(mapping.IntentStatus) == set(get_args(declared))


@pytest.mark.parametrize(
    "parse", [mapping.attempt_result, mapping.capture_result, mapping.void_result]
)
def test_every_intent_mapping_fails_loudly_on_an_unmapped_status(
    parse: Callable[[dict[str, Any]], object],
) -> None:
    with pytest.raises(mapping.UnmappedStatus, match="PaymentIntent status 'teleported'"):
        parse(intent("teleported"))


def test_an_unmapped_refund_status_fails_loudly() -> None:
    with pytest.raises(mapping.UnmappedStatus, match="refund status 'teleported'"):
        mapping.refund_result({"id": "re_1", "status": "teleported"})


@pytest.mark.parametrize("status", list(mapping.IntentStatus))
def test_void_succeeds_only_on_a_canceled_intent(status: mapping.IntentStatus) -> None:
    result = mapping.void_result(intent(status.value))
    assert result.succeeded is (status is mapping.IntentStatus.CANCELED)
    if not result.succeeded:
        assert result.failure_reason == f"payment_intent_{status.value}"


def test_requires_action_carries_the_redirect_url() -> None:
    action = {
        "type": "redirect_to_url",
        "redirect_to_url": {"url": "https://hooks.stripe.com/3d/abc", "return_url": "x"},
    }
    result = mapping.attempt_result(intent("requires_action", next_action=action))
    assert result.redirect_url == "https://hooks.stripe.com/3d/abc"


def test_use_stripe_sdk_has_no_redirect_url() -> None:
    action = {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}}
    result = mapping.attempt_result(intent("requires_action", next_action=action))
    assert result.outcome is AttemptOutcome.REQUIRES_ACTION
    assert result.redirect_url is None


def test_failed_confirm_declines_with_stripe_codes_kept() -> None:
    error = {"code": "card_declined", "decline_code": "insufficient_funds", "message": "No."}
    result = mapping.attempt_result(intent("requires_payment_method", last_payment_error=error))
    assert result.outcome is AttemptOutcome.DECLINED
    assert result.decline is not None
    assert result.decline.code == "insufficient_funds"
    assert result.decline.decline_code == "insufficient_funds"
    assert result.decline.message == "No."


def test_a_voided_authorization_stays_authorized() -> None:
    charge = {"id": "ch_1", "status": "succeeded", "captured": False}
    result = mapping.attempt_result(intent("canceled", latest_charge=charge))
    assert result.outcome is AttemptOutcome.AUTHORIZED


def test_an_abandoned_intent_is_declined() -> None:
    result = mapping.attempt_result(intent("canceled"))
    assert result.outcome is AttemptOutcome.DECLINED
    assert result.decline is not None
    assert result.decline.code == "processing_error"


@pytest.mark.parametrize(
    ("code", "decline_code", "ours"),
    [
        ("card_declined", "generic_decline", "card_declined"),
        ("card_declined", None, "card_declined"),
        ("card_declined", "insufficient_funds", "insufficient_funds"),
        ("card_declined", "expired_card", "expired_card"),
        ("expired_card", None, "expired_card"),
        ("incorrect_cvc", None, "incorrect_cvc"),
        ("card_declined", "incorrect_cvc", "incorrect_cvc"),
        ("card_declined", "authentication_required", "authentication_required"),
        ("payment_intent_authentication_failure", None, "authentication_required"),
        ("processing_error", None, "processing_error"),
        ("card_declined", "do_not_honor", "card_declined"),
        (None, None, "card_declined"),
    ],
)
def test_decline_codes(code: str | None, decline_code: str | None, ours: str) -> None:
    found = mapping.decline(code, decline_code, None)
    assert found.code == ours
    assert found.decline_code == decline_code
    assert found.message  # a default message when Stripe sends none


def test_is_unconfirmed() -> None:
    assert mapping.is_unconfirmed(intent("requires_confirmation"))
    assert mapping.is_unconfirmed(intent("requires_payment_method"))
    failed = intent("requires_payment_method", last_payment_error={"code": "card_declined"})
    assert not mapping.is_unconfirmed(failed)
    assert not mapping.is_unconfirmed(intent("succeeded"))


def test_best_match_prefers_the_intent_that_moved_money() -> None:
    others = {"paygrid_attempt_id": "att_2"}
    intents = [
        intent("requires_payment_method", id="pi_a"),
        intent("succeeded", id="pi_b"),
        intent("requires_capture", id="pi_c"),
        intent("succeeded", id="pi_d", metadata=others),
        intent("succeeded", id="pi_e", metadata={}),
    ]
    assert mapping.best_match(intents, "att_1") == intents[1]
    assert mapping.best_match(intents, "att_2") == intents[3]
    assert mapping.best_match(intents, "att_3") is None


# --- operations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("succeeded", OperationResult(True, "re_1")),
        ("pending", OperationResult(False, "re_1", pending=True)),
        ("requires_action", OperationResult(False, "re_1", pending=True)),
        ("failed", OperationResult(False, "re_1", "expired_or_canceled_card")),
        ("canceled", OperationResult(False, "re_1", "refund_canceled")),
    ],
)
def test_refund_statuses(status: str, expected: OperationResult) -> None:
    refund = {"id": "re_1", "status": status, "failure_reason": None}
    if status == "failed":
        refund["failure_reason"] = "expired_or_canceled_card"
    assert mapping.refund_result(refund) == expected


def test_capture_and_void_results() -> None:
    assert mapping.capture_result(intent("succeeded")) == OperationResult(True, "pi_123")
    assert mapping.capture_result(intent("processing")).pending
    assert mapping.capture_result(intent("canceled")) == OperationResult(
        False, "pi_123", "payment_intent_canceled"
    )
    assert mapping.void_result(intent("canceled")) == OperationResult(True, "pi_123")
    assert not mapping.void_result(intent("succeeded")).succeeded


def test_tokenized_card_and_card_params() -> None:
    method = {
        "id": "pm_1",
        "card": {"brand": "Visa", "last4": "4242", "exp_month": 12, "exp_year": 2034},
    }
    card = mapping.tokenized_card(method)
    assert (card.token, card.brand, card.last4, card.exp_month, card.exp_year) == (
        "pm_1",
        "visa",
        "4242",
        12,
        2034,
    )
    assert mapping.card_param("card[exp_month]") == "exp_month"
    assert mapping.card_param(None) == "number"


# --- failure classification -----------------------------------------------------------------


def connection_error(cause: Exception) -> stripe.APIConnectionError:
    try:
        try:
            raise cause
        except Exception as inner:
            raise sdk.APIConnectionError("network", should_retry=True) from inner
    except stripe.APIConnectionError as error:
        return error


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (httpx.ConnectError("refused"), ProviderUnreachable),
        (httpx.ConnectTimeout("slow connect"), ProviderUnreachable),
        (httpx.PoolTimeout("no free connection"), ProviderUnreachable),
        (httpx.ReadTimeout("no answer"), OutcomeUnknown),
        (httpx.WriteTimeout("half sent"), OutcomeUnknown),
        (httpx.RemoteProtocolError("server disconnected"), OutcomeUnknown),
        (httpx.ReadError("reset"), OutcomeUnknown),
        (RuntimeError("anything else"), OutcomeUnknown),
    ],
)
def test_network_failures_split_on_whether_the_request_left(
    cause: Exception, expected: type[ConnectorError]
) -> None:
    assert type(mapping.transport_failure(connection_error(cause))) is expected


def test_a_connection_error_without_a_cause_is_unknown() -> None:
    error = sdk.APIConnectionError("network")
    assert isinstance(mapping.transport_failure(error), OutcomeUnknown)


def api_error(status: int, error_type: str = "api_error", **headers: str) -> stripe.StripeError:
    body = {"error": {"type": error_type, "message": "boom"}}
    return stripe.APIError("boom", json.dumps(body), status, body, headers)


def test_http_answers_are_classified() -> None:
    should_retry = api_error(500, **{"Stripe-Should-Retry": "true"})
    assert isinstance(mapping.transport_failure(should_retry), OutcomeUnknown)
    assert isinstance(mapping.transport_failure(api_error(503)), OutcomeUnknown)
    assert isinstance(mapping.transport_failure(api_error(409)), OutcomeUnknown)
    rate_limited = stripe.RateLimitError("slow down", None, 429, None, {})
    assert isinstance(mapping.transport_failure(rate_limited), ProviderUnreachable)
    unauthorized = stripe.AuthenticationError("bad key", None, 401)
    assert isinstance(mapping.transport_failure(unauthorized), InvalidCredentials)
    forbidden = stripe.PermissionError("restricted key", None, 403)
    assert isinstance(mapping.transport_failure(forbidden), InvalidCredentials)
    reused = stripe.IdempotencyError("key reused", None, 400)
    assert isinstance(mapping.transport_failure(reused), OutcomeUnknown)


def test_definite_answers_are_left_to_the_operation() -> None:
    card = sdk.CardError("declined", None, "card_declined", None, 402)
    invalid = sdk.InvalidRequestError("bad", "amount", "parameter_invalid_integer", None, 400)
    assert mapping.transport_failure(card) is None
    assert mapping.transport_failure(invalid) is None


# --- webhook signatures ---------------------------------------------------------------------


BODY = json.dumps(
    {
        "id": "evt_1",
        "type": "payment_intent.succeeded",
        "data": {"object": intent("succeeded")},
    }
)


def signed(body: str = BODY, secret: str = SECRET, timestamp: int = NOW) -> str:
    header: str = stripe.WebhookSignature.generate_signature_header(
        body, secret, timestamp=timestamp
    )
    return header


def test_the_sdk_signature_verifies() -> None:
    webhooks.verify_signature(BODY.encode(), signed(), SECRET, NOW)


def test_any_matching_v1_entry_verifies_while_a_secret_rotates() -> None:
    old = signed(secret="whsec_old").split("v1=")[1]
    current = signed().split("v1=")[1]
    webhooks.verify_signature(BODY.encode(), f"t={NOW},v1={old},v1={current}", SECRET, NOW)
    webhooks.verify_signature(
        BODY.encode(), f"t={NOW}, v0=abc, v1={current}, v1={old}", SECRET, NOW
    )
    with pytest.raises(InvalidSignature):
        webhooks.verify_signature(BODY.encode(), f"t={NOW},v1={old}", SECRET, NOW)


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamps_within_the_tolerance_verify(offset: int) -> None:
    webhooks.verify_signature(BODY.encode(), signed(), SECRET, NOW + offset)


@pytest.mark.parametrize("offset", [-301, 301, 3600])
def test_timestamps_outside_the_tolerance_fail(offset: int) -> None:
    # A positive offset is an old signature; a negative one is a signature from the future.
    with pytest.raises(InvalidSignature, match="tolerance"):
        webhooks.verify_signature(BODY.encode(), signed(), SECRET, NOW + offset)


def test_a_tampered_body_fails() -> None:
    tampered = BODY.replace("succeeded", "canceled").encode()
    with pytest.raises(InvalidSignature, match="matches"):
        webhooks.verify_signature(tampered, signed(), SECRET, NOW)


def test_the_wrong_secret_fails() -> None:
    with pytest.raises(InvalidSignature):
        webhooks.verify_signature(BODY.encode(), signed(secret="whsec_other"), SECRET, NOW)


@pytest.mark.parametrize(
    ("header", "secret"),
    [
        (None, SECRET),
        ("", SECRET),
        ("garbage", SECRET),
        (f"t={NOW}", SECRET),
        ("v1=abcdef", SECRET),
        ("t=soon,v1=abcdef", SECRET),
        (signed(), None),
        (signed(), ""),
    ],
)
def test_missing_or_malformed_signatures_fail(header: str | None, secret: str | None) -> None:
    with pytest.raises(InvalidSignature):
        webhooks.verify_signature(BODY.encode(), header, secret, NOW)


# --- webhook events -------------------------------------------------------------------------


def event(event_type: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"id": "evt_9", "type": event_type, "data": {"object": obj}}).encode()


@pytest.mark.parametrize(
    ("event_type", "status", "outcome"),
    [
        ("payment_intent.succeeded", "succeeded", AttemptOutcome.CAPTURED),
        ("payment_intent.amount_capturable_updated", "requires_capture", AttemptOutcome.AUTHORIZED),
        ("payment_intent.processing", "processing", AttemptOutcome.UNKNOWN),
        ("payment_intent.requires_action", "requires_action", AttemptOutcome.REQUIRES_ACTION),
    ],
)
def test_payment_intent_events(event_type: str, status: str, outcome: AttemptOutcome) -> None:
    parsed = webhooks.parse_event(event(event_type, intent(status)))
    assert parsed.event_id == "evt_9"
    assert parsed.type == event_type
    assert parsed.attempt_id == "att_1"
    assert parsed.provider_reference == "pi_123"
    assert parsed.attempt_result is not None
    assert parsed.attempt_result.outcome is outcome
    assert parsed.attempt_result.provider_reference == "pi_123"


def test_payment_failed_carries_the_decline() -> None:
    error = {"code": "card_declined", "decline_code": "expired_card", "message": "Expired."}
    obj = intent("requires_payment_method", last_payment_error=error)
    parsed = webhooks.parse_event(event("payment_intent.payment_failed", obj))
    assert parsed.attempt_result is not None
    assert parsed.attempt_result.outcome is AttemptOutcome.DECLINED
    assert parsed.attempt_result.decline is not None
    assert parsed.attempt_result.decline.code == "expired_card"
    assert parsed.attempt_result.decline.decline_code == "expired_card"


def test_canceled_and_foreign_intents_are_only_recorded() -> None:
    canceled = webhooks.parse_event(event("payment_intent.canceled", intent("canceled")))
    assert canceled.attempt_result is None
    assert canceled.provider_reference == "pi_123"
    foreign = webhooks.parse_event(
        event("payment_intent.succeeded", intent("succeeded", metadata={}))
    )
    assert foreign.attempt_id is None
    assert foreign.provider_reference == "pi_123"


def test_refund_events() -> None:
    refund = {"id": "re_1", "status": "pending", "payment_intent": "pi_123"}
    for event_type in ("refund.updated", "charge.refund.updated"):
        parsed = webhooks.parse_event(event(event_type, refund))
        assert parsed.refund_reference == "re_1"
        assert parsed.refund_result == OperationResult(False, "re_1", pending=True)
        assert parsed.provider_reference == "pi_123"
        assert parsed.attempt_result is None


def test_charge_refunded_names_the_latest_embedded_refund() -> None:
    charge = {
        "id": "ch_1",
        "payment_intent": "pi_123",
        "refunds": {
            "data": [
                {"id": "re_new", "status": "succeeded", "created": 20},
                {"id": "re_old", "status": "succeeded", "created": 10},
            ]
        },
    }
    parsed = webhooks.parse_event(event("charge.refunded", charge))
    assert parsed.refund_reference == "re_new"
    assert parsed.refund_result == OperationResult(True, "re_new")
    bare = webhooks.parse_event(event("charge.refunded", {"id": "ch_1", "payment_intent": "pi_1"}))
    assert bare.refund_reference is None
    assert bare.refund_result is None


def test_other_events_are_recorded_by_id_and_type() -> None:
    parsed = webhooks.parse_event(event("customer.created", {"id": "cus_1"}))
    assert (parsed.event_id, parsed.type, parsed.attempt_result) == (
        "evt_9",
        "customer.created",
        None,
    )


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"id": "evt_1", "type": "x"}'])
def test_a_malformed_event_body_is_an_error(body: bytes) -> None:
    with pytest.raises(ConnectorError, match="malformed"):
        webhooks.parse_event(body)


async def test_the_connector_verifies_then_parses() -> None:
    config = AccountConfig("ca_1", "stripe", False, "sk_test_1", webhook_secret=SECRET)
    connector = build(config)
    try:
        for name in ("Stripe-Signature", "stripe-signature", "STRIPE-SIGNATURE"):
            parsed = connector.parse_webhook(BODY.encode(), {name: signed()}, NOW + 1)
            assert parsed.attempt_result is not None
            assert parsed.attempt_result.outcome is AttemptOutcome.CAPTURED
        with pytest.raises(InvalidSignature):
            connector.parse_webhook(BODY.encode(), {}, NOW)
    finally:
        await connector.aclose()


async def test_without_a_webhook_secret_nothing_verifies() -> None:
    connector = build(AccountConfig("ca_1", "stripe", False, "sk_test_1"))
    try:
        with pytest.raises(InvalidSignature, match="secret"):
            connector.parse_webhook(BODY.encode(), {"Stripe-Signature": signed()}, NOW)
    finally:
        await connector.aclose()


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        (100_000_000, "USD", "amount_too_large"),  # more than eight digits
        (100_000_000, "JPY", "amount_too_large"),
        (49, "USD", "amount_too_small"),
        (49, "EUR", "amount_too_small"),
        (29, "GBP", "amount_too_small"),
        (49, "JPY", "amount_too_small"),
        (1005, "KWD", "amount_invalid"),  # three-decimal amounts end in 0
        (1001, "KWD", "amount_invalid"),
    ],
)
def test_amounts_stripe_refuses_are_known_before_calling_it(
    amount: int, currency: str, code: str
) -> None:
    refusal = mapping.amount_refusal(amount, currency)
    assert refusal is not None and refusal.code == code
    assert "Stripe" in refusal.message


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(99_999_999, "USD"), (50, "USD"), (30, "GBP"), (50, "JPY"), (1010, "KWD"), (100, "NGN")],
)
def test_amounts_stripe_takes(amount: int, currency: str) -> None:
    assert mapping.amount_refusal(amount, currency) is None
