# shellcheck shell=sh
# SPDX-License-Identifier: Apache-2.0
#
# thimble-early.sh: the one implementation of early-boot evidence collection, shared by the
# initramfs-tools script, the dracut hook and the test initramfs's /init. It is a library: it
# only defines functions and variables (all named thimble_*), never exits and never stops the
# boot, because dracut sources its hooks into its own shell. The caller runs thimble_early_main
# and, when that returns 1 (collection or attestation failed and thimble.required=1), stops the
# boot with its own mechanism (initramfs-tools `panic`, dracut `die`) and thimble_stop_message.
#
# What it does: read the thimble.* options (from THIMBLE_EARLY_CONF, then the kernel command
# line, which wins), load configfs, tsm and the TEE guest drivers if they are modules, mount
# configfs, wait a bounded time for a default route when the endorsements may have to be fetched
# or a verifier reached, run `thimble collect` to /run/thimble/evidence.json and, with
# thimble.attest, then `thimble attest` to a remote verifier (the token to /run/thimble/token, a
# KBS resource to /run/thimble/resource), and log one clear line per step to the console and the
# kernel log. Everything it touches from outside can be redirected by a THIMBLE_* variable (see
# the defaults below) so that the tests can run it as an ordinary user against a fake /proc.
#
# POSIX sh only (busybox ash, dash, klibc sh, bash): no `local`, so every variable is prefixed.

# Where things are. Tests point these at a temporary directory.
: "${THIMBLE_PROC:=/proc}"
: "${THIMBLE_KMSG:=/dev/kmsg}"
: "${THIMBLE_CONFIGFS:=/sys/kernel/config}"
: "${THIMBLE_RUN_DIR:=/run/thimble}"
: "${THIMBLE_EARLY_CONF:=/etc/thimble/early.conf}"
# The commands with side effects on the machine, by path in the tests: busybox sh runs its own
# applets before anything on PATH, so stubs on PATH would not be enough.
: "${THIMBLE_MODPROBE:=modprobe}"
: "${THIMBLE_MOUNT:=mount}"
: "${THIMBLE_IP:=ip}"

# The kernel modules that may provide the evidence sources; a missing one is not an error (it
# may be built in, or belong to the other vendor). tsm_report is the name of the configfs-tsm
# module from Linux 6.16 on; tsm is its name before that.
THIMBLE_MODULES="configfs tsm tsm_report sev-guest tdx-guest"

# Prints the meaning of a thimble exit code (README "Exit codes"), plus the shell's own codes
# for a binary that could not run or was killed.
thimble_exit_meaning() {
	case "$1" in
	0) echo "ok" ;;
	1) echo "other error" ;;
	2) echo "usage error: check the thimble.* options" ;;
	3) echo "no TEE evidence source" ;;
	4) echo "collection failed" ;;
	5) echo "endorsements could not be fetched or did not verify" ;;
	6) echo "malformed evidence or verifier answer" ;;
	7) echo "authenticity check failed" ;;
	8) echo "policy not met" ;;
	9) echo "verifier unavailable" ;;
	10) echo "verifier refused" ;;
	124 | 137 | 143) echo "timed out" ;;
	126) echo "thimble binary not executable" ;;
	127) echo "thimble binary not found" ;;
	*) echo "unexpected exit code" ;;
	esac
}

# thimble_log LEVEL MESSAGE: one line on standard output (the console in an initramfs) and in
# the kernel log, so that it is also in `dmesg` and the journal after boot. LEVEL is a syslog
# priority: 3 error, 4 warning, 6 info.
thimble_log() {
	echo "thimble: $2"
	if [ -w "$THIMBLE_KMSG" ]; then
		echo "<$1>thimble: $2" >"$THIMBLE_KMSG" 2>/dev/null || :
	fi
}

# thimble_is_true VALUE: the kernel command line's idea of a boolean ("thimble.required" alone
# counts as true).
thimble_is_true() {
	case "$1" in
	1 | y | yes | true | on) return 0 ;;
	*) return 1 ;;
	esac
}

