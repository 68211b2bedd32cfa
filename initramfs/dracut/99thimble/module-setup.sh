#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# dracut module "thimble": collects attestation evidence before the root file system is mounted
# and leaves the bundle in /run/thimble/evidence.json, which survives the switch to the real
# root. This file tells dracut what to put in the initramfs; thimble-pre-mount.sh is the hook
# that runs at boot, and /usr/lib/thimble/thimble-early.sh (shared with initramfs-tools and the
# test initramfs) holds the logic. Install this directory as /usr/lib/dracut/modules.d/99thimble
# and enable it with add_dracutmodules+=" thimble " in /etc/dracut.conf.d/thimble.conf.
#
# dracut sources this file with bash; it keeps to POSIX sh anyway, like the rest of thimble.

# Only on request: early collection can delay the boot (it waits for the network), so having
# the binary installed is not reason enough to turn it on.
check() {
	require_binaries thimble || return 1
	return 255
}

depends() {
	return 0
}

# configfs-tsm (configfs + tsm, named tsm_report from Linux 6.16), the SEV-SNP and TDX guest
# drivers and the vsock transport TDX needs without configfs-tsm. hostonly='' because the build
# host need not have them loaded; modules this kernel lacks (or has built in) are skipped.
installkernel() {
	hostonly='' instmods configfs tsm tsm_report sev-guest tdx-guest vmw_vsock_virtio_transport tpm_crb tpm_tis
}

install() {
	inst_binary "$(find_binary thimble)" /usr/bin/thimble
	inst_simple /usr/lib/thimble/thimble-early.sh
	if [ -r /etc/thimble/early.conf ]; then
		inst_simple /etc/thimble/early.conf
	fi
	# Used when present: timeout bounds a hung collection, ip brings up loopback for
	# thimble.simulate. modprobe, mount and sleep come with dracut's base module.
	inst_multiple -o timeout ip
	# shellcheck disable=SC2154 # moddir is set by dracut
	inst_hook pre-mount 50 "$moddir/thimble-pre-mount.sh"
}
