"""Card numbers never reach paygrid's tables or logs: run every card flow, then search a full
database dump and everything logged for the test card numbers."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import httpx
import pgserver
import pytest

from paygrid import logs
from paygrid.connectors.simulator.cards import TEST_CARDS
from paygrid.services.merchants import NewMerchant
from tests.conftest import Api, auth, card

INVALID_NUMBERS = ["4242424242424241", "4000056655665556"]  # bad Luhn; a valid untested visa
PG_DUMP = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_dump"


async def test_card_numbers_are_never_persisted_or_logged(
    api: Api,
    client: httpx.AsyncClient,
    merchant: NewMerchant,
    database_url: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    publishable = merchant.key("publishable", livemode=False)
    numbers = [*TEST_CARDS, *INVALID_NUMBERS]
    for number in numbers:
        await api.post(
            "/v1/payments",
            {
                "amount": 1000,
                "currency": "USD",
                "confirm": True,
                "payment_method_data": card(number),
            },
        )
        await client.post("/v1/payment_methods", json=card(number), headers=auth(publishable))
        # malformed variants: wrong field types and unknown fields that carry the number
        await api.post(
            "/v1/payments",
            {
                "amount": 1000,
                "currency": "USD",
                "payment_method_data": card(number, exp_month="12"),
            },
        )
        await api.post("/v1/payments", {"amount": 1000, "currency": "USD", "card_number": number})
        await api.post("/v1/payment_methods", {"type": "card", "card": {"number": number}})
    spaced = "4242 4242 4242 4242"
    await api.post(
        "/v1/payments",
        {"amount": 1000, "currency": "USD", "confirm": True, "payment_method_data": card(spaced)},
    )

    dump = subprocess.run(
        [str(PG_DUMP), "--data-only", "--no-owner", database_url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "4242" in dump  # last4 is kept (proves the dump has card-related rows)
    logged = capfd.readouterr()
    everything_logged = logged.out + logged.err + caplog.text
    assert "request.completed" in everything_logged  # proves logs were captured
    for number in [*numbers, spaced]:
        assert number not in dump, f"card number {number} found in the database dump"
        assert number not in everything_logged, f"card number {number} found in the logs"


async def test_cards_and_provider_keys_stay_out_of_debug_logs_on_the_stripe_path(
    api: Api,
    localstripe_url: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Even at DEBUG, with cards tokenized at a Stripe account (whose SDK logs request
    parameters at debug level), neither the card number nor the account's secret key is
    logged."""
    secret_key = "sk_test_never_logged_0000000000"
    logs.configure("DEBUG")
    caplog.set_level(logging.DEBUG)
    try:
        account = await api.post(
            "/v1/connector_accounts",
            {
                "provider": "stripe",
                "credentials": {"secret_key": secret_key},
                "api_base": localstripe_url,
            },
        )
        assert account.status_code == 200, account.text
        paid = await api.post(
            "/v1/payments",
            {
                "amount": 1000,
                "currency": "USD",
                "confirm": True,
                "payment_method_data": card("4242424242424242"),
            },
        )
        assert paid.status_code == 200, paid.text
        assert paid.json()["connector"] == "stripe"
    finally:
        logs.configure("INFO")
    logged = capfd.readouterr()
    everything_logged = logged.out + logged.err + caplog.text
    assert "request.completed" in everything_logged
    assert "4242424242424242" not in everything_logged
    assert secret_key not in everything_logged
