"""Reconciliation (issue 15 §2): the provider's charges and refunds of one connector account
compared with paygrid's payments and refunds. Pure: the discrepancy types and the matcher,
fed by bulk reads on both sides (a run's states: ``domain.reconciliation_runs``).

Objects are matched by the reference paygrid keeps for them: a charge by its authorize
attempt's ``provider_reference`` (Stripe's PaymentIntent, Paystack's transaction reference),
a refund by the provider's refund id, or, when paygrid lost the provider's answer to a refund
it made, by the refund id paygrid sent along (``named_refund``). Only ``status_mismatch`` of a
payment still waiting on the provider, a provider-side refund paygrid never saw and a refund
whose answer was lost are ``healable``: healing never invents money."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from paygrid.domain.payments import AttemptStatus, PaymentStatus


class DiscrepancyType(StrEnum):
    MISSING_AT_PROVIDER = "missing_at_provider"
    MISSING_IN_PAYGRID = "missing_in_paygrid"
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    STATUS_MISMATCH = "status_mismatch"
    REFUND_MISMATCH = "refund_mismatch"
    FEE_MISMATCH = "fee_mismatch"


class DiscrepancyStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"  # a person looked and wrote a note
    HEALED = "healed"  # a run with heal fixed it through the payment or refund service


class ChargeState(StrEnum):
    """A provider charge's state, in paygrid's words (each connector maps its own)."""

    SUCCEEDED = "succeeded"
    REVERSED = "reversed"  # it succeeded, then was refunded in full
    FAILED = "failed"
    PROCESSING = "processing"  # waiting on the provider or the bank
    REQUIRES_ACTION = "requires_action"  # waiting on the customer


class RefundState(StrEnum):
    """A provider refund's state, in paygrid's words (each connector maps its own)."""

    PENDING = "pending"  # accepted, the money has not moved yet (it may still fail)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # failed or canceled: no money moved


@dataclass(frozen=True, slots=True)
class ProviderCharge:
    reference: str  # what paygrid stores as the authorize attempt's provider_reference
    state: ChargeState
    amount: int
    currency: str  # upper case
    fee: int | None  # the fee the provider states on the charge itself, when it does
    created: int  # Unix time
    # paygrid's attempt id when the provider carries it (Stripe's PaymentIntent metadata):
    # matches an attempt that has no provider reference stored (its create timed out).
    attempt_id: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    reference: str  # the provider's refund id
    charge_reference: str
    amount: int
    currency: str
    state: RefundState
    created: int
    # What paygrid stored with a refund it made (providers with metadata): its refund id
    # and the merchant's Idempotency-Key, which a restore re-imports the refund under.
    refund_id: str | None = None
    idempotency_key: str | None = None

    @property
    def succeeded(self) -> bool:
        """Whether the refund's money left the balance (pending ones may still fail)."""
        return self.state is RefundState.SUCCEEDED


@dataclass(frozen=True, slots=True)
class PaygridCharge:
    """A payment's authorize attempt at this account."""

    payment_id: str
    attempt_id: str
    reference: str
    attempt_status: AttemptStatus
    payment_status: PaymentStatus
    amount: int  # what paygrid says was (or is to be) received
    currency: str
    fee: int | None  # the fee recorded from the settlement


@dataclass(frozen=True, slots=True)
class PaygridRefund:
    refund_id: str
    payment_id: str
    reference: str | None
    amount: int
    succeeded: bool
    pending: bool = False  # still waiting on the provider's word (it may have no reference)

    @property
    def awaiting_reference(self) -> bool:
        """Made by paygrid, its provider's answer lost: pending, without the provider's id."""
        return self.pending and self.reference is None


@dataclass(frozen=True, slots=True)
class Finding:
    type: DiscrepancyType
    object_key: str
    description: str
    payment_id: str | None = None
    refund_id: str | None = None
    provider_reference: str | None = None
    currency: str | None = None
    paygrid_value: str | None = None
    provider_value: str | None = None
    healable: bool = False


_OPEN_ATTEMPT: Final = frozenset(
    {AttemptStatus.PENDING, AttemptStatus.REQUIRES_ACTION, AttemptStatus.UNKNOWN}
)
_MONEY_IN: Final = frozenset({AttemptStatus.CAPTURED, AttemptStatus.AUTHORIZED})
_PROVIDER_PAID: Final = frozenset({ChargeState.SUCCEEDED, ChargeState.REVERSED})
_PROVIDER_WAITING: Final = frozenset({ChargeState.PROCESSING, ChargeState.REQUIRES_ACTION})


