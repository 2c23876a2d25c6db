#!/usr/bin/env bash
# A single-node Kubernetes cluster on this host, for make k8stest: etcd,
# kube-apiserver on 127.0.0.1:6443, kube-controller-manager,
# kube-scheduler, containerd (with NRI) and the kubelet, every one with
# its state under DIR. The binaries come from scripts/k8s-build.sh's
# cache.
#
#   k8s-cluster.sh up DIR     start it; prints nothing, writes DIR/env
#   k8s-cluster.sh down DIR   stop it and restore what the kubelet and
#                             containerd changed on the host
#   k8s-cluster.sh restart DIR containerd|kubelet
#
# up records the host state the cluster changes (sysctls, iptables, the
# kubelet's fixed paths) in DIR/host; down puts it back and removes DIR.
# Names, ports and paths are prefixed with $K8S_PREFIX (default ocigate)
# so that several clusters never share one. With K8S_OCIGATE_AGENTD (a
# built ocigate-agentd, ocigate-hook beside it) containerd gets the node
# gate (gate below; K8S_AGENT_RUN_DIR, K8S_EXEMPT).
set -euo pipefail
export PATH=/usr/local/go/bin:/usr/sbin:/sbin:$PATH
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=${K8S_PREFIX:-ocigate}
NODE=${K8S_NODE:-$PREFIX-node}
ETCD_PORT=${K8S_ETCD_PORT:-23790}
SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
FIXED_PATHS=(/var/lib/kubelet /var/log/containers /var/log/pods /run/netns /etc/cni /opt/cni /var/run/nri /opt/nri)

log() { echo "k8s-cluster: $*" >&2; }

