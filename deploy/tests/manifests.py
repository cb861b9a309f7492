#!/usr/bin/env python3
"""Offline checks of the MicroShift manifests and the Tekton pipelines.

    manifests.py render        every kustomization renders (kubectl's built-in kustomize)
    manifests.py k8s-schema    Kubernetes kinds against Kubernetes' JSON schemas, strictly
                               (kubernetes-validate; the oldest and newest MicroShift's versions)
    manifests.py crd-schema    Route, SCC and Tekton kinds against their OpenAPI schemas as a
                               real OpenShift cluster serves them, strictly
    manifests.py policy        least privilege and probes, in every rendered Deployment; no
                               literal secrets; MQTT's password from a read-only Secret file;
                               sign-in on, the admin password from a read-only Secret file,
                               the Route edge-terminated with http redirected to https
    manifests.py mutations     policy and schema checks fail on broken copies of the manifests
    manifests.py termination-grace OVERLAY   prints the Deployment's grace period (for images.sh)

Run with .cache/deploy-venv/bin/python (deploy/tests/setup-tools.sh installs it). Each command
prints what it checked and exits non-zero on the first class of failure it finds.
"""

import concurrent.futures
import copy
import gzip
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

import jsonschema
import kubernetes_validate
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MICROSHIFT = os.path.join(REPO, "deploy", "microshift")
TEKTON = os.path.join(REPO, "model", "tekton")
SCHEMAS = os.path.join(REPO, ".cache", "deploy-schemas")
# MicroShift 4.14 runs Kubernetes 1.27; 4.20, 1.33.
K8S_VERSIONS = ["1.27.0", "1.33.0"]
CUSTOM_KINDS = {
    ("route.openshift.io/v1", "Route"),
    ("security.openshift.io/v1", "SecurityContextConstraints"),
    ("tekton.dev/v1", "Task"),
    ("tekton.dev/v1", "Pipeline"),
    ("tekton.dev/v1", "PipelineRun"),
}
# Checked by the ArgoCD model package in images.sh's sibling, argocd.mjs.
ARGOCD_KINDS = {("argoproj.io/v1alpha1", "Application")}


class CheckFailed(Exception):
    pass


def kubectl():
    venv_kubectl = os.path.join(REPO, ".cache", "deploy-venv", "bin", "kubectl")
    found = shutil.which("kubectl") or (venv_kubectl if os.path.exists(venv_kubectl) else None)
    if not found:
        raise CheckFailed("kubectl not found: run deploy/tests/setup-tools.sh")
    return found


def kustomize(path):
    """The documents `kubectl kustomize path` renders."""
    out = subprocess.run(
        [kubectl(), "kustomize", path], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise CheckFailed(f"kustomize {os.path.relpath(path, REPO)}: {out.stderr.strip()}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def with_tree(mutate=None):
    """A temporary copy of deploy/microshift with the MicroShift auto-manifests layout and the
    Jetson + CSI camera and MQTT variants beside it; `mutate(root)` may edit the copy first."""
    tmp = tempfile.mkdtemp(prefix="facerec-manifests-")
    root = os.path.join(tmp, "microshift")
    shutil.copytree(MICROSHIFT, root)
    csi = os.path.join(root, "overlays", "jetson-csi-test")
    os.makedirs(csi)
    with open(os.path.join(csi, "kustomization.yaml"), "w") as f:
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": ["../jetson"],
                "components": ["../../components/jetson-csi-camera"],
            },
            f,
        )
    # MQTT (components/mqtt), alone and with the CSI camera's SCC. Its secretGenerator reads a
    # password file the user creates (git-ignored): a placeholder stands in for it here.
    variants = {
        "x86+mqtt": ("../x86", ["../../components/mqtt"]),
        "jetson+csi-camera+mqtt": (
            "../jetson",
            ["../../components/jetson-csi-camera", "../../components/mqtt"],
        ),
    }
    for name, (resource, components) in variants.items():
        folder = os.path.join(root, "overlays", name.replace("+", "-") + "-test")
        os.makedirs(folder)
        with open(os.path.join(folder, "kustomization.yaml"), "w") as f:
            yaml.safe_dump(
                {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "resources": [resource],
                    "components": components,
                },
                f,
            )
    with open(os.path.join(root, "components", "mqtt", "password"), "w") as f:
        f.write("placeholder-not-a-password\n")
    if mutate:
        mutate(root)
    # /var/lib/microshift/manifests: the auto kustomization, with the tree copied as facerec/.
    manifests = os.path.join(tmp, "var-lib-microshift-manifests")
    shutil.copytree(root, os.path.join(manifests, "facerec"))
    shutil.copy(os.path.join(root, "auto-manifests", "kustomization.yaml"), manifests)
    targets = {
        "base": os.path.join(root, "base"),
        "x86": os.path.join(root, "overlays", "x86"),
        "jetson": os.path.join(root, "overlays", "jetson"),
        "jetson+csi-camera": csi,
        "x86+mqtt": os.path.join(root, "overlays", "x86-mqtt-test"),
        "jetson+csi-camera+mqtt": os.path.join(root, "overlays", "jetson-csi-camera-mqtt-test"),
        "auto-manifests": manifests,
    }
    return tmp, targets


def rendered(mutate=None):
    """{target: documents} for every MicroShift target, plus the Tekton kustomization."""
    tmp, targets = with_tree(mutate)
    try:
        # kubectl runs as a subprocess: render the targets side by side.
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            docs = dict(zip(targets, pool.map(kustomize, targets.values())))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return docs


def plain_files():
    """Manifests applied as files, not through kustomize."""
    files = [os.path.join(MICROSHIFT, "argocd", "application.yaml")]
    runs = os.path.join(TEKTON, "runs")
    files += [os.path.join(runs, f) for f in sorted(os.listdir(runs)) if f.endswith(".yaml")]
    out = {}
    for path in files:
        with open(path) as f:
            out[os.path.relpath(path, REPO)] = [d for d in yaml.safe_load_all(f) if d]
    return out


def all_documents():
    docs = {f"microshift {k}": v for k, v in rendered().items()}
    docs["model/tekton"] = kustomize(TEKTON)
    docs.update(plain_files())
    return docs


def name_of(doc):
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name') or doc.get('metadata', {}).get('generateName')}"


# --- render ------------------------------------------------------------------------------------

