"""``/v1/events``: listing with filters and cursors, retrieving, and tenant and mode
isolation."""

from __future__ import annotations

from typing import Any

import httpx

from paygrid.services.merchants import NewMerchant
from tests.conftest import Api

EVENT_FIELDS = {"id", "object", "type", "created", "livemode", "data"}


async def _events(api: Api, **params: Any) -> dict[str, Any]:
    response = await api.get("/v1/events", **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _shop(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    """A customer and a paid payment: three events."""
    customer = (await api.post("/v1/customers", {"email": "events@example.com"})).json()
    payment = await api.post(
        "/v1/payments",
        {"amount": 1500, "currency": "USD", "confirm": True, "payment_method": "pm_card_visa"},
    )
    assert payment.status_code == 200, payment.text
    return customer, payment.json()


async def test_list_and_retrieve_events(api: Api) -> None:
    customer, payment = await _shop(api)
    listed = await _events(api, limit=100)
    assert (listed["object"], listed["url"], listed["has_more"]) == ("list", "/v1/events", False)
    data = listed["data"]
    assert sorted(e["type"] for e in data) == [
        "customer.created",
        "payment.created",
        "payment.succeeded",
    ]
    assert [e["id"] for e in data] == sorted((e["id"] for e in data), reverse=True)
    for event in data:
        assert set(event) == EVENT_FIELDS
        assert event["object"] == "event" and event["livemode"] is False
        assert event["id"].startswith("evt_") and isinstance(event["created"], int)

    by_type = {e["type"]: e for e in data}
    assert by_type["customer.created"]["data"]["object"]["id"] == customer["id"]
    succeeded = by_type["payment.succeeded"]["data"]["object"]
    assert (succeeded["id"], succeeded["status"], succeeded["amount_received"]) == (
        payment["id"],
        "succeeded",
        1500,
    )
    assert by_type["payment.created"]["data"]["object"]["status"] == "processing"

    retrieved = await api.get(f"/v1/events/{by_type['payment.succeeded']['id']}")
    assert retrieved.status_code == 200
    assert retrieved.json() == by_type["payment.succeeded"]


async def test_filter_by_type_and_creation_time(api: Api) -> None:
    await _shop(api)
    only = (await _events(api, type="payment.succeeded"))["data"]
    assert [e["type"] for e in only] == ["payment.succeeded"]
    assert (await _events(api, type="payment.nothing_like_this"))["data"] == []

    created = only[0]["created"]
    assert len((await _events(api, **{"created[gte]": created - 60}))["data"]) == 3
    assert len((await _events(api, **{"created[lte]": created + 60}))["data"]) == 3
    assert (await _events(api, **{"created[gte]": created + 3600}))["data"] == []
    assert (await _events(api, **{"created[lte]": created - 3600}))["data"] == []
    window = {"created[gte]": created, "created[lte]": created, "type": "payment.succeeded"}
    assert [e["id"] for e in (await _events(api, **window))["data"]] == [only[0]["id"]]


async def test_cursor_pagination_walks_forward_and_back(api: Api) -> None:
    await _shop(api)
    newest_first = [e["id"] for e in (await _events(api, limit=100))["data"]]
    first = await _events(api, limit=2)
    assert [e["id"] for e in first["data"]] == newest_first[:2] and first["has_more"] is True
    rest = await _events(api, limit=2, starting_after=newest_first[1])
    assert [e["id"] for e in rest["data"]] == newest_first[2:] and rest["has_more"] is False
    back = await _events(api, limit=2, ending_before=newest_first[2])
    assert [e["id"] for e in back["data"]] == newest_first[:2]


async def test_limit_outside_range_is_rejected(api: Api) -> None:
    for limit in (0, 101):
        response = await api.get("/v1/events", limit=limit)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "parameter_invalid"


async def test_events_are_scoped_to_merchant_and_mode(
    client: httpx.AsyncClient, api: Api, merchant: NewMerchant, other_merchant: NewMerchant
) -> None:
    await api.post("/v1/customers", {"name": "Test mode"})
    [own] = (await _events(api))["data"]
    live = Api(client, merchant.key("secret", livemode=True))
    await live.post("/v1/customers", {"name": "Live mode"})
    [live_event] = (await _events(live))["data"]
    assert live_event["livemode"] is True and live_event["id"] != own["id"]

    other = Api(client, other_merchant.key("secret", livemode=False))
    for intruder, foreign in ((other, own["id"]), (live, own["id"]), (api, live_event["id"])):
        response = await intruder.get(f"/v1/events/{foreign}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "resource_missing"
        assert foreign not in {e["id"] for e in (await _events(intruder, limit=100))["data"]}
    assert (await api.get("/v1/events/evt_missing")).status_code == 404


async def test_publishable_key_may_not_read_events(
    client: httpx.AsyncClient, api: Api, merchant: NewMerchant
) -> None:
    await api.post("/v1/customers", {"name": "Ada"})
    [event] = (await _events(api))["data"]
    publishable = Api(client, merchant.key("publishable", livemode=False))
    for path in ("/v1/events", f"/v1/events/{event['id']}"):
        response = await publishable.get(path)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "secret_key_required"


async def test_openapi_documents_the_event_object(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert {"/v1/events", "/v1/events/{event_id}"} <= set(spec["paths"])
    listing = spec["paths"]["/v1/events"]["get"]
    assert {"type", "created[gte]", "created[lte]", "limit", "starting_after"} <= {
        p["name"] for p in listing["parameters"]
    }
    event = spec["components"]["schemas"]["Event"]
    assert set(event["properties"]) == EVENT_FIELDS
    assert "Events" in {tag["name"] for tag in spec["tags"]}
