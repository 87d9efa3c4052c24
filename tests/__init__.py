"""Global Updates' test suite, grouped by the part of the site each test holds to its word.

``tests/conftest.py`` has the fixtures every folder shares; ``tests/support`` has the helpers
(servers, pages, HTML queries, consent, articles, databases) that tests and the bench import.
"""
