"""The checkout page's script posts its form with ``Accept: application/json``: a decline
comes back as ``{"error"}`` (so the page keeps what the customer typed), everything else as
``{"navigate"}`` to the page a redirect would have led to."""

from __future__ import annotations

import httpx

from tests.conftest import SUCCESS_CARD, Api
from tests.integration.test_checkout import (
    DECLINED_CARD,
    SUCCESS_URL,
    THREE_DS_CARD,
    new_session,
    open_page,
    tokenize,
)

JSON = {"accept": "application/json"}


async def post_card(
    client: httpx.AsyncClient, session_id: str, number: str, **fields: str
) -> httpx.Response:
    token, key = await open_page(client, session_id)
    payment_method = await tokenize(client, key, number)
    return await client.post(
        f"/checkout/{session_id}/pay",
        data={"form_token": token, "method": "card", "payment_method": payment_method, **fields},
        headers=JSON,
    )


async def test_a_decline_answers_the_error_and_another_card_navigates_on(
    api: Api, client: httpx.AsyncClient
) -> None:
    session = await new_session(api)
    declined = await post_card(client, session["id"], DECLINED_CARD)
    assert declined.status_code == 402
    assert declined.json() == {"error": "Your card was declined."}
    paid = await post_card(client, session["id"], SUCCESS_CARD)
    assert paid.status_code == 200
    assert paid.json() == {"navigate": f"{SUCCESS_URL}?session_id={session['id']}"}


async def test_embedded_success_and_three_d_secure_navigate_the_frame(
    api: Api, client: httpx.AsyncClient
) -> None:
    session = await new_session(api)
    paid = await post_card(client, session["id"], SUCCESS_CARD, embed="1")
    assert paid.json() == {"navigate": f"/checkout/{session['id']}?embed=1"}
    done = await client.get(paid.json()["navigate"])
    assert 'data-event="paygrid.checkout.succeeded"' in done.text

    other = await new_session(api)
    challenged = await post_card(client, other["id"], THREE_DS_CARD)
    assert "/simulator/authenticate/" in challenged.json()["navigate"]


async def test_a_refused_form_answers_the_error_and_an_expired_one_reloads(
    api: Api, client: httpx.AsyncClient
) -> None:
    session = await new_session(api)
    forged = await client.post(
        f"/checkout/{session['id']}/pay",
        data={"form_token": "forged", "method": "card", "payment_method": "pm_x"},
        headers=JSON,
    )
    assert forged.status_code == 403 and "error" in forged.json()
    expired = await api.post(f"/v1/checkout_sessions/{session['id']}/expire")
    assert expired.status_code == 200, expired.text
    gone = await client.post(
        f"/checkout/{session['id']}/pay",
        data={"form_token": "forged", "method": "card", "payment_method": "pm_x"},
        headers=JSON,
    )
    assert gone.json() == {"navigate": f"/checkout/{session['id']}"}
