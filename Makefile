# ocigate — see README.md. Every target installs what it needs.
GO      ?= go
BIN     := bin
PKGS    := ./...
export PATH := /usr/local/go/bin:$(PATH)
SHELL   := /bin/bash

.PHONY: all deps build package generate check-generate vet unit fuzz-short fuzz e2e precision vmtest test bench bench-events bench-ready bench-packets demo clean image k8stest

all: build

deps:
	@scripts/deps.sh

# What `version` and `--version` print: the release, the commit and the
# hash of the BPF objects the agent embeds (internal/buildinfo).
VERSION ?= 0.1.0
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD -- 2>/dev/null || echo -dirty)
BPFHASH := $(shell cat bpf/fallback_bpfel.o bpf/security_bpfel.o | sha256sum | cut -c1-12)
BUILDINFO := github.com/ocigate/ocigate/internal/buildinfo
LDFLAGS := -s -w -X $(BUILDINFO).Version=$(VERSION) -X $(BUILDINFO).Commit=$(COMMIT) -X $(BUILDINFO).BPFObjects=$(BPFHASH)
GOARCH  ?= amd64
export GOARCH

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="$(LDFLAGS)" -o $(BIN)/ocigate-hook ./cmd/hook
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="$(LDFLAGS)" -o $(BIN)/ocigate-agentd ./cmd/agentd
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="$(LDFLAGS)" -o $(BIN)/ocigate-runc ./cmd/runtime-wrapper
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="$(LDFLAGS)" -o $(BIN)/ocigate-kube ./cmd/kube

# The DaemonSet's image, localhost/ocigate/ocigate:VERSION, built without
# a registry (podman build FROM scratch) and saved as dist/images/*.tar;
# CONTAINERD_ADDRESS=SOCKET also imports it into that containerd's k8s.io
# namespace (docs/kubernetes.md).
image: build
	VERSION=$(VERSION) scripts/image.sh ocigate dist/images

# The Debian package dist/ocigate_VERSION_amd64.deb (packaging/nfpm.yaml,
# nfpm from go.mod's tool directive). amd64 only: see README's
# requirements for arm64.
package:
	@test "$(GOARCH)" = amd64 || { echo "make package: amd64 only; the BPF objects are built and tested for x86-64 kernels only (README, Requirements)"; exit 1; }
	$(MAKE) build
	mkdir -p dist/completion
	GOARCH= $(GO) run ./cmd/agentd completion bash > dist/completion/ocigate-agentd.bash
	VERSION=$(VERSION) $(GO) tool nfpm package --config packaging/nfpm.yaml --packager deb --target dist/
	@ls -l dist/*.deb

# Regenerates the BPF objects and bindings (needs clang); committed, so a
# plain build needs no clang.
generate:
	$(GO) generate ./bpf/

check-generate: generate
	@git diff --exit-code --stat -- bpf/ || { echo "make generate changed committed files in bpf/"; exit 1; }

# gofmt, go vet and the source checks: no function over 80 lines, doc
# comments that start with the name (internal/codecheck; a unit test too).
vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) test -count=1 ./internal/codecheck/

unit:
	$(GO) test -count=1 $(PKGS)

# The fuzzers: a short run in make test, longer with make fuzz.
FUZZTIME ?= 10s
FUZZERS  := ./profiles/policy/:FuzzParse ./profiles/:FuzzCompile ./runtime/oci/:FuzzReadState ./runtime/oci/:FuzzLoadContainer ./internal/api/:FuzzReadMessage ./internal/events/:FuzzAppendString \
	./internal/plainjson/:FuzzReadersMatchEncodingJSON ./runtime/oci/:FuzzDecodeMatchesEncodingJSON \
	./internal/api/wire/:FuzzParseVerdictMatchesEncodingJSON ./internal/hookreport/:FuzzAppendJSONMatchesEncodingJSON \
	./internal/hookreport/:FuzzDecodeMatchesEncodingJSON
fuzz-short:
	@GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz.sh $(FUZZERS)

fuzz:
	$(MAKE) fuzz-short FUZZTIME=5m

# Real runc and podman containers against a real agent; needs root. Then,
# alone (it installs into the host's default paths), the Debian package
# test: dpkg -i, the agent as its unit starts it, dpkg --purge.
e2e: build
	set -o pipefail; OCIGATE_E2E=1 OCIGATE_PRECISION_OUT=$(CURDIR)/docs/precision $(GO) test -count=1 -timeout 900s -v ./internal/testenv/ ./test/e2e/ 2>&1 \
		| tee e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)' || { scripts/test-failures.sh e2e.log; exit 1; }
	set -o pipefail; OCIGATE_E2E=1 $(GO) test -count=1 -timeout 600s -v ./test/pkg/ 2>&1 \
		| tee -a e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)' || { scripts/test-failures.sh e2e.log; exit 1; }

# Only the precision corpora (test/e2e/corpus_test.go): every attack
# stopped, every benign pattern untouched under the built-in default;
# writes this backend's column of docs/precision.md.
precision: build
	set -o pipefail; OCIGATE_E2E=1 OCIGATE_PRECISION_OUT=$(CURDIR)/docs/precision $(GO) test -count=1 -timeout 900s \
		-v -run TestPrecisionCorpora ./test/e2e/ 2>&1 | tee precision.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)' \
		|| { scripts/test-failures.sh precision.log; exit 1; }

# A real single-node Kubernetes cluster (containerd 2.4 with NRI, the
# kubelet and control plane v1.37, built once into
# /var/cache/ocigate-k8s: scripts/k8s-build.sh): the Helm chart, policies
# applied with kubectl, reverse shells in pods; the host is restored
# afterwards. Needs root.
k8stest:
	scripts/k8stest.sh

# Debian 6.1/6.12 cloud kernels under QEMU (TCG), with and without the BPF
# LSM, running test/vmtest/suite inside (real agent and hook); needs root.
vmtest:
	scripts/vmtest.sh

test: deps check-generate vet build unit fuzz-short e2e vmtest k8stest

# Under make test deps has installed everything: a test that finds a
# program missing fails, naming it (testenv.NeedTools), instead of skipping.
test: export OCIGATE_REQUIRE_TOOLS := 1

bench: deps build
	scripts/bench.sh

# Only the event throughput part of make bench.
bench-events: deps build
	scripts/bench-events.sh

# Only the agent ready time part of make bench.
bench-ready: deps build
	scripts/bench-ready.sh

# Only the per-packet points part of make bench.
bench-packets: deps build
	scripts/bench-packets.sh

demo: deps build
	scripts/demo.sh

clean:
	rm -rf $(BIN) dist e2e.log precision.log vmtest-logs
