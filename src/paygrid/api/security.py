"""HTTP hardening: security headers on every response, and CORS for the few routes a browser
calls with a publishable key (nothing else answers cross-origin). The HTTP edge
(``api/edge.py``) applies ``SecurityPolicy`` outermost, so the last-resort 500 and every
error response get the headers too. A header a route sets itself is kept, except
``Cache-Control`` on ``/v1``, which is always ``no-store``.
"""

from __future__ import annotations

import ipaddress

import structlog
from starlette.types import Message, Scope, Send

from paygrid.api.middleware import header, send_error
from paygrid.config import Settings
from paygrid.domain.errors import PermissionDenied

log = structlog.get_logger("paygrid.security")

# The one place framing is decided: nothing may be framed, except the hosted checkout page
# (checkout.js opens it in an <iframe> on merchants' sites) and the simulator's 3-D Secure
# page it may lead to. Those get CSP frame-ancestors from PAYGRID_CORS_ORIGINS instead.
FRAME_OPTIONS = b"DENY"
FRAMEABLE_PREFIXES = ("/checkout/", "/simulator/authenticate/")
JSON_CSP = b"default-src 'none'; frame-ancestors 'none'"
# Our own pages (the simulator's 3-D Secure page, the return page): inline styles, a form
# that posts to us and then redirects to the merchant (so no form-action), nothing else.
PAGE_CSP = (
    b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    b"base-uri 'none'; frame-ancestors 'none'"
)
# /docs (Swagger UI) and /redoc: their scripts and styles are served by paygrid itself
# (paygrid.web.docs), so nothing may load from elsewhere; the pages' own set-up is inline.
DOCS_CSP = (
    b"default-src 'none'; script-src 'self' 'unsafe-inline'; "
    b"style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
    b"worker-src blob:; base-uri 'none'; frame-ancestors 'none'"
)
# The hosted checkout page: its own script (which tokenizes at /v1/payment_methods on this
# origin) and styles; forms post to us and are then redirected (to the provider, the
# merchant), so no form-action. frame-ancestors is appended per deployment.
CHECKOUT_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors "
)
# The demo store (``serve --demo``): a merchant's page that embeds checkout.js.
DEMO_STORE_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none'; "
    b"frame-ancestors 'none'"
)
DEMO_STORE_PREFIX = "/demo/"
# The hosted invoice page (paygrid.web.hosted_invoices): the checkout page's policy, and
# never framed.
HOSTED_INVOICE_PREFIX = "/i/"
# A payment link's pages (paygrid.web.payment_links): the checkout page's policy, and never
# framed.
PAYMENT_LINK_PREFIX = "/l/"
# The customer billing portal (paygrid.web.portal): the checkout page's policy (its card
# form is the checkout's script), and never framed.
PORTAL_PREFIX = "/p/"
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
HSTS = b"max-age=63072000; includeSubDomains"

PUBLISHABLE_ROUTES = {"/v1/payment_methods": frozenset({"POST"})}
CHECKOUT_PREFIX = "/checkout/"
CHECKOUT_METHODS = frozenset({"GET", "POST"})
CORS_ALLOW_HEADERS = b"authorization, content-type, idempotency-key, x-request-id"
CORS_EXPOSE_HEADERS = b"x-request-id, retry-after"
CORS_MAX_AGE = b"600"


def cors_methods(path: str) -> frozenset[str]:
    """The methods a browser on another origin may use on ``path``; empty for most routes."""
    if path.startswith(CHECKOUT_PREFIX):
        return CHECKOUT_METHODS
    return PUBLISHABLE_ROUTES.get(path.rstrip("/") or "/", frozenset())


class CorsNotAllowed(PermissionDenied):
    """This route does not accept cross-origin requests from that origin."""

    default_code = "cors_not_allowed"


Headers = list[tuple[bytes, bytes]]


