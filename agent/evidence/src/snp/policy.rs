// SPDX-License-Identifier: Apache-2.0
//! The guest POLICY word (SEV-SNP ABI spec, "Guest Policy Structure", Table 9 in rev 1.55).

use serde::Serialize;

/// A decoded guest policy; `raw` is the 64-bit word from the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GuestPolicy {
    pub raw: u64,
    pub abi_minor: u8,
    pub abi_major: u8,
    pub smt_allowed: bool,
    pub migrate_ma_allowed: bool,
    pub debug_allowed: bool,
    pub single_socket_required: bool,
    pub cxl_allowed: bool,
    pub mem_aes_256_xts_required: bool,
    pub rapl_disabled: bool,
    pub ciphertext_hiding_required: bool,
    pub page_swap_disabled: bool,
}

impl GuestPolicy {
    /// Bit 19: the hypervisor may debug the guest (read and write its memory).
    pub const DEBUG_BIT: u64 = 1 << 19;
    /// Bit 17, reserved, must be one.
    pub const RESERVED_MUST_BE_ONE: u64 = 1 << 17;
    /// Bits 63:26, reserved, must be zero (bit 25, PAGE_SWAP_DISABLE, is the highest defined).
    pub const RESERVED_MUST_BE_ZERO: u64 = !((1 << 26) - 1);

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