def cmd_render():
    total = 0
    for target, docs in all_documents().items():
        kinds = sorted({d["kind"] for d in docs})
        print(f"  {target}: {len(docs)} objects ({', '.join(kinds)})")
        total += len(docs)
    print(f"rendered {total} objects")


# --- Kubernetes schemas ----------------------------------------------------------------------

def k8s_errors(doc, version):
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        return [f"{name_of(doc)} (Kubernetes {version}): {path}: {e.message}"]
    return []


def is_custom(doc):
    key = (doc.get("apiVersion"), doc.get("kind"))
    return key in CUSTOM_KINDS or key in ARGOCD_KINDS


def cmd_k8s_schema():
    errors, checked = [], 0
    for target, docs in all_documents().items():
        for doc in docs:
            if is_custom(doc):
                continue
            for version in K8S_VERSIONS:
                try:
                    errors += k8s_errors(doc, version)
                except kubernetes_validate.SchemaNotFoundError:
                    errors.append(f"{target}: no Kubernetes {version} schema for {name_of(doc)}")
            checked += 1
    if errors:
        raise CheckFailed("\n".join(errors))
    print(f"{checked} objects valid against Kubernetes {' and '.join(K8S_VERSIONS)} (strict)")


# --- OpenShift and Tekton schemas --------------------------------------------------------------

_schema_cache = {}


def _openapi_data():
    if "data" not in _schema_cache:
        mappings = os.path.join(SCHEMAS, "__resources-mappings.json.gz")
        if not os.path.exists(mappings):
            raise CheckFailed(f"{mappings} missing: run deploy/tests/setup-tools.sh")
        with gzip.open(mappings) as f:
            m = json.load(f)
        with open(os.path.join(SCHEMAS, "_definitions.json")) as f:
            d = json.load(f)["definitions"]
        _schema_cache["data"] = (m, d)
    return _schema_cache["data"]


def _to_json_schema(node, refs):
    """OpenAPI v3 (as Kubernetes serves it) to JSON Schema, strict: objects that list their
    properties and do not preserve unknown fields reject any other field, as kubeconform's
    --strict does. Collects the names of referenced definitions in `refs`."""
    if isinstance(node, list):
        return [_to_json_schema(n, refs) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "$ref":
            name = value.rsplit("/", 1)[-1]
            refs.add(name)
            out["$ref"] = f"#/definitions/{name}"
        elif key in ("properties", "patternProperties"):
            out[key] = {k: _to_json_schema(v, refs) for k, v in value.items()}
        elif key == "default" or key.startswith("x-") or key in ("description", "format"):
            continue
        else:
            out[key] = _to_json_schema(value, refs)
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    out.pop("nullable", None)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def custom_schema(api_version, kind):
    key = (api_version, kind)
    if key in _schema_cache:
        return _schema_cache[key]
    mappings, definitions = _openapi_data()
    group, _, version = api_version.rpartition("/")
    candidates = [
        s
        for s in mappings.get(kind.lower(), [])
        if {"group": group, "kind": kind, "version": version}
        in s.get("x-kubernetes-group-version-kind", [])
    ]
    if not candidates:
        raise CheckFailed(f"no schema for {api_version} {kind} in {SCHEMAS}")
    refs = set()
    root = _to_json_schema(candidates[0], refs)
    defs, todo = {}, list(refs)
    while todo:
        name = todo.pop()
        if name in defs:
            continue
        more = set()
        defs[name] = _to_json_schema(definitions[name], more)
        todo += [r for r in more if r not in defs]
    root["definitions"] = defs
    # apiVersion/kind/metadata are checked here too, as the API server would.
    validator = jsonschema.Draft7Validator(root)
    _schema_cache[key] = validator
    return validator


def crd_errors(doc):
    validator = custom_schema(doc["apiVersion"], doc["kind"])
    errors = []
    for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in e.absolute_path) or "(root)"
        errors.append(f"{name_of(doc)}: {path}: {e.message}")
    return errors


def cmd_crd_schema():
    errors, counts = [], {}
    for target, docs in all_documents().items():
        for doc in docs:
            if (doc.get("apiVersion"), doc.get("kind")) not in CUSTOM_KINDS:
                continue
            errors += [f"{target}: {e}" for e in crd_errors(doc)]
            counts[doc["kind"]] = counts.get(doc["kind"], 0) + 1
    if errors:
        raise CheckFailed("\n".join(errors))
    with open(os.path.join(SCHEMAS, "__cluster_version__.txt")) as f:
        cluster = f.read().strip()
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"valid against the OpenAPI schemas of an OpenShift cluster ({cluster}), strict: {summary}")
    for needed in ("Route", "Task", "Pipeline", "PipelineRun", "SecurityContextConstraints"):
        if needed not in counts:
            raise CheckFailed(f"no {needed} was checked")


# --- policy ---------------------------------------------------------------------------------

