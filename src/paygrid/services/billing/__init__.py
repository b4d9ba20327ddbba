"""Recurring revenue: the catalog (products and prices), subscriptions, invoices and test
clocks (issue 13), over the same payment core as the API."""