# thimble_parse_option WORD: one word of the command line. Values are checked here only as far
# as this script needs them; thimble checks the rest and exits 2 on a bad value.
thimble_parse_option() {
	case "$1" in
	thimble.required) thimble_required=1 ;;
	thimble.required=*)
		if thimble_is_true "${1#*=}"; then thimble_required=1; else thimble_required=0; fi
		;;
	thimble.nonce=*) thimble_nonce=${1#*=} ;;
	thimble.imds=*) thimble_imds=${1#*=} ;;
	thimble.deadline=*)
		case "${1#*=}" in
		'' | *[!0-9]*)
			thimble_log 4 "ignoring $1: not a whole number of seconds"
			;;
		*) thimble_deadline=${1#*=} ;;
		esac
		;;
	thimble.offline | thimble.offline=*)
		case "$1" in *=*) thimble_is_true "${1#*=}" || return 0 ;; esac
		thimble_offline=1
		;;
	thimble.simulate=*) thimble_simulate=${1#*=} ;;
	thimble.insecure-allow-simulated) thimble_insecure_allow_simulated=1 ;;
	thimble.insecure-allow-simulated=*)
		if thimble_is_true "${1#*=}"; then
			thimble_insecure_allow_simulated=1
		else
			thimble_insecure_allow_simulated=0
		fi
		;;
	thimble.attest=*)
		# Empty, 0, off or none turns off what early.conf turned on; any other value names the
		# verifier, checked when the step runs (a wrong one fails like a usage error).
		case "${1#*=}" in
		'' | 0 | off | none) thimble_attest= ;;
		*) thimble_attest=${1#*=} ;;
		esac
		;;
	thimble.attest.url=*) thimble_attest_url=${1#*=} ;;
	thimble.attest.resource=*) thimble_attest_resource=${1#*=} ;;
	thimble.test.*) ;; # read by the test initramfs's /init only
	thimble.*) thimble_log 4 "ignoring unknown option $1" ;;
	esac
}

# Reads the options: THIMBLE_EARLY_CONF first (the same syntax as the command line, any number
# of lines, # starts a comment), then /proc/cmdline, so that the boot loader has the last word.
thimble_parse_cmdline() {
	thimble_required=0
	thimble_nonce=
	thimble_imds=
	thimble_deadline=
	thimble_offline=0
	thimble_simulate=
	thimble_insecure_allow_simulated=0
	thimble_attest=
	thimble_attest_url=
	thimble_attest_resource=
	# No globbing while the words are split: a command line may hold a `*`.
	case $- in *f*) thimble_noglob=1 ;; *) thimble_noglob=0 ;; esac
	set -f
	for thimble_file in "$THIMBLE_EARLY_CONF" "$THIMBLE_PROC/cmdline"; do
		[ -r "$thimble_file" ] || continue
		while IFS= read -r thimble_line || [ -n "$thimble_line" ]; do
			thimble_line=${thimble_line%%#*}
			# shellcheck disable=SC2086 # splitting into words is the point
			for thimble_word in $thimble_line; do
				thimble_parse_option "$thimble_word"
			done
		done <"$thimble_file"
	done
	[ "$thimble_noglob" = 1 ] || set +f
	# The network wait below is bounded by the same number of seconds as the fetch itself.
	thimble_wait=${thimble_deadline:-30}
}

# Loads the modules quietly: built-in or absent ones simply fail, which is fine.
thimble_load_modules() {
	command -v "$THIMBLE_MODPROBE" >/dev/null 2>&1 || return 0
	for thimble_mod in $THIMBLE_MODULES; do
		"$THIMBLE_MODPROBE" -q "$thimble_mod" >/dev/null 2>&1 || :
	done
	# TDX without configfs-tsm quotes through the host's QGS over vsock.
	if [ -e /dev/tdx_guest ]; then
		"$THIMBLE_MODPROBE" -q vmw_vsock_virtio_transport >/dev/null 2>&1 || :
	fi
}

# Mounts configfs on THIMBLE_CONFIGFS unless /proc/mounts already shows it there.
thimble_mount_configfs() {
	if [ -r "$THIMBLE_PROC/mounts" ]; then
		while read -r _ thimble_dir thimble_type _; do
			if [ "$thimble_dir" = "$THIMBLE_CONFIGFS" ] && [ "$thimble_type" = configfs ]; then
				return 0
			fi
		done <"$THIMBLE_PROC/mounts"
	fi
	if ! "$THIMBLE_MOUNT" -t configfs configfs "$THIMBLE_CONFIGFS" >/dev/null 2>&1; then
		thimble_log 4 "cannot mount configfs on $THIMBLE_CONFIGFS; configfs-tsm is unavailable"
		return 1
	fi
}

# Succeeds when an IPv4 or IPv6 default route exists on an interface other than lo.
thimble_have_default_route() {
	if [ -r "$THIMBLE_PROC/net/route" ]; then
		# Iface Destination Gateway ...; the default route has destination 00000000.
		while read -r thimble_if thimble_dst _; do
			[ "$thimble_dst" = 00000000 ] && [ "$thimble_if" != lo ] && return 0
		done <"$THIMBLE_PROC/net/route"
	fi
	if [ -r "$THIMBLE_PROC/net/ipv6_route" ]; then
		# dest prefixlen src srclen nexthop metric refcnt use flags iface
		while read -r thimble_dst thimble_len _ _ _ _ _ _ _ thimble_if; do
			if [ "$thimble_dst" = 00000000000000000000000000000000 ] &&
				[ "$thimble_len" = 00 ] && [ "$thimble_if" != lo ]; then
				return 0
			fi
		done <"$THIMBLE_PROC/net/ipv6_route"
	fi
	return 1
}

