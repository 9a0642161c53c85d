# shellcheck shell=bash
# Sourced by scripts/check-deploy and scripts/compose-native: the Python venv at
# .build/deploy-venv with the pinned tools they use, from PyPI, made once (and again when
# a pin changes). Sets $deploy_python.
deploy_venv=.build/deploy-venv
deploy_python=$deploy_venv/bin/python
# Pins: checkov (IaC checks), kubernetes-validate (the Kubernetes JSON schemas), PyYAML
# (compose.yaml); kubernetes-validate brings jsonschema, used for the compose schema too.
deploy_pins=(checkov==3.3.30 kubernetes-validate==1.37.0 pyyaml==6.0.3)

ensure_deploy_venv() {
  local stamp=$deploy_venv/.pins want
  want="${deploy_pins[*]}"
  if [ -x "$deploy_python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  python3 -c 'import ensurepip, venv' 2>/dev/null || {
    echo "$0: python3-venv is missing (apt-get install python3-venv)" >&2
    return 1
  }
  echo "$0: making $deploy_venv with ${deploy_pins[*]} from PyPI" >&2
  mkdir -p .build
  rm -rf "$deploy_venv"
  python3 -m venv "$deploy_venv"
  timeout 900 "$deploy_venv/bin/pip" install --quiet --disable-pip-version-check "${deploy_pins[@]}" >&2
  printf '%s' "$want" >"$stamp"
}

# The Compose Specification's JSON schema, as the docker-compose 1.29.2 wheel on PyPI
# ships it (compose/config/compose_spec.json), kept in the venv. Sets $compose_schema.
compose_schema=$deploy_venv/compose_spec.json
ensure_compose_schema() {
  [ -s "$compose_schema" ] && return 0
  local wheels
  wheels=$(mktemp -d)
  timeout 300 "$deploy_venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: -d "$wheels" docker-compose==1.29.2 >&2
  "$deploy_python" - "$wheels" "$compose_schema" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/docker_compose-1.29.2-*.whl")[0]
with zipfile.ZipFile(wheel) as archive, open(sys.argv[2], "wb") as out:
    out.write(archive.read("compose/config/compose_spec.json"))
PY
  rm -rf "$wheels"
}
