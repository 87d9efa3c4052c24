"""Helpers for the tests and the bench: one way to start gunicorn and nginx, a free port, the
pages the tests open, one HTML query helper, and the consent, article and database helpers.

Only fixtures live in ``tests/conftest.py``; everything a test or a bench script imports is
here, as ``from tests.support.<module> import ...``. ``test_servers.py`` holds the launchers
to their word: nothing they start outlives them.
"""
