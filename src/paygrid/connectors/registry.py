"""Connector instances per connector account, and a circuit breaker per account.

A payment's attempts name the connector account they went to; ``None`` is the built-in
simulator every test-mode merchant has without configuring anything. Instances are built
from the account row (credentials decrypted here, never logged) and cached until the row
changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Final, Protocol

from paygrid.connectors import paystack, simulator, stripe
from paygrid.connectors.base import (
    AccountConfig,
    Capability,
    Connector,
    ConnectorError,
    NoSuchCharge,
    OutcomeUnknown,
    ProviderFacts,
    ProviderUnreachable,
)
from paygrid.connectors.simulator import SimulatorConnector
from paygrid.crypto import KeyRing
from paygrid.db import connector_accounts as accounts_db
from paygrid.db.connector_accounts import ConnectorAccountRow
from paygrid.db.executor import Executor
from paygrid.domain.circuit import CircuitBreaker, CircuitState
from paygrid.domain.errors import InvalidRequest
from paygrid.observability import tracing

BUILTIN_SIMULATOR = simulator.FACTS.name  # the breaker key and name of the built-in account


class ProviderCatalog:
    """The providers paygrid knows, each described by its own package's ``FACTS``."""

    def __init__(self, providers: Sequence[ProviderFacts]) -> None:
        self._by_name = {facts.name: facts for facts in providers}
        if len(self._by_name) != len(providers):
            raise ValueError("two providers share a name")
        if BUILTIN_SIMULATOR not in self._by_name:
            raise ValueError("the built-in simulator must be among the providers")

    def __iter__(self) -> Iterator[ProviderFacts]:
        return iter(self._by_name.values())

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        return list(self._by_name)

    def facts(self, name: str) -> ProviderFacts:
        """The facts of a provider an account names; ``LookupError`` when none is known."""
        found = self._by_name.get(name)
        if found is None:
            raise LookupError(f"unknown provider {name!r}")
        return found


# The registry's list: one entry per provider package.
BUILTIN_PROVIDERS: Final = ProviderCatalog((stripe.FACTS, paystack.FACTS, simulator.FACTS))


def capability_names(capabilities: Capability) -> list[str]:
    return [c.name.lower() for c in Capability if c in capabilities and c.name]


class CallObserver(Protocol):
    """Told about every provider call made under ``guard`` (the metrics)."""

    def connector_call(
        self, connector: str, account: str, operation: str, outcome: str, seconds: float | None
    ) -> None: ...


def outcome_of(error: BaseException | None) -> str:
    """How a provider call ended, for metrics and spans."""
    match error:
        case None:
            return "ok"
        case ProviderUnreachable():
            return "unreachable"
        case OutcomeUnknown():
            return "unknown"
        case ConnectorError():
            return "rejected"  # the provider answered, refusing the request unprocessed
        case Exception():
            return "error"
        case _:
            return "canceled"


