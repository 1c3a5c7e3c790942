# Kestrel — build, run and test every module of the workspace.
#
#   make build    all binaries into bin/, version stamped (every binary answers -version)
#   make run      the whole pipeline on this machine (embedded NATS, Redis, transfer, judge, agent)
#   make test     gofmt + vet, go test -race over every module, GOWORK=off builds and short
#                 tests of each module, then the end-to-end tests
#   make package  dist/kestrel-agent-<version>.tar.gz with .sha256/.md5 (and .sig with SIGN_KEY=...)
#   make images   container images kestrel/<part>:<version> from bin/ (FROM scratch) and
#                 kestrel/redis, kestrel/mariadb (Debian packages); nothing pulled (deploy/README.md)

GO      ?= go
MODULES := proto lib agent transfer judge deploy ops-meta ops-updater
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := $(CURDIR)/bin

# binary name = directory under <module>/cmd/
BINARIES := \
	agent/cmd/kestrel-agent \
	transfer/cmd/kestrel-transfer \
	judge/cmd/kestrel-judge \
	deploy/cmd/kestrel-run \
	deploy/cmd/kestrel-nats \
	deploy/cmd/kestrel-loadgen \
	ops-meta/cmd/ops-meta \
	ops-updater/cmd/ops-updater

.PHONY: build run test test-unit test-e2e lint package images clean

build:
	@mkdir -p $(BIN)
	@set -e; for b in $(BINARIES); do \
		mod=$${b%%/*}; rel=$${b#*/}; \
		echo "build bin/$$(basename $$b)"; \
		CGO_ENABLED=0 $(GO) build -C $$mod -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/$$(basename $$b) ./$$rel; \
	done

run: build
	$(BIN)/kestrel-run -bin $(BIN) -config deploy/local -var $(CURDIR)/var

test:
	./deploy/scripts/test.sh

package: build
	VERSION=$(VERSION) SIGN_KEY=$(SIGN_KEY) ./agent/package/build.sh $(BIN) dist

images: build
	GO=$(GO) ./deploy/images/build.sh $(BIN)

clean:
	rm -rf bin dist
