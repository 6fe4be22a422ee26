#!/usr/bin/env python3
"""Live check of the monitoring: a real Prometheus scraping a real `mbo serve`.

Starts `mbo serve` (simulator, storage on in a temporary directory, a crypto venue: the real
Kraken recording played on loopback by `mbo venue-sim`, two SSE clients so the stream metrics
exist) and Prometheus with the repository's monitoring/prometheus.yml and
alerts.yml (only the scrape target is rewritten to the test port). After Prometheus has
scraped mbo at least twice, it evaluates through Prometheus' HTTP API:

* every PromQL expression of every Grafana panel: must succeed and return at least one series
  (a panel that would show "No data" on a healthy server names a metric that does not exist
  or a label that is wrong);
* every Grafana template variable (label_values): the metric must have the label;
* every alert rule as Prometheus loaded it: must evaluate without error, the rule groups must
  report health "ok", every mbo_* metric it names must exist, and on this healthy server no
  alert expression may hold.

Usage: check-monitoring.py MBO_BINARY [--prometheus PATH] [--keep]
Standard library only; every process it starts is stopped on exit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "monitoring"
DASHBOARDS = MONITORING / "grafana" / "dashboards"
# The compose target in prometheus.yml; the check fails if it is not there exactly once, so
# the file cannot drift away from what is tested.
COMPOSE_TARGET = '"mbo:8080"'
# What Grafana puts in place of its variables: $__rate_interval is max(4 x scrape interval,
# ...) = 20 s with the provisioned 5 s timeInterval; "All" of a variable is its allValue.
GRAFANA_VARS = {
    "$__rate_interval": "20s",
    "$__interval": "5s",
    "$__range": "5m",
}


def log(msg: str) -> None:
    print(f"check-monitoring: {msg}", flush=True)


def fail(msg: str) -> None:
    raise SystemExit(f"check-monitoring: FAILED: {msg}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for(what: str, probe, timeout: float, procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                fail(f"{what}: {p.args[0]} exited with {p.returncode} (log above)")
        try:
            if probe():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    fail(f"timed out after {timeout:.0f} s waiting for {what}")


class SseClient(threading.Thread):
    """Reads one SSE stream until stopped, so the server keeps a client of that stream."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.bytes = 0
        self.error: str | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            with urllib.request.urlopen(self.url, timeout=10) as r:
                while not self.stop.is_set():
                    chunk = r.read1(65536)
                    if not chunk:
                        break
                    self.bytes += len(chunk)
        except OSError as e:
            if not self.stop.is_set():
                self.error = str(e)


def panel_targets(dashboard: dict):
    """(panel title, expr) for every query of every panel, rows' nested panels included."""

    def walk(panels):
        for p in panels:
            yield from walk(p.get("panels", []))
            for t in p.get("targets", []):
                if t.get("expr"):
                    yield p.get("title", "?"), t["expr"]

    yield from walk(dashboard.get("panels", []))


def substitute(expr: str, variables: dict[str, str]) -> str:
    for k, v in GRAFANA_VARS.items():
        expr = expr.replace(k, v)
    for name, value in variables.items():
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    if "$" in expr:
        fail(f"unknown Grafana variable left in {expr!r}")
    return expr


