"""``paygrid serve --demo`` for the benchmarks: starting it, and paying as its demo merchant.

``serve --demo`` creates a demo merchant on first start and saves its id and test secret key
in ``<data dir>/demo.json``; a benchmark reads them from there to make payments.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from processes import VENV_BIN, ServerProcess, clean_environment, free_port

PAYMENT_BODY: dict[str, Any] = {
    "amount": 2000,
    "currency": "USD",
    "confirm": True,
    "payment_method_data": {
        "type": "card",
        "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
    },
}


# The runs drive one demo key (and one IP) far past the default limits of 100 and 200 per
# second; the limiter still runs, it just never says no.
NO_RATE_LIMITS = {
    "PAYGRID_RATE_LIMIT_PER_KEY": "1000000/second",
    "PAYGRID_RATE_LIMIT_PER_IP": "1000000/second",
    "PAYGRID_RATE_LIMIT_PAYMENTS_PER_CUSTOMER": "1000000/second",
}


def start_demo_server(name: str, data_dir: Path, **settings: str) -> ServerProcess:
    """Start ``paygrid serve --demo`` on ``data_dir`` and a free port, with a clean
    environment plus ``settings`` (PAYGRID_* variables); it logs to ``<data dir>/logs``."""
    port = free_port()
    env = clean_environment()
    env.update(PAYGRID_DATA_DIR=str(data_dir), PAYGRID_PORT=str(port), **NO_RATE_LIMITS)
    env.update(settings)
    command = [str(VENV_BIN / "paygrid"), "serve", "--demo"]
    return ServerProcess(name, command, env, port, data_dir / "logs")


def read_demo_merchant(data_dir: Path) -> tuple[str, str]:
    """(merchant id, test secret key) that ``serve --demo`` saved."""
    saved = json.loads((data_dir / "demo.json").read_text())
    return saved["id"], saved["secret_key"]


def pay(client: httpx.Client, base_url: str, secret_key: str, key_prefix: str) -> str:
    """Make one payment (``PAYMENT_BODY``, a fresh Idempotency-Key starting with
    ``key_prefix``) and return its id; raise unless it succeeded."""
    reply = client.post(
        f"{base_url}/v1/payments",
        json=PAYMENT_BODY,
        headers={
            "Authorization": f"Bearer {secret_key}",
            "Idempotency-Key": f"{key_prefix}-{uuid.uuid4().hex}",
        },
    )
    if reply.status_code != 200 or reply.json().get("status") != "succeeded":
        raise RuntimeError(f"payment failed: {reply.status_code} {reply.text[:300]}")
    payment_id: str = reply.json()["id"]
    return payment_id
