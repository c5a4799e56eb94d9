# kfleet — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
BIN   := $(CURDIR)/bin
GO    ?= go

# Pinned tools. The temporal CLI is built from source with `go install`
# (v1.5.1: newer releases carry a replace directive `go install` refuses).
TEMPORAL_CLI_VERSION  := v1.5.1
STATICCHECK_VERSION   := v0.8.2
WORKFLOWCHECK_VERSION := v0.6.0
ZOOKEEPER_JAR         := /usr/share/java/zookeeper.jar
SHELLCHECK            := /usr/bin/shellcheck
PROMTOOL              := /usr/bin/promtool
CHROMIUM              := /usr/bin/chromium
# kustomize renders deploy/k8s in make lint (v5.8.1: the newest that builds
# with go.mod's Go).
KUSTOMIZE_VERSION     := v5.8.1

# The image's binaries (Dockerfile: RUN make static-binaries): static
# (CGO_ENABLED=0, for distroless static), stripped, with no build paths or
# VCS stamp, so a checkout and the image's build context give the same
# bytes. make image-check builds them exactly so and checks them.
STATIC_OUT     ?= $(CURDIR)/out
STATIC_GOFLAGS := -trimpath -buildvcs=false -ldflags "-s -w"

GO_TEST_FLAGS ?= -count=1 -timeout 15m -parallel 3
# What make lint runs besides go (built or installed once).
LINT_TOOLS := $(BIN)/staticcheck $(BIN)/workflowcheck $(SHELLCHECK) $(PROMTOOL) $(BIN)/kustomize

.PHONY: all run build tools deps test unit integration lint bench chaos clean record-histories static-binaries image-check manifests-check

all: build

## run: the whole local stack in the foreground (Ctrl-C stops it)
run: deps build
	$(BIN)/starter dev --temporal $(BIN)/temporal

## build: bin/worker and bin/starter
build:
	$(GO) build -o $(BIN)/worker ./worker
	$(GO) build -o $(BIN)/starter ./starter

## tools: pinned CLIs into ./bin, built once and cached
tools: $(BIN)/temporal $(BIN)/staticcheck $(BIN)/workflowcheck $(BIN)/kustomize

$(BIN)/temporal:
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(BIN)/workflowcheck:
	GOBIN=$(BIN) $(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)

