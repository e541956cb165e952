"""The k8s/ manifests agree with the service they deploy.

Every variable they set is a setting the service reads, with a value it accepts; the
probes ask for routes the app serves, on the port it listens on; containers run
commands the CLI knows; and pods outlive the shutdown drain before Kubernetes kills them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
{%- if not cookiecutter.use_redis %}
from inspect import signature
{%- endif %}
from pathlib import Path
from typing import Any, cast

import pytest
import uvicorn
import yaml
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.__main__ import build_parser
{%- if not cookiecutter.use_redis %}
from {{ cookiecutter.project_slug }}.jobs.memory import InProcessJobQueue
{%- endif %}
from {{ cookiecutter.project_slug }}.settings import Settings

K8S = Path(__file__).resolve().parents[1] / "k8s"
BASE = K8S / "base"
NAME = "{{ cookiecutter.project_slug | replace('_', '-') }}"  # of the Kubernetes objects
# Read by uvicorn itself (which proxies' X-Forwarded-* headers to trust), not by Settings.
SERVER_VARIABLES = frozenset({"FORWARDED_ALLOW_IPS"})
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def read_env_file(path: Path) -> dict[str, str]:
    """A kustomize / `kubectl --from-env-file` file: KEY=value lines, `#` comments."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, separator, value = line.partition("=")
            assert separator, f"{path.name}: {line!r} has no '=' (kustomize would read the shell)"
            values[key.strip()] = value
    return values


