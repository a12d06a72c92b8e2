# Aerostat 2. `make help` lists the targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
export GOFLAGS ?= -mod=mod
# cgo off for everything but the race runs: the binaries are static, as the
# Dockerfile builds them, and the e2e's image build then links from the
# compile cache that go vet and go test filled. A different CGO_ENABLED
# changes the cache key of net and of every package above it, so the image
# build would compile the whole tree a second time (19 minutes under load).
export CGO_ENABLED ?= 0

LOCALBIN ?= $(CURDIR)/bin
# controller-gen is a tool of our module (go.mod's tool directive, pinned
# there): `go tool` builds it against our own k8s.io versions, so a cold
# `make test` compiles k8s.io/api and apimachinery once, not a second time
# for controller-tools' own module graph (about 3 minutes on 2 cores).
CONTROLLER_GEN ?= go tool controller-gen
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
IMG ?= ghcr.io/aerostat-io/aerostat:$(VERSION)
AGENT_IMG ?= ghcr.io/aerostat-io/aerostat-agent:$(VERSION)

# Packages with concurrency run under the race detector.
RACE_PKGS := ./internal/ledger/... ./internal/agent/... ./internal/feed/... ./controllers/...

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate CRDs and RBAC into config/ (and the chart copies).
	$(CONTROLLER_GEN) rbac:roleName=aerostat-controller crd paths="./api/..." paths="./controllers/..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	@if [ -x hack/sync-chart.sh ]; then hack/sync-chart.sh; fi

.PHONY: generate
generate: ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## go fmt.
	go fmt ./...

.PHONY: vet
vet: ## go vet, of the full build and of the node-only build (-tags agentonly).
	go vet ./...
	go vet -tags agentonly ./cmd/aerostat

.PHONY: lint
lint: vet ## gofmt check and go vet.
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: verify
verify: ## Fail when generated files are stale (compares with a fresh generation).
	@hack/verify-generated.sh

.PHONY: envtest
envtest: ## Build kube-apiserver and etcd for envtest into ~/.cache/aerostat (once).
	@hack/setup-envtest.sh >/dev/null

.PHONY: cluster
cluster: ## Build kubelet, controller-manager, scheduler, kube-proxy, CoreDNS for the e2e into ~/.cache/aerostat (once); install containerd when missing.
	@hack/setup-cluster.sh >/dev/null

# Test binaries are linked without DWARF (-w): nothing reads it, and it is
# about a fifth of each link, which go test does not cache.
TEST_LDFLAGS := -ldflags=-w

.PHONY: test
test: lint verify envtest cluster-background ## Run every test that can run here (builds envtest binaries once), the cluster e2e last (root, Linux; AEROSTAT_SKIP_E2E=<why> skips it on purpose).
	@# The race packages run once, under -race only.
	KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" AEROSTAT_REQUIRE_PYMONGO=1 go test -count=1 $(TEST_LDFLAGS) $$(go list ./... | grep -vxF -f <(go list $(RACE_PKGS)))
	KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" AEROSTAT_REQUIRE_PYMONGO=1 CGO_ENABLED=1 go test -count=1 $(TEST_LDFLAGS) -race $(RACE_PKGS)
	@if [ -n "$${AEROSTAT_SKIP_E2E:-}" ]; then echo "SKIPPING the one-node cluster e2e: AEROSTAT_SKIP_E2E=$$AEROSTAT_SKIP_E2E"; else $(MAKE) --no-print-directory e2e; fi

# On a cold machine the e2e's Kubernetes binaries take minutes to build:
# test starts that build in the background, niced, so it uses the CPU the
# tests leave idle. It starts after go vet and envtest, which compile the
# packages it shares with them (hack/lib/k8s-module.sh): started beside
# them it compiled the same packages at the same time. The e2e's own
# setup-cluster.sh then waits on its lock, and rebuilds (reporting any
# error) if the background build failed.
.PHONY: cluster-background
cluster-background:
	@if [ -z "$${AEROSTAT_SKIP_E2E:-}" ]; then (nice -n 10 hack/setup-cluster.sh >/dev/null 2>&1 &); fi

.PHONY: e2e
e2e: envtest cluster ## Install the chart with Helm on a one-node cluster of real components (root, Linux) and run the scenarios.
	KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" AEROSTAT_CLUSTER_BINS="$$(hack/setup-cluster.sh)" \
		go test -tags e2e -count=1 $(TEST_LDFLAGS) -timeout 45m -v -run TestE2E ./test/e2e/

# N runs of every test under -race; FLAKE_PKGS narrows it (e.g. ./internal/agent/...).
N ?= 20
FLAKE_PKGS ?= ./...

.PHONY: flake
flake: envtest ## Run the suite N times (default 20) under -race; report each failing test and its failure rate.
	KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" CGO_ENABLED=1 go run ./hack/flake -n $(N) $(FLAKE_PKGS)

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 30s).
	@hack/fuzz.sh $${FUZZTIME:-30s}

# BENCHTIME keeps the Go benchmarks short; BENCH_ARGS go to the harness
# (e.g. BENCH_ARGS=-quick, or -n 100,1000 -agents 50; see go run ./hack/bench -h).
BENCHTIME ?= 200ms
BENCH_ARGS ?=

.PHONY: bench
bench: ## Go benchmarks and the scale harness; prints a table, writes bench/results.json.
	go test -p 1 -run '^$$' -bench . -benchmem -benchtime=$(BENCHTIME) ./internal/... ./controllers/...
	@if [ -d hack/bench ]; then go run ./hack/bench $(BENCH_ARGS); fi

.PHONY: soak
soak: ## Soak (not in CI): SOAK_DURATION (10m) of churn and faults on 1,000 instances and 20 agents; prints fault and violation counts.
	go run ./hack/soak -duration $${SOAK_DURATION:-10m}

##@ Build

.PHONY: build
build: ## Build bin/aerostat, bin/aerostat-agent (the node agent's build) and the kubectl-aerostat plugin link.
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/aerostat ./cmd/aerostat
	CGO_ENABLED=0 go build -tags agentonly -trimpath -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/aerostat-agent ./cmd/aerostat
	ln -sf aerostat $(LOCALBIN)/kubectl-aerostat

.PHONY: run
run: ## Run the embedded demo: no MongoDB, AWS or Kubernetes needed.
	@# A plain build (not build's static -trimpath one) shares the compile cache with go test.
	go build -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/aerostat ./cmd/aerostat
	$(LOCALBIN)/aerostat demo $(ARGS)

.PHONY: docker-build
docker-build: ## Build the full image and the node agent's image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .
	docker build --build-arg VERSION=$(VERSION) --target agent -t $(AGENT_IMG) .
