"""Adding a card in the billing portal and making it the default: the card the page
tokenized is saved to the customer by a setup intent (a zero-amount verification, with
3-D Secure when the card needs it: the customer is sent to authenticate and comes back to
``card_returned``), and once saved it becomes the default through the same use case as
choosing a saved card (``portal_actions.make_default``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from paygrid.dependencies import Deps
from paygrid.domain.errors import CardError, ResourceMissing
from paygrid.domain.setup_intents import SetupIntentStatus
from paygrid.schemas.setup_intents import SetupIntent, SetupIntentConfirm, SetupIntentCreate
from paygrid.services import setup_intents
from paygrid.services.billing.settings import load_settings
from paygrid.services.billing_portal.actions import PortalActionNotAllowed, make_default, record
from paygrid.services.billing_portal.sessions import PortalAccess

SESSION_METADATA = "billing_portal_session"  # on the setup intent: which session made it


class CardResult(StrEnum):
    SAVED = "saved"  # saved and made the default
    REDIRECT = "redirect"  # authenticate at ``url``, then come back
    DECLINED = "declined"  # show ``message``; another card may be tried
    PROCESSING = "processing"  # the provider has not answered yet


@dataclass(frozen=True, slots=True)
class CardOutcome:
    result: CardResult
    url: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Browser:
    """Who accepts later charges of the card (the mandate's online acceptance)."""

    ip_address: str | None
    user_agent: str | None


async def add_card(
    deps: Deps, access: PortalAccess, payment_method: str, return_url: str, browser: Browser
) -> CardOutcome:
    """Save the tokenized card to the customer and make it the default. ``return_url`` is
    where 3-D Secure sends the customer back; ``?setup_intent=seti_...`` is added to it."""
    settings = await load_settings(deps, access.tenant)
    if not settings.portal.allow_update_method:
        raise PortalActionNotAllowed("Changing the payment method is not offered here.")
    create = SetupIntentCreate.model_validate(
        {
            "customer": access.customer_id,
            "payment_method": payment_method,
            "usage": "off_session",
            "metadata": {SESSION_METADATA: access.session_id},
        }
    )
    created = await setup_intents.create_setup_intent(deps, access.tenant, create)
    confirm = _confirm_params(f"{return_url}?setup_intent={created.id}", browser)
    try:
        confirmed = await setup_intents.confirm_setup_intent(
            deps, access.tenant, created.id, confirm
        )
    except CardError as error:
        return CardOutcome(CardResult.DECLINED, message=error.message)
    return await _settle(deps, access, confirmed)


async def card_returned(deps: Deps, access: PortalAccess, setup_intent_id: str) -> CardOutcome:
    """Back from 3-D Secure: learn the setup's outcome (retrieving it asks the provider) and
    make the card the default if it was saved. Only a setup this session made counts."""
    try:
        found = await setup_intents.get_setup_intent(deps, access.tenant, setup_intent_id)
    except ResourceMissing:
        found = None
    if (
        found is None
        or found.customer != access.customer_id
        or found.metadata.get(SESSION_METADATA) != access.session_id
    ):
        raise ResourceMissing("This card setup is not part of your session.", param="setup_intent")
    return await _settle(deps, access, found)


async def _settle(deps: Deps, access: PortalAccess, seti: SetupIntent) -> CardOutcome:
    match seti.status:
        case SetupIntentStatus.SUCCEEDED:
            assert seti.payment_method is not None
            await make_default(deps, access, seti.payment_method)
            await record(
                deps,
                access,
                "billing_portal.card_added",
                ("payment_method", seti.payment_method),
                None,
                {"setup_intent": seti.id, "default": True},
            )
            return CardOutcome(CardResult.SAVED)
        case SetupIntentStatus.REQUIRES_ACTION:
            action = seti.next_action
            url = action.redirect_to_url.url if action is not None else None
            if url is None:
                return CardOutcome(CardResult.PROCESSING)
            return CardOutcome(CardResult.REDIRECT, url=url)
        case SetupIntentStatus.PROCESSING | SetupIntentStatus.REQUIRES_CONFIRMATION:
            return CardOutcome(CardResult.PROCESSING)
        case SetupIntentStatus.REQUIRES_PAYMENT_METHOD | SetupIntentStatus.CANCELED:
            error = seti.last_setup_error
            message = error.message if error is not None else "The card could not be saved."
            return CardOutcome(CardResult.DECLINED, message=message)


def _confirm_params(return_url: str, browser: Browser) -> SetupIntentConfirm:
    """The confirmation, with the browser's online acceptance; recorded ``offline`` when the
    browser's details are missing or not storable (a user agent with control characters)."""
    offline: dict[str, Any] = {"type": "offline"}
    acceptance = offline
    if browser.ip_address and browser.user_agent:
        online = {"ip_address": browser.ip_address[:45], "user_agent": browser.user_agent[:1000]}
        acceptance = {"type": "online", "online": online}
    for accepted in (acceptance, offline):
        body = {"return_url": return_url, "mandate_data": {"customer_acceptance": accepted}}
        try:
            return SetupIntentConfirm.model_validate(body)
        except ValidationError:
            continue
    raise AssertionError("an offline acceptance is always valid")
