"""The Stripe connector end to end against localstripe (a separate process), and its failure
classification against real sockets: a closed port, a server that never answers, a server
that hangs up, and canned Stripe error answers."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import httpx
import pytest

from paygrid.clock import SYSTEM_CLOCK
from paygrid.connectors.base import (
    AccountConfig,
    AuthorizeRequest,
    CardDetails,
    InvalidCard,
    InvalidCredentials,
    InvalidSignature,
    NoSuchCharge,
    OperationResult,
    OutcomeUnknown,
    ProviderUnreachable,
)
from paygrid.connectors.stripe import StripeConnector, build
from paygrid.domain.payments import AttemptOutcome

SECRET_KEY = "sk_test_paygrid"
WEBHOOK_SECRET = "whsec_paygrid_localstripe"
VISA = "4242424242424242"
DECLINED_AT_CONFIRM = "4000000000000341"
DECLINED_AT_ATTACH = "4000000000000002"
THREE_DS = "4000000000003220"


def config(api_base: str, *, key: str = SECRET_KEY, timeout: float = 5.0) -> AccountConfig:
    return AccountConfig(
        id="ca_stripe_test",
        provider="stripe",
        livemode=False,
        secret_key=key,
        webhook_secret=WEBHOOK_SECRET,
        api_base=api_base,
        timeout_seconds=timeout,
    )


@asynccontextmanager
async def connector_at(api_base: str, **options: Any) -> AsyncIterator[StripeConnector]:
    connector = build(config(api_base, **options))
    try:
        yield connector
    finally:
        await connector.aclose()


@pytest.fixture
async def stripe_connector(localstripe_url: str) -> AsyncIterator[StripeConnector]:
    async with connector_at(localstripe_url) as connector:
        yield connector


@pytest.fixture
async def localstripe(localstripe_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Direct access to localstripe, to check what the connector left there."""
    async with httpx.AsyncClient(base_url=localstripe_url, auth=(SECRET_KEY, "")) as http:
        yield http


def card(number: str = VISA) -> CardDetails:
    return CardDetails(number=number, exp_month=12, exp_year=2034, cvc="123")


def attempt(
    token: str, *, amount: int = 1000, capture: bool = True, **extra: Any
) -> AuthorizeRequest:
    return AuthorizeRequest(
        idempotency_key=f"att_{uuid.uuid4().hex}",
        amount=amount,
        currency="USD",
        capture=capture,
        payment_method_token=token,
        return_url="https://shop.example/return",
        payment_id=f"pay_{uuid.uuid4().hex[:12]}",
        **extra,
    )


async def intent_at(localstripe: httpx.AsyncClient, reference: str) -> dict[str, Any]:
    answer = await localstripe.get(f"/v1/payment_intents/{reference}")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


# --- payments -------------------------------------------------------------------------------


async def test_purchase(stripe_connector: StripeConnector, localstripe: httpx.AsyncClient) -> None:
    token = (await stripe_connector.tokenize_card(card())).token
    request = attempt(token, amount=1999)
    result = await stripe_connector.authorize(request)
    assert result.outcome is AttemptOutcome.CAPTURED
    assert result.provider_reference is not None
    assert result.provider_reference.startswith("pi_")
    stored = await intent_at(localstripe, result.provider_reference)
    assert stored["status"] == "succeeded"
    assert stored["amount"] == 1999
    assert stored["currency"] == "usd"
    assert stored["capture_method"] == "automatic"
    assert stored["payment_method"] == token
    assert stored["metadata"] == {
        "paygrid_payment_id": request.payment_id,
        "paygrid_attempt_id": request.idempotency_key,
    }
    synced = await stripe_connector.retrieve(request.idempotency_key, result.provider_reference)
    assert synced == result


async def test_manual_authorization_and_partial_capture(
    stripe_connector: StripeConnector, localstripe: httpx.AsyncClient
) -> None:
    token = (await stripe_connector.tokenize_card(card())).token
    request = attempt(token, amount=1000, capture=False)
    result = await stripe_connector.authorize(request)
    assert result.outcome is AttemptOutcome.AUTHORIZED
    reference = result.provider_reference
    assert reference is not None
    assert (await intent_at(localstripe, reference))["status"] == "requires_capture"

    captured = await stripe_connector.capture(reference, 600, f"{request.idempotency_key}:cap")
    assert captured == OperationResult(True, reference)
    synced = await stripe_connector.retrieve(request.idempotency_key, reference)
    assert synced.outcome is AttemptOutcome.CAPTURED
    # localstripe models the released 400 as a refund of the remainder on the charge; real
    # Stripe reports amount_received=600 and no refund.
    charge = (await intent_at(localstripe, reference))["latest_charge"]
    assert (charge["amount"], charge["captured"], charge["amount_refunded"]) == (1000, True, 400)

    again = await stripe_connector.capture(reference, 600, f"{request.idempotency_key}:cap2")
    assert not again.succeeded
    assert again.failure_reason is not None


