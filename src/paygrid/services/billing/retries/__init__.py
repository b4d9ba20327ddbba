"""Running dunning's schedule (``paygrid.services.billing.dunning``) in the worker: the due
retries, expired authentications and retries after a new default method, each through
``/pay``'s own attempt (``invoice_payments``). A package of its own because it calls
``invoice_payments``, which calls ``dunning`` when an attempt fails."""
