"""Every ``/v1`` operation of the app, for every role and a custom-scoped key (issue 18 §2):
403 ``insufficient_permissions`` exactly where the scope table in ``docs/scopes.md`` says
so, and no 403 anywhere else. The operations come from the app's route table, so a new route
cannot be missed: it fails here until the table lists it."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi.routing import iter_route_contexts

from paygrid.app import create_app
from paygrid.config import Settings
from paygrid.domain import scopes
from paygrid.services.merchants import NewMerchant, issue_key
from tests.conftest import auth

SCOPE_TABLE = Path(__file__).resolve().parents[2] / "docs" / "scopes.md"
_ROW = re.compile(
    r"^\| `(GET|POST|DELETE|PUT|PATCH)` \| `(/v1/[^`]*)` \| (?:`([a-z_]+:[a-z]+)`|none) \|"
)
_READ_ONLY = frozenset({"HEAD", "OPTIONS"})  # answered like GET; not separate operations

Operation = tuple[str, str]  # (method, path template)

KEYS: dict[str, frozenset[str]] = {
    **scopes.ROLES,
    "custom": frozenset({"customers:write", "payments:read", "webhooks:read"}),
    "standard": scopes.STANDARD,
}


def documented() -> dict[Operation, str | None]:
    table: dict[Operation, str | None] = {}
    for line in SCOPE_TABLE.read_text().splitlines():
        match = _ROW.match(line)
        if match is not None:
            method, path, scope = match.groups()
            assert (method, path) not in table, f"{method} {path} is listed twice"
            table[(method, path)] = scope
    return table


def operations() -> list[Operation]:
    app = create_app(Settings())
    found = {
        (method, route.path)
        for route in iter_route_contexts(app.routes)
        if route.path is not None and route.path.startswith("/v1/")
        for method in (getattr(route, "methods", None) or ())
        if method not in _READ_ONLY
    }
    return sorted(found)


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "xx_01missing", path)


def test_the_table_lists_every_operation_and_matches_required_scope() -> None:
    table = documented()
    routes = operations()
    assert len(routes) > 40  # the route table was read
    assert sorted(set(routes) - set(table)) == [], "operations missing from docs/scopes.md"
    assert sorted(set(table) - set(routes)) == [], "docs/scopes.md lists operations that are gone"
    disagree = [
        (method, path, scope, scopes.required_scope(method, concrete(path)))
        for (method, path), scope in table.items()
        if scopes.required_scope(method, concrete(path)) != scope
    ]
    assert disagree == []


async def _send(client: httpx.AsyncClient, key: str, method: str, path: str) -> httpx.Response:
    if method in ("POST", "PUT", "PATCH"):
        return await client.request(method, concrete(path), headers=auth(key), json={})
    return await client.request(method, concrete(path), headers=auth(key))


@pytest.mark.parametrize("key_name", sorted(KEYS))
async def test_every_operation_refuses_exactly_what_the_table_says(
    client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool, key_name: str
) -> None:
    granted = KEYS[key_name]
    stored = sorted(granted) if key_name != "standard" else None
    key = (await issue_key(pool, merchant.id, "secret", False, scopes=stored)).secret
    wrong: list[tuple[str, str, str | None, int, str]] = []
    for (method, path), scope in sorted(documented().items()):
        response = await _send(client, key, method, path)
        if scope is not None and scope not in granted:
            error = response.json().get("error", {}) if response.status_code == 403 else {}
            if (error.get("code"), error.get("missing_scope")) != (
                "insufficient_permissions",
                scope,
            ):
                wrong.append((method, path, scope, response.status_code, response.text[:200]))
        elif response.status_code == 403:
            wrong.append((method, path, scope, response.status_code, response.text[:200]))
    assert wrong == [], f"{key_name} key: answers that disagree with docs/scopes.md"
