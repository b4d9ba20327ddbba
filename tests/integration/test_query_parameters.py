"""Query parameters are validated like bodies (issue 18 §4): every ``/v1`` route refuses a
parameter it does not declare, every list takes Stripe's ``created`` range filters, cursors
must name an object of the list's own type and merchant, and ``expand`` is refused rather
than ignored. The routes come from the app's route table, so a new route is covered."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from paygrid.api.query import declared_query_parameters
from paygrid.app import create_app
from paygrid.clock import SYSTEM_CLOCK
from paygrid.config import Settings
from paygrid.domain import scopes
from paygrid.services.merchants import NewMerchant, issue_key
from tests.conftest import SUCCESS_CARD, TEST_BASE_URL, Api, auth, card, confirmed_payment
from tests.integration.test_request_validation import error_of


def _v1_get_routes() -> list[APIRoute]:
    app = create_app(Settings(public_url=TEST_BASE_URL))
    routes = [context.original_route for context in iter_route_contexts(app.routes)]
    return [
        route
        for route in routes
        if isinstance(route, APIRoute)
        and route.path.startswith("/v1/")
        and "GET" in (route.methods or set())
    ]


GET_ROUTES = _v1_get_routes()
LIST_ROUTES = [r for r in GET_ROUTES if "ListObject" in getattr(r.response_model, "__name__", "")]
UNKNOWN = ["emial", "created[lt]x", "status[]", "foo[bar]"]


@pytest.fixture
async def api(client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool) -> Api:
    """An admin key: the audit log and API key lists need the admin scopes."""
    key = await issue_key(pool, merchant.id, "secret", False, scopes=sorted(scopes.ROLES["admin"]))
    return Api(client, key.secret)


def _concrete(path: str) -> str:
    """A path with each ``{param}`` replaced by an id that exists nowhere."""
    return re.sub(r"\{[^}]+\}", "xyz_missing", path)


def test_the_route_table_has_lists_and_retrieves() -> None:
    assert len(LIST_ROUTES) >= 12, [r.path for r in LIST_ROUTES]
    assert len(GET_ROUTES) > len(LIST_ROUTES)


@pytest.mark.parametrize("route", GET_ROUTES, ids=[r.path for r in GET_ROUTES])
@pytest.mark.parametrize("name", UNKNOWN)
async def test_unknown_query_parameter_is_refused(api: Api, route: APIRoute, name: str) -> None:
    response = await api.get(_concrete(route.path), **{name: "1"})
    error = error_of(response, 400, code="parameter_unknown", param=name)
    assert name in error["message"]


@pytest.mark.parametrize("route", GET_ROUTES, ids=[r.path for r in GET_ROUTES])
async def test_head_refuses_unknown_parameters_like_get(
    client: httpx.AsyncClient, api: Api, route: APIRoute
) -> None:
    response = await client.head(
        _concrete(route.path), params={"emial": "x"}, headers=auth(api.key)
    )
    assert response.status_code == 400
    assert response.content == b""


@pytest.mark.parametrize("route", GET_ROUTES, ids=[r.path for r in GET_ROUTES])
@pytest.mark.parametrize("name", ["expand", "expand[]", "expand[0]"])
async def test_expand_is_refused_not_ignored(api: Api, route: APIRoute, name: str) -> None:
    response = await api.get(_concrete(route.path), **{name: "customer"})
    error = error_of(response, 400, code="parameter_invalid", param=name)
    assert "expand" in error["message"]


async def test_the_error_names_the_first_unknown_parameter(api: Api) -> None:
    response = await api.get("/v1/payments", limit="3", emial="a@b.c", other="1")
    error_of(response, 400, code="parameter_unknown", param="emial")


async def test_known_parameters_still_work(api: Api) -> None:
    response = await api.get("/v1/events", type="payment.succeeded", limit="2")
    assert response.status_code == 200, response.text


async def test_dashboard_and_checkout_pages_are_not_checked(client: httpx.AsyncClient) -> None:
    """HTML pages are not part of the API contract: tracking parameters reach them."""
    response = await client.get("/dashboard/login", params={"utm_source": "mail"})
    assert response.status_code == 200


# -- created filters -------------------------------------------------------------------------


@pytest.fixture
async def populated(api: Api, merchant: NewMerchant) -> None:
    """At least one object in as many lists as the API can fill without a provider."""
    customer = (await api.post("/v1/customers", {"email": "q@example.com"})).json()
    paid = await api.post("/v1/payments", confirmed_payment(customer=customer["id"]))
    assert paid.status_code == 200, paid.text
    refund = await api.post("/v1/refunds", {"payment": paid.json()["id"], "amount": 100})
    assert refund.status_code == 200, refund.text
    method = await api.post("/v1/payment_methods", card(SUCCESS_CARD))
    assert method.status_code == 200, method.text
    session = await api.post(
        "/v1/checkout_sessions",
        {
            "amount": 500,
            "currency": "usd",
            "success_url": "https://shop.example.com/ok",
            "cancel_url": "https://shop.example.com/cancel",
        },
    )
    assert session.status_code == 200, session.text
    # Subscribed to an event these tests never cause: its host serves nothing, and a later
    # test's dispatcher must not plan deliveries there.
    endpoint = await api.post(
        "/v1/webhook_endpoints",
        {
            "url": "https://hooks.example.com/paygrid",
            "enabled_events": ["checkout_session.expired"],
        },
    )
    assert endpoint.status_code == 200, endpoint.text


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


@pytest.mark.usefixtures("populated")
async def test_created_filters_filter_every_list(api: Api) -> None:
    filled = 0
    now = int(SYSTEM_CLOCK.now().timestamp())
    for route in LIST_ROUTES:
        path = _concrete(route.path)
        if "xyz_missing" in path:
            continue
        everything = _ids(await api.get(path, limit="100"))
        if not everything:
            continue
        filled += 1
        assert _ids(await api.get(path, **{"created[lt]": "1"})) == [], path
        assert _ids(await api.get(path, **{"created[lte]": "1"})) == [], path
        assert _ids(await api.get(path, **{"created[gt]": str(now + 3600)})) == [], path
        assert _ids(await api.get(path, **{"created[gte]": str(now + 3600)})) == [], path
        assert _ids(await api.get(path, created="1")) == [], path
        window = {"created[gte]": str(now - 3600), "created[lt]": str(now + 3600), "limit": "100"}
        assert _ids(await api.get(path, **window)) == everything, path
    assert filled >= 8


async def test_created_bounds_are_whole_seconds(api: Api) -> None:
    made = (await api.post("/v1/customers", {"name": "Second"})).json()
    second = made["created"]

    async def found(**params: Any) -> bool:
        return made["id"] in _ids(await api.get("/v1/customers", **params))

    assert await found(created=second)
    assert await found(**{"created[gte]": second, "created[lte]": second})
    assert await found(**{"created[gt]": second - 1, "created[lt]": second + 1})
    assert not await found(**{"created[gt]": second})
    assert not await found(**{"created[lt]": second})
    assert not await found(created=second + 1)


@pytest.mark.parametrize("name", ["created", "created[gt]", "created[lt]", "created[gte]"])
@pytest.mark.parametrize("value", ["yesterday", "-1", "1.5", "99999999999999999999"])
async def test_bad_created_values(api: Api, name: str, value: str) -> None:
    error_of(
        await api.get("/v1/refunds", **{name: value}), 400, code="parameter_invalid", param=name
    )


# -- cursors ---------------------------------------------------------------------------------


@pytest.fixture
async def customer_ids(api: Api) -> list[str]:
    return [(await api.post("/v1/customers", {"name": f"C{i}"})).json()["id"] for i in range(3)]


@pytest.mark.parametrize("cursor", ["starting_after", "ending_before"])
async def test_cursor_naming_an_unknown_id(api: Api, cursor: str) -> None:
    response = await api.get("/v1/customers", **{cursor: "cus_doesnotexist"})
    error = error_of(response, 400, code="resource_missing", param=cursor)
    assert "cus_doesnotexist" in error["message"]


@pytest.mark.parametrize("cursor", ["starting_after", "ending_before"])
async def test_cursor_naming_another_merchants_id(
    client: httpx.AsyncClient, api: Api, other_merchant: NewMerchant, cursor: str
) -> None:
    other = Api(client, other_merchant.key("secret", livemode=False))
    foreign = (await other.post("/v1/customers", {"name": "Theirs"})).json()["id"]
    response = await api.get("/v1/customers", **{cursor: foreign})
    error_of(response, 400, code="resource_missing", param=cursor)


@pytest.mark.parametrize("cursor", ["starting_after", "ending_before"])
async def test_cursor_naming_another_types_id(
    api: Api, customer_ids: list[str], cursor: str
) -> None:
    response = await api.get("/v1/payments", **{cursor: customer_ids[0]})
    error_of(response, 400, code="resource_missing", param=cursor)


async def test_cursor_of_another_mode_is_missing(
    client: httpx.AsyncClient, merchant: NewMerchant, api: Api, customer_ids: list[str]
) -> None:
    live = Api(client, merchant.key("secret", livemode=True))
    response = await live.get("/v1/customers", starting_after=customer_ids[0])
    error_of(response, 400, code="resource_missing", param="starting_after")


async def test_both_cursors_together(api: Api, customer_ids: list[str]) -> None:
    response = await api.get(
        "/v1/customers", starting_after=customer_ids[2], ending_before=customer_ids[0]
    )
    error = error_of(response, 400, code="parameter_invalid", param="ending_before")
    assert "starting_after" in error["message"]


async def test_valid_cursors_page(api: Api, customer_ids: list[str]) -> None:
    newest_first = list(reversed(customer_ids))
    after = _ids(await api.get("/v1/customers", starting_after=newest_first[0], limit="2"))
    assert after == newest_first[1:3]
    before = _ids(await api.get("/v1/customers", ending_before=newest_first[2], limit="2"))
    assert before == newest_first[:2]


async def test_a_cursor_outside_the_filters_still_pages(api: Api) -> None:
    """A cursor must be this merchant's object of this type; it need not match the filters
    (Stripe's rule), so a client may change filters while keeping its place."""
    ids = [(await api.post("/v1/payments", {"amount": 100, "currency": "usd"})).json()["id"]]
    paid = (await api.post("/v1/payments", confirmed_payment())).json()["id"]
    response = await api.get("/v1/payments", status="requires_payment_method", ending_before=paid)
    assert response.status_code == 200, response.text
    assert ids[0] not in _ids(response)


# -- hostile values in every declared query parameter ----------------------------------------

QUERY_CASES = [
    (route, name) for route in GET_ROUTES for name in sorted(declared_query_parameters(route))
]


@pytest.mark.parametrize(
    ("route", "name"), QUERY_CASES, ids=[f"{r.path}?{n}" for r, n in QUERY_CASES]
)
async def test_hostile_query_values(api: Api, route: APIRoute, name: str) -> None:
    """Issue 11 §1.8: control characters and integers past any column's range in a query
    parameter answer 400 naming it, never 5xx."""
    numeric = name == "limit" or name.startswith("created")
    huge = [str(2**64), str(-(2**63) - 1)]
    for value in ["a\x00b", "a\x01b", "\x7f", *huge]:
        response = await api.get(_concrete(route.path), **{name: value})
        if value in huge and not numeric:  # a string filter: it finds nothing, or is refused
            assert response.status_code in (200, 400, 404), (value, response.text)
            if response.status_code == 400:
                assert response.json()["error"]["param"] == name
            continue
        error_of(response, 400, code="parameter_invalid", param=name)
