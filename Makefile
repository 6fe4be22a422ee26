# mbo — top-level tasks. `make test` is what CI runs (through .ci/run).
SHELL := /bin/bash
BACKEND := mbo-backend
FRONTEND := mbo-frontend
NPM ?= npm
# The server binary the dashboard's e2e tests drive (what `cargo test`/`cargo build` leave).
MBO_BIN ?= $(abspath $(BACKEND)/target/debug/mbo)
CARGO ?= cargo
DATA := $(abspath ../shared/data/mbo)

.PHONY: nats-server help run frontend test-frontend bench-frontend bench-serve test test-backend test-ops server-bin lint fmt-check clippy bench bench-criterion bench-pacing build release clean check-data python-deps bench-sim bench-venues bench-scale

help:
	@echo "make run     - build and start mbo serve on the simulator: http://127.0.0.1:8080/"
	@echo "make test    - format check, clippy -D warnings, every test, the dashboard, the ops validators (what CI runs)"
	@echo "make frontend - build the dashboard (mbo-frontend/build, served by mbo serve at /)"
	@echo "make test-frontend - dashboard: svelte-check, eslint, vitest, build, e2e in Chromium"
	@echo "make bench-frontend - dashboard figures: ladder first paint, frame times under load, JS size"
	@echo "make test-ops - validate monitoring, Docker, Compose, Kubernetes, workflows, Nix; live Prometheus check"
	@echo "make bench   - mbo bench on the real files, then the criterion engine benches"
	@echo "make bench-pacing - 60 s replay at 500k records/s (pacing drift, must be within 1%)"
	@echo "make bench-sim - simulator speed (null sink, >= 5 M records/s) and mbo simulate"
	@echo "make bench-serve - mbo serve under mbo loadtest: ready time, RSS, 1k/10k clients, MBO stream, storage"
	@echo "make bench-venues - crypto venues: parse+sync+apply per core, receive-to-publish latency at 1,000 msg/s"
	@echo "make bench-scale - NATS scale-out: gateway added latency, max-pace follow, clients held vs --role all"
	@echo "make release - build the optimised mbo binary"

# The product, on a fresh machine with no configuration: the built-in simulator, realtime.
# Settings come from .env / MBO_* (see .env.example); extra flags via ARGS="--dbn FILE ...".
run:
	@# The dashboard first, when npm is there (mbo serve serves mbo-frontend/build at /).
	@if command -v $(NPM) >/dev/null 2>&1; then $(MAKE) --no-print-directory frontend; \
	else echo "npm not found: serving the API without the dashboard" >&2; fi
	cd $(BACKEND) && $(CARGO) build --release --locked -p mbo-server
	@# Storage is on by default here (data/mbo.db, keeping 24 h and at most 10 M records, about
	@# 1 GB) unless MBO_DB / MBO_RETENTION are set in the environment or .env.
	if [ -z "$${MBO_DB+x}" ] && ! grep -qs '^MBO_DB=' .env; then export MBO_DB=data/mbo.db; fi; \
	if [ -z "$${MBO_RETENTION+x}" ] && ! grep -qs '^MBO_RETENTION=' .env; then export MBO_RETENTION=24h,10M; fi; \
	exec $(BACKEND)/target/release/mbo serve $(ARGS)

check-data:
	@test -f $(DATA)/CLX5_mbo.dbn || { echo "missing ../shared/data/mbo (real Databento files the tests need; see README)" >&2; exit 1; }

# Databento's Python decoder (PyPI: databento-dbn) reads `mbo simulate` output in the tests.
python-deps:
	@python3 -c "import databento_dbn" 2>/dev/null || python3 -m pip install --quiet databento-dbn

fmt-check:
	cd $(BACKEND) && $(CARGO) fmt --all -- --check

clippy:
	cd $(BACKEND) && $(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# The scale-out tests run a real NATS server with JetStream (Debian's nats-server).
nats-server:
	@command -v nats-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian package nats-server (for the scale-out tests)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nats-server >/dev/null; \
	  fi; }
	@command -v nats-server >/dev/null 2>&1 || { echo "nats-server is missing: apt-get install nats-server (the scale-out tests need it)" >&2; exit 1; }
	@# The package starts a system service on 4222; the tests use their own servers.
	@if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nats-server >/dev/null 2>&1 || true; fi

test-backend: check-data python-deps nats-server
	cd $(BACKEND) && $(CARGO) test --workspace --locked

lint: fmt-check clippy

