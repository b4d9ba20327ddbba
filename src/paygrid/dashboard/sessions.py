"""Who is signed in: login sessions (a random token in a cookie, only its SHA-256 stored),
per-session CSRF tokens, and the failed-login limits."""

from __future__ import annotations

import hmac
import math
import time
from dataclasses import dataclass

import limits
import structlog
from fastapi import Request, Response
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from paygrid.api.dependencies import deps_of
from paygrid.api.rate_limits import client_ip
from paygrid.domain.errors import PermissionDenied
from paygrid.domain.scopes import ROLES
from paygrid.services import dashboard_sessions, dashboard_users
from paygrid.services.audit_actor import act_as_dashboard_user
from paygrid.services.context import Tenant
from paygrid.services.dashboard_users import DashboardUser

log = structlog.get_logger("paygrid.dashboard")
COOKIE = "paygrid_dashboard"
LOGIN_COOKIE = "paygrid_dashboard_login"  # the login form's CSRF token (double submit)
COOKIE_PATH = "/dashboard"


class LoginRequired(Exception):
    """No valid session: the browser is sent to the login page."""


class CsrfFailed(PermissionDenied):
    """This form is out of date or was not sent by the dashboard. Reload the page and try
    again."""

    default_code = "csrf_failed"


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in dashboard user, in the mode their session shows."""

    user_id: str
    merchant_id: str
    email: str
    role: str
    livemode: bool
    csrf_token: str
    token_hash: bytes

    @property
    def scopes(self) -> frozenset[str]:
        return ROLES[self.role]

    @property
    def tenant(self) -> Tenant:
        return Tenant(self.merchant_id, self.livemode)

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    def require(self, scope: str) -> None:
        """Refuse (403, with a message naming what is missing) unless the role holds
        ``scope``."""
        if not self.can(scope):
            raise PermissionDenied(
                f"Your role ({self.role}) does not allow this: it needs the '{scope}' "
                "permission. Ask an admin.",
                code="insufficient_permissions",
                missing_scope=scope,
            )


def secure_cookies(request: Request) -> bool:
    settings = deps_of(request).settings
    return (
        request.url.scheme == "https"
        or settings.behind_tls_proxy
        or settings.tls_certfile is not None
    )


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )


async def start_session(request: Request, response: Response, user: DashboardUser) -> None:
    """Sign ``user`` in: store the token's hash and set the cookie (test mode first)."""
    started = await dashboard_sessions.start_session(deps_of(request), user.id)
    set_cookie(request, response, COOKIE, started.token, int(started.lifetime.total_seconds()))
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)


async def end_session(request: Request, response: Response, viewer: Viewer) -> None:
    await dashboard_sessions.end_session(deps_of(request), viewer.token_hash)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)


async def current_viewer(request: Request) -> Viewer:
    """Dependency: the signed-in user (else the login page). What they change is audited as
    ``dashboard:<user id>``."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired
    digest = dashboard_sessions.token_hash(token)
    session = await dashboard_sessions.active_session(deps_of(request), digest)
    if session is None:
        raise LoginRequired
    viewer = Viewer(
        session.user_id,
        session.merchant_id,
        session.email,
        session.role,
        session.livemode,
        session.csrf_token,
        digest,
    )
    request.state.dashboard_viewer = viewer
    act_as_dashboard_user(viewer.user_id)
    structlog.contextvars.bind_contextvars(
        merchant_id=viewer.merchant_id, livemode=viewer.livemode, dashboard_user=viewer.user_id
    )
    return viewer


async def form_viewer(request: Request) -> Viewer:
    """Dependency for every POST: the signed-in user, and the form's CSRF token must match
    their session's."""
    viewer = await current_viewer(request)
    form = await request.form()
    sent = form.get("csrf_token")
    if not isinstance(sent, str) or not hmac.compare_digest(
        sent.encode(), viewer.csrf_token.encode()
    ):
        raise CsrfFailed
    return viewer


def check_login_csrf(request: Request, sent: object) -> None:
    expected = request.cookies.get(LOGIN_COOKIE)
    if not expected or not isinstance(sent, str):
        raise CsrfFailed
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfFailed


# -- failed logins ---------------------------------------------------------------------------


class LoginLimits:
    """At most N sign-in attempts per window for each email and each client IP, counted
    atomically BEFORE the password is checked, so concurrent guesses cannot all pass a
    check made before any of them was counted. A successful sign-in clears the email's
    count and gives its address hit back, so only failures add up.

    The email's count lives in the database (one statement, shared by every process); the
    address's in the API's rate-limit storage (an atomic increment in process memory, or
    Redis INCR when ``PAYGRID_REDIS_URL`` is set), like the API's per-IP limits."""

    def __init__(self, storage: Storage, limit: str, trusted_proxy: bool) -> None:
        self.limiter = FixedWindowRateLimiter(storage)
        self.item = limits.parse(limit)
        self.trusted_proxy = trusted_proxy

    def _address(self, request: Request) -> tuple[str, ...]:
        return ("dashboard_login", "ip", client_ip(request.scope, self.trusted_proxy))

    async def admit(self, request: Request, email: str) -> int | None:
        """Count this attempt; ``None`` if its password may be checked, else the seconds
        until another attempt may be made."""
        deps = deps_of(request)
        counted = await dashboard_users.count_login_attempt(
            deps.pool, email, self.item.get_expiry(), deps.clock.now()
        )
        if counted.attempts > self.item.amount:
            return max(1, math.ceil(counted.seconds_left))
        address = self._address(request)
        try:
            if not await self.limiter.hit(self.item, *address):
                stats = await self.limiter.get_window_stats(self.item, *address)
                # limits stamps its windows with time.time() itself: measure on that clock.
                return max(1, math.ceil(stats.reset_time - time.time()))  # noqa: TID251
        except StorageError:
            log.warning("dashboard.login_limit_unavailable", exc_info=True)
        return None

    async def succeeded(self, request: Request, email: str) -> None:
        await dashboard_users.clear_login_attempts(deps_of(request).pool, email)
        address = self._address(request)
        try:
            # Nothing to give back once the window has ended (the count restarted at 0).
            if (
                await self.limiter.get_window_stats(self.item, *address)
            ).remaining < self.item.amount:
                await self.limiter.hit(self.item, *address, cost=-1)
        except StorageError:
            log.warning("dashboard.login_limit_unavailable", exc_info=True)


def login_limits(request: Request) -> LoginLimits:
    """One per app, built on first use from the app's rate-limit storage."""
    state = request.app.state
    existing: LoginLimits | None = getattr(state, "dashboard_login_limits", None)
    if existing is None:
        settings = deps_of(request).settings
        existing = LoginLimits(
            state.rate_limit_storage, settings.dashboard_login_limit, settings.trusted_proxy
        )
        state.dashboard_login_limits = existing
    return existing
