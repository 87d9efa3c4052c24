"""Safe defaults; the environment (``FLASK_*``) and tests override them."""

from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Defaults:
    SITE_NAME = "Global Updates"
    # One JSON object per line on stderr ("json"), or plain text ("text"), at this level
    # (globalupdates.logs); gunicorn.conf.py reads the same FLASK_LOG_* variables.
    LOG_FORMAT = "json"
    LOG_LEVEL = "INFO"
    # The languages the site has catalogues for, and the one it is served in (globalupdates.i18n).
    BABEL_DEFAULT_LOCALE = "en"
    LANGUAGES = ("en", "de", "fr")
    TIMEZONE = "UTC"  # the zone every date and time a reader sees is shown in
    SQLALCHEMY_DATABASE_URI = None  # filled in with the instance folder's SQLite file
    # SQLAlchemy's engine options. Without "pool_pre_ping" the site sets it for a database
    # server and leaves it off for SQLite (globalupdates.database.engine_options).
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    CONSENT_REGISTRY = None  # path to an operator's TOML; None ships the package's own
    CONSENT_LIFETIME_DAYS = 182
    # How long a consent record is kept once a newer choice supersedes it (proof, Art. 7(1)
    # GDPR); the privacy notice states it.
    CONSENT_RECORD_RETENTION_DAYS = 3 * 365
    # How long page views and page timings are kept; `flask features prune` deletes older ones.
    PAGE_MEASUREMENT_RETENTION_DAYS = 395  # 13 months
    # Page views are counted in each worker's memory and written this often, in one
    # transaction (globalupdates.features.pageviews); a worker killed outright loses at most
    # the views of this interval. Views waiting beyond the limit (the database unreachable
    # for long) are dropped, oldest first.
    PAGE_VIEW_FLUSH_SECONDS = 1.0
    PAGE_VIEW_PENDING_LIMIT = 10_000
    # How long an erased reader value is remembered, so that views of it still waiting in
    # any worker are dropped; a view that waited longer is dropped too.
    PAGE_VIEW_ERASURE_MARKER_HOURS = 24
    # The key that signs the consent chain, "key_id:secret"; None signs with the last key in
    # the instance folder's consent_proof_keys file (see globalupdates.consent.proof.proof_keys).
    CONSENT_PROOF_KEY = None
    # /healthz probes the database (a rolled-back insert, a commit on SQLite) at most this
    # often per worker, and answers from the last probe in between (globalupdates.health).
    HEALTH_CHECK_SECONDS = 1.0
    CONTENT_DIR = str(PROJECT_ROOT / "content")
    # `flask articles import` refuses a Markdown file larger than this: one huge article
    # would make every search that finds it slow.
    ARTICLE_MAX_BYTES = 1_000_000
    # The database time one search may take before the reader gets a 503 (globalupdates.
    # articles.search): PostgreSQL's statement_timeout, or SQLite's progress handler.
    SEARCH_TIME_BUDGET_MS = 2000
    MIGRATIONS_DIR = str(PROJECT_ROOT / "migrations")

    SESSION_COOKIE_NAME = "gu_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False  # also Secure on any request that arrived over HTTPS
    PERMANENT_SESSION_LIFETIME = timedelta(days=182)
    # The consent expires from the moment it was given, so re-signing and re-sending the
    # cookie on every page would only cost time; it is written when its contents change.
    SESSION_REFRESH_EACH_REQUEST = False

    # Forgery protection comes from Fetch Metadata (globalupdates.forgery), not tokens.
    # Origins other than the site's own whose pages may post to it, e.g. "https://a.example".
    TRUSTED_ORIGINS: tuple[str, ...] = ()

    # Rendered pages (globalupdates.pagecache), kept by Flask-Caching: in memory per worker, at
    # most CACHE_MAX_BYTES of gzipped pages (globalupdates.pagestore), or in Redis for several
    # hosts (CACHE_TYPE="RedisCache", CACHE_REDIS_URL="redis://host:6379/1").
    CACHE_TYPE = "globalupdates.pagestore.BoundedMemoryCache"
    CACHE_MAX_BYTES = 4 * 1024 * 1024
    CACHE_DEFAULT_TIMEOUT = 600
    CACHE_KEY_PREFIX = "gu-page:"
    # A page store that fails (Redis down or hanging) is a cache miss: the page is rendered,
    # and the store is left alone for this long per worker before it is tried again; the
    # failure is logged once per such interval, with how many lookups went without it.
    PAGE_CACHE_RETRY_SECONDS = 5.0
    # How long the site waits for Redis (the page cache and the rate-limit counters) to accept
    # a connection, and then for each answer, before it treats Redis as down. Set on the Redis
    # clients unless CACHE_OPTIONS or RATELIMIT_STORAGE_OPTIONS name the timeout themselves.
    REDIS_CONNECT_SECONDS = 0.25
    REDIS_ANSWER_SECONDS = 0.25
    CONTENT_CHECK_SECONDS = 10  # how often a worker looks for imported or edited articles
    SHARED_PAGE_MAX_AGE = 30  # how long a proxy may keep a page (s-maxage, X-Accel-Expires)
    # How long past that a proxy may still serve a first-visit page while the site cannot
    # answer (stale-if-error); a returning reader's page is never served stale.
    SHARED_PAGE_STALE_IF_ERROR = 600
    # Whole page responses each worker keeps in front of Flask (keptresponses), bounded in
    # bytes and in age; 0 bytes turns that layer off. The content version is in their key, so
    # an edit does not wait for the age.
    KEPT_RESPONSE_BYTES = 8 * 1024 * 1024
    KEPT_RESPONSE_SECONDS = 300
    # A CDN in front that keys returning readers' pages on the variant cookie names the
    # request header in which it passes the cookie part of its key (sharedcache); the site
    # then tells it through CDN-Cache-Control which pages it may store. None: no CDN does.
    CDN_CACHE_KEY_HEADER = None

    MAX_CONTENT_LENGTH = 64 * 1024

    GPC_LAST_UPDATE = "2026-11-26"  # when this site's handling of GPC last changed
    GOOGLE_TAG_ID = None  # e.g. "G-ABC123XYZ" turns on Google Consent Mode v2
    HSTS_MAX_AGE = 63072000  # two years, sent only on responses served over HTTPS

    # Rate limits (Flask-Limiter). A reader is keyed by their session, so many readers
    # behind one shared address each get their own allowance; the per-address figures are
    # only a ceiling against floods. Load tests raise them through FLASK_RATELIMIT_*.
    RATELIMIT_ENABLED = True
    # Counters in each worker's memory (globalupdates.ratelimits.WorkerMemoryStorage), or
    # e.g. redis://host:6379/0 when several hosts serve: the site then counts through its
    # fail-soft Redis store (ratelimits.FailSoftRedisStorage), which counts in the worker's
    # memory while Redis fails and leaves Redis alone for RATELIMIT_STORAGE_RETRY_SECONDS.
    RATELIMIT_STORAGE_URI = "worker-memory://"
    RATELIMIT_STORAGE_RETRY_SECONDS = 5.0
    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True  # a storage outage must not turn a choice into a 500
    # Flask-Limiter's own fallback (limits' memory://, which starts timer threads) stays off:
    # the fail-soft Redis store goes on in the worker's memory itself.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = False
    RATELIMIT_CONSENT_PER_READER = "10 per minute"
    RATELIMIT_CONSENT_PER_ADDRESS = "600 per minute"
    RATELIMIT_BEACON_PER_READER = "60 per minute"
    RATELIMIT_BEACON_PER_ADDRESS = "6000 per minute"
    RATELIMIT_CSP_REPORT_PER_ADDRESS = "60 per minute"

    CANONICAL_ORIGIN = None  # e.g. "https://news.example"; None uses the host of each request
    # Host names the site answers for (Flask's TRUSTED_HOSTS; a leading "." admits subdomains);
    # any other Host gets 400. None means loopback names and CANONICAL_ORIGIN's host.
    TRUSTED_HOSTS: list[str] | None = None
    ARTICLES_PER_PAGE = 10
    SITEMAP_URLS = 50000  # past this many URLs, /sitemap.xml becomes a sitemap index

    # How many reverse proxies set each X-Forwarded-* header; 0 ignores the header.
    PROXY_FIX_X_FOR = 0
    PROXY_FIX_X_PROTO = 0
    PROXY_FIX_X_HOST = 0
    PROXY_FIX_X_PORT = 0
    PROXY_FIX_X_PREFIX = 0
    # The request headers a trusted proxy or CDN sets with the reader's ISO 3166-1 country
    # code and their subdivision without the country ("CA"); read only when a PROXY_FIX_*
    # setting says a proxy is in front. None: every reader is under the opt-in regime.
    COUNTRY_HEADER: str | None = None
    REGION_HEADER: str | None = None

    # /metrics answers only these addresses (as the site sees them, after ProxyFix): a
    # comma-separated list of addresses or CIDR networks; anyone else gets 404.
    METRICS_ALLOWED = "127.0.0.0/8,::1"
    # Choices sent with X-Consent-Audit: 1 from these addresses (as for METRICS_ALLOWED) are
    # marked as the cookie audit's and left out of stats, the report and the choice metrics;
    # from anyone else the header is ignored.
    CONSENT_AUDIT_ALLOWED = "127.0.0.0/8,::1"
    # False: no metric is counted, their request steps are left out and /metrics is a 404.
    METRICS_ENABLED = True
    # The operator's file of `flask consent checkpoint` lines; when set, /metrics reports
    # globalupdates_checkpoint_age_seconds from the newest one the chain still extends.
    CONSENT_CHECKPOINT_FILE = None