# The debug `mbo` the dashboard's e2e and the live ops check drive: the binary `cargo test`
# builds for the integration tests. The same command with --no-run is a no-op after
# test-backend, where `cargo build -p mbo-server` would rebuild tokio and everything above it
# without the dev-dependencies' features.
server-bin:
	cd $(BACKEND) && $(CARGO) test --workspace --locked --no-run

# Operations files (monitoring/, Dockerfile, docker-compose.yaml, k8s/, .github/, deny.toml,
# flake.nix) through real validators, then Prometheus scraping a live `mbo serve`. Installs
# missing validators (apt, PyPI).
test-ops: server-bin
	bash scripts/validate-ops.sh $(BACKEND)/target/debug/mbo

# The dashboard. `npm ci` runs when node_modules is missing or older than the lockfile.
$(FRONTEND)/node_modules/.package-lock.json: $(FRONTEND)/package-lock.json $(FRONTEND)/package.json
	cd $(FRONTEND) && $(NPM) ci --no-audit --no-fund
	@touch $@

frontend: $(FRONTEND)/node_modules/.package-lock.json
	cd $(FRONTEND) && $(NPM) run build

# The e2e tests drive the real server and Debian's Chromium (installed by the script when
# missing and root).
test-frontend: $(FRONTEND)/node_modules/.package-lock.json check-data server-bin
	cd $(FRONTEND) && $(NPM) run check
	cd $(FRONTEND) && $(NPM) run lint
	cd $(FRONTEND) && $(NPM) test
	cd $(FRONTEND) && $(NPM) run build
	cd $(FRONTEND) && MBO_BIN=$(MBO_BIN) MBO_DATA=$(DATA) $(NPM) run e2e

bench-frontend: frontend check-data server-bin
	cd $(FRONTEND) && MBO_BIN=$(MBO_BIN) MBO_DATA=$(DATA) $(NPM) run bench:e2e

test: lint test-backend test-frontend test-ops

release:
	cd $(BACKEND) && $(CARGO) build --release --locked -p mbo-server

bench: release check-data
	$(BACKEND)/target/release/mbo bench $(DATA)/CLX5_mbo.dbn --loops 200
	$(BACKEND)/target/release/mbo bench $(DATA)/esh4-glbx-mdp3-20231225.mbo.dbn.zst --loops 100
	cd $(BACKEND) && $(CARGO) bench --locked -p mbo-book

# Simulator speed into a null sink (must be >= 5 M records/s), then `mbo simulate` to a file.
bench-sim: release
	cd $(BACKEND) && $(CARGO) run --release --locked -p mbo-feed --example sim_speed -- 20000000 3
	$(BACKEND)/target/release/mbo simulate --out /tmp/mbo-bench-sim.dbn.zst --records 10000000 --instruments 3
	@rm -f /tmp/mbo-bench-sim.dbn.zst

# Pacing benchmark: 60 s at 500,000 records/s; the final line's error_pct must be within ±1%.
bench-pacing: release check-data
	$(BACKEND)/target/release/mbo replay $(DATA)/CLX5_mbo.dbn --pace rate --rate 500000 --loop --duration 60s

# Server benchmarks (loopback only, bounded): startup, 1,000 clients at 100k records/s,
# 10,000 clients held 60 s, and the raw MBO stream. Prints a Markdown table.
bench-serve: release check-data
	python3 $(BACKEND)/scripts/bench_serve.py $(BACKEND)/target/release/mbo $(DATA) $(SCENARIOS)

# Crypto venues: parse + sync + apply per core over the recordings (CPU time), then
# receive -> published latency at 1,000 msg/s over four loopback venues (one JSON line).
CRYPTO ?= $(abspath ../shared/data/crypto)
bench-venues: release
	cd $(BACKEND) && MBO_CRYPTO_DATA=$(CRYPTO) $(CARGO) run --release --locked -p mbo-venues --example throughput
	$(BACKEND)/target/release/mbo venue-bench --data $(CRYPTO) --rate 1000 --seconds 10
	$(BACKEND)/target/release/mbo venue-bench --data $(CRYPTO) --rate 1000 --seconds 10 --busy-poll

# Scale-out on NATS JetStream: gateway added latency at 100,000 records/s, max-pace follow,
# clients held by a gateway vs --role all (a real nats-server, everything on 127.0.0.1).
bench-scale: release check-data nats-server
	python3 $(BACKEND)/scripts/bench_scale.py $(BACKEND)/target/release/mbo $(DATA) $(SCENARIOS)

clean:
	cd $(BACKEND) && $(CARGO) clean
