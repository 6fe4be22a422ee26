# mbo — top-level tasks. `make test` is what CI runs (through .ci/run).
SHELL := /bin/bash
BACKEND := mbo-backend
CARGO ?= cargo
DATA := $(abspath ../shared/data/mbo)

.PHONY: help test test-backend lint fmt-check clippy bench bench-criterion build release clean check-data

help:
	@echo "make test    - format check, clippy -D warnings, every test (what CI runs)"
	@echo "make bench   - mbo bench on the real files, then the criterion engine benches"
	@echo "make release - build the optimised mbo binary"

check-data:
	@test -f $(DATA)/CLX5_mbo.dbn || { echo "missing ../shared/data/mbo (real Databento files the tests need; see README)" >&2; exit 1; }

fmt-check:
	cd $(BACKEND) && $(CARGO) fmt --all -- --check

clippy:
	cd $(BACKEND) && $(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test-backend: check-data
	cd $(BACKEND) && $(CARGO) test --workspace --locked

lint: fmt-check clippy

test: lint test-backend

release:
	cd $(BACKEND) && $(CARGO) build --release --locked -p mbo-server

bench: release check-data
	$(BACKEND)/target/release/mbo bench $(DATA)/CLX5_mbo.dbn --loops 200
	$(BACKEND)/target/release/mbo bench $(DATA)/esh4-glbx-mdp3-20231225.mbo.dbn.zst --loops 100
	cd $(BACKEND) && $(CARGO) bench --locked -p mbo-book

clean:
	cd $(BACKEND) && $(CARGO) clean
