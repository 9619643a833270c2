# e2e: `make build` puts e2e and every e2e-backend-* into bin/.
GO        ?= go
BINDIR    ?= bin
COMMIT    := $(shell git rev-parse --short HEAD 2>/dev/null)
VERSION   := $(shell cat VERSION)
PLUGINS   := docker aws existing
MODULES   := . sdk examples/nspawn
# Go code generated from shared/proto (inside the SDK module).
PROTO_GO  := sdk/internal/backendv1
TOOLS     := $(CURDIR)/.tools/bin
TOOLMOD   := -modfile=$(CURDIR)/tools/go.mod

# make dist: release archives, laid out as a plugin mirror (scripts/dist.sh).
DISTDIR        ?= dist
DIST_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64

.PHONY: all build deps test proto proto-check lint bench clean demo tools dist

all: build

build:
	@mkdir -p $(BINDIR)
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o $(BINDIR)/e2e ./cmd/e2e
	@for p in $(PLUGINS); do \
		echo "$(GO) build -o $(BINDIR)/e2e-backend-$$p ./plugins/$$p (version $$(cat plugins/$$p/VERSION))"; \
		$(GO) build -trimpath -ldflags "-X main.version=$$(cat plugins/$$p/VERSION) -X main.commit=$(COMMIT)" \
			-o $(BINDIR)/e2e-backend-$$p ./plugins/$$p || exit 1; \
	done

# Release archives of e2e and of each plugin per platform, with SHA256SUMS:
# $(DISTDIR)/NAME/VERSION/e2e-backend-NAME_VERSION_OS_ARCH.tar.gz, which
# `e2e plugin install --mirror $(DISTDIR) NAME@VERSION` installs from.
dist:
	./scripts/dist.sh "$(DISTDIR)" "$(COMMIT)" "$(PLUGINS)" $(DIST_PLATFORMS)

# Debian packages the demo and the tests need (debootstrap, OpenSSH server
# and client, sudo), installed when missing; see scripts/deps.sh.
deps:
	@./scripts/deps.sh

# The main job of the Quick start: a Docker cluster, a command on it, gone.
# The cluster is destroyed even when the command fails. The first create on
# a machine builds the node image (about a minute).
demo: deps build
	./$(BINDIR)/e2e create --backend docker -c quickstart
	./$(BINDIR)/e2e run -c quickstart -- uname -a; rc=$$?; ./$(BINDIR)/e2e destroy -c quickstart && exit $$rc

# -p 1: the Docker tests of several packages share one engine, and e2e clean
# in one of them must not see another's clusters as leftovers.
test: deps
	$(GO) test -count=1 -p 1 -timeout 30m ./...
	cd sdk && $(GO) test -count=1 ./...
	cd examples/nspawn && $(GO) test -count=1 ./...

tools:
	@mkdir -p $(TOOLS)
	cd tools && GOBIN=$(TOOLS) $(GO) install $(TOOLMOD) \
		github.com/bufbuild/buf/cmd/buf \
		google.golang.org/protobuf/cmd/protoc-gen-go \
		google.golang.org/grpc/cmd/protoc-gen-go-grpc \
		honnef.co/go/tools/cmd/staticcheck

# The protocol is defined in shared/proto; its Go code is generated into
# the SDK module ($(PROTO_GO)) with the generators pinned in tools/go.mod.
proto: tools
	cd shared/proto && PATH=$(TOOLS):$$PATH buf lint && PATH=$(TOOLS):$$PATH buf generate

# Fails when the committed generated code differs from a fresh generation.
proto-check: proto
	@git diff --exit-code -- $(PROTO_GO) shared/proto || { echo "generated code in $(PROTO_GO) is stale: run make proto and commit" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- $(PROTO_GO) shared/proto)" || { git status --porcelain -- $(PROTO_GO) shared/proto; echo "make proto produced files that are not committed" >&2; exit 1; }

lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$out" || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./... && $(TOOLS)/staticcheck ./...) || exit 1; done

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 20x ./internal/plugin/
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./cmd/e2e/
	$(GO) test -run '^$$' -bench BenchmarkCreate -benchtime 3x -timeout 20m ./plugins/docker
	$(GO) test -run '^$$' -bench BenchmarkCreateCalls -benchtime 1x -timeout 20m ./plugins/aws

# Removes build output and EVERY Docker container, network and volume
# labelled e2e.cluster-id on the engine: the live clusters of every user and
# every E2E_HOME included, not only what e2e's tests left behind. For the
# leftovers of interrupted runs only, use `e2e clean`.
clean:
	rm -rf $(BINDIR) .tools
	@ids=$$(docker ps -aq --filter label=e2e.cluster-id 2>/dev/null); [ -z "$$ids" ] || docker rm -f -v $$ids
	@ids=$$(docker network ls -q --filter label=e2e.cluster-id 2>/dev/null); [ -z "$$ids" ] || docker network rm $$ids
	@ids=$$(docker volume ls -q --filter label=e2e.cluster-id 2>/dev/null); [ -z "$$ids" ] || docker volume rm $$ids
