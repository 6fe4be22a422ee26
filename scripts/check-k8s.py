#!/usr/bin/env python3
"""Policy checks on a rendered kustomize overlay (what the schema cannot say).

Usage: check-k8s.py OVERLAY_NAME RENDERED.yaml
The schema check (kubernetes-validate --strict) proves the objects are well formed; this
proves they are the deployment the README describes: one replica per feed on a ReadWriteOnce
volume, probes on the health endpoints, a locked-down container, secrets only referenced,
an Ingress that does not buffer SSE, and selectors that actually match the pods.
Needs PyYAML (installed with the validators by scripts/validate-ops.sh).
"""

from __future__ import annotations

import sys

import yaml


def main() -> int:
    overlay, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    errors: list[str] = []

    def err(msg: str) -> None:
        errors.append(msg)

    by_kind: dict[str, list[dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    def one(kind: str) -> dict:
        items = by_kind.get(kind, [])
        if len(items) != 1:
            err(f"expected exactly one {kind}, found {len(items)}")
            return {}
        return items[0]

    if by_kind.get("Secret"):
        err("a Secret is rendered: secrets must only be referenced, created out of band")

    ns = one("Namespace").get("metadata", {}).get("name")
    for d in docs:
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") != ns:
            err(f"{d['kind']}/{d['metadata']['name']} is not in namespace {ns}")

    dep = one("Deployment")
    spec = dep.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    pod_labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    annotations = spec.get("template", {}).get("metadata", {}).get("annotations", {})
    if spec.get("replicas") != 1:
        err(f"Deployment replicas {spec.get('replicas')}: a feed has one replica (RWO SQLite)")
    if spec.get("strategy", {}).get("type") != "Recreate":
        err("Deployment strategy must be Recreate (the old pod holds the RWO volume)")
    sel = spec.get("selector", {}).get("matchLabels", {})
    if not sel or any(pod_labels.get(k) != v for k, v in sel.items()):
        err(f"Deployment selector {sel} does not match pod labels {pod_labels}")

    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        err("pod securityContext.runAsNonRoot must be true")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        err("pod seccompProfile must be RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        err("automountServiceAccountToken must be false")

    containers = pod.get("containers", [])
    if len(containers) != 1:
        err(f"expected one container, found {len(containers)}")
    port_names = {}
    for c in containers:
        name = c.get("name")
        image = c.get("image", "")
        if "@sha256:" not in image and (":" not in image.rsplit("/", 1)[-1]
                                        or image.endswith(":latest")):
            err(f"container {name}: image {image!r} needs a pinned tag or digest")
        for p in c.get("ports", []):
            port_names[p.get("name")] = p.get("containerPort")
        for probe, path in (("startupProbe", "/health/live"), ("livenessProbe", "/health/live"),
                            ("readinessProbe", "/health/ready")):
            got = c.get(probe, {}).get("httpGet", {}).get("path")
            if got != path:
                err(f"container {name}: {probe} path {got!r}, expected {path}")
        res = c.get("resources", {})
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in res.get(part, {}):
                    err(f"container {name}: resources.{part}.{r} missing")
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True:
            err(f"container {name}: readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            err(f"container {name}: allowPrivilegeEscalation must be false")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            err(f"container {name}: capabilities must drop ALL")
        env = {e["name"]: e for e in c.get("env", [])}
        for secret_var in ("DATABENTO_API_KEY", "MBO_CONTROL_TOKEN"):
            e = env.get(secret_var)
            if not e or "value" in e or "secretKeyRef" not in e.get("valueFrom", {}):
                err(f"container {name}: {secret_var} must come from a secretKeyRef")
        if overlay == "prod":
            ref = env.get("DATABENTO_API_KEY", {}).get("valueFrom", {}).get("secretKeyRef", {})
            if ref.get("optional") is not False:
                err("prod: the Databento key must be required (optional: false)")
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        if "/data" not in mounts:
            err(f"container {name}: nothing mounted at /data (the SQLite file)")

    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    pvc = one("PersistentVolumeClaim")
    claim = volumes.get("data", {}).get("persistentVolumeClaim", {}).get("claimName")
    if pvc and claim != pvc["metadata"]["name"]:
        err(f"data volume claims {claim!r}, the PVC is {pvc['metadata']['name']!r}")
    if pvc and pvc["spec"].get("accessModes") != ["ReadWriteOnce"]:
        err("PVC must be ReadWriteOnce (one SQLite writer)")

    if annotations.get("prometheus.io/scrape") != "true":
        err("pod annotation prometheus.io/scrape must be \"true\"")
    if annotations.get("prometheus.io/path") != "/metrics":
        err("pod annotation prometheus.io/path must be /metrics")
    if str(port_names.get("http")) != annotations.get("prometheus.io/port"):
        err(f"prometheus.io/port {annotations.get('prometheus.io/port')} is not the http "
            f"port {port_names.get('http')}")

    cm_names = {d["metadata"]["name"] for d in by_kind.get("ConfigMap", [])}
    for ref in containers[0].get("envFrom", []) if containers else []:
        name = ref.get("configMapRef", {}).get("name")
        if name and name not in cm_names:
            err(f"envFrom names ConfigMap {name!r}, rendered: {sorted(cm_names)}")
    for cm in by_kind.get("ConfigMap", []):
        for key in cm.get("data", {}):
            if any(w in key.upper() for w in ("KEY", "TOKEN", "PASSWORD", "SECRET")):
                err(f"ConfigMap {cm['metadata']['name']} holds {key}: secrets go in a Secret")
        if cm.get("data", {}).get("MBO_BIND", "").startswith("127."):
            err("MBO_BIND on loopback: the Service could not reach the pod")

    svc = one("Service")
    if svc:
        ssel = svc["spec"].get("selector", {})
        if not ssel or any(pod_labels.get(k) != v for k, v in ssel.items()):
            err(f"Service selector {ssel} does not match pod labels {pod_labels}")
        for p in svc["spec"].get("ports", []):
            if p.get("targetPort") not in port_names and p.get("targetPort") not in port_names.values():
                err(f"Service targetPort {p.get('targetPort')} is not a container port")

    ing = one("Ingress")
    if ing:
        a = ing["metadata"].get("annotations", {})
        if a.get("nginx.ingress.kubernetes.io/proxy-buffering") != "off":
            err("Ingress must turn proxy buffering off (SSE)")
        for t in ("proxy-read-timeout", "proxy-send-timeout"):
            if int(a.get(f"nginx.ingress.kubernetes.io/{t}", "0")) < 3600:
                err(f"Ingress {t} must be at least 3600 s (long-lived SSE streams)")
        for rule in ing["spec"].get("rules", []):
            for p in rule.get("http", {}).get("paths", []):
                backend = p["backend"]["service"]
                if svc and backend["name"] != svc["metadata"]["name"]:
                    err(f"Ingress backend {backend['name']} is not the Service")
        if overlay in ("staging", "prod") and not ing["spec"].get("tls"):
            err(f"{overlay}: Ingress without TLS")

    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        obj = one(kind)
        if obj:
            key = "selector" if kind == "PodDisruptionBudget" else "podSelector"
            m = obj["spec"].get(key, {}).get("matchLabels", {})
            if not m or any(pod_labels.get(k) != v for k, v in m.items()):
                err(f"{kind} selector {m} does not match pod labels {pod_labels}")

    if errors:
        for e in errors:
            print(f"  - {overlay}: {e}", file=sys.stderr)
        print(f"check-k8s: FAILED: {overlay}: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print(f"check-k8s: {overlay}: {len(docs)} objects pass the policy checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
