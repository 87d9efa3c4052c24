"""The order of the request hooks (``pipeline``), and a package that imports without a cycle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from flask import Flask

import globalupdates.consent as consent_engine
from globalupdates import pipeline
from globalupdates.config import PROJECT_ROOT
from globalupdates.consent.web import request_hooks as gate
from tests.test_docs import HEADING, prose_lines_keeping_code

ARCHITECTURE = PROJECT_ROOT / "docs" / "architecture.md"

# Every function Flask calls around a view, in the order Flask keeps them. Flask runs the
# after-request list from its end, so its first entry runs last.
BEFORE_REQUEST = [
    "globalupdates.metrics.requests.start_timing",
    "globalupdates.forgery.refuse_cross_origin_requests",
    "globalupdates.consent.web.request_hooks.resolve_consent",
    "flask_limiter._extension.Limiter._check_request_limit",
    "globalupdates.editions.send_to_preferred_edition",
]
AFTER_REQUEST = [
    "globalupdates.consent.web.request_hooks.apply_consent_to_response",
    "globalupdates.metrics.requests.count_request",
    "globalupdates.assets.cache_digested_files_for_good",
    "globalupdates.security.add_security_headers",
    "flask_limiter._extension.Limiter.__inject_headers",
    "globalupdates.editions.say_the_language_and_vary_the_negotiated_front_page",
]
TEARDOWN_REQUEST = ["flask_limiter._extension.Limiter.__release_context"]
TEARDOWN_APPCONTEXT = ["flask_sqlalchemy.extension.SQLAlchemy._teardown_session"]
URL_VALUE_PREPROCESSORS = ["globalupdates.editions.take_edition_from_url"]
LIMITER_HOOKS = {
    "before": "flask_limiter._extension.Limiter._check_request_limit",
    "after": "flask_limiter._extension.Limiter.__inject_headers",
}


def hook_name(hook: object) -> str:
    """Module and qualified name of a hook: a bound method's function, a partial's function."""
    function = getattr(hook, "func", None) or getattr(hook, "__func__", None) or hook
    return f"{function.__module__}.{function.__qualname__}"


def hook_names(hooks: dict | list) -> list[str] | dict[object, list[str]]:
    if isinstance(hooks, dict):
        return {key: [hook_name(hook) for hook in value] for key, value in hooks.items()}
    return [hook_name(hook) for hook in hooks]


def test_every_request_hook_runs_in_the_pinned_order(app):
    """The whole of what Flask will call, before, after and at the end of a request: moving,
    adding or dropping any hook fails here."""
    assert hook_names(app.url_value_preprocessors) == {None: URL_VALUE_PREPROCESSORS}
    assert hook_names(app.before_request_funcs) == {None: BEFORE_REQUEST}
    assert hook_names(app.after_request_funcs) == {None: AFTER_REQUEST}
    assert hook_names(app.teardown_request_funcs) == {None: TEARDOWN_REQUEST}
    assert hook_names(app.teardown_appcontext_funcs) == TEARDOWN_APPCONTEXT


def expected_hooks(steps: tuple[pipeline.Step, ...], place: str) -> list[str]:
    return [
        LIMITER_HOOKS[place] if step is pipeline.FLASK_LIMITER else hook_name(step)
        for step in steps
    ]


def test_the_pipeline_lists_are_the_order_flask_runs(app):
    """``pipeline.BEFORE_VIEW`` and ``AFTER_VIEW`` read top to bottom are the order of a
    request; Flask keeps the after-request hooks the other way round."""
    assert hook_names(app.before_request_funcs[None]) == expected_hooks(
        pipeline.BEFORE_VIEW, "before"
    )
    assert hook_names(app.after_request_funcs[None][::-1]) == expected_hooks(
        pipeline.AFTER_VIEW, "after"
    )


def test_an_extension_whose_steps_cross_is_refused(monkeypatch):
    """Two extensions that each add a before and an after hook can only be bound in one
    order; a pipeline that asks for the other is an error at start-up, not a silent swap."""
    first = pipeline.ExtensionHooks("first", lambda app: None)
    second = pipeline.ExtensionHooks("second", lambda app: None)
    monkeypatch.setattr(pipeline, "BEFORE_VIEW", (first, second))
    monkeypatch.setattr(pipeline, "AFTER_VIEW", (first, second))
    with pytest.raises(RuntimeError, match="cross"):
        pipeline.register(Flask(__name__))


def test_two_extensions_are_bound_where_both_their_places_are_reached(monkeypatch):
    app = Flask(__name__)

    def step(name: str):
        def hook(*args: object) -> None:
            return None

        hook.__qualname__ = name
        return hook

    a, b, c, d = (step(name) for name in "abcd")

    def binder(name: str):
        def bind(bound: Flask) -> None:
            bound.before_request(step(f"{name}-before"))
            bound.after_request(step(f"{name}-after"))

        return bind

    first = pipeline.ExtensionHooks("first", binder("first"))
    second = pipeline.ExtensionHooks("second", binder("second"))
    monkeypatch.setattr(pipeline, "BEFORE_VIEW", (a, first, b, second))
    monkeypatch.setattr(pipeline, "AFTER_VIEW", (c, second, d, first))
    pipeline.register(app)
    names = {
        place: [hook.__qualname__ for hook in hooks[None]]
        for place, hooks in (
            ("before", app.before_request_funcs),
            ("after", app.after_request_funcs),
        )
    }
    assert names["before"] == ["a", "first-before", "b", "second-before"]
    assert names["after"][::-1] == ["c", "second-after", "d", "first-after"]


def documented_steps(heading: str, list_title: str) -> list[str]:
    """The first code span of each numbered item after ``list_title`` in a section."""
    steps: list[str] = []
    in_section = in_list = False
    for line in prose_lines_keeping_code(ARCHITECTURE.read_text(encoding="utf-8")):
        found = HEADING.match(line)
        if found:
            in_section = found.group(2) == heading
            in_list = False
            continue
        if not in_section:
            continue
        if line.startswith(list_title):
            in_list = True
            continue
        item = re.match(r"\d+\. `([^`]+)`", line)
        if in_list and item:
            steps.append(item.group(1))
        elif in_list and steps and line and not line.startswith(" "):
            break
    return steps


def test_the_architecture_guide_lists_the_steps_in_the_order_they_run():
    before = documented_steps("Request hooks, in order", "Before the view")
    after = documented_steps("Request hooks, in order", "After the view")
    assert before == [pipeline.step_name(step) for step in pipeline.BEFORE_VIEW]
    assert after == [pipeline.step_name(step) for step in pipeline.AFTER_VIEW]


EXTENSION_INSTANCES = {"db", "babel", "page_cache", "static_digest", "limiter"}
HOOK_LISTS = re.compile(r"^(before|after|teardown)_(request|appcontext)_funcs$")


def reaching_in(name: str, path: Path) -> set[tuple[str, str, str]]:
    """Where a module reaches into an extension or reorders Flask's hook lists: a private
    attribute of an extension instance, an import from an extension's private module, and any
    use of Flask's hook lists other than reading them."""
    found: set[tuple[str, str, str]] = set()

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef) else function
            if isinstance(child, ast.Attribute) and isinstance(child.value, ast.Name):
                private = child.attr.startswith("_") and not child.attr.startswith("__")
                if private and child.value.id in EXTENSION_INSTANCES:
                    found.add((name, function, f"{child.value.id}.{child.attr}"))
            if isinstance(child, ast.Attribute) and HOOK_LISTS.match(child.attr):
                found.add((name, function, child.attr))
            if isinstance(child, ast.ImportFrom) and child.module and not child.level:
                parts = child.module.split(".")
                if parts[0].startswith("flask_") and any(p.startswith("_") for p in parts[1:]):
                    found.add((name, function, f"import {child.module}"))
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), "<module>")
    return found


