"""Shared pieces of the API contract: metadata, lists, errors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, Protocol, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, model_validator

MAX_METADATA_KEYS = 50


def _check_metadata(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_METADATA_KEYS:
        raise ValueError(f"metadata can have at most {MAX_METADATA_KEYS} keys")
    for key, item in value.items():
        if not 1 <= len(key) <= 40:
            raise ValueError("metadata keys must be 1 to 40 characters")
        if len(item) > 500:
            raise ValueError(f"metadata value for '{key}' is longer than 500 characters")
    return value


Metadata = Annotated[
    dict[str, str],
    AfterValidator(_check_metadata),
    Field(
        description="Up to 50 keys (at most 40 characters each) with string values of at "
        "most 500 characters.",
        examples=[{"order_number": "1043"}],
    ),
]

# The latest Unix time a ``created`` filter may name: 9999-12-31T23:59:59Z is the last second
# a datetime holds, and an inclusive upper bound looks one second past the one it names.
LATEST_UNIX_TIME = 253_402_300_798

PositiveAmount = Annotated[
    StrictInt,
    Field(
        gt=0, description="An integer in the currency's minor unit (e.g. cents).", examples=[2000]
    ),
]


def _texts(value: Any) -> Iterator[str]:
    """Every string in a decoded JSON value, object keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(key)
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


class RequestModel(BaseModel):
    """Request bodies reject unknown fields and coerce nothing."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        # JSON escapes can spell NUL and lone surrogates, which PostgreSQL text cannot hold
        # (and pydantic lets through in object keys): refuse them before they reach a query.
        for text in _texts(data):
            if "\x00" in text:
                raise ValueError("text may not contain the NUL character (\\u0000)")
            if not text.isascii():
                try:
                    text.encode()
                except UnicodeEncodeError:
                    raise ValueError("text may not contain lone UTF-16 surrogates") from None
        return data


T = TypeVar("T")


class ListObject(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool
    url: str


class DeletedObject(BaseModel):
    id: str
    object: str
    deleted: Literal[True] = True


class ErrorDetail(BaseModel):
    type: Literal[
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "card_error",
        "idempotency_error",
        "rate_limit_error",
        "api_error",
    ]
    code: str = Field(examples=["parameter_invalid"])
    message: str
    param: str | None = None
    request_id: str | None = None
    decline_code: str | None = None
    payment_id: str | None = None
    retry_after: int | None = Field(default=None, description="429 only: seconds to wait.")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class RowLike(Protocol):
    """A database row as the schemas read it: an asyncpg Record, or a dict of the same
    columns built in Python before the row is written."""

    def __getitem__(self, key: str, /) -> Any: ...

    def items(self) -> Iterable[tuple[str, Any]]: ...


def unix(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())
