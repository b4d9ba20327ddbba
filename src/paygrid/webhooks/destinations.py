"""The SSRF guard for webhook URLs.

Live-mode endpoints must use https and must not resolve to loopback, private, link-local or
otherwise non-public addresses, unless the host is in ``PAYGRID_WEBHOOK_ALLOWED_HOSTS``. Test
mode accepts http and local addresses, for development against a receiver on localhost.
The check runs when an endpoint is saved and again before every live delivery, because DNS
can change in between.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Collection
from urllib.parse import urlsplit

from paygrid.domain.errors import InvalidRequest


class UnsafeDestination(InvalidRequest):
    """This URL is not allowed as a webhook destination."""

    default_code = "url_not_allowed"


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast


async def check_url(url: str, *, livemode: bool, allowed_hosts: Collection[str]) -> None:
    """Raise ``UnsafeDestination`` (a 400) unless ``url`` may receive webhooks."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeDestination("The URL must be an absolute http(s) URL.", param="url")
    if parts.username or parts.password:
        raise UnsafeDestination("The URL must not contain credentials.", param="url")
    if not livemode:
        return
    if parts.scheme != "https":
        raise UnsafeDestination("Live-mode webhook endpoints must use https.", param="url")
    host = parts.hostname.lower()
    if host in allowed_hosts:
        return
    try:
        resolved = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or 443, type=socket.SOCK_STREAM
        )
    except socket.gaierror:
        raise UnsafeDestination(f"The host '{host}' does not resolve.", param="url") from None
    addresses = {info[4][0] for info in resolved}
    if not addresses or not all(_is_public(str(a)) for a in addresses):
        raise UnsafeDestination(
            f"The host '{host}' resolves to a loopback, private or link-local address.",
            param="url",
        )
