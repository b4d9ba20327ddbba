"""Where a URL may lead: the host classification behind the webhook SSRF guard, and the
rule for URLs a customer's browser is sent back to. Pure: no DNS, no I/O.

A host is normalised before it is judged: every IPv4 literal form a resolver accepts
(``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``) becomes the address it means, and an
IPv6 address that carries an IPv4 address (IPv4-mapped and -translated, IPv4-compatible,
NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo ``2001::/32``) is judged by the IPv4
address inside it, because that is where a packet to it ends up.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, urlsplit

from paygrid.domain.errors import InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Reach(enum.IntEnum):
    """How far a target is from the public internet; a higher value is stricter."""

    PUBLIC = 0
    INTERNAL = 1  # loopback or private: only for hosts in PAYGRID_WEBHOOK_ALLOWED_HOSTS
    FORBIDDEN = 2  # link-local, metadata, unspecified, multicast, reserved: never


@dataclass(frozen=True, slots=True)
class Verdict:
    reach: Reach
    reason: str  # what the target is, for the error message


def _nets(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# Cloud metadata services (AWS/GCP/Azure/OpenStack, AWS ECS task metadata, AWS IMDS over
# IPv6, Alibaba Cloud): refused whatever range they sit in.
METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
METADATA_NAMES: Final = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_FORBIDDEN_V4: Final = (
    (_nets("0.0.0.0/8"), "an unspecified address"),
    (_nets("169.254.0.0/16"), "a link-local address"),
    (_nets("224.0.0.0/4"), "a multicast address"),
    (_nets("255.255.255.255/32", "240.0.0.0/4"), "a reserved address"),
    (
        _nets(
            "192.0.0.0/24",  # IETF protocol assignments
            "192.0.2.0/24",  # documentation
            "198.51.100.0/24",
            "203.0.113.0/24",
            "198.18.0.0/15",  # benchmarking
            "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        ),
        "a reserved address",
    ),
)
_INTERNAL_V4: Final = (
    (_nets("127.0.0.0/8"), "a loopback address"),
    (_nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"), "a private address"),
    (_nets("100.64.0.0/10"), "a shared (carrier-grade NAT) address"),
)
_FORBIDDEN_V6: Final = (
    (_nets("::/128"), "an unspecified address"),
    (_nets("fe80::/10"), "a link-local address"),
    (_nets("fec0::/10"), "a site-local address"),
    (_nets("ff00::/8"), "a multicast address"),
    (
        _nets(
            "100::/64",  # discard
            "2001::/23",  # IETF protocol assignments (Teredo is unwrapped before this)
            "2001:db8::/32",  # documentation
            "3fff::/20",
            "64:ff9b:1::/48",  # local-use NAT64: where the IPv4 address sits is not fixed
            "5f00::/16",  # SRv6 SIDs
        ),
        "a reserved address",
    ),
)
_INTERNAL_V6: Final = (
    (_nets("::1/128"), "a loopback address"),
    (_nets("fc00::/7"), "a private (unique local) address"),
)
_GLOBAL_UNICAST_V6: Final = ipaddress.ip_network("2000::/3")
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_TRANSLATED: Final = ipaddress.ip_network("::ffff:0:0:0/96")
_COMPATIBLE: Final = ipaddress.ip_network("::/96")

_LABEL: Final = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMBER: Final = re.compile(r"[0-9]+|0x[0-9a-f]*")


def classify_address(ip: IPAddress) -> Verdict:
    """How reachable ``ip`` is, judging an IPv6 address by the IPv4 address it carries."""
    if ip in METADATA_ADDRESSES:
        return Verdict(Reach.FORBIDDEN, "a cloud metadata address")
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return Verdict(Reach.FORBIDDEN, "a scoped (link-local) address")
        inner = embedded_ipv4(ip)
        if inner:
            return max((classify_address(v4) for v4 in inner), key=lambda v: v.reach)
        return _by_table(ip, _FORBIDDEN_V6, _INTERNAL_V6)
    return _by_table(ip, _FORBIDDEN_V4, _INTERNAL_V4)


def _by_table(
    ip: IPAddress,
    forbidden: tuple[tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], str], ...],
    internal: tuple[tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], str], ...],
) -> Verdict:
    for reach, table in ((Reach.FORBIDDEN, forbidden), (Reach.INTERNAL, internal)):
        for networks, reason in table:
            if any(ip in net for net in networks):
                return Verdict(reach, reason)
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _GLOBAL_UNICAST_V6:
        return Verdict(Reach.FORBIDDEN, "a reserved address")
    return Verdict(Reach.PUBLIC, "a public address")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address leads to (both ends of a Teredo address)."""
    low = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if ip in _TRANSLATED or ip in _NAT64:
        return (low,)
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo
    if ip in _COMPATIBLE and int(ip) > 1:  # :: and ::1 are not IPv4-compatible
        return (low,)
    return ()


