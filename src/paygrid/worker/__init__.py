"""The background job framework: a queue every job kind runs through, workers that claim,
lease, retry and heartbeat on the injected clock, and a registry of handlers. It knows no
paygrid job: ``paygrid.bootstrap`` registers them (maintenance, webhook deliveries, broker
publishes, status sync, the audit sealer, provider webhook retries)."""
