"""Browser tests: Chromium driven by Playwright against the site under gunicorn (all marked
slow by this folder's conftest)."""
