"""The order of the request hooks, and a package that imports without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

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


def imported_modules(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports anywhere, inside functions too."""
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            anchor = base[: len(base) - node.level + 1] if node.level else []
            target = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in modules else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
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
