"""Scenario fixtures: one ``ConnectorCase`` per provider (the built-in simulator's account
type, Stripe on localstripe, Paystack on its fake) that knows how to open an account for a
merchant, pay, decline, authenticate, fetch the provider's webhook for a payment and make the
next provider call time out after the provider processed it. Everything is driven over HTTP
through the API; the database is read only to learn provider references."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from paygrid.app import create_app
from paygrid.bootstrap import build_deps
from paygrid.config import Settings
from paygrid.dependencies import Deps
from paygrid.services import status_sync
from paygrid.services.merchants import NewMerchant
from tests.conftest import TEST_BASE_URL, Api, card
from tests.fakes.paystack import FakeMerchant, PaystackFake, closed_port_url

Json = dict[str, Any]

RETURN_URL = "https://shop.example/return"
EMAIL = "ada@example.com"
STRIPE_SECRET_KEY = "sk_test_paygrid_scenarios"
STRIPE_WEBHOOK_SECRET = "whsec_paygrid_scenarios"
# Short enough to keep the suite fast, long enough for localstripe and the fake to answer.
HASTY_TIMEOUT_SECONDS = 0.5
HANG_SECONDS = 1.0


# --- what one test drives ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Webhook:
    """One provider webhook exactly as the provider sent it: the signed bytes and headers."""

    body: bytes
    headers: dict[str, str]

    def tampered(self, old: bytes, new: bytes) -> Webhook:
        assert old in self.body, f"{old!r} is not in the webhook body"
        return replace(self, body=self.body.replace(old, new, 1))


@dataclass(frozen=True, slots=True)
class Scenario:
    """The merchant's API, the app as a customer's browser reaches it, the app's deps (for
    status sync) and the database (read only, for provider references)."""

    api: Api
    client: httpx.AsyncClient
    deps: Deps
    pool: asyncpg.Pool

    async def create_payment(self, body: Json) -> httpx.Response:
        return await self.api.post("/v1/payments", body)

    async def payment(self, payment_id: str) -> Json:
        response = await self.api.get(f"/v1/payments/{payment_id}")
        assert response.status_code == 200, response.text
        found: Json = response.json()
        return found

    async def return_from_provider(self, payment_id: str) -> httpx.Response:
        """The customer's browser lands on paygrid's return route."""
        return await self.client.get(f"/payments/{payment_id}/return")

    async def sync(self, ahead: timedelta = timedelta(minutes=2)) -> status_sync.SyncReport:
        """One status-sync pass as if ``ahead`` had passed (the first retry is due at 60 s)."""
        return await status_sync.run(self.deps, now=self.deps.clock.now() + ahead)

    async def deliver(self, account_id: str, webhook: Webhook) -> httpx.Response:
        return await self.client.post(
            f"/v1/provider_webhooks/{account_id}", content=webhook.body, headers=webhook.headers
        )

    async def event_types(self, object_id: str) -> list[str]:
        """The merchant's events about one object, oldest first, from ``GET /v1/events``."""
        response = await self.api.get("/v1/events", limit=100)
        assert response.status_code == 200, response.text
        events = response.json()["data"]
        return [e["type"] for e in reversed(events) if e["data"]["object"]["id"] == object_id]

    async def attempt_reference(self, attempt_id: str) -> str | None:
        reference: str | None = await self.pool.fetchval(
            "SELECT provider_reference FROM payment_attempts WHERE id = $1", attempt_id
        )
        return reference

    async def refund_reference(self, refund_id: str) -> str | None:
        reference: str | None = await self.pool.fetchval(
            "SELECT provider_reference FROM refunds WHERE id = $1", refund_id
        )
        return reference

    async def inbox_size(self, account_id: str) -> int:
        """Provider events stored for an account (a bad signature must store none)."""
        count: int = await self.pool.fetchval(
            "SELECT count(*) FROM provider_webhook_events WHERE connector_account_id = $1",
            account_id,
        )
        return count


def authorizations(payment: Json) -> list[Json]:
    return [a for a in payment["attempts"] if a["operation"] == "authorize"]


def last_authorization(payment: Json) -> Json:
    return authorizations(payment)[-1]


