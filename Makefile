# wsgi_exporter. `make test` is the one test command: on Debian as root it installs the real
# programs the end-to-end tests need, then runs lint and every test with the race detector.

GO        ?= go
GOPATH    := $(shell $(GO) env GOPATH)
PROMU     ?= $(GOPATH)/bin/promu
STATICCHECK ?= $(GOPATH)/bin/staticcheck
PROMU_VERSION ?= v0.17.0
STATICCHECK_VERSION ?= v0.8.2
GOTEST_FLAGS ?= -race -count=1 -timeout 30m

.PHONY: all
all: lint build test

.PHONY: deps
deps:
	./scripts/install-test-deps.sh

.PHONY: test
test: deps lint
	$(GO) test $(GOTEST_FLAGS) ./...

.PHONY: test-short
test-short:
	$(GO) test -short -count=1 ./...

.PHONY: lint
lint: vet staticcheck fmt-check

.PHONY: vet
vet:
	$(GO) vet ./...

.PHONY: fmt-check
fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

.PHONY: staticcheck
staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

# promu builds releases from .promu.yml. Where promu cannot be installed, `make build` does the
# same build with go build and the same version ldflags.
VERSION   := $(shell cat VERSION)
REVISION  := $(shell git rev-parse HEAD 2>/dev/null)
BRANCH    := $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null)
BUILD_DIR := .build/$(shell $(GO) env GOOS)-$(shell $(GO) env GOARCH)
VERSION_PKG := github.com/prometheus/common/version
LDFLAGS := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) \
	-X $(VERSION_PKG).Branch=$(BRANCH) -X $(VERSION_PKG).BuildUser=$(shell id -un)@$(shell hostname) \
	-X $(VERSION_PKG).BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

.PHONY: build
build:
	@if command -v $(PROMU) >/dev/null 2>&1 || $(GO) install github.com/prometheus/promu@$(PROMU_VERSION) 2>/dev/null; then \
		$(PROMU) build --prefix $(BUILD_DIR); \
	else \
		echo "promu not available: go build with the same ldflags"; \
		CGO_ENABLED=0 $(GO) build -tags netgo -ldflags "$(LDFLAGS)" -o $(BUILD_DIR)/wsgi_exporter ./cmd/wsgi_exporter; \
	fi

.PHONY: bench
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Side by side with the peer exporters (docs/benchmarks.md); a benchmark, not part of `make test`.
# Builds wsgi_exporter unless OURS is given; the peers are built as docs/benchmarks.md says.
.PHONY: bench-peers
bench-peers:
	@if [ -z "$(UWSGI_EXPORTER)" ] || [ -z "$(NGINX_EXPORTER)" ] || [ -z "$(STATSD_EXPORTER)" ]; then \
		echo "usage: make bench-peers UWSGI_EXPORTER=PATH NGINX_EXPORTER=PATH STATSD_EXPORTER=PATH [OURS=PATH]"; \
		echo "       [PEERS_ARGS='--workers 4,64'] [STATSD_PEERS_ARGS='--rates 20000']"; \
		echo "(paths of timonwong/uwsgi_exporter, nginxinc/nginx-prometheus-exporter and"; \
		echo " prometheus/statsd_exporter binaries: see docs/benchmarks.md to build them)"; \
		exit 2; \
	fi
	@ours="$(OURS)"; if [ -z "$$ours" ]; then ours=.build/bench/wsgi_exporter; \
		$(GO) build -o $$ours ./cmd/wsgi_exporter || exit 1; fi; \
	bench/peers.sh --uwsgi-exporter "$(UWSGI_EXPORTER)" --nginx-exporter "$(NGINX_EXPORTER)" --ours "$$ours" $(PEERS_ARGS) && \
	bench/statsd_peers.sh --statsd-exporter "$(STATSD_EXPORTER)" --ours "$$ours" $(STATSD_PEERS_ARGS)

# Every fuzz target of every package, FUZZTIME each (go test fuzzes one target at a time).
# Fails when no target is found, so a renamed target cannot make it pass by fuzzing nothing.
FUZZTIME ?= 30s
.PHONY: fuzz
fuzz:
	@set -e; n=0; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$f ($$pkg) for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s $$pkg; \
			n=$$((n+1)); \
		done; \
	done; \
	if [ $$n -eq 0 ]; then echo "no fuzz target found" >&2; exit 1; fi; \
	echo "fuzzed $$n targets for $(FUZZTIME) each"

# The whole stack on loopback (nginx, uWSGI, gunicorn, the exporter, Prometheus with the rules,
# traffic); Ctrl-C stops it. `make demo-stop` stops a demo started elsewhere (scripts/demo.sh).
.PHONY: demo
demo:
	./scripts/demo.sh run

.PHONY: demo-stop
demo-stop:
	./scripts/demo.sh stop

.PHONY: docker
docker: build
	docker build -t wsgi-exporter:latest --build-arg ARCH=$$($(GO) env GOARCH) --build-arg OS=$$($(GO) env GOOS) .

.PHONY: clean
clean:
	rm -rf .build wsgi_exporter
