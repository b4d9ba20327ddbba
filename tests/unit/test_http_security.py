"""Pure pieces of HTTP hardening and erasure: JSON depth, the plain-HTTP warning, CORS routes,
and what redaction removes."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from paygrid.api.middleware import json_depth
from paygrid.api.security import cors_methods, plaintext_risk, warn_if_plaintext
from paygrid.config import Settings
from paygrid.domain.erasure import ERASED, PersonalData


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"{}", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[[{{{{"}', 1),
        (b'{"a": "quote \\" then [[["}', 1),
        (b'"just a string"', 0),
        (b"[" * 40 + b"]" * 40, 40),
    ],
)
def test_json_depth(body: bytes, depth: int) -> None:
    assert json_depth(body) == depth


def test_cors_only_on_publishable_and_checkout_routes() -> None:
    assert cors_methods("/v1/payment_methods") == {"POST"}
    assert cors_methods("/checkout/cs_1") == {"GET", "POST"}
    for path in ("/v1/payments", "/v1/payment_methods/pm_1", "/v1/customers", "/docs"):
        assert cors_methods(path) == frozenset()


def _settings(**values: object) -> Settings:
    return Settings.model_validate(values)


@pytest.mark.parametrize(
    ("values", "live_keys", "risk"),
    [
        ({}, False, None),  # development: loopback, test keys only
        ({"host": "::1"}, False, None),
        ({"host": "localhost"}, False, None),
        ({}, True, "live_mode_in_use"),
        ({"host": "0.0.0.0"}, False, "non_loopback_bind"),  # noqa: S104 - the case under test
        ({"host": "10.1.2.3"}, True, "live_mode_in_use"),
        ({"host": "0.0.0.0", "behind_tls_proxy": True}, True, None),  # noqa: S104
        ({"host": "0.0.0.0", "tls_certfile": "c.pem", "tls_keyfile": "k.pem"}, True, None),  # noqa: S104
    ],
)
def test_plaintext_risk(values: dict[str, object], live_keys: bool, risk: str | None) -> None:
    assert plaintext_risk(_settings(**values), live_mode=live_keys) == risk


def test_plaintext_warning_is_one_structured_line() -> None:
    with capture_logs() as logs:
        assert warn_if_plaintext(_settings(host="0.0.0.0"), live_mode=False)  # noqa: S104
        assert not warn_if_plaintext(_settings(), live_mode=False)
    assert len(logs) == 1
    line = logs[0]
    assert line["event"] == "serve.plaintext_http" and line["log_level"] == "warning"
    assert line["reason"] == "non_loopback_bind" and line["host"] == "0.0.0.0"  # noqa: S104
    assert "PAYGRID_BEHIND_TLS_PROXY" in line["hint"]


def test_tls_files_make_the_base_url_https() -> None:
    settings = _settings(tls_certfile=Path("c.pem"), tls_keyfile=Path("k.pem"), port=8443)
    assert settings.base_url() == "https://127.0.0.1:8443"


ADA = PersonalData(
    customer_id="cus_1",
    payment_ids=frozenset({"pay_1"}),
    payment_method_ids=frozenset({"pm_1"}),
    needles=("ada@example.com", "Ada Lovelace", "+2348012345678"),
)


def test_redaction_of_known_objects_keeps_ids_and_amounts() -> None:
    customer = {
        "id": "cus_1",
        "object": "customer",
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "phone": "+2348012345678",
        "metadata": {"tier": "gold"},
    }
    payment = {
        "id": "pay_1",
        "object": "payment",
        "amount": 1000,
        "customer": "cus_1",
        "receipt_email": "ADA@example.com",
        "description": "Tea",
        "metadata": {"order": "1043"},
    }
    assert ADA.redact({"object": customer}) == {
        "object": {**customer, "email": None, "name": None, "phone": None, "metadata": {}}
    }
    assert ADA.redact({"object": payment})["object"] == {
        **payment,
        "receipt_email": None,
        "description": None,
        "metadata": {"order": ERASED},
    }


def test_redaction_elsewhere_is_by_whole_words_only() -> None:
    other = {
        "id": "pay_2",
        "object": "payment",
        "description": "Gift from Ada Lovelace",
        "metadata": {"country": "Canada", "note": "write to ada@example.com"},
    }
    assert ADA.redact(other) == {
        **other,
        "description": ERASED,
        "metadata": {"country": "Canada", "note": ERASED},
    }
    named_like_a_type = PersonalData("cus_9", frozenset(), frozenset(), ("payment",))
    assert named_like_a_type.redact(other)["object"] == "payment"
