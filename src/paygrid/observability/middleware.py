"""``Telemetry``: times every HTTP request into the latency histogram, labelled by route
template (``/v1/payments/{payment_id}``, never the raw path), and names its trace span (the
HTTP edge, ``api/edge.py``, opens it with ``tracing.request_span``, so the trace id bound
into the log context is on the edge's ``request.completed`` line)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

from opentelemetry import trace
from starlette.types import Scope

from paygrid.observability import tracing
from paygrid.observability.metrics import Metrics

UNMATCHED = "unmatched"  # any path no route serves: one series, whatever clients send
_PARAMETER = re.compile(r"\\\{[^}]*\\\}")  # "{payment_id}", once re.escape'd


def api_templates(paths: Iterable[str]) -> list[tuple[re.Pattern[str], str]]:
    """Matchers for path templates, literal segments first (``/v1/x/search`` before
    ``/v1/x/{id}``)."""
    ordered = sorted(paths, key=lambda template: (template.count("{"), -len(template)))
    return [
        (re.compile("^" + _PARAMETER.sub("[^/]+", re.escape(template)) + "$"), template)
        for template in ordered
    ]


class Telemetry:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    def route_template(self, scope: Scope) -> str:
        """The path template of the route that served the request. Responses sent before
        routing (authentication errors, rate limits, idempotent replays) are matched
        against the API's documented paths instead."""
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        if self._templates is None:
            self._templates = api_templates(scope["app"].openapi()["paths"])
        for pattern, template in self._templates:
            if pattern.match(scope["path"]):
                return template
        return UNMATCHED

    def observe(self, scope: Scope, span: trace.Span | None, status: int, started: float) -> None:
        """A request is answered with ``status`` (500 if nothing was sent); it began at
        ``started`` (``time.perf_counter``)."""
        route = self.route_template(scope)
        if span is not None:
            request_id = scope.get("state", {}).get("request_id")
            if request_id is not None:
                span.set_attribute("paygrid.request_id", request_id)
            tracing.finish_request_span(span, scope["method"], route, status)
        self.metrics.observe_request(scope["method"], route, status, time.perf_counter() - started)