class Prom:
    def __init__(self, base: str):
        self.base = base

    def api(self, path: str, **params) -> dict:
        url = f"{self.base}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        status, body = http_get(url, timeout=10)
        try:
            doc = json.loads(body)
        except json.JSONDecodeError:
            fail(f"{url}: HTTP {status}, not JSON: {body[:200]!r}")
        return doc

    def query(self, expr: str) -> dict:
        return self.api("query", query=expr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mbo", type=Path, help="the mbo binary")
    ap.add_argument("--prometheus", default=shutil.which("prometheus") or "prometheus")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if not args.mbo.is_file():
        fail(f"{args.mbo} not found (make test-ops builds it: cd mbo-backend && cargo test --workspace --locked --no-run)")
    if not shutil.which(args.prometheus):
        fail(f"{args.prometheus} not found (Debian package prometheus)")

    tmp = Path(tempfile.mkdtemp(prefix="mbo-monitoring-"))
    procs: list[subprocess.Popen] = []
    clients: list[SseClient] = []

    def cleanup(*_):
        for c in clients:
            c.stop.set()
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    # SIGTERM (e.g. make interrupted) goes through the same cleanup as a normal exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return run(args, tmp, procs, clients)
    finally:
        cleanup()


def run(args, tmp: Path, procs: list, clients: list) -> int:
    started = time.monotonic()
    mbo_port, prom_port = free_port(), free_port()
    mbo_url = f"http://127.0.0.1:{mbo_port}"
    prom_url = f"http://127.0.0.1:{prom_port}"

    # --- A crypto venue on loopback: the real Kraken recording, looped, so the venue panels
    # and alerts are checked against real mbo_venue_* series.
    crypto = Path(os.environ.get("MBO_CRYPTO_DATA", ROOT.parent / "shared" / "data" / "crypto"))
    kraken = crypto / "kraken" / "python-kraken-sdk_orderbook-v2.json"
    if not kraken.is_file():
        fail(f"{kraken} is missing (the crypto recordings are expected in ../shared/data/crypto "
             "relative to the repository root, or set MBO_CRYPTO_DATA); never skipped")
    sim = subprocess.Popen([str(args.mbo.resolve()), "venue-sim", "--venue", "kraken", str(kraken),
                            "--price-precision", "1", "--qty-precision", "8", "--rate", "50",
                            "--loop"], cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    procs.append(sim)
    line = sim.stdout.readline() if sim.stdout else b""
    try:
        ws_url = json.loads(line)["ws_url"]
    except (ValueError, KeyError):
        fail(f"mbo venue-sim printed {line!r}, not its URLs")
    log(f"mbo venue-sim (kraken) on {ws_url}")

    # --- mbo serve: simulator, storage on, the venue, nothing inherited from a developer's
    # settings.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MBO_") and k not in ("DATABENTO_API_KEY", "DBN_KEY")}
    env.update(MBO_BIND=f"127.0.0.1:{mbo_port}", MBO_DB=str(tmp / "mbo.db"),
               MBO_STATIC_DIR=str(tmp / "no-dashboard"), MBO_LOG="warn",
               MBO_SHUTDOWN_TIMEOUT="2s", MBO_VENUES="kraken", MBO_SYMBOLS="BTC-USD",
               MBO_VENUE_URLS=f"kraken={ws_url}")
    mbo_log = open(tmp / "mbo.log", "wb")
    # cwd=tmp: mbo reads .env from its working directory; the check must not pick one up.
    procs.append(subprocess.Popen([str(args.mbo.resolve()), "serve"], cwd=tmp, env=env,
                                  stdout=mbo_log, stderr=subprocess.STDOUT))
    try:
        wait_for("mbo /health/ready", lambda: http_get(f"{mbo_url}/health/ready")[0] == 200,
                 60, procs)
    except SystemExit:
        sys.stdout.write((tmp / "mbo.log").read_text(errors="replace"))
        raise
    log(f"mbo serve ready on {mbo_url}")

    # --- Two SSE clients: the stream metrics (clients, frames, lagged, conflated) only exist
    # once a stream has been opened.
    status, body = http_get(f"{mbo_url}/api/v1/instruments")
    instruments = json.loads(body) if status == 200 else []
    if not instruments:
        fail(f"/api/v1/instruments: HTTP {status}, no instruments")
    symbol = urllib.parse.quote(instruments[0]["symbol"])
    for path in (f"/api/v1/stream?symbol={symbol}&interval_ms=50", "/api/v1/stream/mbo"):
        c = SseClient(mbo_url + path)
        c.start()
        clients.append(c)

    # --- Prometheus with the repository's files; only the target differs.
    config = (MONITORING / "prometheus.yml").read_text()
    if config.count(COMPOSE_TARGET) != 1:
        fail(f"monitoring/prometheus.yml must name the target {COMPOSE_TARGET} exactly once")
    (tmp / "prometheus.yml").write_text(
        config.replace(COMPOSE_TARGET, f'"127.0.0.1:{mbo_port}"'))
    shutil.copy(MONITORING / "alerts.yml", tmp / "alerts.yml")
    prom_log = open(tmp / "prometheus.log", "wb")
    procs.append(subprocess.Popen(
        [args.prometheus, f"--config.file={tmp / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}",
         "--log.level=warn"],
        cwd=tmp, stdout=prom_log, stderr=subprocess.STDOUT))
    prom = Prom(prom_url)
    try:
        wait_for("Prometheus /-/ready", lambda: http_get(f"{prom_url}/-/ready")[0] == 200,
                 60, procs)

        # At least two successful scrapes (three samples of `up`, all 1), so rate() over
        # the panels' 20 s window has two points.
        def scraped() -> bool:
            r = prom.query('count_over_time(up{job="mbo"}[1m]) >= 3 '
                           'and on() min_over_time(up{job="mbo"}[1m]) == 1')
            return bool(r.get("data", {}).get("result"))

        wait_for("three scrapes of mbo", scraped, 60, procs)

        # Every rule group evaluated at least once after the scrapes.
        def rules_evaluated() -> bool:
            groups = prom.api("rules")["data"]["groups"]
            return bool(groups) and all(
                not r["lastEvaluation"].startswith("0001") for g in groups for r in g["rules"])

        wait_for("alert rule evaluation", rules_evaluated, 30, procs)
    except SystemExit:
        sys.stdout.write((tmp / "prometheus.log").read_text(errors="replace"))
        raise
    log(f"Prometheus {prom_url} has scraped mbo "
        f"({time.monotonic() - started:.0f} s since start)")

    errors: list[str] = []

    # --- Grafana dashboards.
    dashboards = sorted(DASHBOARDS.glob("*.json"))
    if not dashboards:
        fail(f"no dashboards in {DASHBOARDS}")
    n_panels = 0
    for path in dashboards:
        dash = json.loads(path.read_text())
        variables = {}
        for v in dash.get("templating", {}).get("list", []):
            variables[v["name"]] = v.get("allValue") or ".+"
        for v in dash.get("templating", {}).get("list", []):
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q or "")
            if not m:
                errors.append(f"{path.name}: variable {v['name']}: unsupported query {q!r}")
                continue
            selector, label = substitute(m.group(1), variables), m.group(2)
            series = prom.api("series", **{"match[]": selector})
            if series.get("status") != "success" or not any(
                    label in s for s in series.get("data", [])):
                errors.append(f"{path.name}: variable {v['name']}: no {label} on {selector}")
        for title, expr in panel_targets(dash):
            n_panels += 1
            q = substitute(expr, variables)
            r = prom.query(q)
            if r.get("status") != "success":
                errors.append(f"{path.name}: panel {title!r}: {q}: {r.get('error')}")
            elif not r["data"]["result"]:
                errors.append(f"{path.name}: panel {title!r}: no series: {q}")
    log(f"{n_panels} panel queries in {len(dashboards)} dashboard(s) evaluated")

    # --- Alert rules, as Prometheus parsed them from alerts.yml.
    n_rules = 0
    for g in prom.api("rules")["data"]["groups"]:
        for rule in g["rules"]:
            n_rules += 1
            name = rule.get("name")
            if rule.get("health") != "ok":
                errors.append(f"rule {name}: health {rule.get('health')}: {rule.get('lastError')}")
            r = prom.query(rule["query"])
            if r.get("status") != "success":
                errors.append(f"rule {name}: {r.get('error')}")
            elif r["data"]["result"]:
                # A healthy simulator must not trip any alert: that would be a false alarm.
                errors.append(f"rule {name} holds on a healthy server: {r['data']['result']}")
    if n_rules == 0:
        errors.append("Prometheus loaded no alert rules from alerts.yml")
    # An alert is quiet on a healthy server, so an empty result cannot tell a misspelt
    # metric from a healthy one: every mbo_* name the rules use must exist in the scrape.
    names = sorted({n for g in prom.api("rules")["data"]["groups"] for r in g["rules"]
                    for n in re.findall(r"\b(mbo_[a-z0-9_]+)\b", r["query"])})
    for name in names:
        found = prom.api("series", **{"match[]": f'{{__name__="{name}"}}'})
        if found.get("status") != "success" or not found.get("data"):
            errors.append(f"alert rules use {name}, which mbo does not export")
    log(f"{n_rules} alert rules evaluated; the {len(names)} mbo_* metrics they use looked up")

    for c in clients:
        if c.error or c.bytes == 0:
            errors.append(f"SSE client {c.url}: {c.error or 'received nothing'}")

    if errors:
        for e in errors:
            print(f"  - {e}", file=sys.stderr)
        fail(f"{len(errors)} problem(s)")
    log(f"OK in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
