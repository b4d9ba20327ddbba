"""The SMTP side of sending: where to (``PAYGRID_SMTP_URL``), the MIME message of a
recorded email (multipart text and HTML, its fixed Message-ID), and one conversation
through ``aiosmtplib``, its failures sorted into permanent and temporary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import unquote, urlsplit

import aiosmtplib

from paygrid.config import Settings
from paygrid.db.emails import EmailRow


class SmtpFailed(Exception):
    """The server did not take the email; ``permanent`` when trying again cannot help."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class SmtpServer:
    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool
    timeout: float


def server_of(settings: Settings) -> SmtpServer | None:
    """The configured server, or None when emails are only recorded."""
    if settings.smtp_url is None:
        return None
    url = urlsplit(settings.smtp_url.get_secret_value())
    implicit_tls = url.scheme == "smtps"
    return SmtpServer(
        hostname=url.hostname or "localhost",
        port=url.port or (465 if implicit_tls else 25),
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password else None,
        use_tls=implicit_tls,
        start_tls=settings.smtp_starttls and not implicit_tls,
        timeout=settings.smtp_timeout_seconds,
    )


def message_of(email: EmailRow, now: datetime) -> EmailMessage:
    """The email as MIME: ``multipart/alternative`` with the text part first (the HTML one
    is preferred by clients that show HTML), and the Message-ID recorded with it."""
    message = EmailMessage()
    message["From"] = email.sender
    message["To"] = email.recipient
    message["Subject"] = email.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = email.message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(email.text_body)
    message.add_alternative(email.html_body, subtype="html")
    return message


async def deliver(server: SmtpServer, message: EmailMessage) -> None:
    """One SMTP conversation; raises ``SmtpFailed``."""
    try:
        await aiosmtplib.send(
            message,
            hostname=server.hostname,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.use_tls,
            start_tls=server.start_tls,
            timeout=server.timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as error:
        codes = [refused.code for refused in error.recipients]
        raise SmtpFailed(
            f"recipient refused ({', '.join(map(str, codes))})",
            permanent=all(code >= 500 for code in codes),
        ) from None
    except aiosmtplib.SMTPResponseException as error:
        permanent = error.code >= 500 and not isinstance(error, aiosmtplib.SMTPAuthenticationError)
        raise SmtpFailed(f"server answered {error.code}", permanent=permanent) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
        raise SmtpFailed(f"{type(error).__name__}", permanent=False) from None
