"""The public API contract: request bodies and the JSON shape of every object. The same
models render API responses and the ``data.object`` snapshot of events."""
