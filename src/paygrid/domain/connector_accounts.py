"""Connector account states: routing sends new payments only to ``enabled`` accounts; a
``disabled`` one still captures and refunds the payments it already holds."""

from __future__ import annotations

from enum import StrEnum


class ConnectorAccountStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"
