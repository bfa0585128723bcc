# dashsync — build, test and lint entry points.
#
#   make help      list the targets
#
# Every go build/test/vet/run invocation goes through $(GO_FLAGS), which carries
# the `nomsgpack` build tag (drops gin's slow msgpack/ugorji codec).
# GOFLAGS is left alone on purpose: this machine's go env already sets
# GOFLAGS=-buildvcs=false, and overriding it here would drop that.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

# ---------------------------------------------------------------------------
# Settings (override on the command line: `make test TEST_TIMEOUT=30m`)
# ---------------------------------------------------------------------------
GO           ?= go
GO_TAGS      ?= nomsgpack
GO_FLAGS     := -tags '$(GO_TAGS)'
PKGS         ?= ./...

BIN_DIR      := bin
DATA_DIR     ?= ./data

# `make run`: arguments passed to the dashsync binary.
RUN_ARGS     ?= serve --dev

# `make test-go`
TEST_TIMEOUT ?= 15m
TEST_FLAGS   ?= -race -count=1 -timeout $(TEST_TIMEOUT)

# `make bench`
BENCH        ?= .
BENCH_FLAGS  ?= -benchmem
BENCH_PKGS   ?= $(PKGS)

# `make test-e2e`: the browser it drives, node's per-test timeout (ms), and a bound on
# the whole run (seconds; the run is killed after it)
E2E_CHROMIUM ?= /usr/bin/chromium
E2E_TIMEOUT  ?= 300000
E2E_DEADLINE ?= 900

# `make fuzz` (each target's seed corpus, in <pkg>/testdata/fuzz/<target>, also runs
# under plain `go test`). The targets: FuzzEditRule in ./sync, FuzzREST and
# FuzzWebSocket in ./api: `make fuzz FUZZ=FuzzREST FUZZ_PKG=./api FUZZTIME=10m`.
FUZZ         ?= FuzzEditRule
FUZZ_PKG     ?= ./sync
FUZZTIME     ?= 30s

# `make mutate`: the packages whose tests face mutation testing (gremlins)
MUTATE_PKGS  ?= ./sync ./hub

# `make cover`
COVER_PROFILE ?= coverage.out

# ---------------------------------------------------------------------------
# Tools: installed by this Makefile into a repo-local bin/tools/, pinned.
# The directory name carries the tool version and the Go version, so bumping
# either one reinstalls (staticcheck must be built by the Go it analyses for).
# ---------------------------------------------------------------------------
STATICCHECK_VERSION := v0.8.2
GO_VERSION          := $(shell $(GO) env GOVERSION)
STATICCHECK_DIR     := $(CURDIR)/$(BIN_DIR)/tools/staticcheck-$(STATICCHECK_VERSION)-$(GO_VERSION)
STATICCHECK         := $(STATICCHECK_DIR)/staticcheck
GREMLINS_VERSION    := v0.6.0
GREMLINS_DIR        := $(CURDIR)/$(BIN_DIR)/tools/gremlins-$(GREMLINS_VERSION)-$(GO_VERSION)
GREMLINS            := $(GREMLINS_DIR)/gremlins

# ---------------------------------------------------------------------------
# Test suites run by `make test`, in order. To add a suite, write its target below
# and append it here.
# ---------------------------------------------------------------------------
TEST_SUITES := test-go test-js test-e2e

.PHONY: help
help: ## List the targets
	@echo "Usage: make <target> [VAR=value ...]"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Test suites in 'make test': $(TEST_SUITES)"

# ---------------------------------------------------------------------------
# Build and run
# ---------------------------------------------------------------------------
.PHONY: build
build: ## Build every command in ./cmd/... into bin/ (bin/dashsync, ...)
	@mkdir -p $(BIN_DIR)
	$(GO) build $(GO_FLAGS) -o $(BIN_DIR)/ ./cmd/...

.PHONY: run
run: ## Build and run the dev server: dashsync serve --dev (data in ./data)
	@mkdir -p $(DATA_DIR) $(BIN_DIR)
	$(GO) build $(GO_FLAGS) -o $(BIN_DIR)/dashsync ./cmd/dashsync
	@exec $(BIN_DIR)/dashsync $(RUN_ARGS)

.PHONY: run-cluster
run-cluster: ## Two instances on Postgres + Redis (ports 8081, 8082), for trying scale-out by hand
	@scripts/run-cluster

# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------
.PHONY: test
test: $(TEST_SUITES) ## Run every test suite (what CI runs)

.PHONY: vet
vet: ## go vet ./...
	$(GO) vet $(GO_FLAGS) $(PKGS)

.PHONY: test-go
test-go: vet ## go vet, then go test -race -count=1 ./...
	$(GO) test $(GO_FLAGS) $(TEST_FLAGS) $(PKGS)

