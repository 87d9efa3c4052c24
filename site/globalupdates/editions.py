"""The site's editions: English at ``/``, and one prefix per other language (``/de/``, ``/fr/``).

The language is in the URL, never taken from a header, so a page stays a function of its URL
and every edition is cached like any other page. Each reader-facing endpoint (every declared
page, and the forms and feeds packages name with ``declare_edition_endpoint``) gets a second
rule under ``/<lang>/``; views never see ``lang``: ``url_for`` builds the current edition's
URL unless told another (``url_for(endpoint, lang="de")``).

The one place a header chooses is the bare ``/``: a reader who arrives there from outside the
site (typed, bookmarked, followed from elsewhere) and whose browser prefers German or French
is sent there with a ``302`` that varies on ``Accept-Language``. A reader who follows a link
inside the site (``Sec-Fetch-Site: same-origin``) is never redirected, so the switcher's
"English" link always leads to English. No cookie is set for any of this.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from babel import Locale
from flask import Flask, current_app, g, has_request_context, redirect, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header
from werkzeug.routing import Rule
from werkzeug.wrappers import Response

FRONT_PAGE = "articles.front_page"
NEGOTIATED_VARY = ("Accept-Language", "Sec-Fetch-Site")


@dataclass
class EditionsState:
    default: str
    languages: tuple[str, ...]
    endpoints: set[str]
    every_edition: set[str]

    @property
    def prefixed(self) -> tuple[str, ...]:
        return tuple(lang for lang in self.languages if lang != self.default)


@dataclass(frozen=True)
class Edition:
    """One edition as a link from the current page: to the same page where every edition
    has it, else to that edition's front page."""

    language: str
    name: str
    url: str
    current: bool
    same_page: bool


def init_app(app: Flask) -> None:
    languages = tuple(app.config["LANGUAGES"])
    app.extensions["editions"] = EditionsState(
        default=str(app.config["BABEL_DEFAULT_LOCALE"]),
        languages=languages,
        endpoints=set(),
        every_edition=set(),
    )
    app.url_value_preprocessor(take_edition_from_url)
    app.url_defaults(build_in_current_edition)
    app.add_template_global(editions, "site_editions")
    app.add_template_global(alternate_links)


def state(app: Flask | None = None) -> EditionsState:
    return (app or current_app).extensions["editions"]


def declare_edition_endpoint(app: Flask, endpoint: str, *, every_edition: bool = False) -> None:
    """Serve ``endpoint`` in every edition. ``every_edition``: the page is the same page in
    each language (a front page, the cookie policy), not one that exists in one language only
    (an article, a section), so it is linked across editions and named in ``hreflang``."""
    editions_state = state(app)
    editions_state.endpoints.add(endpoint)
    if every_edition:
        editions_state.every_edition.add(endpoint)


def add_edition_rules(app: Flask) -> None:
    """Give each edition endpoint its rules under every other language's prefix. Called once
    every package is registered. The redirect of the bare ``/`` and the ``Content-Language``
    are steps of ``pipeline``."""
    editions_state = state(app)
    if not editions_state.prefixed:
        return
    prefix = f"/<any({', '.join(editions_state.prefixed)}):lang>"
    for rule in list(app.url_map.iter_rules()):
        if rule.endpoint in editions_state.endpoints:
            app.url_map.add(Rule(prefix + rule.rule, **rule.get_empty_kwargs()))


def take_edition_from_url(endpoint: str | None, values: dict[str, Any] | None) -> None:
    editions_state = state()
    if endpoint in editions_state.endpoints:
        g.edition = (values or {}).pop("lang", editions_state.default)


def build_in_current_edition(endpoint: str, values: dict[str, Any]) -> None:
    editions_state = state()
    if endpoint not in editions_state.endpoints:
        return
    language = values.pop("lang", None) or current_edition()
    if language not in editions_state.languages:
        raise ValueError(f"no {language!r} edition: the editions are {editions_state.languages}")
    if language != editions_state.default:
        values["lang"] = language


def current_edition() -> str:
    """The language of the page being served: its URL's prefix, else the default. A path that
    matches no rule (a 404) is still answered in the language its prefix names."""
    editions_state = state()
    if not has_request_context():
        return editions_state.default
    edition = g.get("edition")
    if edition is not None:
        return str(edition)
    first = request.path.split("/", 2)[1] if request.path.startswith("/") else ""
    return first if first in editions_state.prefixed else editions_state.default


def preferred_edition(environ: dict[str, Any], languages: tuple[str, ...], default: str) -> str:
    """The edition to send a request for the bare ``/`` to, or "" to serve it as it is.

    Only a GET or HEAD of ``/`` itself, with no query, from outside the site; the browser's
    ``Accept-Language`` decides among the editions, English when it names none of them.
    """
    if environ.get("PATH_INFO") != "/" or environ.get("QUERY_STRING"):
        return ""
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return ""
    if environ.get("HTTP_SEC_FETCH_SITE") == "same-origin":
        return ""
    header = environ.get("HTTP_ACCEPT_LANGUAGE")
    if not header:
        return ""
    best = parse_accept_header(header, LanguageAccept).best_match(languages, default=default)
    return "" if best == default or best is None else best


def send_to_preferred_edition() -> ResponseReturnValue | None:
    if request.endpoint != FRONT_PAGE or request.path != "/":
        return None
    editions_state = state()
    language = preferred_edition(request.environ, editions_state.languages, editions_state.default)
    if not language:
        return None
    response = redirect(url_for(FRONT_PAGE, lang=language), 302)
    response.vary.update(NEGOTIATED_VARY)
    return response


def say_the_language_and_vary_the_negotiated_front_page(response: Response) -> Response:
    """Every page says its language (``Content-Language``); the bare ``/`` says what its
    redirect depends on."""
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Language", current_edition())
    if request.path == "/" and not request.query_string:
        response.vary.update(NEGOTIATED_VARY)
    return response


def editions() -> list[Edition]:
    """Every edition, as a link from the page being rendered (the language switcher)."""
    editions_state = state()
    here = current_edition()
    same_page = request.endpoint in editions_state.every_edition
    endpoint = request.endpoint if same_page and request.endpoint else FRONT_PAGE
    values = dict(request.view_args or {}) if same_page else {}
    return [
        Edition(
            language=language,
            name=endonym(language),
            url=url_for(endpoint, lang=language, **values),
            current=language == here,
            same_page=same_page,
        )
        for language in editions_state.languages
    ]


@lru_cache(maxsize=16)
def endonym(language: str) -> str:
    """The language's name in itself, as its readers look for it: "Deutsch", "Français"."""
    name = Locale.parse(language).get_display_name(language) or language
    return name[:1].upper() + name[1:]


def alternates(endpoint: str, **values: Any) -> list[tuple[str, str]]:
    """``(hreflang, path)`` of a page every edition has, in each edition and as ``x-default``
    (the default edition's): what its head and the sitemap name."""
    editions_state = state()
    links = [
        (language, url_for(endpoint, lang=language, **values))
        for language in editions_state.languages
    ]
    return [*links, ("x-default", dict(links)[editions_state.default])]


def alternate_links() -> list[tuple[str, str]]:
    """The current page's alternates (``alternates``); none for a page in one language or a
    page with a query (a later page of a list, a search)."""
    if request.endpoint not in state().every_edition or request.args:
        return []
    return alternates(request.endpoint, **(request.view_args or {}))