def deployment_problems(docs, target):
    """What breaks least privilege or the probes in the rendered objects of one target."""
    problems = []
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    if len(deployments) != 1:
        return [f"expected one Deployment, found {len(deployments)}"]
    dep = deployments[0]
    spec = dep["spec"]["template"]["spec"]
    meta = dep["metadata"]
    if meta.get("namespace") != "ai-for-edge":
        problems.append(f"Deployment namespace is {meta.get('namespace')!r}, not ai-for-edge")

    pod_sc = spec.get("securityContext", {})
    if pod_sc.get("runAsNonRoot") is not True:
        problems.append("pod securityContext.runAsNonRoot is not true")
    if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("pod seccompProfile is not RuntimeDefault")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(f"pod sets {field}")
    sa = spec.get("serviceAccountName", "default")
    if sa in ("default", "privileged") or "privileged" in sa:
        problems.append(f"service account {sa!r}: use the dedicated, unprivileged facerec account")
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("the service account token is mounted (automountServiceAccountToken)")
    sas = [d for d in docs if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == sa]
    if not sas:
        problems.append(f"service account {sa!r} is not part of the manifests")
    for binding in (d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        role = binding["roleRef"]["name"]
        if binding["kind"] == "ClusterRoleBinding" or "privileged" in role or role in (
            "cluster-admin",
            "admin",
            "edit",
        ):
            problems.append(f"{name_of(binding)} grants {role}")

    allowed_host_paths = {"/tmp/argus_socket"} if "csi" in target else set()
    for vol in spec.get("volumes", []):
        if "hostPath" in vol:
            path = vol["hostPath"]["path"]
            if path not in allowed_host_paths:
                problems.append(f"hostPath volume {path}: pass devices through, not host folders")

    containers = spec.get("containers", [])
    inits = spec.get("initContainers", [])
    for c in inits + containers:
        sc = c.get("securityContext", {})
        who = f"container {c['name']}"
        if sc.get("privileged") is not False:
            problems.append(f"{who}: privileged is not explicitly false")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{who}: allowPrivilegeEscalation is not false")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{who}: root filesystem is writable")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{who}: does not drop all capabilities")
        if sc.get("capabilities", {}).get("add"):
            problems.append(f"{who}: adds capabilities {sc['capabilities']['add']}")
        if sc.get("runAsUser") == 0 or sc.get("runAsNonRoot") is False:
            problems.append(f"{who}: runs as root")
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in res.get(kind, {}):
                    problems.append(f"{who}: no {r} {kind[:-1]}")

    launchers = [c for c in containers if c["name"] == "launcher"]
    if len(launchers) != 1:
        problems.append("no container named launcher")
        return problems
    launcher = launchers[0]
    ports = {p.get("name"): p["containerPort"] for p in launcher.get("ports", [])}
    if ports.get("http") != 8080:
        problems.append("launcher does not expose port 8080 as `http`")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = launcher.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") not in ("http", 8080):
            problems.append(f"launcher {probe} is not an HTTP GET of {path} on port http")
    mounts = {m["mountPath"]: m for m in launcher.get("volumeMounts", [])}
    if "/model" not in mounts:
        problems.append("launcher does not mount /model")
    init_mounts = [m["mountPath"] for c in inits for m in c.get("volumeMounts", [])]
    if not inits or "/model" not in init_mounts:
        problems.append("no init container fills /model")
    model_volume = mounts.get("/model", {}).get("name")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    if "emptyDir" not in volumes.get(model_volume, {}):
        problems.append("/model is not an emptyDir")
    env_from = [e["configMapRef"]["name"] for e in launcher.get("envFrom", []) if "configMapRef" in e]
    maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    if not env_from or env_from[0] not in maps:
        problems.append("the launcher's configuration does not come from a ConfigMap of the manifests")
        return problems
    config = maps[env_from[0]]["data"]
    if config.get("FACEREC_GALLERY") != "/model/model.data":
        problems.append("FACEREC_GALLERY is not /model/model.data")

    # History and face library: on a PersistentVolumeClaim of the manifests, so that they
    # survive a restart and are writable under the read-only root.
    data_dir = config.get("FACEREC_DATA_DIR")
    data_volume = mounts.get(data_dir or "", {}).get("name")
    claim = next((v.get("persistentVolumeClaim", {}).get("claimName")
                  for v in spec.get("volumes", []) if v.get("name") == data_volume), None)
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    if not data_dir:
        problems.append("FACEREC_DATA_DIR is not set")
    elif data_volume is None:
        problems.append(f"the launcher does not mount a volume at FACEREC_DATA_DIR {data_dir}")
    elif claim not in claims:
        problems.append(f"{data_dir} is not on a PersistentVolumeClaim of the manifests")
    elif mounts[data_dir].get("readOnly"):
        problems.append(f"{data_dir} is mounted read-only")

    # The camera: a device passed through, not a privileged container.
    annotations = dep["spec"]["template"]["metadata"].get("annotations", {})
    sources = config.get("FACEREC_SOURCES", "")
    if "v4l2:///dev/video" in sources:
        device = sources.split("v4l2://", 1)[1].split(",", 1)[0]
        if device not in annotations.get("io.kubernetes.cri-o.Devices", ""):
            problems.append(f"camera {device} is not passed through (io.kubernetes.cri-o.Devices)")
    if "nvargus://" in sources and "/tmp/argus_socket" not in {
        v.get("hostPath", {}).get("path") for v in spec.get("volumes", [])
    }:
        problems.append("nvargus camera without the argus socket")

    grace = spec.get("terminationGracePeriodSeconds", 30)
    if not 5 < grace <= 60:
        problems.append(f"terminationGracePeriodSeconds {grace}: the launcher needs 5 s")

    # Service and Route reach the launcher.
    services = [d for d in docs if d["kind"] == "Service"]
    routes = [d for d in docs if d["kind"] == "Route"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    if not services or any(
        any(labels.get(k) != v for k, v in s["spec"]["selector"].items()) for s in services
    ):
        problems.append("no Service selects the launcher pod")
    elif not any(p.get("targetPort") in ("http", 8080) for p in services[0]["spec"]["ports"]):
        problems.append("the Service does not target port http")
    if target != "base" and (
        not routes or routes[0]["spec"]["to"]["name"] != services[0]["metadata"]["name"]
    ):
        problems.append("no Route to the Service")

    provider = config.get("FACEREC_PROVIDER")
    if target.startswith("jetson") or target == "auto-manifests":
        if spec.get("runtimeClassName") != "nvidia":
            problems.append("Jetson pod does not use the nvidia runtime class")
        if provider not in ("tensorrt", "cuda"):
            problems.append(f"Jetson provider is {provider!r}, not tensorrt or cuda")
        if not any(d["kind"] == "RuntimeClass" and d["metadata"]["name"] == "nvidia" for d in docs):
            problems.append("the nvidia RuntimeClass is missing")
        problems += tensorrt_problems(launcher, spec, config, docs)
    if target.split("+")[0] == "x86" and provider != "cpu":
        problems.append(f"x86 provider is {provider!r}, not cpu")
    namespaces = [d for d in docs if d["kind"] == "Namespace"]
    if not namespaces or namespaces[0]["metadata"]["name"] != "ai-for-edge":
        problems.append("namespace ai-for-edge is not created")
    problems += scc_volume_problems(docs, spec)
    problems += secret_problems(dep, launcher, config, docs, target)
    problems += auth_problems(dep, launcher, config, docs)
    return problems


# The first start builds the TensorRT engines before the launcher listens: 6 to 12 minutes on a
# Jetson (DeepStream users' reports), so the startup probe must allow at least this long.
TRT_BUILD_BUDGET_S = 15 * 60


def tensorrt_problems(launcher, spec, config, docs):
    """Jetson: the engine cache on a writable PersistentVolumeClaim of the manifests (engines
    survive restarts), and a startup probe that outlasts a first engine build."""
    problems = []
    cache = config.get("FACEREC_TRT_ENGINE_CACHE")
    if not cache:
        problems.append("FACEREC_TRT_ENGINE_CACHE is not set: TensorRT rebuilds its engines at every start")
    else:
        def under(path, root):
            return (path.rstrip("/") + "/").startswith(root.rstrip("/") + "/")

        mounts = [m for m in launcher.get("volumeMounts", []) if under(cache, m["mountPath"])]
        mount = max(mounts, key=lambda m: len(m["mountPath"])) if mounts else None
        volume = next((v for v in spec.get("volumes", [])
                       if mount and v["name"] == mount["name"]), {})
        claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
        claim = volume.get("persistentVolumeClaim", {}).get("claimName")
        timing = config.get("FACEREC_TRT_TIMING_CACHE")
        if mount is None:
            problems.append(f"no volume is mounted at the TensorRT engine cache {cache}")
        elif claim not in claims:
            problems.append(
                f"the TensorRT engine cache {cache} is not on a PersistentVolumeClaim of the "
                "manifests: engines would be lost at every restart")
        elif mount.get("readOnly"):
            problems.append(f"the TensorRT engine cache {cache} is mounted read-only")
        elif timing and not under(timing, mount["mountPath"]):
            problems.append(f"the TensorRT timing cache {timing} is not on the engine cache's volume")
    probe = launcher.get("startupProbe", {})
    get = probe.get("httpGet", {})
    if get.get("path") != "/healthz" or get.get("port") not in ("http", 8080):
        problems.append("launcher startupProbe is not an HTTP GET of /healthz on port http")
    # Kubernetes' defaults: every 10 s, 3 failures.
    budget = probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3) \
        + probe.get("initialDelaySeconds", 0)
    if budget < TRT_BUILD_BUDGET_S:
        problems.append(
            f"the startup probe allows {budget} s, less than the {TRT_BUILD_BUDGET_S} s a first "
            "TensorRT engine build may take")
    return problems


