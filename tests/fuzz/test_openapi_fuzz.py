"""Schemathesis fuzzes every operation in ``/openapi.json`` against the in-process app, with a
test secret key: no 5xx, every status, header and body as the spec documents it, and every
4xx carrying the error object. Examples per operation are few and derandomized, so a CI run
is bounded and a failure reproduces."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from paygrid.app import create_app
from paygrid.config import Settings
from paygrid.services.merchants import create_merchant
from tests.conftest import TEST_BASE_URL

# The spec needs no database: load it at import so each operation is its own test.
schema = schemathesis.openapi.from_dict(create_app(Settings(public_url=TEST_BASE_URL)).openapi())


@pytest.fixture(scope="module")
def fuzz_app(database_url: str, settings: Settings) -> Iterator[FastAPI]:
    """An app that owns its pools: schemathesis calls it from its own event loop thread,
    where the session's pools cannot be used. No in-process worker: nothing is delivered."""
    app = create_app(
        settings.model_copy(update={"worker_in_process": False, "db_pool_size": 4}),
        database_url=database_url,
    )
    yield app
    asgi.shutdown_lifespans()  # closes the app's pools while the database still exists


@pytest.fixture(scope="module")
async def fuzz_key(pool: asyncpg.Pool) -> str:
    merchant = await create_merchant(pool, f"Fuzz merchant {uuid.uuid4().hex[:6]}")
    return merchant.key("secret", livemode=False)


@schemathesis.check
def error_object(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """Every 4xx carries ``{"error": {"type", "code", "message", ...}}``."""
    if not 400 <= response.status_code < 500:
        return None
    body: Any = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), f"{response.status_code} without an error object"
    missing = [f for f in ("type", "code", "message") if not isinstance(error.get(f), str)]
    assert not missing, f"{response.status_code} error object lacks {missing}"
    return True


@schema.parametrize()
@settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_openapi(case: schemathesis.Case[Any], fuzz_app: FastAPI, fuzz_key: str) -> None:
    case.call_and_validate(
        base_url=TEST_BASE_URL,
        app=fuzz_app,
        headers={"Authorization": f"Bearer {fuzz_key}"},
        additional_checks=[error_object],
        # A schema-valid request may still break a business rule the schema cannot express:
        # an unsupported currency, an amount under the currency's minimum, an unknown id.
        excluded_checks=[positive_data_acceptance],
    )
