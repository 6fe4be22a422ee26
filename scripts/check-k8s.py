#!/usr/bin/env python3
"""Policy checks on a rendered kustomize overlay (what the schema cannot say).

Usage: check-k8s.py OVERLAY_NAME RENDERED.yaml           an overlay of k8s/base (one feed)
       check-k8s.py --scale NAME RENDERED.yaml           k8s/scale (NATS, ingest, gateways)
The schema check (kubernetes-validate --strict) proves the objects are well formed; this
proves they are the deployment the README describes: one replica per feed on a ReadWriteOnce
volume, probes on the health endpoints, a locked-down container, secrets only referenced,
an Ingress that does not buffer SSE, and selectors that actually match the pods.
With --scale: one ingest (1 replica, Recreate, its RWO volume), gateways without a volume,
ready on /health/ready, under an HPA and a PDB, NATS with JetStream on a volume, and network
policies that let both reach NATS on 4222 and the ingress controller reach the gateways.
Needs PyYAML (installed with the validators by scripts/validate-ops.sh).
"""

from __future__ import annotations

import re
import sys

import yaml


def pinned(image: str) -> bool:
    return "@sha256:" in image or (":" in image.rsplit("/", 1)[-1]
                                   and not image.endswith(":latest"))


def matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_pod_security(pod: dict, err, prefix: str = "") -> None:
    """The pod-level lockdown every workload here has (Pod Security "restricted")."""
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        err(f"{prefix}pod securityContext.runAsNonRoot must be true")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        err(f"{prefix}pod seccompProfile must be RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        err(f"{prefix}automountServiceAccountToken must be false")


def check_container_security(c: dict, err, prefix: str = "") -> None:
    """Pinned image, requests and limits, read-only and privilege-free."""
    name = c.get("name")
    image = c.get("image", "")
    if not pinned(image):
        err(f"{prefix}container {name}: image {image!r} needs a pinned tag or digest")
    res = c.get("resources", {})
    for part in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in res.get(part, {}):
                err(f"{prefix}container {name}: resources.{part}.{r} missing")
    sc = c.get("securityContext", {})
    if sc.get("readOnlyRootFilesystem") is not True:
        err(f"{prefix}container {name}: readOnlyRootFilesystem must be true")
    if sc.get("allowPrivilegeEscalation") is not False:
        err(f"{prefix}container {name}: allowPrivilegeEscalation must be false")
    if sc.get("capabilities", {}).get("drop") != ["ALL"]:
        err(f"{prefix}container {name}: capabilities must drop ALL")


def check_ingress_sse(ing: dict, err) -> None:
    """An Ingress in front of SSE streams: no proxy buffering, hour-long timeouts."""
    a = ing["metadata"].get("annotations", {})
    if a.get("nginx.ingress.kubernetes.io/proxy-buffering") != "off":
        err("Ingress must turn proxy buffering off (SSE)")
    for t in ("proxy-read-timeout", "proxy-send-timeout"):
        if int(a.get(f"nginx.ingress.kubernetes.io/{t}", "0")) < 3600:
            err(f"Ingress {t} must be at least 3600 s (long-lived SSE streams)")


def main() -> int:
    if sys.argv[1] == "--scale":
        return check_scale(sys.argv[2], sys.argv[3])
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

    check_pod_security(pod, err)

    containers = pod.get("containers", [])
    if len(containers) != 1:
        err(f"expected one container, found {len(containers)}")
    port_names = {}
    for c in containers:
        name = c.get("name")
        check_container_security(c, err)
        for p in c.get("ports", []):
            port_names[p.get("name")] = p.get("containerPort")
        for probe, path in (("startupProbe", "/health/live"), ("livenessProbe", "/health/live"),
                            ("readinessProbe", "/health/ready")):
            got = c.get(probe, {}).get("httpGet", {}).get("path")
            if got != path:
                err(f"container {name}: {probe} path {got!r}, expected {path}")
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
        check_ingress_sse(ing, err)
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


def check_scale(name: str, path: str) -> int:
    """k8s/scale: NATS JetStream, one ingest, autoscaled gateways (issue 10)."""
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    errors: list[str] = []
    err = errors.append

    by_kind: dict[str, list[dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    if by_kind.get("Secret"):
        err("a Secret is rendered: secrets must only be referenced, created out of band")
    namespaces = by_kind.get("Namespace", [])
    if len(namespaces) != 1:
        err(f"expected exactly one Namespace, found {len(namespaces)}")
    ns = namespaces[0]["metadata"]["name"] if namespaces else None
    for d in docs:
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") != ns:
            err(f"{d['kind']}/{d['metadata']['name']} is not in namespace {ns}")

    # Every workload: selector matches its pods, pod and containers locked down.
    workloads = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
    for w in workloads:
        wname = f"{w['kind']}/{w['metadata']['name']}"
        tmpl = w["spec"].get("template", {})
        sel = w["spec"].get("selector", {}).get("matchLabels", {})
        if not matches(sel, tmpl.get("metadata", {}).get("labels", {})):
            err(f"{wname}: selector {sel} does not match its pod labels")
        check_pod_security(tmpl.get("spec", {}), err, f"{wname}: ")
        for c in tmpl.get("spec", {}).get("containers", []):
            check_container_security(c, err, f"{wname}: ")

    def pod_of(w: dict) -> dict:
        return w["spec"]["template"]["spec"]

    def labels_of(w: dict) -> dict:
        return w["spec"]["template"]["metadata"].get("labels", {})

    def main_container(w: dict) -> dict:
        cs = pod_of(w).get("containers", [])
        if len(cs) != 1:
            err(f"{w['kind']}/{w['metadata']['name']}: expected one container, found {len(cs)}")
        return cs[0] if cs else {}

    def env_of(c: dict) -> dict:
        return {e["name"]: e for e in c.get("env", [])}

    def ports_of(w: dict) -> dict:
        """Container port names and numbers -> number, for every container of the pod."""
        out: dict = {}
        for c in pod_of(w).get("containers", []):
            for p in c.get("ports", []):
                out[p["containerPort"]] = p["containerPort"]
                if p.get("name"):
                    out[p["name"]] = p["containerPort"]
        return out

    def role(w: dict) -> str | None:
        return env_of(main_container(w)).get("MBO_ROLE", {}).get("value")

    deployments = by_kind.get("Deployment", [])
    ingests = [d for d in deployments if role(d) == "ingest"]
    gateways = [d for d in deployments if role(d) == "gateway"]
    for d in deployments:
        if d not in ingests and d not in gateways:
            err(f"Deployment/{d['metadata']['name']}: MBO_ROLE must be ingest or gateway")
    nats_sets = [s for s in by_kind.get("StatefulSet", [])
                 if main_container(s).get("image", "").rsplit("/", 1)[-1].startswith("nats:")]
    for kind_name, found in (("ingest Deployment", ingests), ("gateway Deployment", gateways),
                             ("NATS StatefulSet", nats_sets)):
        if len(found) != 1:
            err(f"expected exactly one {kind_name}, found {len(found)}")
    if errors:
        return report(name, errors)
    ingest, gateway, nats = ingests[0], gateways[0], nats_sets[0]
    ing_labels, gw_labels, nats_labels = labels_of(ingest), labels_of(gateway), labels_of(nats)
    nats_ports = ports_of(nats)
    if 4222 not in nats_ports.values():
        err("NATS: no container port 4222")

    services = by_kind.get("Service", [])
    cm_by_name = {c["metadata"]["name"]: c for c in by_kind.get("ConfigMap", [])}

    def services_for(w: dict) -> list[dict]:
        return [s for s in services if matches(s["spec"].get("selector", {}), labels_of(w))]

    # The ingest and the gateways: the same server, its role and NATS URL, the health probes.
    for w in (ingest, gateway):
        wname = f"Deployment/{w['metadata']['name']}"
        c = main_container(w)
        env = env_of(c)
        for probe, want in (("startupProbe", "/health/live"), ("livenessProbe", "/health/live"),
                            ("readinessProbe", "/health/ready")):
            got = c.get(probe, {}).get("httpGet", {}).get("path")
            if got != want:
                err(f"{wname}: {probe} path {got!r}, expected {want}")
        url = env.get("MBO_NATS_URL", {}).get("value", "")
        m = re.fullmatch(r"nats://([a-z0-9-]+)(?:\.[a-z0-9.-]+)?:(\d+)", url)
        if not m:
            err(f"{wname}: MBO_NATS_URL {url!r} is not nats://SERVICE:PORT")
        else:
            svc = next((s for s in services if s["metadata"]["name"] == m.group(1)), None)
            if not svc or not matches(svc["spec"].get("selector", {}), nats_labels):
                err(f"{wname}: MBO_NATS_URL names {m.group(1)!r}, not a Service of the NATS pods")
            elif not any(p["port"] == int(m.group(2))
                         and nats_ports.get(p.get("targetPort", p["port"])) == 4222
                         for p in svc["spec"].get("ports", [])):
                err(f"{wname}: Service {m.group(1)} port {m.group(2)} does not reach NATS :4222")
        e = env.get("MBO_CONTROL_TOKEN")
        if not e or "value" in e or "secretKeyRef" not in e.get("valueFrom", {}):
            err(f"{wname}: MBO_CONTROL_TOKEN must come from a secretKeyRef")
        for ref in c.get("envFrom", []):
            cm = ref.get("configMapRef", {}).get("name")
            if cm and cm not in cm_by_name:
                err(f"{wname}: envFrom names ConfigMap {cm!r}, rendered: {sorted(cm_by_name)}")
        a = w["spec"]["template"]["metadata"].get("annotations", {})
        if a.get("prometheus.io/scrape") != "true" or a.get("prometheus.io/path") != "/metrics":
            err(f"{wname}: prometheus.io/scrape \"true\" and prometheus.io/path /metrics")
        if str(ports_of(w).get("http")) != a.get("prometheus.io/port"):
            err(f"{wname}: prometheus.io/port {a.get('prometheus.io/port')} is not the http port")

    # The ingest: the one owner of the feed and of its SQLite file.
    spec = ingest["spec"]
    if spec.get("replicas") != 1:
        err(f"ingest replicas {spec.get('replicas')}: exactly one (the feed, RWO SQLite)")
    if spec.get("strategy", {}).get("type") != "Recreate":
        err("ingest strategy must be Recreate (the old pod holds the RWO volume)")
    c = main_container(ingest)
    e = env_of(c).get("DATABENTO_API_KEY")
    if not e or "value" in e or "secretKeyRef" not in e.get("valueFrom", {}):
        err("ingest: DATABENTO_API_KEY must come from a secretKeyRef")
    data = next((m["name"] for m in c.get("volumeMounts", []) if m["mountPath"] == "/data"), None)
    vols = {v["name"]: v for v in pod_of(ingest).get("volumes", [])}
    claim = vols.get(data, {}).get("persistentVolumeClaim", {}).get("claimName")
    pvc = next((p for p in by_kind.get("PersistentVolumeClaim", [])
                if p["metadata"]["name"] == claim), None)
    if not pvc:
        err(f"ingest: /data must be a rendered PersistentVolumeClaim (claims {claim!r})")
    elif pvc["spec"].get("accessModes") != ["ReadWriteOnce"]:
        err("ingest: its PVC must be ReadWriteOnce (one SQLite writer)")

    # The gateways: stateless, ready only when synced, autoscaled, drained one at a time.
    gname = gateway["metadata"]["name"]
    spec = gateway["spec"]
    c = main_container(gateway)
    if any("persistentVolumeClaim" in v for v in pod_of(gateway).get("volumes", [])):
        err("gateway: no PersistentVolumeClaim (a gateway has no storage)")
    if any(m["mountPath"] == "/data" for m in c.get("volumeMounts", [])):
        err("gateway: nothing is mounted at /data (a gateway has no storage)")
    if "DATABENTO_API_KEY" in env_of(c):
        err("gateway: no DATABENTO_API_KEY (a gateway has no feed)")
    if spec.get("strategy", {}).get("type") == "Recreate":
        err("gateway: Recreate would stop every gateway at once; use RollingUpdate")
    if spec.get("replicas") is not None and spec["replicas"] < 2:
        err(f"gateway replicas {spec['replicas']}: leave it to the HPA or at least 2")
    for ref in c.get("envFrom", []):
        data_cm = cm_by_name.get(ref.get("configMapRef", {}).get("name"), {}).get("data", {})
        for key in data_cm:
            if key.startswith(("MBO_SIM_", "MBO_DBN", "MBO_LIVE", "MBO_DB", "MBO_RETENTION")):
                err(f"gateway: its ConfigMap sets {key}, a feed or storage setting")
    hpas = by_kind.get("HorizontalPodAutoscaler", [])
    gw_hpas = [h for h in hpas if h["spec"]["scaleTargetRef"].get("kind") == "Deployment"
               and h["spec"]["scaleTargetRef"].get("name") == gname]
    if len(gw_hpas) != 1:
        err(f"expected one HorizontalPodAutoscaler for Deployment/{gname}, found {len(gw_hpas)}")
    for h in gw_hpas:
        if h["apiVersion"] != "autoscaling/v2":
            err(f"HPA {h['metadata']['name']}: apiVersion autoscaling/v2")
        if h["spec"].get("minReplicas", 1) < 2:
            err(f"HPA {h['metadata']['name']}: minReplicas at least 2 (one gateway lost = outage)")
        if not any(m.get("type") == "Resource" and m["resource"]["name"] == "cpu"
                   and m["resource"]["target"].get("type") == "Utilization"
                   for m in h["spec"].get("metrics", [])):
            err(f"HPA {h['metadata']['name']}: scales on CPU utilisation")
    for h in hpas:
        if h["spec"]["scaleTargetRef"].get("name") in (ingest["metadata"]["name"], nats["metadata"]["name"]):
            err(f"HPA {h['metadata']['name']}: the ingest and NATS are never autoscaled")
    pdbs = by_kind.get("PodDisruptionBudget", [])
    for p in pdbs:
        sel = p["spec"].get("selector", {}).get("matchLabels", {})
        if not any(matches(sel, labels_of(w)) for w in workloads):
            err(f"PodDisruptionBudget/{p['metadata']['name']}: selector {sel} matches no pods")
    if not any(matches(p["spec"].get("selector", {}).get("matchLabels", {}), gw_labels) for p in pdbs):
        err("no PodDisruptionBudget for the gateway pods")

    # NATS: JetStream with its store on the StatefulSet's volume, probes on /healthz.
    sspec = nats["spec"]
    c = main_container(nats)
    claims = {t["metadata"]["name"]: t for t in sspec.get("volumeClaimTemplates", [])}
    if not claims:
        err("NATS: no volumeClaimTemplates (the JetStream store)")
    for t in claims.values():
        if t["spec"].get("accessModes") != ["ReadWriteOnce"]:
            err(f"NATS: volumeClaimTemplate {t['metadata']['name']} must be ReadWriteOnce")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    args = [str(a) for a in c.get("command", []) + c.get("args", [])]
    store = None
    if {"-js", "--jetstream"} & set(args):
        store = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-sd", "--store_dir")), None)
    elif {"-c", "--config"} & set(args):
        conf = next(args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-c", "--config"))
        vol = mounts.get(conf.rsplit("/", 1)[0])
        vsrc = {v["name"]: v for v in pod_of(nats).get("volumes", [])}.get(vol, {})
        cm = cm_by_name.get(vsrc.get("configMap", {}).get("name"), {})
        text = re.sub(r"#[^\n]*", "", cm.get("data", {}).get(conf.rsplit("/", 1)[1], ""))
        if not text:
            err(f"NATS: config {conf} is not a key of a rendered ConfigMap mounted there")
        js = re.search(r"\bjetstream\s*[:=]?\s*\{([^}]*)\}", text)
        sd = re.search(r"\bstore_dir\s*[:=]\s*\"?([^\s\"]+)", js.group(1)) if js else None
        store = sd.group(1) if sd else None
    if not store:
        err("NATS: JetStream is not enabled with a store_dir (-js -sd DIR, or jetstream {store_dir} in its config)")
    elif mounts.get(store) not in claims:
        err(f"NATS: the JetStream store {store} is not on a volumeClaimTemplate")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = c.get(probe, {}).get("httpGet", {})
        if not str(get.get("path", "")).startswith("/healthz") or nats_ports.get(get.get("port")) != 8222:
            err(f"NATS: {probe} must be httpGet /healthz on the monitoring port 8222")
    headless = next((s for s in services if s["metadata"]["name"] == sspec.get("serviceName")), None)
    if not headless or headless["spec"].get("clusterIP") != "None":
        err(f"NATS: serviceName {sspec.get('serviceName')!r} is not a headless Service")
    elif not matches(headless["spec"].get("selector", {}), nats_labels):
        err("NATS: its headless Service does not select its pods")

    # Services reach the pods they select, on container ports.
    for s in services:
        targets = [w for w in workloads if matches(s["spec"].get("selector", {}), labels_of(w))]
        if not targets:
            err(f"Service/{s['metadata']['name']}: selector matches no pods")
        for p in s["spec"].get("ports", []):
            tp = p.get("targetPort", p["port"])
            if targets and all(tp not in ports_of(w) for w in targets):
                err(f"Service/{s['metadata']['name']}: targetPort {tp} is not a container port")

    # The Ingress goes to the gateways, without buffering SSE.
    ings = by_kind.get("Ingress", [])
    if len(ings) != 1:
        err(f"expected exactly one Ingress, found {len(ings)}")
    gw_services = {s["metadata"]["name"] for s in services_for(gateway)}
    for ing in ings:
        check_ingress_sse(ing, err)
        for rule in ing["spec"].get("rules", []):
            for p in rule.get("http", {}).get("paths", []):
                if p["backend"]["service"]["name"] not in gw_services:
                    err(f"Ingress backend {p['backend']['service']['name']} is not a gateway Service")

    # Network policies: every pod selected; both mbo roles reach NATS on 4222 (and the policy
    # of NATS lets them in); the ingress controller reaches the gateways.
    policies = by_kind.get("NetworkPolicy", [])

    def port_ok(rule_ports: list, number: int, dest: dict) -> bool:
        if not rule_ports:
            return True
        return any(ports_of(dest).get(p.get("port")) == number for p in rule_ports)

    def peer_ok(peers: list, labels: dict | None, namespace: str | None) -> bool:
        if not peers:
            return True
        for peer in peers:
            nsel = peer.get("namespaceSelector")
            psel = peer.get("podSelector")
            if namespace is not None:
                if nsel is not None and matches(nsel.get("matchLabels", {}),
                                                {"kubernetes.io/metadata.name": namespace}):
                    return True
            elif nsel is None and psel is not None and matches(psel.get("matchLabels", {}), labels):
                return True
        return False

    def allowed(direction: str, subject: dict, peer_labels: dict | None, number: int,
                dest: dict, peer_ns: str | None = None) -> bool:
        selecting = [p for p in policies if matches(p["spec"]["podSelector"].get("matchLabels", {}),
                                                     labels_of(subject))]
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        return any(peer_ok(r.get(peers_key, []), peer_labels, peer_ns)
                   and port_ok(r.get("ports", []), number, dest)
                   for p in selecting if direction in p["spec"].get("policyTypes", [])
                   for r in p["spec"].get(key, []))

    for w in workloads:
        if not any(matches(p["spec"]["podSelector"].get("matchLabels", {}), labels_of(w))
                   for p in policies):
            err(f"{w['kind']}/{w['metadata']['name']}: no NetworkPolicy selects its pods")
    for w, who in ((ingest, "ingest"), (gateway, "gateway")):
        if not allowed("Egress", w, nats_labels, 4222, nats):
            err(f"NetworkPolicy: the {who} may not connect to NATS on 4222")
        if not allowed("Ingress", nats, labels_of(w), 4222, nats):
            err(f"NetworkPolicy: NATS does not accept the {who} on 4222")
    if not allowed("Ingress", gateway, None, ports_of(gateway).get("http", 0), gateway,
                   peer_ns="ingress-nginx"):
        err("NetworkPolicy: the ingress controller (namespace ingress-nginx) may not reach the gateways")

    for cm in by_kind.get("ConfigMap", []):
        for key in cm.get("data", {}):
            if any(w in key.upper() for w in ("KEY", "TOKEN", "PASSWORD", "SECRET")):
                err(f"ConfigMap {cm['metadata']['name']} holds {key}: secrets go in a Secret")
        if cm.get("data", {}).get("MBO_BIND", "").startswith("127."):
            err(f"ConfigMap {cm['metadata']['name']}: MBO_BIND on loopback, no Service could reach it")

    if errors:
        return report(name, errors)
    print(f"check-k8s: {name}: {len(docs)} objects pass the scale-out policy checks "
          f"(NATS JetStream on {store}, 1 ingest, gateways {gw_hpas[0]['spec']['minReplicas']}"
          f"-{gw_hpas[0]['spec']['maxReplicas']} under HPA and PDB)")
    return 0


def report(name: str, errors: list[str]) -> int:
    for e in errors:
        print(f"  - {name}: {e}", file=sys.stderr)
    print(f"check-k8s: FAILED: {name}: {len(errors)} problem(s)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
