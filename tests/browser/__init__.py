"""Browser tests: Chromium driven by Playwright against the site under gunicorn."""
