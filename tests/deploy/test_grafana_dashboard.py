"""deploy/grafana-dashboard.json: a dashboard Grafana can import, naming only metrics the site
exports. Grafana is not run; the JSON is read."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator

from globalupdates.config import PROJECT_ROOT
from tests.support.consent import choose

DASHBOARD = PROJECT_ROOT / "deploy" / "grafana-dashboard.json"
GRID_COLUMNS = 24  # Grafana's dashboard grid
STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
LABEL_MATCHERS = re.compile(r"\{[^}]*\}")
RANGES = re.compile(r"\[[^\]]*\]")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
IDENTIFIER = re.compile(r"(?<![\w.$])([A-Za-z_:][\w:]*)(\s*\()?")
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
KEYWORDS |= {"group_left", "group_right", "inf", "nan"}
SERIES_SUFFIXES = {"counter": ("", "_total", "_created")}
SERIES_SUFFIXES["histogram"] = ("_bucket", "_sum", "_count", "_created")
SAMPLE_NAME = re.compile(r"[A-Za-z_:][\w:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: its identifiers once strings, label
    matchers, ranges and grouping clauses are taken out, less function calls and keywords."""
    bare = GROUPING.sub(" ", RANGES.sub(" ", LABEL_MATCHERS.sub(" ", STRING.sub(" ", expr))))
    return {
        match.group(1)
        for match in IDENTIFIER.finditer(bare)
        if not match.group(2) and match.group(1).lower() not in KEYWORDS
    }


def dashboard_exprs(dashboard: dict) -> Iterator[str]:
    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield target["expr"]


def panels(items: Iterable[dict]) -> Iterator[dict]:
    for item in items:
        yield item
        yield from panels(item.get("panels", []))


def exported_series(metrics_text: str) -> set[str]:
    """Every series name a /metrics answer (Prometheus text format) offers: each sample's, and
    each declared family's with the suffixes its type gives it, so that a family not yet
    counted (no sample) still counts. A histogram's own name is never a series."""
    names = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names.update(name + suffix for suffix in SERIES_SUFFIXES.get(kind, ("",)))
        elif line and not line.startswith("#"):
            match = SAMPLE_NAME.match(line)
            assert match, f"not a sample line: {line}"
            names.add(match.group())
    return names


def unknown_metrics(exprs: Iterable[str], exported: set[str]) -> dict[str, set[str]]:
    unknown = {expr: metric_names(expr) - exported for expr in exprs}
    return {expr: names for expr, names in unknown.items() if names}


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_promql_names_are_read_as_prometheus_reads_them():
    expr = (
        'histogram_quantile(0.95, sum by (le, group) (rate(gu_seconds_bucket{group!="a{b}",'
        'x=~"y|z"}[$__rate_interval] offset 5m))) / on (group) group_left bool gu_other'
        " and sum without (edition) (gu_third_total) or vector(1)"
    )
    assert metric_names(expr) == {"gu_seconds_bucket", "gu_other", "gu_third_total"}
    assert metric_names("max(gu_age_seconds) > 1e3") == {"gu_age_seconds"}


def test_a_dashboard_naming_a_metric_the_site_lacks_is_caught():
    exported = exported_series(
        '# TYPE gu_choices counter\ngu_choices_total{action="custom"} 1.0\n'
        "# TYPE gu_seconds histogram\n"
    )
    assert unknown_metrics(["sum(rate(gu_choices_total[5m]))"], exported) == {}
    assert unknown_metrics(["rate(gu_seconds_bucket[5m])"], exported) == {}
    typo = "sum(rate(gu_choice_total[5m]))"
    assert unknown_metrics([typo, "gu_seconds"], exported) == {
        typo: {"gu_choice_total"},
        "gu_seconds": {"gu_seconds"},
    }


def test_the_dashboard_is_importable():
    dashboard = load_dashboard()
    assert dashboard["title"] and dashboard["uid"] and dashboard["schemaVersion"] >= 36
    variables = {item["name"]: item for item in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    every_panel = list(panels(dashboard["panels"]))
    ids = [panel["id"] for panel in every_panel]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    cells: dict[tuple[int, int], str] = {}
    for panel in every_panel:
        assert panel["title"] and set(panel["gridPos"]) == {"h", "w", "x", "y"}
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, f"{panel['title']} is wider than the grid"
        for row in range(grid["y"], grid["y"] + grid["h"]):
            for column in range(grid["x"], grid["x"] + grid["w"]):
                other = cells.setdefault((row, column), panel["title"])
                assert other == panel["title"], f"{panel['title']} covers {other}"
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert metric_names(target["expr"]), f"{panel['title']}: {target['expr']}"


def test_the_dashboard_shows_what_an_operator_looks_at_first():
    names = set().union(*map(metric_names, dashboard_exprs(load_dashboard())))
    for metric in (
        "globalupdates_choices_total",
        "globalupdates_choice_grants_total",
        "globalupdates_responses_total",
        "globalupdates_http_request_duration_seconds_bucket",
        "globalupdates_database_errors_total",
        "globalupdates_cache_errors_total",
        "globalupdates_rate_limit_refusals_total",
        "globalupdates_forgery_refusals_total",
    ):
        assert metric in names, metric


def test_the_dashboard_names_only_metrics_the_site_exports(app_factory, tmp_path):
    """After a page and a choice, on a site whose operator keeps checkpoints (the checkpoint
    age is exported only then), every series the dashboard asks for is in /metrics."""
    checkpoints = tmp_path / "checkpoints.jsonl"
    app = app_factory(CONSENT_CHECKPOINT_FILE=str(checkpoints))
    client = app.test_client()
    assert client.get("/").status_code == 200
    assert choose(client, "accept_all").status_code == 303
    result = app.test_cli_runner().invoke(args=["consent", "checkpoint", "-o", str(checkpoints)])
    assert result.exit_code == 0, result.output
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == 200, "the site serves no /metrics to loopback"
    exported = exported_series(response.get_data(as_text=True))
    assert unknown_metrics(dashboard_exprs(load_dashboard()), exported) == {}
