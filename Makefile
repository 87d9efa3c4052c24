# Global Updates: `make run` serves the site, `make test` runs the whole suite.
# Both set up everything they need: a .venv in the checkout, dependencies, the database.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
MANIFEST := static/cache_manifest.json
export FLASK_APP := wsgi

.PHONY: run test lint typecheck check browser test-tools screenshots clean

run: $(STAMP) $(MANIFEST)
	$(BIN)/gunicorn -c gunicorn.conf.py

test: $(STAMP) test-tools $(MANIFEST)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check site tests bench wsgi.py gunicorn.conf.py
	$(BIN)/ruff format --check site tests bench wsgi.py gunicorn.conf.py

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Content-hashed copies of the stylesheets, scripts and icons, and the manifest naming them.
# The app reads the manifest when it is created, so this runs before anything creates it.
STATIC_SOURCES := $(shell find static -regextype posix-extended -type f \
	\( -name '*.css' -o -name '*.js' -o -name '*.svg' \) ! -regex '.*-[0-9a-f]{32}\..*')

$(MANIFEST): $(STAMP) $(STATIC_SOURCES)
	$(BIN)/flask digest compile

# The browser tests drive Debian's Chromium and the proxy test runs Debian's nginx; install
# whichever is missing, in one apt-get run. (nginx lives in /usr/sbin, outside some PATHs.)
browser: DEBIAN_TOOLS = chromium
test-tools: DEBIAN_TOOLS = chromium nginx
browser test-tools:
	@missing=$$(for tool in $(DEBIAN_TOOLS); do \
		PATH="$$PATH:/usr/sbin" command -v $$tool >/dev/null 2>&1 || echo $$tool; done); \
	test -z "$$missing" || { \
		echo "Installing Debian's" $$missing "for the tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; }

# Retake the README's pictures of the banner and the dialog from the real site.
screenshots: $(STAMP) browser
	GU_SCREENSHOT_DIR=docs/screenshots $(BIN)/python -m pytest -q tests/browser/test_screenshots.py

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