def scc_volume_problems(docs, spec):
    """An SCC of the manifests must allow every volume type the pod uses: OpenShift refuses the
    pod otherwise (e.g. the CSI camera's SCC and the MQTT component's Secret volume)."""
    problems = []
    used = {k for v in spec.get("volumes", []) for k in v if k != "name"}
    for scc in (d for d in docs if d["kind"] == "SecurityContextConstraints"):
        allowed = set(scc.get("volumes") or [])
        if "*" not in allowed and used - allowed:
            problems.append(
                f"SCC {scc['metadata']['name']} does not allow the pod's "
                f"{', '.join(sorted(used - allowed))} volume(s)"
            )
    return problems


SECRET_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET", re.I)


def mounted_file(path, launcher, spec):
    """(mount, volume, key) of the volume file at `path` in the launcher, or None."""
    mounts = [
        m for m in launcher.get("volumeMounts", [])
        if path.startswith(m["mountPath"].rstrip("/") + "/")
    ]
    if not mounts:
        return None
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    volume = next((v for v in spec.get("volumes", []) if v["name"] == mount["name"]), {})
    rel = path[len(mount["mountPath"].rstrip("/")) + 1:]
    source = volume.get("secret") or volume.get("configMap") or {}
    if "items" in source:
        # Only the listed keys are projected, each at its own path.
        return mount, volume, {i["path"]: i["key"] for i in source["items"]}.get(rel)
    return mount, volume, rel


def effective_settings(launcher, config):
    """{name: (where, value)}: env entries override the ConfigMap (envFrom); a valueFrom
    entry's value is its valueFrom mapping."""
    settings = {k: ("ConfigMap", v) for k, v in config.items()}
    for e in launcher.get("env", []):
        settings[e["name"]] = ("env", e.get("value") if "value" in e else e.get("valueFrom"))
    return settings


def secret_problems(dep, launcher, config, docs, target):
    """Secrets are never literal settings; MQTT (components/mqtt) reads its password from a
    read-only Secret volume, has no password in its URL, and reports as the node's name."""
    problems = []
    spec = dep["spec"]["template"]["spec"]
    namespace = dep["metadata"].get("namespace")
    settings = effective_settings(launcher, config)
    for name, (where, value) in sorted(settings.items()):
        if SECRET_NAME.search(name) and not name.endswith("_FILE") and isinstance(value, str):
            problems.append(f"{name} is a literal value in the {where}: secrets come from a Secret")

    if "FACEREC_MQTT_URL" not in settings:
        if "mqtt" in target:
            problems.append("the MQTT component did not set FACEREC_MQTT_URL")
        return problems
    where, url = settings["FACEREC_MQTT_URL"]
    if not isinstance(url, str):
        return problems + ["FACEREC_MQTT_URL is not a literal setting"]
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        problems.append(f"FACEREC_MQTT_URL {url!r} is not mqtt[s]://user@host[:port]")
    if parts.password is not None:
        problems.append("FACEREC_MQTT_URL carries a password: it belongs in the Secret file")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        problems.append(f"FACEREC_MQTT_URL {url!r} has a path, query or fragment (refused at start-up)")
    if not parts.username:
        problems.append("FACEREC_MQTT_URL has no user name (the password file needs one)")

    # The password: a file on a read-only Secret volume of a Secret in the manifests.
    _, password_file = settings.get("FACEREC_MQTT_PASSWORD_FILE", (None, None))
    mqtt_secret = None
    if not isinstance(password_file, str):
        problems.append("FACEREC_MQTT_PASSWORD_FILE is not set to a path")
    else:
        found = mounted_file(password_file, launcher, spec)
        if found is None:
            problems.append(f"FACEREC_MQTT_PASSWORD_FILE {password_file} is on no volume")
        else:
            mount, volume, key = found
            if "secret" not in volume:
                problems.append(f"FACEREC_MQTT_PASSWORD_FILE {password_file} is not on a Secret volume")
            else:
                mqtt_secret = volume["secret"]["secretName"]
                secrets = [d for d in docs if d["kind"] == "Secret"
                           and d["metadata"]["name"] == mqtt_secret]
                if not secrets:
                    problems.append(f"the Secret {mqtt_secret} is not part of the manifests")
                elif secrets[0]["metadata"].get("namespace") != namespace:
                    problems.append(
                        f"the Secret {mqtt_secret} is in namespace "
                        f"{secrets[0]['metadata'].get('namespace')!r}, not the pod's {namespace!r}"
                    )
                elif key not in {**secrets[0].get("data", {}), **secrets[0].get("stringData", {})}:
                    problems.append(f"the Secret {mqtt_secret} has no key {key!r}")
            if mount.get("readOnly") is not True:
                problems.append(f"the volume {mount['name']} holding the MQTT password is mounted writable")
    if mqtt_secret:
        for e in launcher.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef", {})
            if ref.get("name") == mqtt_secret:
                problems.append(f"env {e['name']} exposes the Secret {mqtt_secret}: read it as a file")

    ca = settings.get("FACEREC_MQTT_CA_FILE", (None, None))[1]
    if ca is not None:
        found = mounted_file(ca, launcher, spec) if isinstance(ca, str) else None
        if found is None or not ({"secret", "configMap"} & set(found[1])):
            problems.append(f"FACEREC_MQTT_CA_FILE {ca} is not on a Secret or ConfigMap volume")
        elif found[0].get("readOnly") is not True:
            problems.append(f"the volume {found[0]['name']} holding the MQTT CA is mounted writable")
        else:
            mount, volume, key = found
            kind, ref = ("Secret", volume["secret"]["secretName"]) if "secret" in volume else (
                "ConfigMap", volume["configMap"]["name"])
            sources = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == ref]
            keys = {k for d in sources for field in ("data", "stringData", "binaryData")
                    for k in d.get(field, {})}
            if key not in keys:
                problems.append(f"FACEREC_MQTT_CA_FILE {ca}: {kind} {ref} has no key {key!r}")

    # One id per edge node, stable across pod restarts (the pod's host name is not).
    where, node_id = settings.get("FACEREC_MQTT_NODE_ID", (None, None))
    if not (isinstance(node_id, dict) and node_id.get("fieldRef", {}).get("fieldPath") == "spec.nodeName"):
        problems.append("FACEREC_MQTT_NODE_ID does not come from the node's name (fieldRef spec.nodeName)")
    return problems