# The browser client's unit tests (web/test/*.test.mjs) need node ≥ 20. Without node
# they are skipped with a loud message, except under CI=true, where that is a failure.
.PHONY: test-js
test-js: ## Unit tests of the browser client: node --test web/test/*.test.mjs
	@if command -v node >/dev/null 2>&1; then \
		node --test web/test/*.test.mjs; \
	elif [[ "$${CI:-}" == "true" ]]; then \
		echo "test-js: node is not installed, and CI=true: install node >= 20 to run web/test/" >&2; exit 1; \
	else \
		echo "********************************************************************" >&2; \
		echo "test-js: SKIPPED: node is not installed (node >= 20 runs web/test/)" >&2; \
		echo "********************************************************************" >&2; \
	fi

# The end-to-end suite (e2e/*.test.mjs): headless Chromium (Debian's chromium, driven by
# playwright-core from e2e/node_modules) against real `dashsync serve` processes, one
# server and then two instances on Postgres + Redis. scripts/install-e2e installs both.
# Without them it is skipped with a loud message, except under CI=true, where that is a
# failure (.ci/run installs them first).
.PHONY: test-e2e
test-e2e: ## End-to-end tests in headless Chromium against real servers: node --test e2e/
	@missing=(); \
	command -v node >/dev/null 2>&1 || missing+=("node >= 20"); \
	[[ -x "$(E2E_CHROMIUM)" ]] || missing+=("chromium ($(E2E_CHROMIUM))"); \
	[[ -f e2e/node_modules/playwright-core/package.json ]] || missing+=("playwright-core (e2e/node_modules)"); \
	if (( $${#missing[@]} )); then \
		if [[ "$${CI:-}" == "true" ]]; then \
			echo "test-e2e: CI=true and missing: $${missing[*]}: run scripts/install-e2e first" >&2; exit 1; \
		fi; \
		echo "********************************************************************" >&2; \
		echo "** test-e2e: SKIPPED: the browser end-to-end suite did NOT run" >&2; \
		echo "** missing: $${missing[*]}" >&2; \
		echo "** install them with: scripts/install-e2e   (apt-get chromium, npm ci)" >&2; \
		echo "********************************************************************" >&2; \
		exit 0; \
	fi; \
	cd e2e && DASHSYNC_E2E_CHROMIUM="$(E2E_CHROMIUM)" timeout --kill-after=30 $(E2E_DEADLINE) \
		node --test --test-concurrency=1 --test-timeout=$(E2E_TIMEOUT) *.test.mjs

.PHONY: bench
bench: ## Run the benchmarks (not part of make test)
	$(GO) test $(GO_FLAGS) -run '^$$' -bench '$(BENCH)' $(BENCH_FLAGS) $(BENCH_PKGS)

.PHONY: fuzz
fuzz: ## Fuzz FUZZ (default FuzzEditRule) in FUZZ_PKG (./sync) for FUZZTIME (30s)
	$(GO) test $(GO_FLAGS) -run '^$$' -fuzz '^$(FUZZ)$$' -fuzztime $(FUZZTIME) -parallel 1 $(FUZZ_PKG)

# Mutation testing: gremlins mutates the code of each package in MUTATE_PKGS (one
# mutant at a time) and runs the package's tests against it; a mutant the tests still
# pass with "lived". It prints every mutant with its status and the efficacy (killed
# over killed + lived). Slow (minutes per package); not part of `make test`.
.PHONY: mutate
mutate: $(GREMLINS) ## Mutation testing of MUTATE_PKGS (./sync ./hub): killed ratio and survivors
	@for p in $(MUTATE_PKGS); do \
		echo "== gremlins: $$p"; \
		$(GREMLINS) unleash --tags '$(GO_TAGS)' --workers 1 --timeout-coefficient 4 -S lt $$p || exit $$?; \
	done

.PHONY: cover
cover: ## go test with a coverage profile (coverage.out), print the summary
	$(GO) test $(GO_FLAGS) -count=1 -coverprofile=$(COVER_PROFILE) $(PKGS)
	$(GO) tool cover -func=$(COVER_PROFILE) | tail -n 1

# ---------------------------------------------------------------------------
# Lint
# ---------------------------------------------------------------------------
.PHONY: lint
lint: vet staticcheck ## go vet and staticcheck

.PHONY: staticcheck
staticcheck: $(STATICCHECK) ## Run staticcheck (installs the pinned version first)
	$(STATICCHECK) $(GO_FLAGS) $(PKGS)

.PHONY: tools
tools: $(STATICCHECK) $(GREMLINS) ## Install the pinned tools into bin/tools/

$(STATICCHECK):
	@mkdir -p $(STATICCHECK_DIR)
	GOBIN=$(STATICCHECK_DIR) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(GREMLINS):
	@mkdir -p $(GREMLINS_DIR)
	GOBIN=$(GREMLINS_DIR) $(GO) install github.com/go-gremlins/gremlins/cmd/gremlins@$(GREMLINS_VERSION)

# ---------------------------------------------------------------------------
# Housekeeping
# ---------------------------------------------------------------------------
.PHONY: clean
clean: ## Remove bin/ and coverage files (keeps ./data)
	rm -rf $(BIN_DIR) $(COVER_PROFILE) coverage.html