async def test_void(stripe_connector: StripeConnector, localstripe: httpx.AsyncClient) -> None:
    token = (await stripe_connector.tokenize_card(card())).token
    request = attempt(token, capture=False)
    reference = (await stripe_connector.authorize(request)).provider_reference
    assert reference is not None

    voided = await stripe_connector.void(reference, f"{request.idempotency_key}:void")
    assert voided == OperationResult(True, reference)
    assert (await intent_at(localstripe, reference))["status"] == "canceled"
    # The attempt itself was authorized; the void is a separate operation.
    synced = await stripe_connector.retrieve(request.idempotency_key, reference)
    assert synced.outcome is AttemptOutcome.AUTHORIZED
    late = await stripe_connector.capture(reference, 1000, f"{request.idempotency_key}:cap")
    assert not late.succeeded


async def test_partial_and_full_refunds(
    stripe_connector: StripeConnector, localstripe: httpx.AsyncClient
) -> None:
    token = (await stripe_connector.tokenize_card(card())).token
    request = attempt(token, amount=1000)
    reference = (await stripe_connector.authorize(request)).provider_reference
    assert reference is not None

    partial = await stripe_connector.refund(reference, 300, f"{request.idempotency_key}:r1")
    assert partial.succeeded
    assert not partial.pending
    assert partial.provider_reference is not None
    assert partial.provider_reference.startswith("re_")
    rest = await stripe_connector.refund(reference, 700, f"{request.idempotency_key}:r2")
    assert rest.succeeded
    assert rest.provider_reference != partial.provider_reference

    assert await stripe_connector.retrieve_refund(partial.provider_reference) == partial
    listed = await localstripe.get("/v1/refunds", params={"payment_intent": reference})
    amounts = sorted(refund["amount"] for refund in listed.json()["data"])
    assert amounts == [300, 700]
    charge = (await intent_at(localstripe, reference))["latest_charge"]
    assert charge["refunded"] is True


async def test_refund_of_a_failed_payment_is_refused(stripe_connector: StripeConnector) -> None:
    token = (await stripe_connector.tokenize_card(card(DECLINED_AT_CONFIRM))).token
    request = attempt(token)
    reference = (await stripe_connector.authorize(request)).provider_reference
    assert reference is not None
    refused = await stripe_connector.refund(reference, 100, f"{request.idempotency_key}:r")
    assert refused == OperationResult(False, None, "invalid_request")


async def test_decline(stripe_connector: StripeConnector, localstripe: httpx.AsyncClient) -> None:
    token = (await stripe_connector.tokenize_card(card(DECLINED_AT_CONFIRM))).token
    request = attempt(token)
    result = await stripe_connector.authorize(request)
    assert result.outcome is AttemptOutcome.DECLINED
    assert result.provider_reference is not None
    assert result.decline is not None
    assert result.decline.code == "card_declined"
    assert result.decline.message == "Your card was declined."
    # localstripe sends code card_declined without a decline_code; real Stripe's
    # decline_code is kept verbatim (see the unit tests).
    assert result.decline.decline_code is None
    stored = await intent_at(localstripe, result.provider_reference)
    assert stored["status"] == "requires_payment_method"
    synced = await stripe_connector.retrieve(request.idempotency_key, result.provider_reference)
    assert synced.outcome is AttemptOutcome.DECLINED
    assert synced.decline is not None
    assert synced.decline.code == "card_declined"


