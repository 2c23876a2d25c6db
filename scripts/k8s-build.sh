#!/usr/bin/env bash
# Builds the single-node Kubernetes cluster make k8stest runs, from the Go
# module proxy only (no registry, no release downloads): containerd,
# containerd-shim-runc-v2 and ctr; crictl; kube-apiserver, kubelet,
# kube-controller-manager, kube-scheduler and kubectl. The binaries go to
# a cache directory keyed by the versions ($OCIGATE_K8S_CACHE, default
# /var/cache/ocigate-k8s/<versions>/bin) that survives between sessions on
# one machine; a complete cache is reused as is. Prints the bin directory.
#
# The Kubernetes binaries come from a throwaway module that requires
# k8s.io/kubernetes and replaces each k8s.io staging module (the replace
# directives of k8s.io/kubernetes's own go.mod, which point into
# ./staging) with its published v0.X.Y; all five are built in one go build.
# The version variables are set with -ldflags -X for component-base and
# client-go alike, or kubectl cannot parse the server's version.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH

CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
CRICTL_VERSION=${CRICTL_VERSION:-v1.37.0}
K8S_VERSION=${K8S_VERSION:-v1.37.2}
STAGING_VERSION=v0.${K8S_VERSION#v1.}
KEY=containerd-$CONTAINERD_VERSION.crictl-$CRICTL_VERSION.k8s-$K8S_VERSION
CACHE=${OCIGATE_K8S_CACHE:-/var/cache/ocigate-k8s/$KEY}
BIN=$CACHE/bin
CONTAINERD_BINS=(containerd containerd-shim-runc-v2 ctr)
K8S_BINS=(kube-apiserver kubelet kube-controller-manager kube-scheduler kubectl)

log() { echo "k8s-build: $*" >&2; }

complete() {
	local b
	for b in "${CONTAINERD_BINS[@]}" crictl "${K8S_BINS[@]}"; do
		[ -x "$BIN/$b" ] || return 1
	done
}

build_containerd() {
	local b
	for b in "${CONTAINERD_BINS[@]}"; do
		[ -x "$BIN/$b" ] && continue
		log "go install containerd/v2/cmd/$b@$CONTAINERD_VERSION"
		GOBIN=$BIN go install -tags no_btrfs \
			"github.com/containerd/containerd/v2/cmd/$b@$CONTAINERD_VERSION"
	done
	if [ ! -x "$BIN/crictl" ]; then
		log "go install cri-tools/cmd/crictl@$CRICTL_VERSION"
		GOBIN=$BIN go install "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
	fi
}

# staging_modules prints the k8s.io modules k8s.io/kubernetes's go.mod
# replaces with a path into ./staging.
staging_modules() {
	local mod
	mod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
	[ -f "$mod" ] || { log "no go.mod for k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
	grep -oE '^[[:space:]]*k8s\.io/[a-z0-9./-]+ => \./staging/' "$mod" | awk '{print $1}' | sort -u
}

version_ldflags() {
	local minor=${K8S_VERSION#v1.} pkg key val
	minor=${minor%%.*}
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		for kv in "gitVersion=$K8S_VERSION" gitMajor=1 "gitMinor=$minor" \
			"gitCommit=$K8S_VERSION" gitTreeState=clean "buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
			key=${kv%%=*} val=${kv#*=}
			printf -- "-X %s.%s=%s " "$pkg" "$key" "$val"
		done
	done
}

build_kubernetes() {
	local b missing=0 mods m src
	for b in "${K8S_BINS[@]}"; do [ -x "$BIN/$b" ] || missing=1; done
	((missing)) || return 0
	src=$CACHE/src
	rm -rf "$src" && mkdir -p "$src"
	mods=$(staging_modules)
	[ -n "$mods" ] || { log "found no staging modules in k8s.io/kubernetes's go.mod"; exit 1; }
	{
		echo "module ocigate.local/k8sbuild"
		echo
		echo "go 1.26"
		echo
		echo "require k8s.io/kubernetes $K8S_VERSION"
		echo
		for m in $mods; do echo "replace $m => $m $STAGING_VERSION"; done
	} >"$src/go.mod"
	cat >"$src/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
	log "resolving k8s.io/kubernetes@$K8S_VERSION with $(wc -w <<<"$mods") staging modules at $STAGING_VERSION"
	(cd "$src" && GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>"$src/tidy.log" || { cat "$src/tidy.log" >&2; exit 1; })
	log "go build ${K8S_BINS[*]} (about 11 min cold on 2 cores)"
	(cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -tags tools \
		-ldflags "-s -w $(version_ldflags)" -o "$BIN/" \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl)
}

main() {
	mkdir -p "$BIN"
	if complete; then
		log "reusing $BIN"
		echo "$BIN"
		return
	fi
	local start=$SECONDS
	build_containerd
	build_kubernetes
	complete || { log "build incomplete in $BIN"; exit 1; }
	log "built in $((SECONDS - start)) s into $BIN"
	echo "$((SECONDS - start))" >"$CACHE/build-seconds"
	echo "$BIN"
}

main "$@"
