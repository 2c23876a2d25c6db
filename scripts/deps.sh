#!/usr/bin/env bash
# Installs the Debian packages ocigate's build, tests, demo and benchmarks
# need, plus any named on the command line (scripts/vmtest.sh adds qemu).
# Idempotent: apt-get runs only when something is missing.
set -euo pipefail

if (($#)); then
	packages=("$@")
else
	packages=(clang llvm libbpf-dev bpftool runc podman busybox-static jq iproute2 hyperfine util-linux
		python3 perl openssl socat ncat netcat-traditional)
fi

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "deps: go is not on PATH (expected /usr/local/go/bin)" >&2; exit 1; }
echo "deps: ok"