async def authenticate(localstripe: httpx.AsyncClient, reference: str, *, success: bool) -> None:
    """What Stripe.js does in localstripe's browser flow."""
    secret = (await intent_at(localstripe, reference))["client_secret"]
    answer = await localstripe.post(
        f"/v1/payment_intents/{reference}/_authenticate",
        data={"client_secret": secret, "success": "true" if success else "false"},
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("success", [True, False])
async def test_three_d_secure(
    stripe_connector: StripeConnector, localstripe: httpx.AsyncClient, success: bool
) -> None:
    token = (await stripe_connector.tokenize_card(card(THREE_DS))).token
    request = attempt(token)
    result = await stripe_connector.authorize(request)
    assert result.outcome is AttemptOutcome.REQUIRES_ACTION
    reference = result.provider_reference
    assert reference is not None
    # localstripe asks for use_stripe_sdk (Stripe.js), which has no URL; real Stripe answers
    # redirect_to_url for a confirm with return_url (mapped in the unit tests).
    assert result.redirect_url is None
    stored = await intent_at(localstripe, reference)
    assert stored["next_action"]["type"] == "use_stripe_sdk"

    await authenticate(localstripe, reference, success=success)
    synced = await stripe_connector.retrieve(request.idempotency_key, reference)
    if success:
        assert synced.outcome is AttemptOutcome.CAPTURED
    else:
        assert synced.outcome is AttemptOutcome.DECLINED
        assert synced.decline is not None
        assert synced.decline.code == "authentication_required"


# --- saved methods --------------------------------------------------------------------------


async def test_tokenize_create_customer_and_attach(
    stripe_connector: StripeConnector, localstripe: httpx.AsyncClient
) -> None:
    tokenized = await stripe_connector.tokenize_card(card("4242 4242 4242 4242"))
    assert tokenized.token.startswith("pm_")
    assert (tokenized.brand, tokenized.last4, tokenized.exp_month, tokenized.exp_year) == (
        "visa",
        "4242",
        12,
        2034,
    )
    customer = await stripe_connector.create_customer(
        "ada@example.com", "Ada Lovelace", f"cus_key_{uuid.uuid4().hex}"
    )
    assert customer.startswith("cus_")
    stored = (await localstripe.get(f"/v1/customers/{customer}")).json()
    assert (stored["email"], stored["name"]) == ("ada@example.com", "Ada Lovelace")

    await stripe_connector.attach_payment_method(tokenized.token, customer)
    method = (await localstripe.get(f"/v1/payment_methods/{tokenized.token}")).json()
    assert method["customer"] == customer

    result = await stripe_connector.authorize(attempt(tokenized.token, customer_reference=customer))
    assert result.outcome is AttemptOutcome.CAPTURED
    assert result.provider_reference is not None
    assert (await intent_at(localstripe, result.provider_reference))["customer"] == customer


async def test_a_card_declined_at_attach_is_invalid(stripe_connector: StripeConnector) -> None:
    token = (await stripe_connector.tokenize_card(card(DECLINED_AT_ATTACH))).token
    customer = await stripe_connector.create_customer(None, None, f"k_{uuid.uuid4().hex}")
    with pytest.raises(InvalidCard) as caught:
        await stripe_connector.attach_payment_method(token, customer)
    assert caught.value.param == "number"


async def test_bad_card_data_is_invalid(stripe_connector: StripeConnector) -> None:
    with pytest.raises(InvalidCard):
        await stripe_connector.tokenize_card(card("424242424242424"))  # 15 digits


# --- status sync without a provider reference -----------------------------------------------


async def test_retrieve_finds_the_intent_by_attempt_id(stripe_connector: StripeConnector) -> None:
    token = (await stripe_connector.tokenize_card(card())).token
    request = attempt(token, capture=False)
    result = await stripe_connector.authorize(request)
    found = await stripe_connector.retrieve(request.idempotency_key, None)
    assert found == result
    assert found.outcome is AttemptOutcome.AUTHORIZED


async def test_retrieve_without_any_intent_is_a_definite_not_found(
    stripe_connector: StripeConnector,
) -> None:
    # Search found nothing and the complete list has no intent for it: a typed answer that
    # status sync turns into not_sent after the grace period (still an unknown outcome).
    with pytest.raises(NoSuchCharge, match="no PaymentIntent"):
        await stripe_connector.retrieve(f"att_{uuid.uuid4().hex}", None)


async def test_an_intent_never_confirmed_is_canceled_and_declined(
    stripe_connector: StripeConnector, localstripe: httpx.AsyncClient
) -> None:
    """As if the create reached Stripe but its answer was lost, and no confirm followed."""
    token = (await stripe_connector.tokenize_card(card())).token
    attempt_id = f"att_{uuid.uuid4().hex}"
    created = await localstripe.post(
        "/v1/payment_intents",
        data={
            "amount": "500",
            "currency": "usd",
            "payment_method": token,
            "metadata[paygrid_attempt_id]": attempt_id,
        },
    )
    reference = created.json()["id"]
    result = await stripe_connector.retrieve(attempt_id, None)
    assert result.outcome is AttemptOutcome.DECLINED
    assert result.provider_reference == reference
    # Canceled, so no late confirm can charge it after we said declined.
    assert (await intent_at(localstripe, reference))["status"] == "canceled"
    late = await localstripe.post(f"/v1/payment_intents/{reference}/confirm")
    assert late.status_code == 400


# --- webhooks from localstripe --------------------------------------------------------------


async def test_localstripe_webhooks_verify_and_map(
    stripe_connector: StripeConnector, localstripe: httpx.AsyncClient
) -> None:
    received: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = dict(line.split(": ", 1) for line in lines if ": " in line)
        body = await reader.readexactly(int(headers["Content-Length"]))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await received.put((body, headers))

    async with serving(handle) as port:
        hook_id = f"wh_{uuid.uuid4().hex[:8]}"
        registered = await localstripe.post(
            f"/_config/webhooks/{hook_id}",
            data={
                "url": f"http://127.0.0.1:{port}/stripe",
                "secret": WEBHOOK_SECRET,
                "events[]": "payment_intent.succeeded",
            },
        )
        assert registered.status_code == 200
        token = (await stripe_connector.tokenize_card(card())).token
        request = attempt(token)
        result = await stripe_connector.authorize(request)
        # localstripe delivers after a one-second delay; other tests' events may come too.
        deadline = time.monotonic() + 10
        while True:
            body, headers = await asyncio.wait_for(received.get(), deadline - time.monotonic())
            parsed = stripe_connector.parse_webhook(body, headers, SYSTEM_CLOCK.now().timestamp())
            if parsed.attempt_id == request.idempotency_key:
                break
        await localstripe.post(
            f"/_config/webhooks/{hook_id}",
            data={"url": "http://127.0.0.1:9/gone", "secret": "x", "events[]": "none.none"},
        )
    assert parsed.type == "payment_intent.succeeded"
    assert parsed.event_id.startswith("evt_")
    assert parsed.provider_reference == result.provider_reference
    assert parsed.attempt_result is not None
    assert parsed.attempt_result.outcome is AttemptOutcome.CAPTURED
    tampered = body.replace(b"succeeded", b"canceled", 1)
    with pytest.raises(InvalidSignature, match="matches"):
        stripe_connector.parse_webhook(tampered, headers, SYSTEM_CLOCK.now().timestamp())


# --- failure classification over real sockets -----------------------------------------------


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[int]:
    """A raw TCP server on a free local port; every connection is closed on exit."""
    connections: set[asyncio.StreamWriter] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.add(writer)
        with suppress(ConnectionError, asyncio.IncompleteReadError):
            await handler(reader, writer)

    server = await asyncio.start_server(tracked, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()
        for writer in connections:
            writer.close()
        await server.wait_closed()


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    await reader.readexactly(length)


def answering(status: int, body: dict[str, Any], **headers: str) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        payload = json.dumps(body).encode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        writer.close()

    return handle


async def never_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await asyncio.sleep(30)


async def hanging_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.close()


async def test_a_closed_port_is_unreachable() -> None:
    async with connector_at(f"http://127.0.0.1:{closed_port()}") as connector:
        with pytest.raises(ProviderUnreachable):
            await connector.authorize(attempt("pm_card_visa"))
        with pytest.raises(ProviderUnreachable):
            await connector.capture("pi_1", 100, "key")
        # A status sync that cannot ask Stripe still does not know.
        with pytest.raises(OutcomeUnknown):
            await connector.retrieve("att_1", "pi_1")


async def test_a_server_that_never_answers_is_unknown() -> None:
    async with (
        serving(never_answering) as port,
        connector_at(f"http://127.0.0.1:{port}", timeout=0.3) as connector,
    ):
        started = time.monotonic()
        with pytest.raises(OutcomeUnknown) as caught:
            await connector.authorize(attempt("pm_card_visa"))
        assert time.monotonic() - started < 5
        stripe_error = caught.value.__cause__
        assert stripe_error is not None
        assert isinstance(stripe_error.__cause__, httpx.ReadTimeout)


async def test_a_server_that_hangs_up_after_the_request_is_unknown() -> None:
    async with serving(hanging_up) as port, connector_at(f"http://127.0.0.1:{port}") as connector:
        with pytest.raises(OutcomeUnknown):
            await connector.authorize(attempt("pm_card_visa"))


async def test_a_5xx_is_unknown_even_when_stripe_says_retry() -> None:
    body = {"error": {"type": "api_error", "message": "Something went wrong."}}
    handler = answering(500, body, **{"Stripe-Should-Retry": "true", "Request-Id": "req_1"})
    async with serving(handler) as port, connector_at(f"http://127.0.0.1:{port}") as connector:
        with pytest.raises(OutcomeUnknown, match="req_1"):
            await connector.authorize(attempt("pm_card_visa"))
        with pytest.raises(OutcomeUnknown):
            await connector.refund("pi_1", 100, "key")


async def test_a_rate_limit_or_lock_timeout_is_unreachable() -> None:
    for code in ("rate_limit", "lock_timeout"):
        body = {"error": {"type": "invalid_request_error", "code": code, "message": "Wait."}}
        handler = answering(429, body, **{"Stripe-Should-Retry": "true"})
        async with serving(handler) as port, connector_at(f"http://127.0.0.1:{port}") as conn:
            with pytest.raises(ProviderUnreachable):
                await conn.authorize(attempt("pm_card_visa"))


async def test_a_rejected_key_is_invalid_credentials(localstripe_url: str) -> None:
    async with connector_at(localstripe_url, key="not_a_secret_key") as connector:
        with pytest.raises(InvalidCredentials):
            await connector.authorize(attempt("pm_card_visa"))


# --- the wire format real Stripe sees (localstripe ignores keys and lacks search) -----------


class Recorder:
    """A scripted Stripe: answers each ``METHOD path`` with a canned object, records requests."""

    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, str, dict[str, str], str]] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        first, *lines = head.decode().split("\r\n")
        method, target, _ = first.split(" ")
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines if line)}
        body = (await reader.readexactly(int(headers.get("content-length", "0")))).decode()
        self.requests.append((method, target, headers, body))
        answer = json.dumps(self.answers[f"{method} {target.split('?')[0]}"]).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(answer)}\r\n\r\n".encode()
            + answer
        )
        await writer.drain()
        writer.close()


