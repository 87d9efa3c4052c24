"""The order of the request hooks, and a package that imports without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import globalupdates.consent as consent_engine
from globalupdates import editions, forgery, ratelimits, security
from globalupdates.config import PROJECT_ROOT
from globalupdates.consent.web import request_hooks as gate


def hook_name(hook: object) -> str:
    return getattr(hook, "__qualname__", None) or repr(hook)


def test_the_forgery_check_runs_first_then_the_consent_then_the_rate_limits(app):
    assert app.before_request_funcs[None] == [
        forgery.refuse_cross_origin_requests,
        gate.resolve_consent,
        ratelimits.check_limits_of_unsafe_requests,
        editions.send_to_preferred_edition,
    ]


def test_the_consent_step_runs_after_every_other_after_request_hook(app):
    """Flask runs the list from its end: the first entry runs last."""
    hooks = app.after_request_funcs[None]
    assert hooks[0] is gate.apply_consent_to_response, [hook_name(h) for h in hooks]
    assert security.add_security_headers in hooks[1:]
    assert sum(hook is gate.apply_consent_to_response for hook in hooks) == 1


def test_a_hook_registered_ahead_of_the_consent_step_still_meets_the_firewall(app, client):
    """Any hook behind the first entry of the list runs before the consent step, so a cookie
    it sets without a grant is stripped and the policy it writes is replaced."""

    def set_an_analytics_cookie(response):
        response.set_cookie("_ga", "GA1.1.1.1")
        response.headers["Content-Security-Policy"] = "default-src *"
        return response

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
LONGER_WITH_ONE_JOB = {
    f"{CONSENT}.model.registry_file": "reads and checks registry.toml, every table of it",
}


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
