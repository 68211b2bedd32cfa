// SPDX-License-Identifier: Apache-2.0
//! The guest POLICY word (SEV-SNP ABI spec, "Guest Policy Structure", Table 9 in rev 1.55).

use serde::{Serialize, Serializer};

/// A decoded guest policy; `raw` is the 64-bit word from the report.
///
/// Serialised as the bundle's `claims.policy` has it: `raw` as a `0x`-prefixed hex string, then
/// the fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GuestPolicy {
    /// The 64-bit POLICY word as it appears in the report.
    #[serde(serialize_with = "prefixed_hex")]
    pub raw: u64,
    /// Bits 7:0, ABI_MINOR: the lowest firmware ABI minor version the guest accepts.
    pub abi_minor: u8,
    /// Bits 15:8, ABI_MAJOR: the lowest firmware ABI major version the guest accepts.
    pub abi_major: u8,
    /// Bit 16, SMT: the guest may run on a host with simultaneous multithreading enabled.
    pub smt_allowed: bool,
    /// Bit 18, MIGRATE_MA: the guest may be associated with a migration agent.
    pub migrate_ma_allowed: bool,
    /// Bit 19, DEBUG: the hypervisor may debug the guest (see [`GuestPolicy::DEBUG_BIT`]).
    pub debug_allowed: bool,
    /// Bit 20, SINGLE_SOCKET: the guest may run on one socket only.
    pub single_socket_required: bool,
    /// Bit 21, CXL_ALLOW: CXL may be populated with devices or memory.
    pub cxl_allowed: bool,
    /// Bit 22, MEM_AES_256_XTS: AES-256-XTS memory encryption is required.
    pub mem_aes_256_xts_required: bool,
    /// Bit 23, RAPL_DIS: Running Average Power Limit must be disabled.
    pub rapl_disabled: bool,
    /// Bit 24, CIPHERTEXT_HIDING: ciphertext hiding must be enabled.
    pub ciphertext_hiding_required: bool,
    /// Bit 25, PAGE_SWAP_DISABLE: the firmware's page swap and move commands are disabled for
    /// the guest.
    pub page_swap_disabled: bool,
}

/// `0x` and lowercase hex digits without leading zeros (`0x30000`).
fn prefixed_hex<S: Serializer>(raw: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{raw:#x}"))
}

impl GuestPolicy {
    /// Bit 19: the hypervisor may debug the guest (read and write its memory).
    pub const DEBUG_BIT: u64 = 1 << 19;
    /// Bit 17, reserved, must be one.
    pub const RESERVED_MUST_BE_ONE: u64 = 1 << 17;
    /// Bits 63:26, reserved, must be zero (bit 25, PAGE_SWAP_DISABLE, is the highest defined).
    pub const RESERVED_MUST_BE_ZERO: u64 = !((1 << 26) - 1);

    /// Splits the POLICY word into its fields. Reserved bits are not checked here;
    /// [`SnpReport::parse`](crate::snp::SnpReport::parse) refuses a report whose reserved bits are
    /// wrong.
    pub fn decode(raw: u64) -> GuestPolicy {
        let bit = |n: u32| raw & (1u64 << n) != 0;
        GuestPolicy {
            raw,
            abi_minor: (raw & 0xff) as u8,
            abi_major: ((raw >> 8) & 0xff) as u8,
            smt_allowed: bit(16),
            migrate_ma_allowed: bit(18),
            debug_allowed: bit(19),
            single_socket_required: bit(20),
            cxl_allowed: bit(21),
            mem_aes_256_xts_required: bit(22),
            rapl_disabled: bit(23),
            ciphertext_hiding_required: bit(24),
            page_swap_disabled: bit(25),
        }
    }

    /// The names of the flags that are set, for human output.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (set, name) in [
            (self.smt_allowed, "smt-allowed"),
            (self.migrate_ma_allowed, "migrate-ma-allowed"),
            (self.debug_allowed, "debug-allowed"),
            (self.single_socket_required, "single-socket"),
            (self.cxl_allowed, "cxl-allowed"),
            (self.mem_aes_256_xts_required, "mem-aes-256-xts"),
            (self.rapl_disabled, "rapl-disabled"),
            (self.ciphertext_hiding_required, "ciphertext-hiding"),
            (self.page_swap_disabled, "page-swap-disabled"),
        ] {
            if set {
                v.push(name);
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_debug_and_smt() {
        let p = GuestPolicy::decode(0x0003_0000 | GuestPolicy::DEBUG_BIT);
        assert!(p.debug_allowed && p.smt_allowed && !p.migrate_ma_allowed);
        assert_eq!(p.flag_names(), vec!["smt-allowed", "debug-allowed"]);
        assert!(!GuestPolicy::decode(0x30000).debug_allowed);
    }
}