class ConnectorRegistry:
    def __init__(
        self,
        simulator: SimulatorConnector,
        keys: KeyRing,
        *,
        simulator_factory: Callable[[str], SimulatorConnector] | None = None,
        timeout_seconds: float = 30.0,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        observer: CallObserver | None = None,
        providers: ProviderCatalog = BUILTIN_PROVIDERS,
    ) -> None:
        self.simulator = simulator
        self.providers = providers
        self._keys = keys
        # Simulator accounts get their own instance, so an account's metadata can set
        # its failure mode (for failover drills) without touching the built-in one.
        self._simulator_factory = simulator_factory
        self._timeout = timeout_seconds
        self._breaker_threshold = breaker_threshold
        self._breaker_cooldown = breaker_cooldown
        self._clock = clock
        self._cache: dict[str, tuple[datetime, Connector]] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._retired: list[Connector] = []
        self._observer = observer

    def tokenizer(self, livemode: bool) -> SimulatorConnector:
        """Raw card data is accepted only in test mode (``/v1/payment_methods`` tokenizes
        at the simulator; payments tokenize at the account routing picks)."""
        if livemode:
            raise InvalidRequest(
                "Raw card data is accepted only in test mode. In live mode, collect cards "
                "with your provider's hosted fields.",
                param="payment_method_data",
                code="card_data_not_allowed",
            )
        return self.simulator

    async def connector_for(self, conn: Executor, account_id: str | None) -> Connector:
        if account_id is None:
            return self.simulator
        row = await accounts_db.get_account_unscoped(conn, account_id)
        if row is None:
            raise LookupError(f"connector account {account_id!r} does not exist")
        return self.from_row(row)

    def from_row(self, row: ConnectorAccountRow) -> Connector:
        cached = self._cache.get(row.id)
        if cached is not None and cached[0] == row.updated_at:
            return cached[1]
        connector = self._build(row)
        if cached is not None:
            self._retired.append(cached[1])  # closed at shutdown; a call may still use it
        self._cache[row.id] = (row.updated_at, connector)
        return connector

    def config_of(self, row: ConnectorAccountRow) -> AccountConfig:
        secrets = json.loads(self._keys.decrypt(row.credentials, context=row.id))
        return AccountConfig(
            id=row.id,
            provider=row.provider,
            livemode=row.livemode,
            secret_key=secrets.get("secret_key") or "",
            webhook_secret=secrets.get("webhook_secret"),
            api_base=row.api_base,
            timeout_seconds=self._timeout,
        )

    def _build(self, row: ConnectorAccountRow) -> Connector:
        config = self.config_of(row)
        facts = self.providers.facts(config.provider)
        if facts.build is not None:
            return facts.build(config)
        if self._simulator_factory is None:
            return self.simulator
        return self._simulator_factory(row.metadata.get("failure_mode", "none"))

    def breaker(self, account_id: str | None) -> CircuitBreaker:
        key = account_id or BUILTIN_SIMULATOR
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(self._breaker_threshold, self._breaker_cooldown)
            self._breakers[key] = breaker
        return breaker

    def breaker_states(self) -> dict[str, CircuitState]:
        now = self._clock()
        return {key: breaker.state(now) for key, breaker in self._breakers.items()}

    @asynccontextmanager
    async def guard(self, account_id: str | None, operation: str = "call") -> AsyncIterator[None]:
        """Run one provider call under the account's circuit breaker: an open circuit fails
        fast as ``ProviderUnreachable`` (nothing was sent, so routing may fail over);
        unreachable or unknown outcomes count as failures, any answer as a success. The call
        is timed for the metrics and traced as a span named ``connector.<operation>``."""
        account = account_id or BUILTIN_SIMULATOR
        connector = self._provider_of(account_id)
        breaker = self.breaker(account_id)
        if not breaker.allow(self._clock()):
            self._observe(connector, account, operation, "circuit_open", None)
            raise ProviderUnreachable(f"circuit open for {account}")
        started = time.perf_counter()
        failure: BaseException | None = None
        with tracing.span(
            f"connector.{operation}",
            **{"paygrid.connector": connector, "paygrid.connector_account": account},
        ) as span:
            try:
                yield
            except BaseException as error:
                failure = error
                self._judge(breaker, error)
                raise
            else:
                breaker.record_success()
            finally:
                outcome = outcome_of(failure)
                if span is not None:
                    span.set_attribute("paygrid.outcome", outcome)
                self._observe(connector, account, operation, outcome, time.perf_counter() - started)

    def _judge(self, breaker: CircuitBreaker, error: BaseException) -> None:
        if isinstance(error, NoSuchCharge):
            breaker.record_success()  # a definite answer: the provider is up
        elif isinstance(error, ProviderUnreachable | OutcomeUnknown):
            breaker.record_failure(self._clock())
        elif isinstance(error, Exception):
            breaker.record_success()  # the provider answered (a decline, a 4xx, ...)
        else:
            # Cancelled mid-call: no verdict, but a half-open probe must not hold its slot
            # forever, or the circuit would never close again.
            breaker.release()

    def _provider_of(self, account_id: str | None) -> str:
        cached = self._cache.get(account_id) if account_id is not None else None
        return cached[1].name if cached is not None else BUILTIN_SIMULATOR

    def _observe(
        self, connector: str, account: str, operation: str, outcome: str, seconds: float | None
    ) -> None:
        if self._observer is not None:
            self._observer.connector_call(connector, account, operation, outcome, seconds)

    async def aclose(self) -> None:
        connectors = [connector for _, connector in self._cache.values()] + self._retired
        for connector in connectors:
            if connector is not self.simulator:
                await connector.aclose()
        self._cache.clear()
        self._retired.clear()


def no_connector(livemode: bool) -> InvalidRequest:
    mode = "live" if livemode else "test"
    return InvalidRequest(
        f"No enabled {mode}-mode connector account can process this payment. Create one at "
        "/v1/connector_accounts (or add its currency to an existing one).",
        code="no_connector_available",
    )
