"""Global Updates: a news site whose readers decide which optional cookies and scripts run."""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

from . import (
    articles,
    assets,
    consent,
    editions,
    errors,
    features,
    forgery,
    health,
    i18n,
    keptresponses,
    logs,
    metrics,
    pagecache,
    pipeline,
    prepare,
    proxy,
    ratelimits,
    sharedcache,
)
from .config import PROJECT_ROOT, Defaults
from .cookies import SiteRequest
from .database import engine_options
from .extensions import db
from .sessions import HttpsSecureSessionInterface

PAGE_SETTINGS = ("SITE_NAME", "CANONICAL_ORIGIN", "GOOGLE_TAG_ID", "ARTICLES_PER_PAGE")


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=os.environ.get("FLASK_INSTANCE_PATH") or str(PROJECT_ROOT / "instance"),
        instance_relative_config=True,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.from_object(Defaults)
    app.config.from_prefixed_env()
    if test_config:
        app.config.update(test_config)
    complete_config(app)
    logs.configure_logging(app)
    app.request_class = SiteRequest
    app.session_interface = HttpsSecureSessionInterface()
    register_extensions(app)
    register_features(app)
    pipeline.register(app)
    register_page_cache(app)
    register_template_globals(app)
    editions.add_edition_rules(app)
    proxy.init_app(app)
    logs.add_request_ids(app)
    return app


def complete_config(app: Flask) -> None:
    """Fill in what depends on the instance folder or on other settings."""
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(Path(app.instance_path) / "secret_key")
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        database = Path(app.instance_path) / "globalupdates.sqlite3"
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{database}"
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
        app.config["SQLALCHEMY_DATABASE_URI"], app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    )
    app.config["TRUSTED_HOSTS"] = trusted_hosts(app.config)
    lifetime = timedelta(days=int(app.config["CONSENT_LIFETIME_DAYS"]))
    app.config["CONSENT_LIFETIME_DAYS"] = lifetime.days
    app.config["PERMANENT_SESSION_LIFETIME"] = min(
        lifetime, _as_timedelta(app.config["PERMANENT_SESSION_LIFETIME"])
    )


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def trusted_hosts(config: Any) -> list[str]:
    """The host names to answer for: the operator's (a list, or a comma-separated string from
    the environment), else loopback and the canonical origin's host. A forged Host must not
    reach redirects, canonical links or the sitemap."""
    configured = config.get("TRUSTED_HOSTS")
    if isinstance(configured, str):
        configured = [name.strip() for name in configured.split(",") if name.strip()]
    if configured:
        return list(configured)
    hosts = list(LOOPBACK_HOSTS)
    canonical = urlsplit(config.get("CANONICAL_ORIGIN") or "").hostname
    if canonical:
        hosts.append(canonical)
    return hosts


def _as_timedelta(value: Any) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=int(value))


def instance_secret_key(path: Path) -> str:
    """Made once and reused, so that every worker and every restart sign sessions alike."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
        if key:
            return key
        raise RuntimeError(f"{path} is empty: delete it or set FLASK_SECRET_KEY") from None
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key)
    return key


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    i18n.init_app(app)
    editions.init_app(app)
    if app.testing or os.environ.get("FLASK_RUN_FROM_CLI") == "true":
        prepare.bind_migrations(app)
    assets.init_app(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        from .database import tune_sqlite

        with app.app_context():
            tune_sqlite(db.engine)


def register_features(app: Flask) -> None:
    """Register the packages. None of them adds a request hook: the steps before and after
    the view are listed, in the order they run, in ``pipeline``."""
    forgery.init_app(app)
    consent.init_app(app)
    articles.init_app(app)
    features.init_app(app)
    health.init_app(app)
    errors.init_app(app)
    ratelimits.init_app(app)
    prepare.init_app(app)
    metrics.init_app(app)


def register_page_cache(app: Flask) -> None:
    """Pages are cached under a key of everything they depend on, and nothing else: in Flask,
    in the kept responses in front of it, and in the shared caches the site tells it verified
    their key."""
    settings = {name: app.config.get(name) for name in PAGE_SETTINGS}
    registry = consent.engine_of(app).registry
    pagecache.init_app(
        app,
        content_version=articles.content_version,
        site_version=pagecache.site_version(
            app, registry.revision, registry.notice_hash, registry.regions.fingerprint(), settings
        ),
        page_cookies=features.PAGE_COOKIES,
        negotiate=partial(
            editions.preferred_edition,
            languages=tuple(app.config["LANGUAGES"]),
            default=str(app.config["BABEL_DEFAULT_LOCALE"]),
        ),
    )
    pagecache.add_key_part(app, consent.page_variant)
    pagecache.add_key_part(app, features.page_variant_of(app))
    for endpoint in consent.SHARED_PAGES:
        app.view_functions[endpoint] = pagecache.cached_page(app.view_functions[endpoint])
    sharedcache.init_app(
        app,
        session_cookie=app.config["SESSION_COOKIE_NAME"],
        variant_cookie=consent.VARIANT_COOKIE,
        value_cookies=features.PAGE_COOKIES,
        flag_cookies=registry.first_party_cookie_names(),
        reads_place=consent.engine_of(app).place_headers.country is not None,
    )
    keptresponses.init_app(app)


def register_template_globals(app: Flask) -> None:
    @app.context_processor
    def site_globals() -> dict[str, Any]:
        return {"site_name": app.config["SITE_NAME"], "current_year": datetime.now(UTC).year}
