"""The demo merchant that ``make run`` creates once and shows again on every start.

API keys are stored only as hashes, so the demo's *test* keys are also kept in plain text in
``<data dir>/demo.json`` (mode 0600) — that file is the only way to show the same keys again.
Live keys are never written there.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from paygrid.db import dashboard as dashboard_db
from paygrid.db import merchants as merchants_db
from paygrid.services import dashboard_users
from paygrid.services.merchants import create_merchant

DEMO_NAME = "Demo Store"


@dataclass(frozen=True, slots=True)
class DemoMerchant:
    id: str
    secret_key: str
    publishable_key: str


async def ensure_demo_merchant(pool: asyncpg.Pool, data_dir: Path) -> DemoMerchant:
    path = data_dir / "demo.json"
    saved = _load(path)
    if saved is not None and await merchants_db.get_merchant(pool, saved.id) is not None:
        return saved
    merchant = await create_merchant(pool, DEMO_NAME)
    demo = DemoMerchant(
        merchant.id,
        merchant.key("secret", livemode=False),
        merchant.key("publishable", livemode=False),
    )
    _save(path, demo)
    return demo


def load_demo_merchant(data_dir: Path) -> DemoMerchant | None:
    """The demo merchant ``serve --demo`` created, if any (the demo store sells as it)."""
    return _load(data_dir / "demo.json")


def _load(path: Path) -> DemoMerchant | None:
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    return DemoMerchant(saved["id"], saved["secret_key"], saved["publishable_key"])


def _save(path: Path, demo: DemoMerchant) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(
            {"id": demo.id, "secret_key": demo.secret_key, "publishable_key": demo.publishable_key},
            handle,
        )


# -- the demo's dashboard user ---------------------------------------------------------------

DEMO_USER_EMAIL = "demo@paygrid.local"


async def ensure_demo_user(pool: asyncpg.Pool, data_dir: Path, merchant_id: str) -> str:
    """The demo merchant's admin dashboard user, created once; returns its password, which
    is kept in ``<data dir>/demo_dashboard.json`` (mode 0600) so it stays the same across
    restarts (and is set again if that file was lost)."""
    path = data_dir / "demo_dashboard.json"
    password = json.loads(path.read_text())["password"] if path.exists() else None
    if password is None:
        password = secrets.token_urlsafe(12)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"email": DEMO_USER_EMAIL, "password": password}, handle)
    row = await dashboard_db.user_by_email(pool, DEMO_USER_EMAIL)
    if row is None:
        await dashboard_users.create_user(
            pool, merchant_id=merchant_id, email=DEMO_USER_EMAIL, role="admin", password=password
        )
    elif not dashboard_users.password_matches(row.password_hash, password):
        await dashboard_users.set_password(pool, row.id, password)
    return str(password)
