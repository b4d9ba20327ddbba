"""Stateful fuzzing against a real ``paygrid serve`` process: schemathesis follows the
document's OpenAPI links (create customer → save a card → pay → capture → refund, webhook
endpoint → rotate → test, …) so calls reach real objects instead of random ids. Every answer
must be documented (status, content type, body schema), never a 5xx, every 4xx must
carry the error object, and a schema-valid request may be refused only by a business rule
(``BUSINESS_RULES``). Bounded in examples and steps so CI stays well inside its limit;
derandomized so a failure reproduces."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from paygrid.db import engine
from paygrid.services.merchants import create_merchant, issue_key
from tests.conftest import scratch_database
from tests.fuzz.test_openapi_fuzz import CONFIG, business_rules_only, error_object
from tests.integration.test_worker_process import serving

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class RunningServer:
    url: str
    secret_key: str


@pytest.fixture(scope="module")
def stateful_database(server_url: str) -> Iterator[str]:
    with scratch_database(server_url, "paygrid_stateful") as url:
        engine.upgrade(url)
        yield url


@pytest.fixture(scope="module")
async def running_server(
    stateful_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningServer]:
    pool = await engine.create_pool(stateful_database, 2)
    try:
        merchant = await create_merchant(pool, f"Stateful fuzz {uuid.uuid4().hex[:6]}")
        # An admin key, so that key and queue administration are fuzzed too.
        admin = await issue_key(pool, merchant.id, "secret", False, scopes=["admin"])
    finally:
        await pool.close()
    data_dir = tmp_path_factory.mktemp("stateful")
    env = {"PAYGRID_WORKER_IN_PROCESS": "false", "PAYGRID_DB_POOL_SIZE": "4"}
    async with serving(["serve"], stateful_database, data_dir, deadline=60, **env) as (url, _):
        yield RunningServer(url=url, secret_key=admin.secret)


def test_stateful_fuzzing_follows_links_without_server_errors(
    running_server: RunningServer,
) -> None:
    schema = schemathesis.openapi.from_url(f"{running_server.url}/openapi.json", config=CONFIG)
    headers = {"Authorization": f"Bearer {running_server.secret_key}"}
    workflow = schema.as_state_machine()
    answered: list[tuple[str, int]] = []

    class Workflow(workflow):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return {"base_url": running_server.url, "headers": headers, "timeout": 30}

        def after_call(self, response: schemathesis.Response, case: schemathesis.Case[Any]) -> None:
            answered.append(
                (f"{case.operation.method.upper()} {case.operation.path}", response.status_code)
            )

        def validate_response(
            self,
            response: schemathesis.Response,
            case: schemathesis.Case[Any],
            additional_checks: Any = None,
            **kwargs: Any,
        ) -> None:
            case.validate_response(
                response,
                additional_checks=[error_object, business_rules_only],
                transport_kwargs=kwargs or None,
            )

    Workflow.run(
        settings=settings(
            max_examples=60,
            stateful_step_count=8,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
    # The run reached real objects through the links: linked operations (those taking an
    # id in their path) were answered with success, not only 404s for random ids.
    linked_successes = {op for op, status in answered if "{" in op and 200 <= status < 300}
    assert len(linked_successes) >= 5, sorted(set(answered))
