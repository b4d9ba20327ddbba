"""Use cases: validate -> load and lock -> domain decision -> persist with outbox -> respond."""