# pki makes the CA, the API server's serving certificate, the admin's
# client certificate (system:masters) and the service-account key.
pki() {
	local d=$1/pki
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$PREFIX-ca" \
		-keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
	cert "$d" apiserver "/CN=kube-apiserver" \
		"subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
	cert "$d" admin "/O=system:masters/CN=admin" "extendedKeyUsage=clientAuth"
	openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
	openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

cert() {
	local d=$1 name=$2 subj=$3 ext=$4
	openssl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$d/$name.key" -out "$d/$name.csr" 2>/dev/null
	openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
		-extfile <(echo "$ext") -out "$d/$name.crt" 2>/dev/null
}

kubeconfig() {
	local d=$1
	cat >"$d/admin.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: $PREFIX
  cluster: {server: "https://127.0.0.1:6443", certificate-authority: $d/pki/ca.crt}
users:
- name: admin
  user: {client-certificate: $d/pki/admin.crt, client-key: $d/pki/admin.key}
contexts:
- name: $PREFIX
  context: {cluster: $PREFIX, user: admin}
current-context: $PREFIX
KC
}

# save_host records what the cluster changes on the host.
save_host() {
	local d=$1/host s p
	mkdir -p "$d"
	for s in "${SYSCTLS[@]}"; do
		echo "$s=$(sysctl -n "$s")" >>"$d/sysctls"
	done
	iptables-save >"$d/iptables" 2>/dev/null || true
	ip6tables-save >"$d/ip6tables" 2>/dev/null || true
	for p in "${FIXED_PATHS[@]}"; do
		[ -e "$p" ] || echo "$p" >>"$d/absent"
	done
	ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' >"$d/links"
}

# containerd_config writes containerd's configuration and the pods' CNI
# network: a bridge with no gateway, so a pod's own network reaches no
# further than the other pods (a connect that enforcement misses fails
# with ENETUNREACH; nothing leaves the host).
containerd_config() {
	local d=$1
	mkdir -p "$d/cni" "$d/nri/plugins" "$d/nri/conf.d"
	cat >"$d/cni/10-$PREFIX.conflist" <<CNI
{"cniVersion": "1.0.0", "name": "$PREFIX", "plugins": [
  {"type": "bridge", "bridge": "${PREFIX:0:8}-br0", "isGateway": false, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.${K8S_SUBNET:-77}.0/24"}]]}},
  {"type": "loopback"}]}
CNI
	cat >"$d/containerd.toml" <<TOML
version = 3
root = "$d/containerd/root"
state = "/run/$PREFIX-containerd/state"
[grpc]
  address = "/run/$PREFIX-containerd/containerd.sock"
[ttrpc]
  address = "/run/$PREFIX-containerd/containerd.sock.ttrpc"
[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "localhost/$PREFIX/pause:1"
[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_unprivileged_ports = false
  enable_unprivileged_icmp = false
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    pod_annotations = ["ocigate.io/*"]
    container_annotations = ["ocigate.io/*"]
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      BinaryName = "/usr/sbin/runc"
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$d/cni"
[plugins."io.containerd.nri.v1.nri"]
  disable = false
  socket_path = "/run/$PREFIX-containerd/nri.sock"
  plugin_path = "$d/nri/plugins"
  plugin_config_path = "$d/nri/conf.d"
TOML
	gate "$d"
}

# gate installs ocigate's hook as the node's gate (ocigate-hook
# --nri-gate) with ocigate's own installer, as on a real node: a base
# runtime spec for CRI's runc whose createRuntime hook refuses every
# container while no agent answers, but for the pods of the exempt
# namespaces (docs/kubernetes.md, "No bootstrap deadlock"). Without
# K8S_OCIGATE_AGENTD (the built ocigate-agentd, with ocigate-hook beside
# it) the cluster has no gate.
gate() {
	local d=$1
	[ -n "${K8S_OCIGATE_AGENTD:-}" ] || return 0
	local run=${K8S_AGENT_RUN_DIR:-/run/$PREFIX-agent}
	"$K8S_OCIGATE_AGENTD" install containerd --nri-gate \
		--hook-path "$(dirname "$K8S_OCIGATE_AGENTD")/ocigate-hook" --socket "$run/agentd.sock" \
		--exempt-namespaces "${K8S_EXEMPT:-kube-system,$PREFIX-ocigate}" --exempt-file "$run/exempt-namespaces" \
		--config "$d/containerd.toml" --spec-file "$d/ocigate-base-spec.json" --state-dir "$d/ocigate-install" >"$d/ocigate-install.log"
}

kubelet_config() {
	local d=$1
	cat >"$d/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
failSwapOn: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix:///run/$PREFIX-containerd/containerd.sock
# the API server reaches it at the node's InternalIP (logs, exec); x509 only
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $d/pki/ca.crt}
authorization: {mode: AlwaysAllow}
resolvConf: /etc/resolv.conf
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
serializeImagePulls: false
YAML
}

# start NAME CMD...: runs CMD in the background, its output in
# DIR/logs/NAME.log, its pid in DIR/pids/NAME.
start() {
	local name=$1
	shift
	mkdir -p "$DIR/logs" "$DIR/pids"
	setsid "$@" >"$DIR/logs/$name.log" 2>&1 </dev/null &
	echo $! >"$DIR/pids/$name"
}

# wait_for WHAT SECONDS CMD...: until CMD succeeds.
wait_for() {
	local what=$1 secs=$2 i
	shift 2
	for ((i = 0; i < secs * 4; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.25
	done
	log "$what not up after ${secs}s; logs in $DIR/logs"
	return 1
}

up() {
	BIN=$("$HERE/k8s-build.sh")
	mkdir -p "$DIR"
	[ -e "$DIR/host/sysctls" ] || save_host "$DIR"
	pki "$DIR"
	kubeconfig "$DIR"
	containerd_config "$DIR"
	kubelet_config "$DIR"
	cat >"$DIR/env" <<ENV
export KUBECONFIG=$DIR/admin.kubeconfig
export K8S_BIN=$BIN
export CONTAINERD_ADDRESS=/run/$PREFIX-containerd/containerd.sock
export K8S_NRI_SOCKET=/run/$PREFIX-containerd/nri.sock
export K8S_NODE=$NODE
export PATH=$BIN:\$PATH
ENV
	start etcd etcd --name "$PREFIX" --data-dir "$DIR/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
		--initial-cluster "$PREFIX=http://127.0.0.1:$((ETCD_PORT + 1))"
	start_containerd
	local p=$DIR/pki
	start kube-apiserver "$BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
		--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port 6443 \
		--endpoint-reconciler-type none --allow-privileged \
		--tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" --client-ca-file "$p/ca.crt" \
		--service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
		--service-account-issuer https://kubernetes.default.svc --service-cluster-ip-range 10.96.0.0/16 \
		--kubelet-client-certificate "$p/admin.crt" --kubelet-client-key "$p/admin.key" \
		--authorization-mode Node,RBAC --profiling=false --kubelet-preferred-address-types InternalIP
	wait_for kube-apiserver 90 "$BIN/kubectl" --kubeconfig "$DIR/admin.kubeconfig" get --raw /readyz
	start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$DIR/admin.kubeconfig" \
		--bind-address 127.0.0.1 --leader-elect=false --service-account-private-key-file "$p/sa.key" \
		--root-ca-file "$p/ca.crt" --controllers '*,-nodeipam'
	start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$DIR/admin.kubeconfig" \
		--bind-address 127.0.0.1 --leader-elect=false
	wait_for containerd 30 "$BIN/ctr" --address "/run/$PREFIX-containerd/containerd.sock" version
	start_kubelet
	wait_for "node $NODE" 120 node_ready
	log "up: KUBECONFIG=$DIR/admin.kubeconfig (source $DIR/env)"
}

start_containerd() {
	# the shim is found on PATH: ours, not Debian's containerd 1.6 shim
	start containerd env PATH="$BIN:$PATH" "$BIN/containerd" --config "$DIR/containerd.toml"
}

start_kubelet() {
	start kubelet "$BIN/kubelet" --config "$DIR/kubelet.yaml" --kubeconfig "$DIR/admin.kubeconfig" \
		--hostname-override "$NODE" --root-dir "$DIR/kubelet"
}

# restart stops and starts containerd or the kubelet; running pods stay
# (their shims outlive containerd).
restart() {
	source "$DIR/env"
	BIN=$K8S_BIN
	case $NAME in
	containerd) stop containerd 20 && start_containerd ;;
	kubelet) stop kubelet 20 && start_kubelet ;;
	*) log "restart: containerd or kubelet, not $NAME" && exit 2 ;;
	esac
	wait_for "node $NODE" 120 node_ready
}

node_ready() {
	"$BIN/kubectl" --kubeconfig "$DIR/admin.kubeconfig" get node "$NODE" \
		-o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}

# stop NAME [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 10).
stop() {
	local f=$DIR/pids/$1 pid i
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < ${2:-10} * 4; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.25
	done
	kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
	rm -f "$f"
}

# kill_pods stops every pod's shim and its processes.
kill_pods() {
	local sock=/run/$PREFIX-containerd/containerd.sock
	if [ -S "$sock" ] && [ -x "${K8S_BIN:-}/crictl" ]; then
		timeout 60 "$K8S_BIN/crictl" -r "unix://$sock" rmp -fa >/dev/null 2>&1 || true
	fi
	# shims outlive containerd: find them by their --address
	local pid
	for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $sock" || true); do
		kill -KILL "$pid" 2>/dev/null || true
	done
}

restore_host() {
	local d=$DIR/host line p l
	[ -d "$d" ] || return 0
	while IFS= read -r line; do sysctl -qw "$line" >/dev/null || true; done <"$d/sysctls"
	drop_kube_chains iptables "$d/iptables"
	drop_kube_chains ip6tables "$d/ip6tables"
	if [ -f "$d/absent" ]; then
		while IFS= read -r p; do
			umount_under "$p"
			rm -rf "$p"
		done <"$d/absent"
	fi
	for l in $(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//'); do
		grep -qx "$l" "$d/links" || ip link delete "$l" 2>/dev/null || true
	done
}

# drop_kube_chains IPT SAVED removes the KUBE-* chains, and the rules
# that jump to them, that SAVED (iptables-save before up) does not have:
# iptables-restore alone leaves the tables the dump does not mention.
drop_kube_chains() {
	local ipt=$1 saved=$2 t rule chain
	for t in filter nat mangle; do
		{ "$ipt-save" -t "$t" 2>/dev/null | grep -E '^-A .* -j KUBE-' || true; } | while IFS= read -r rule; do
			grep -qxF -- "$rule" "$saved" 2>/dev/null && continue
			eval "$ipt -t $t -D ${rule#-A }" 2>/dev/null || true
		done
		for chain in $("$ipt-save" -t "$t" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do
			grep -q "^:$chain " "$saved" 2>/dev/null && continue
			"$ipt" -t "$t" -F "$chain" 2>/dev/null || true
		done
		for chain in $("$ipt-save" -t "$t" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do
			grep -q "^:$chain " "$saved" 2>/dev/null && continue
			"$ipt" -t "$t" -X "$chain" 2>/dev/null || true
		done
	done
}

# umount_under unmounts everything mounted at or below a path, deepest
# first.
umount_under() {
	local m
	for m in $(awk -v p="$1" '$2 == p || index($2, p "/") == 1 {print $2}' /proc/self/mounts | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
}

down() {
	[ -d "$DIR" ] || return 0
	[ -f "$DIR/env" ] && source "$DIR/env"
	stop kubelet 20
	kill_pods
	stop kube-scheduler
	stop kube-controller-manager
	stop containerd 20
	stop kube-apiserver 40
	stop etcd
	umount_under "$DIR"
	umount_under "/run/$PREFIX-containerd"
	restore_host
	rm -rf "$DIR" "/run/$PREFIX-containerd"
	log "down: host restored"
}

case ${1:-} in
up | down)
	DIR=${2:?usage: k8s-cluster.sh up|down DIR}
	"$1"
	;;
restart)
	DIR=${2:?usage: k8s-cluster.sh restart DIR containerd|kubelet}
	NAME=${3:?usage: k8s-cluster.sh restart DIR containerd|kubelet}
	restart
	;;
*)
	echo "usage: k8s-cluster.sh up|down DIR" >&2
	exit 2
	;;
esac
