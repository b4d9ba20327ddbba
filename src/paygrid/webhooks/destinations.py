"""The SSRF guard for webhook URLs, in both modes.

A URL's host is normalised and judged by ``paygrid.domain.url_safety``; a host name is
resolved and every address it resolves to is judged. Link-local, metadata, unspecified,
multicast and reserved targets are refused always; loopback and private ones unless the host
is in ``PAYGRID_WEBHOOK_ALLOWED_HOSTS``. Live mode also requires https. The check runs when
an endpoint is saved and again at delivery, inside the HTTP client's resolver, against the
very addresses it is about to connect to (so a name that resolves elsewhere by then, DNS
rebinding, is caught).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Collection
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult

from paygrid.dependencies import HostResolver as HostResolver  # re-exported: the SSRF guard's seam
from paygrid.domain import url_safety
from paygrid.domain.errors import InvalidRequest
from paygrid.domain.url_safety import Reach, Verdict


class UnsafeDestination(InvalidRequest):
    """This URL is not allowed as a webhook destination."""

    default_code = "url_not_allowed"


class AddressNotAllowed(OSError):
    """Raised inside the HTTP client's resolver: aiohttp wraps resolver ``OSError``s in a
    ``ClientConnectorError``, whose ``os_error`` is this."""


class SystemResolver:
    """The operating system's resolver (getaddrinfo in the event loop's thread pool)."""

    async def resolve(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


SYSTEM_RESOLVER = SystemResolver()


def check_shape(url: str, *, livemode: bool) -> str:
    """The URL's host, after the checks that need no DNS: an absolute http(s) URL (https in
    live mode), no credentials, a host that is a valid name or IP literal."""
    not_a_url = UnsafeDestination("The URL must be an absolute http(s) URL.", param="url")
    parts = url_safety.split_url(url)
    if parts is None or parts.scheme not in ("http", "https") or not url.isprintable():
        raise not_a_url
    host = parts.hostname
    if not host:
        raise not_a_url
    if parts.username is not None or parts.password is not None:
        raise UnsafeDestination("The URL must not contain credentials.", param="url")
    if livemode and parts.scheme != "https":
        raise UnsafeDestination("Live-mode webhook endpoints must use https.", param="url")
    return host


async def check_url(
    url: str,
    *,
    livemode: bool,
    allowed_hosts: Collection[str],
    resolver: HostResolver,
) -> None:
    """Raise ``UnsafeDestination`` (a 400) unless ``url`` may receive webhooks. A test-mode
    host name that does not resolve (yet) is accepted: every delivery checks it again."""
    host = check_shape(url, livemode=livemode)
    port = urlsplit(url).port or (443 if url.lower().startswith("https") else 80)
    try:
        await addresses_for(host, port, allowed_hosts=allowed_hosts, resolver=resolver)
    except AddressNotAllowed as refused:
        raise UnsafeDestination(str(refused), param="url") from None
    except OSError:
        if livemode:
            raise UnsafeDestination(f"The host '{host}' does not resolve.", param="url") from None


async def addresses_for(
    host: str, port: int, *, allowed_hosts: Collection[str], resolver: HostResolver
) -> list[str]:
    """The addresses to connect to for ``host``, each one checked; raises
    ``AddressNotAllowed`` if any is refused, or ``OSError`` if the name does not resolve."""
    target = url_safety.normalise_host(host)
    if target is None:
        raise AddressNotAllowed(f"'{host}' is not a valid host name or IP address.")
    allowed = {url_safety.host_key(h) for h in allowed_hosts}
    listed = str(target) in allowed
    if not isinstance(target, str):
        _judge(host, url_safety.classify_address(target), listed)
        return [str(target)]
    named = url_safety.classify_name(target)
    if named is not None:
        _judge(host, named, listed)
    addresses = await resolver.resolve(target, port)
    if not addresses:
        raise OSError(f"{target} has no addresses")
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise AddressNotAllowed(f"'{host}' resolved to '{address}'.") from None
        _judge(host, url_safety.classify_address(ip), listed, resolved=str(ip))
    return addresses


def _judge(host: str, verdict: Verdict, listed: bool, *, resolved: str | None = None) -> None:
    if verdict.reach is Reach.PUBLIC or (verdict.reach is Reach.INTERNAL and listed):
        return
    where = f"resolves to {resolved}, " if resolved else "is "
    hint = "" if verdict.reach is Reach.FORBIDDEN else " (see PAYGRID_WEBHOOK_ALLOWED_HOSTS)"
    raise AddressNotAllowed(f"The host '{host}' {where}{verdict.reason}{hint}.")


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver for webhook delivery: every address is checked right before the
    connection is made to it. (aiohttp skips the resolver for IP literals; delivery checks
    those itself, and a literal cannot be re-pointed.)"""

    def __init__(self, resolver: HostResolver, allowed_hosts: frozenset[str]) -> None:
        self._resolver = resolver
        self._allowed = allowed_hosts

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await addresses_for(
            host, port, allowed_hosts=self._allowed, resolver=self._resolver
        )
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        return None
