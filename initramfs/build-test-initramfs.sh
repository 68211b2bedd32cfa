#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# build-test-initramfs.sh: makes the small initramfs that the QEMU guest tests boot. It holds
# busybox (from Debian's busybox-static), the static thimble binary, the shared early-collection
# logic (thimble-early.sh), a tiny /init (test-initramfs/init) that runs it and reports
# `THIMBLE-RESULT exit=N ...` on the console, and the kernel modules the collection and a QEMU
# guest need (configfs, tsm/tsm_report, sev-guest, tdx-guest, virtio_net, virtio_pci, tpm_crb,
# tpm_tis, vsock transport) with their dependencies, taken from a kernel package such as
# linux-image-6.12.*-cloud-amd64. Built-in modules are simply not needed. It never boots
# anything; see initramfs/README.md for how the tests use the result.
#
# Usage: build-test-initramfs.sh [OPTIONS] KERNEL THIMBLE_BINARY OUT.cpio.gz
#   KERNEL is a linux-image .deb (unpacked with dpkg-deb -x), a directory holding
#   lib/modules/VERSION (an unpacked package, or /), or a lib/modules/VERSION directory.
# Options:
#   --cmdline "WORDS"  bake thimble.* options into /etc/thimble/early.conf (the kernel command
#                      line is read after it and wins), e.g. --cmdline "thimble.simulate=snp"
#   --busybox PATH     the static busybox (default /bin/busybox from busybox-static)
#   --module NAME      one more module to add with its dependencies (repeatable)
#   --vmlinuz FILE     also copy the kernel image of KERNEL (boot/vmlinuz-VERSION) to FILE
# Exit codes: 0 built, 1 failed, 2 usage.
#
# Needs: sh, find, sort, sed, tr, gzip, and dpkg-deb for a .deb, xz or zstd only when the
# modules are compressed that way and busybox cannot do it. No root needed.

set -eu

here=$(cd "$(dirname "$0")" && pwd)

die() {
	echo "build-test-initramfs: error: $*" >&2
	exit 1
}

usage() {
	sed -n '/^# Usage:/,/^# Exit codes/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

cmdline=
busybox=/bin/busybox
extra_modules=
vmlinuz_out=
kernel=
thimble=
out=
nargs=0
# Options may come before or after the three paths.
while [ $# -gt 0 ]; do
	case "$1" in
	--cmdline | --busybox | --module | --vmlinuz)
		[ $# -ge 2 ] || usage
		case "$1" in
		--cmdline) cmdline=$2 ;;
		--busybox) busybox=$2 ;;
		--module) extra_modules="$extra_modules $2" ;;
		--vmlinuz) vmlinuz_out=$2 ;;
		esac
		shift 2
		continue
		;;
	-h | --help) usage ;;
	-*)
		echo "build-test-initramfs: unknown option $1" >&2
		usage
		;;
	esac
	nargs=$((nargs + 1))
	case $nargs in
	1) kernel=$1 ;;
	2) thimble=$1 ;;
	3) out=$1 ;;
	*) usage ;;
	esac
	shift
done
[ "$nargs" -eq 3 ] || usage

# Succeeds when FILE is a static ELF executable; fails when it is dynamic; unknown without tools.
is_static() {
	if command -v readelf >/dev/null 2>&1; then
		readelf -h "$1" >/dev/null 2>&1 || return 1
		if readelf -l "$1" 2>/dev/null | grep -q 'INTERP'; then return 1; fi
	elif command -v file >/dev/null 2>&1; then
		file -L "$1" | grep -Eq 'statically linked|static-pie linked'
	else
		echo "build-test-initramfs: warning: neither readelf nor file: cannot check that $1 is static" >&2
	fi
}

# --- inputs -------------------------------------------------------------------------------------

if [ ! -x "$busybox" ]; then
	die "no busybox at $busybox: install Debian's busybox-static (apt-get install busybox-static) or pass --busybox PATH"
