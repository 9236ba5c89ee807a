# The two commands of the README: `make run` and `make test`.
CARGO ?= cargo
PLATFORM := $(CARGO) run --quiet -p gateway --bin platform --
# Where lint's tools are installed once per machine (kept between CI runs).
TOOLS ?= /var/tmp/platform-ci-tools

.PHONY: run build test test-sqlite test-postgres lint fmt schema bench

## Build, migrate, seed the demo data once, and serve at http://127.0.0.1:8080/
run: build
	$(PLATFORM) migrate
	$(PLATFORM) seed
	$(PLATFORM) serve

build:
	$(CARGO) build -p gateway --bin platform

## Every test: SQLite always; PostgreSQL too when TEST_DATABASE_URL is set.
test: test-sqlite test-postgres

test-sqlite:
	env -u TEST_BACKEND $(CARGO) test --workspace

# `--workspace --test api` (not `-p api-tests`): the same feature set as test-sqlite, so
# the binary built there is reused instead of building the gateway again.
test-postgres:
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== end-to-end tests on PostgreSQL ($$TEST_DATABASE_URL)"; \
		TEST_BACKEND=postgres $(CARGO) test --workspace --test api; \
	else \
		echo "== TEST_DATABASE_URL is not set: PostgreSQL tests not run (.ci/run sets it)"; \
	fi

## Formatting, clippy with warnings as errors, domain crates free of web types (for
## webhooks its own dependencies only: its HTTP client brings tower along), and no
## declared dependency unused (cargo-machete, installed into $(TOOLS) the first time).
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p gateway --features bench-unrecorded --benches -- -D warnings
	@for crate in kernel authz audit tenancy core-domain billing jobs; do \
		if $(CARGO) tree -p $$crate -e normal --prefix none | grep -Eq '^(axum|async-graphql|tower|clap|anyhow) '; then \
			echo "$$crate depends on a web or CLI crate"; exit 1; \
		fi; \
	done
	@if $(CARGO) tree -p webhooks -e normal --depth 1 --prefix none | grep -Eq '^(axum|async-graphql|tower|tower-http|clap|anyhow) '; then \
		echo "webhooks depends on a web or CLI crate"; exit 1; \
	fi
	@# Declared dependencies no crate uses.
	@test -x $(TOOLS)/bin/cargo-machete || $(CARGO) install cargo-machete --locked --version 0.9.2 --root $(TOOLS)
	$(TOOLS)/bin/cargo-machete

fmt:
	$(CARGO) fmt --all

## Benchmarks (release build): authorization decisions, policy compiles and cache memory
## (criterion); audit appends and verification; the list filter at 1M records. The database
## benchmarks run on SQLite and on PostgreSQL at BENCH_DATABASE_URL (empty: SQLite only).
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
bench:
	$(CARGO) bench -p authz --bench authz
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(CARGO) bench -p kernel --bench pool
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(CARGO) bench -p tenancy --bench audit
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(CARGO) bench -p gateway --bench mutation --features bench-unrecorded
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(CARGO) bench -p tenancy --bench list
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(CARGO) bench -p gateway --bench billing
	$(CARGO) bench -p gateway --bench refusals
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(CARGO) bench -p gateway --bench http

## Regenerate schema.graphql from the code.
schema: build
	$(PLATFORM) export-schema --out schema.graphql
