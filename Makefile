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

# promu builds releases from .promu.yml: `make build` (promu build), `make crossbuild` (every
# platform into .build/<os>-<arch>/), `make tarballs` (.tarballs/*.tar.gz and sha256sums.txt).
# Where promu cannot be installed (the module proxy may refuse it), the same targets make the
# same files with go build, tar and sha256sum (scripts/crossbuild.sh, scripts/tarballs.sh).
# USE_PROMU=yes|no forces the choice. docs/install.md describes the artifacts.
VERSION   := $(shell cat VERSION)
REVISION  := $(shell git rev-parse HEAD 2>/dev/null)
BRANCH    := $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null)
BUILD_DIR := .build/$(shell $(GO) env GOOS)-$(shell $(GO) env GOARCH)
PREFIX    ?= $(BUILD_DIR)
VERSION_PKG := github.com/prometheus/common/version
# As .promu.yml's ldflags render, with the -extldflags '-static' promu adds for static builds.
LDFLAGS := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) \
	-X $(VERSION_PKG).Branch=$(BRANCH) -X $(VERSION_PKG).BuildUser=$(shell id -un)@$(shell hostname) \
	-X $(VERSION_PKG).BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S) -extldflags '-static'
# yes when promu is installed or installs now (evaluated where used; a sub-make gets the answer).
USE_PROMU ?= $(shell if command -v $(PROMU) >/dev/null 2>&1 || env -u GOOS -u GOARCH -u GOARM $(GO) install github.com/prometheus/promu@$(PROMU_VERSION) >/dev/null 2>&1; then echo yes; else echo no; fi)
# Release scripts get the same tools and answers as the Makefile.
RELEASE_ENV = MAKE="$(MAKE)" GO="$(GO)" PROMU="$(PROMU)" USE_PROMU="$(USE_PROMU)"

.PHONY: build
build:
	@if [ "$(USE_PROMU)" = yes ]; then \
		echo "$(PROMU) build --prefix $(PREFIX)"; \
		$(PROMU) build --prefix $(PREFIX); \
	else \
		echo "promu not available: go build with the same flags and ldflags into $(PREFIX)"; \
		CGO_ENABLED=0 $(GO) build -tags netgo -ldflags "$(LDFLAGS)" -o $(PREFIX)/wsgi_exporter ./cmd/wsgi_exporter; \
	fi

# PLATFORMS="linux/amd64 linux/arm64" builds only those (default: .promu.yml's crossbuild list).
.PHONY: crossbuild
crossbuild:
	$(RELEASE_ENV) PLATFORMS="$(PLATFORMS)" ./scripts/crossbuild.sh

# Packs what .build/ holds (after crossbuild) into fresh .tarballs/.
.PHONY: tarballs
tarballs: crossbuild
	rm -rf .tarballs
	$(RELEASE_ENV) ./scripts/tarballs.sh

.PHONY: bench
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Soak (minutes, not part of `make test`): uWSGI with --max-requests churn behind nginx,
# gunicorn with worker kills and statsd, two multiprocess directories, bounded wrk, the
# exporter scraped every second; prints RSS, goroutines, fds and request counts per minute.
# DURATION=10m by default (also RATE, CONNS, KILL_EVERY, MAX_REQUESTS: see bench/soak.sh).
.PHONY: soak
soak:
	./bench/soak.sh

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

# The prometheus-community image layout: one image per architecture,
# $(DOCKER_REPO)/$(DOCKER_IMAGE_NAME)-linux-<arch>:$(DOCKER_IMAGE_TAG), on
# quay.io/prometheus/busybox-linux-<arch>, and (podman) the manifest list
# $(DOCKER_REPO)/$(DOCKER_IMAGE_NAME):$(DOCKER_IMAGE_TAG) tying them together. Built with docker
# where a daemon answers, with podman otherwise (DOCKER_ENGINE=docker|podman forces one).
DOCKER_ARCHS      ?= amd64 arm64
DOCKER_REPO       ?= wsgi-exporter
DOCKER_IMAGE_NAME ?= wsgi-exporter
DOCKER_IMAGE_TAG  ?= v$(VERSION)
DOCKER_ENGINE     ?= auto
DOCKER_ENV = DOCKER_ARCHS="$(DOCKER_ARCHS)" DOCKER_REPO="$(DOCKER_REPO)" DOCKER_IMAGE_NAME="$(DOCKER_IMAGE_NAME)" \
	DOCKER_IMAGE_TAG="$(DOCKER_IMAGE_TAG)" DOCKER_ENGINE="$(DOCKER_ENGINE)" VERSION="$(VERSION)" REVISION="$(REVISION)"

.PHONY: docker
docker:
	$(MAKE) --no-print-directory crossbuild PLATFORMS="$(addprefix linux/,$(DOCKER_ARCHS))" USE_PROMU="$(USE_PROMU)"
	$(DOCKER_ENV) ./scripts/docker-build.sh

# For tests only: as `make docker`, but where quay.io cannot be reached the base is a LOCAL
# STAND-IN built by scripts/busybox-standin.sh (podman only; it says so loudly).
.PHONY: docker-test
docker-test:
	$(MAKE) --no-print-directory crossbuild PLATFORMS="$(addprefix linux/,$(DOCKER_ARCHS))" USE_PROMU="$(USE_PROMU)"
	$(DOCKER_ENV) BASE_STANDIN=auto ./scripts/docker-build.sh

.PHONY: clean
clean:
	rm -rf .build .tarballs .release wsgi_exporter
