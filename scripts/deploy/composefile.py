"""Reading deploy/compose.yaml the way Docker Compose does, for scripts/compose-native and
scripts/check-deploy: YAML (with anchors and merge keys), a project-directory .env, and
variable interpolation (${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error},
${VAR?error}, ${VAR:+alt}, ${VAR+alt}, $VAR, and $$ for a literal $) in every value."""

from __future__ import annotations

import os
import re

import yaml


class ComposeError(Exception):
    pass


_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_BRACED = re.compile(r"\$\{(" + _NAME + r")(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}")
_BARE = re.compile(r"\$(" + _NAME + r")")


def read_env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines of a compose .env file (# comments, optional quotes)."""
    values: dict[str, str] = {}
    if not os.path.exists(path):
        return values
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                line = line[len("export ") :]
            key, sep, value = line.partition("=")
            if not sep:
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[key.strip()] = value
    return values


def interpolate_string(text: str, env: dict[str, str], where: str) -> str:
    out = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
            continue
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        match = _BRACED.match(text, i)
        if match:
            name, op, arg = match.group(1), match.group(2), match.group(3) or ""
            value = env.get(name)
            unset_or_empty = value is None or (op is not None and op.startswith(":") and value == "")
            if op is None:
                out.append(value or "")
            elif op.endswith("-"):
                out.append(interpolate_string(arg, env, where) if unset_or_empty else value)
            elif op.endswith("?"):
                if unset_or_empty:
                    raise ComposeError(f"{where}: required variable {name} is missing a value: {arg}")
                out.append(value)
            elif op.endswith("+"):
                out.append("" if unset_or_empty else interpolate_string(arg, env, where))
            i = match.end()
            continue
        match = _BARE.match(text, i)
        if match:
            out.append(env.get(match.group(1), ""))
            i = match.end()
            continue
        raise ComposeError(f"{where}: invalid interpolation in {text!r}")
    return "".join(out)


def interpolate(value, env: dict[str, str], where: str = ""):
    if isinstance(value, str):
        return interpolate_string(value, env, where)
    if isinstance(value, list):
        return [interpolate(item, env, f"{where}[{n}]") for n, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: interpolate(item, env, f"{where}.{key}" if where else str(key)) for key, item in value.items()}
    return value


def load(path: str, env: dict[str, str] | None = None) -> dict:
    """The compose file at `path`, parsed and interpolated with `env` (default: the
    process environment over the project directory's .env, as Compose does)."""
    with open(path, encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        raise ComposeError(f"{path}: not a compose file (no services)")
    if env is None:
        env = read_env_file(os.path.join(os.path.dirname(os.path.abspath(path)), ".env"))
        env.update(os.environ)
    return interpolate(document, env)


def environment(service: dict) -> dict[str, str]:
    """A service's `environment`, as a map (it may be written as a list of KEY=VALUE)."""
    value = service.get("environment") or {}
    if isinstance(value, list):
        result = {}
        for item in value:
            key, sep, val = str(item).partition("=")
            if sep:
                result[key] = val
            elif key in os.environ:
                result[key] = os.environ[key]
        return result
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def depends_on(service: dict) -> dict[str, str]:
    """A service's `depends_on`, as {service: condition}."""
    value = service.get("depends_on") or {}
    if isinstance(value, list):
        return {name: "service_started" for name in value}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in value.items()}


def duration_seconds(value, default: float) -> float:
    """A compose duration ("2s", "1m30s", "500ms") in seconds."""
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return float(value)
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(ms|us|h|m|s)", str(value)):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}[unit]
    return total or default