def redirect_url(payment: Json) -> str | None:
    next_action = payment["next_action"]
    assert next_action is not None and next_action["type"] == "redirect_to_url", payment
    url: str | None = next_action["redirect_to_url"]["url"]
    return url


async def scenario_of(
    http: httpx.AsyncClient, merchant: NewMerchant, deps: Deps, pool: asyncpg.Pool
) -> Scenario:
    return Scenario(Api(http, merchant.key("secret", livemode=False)), http, deps, pool)


@pytest.fixture
async def scenario(
    client: httpx.AsyncClient, merchant: NewMerchant, deps: Deps, pool: asyncpg.Pool
) -> AsyncIterator[Scenario]:
    yield await scenario_of(client, merchant, deps, pool)
    await deps.connectors.aclose()


@pytest.fixture
async def hasty_scenario(
    pool: asyncpg.Pool, bookkeeping_pool: asyncpg.Pool, settings: Settings, merchant: NewMerchant
) -> AsyncIterator[Scenario]:
    """The app with a short provider timeout, for calls that are made to time out."""
    hasty = settings.model_copy(update={"connector_timeout_seconds": HASTY_TIMEOUT_SECONDS})
    deps = build_deps(pool, hasty, bookkeeping_pool=bookkeeping_pool)
    transport = httpx.ASGITransport(app=create_app(hasty, deps=deps), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
        yield await scenario_of(http, merchant, deps, pool)
    await deps.connectors.aclose()


# --- localstripe helpers: its webhooks, and a proxy that can hang after forwarding --------------


class StripeEvents:
    """A local receiver registered once with localstripe for the session: it keeps every
    event localstripe sends (signed with ``STRIPE_WEBHOOK_SECRET``)."""

    def __init__(self) -> None:
        self.received: list[Webhook] = []
        self._server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/stripe"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            _, headers, body = await read_http_request(reader)
            self.received.append(Webhook(body, headers))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        writer.close()

    async def wait_for(self, event_type: str, intent_id: str, within: float = 10.0) -> Webhook:
        """localstripe sends each event about a second after the change."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for hook in self.received:
                event = json.loads(hook.body)
                if event["type"] == event_type and event["data"]["object"]["id"] == intent_id:
                    return hook
            await asyncio.sleep(0.05)
        raise TimeoutError(f"localstripe never sent {event_type} for {intent_id}")


async def read_http_request(
    reader: asyncio.StreamReader,
) -> tuple[str, dict[str, str], bytes]:
    """(request line, lower-cased headers, body) of one HTTP/1.1 request."""
    head = await reader.readuntil(b"\r\n\r\n")
    first, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return first, headers, body


@dataclass(slots=True)
class HangingProxy:
    """A pass-through HTTP proxy to localstripe. ``hang_next`` makes the next request whose
    path ends with a suffix reach localstripe (so the change is made) and then get no answer:
    a timeout after processing, as a slow network would cause."""

    upstream: str
    url: str = ""
    hung: list[str] = field(default_factory=list)
    _traps: list[tuple[str, str]] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _http: httpx.AsyncClient | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._http = httpx.AsyncClient(base_url=self.upstream, timeout=10)
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        assert self._server is not None and self._http is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        await self._http.aclose()

    def hang_next(self, method: str, path_suffix: str) -> None:
        self._traps.append((method, path_suffix))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                while await self._forward_one(reader, writer):
                    pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _forward_one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        assert self._http is not None
        first, headers, body = await read_http_request(reader)
        method, target, _ = first.split(" ", 2)
        forwarded = {
            k: v
            for k, v in headers.items()
            if k not in {"host", "content-length", "connection", "accept-encoding"}
        }
        answer = await self._http.request(method, target, headers=forwarded, content=body)
        trap = next(
            (t for t in self._traps if t[0] == method and target.split("?")[0].endswith(t[1])),
            None,
        )
        if trap is not None:
            self._traps.remove(trap)
            self.hung.append(target)
            await asyncio.sleep(HANG_SECONDS)
            return False
        content = answer.content
        writer.write(
            f"HTTP/1.1 {answer.status_code} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(content)}\r\n\r\n".encode()
            + content
        )
        await writer.drain()
        return True


@pytest.fixture(scope="session")
async def stripe_events(localstripe_url: str) -> AsyncIterator[StripeEvents]:
    events = StripeEvents()
    await events.start()
    hook_id = f"wh_scenarios_{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=localstripe_url) as http:
        registered = await http.post(
            f"/_config/webhooks/{hook_id}",
            json={
                "url": events.url,
                "secret": STRIPE_WEBHOOK_SECRET,
                "events": ["payment_intent.succeeded", "payment_intent.payment_failed"],
            },
        )
        assert registered.status_code == 200, registered.text
        yield events
        # localstripe cannot forget a webhook: point it at nothing that is ever sent.
        await http.post(
            f"/_config/webhooks/{hook_id}",
            json={"url": "http://127.0.0.1:9/gone", "secret": "x", "events": ["none.none"]},
        )
    await events.stop()


@pytest.fixture(scope="session")
async def stripe_proxy(localstripe_url: str) -> AsyncIterator[HangingProxy]:
    proxy = HangingProxy(localstripe_url)
    await proxy.start()
    yield proxy
    await proxy.stop()


# --- the cases ---------------------------------------------------------------------------------


class ConnectorCase(ABC):
    """How the suite drives one provider. Each scenario asks ``capabilities`` (from the
    account as the API shows it) and skips, saying why, where the provider cannot do it."""

    name: ClassVar[str]
    currency: ClassVar[str]
    decline_code: ClassVar[str]  # paygrid's code for the decline ``decline`` provokes
    # The provider's own status for a charge, by what paygrid calls the attempt's outcome.
    provider_statuses: ClassVar[dict[str, str]]

    @abstractmethod
    async def create_account(self, s: Scenario, *, unreachable: bool = False) -> Json:
        """A working account (or one whose provider refuses connections) for the merchant."""

    @abstractmethod
    def purchase_body(self, amount: int, capture_method: str = "automatic") -> Json:
        """A create-and-confirm body that leads to a successful charge."""

    @abstractmethod
    async def start_action(self, s: Scenario, amount: int) -> Json:
        """A payment that waits for the customer (3-D Secure, or the hosted page)."""

    @abstractmethod
    async def complete_action(self, s: Scenario, payment: Json, *, succeed: bool = True) -> None:
        """Do what the customer does at the provider, without coming back to paygrid."""

    @abstractmethod
    def check_action_url(self, url: str | None) -> None:
        """What ``next_action.redirect_to_url.url`` looks like for this provider."""

    @abstractmethod
    async def decline(self, s: Scenario, amount: int) -> Json:
        """A payment the provider declines; returns it as the API shows it afterwards."""

    @abstractmethod
    async def success_webhook(self, s: Scenario, payment: Json) -> Webhook:
        """The provider's signed "payment succeeded" event for ``payment``."""

    @abstractmethod
    async def timing_out_purchase(self, s: Scenario, account: Json) -> Json:
        """Arrange for the next authorize to time out after the provider processed it, and
        return the create-and-confirm body that makes that call."""

    async def timing_out_first_purchase(self, s: Scenario, account: Json) -> Json:
        """Like ``timing_out_purchase``, for a payment with nothing saved at the account
        (so routing could send it to any account of a rule)."""
        return await self.timing_out_purchase(s, account)

    # What status sync finds at the provider after ``timing_out_first_purchase``.
    status_after_first_timeout: ClassVar[str] = "captured"

    @abstractmethod
    async def provider_attempt_ids(self, s: Scenario, payment_id: str) -> list[str]:
        """Our attempt ids of every charge the provider holds for the payment."""

    @abstractmethod
    async def provider_status(self, s: Scenario, attempt_id: str) -> str:
        """The charge's status as the provider (or its fake) holds it."""

    @abstractmethod
    async def provider_refunded(self, s: Scenario, attempt_id: str) -> int:
        """How much the provider has refunded on the charge."""

    async def settle_refund(self, s: Scenario, account: Json, refund: Json, *, via: str) -> None:
        """Bring a refund the provider accepted as pending to its end (``via`` the provider's
        webhook or paygrid's status sync). Providers that answer at once have nothing to do."""
        raise AssertionError(f"{self.name} refunds are never pending")

    async def pay(self, s: Scenario, amount: int, capture_method: str = "automatic") -> Json:
        """A successful payment, driving whatever page the provider needs."""
        response = await s.create_payment(self.purchase_body(amount, capture_method))
        assert response.status_code == 200, response.text
        payment: Json = response.json()
        return payment

    def __repr__(self) -> str:
        return self.name


def require(account: Json, capability: str, what: str) -> None:
    """Skip the scenario, saying why, when the account's provider lacks ``capability``."""
    if capability not in account["capabilities"]:
        pytest.skip(f"{account['provider']} has no {what}")


class CardCase(ConnectorCase, ABC):
    """Providers paid with raw test cards, tokenized at the routed account."""

    success_card: ClassVar[str] = "4242424242424242"
    declined_card: ClassVar[str]
    three_ds_card: ClassVar[str]

    def purchase_body(self, amount: int, capture_method: str = "automatic") -> Json:
        return self._card_body(self.success_card, amount, capture_method)

    def _card_body(self, number: str, amount: int, capture_method: str = "automatic") -> Json:
        return {
            "amount": amount,
            "currency": self.currency,
            "confirm": True,
            "capture_method": capture_method,
            "payment_method_data": card(number),
            "return_url": RETURN_URL,
        }

    async def start_action(self, s: Scenario, amount: int) -> Json:
        response = await s.create_payment(self._card_body(self.three_ds_card, amount))
        assert response.status_code == 200, response.text
        payment: Json = response.json()
        return payment

    async def decline(self, s: Scenario, amount: int) -> Json:
        response = await s.create_payment(self._card_body(self.declined_card, amount))
        assert response.status_code == 402, response.text
        error = response.json()["error"]
        assert error["type"] == "card_error"
        return await s.payment(error["payment_id"])


class SimulatorCase(CardCase):
    name = "simulator"
    currency = "USD"
    decline_code = "card_declined"
    declined_card = "4000000000000002"
    three_ds_card = "4000002500003155"
    provider_statuses: ClassVar[dict[str, str]] = {
        "captured": "captured",
        "authorized": "authorized",
        "voided": "voided",
        "declined": "declined",
        "requires_action": "requires_action",
    }

    async def create_account(self, s: Scenario, *, unreachable: bool = False) -> Json:
        body: Json = {"provider": "simulator", "name": "Simulator", "currencies": ["USD"]}
        if unreachable:
            body["metadata"] = {"failure_mode": "unavailable"}
        response = await s.api.post("/v1/connector_accounts", body)
        assert response.status_code == 200, response.text
        account: Json = response.json()
        return account

    async def complete_action(self, s: Scenario, payment: Json, *, succeed: bool = True) -> None:
        url = redirect_url(payment)
        assert url is not None
        decision = "approve" if succeed else "deny"
        decided = await s.client.post(
            urlsplit(url).path,
            content=f"decision={decision}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert decided.status_code == 303, decided.text

    def check_action_url(self, url: str | None) -> None:
        assert url is not None
        assert url.startswith(f"{TEST_BASE_URL}/simulator/authenticate/")

    async def success_webhook(self, s: Scenario, payment: Json) -> Webhook:
        raise AssertionError("the simulator sends no webhooks")

    async def timing_out_purchase(self, s: Scenario, account: Json) -> Json:
        # The account's simulator charges, then answers with a timeout.
        updated = await s.api.post(
            f"/v1/connector_accounts/{account['id']}", {"metadata": {"failure_mode": "timeout"}}
        )
        assert updated.status_code == 200, updated.text
        return self.purchase_body(1500)

    async def _charge(self, s: Scenario, attempt_id: str) -> asyncpg.Record:
        row = await s.pool.fetchrow(
            "SELECT * FROM simulator.charges WHERE idempotency_key = $1", attempt_id
        )
        assert row is not None, f"the simulator has no charge for {attempt_id}"
        return row

    async def provider_status(self, s: Scenario, attempt_id: str) -> str:
        return str((await self._charge(s, attempt_id))["status"])

    async def provider_attempt_ids(self, s: Scenario, payment_id: str) -> list[str]:
        """Every simulator account shares one store; a charge's return URL names its payment."""
        rows = await s.pool.fetch(
            "SELECT idempotency_key FROM simulator.charges WHERE return_url = $1",
            f"{TEST_BASE_URL}/payments/{payment_id}/return",
        )
        return [str(row["idempotency_key"]) for row in rows]

    async def provider_refunded(self, s: Scenario, attempt_id: str) -> int:
        return int((await self._charge(s, attempt_id))["amount_refunded"])


class StripeCase(CardCase):
    name = "stripe"
    currency = "USD"
    decline_code = "card_declined"
    declined_card = "4000000000000341"
    three_ds_card = "4000000000003220"
    provider_statuses: ClassVar[dict[str, str]] = {
        "captured": "succeeded",
        "authorized": "requires_capture",
        "voided": "canceled",
        "declined": "requires_payment_method",
        "requires_action": "requires_action",
    }

    def __init__(self, localstripe_url: str, events: StripeEvents, proxy: HangingProxy) -> None:
        self.localstripe_url = localstripe_url
        self.events = events
        self.proxy = proxy

    async def create_account(self, s: Scenario, *, unreachable: bool = False) -> Json:
        response = await s.api.post(
            "/v1/connector_accounts",
            {
                "provider": "stripe",
                "name": "Stripe (localstripe)",
                "credentials": {
                    "secret_key": STRIPE_SECRET_KEY,
                    "webhook_secret": STRIPE_WEBHOOK_SECRET,
                },
                "currencies": ["USD"],
                "api_base": closed_port_url() if unreachable else self.localstripe_url,
            },
        )
        assert response.status_code == 200, response.text
        account: Json = response.json()
        return account

    async def _localstripe(self, method: str, path: str, **data: str) -> Json:
        """Ask localstripe directly, to see what the connector left there."""
        async with httpx.AsyncClient(
            base_url=self.localstripe_url, auth=(STRIPE_SECRET_KEY, "")
        ) as http:
            if method == "GET":
                answer = await http.get(path, params=data)
            else:
                answer = await http.post(path, data=data)
        assert answer.status_code == 200, answer.text
        body: Json = answer.json()
        return body

    async def _intent(self, s: Scenario, attempt_id: str) -> Json:
        reference = await s.attempt_reference(attempt_id)
        if reference is None:  # paygrid never learnt it (a timeout): look it up by metadata
            return await self._intent_by_metadata(attempt_id)
        return await self._localstripe("GET", f"/v1/payment_intents/{reference}")

    async def _intent_by_metadata(self, attempt_id: str) -> Json:
        [intent] = await self._intents_where("paygrid_attempt_id", attempt_id)
        return intent

    async def _intents_where(self, key: str, value: str) -> list[Json]:
        """Every PaymentIntent in localstripe whose metadata has ``key: value`` (localstripe
        has no search; it lists oldest first)."""
        found: list[Json] = []
        after: dict[str, str] = {}
        while True:
            page = await self._localstripe("GET", "/v1/payment_intents", limit="100", **after)
            found.extend(i for i in page["data"] if i["metadata"].get(key) == value)
            if not page["has_more"]:
                return found
            after = {"starting_after": page["data"][-1]["id"]}

    async def provider_attempt_ids(self, s: Scenario, payment_id: str) -> list[str]:
        intents = await self._intents_where("paygrid_payment_id", payment_id)
        return [str(i["metadata"]["paygrid_attempt_id"]) for i in intents]

    async def complete_action(self, s: Scenario, payment: Json, *, succeed: bool = True) -> None:
        """What Stripe.js does in localstripe's 3-D Secure flow."""
        intent = await self._intent(s, last_authorization(payment)["id"])
        await self._localstripe(
            "POST",
            f"/v1/payment_intents/{intent['id']}/_authenticate",
            client_secret=intent["client_secret"],
            success="true" if succeed else "false",
        )

    def check_action_url(self, url: str | None) -> None:
        # localstripe answers use_stripe_sdk, which has no URL (real Stripe redirects).
        assert url is None

    async def success_webhook(self, s: Scenario, payment: Json) -> Webhook:
        intent = await self._intent(s, last_authorization(payment)["id"])
        return await self.events.wait_for("payment_intent.succeeded", intent["id"])

    async def timing_out_purchase(self, s: Scenario, account: Json) -> Json:
        moved = await s.api.post(
            f"/v1/connector_accounts/{account['id']}", {"api_base": self.proxy.url}
        )
        assert moved.status_code == 200, moved.text
        self.proxy.hang_next("POST", "/confirm")
        return self.purchase_body(1500)

    async def provider_status(self, s: Scenario, attempt_id: str) -> str:
        return str((await self._intent(s, attempt_id))["status"])

    async def provider_refunded(self, s: Scenario, attempt_id: str) -> int:
        return int((await self._intent(s, attempt_id))["latest_charge"]["amount_refunded"])


class PaystackCase(ConnectorCase):
    name = "paystack"
    currency = "NGN"
    decline_code = "insufficient_funds"
    success_card = "4084084084084081"
    insufficient_funds_card = "5061020283705678"
    provider_statuses: ClassVar[dict[str, str]] = {
        "captured": "success",
        "declined": "failed",
        "refunded": "reversed",
        "requires_action": "abandoned",  # initialized, the customer has not paid yet
    }

    def __init__(self, fake: PaystackFake, merchant: FakeMerchant) -> None:
        self.fake = fake
        self.merchant = merchant

    async def create_account(self, s: Scenario, *, unreachable: bool = False) -> Json:
        response = await s.api.post(
            "/v1/connector_accounts",
            {
                "provider": "paystack",
                "name": "Paystack (fake)",
                "credentials": {"secret_key": self.merchant.secret_key},
                "currencies": ["NGN"],
                "api_base": closed_port_url() if unreachable else self.fake.base_url,
            },
        )
        assert response.status_code == 200, response.text
        account: Json = response.json()
        return account

    def purchase_body(self, amount: int, capture_method: str = "automatic") -> Json:
        return {
            "amount": amount,
            "currency": self.currency,
            "confirm": True,
            "capture_method": capture_method,
            "payment_method_types": ["card"],
            "receipt_email": EMAIL,
            "return_url": RETURN_URL,
        }

    async def start_action(self, s: Scenario, amount: int) -> Json:
        response = await s.create_payment(self.purchase_body(amount))
        assert response.status_code == 200, response.text
        payment: Json = response.json()
        return payment

    async def complete_action(self, s: Scenario, payment: Json, *, succeed: bool = True) -> None:
        url = redirect_url(payment)
        assert url is not None
        number = self.success_card if succeed else self.insufficient_funds_card
        page = await self.merchant.pay(url, card_number=number)
        if not succeed:
            assert page.status_code == 402, page.text
            return
        assert page.status_code == 302, page.text
        back = urlsplit(page.headers["location"])
        assert f"{back.scheme}://{back.netloc}{back.path}" == (
            f"{TEST_BASE_URL}/payments/{payment['id']}/return"
        )
        assert parse_qs(back.query)["reference"] == [last_authorization(payment)["id"]]

    def check_action_url(self, url: str | None) -> None:
        assert url is not None
        assert url.startswith(f"{self.fake.base_url}/checkout/")

    async def pay(self, s: Scenario, amount: int, capture_method: str = "automatic") -> Json:
        payment = await self.start_action(s, amount)
        assert payment["status"] == "requires_action", payment
        await self.complete_action(s, payment)
        back = await s.return_from_provider(payment["id"])
        assert back.status_code == 303, back.text
        return await s.payment(payment["id"])

    async def decline(self, s: Scenario, amount: int) -> Json:
        payment = await self.start_action(s, amount)
        await self.complete_action(s, payment, succeed=False)
        back = await s.return_from_provider(payment["id"])
        assert back.status_code == 303, back.text
        assert parse_qs(urlsplit(back.headers["location"]).query)["redirect_status"] == ["failed"]
        return await s.payment(payment["id"])

    async def _delivery(self, event: str, match: str, key: str) -> Webhook:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for delivery in await self.merchant.webhooks():
                data = json.loads(delivery.body)["data"]
                if delivery.event == event and str(data[key]) == match:
                    return Webhook(delivery.body, delivery.headers)
            await asyncio.sleep(0.02)
        raise TimeoutError(f"the fake never sent {event} for {match}")

    async def success_webhook(self, s: Scenario, payment: Json) -> Webhook:
        return await self._delivery(
            "charge.success", last_authorization(payment)["id"], "reference"
        )

    async def timing_out_purchase(self, s: Scenario, account: Json) -> Json:
        """Paystack's hosted page cannot time out into a charge, so this charges the card a
        customer's first payment saved (``charge_authorization``), and that call times out.
        (A saved method is reusable only by the customer it belongs to.)"""
        created = await s.api.post("/v1/customers", {"email": EMAIL})
        assert created.status_code == 200, created.text
        customer = created.json()["id"]
        start = await s.create_payment({**self.purchase_body(5_000), "customer": customer})
        assert start.status_code == 200, start.text
        payment: Json = start.json()
        await self.complete_action(s, payment)
        back = await s.return_from_provider(payment["id"])
        assert back.status_code == 303, back.text
        first = await s.payment(payment["id"])
        assert first["status"] == "succeeded", first
        saved = first["payment_method"]
        assert saved is not None and saved.startswith("pm_"), first
        await self.merchant.fail_next(
            "timeout_after", path="/transaction/charge_authorization", hang_seconds=HANG_SECONDS
        )
        return {
            "amount": 1500,
            "currency": self.currency,
            "confirm": True,
            "customer": customer,
            "payment_method": saved,
            "receipt_email": EMAIL,
        }

    status_after_first_timeout: ClassVar[str] = "requires_action"

    async def timing_out_first_purchase(self, s: Scenario, account: Json) -> Json:
        """The hosted page's initialize times out after the fake created the transaction."""
        await self.merchant.fail_next(
            "timeout_after", path="/transaction/initialize", hang_seconds=HANG_SECONDS
        )
        return self.purchase_body(1500)

    async def provider_status(self, s: Scenario, attempt_id: str) -> str:
        return str((await self.merchant.state())["transactions"][attempt_id])

    async def provider_attempt_ids(self, s: Scenario, payment_id: str) -> list[str]:
        """This test's fake merchant (every account of the test uses its key): a
        transaction's reference is our attempt id."""
        return list((await self.merchant.state())["transactions"])

    async def provider_refunded(self, s: Scenario, attempt_id: str) -> int:
        verified = await self.merchant.api("GET", f"/transaction/verify/{attempt_id}")
        transaction_id = verified.json()["data"]["id"]
        total = 0
        for refund_id, status in (await self.merchant.state())["refunds"].items():
            data = (await self.merchant.api("GET", f"/refund/{refund_id}")).json()["data"]
            if status == "processed" and data["transaction"] == transaction_id:
                total += int(data["amount"])
        return total

    async def settle_refund(self, s: Scenario, account: Json, refund: Json, *, via: str) -> None:
        reference = await s.refund_reference(refund["id"])
        assert reference is not None
        await self.merchant.process_refunds()
        if via == "webhook":
            processed = await self._delivery("refund.processed", reference, "id")
            answer = await s.deliver(account["id"], processed)
            assert answer.json() == {"received": True, "status": "applied"}, answer.text
        else:
            report = await s.sync()
            assert report.refunds_settled >= 1


@pytest.fixture(params=["simulator", "stripe", "paystack"])
def case(
    request: pytest.FixtureRequest,
    localstripe_url: str,
    stripe_events: StripeEvents,
    stripe_proxy: HangingProxy,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> ConnectorCase:
    match request.param:
        case "simulator":
            return SimulatorCase()
        case "stripe":
            return StripeCase(localstripe_url, stripe_events, stripe_proxy)
        case "paystack":
            return PaystackCase(paystack_fake, paystack_merchant)
    raise AssertionError(request.param)
