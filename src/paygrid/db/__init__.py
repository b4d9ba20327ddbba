"""Database access: engine, schema migrations and repositories. SQL lives here and only here
(the simulator's own tables live with the simulator)."""