fi
is_static "$busybox" ||
	die "$busybox is not a static binary; the initramfs has no C library: install Debian's busybox-static (it replaces the dynamic busybox package)"
if [ ! -f "$thimble" ] || [ ! -x "$thimble" ]; then
	die "no executable thimble binary at $thimble"
fi
is_static "$thimble" ||
	die "$thimble is not static; build it with: cargo build --release --target x86_64-unknown-linux-musl -p thimble"
for f in "$here/thimble-early.sh" "$here/test-initramfs/init" "$here/test-initramfs/udhcpc.script"; do
	[ -r "$f" ] || die "missing $f (run this script from its place in the thimble tree)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/thimble-initramfs.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

case "$kernel" in
*.deb)
	[ -f "$kernel" ] || die "no such package: $kernel"
	command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb is needed to unpack $kernel (apt-get install dpkg)"
	dpkg-deb -x "$kernel" "$work/kernel" || die "cannot unpack $kernel"
	kroot=$work/kernel
	;;
*)
	[ -d "$kernel" ] || die "$kernel is neither a .deb nor a directory"
	kroot=$kernel
	;;
esac

if [ -e "$kroot/modules.order" ] || [ -e "$kroot/modules.builtin" ]; then
	moddir=$kroot
else
	moddir=
	for d in "$kroot"/lib/modules/* "$kroot"/usr/lib/modules/*; do
		[ -d "$d/kernel" ] || continue
		[ -z "$moddir" ] || die "$kernel holds several kernels ($moddir, $d): give the lib/modules/VERSION directory"
		moddir=$d
	done
	[ -n "$moddir" ] || die "no lib/modules/VERSION with kernel modules in $kernel"
fi
moddir=$(cd "$moddir" && pwd)
kver=${moddir##*/}

if [ -n "$vmlinuz_out" ]; then
	vmlinuz=
	for v in "$kroot/boot/vmlinuz-$kver" "$moddir/../../../boot/vmlinuz-$kver" "/boot/vmlinuz-$kver" "$moddir/vmlinuz"; do
		if [ -f "$v" ]; then vmlinuz=$v; break; fi
	done
	[ -n "$vmlinuz" ] || die "no kernel image vmlinuz-$kver next to $moddir"
fi

# --- the tree -----------------------------------------------------------------------------------

root=$work/root
mkdir -p "$root"
for d in bin sbin usr/bin usr/sbin lib etc/thimble dev proc sys run tmp root var/cache \
	usr/lib/thimble usr/share/udhcpc "lib/modules/$kver"; do
	mkdir -p "$root/$d"
done
chmod 1777 "$root/tmp"

cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
# One symlink per applet, where busybox says it belongs (its --list-full paths are relative).
"$busybox" --list-full | while read -r applet; do
	case "$applet" in
	bin/busybox | linuxrc) continue ;; # linuxrc is for initrds without /init
	*/*) mkdir -p "$root/${applet%/*}" ;;
	esac
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done

cp "$thimble" "$root/usr/bin/thimble"
chmod 0755 "$root/usr/bin/thimble"
cp "$here/thimble-early.sh" "$root/usr/lib/thimble/thimble-early.sh"
cp "$here/test-initramfs/init" "$root/init"
cp "$here/test-initramfs/udhcpc.script" "$root/usr/share/udhcpc/default.script"
chmod 0755 "$root/init" "$root/usr/share/udhcpc/default.script"
if [ -n "$cmdline" ]; then
	{
		echo "# Baked in by build-test-initramfs.sh --cmdline; the kernel command line wins."
		echo "$cmdline"
	} >"$root/etc/thimble/early.conf"
fi

# --- modules ------------------------------------------------------------------------------------

wanted="configfs tsm tsm_report sev-guest tdx-guest virtio_net virtio_pci tpm_crb tpm_tis vsock vmw_vsock_virtio_transport$extra_modules"

# NAME PATH for every module file, NAME with - as _ (module names and file names differ so).
(cd "$moddir" && find kernel -type f \( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz' \)) |
	while read -r rel; do
		name=${rel##*/}
		name=${name%%.ko*}
		echo "$(echo "$name" | tr - _) $rel"
	done >"$work/index"
