"""Listing payments: cursor pagination and filters."""

from __future__ import annotations

import json

import pytest

from paygrid.clock import SYSTEM_CLOCK
from tests.conftest import Api


async def _make(api: Api, **fields: object) -> dict[str, object]:
    response = await api.post("/v1/payments", {"amount": 1000, "currency": "USD", **fields})
    assert response.status_code == 200, response.text
    created: dict[str, object] = response.json()
    return created


async def test_cursor_pagination_walks_forward_and_back(api: Api) -> None:
    ids = [(await _make(api))["id"] for _ in range(5)]
    newest_first = list(reversed(ids))
    first = (await api.get("/v1/payments", limit=2)).json()
    assert first["object"] == "list" and first["url"] == "/v1/payments"
    assert [p["id"] for p in first["data"]] == newest_first[:2] and first["has_more"] is True
    second = (await api.get("/v1/payments", limit=2, starting_after=newest_first[1])).json()
    assert [p["id"] for p in second["data"]] == newest_first[2:4] and second["has_more"] is True
    last = (await api.get("/v1/payments", limit=2, starting_after=newest_first[3])).json()
    assert [p["id"] for p in last["data"]] == newest_first[4:] and last["has_more"] is False
    back = (await api.get("/v1/payments", limit=2, ending_before=newest_first[2])).json()
    assert [p["id"] for p in back["data"]] == newest_first[:2]


async def test_filters(api: Api) -> None:
    customer = (await api.post("/v1/customers", {"email": "f@example.com"})).json()
    euro = await _make(api, currency="EUR", reference="order-eur-1")
    with_customer = await _make(api, customer=customer["id"])
    succeeded = await _make(api, confirm=True, payment_method="pm_card_visa")

    async def ids(**params: object) -> set[object]:
        response = await api.get("/v1/payments", **params)
        assert response.status_code == 200, response.text
        return {p["id"] for p in response.json()["data"]}

    assert await ids(currency="eur") == {euro["id"]}
    assert await ids(reference="order-eur-1") == {euro["id"]}
    assert await ids(customer=customer["id"]) == {with_customer["id"]}
    assert await ids(status="succeeded") == {succeeded["id"]}
    now = int(SYSTEM_CLOCK.now().timestamp())
    assert len(await ids(**{"created[gte]": now - 60, "created[lte]": now + 60})) == 3
    assert await ids(**{"created[gte]": now + 3600}) == set()


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"status": "bogus"}, "status"),
        ({"limit": 0}, "limit"),
        ({"created[gte]": "yesterday"}, "created[gte]"),
    ],
)
async def test_bad_list_parameters(api: Api, params: dict[str, object], param: str) -> None:
    response = await api.get("/v1/payments", **params)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


async def test_reference_is_unique_per_merchant_and_mode(api: Api) -> None:
    await _make(api, reference="dup-1")
    duplicate = await api.post(
        "/v1/payments", {"amount": 1000, "currency": "USD", "reference": "dup-1"}
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "reference_already_exists"
    generated = await _make(api)
    assert str(generated["reference"]).startswith("ref_")


async def test_log_lines_carry_request_and_merchant_ids(
    api: Api, capfd: pytest.CaptureFixture[str]
) -> None:
    response = await api.get("/v1/payments")
    lines = [
        json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
    ]
    completed = [
        line
        for line in lines
        if line.get("event") == "request.completed" and line.get("path") == "/v1/payments"
    ]
    assert completed, lines
    assert completed[-1]["request_id"] == response.headers["x-request-id"]
    assert completed[-1]["merchant_id"].startswith("mer_")