# thimble_wait_network SECONDS [WHAT]: waits at most SECONDS for a default route, which WHAT
# (default "THIM/KDS") needs. Nothing here configures the network: the caller may define
# thimble_bring_up_network (initramfs-tools starts its own DHCP with it), which is called once,
# before waiting.
thimble_wait_network() {
	thimble_have_default_route && return 0
	if command -v thimble_bring_up_network >/dev/null 2>&1; then
		thimble_bring_up_network
	fi
	thimble_log 6 "waiting up to $1 s for the network (for ${2:-THIM/KDS})"
	thimble_left=$1
	while [ "$thimble_left" -gt 0 ]; do
		sleep 1
		thimble_have_default_route && return 0
		thimble_left=$((thimble_left - 1))
	done
	thimble_log 4 "no default route after $1 s; trying anyway (certificates attached by the host need no network)"
	return 1
}

# Finds the binary: THIMBLE_BIN, else thimble on PATH.
thimble_find_binary() {
	if [ -n "${THIMBLE_BIN:-}" ]; then
		echo "$THIMBLE_BIN"
	else
		command -v thimble 2>/dev/null || echo thimble
	fi
}

# thimble_run ARGS...: runs thimble with ARGS and the collection options every step shares, and
# sets thimble_run_rc. A hard time limit (when `timeout` exists) keeps a hung device, host or
# verifier from hanging the boot: the fetch deadline plus a minute for the report itself.
thimble_run() {
	thimble_bin=$(thimble_find_binary)
	[ -n "$thimble_imds" ] && set -- "$@" "--imds=$thimble_imds"
	[ -n "$thimble_deadline" ] && set -- "$@" "--deadline=$thimble_deadline"
	[ "$thimble_offline" = 1 ] && set -- "$@" --offline
	[ -n "$thimble_simulate" ] && set -- "$@" "--simulate=$thimble_simulate"
	[ "$thimble_insecure_allow_simulated" = 1 ] && set -- "$@" --insecure-allow-simulated
	mkdir -p "$THIMBLE_RUN_DIR" 2>/dev/null || :
	if command -v timeout >/dev/null 2>&1; then
		timeout "$((thimble_wait + 60))" "$thimble_bin" "$@"
	else
		"$thimble_bin" "$@"
	fi
	thimble_run_rc=$?
}

# Runs thimble collect with the options and sets thimble_rc.
thimble_collect() {
	if [ -n "$thimble_nonce" ]; then
		thimble_run collect -o "$THIMBLE_RUN_DIR/evidence.json" --no-cache "--nonce=$thimble_nonce"
	else
		thimble_run collect -o "$THIMBLE_RUN_DIR/evidence.json" --no-cache
	fi
	thimble_rc=$thimble_run_rc
}

# Runs thimble attest to the verifier thimble.attest names and sets thimble_attest_rc and
# thimble_attest_out (what a success leaves: the KBS resource, else the token). attest collects
# its own evidence, bound to the verifier's nonce by the verifier's rule, so thimble.nonce does
# not apply; the collection options do. A missing URL or an unknown verifier is a usage error
# (exit 2) found here, without running thimble. The token and the resource are secrets: they are
# written readable by root only (thimble writes the resource so anyway; the umask covers the
# token).
thimble_attest_step() {
	set -- attest "--verifier=$thimble_attest" "--url=$thimble_attest_url"
	thimble_attest_out="$THIMBLE_RUN_DIR/token"
	if [ -n "$thimble_attest_resource" ]; then
		if [ "$thimble_attest" = kbs ]; then
			thimble_attest_out="$THIMBLE_RUN_DIR/resource"
			set -- "$@" "--resource=$thimble_attest_resource" "--resource-out=$thimble_attest_out"
		else
			thimble_log 4 "ignoring thimble.attest.resource: resources come from thimble.attest=kbs only"
		fi
	fi
	# Nothing from an earlier run may pass for this one's result.
	rm -f "$THIMBLE_RUN_DIR/token" "$THIMBLE_RUN_DIR/resource" 2>/dev/null || :
	case "$thimble_attest" in
	kbs | maa | ita | veraison) ;;
	*)
		thimble_log 3 "thimble.attest=$thimble_attest is not a verifier (kbs, maa, ita or veraison)"
		thimble_attest_rc=2
		return
		;;
	esac
	if [ -z "$thimble_attest_url" ]; then
		thimble_log 3 "thimble.attest=$thimble_attest needs thimble.attest.url=URL"
		thimble_attest_rc=2
		return
	fi
	thimble_umask=$(umask)
	umask 077
	thimble_run "$@" "--token-out=$THIMBLE_RUN_DIR/token" --no-cache
	umask "$thimble_umask"
	thimble_attest_rc=$thimble_run_rc
}

