#!/usr/bin/env bash
# make k8stest: builds (or reuses) the cluster of scripts/k8s-build.sh,
# starts it under its own directory, imports the images, runs
# test/k8s against it and stops it, restoring the host, whatever
# happened.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH=/usr/local/go/bin:$PATH
export K8S_PREFIX=${K8S_PREFIX:-ocigate-k8stest}
export K8S_SUBNET=${K8S_SUBNET:-77}
DIR=${K8S_DIR:-/var/lib/$K8S_PREFIX}
RUN_DIR=/run/$K8S_PREFIX-agent

cleanup() {
	local rc=$?
	"$ROOT/scripts/k8s-cluster.sh" down "$DIR" || rc=1
	rm -rf "$RUN_DIR" "/var/log/$K8S_PREFIX"
	podman rmi -f "localhost/$K8S_PREFIX/pause:1" "localhost/$K8S_PREFIX/busybox:1" "localhost/$K8S_PREFIX/bash:1" >/dev/null 2>&1 || true
	[ -d "/sys/fs/bpf/$K8S_PREFIX" ] && rm -rf "/sys/fs/bpf/$K8S_PREFIX"
	exit $rc
}

"$ROOT/scripts/k8s-cluster.sh" down "$DIR" # a run that was killed
trap cleanup EXIT
start=$SECONDS
# The node's gate (ocigate-hook --nri-gate in containerd's base runtime
# spec) is installed with ocigate-agentd install, from a copy that the
# tests' rebuilds leave alone.
(cd "$ROOT" && make -s build)
mkdir -p "$DIR/ocigate"
cp "$ROOT/bin/ocigate-agentd" "$ROOT/bin/ocigate-hook" "$DIR/ocigate/"
export K8S_OCIGATE_AGENTD=$DIR/ocigate/ocigate-agentd K8S_AGENT_RUN_DIR=$RUN_DIR K8S_EXEMPT=kube-system,$K8S_PREFIX-ocigate
"$ROOT/scripts/k8s-cluster.sh" up "$DIR"
echo "k8stest: cluster up in $((SECONDS - start)) s"
source "$DIR/env"
(cd "$ROOT" && make -s image)
"$ROOT/scripts/image.sh" test "$DIR/images"
cat >"$DIR/values.yaml" <<VALUES
exemptNamespaces: [kube-system, $K8S_PREFIX-exempt]
runtime:
  nriSocket: $K8S_NRI_SOCKET
  containerdSocket: $CONTAINERD_ADDRESS
host:
  runDir: $RUN_DIR
  pinDir: /sys/fs/bpf/$K8S_PREFIX
  eventsDir: /var/log/$K8S_PREFIX
kube:
  apiServerHost: 127.0.0.1
  apiServerPort: "6443"
VALUES
cd "$ROOT"
set -o pipefail
up_seconds=$((SECONDS - start))
OCIGATE_K8S=1 K8S_DIR=$DIR K8S_VALUES=$DIR/values.yaml K8S_EVENTS_FILE=/var/log/$K8S_PREFIX/events.jsonl K8S_RUN_DIR=$RUN_DIR \
	go test -count=1 -timeout 20m -v -run "${K8S_RUN:-.}" ./test/k8s/ 2>&1 | tee k8stest.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic|\s+\S+_test.go)'

# With OCIGATE_UPDATE_DOCS=1 the run's measures go to docs/k8stest.md.
if [ "${OCIGATE_UPDATE_DOCS:-}" = 1 ]; then
	source "$ROOT/scripts/lib.sh"
	m() { sed -n "s/.*$1.*/\\1/p" k8stest.log | head -1; }
	{
		echo "<!-- Written by OCIGATE_UPDATE_DOCS=1 make k8stest (scripts/k8stest.sh) from its last run; do not edit. -->"
		echo "# make k8stest measures"
		echo
		bench_header "scripts/k8stest.sh"
		echo
		echo "| measure | value |"
		echo "|---|---|"
		echo "| cold build of the cluster's binaries (scripts/k8s-build.sh, when it filled the cache) | $(cat "$(dirname "$K8S_BIN")/build-seconds" 2>/dev/null || echo unknown) s |"
		echo "| cluster up, images built and imported | ${up_seconds} s |"
		echo "| kubectl apply of a TracingPolicyNamespaced to its status loaded on the node | $(m 'kubectl apply to loaded on the node: \(.*\)') |"
		echo "| kubectl label of a running pod to the agent listing it on its new profile | $(m "kubectl label to the pod's new profile: \\(.*\\)") |"
		echo "| 5 000 pods created on 50 other nodes | $(m 'created 5000 pods on 50 other nodes in \(.*\)') |"
		echo "| ocigate-kube RSS before → after them (KiB) | $(m 'ocigate-kube RSS \([0-9]* KiB -> [0-9]* KiB\)') |"
		echo "| bytes ocigate-kube read meanwhile (its watch streams included) | $(m 'read \([0-9]*\) bytes meanwhile') |"
		echo "| agent RSS before → after them (KiB) | $(m 'agent RSS \([0-9]* KiB -> [0-9]* KiB\)') |"
		echo "| tests passed | $(grep -c '^--- PASS' k8stest.log) |"
	} >docs/k8stest.md
	echo "k8stest: wrote docs/k8stest.md"
fi
