#!/usr/bin/env bash
# make vmtest: boots Debian's 6.1 and 6.12 cloud kernels under QEMU (TCG),
# each with and without the BPF LSM and with the agent forced to the
# fallback, runs the backend suite (test/vmtest/suite) inside with the real
# agent and hook, and turns its marker lines into a pass/fail summary and a
# verifier table (verified instructions per program on the host's kernel
# and every boot; the run fails over enforcer.VerifierBudget*). See
# test/vmtest/README.md.
#
# Environment:
#   OCIGATE_VM_CACHE     kernel cache (default /var/cache/ocigate-vmtest)
#   OCIGATE_VM_LOGS      logs and summary.md (default vmtest-logs)
#   OCIGATE_VM_DOCS      where a run of the whole default matrix also writes
#                        its summary (default docs/vmtest.md; empty: nowhere)
#   VMTEST_KERNELS       kernels to boot: "6.1 6.12" (default both)
#   VMTEST_LSM           settings to boot each kernel with (default "bpf nobpf fallback"):
#                          bpf       lsm=lockdown,capability,yama,bpf  expect VMTEST_EXPECT_BPF
#                          nobpf     lsm=lockdown,capability,yama      expect VMTEST_EXPECT_NOBPF
#                          fallback  as nobpf, agent forced to --enforcer fallback, expect fallback
#   VMTEST_EXPECT_BPF    expected backends with the BPF LSM (default lsm)
#   VMTEST_EXPECT_NOBPF  expected backends without it (default fmod_ret)
#                        (a backend, optionally with per-point overrides:
#                        "lsm,exec=fmod_ret"; points connect sendmsg bind
#                        sock_create exec)
#   VMTEST_ENFORCER      passed to the agent as --enforcer (default: none,
#                        i.e. the agent's default, auto)
#   VMTEST_JOBS          boots run at once (default 2)
#   VMTEST_BOOT_TIMEOUT  seconds per boot (default 240); the agent may take
#                        up to 3/4 of it to load its programs
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH=/usr/local/go/bin:$PATH

CACHE=${OCIGATE_VM_CACHE:-/var/cache/ocigate-vmtest}
LOGS=${OCIGATE_VM_LOGS:-vmtest-logs}
DOCS=${OCIGATE_VM_DOCS-$ROOT/docs/vmtest.md}
KERNELS=${VMTEST_KERNELS:-6.1 6.12}
LSMS=${VMTEST_LSM:-bpf nobpf fallback}
EXPECT_BPF=${VMTEST_EXPECT_BPF:-lsm}
EXPECT_NOBPF=${VMTEST_EXPECT_NOBPF:-fmod_ret}
ENFORCER=${VMTEST_ENFORCER:-}
JOBS=${VMTEST_JOBS:-2}
BOOT_TIMEOUT=${VMTEST_BOOT_TIMEOUT:-240}

log() { echo "vmtest: $*"; }
die() { echo "vmtest: $*" >&2; exit 1; }

# --- host packages ---------------------------------------------------------

deps() {
	"$(dirname "${BASH_SOURCE[0]}")/deps.sh" qemu-system-x86 busybox-static
}

# --- kernels ---------------------------------------------------------------

# kernel_regex VERSION: package names of Debian 12's cloud kernel series.
kernel_regex() {
	case $1 in
	6.1) echo '^linux-image-6\.1\.0-[0-9]+-cloud-amd64(-unsigned)?$' ;;
	6.12) echo '^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64(-unsigned)?$' ;;
	*) die "unknown kernel series $1 (want 6.1 or 6.12)" ;;
	esac
}

# newest_pkg VERSION: the newest package of the series in the apt index,
# the signed one when both exist (both carry /boot/vmlinuz-*).
newest_pkg() {
	local re base
	re=$(kernel_regex "$1")
	base=$(apt-cache search --names-only "$re" 2>/dev/null | awk '{print $1}' | grep -E "$re" |
		sed 's/-unsigned$//' | sort -uV | tail -n 1)
	[ -n "$base" ] || return 0
	if apt-cache show "$base" >/dev/null 2>&1; then
		echo "$base"
	else
		echo "$base-unsigned"
	fi
}

# cached_pkg VERSION: the newest package of the series already extracted.
cached_pkg() {
	local re
	re=$(kernel_regex "$1")
	find "$CACHE" -mindepth 2 -maxdepth 2 -name vmlinuz -printf '%h\n' 2>/dev/null |
		xargs -r -n1 basename | grep -E "$re" | sort -V | tail -n 1 || true
}

