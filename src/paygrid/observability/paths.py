"""The request path as logs and traces may carry it: without the bearer tokens some pages
carry in their path (a hosted invoice page's ``/i/{token}``, a billing portal link's
``/p/{token}``). Whoever holds such a token can open the page, so it is never written to a
log line or a span (the portal stores only its hash)."""

from __future__ import annotations

import re
from typing import Final

REDACTED: Final = "[redacted]"
_CAPABILITY_PATH: Final = re.compile(r"^/(i|p)/[^/]+")


def loggable_path(path: str) -> str:
    """``path`` with the token of a capability page's path replaced by ``REDACTED``."""
    if not path.startswith(("/i/", "/p/")):
        return path  # every API request: no regular expression
    return _CAPABILITY_PATH.sub(rf"/\1/{REDACTED}", path)
