"""Dunning (issue 14 §1): retrying an invoice's failed automatic payment by its decline's
class, on a schedule, within the card networks' cap, on the customer's other methods, when
the customer changes its method, and what happens when the schedule is over. The rules are
``paygrid.domain.dunning``; docs/billing.md "Dunning" tells the whole story."""
