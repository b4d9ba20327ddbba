"""What typed rows share."""

from __future__ import annotations

from dataclasses import fields
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def column_values(row: DataclassInstance) -> dict[str, Any]:
    """A typed row's columns by name, to insert it: enums as their stored text."""
    values: dict[str, Any] = {}
    for column in fields(row):
        value = getattr(row, column.name)
        values[column.name] = value.value if isinstance(value, StrEnum) else value
    return values
