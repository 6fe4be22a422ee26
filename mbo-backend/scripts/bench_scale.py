#!/usr/bin/env python3
"""Scale-out benchmarks (make bench-scale): a real nats-server -js, one ingest, gateways,
all on 127.0.0.1, all processes on this machine. Figures go to docs/scaling.md.

Scenarios:
  latency  feed at 100,000 records/s (the simulator): the latency a gateway adds at the client
           (mbo cluster-bench: the same MBO event ids read from the ingest and from two
           gateways at once), the ingest's NATS traffic per instrument, gateway RSS
  maxpace  CLX5 looped at max pace: records/s of --role all alone, of an ingest publishing to
           NATS, and of a gateway following it; how far the gateway trails at the end
  clients  N book-stream clients as the dashboard opens them (default 5,000, 20 s, depth 40,
           interval 50 ms, feed 100,000 records/s) against --role all and against one
           gateway: clients held, frames, latency, RSS, CPU

Usage: bench_scale.py MBO_BINARY DATA_DIR [scenario ...] [--clients N] [--gateways N]
                      [--book-changes true|false] [--json]
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_serve import Server, loadtest, rss_mb  # noqa: E402


def cpu_s(pid):
    """User + system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Instruments of the default simulator (mbo serve --sim-instruments).
SIM_INSTRUMENTS = 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nats:
    def __init__(self):
        if not shutil.which("nats-server"):
            raise SystemExit("nats-server is missing: apt-get install nats-server (make nats-server)")
        self.dir = tempfile.mkdtemp(prefix="mbo-bench-nats-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("nats-server did not start")
                time.sleep(0.02)
        self.url = f"nats://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def metric(server, name, labels=""):
    """Sum of the samples of `name` (with `labels` in their label set) in /metrics."""
    _, body = server.get("/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name) and (line[len(name)] in " {") and labels in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def applied(server):
    """Records the server's engine applied (mbo_records_total, every action)."""
    return metric(server, "mbo_records_total")


def cluster(mbo, nats, data, ingest_args, gateways=1, source=None):
    if source is None:
        source = ["--dbn", f"{data}/CLX5_mbo.dbn", "--loop"]
    ing = Server(mbo, ["--role", "ingest", "--nats", nats.url, *source, "--no-db", *ingest_args])
    ing.wait_ready()
    gws = [Server(mbo, ["--role", "gateway", "--nats", nats.url]) for _ in range(gateways)]
    for g in gws:
        g.wait_ready()
    return ing, gws


def latency(mbo, data, args):
    nats = Nats()
    # The simulator (3 instruments), not CLX5 looped: a 38k-record file at 100,000 records/s
    # resets every 0.4 s, and every reset restarts each MBO stream client with a snapshot.
    ing, gws = cluster(mbo, nats, data, ["--pace", "rate", "--rate", "100000",
                                         "--nats-book-changes", args.get("book_changes", "true")],
                       gateways=args.get("gateways", 2), source=[])
    time.sleep(2)
    b0 = {k: metric(ing, "mbo_cluster_published_bytes_total", f'kind="{k}"') for k in ("records", "book")}
    m0 = metric(ing, "mbo_cluster_published_messages_total")
    t0 = time.monotonic()
    proc = subprocess.run(
        [mbo, "cluster-bench", "--ingest", ing.url, *sum((["--gateway", g.url] for g in gws), []),
         "--duration", "20s"], capture_output=True, text=True, check=True)
    secs = time.monotonic() - t0
    rep = json.loads(proc.stdout)
    b1 = {k: metric(ing, "mbo_cluster_published_bytes_total", f'kind="{k}"') for k in ("records", "book")}
    m1 = metric(ing, "mbo_cluster_published_messages_total")
    follow = metric(gws[0], "mbo_cluster_resyncs_total")
    out = {
        "scenario": "latency",
        "book_changes": args.get("book_changes", "true"),
        "feed_records_per_s": round(rep["ingest_records_per_s"]),
        "gateways": [{k: g[k] for k in ("matched", "missing", "earlier", "added_ms_p50",
                                         "added_ms_p90", "added_ms_p99", "added_ms_p999",
                                         "added_ms_max")} for g in rep["gateways"]],
        "instruments": SIM_INSTRUMENTS,
        "nats_records_bytes_per_s_per_instrument": round((b1["records"] - b0["records"]) / secs / SIM_INSTRUMENTS),
        "nats_book_changes_bytes_per_s_per_instrument": round((b1["book"] - b0["book"]) / secs / SIM_INSTRUMENTS),
        "nats_records_bytes_per_record": round((b1["records"] - b0["records"]) / secs / rep["ingest_records_per_s"], 1),
        "nats_book_changes_bytes_per_record": round((b1["book"] - b0["book"]) / secs / rep["ingest_records_per_s"], 1),
        "nats_messages_per_s": round((m1 - m0) / secs),
        "gateway_resyncs": follow,
        "gateway_rss_mb": round(rss_mb(gws[0].proc.pid), 1),
        "ingest_rss_mb": round(rss_mb(ing.proc.pid), 1),
    }
    for s in [*gws, ing]:
        s.stop()
    nats.stop()
    return out


def rate_over(server, secs, read):
    a, t = read(server), time.monotonic()
    time.sleep(secs)
    return (read(server) - a) / (time.monotonic() - t)


def maxpace(mbo, data, args):
    alone = Server(mbo, ["--dbn", f"{data}/CLX5_mbo.dbn", "--no-db", "--loop", "--pace", "max"])
    alone.wait_ready()
    time.sleep(1)
    all_rps = rate_over(alone, 10, applied)
    alone.stop()
    out = {"scenario": "maxpace", "role_all_records_per_s": round(all_rps)}
    for changes in ("true", "false"):
        nats = Nats()
        ing, (gw,) = cluster(mbo, nats, data, ["--pace", "max", "--nats-book-changes", changes])
        time.sleep(2)
        blocked = lambda s: metric(s, "mbo_cluster_tap_blocked_seconds_total")  # noqa: E731
        t0 = time.monotonic()
        r0, f0, b0 = applied(ing), applied(gw), blocked(ing)
        time.sleep(10)
        r1, f1, b1 = applied(ing), applied(gw), blocked(ing)
        secs = time.monotonic() - t0
        trail = (metric(ing, "mbo_cluster_published_records_total")
                 - metric(gw, "mbo_cluster_followed_records_total"))
        out[f"book_changes_{changes}"] = {
            "ingest_records_per_s": round((r1 - r0) / secs),
            "gateway_records_per_s": round((f1 - f0) / secs),
            "ingest_over_all": round((r1 - r0) / secs / all_rps, 3),
            "gateway_over_ingest": round((f1 - f0) / max(r1 - r0, 1), 3),
            "gateway_trails_records_at_end": int(trail),
            "ingest_waited_for_nats_s_per_s": round((b1 - b0) / secs, 3),
            "gateway_resyncs": metric(gw, "mbo_cluster_resyncs_total"),
        }
        for s in (gw, ing):
            s.stop()
        nats.stop()
    return out


def clients(mbo, data, args):
    n = str(args.get("clients", 5000))
    # What the dashboard asks for: 40 levels, 50 ms.
    common = ["--clients", n, "--duration", "20s", "--symbol", "CLX5", "--interval-ms", "50",
              "--depth", "40"]
    alone = Server(mbo, ["--dbn", f"{data}/CLX5_mbo.dbn", "--no-db", "--loop", "--pace", "rate",
                         "--rate", "100000"])
    alone.wait_ready()
    c0 = cpu_s(alone.proc.pid)
    rep_all = loadtest(mbo, alone, *common)
    rep_all["server_cpu_s"] = round(cpu_s(alone.proc.pid) - c0, 2)
    alone.stop()
    nats = Nats()
    ing, (gw,) = cluster(mbo, nats, data, ["--pace", "rate", "--rate", "100000"])
    c0, i0 = cpu_s(gw.proc.pid), cpu_s(ing.proc.pid)
    rep_gw = loadtest(mbo, gw, *common)
    rep_gw["server_cpu_s"] = round(cpu_s(gw.proc.pid) - c0, 2)
    rep_gw["ingest_cpu_s"] = round(cpu_s(ing.proc.pid) - i0, 2)
    for s in (gw, ing):
        s.stop()
    nats.stop()

    def pick(r):
        return {
            "connected": r["connected"],
            "complete": r["complete"],
            "errors": r["errors"],
            "frames_per_client_mean": r["frames_per_client"]["mean"],
            "lagged": r["lagged"],
            "latency_ms": r["latency_ms"],
            "server_rss_mb": r.get("server_rss_mb"),
            "loadtest_cpu_s": r["loadtest"]["cpu_s"],
            "duration_s": r["duration_s"],
            "server_cpu_s": r["server_cpu_s"],
            "ingest_cpu_s": r.get("ingest_cpu_s"),
        }
    return {"scenario": "clients", "clients": int(n), "role_all": pick(rep_all),
            "gateway": pick(rep_gw), "raw_all": rep_all, "raw_gateway": rep_gw}


def main():
    argv = sys.argv[1:]
    if len(argv) < 2:
        raise SystemExit(__doc__)
    mbo, data = argv[0], argv[1]
    opts = {}
    rest = argv[2:]
    for flag, key, conv in (("--clients", "clients", int), ("--gateways", "gateways", int),
                            ("--book-changes", "book_changes", str)):
        if flag in rest:
            i = rest.index(flag)
            opts[key] = conv(rest[i + 1])
            del rest[i:i + 2]
    as_json = "--json" in rest
    scenarios = [a for a in rest if not a.startswith("--")] or ["latency", "maxpace", "clients"]
    table = {"latency": latency, "maxpace": maxpace, "clients": clients}
    for name in scenarios:
        if name not in table:
            raise SystemExit(f"unknown scenario {name}: one of {', '.join(table)}")
        out = table[name](mbo, data, opts)
        if as_json:
            print(json.dumps(out), flush=True)
        else:
            out.pop("raw_all", None)
            out.pop("raw_gateway", None)
            print(json.dumps(out, indent=1), flush=True)


if __name__ == "__main__":
    main()