class SecurityPolicy:
    """What every response gets (``headers_for``, then ``finish``), and the answer to a CORS
    preflight (``preflight``), which comes before the request id, authentication and
    everything else."""

    def __init__(self, settings: Settings) -> None:
        self.origins = settings.allowed_cors_origins()
        self.behind_tls_proxy = settings.behind_tls_proxy
        self.frame_ancestors = frame_ancestors(self.origins)

    @staticmethod
    def is_preflight(scope: Scope) -> bool:
        return scope["method"] == "OPTIONS" and bool(
            header(scope, b"access-control-request-method")
        )

    def headers_for(self, scope: Scope) -> tuple[Headers, Headers]:
        """The security headers and the CORS headers for this request's response (read
        before ``HEAD`` is routed as ``GET``)."""
        path: str = scope["path"]
        cors = self._cors_headers(header(scope, b"origin"), path, scope["method"])
        return self._security_headers(scope, path), cors

    def finish(self, headers: Headers, extra: Headers, cors: Headers, path: str) -> Headers:
        """A response's headers with what ``headers_for`` gave added."""
        return _merge(headers, extra, cors, path, self.frame_ancestors)

    async def preflight(self, scope: Scope, send: Send) -> None:
        """Answer a CORS preflight, its response hardened like any other."""
        path: str = scope["path"]
        extra, cors = self.headers_for(scope)

        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self.finish(
                    list(message.get("headers", [])), extra, cors, path
                )
            await send(message)

        await self._preflight(scope, send_hardened, header(scope, b"origin"), path)

    def _origin_allowed(self, origin: str | None) -> bool:
        return origin is not None and ("*" in self.origins or origin.rstrip("/") in self.origins)

    def _allow_origin(self, origin: str) -> list[tuple[bytes, bytes]]:
        if "*" in self.origins:
            return [(b"access-control-allow-origin", b"*")]
        return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]

    def _cors_headers(
        self, origin: str | None, path: str, method: str
    ) -> list[tuple[bytes, bytes]]:
        if origin is None or method not in cors_methods(path) or not self._origin_allowed(origin):
            return []
        return [
            *self._allow_origin(origin),
            (b"access-control-expose-headers", CORS_EXPOSE_HEADERS),
        ]

    async def _preflight(self, scope: Scope, send: Send, origin: str | None, path: str) -> None:
        """Answer a CORS preflight here, before API-key authentication (browsers send none)."""
        requested = (header(scope, b"access-control-request-method") or "").upper()
        methods = cors_methods(path)
        if requested not in methods or not self._origin_allowed(origin):
            await send_error(scope, send, CorsNotAllowed())
            return
        assert origin is not None
        headers = [
            *self._allow_origin(origin),
            (b"access-control-allow-methods", ", ".join(sorted(methods)).encode()),
            (b"access-control-allow-headers", CORS_ALLOW_HEADERS),
            (b"access-control-max-age", CORS_MAX_AGE),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    def _security_headers(self, scope: Scope, path: str) -> list[tuple[bytes, bytes]]:
        headers = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
        if not path.startswith(FRAMEABLE_PREFIXES):
            headers.append((b"x-frame-options", FRAME_OPTIONS))
        if scope.get("scheme") == "https" or self.behind_tls_proxy:
            headers.append((b"strict-transport-security", HSTS))
        return headers


def frame_ancestors(origins: frozenset[str]) -> bytes:
    """Who may frame the checkout page: any site with ``*``, else paygrid and those origins."""
    if "*" in origins:
        return b"*"
    return " ".join(["'self'", *sorted(origins)]).encode("latin-1")


def _merge(
    headers: list[tuple[bytes, bytes]],
    extra: list[tuple[bytes, bytes]],
    cors: list[tuple[bytes, bytes]],
    path: str,
    ancestors: bytes,
) -> list[tuple[bytes, bytes]]:
    """Add the security headers a response lacks; ``/v1`` is never cached."""
    present = {name.lower() for name, _ in headers}
    if path.startswith("/v1/") or path == "/v1":
        headers = [(n, v) for n, v in headers if n.lower() != b"cache-control"]
        headers.append((b"cache-control", b"no-store"))
    if b"content-security-policy" not in present:
        headers.append((b"content-security-policy", _csp_for(headers, path, ancestors)))
    headers.extend((n, v) for n, v in extra if n not in present)
    headers.extend((n, v) for n, v in cors if n not in present or n == b"vary")
    return headers


def _csp_for(headers: list[tuple[bytes, bytes]], path: str, ancestors: bytes) -> bytes:
    content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
    if not content_type.lower().startswith(b"text/html"):
        return JSON_CSP
    if path.startswith(FRAMEABLE_PREFIXES[0]):
        return CHECKOUT_CSP + ancestors
    if path.startswith(FRAMEABLE_PREFIXES[1]):
        return PAGE_CSP.replace(b"frame-ancestors 'none'", b"frame-ancestors " + ancestors)
    if path.startswith(DEMO_STORE_PREFIX):
        return DEMO_STORE_CSP
    if path.startswith((HOSTED_INVOICE_PREFIX, PAYMENT_LINK_PREFIX, PORTAL_PREFIX)):
        return CHECKOUT_CSP + b"'none'"
    return DOCS_CSP if path in DOCS_PATHS else PAGE_CSP


# -- start-up: serving plain HTTP ------------------------------------------------------------


def plaintext_risk(settings: Settings, *, live_mode: bool) -> str | None:
    """Why serving without TLS is risky here, or ``None`` when it is fine: TLS files or a TLS
    proxy are configured, or the server binds loopback only and no live connector account is
    enabled (so no live payment can be processed)."""
    if settings.tls_certfile is not None or settings.behind_tls_proxy:
        return None
    if live_mode:
        return "live_mode_in_use"
    if not _is_loopback(settings.host):
        return "non_loopback_bind"
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_if_plaintext(settings: Settings, *, live_mode: bool) -> bool:
    """Log ``serve.plaintext_http`` (a warning) when :func:`plaintext_risk` finds a risk."""
    reason = plaintext_risk(settings, live_mode=live_mode)
    if reason is None:
        return False
    log.warning(
        "serve.plaintext_http",
        reason=reason,
        host=settings.host,
        port=settings.port,
        hint="set PAYGRID_TLS_CERTFILE and PAYGRID_TLS_KEYFILE, or PAYGRID_BEHIND_TLS_PROXY=true "
        "behind a proxy that terminates TLS",
    )
    return True
