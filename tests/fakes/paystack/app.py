"""The fake's HTTP surface: Paystack's API, the hosted checkout page and ``/_fake`` controls."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.fakes.paystack import payloads
from tests.fakes.paystack.settlements import SettlementRoutes
from tests.fakes.paystack.state import (
    CHANNELS,
    FAULT_MODES,
    ApiError,
    Delivery,
    FakeState,
    Fault,
    Merchant,
    Transaction,
    card_authorization,
    card_outcome,
    channel_authorization,
    decline,
    finish_refund,
    succeed,
)

Handler = Callable[[Request, Merchant], Awaitable[dict[str, Any]]]


class FakePaystack:
    def __init__(self) -> None:
        self.state = FakeState()
        self._tasks: set[asyncio.Task[None]] = set()
        self.settlements = SettlementRoutes(self)

    def app(self) -> Starlette:
        api = self._api
        ctl = self._control
        routes = [
            Route("/transaction/initialize", api(self.initialize), methods=["POST"]),
            Route("/transaction/verify/{reference}", api(self.verify), methods=["GET"]),
            Route("/transaction", api(self.list_transactions), methods=["GET"]),
            Route(
                "/transaction/charge_authorization",
                api(self.charge_authorization),
                methods=["POST"],
            ),
            Route("/refund", api(self.create_refund), methods=["POST"]),
            Route("/refund/{id}", api(self.fetch_refund), methods=["GET"]),
            Route("/checkout/{access_code}", self.checkout_page, methods=["GET"]),
            Route("/checkout/{access_code}", self.checkout_submit, methods=["POST"]),
            Route("/_fake/merchants", self.add_merchant, methods=["POST"]),
            Route("/_fake/webhook_url", ctl(self.set_webhook_url), methods=["PUT"]),
            Route("/_fake/refunds/process", ctl(self.process_refunds), methods=["POST"]),
            Route("/_fake/faults", ctl(self.add_fault), methods=["POST"]),
            Route(
                "/_fake/authorizations/{code}/decline",
                ctl(self.decline_authorization),
                methods=["POST"],
            ),
            Route("/_fake/webhooks", ctl(self.list_webhooks), methods=["GET"]),
            Route("/_fake/webhooks/{id:int}/resend", ctl(self.resend_webhook), methods=["POST"]),
            Route("/_fake/state", ctl(self.read_state), methods=["GET"]),
            Route("/_fake/sink/{name}", self.sink, methods=["GET", "POST"]),
            *self.settlements.routes(),  # GET /settlement..., /_fake/settlements, discrepancies
        ]
        return Starlette(routes=routes)

    # -- plumbing -------------------------------------------------------------------------

    def _merchant(self, request: Request) -> Merchant:
        header = request.headers.get("authorization", "")
        key = header.removeprefix("Bearer ").strip()
        merchant = self.state.merchants.get(key) if key.startswith("sk_test_") else None
        if merchant is None:
            raise ApiError(401, "Invalid key")
        return merchant

    def _api(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                merchant = self._merchant(request)
                fault = _take_fault(merchant, request.url.path)
                if fault is not None and fault.mode in ("timeout_before", "error_503"):
                    await asyncio.sleep(fault.hang_seconds if fault.mode == "timeout_before" else 0)
                    raise ApiError(503, "Service unavailable", "api_error", "unavailable")
                body = await handler(request, merchant)
                if fault is not None and fault.mode == "timeout_after":
                    await asyncio.sleep(fault.hang_seconds)
                if fault is not None and fault.mode == "error_500_after":
                    raise ApiError(500, "An error occurred", "api_error", "internal_error")
            except ApiError as err:
                return JSONResponse(payloads.error(err), status_code=err.http_status)
            return JSONResponse(body)

        return endpoint

    def _control(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return JSONResponse(await handler(request, self._merchant(request)))
            except ApiError as err:
                return JSONResponse(payloads.error(err), status_code=err.http_status)

        return endpoint

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            await coro

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def send_webhook(self, merchant: Merchant, payload: dict[str, Any]) -> Delivery:
        """Sign and record an event; POST it (after the current response) if a URL is set."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        signature = hmac.new(merchant.secret_key.encode(), body, hashlib.sha512).hexdigest()
        delivery = Delivery(len(merchant.deliveries) + 1, payload["event"], body, signature)
        delivery.url = merchant.webhook_url
        merchant.deliveries.append(delivery)
        self._spawn(self._deliver(merchant, delivery))
        return delivery

    async def _deliver(self, merchant: Merchant, delivery: Delivery) -> None:
        """POST a recorded event to the URL that was set when it happened."""
        await asyncio.sleep(0.01)  # let the response that caused the event go out first
        url = delivery.url
        if url is None:
            return
        headers = {"content-type": "application/json", "x-paystack-signature": delivery.signature}
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                response = await http.post(url, content=delivery.body, headers=headers)
            delivery.status_code, delivery.error = response.status_code, None
        except httpx.HTTPError as error:
            delivery.error = type(error).__name__

    # -- Paystack's API -------------------------------------------------------------------

    async def initialize(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        transaction = self.state.initialize(merchant, await _body(request))
        data = {
            "authorization_url": f"{request.base_url}checkout/{transaction.access_code}",
            "access_code": transaction.access_code,
            "reference": transaction.reference,
        }
        return payloads.envelope("Authorization URL created", data)

    async def verify(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        transaction = merchant.transactions.get(request.path_params["reference"])
        if transaction is None:
            raise ApiError(404, "Transaction reference not found", "validation_error")
        return payloads.envelope("Verification successful", payloads.verified(transaction))

    async def list_transactions(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        query = request.query_params
        per_page = max(1, int(query.get("perPage") or query.get("per_page") or 50))
        page = max(1, int(query.get("page") or 1))
        status = query.get("status")
        rows = [t for t in reversed(merchant.transactions.values()) if status in (None, t.status)]
        chosen = rows[(page - 1) * per_page : page * per_page]
        meta = {
            "total": len(rows),
            "total_volume": sum(t.amount for t in rows if t.status == "success"),
            "skipped": (page - 1) * per_page,
            "perPage": per_page,
            "page": page,
            "pageCount": max(1, -(-len(rows) // per_page)),
        }
        data = [payloads.listed(t) for t in chosen]
        return payloads.envelope("Transactions retrieved", data, meta=meta)

    async def charge_authorization(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        transaction = self.state.charge_authorization(merchant, await _body(request))
        if transaction.status == "success":
            self.send_webhook(merchant, payloads.charge_success_event(transaction))
        return payloads.envelope("Charge attempted", payloads.charged(transaction))

    async def create_refund(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        refund = self.state.create_refund(merchant, await _body(request))
        data = payloads.refund_created(merchant, refund)
        self.send_webhook(merchant, payloads.refund_event(merchant, refund))
        if merchant.auto_process_refunds:
            finish_refund(merchant, refund, "processed")
            self.send_webhook(merchant, payloads.refund_event(merchant, refund))
        return payloads.envelope("Transaction has been queued for reversal", data)

    async def fetch_refund(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        raw = request.path_params["id"]
        refund = merchant.refunds.get(int(raw)) if raw.isdigit() else None
        if refund is None:
            raise ApiError(404, "Refund not found", "validation_error")
        return payloads.envelope("Refund retrieved", payloads.refund_fetched(merchant, refund))

    # -- the hosted checkout page ---------------------------------------------------------

    def _checkout(self, request: Request) -> tuple[Merchant, Transaction]:
        found = self.state.checkouts.get(request.path_params["access_code"])
        if found is None:
            raise ApiError(404, "Checkout not found")
        return found

    async def checkout_page(self, request: Request) -> Response:
        try:
            _, t = self._checkout(request)
        except ApiError as err:
            return HTMLResponse(html.escape(err.message), status_code=404)
        return HTMLResponse(_checkout_html(t))

    async def checkout_submit(self, request: Request) -> Response:
        try:
            merchant, t = self._checkout(request)
        except ApiError as err:
            return HTMLResponse(html.escape(err.message), status_code=404)
        if t.status == "success":
            return HTMLResponse("This transaction has already been paid", status_code=400)
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        channel = form.get("channel", "card")
        if channel not in t.channels or channel not in CHANNELS:
            return HTMLResponse("Channel not available", status_code=400)
        if channel == "card":
            number = form.get("card_number", "").replace(" ", "")
            month, year = form.get("exp_month", "12"), form.get("exp_year", "2030")
            failure = card_outcome(number, month, year)
            if failure is not None:
                t.channel = "card"
                decline(t, failure)
                return HTMLResponse(_failed_html(t), status_code=402)
            auth = card_authorization(number, month, year)
        else:
            auth = channel_authorization(channel)
        merchant.authorizations[auth.code] = auth
        succeed(t, auth)
        self.send_webhook(merchant, payloads.charge_success_event(t))
        if t.callback_url is None:
            return HTMLResponse("Payment successful")
        separator = "&" if "?" in t.callback_url else "?"
        query = urlencode({"trxref": t.reference, "reference": t.reference})
        return RedirectResponse(f"{t.callback_url}{separator}{query}", status_code=302)

    # -- controls -------------------------------------------------------------------------

    async def add_merchant(self, request: Request) -> Response:
        body = await _body(request) if await request.body() else {}
        merchant = self.state.add_merchant(
            body.get("secret_key"), bool(body.get("auto_process_refunds", False))
        )
        return JSONResponse(
            {"secret_key": merchant.secret_key, "integration": merchant.integration}
        )

    async def set_webhook_url(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        merchant.webhook_url = (await _body(request)).get("url")
        return {"webhook_url": merchant.webhook_url}

    async def process_refunds(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        status = (await _body(request)).get("status", "processed")
        if status not in ("processed", "failed", "processing"):
            raise ApiError(400, "status must be processed, processing or failed")
        done = []
        for refund in merchant.refunds.values():
            if refund.status in ("pending", "processing") and refund.status != status:
                if status == "processing":
                    refund.status = status
                else:
                    finish_refund(merchant, refund, status)
                self.send_webhook(merchant, payloads.refund_event(merchant, refund))
                done.append(refund.id)
        return {"refunds": done}

    async def add_fault(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        body = await _body(request)
        if body.get("mode") not in FAULT_MODES:
            raise ApiError(400, f"mode must be one of {sorted(FAULT_MODES)}")
        fault = Fault(
            body["mode"],
            int(body.get("count", 1)),
            body.get("path"),
            float(body.get("hang_seconds", 2.0)),
        )
        merchant.faults.append(fault)
        return {"faults": len(merchant.faults)}

    async def decline_authorization(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        auth = merchant.authorizations.get(request.path_params["code"])
        if auth is None:
            raise ApiError(404, "Authorization not found")
        auth.decline_with = (await _body(request)).get("gateway_response") or "Declined"
        return {"authorization_code": auth.code, "decline_with": auth.decline_with}

    async def list_webhooks(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        return {"webhooks": [_delivery_json(d) for d in merchant.deliveries]}

    async def resend_webhook(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        number = request.path_params["id"]
        if not 1 <= number <= len(merchant.deliveries):
            raise ApiError(404, "Webhook not found")
        original = merchant.deliveries[number - 1]
        copy = Delivery(
            len(merchant.deliveries) + 1, original.event, original.body, original.signature
        )
        merchant.deliveries.append(copy)
        copy.url = merchant.webhook_url
        self._spawn(self._deliver(merchant, copy))
        return _delivery_json(copy)

    async def read_state(self, request: Request, merchant: Merchant) -> dict[str, Any]:
        return {
            "webhook_url": merchant.webhook_url,
            "transactions": {r: t.status for r, t in merchant.transactions.items()},
            "refunds": {str(i): r.status for i, r in merchant.refunds.items()},
            "authorizations": sorted(merchant.authorizations),
            "pending_faults": sum(f.remaining for f in merchant.faults),
        }

    async def sink(self, request: Request) -> Response:
        received = self.state.sinks.setdefault(request.path_params["name"], [])
        if request.method == "POST":
            body = await request.body()
            received.append({"body": body.decode(), "headers": dict(request.headers)})
            return JSONResponse({"received": True})
        return JSONResponse({"requests": received})


def _take_fault(merchant: Merchant, path: str) -> Fault | None:
    for fault in merchant.faults:
        if fault.remaining > 0 and (fault.path is None or path.startswith(fault.path)):
            fault.remaining -= 1
            if fault.remaining == 0:
                merchant.faults.remove(fault)
            return fault
    return None


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(raw.decode()).items()}
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise ApiError(400, "Invalid JSON body", "validation_error", "invalid_params") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid JSON body", "validation_error", "invalid_params")
    return body


def _delivery_json(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "event": d.event,
        "body": d.body.decode(),
        "signature": d.signature,
        "url": d.url,
        "status_code": d.status_code,
        "error": d.error,
    }


def _checkout_html(t: Transaction) -> str:
    amount = f"{t.currency} {t.amount / 100:,.2f}"
    buttons = "".join(
        f'<button name="channel" value="{c}">Pay with {c.replace("_", " ")}</button>'
        for c in t.channels
        if c != "card"
    )
    card_form = (
        '<label>Card number <input name="card_number" inputmode="numeric"></label>'
        '<label>MM <input name="exp_month" value="12"></label>'
        '<label>YY <input name="exp_year" value="2030"></label>'
        '<label>CVV <input name="cvv" value="408"></label>'
        '<button name="channel" value="card">Pay</button>'
        if "card" in t.channels
        else ""
    )
    return (
        "<!doctype html><html><head><title>Paystack (fake) checkout</title></head><body>"
        f"<h1>Pay {html.escape(amount)}</h1><p>{html.escape(t.customer.email)}</p>"
        f'<form method="post">{card_form}{buttons}</form></body></html>'
    )


def _failed_html(t: Transaction) -> str:
    back = (
        f'<a href="{html.escape(t.callback_url)}">Return to merchant</a>' if t.callback_url else ""
    )
    return (
        "<!doctype html><html><body>"
        f"<h1>Payment failed</h1><p>{html.escape(t.gateway_response)}</p>{back}</body></html>"
    )
