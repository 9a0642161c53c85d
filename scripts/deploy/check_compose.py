"""scripts/check-deploy's compose check: deploy/compose.yaml against the Compose
Specification's JSON schema (HAAT_COMPOSE_SCHEMA: the one the docker-compose 1.29.2 wheel
on PyPI ships, which scripts/deploy/venv.sh fetches), after interpolation, plus what
scripts/compose-native needs of it: every command a list, every SERVICE:PORT a port the
service exposes. That schema (2021) predates the top-level `name`; it is checked here
(a string) and left out of the schema's view.

  python3 scripts/deploy/check_compose.py COMPOSE_FILE"""

import json
import os
import re
import sys

import jsonschema

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import composefile  # noqa: E402


def main() -> int:
    path = sys.argv[1]
    env = dict(os.environ)
    env.setdefault("HAAT_PG_PASSWORD", "placeholder-for-the-check")
    try:
        project = composefile.load(path, env)
    except composefile.ComposeError as error:
        print(f"  FAIL: {error}")
        return 1
    with open(os.environ["HAAT_COMPOSE_SCHEMA"], encoding="utf-8") as handle:
        schema = json.load(handle)
    problems = []
    if not isinstance(project.get("name", ""), str):
        problems.append("name: a string")
    checked = {key: value for key, value in project.items() if key != "name"}
    problems += [f"{'/'.join(map(str, e.path)) or '(top)'}: {e.message[:300]}"
                 for e in jsonschema.Draft7Validator(schema).iter_errors(checked)]
    services = project["services"]
    exposed = {(name, int(str(p).split("/")[0])) for name, s in services.items() for p in s.get("expose") or []}
    for name, service in services.items():
        command = service.get("command")
        if command is not None and not isinstance(command, list):
            problems.append(f"services/{name}/command: a YAML list, so that scripts/compose-native can read it")
        words = list(command or []) + list((service.get("healthcheck") or {}).get("test") or [])
        words += list(composefile.environment(service).values())
        for word in words:
            for host, port in re.findall(r"(?<![\w.-])([a-z][\w-]*):(\d+)(?![\w.-])", str(word)):
                if host in services and (host, int(port)) not in exposed and not str(word).startswith("TCP"):
                    problems.append(f"services/{name}: {host}:{port}, a port {host} does not expose")
    for problem in problems:
        print(f"  FAIL: {problem}")
    if problems:
        return 1
    print(f"  ok: {path} is valid under the Compose Specification schema; {len(services)} services "
          f"({', '.join(services)}), every command a list, every SERVICE:PORT exposed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
