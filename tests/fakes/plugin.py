"""Session fixtures that start the fake providers (registered from tests/conftest.py)."""
