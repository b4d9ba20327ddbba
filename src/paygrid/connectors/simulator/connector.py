"""The simulator connector: implements ``Connector`` and ``CardTokenizer`` on its own tables."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, assert_never

import asyncpg

from paygrid.clock import SYSTEM_CLOCK, Clock
from paygrid.config import SimulatorFailureMode
from paygrid.connectors.base import (
    AttemptResult,
    AuthorizeRequest,
    Capability,
    CardDetails,
    Decline,
    InvalidSignature,
    NoSuchCharge,
    OperationResult,
    OutcomeUnknown,
    ProviderEvent,
    ProviderUnreachable,
    SetupRequest,
    TokenizedCard,
)
from paygrid.connectors.simulator import script_store, store
from paygrid.connectors.simulator.cards import (
    MAGIC_PAYMENT_METHODS,
    Behavior,
    last4,
    validate_card,
)
from paygrid.connectors.simulator.outcomes import SCRIPTED, scripted_status
from paygrid.domain.payments import AttemptOutcome
from paygrid.domain.scripted_outcomes import ScriptedOutcome
from paygrid.ids import new_id

TOKEN_CACHE_SIZE: Final = 10_000
_BEHAVIORS: Final = frozenset(b.value for b in Behavior)
DECLINES: Final[dict[str, Decline]] = {
    "card_declined": Decline("card_declined", "Your card was declined.", "generic_decline"),
    "insufficient_funds": Decline(
        "insufficient_funds", "Your card has insufficient funds.", "insufficient_funds"
    ),
    "expired_card": Decline("expired_card", "Your card has expired.", "expired_card"),
    "incorrect_cvc": Decline(
        "incorrect_cvc", "Your card's security code is incorrect.", "incorrect_cvc"
    ),
    "processing_error": Decline(
        "processing_error",
        "An error occurred while processing your card. Try again.",
        "processing_error",
    ),
    "authentication_failed": Decline(
        "authentication_failed", "The customer failed 3-D Secure authentication."
    ),
    "authentication_required": Decline(
        "authentication_required",
        "The card needs the customer's authentication, which an off-session charge cannot "
        "give; bring the customer back to authenticate.",
        "authentication_required",
    ),
    # Declines whose code is Stripe's ``card_declined`` with a more specific decline_code;
    # like Stripe, a stolen or lost card is not named to the customer.
    **{
        code: Decline("card_declined", message, code)
        for code, message in (
            ("generic_decline", "Your card was declined."),
            ("stolen_card", "Your card was declined."),
            ("lost_card", "Your card was declined."),
            ("pickup_card", "Your card was declined."),
            ("fraudulent", "Your card was declined."),
            ("do_not_honor", "Your card was declined."),
            ("try_again_later", "Your card was declined. Try again later."),
            ("issuer_not_available", "Your card's issuer could not be reached. Try again."),
            ("invalid_account", "Your card, or the account it is connected to, is invalid."),
            ("card_not_supported", "Your card does not support this type of purchase."),
        )
    },
}


def initial_status(
    behavior: Behavior, capture: bool, *, off_session: bool = False, set_up: bool = False
) -> tuple[str, str | None]:
    """A new charge's status and decline code. Off-session, a card that needs 3-D Secure
    waits for the customer with ``authentication_required`` (never authenticated silently),
    unless it was set up for off-session use and only needs authenticating once."""
    done = "captured" if capture else "authorized"
    match behavior:
        case Behavior.SUCCEED:
            return done, None
        case Behavior.REQUIRE_3DS if off_session and set_up:
            return done, None
        case Behavior.REQUIRE_3DS | Behavior.REQUIRE_3DS_ALWAYS if off_session:
            return "requires_action", "authentication_required"
        case Behavior.REQUIRE_3DS | Behavior.REQUIRE_3DS_ALWAYS:
            return "requires_action", None
        case (
            Behavior.CARD_DECLINED
            | Behavior.INSUFFICIENT_FUNDS
            | Behavior.EXPIRED_CARD
            | Behavior.INCORRECT_CVC
            | Behavior.STOLEN_CARD
            | Behavior.LOST_CARD
        ):
            return "declined", behavior.value
        case Behavior.DECLINE_AFTER_ATTACH:
            return "declined", "card_declined"
        case _:
            assert_never(behavior)


@dataclass(frozen=True, slots=True)
class Challenge:
    """A charge's hosted 3-D Secure page, as the customer sees it."""

    charge_id: str
    last4: str | None  # None for a token that has no row (tokenizing writes nothing)
    amount: int
    currency: str
    pending: bool  # still awaiting the customer's decision


