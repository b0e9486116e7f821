# Every target installs what it needs: `make test` and `make demo` work on a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NPM_STAMP := node_modules/.npm-ci-stamp
DIST_STAMP := dist/.build-stamp
SOURCES := $(shell find src -name '*.ts' 2>/dev/null) tsconfig.json scripts/build.mjs

.PHONY: help sysdeps deps build test lint demo bench clean

help:
	@echo "make demo   run the example ML pipeline: sign, run, verify, catch four attacks, release through an OCI registry gate"
	@echo "make test   run every test (unit, property, interop with the reference, end-to-end)"
	@echo "make bench  time run/verify against the Python reference, model sign/verify against sha256sum, push/pull against curl, scan, Slurm"
	@echo "make lint   type-check sources and tests, check the architecture's import direction"
	@echo "make build  compile TypeScript to dist/ and bundle each command into one file"

# npm ci when node_modules is missing or older than the manifest or lock file.
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: $(NPM_STAMP)

# The Debian packages the tests, the demo and the benchmarks use (installed as root when missing).
sysdeps:
	@./scripts/install-deps.sh

$(DIST_STAMP): $(NPM_STAMP) $(SOURCES)
	rm -rf dist
	node scripts/build.mjs

build: $(DIST_STAMP)

test: sysdeps build
	npx tsc -p tsconfig.test.json --noEmit
	npx vitest run

lint: deps
	npx tsc -p tsconfig.test.json --noEmit
	npx vitest run test/architecture.test.ts

demo: sysdeps build
	./scripts/demo.sh

bench: sysdeps build
	node dist/bench/main.js

clean:
	rm -rf dist node_modules