# What the launcher's boolean flags accept (clap's BoolishValueParser).
TRUE_WORDS = {"y", "yes", "t", "true", "on", "1"}


def auth_problems(dep, launcher, config, docs):
    """Sign-in stays on; the admin password is a file on a read-only volume of the Secret
    (never an env value); the Route terminates TLS at the edge and redirects http to https; the
    router is a trusted proxy, and not the whole world."""
    problems = []
    spec = dep["spec"]["template"]["spec"]
    namespace = dep["metadata"].get("namespace")
    settings = effective_settings(launcher, config)

    # FACEREC_AUTH: unset means on; anything but a literal true word is off or refused.
    where, auth = settings.get("FACEREC_AUTH", (None, "true"))
    if not (isinstance(auth, str) and auth.strip().lower() in TRUE_WORDS):
        problems.append(f"sign-in is turned off: FACEREC_AUTH={auth!r} in the {where}")
    args = [str(a) for a in launcher.get("command", []) + launcher.get("args", [])]
    for i, arg in enumerate(args):
        value = None
        if arg.startswith("--auth="):
            value = arg.split("=", 1)[1]
        elif arg == "--auth" and i + 1 < len(args) and not args[i + 1].startswith("-"):
            value = args[i + 1]
        if value is not None and value.strip().lower() not in TRUE_WORDS:
            problems.append(f"sign-in is turned off: the launcher's arguments pass --auth {value!r}")

    # The admin password: a file on a read-only Secret volume, the Secret's key projected.
    _, path = settings.get("FACEREC_ADMIN_PASSWORD_FILE", (None, None))
    if not isinstance(path, str):
        problems.append("FACEREC_ADMIN_PASSWORD_FILE is not set to a path: the admin password "
                        "would be random (printed once) or left as it was")
    else:
        found = mounted_file(path, launcher, spec)
        if found is None:
            problems.append(f"FACEREC_ADMIN_PASSWORD_FILE {path} is on no volume")
        else:
            mount, volume, key = found
            secret = volume.get("secret")
            if secret is None:
                problems.append(f"FACEREC_ADMIN_PASSWORD_FILE {path} is not on a Secret volume")
            else:
                name = secret.get("secretName")
                if key is None:
                    problems.append(f"FACEREC_ADMIN_PASSWORD_FILE {path}: the volume "
                                    f"{volume['name']} projects no such file of the Secret {name}")
                if secret.get("optional"):
                    problems.append(f"the admin password Secret {name} is optional: without it "
                                    "the file is missing")
                # A Secret the manifests make (rather than the operator's `oc create secret`)
                # must be in the pod's namespace and carry the key.
                made = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == name]
                if made and made[0]["metadata"].get("namespace") != namespace:
                    problems.append(f"the Secret {name} is not in the pod's namespace {namespace!r}")
                elif made and key not in {**made[0].get("data", {}), **made[0].get("stringData", {})}:
                    problems.append(f"the Secret {name} has no key {key!r}")
                for e in launcher.get("env", []):
                    if e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == name:
                        problems.append(f"env {e['name']} exposes the Secret {name}: read it as a file")
            if mount.get("readOnly") is not True:
                problems.append(f"the volume {mount['name']} holding the admin password is mounted writable")

    # The Route: TLS at the router, plain http redirected (never served).
    for route in (d for d in docs if d["kind"] == "Route"):
        tls = route["spec"].get("tls") or {}
        if tls.get("termination") != "edge":
            problems.append(f"{name_of(route)} is not edge-terminated (tls.termination "
                            f"{tls.get('termination')!r}): TLS must end at the router, the launcher serves plain HTTP")
        elif tls.get("insecureEdgeTerminationPolicy") != "Redirect":
            problems.append(f"{name_of(route)} does not redirect http to https "
                            f"(insecureEdgeTerminationPolicy {tls.get('insecureEdgeTerminationPolicy')!r})")

    # The router as a trusted proxy (Secure cookies behind the edge Route), and only networks.
    _, proxies = settings.get("FACEREC_TRUSTED_PROXY", (None, None))
    if not isinstance(proxies, str) or not proxies.strip():
        problems.append("FACEREC_TRUSTED_PROXY is not set: behind the Route the session cookie "
                        "is not marked Secure")
    else:
        for item in (p.strip() for p in proxies.split(",")):
            try:
                net = ipaddress.ip_network(item, strict=False)
            except ValueError:
                problems.append(f"FACEREC_TRUSTED_PROXY: {item!r} is not an IP address or CIDR")
                continue
            if net.prefixlen == 0:
                problems.append(f"FACEREC_TRUSTED_PROXY trusts every address ({item}): any client "
                                "could forge X-Forwarded-For and X-Forwarded-Proto")
    return problems


