"""The Paystack fake against Paystack's own OpenAPI spec (loaded at run time from
PAYGRID_TEST_PAYSTACK_SPEC, never copied into the repo) and its documented webhook samples,
so the fake cannot drift from the real API unnoticed."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from tests.fakes.paystack import FakeMerchant, PaystackFake

SUCCESS_CARD = "4084084084084081"
INSUFFICIENT_FUNDS_CARD = "5061020283705678"


@cache
def _spec() -> dict[str, Any] | None:
    path = os.environ.get("PAYGRID_TEST_PAYSTACK_SPEC")
    if not path or not Path(path).is_file():
        return None
    spec: dict[str, Any] = yaml.safe_load(Path(path).read_text())
    return spec


def response_schema(path: str, method: str, status: str) -> dict[str, Any]:
    """The JSON Schema of one response in the spec, ``$ref``s resolved and OpenAPI 3.0's
    ``nullable`` turned into JSON Schema's ``null`` type."""
    spec = _spec()
    if spec is None:
        why = (
            "PAYGRID_TEST_PAYSTACK_SPEC is unset or missing: set it to Paystack's OpenAPI spec "
            "(.ci/run uses ../shared/specs/paystack.yaml, beside the project)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why}; in CI the fake must be validated against the spec")
        pytest.skip(why)
    response = _resolve(spec, spec["paths"][path][method]["responses"][status])
    schema: dict[str, Any] = response["content"]["application/json"]["schema"]
    return schema