$(BIN)/kustomize:
	GOBIN=$(BIN) $(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

## static-binaries: the image's static worker and starter into STATIC_OUT (what the Dockerfile runs)
static-binaries:
	CGO_ENABLED=0 $(GO) build $(STATIC_GOFLAGS) -o $(STATIC_OUT)/worker ./worker
	CGO_ENABLED=0 $(GO) build $(STATIC_GOFLAGS) -o $(STATIC_OUT)/starter ./starter

## image-check: no docker needed: build the image's binaries as the Dockerfile does and prove them static; check the Dockerfile
image-check:
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
		$(MAKE) --no-print-directory static-binaries STATIC_OUT="$$dir" && \
		$(GO) run ./internal/deploycheck/cmd/deploycheck binaries "$$dir"/worker "$$dir"/starter
	$(GO) run ./internal/deploycheck/cmd/deploycheck dockerfile .

## manifests-check: render deploy/k8s's base and every overlay, and check them offline (strict schema, kfleet's rules)
manifests-check: $(BIN)/kustomize
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
		for k in deploy/k8s/base deploy/k8s/overlays/*/; do \
			$(BIN)/kustomize build "$$k" > "$$dir/$$(basename "$$k").yaml" || exit 1; \
		done && \
		$(GO) run ./internal/deploycheck/cmd/deploycheck manifests "$$dir"/*.yaml

## deps: the temporal CLI and Debian's zookeeper and chromium packages (needs root for apt)
deps: $(BIN)/temporal $(ZOOKEEPER_JAR) $(SHELLCHECK) $(CHROMIUM)

# The fleet overview's tests open the page in Debian's headless chromium.
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

$(ZOOKEEPER_JAR):
	@command -v java >/dev/null || { echo "java is required (Java 17)"; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends zookeeper

# The integration package's tests mostly wait (timers, polls, a killed
# worker's heartbeat timeout): one after another they would take most of
# make test's budget. Its two halves run as two test binaries beside each
# other and beside the other packages; each prints once it is done.
INTEGRATION_FIRST_HALF := ^TestIntegration[A-K]

## test: lint, then both test tiers: unit and integration (real Temporal dev server, ZooKeeper, local fleet)
# Lint first, alone: run beside the integration tests, its CPU made them
# flaky on 2 cores (a status query past chat's 1 s, a dropped dev-server call).
test: deps lint
	@set -u; export KFLEET_TEMPORAL_BIN=$(BIN)/temporal; out=$$(mktemp -d); \
	$(GO) test $(GO_TEST_FLAGS) -run '$(INTEGRATION_FIRST_HALF)' ./internal/integration/ > $$out/first 2>&1 & first=$$!; \
	$(GO) test $(GO_TEST_FLAGS) -skip '$(INTEGRATION_FIRST_HALF)' ./internal/integration/ > $$out/second 2>&1 & second=$$!; \
	$(GO) test $(GO_TEST_FLAGS) $$($(GO) list ./... | grep -v '/internal/integration$$'); rest=$$?; \
	wait $$first; rfirst=$$?; wait $$second; rsecond=$$?; \
	echo "integration tests $(INTEGRATION_FIRST_HALF):"; cat $$out/first; \
	echo "the other integration tests:"; cat $$out/second; rm -rf $$out; \
	exit $$(( rest | rfirst | rsecond ))

## unit: the unit tier, no server needed: -short skips every integration test (the rule: internal/devstack/tier)
unit:
	$(GO) test $(GO_TEST_FLAGS) -short ./...

## integration: only the integration tier: the tests named TestIntegration… (internal/devstack/tier)
integration: deps
	KFLEET_TEMPORAL_BIN=$(BIN)/temporal $(GO) test $(GO_TEST_FLAGS) -run Integration ./...

$(SHELLCHECK):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck

# promtool comes with Debian's prometheus package (its service is not
# started in a container without systemd).
$(PROMTOOL):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus

## lint: go vet, gofmt, staticcheck, workflowcheck, shellcheck of deploy/ssm scripts, promtool of deploy/prometheus, image-check, manifests-check
lint: $(LINT_TOOLS)
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi
	$(BIN)/staticcheck ./...
	$(BIN)/workflowcheck ./workflows/...
	@# The SSM documents' scripts, exactly as the agent runs them on hosts.
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
		$(GO) run ./internal/tools/ssmscripts -out "$$dir" deploy/ssm/*.yaml && \
		$(SHELLCHECK) "$$dir"/*.sh
	@# The alert rules, and their unit tests (each alert fires on what should raise it).
	$(PROMTOOL) check rules deploy/prometheus/kfleet-alerts.yaml
	cd deploy/prometheus && $(PROMTOOL) test rules kfleet-alerts_test.yaml
	@# The dashboard: its JSON, and every panel's query parsed as PromQL.
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
		$(GO) run ./internal/deploycheck/cmd/deploycheck dashboard deploy/grafana/kfleet-fleet.json "$$dir/dashboard.rules.yaml" && \
		$(PROMTOOL) check rules "$$dir/dashboard.rules.yaml"
	@# The image (without docker) and the Kubernetes manifests (without a cluster).
	@$(MAKE) --no-print-directory image-check manifests-check

## chaos: the chaos run with 40 worker kills (KFLEET_CHAOS_KILLS, KFLEET_CHAOS_SEED, KFLEET_CHAOS_WORKERS), and the other crash-safety tests
chaos: deps
	KFLEET_TEMPORAL_BIN=$(BIN)/temporal KFLEET_CHAOS_KILLS=$${KFLEET_CHAOS_KILLS:-40} \
		$(GO) test -count=1 -timeout 30m -v -run CrashSafety ./internal/integration/

bench: deps
	@# In-process benchmarks run for the usual second; a whole stack once each
	@# (BenchmarkClustersPerWorker: 2,000 clusters, ~15 min; BenchmarkIdleCost: 10 min;
	@# BenchmarkLoadProfile: 50 tenants and a million messages, ~2 min; BenchmarkAdminStorm: ~1.5 min;
	@# BenchmarkOverviewPage: 2,000 entities in Temporal and the page in chromium, ~1.5 min).
	$(GO) test -run '^$$' -bench . ./internal/chatops/ ./internal/fleet/
	KFLEET_TEMPORAL_BIN=$(BIN)/temporal $(GO) test -timeout 90m -run '^$$' -bench . -benchtime 1x ./internal/localfleet/ ./internal/integration/

clean:
	rm -rf $(BIN) .kfleet

## record-histories: refresh workflows/testdata/ from real runs (replay tests)
record-histories: deps
	KFLEET_TEMPORAL_BIN=$(BIN)/temporal KFLEET_RECORD_HISTORIES=$(CURDIR)/workflows/testdata \
		$(GO) test -count=1 -run 'TestIntegrationRollingRestart|TestIntegrationRecovery|TestIntegrationVolumeExpansion|TestIntegrationDeadCleaner|TestIntegrationSchedules|TestIntegrationChatops|TestIntegrationRollPausedAcrossContinueAsNew|TestIntegrationProvisionCreateAndRoll|TestIntegrationDeleteCluster|TestIntegrationAddBrokersRebalancesUnderLoad|TestIntegrationRemoveBroker|TestIntegrationTenantsAreIsolated|TestIntegrationAdminLaneRidesOutTheStorm|TestIntegrationAdminLaneBreadth|TestIntegrationKRaftProvisionAndReplaceController|TestIntegrationKRaftUpgrade|TestIntegrationMigrationRollsBackFromDualWrite|TestIntegrationOverviewPageShowsARecovery|TestIntegrationBrokerFailsToStartPausesThenResumes' ./internal/integration/
