"""The one-year rule of a price's recurrence is the same in the pydantic model (what the
server enforces) and in the JSON Schema the OpenAPI document publishes (what clients and the
fuzzers generate from), for every interval and count around the limits."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from paygrid.domain.catalog import MAX_INTERVAL_COUNT, RecurringInterval, interval_count_error
from paygrid.schemas.catalog import RecurringParams

SCHEMA: dict[str, Any] = RecurringParams.model_json_schema()


def _model_accepts(body: dict[str, Any]) -> bool:
    try:
        RecurringParams.model_validate(body)
    except ValidationError:
        return False
    return True


def _schema_accepts(body: dict[str, Any]) -> bool:
    try:
        jsonschema.validate(body, SCHEMA)
    except jsonschema.ValidationError:
        return False
    return True


@pytest.mark.parametrize("interval", list(RecurringInterval))
def test_model_and_schema_agree_on_every_count(interval: RecurringInterval) -> None:
    most = MAX_INTERVAL_COUNT[interval]
    for count in (-1, 0, 1, 2, most - 1, most, most + 1, 366, 10_000):
        body = {"interval": interval.value, "interval_count": count}
        expected = 1 <= count <= most
        assert _model_accepts(body) is expected, body
        assert _schema_accepts(body) is expected, body
        assert (interval_count_error(interval, count) is None) is expected


def test_one_year_in_every_unit() -> None:
    assert MAX_INTERVAL_COUNT == {
        RecurringInterval.DAY: 365,
        RecurringInterval.WEEK: 52,
        RecurringInterval.MONTH: 12,
        RecurringInterval.YEAR: 1,
    }
    assert _model_accepts({"interval": "month"})  # interval_count defaults to 1
    assert not _model_accepts({"interval": "fortnight", "interval_count": 1})