def scripted_intent(status: str, attempt_id: str) -> dict[str, Any]:
    return {
        "id": "pi_scripted",
        "object": "payment_intent",
        "status": status,
        "metadata": {"paygrid_attempt_id": attempt_id},
        "latest_charge": None,
        "last_payment_error": None,
        "next_action": None,
    }


async def test_real_stripe_requests_carry_derived_keys_and_return_url() -> None:
    request = attempt("pm_1", capture=False)
    key = request.idempotency_key
    recorder = Recorder(
        {
            "POST /v1/payment_intents": scripted_intent("requires_confirmation", key),
            "POST /v1/payment_intents/pi_scripted/confirm": scripted_intent(
                "requires_capture", key
            ),
        }
    )
    async with serving(recorder) as port:
        connector = StripeConnector(config(f"http://127.0.0.1:{port}"), localstripe=False)
        try:
            result = await connector.authorize(request)
        finally:
            await connector.aclose()
    assert result.outcome is AttemptOutcome.AUTHORIZED
    (_, _, create_headers, create_body), (_, _, confirm_headers, confirm_body) = recorder.requests
    assert create_headers["idempotency-key"] == f"{key}:create"
    assert confirm_headers["idempotency-key"] == f"{key}:confirm"
    assert create_headers["authorization"] == f"Bearer {SECRET_KEY}"
    create = httpx.QueryParams(create_body)
    assert create["allowed_payment_method_types[0]"] == "card"
    assert "payment_method_types[0]" not in create
    assert create["capture_method"] == "manual"
    assert create["metadata[paygrid_attempt_id]"] == key
    assert create["payment_method"] == "pm_1"
    confirm = httpx.QueryParams(confirm_body)
    assert confirm["return_url"] == "https://shop.example/return"
    assert confirm["expand[0]"] == "latest_charge"
    assert "payment_method" not in confirm


async def test_retrieve_by_attempt_id_searches_real_stripe_first() -> None:
    attempt_id = f"att_{uuid.uuid4().hex}"
    recorder = Recorder(
        {
            "GET /v1/payment_intents/search": {
                "object": "search_result",
                "data": [scripted_intent("succeeded", attempt_id)],
                "has_more": False,
                "url": "/v1/payment_intents/search",
            },
            "GET /v1/payment_intents/pi_scripted": scripted_intent("succeeded", attempt_id),
        }
    )
    async with serving(recorder) as port:
        connector = StripeConnector(config(f"http://127.0.0.1:{port}"), localstripe=False)
        try:
            result = await connector.retrieve(attempt_id, None)
        finally:
            await connector.aclose()
    assert result.outcome is AttemptOutcome.CAPTURED
    assert result.provider_reference == "pi_scripted"
    search_target = recorder.requests[0][1]
    query = httpx.URL(search_target).params["query"]
    assert query == f"metadata['paygrid_attempt_id']:'{attempt_id}'"