# thimble_fail WHAT RC MISSING: logs a failed step (WHAT: "evidence collection failed",
# "attestation to kbs failed") and returns 1 when thimble.required=1 stops the boot, with
# thimble_stop_message set; 0 when the boot goes on without MISSING.
thimble_fail() {
	thimble_meaning=$(thimble_exit_meaning "$2")
	if [ "$thimble_required" = 1 ]; then
		# shellcheck disable=SC2034 # read by the caller, which stops the boot with it
		thimble_stop_message="thimble: $1 (exit $2: $thimble_meaning) and thimble.required=1: stopping the boot"
		thimble_log 3 "$1 (exit $2: $thimble_meaning); thimble.required=1: stopping the boot"
		return 1
	fi
	thimble_log 4 "$1 (exit $2: $thimble_meaning); continuing without $3 (thimble.required=1 would stop the boot)"
	return 0
}

# The whole early collection, and attestation when thimble.attest asks for it. Returns 0 when
# the boot may go on (success, or failure without thimble.required=1) and 1 when it must stop;
# thimble_rc is collect's exit code, thimble_attest_rc attest's (empty when attest did not run)
# and thimble_stop_message says why the boot stops.
#
# attest runs after collect, and only when collect succeeded: the bundle bound to thimble.nonce
# stays in /run/thimble/evidence.json for whoever reads it after boot, and a guest that cannot
# collect cannot attest either (attest collects the same way), so it would only spend the
# deadline again.
thimble_early_main() {
	# shellcheck disable=SC2034 # read by the caller
	thimble_stop_message=
	thimble_attest_rc=
	thimble_parse_cmdline
	if [ "$thimble_insecure_allow_simulated" = 1 ]; then
		# Said on every boot that has it: a test option left on a production command line
		# would otherwise accept endorsements signed by thimble's public test keys unnoticed.
		thimble_log 4 "thimble.insecure-allow-simulated: trusting the simulation's test roots (testing only)"
	fi
	thimble_load_modules
	thimble_mount_configfs || :
	if [ -n "$thimble_simulate" ]; then
		# The simulated guest's emulator listens on loopback.
		"$THIMBLE_IP" link set lo up >/dev/null 2>&1 || :
	fi
	# The network is needed unless nothing is fetched (offline) or everything comes from the
	# simulation's loopback emulator. A simulated guest given thimble.imds fetches THIM from
	# that address (a test emulator on the network), so it waits like a real one. A verifier
	# is always remote, so thimble.attest waits in any case.
	thimble_need=
	if [ "$thimble_offline" != 1 ] && { [ -z "$thimble_simulate" ] || [ -n "$thimble_imds" ]; }; then
		thimble_need="THIM/KDS"
	fi
	if [ -n "$thimble_attest" ]; then
		thimble_need="${thimble_need:+$thimble_need and }the verifier"
	fi
	if [ -n "$thimble_need" ]; then
		thimble_wait_network "$thimble_wait" "$thimble_need" || :
	fi
	thimble_collect
	thimble_result="exit=$thimble_rc required=$thimble_required"
	if [ "$thimble_rc" = 0 ]; then
		thimble_log 6 "evidence collected: $THIMBLE_RUN_DIR/evidence.json"
	else
		if [ -n "$thimble_attest" ]; then
			thimble_result="$thimble_result attest=$thimble_attest attest_exit=skipped"
			thimble_log 4 "attestation to $thimble_attest skipped: evidence collection failed"
		fi
		echo "$thimble_result" >"$THIMBLE_RUN_DIR/early-result" 2>/dev/null || :
		thimble_fail "evidence collection failed" "$thimble_rc" "$THIMBLE_RUN_DIR/evidence.json"
		return
	fi
	if [ -z "$thimble_attest" ]; then
		echo "$thimble_result" >"$THIMBLE_RUN_DIR/early-result" 2>/dev/null || :
		return 0
	fi
	thimble_attest_step
	echo "$thimble_result attest=$thimble_attest attest_exit=$thimble_attest_rc" \
		>"$THIMBLE_RUN_DIR/early-result" 2>/dev/null || :
	if [ "$thimble_attest_rc" = 0 ]; then
		case "$thimble_attest_out" in
		*/resource) thimble_what=resource ;;
		*) thimble_what=token ;;
		esac
		thimble_log 6 "attested to $thimble_attest; $thimble_what written to $thimble_attest_out"
		return 0
	fi
	thimble_fail "attestation to $thimble_attest failed" "$thimble_attest_rc" "$thimble_attest_out"
}
