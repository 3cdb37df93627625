# Needs, in the venv that runs it: pip install kubernetes-validate==1.37.0 jsonschema==4.26.0 pyyaml
"""Checks deploy/k8s without a cluster. Renders deploy/k8s/base and deploy/k8s/overlays/local with
`kubectl kustomize`, then: every object must validate against Kubernetes' own schemas (strict: an
unknown field fails) and every KEDA ScaledObject against deploy/k8s/schemas/scaledobject.json;
every Orderly container must run a real `orderly` subcommand (as the binary's --help lists them,
and `service X` a kind that `orderly service --help` lists) with the command and health-check port
of its docker-compose.yml service, get every variable of compose's x-orderly-env (settings from a
ConfigMap, secrets from the orderly-secrets Secret, which no manifest holds) and run locked down;
every Deployment needs probes, every container requests and limits; no env value or ConfigMap
holds a password or secret; ScaledObjects scale an existing Deployment on the consumer group it
really uses, never past the topic's partitions; PDBs, HPAs and Services point at existing pods.

Usage: check-k8s.py [BINARY] [--kubernetes-version 1.31]   (BINARY: .build/debug/orderly)
Exits 1 naming each problem, 2 when a tool it needs is missing."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RENDERS = ["deploy/k8s/base", "deploy/k8s/overlays/local"]
SCALEDOBJECT_SCHEMA = "deploy/k8s/schemas/scaledobject.json"
ORDERLY_BINARY_PATH = "/usr/local/bin/orderly"
# The variables of x-orderly-env that are secrets (the database URL carries a password, the Mongo
# URI may): they come from this Secret, made by hand; every other one from a ConfigMap.
SECRET_NAME = "orderly-secrets"
SECRET_KEYS = {"ORDERLY_JWT_SECRET", "ORDERLY_DATABASE_URL", "ORDERLY_MONGO_URI"}
SECRET_NAME_PATTERN = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|API_?KEY|PRIVATE_?KEY", re.IGNORECASE)
SECRET_VALUE_PATTERNS = [
    re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE),  # scheme://user:password@
    re.compile(r"\b(password|passwd|pwd|secret)\s*[=:]", re.IGNORECASE),  # password=..., secret: ...
]

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument(
    "binary", nargs="?", default=os.path.join(ROOT, ".build/debug/orderly"), help="the orderly binary whose --help lists the subcommands")
parser.add_argument("--kubernetes-version", default="1.31", help="Kubernetes schemas to validate against (kubernetes-validate's)")
options = parser.parse_args()

if shutil.which("kubectl") is None:
    print("check-k8s: kubectl is not on PATH; install it (kubectl kustomize renders the manifests)", file=sys.stderr)
    sys.exit(2)
try:
    import jsonschema
    import kubernetes_validate
    import yaml
except ImportError as error:
    print(f"check-k8s: {error}; pip install kubernetes-validate==1.37.0 jsonschema==4.26.0 pyyaml", file=sys.stderr)
    sys.exit(2)


def help_text(*arguments):
    try:
        return subprocess.run([options.binary, *arguments, "--help"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"check-k8s: cannot run {' '.join([options.binary, *arguments])} --help ({error}); build it first", file=sys.stderr)
        sys.exit(2)


# As scripts/check-compose.py reads them.
subcommands = set(re.findall(r"^\s{2}([a-z][a-z-]*)\s", help_text().split("SUBCOMMANDS:")[-1], re.MULTILINE))
# swift-argument-parser lists an enum argument's cases as "(values: a, b, c)", wrapped over lines.
values = re.search(r"\(values:([^)]*)\)", help_text("service"))
service_kinds = {kind.strip() for kind in " ".join(values.group(1).split()).split(",")} if values else set()

problems = []
if not subcommands:
    problems.append("could not read the subcommands from orderly --help")
if not service_kinds:
    problems.append("could not read the service kinds from orderly service --help")

with open(os.path.join(ROOT, "docker-compose.yml")) as handle:
    compose = yaml.safe_load(handle)
compose_env = compose.get("x-orderly-env") or {}
# Each Orderly service of compose (built from the Dockerfile): its command and health-check port.
compose_orderly = {}
for name, service in (compose.get("services") or {}).items():
    if service.get("build") is not None:
        test = " ".join((service.get("healthcheck") or {}).get("test") or [])
        port = re.search(r"localhost:(\d+)/health", test)
        compose_orderly[name] = {"command": service.get("command") or [], "port": int(port.group(1)) if port else None}

# The consumer groups' defaults, from the settings the processes read (Settings.swift).
settings_path = os.path.join(ROOT, "Sources/OrderlyProcesses/Settings.swift")
group_defaults = {}
if os.path.exists(settings_path):
    with open(settings_path) as handle:
        settings_source = handle.read()
    for variable in ("ORDERLY_PROJECTOR_GROUP", "ORDERLY_SERVICE_GROUP_PREFIX"):
        found = re.search(r'environment\["%s"\]\s*\?\?\s*"([^"]+)"' % variable, settings_source)
        if found:
            group_defaults[variable] = found.group(1)
if len(group_defaults) != 2:
    problems.append(f"could not read the consumer groups' defaults from {os.path.relpath(settings_path, ROOT)}")

with open(os.path.join(ROOT, SCALEDOBJECT_SCHEMA)) as handle:
    scaledobject_validator = jsonschema.Draft202012Validator(json.load(handle))


def render(directory):
    result = subprocess.run(["kubectl", "kustomize", os.path.join(ROOT, directory)], capture_output=True, text=True)
    if result.returncode != 0:
        # Less v5's deprecation warnings (bases, patchesStrategicMerge: kept for kustomize v2).
        errors = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("# Warning:")]
        problems.append(f"{directory.replace('deploy/k8s/', '')}: kubectl kustomize failed: {' '.join(errors)}")
        return []
    objects = [document for document in yaml.safe_load_all(result.stdout) if document]
    if not objects:
        problems.append(f"{directory.replace('deploy/k8s/', '')}: kubectl kustomize rendered nothing")
    return objects


def looks_secret(name, value):
    return bool(SECRET_NAME_PATTERN.search(name) or any(pattern.search(str(value)) for pattern in SECRET_VALUE_PATTERNS))


def pod_labels(workload):
    return workload["spec"]["template"]["metadata"].get("labels") or {}


def is_orderly_image(image):
    repository = image.split("@")[0]
    last = repository.rsplit("/", 1)[-1]
    return last.split(":")[0] == "orderly"


def matches(selector, labels):
    """A label selector (matchLabels and matchExpressions, or a Service's plain map) against labels."""
    if "matchLabels" in (selector or {}) or "matchExpressions" in (selector or {}):
        plain, expressions = selector.get("matchLabels") or {}, selector.get("matchExpressions") or []
    else:
        plain, expressions = selector or {}, []
    if not plain and not expressions:
        return False
    if any(labels.get(key) != value for key, value in plain.items()):
        return False
    for expression in expressions:
        key, wanted = expression["key"], expression.get("values") or []
        holds = {
            "In": key in labels and labels[key] in wanted,
            "NotIn": key not in labels or labels[key] not in wanted,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }
        if not holds.get(expression["operator"], False):
            return False
    return True


def container_env(container, configmaps):
    """Each variable a container gets: name -> (source, value); source is literal, configmap or secret."""
    env = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            for key, value in ((configmaps.get(source["configMapRef"]["name"]) or {}).get("data") or {}).items():
                env[prefix + key] = ("configmap", value)
        if "secretRef" in source:
            for key in SECRET_KEYS:
                env.setdefault(prefix + key, ("secret", (source["secretRef"]["name"], key)))
    for variable in container.get("env") or []:
        if "value" in variable:
            env[variable["name"]] = ("literal", variable["value"])
        elif "secretKeyRef" in (variable.get("valueFrom") or {}):
            reference = variable["valueFrom"]["secretKeyRef"]
            env[variable["name"]] = ("secret", (reference["name"], reference["key"]))
        elif "configMapKeyRef" in (variable.get("valueFrom") or {}):
            reference = variable["valueFrom"]["configMapKeyRef"]
            env[variable["name"]] = ("configmap", ((configmaps.get(reference["name"]) or {}).get("data") or {}).get(reference["key"]))
        else:
            env[variable["name"]] = ("other", None)
    return env


def port_number(container, port):
    """A probe's or Service's port (a number or a container port's name) as a number."""
    if isinstance(port, int):
        return port
    return next((entry["containerPort"] for entry in container.get("ports") or [] if entry.get("name") == port), None)


def check(directory, objects):
    def report(subject, message):
        problems.append(f"{directory.replace('deploy/k8s/', '')}: {subject}: {message}")

    by_kind = {}
    for item in objects:
        by_kind.setdefault(item.get("kind"), {})[item["metadata"]["name"]] = item
    deployments, configmaps = by_kind.get("Deployment", {}), by_kind.get("ConfigMap", {})
    workloads = {**by_kind.get("Job", {}), **deployments}

    # The schemas: Kubernetes' for its own kinds, ours for KEDA's.
    for item in objects:
        subject = f"{item.get('kind')}/{item['metadata'].get('name')}"
        if item.get("kind") == "ScaledObject":
            for error in scaledobject_validator.iter_errors(item):
                report(subject, f"{'.'.join(str(part) for part in error.absolute_path) or '(top)'}: {error.message}")
            continue
        try:
            kubernetes_validate.validate(item, options.kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            report(subject, f"{'.'.join(str(part) for part in error.absolute_path) or '(top)'}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            report(subject, error.message)
    namespaces = {item["metadata"].get("namespace") for item in objects if item.get("kind") != "Namespace"}
    if len(namespaces) > 1:
        report("namespaces", f"objects spread over {sorted(map(str, namespaces))}")
    for name in by_kind.get("Secret", {}):
        report(f"Secret/{name}", "secrets are made by hand (kubectl create secret), never kept in a manifest")

    # No literal secret anywhere: env values and ConfigMap data.
    for name, configmap in configmaps.items():
        for key, value in (configmap.get("data") or {}).items():
            if looks_secret(key, value) or key in SECRET_KEYS:
                report(f"ConfigMap/{name}", f"{key} looks like a secret: put it in the {SECRET_NAME} Secret")
    for name, workload in workloads.items():
        pod = workload["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod.get("containers", []):
            for variable in container.get("env") or []:
                if "value" in variable and looks_secret(variable["name"], variable["value"]):
                    message = f"{container['name']}: {variable['name']} has a literal value that looks secret; use a secretKeyRef"
                    report(f"{workload['kind']}/{name}", message)

    # Every container: requests and limits. Every Deployment: liveness and readiness probes.
    for name, workload in workloads.items():
        subject = f"{workload['kind']}/{name}"
        for container in workload["spec"]["template"]["spec"].get("containers", []):
            resources = container.get("resources") or {}
            for part in ("requests", "limits"):
                missing = {"cpu", "memory"} - set(resources.get(part) or {})
                if missing:
                    report(subject, f"{container['name']}: no {part} for {sorted(missing)}")
            if workload["kind"] == "Deployment":
                for probe in ("livenessProbe", "readinessProbe"):
                    if probe not in container:
                        report(subject, f"{container['name']}: no {probe}")

    # Orderly's containers: compose's command, real subcommands, its variables, probes, lock-down.
    running = {}  # Deployment name -> (args, container, env)
    for name, expected in compose_orderly.items():
        if name not in workloads:
            report(name, f"docker-compose.yml runs `{' '.join(expected['command'])}` but there is no Deployment or Job {name}")
    for name, workload in workloads.items():
        subject = f"{workload['kind']}/{name}"
        pod = workload["spec"]["template"]["spec"]
        for container in pod.get("containers", []):
            if not is_orderly_image(container.get("image", "")):
                continue
            command, args = container.get("command"), container.get("args") or []
            if command not in (None, [ORDERLY_BINARY_PATH]):
                report(subject, f"command {command}: the image's binary is {ORDERLY_BINARY_PATH}, the subcommand goes in args")
            if not args or args[0] not in subcommands:
                report(subject, f"args {args}: not an orderly subcommand ({sorted(subcommands)})")
            elif args[0] == "service" and (len(args) < 2 or args[1] not in service_kinds):
                report(subject, f"args {args}: not a service orderly knows ({sorted(service_kinds)})")
            expected = compose_orderly.get(name)
            if expected and args != expected["command"]:
                report(subject, f"args {args}, but docker-compose.yml's {name} runs {expected['command']}")
            env = container_env(container, configmaps)
            for variable in compose_env:
                # Tracing points at compose's own Jaeger; on a cluster it is the operator's choice
                # (README: OTEL_EXPORTER_OTLP_ENDPOINT in orderly-config, to your collector).
                if variable.startswith("OTEL_"):
                    continue
                source = env.get(variable, (None, None))[0]
                if source is None:
                    report(subject, f"does not get {variable} (docker-compose.yml's x-orderly-env)")
                elif variable in SECRET_KEYS and (source != "secret" or env[variable][1][0] != SECRET_NAME):
                    report(subject, f"{variable} must come from the {SECRET_NAME} Secret")
                elif variable not in SECRET_KEYS and source != "configmap":
                    report(subject, f"{variable} must come from a ConfigMap (envFrom)")
            for source in container.get("envFrom") or []:
                if "configMapRef" in source and source["configMapRef"]["name"] not in configmaps:
                    report(subject, f"envFrom names ConfigMap {source['configMapRef']['name']}, which is not rendered")
            for variable in container.get("env") or []:
                reference = (variable.get("valueFrom") or {}).get("secretKeyRef")
                if reference and reference["name"] != SECRET_NAME:
                    report(subject, f"{variable['name']} reads Secret {reference['name']}; Orderly's secrets are in {SECRET_NAME}")
            context = {**(pod.get("securityContext") or {}), **(container.get("securityContext") or {})}
            wanted = {"runAsNonRoot": True, "runAsUser": 10001, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}
            for key, value in wanted.items():
                if context.get(key) != value:
                    report(subject, f"securityContext.{key} must be {json.dumps(value)}")
            if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
                report(subject, "securityContext.capabilities.drop must hold ALL")
            if workload["kind"] != "Deployment":
                continue
            running[name] = (args, container, env)
            grace = pod.get("terminationGracePeriodSeconds")
            if not isinstance(grace, int) or not 10 < grace <= 30:
                report(subject, f"terminationGracePeriodSeconds {grace}: Orderly exits within 10 s of SIGTERM; give it 11-30")
            port = expected and expected["port"]
            for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
                http = (container.get(probe) or {}).get("httpGet") or {}
                if http.get("path") != path or (port and port_number(container, http.get("port")) != port):
                    report(subject, f"{probe} must be GET {path} on port {port or '?'}")

    # Services select pods and name their ports; every Orderly process is scraped.
    scraped = set()
    for name, service in by_kind.get("Service", {}).items():
        selected = [pod_name for pod_name, workload in workloads.items() if matches(service["spec"].get("selector"), pod_labels(workload))]
        if not selected:
            report(f"Service/{name}", f"selector {service['spec'].get('selector')} selects no pod")
            continue
        containers = [container for pod_name in selected for container in workloads[pod_name]["spec"]["template"]["spec"]["containers"]]
        for port in service["spec"].get("ports") or []:
            target = port.get("targetPort", port["port"])
            if all(port_number(container, target) is None for container in containers) and not isinstance(target, int):
                report(f"Service/{name}", f"targetPort {target} is no container port of {selected}")
        annotations = service["metadata"].get("annotations") or {}
        if annotations.get("prometheus.io/scrape") == "true":
            for pod_name in selected:
                scraped.add((pod_name, int(annotations.get("prometheus.io/port", 0)), annotations.get("prometheus.io/path")))
    for name in running:
        port = (compose_orderly.get(name) or {}).get("port")
        if port and (name, port, "/metrics") not in scraped:
            report(f"Deployment/{name}", f"no Service annotated for Prometheus (prometheus.io/scrape, port {port}, path /metrics)")

    # PodDisruptionBudgets: one pod kept where two or more run, else one down at a time.
    for name, budget in by_kind.get("PodDisruptionBudget", {}).items():
        selected = [deployment for deployment in deployments.values() if matches(budget["spec"].get("selector"), pod_labels(deployment))]
        if not selected:
            report(f"PodDisruptionBudget/{name}", "selects no Deployment's pods")
        for deployment in selected:
            replicas = deployment["spec"].get("replicas", 1)
            wanted = {"minAvailable": 1} if replicas >= 2 else {"maxUnavailable": 1}
            actual = {key: budget["spec"][key] for key in ("minAvailable", "maxUnavailable") if key in budget["spec"]}
            if actual != wanted:
                message = f"{actual} for {replicas} replica(s) of {deployment['metadata']['name']}; want {wanted}"
                report(f"PodDisruptionBudget/{name}", message)

    # Autoscalers: an existing Deployment each, and never two on one.
    autoscaled = {}
    for kind in ("HorizontalPodAutoscaler", "ScaledObject"):
        for name, scaler in by_kind.get(kind, {}).items():
            target = scaler["spec"].get("scaleTargetRef") or {}
            if target.get("kind", "Deployment") != "Deployment" or target.get("name") not in deployments:
                report(f"{kind}/{name}", f"targets {target.get('kind', 'Deployment')}/{target.get('name')}: no such Deployment")
                continue
            autoscaled.setdefault(target["name"], []).append(f"{kind}/{name}")
    for name, scalers in autoscaled.items():
        if len(scalers) > 1:
            report(f"Deployment/{name}", f"scaled by {scalers} at once")

    # ScaledObjects: the group the target consumes, the topic, the broker from its config, and no
    # more members than partitions.
    for name, scaled in by_kind.get("ScaledObject", {}).items():
        spec, subject = scaled["spec"], f"ScaledObject/{name}"
        target = (spec.get("scaleTargetRef") or {}).get("name")
        if target not in running:
            if target in deployments:
                report(subject, f"Deployment/{target} runs no Orderly consumer")
            continue
        args, container, env = running[target]
        container_name = spec["scaleTargetRef"].get("envSourceContainerName")
        if container_name and container_name != container["name"]:
            report(subject, f"envSourceContainerName {container_name} is not {target}'s container {container['name']}")
        partitions = str(env.get("ORDERLY_TOPIC_PARTITIONS", (None, ""))[1])
        maximum, minimum = spec.get("maxReplicaCount", 100), spec.get("minReplicaCount", 0)
        if not partitions.isdigit():
            report(subject, f"{target} gets no ORDERLY_TOPIC_PARTITIONS from its ConfigMap to bound maxReplicaCount by")
        elif isinstance(maximum, int) and maximum > int(partitions):
            report(subject, f"maxReplicaCount {maximum} is more than the topic's {partitions} partitions (ORDERLY_TOPIC_PARTITIONS)")
        if isinstance(minimum, int) and isinstance(maximum, int) and minimum > maximum:
            report(subject, f"minReplicaCount {minimum} is more than maxReplicaCount {maximum}")

        def value(variable, default=None, env=env):
            return str(env[variable][1]) if variable in env else default

        if args[:1] == ["project"]:
            group = value("ORDERLY_PROJECTOR_GROUP", group_defaults.get("ORDERLY_PROJECTOR_GROUP"))
        elif args[:1] == ["service"] and len(args) > 1:
            group = f"{value('ORDERLY_SERVICE_GROUP_PREFIX', group_defaults.get('ORDERLY_SERVICE_GROUP_PREFIX'))}-{args[1]}"
        else:
            report(subject, f"Deployment/{target} runs `{' '.join(args)}`, which consumes no group")
            continue
        for trigger in spec.get("triggers") or []:
            if trigger.get("type") != "kafka":
                continue
            metadata = trigger.get("metadata") or {}
            resolved = {}
            for key, text in metadata.items():
                if key.endswith("FromEnv"):
                    if text not in env:
                        report(subject, f"{key}: {target}'s container has no variable {text}")
                    resolved[key[: -len("FromEnv")]] = value(text)
                else:
                    resolved[key] = text
            if resolved.get("consumerGroup") != group:
                report(subject, f"consumerGroup {resolved.get('consumerGroup')}, but `{' '.join(args)}` consumes as {group}")
            if resolved.get("topic") != value("ORDERLY_TOPIC", "order-events"):
                report(subject, f"topic {resolved.get('topic')}, but the processes read {value('ORDERLY_TOPIC', 'order-events')}")
            if resolved.get("bootstrapServers") != value("ORDERLY_KAFKA_BROKERS"):
                report(subject, "bootstrapServers must be the processes' ORDERLY_KAFKA_BROKERS (bootstrapServersFromEnv)")
    for name, (args, _, _) in running.items():
        if args[:1] in (["project"], ["service"]) and not any("ScaledObject" in scaler for scaler in autoscaled.get(name, [])):
            report(f"Deployment/{name}", "a consumer group without a KEDA ScaledObject")
        if args[:1] == ["api"] and not autoscaled.get(name):
            report(f"Deployment/{name}", "the api has no HorizontalPodAutoscaler")
    return len(objects)


counts = {}
for directory in RENDERS:
    objects = render(directory)
    if objects:
        counts[directory] = check(directory, objects)

if problems:
    # One line per problem, once (a value can break both a general and a specific rule alike).
    print("deploy/k8s check failed:\n  " + "\n  ".join(dict.fromkeys(problems)))
    sys.exit(1)
rendered = ", ".join(f"{directory.replace('deploy/k8s/', '')} {count} objects" for directory, count in counts.items())
print(
    f"deploy/k8s: {rendered} valid against Kubernetes {options.kubernetes_version} (strict) and KEDA's ScaledObject schema; "
    f"commands checked against {sorted(subcommands)}, services {sorted(service_kinds)}"
)
