"""The merchant dashboard at ``/dashboard``: server-rendered pages over the same services as
the API, for dashboard users who sign in with a password and act within their role."""
