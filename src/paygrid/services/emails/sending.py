"""The ``emails.send`` job: one recorded email to the SMTP server, once.

``sending`` (with the attempt counted) commits before the SMTP conversation starts, and
``sent`` after the server accepted the message. A temporary failure goes back to
``queued`` and the job retries on ``SEND_RETRY``; a permanent one, or the last retry, is
``failed``. A worker killed mid-send leaves the email ``sending`` and its job's lease runs
out; the job runs again and sends it again, with the same Message-ID. So: exactly once
when the worker died before the server accepted the message's DATA (an SMTP server keeps
nothing of a conversation cut before it answered the final ``.``), and at most one
recognisable duplicate when it died in the instant between the server's ``250`` and the
``sent`` commit, which SMTP cannot close (RFC 1047)."""

from __future__ import annotations

from typing import Any, Final

import structlog

from paygrid.db import emails as emails_db
from paygrid.dependencies import Deps
from paygrid.domain.emails import EmailAction
from paygrid.services.emails import smtp
from paygrid.worker.registry import JobContext
from paygrid.worker.retry import RetryPolicy

log = structlog.get_logger("paygrid.emails")
SEND_RETRY: Final = RetryPolicy((10.0, 60.0, 300.0, 1800.0, 7200.0))


async def job(payload: dict[str, Any], context: JobContext) -> None:
    """Send the email named in ``payload``."""
    last = context.attempt >= SEND_RETRY.max_attempts
    await send(context.deps, str(payload["email"]), last_attempt=last)


async def send(deps: Deps, email_id: str, *, last_attempt: bool) -> None:
    """Send a ``queued`` (or crashed ``sending``) email; nothing for one in another status.
    Raises on a temporary failure that is not the last attempt, so the job is retried."""
    begun = await emails_db.transition(deps.pool, email_id, EmailAction.BEGIN, deps.clock.now())
    if begun is None:
        return  # sent, failed, or never to be sent
    server = smtp.server_of(deps.settings)
    try:
        if server is None:
            raise smtp.SmtpFailed("PAYGRID_SMTP_URL is not set", permanent=False)
        await smtp.deliver(server, smtp.message_of(begun, deps.clock.now()))
    except smtp.SmtpFailed as error:
        final = error.permanent or last_attempt
        action = EmailAction.FAIL if final else EmailAction.DEFER
        reason = str(error)[:500]
        await emails_db.transition(deps.pool, email_id, action, deps.clock.now(), last_error=reason)
        log.warning(
            "email.send_failed", email=email_id, attempt=begun.attempts, reason=reason, final=final
        )
        if not final:
            raise
        return
    await emails_db.transition(deps.pool, email_id, EmailAction.DELIVERED, deps.clock.now())
    log.info("email.sent", email=email_id, kind=begun.kind.value, attempt=begun.attempts)
