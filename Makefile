# gkessh: the two commands a newcomer needs are `make demo` and `make test`.
GO          ?= go
BIN         ?= bin
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
# The commit's date, not the build's: the same commit builds the same bytes.
DATE        ?= $(shell git log -1 --format=%cI 2>/dev/null)
CLI         := github.com/gkessh/gkessh/internal/cli
LDFLAGS     := -X $(CLI).Version=$(VERSION) -X $(CLI).Commit=$(COMMIT) -X $(CLI).Date=$(DATE)
# What make dist builds gkessh for.
DIST_TARGETS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64 freebsd/amd64

.PHONY: build dist cross man test test-short demo bench lint fuzz clean

# urfave_cli_no_docs leaves out the man-page generator (and its markdown
# library): a smaller binary starts faster and maps less memory.
# CGO_ENABLED=0: one static binary, as the README says (TestStaticBuild).
build:
	CGO_ENABLED=0 $(GO) build -tags urfave_cli_no_docs -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/gkessh ./cmd/gce-emulator

# Release binaries of gkessh for every target, static and reproducible
# (-trimpath, the commit's date), with their SHA256SUMS, in dist/.
dist:
	rm -rf dist && mkdir dist
	set -e; for t in $(DIST_TARGETS); do \
		os=$${t%/*}; arch=$${t#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -tags urfave_cli_no_docs \
			-ldflags "-s -w $(LDFLAGS)" -o dist/gkessh-$$os-$$arch$$ext ./cmd/gkessh; \
	done
	cd dist && if command -v sha256sum >/dev/null; then sha256sum gkessh-*; else shasum -a 256 gkessh-*; fi > SHA256SUMS

# The man page, from the same command definitions as the help. Built
# without urfave_cli_no_docs: only that build has urfave's generator, and
# its hidden "gkessh man".
man:
	$(GO) run ./cmd/gkessh man > gkessh.1.tmp && mv gkessh.1.tmp gkessh.1

# Every package and its tests compile for macOS and Windows: go vet
# type-checks tests too. The emulator and the tests that run it are
# tagged unix, so Windows checks the rest.
cross:
	GOOS=darwin $(GO) vet ./...
	GOOS=windows $(GO) vet ./...
	@# and every test binary that builds there compiles and links
	d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && \
	for os in darwin windows; do GOOS=$$os $(GO) test -c -o "$$d/" ./... >/dev/null || exit 1; done

# Unit, fuzz-seed and end-to-end tests (the end-to-end ones need OpenSSH,
# rsync, socat and ansible-core; .ci/run installs them).
test: build
	$(GO) test -count=1 -timeout 20m ./...

# The inner loop: unit and emulator tests, no end-to-end runs with real
# OpenSSH or Ansible; under 30 s. -parallel 8: most parallel tests wait on
# the emulator (propagation delays, timeouts), not on the CPU, so more of
# them run at once than there are cores.
test-short:
	$(GO) test -short -count=1 -parallel 8 ./...

demo: build
	./scripts/demo.sh

# -timeout per package: the copy benchmarks add 7-8 minutes to
# internal/e2e's (BenchmarkCopy256 2-2.5, BenchmarkCopy200 5-6 at load
# 30-60 on the shared 2-core machine), whose others already run Ansible
# over 200 nodes.
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 45m ./...

lint:
	test -z "$$(gofmt -l .)"
	@# every package says its one job in a doc comment
	test -z "$$($(GO) list -f '{{if not .Doc}}{{.ImportPath}}{{end}}' ./...)"
	$(GO) vet ./...
	@# pinned by the tool directive in go.mod: works offline once in the module cache
	$(GO) tool staticcheck ./...

# Every fuzz target, as PACKAGE:FUNCTION.
FUZZ := \
	internal/iap:FuzzParseFrame \
	keys:FuzzParseLines \
	emulator:FuzzAgentParse \
	keys:FuzzParseLifetime \
	keys:FuzzParseDatetime \
	internal/gce:FuzzParseCache \
	internal/gce:FuzzCheckName \
	internal/gce:FuzzKubeEnv \
	sshconfig:FuzzMerge \
	tunnel:FuzzKexWatch \
	internal/iap:FuzzStreamHandle \
	sshclient:FuzzParseForward \
	internal/cli:FuzzHoistFlags \
	internal/gcloud:FuzzParseProperties \
	internal/auth:FuzzParseConfigHelper \
	internal/firewall:FuzzParsePorts \
	internal/audit:FuzzReadOnlyPort \
	internal/audit:FuzzReadOnlyRequests \
	internal/bootlog:FuzzScan \
	emulator:FuzzListFilter \
	internal/sftpcopy:FuzzPlainName \
	internal/cli:FuzzParseFileRef \
	emulator:FuzzRelayClientFrame \
	internal/transport:FuzzProxyReply \
	internal/fleet:FuzzCheckFilter

# Short coverage-guided runs of every fuzz target.
fuzz:
	set -e; for t in $(FUZZ); do \
		$(GO) test ./$${t%%:*} -run '^$$' -fuzz $${t#*:} -fuzztime 20s; \
	done

clean:
	rm -rf bin dist gkessh.1