def cmd_policy():
    failures = []
    for target, docs in rendered().items():
        problems = deployment_problems(docs, target)
        failures += [f"{target}: {p}" for p in problems]
        print(f"  {target}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    if failures:
        raise CheckFailed("\n".join(failures))
    print("every Deployment is unprivileged, probed, limited and wired to its model and camera;"
          " MQTT reads its password from a read-only Secret file; sign-in is on, the admin"
          " password a read-only Secret file, the Route edge TLS with http redirected")


# --- mutations --------------------------------------------------------------------------------

def edit_yaml(path, edit):
    with open(path) as f:
        docs = list(yaml.safe_load_all(f))
    edit(docs[0])
    with open(path, "w") as f:
        yaml.safe_dump_all(docs, f)


def launcher_of(doc):
    return next(c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == "launcher")


def base_deployment(edit):
    return lambda root: edit_yaml(os.path.join(root, "base", "deployment.yaml"), edit)


def _set(d, keys, value):
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value


def jetson_patch(edit):
    """Edits the Jetson overlay's Deployment patch."""
    return lambda root: edit_yaml(
        os.path.join(root, "overlays", "jetson", "deployment-patch.yaml"), edit
    )


def jetson_config(edit):
    """Edits the Jetson overlay's kustomization as text (its comments stay)."""
    def mutate(root):
        path = os.path.join(root, "overlays", "jetson", "kustomization.yaml")
        with open(path) as f:
            text = f.read()
        new = edit(text)
        assert new != text, "the mutation changed nothing"
        with open(path, "w") as f:
            f.write(new)
    return mutate


def trt_cache_on_empty_dir(d):
    for v in d["spec"]["template"]["spec"]["volumes"]:
        if v["name"] == "trt-engines":
            v.pop("persistentVolumeClaim")
            v["emptyDir"] = {}


def data_on_empty_dir(d):
    for v in d["spec"]["template"]["spec"]["volumes"]:
        if v["name"] == "data":
            v.pop("persistentVolumeClaim")
            v["emptyDir"] = {}


MUTATIONS = {
    "history and library on an emptyDir (lost at every restart)": base_deployment(data_on_empty_dir),
    "launcher privileged": base_deployment(
        lambda d: _set(launcher_of(d), ["securityContext", "privileged"], True)
    ),
    "init container privileged": base_deployment(
        lambda d: _set(d["spec"]["template"]["spec"]["initContainers"][0], ["securityContext", "privileged"], True)
    ),
    "privilege escalation allowed": base_deployment(
        lambda d: _set(launcher_of(d), ["securityContext", "allowPrivilegeEscalation"], True)
    ),
    "capability added": base_deployment(
        lambda d: _set(launcher_of(d), ["securityContext", "capabilities", "add"], ["SYS_ADMIN"])
    ),
    "privileged service account": base_deployment(
        lambda d: _set(d["spec"]["template"]["spec"], ["serviceAccountName"], "privileged")
    ),
    "hostPath camera": base_deployment(
        lambda d: d["spec"]["template"]["spec"]["volumes"].append(
            {"name": "video0", "hostPath": {"path": "/dev/video0"}}
        )
    ),
    "host network": base_deployment(
        lambda d: _set(d["spec"]["template"]["spec"], ["hostNetwork"], True)
    ),
    "liveness probe removed": base_deployment(lambda d: launcher_of(d).pop("livenessProbe")),
    "readiness probe removed": base_deployment(lambda d: launcher_of(d).pop("readinessProbe")),
    "liveness probe path changed": base_deployment(
        lambda d: _set(launcher_of(d), ["livenessProbe", "httpGet", "path"], "/")
    ),
    "init container limits removed": base_deployment(
        lambda d: d["spec"]["template"]["spec"]["initContainers"][0]["resources"].pop("limits")
    ),
    "model not from the init container": base_deployment(
        lambda d: d["spec"]["template"]["spec"].pop("initContainers")
    ),
    "jetson overlay privileged by patch": lambda root: open(
        os.path.join(root, "overlays", "jetson", "deployment-patch.yaml"), "a"
    ).write("          securityContext:\n            privileged: true\n"),
    "jetson TensorRT engine cache volume not mounted": jetson_patch(
        lambda d: launcher_of(d).pop("volumeMounts")
    ),
    "jetson TensorRT engine cache on an emptyDir": jetson_patch(trt_cache_on_empty_dir),
    "jetson TensorRT engine cache not set": jetson_config(
        lambda text: re.sub(r"(?m)^ *- FACEREC_TRT_ENGINE_CACHE=.*\n", "", text)
    ),
    "jetson startup probe too short for a TensorRT build (base's 2 minutes)": jetson_patch(
        lambda d: launcher_of(d)["startupProbe"].update(periodSeconds=2, failureThreshold=60)
    ),
}


# --- MQTT component mutations: caught in the targets that use components/mqtt (or, for the SCC,
# in those that use the CSI camera's SCC).

def mqtt_file(root, name):
    return os.path.join(root, "components", "mqtt", name)


def mqtt_patch(edit):
    def mutate(root):
        def on_doc(d):
            edit(d["spec"]["template"]["spec"])
        edit_yaml(mqtt_file(root, "deployment-patch.yaml"), on_doc)
    return mutate


def mqtt_url(url):
    def mutate(root):
        with open(mqtt_file(root, "mqtt.env")) as f:
            text = f.read()
        new = re.sub(r"(?m)^FACEREC_MQTT_URL=.*$", f"FACEREC_MQTT_URL={url}", text)
        assert new != text
        with open(mqtt_file(root, "mqtt.env"), "w") as f:
            f.write(new)
    return mutate


def mqtt_env(spec):
    return spec["containers"][0]["env"]


def password_from_secret_env(spec):
    env = mqtt_env(spec)
    env[:] = [e for e in env if e["name"] != "FACEREC_MQTT_PASSWORD_FILE"]
    env.append({"name": "FACEREC_MQTT_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "facerec-mqtt", "key": "password"}}})
    # The file stays mounted and named, so only the env exposure is new.
    env.append({"name": "FACEREC_MQTT_PASSWORD_FILE", "value": "/etc/facerec/mqtt/password"})


def password_on_config_map(spec):
    volume = spec["volumes"][0]
    volume["configMap"] = {"name": volume.pop("secret")["secretName"]}


def scc_without_secrets(root):
    def edit(d):
        d["volumes"].remove("secret")
    edit_yaml(os.path.join(root, "components", "jetson-csi-camera", "scc.yaml"), edit)


def secret_without_namespace(root):
    edit_yaml(mqtt_file(root, "kustomization.yaml"), lambda d: d["secretGenerator"][0].pop("namespace"))


def is_mqtt(target):
    return "mqtt" in target


# label: (mutate, which targets must catch it)
MQTT_MUTATIONS = {
    "MQTT password in FACEREC_MQTT_URL": (
        mqtt_url("mqtt://facerec:hunter2@broker.example.com:1883"), is_mqtt),
    "MQTT password as a literal env value": (
        mqtt_patch(lambda spec: mqtt_env(spec).append(
            {"name": "FACEREC_MQTT_PASSWORD", "value": "hunter2"})), is_mqtt),
    "MQTT password as an env value from the Secret": (mqtt_patch(password_from_secret_env), is_mqtt),
    "MQTT password file on a ConfigMap volume": (mqtt_patch(password_on_config_map), is_mqtt),
    "MQTT Secret volume mounted writable": (
        mqtt_patch(lambda spec: spec["containers"][0]["volumeMounts"][0].update(readOnly=False)),
        is_mqtt),
    "MQTT Secret generated outside the pod's namespace": (secret_without_namespace, is_mqtt),
    "MQTT node id from the pod, not the node": (
        mqtt_patch(lambda spec: mqtt_env(spec)[1]["valueFrom"]["fieldRef"].update(
            fieldPath="metadata.name")), is_mqtt),
    # The base mounts the admin password Secret: every CSI camera target needs Secret volumes.
    "CSI camera SCC without Secret volumes": (scc_without_secrets, lambda t: "csi" in t),
}


# --- Sign-in and TLS mutations.

def base_text(name, old, new):
    """Replaces `old` by `new` in a base file, as text (its comments stay)."""
    def mutate(root):
        path = os.path.join(root, "base", name)
        with open(path) as f:
            text = f.read()
        assert old in text, f"{name} no longer has {old!r}"
        with open(path, "w") as f:
            f.write(text.replace(old, new))
    return mutate


def x86_patch_op(op):
    """Appends a JSON-patch operation to the x86 overlay's Deployment patch."""
    def mutate(root):
        path = os.path.join(root, "overlays", "x86", "kustomization.yaml")
        with open(path) as f:
            doc = yaml.safe_load(f)
        doc["patches"][0]["patch"] += "\n" + yaml.safe_dump([op]).rstrip()
        with open(path, "w") as f:
            yaml.safe_dump(doc, f)
    return mutate


def admin_volume(d):
    return next(v for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == "admin-password")


def admin_mount(d):
    return next(m for m in launcher_of(d)["volumeMounts"] if m["name"] == "admin-password")


def admin_env(edit):
    def on_doc(d):
        env = launcher_of(d)["env"]
        edit(env, next(e for e in env if e["name"] == "FACEREC_ADMIN_PASSWORD_FILE"))
    return on_doc


def admin_on_config_map(d):
    volume = admin_volume(d)
    volume["configMap"] = {"name": volume.pop("secret")["secretName"]}


def is_x86(target):
    return target.split("+")[0] == "x86"


def every(target):
    return True


# label: (mutate, which targets must catch it)
AUTH_MUTATIONS = {
    "sign-in off in the base (FACEREC_AUTH=false)": (
        base_text("facerec.env", "FACEREC_AUTH=true", "FACEREC_AUTH=false"), every),
    "sign-in off in the Jetson overlay (FACEREC_AUTH=off literal)": (
        jetson_config(lambda text: text.replace(
            "      - FACEREC_PROVIDER=tensorrt\n",
            "      - FACEREC_PROVIDER=tensorrt\n      - FACEREC_AUTH=off\n")),
        lambda t: "jetson" in t or t == "auto-manifests"),
    "sign-in off in the x86 overlay (launcher argument --auth=false)": (
        x86_patch_op({"op": "add", "path": "/spec/template/spec/containers/0/args",
                      "value": ["--auth=false"]}), is_x86),
    "sign-in off in the x86 overlay (env FACEREC_AUTH=0)": (
        x86_patch_op({"op": "add", "path": "/spec/template/spec/containers/0/env/-",
                      "value": {"name": "FACEREC_AUTH", "value": "0"}}), is_x86),
    "FACEREC_ADMIN_PASSWORD_FILE not set": (
        base_deployment(admin_env(lambda env, e: env.remove(e))), every),
    "admin password file outside its volume": (
        base_deployment(admin_env(lambda env, e: e.update(value="/etc/facerec/password"))), every),
    "admin password file not a key the volume projects": (
        base_deployment(admin_env(lambda env, e: e.update(value="/etc/facerec/admin/passwd"))), every),
    "admin password on a ConfigMap volume": (base_deployment(admin_on_config_map), every),
    "admin password volume mounted writable": (
        base_deployment(lambda d: admin_mount(d).update(readOnly=False)), every),
    "admin password Secret optional": (
        base_deployment(lambda d: admin_volume(d)["secret"].update(optional=True)), every),
    "admin password Secret also exposed as an env value": (
        base_deployment(lambda d: launcher_of(d)["env"].append(
            {"name": "ADMIN_PASSWORD", "valueFrom": {"secretKeyRef": {
                "name": "facerec-admin", "key": "password"}}})), every),
    "Route without TLS (plain http)": (
        base_text("route.yaml", "  tls:\n    termination: edge\n    insecureEdgeTerminationPolicy: Redirect\n", ""),
        every),
    "Route edge TLS that still serves http (insecureEdgeTerminationPolicy Allow)": (
        base_text("route.yaml", "insecureEdgeTerminationPolicy: Redirect",
                  "insecureEdgeTerminationPolicy: Allow"), every),
    "Route TLS passed through to a launcher without TLS": (
        base_text("route.yaml", "termination: edge", "termination: passthrough"), every),
    "FACEREC_TRUSTED_PROXY unset (no Secure cookie behind the Route)": (
        base_text("facerec.env", "FACEREC_TRUSTED_PROXY=10.42.0.0/16\n", ""), every),
    "FACEREC_TRUSTED_PROXY trusts every address": (
        base_text("facerec.env", "FACEREC_TRUSTED_PROXY=10.42.0.0/16", "FACEREC_TRUSTED_PROXY=0.0.0.0/0"),
        every),
}


def cmd_mutations():
    """Each broken copy must be caught: proves the policy check is not vacuous."""
    clean = rendered()
    for target, docs in clean.items():
        if deployment_problems(docs, target):
            raise CheckFailed(f"the unmodified {target} already fails the policy")
    missed = []
    for label, entry in {**MUTATIONS, **MQTT_MUTATIONS, **AUTH_MUTATIONS}.items():
        mutate, which = entry if isinstance(entry, tuple) else (entry, None)
        docs = rendered(mutate)
        caught = {t: deployment_problems(d, t) for t, d in docs.items()}
        hit = [t for t, p in caught.items() if p]
        # Base edits reach every target; the Jetson patch reaches the Jetson targets.
        if which:
            expected = [t for t in docs if which(t)]
        elif "jetson" in label:
            expected = [t for t in docs if "jetson" in t or t == "auto-manifests"]
        else:
            expected = list(docs)
        if sorted(hit) != sorted(expected):
            missed.append(f"{label}: caught in {hit}, expected {expected}")
        else:
            first = next(iter(p for p in caught.values() if p))[0]
            print(f"  caught: {label} ({first})")
    # And strict schema validation rejects a misspelt field, in both schema sources.
    typo = copy.deepcopy(next(d for d in clean["x86"] if d["kind"] == "Deployment"))
    launcher_of(typo)["livenessProbes"] = launcher_of(typo).pop("livenessProbe")
    if not k8s_errors(typo, K8S_VERSIONS[0]):
        missed.append("kubernetes-validate accepted a misspelt livenessProbes")
    else:
        print("  caught: misspelt livenessProbes (Kubernetes schema, strict)")
    route = copy.deepcopy(next(d for d in clean["x86"] if d["kind"] == "Route"))
    route["spec"]["hosts"] = route["spec"].pop("host")
    if not crd_errors(route):
        missed.append("the Route schema accepted a misspelt spec.hosts")
    else:
        print("  caught: misspelt Route spec.hosts (OpenShift schema, strict)")
    task = copy.deepcopy(next(d for d in kustomize(TEKTON) if d["kind"] == "Task"))
    task["spec"]["steps"][0]["scripts"] = task["spec"]["steps"][0].pop("script")
    if not crd_errors(task):
        missed.append("the Tekton Task schema accepted a misspelt steps[0].scripts")
    else:
        print("  caught: misspelt Tekton step `scripts` (Tekton schema, strict)")
    # mqtts with a private CA, set up as the component's comments say: it renders and passes;
    # a CA path outside the mounted Secret is caught.
    def with_ca(ca_path):
        def mutate(root):
            for name, line in (("kustomization.yaml", "      # - ca.crt\n"),
                               ("mqtt.env", "# FACEREC_MQTT_CA_FILE=/etc/facerec/mqtt/ca.crt\n")):
                with open(mqtt_file(root, name)) as f:
                    text = f.read()
                assert line in text, f"{name} no longer has the line {line!r}"
                text = text.replace(line, line.replace("# ", "", 1).replace("/etc/facerec/mqtt/ca.crt", ca_path))
                with open(mqtt_file(root, name), "w") as f:
                    f.write(text)
            with open(mqtt_file(root, "ca.crt"), "w") as f:
                f.write("-----BEGIN CERTIFICATE-----\nplaceholder\n-----END CERTIFICATE-----\n")
        return mutate

    for ca_path, expect in (("/etc/facerec/mqtt/ca.crt", []),
                            ("/etc/ssl/private-ca.crt", ["is not on a Secret or ConfigMap volume"]),
                            ("/etc/facerec/mqtt/ca.pem", ["has no key 'ca.pem'"])):
        docs = rendered(with_ca(ca_path))
        found = {t: deployment_problems(d, t) for t, d in docs.items() if is_mqtt(t)}
        wrong = {t: p for t, p in found.items()
                 if len(p) != len(expect) or not all(e in q for e, q in zip(expect, p))}
        if wrong:
            missed.append(f"MQTT CA file at {ca_path}: expected {expect or 'no problem'}, got {wrong}")
        elif expect:
            print(f"  caught: MQTT CA file at {ca_path} ({found['x86+mqtt'][0]})")
        else:
            print("  ok: mqtts with a private CA, set up as the component's comments say")

    # The MQTT component without its password file: rendering fails, naming the file, rather
    # than starting a pod with an empty or example password.
    tmp, targets = with_tree(lambda root: os.remove(mqtt_file(root, "password")))
    try:
        kustomize(targets["x86+mqtt"])
        missed.append("the MQTT component rendered without its password file")
    except CheckFailed as e:
        if "components/mqtt/password" not in str(e) or "no such file" not in str(e):
            missed.append(f"the MQTT component without its password file failed otherwise: {e}")
        else:
            print("  caught: MQTT password file not created (kustomize: components/mqtt/password: no such file)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if missed:
        raise CheckFailed("mutations not caught:\n" + "\n".join(missed))
    print(f"{len(MUTATIONS) + len(MQTT_MUTATIONS) + len(AUTH_MUTATIONS) + 6} broken copies, all caught")


def cmd_termination_grace(target):
    docs = rendered()[target]
    dep = next(d for d in docs if d["kind"] == "Deployment")
    print(dep["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30))


def main(argv):
    commands = {
        "render": cmd_render,
        "k8s-schema": cmd_k8s_schema,
        "crd-schema": cmd_crd_schema,
        "policy": cmd_policy,
        "mutations": cmd_mutations,
        "termination-grace": cmd_termination_grace,
    }
    if not argv or argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        commands[argv[0]](*argv[1:])
    except CheckFailed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
