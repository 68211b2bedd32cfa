// SPDX-License-Identifier: AGPL-3.0-or-later
//! `/dev/sev-guest` client (include/uapi/linux/sev-guest.h).
