"""OpenTelemetry traces, exported over OTLP/HTTP when ``PAYGRID_OTLP_ENDPOINT`` is set.

Unset, no tracer exists: ``request_span`` and ``span`` yield ``None`` after one attribute
read, and the OpenTelemetry SDK and exporter are never imported. Tracing is process-wide (as
OpenTelemetry's own global provider is); ``install`` swaps the provider, for tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode, format_trace_id

from paygrid.observability.paths import loggable_path

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from starlette.types import Scope

SERVICE_NAME = "paygrid"
_TRACES_PATH = "/v1/traces"


class _State:
    tracer: trace.Tracer | None = None


def traces_url(endpoint: str) -> str:
    """The collector's trace URL: like ``OTEL_EXPORTER_OTLP_ENDPOINT``, a base URL gets
    ``/v1/traces`` appended."""
    base = endpoint.rstrip("/")
    return base if base.endswith(_TRACES_PATH) else base + _TRACES_PATH


def configure(endpoint: str | None) -> None:
    """Export spans to the OTLP/HTTP collector at ``endpoint``, once per process."""
    if endpoint is None or _State.tracer is not None:
        return
    # Imported here: the exporter pulls in protobuf and requests, which an untraced
    # process never needs.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint))))
    trace.set_tracer_provider(provider)  # libraries instrumented with OpenTelemetry join in
    install(provider)


def install(provider: TracerProvider | None) -> None:
    """Trace with ``provider`` from now on; ``None`` turns tracing off."""
    _State.tracer = None if provider is None else provider.get_tracer(SERVICE_NAME)


def enabled() -> bool:
    return _State.tracer is not None


@contextmanager
def request_span(scope: Scope) -> Iterator[trace.Span | None]:
    """A server span for one HTTP request, continuing the caller's ``traceparent`` if any.
    Its trace id is bound into the log context, so every log line of the request has it."""
    tracer = _State.tracer
    if tracer is None:
        yield None
        return
    carrier = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
    with tracer.start_as_current_span(
        scope["method"],
        context=propagate.extract(carrier),
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": scope["method"],
            "url.path": loggable_path(scope["path"]),
        },
    ) as opened:
        structlog.contextvars.bind_contextvars(
            trace_id=format_trace_id(opened.get_span_context().trace_id)
        )
        yield opened


def finish_request_span(span: trace.Span, method: str, route: str, status: int) -> None:
    """Name the span after the route template (low cardinality) once routing has run."""
    span.update_name(f"{method} {route}")
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[trace.Span | None]:
    """A client span around an outbound call (a connector request), or nothing if untraced."""
    tracer = _State.tracer
    if tracer is None:
        yield None
        return
    with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes) as opened:
        yield opened
