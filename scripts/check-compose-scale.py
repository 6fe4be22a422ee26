#!/usr/bin/env python3
"""Policy checks on docker-compose.yaml's profile scale (what `docker-compose config` cannot say).

Usage: check-compose-scale.py NORMALISED.yaml   (the output of `docker-compose config`)
Proves the profile is the scale-out deployment the README describes: NATS with JetStream on a
volume, one ingest with the same image and feed settings as `mbo` but its own SQLite volume,
at least two stateless gateways (same image, no volume), nginx in front of every gateway
with the settings SSE needs, and every service as locked down as `mbo`. Needs PyYAML
(installed with the validators by scripts/validate-ops.sh).
"""

from __future__ import annotations

import re
import sys

import yaml

NATS_URL = "nats://nats:4222"


def main() -> int:
    services = yaml.safe_load(open(sys.argv[1]))["services"]
    errors: list[str] = []
    err = errors.append

    def mounts(svc: dict) -> list[tuple[str, str]]:
        """(source, target) of each volume, in the long or the short syntax."""
        out = []
        for v in svc.get("volumes", []):
            if isinstance(v, dict):
                out.append((str(v.get("source", "")), str(v.get("target", ""))))
            else:
                parts = str(v).split(":")
                out.append((parts[0], parts[1] if len(parts) > 1 else parts[0]))
        return out

    def volume_at(svc: dict, target: str) -> str | None:
        return next((s for s, t in mounts(svc) if t == target), None)

    def waits_healthy(svc: dict, name: str) -> bool:
        dep = svc.get("depends_on") or {}
        return isinstance(dep, dict) and dep.get(name, {}).get("condition") == "service_healthy"

    mbo = services["mbo"]
    scale = {n: s for n, s in services.items() if "scale" in (s.get("profiles") or [])}
    for name in ("nats", "mbo-ingest", "mbo-proxy"):
        if name not in scale:
            err(f"profile scale has no {name}")
    for name, svc in scale.items():
        if svc.get("read_only") is not True:
            err(f"{name}: must be read_only")
        if svc.get("cap_drop") != ["ALL"]:
            err(f"{name}: must drop every capability")
        if "no-new-privileges:true" not in svc.get("security_opt", []):
            err(f"{name}: security_opt no-new-privileges:true")
        if svc.get("restart") != "unless-stopped":
            err(f"{name}: restart must be unless-stopped, like mbo")
        image = svc.get("image", "")
        if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
            err(f"{name}: image {image!r} needs a pinned tag")
    if errors:
        return report(errors)

    # NATS: JetStream, its store on a named volume, healthcheck on the monitoring port.
    nats = scale["nats"]
    cmd = [str(c) for c in nats.get("command") or []]
    if not ({"-js", "--jetstream"} & set(cmd)):
        err("nats: JetStream is not enabled (-js)")
    store = next((cmd[i + 1] for i, c in enumerate(cmd[:-1]) if c in ("-sd", "--store_dir")), None)
    if not store or not volume_at(nats, store):
        err(f"nats: the JetStream store dir {store!r} is not on a volume")
    if not re.search(r":8222/healthz", " ".join(nats.get("healthcheck", {}).get("test", []))):
        err("nats: healthcheck must be /healthz on the monitoring port 8222")

    # Ingest: mbo's image and feed settings, MBO_ROLE=ingest, its own volume.
    ingest = scale["mbo-ingest"]
    env = ingest.get("environment") or {}
    if env.get("MBO_ROLE") != "ingest":
        err("mbo-ingest: MBO_ROLE must be ingest")
    if env.get("MBO_NATS_URL") != NATS_URL:
        err(f"mbo-ingest: MBO_NATS_URL must be {NATS_URL}")
    for key, value in (mbo.get("environment") or {}).items():
        if env.get(key, "<unset>") != value:
            err(f"mbo-ingest: {key} differs from mbo's (the same feed, the same settings)")
    if ingest.get("image") != mbo.get("image") or ingest.get("build") != mbo.get("build"):
        err("mbo-ingest: same image and build as mbo")
    data = volume_at(ingest, "/data")
    if not data or data == volume_at(mbo, "/data"):
        err("mbo-ingest: needs its own volume at /data (mbo may run beside it: one SQLite writer per file)")
    if not waits_healthy(ingest, "nats"):
        err("mbo-ingest: must wait for nats healthy")

    # Gateways: no feed, no volume, not published.
    gateways = sorted(n for n, s in scale.items()
                      if (s.get("environment") or {}).get("MBO_ROLE") == "gateway")
    if len(gateways) < 2:
        err(f"gateways (MBO_ROLE=gateway): {gateways}, expected at least two")
    for name in gateways:
        g = scale[name]
        genv = g["environment"]
        if genv.get("MBO_NATS_URL") != NATS_URL:
            err(f"{name}: MBO_NATS_URL must be {NATS_URL}")
        if g.get("volumes"):
            err(f"{name}: a gateway has no volume")
        if g.get("image") != mbo.get("image") or g.get("build") != mbo.get("build"):
            err(f"{name}: same image and build as mbo")
        if g.get("ports"):
            err(f"{name}: not published (clients go through mbo-proxy)")
        if not (waits_healthy(g, "nats") and waits_healthy(g, "mbo-ingest")):
            err(f"{name}: must wait for nats and mbo-ingest healthy")
        for key in genv:
            if key.startswith(("MBO_SIM_", "MBO_DBN", "MBO_LIVE", "MBO_DB", "MBO_RETENTION")):
                err(f"{name}: {key} is a feed or storage setting, which a gateway has not")
        if genv.get("MBO_BIND", "").startswith("127."):
            err(f"{name}: MBO_BIND on loopback: nginx could not reach it")

    # Proxy: runs the mounted nginx config, whose upstream holds every gateway.
    proxy = scale["mbo-proxy"]
    if not proxy.get("image", "").startswith("nginx:"):
        err("mbo-proxy: must be nginx")
    conf = "deploy/nginx/mbo-scale.conf"
    target = next((t for src, t in mounts(proxy) if src.endswith(conf)), None)
    pcmd = proxy.get("command") or []
    if not target or "-c" not in pcmd or pcmd[pcmd.index("-c") + 1] != target:
        err(f"mbo-proxy: must mount {conf} and run nginx -c on it")
    published = [str(p.get("target")) if isinstance(p, dict) else str(p).split("/")[0].rsplit(":", 1)[-1]
                 for p in proxy.get("ports", [])]
    if "8080" not in published:
        err("mbo-proxy: must publish its port 8080")
    text = re.sub(r"#[^\n]*", "", open(conf).read())
    upstream = re.search(r"upstream mbo_gateways \{(.*?)\}", text, re.S)
    servers = re.findall(r"server ([\w.-]+):8080", upstream.group(1)) if upstream else []
    if sorted(servers) != gateways:
        err(f"{conf}: upstream mbo_gateways has {sorted(servers)}, the gateways are {gateways}")
    for name in gateways:
        if not waits_healthy(proxy, name):
            err(f"mbo-proxy: must wait for {name} healthy (nginx resolves the names at start)")
    loc = re.search(r"location / \{(.*?)\n        \}", text, re.S)
    body = " ".join(loc.group(1).split()) if loc else ""
    for d in ("proxy_pass http://mbo_gateways;", "proxy_buffering off;", "proxy_cache off;",
              "proxy_http_version 1.1;", 'proxy_set_header Connection "";',
              "proxy_set_header Last-Event-ID $http_last_event_id;",
              "add_header X-Accel-Buffering no"):
        if d not in body:
            err(f"{conf}: location / lacks {d!r} (SSE)")
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        t = re.search(directive + r" (\d+)(h|m|s)?;", body)
        secs = int(t.group(1)) * {"h": 3600, "m": 60, "s": 1, None: 1}[t.group(2)] if t else 60
        if secs < 3600:
            err(f"{conf}: {directive} {secs} s, at least 1h for long-lived SSE streams")

    if errors:
        return report(errors)
    print(f"check-compose-scale: nats (JetStream on {store}), mbo-ingest, {', '.join(gateways)} "
          f"behind mbo-proxy: pass")
    return 0


def report(errors: list[str]) -> int:
    for e in errors:
        print(f"  - scale: {e}", file=sys.stderr)
    print(f"check-compose-scale: FAILED: {len(errors)} problem(s)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