def test_no_module_reorders_flask_hooks_or_reaches_into_an_extension():
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    found = set().union(*(reaching_in(name, path) for name, path in paths.items()))
    assert found == set()


def test_the_source_check_finds_an_insert_at_the_front_and_a_private_attribute(tmp_path):
    module = tmp_path / "hooks.py"
    module.write_text(
        "from flask_limiter._limits import RuntimeLimit\n"
        "def init_app(app):\n"
        "    app.before_request_funcs.setdefault(None, []).insert(0, check)\n"
        "    limiter._key_prefix = 'a'\n",
        encoding="utf-8",
    )
    assert reaching_in("hooks", module) == {
        ("hooks", "<module>", "import flask_limiter._limits"),
        ("hooks", "init_app", "before_request_funcs"),
        ("hooks", "init_app", "limiter._key_prefix"),
    }


def test_a_hook_registered_ahead_of_the_consent_step_still_meets_the_firewall(app, client):
    """Any hook behind the first entry of the list runs before the consent step, so a cookie
    it sets without a grant is stripped and the policy it writes is replaced."""

    def set_an_analytics_cookie(response):
        response.set_cookie("_ga", "GA1.1.1.1")
        response.headers["Content-Security-Policy"] = "default-src *"
        return response

    assert app.after_request_funcs[None][0] is gate.apply_consent_to_response
    app.after_request_funcs[None].insert(1, set_an_analytics_cookie)
    response = client.get("/cookie-policy")
    assert "_ga=" not in " ".join(response.headers.getlist("Set-Cookie"))
    assert response.headers["Content-Security-Policy"] != "default-src *"


