"""The webhook SSRF guard and the redirect-URL rule: host normalisation, address
classification, and a table of hostile URLs that must all be refused."""

from __future__ import annotations

import ipaddress

import pytest

from paygrid.domain.errors import InvalidRequest
from paygrid.domain.url_safety import (
    Reach,
    check_redirect_url,
    classify_address,
    host_key,
    normalise_host,
    parse_ipv4,
)
from paygrid.webhooks.destinations import AddressNotAllowed, UnsafeDestination, check_url


class FakeResolver:
    """DNS with fixed answers; unknown names do not resolve."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(f"{host} does not resolve")
        return self.answers[host]


DNS = FakeResolver(
    {
        "hooks.example.com": ["93.184.215.14"],
        "v6.example.com": ["2606:4700::6810:85e5"],
        "rebind.example.test": ["127.0.0.1"],
        "private.example.test": ["10.1.2.3"],
        "mixed.example.test": ["93.184.215.14", "10.0.0.1"],
        "meta.example.test": ["169.254.169.254"],
        "nat64meta.example.test": ["64:ff9b::a9fe:a9fe"],
        "mapped.example.test": ["::ffff:127.0.0.1"],
        "internal.corp": ["10.9.8.7"],
        "localhost": ["127.0.0.1"],
    }
)

# Teredo addresses carry the client's IPv4 address inverted: 127.0.0.1 and 192.0.2.45.
TEREDO_LOOPBACK = "2001:0:4136:e378:8000:63bf:80ff:fffe"
TEREDO_DOCUMENTATION = "2001:0:4136:e378:8000:63bf:3fff:fdd2"

HOSTILE = [
    # cloud metadata, in every spelling
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://0251.0376.0251.0376/",
    "http://169.254.43518/",
    "http://169.16689662/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b::169.254.169.254]/",
    "http://[2002:a9fe:a9fe::1]/",
    "http://[::169.254.169.254]/",
    "http://[::ffff:0:a9fe:a9fe]/",
    "http://[fd00:ec2::254]/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.google.internal./",
    "http://metadata/",
    "http://metadata.goog/",
    "http://100.100.100.200/latest/meta-data/",
    "http://169.254.170.2/v2/credentials",
    "http://meta.example.test/",
    "http://nat64meta.example.test/",
    # link-local, unspecified, multicast, reserved, site-local
    "http://169.254.1.1/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://192.0.2.1/",
    "http://[2001:db8::1]/",
    "http://[fec0::1]/",
    "http://[fec0::a9fe:a9fe]/",
    f"http://[{TEREDO_DOCUMENTATION}]/",
    # loopback, in every spelling
    "http://127.0.0.1:8000/hooks",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://0x7f.0x0.0x0.0x1/",
    "http://127.1/",
    "http://0x7f000001/",
    "http://017700000001/",
    "http://127.0.0.1./",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[0:0:0:0:0:ffff:7f00:1]/",
    "http://[::ffff:0:127.0.0.1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[2002:7f00:1::]/",
    "http://[::127.0.0.2]/",
    f"http://[{TEREDO_LOOPBACK}]/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "http://rebind.example.test/",
    "http://mapped.example.test/",
    # private ranges
    "http://10.0.0.1/",
    "http://10.1/",
    "http://167772161/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://0300.0250.0.1/",
    "http://3232235521/",
    "http://100.64.0.1/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://private.example.test/",
    "http://mixed.example.test/",
    # not a host, or not http
    "http://1.2.3.256/",
    "http://4294967296/",
    "http://1.2.3.4.5/",
    "http://%31%32%37.0.0.1/",
    "http://user:pass@hooks.example.com/",
    "http://hooks.example.com@127.0.0.1/",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://hooks.example.com/",
    "/relative/path",
    "http://hooks.example.com:99999/",
    "http://[::1/",
    "http://[not-an-address]/",
]


@pytest.mark.parametrize("url", HOSTILE)
@pytest.mark.parametrize("livemode", [False, True])
async def test_hostile_urls_are_refused_in_both_modes(url: str, livemode: bool) -> None:
    assert len(HOSTILE) >= 40
    live_url = url.replace("http://", "https://", 1) if livemode else url
    with pytest.raises(UnsafeDestination) as refused:
        await check_url(live_url, livemode=livemode, allowed_hosts=(), resolver=DNS)
    assert (refused.value.code, refused.value.param) == ("url_not_allowed", "url")


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/paygrid",
        "https://v6.example.com/x",
        "https://93.184.215.14/x",
        "https://[2606:4700::1]/x",
        "https://[2002:5db8:d70e::1]/x",  # 6to4 of a public address
    ],
)
async def test_public_destinations_are_accepted(url: str) -> None:
    await check_url(url, livemode=True, allowed_hosts=(), resolver=DNS)


async def test_live_mode_needs_https_and_a_resolving_host() -> None:
    with pytest.raises(UnsafeDestination, match="https"):
        await check_url("http://hooks.example.com/", livemode=True, allowed_hosts=(), resolver=DNS)
    with pytest.raises(UnsafeDestination, match="does not resolve"):
        await check_url("https://nowhere.example/", livemode=True, allowed_hosts=(), resolver=DNS)
    # Test mode accepts a name that does not resolve yet: every delivery checks it again.
    await check_url("http://nowhere.example/", livemode=False, allowed_hosts=(), resolver=DNS)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8000/hooks", "127.0.0.1"),
        ("http://2130706433/", "127.0.0.1"),  # the same address, however it is written
        ("http://0x7f.1/", "2130706433"),
        ("http://localhost:4242/", "localhost"),
        ("http://[::1]/", "[::1]"),
        ("https://internal.corp/", "internal.corp"),
        ("http://[fd12:3456::1]/", "fd12:3456::1"),
    ],
)
async def test_the_allow_list_admits_loopback_and_private_hosts(url: str, allowed: str) -> None:
    await check_url(url, livemode=False, allowed_hosts={allowed}, resolver=DNS)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://169.254.169.254/", "169.254.169.254"),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254"),
        ("http://metadata.google.internal/", "metadata.google.internal"),
        ("http://meta.example.test/", "meta.example.test"),
        ("http://0.0.0.0/", "0.0.0.0"),  # noqa: S104 - a URL under test, not a bind
        ("http://[fec0::1]/", "[fec0::1]"),
        ("http://rebind.example.test/", "127.0.0.1"),  # listing an address admits no name
    ],
)
async def test_the_allow_list_never_admits_forbidden_targets(url: str, allowed: str) -> None:
    with pytest.raises(UnsafeDestination):
        await check_url(url, livemode=False, allowed_hosts={allowed}, resolver=DNS)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1.2", "10.1.0.2"),
        ("0x7F.0X0.0.1", "127.0.0.1"),
        ("0", "0.0.0.0"),  # noqa: S104 - an address under test, not a bind
        ("1.2.3.4.", "1.2.3.4"),
    ],
)
def test_every_ipv4_literal_form_is_normalised(text: str, address: str) -> None:
    assert parse_ipv4(text) == ipaddress.IPv4Address(address)
    assert host_key(text) == address


@pytest.mark.parametrize("text", ["1.2.3.256", "256.1", "4294967296", "08.1.1.1", "1.2.3.4.5"])
def test_invalid_ipv4_literals_are_not_hosts(text: str) -> None:
    assert parse_ipv4(text) is None
    assert normalise_host(text) is None


@pytest.mark.parametrize(
    ("address", "reach"),
    [
        ("8.8.8.8", Reach.PUBLIC),
        ("127.0.0.1", Reach.INTERNAL),
        ("::ffff:10.0.0.1", Reach.INTERNAL),
        ("64:ff9b::808:808", Reach.PUBLIC),
        ("64:ff9b::a9fe:a9fe", Reach.FORBIDDEN),
        ("2002:a9fe:a9fe::", Reach.FORBIDDEN),
        (TEREDO_LOOPBACK, Reach.INTERNAL),
        ("fec0::1", Reach.FORBIDDEN),
        ("100::1", Reach.FORBIDDEN),
        ("4000::1", Reach.FORBIDDEN),
    ],
)
def test_classification(address: str, reach: Reach) -> None:
    assert classify_address(ipaddress.ip_address(address)).reach is reach


def test_address_not_allowed_is_an_os_error_for_aiohttp() -> None:
    assert issubclass(AddressNotAllowed, OSError)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "/thanks",
        "//evil.example/thanks",
        "thanks.html",
        "https:///nohost",
        "https://user:pw@shop.example/done",
        "https://shop.example\\@evil.example/",
        "vbscript:msgbox(1)",
        " https://shop.example/done",
        "https://[::1/done",
        "https://shop.example:99999/done",
    ],
)
@pytest.mark.parametrize("livemode", [False, True])
def test_redirect_urls_must_be_absolute_web_urls(url: str, livemode: bool) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_redirect_url(url, livemode=livemode, param="return_url")
    assert refused.value.param == "return_url"


def test_redirect_urls_take_http_in_test_mode_only() -> None:
    check_redirect_url("https://shop.example/done?x=1", livemode=True, param="return_url")
    check_redirect_url("http://localhost:3000/done", livemode=False, param="return_url")
    with pytest.raises(InvalidRequest):
        check_redirect_url("http://shop.example/done", livemode=True, param="return_url")
