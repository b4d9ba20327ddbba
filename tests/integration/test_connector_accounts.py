"""``/v1/connector_accounts``: create, list, retrieve, update, disable and enable; credentials
encrypted at rest and never returned; keys that match the mode; currencies each provider
takes; and isolation between merchants and modes."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx
import pytest

from paygrid.dependencies import Deps
from paygrid.services.merchants import NewMerchant
from tests.conftest import ERROR_FIELDS, TEST_BASE_URL, Api, row_counts

STRIPE_SECRET = "sk_test_51HsecretStripeKeyAb12"
STRIPE_HOOK = "whsec_signingSecretCd34"
PAYSTACK_SECRET = "sk_test_paystackSecretEf56"


def stripe_body(**fields: Any) -> dict[str, Any]:
    return {
        "provider": "stripe",
        "name": "Stripe US",
        "credentials": {"secret_key": STRIPE_SECRET, "webhook_secret": STRIPE_HOOK},
        **fields,
    }


async def _create(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post("/v1/connector_accounts", body)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


def error_of(
    response: httpx.Response, status: int, code: str, param: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) >= ERROR_FIELDS
    assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    return error


@pytest.fixture
def live_api(client: httpx.AsyncClient, merchant: NewMerchant) -> Api:
    return Api(client, merchant.key("secret", livemode=True))


async def test_create_retrieve_and_list(api: Api) -> None:
    created = await _create(
        api, stripe_body(currencies=["usd", "EUR", "usd"], metadata={"region": "us"})
    )
    assert created["id"].startswith("ca_")
    assert created["object"] == "connector_account"
    assert (created["provider"], created["name"], created["status"]) == (
        "stripe",
        "Stripe US",
        "enabled",
    )
    assert created["currencies"] == ["USD", "EUR"]
    assert created["credentials"] == {"secret_key": "…Ab12", "webhook_secret": "…Cd34"}
    assert created["api_base"] is None and created["livemode"] is False
    assert created["metadata"] == {"region": "us"}
    assert {"manual_capture", "refund", "webhooks"} <= set(created["capabilities"])
    assert created["webhook_url"] == f"{TEST_BASE_URL}/v1/provider_webhooks/{created['id']}"
    assert isinstance(created["created"], int) and created["created"] > 0

    fetched = await api.get(f"/v1/connector_accounts/{created['id']}")
    assert fetched.status_code == 200 and fetched.json() == created

    paystack = await _create(
        api, {"provider": "paystack", "credentials": {"secret_key": PAYSTACK_SECRET}}
    )
    assert paystack["currencies"] == ["GHS", "KES", "NGN", "USD", "ZAR"]  # every one it takes
    assert paystack["credentials"] == {"secret_key": "…Ef56", "webhook_secret": None}
    assert "manual_capture" not in paystack["capabilities"]
    simulator = await _create(api, {"provider": "simulator"})
    assert simulator["credentials"] == {"secret_key": None, "webhook_secret": None}

    listed = (await api.get("/v1/connector_accounts")).json()
    assert listed["object"] == "list"
    assert {a["id"] for a in listed["data"]} == {created["id"], paystack["id"], simulator["id"]}
    only_paystack = (await api.get("/v1/connector_accounts", provider="paystack")).json()
    assert [a["id"] for a in only_paystack["data"]] == [paystack["id"]]
    for response in (fetched, *[await api.get("/v1/connector_accounts")]):
        for secret in (STRIPE_SECRET, STRIPE_HOOK, PAYSTACK_SECRET):
            assert secret not in response.text
            assert secret[-8:] not in response.text


async def test_credentials_are_encrypted_at_rest(api: Api, pool: asyncpg.Pool, deps: Deps) -> None:
    created = await _create(api, stripe_body())
    row = await pool.fetchrow("SELECT * FROM connector_accounts WHERE id = $1", created["id"])
    assert row is not None
    sealed = bytes(row["credentials"])
    for secret in (STRIPE_SECRET, STRIPE_HOOK):
        assert secret.encode() not in sealed
        assert secret.removeprefix("sk_test_").removeprefix("whsec_").encode() not in sealed
    # No other column holds a secret either (only the last four characters).
    readable = " ".join(str(value) for key, value in row.items() if key != "credentials")
    assert STRIPE_SECRET not in readable and STRIPE_HOOK not in readable
    assert (row["secret_key_last4"], row["webhook_secret_last4"]) == ("Ab12", "Cd34")
    assert json.loads(deps.keys.decrypt(sealed, context=created["id"])) == {
        "secret_key": STRIPE_SECRET,
        "webhook_secret": STRIPE_HOOK,
    }
    # Bound to the account: the same ciphertext does not decrypt for another id.
    with pytest.raises(Exception, match="does not verify"):
        deps.keys.decrypt(sealed, context="ca_other")


@pytest.mark.parametrize(
    ("livemode", "body"),
    [
        pytest.param(
            False, stripe_body(credentials={"secret_key": "sk_live_abcdefgh"}), id="st-live"
        ),
        pytest.param(
            False, stripe_body(credentials={"secret_key": "rk_live_abcdefgh"}), id="st-rk"
        ),
        pytest.param(
            False,
            {"provider": "paystack", "credentials": {"secret_key": "sk_live_abcdefgh"}},
            id="ps-live",
        ),
        pytest.param(
            True, stripe_body(credentials={"secret_key": "sk_test_abcdefgh"}), id="lv-test"
        ),
        pytest.param(
            True,
            {"provider": "paystack", "credentials": {"secret_key": "sk_test_abcdefgh"}},
            id="lv-ps-test",
        ),
        pytest.param(False, stripe_body(credentials={"secret_key": "pk_test_abcdefgh"}), id="pk"),
    ],
)
async def test_keys_must_match_the_mode(
    client: httpx.AsyncClient,
    merchant: NewMerchant,
    pool: asyncpg.Pool,
    livemode: bool,
    body: dict[str, Any],
) -> None:
    api = Api(client, merchant.key("secret", livemode=livemode))
    before = await row_counts(pool, merchant.id)
    response = await api.post("/v1/connector_accounts", body)
    error = error_of(response, 400, "credentials_invalid", "credentials.secret_key")
    assert ("live" if livemode else "test") in error["message"]
    assert body["credentials"]["secret_key"] not in response.text
    assert await row_counts(pool, merchant.id) == before


async def test_live_accounts_take_live_keys(live_api: Api) -> None:
    created = await _create(
        live_api, stripe_body(credentials={"secret_key": "rk_live_restricted9876"})
    )
    assert created["livemode"] is True and created["credentials"]["secret_key"] == "…9876"
    paystack = await _create(
        live_api, {"provider": "paystack", "credentials": {"secret_key": "sk_live_ps5432"}}
    )
    assert paystack["livemode"] is True


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"provider": "stripe"}, "parameter_missing", "credentials"),
        (
            stripe_body(credentials={"secret_key": STRIPE_SECRET, "webhook_secret": "hook_x"}),
            "credentials_invalid",
            "credentials.webhook_secret",
        ),
        (
            {
                "provider": "paystack",
                "credentials": {"secret_key": PAYSTACK_SECRET, "webhook_secret": "whsec_x"},
            },
            "parameter_invalid",
            "credentials.webhook_secret",
        ),
        (stripe_body(api_base="ftp://localhost/"), "parameter_invalid", "api_base"),
        (stripe_body(api_base="not a url"), "parameter_invalid", "api_base"),
        (
            {
                "provider": "paystack",
                "credentials": {"secret_key": PAYSTACK_SECRET},
                "currencies": ["EUR"],
            },
            "currency_not_supported",
            "currencies",
        ),
        (stripe_body(currencies=["XYZ"]), "currency_not_supported", "currencies"),
        (stripe_body(currencies=[]), "parameter_invalid", "currencies"),
        (stripe_body(colour="blue"), "parameter_unknown", "colour"),
        (
            stripe_body(credentials={"secret_key": STRIPE_SECRET, "extra": "x"}),
            "parameter_unknown",
            "credentials[extra]",
        ),
        ({"provider": "adyen"}, "parameter_invalid", "provider"),
    ],
)
async def test_invalid_creates_write_nothing(
    api: Api,
    merchant: NewMerchant,
    pool: asyncpg.Pool,
    body: dict[str, Any],
    code: str,
    param: str,
) -> None:
    before = await row_counts(pool, merchant.id)
    error_of(await api.post("/v1/connector_accounts", body), 400, code, param)
    assert await row_counts(pool, merchant.id) == before


async def test_live_mode_refuses_api_base_and_the_simulator(
    live_api: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    before = await row_counts(pool, merchant.id)
    live_stripe = stripe_body(credentials={"secret_key": "sk_live_abcdefgh"})
    refused = await live_api.post(
        "/v1/connector_accounts", {**live_stripe, "api_base": "http://127.0.0.1:12111"}
    )
    error_of(refused, 400, "parameter_invalid", "api_base")
    simulator = await live_api.post("/v1/connector_accounts", {"provider": "simulator"})
    assert "test mode only" in error_of(simulator, 400, "parameter_invalid", "provider")["message"]
    assert await row_counts(pool, merchant.id) == before

    created = await _create(live_api, live_stripe)
    path = f"/v1/connector_accounts/{created['id']}"
    update = await live_api.post(path, {"api_base": "http://127.0.0.1:12111"})
    error_of(update, 400, "parameter_invalid", "api_base")
    assert (await live_api.get(path)).json()["api_base"] is None


async def test_test_mode_takes_an_api_base(api: Api) -> None:
    created = await _create(api, stripe_body(api_base="http://127.0.0.1:12111/"))
    assert created["api_base"] == "http://127.0.0.1:12111"
    path = f"/v1/connector_accounts/{created['id']}"
    cleared = await api.post(path, {"api_base": None})
    assert cleared.status_code == 200 and cleared.json()["api_base"] is None


async def test_update_changes_only_what_was_sent_and_rotates_credentials(
    api: Api, pool: asyncpg.Pool, deps: Deps
) -> None:
    created = await _create(api, stripe_body(currencies=["USD"], metadata={"a": "1"}))
    path = f"/v1/connector_accounts/{created['id']}"
    before = await pool.fetchval(
        "SELECT credentials FROM connector_accounts WHERE id = $1", created["id"]
    )

    renamed = (await api.post(path, {"name": "Stripe EU", "currencies": ["EUR", "GBP"]})).json()
    assert (renamed["name"], renamed["currencies"]) == ("Stripe EU", ["EUR", "GBP"])
    assert renamed["credentials"] == created["credentials"]
    assert renamed["metadata"] == {"a": "1"}
    unchanged = await api.post(path, {})
    assert unchanged.status_code == 200 and unchanged.json() == renamed

    new_secret = "sk_test_rotatedStripeKeyZz99"
    rotated = await api.post(path, {"credentials": {"secret_key": new_secret}})
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["credentials"] == {"secret_key": "…Zz99", "webhook_secret": None}
    assert new_secret not in rotated.text
    after = await pool.fetchval(
        "SELECT credentials FROM connector_accounts WHERE id = $1", created["id"]
    )
    assert bytes(after) != bytes(before) and new_secret.encode() not in bytes(after)
    assert json.loads(deps.keys.decrypt(after, context=created["id"])) == {
        "secret_key": new_secret,
        "webhook_secret": None,
    }

    wrong_mode = await api.post(path, {"credentials": {"secret_key": "sk_live_abcdefgh"}})
    error_of(wrong_mode, 400, "credentials_invalid", "credentials.secret_key")
    unknown = await api.post(path, {"provider": "paystack"})
    error_of(unknown, 400, "parameter_unknown", "provider")
    cleared = (await api.post(path, {"name": None, "metadata": {}})).json()
    assert (cleared["name"], cleared["metadata"]) == (None, {})
    assert cleared["credentials"]["secret_key"] == "…Zz99"


async def test_update_checks_the_providers_currencies(api: Api) -> None:
    created = await _create(
        api, {"provider": "paystack", "credentials": {"secret_key": PAYSTACK_SECRET}}
    )
    path = f"/v1/connector_accounts/{created['id']}"
    refused = await api.post(path, {"currencies": ["NGN", "EUR"]})
    error_of(refused, 400, "currency_not_supported", "currencies")
    assert (await api.get(path)).json()["currencies"] == created["currencies"]
    narrowed = (await api.post(path, {"currencies": ["ngn"]})).json()
    assert narrowed["currencies"] == ["NGN"]


async def test_disable_and_enable(api: Api) -> None:
    created = await _create(api, {"provider": "simulator"})
    other = await _create(api, {"provider": "simulator"})
    path = f"/v1/connector_accounts/{created['id']}"
    disabled = await api.post(f"{path}/disable")
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    assert (await api.get(path)).json()["status"] == "disabled"
    listed = (await api.get("/v1/connector_accounts", status="disabled")).json()
    assert [a["id"] for a in listed["data"]] == [created["id"]]
    enabled_list = (await api.get("/v1/connector_accounts", status="enabled")).json()
    assert [a["id"] for a in enabled_list["data"]] == [other["id"]]
    again = await api.post(f"{path}/disable")  # idempotent
    assert again.status_code == 200 and again.json()["status"] == "disabled"
    enabled = await api.post(f"{path}/enable")
    assert enabled.status_code == 200 and enabled.json()["status"] == "enabled"
    bad_filter = await api.get("/v1/connector_accounts", status="paused")
    assert bad_filter.status_code == 400


async def test_other_merchants_and_the_other_mode_see_nothing(
    client: httpx.AsyncClient,
    api: Api,
    live_api: Api,
    merchant: NewMerchant,
    other_merchant: NewMerchant,
) -> None:
    test_account = await _create(api, stripe_body())
    live_account = await _create(
        live_api, stripe_body(credentials={"secret_key": "sk_live_xyz12345"})
    )
    intruder = Api(client, other_merchant.key("secret", livemode=False))
    intruder_live = Api(client, other_merchant.key("secret", livemode=True))

    for who, account in (
        (intruder, test_account),
        (intruder_live, live_account),
        (api, live_account),  # the merchant's own test key cannot see its live accounts
        (live_api, test_account),
    ):
        path = f"/v1/connector_accounts/{account['id']}"
        error_of(await who.get(path), 404, "resource_missing", "id")
        error_of(await who.post(path, {"name": "taken"}), 404, "resource_missing", "id")
        error_of(await who.post(f"{path}/disable"), 404, "resource_missing", "id")
        error_of(await who.post(f"{path}/enable"), 404, "resource_missing", "id")
    assert (await intruder.get("/v1/connector_accounts")).json()["data"] == []
    assert (await intruder_live.get("/v1/connector_accounts")).json()["data"] == []
    assert [a["id"] for a in (await api.get("/v1/connector_accounts")).json()["data"]] == [
        test_account["id"]
    ]
    assert [a["id"] for a in (await live_api.get("/v1/connector_accounts")).json()["data"]] == [
        live_account["id"]
    ]
    for own, account in ((api, test_account), (live_api, live_account)):
        unchanged = (await own.get(f"/v1/connector_accounts/{account['id']}")).json()
        assert (unchanged["name"], unchanged["status"]) == ("Stripe US", "enabled")


async def test_publishable_keys_cannot_manage_accounts(
    client: httpx.AsyncClient, merchant: NewMerchant, api: Api
) -> None:
    created = await _create(api, {"provider": "simulator"})
    publishable = Api(client, merchant.key("publishable", livemode=False))
    path = f"/v1/connector_accounts/{created['id']}"
    error_of(await publishable.get(path), 403, "secret_key_required")
    refused = await publishable.post("/v1/connector_accounts", {"provider": "simulator"})
    error_of(refused, 403, "secret_key_required")