SOURCE_ROOT = PROJECT_ROOT / "site"
PACKAGE = SOURCE_ROOT / "globalupdates"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(name: str, path: Path) -> list[tuple[str, str | None]]:
    """Every import in ``path``, inside functions too, as (module, name imported from it);
    the name is None for ``import module``. Relative imports are made absolute."""
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            anchor = base[: len(base) - node.level + 1] if node.level else []
            target = ".".join(anchor + ([node.module] if node.module else []))
            found.extend((target, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend((alias.name, None) for alias in node.names)
    return found


def imported_modules(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports anywhere, inside functions too."""
    found: set[str] = set()
    for target, imported in imports_of(name, path):
        submodule = f"{target}.{imported}"
        found.add(submodule if imported is not None and submodule in modules else target)
    return (found & modules) - {name}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles among the modules; a module importing its own package's ``__init__`` (which
    re-exports it) does not count."""
    cycles: list[list[str]] = []
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        visiting.append(name)
        for target in sorted(graph[name]):
            if name.startswith(target + "."):
                continue
            if target in visiting:
                cycles.append(visiting[visiting.index(target) :] + [target])
            elif target not in done:
                visit(target)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            visit(name)
    return cycles


def test_no_two_modules_of_the_package_import_each_other():
    """Counting imports hidden inside functions: such a cycle is one a change of import order
    turns into an ImportError at start-up."""
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {name: imported_modules(name, path, set(paths)) for name, path in paths.items()}
    assert "globalupdates.consent.web.engine" in graph["globalupdates.consent.web.request_hooks"]
    assert import_cycles(graph) == []


def test_the_cycle_check_finds_a_cycle_hidden_in_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c", "a"]]


def package_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: imported_modules(name, path, set(paths)) for name, path in paths.items()}


CONSENT = "globalupdates.consent"
# The consent engine's rooms, each importing only from the rooms before it: the model knows
# no request, database or page; the proof only the records; the web part what readers meet;
# the reporting is the operator's.
CONSENT_ROOMS = ("model", "proof", "web", "reporting")


def room_of(module: str) -> str | None:
    """The consent room ``module`` belongs to; None for the engine's own ``__init__``."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 else None


def rank_of(module: str) -> int:
    """The place of ``module``'s room in ``CONSENT_ROOMS``; the engine's ``__init__``, which
    registers every room, comes after them all, as does a module in no known room."""
    room = room_of(module)
    return CONSENT_ROOMS.index(room) if room in CONSENT_ROOMS else len(CONSENT_ROOMS)


def wrong_way(name: str, target: str) -> bool:
    if target.startswith(("globalupdates.articles", "globalupdates.features")):
        return True
    if name == CONSENT or not target.startswith(CONSENT):
        return False
    return target == CONSENT or rank_of(target) > rank_of(name)


def room_arrows(graph: dict[str, set[str]]) -> list[str]:
    """Every import in the consent engine that points the wrong way: from anywhere in the
    engine to articles or features, from one room to a room after it, or from inside a room
    to the engine's ``__init__`` (which imports every room)."""
    return [
        f"{name} -> {target}"
        for name in sorted(m for m in graph if m == CONSENT or m.startswith(CONSENT + "."))
        for target in sorted(graph[name])
        if wrong_way(name, target)
    ]


def test_every_module_of_the_consent_engine_is_in_one_of_its_rooms():
    graph = package_graph()
    outside = sorted(
        name
        for name in graph
        if name.startswith(CONSENT + ".") and room_of(name) not in CONSENT_ROOMS
    )
    assert outside == []
    assert {room_of(name) for name in graph if name.startswith(CONSENT + ".")} == set(CONSENT_ROOMS)


def test_each_consent_room_imports_only_the_rooms_before_it_and_nothing_of_articles():
    """From the engine to articles or features there is no arrow, and between its rooms
    only from a later one to an earlier one: so the rooms never form a cycle either."""
    graph = package_graph()
    assert f"{CONSENT}.proof.chain" in graph[f"{CONSENT}.web.views"]
    assert room_arrows(graph) == []


def test_the_room_check_finds_an_arrow_the_wrong_way():
    graph = {
        CONSENT: {"globalupdates.features", f"{CONSENT}.web.views"},
        f"{CONSENT}.model.choice": {f"{CONSENT}.web.views"},
        f"{CONSENT}.proof.chain": {f"{CONSENT}.model.choice", CONSENT},
        f"{CONSENT}.web.views": {"globalupdates.articles.views", f"{CONSENT}.proof.chain"},
        f"{CONSENT}.reporting.stats": {f"{CONSENT}.web.views"},
    }
    assert room_arrows(graph) == [
        f"{CONSENT} -> globalupdates.features",
        f"{CONSENT}.model.choice -> {CONSENT}.web.views",
        f"{CONSENT}.proof.chain -> {CONSENT}",
        f"{CONSENT}.web.views -> globalupdates.articles.views",
    ]


def public_surface_breaches(modules: dict[str, Path]) -> list[str]:
    """Imports of the consent engine in ``modules`` (name: path) that reach past its public
    surface: any module inside it, or a name its ``__init__`` does not list in ``__all__``."""
    public = set(consent_engine.__all__)
    breaches = []
    for name, path in sorted(modules.items()):
        for target, imported in imports_of(name, path):
            if target.startswith(CONSENT + ".") or (target == CONSENT and imported is None):
                breaches.append(f"{name} imports {target}")
            elif target == CONSENT and imported not in public:
                breaches.append(f"{name} imports {imported} from {CONSENT}")
    return breaches


def test_articles_and_features_use_only_the_consent_engines_public_surface():
    assert all(hasattr(consent_engine, name) for name in consent_engine.__all__)
    for package in ("articles", "features"):
        modules = {module_name(path): path for path in (PACKAGE / package).rglob("*.py")}
        assert f"globalupdates.{package}.views" in modules
        assert public_surface_breaches(modules) == [], package


def test_the_surface_check_finds_an_import_from_inside_the_engine(tmp_path):
    module = tmp_path / "embeds.py"
    module.write_text(
        "from ..consent import current_consent, init_gate\n"
        "from ..consent.web.embed_providers import declared_provider\n"
        "import globalupdates.consent\n",
        encoding="utf-8",
    )
    assert public_surface_breaches({"globalupdates.articles.embeds": module}) == [
        f"globalupdates.articles.embeds imports init_gate from {CONSENT}",
        f"globalupdates.articles.embeds imports {CONSENT}.web.embed_providers",
        f"globalupdates.articles.embeds imports {CONSENT}",
    ]


# A module of the engine longer than this is one that does two jobs, unless named here with
# the one job it does.
LONGEST_MODULE = 400
LONGER_WITH_ONE_JOB: dict[str, str] = {}


def test_no_consent_module_is_longer_than_one_job_needs():
    lengths = {
        module_name(path): len(path.read_text(encoding="utf-8").splitlines())
        for path in (PACKAGE / "consent").rglob("*.py")
    }
    too_long = {
        name: lines
        for name, lines in lengths.items()
        if lines > LONGEST_MODULE and name not in LONGER_WITH_ONE_JOB
    }
    assert too_long == {}
    assert all(lengths[name] > LONGEST_MODULE for name in LONGER_WITH_ONE_JOB)


def documented_rooms(text: str) -> set[str]:
    """The modules the table of the consent engine's rooms in docs/architecture.md names, as
    ``room/module.py`` (a row with an empty first cell is in the room above it)."""
    section = text.split("### The consent engine's rooms", 1)[1].split("\n\n|", 1)[1]
    named: set[str] = set()
    room = ""
    for row in ("|" + section).split("\n\n", 1)[0].splitlines()[2:]:
        cells = [cell.strip().strip("`") for cell in row.strip("|").split("|")]
        room = cells[0] or room
        named.add(room.removeprefix("consent/") + cells[1])
    return named


def test_the_architecture_names_every_module_of_the_consent_engine_in_its_room():
    text = (PROJECT_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    consent = PACKAGE / "consent"
    modules = {
        path.relative_to(consent).as_posix()
        for path in [*consent.rglob("*.py"), consent / "registry.toml"]
        if path.parent == consent or path.name != "__init__.py"
    }
    assert documented_rooms(text) == modules