class SimulatorConnector:
    """A stateful fake provider for test mode. Charges, captures, voids and refunds are
    idempotent on the key the caller passes, exactly like a real provider."""

    name = "simulator"
    capabilities = (
        Capability.MANUAL_CAPTURE
        | Capability.PARTIAL_CAPTURE
        | Capability.VOID
        | Capability.REFUND
        | Capability.PARTIAL_REFUND
        | Capability.THREE_DS
        | Capability.SAVED_METHODS
        | Capability.CARD_TOKENIZATION
        | Capability.IDEMPOTENT_REFUNDS
    )

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        base_url: str,
        latency_ms: int = 0,
        request_latency_ms: int = 0,
        failure_mode: SimulatorFailureMode = "none",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._pool = pool
        self._base_url = base_url
        # Behaviours of tokens issued before tokens named them, once read. Bounded.
        self._behaviors: OrderedDict[str, Behavior] = OrderedDict()
        self.latency_ms = latency_ms
        self.request_latency_ms = request_latency_ms
        self.failure_mode: SimulatorFailureMode = failure_mode
        self._clock = clock  # card expiry is checked against the clock's (UTC) date

    async def tokenize_card(self, card: CardDetails) -> TokenizedCard:
        """Validate card data (Luhn, expiry, brand, CVC) and return a token for it."""
        brand, behavior = validate_card(card, self._clock.now().date())
        return await self._store_token(brand, last4(card), card.exp_month, card.exp_year, behavior)

    async def tokenize_magic(self, magic_id: str) -> TokenizedCard | None:
        """Turn a Stripe-style id such as ``pm_card_visa`` into a token, if it is one."""
        entry = MAGIC_PAYMENT_METHODS.get(magic_id)
        if entry is None:
            return None
        brand, digits, behavior = entry
        return await self._store_token(
            brand, digits, 12, self._clock.now().date().year + 3, behavior
        )

    async def _store_token(
        self, brand: str, digits: str, exp_month: int, exp_year: int, behavior: Behavior
    ) -> TokenizedCard:
        # Nothing is written: the token names its behaviour (see ``store.new_token``).
        token = store.new_token(digits, behavior.value)
        return TokenizedCard(token, brand, digits, exp_month, exp_year)

    async def _behavior_of(self, token: str) -> Behavior | None:
        named = store.facts_in(token)
        if named is not None:
            return Behavior(named[1]) if named[1] in _BEHAVIORS else None
        behavior = self._behaviors.get(token)
        if behavior is None:  # a token issued before tokens named their behaviour
            row = await store.get_token(self._pool, token)
            if row is None:
                return None
            behavior = Behavior(row["behavior"])
            self._behaviors[token] = behavior
            if len(self._behaviors) > TOKEN_CACHE_SIZE:
                self._behaviors.popitem(last=False)
        return behavior

    async def authorize(self, request: AuthorizeRequest) -> AttemptResult:
        """Charge (or hold) the tokenized card, once per ``request.idempotency_key``."""
        if self.failure_mode == "unavailable":
            raise ProviderUnreachable("simulator refused the connection")
        token = request.payment_method_token
        behavior = None if token is None else await self._behavior_of(token)
        if token is None or behavior is None:
            return AttemptResult(AttemptOutcome.DECLINED, None, decline=DECLINES["card_declined"])
        set_up = request.off_session and await store.is_set_up(self._pool, token)
        status, decline_code = initial_status(
            behavior, request.capture, off_session=request.off_session, set_up=set_up
        )
        if self.failure_mode == "processing_error":
            status, decline_code = "declined", "processing_error"
        charge_id = new_id("ch_sim")
        if self.request_latency_ms:  # the request is on its way; nothing happened yet
            await asyncio.sleep(self.request_latency_ms / 1000)
        charge, taken = await self._charge(request, token, charge_id, status, decline_code)
        if taken is not None and charge["id"] != charge_id:
            await script_store.give_back(self._pool, taken)  # a repeat: the first charge stands
        await self._respond_delay()
        if self.failure_mode == "timeout":
            raise OutcomeUnknown("simulator response timed out after the charge was made")
        return self._result(charge)

    async def _charge(
        self,
        request: AuthorizeRequest,
        token: str,
        charge_id: str,
        status: str,
        decline_code: str | None,
    ) -> tuple[store.ChargeRow, dict[str, object] | None]:
        """Make the charge; a new one takes the card's next scripted outcome (test
        helpers), if any, which decides it instead of the card. Returns the charge and the
        outcome taken."""
        if not request.setup_future_usage:  # one statement, as without a script
            return await script_store.insert_scripted_charge(
                self._pool,
                charge_id=charge_id,
                idempotency_key=request.idempotency_key,
                token=token,
                amount=request.amount,
                currency=request.currency,
                capture=request.capture,
                status=status,
                decline_code=decline_code,
                return_url=request.return_url,
                scripted=SCRIPTED[(request.capture, request.off_session)],
            )
        taken = await script_store.take_scripted(self._pool, token, request.idempotency_key)
        if taken is not None:
            status, decline_code = scripted_status(
                ScriptedOutcome(str(taken["outcome"])),
                request.capture,
                off_session=request.off_session,
            )
        charge = await store.insert_charge(
            self._pool,
            idempotency_key=request.idempotency_key,
            token=token,
            amount=request.amount,
            currency=request.currency,
            capture=request.capture,
            status=status,
            decline_code=decline_code,
            return_url=request.return_url,
            setup_future_usage=True,
            charge_id=charge_id,
        )
        return charge, taken

    async def setup_method(self, request: SetupRequest) -> AttemptResult:
        """Verify a card with a zero-amount authorization, once per idempotency key; a card
        that needs 3-D Secure waits for it. Once authorized, the card is set up: later
        off-session charges of a once-only card (3155) succeed."""
        if self.failure_mode == "unavailable":
            raise ProviderUnreachable("simulator refused the connection")
        token = request.payment_method_token
        behavior = await self._behavior_of(token)
        if behavior is None:
            return AttemptResult(AttemptOutcome.DECLINED, None, decline=DECLINES["card_declined"])
        if behavior is Behavior.DECLINE_AFTER_ATTACH:
            behavior = Behavior.SUCCEED  # attaching succeeds; only charges are declined
        status, decline_code = initial_status(behavior, capture=False)
        charge = await store.insert_charge(
            self._pool,
            idempotency_key=request.idempotency_key,
            token=token,
            amount=0,
            currency=store.VERIFICATION_CURRENCY,
            capture=False,
            status=status,
            decline_code=decline_code,
            return_url=request.return_url,
            setup_future_usage=True,
        )
        return self._result(charge)

    async def retrieve_setup(self, idempotency_key: str, reference: str) -> AttemptResult:
        """A setup's zero-amount authorization, as ``retrieve`` reads a charge."""
        return await self.retrieve(idempotency_key, reference)

    async def retrieve(self, attempt_id: str, provider_reference: str | None) -> AttemptResult:
        """The charge by its id, or by the attempt id it was made with (the idempotency key)
        when the create's answer was lost."""
        if self.failure_mode == "unavailable":
            raise ProviderUnreachable("simulator refused the connection")
        if provider_reference is not None:
            charge = await store.get_charge(self._pool, provider_reference)
        else:
            charge = await store.get_charge_by_key(self._pool, attempt_id)
        if charge is None:
            raise NoSuchCharge(f"simulator has no charge for attempt {attempt_id}")
        return self._result(charge)

    async def retrieve_refund(self, refund_reference: str) -> OperationResult:
        operation = await store.get_operation(self._pool, refund_reference)
        if operation is None:
            raise OutcomeUnknown(f"simulator has no operation {refund_reference}")
        return OperationResult(operation["succeeded"], operation["id"], operation["failure_reason"])

    def parse_webhook(
        self, raw_body: bytes, headers: Mapping[str, str], now: float
    ) -> ProviderEvent:
        """The simulator answers synchronously and sends no webhooks."""
        raise InvalidSignature("the simulator sends no webhooks")

    async def aclose(self) -> None:
        """The simulator holds no connections of its own (it shares paygrid's pool)."""

    async def script_outcomes(
        self,
        token: str,
        outcomes: list[ScriptedOutcome],
        *,
        merchant_id: str,
        payment_method_id: str,
    ) -> int:
        """Script the next charges of the card ``token`` (after those already scripted);
        returns how many are scripted now. Each charge takes the first, once."""
        return await script_store.add_script(
            self._pool,
            token,
            [outcome.value for outcome in outcomes],
            merchant_id=merchant_id,
            payment_method_id=payment_method_id,
        )

    async def scripted_outcomes(self, token: str) -> list[ScriptedOutcome]:
        """The outcomes still scripted for ``token``, in the order charges take them."""
        return [ScriptedOutcome(value) for value in await script_store.script_of(self._pool, token)]

    async def capture(
        self, provider_reference: str, amount: int, idempotency_key: str
    ) -> OperationResult:
        return await self._operation("capture", provider_reference, amount, idempotency_key)

    async def void(self, provider_reference: str, idempotency_key: str) -> OperationResult:
        return await self._operation("void", provider_reference, 0, idempotency_key)

    async def refund(
        self,
        provider_reference: str,
        amount: int,
        idempotency_key: str,
        *,
        merchant_idempotency_key: str | None = None,
    ) -> OperationResult:
        return await self._operation("refund", provider_reference, amount, idempotency_key)

    async def challenge(self, charge_id: str) -> Challenge | None:
        """The 3-D Secure page of ``charge_id``; ``None`` if there is no such charge."""
        charge = await store.get_charge(self._pool, charge_id)
        if charge is None:
            return None
        return Challenge(
            charge_id,
            await self._last4_of(charge["token_id"]),
            charge["amount"],
            charge["currency"],
            pending=charge["status"] == "requires_action",
        )

    async def _last4_of(self, token: str) -> str | None:
        named = store.facts_in(token)
        if named is not None:
            return named[0]
        row = await store.get_token(self._pool, token)  # issued before tokens named it
        return None if row is None else str(row["last4"])

    async def authenticate(self, charge_id: str, *, approved: bool) -> str | None:
        """Resolve the hosted 3-D Secure page; returns where to send the customer next."""
        charge = await store.resolve_authentication(self._pool, charge_id, approved=approved)
        if charge is None:
            existing = await store.get_charge(self._pool, charge_id)
            return None if existing is None else str(existing["return_url"])
        return str(charge["return_url"])

    async def _operation(
        self, kind: str, provider_reference: str, amount: int, idempotency_key: str
    ) -> OperationResult:
        if self.failure_mode == "unavailable":
            raise ProviderUnreachable("simulator refused the connection")
        succeeded, op_id, failure = await store.apply_operation(
            self._pool,
            idempotency_key=idempotency_key,
            charge_id=provider_reference,
            kind=kind,
            amount=amount,
        )
        await self._respond_delay()
        return OperationResult(succeeded, op_id, failure)

    async def _respond_delay(self) -> None:
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)

    def _result(self, charge: store.ChargeRow) -> AttemptResult:
        status = charge["status"]
        reference = str(charge["id"])
        match status:
            case "captured":
                return AttemptResult(AttemptOutcome.CAPTURED, reference)
            case "authorized" | "voided":
                return AttemptResult(AttemptOutcome.AUTHORIZED, reference)
            case "requires_action":
                url = f"{self._base_url}/simulator/authenticate/{reference}"
                # Off-session: the customer must come back to authenticate at ``url``.
                waiting = charge["decline_code"]
                return AttemptResult(
                    AttemptOutcome.REQUIRES_ACTION,
                    reference,
                    redirect_url=url,
                    decline=DECLINES[waiting] if waiting else None,
                )
            case "declined":
                decline = DECLINES[charge["decline_code"] or "card_declined"]
                return AttemptResult(AttemptOutcome.DECLINED, reference, decline=decline)
            case _:
                raise ValueError(f"unmapped simulator charge status {status!r}")
