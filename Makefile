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

.PHONY: all build demo test test-race bench lint deps clickhouse clickhouse-stop stripe-mock stripe-mock-stop clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

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
## leases, serve's daemon); listed rather than ./... to keep CI well inside its time limit.
RACE_PKGS ?= ./billing/ ./neon/ ./internal/... ./collector/ ./enforcement/ ./cmd/neonmeter/
test-race: clickhouse stripe-mock
	$(GO) test $(GOFLAGS_TEST) -race -timeout 30m $(RACE_PKGS)

bench: clickhouse stripe-mock
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

STATICCHECK_VERSION ?= v0.8.2

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

clean:
	rm -rf bin
