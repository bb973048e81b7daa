# neonmeter — see README.md. Every target installs and starts what it needs.
SHELL := /bin/bash
export CH_PORT ?= 19000
export NEONMETER_TEST_CLICKHOUSE_ADDR ?= 127.0.0.1:$(CH_PORT)
export NEONMETER_TEST_STRIPE_MOCK_URL ?= http://127.0.0.1:12111
export CHDB_LIB_PATH ?= $(CURDIR)/.tools/chdb/node_modules/@chdb/lib-linux-x64-gnu/libchdb.so
GO ?= go
GOFLAGS_TEST ?= -count=1
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build image image-binary demo test test-race bench lint deps clickhouse clickhouse-stop stripe-mock stripe-mock-stop clean

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
test: deps clickhouse stripe-mock
	$(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) test $(GOFLAGS_TEST) -timeout 40m ./...
	$(GO) test $(GOFLAGS_TEST) -tags chdb -run Chdb -timeout 10m ./schema/ ./dashboards/
	$(MAKE) --no-print-directory test-race

## test-race: the race detector over the packages that run goroutines (billing workers, pacing,
## leases, serve's daemon); listed rather than ./... to keep CI well inside its time limit. The
## tests that kill child processes at random moments (…KilledAt…, …KilledAndFaulted…) run in the
## plain pass above: under the detector a child is often killed before it has started any work,
## so they would test nothing, and their code paths run here through the other tests.
RACE_PKGS ?= ./billing/ ./neon/ ./internal/... ./collector/ ./enforcement/ ./cmd/neonmeter/ ./finance/...
RACE_SKIP ?= KilledAtRandomPoints|KilledAndFaulted
test-race: clickhouse stripe-mock
	$(GO) test $(GOFLAGS_TEST) -race -skip '$(RACE_SKIP)' -timeout 30m $(RACE_PKGS)

bench: clickhouse stripe-mock
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

STATICCHECK_VERSION ?= v0.8.2

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

clean:
	rm -rf bin
