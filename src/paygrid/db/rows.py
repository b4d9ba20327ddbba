"""What typed rows share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from enum import StrEnum
from operator import attrgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# A row type's column names and a getter of all its values at once, read from
# ``dataclasses.fields`` once per type rather than on every insert.
_SHAPES: dict[type, tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]] = {}


def _shape(row_type: type) -> tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]:
    shape = _SHAPES.get(row_type)
    if shape is None:
        names = tuple(column.name for column in fields(row_type))
        getter = attrgetter(*names)
        shape = (names, getter if len(names) > 1 else lambda row: (getter(row),))
        _SHAPES[row_type] = shape
    return shape


def column_names(row: DataclassInstance) -> tuple[str, ...]:
    """A typed row's column names, in field order."""
    return _shape(type(row))[0]


def row_values(row: DataclassInstance) -> list[Any]:
    """A typed row's values in ``column_names`` order, enums as their stored text."""
    return [
        value.value if isinstance(value, StrEnum) else value for value in _shape(type(row))[1](row)
    ]


def column_values(row: DataclassInstance) -> dict[str, Any]:
    """A typed row's columns by name, to insert it: enums as their stored text."""
    return dict(zip(column_names(row), row_values(row), strict=True))