def parse_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """An IPv4 address in any form ``inet_aton`` (and the WHATWG URL standard) accepts: one
    to four parts, each decimal, octal (leading 0) or hex (0x); the last part fills the
    remaining bytes. ``None`` when ``text`` is not such a literal."""
    parts = text.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        number = _ipv4_part(part)
        if number is None:
            return None
        numbers.append(number)
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_part(part: str) -> int | None:
    if part[:2].lower() == "0x":
        digits = part[2:]
        if not digits:
            return 0
        return int(digits, 16) if re.fullmatch(r"[0-9a-fA-F]+", digits) else None
    if not part.isascii() or not part.isdigit():
        return None
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8) if re.fullmatch(r"[0-7]+", part) else None
    return int(part)


def normalise_host(host: str) -> IPAddress | str | None:
    """An IP address for an IP literal in any form, else the host name in lower case without
    a trailing dot (IDNA-encoded); ``None`` when ``host`` is neither."""
    text = host.strip("[]") if host.startswith("[") else host
    if not text or any(c in text for c in "%\\/@ ") or not text.isprintable():
        return None
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    try:
        name = text.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    name = name.removesuffix(".")
    last = name.rsplit(".", 1)[-1]
    if _NUMBER.fullmatch(last):  # a host ending in a number is an IPv4 address or nothing
        return parse_ipv4(name)
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        return None
    return name


def classify_name(name: str) -> Verdict | None:
    """A verdict for names that need no DNS (metadata services, ``localhost``), else None."""
    if name in METADATA_NAMES:
        return Verdict(Reach.FORBIDDEN, "a cloud metadata host")
    if name == "localhost" or name.endswith(".localhost"):
        return Verdict(Reach.INTERNAL, "a loopback host")
    return None


def host_key(host: str) -> str:
    """How a host is compared with the allow-list: normalised, IP addresses in their
    canonical form, so ``2130706433`` and ``127.0.0.1`` are the same entry."""
    normal = normalise_host(host.strip())
    return host.strip().lower() if normal is None else str(normal)


def split_url(url: str) -> SplitResult | None:
    """``url``'s parts, or ``None`` when it does not parse: a malformed IPv6 literal
    (``urlsplit`` raises) or port (``port`` raises)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return None
    return parts


# -- where a customer may be sent back to ---------------------------------------------------


def check_redirect_url(url: str, *, livemode: bool, param: str) -> None:
    """The rule for ``return_url``, ``success_url`` and ``cancel_url``: an absolute https URL
    (http too in test mode) with a host and no credentials. Anything else (``javascript:``,
    ``data:``, a relative or protocol-relative URL) would let the redirect run script or go
    somewhere the merchant did not mean."""
    allowed = ("https",) if livemode else ("https", "http")
    refused = InvalidRequest(
        f"{param} must be an absolute {' or '.join(allowed)} URL with a host and no credentials.",
        param=param,
    )
    parts = split_url(url)
    if (
        parts is None
        or parts.hostname is None
        or parts.scheme not in allowed
        or any(c in url for c in "\\\t\r\n ")
        or not url.isprintable()
        or parts.username is not None
    ):
        raise refused
