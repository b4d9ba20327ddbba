"""The OpenAPI document links each create to what can follow it, and a link to a route that
no longer exists fails loudly."""

from __future__ import annotations

import pytest

from paygrid.api.openapi_links import LINKS, Link, UnknownLinkOperation, add_links
from paygrid.app import create_app
from paygrid.config import Settings


def _spec() -> dict[str, object]:
    return create_app(Settings(public_url="http://testserver")).openapi()


def test_every_link_is_in_the_document_and_names_a_real_operation() -> None:
    spec = _spec()
    paths = spec["paths"]
    assert isinstance(paths, dict)
    operation_ids = {op["operationId"] for ops in paths.values() for op in ops.values()}
    for link in LINKS:
        method, path = link.source
        written = paths[path][method]["responses"]["200"]["links"][link.name]
        assert written["operationId"] in operation_ids
        target_method, target_path = link.target
        assert written["operationId"] == paths[target_path][target_method]["operationId"]


def test_the_payment_chain_is_linked() -> None:
    paths = _spec()["paths"]
    assert isinstance(paths, dict)
    from_payment = paths["/v1/payments"]["post"]["responses"]["200"]["links"]
    assert {"ConfirmPayment", "CapturePayment", "CancelPayment", "RefundPayment"} <= set(
        from_payment
    )
    assert from_payment["RefundPayment"]["requestBody"] == {"payment": "$response.body#/id"}
    from_customer = paths["/v1/customers"]["post"]["responses"]["200"]["links"]
    assert from_customer["SaveMethodForCustomer"]["requestBody"] == {
        "customer": "$response.body#/id"
    }
    from_endpoint = paths["/v1/webhook_endpoints"]["post"]["responses"]["200"]["links"]
    assert {"RotateEndpointSecret", "TestEndpoint"} <= set(from_endpoint)


def test_a_link_to_a_missing_route_is_refused() -> None:
    broken = Link("Gone", ("post", "/v1/payments"), ("post", "/v1/payments/{payment_id}/gone"))
    with pytest.raises(UnknownLinkOperation, match="gone"):
        add_links(_spec(), (broken,))
