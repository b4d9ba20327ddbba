"""The Stripe balance fake's HTTP surface: balance transactions and payouts (which localstripe
lacks), ``/_fake`` controls, and every other request passed through to localstripe, with the
injected discrepancies applied to what localstripe answers about PaymentIntents and charges."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.stripe_balance import ledger, lists
from tests.fakes.stripe_balance.ledger import Account, Ledger

Json = dict[str, Any]
_HOP_HEADERS = frozenset({"host", "content-length", "connection", "accept-encoding"})
HOLD_LIMIT_SECONDS = 60.0  # a test that never releases its hold does not hang the fake


@dataclass
class Hold:
    """The next POST of one key to one path, held before it reaches localstripe (so what
    it creates exists only once released), as a slow provider call is."""

    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)


class FakeError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


class StripeBalanceFake:
    def __init__(self, backend_url: str) -> None:
        self.ledger = Ledger()
        self.backend_url = backend_url
        self.holds: dict[tuple[str, str], Hold] = {}  # (secret key, path)

    def app(self) -> Starlette:
        ctl = self._endpoint
        injections: dict[str, Callable[[Request, Account, str], Awaitable[Json]]] = {
            "fee": self.inject_fee,
            "missing_charge": self.inject_missing_charge,
            "unknown_charge": self.inject_unknown_charge,
            "amount": self.inject_amount,
            "status": self.inject_status,
            "dashboard_refund": self.inject_dashboard_refund,
        }
        return Starlette(
            routes=[
                Route("/v1/payouts", ctl(self.list_payouts), methods=["GET"]),
                Route("/v1/payment_intents", ctl(self.list_intents), methods=["GET"]),
                Route("/v1/refunds", ctl(self.list_refunds), methods=["GET"]),
                Route("/v1/payouts/{id}", ctl(self.get_payout), methods=["GET"]),
                Route("/v1/balance_transactions", ctl(self.list_transactions), methods=["GET"]),
                Route("/v1/balance_transactions/{id}", ctl(self.get_transaction), methods=["GET"]),
                Route("/_fake/payouts", ctl(self.create_payout), methods=["POST"]),
                Route("/_fake/payouts/{id}/status", ctl(self.set_status), methods=["POST"]),
                Route("/_fake/holds", ctl(self.hold), methods=["POST"]),
                Route("/_fake/holds/arrived", ctl(self.hold_arrived), methods=["POST"]),
                Route("/_fake/holds/release", ctl(self.release), methods=["POST"]),
                *(
                    Route(f"/_fake/discrepancies/{kind}", ctl(handler), methods=["POST"])
                    for kind, handler in injections.items()
                ),
                Route(
                    "/{path:path}", self.passthrough, methods=["GET", "POST", "DELETE", "OPTIONS"]
                ),
            ]
        )

    # -- plumbing -------------------------------------------------------------------------

    def _endpoint(
        self, handler: Callable[[Request, Account, str], Awaitable[Json]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            key = _secret_key(request)
            if key is None:
                return JSONResponse(ledger.stripe_error(401, "No API key provided."), 401)
            try:
                return JSONResponse(await handler(request, self.ledger.account(key), key))
            except FakeError as error:
                body = ledger.stripe_error(error.status, error.message, error.param)
                return JSONResponse(body, error.status)

        return endpoint

    async def _backend(self, key: str, method: str, path: str, data: Json | None = None) -> Json:
        async with httpx.AsyncClient(base_url=self.backend_url, auth=(key, ""), timeout=10) as http:
            answer = await http.request(method, path, data=data)
        body: Json = answer.json()
        if answer.status_code != 200:
            raise FakeError(answer.status_code, str(body.get("error", body)))
        if method == "POST":
            _record_owner(self.ledger.account(key), path, body)
        return body

    # -- Stripe's API ---------------------------------------------------------------------

    async def list_payouts(self, request: Request, account: Account, key: str) -> Json:
        since = int(request.query_params.get("created[gte]") or 0)
        rows = [p for p in reversed(account.payouts.values()) if p["created"] >= since]
        return _page(request, "/v1/payouts", rows)

    async def get_payout(self, request: Request, account: Account, key: str) -> Json:
        found = account.payouts.get(request.path_params["id"])
        if found is None:
            raise FakeError(404, f"No such payout: '{request.path_params['id']}'", "id")
        return found

    async def list_transactions(self, request: Request, account: Account, key: str) -> Json:
        _check_list(request, "balance_transaction")
        payout = request.query_params.get("payout")
        rows = [
            t
            for t in reversed(account.transactions.values())
            if (payout is None or account.payout_of.get(t["id"]) == payout)
            and lists.created_matches(request.query_params, t["created"])
            and lists.field_matches(request.query_params, t, ("type", "source", "currency"))
        ]
        page = _page(request, "/v1/balance_transactions", rows)
        if any(v == "data.source" for k, v in request.query_params.multi_items() if "expand" in k):
            page["data"] = [
                {**t, "source": await self._source(account, key, t)} for t in page["data"]
            ]
        return page

    async def _source(self, account: Account, key: str, transaction: Json) -> Json:
        source = str(transaction["source"])
        if source.startswith("po_"):
            return account.payouts[source]
        kind = "charges" if source.startswith("ch_") else "refunds"
        return await self._backend(key, "GET", f"/v1/{kind}/{source}")

    async def get_transaction(self, request: Request, account: Account, key: str) -> Json:
        found = account.transactions.get(request.path_params["id"])
        if found is None:
            raise FakeError(404, f"No such balance transaction: '{request.path_params['id']}'")
        return found

    async def list_intents(self, request: Request, account: Account, key: str) -> Json:
        return await self._list_owned(request, account, key, "payment_intent", ("customer",))

    async def list_refunds(self, request: Request, account: Account, key: str) -> Json:
        names = ("payment_intent", "charge")
        return await self._list_owned(request, account, key, "refund", names)

    async def _list_owned(
        self, request: Request, account: Account, key: str, kind: str, filters: tuple[str, ...]
    ) -> Json:
        """This key's objects of ``kind``, as Stripe lists them (``lists``)."""
        _check_list(request, kind)
        query = request.query_params
        expand: list[tuple[str, str | int | float | bool | None]] = [
            ("expand[]", e) for e in lists.expansions(query)
        ]
        found: list[Json] = []
        async with httpx.AsyncClient(base_url=self.backend_url, auth=(key, ""), timeout=10) as http:
            for object_id in reversed(account.owned[kind]):
                answer = await http.get(f"/v1/{kind}s/{object_id}", params=expand)
                if answer.status_code == 200:
                    found.append(answer.json())
        rows = [
            _altered(account, o)
            for o in found
            if not _hidden(account, o)
            and lists.created_matches(query, o["created"])
            and lists.field_matches(query, o, filters)
        ]
        return _page(request, f"/v1/{kind}s", rows)

    # -- controls -------------------------------------------------------------------------

    async def create_payout(self, request: Request, account: Account, key: str) -> Json:
        """Pay out charges and refunds (see the package docstring)."""
        body = await _json(request)
        status = str(body.get("status", "paid"))
        if status not in ledger.PAYOUT_STATUSES:
            raise FakeError(400, f"status must be one of {sorted(ledger.PAYOUT_STATUSES)}")
        created = self.ledger.now()
        lines = [
            *[
                await self._charge_line(account, key, pi, created)
                for pi in _ids(body, "payment_intents")
            ],
            *[await self._charge_line(account, key, pi, created) for pi in account.extra_intents],
            *[await self._refund_line(key, re, created) for re in _ids(body, "refunds")],
            *[await self._refund_line(key, re, created) for re in account.extra_refunds],
        ]
        lines = [line for line in lines if line["source"] not in account.settled_sources]
        account.extra_intents.clear()
        account.extra_refunds.clear()
        if not lines:
            raise FakeError(400, "Nothing to pay out")
        currencies = {line["currency"] for line in lines}
        if len(currencies) != 1:
            raise FakeError(400, "A payout is in one currency")
        if body.get("net_delta"):
            lines[0]["net"] += int(body["net_delta"])  # nonsense: gross - fee != net
        total = sum(line["net"] for line in lines)
        transfer = ledger.balance_transaction(
            amount=-total,
            fee=0,
            net=-total,
            currency=lines[0]["currency"],
            source="",
            type_="payout",
            created=created,
            description="STRIPE PAYOUT",
        )
        made = ledger.payout(
            amount=total,
            currency=lines[0]["currency"],
            status=status,
            created=created,
            txn=transfer["id"],
        )
        transfer["source"] = made["id"]
        account.payouts[made["id"]] = made
        for line in [*lines, transfer]:
            account.transactions[line["id"]] = line
            account.payout_of[line["id"]] = made["id"]
        account.settled_sources.update(line["source"] for line in lines)
        return {**made, "balance_transactions": [line["id"] for line in lines]}

    async def set_status(self, request: Request, account: Account, key: str) -> Json:
        """Move a payout on (pending -> in_transit -> paid, or failed)."""
        payout = await self.get_payout(request, account, key)
        status = str((await _json(request)).get("status"))
        if status not in ledger.PAYOUT_STATUSES:
            raise FakeError(400, f"status must be one of {sorted(ledger.PAYOUT_STATUSES)}")
        payout["status"] = status
        payout["reconciliation_status"] = "completed" if status == "paid" else "in_progress"
        return payout

    async def _charge_line(self, account: Account, key: str, intent_id: str, created: int) -> Json:
        intent = await self._backend(key, "GET", f"/v1/payment_intents/{intent_id}")
        charge = intent.get("latest_charge")
        charge_id = charge.get("id") if isinstance(charge, dict) else charge
        if not charge_id:
            raise FakeError(400, f"{intent_id} has no charge to pay out")
        amount = account.amounts.get(
            intent_id, int(intent.get("amount_received") or intent["amount"])
        )
        fee = account.fees.get(intent_id, ledger.default_fee(amount))
        return ledger.balance_transaction(
            amount=amount,
            fee=fee,
            net=amount - fee,
            currency=str(intent["currency"]),
            source=str(charge_id),
            type_="charge",
            created=created,
            description=f"Payment for {intent_id}",
        )

    async def _refund_line(self, key: str, refund_id: str, created: int) -> Json:
        refund = await self._backend(key, "GET", f"/v1/refunds/{refund_id}")
        amount = -int(refund["amount"])
        return ledger.balance_transaction(
            amount=amount,
            fee=0,
            net=amount,
            currency=str(refund["currency"]),
            source=refund_id,
            type_="refund",
            created=created,
            description="REFUND FOR CHARGE",
        )

    async def inject_fee(self, request: Request, account: Account, key: str) -> Json:
        """The fee of the PaymentIntent's charge: at its payout, or (already paid out) a
        later change of its balance transaction's fee, as a Stripe fee adjustment shows."""
        body = await _json(request)
        intent_id, fee = str(body["payment_intent"]), int(body["fee"])
        account.fees[intent_id] = fee
        intent = await self._backend(key, "GET", f"/v1/payment_intents/{intent_id}")
        charge = intent.get("latest_charge")
        charge_id = charge.get("id") if isinstance(charge, dict) else charge
        for line in account.transactions.values():
            if line["type"] == "charge" and line["source"] == charge_id:
                line["fee"], line["net"] = fee, line["amount"] - fee
                for detail in line["fee_details"]:
                    detail["amount"] = fee
        return {"payment_intent": intent_id, "fee": fee}

    async def inject_missing_charge(self, request: Request, account: Account, key: str) -> Json:
        body = await _json(request)
        account.hidden.add(str(body["payment_intent"]))
        return {"payment_intent": body["payment_intent"]}

    async def inject_unknown_charge(self, request: Request, account: Account, key: str) -> Json:
        body = await _json(request)
        method = await self._backend(
            key,
            "POST",
            "/v1/payment_methods",
            {
                "type": "card",
                "card[number]": "4242424242424242",
                "card[exp_month]": "12",
                "card[exp_year]": "2034",
                "card[cvc]": "123",
            },
        )
        intent = await self._backend(
            key,
            "POST",
            "/v1/payment_intents",
            {
                "amount": str(body["amount"]),
                "currency": str(body.get("currency", "usd")),
                "payment_method": method["id"],
                "confirm": "true",
            },
        )
        account.extra_intents.append(intent["id"])
        return {"payment_intent": intent["id"], "status": intent["status"]}

    async def inject_amount(self, request: Request, account: Account, key: str) -> Json:
        body = await _json(request)
        account.amounts[str(body["payment_intent"])] = int(body["amount"])
        return {"payment_intent": body["payment_intent"], "amount": int(body["amount"])}

    async def inject_status(self, request: Request, account: Account, key: str) -> Json:
        body = await _json(request)
        account.statuses[str(body["payment_intent"])] = str(body["status"])
        return {"payment_intent": body["payment_intent"], "status": body["status"]}

    async def inject_dashboard_refund(self, request: Request, account: Account, key: str) -> Json:
        body = await _json(request)
        data = {"payment_intent": str(body["payment_intent"])}
        if "amount" in body:
            data["amount"] = str(body["amount"])
        refund = await self._backend(key, "POST", "/v1/refunds", data)
        account.extra_refunds.append(refund["id"])
        return {"refund": refund["id"], "amount": refund["amount"]}

    # -- holds: a slow provider call ------------------------------------------------------

    async def hold(self, request: Request, account: Account, key: str) -> Json:
        path = str((await _json(request))["path"])
        self.holds[(key, path)] = Hold()
        return {"path": path}

    async def hold_arrived(self, request: Request, account: Account, key: str) -> Json:
        hold = self.holds.get((key, str((await _json(request))["path"])))
        if hold is None:
            raise FakeError(404, "no such hold")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hold.arrived.wait(), 10)
        return {"arrived": hold.arrived.is_set()}

    async def release(self, request: Request, account: Account, key: str) -> Json:
        hold = self.holds.pop((key, str((await _json(request))["path"])), None)
        if hold is None:
            raise FakeError(404, "no such hold")
        hold.released.set()
        return {"released": hold.arrived.is_set()}

    async def _held(self, request: Request) -> None:
        key = _secret_key(request)
        hold = None if key is None else self.holds.get((key, request.url.path))
        if request.method != "POST" or hold is None or hold.arrived.is_set():
            return
        hold.arrived.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hold.released.wait(), HOLD_LIMIT_SECONDS)

    # -- everything else: localstripe, with the discrepancies applied ---------------------

    async def passthrough(self, request: Request) -> Response:
        await self._held(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        async with httpx.AsyncClient(base_url=self.backend_url, timeout=30) as http:
            answer = await http.request(
                request.method, url, content=await request.body(), headers=headers
            )
        key = _secret_key(request)
        media = answer.headers.get("content-type", "application/json")
        if key is not None and request.method == "POST" and answer.status_code == 200:
            _record_owner(self.ledger.account(key), request.url.path, answer.json())
        if key is None or request.method != "GET" or "json" not in media:
            return Response(answer.content, answer.status_code, media_type=media)
        account = self.ledger.account(key)
        body = answer.json()
        if isinstance(body, dict) and body.get("object") == "list":
            body["data"] = [_altered(account, o) for o in body["data"] if not _hidden(account, o)]
        elif isinstance(body, dict) and _hidden(account, body):
            return JSONResponse(ledger.stripe_error(404, "No such payment_intent"), 404)
        elif isinstance(body, dict):
            body = _altered(account, body)
        return JSONResponse(body, answer.status_code)


def _record_owner(account: Account, path: str, body: object) -> None:
    """Note that this key created the PaymentIntent or refund ``body``."""
    kinds = {"/v1/payment_intents": "payment_intent", "/v1/refunds": "refund"}
    kind = kinds.get(path.rstrip("/"))
    if kind is None or not isinstance(body, dict) or not isinstance(body.get("id"), str):
        return
    if body["id"] not in account.owned[kind]:
        account.owned[kind].append(body["id"])


def _check_list(request: Request, kind: str) -> None:
    unknown = lists.unknown_parameters(kind, request.query_params)
    if unknown:
        raise FakeError(400, f"Received unknown parameter: {unknown[0]}", unknown[0])
    invalid = lists.invalid_created(request.query_params)
    if invalid is not None:
        raise FakeError(400, f"Invalid integer: {request.query_params[invalid]}", invalid)


def _intent_of(obj: Json) -> str | None:
    if obj.get("object") == "payment_intent":
        return str(obj["id"])
    if obj.get("object") == "charge" and isinstance(obj.get("payment_intent"), str):
        return str(obj["payment_intent"])
    return None


def _hidden(account: Account, obj: Json) -> bool:
    return _intent_of(obj) in account.hidden


def _altered(account: Account, obj: Json) -> Json:
    intent = _intent_of(obj)
    if intent is None:
        return obj
    changed = dict(obj)
    if obj.get("object") == "payment_intent" and "amount_received" not in obj:
        # Stripe's field, which localstripe lacks: what the succeeded charge took.
        changed["amount_received"] = obj.get("amount") if obj.get("status") == "succeeded" else 0
    if intent in account.amounts:
        changed["amount"] = account.amounts[intent]
        if "amount_received" in changed:
            changed["amount_received"] = account.amounts[intent]
        if "amount_captured" in changed:
            changed["amount_captured"] = account.amounts[intent]
    if intent in account.statuses and obj.get("object") == "payment_intent":
        changed["status"] = account.statuses[intent]
    return changed


def _secret_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip() or None
    if header.startswith("Basic "):
        user = base64.b64decode(header.removeprefix("Basic ")).decode().split(":", 1)[0]
        return user or None
    return None


def _page(request: Request, url: str, rows: list[Json]) -> Json:
    limit = max(1, min(100, int(request.query_params.get("limit") or 10)))
    after = request.query_params.get("starting_after")
    if after is not None:
        ids = [r["id"] for r in rows]
        rows = rows[ids.index(after) + 1 :] if after in ids else []
    return ledger.stripe_list(url, rows[:limit], len(rows) > limit)


def _ids(body: Json, name: str) -> list[str]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FakeError(400, f"{name} must be a list of ids", name)
    return value


async def _json(request: Request) -> Json:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise FakeError(400, "Invalid JSON body") from None
    if not isinstance(body, dict):
        raise FakeError(400, "Invalid JSON body")
    return body
