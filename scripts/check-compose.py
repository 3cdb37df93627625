"""Checks docker-compose.yml without a Docker engine: it must parse, every service needs a health
check (one-shot jobs excepted), every Orderly container's command must be a real `orderly`
subcommand, as listed by the binary's own --help, Prometheus (deploy/prometheus.yml) must scrape
every long-running Orderly service, and the Grafana dashboard must use the provisioned data source."""
import json
import os
import re
import subprocess
import sys

import yaml

path = sys.argv[1]
binary = sys.argv[2] if len(sys.argv) > 2 else ".build/debug/orderly"
with open(path) as handle:
    compose = yaml.safe_load(handle)

services = compose.get("services") or {}
problems = []
required = {"postgres", "kafka", "mongo", "api", "lb", "relay", "projector"}
missing = required - services.keys()
if missing:
    problems.append(f"missing services: {sorted(missing)}")

help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
subcommands = set(re.findall(r"^\s{2}([a-z][a-z-]*)\s", help_text.split("SUBCOMMANDS:")[-1], re.MULTILINE))
if not subcommands:
    problems.append("could not read the subcommands from orderly --help")

for name, service in services.items():
    if service.get("build") is not None:
        command = service.get("command") or []
        if not command or command[0] not in subcommands:
            problems.append(f"{name}: command {command} is not an orderly subcommand ({sorted(subcommands)})")
        if service.get("restart") != "no" and "healthcheck" not in service:
            problems.append(f"{name}: no healthcheck")
    elif "healthcheck" not in service:
        problems.append(f"{name}: no healthcheck")

# Prometheus scrapes every long-running Orderly service, and Grafana's dashboard uses the
# provisioned data source.
root = os.path.dirname(os.path.abspath(path))
with open(os.path.join(root, "deploy/prometheus.yml")) as handle:
    prometheus = yaml.safe_load(handle)
scraped = {name for job in prometheus.get("scrape_configs", []) for sd in job.get("dns_sd_configs", []) for name in sd.get("names", [])}
for name, service in services.items():
    if service.get("build") is not None and service.get("restart") != "no" and name not in scraped:
        problems.append(f"{name}: not scraped by deploy/prometheus.yml")
for name in ("prometheus", "grafana"):
    if name not in services:
        problems.append(f"missing service: {name}")
sources_dir = os.path.join(root, "deploy/grafana/provisioning/datasources")
uids = set()
for name in sorted(os.listdir(sources_dir)):
    with open(os.path.join(sources_dir, name)) as handle:
        uids |= {source["uid"] for source in yaml.safe_load(handle)["datasources"]}
with open(os.path.join(root, "deploy/grafana/dashboards/orderly.json")) as handle:
    dashboard = json.load(handle)
for panel in dashboard["panels"]:
    for target in [panel] + panel.get("targets", []):
        uid = (target.get("datasource") or {}).get("uid")
        if uid not in uids:
            problems.append(f"dashboard panel {panel.get('title')}: data source {uid} is not provisioned ({sorted(uids)})")
    # Data links into another data source (the slow sagas' trace ids into Jaeger) must name a provisioned one.
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        for prop in override.get("properties", []):
            for link in prop.get("value", []) if prop.get("id") == "links" else []:
                uid = (link.get("internal") or {}).get("datasourceUid")
                if uid is not None and uid not in uids:
                    problems.append(f"dashboard panel {panel.get('title')}: its link opens data source {uid}, which is not provisioned")
# The event-log data source reaches compose's PostgreSQL with compose's own credentials.
with open(os.path.join(sources_dir, "postgres.yml")) as handle:
    events_source = yaml.safe_load(handle)["datasources"][0]
database_url = str((compose.get("x-orderly-env") or {}).get("ORDERLY_DATABASE_URL", ""))
expected_url = f"postgres://{events_source['user']}:{events_source['secureJsonData']['password']}@{events_source['url']}/{events_source['jsonData']['database']}"
if database_url != expected_url:
    problems.append(f"deploy/grafana/provisioning/datasources/postgres.yml reaches {expected_url}, the services use {database_url}")

# Behind the public load balancer: no default Grafana admin password, /metrics not routed, and the
# api believes X-Forwarded-For from the load balancer only.
password = str(services.get("grafana", {}).get("environment", {}).get("GF_SECURITY_ADMIN_PASSWORD", ""))
if ":?" not in password:
    problems.append(f"grafana: GF_SECURITY_ADMIN_PASSWORD must be required (${{VAR:?…}}), not defaulted: {password!r}")
with open(os.path.join(root, "deploy/nginx.conf")) as handle:
    nginx = handle.read()
if not re.search(r"location\s*=\s*/metrics\s*\{\s*return\s+404;", nginx):
    problems.append("deploy/nginx.conf: /metrics must not be routed to the api (location = /metrics { return 404; })")
if not str(services.get("api", {}).get("environment", {}).get("ORDERLY_TRUSTED_PROXIES", "")):
    problems.append("api: ORDERLY_TRUSTED_PROXIES is not set, so rate limits would key every caller on the load balancer")

# Traces go to the compose file's own Jaeger.
endpoint = str((compose.get("x-orderly-env") or {}).get("OTEL_EXPORTER_OTLP_ENDPOINT", ""))
if "jaeger" not in services or not endpoint.startswith("http://jaeger:4318"):
    problems.append(f"traces: x-orderly-env's OTEL_EXPORTER_OTLP_ENDPOINT ({endpoint!r}) must name the jaeger service's OTLP/HTTP port")

# The image ships the librdkafka the tests ran against: the same confluent-kafka wheel as scripts/install.
with open(os.path.join(root, "Dockerfile")) as handle:
    dockerfile = handle.read()
with open(os.path.join(root, "scripts/install")) as handle:
    tested = re.search(r"confluent-kafka==([0-9.]+)", handle.read())
shipped = re.search(r"ARG CONFLUENT_KAFKA_VERSION=([0-9.]+)", dockerfile)
if not tested or not shipped or tested.group(1) != shipped.group(1):
    problems.append(
        f"Dockerfile ships librdkafka from confluent-kafka {shipped and shipped.group(1)}, the tests run "
        f"{tested and tested.group(1)} (scripts/install)")
for needed in ("COPY Plugins ./Plugins", "COPY scripts/build-info.sh"):
    if needed not in dockerfile:
        problems.append(f"Dockerfile: `{needed}` is missing (the build needs the BuildInfo plugin)")

if problems:
    print("docker-compose.yml check failed:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"docker-compose.yml: {len(services)} services, commands checked against {sorted(subcommands)}; Prometheus scrapes {sorted(scraped)}; dashboard: {len(dashboard['panels'])} panels")
