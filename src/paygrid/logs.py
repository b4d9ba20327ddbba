"""Structured JSON logging with structlog. A last-line redaction step scrubs anything that
looks like a card number or an API/webhook secret, in case one ever slips into a field."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

_SECRET = re.compile(r"\b(sk|pk|rk)_(test|live)_[A-Za-z0-9]{8,}|\bwhsec_[A-Za-z0-9+/=]{8,}")
_DIGITS = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def _luhn(number: str) -> bool:
    digits = [int(d) for d in number if d.isdigit()]
    checksum = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        checksum += digit
    return checksum % 10 == 0


def scrub(text: str) -> str:
    text = _SECRET.sub("[REDACTED]", text)
    return _DIGITS.sub(lambda m: "[REDACTED_PAN]" if _luhn(m.group()) else m.group(), text)


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value]
    return value


# Fields paygrid itself fills with ids, numbers and constant names: scrubbing them on every
# line cost measurable CPU per request, and they cannot carry client input.
_TRUSTED_FIELDS = frozenset(
    {
        "event",
        "level",
        "timestamp",
        "request_id",
        "merchant_id",
        "key_id",
        "livemode",
        "status",
        "duration_ms",
        "method",
    }
)


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return {
        key: value if key in _TRUSTED_FIELDS else _scrub_value(value)
        for key, value in event.items()
    }


def _render_json(event: Any, **_kwargs: Any) -> str:
    return orjson.dumps(event, default=str).decode()


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time (so test capture sees log lines)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "INFO") -> None:
    """Log one JSON object per line to stderr, for structlog and the standard library."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.JSONRenderer(serializer=_render_json),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # WriteLogger writes each line and its newline in one call, so lines from several
        # worker processes sharing stderr never interleave.
        logger_factory=structlog.WriteLoggerFactory(_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact,
                structlog.processors.JSONRenderer(serializer=_render_json),
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # We log requests and webhook attempts ourselves; alembic is chatty; httpx and httpcore
    # log every outbound request, which costs the webhook worker measurable CPU. The stripe
    # SDK logs request parameters at debug level, which would include card data sent to its
    # tokenizer in test mode, so it never logs below WARNING whatever PAYGRID_LOG_LEVEL says.
    for noisy in ("uvicorn.access", "alembic", "httpx", "httpcore", "stripe"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
