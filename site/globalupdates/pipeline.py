"""The request pipeline: every step Flask runs around a view, in the order it runs them.

Read ``BEFORE_VIEW`` and ``AFTER_VIEW`` top to bottom: that is the order of a request. Each
step is a function of the module that owns it; ``register`` adds them to the app through
Flask's public ``before_request`` and ``after_request`` and nothing else adds a request hook,
so no module has to push itself to the front of Flask's lists.

Flask-Limiter registers its own hooks when it is bound to an app (its check before the view,
its headers after it, its clean-up at the end of the request), so it has one entry in each
list, ``ratelimits.FLASK_LIMITER``: ``register`` binds it at the point where both its
places are reached. Flask runs after-request hooks last-registered first; ``register`` deals
with that, so ``AFTER_VIEW`` is in the order the hooks run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask

from . import assets, editions, forgery, ratelimits, security
from .consent.web.request_hooks import apply_consent_to_response, resolve_consent
from .metrics import requests as request_metrics


@dataclass(frozen=True)
class ExtensionHooks:
    """An extension that adds its own request hooks when it is bound to an app."""

    name: str
    bind: Callable[[Flask], None]


Step = Callable[..., Any] | ExtensionHooks

FLASK_LIMITER = ExtensionHooks("Flask-Limiter", ratelimits.bind_limiter)

BEFORE_VIEW: tuple[Step, ...] = (
    request_metrics.start_timing,
    forgery.refuse_cross_origin_requests,
    resolve_consent,
    FLASK_LIMITER,
    editions.send_to_preferred_edition,
)

AFTER_VIEW: tuple[Step, ...] = (
    editions.say_the_language_and_vary_the_negotiated_front_page,
    FLASK_LIMITER,
    security.add_security_headers,
    assets.cache_digested_files_for_good,
    request_metrics.count_request,
    apply_consent_to_response,
)


def step_name(step: Step) -> str:
    """The name docs/architecture.md gives a step: its module within the package and its own
    name (``consent.web.request_hooks.resolve_consent``), or the extension's name."""
    if isinstance(step, ExtensionHooks):
        return step.name
    module = step.__module__.removeprefix(f"{__package__}.")
    return f"{module}.{step.__qualname__}"


METRIC_STEPS = (request_metrics.start_timing, request_metrics.count_request)


def steps_for(app: Flask, steps: Iterable[Step]) -> list[Step]:
    """``steps``, without the metrics' own when ``METRICS_ENABLED`` is false."""
    if app.config.get("METRICS_ENABLED", True):
        return list(steps)
    return [step for step in steps if step not in METRIC_STEPS]


def register(app: Flask) -> None:
    """Add every step to ``app``, each extension bound once both its places are reached."""
    before = steps_for(app, BEFORE_VIEW)
    after = steps_for(app, reversed(AFTER_VIEW))  # Flask runs the last registered first
    extensions = [step for step in before if isinstance(step, ExtensionHooks)]
    if extensions != [step for step in after if isinstance(step, ExtensionHooks)]:
        raise RuntimeError("the extensions' before and after steps cross: bind order is unclear")
    for extension in extensions:
        add_hooks(app.before_request, take_until(before, extension))
        add_hooks(app.after_request, take_until(after, extension))
        extension.bind(app)
    add_hooks(app.before_request, before)
    add_hooks(app.after_request, after)


def take_until(steps: list[Step], extension: ExtensionHooks) -> list[Step]:
    """The steps ahead of ``extension``, taken out of ``steps`` with the extension itself."""
    index = steps.index(extension)
    taken = steps[:index]
    del steps[: index + 1]
    return taken


def add_hooks(add: Callable[[Any], Any], steps: Sequence[Step]) -> None:
    for step in steps:
        add(step)
