"""OpenAPI links between operations: which answer feeds which next call.

A link says "take the ``id`` of this response and use it as that operation's path parameter
(or body field)". Client generators and stateful fuzzers (schemathesis) follow them, so a
chain such as create customer → attach a card → pay → capture → refund can be walked without
hand-written glue. Operations are named by method and path here; the operationIds FastAPI
generates are looked up in the finished document, so renaming a handler cannot break a link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

ID: Final = "$response.body#/id"


@dataclass(frozen=True)
class Link:
    """From the 200 answer of ``source``, a call of ``target`` with these values."""

    name: str
    source: tuple[str, str]
    target: tuple[str, str]
    parameters: dict[str, str] = field(default_factory=dict)
    body: dict[str, str] = field(default_factory=dict)


def _on_id(
    source: tuple[str, str], path: str, parameter: str, targets: dict[str, str]
) -> list[Link]:
    """Links from ``source`` to each ``METHOD suffix`` under ``path``, passing the id."""
    links = []
    for name, target in targets.items():
        method, _, suffix = target.partition(" ")
        links.append(
            Link(name, source, (method, path + suffix), parameters={parameter: ID}),
        )
    return links


CREATE_PAYMENT: Final = ("post", "/v1/payments")
CREATE_CUSTOMER: Final = ("post", "/v1/customers")
CREATE_METHOD: Final = ("post", "/v1/payment_methods")
ATTACH_METHOD: Final = ("post", "/v1/payment_methods/{pm_id}/attach")
CREATE_REFUND: Final = ("post", "/v1/refunds")
CREATE_ENDPOINT: Final = ("post", "/v1/webhook_endpoints")
CREATE_SESSION: Final = ("post", "/v1/checkout_sessions")
CREATE_KEY: Final = ("post", "/v1/api_keys")
CREATE_ACCOUNT: Final = ("post", "/v1/connector_accounts")
CREATE_RULE: Final = ("post", "/v1/routing_rules")
CREATE_CLOCK: Final = ("post", "/v1/test_clocks")
CREATE_PRODUCT: Final = ("post", "/v1/products")
CREATE_PRICE: Final = ("post", "/v1/prices")
CREATE_INVOICE_ITEM: Final = ("post", "/v1/invoiceitems")
CREATE_INVOICE: Final = ("post", "/v1/invoices")
FINALIZE_INVOICE: Final = ("post", "/v1/invoices/{invoice_id}/finalize")
PAY_WITH_SAVED_METHOD: Final = {
    "payment_method": ID,
    "customer": "$response.body#/customer",
}

LINKS: Final[tuple[Link, ...]] = (
    *_on_id(
        CREATE_PAYMENT,
        "/v1/payments/{payment_id}",
        "payment_id",
        {
            "RetrievePayment": "get ",
            "ConfirmPayment": "post /confirm",
            "CapturePayment": "post /capture",
            "CancelPayment": "post /cancel",
        },
    ),
    Link("RefundPayment", CREATE_PAYMENT, CREATE_REFUND, body={"payment": ID}),
    *_on_id(
        ("post", "/v1/payments/{payment_id}/capture"),
        "/v1/payments/{payment_id}",
        "payment_id",
        {"RetrieveCapturedPayment": "get "},
    ),
    Link(
        "RefundCapturedPayment",
        ("post", "/v1/payments/{payment_id}/capture"),
        CREATE_REFUND,
        body={"payment": ID},
    ),
    *_on_id(CREATE_REFUND, "/v1/refunds/{refund_id}", "refund_id", {"RetrieveRefund": "get "}),
    *_on_id(
        CREATE_CUSTOMER,
        "/v1/customers/{customer_id}",
        "customer_id",
        {
            "RetrieveCustomer": "get ",
            "UpdateCustomer": "post ",
            "DeleteCustomer": "delete ",
        },
    ),
    Link("SaveMethodForCustomer", CREATE_CUSTOMER, CREATE_METHOD, body={"customer": ID}),
    Link("PayAsCustomer", CREATE_CUSTOMER, CREATE_PAYMENT, body={"customer": ID}),
    *_on_id(
        CREATE_METHOD,
        "/v1/payment_methods/{pm_id}",
        "pm_id",
        {
            "RetrieveMethod": "get ",
            "AttachMethod": "post /attach",
            "DetachMethod": "post /detach",
        },
    ),
    Link("PayWithMethod", CREATE_METHOD, CREATE_PAYMENT, body=PAY_WITH_SAVED_METHOD),
    Link("PayWithAttachedMethod", ATTACH_METHOD, CREATE_PAYMENT, body=PAY_WITH_SAVED_METHOD),
    *_on_id(
        CREATE_ENDPOINT,
        "/v1/webhook_endpoints/{endpoint_id}",
        "endpoint_id",
        {
            "RetrieveEndpoint": "get ",
            "UpdateEndpoint": "post ",
            "DeleteEndpoint": "delete ",
            "RotateEndpointSecret": "post /rotate_secret",
            "TestEndpoint": "post /test",
            "ListEndpointDeliveries": "get /deliveries",
            "ReplayToEndpoint": "post /replay",
        },
    ),
    *_on_id(
        CREATE_SESSION,
        "/v1/checkout_sessions/{session_id}",
        "session_id",
        {"RetrieveSession": "get ", "ExpireSession": "post /expire"},
    ),
    *_on_id(
        CREATE_KEY,
        "/v1/api_keys/{key_id}",
        "key_id",
        {"RetrieveKey": "get ", "RollKey": "post /roll", "RevokeKey": "post /revoke"},
    ),
    *_on_id(
        CREATE_ACCOUNT,
        "/v1/connector_accounts/{account_id}",
        "account_id",
        {
            "RetrieveAccount": "get ",
            "UpdateAccount": "post ",
            "DisableAccount": "post /disable",
            "EnableAccount": "post /enable",
        },
    ),
    *_on_id(
        CREATE_CLOCK,
        "/v1/test_clocks/{clock_id}",
        "clock_id",
        {
            "RetrieveClock": "get ",
            "AdvanceClock": "post /advance",
            "DeleteClock": "delete ",
        },
    ),
    Link("CreateCustomerOnClock", CREATE_CLOCK, CREATE_CUSTOMER, body={"test_clock": ID}),
    *_on_id(
        CREATE_PRODUCT,
        "/v1/products/{product_id}",
        "product_id",
        {"RetrieveProduct": "get ", "UpdateProduct": "post ", "DeleteProduct": "delete "},
    ),
    Link("PriceProduct", CREATE_PRODUCT, CREATE_PRICE, body={"product": ID}),
    *_on_id(
        CREATE_PRICE,
        "/v1/prices/{price_id}",
        "price_id",
        {"RetrievePrice": "get ", "UpdatePrice": "post "},
    ),
    Link(
        "DeletePricedProduct",
        CREATE_PRICE,
        ("delete", "/v1/products/{product_id}"),
        parameters={"product_id": "$response.body#/product"},
    ),
    # Invoices: a customer's pending item, the invoice that collects it, its actions.
    Link("BillCustomer", CREATE_CUSTOMER, CREATE_INVOICE_ITEM, body={"customer": ID}),
    *_on_id(
        CREATE_INVOICE_ITEM,
        "/v1/invoiceitems/{item_id}",
        "item_id",
        {"RetrieveInvoiceItem": "get ", "DeleteInvoiceItem": "delete "},
    ),
    Link(
        "InvoicePendingItems",
        CREATE_INVOICE_ITEM,
        CREATE_INVOICE,
        body={"customer": "$response.body#/customer"},
    ),
    *_on_id(
        CREATE_INVOICE,
        "/v1/invoices/{invoice_id}",
        "invoice_id",
        {"RetrieveInvoice": "get ", "FinalizeInvoice": "post /finalize"},
    ),
    *_on_id(
        FINALIZE_INVOICE,
        "/v1/invoices/{invoice_id}",
        "invoice_id",
        {
            "PayInvoice": "post /pay",
            "VoidInvoice": "post /void",
            "MarkInvoiceUncollectible": "post /mark_uncollectible",
        },
    ),
    *_on_id(
        CREATE_RULE,
        "/v1/routing_rules/{rule_id}",
        "rule_id",
        {"RetrieveRule": "get ", "UpdateRule": "post ", "DeleteRule": "delete "},
    ),
)


class UnknownLinkOperation(LookupError):
    """A link names an operation the document does not have (a route was renamed)."""


def add_links(spec: dict[str, Any], links: tuple[Link, ...] = LINKS) -> dict[str, Any]:
    """Write each link into its source operation's 200 response. Raises
    ``UnknownLinkOperation`` when a link's source or target is not in ``spec``, so a moved
    route fails the build instead of silently losing its link."""
    paths: dict[str, Any] = spec.get("paths", {})

    def operation(method_path: tuple[str, str]) -> dict[str, Any]:
        method, path = method_path
        found = paths.get(path, {}).get(method)
        if found is None:
            raise UnknownLinkOperation(f"{method.upper()} {path}")
        return found  # type: ignore[no-any-return]

    for link in links:
        target = operation(link.target)
        response = operation(link.source)["responses"]["200"]
        definition: dict[str, Any] = {"operationId": target["operationId"]}
        if link.parameters:
            definition["parameters"] = dict(link.parameters)
        if link.body:
            definition["requestBody"] = dict(link.body)
        response.setdefault("links", {})[link.name] = definition
    return spec
