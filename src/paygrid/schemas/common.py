"""Shared pieces of the API contract: metadata, lists, errors."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, Protocol, TypeVar

import email_validator
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictInt,
    model_validator,
)
from pydantic_core import PydanticCustomError

from paygrid.domain.card_numbers import contains_card_number
from paygrid.money import CURRENCIES

MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500

# Pydantic error types that ``paygrid.api.errors`` turns into their own codes; their context
# carries the parameter.
TEXT_UNSTORABLE = "text_unstorable"
CARD_NUMBER_IN_TEXT = "card_number_in_text"
_CARD_NUMBER_MESSAGE = (
    "{what} contains what looks like a payment card number; paygrid never stores card "
    "numbers, so send the card through a payment method instead"
)


def _card_number_error(what: str, param: str | None = None) -> PydanticCustomError:
    context: dict[str, Any] = {"what": what, "param": param}
    return PydanticCustomError(CARD_NUMBER_IN_TEXT, _CARD_NUMBER_MESSAGE, context)


def _no_card_number(value: str) -> str:
    if contains_card_number(value):
        raise _card_number_error("the text")
    return value


# Free text a person types (names, descriptions, emails, phone numbers): refused when it
# holds a card number, so that none is ever stored where the card vault's rules do not reach.
FreeText = Annotated[str, AfterValidator(_no_card_number)]
# Like Stripe, paygrid checks an email's syntax, not where mail to it would go: addresses at
# special-use names (``shop.test``, ``host.local``), which merchants use in test mode, are
# accepted too. email-validator refuses them by default even without a deliverability check.
email_validator.SPECIAL_USE_DOMAIN_NAMES.clear()
Email = Annotated[EmailStr, AfterValidator(_no_card_number)]


def _check_metadata(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_METADATA_KEYS:
        raise ValueError(f"metadata can have at most {MAX_METADATA_KEYS} keys")
    for key, item in value.items():
        if not 1 <= len(key) <= MAX_METADATA_KEY_LENGTH:
            raise ValueError("metadata keys must be 1 to 40 characters")
        if len(item) > MAX_METADATA_VALUE_LENGTH:
            raise ValueError(f"metadata value for '{key}' is longer than 500 characters")
        if contains_card_number(key):
            raise _card_number_error("a metadata key", "metadata")
        if contains_card_number(item):
            raise _card_number_error(f"the value of '{key}'", f"metadata[{key}]")
    return value


Metadata = Annotated[
    dict[str, str],
    AfterValidator(_check_metadata),
    Field(
        description="Up to 50 keys (at most 40 characters each) with string values of at "
        "most 500 characters.",
        examples=[{"order_number": "1043"}],
        # What _check_metadata enforces, stated in the OpenAPI document (card numbers in
        # keys or values cannot be: they are refused with card_number_in_text).
        json_schema_extra={
            "maxProperties": MAX_METADATA_KEYS,
            "propertyNames": {"minLength": 1, "maxLength": MAX_METADATA_KEY_LENGTH},
            "additionalProperties": {"type": "string", "maxLength": MAX_METADATA_VALUE_LENGTH},
        },
    ),
]

# The OpenAPI description of a currency parameter: the registry's codes, upper or lower case
# (money.get_currency compares without case; the API always answers in upper case).
CURRENCY_SCHEMA: dict[str, Any] = {
    "enum": [*sorted(CURRENCIES), *sorted(code.lower() for code in CURRENCIES)]
}

# The OpenAPI description of a URL the server requires to be absolute http(s): a scheme, a host,
# an optional port, then printable ASCII without backslashes (the server refuses other schemes,
# credentials, whitespace, backslashes and unprintable characters; https-only in live mode and
# a webhook's public host are its business rules). No `format: uri`: the server takes URLs that
# RFC 3986 does not (`https://shop.example/{id}`), and the document must not refuse them.
HTTP_URL_SCHEMA: dict[str, Any] = {
    "pattern": r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,4})?([/?#][!-\[\]-~]*)?$",
}


def not_both(first: str, second: str) -> dict[str, Any]:
    """A JSON Schema clause for fields that cannot both be given (a null counts as absent)."""
    return {
        "not": {
            "required": [first, second],
            "properties": {first: {"not": {"type": "null"}}, second: {"not": {"type": "null"}}},
        }
    }


# The latest Unix time a ``created`` filter may name: 9999-12-31T23:59:59Z is the last second
# a datetime holds, and an inclusive upper bound looks one second past the one it names.
LATEST_UNIX_TIME = 253_402_300_798

PositiveAmount = Annotated[
    StrictInt,
    Field(
        gt=0, description="An integer in the currency's minor unit (e.g. cents).", examples=[2000]
    ),
]


# C0 controls, DEL and C1 controls: invisible, break logs and CSV exports, and NUL cannot be
# stored at all. Tab, line feed and carriage return are ordinary text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _texts(value: Any, param: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a decoded JSON value with the parameter it sits in (``a[b][0]``);
    an object key is reported as its object."""
    if isinstance(value, str):
        yield param, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield param, str(key)
            yield from _texts(item, f"{param}[{key}]" if param else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _texts(item, f"{param}[{index}]")


def _all_storable(value: Any) -> bool:
    """Whether every string in a decoded JSON value (object keys too) may be stored: the
    quick pass of every request, one check of all its text at once (a character is as
    unstorable joined to others as alone); ``_texts`` names the parameter on failure."""
    strings: list[str] = []
    _strings(value, strings)
    return unstorable("".join(strings)) is None


def _strings(value: Any, into: list[str]) -> None:
    if isinstance(value, str):
        into.append(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            into.append(str(key))
            _strings(item, into)
    elif isinstance(value, list):
        for item in value:
            _strings(item, into)


def unstorable(text: str) -> str | None:
    """Why ``text`` may not be stored, if it may not."""
    if _CONTROL.search(text):
        return "text may not contain control characters (U+0000-U+001F except tab, line feed "
        "and carriage return, U+007F-U+009F)"
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return "text may not contain lone UTF-16 surrogates"
    return None


class RequestModel(BaseModel):
    """Request bodies reject unknown fields and coerce nothing."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        # JSON escapes can spell NUL, other control characters and lone surrogates, which
        # PostgreSQL text cannot hold or which corrupt what shows them: refuse them before
        # they reach a query, naming the parameter (nested models report from their root).
        if _all_storable(data):
            return data
        for param, text in _texts(data):
            reason = unstorable(text)
            if reason is not None:
                raise PydanticCustomError(
                    TEXT_UNSTORABLE, "{reason}", {"reason": reason, "param": param}
                )
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
    doc_url: str = Field(
        examples=["http://127.0.0.1:8000/docs/api#parameter_invalid"],
        description="The code's entry in the integration guide this server serves.",
    )
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