def _resolve(spec: dict[str, Any], node: Any) -> Any:
    if isinstance(node, list):
        return [_resolve(spec, item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return _resolve(spec, target)
    resolved = {k: _resolve(spec, v) for k, v in node.items() if k not in ("example", "examples")}
    if resolved.pop("nullable", False):
        if "type" in resolved:
            resolved["type"] = [resolved["type"], "null"]
        if "enum" in resolved:
            resolved["enum"] = [*resolved["enum"], None]
    return resolved


def assert_conforms(response: httpx.Response, path: str, method: str, status: str) -> None:
    assert str(response.status_code) == status, response.text
    schema = response_schema(path, method, status)
    jsonschema.Draft7Validator(schema).validate(response.json())


def assert_error_envelope(response: httpx.Response, status: int, message: str) -> None:
    """Error answers without a schema of their own must still have Paystack's error shape."""
    assert response.status_code == status, response.text
    body = response.json()
    schema = response_schema("/transaction/initialize", "post", "400")
    jsonschema.Draft7Validator(schema).validate(body)
    assert body["status"] is False
    assert body["message"] == message
    assert set(body) <= {"status", "message", "type", "code", "meta"}


async def paid_transaction(
    merchant: FakeMerchant, reference: str, amount: int = 50_000
) -> dict[str, Any]:
    init = await merchant.api(
        "POST",
        "/transaction/initialize",
        {"email": "ada@example.com", "amount": amount, "reference": reference},
    )
    data: dict[str, Any] = init.json()["data"]
    paid = await merchant.pay(data["authorization_url"], card_number=SUCCESS_CARD)
    assert paid.status_code in (200, 302), paid.text
    return data


async def test_initialize_and_its_errors_match_the_spec(paystack_merchant: FakeMerchant) -> None:
    body = {
        "email": "ada@example.com",
        "amount": "50000",
        "currency": "NGN",
        "reference": "ref-init-1",
        "channels": ["card", "bank_transfer"],
        "callback_url": "https://shop.example/return",
        "metadata": {"order": 7},
    }
    created = await paystack_merchant.api("POST", "/transaction/initialize", body)
    assert_conforms(created, "/transaction/initialize", "post", "200")
    data = created.json()["data"]
    assert data["reference"] == "ref-init-1"
    assert (
        data["authorization_url"]
        == f"{paystack_merchant.fake.base_url}/checkout/{data['access_code']}"
    )

    duplicate = await paystack_merchant.api("POST", "/transaction/initialize", body)
    assert_conforms(duplicate, "/transaction/initialize", "post", "400")
    assert duplicate.json()["message"] == "Duplicate Transaction Reference"

    no_email = await paystack_merchant.api("POST", "/transaction/initialize", {"amount": 100})
    assert_conforms(no_email, "/transaction/initialize", "post", "400")

    bad_currency = {"email": "a@b.co", "amount": 100, "currency": "EUR"}
    rejected = await paystack_merchant.api("POST", "/transaction/initialize", bad_currency)
    assert_conforms(rejected, "/transaction/initialize", "post", "400")


async def test_unknown_or_missing_key_is_401(paystack_fake: PaystackFake) -> None:
    async with httpx.AsyncClient(base_url=paystack_fake.base_url) as http:
        missing = await http.get("/transaction/verify/x")
        unknown = await http.post(
            "/transaction/initialize",
            json={"email": "a@b.co", "amount": 100},
            headers={"Authorization": "Bearer sk_test_nobody"},
        )
    for answer in (missing, unknown):
        assert_conforms(answer, "/transaction/initialize", "post", "401")
        assert answer.json() == {"status": False, "message": "Invalid key"}


async def test_verify_before_and_after_payment_matches_the_spec(
    paystack_merchant: FakeMerchant,
) -> None:
    init = await paystack_merchant.api(
        "POST", "/transaction/initialize", {"email": "ada@example.com", "amount": 2500}
    )
    reference = init.json()["data"]["reference"]
    pending = await paystack_merchant.api("GET", f"/transaction/verify/{reference}")
    assert_conforms(pending, "/transaction/verify/{reference}", "get", "200")
    assert pending.json()["data"]["status"] == "abandoned"

    await paystack_merchant.pay(init.json()["data"]["authorization_url"], card_number=SUCCESS_CARD)
    paid = await paystack_merchant.api("GET", f"/transaction/verify/{reference}")
    assert_conforms(paid, "/transaction/verify/{reference}", "get", "200")
    data = paid.json()["data"]
    assert data["status"] == "success"
    authorization = data["authorization"]
    assert authorization["authorization_code"].startswith("AUTH_")
    assert authorization["last4"] == "4081"
    assert authorization["reusable"] is True

    missing = await paystack_merchant.api("GET", "/transaction/verify/nope")
    assert_conforms(missing, "/transaction/verify/{reference}", "get", "404")
    assert missing.json()["message"] == "Transaction reference not found"


async def test_transaction_list_paginates_and_filters(paystack_merchant: FakeMerchant) -> None:
    for index in range(3):
        await paid_transaction(paystack_merchant, f"ref-list-{index}")
    await paystack_merchant.api(
        "POST", "/transaction/initialize", {"email": "b@example.com", "amount": 100}
    )
    page = await paystack_merchant.api("GET", "/transaction?status=success&perPage=2&page=2")
    assert_conforms(page, "/transaction", "get", "200")
    body = page.json()
    assert [t["reference"] for t in body["data"]] == ["ref-list-0"]
    assert body["meta"] == {
        "total": 3,
        "total_volume": 150_000,
        "skipped": 2,
        "perPage": 2,
        "page": 2,
        "pageCount": 2,
    }
    everything = await paystack_merchant.api("GET", "/transaction")
    assert everything.json()["meta"]["total"] == 4


async def test_charge_authorization_matches_the_spec(paystack_merchant: FakeMerchant) -> None:
    await paid_transaction(paystack_merchant, "ref-first")
    verified = await paystack_merchant.api("GET", "/transaction/verify/ref-first")
    code = verified.json()["data"]["authorization"]["authorization_code"]
    body = {
        "email": "ada@example.com",
        "amount": 1200,
        "authorization_code": code,
        "reference": "ref-again",
        "metadata": json.dumps({"order": 8}),
    }
    charged = await paystack_merchant.api("POST", "/transaction/charge_authorization", body)
    assert_conforms(charged, "/transaction/charge_authorization", "post", "200")
    assert charged.json()["data"]["status"] == "success"

    await paystack_merchant.decline_authorization(code, "Insufficient Funds")
    declined = await paystack_merchant.api(
        "POST", "/transaction/charge_authorization", {**body, "reference": "ref-third"}
    )
    assert_conforms(declined, "/transaction/charge_authorization", "post", "200")
    assert declined.json()["data"]["status"] == "failed"
    assert declined.json()["data"]["gateway_response"] == "Insufficient Funds"

    unknown = await paystack_merchant.api(
        "POST", "/transaction/charge_authorization", {**body, "authorization_code": "AUTH_nope"}
    )
    assert_error_envelope(unknown, 400, "Invalid authorization code")


async def test_refunds_match_the_spec(paystack_merchant: FakeMerchant) -> None:
    await paid_transaction(paystack_merchant, "ref-refund", amount=10_000)
    created = await paystack_merchant.api(
        "POST", "/refund", {"transaction": "ref-refund", "amount": 4_000}
    )
    assert_conforms(created, "/refund", "post", "200")
    refund = created.json()["data"]
    assert refund["status"] == "pending"

    fetched = await paystack_merchant.api("GET", f"/refund/{refund['id']}")
    assert_conforms(fetched, "/refund/{id}", "get", "200")
    assert fetched.json()["data"]["status"] == "pending"

    too_much = await paystack_merchant.api(
        "POST", "/refund", {"transaction": "ref-refund", "amount": 6_001}
    )
    assert_error_envelope(
        too_much, 400, "Refund amount cannot be greater than the transaction amount"
    )
    assert await paystack_merchant.process_refunds() == [refund["id"]]
    processed = await paystack_merchant.api("GET", f"/refund/{refund['id']}")
    assert_conforms(processed, "/refund/{id}", "get", "200")
    assert processed.json()["data"]["status"] == "processed"

    # The rest by transaction id: the transaction ends up reversed.
    transaction_id = str(refund["transaction"]["id"])
    rest = await paystack_merchant.api("POST", "/refund", {"transaction": transaction_id})
    assert rest.json()["data"]["amount"] == 6_000
    await paystack_merchant.process_refunds()
    verified = await paystack_merchant.api("GET", "/transaction/verify/ref-refund")
    assert verified.json()["data"]["status"] == "reversed"

    missing = await paystack_merchant.api("GET", "/refund/1")
    assert_conforms(missing, "/refund/{id}", "get", "404")


async def test_a_refunds_notes_are_kept_and_answered_on_create_fetch_and_list(
    paystack_merchant: FakeMerchant,
) -> None:
    """``merchant_note`` and ``customer_note`` (``RefundCreate``) come back exactly on the
    create, ``GET /refund/{id}`` and ``GET /refund``, as the spec's answers list them:
    paygrid's restore reads its refund id and the merchant's key back from the note."""
    await paid_transaction(paystack_merchant, "ref-noted", amount=10_000)
    note = 'paygrid refund re_01JEXAMPLE key a key with "quotes" {and} braces ~'
    created = await paystack_merchant.api(
        "POST",
        "/refund",
        {"transaction": "ref-noted", "amount": 3_000, "merchant_note": note, "customer_note": "c"},
    )
    assert_conforms(created, "/refund", "post", "200")
    refund = created.json()["data"]
    fetched = await paystack_merchant.api("GET", f"/refund/{refund['id']}")
    assert_conforms(fetched, "/refund/{id}", "get", "200")
    listed = await paystack_merchant.api("GET", "/refund?perPage=10&page=1")
    assert_conforms(listed, "/refund", "get", "200")
    (item,) = listed.json()["data"]
    for answer in (refund, fetched.json()["data"], item):
        assert (answer["id"], answer["merchant_note"], answer["customer_note"]) == (
            refund["id"],
            note,
            "c",
        )
    assert item["transaction_reference"] == "ref-noted"


# The fields of Paystack's documented webhook samples (docs: payments/webhooks, refunds).
CHARGE_SUCCESS_FIELDS = {
    "id", "domain", "status", "reference", "amount", "message", "gateway_response", "paid_at",
    "created_at", "channel", "currency", "ip_address", "metadata", "log", "fees", "customer",
    "authorization", "plan", "split", "subaccount", "paidAt", "requested_amount",
}  # fmt: skip
CHARGE_AUTHORIZATION_FIELDS = {
    "authorization_code", "bin", "last4", "exp_month", "exp_year", "channel", "card_type",
    "bank", "country_code", "brand", "reusable", "signature",
}  # fmt: skip
CUSTOMER_FIELDS = {"id", "first_name", "last_name", "email", "customer_code", "phone", "metadata"}
REFUND_FIELDS = {
    "status", "transaction_reference", "refund_reference", "amount", "currency", "processor",
    "customer", "integration", "domain", "id",
}  # fmt: skip


async def test_webhooks_are_signed_posted_and_shaped_like_paystacks_samples(
    paystack_fake: PaystackFake, paystack_merchant: FakeMerchant
) -> None:
    sink = paystack_fake.sink_url()
    await paystack_merchant.set_webhook_url(sink)
    await paid_transaction(paystack_merchant, "ref-hook", amount=3_000)
    await paystack_merchant.api("POST", "/refund", {"transaction": "ref-hook"})
    await paystack_merchant.process_refunds()
    await paystack_merchant.wait_for_webhook("refund.processed")

    received = await paystack_fake.sink_requests(sink)
    events = [json.loads(r["body"]) for r in received]
    assert [e["event"] for e in events] == ["charge.success", "refund.pending", "refund.processed"]
    for request in received:
        expected = hmac.new(
            paystack_merchant.secret_key.encode(), request["body"].encode(), hashlib.sha512
        ).hexdigest()
        assert request["headers"]["x-paystack-signature"] == expected

    charge, pending, processed = (e["data"] for e in events)
    assert set(charge) >= CHARGE_SUCCESS_FIELDS
    assert set(charge["authorization"]) >= CHARGE_AUTHORIZATION_FIELDS
    assert set(charge["customer"]) >= CUSTOMER_FIELDS
    assert charge["reference"] == "ref-hook"
    assert charge["status"] == "success"
    for refund in (pending, processed):
        assert set(refund) == REFUND_FIELDS
        assert set(refund["customer"]) == {"first_name", "last_name", "email"}
        assert refund["transaction_reference"] == "ref-hook"
    assert (pending["status"], pending["amount"]) == ("pending", 3_000)
    assert (processed["status"], processed["amount"]) == ("processed", "3000")


async def test_failed_card_sends_no_webhook_and_resend_repeats_one(
    paystack_merchant: FakeMerchant,
) -> None:
    init = await paystack_merchant.api(
        "POST",
        "/transaction/initialize",
        {"email": "ada@example.com", "amount": 700, "callback_url": "https://shop.example/r"},
    )
    page = await paystack_merchant.api("GET", "/checkout/" + init.json()["data"]["access_code"])
    assert "card_number" in page.text
    failed = await paystack_merchant.pay(
        init.json()["data"]["authorization_url"], card_number=INSUFFICIENT_FUNDS_CARD
    )
    assert failed.status_code == 402
    assert "Insufficient Funds" in failed.text
    reference = init.json()["data"]["reference"]
    assert (await paystack_merchant.state())["transactions"][reference] == "failed"
    assert await paystack_merchant.webhooks() == []

    other = await paid_transaction(paystack_merchant, "ref-resend")
    assert other["reference"] == "ref-resend"
    [first] = await paystack_merchant.wait_for_webhook("charge.success")
    await paystack_merchant.resend_webhook(first.id)
    again = await paystack_merchant.wait_for_webhook("charge.success", count=2)
    assert again[1].body == first.body


async def test_success_redirects_to_the_callback(paystack_merchant: FakeMerchant) -> None:
    init = await paystack_merchant.api(
        "POST",
        "/transaction/initialize",
        {"email": "ada@example.com", "amount": 700, "callback_url": "https://shop.example/r?x=1"},
    )
    data = init.json()["data"]
    paid = await paystack_merchant.pay(data["authorization_url"], card_number=SUCCESS_CARD)
    assert paid.status_code == 302
    reference = data["reference"]
    assert paid.headers["location"] == (
        f"https://shop.example/r?x=1&trxref={reference}&reference={reference}"
    )


async def test_other_channels_pay_with_a_button(paystack_merchant: FakeMerchant) -> None:
    init = await paystack_merchant.api(
        "POST",
        "/transaction/initialize",
        {"email": "ada@example.com", "amount": 700, "channels": ["bank_transfer"]},
    )
    data = init.json()["data"]
    paid = await paystack_merchant.pay(data["authorization_url"], channel="bank_transfer")
    assert paid.status_code == 200
    verified = await paystack_merchant.api("GET", f"/transaction/verify/{data['reference']}")
    assert_conforms(verified, "/transaction/verify/{reference}", "get", "200")
    assert verified.json()["data"]["channel"] == "bank_transfer"
    assert verified.json()["data"]["authorization"]["reusable"] is False


async def test_merchants_are_separate_namespaces(paystack_fake: PaystackFake) -> None:
    first = await paystack_fake.new_merchant()
    second = await paystack_fake.new_merchant()
    await paid_transaction(first, "shared-ref")
    assert (await second.api("GET", "/transaction/verify/shared-ref")).status_code == 404
    await paid_transaction(second, "shared-ref")


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_a_missing_spec_fails_in_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("PAYGRID_TEST_PAYSTACK_SPEC", str(tmp_path / "missing.yaml"))
    monkeypatch.setenv("CI", ci)
    _spec.cache_clear()
    try:
        with pytest.raises(outcome):
            response_schema("/transaction/initialize", "post", "200")
    finally:
        _spec.cache_clear()
