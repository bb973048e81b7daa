# neonmeter — see README.md. Every target installs and starts what it needs.
SHELL := /bin/bash
export CH_PORT ?= 19000
export NEONMETER_TEST_CLICKHOUSE_ADDR ?= 127.0.0.1:$(CH_PORT)
export NEONMETER_TEST_STRIPE_MOCK_URL ?= http://127.0.0.1:12111
# The test clusters of scripts/cluster.sh (its defaults: two shards of two replicas, ZooKeeper on
# 12181): the sharded cluster of all four servers, and the one-shard cluster of the first two.
export NEONMETER_TEST_CLUSTER ?= neonmeter_test
export NEONMETER_TEST_CLUSTER_ADDRS ?= 127.0.0.1:19101,127.0.0.1:19102
export NEONMETER_TEST_SHARDED_CLUSTER ?= neonmeter_sharded
export NEONMETER_TEST_SHARDED_CLUSTER_ADDRS ?= 127.0.0.1:19101,127.0.0.1:19102,127.0.0.1:19103,127.0.0.1:19104
export NEONMETER_TEST_ZOOKEEPER_ADDRS ?= 127.0.0.1:12181
export CHDB_LIB_PATH ?= $(CURDIR)/.tools/chdb/node_modules/@chdb/lib-linux-x64-gnu/libchdb.so
GO ?= go
GOFLAGS_TEST ?= -count=1
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build image image-binary demo test test-race fuzz bench bench-fleet soak lint deps clickhouse clickhouse-stop cluster cluster-stop stripe-mock stripe-mock-stop clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

## image-binary: the binaries exactly as the Dockerfile builds them (static, -trimpath, LDFLAGS);
## deploy/image_test.go keeps the two commands equal and runs this one, so CI builds what ships.
IMAGE_OUT ?= bin/image/
image-binary:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(IMAGE_OUT) ./cmd/neonmeter ./cmd/neonsim

## image: the production image (neonmeter:$(VERSION)) and the simulator's (neonmeter-sim), where a
## Docker engine answers; without one it says so and fails.
IMAGE ?= neonmeter
image:
	@docker info >/dev/null 2>&1 || { echo "make image: no Docker engine answers here (docker info failed); make image-binary builds the same binaries without one"; exit 1; }
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .
	docker build --build-arg VERSION=$(VERSION) --target neonsim -t $(IMAGE)-sim:$(VERSION) .

deps:
	scripts/deps.sh

clickhouse:
	SKIP_CHDB=1 scripts/deps.sh
	scripts/clickhouse.sh start

clickhouse-stop:
	scripts/clickhouse.sh stop

## cluster: a private ZooKeeper and four ClickHouse 18.16 servers (two shards of two replicas) on
## loopback (scripts/cluster.sh; data under .cluster) for the cluster tests.
cluster:
	SKIP_CHDB=1 scripts/deps.sh
	scripts/cluster.sh start

cluster-stop:
	scripts/cluster.sh stop

stripe-mock:
	scripts/stripe-mock.sh start

stripe-mock-stop:
	scripts/stripe-mock.sh stop

## demo: a simulated fleet, a local ClickHouse and stripe-mock: collect 72 h, bill, plan enforcement.
demo: clickhouse stripe-mock build
	NEONMETER_CLICKHOUSE_ADDR=127.0.0.1:$(CH_PORT) NEONMETER_CLICKHOUSE_DATABASE=neonmeter_demo \
		NEONMETER_PLANS_FILE=plans/example.yaml NEONMETER_STRIPE_API_URL=$(NEONMETER_TEST_STRIPE_MOCK_URL) \
		NEONMETER_LOG_LEVEL=warn bin/neonmeter demo

## test: every test against real services (ClickHouse 18.16 server, chDB for current ClickHouse).
test: deps clickhouse stripe-mock cluster
	$(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) test $(GOFLAGS_TEST) -timeout 40m ./...
	$(GO) test $(GOFLAGS_TEST) -tags chdb -run Chdb -timeout 10m ./schema/ ./dashboards/
	$(MAKE) --no-print-directory fuzz
	$(MAKE) --no-print-directory test-race

## test-race: the race detector over the packages that run goroutines (billing workers, pacing,
## leases, serve's daemon); listed rather than ./... to keep CI well inside its time limit. The
## tests that kill child processes at random moments (…KilledAt…, …KilledAndFaulted…) run in the
## plain pass above: under the detector a child is often killed before it has started any work,
## so they would test nothing, and their code paths run here through the other tests.
RACE_PKGS ?= ./billing/ ./neon/ ./internal/... ./collector/ ./enforcement/ ./cmd/neonmeter/ ./finance/...
## The cluster tests that kill a replica (…ReplicaKilledMidSweep) run in the plain pass only too:
## the code they drive runs under the detector in its own packages' tests. So does the serve
## replicas test (KilledAndPausedHolders): its replicas are separate processes.
RACE_SKIP ?= KilledAtRandomPoints|KilledAndFaulted|ReplicaKilledMidSweep|KilledAndPausedHolders
test-race: clickhouse stripe-mock cluster
	$(GO) test $(GOFLAGS_TEST) -race -skip '$(RACE_SKIP)' -timeout 30m $(RACE_PKGS)

## fuzz: every native fuzz target for FUZZTIME each (scripts/fuzz.sh, docs/fuzzing.md); a
## longer run: make fuzz FUZZTIME=5m, or FUZZ_PKGS=./neon/ for one package's targets.
FUZZTIME ?= 10s
FUZZ_PKGS ?= ./...
fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh $(FUZZ_PKGS)

bench: clickhouse stripe-mock
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

## bench-fleet: collection of a simulated fleet on an accelerated clock (cmd/fleetbench), today's
## full sweep and the budgeted cycle side by side, verified against the simulator's ground truth.
## Small by default; FLEET_ARGS adds or overrides flags, e.g.
## make bench-fleet FLEET_ARGS='--projects 1000000 --hours 24 --hour 20s' (docs/benchmarks.md).
FLEET_ARGS ?=
bench-fleet: clickhouse
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/neonmeter
	$(GO) run ./cmd/fleetbench --clickhouse $(NEONMETER_TEST_CLICKHOUSE_ADDR) --bin bin/neonmeter \
		--projects 20000 --hours 6 --hour 10s --budget 30 --mode both $(FLEET_ARGS)

## soak: a simulated month of the whole loop under a seeded fault schedule (cmd/soak,
## docs/reliability.md): 20,000 projects, three serve replicas, at least 50 kill -9s, checked
## against the simulator's ground truth. Long (see docs/reliability.md for its wall time); the
## CI week is TestSoak_Week under make test. SOAK_ARGS adds or overrides flags, e.g.
## make soak SOAK_ARGS='--seed 7 --hour 30s'.
SOAK_ARGS ?=
soak: clickhouse
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/neonmeter
	$(GO) run ./cmd/soak --clickhouse $(NEONMETER_TEST_CLICKHOUSE_ADDR) --bin bin/neonmeter \
		--days 30 --projects 20000 --replicas 3 --kills 50 --hour 20s $(SOAK_ARGS)

STATICCHECK_VERSION ?= v0.8.2

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

clean:
	rm -rf bin