# fetch_kernel VERSION: prints the cache directory holding vmlinuz, config
# and release for the newest kernel of the series, downloading it only when
# it is not cached.
fetch_kernel() {
	local ver=$1 pkg dir deb rel tmp
	pkg=$(newest_pkg "$ver")
	if [ -z "$pkg" ]; then
		pkg=$(cached_pkg "$ver")
		if [ -z "$pkg" ]; then
			log "no $ver cloud kernel in the apt index; apt-get update" >&2
			apt-get update -qq >&2
			pkg=$(newest_pkg "$ver")
		fi
	fi
	[ -n "$pkg" ] || die "no linux-image $ver cloud-amd64 package found"
	dir=$CACHE/$pkg
	if [ ! -s "$dir/vmlinuz" ]; then
		mkdir -p "$CACHE/debs"
		deb=$(find "$CACHE/debs" -maxdepth 1 -name "${pkg}_*.deb" | sort -V | tail -n 1)
		if [ -z "$deb" ]; then
			log "downloading $pkg" >&2
			if ! (cd "$CACHE/debs" && apt-get download -q "$pkg" >&2); then
				local old
				old=$(cached_pkg "$ver")
				[ -n "$old" ] || die "apt-get download $pkg failed"
				log "WARNING: apt-get download $pkg failed; using the cached $old" >&2
				echo "$CACHE/$old"
				return 0
			fi
			deb=$(find "$CACHE/debs" -maxdepth 1 -name "${pkg}_*.deb" | sort -V | tail -n 1)
		fi
		tmp=$(mktemp -d "$CACHE/.extract.XXXXXX")
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' './boot/config-*'
		rel=$(basename "$(ls "$tmp"/boot/vmlinuz-*)")
		rel=${rel#vmlinuz-}
		mkdir -p "$dir"
		mv "$tmp/boot/config-$rel" "$dir/config"
		echo "$rel" >"$dir/release"
		basename "$deb" >"$dir/deb"
		mv "$tmp/boot/vmlinuz-$rel" "$dir/vmlinuz"
		rm -rf "$tmp"
	fi
	echo "$dir"
}

# check_config DIR: the kernel options the guest relies on, built in (the
# guest loads no modules).
check_config() {
	local dir=$1 opt bad=()
	for opt in CONFIG_DEBUG_INFO_BTF CONFIG_BPF_SYSCALL CONFIG_BPF_LSM CONFIG_BPF_JIT CONFIG_CGROUP_BPF \
		CONFIG_BLK_DEV_INITRD CONFIG_RD_GZIP CONFIG_DEVTMPFS CONFIG_TMPFS CONFIG_SERIAL_8250_CONSOLE \
		CONFIG_SECURITYFS CONFIG_FTRACE_SYSCALLS CONFIG_INET CONFIG_PACKET; do
		grep -q "^$opt=y" "$dir/config" || bad+=("$opt")
	done
	((${#bad[@]} == 0)) || log "WARNING: $(cat "$dir/release"): not built in: ${bad[*]}"
}

# --- guest payload ---------------------------------------------------------

build_payload() {
	local work=$1 stage=$1/stage a
	mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,root}
	(
		cd "$ROOT"
		export CGO_ENABLED=0
		go build -trimpath -ldflags="-s -w" -o "$stage/bin/ocigate-agentd" ./cmd/agentd
		go build -trimpath -ldflags="-s -w" -o "$stage/bin/ocigate-hook" ./cmd/hook
		go build -trimpath -ldflags="-s -w" -o "$stage/suite" ./test/vmtest/suite
		go build -trimpath -o "$work/mkinitramfs" ./test/vmtest/mkinitramfs
	)
	cp /bin/busybox "$stage/bin/busybox"
	for a in $(/bin/busybox --list-full); do
		[ -e "$stage/$a" ] || [ -L "$stage/$a" ] || ln -s /bin/busybox "$stage/$a"
	done
	install -m 0755 "$ROOT/test/vmtest/init" "$stage/init"
	echo "root:x:0:0:root:/root:/bin/sh" >"$stage/etc/passwd"
	echo "root:x:0:" >"$stage/etc/group"
	"$work/mkinitramfs" -o "$work/initrd.gz" \
		-dev dev/console:c:5:1:0600 -dev dev/null:c:1:3:0666 -dev dev/ttyS0:c:4:64:0600 -dev dev/ttyS1:c:4:65:0600 \
		"$stage"
}

# --- boots -----------------------------------------------------------------

# boot NAME KDIR LSMSET: one guest; writes LOGS/NAME/{console.log,markers.log,
# qemu.err,rc,seconds}.
boot() {
	local name=$1 kdir=$2 lsmset=$3 dir=$LOGS/$1 lsm expect enforcer=$ENFORCER rc=0 start
	mkdir -p "$dir"
	rm -f "$dir"/*
	case $lsmset in
	bpf) lsm=lockdown,capability,yama,bpf expect=$EXPECT_BPF ;;
	nobpf) lsm=lockdown,capability,yama expect=$EXPECT_NOBPF ;;
	fallback) lsm=lockdown,capability,yama expect=fallback enforcer=fallback ;;
	esac
	local append="console=ttyS0 panic=-1 quiet lsm=$lsm ocigate.expect=$expect"
	append+=" ocigate.agent_timeout=$((BOOT_TIMEOUT * 3 / 4))s"
	[ -z "$enforcer" ] || append+=" ocigate.enforcer=$enforcer"
	echo "$append" >"$dir/cmdline"
	start=$(date +%s%N)
	# One host thread per guest (thread=single): JOBS guests already keep
	# the cores busy, and the guest kernel's code patching (int3 text pokes)
	# met a stale translation on another vCPU thread once (an Oops).
	timeout -k 10 "$BOOT_TIMEOUT" qemu-system-x86_64 -accel tcg,thread=single -cpu max -m 1024 -smp 2 \
		-nographic -nodefaults -no-user-config -no-reboot \
		-kernel "$kdir/vmlinuz" -initrd "$WORK/initrd.gz" -append "$append" \
		-serial stdio -serial "file:$dir/markers.log" \
		</dev/null >"$dir/console.log" 2>"$dir/qemu.err" || rc=$?
	echo "$rc" >"$dir/rc"
	echo $((($(date +%s%N) - start + 500000000) / 1000000000)) >"$dir/seconds"
	log "$name: qemu exit $rc after $(cat "$dir/seconds")s"
}

# host_verifier: the verifier table's column of this machine's own kernel:
# the suite's verifier mode, run natively; writes LOGS/host/{console.log,
# markers.log,rc,seconds} like a boot.
host_verifier() {
	local dir=$LOGS/host rc=0 start
	mkdir -p "$dir"
	rm -f "$dir"/*
	start=$(date +%s)
	timeout -k 10 "$BOOT_TIMEOUT" "$WORK/stage/suite" verifier --markers "$dir/markers.log" \
		</dev/null >"$dir/console.log" 2>&1 || rc=$?
	echo "$rc" >"$dir/rc"
	echo $(($(date +%s) - start)) >"$dir/seconds"
	log "host $(uname -r): verifier measured in $(cat "$dir/seconds")s (exit $rc)"
}

# markers NAME: the guest's marker lines (the second serial port, else the
# console).
markers() {
	local dir=$LOGS/$1
	if grep -q '^VMTEST-' "$dir/markers.log" 2>/dev/null; then
		tr -d '\r' <"$dir/markers.log" | grep '^VMTEST-'
	else
		tr -d '\r' <"$dir/console.log" 2>/dev/null | grep '^VMTEST-' || true
	fi
}

# verdict NAME: PASS when the guest printed VMTEST-RESULT PASS, no scenario
# failed and QEMU exited by itself.
verdict() {
	local m
	m=$(markers "$1")
	if [ "$(cat "$LOGS/$1/rc")" = 0 ] && grep -qx 'VMTEST-RESULT PASS' <<<"$m" &&
		! grep -q '^VMTEST-SCENARIO [^ ]* FAIL' <<<"$m"; then
		echo PASS
	else
		echo FAIL
	fi
}

# summary NAMES...: a markdown table scenario × boot. (Each boot's markers
# are read once; awk reads them from a here-string, so its early exit
# cannot break a pipe.)
summary() {
	local names=("$@") n s scen=() row v info
	local -A mk
	for n in "${names[@]}"; do
		mk[$n]=$(markers "$n")
		while read -r s; do
			[[ -z $s || " ${scen[*]} " == *" $s "* ]] || scen+=("$s")
		done <<<"$(awk '$1 == "VMTEST-SCENARIO" {print $2}' <<<"${mk[$n]}")"
	done
	row="| |"
	for n in "${names[@]}"; do row+=" $n |"; done
	echo "$row"
	row="|---|"
	for n in "${names[@]}"; do row+="---|"; done
	echo "$row"
	for info in kernel lsm btf enforcer expect backends tcp-send exec-denial verifier-time agent-ready; do
		row="| $info |"
		for n in "${names[@]}"; do
			v=$(awk -v k="$info" '$1 == "VMTEST-INFO" && $2 == k {$1 = $2 = ""; sub(/^ +/, ""); print; exit}' <<<"${mk[$n]}")
			[ "$info" != backends ] || v=$(sed -E ':a; s/\([^()]*\)//g; ta' <<<"$v")
			row+=" ${v:--} |"
		done
		echo "$row"
	done
	for s in "${scen[@]}"; do
		row="| $s |"
		for n in "${names[@]}"; do
			v=$(awk -v k="$s" '$1 == "VMTEST-SCENARIO" && $2 == k {print $3; exit}' <<<"${mk[$n]}")
			row+=" ${v:-MISSING} |"
		done
		echo "$row"
	done
	row="| boot (qemu exit, seconds) |"
	for n in "${names[@]}"; do row+=" rc=$(cat "$LOGS/$n/rc") $(cat "$LOGS/$n/seconds")s |"; done
	echo "$row"
	row="| **result** |"
	for n in "${names[@]}"; do row+=" **$(verdict "$n")** |"; done
	echo "$row"
}

# problems NAME: why a boot failed, one "- NAME: ..." line each.
problems() {
	local n=$1 rc m last oops
	rc=$(cat "$LOGS/$n/rc")
	m=$(markers "$n")
	last=$(tail -n 1 <<<"$m" | cut -c1-160)
	case $rc in
	0) ;;
	124 | 137) echo "- $n: QEMU killed after ${BOOT_TIMEOUT}s (VMTEST_BOOT_TIMEOUT); last marker: ${last:-none}" ;;
	*) echo "- $n: QEMU exited $rc; last marker: ${last:-none}" ;;
	esac
	if [ "$rc" = 0 ] && ! grep -q '^VMTEST-RESULT ' <<<"$m"; then
		echo "- $n: the suite did not finish (no VMTEST-RESULT); last marker: ${last:-none}"
	fi
	oops=$(tr -d '\r' <"$LOGS/$n/console.log" | grep -E '(Oops|Kernel panic|BUG):|RIP: 0010' || true)
	[ -z "$oops" ] || echo "- $n: guest kernel crashed: $(head -n 2 <<<"$oops" | sed 's/^\[ *[0-9.]*\] //' | paste -sd ' ' -)"
	grep '^VMTEST-SCENARIO [^ ]* FAIL' <<<"$m" | cut -c1-600 | sed "s/^/- $n: /" || true
}

# verifier_table COLUMNS...: the verifier table (scripts/vmtest-verifier.awk)
# of the host and the boots; fails when a budget is exceeded.
verifier_table() {
	local c
	for c in "$@"; do
		markers "$c" | sed "s/^/$c /"
	done | awk -v cols="$*" -f "$ROOT/scripts/vmtest-verifier.awk"
}

# machine: what the run ran on.
machine() {
	local cpu mem
	cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
	mem=$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
	echo "$(hostname), ${cpu:-unknown CPU}, $(nproc) CPUs, $mem, kernel $(uname -r), qemu $(qemu-system-x86_64 --version | awk 'NR == 1 {print $4}')"
}

# write_summary T0 T1 T2 NAMES...: LOGS/summary.md; returns 1 when the
# verifier table fails.
write_summary() {
	local t0=$1 t1=$2 t2=$3 k n rc=0 table
	shift 3
	table=$(verifier_table host "$@") || rc=1
	if ! grep -q '^VMTEST-VERIFIER ' <<<"$(markers host)"; then
		rc=1
		table+=$'\n'"- host: nothing measured (suite verifier exited $(cat "$LOGS/host/rc")): $(tail -n 3 "$LOGS/host/console.log" | paste -sd ' ' -)"
	fi
	{
		echo "# ocigate vmtest"
		echo
		echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "- machine: $(machine)"
		for k in $KERNELS; do
			echo "- kernel $k: $(cat "${kdirs[$k]}/release") ($(cat "${kdirs[$k]}/deb"))"
		done
		echo "- boots: $# in $((t2 - t1)) s wall ($JOBS at a time, at most ${BOOT_TIMEOUT}s each); total with build and the host's verifier table: $((t2 - t0)) s"
		echo
		echo "## Scenarios"
		echo
		summary "$@"
		echo
		for n in "$@"; do problems "$n"; done
		echo
		echo "## Verifier: instructions verified per program (each loaded alone, nothing attached)"
		echo
		echo "$table"
	} >"$LOGS/summary.md"
	return "$rc"
}

# publish_summary: a run of the whole default matrix writes its summary
# to DOCS, the reference the README links to; partial runs (VMTEST_KERNELS,
# VMTEST_LSM narrowed) leave it alone.
publish_summary() {
	[ -n "$DOCS" ] && [ "$KERNELS" = "6.1 6.12" ] && [ "$LSMS" = "bpf nobpf fallback" ] || return 0
	mkdir -p "$(dirname "$DOCS")"
	{
		echo "<!-- Written by make vmtest (scripts/vmtest.sh) from its last run of the whole matrix; do not edit. -->"
		cat "$LOGS/summary.md"
	} >"$DOCS"
	log "summary written to $DOCS"
}

# publish_precision NAMES...: the precision corpora's outcomes on the lsm
# and fmod_ret boots (the guest's "precision" scenario) go to their
# columns of docs/precision.md (test/vmtest/precisiontable), when the run
# publishes its summary.
publish_precision() {
	[ -n "$DOCS" ] && [ "$KERNELS" = "6.1 6.12" ] && [ "$LSMS" = "bpf nobpf fallback" ] || return 0
	local n files=()
	for n in "$@"; do
		markers "$n" >"$WORK/precision-$n.markers"
		files+=("$WORK/precision-$n.markers")
	done
	(cd "$ROOT" && go run ./test/vmtest/precisiontable -dir "$(dirname "$DOCS")/precision" \
		-machine "QEMU TCG guest (busybox subset of the corpora) on $(machine)" "${files[@]}")
}

# run_boots NAMES...: boots KERNEL-SETTING names, JOBS at a time.
run_boots() {
	local n running=0
	for n in "$@"; do
		if ((running >= JOBS)); then
			wait -n || true
			running=$((running - 1))
		fi
		log "booting $n"
		boot "$n" "${kdirs[${n%-*}]}" "${n##*-}" &
		running=$((running + 1))
	done
	wait || true
}

main() {
	local t0 t1 t2 k l names=() n failed=0
	t0=$(date +%s)
	for l in $LSMS; do
		case $l in bpf | nobpf | fallback) ;; *) die "unknown VMTEST_LSM value $l (want bpf, nobpf or fallback)" ;; esac
	done
	for k in $KERNELS; do kernel_regex "$k" >/dev/null; done
	deps
	mkdir -p "$CACHE" "$LOGS"
	LOGS=$(cd "$LOGS" && pwd)
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/ocigate-vmtest.XXXXXX")
	trap 'rm -rf "$WORK"' EXIT
	declare -A kdirs
	for k in $KERNELS; do
		kdirs[$k]=$(fetch_kernel "$k")
		check_config "${kdirs[$k]}"
		log "kernel $k: $(cat "${kdirs[$k]}/release") ($(cat "${kdirs[$k]}/deb"))"
		for l in $LSMS; do names+=("$k-$l"); done
	done
	build_payload "$WORK"
	log "initramfs $(du -h "$WORK/initrd.gz" | cut -f1), sha256 $(sha256sum "$WORK/initrd.gz" | cut -c1-16)"
	host_verifier
	t1=$(date +%s)
	run_boots "${names[@]}"
	t2=$(date +%s)
	for n in "${names[@]}"; do
		if [ "$(verdict "$n")" != PASS ]; then
			failed=1
			echo
			log "$n FAILED; last lines of $LOGS/$n/console.log:"
			tr -d '\r' <"$LOGS/$n/console.log" | tail -n 100
			[ ! -s "$LOGS/$n/qemu.err" ] || { log "qemu stderr:"; cat "$LOGS/$n/qemu.err"; }
		fi
	done
	write_summary "$t0" "$t1" "$t2" "${names[@]}" || failed=1
	publish_summary
	publish_precision "${names[@]}" || failed=1
	echo
	cat "$LOGS/summary.md"
	echo
	log "logs in $LOGS"
	exit "$failed"
}

main "$@"
