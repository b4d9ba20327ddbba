"""The OpenAPI document states what the server enforces (issue 18 §6): enums from the same
registries the server checks against, and examples the server itself accepts."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from typing import Any

import pytest

import paygrid.schemas
from paygrid.app import create_app
from paygrid.config import Settings
from paygrid.domain.scopes import ALL_SCOPES
from paygrid.money import CURRENCIES
from paygrid.schemas.common import RequestModel, unstorable
from paygrid.schemas.webhooks import SUBSCRIBABLE

SPEC: dict[str, Any] = create_app(Settings(public_url="http://127.0.0.1:8000")).openapi()
COMPONENTS: dict[str, Any] = SPEC["components"]["schemas"]
# Our ids: a type prefix and a ULID (26 Crockford base-32 characters).
OUR_ID = re.compile(r"(cus|pay|pm|re|evt|we|cs|ca|rr|key)_01.*")
ULID_ID = re.compile(r"[a-z]+_[0-9A-HJKMNP-TV-Z]{26}")


def _request_models() -> Iterator[type[RequestModel]]:
    for module_info in pkgutil.iter_modules(paygrid.schemas.__path__):
        module = importlib.import_module(f"paygrid.schemas.{module_info.name}")
        for _, model in inspect.getmembers(module, inspect.isclass):
            if issubclass(model, RequestModel) and model.__module__ == module.__name__:
                yield model


def _walk(value: Any) -> Iterator[Any]:
    yield value
    children = value.values() if isinstance(value, dict) else value
    if isinstance(value, dict | list):
        for child in children:
            yield from _walk(child)


def _strings(value: Any) -> Iterator[str]:
    for node in _walk(value):
        if isinstance(node, str):
            yield node


@pytest.mark.parametrize("model", list(_request_models()), ids=lambda m: m.__name__)
def test_request_examples_pass_the_servers_own_validation(model: type[RequestModel]) -> None:
    extra = model.model_config.get("json_schema_extra")
    examples = extra.get("examples") if isinstance(extra, dict) else None
    for example in examples if isinstance(examples, list) else []:
        model.model_validate(example)


def test_example_ids_are_ids_the_server_could_have_made() -> None:
    examples = [n["examples"] for n in _walk(SPEC) if isinstance(n, dict) and "examples" in n]
    ids = {s for s in _strings(examples) if OUR_ID.fullmatch(s)}
    assert ids, "no example ids found"
    assert {i for i in ids if not ULID_ID.fullmatch(i)} == set()


def _field(model: str, name: str) -> dict[str, Any]:
    field: dict[str, Any] = COMPONENTS[model]["properties"][name]
    return field


def test_currency_enums_are_the_registrys_codes() -> None:
    codes = {*CURRENCIES, *(c.lower() for c in CURRENCIES)}
    assert set(_field("PaymentCreate", "currency")["enum"]) == codes
    assert set(_field("CheckoutSessionCreate", "currency")["enum"]) == codes
    items = _field("ConnectorAccountCreate", "currencies")["anyOf"][0]["items"]
    assert set(items["enum"]) == codes


def test_scopes_event_types_and_metadata_limits_are_stated() -> None:
    assert set(_field("ApiKeyCreate", "scopes")["items"]["enum"]) == ALL_SCOPES
    assert "not" in COMPONENTS["ApiKeyCreate"]  # role and scopes exclude each other
    assert set(_field("WebhookEndpointCreate", "enabled_events")["items"]["enum"]) == SUBSCRIBABLE
    metadata = _field("CustomerCreate", "metadata")
    assert metadata["maxProperties"] == 50
    assert metadata["propertyNames"]["maxLength"] == 40
    assert metadata["additionalProperties"]["maxLength"] == 500
    kinds = COMPONENTS["PaymentMethodData"]["oneOf"]
    assert [k["properties"]["type"]["const"] for k in kinds] == ["card", "provider_token"]


def _constrained(schema: dict[str, Any]) -> bool:
    return bool({"enum", "const", "pattern"} & set(schema))


def test_free_text_parameters_state_what_the_server_stores() -> None:
    """Every string parameter without an enum or a pattern of its own gets the pattern of
    storable text, and that pattern refuses exactly what ``unstorable`` refuses."""
    unpatterned = []
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                if _constrained(schema):  # an enum beside ``anyOf: [string, null]``
                    continue
                strings = [n for n in _walk(schema) if isinstance(n, dict) and n.get("type")]
                if any(n["type"] == "string" and not _constrained(n) for n in strings):
                    unpatterned.append(f"{method} {path} {parameter['name']}")
    assert unpatterned == []
    pattern = re.compile(_field("CustomerCreate", "name")["anyOf"][0]["pattern"])
    for text in ("Ada", "tab\there", "line\nfeed", "nul\x00", "bell\x07", "del\x7f", "c1\x85"):
        assert (pattern.fullmatch(text) is None) == (unstorable(text) is not None), repr(text)
