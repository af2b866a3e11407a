# FlowForge developer entry points. `make` alone lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Extra arguments for `make test`, passed to cargo nextest, e.g. make test ARGS="-E 'test(lease)'"
ARGS ?=

.PHONY: help up test bench build fmt lint generate clean-local

help:
	@echo 'FlowForge make targets:'
	@echo '  make up           build and run api + worker + PostgreSQL locally (Ctrl-C stops all)'
	@echo '                    ports: FLOWFORGE_UP_API_PORT=8080 FLOWFORGE_UP_API_ADMIN_PORT=9080'
	@echo '                           FLOWFORGE_UP_WORKER_ADMIN_PORT=9081 FLOWFORGE_UP_PG_PORT=55432'
	@echo '  make test         fmt check, clippy, shellcheck, and all tests on an ephemeral PostgreSQL + moto (what CI runs)'
	@echo '                    extra nextest arguments: make test ARGS="-E '\''test(name)'\''"'
	@echo '  make bench        run the benchmarks (installs wrk and the Graphile Worker peer first)'
	@echo '  make build        cargo build --workspace --release'
	@echo '  make fmt          cargo fmt --all'
	@echo '  make lint         cargo fmt --check + clippy -D warnings'
	@echo '  make generate     regenerate alerts/ and dashboards/ from slo/slos.yaml (commit the result)'
	@echo '  make clean-local  stop and remove .local (local database, tokens, logs)'

up:
	bash scripts/install-deps.sh up && bash scripts/up.sh

test:
	bash scripts/install-deps.sh test && bash scripts/test.sh $(ARGS)

bench:
	bash scripts/install-deps.sh bench && bash scripts/bench.sh

build:
	cargo build --workspace --locked --release

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

generate:
	cargo run --locked -q -p flowforge-slo -- generate

clean-local:
	bash scripts/pg.sh destroy .local/pg
	rm -rf .local
