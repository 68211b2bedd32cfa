#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck source-path=SCRIPTDIR
#
# dracut pre-mount hook of the thimble module: runs the shared early collection
# (/usr/lib/thimble/thimble-early.sh) and, when it fails with thimble.required=1, stops the boot
# with dracut's `die` (a FATAL line in the kernel log, then the emergency shell with rd.shell, or
# a halt).
#
# Why pre-mount: it runs once, after the initqueue has settled (udev done, and the network up
# when rd.neednet=1 asked for it), and before the root file system is mounted, in both the
# shell-based and the systemd-based dracut (dracut-pre-mount.service). initqueue/settled runs
# in a loop and pre-pivot runs after the real root is mounted. The hook is sourced into dracut's
# shell, so it must not `exit`.

# shellcheck source=/dev/null # dracut's own library, sourced already in practice
type die >/dev/null 2>&1 || . /lib/dracut-lib.sh
# shellcheck source=../../thimble-early.sh
. /usr/lib/thimble/thimble-early.sh

if ! thimble_early_main; then
	die "$thimble_stop_message"
fi
