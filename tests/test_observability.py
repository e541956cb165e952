"""The observability files of a render with use_prometheus: Prometheus' configuration and
alert rules pass promtool (its checks and the rules' unit tests), the Grafana dashboard
and provisioning agree, and the compose `observability` profile mounts what exists.

promtool comes from Debian's `prometheus` package, installed once per run when missing.
The render's own tests/test_metrics.py checks that every series the dashboard and the
rules query is in a real scrape (the install tests run it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import describe, run

Project = Callable[..., Path]
RENDERS = [
    pytest.param({"use_redis": False, "use_websocket": True}, id="memory-jobs"),
    pytest.param(
        {"use_redis": True, "use_websocket": False, "use_graphql": False}, id="redis-no-ws"
    ),
]
PROFILE_SERVICES = {"prometheus", "grafana", "loki", "alloy"}


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool, from Debian's prometheus package if it is not installed yet."""
    found = shutil.which("promtool")
    if found:
        return found
    if shutil.which("apt-get") is None:
        message = "promtool is missing and apt-get is not here to install it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    command = ["apt-get", "install", "-y", "--no-install-recommends", "prometheus"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    found = shutil.which("promtool")
    assert found, f"`{' '.join(command)}` did not install promtool:\n{result.stderr}"
    return found


@pytest.mark.parametrize("answers", RENDERS)
def test_prometheus_config_and_rules_pass_promtool(
    project_of: Project, promtool: str, answers: dict[str, Any]
) -> None:
    folder = project_of(**answers) / "observability" / "prometheus"
    for command in (
        ["check", "config", "prometheus.yml"],  # checks the rule files it names, too
        ["check", "rules", "rules.yml"],
        ["test", "rules", "rules.test.yml"],
    ):
        result = run([promtool, *command], cwd=folder, timeout=120)
        assert result.returncode == 0, describe(result)


@pytest.mark.parametrize("answers", RENDERS)
def test_prometheus_scrapes_the_api_and_the_worker_when_there_is_one(
    project_of: Project, answers: dict[str, Any]
) -> None:
    project = project_of(**answers)
    config = yaml.safe_load((project / "observability/prometheus/prometheus.yml").read_text())
    scrapes = config["scrape_configs"]
    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in scrapes}
    expected = {"app": ["app:8000"]}
    if answers["use_redis"]:
        expected["worker"] = ["worker:9101"]  # WORKER_METRICS_PORT's default
        settings = (project / "src/ai_service/config/metrics.py").read_text()
        assert "worker_metrics_port: int = Field(default=9101" in settings
    assert jobs == expected


@pytest.mark.parametrize("answers", RENDERS)
def test_dashboard_uses_the_provisioned_data_sources(
    project_of: Project, answers: dict[str, Any]
) -> None:
    grafana = project_of(**answers) / "observability" / "grafana"
    dashboard = json.loads((grafana / "dashboards" / "llm.json").read_text())
    (sources,) = [
        yaml.safe_load(path.read_text())
        for path in (grafana / "provisioning" / "datasources").glob("*.yml")
    ]
    uids = {source["uid"]: source["type"] for source in sources["datasources"]}
    titles = [panel["title"] for panel in dashboard["panels"]]
    assert len(titles) == len(set(titles)) >= 12
    assert ("WebSocket sessions" in titles) is answers["use_websocket"]
    for panel in dashboard["panels"]:
        source = panel["datasource"]
        assert uids.get(source["uid"]) == source["type"], panel["title"]
        assert panel["targets"], panel["title"]
        assert all(target["expr"] for target in panel["targets"]), panel["title"]
        assert panel["description"], panel["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("answers", RENDERS)
def test_compose_observability_profile_mounts_what_the_render_has(
    project_of: Project, answers: dict[str, Any]
) -> None:
    project = project_of(**answers)
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    profiled = {name for name, service in compose["services"].items() if service.get("profiles")}
    assert profiled == PROFILE_SERVICES
    for name in PROFILE_SERVICES:
        service = compose["services"][name]
        assert service["profiles"] == ["observability"], name
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("./"):
                assert (project / source).exists(), f"{name} mounts {source}, not in the render"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
    if answers["use_redis"]:  # reachable by Prometheus: not on the 127.0.0.1 of .env
        assert compose["services"]["worker"]["environment"]["HOST"] == "0.0.0.0"  # noqa: S104


def test_without_prometheus_nothing_of_it_is_rendered(project_of: Project) -> None:
    project = project_of(use_prometheus=False)
    assert not (project / "observability").exists()
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    assert not PROFILE_SERVICES & set(compose["services"])
    assert "prometheus" not in (project / "pyproject.toml").read_text()
    for module in ("main.py", "services.py", "__main__.py", "jobs/worker.py"):
        path = project / "src" / "ai_service" / module
        if path.exists():
            assert "core.metrics" not in path.read_text(), module
