"""The background job runner: every job kind (maintenance now; webhook deliveries, status
polling, renewals and reconciliation later) runs through the same queue and workers."""
