# gkessh: the two commands a newcomer needs are `make demo` and `make test`.
GO          ?= go
BIN         ?= bin
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X github.com/gkessh/gkessh/internal/cli.Version=$(VERSION)

.PHONY: build test test-short demo bench lint fuzz clean

# urfave_cli_no_docs leaves out the man-page generator (and its markdown
# library): a smaller binary starts faster and maps less memory.
# CGO_ENABLED=0: one static binary, as the README says (TestStaticBuild).
build:
	CGO_ENABLED=0 $(GO) build -tags urfave_cli_no_docs -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/gkessh ./cmd/gce-emulator

# Unit, fuzz-seed and end-to-end tests (the end-to-end ones need OpenSSH,
# rsync, socat and ansible-core; .ci/run installs them).
test: build
	$(GO) test -count=1 -timeout 20m ./...

# The inner loop: unit and emulator tests, no end-to-end runs with real
# OpenSSH or Ansible; under 30 s.
test-short:
	$(GO) test -short -count=1 ./...

demo: build
	./scripts/demo.sh

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 20m ./...

lint:
	test -z "$$(gofmt -l .)"
	@# every package says its one job in a doc comment
	test -z "$$($(GO) list -f '{{if not .Doc}}{{.ImportPath}}{{end}}' ./...)"
	$(GO) vet ./...
	@# pinned by the tool directive in go.mod: works offline once in the module cache
	$(GO) tool staticcheck ./...

# Short coverage-guided runs of every fuzz target.
fuzz:
	$(GO) test ./internal/iap -run '^$$' -fuzz FuzzParseFrame -fuzztime 20s
	$(GO) test ./keys -run '^$$' -fuzz FuzzParseLines -fuzztime 20s
	$(GO) test ./emulator -run '^$$' -fuzz FuzzAgentParse -fuzztime 20s
	$(GO) test ./keys -run '^$$' -fuzz FuzzParseLifetime -fuzztime 20s
	$(GO) test ./gce -run '^$$' -fuzz FuzzParseCache -fuzztime 20s
	$(GO) test ./gce -run '^$$' -fuzz FuzzCheckName -fuzztime 20s
	$(GO) test ./sshconfig -run '^$$' -fuzz FuzzMerge -fuzztime 20s
	$(GO) test ./internal/iap -run '^$$' -fuzz FuzzStreamHandle -fuzztime 20s
	$(GO) test ./sshclient -run '^$$' -fuzz FuzzParseForward -fuzztime 20s
	$(GO) test ./internal/cli -run '^$$' -fuzz FuzzHoistFlags -fuzztime 20s
	$(GO) test ./gcloud -run '^$$' -fuzz FuzzParseProperties -fuzztime 20s
	$(GO) test ./auth -run '^$$' -fuzz FuzzParseConfigHelper -fuzztime 20s
	$(GO) test ./firewall -run '^$$' -fuzz FuzzParsePorts -fuzztime 20s
	$(GO) test ./audit -run '^$$' -fuzz FuzzReadOnlyPort -fuzztime 20s
	$(GO) test ./audit -run '^$$' -fuzz FuzzReadOnlyRequests -fuzztime 20s
	$(GO) test ./bootlog -run '^$$' -fuzz FuzzScan -fuzztime 20s
	$(GO) test ./emulator -run '^$$' -fuzz FuzzListFilter -fuzztime 20s

clean:
	rm -rf bin
