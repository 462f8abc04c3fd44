# drguard — see README.md. `make run` and `make test` do all the set-up.
GO       ?= go
BIN      := bin/drguard
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/fruitfulplanet/drguard/internal/app.Version=$(VERSION)
GOBIN    := $(shell $(GO) env GOPATH)/bin

# Local development credentials for deploy/examples/local.yaml (make run and
# make demo only). Override them in your environment; never use these
# anywhere but on your own machine.
DRGUARD_WEBHOOK_TOKEN ?= local-webhook-token
DRGUARD_ADMIN_TOKEN   ?= local-admin-token
DEV_TOKENS := DRGUARD_WEBHOOK_TOKEN=$(DRGUARD_WEBHOOK_TOKEN) DRGUARD_ADMIN_TOKEN=$(DRGUARD_ADMIN_TOKEN)

FUZZTIME ?= 60s

.PHONY: all build run test test-go lint deps bench fuzz demo clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/drguard

## run: the daemon on the embedded default config; no external services.
run: build
	$(DEV_TOKENS) ./$(BIN) serve --config.file=deploy/examples/local.yaml --storage.path=data

## deps: install what the tests need (Debian packages, staticcheck, kube-apiserver).
deps:
	bash scripts/install-deps.sh
	bash scripts/kube-apiserver.sh

## test: the whole suite, with the race detector, after lint.
test: deps lint test-go

test-go:
	$(GO) test -race -count=1 -timeout 20m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...

## bench: benchmarks that print figures (see docs/benchmarks.md). The backup
## benchmark builds a database of DRGUARD_BENCH_GB (default 1) GiB first.
bench:
	$(GO) test -run '^$$' -bench 'Intake$$' -benchtime 8000x ./internal/app/
	$(GO) test -run '^$$' -bench IntakeResend -benchtime 1x ./internal/app/
	$(GO) test -run '^$$' -bench LeaderFailover -benchtime 1x ./internal/app/
	$(GO) test -run '^$$' -bench ProcessAlerts ./remediate/
	$(GO) test -run '^$$' -bench . -benchtime 3000x ./internal/store/
	$(GO) test -run '^$$' -bench BenchmarkProbes100 -benchtime 1x ./detect/probe/
	$(GO) test -run '^$$' -bench DetectionToFirstStep -benchtime 5x ./internal/app/
	$(GO) test -run '^$$' -bench BenchmarkBackup -benchtime 1x -timeout 60m ./internal/backup/
	$(GO) test -run '^$$' -bench BenchmarkRestore -benchtime 1x -timeout 60m ./internal/backup/
	$(GO) test -run '^$$' -bench BenchmarkDecode -benchtime 1x ./internal/backup/

## fuzz: run every fuzz target (func FuzzXxx) for FUZZTIME (default 60s)
## each. make test runs only their seed corpora (testdata/fuzz/FuzzXxx).
## A crasher is written to testdata/fuzz/FuzzXxx: keep it as a regression
## test and fix the code.
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
	  for fn in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "== $$fn in $$(dirname $$f) for $(FUZZTIME)"; \
	    $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$(dirname $$f); \
	  done; \
	done

## demo: two real drills on local parts (docs/drills.md, make demo): a
## PostgreSQL primary and replica, drguard on deploy/examples/demo.yaml, the
## Q1 (restart) and Q2 (promote the replica) drills, their reports and
## post-mortems. Installs what it needs as make deps does.
demo: build
	bash scripts/install-deps.sh
	$(DEV_TOKENS) bash scripts/demo.sh

clean:
	rm -rf bin data
