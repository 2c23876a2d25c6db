#!/usr/bin/env bash
# Builds container images without a registry: podman build FROM scratch,
# saved as docker archives into OUT, and imported into containerd's
# k8s.io namespace when CONTAINERD_ADDRESS is set (ctr from PATH).
#
#   image.sh ocigate OUT   localhost/ocigate/ocigate:$VERSION: the static
#                          ocigate-agentd, ocigate-hook and ocigate-kube
#                          of bin/ (make image)
#   image.sh test OUT      the images make k8stest runs: pause (the pod
#                          sandbox), busybox-static (also as /usr/bin/nc),
#                          and bash with its libraries (for /dev/tcp), as
#                          localhost/$K8S_PREFIX/NAME:1
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=${VERSION:-0.1.0}
PREFIX=${K8S_PREFIX:-ocigate}

log() { echo "image: $*" >&2; }

# build NAME CONTEXT: podman build of CONTEXT/Containerfile, saved and
# imported.
build() {
	local name=$1 ctx=$2 out=$3 file
	podman build -q --network none -t "$name" -f "$ctx/Containerfile" "$ctx" >/dev/null
	file=$out/$(echo "$name" | tr '/:' '__').tar
	rm -f "$file"
	podman save -q --format docker-archive -o "$file" "$name"
	if [ -n "${CONTAINERD_ADDRESS:-}" ]; then
		ctr --address "$CONTAINERD_ADDRESS" -n k8s.io images import --no-unpack=false "$file" >/dev/null
	fi
	log "$name ($file)"
}

busybox_rootfs() {
	local dir=$1 a
	mkdir -p "$dir/bin" "$dir/tmp"
	cp /bin/busybox "$dir/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ -e "$dir/bin/$a" ] || ln -s busybox "$dir/bin/$a"
	done
}

ocigate_image() {
	local out=$1 ctx
	ctx=$(mktemp -d)
	trap 'rm -rf "$ctx"' RETURN
	for b in ocigate-agentd ocigate-hook ocigate-kube; do
		[ -x "$ROOT/bin/$b" ] || { log "bin/$b missing: make build first"; exit 1; }
		cp "$ROOT/bin/$b" "$ctx/"
	done
	mkdir -p "$ctx/tmp"
	cat >"$ctx/Containerfile" <<CF
FROM scratch
COPY ocigate-agentd ocigate-hook ocigate-kube /
COPY tmp /tmp
LABEL org.opencontainers.image.title=ocigate org.opencontainers.image.version=$VERSION
ENTRYPOINT ["/ocigate-agentd"]
CF
	build "localhost/ocigate/ocigate:$VERSION" "$ctx" "$out"
}

test_images() {
	local out=$1 ctx lib
	ctx=$(mktemp -d)
	trap 'rm -rf "$ctx"' RETURN
	busybox_rootfs "$ctx/pause/rootfs"
	printf 'FROM scratch\nCOPY rootfs /\nENTRYPOINT ["/bin/sleep", "2147483647"]\n' >"$ctx/pause/Containerfile"
	build "localhost/$PREFIX/pause:1" "$ctx/pause" "$out"
	busybox_rootfs "$ctx/busybox/rootfs"
	# nc at the path the seed policies name (matchBinaries /usr/bin/nc)
	mkdir -p "$ctx/busybox/rootfs/usr/bin"
	cp /bin/busybox "$ctx/busybox/rootfs/usr/bin/nc"
	printf 'FROM scratch\nCOPY rootfs /\nCMD ["/bin/sh"]\n' >"$ctx/busybox/Containerfile"
	build "localhost/$PREFIX/busybox:1" "$ctx/busybox" "$out"
	busybox_rootfs "$ctx/bash/rootfs"
	rm -f "$ctx/bash/rootfs/bin/bash" "$ctx/bash/rootfs/bin/sh"
	mkdir -p "$ctx/bash/rootfs/usr/bin"
	cp /bin/bash "$ctx/bash/rootfs/bin/bash"
	ln -s bash "$ctx/bash/rootfs/bin/sh"
	for lib in $(ldd /bin/bash | grep -oE '/[^ ]+'); do
		mkdir -p "$ctx/bash/rootfs$(dirname "$lib")"
		cp -L "$lib" "$ctx/bash/rootfs$lib"
	done
	printf 'FROM scratch\nCOPY rootfs /\nCMD ["/bin/bash"]\n' >"$ctx/bash/Containerfile"
	build "localhost/$PREFIX/bash:1" "$ctx/bash" "$out"
}

case ${1:-} in
ocigate)
	mkdir -p "${2:?usage: image.sh ocigate|test OUT}"
	ocigate_image "$2"
	;;
test)
	mkdir -p "${2:?usage: image.sh ocigate|test OUT}"
	test_images "$2"
	;;
*)
	echo "usage: image.sh ocigate|test OUT" >&2
	exit 2
	;;
esac