def base_objects(kind: str) -> list[dict[str, Any]]:
    return [
        document
        for path in sorted(BASE.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if document and document.get("kind") == kind
    ]


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for kind in ("Deployment", "Job"):
        for workload in base_objects(kind):
            yield workload["metadata"]["name"], workload["spec"]["template"]["spec"]


def containers() -> Iterator[dict[str, Any]]:
    for name, spec in pod_specs():
        for container in spec["containers"]:
            yield {"pod": name, **container}


CONFIG = read_env_file(BASE / "config.env")
SECRET_EXAMPLE = read_env_file(K8S / "secrets.example.env")
{%- if cookiecutter.auth == "api_key" %}
# The credential production checks, and a real-looking value of it.
CREDENTIAL: dict[str, str] = {"API_KEYS": "sk-" + "k" * 32}
{%- elif cookiecutter.auth == "jwt" %}
# The credential production checks, and a real-looking value of it.
CREDENTIAL: dict[str, str] = {"JWT_SECRET": "s" * 48}
{%- else %}
CREDENTIAL: dict[str, str] = {}  # auth=none: no credential of the service's own
{%- endif %}


def configured() -> Settings:
    """Settings as the pods get them: the ConfigMap plus the Secret, with real-looking values."""
    values: dict[str, Any] = {
        key.lower(): value for key, value in CONFIG.items() if key not in SERVER_VARIABLES
    }
    values.update({key.lower(): value for key, value in CREDENTIAL.items()})
    return Settings(_env_file=None, **values)


def test_every_variable_is_a_setting() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    named = set(CONFIG) | set(SECRET_EXAMPLE)
    for container in containers():
        named |= {variable["name"] for variable in container.get("env", [])}
    unknown = sorted(named - fields - SERVER_VARIABLES)
    assert not unknown, f"k8s/ sets variables the service does not read: {unknown}"


def test_config_values_are_accepted_by_the_settings() -> None:
    settings = configured()
    assert settings.environment == "production"
    assert settings.host == "0.0.0.0"  # reachable from outside the pod


def test_the_secret_example_holds_no_real_secret() -> None:
    assert SECRET_EXAMPLE, "secrets.example.env is empty"
    assert set(CREDENTIAL) <= set(SECRET_EXAMPLE)
    for key, value in SECRET_EXAMPLE.items():
        assert "change-me" in value, f"{key} in secrets.example.env looks like a real value"
    for name in CREDENTIAL:  # production refuses the example's value
        example: dict[str, Any] = {name.lower(): SECRET_EXAMPLE[name]}
        with pytest.raises(ValueError, match=name):
            Settings(_env_file=None, environment="production", **example)


def test_uvicorn_reads_forwarded_allow_ips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", CONFIG["FORWARDED_ALLOW_IPS"])
    config = uvicorn.Config("{{ cookiecutter.project_slug }}.main:app", proxy_headers=True)
    assert config.forwarded_allow_ips == CONFIG["FORWARDED_ALLOW_IPS"]


def test_every_pod_gets_the_config_and_the_secret() -> None:
    config_map, secret = f"{NAME}-config", f"{NAME}-secrets"
    for container in containers():
        sources = container.get("envFrom", [])
        config_maps = [
            source["configMapRef"]["name"] for source in sources if "configMapRef" in source
        ]
        secrets = [source["secretRef"]["name"] for source in sources if "secretRef" in source]
        assert config_maps == [config_map], f"{container['pod']}/{container['name']}: {sources}"
        assert secrets == [secret], f"{container['pod']}/{container['name']}: {sources}"
    assert secret in (K8S / "secrets.example.env").read_text(encoding="utf-8")


def test_probes_ask_for_routes_the_app_serves(client: TestClient) -> None:
    port = int(CONFIG["PORT"])
    probed = 0
    for container in containers():
        ports = {entry["name"]: entry["containerPort"] for entry in container.get("ports", [])}
        for probe_name in PROBES:
            if probe_name not in container:
                continue
            probe = container[probe_name]["httpGet"]
            assert ports[probe["port"]] == port, f"{probe_name} asks another port than PORT"
            response = client.get(probe["path"])
            assert response.status_code == 200, f"{probe_name} {probe['path']}: {response.text}"
            probed += 1
    assert probed == len(PROBES), "the API container should have all three probes"


def test_the_service_and_ingress_reach_the_probed_port() -> None:
    (service,) = base_objects("Service")
    (ingress,) = base_objects("Ingress")
    (api,) = (container for container in containers() if "readinessProbe" in container)
    port_names = {entry["name"] for entry in api["ports"]}
    service_ports = {entry["name"]: entry for entry in service["spec"]["ports"]}
    assert {entry["targetPort"] for entry in service_ports.values()} <= port_names
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == service["metadata"]["name"]
            assert backend["port"]["name"] in service_ports


def test_commands_are_commands_of_the_cli() -> None:
    for container in containers():
        command = container.get("command")
        if command is None:
            continue  # the image's own command: serve
        assert command[:3] == ["python", "-m", "{{ cookiecutter.project_slug }}"], command
        build_parser().parse_args(command[3:])  # exits (fails the test) on an unknown command


def test_pods_outlive_the_drain() -> None:
    settings = configured()
    checked = 0
    for name, spec in pod_specs():
        grace = spec.get("terminationGracePeriodSeconds", 30)  # Kubernetes' default
        for container in spec["containers"]:
{%- if cookiecutter.use_redis %}
            if container["name"] == "worker":
                assert grace > settings.job_shutdown_grace_s, f"{name}: jobs are cut short"
                checked += 1
{%- endif %}
            pre_stop = container.get("lifecycle", {}).get("preStop")
            if pre_stop is None:
                continue
            wait = pre_stop["sleep"]["seconds"]
            assert wait == settings.drain_delay_s, f"{name}: the preStop wait is not DRAIN_DELAY_S"
            needed = wait + settings.drain_delay_s + settings.drain_timeout_s
{%- if not cookiecutter.use_redis %}
            # Then the lifespan lets queued in-process jobs finish.
            needed += signature(InProcessJobQueue).parameters["shutdown_grace_s"].default
{%- endif %}
            assert grace > needed, f"{name}: {grace} s of grace, the drain can take {needed} s"
            checked += 1
    assert checked, "no pod with a preStop wait or a worker found"


def ingress_routes(path: str) -> bool:
    """Whether the Ingress sends `path` to the service (its Exact and Prefix paths)."""
    (ingress,) = base_objects("Ingress")
    for rule in ingress["spec"]["rules"]:
        for entry in rule["http"]["paths"]:
            wanted = entry["path"]
            if path == wanted:
                return True
            if entry["pathType"] == "Prefix" and path.startswith(wanted.rstrip("/") + "/"):
                return True
    return False


def test_the_ingress_routes_every_public_route_and_nothing_else(client: TestClient) -> None:
    app = cast(FastAPI, client.app)
    contexts = iter_route_contexts(app.router.routes)
    paths = {context.path_format for context in contexts if context.path_format}
    internal = {{ '{"/metrics"}' if cookiecutter.use_prometheus else 'set[str]()' }}  # scraped inside the cluster
    assert internal <= paths
    assert {path for path in paths - internal if not ingress_routes(path)} == set()
    assert not any(ingress_routes(path) for path in internal)
    assert not ingress_routes("/internal")  # a route added later stays in until listed


def test_the_ingress_body_limit_is_max_body_bytes() -> None:
    (ingress,) = base_objects("Ingress")
    size = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", size)
    assert match, f"unreadable nginx size {size!r}"
    factor = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
    assert int(match.group(1)) * factor == configured().max_body_bytes
{%- if cookiecutter.database == "sqlite" %}


def test_the_sqlite_file_is_on_the_volume() -> None:
    (claim,) = base_objects("PersistentVolumeClaim")
    claim_name = claim["metadata"]["name"]
    path = configured().database_url.removeprefix("sqlite:///")
    for name, spec in pod_specs():
        volumes = {
            volume["name"]
            for volume in spec["volumes"]
            if volume.get("persistentVolumeClaim", {}).get("claimName") == claim_name
        }
        for container in spec["containers"]:
            mounts = [
                mount["mountPath"]
                for mount in container.get("volumeMounts", [])
                if mount["name"] in volumes
            ]
            assert any(path.startswith(mount.rstrip("/") + "/") for mount in mounts), (
                f"{name}/{container['name']}: {path} is not on the volume of {claim_name}"
            )
{%- endif %}