: >"$work/builtin"
if [ -r "$moddir/modules.builtin" ]; then
	sed 's|.*/||; s|\.ko.*||' "$moddir/modules.builtin" | tr - _ >"$work/builtin"
fi

# decompress SRC DST
decompress() {
	case "$1" in
	*.ko) cp "$1" "$2" ;;
	*.ko.xz)
		if "$busybox" xzcat "$1" >"$2" 2>/dev/null; then :
		elif command -v xz >/dev/null 2>&1; then xz -dc "$1" >"$2"
		else die "cannot decompress $1: install xz-utils"; fi
		;;
	*.ko.gz) gzip -dc "$1" >"$2" ;;
	*.ko.zst)
		command -v zstd >/dev/null 2>&1 || die "cannot decompress $1: install zstd"
		zstd -q -dc "$1" >"$2"
		;;
	esac
}

# Breadth-first over `depends=` in each module's .modinfo, so that the closure is complete.
: >"$work/done"
: >"$work/report"
set -f
queue=
for m in $wanted; do
	queue="$queue $(echo "$m" | tr - _)"
done
while [ -n "${queue# }" ]; do
	# shellcheck disable=SC2086 # a list of module names, split on purpose (no globbing: set -f)
	set -- $queue
	m=$1
	shift
	queue=" $*"
	grep -qx "$m" "$work/done" && continue
	echo "$m" >>"$work/done"
	if grep -qx "$m" "$work/builtin"; then
		echo "  $m: built in" >>"$work/report"
		continue
	fi
	rel=$(sed -n "s|^$m ||p" "$work/index" | head -n 1)
	if [ -z "$rel" ]; then
		echo "  $m: not in this kernel (skipped)" >>"$work/report"
		continue
	fi
	dst=$root/lib/modules/$kver/${rel%%.ko*}.ko
	mkdir -p "${dst%/*}"
	decompress "$moddir/$rel" "$dst"
	deps=$(LC_ALL=C tr '\0' '\n' <"$dst" | LC_ALL=C sed -n 's/^depends=//p' | head -n 1)
	echo "  $m: ${rel%%.ko*}.ko${deps:+ (needs $deps)}" >>"$work/report"
	for dep in $(echo "$deps" | tr , ' '); do
		queue="$queue $dep"
	done
done
for f in modules.builtin modules.builtin.modinfo modules.order; do
	if [ -r "$moddir/$f" ]; then cp "$moddir/$f" "$root/lib/modules/$kver/$f"; fi
done
# busybox's own depmod, so that modules.dep is in the form busybox modprobe reads at boot.
"$busybox" depmod -b "$root" "$kver" || die "depmod failed"

# --- archive ------------------------------------------------------------------------------------

# Fixed times, owners and inode numbers: the same inputs give the same archive.
find "$root" -exec touch -h -d "@${SOURCE_DATE_EPOCH:-0}" {} + 2>/dev/null || :
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
	"$busybox" cpio -o -H newc -R 0:0 --renumber-inodes --ignore-devno 2>/dev/null) |
	gzip -9n >"$work/out.cpio.gz" || die "cannot make the archive"
mv "$work/out.cpio.gz" "$out"
if [ -n "$vmlinuz_out" ]; then
	cp "$vmlinuz" "$vmlinuz_out"
fi

echo "build-test-initramfs: $out for kernel $kver ($(wc -c <"$out") bytes)"
echo "modules:"
cat "$work/report"
[ -z "$vmlinuz_out" ] || echo "kernel image: $vmlinuz_out"
