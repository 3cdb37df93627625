"""Checks docker-compose.yml without a Docker engine: it must parse, every service needs a health
check (one-shot jobs excepted), and every Orderly container's command must be a real `orderly`
subcommand, as listed by the binary's own --help."""
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
required = {"postgres", "kafka", "mongo", "api", "relay", "projector"}
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

if problems:
    print("docker-compose.yml check failed:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"docker-compose.yml: {len(services)} services, commands checked against {sorted(subcommands)}")
