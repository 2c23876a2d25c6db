#!/usr/bin/env bash
# Installs the Debian 12 packages ocigate's build, tests (make test: every
# stage, vmtest included), demo and benchmarks need, or only the packages
# named on the command line. Idempotent: apt-get (update, then install)
# runs only when something is missing. Go itself is not a Debian package
# here: it is expected in /usr/local/go (go.mod's version); Go tools such
# as bpf2go come from the module proxy (go.mod's tool directives).
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH

if (($#)); then
	packages=("$@")
else
	packages=(
		# the Makefile: make, git (vet's file list, check-generate's diff),
		# ca-certificates (go downloads modules over HTTPS)
		make git ca-certificates
		# make generate (bpf2go): clang, llvm-strip (llvm), <bpf/*.h>
		# (libbpf-dev), the kernel's UAPI headers in
		# /usr/include/x86_64-linux-gnu (linux-libc-dev)
		clang llvm libbpf-dev linux-libc-dev
		# e2e: runc, podman, containerd and ctr (containerd), the static
		# busybox of every rootfs, jq for the seed filters
		runc podman containerd busybox-static jq
		# e2e TestTrustDocker: dockerd 20.10 and its client (the test runs
		# a dockerd of its own, with its own data root, and stops it)
		docker.io
		# e2e techniques and escapes on the host root: bash, dash, cp, tr,
		# mkfifo, grep, unshare and the dynamic loader are essential; these
		# are not
		python3 perl openssl socat ncat netcat-traditional util-linux
		# e2e precision corpora (test/e2e/corpus_test.go): the interpreters
		# attacks start shells from, and what benign patterns run (git
		# daemon, curl installers, script(1) pty sessions, gem and pip)
		ruby php-cli lua5.4 lua-socket nodejs git curl bsdutils python3-pip
		# make vmtest: qemu-system-x86_64 (its kernels are fetched by
		# scripts/vmtest.sh itself)
		qemu-system-x86
		# the package e2e (test/pkg): systemd-analyze verify of the unit
		systemd
		# make bench: hyperfine, bpftool, sysctl (procps)
		hyperfine bpftool procps
		# make k8stest: the cluster's etcd and CNI plugins (the rest of
		# the cluster is built from the module proxy: scripts/k8s-build.sh)
		etcd-server containernetworking-plugins
	)
fi

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	if [ "$(id -u)" != 0 ]; then
		echo "deps: missing ${missing[*]}; run scripts/deps.sh as root to install them" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "deps: go is not on PATH (expected /usr/local/go/bin)" >&2; exit 1; }
echo "deps: ok"