def status_disagrees(ours: PaygridCharge, theirs: ProviderCharge) -> bool:
    """Whether the provider's state contradicts the attempt's (waiting on one side while
    final on the other counts; waiting on both does not)."""
    if ours.attempt_status in _MONEY_IN:
        return theirs.state not in _PROVIDER_PAID
    if ours.attempt_status in _OPEN_ATTEMPT:
        return theirs.state not in _PROVIDER_WAITING
    return theirs.state in _PROVIDER_PAID  # declined, failed, not sent: no money may move


def heals_status(ours: PaygridCharge, theirs: ProviderCharge) -> bool:
    """Safe to heal: paygrid still waits and the provider gave a final answer, which the
    payment service's own sync applies (its state machine and events)."""
    return ours.attempt_status in _OPEN_ATTEMPT and theirs.state not in _PROVIDER_WAITING


def compare_charge(ours: PaygridCharge, theirs: ProviderCharge) -> list[Finding]:
    """The discrepancies between one matched pair (status, currency, amount, fee)."""
    if status_disagrees(ours, theirs):
        return [
            Finding(
                DiscrepancyType.STATUS_MISMATCH,
                description=f"paygrid's attempt is {ours.attempt_status}, the provider's "
                f"charge is {theirs.state}",
                paygrid_value=str(ours.payment_status),
                provider_value=str(theirs.state),
                healable=heals_status(ours, theirs),
                currency=ours.currency,
                object_key=ours.payment_id,
                payment_id=ours.payment_id,
                provider_reference=theirs.reference,
            )
        ]
    if ours.attempt_status not in _MONEY_IN:
        return []
    if ours.currency != theirs.currency:
        return [
            Finding(
                DiscrepancyType.CURRENCY_MISMATCH,
                description="the charge's currency differs",
                paygrid_value=ours.currency,
                provider_value=theirs.currency,
                object_key=ours.payment_id,
                payment_id=ours.payment_id,
                provider_reference=theirs.reference,
            )
        ]
    found = []
    if ours.amount != theirs.amount:
        found.append(
            Finding(
                DiscrepancyType.AMOUNT_MISMATCH,
                description="the charged amount differs",
                currency=ours.currency,
                paygrid_value=str(ours.amount),
                provider_value=str(theirs.amount),
                object_key=ours.payment_id,
                payment_id=ours.payment_id,
                provider_reference=theirs.reference,
            )
        )
    if ours.fee is not None and theirs.fee is not None and ours.fee != theirs.fee:
        found.append(
            Finding(
                DiscrepancyType.FEE_MISMATCH,
                description="the fee the settlement took differs from the charge's fee",
                currency=ours.currency,
                paygrid_value=str(ours.fee),
                provider_value=str(theirs.fee),
                object_key=ours.payment_id,
                payment_id=ours.payment_id,
                provider_reference=theirs.reference,
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class Comparison:
    findings: list[Finding]
    compared: int  # objects looked at, both sides
    unmatched_ours: list[PaygridCharge]  # succeeded here, absent from the provider's list
    unmatched_theirs: list[ProviderCharge]  # paid there, no attempt here (in this read)


def compare_charges(ours: Sequence[PaygridCharge], theirs: Iterable[ProviderCharge]) -> Comparison:
    """Match charges by reference; what is left over on either side is for the caller to
    confirm (a provider lookup, a wider read of paygrid) before it is reported missing."""
    by_reference = {c.reference: c for c in theirs}
    by_attempt = {c.attempt_id: c for c in by_reference.values() if c.attempt_id is not None}
    findings: list[Finding] = []
    unmatched_ours: list[PaygridCharge] = []
    seen: set[str] = set()
    for charge in ours:
        provider = by_reference.get(charge.reference) or by_attempt.get(charge.attempt_id)
        seen.add(charge.reference)
        if provider is not None:
            seen.add(provider.reference)
        if provider is None:
            if charge.attempt_status in _MONEY_IN:
                unmatched_ours.append(charge)
            continue
        findings.extend(compare_charge(charge, provider))
    unmatched_theirs = [
        c for r, c in by_reference.items() if r not in seen and c.state in _PROVIDER_PAID
    ]
    return Comparison(findings, len(ours) + len(by_reference), unmatched_ours, unmatched_theirs)


def missing_at_provider(charge: PaygridCharge) -> Finding:
    return Finding(
        DiscrepancyType.MISSING_AT_PROVIDER,
        object_key=charge.payment_id,
        description="paygrid says the payment succeeded; the provider has no such charge",
        payment_id=charge.payment_id,
        provider_reference=charge.reference,
        currency=charge.currency,
        paygrid_value=str(charge.amount),
    )


def missing_in_paygrid(charge: ProviderCharge) -> Finding:
    return Finding(
        DiscrepancyType.MISSING_IN_PAYGRID,
        object_key=f"charge:{charge.reference}",
        description="the provider has a charge for this account that paygrid never recorded",
        provider_reference=charge.reference,
        currency=charge.currency,
        provider_value=str(charge.amount),
    )


def named_refund(
    refund: ProviderRefund, payment: str | None, awaiting: Mapping[str, PaygridRefund]
) -> PaygridRefund | None:
    """The refund of paygrid's that a provider refund is when paygrid lost the provider's
    answer: named by the refund id paygrid sent along (metadata, Paystack's note), still
    pending without a reference, and of the very payment the provider refunded. ``awaiting``
    holds only the account's merchant's refunds, so a note naming another merchant's refund
    (or a refund of another payment) matches nothing."""
    if refund.refund_id is None or payment is None:
        return None
    ours = awaiting.get(refund.refund_id)
    if ours is None or not ours.awaiting_reference or ours.payment_id != payment:
        return None
    return ours


def lost_answer(ours: PaygridRefund, theirs: ProviderRefund) -> Finding:
    """A refund paygrid made whose answer was lost, found at the provider: healed by giving
    it the provider's reference and settling it as the provider says (never imported again).
    Amounts that differ are for a person."""
    same = ours.amount == theirs.amount
    return Finding(
        DiscrepancyType.REFUND_MISMATCH,
        object_key=f"refund:{theirs.reference}",
        description="paygrid's refund lost the provider's answer; the provider's refund names it"
        if same
        else f"the provider's refund names paygrid's refund but refunds {theirs.amount}, "
        f"not {ours.amount}",
        payment_id=ours.payment_id,
        refund_id=ours.refund_id,
        provider_reference=theirs.reference,
        currency=theirs.currency,
        paygrid_value="pending",
        provider_value=str(theirs.state),
        healable=same,
    )


def compare_refunds(
    ours: Sequence[PaygridRefund],
    theirs: Sequence[ProviderRefund],
    payment_of_charge: Mapping[str, str],
    window: tuple[int, int],
    also_known: frozenset[str] = frozenset(),
    awaiting: Mapping[str, PaygridRefund] | None = None,
) -> list[Finding]:
    """Provider refunds (made in its dashboard) paygrid never saw, and paygrid's succeeded
    refunds the provider does not list. ``payment_of_charge`` maps a charge reference to
    its paygrid payment (a refund of an unknown charge is the charge's discrepancy);
    ``also_known``: provider refund ids paygrid's refunds outside the window carry;
    ``awaiting``: the merchant's refunds, by id, that provider refunds name (``named_refund``):
    one of them is that refund, whose answer was lost, not a dashboard refund."""
    known = {r.reference for r in ours if r.reference is not None} | also_known
    listed = {r.reference for r in theirs}
    findings = []
    for refund in theirs:
        payment = payment_of_charge.get(refund.charge_reference)
        in_window = window[0] <= refund.created < window[1]
        if refund.reference in known or not in_window:
            continue
        named = named_refund(refund, payment, awaiting or {})
        if named is not None:
            findings.append(lost_answer(named, refund))
        elif refund.succeeded and payment:
            findings.append(_dashboard_refund(refund, payment))
    for ours_refund in ours:
        if ours_refund.succeeded and ours_refund.reference not in listed:
            findings.append(
                Finding(
                    DiscrepancyType.REFUND_MISMATCH,
                    object_key=ours_refund.refund_id,
                    description="paygrid's refund succeeded; the provider does not list it",
                    payment_id=ours_refund.payment_id,
                    refund_id=ours_refund.refund_id,
                    provider_reference=ours_refund.reference,
                    paygrid_value=str(ours_refund.amount),
                )
            )
    return findings


def _dashboard_refund(refund: ProviderRefund, payment: str) -> Finding:
    return Finding(
        DiscrepancyType.REFUND_MISMATCH,
        object_key=f"refund:{refund.reference}",
        description="a refund made at the provider that paygrid never saw",
        payment_id=payment,
        provider_reference=refund.reference,
        currency=refund.currency,
        provider_value=str(refund.amount),
        healable=True,
    )
