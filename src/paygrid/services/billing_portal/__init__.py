"""The customer billing portal (issue 14 §4): sessions, what the page shows, and what the
customer may do there."""
