"""Which failures mean "the database cannot be reached" (503 and one log line per outage)
and which are bugs (500, logged every time)."""

from __future__ import annotations

import asyncpg
import pytest

from paygrid.api.errors import unexpected_error
from paygrid.db.engine import unreachable


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        FileNotFoundError(2, "No such file or directory"),  # the Unix socket is gone
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.InterfaceError("cannot perform operation: connection is closed"),
    ],
)
def test_outages_are_unreachable_and_answer_503(error: Exception) -> None:
    assert unreachable(error)
    answer = unexpected_error(error)
    assert answer.status_code == 503 and answer.code == "service_unavailable"
    assert answer.extra["retry_after"] > 0


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError(2, "No such file or directory", "templates/missing.html"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        asyncpg.UniqueViolationError("duplicate key value violates unique constraint"),
        ValueError("a bug"),
        TimeoutError(),
    ],
)
def test_bugs_are_not_outages_and_answer_500(error: Exception) -> None:
    assert not unreachable(error)
    answer = unexpected_error(error)
    assert answer.status_code == 500 and answer.code == "api_error"
