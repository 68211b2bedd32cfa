// SPDX-License-Identifier: Apache-2.0
//! The 8-byte TCB_VERSION (SEV-SNP ABI spec, "TCB_VERSION Structure"; 57230 Table 11 for Turin).
//!
//! Milan and Genoa: `[bl, tee, rsvd x4, snp, ucode]`. Turin: `[fmc, bl, tee, snp, rsvd x3, ucode]`.
//! The same bytes mean different SPLs on different products, so decoding needs the product.
//! THIM's `tcbm` is these bytes read as a little-endian u64 and printed as 16 hex digits.

use std::fmt;

use crate::snp::Product;

/// A decoded TCB_VERSION with the bytes it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TcbVersion {
    /// The raw 8 bytes as they appear in the report.
    #[serde(skip)]
    pub raw: [u8; 8],
    /// BOOT_LOADER SPL.
    pub bootloader: u8,
    /// TEE SPL (the PSP operating system).
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// MICROCODE SPL.
    pub microcode: u8,
    /// FMC SPL; present on Turin only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
}

impl TcbVersion {
    /// Decodes `raw` with the layout of `product`.
    pub fn decode(raw: [u8; 8], product: Product) -> TcbVersion {
        if product.turin_tcb_layout() {
            TcbVersion {
                raw,
                fmc: Some(raw[0]),
                bootloader: raw[1],
                tee: raw[2],
                snp: raw[3],
                microcode: raw[7],
            }
        } else {
            TcbVersion {
                raw,
                bootloader: raw[0],
                tee: raw[1],
                snp: raw[6],
                microcode: raw[7],
                fmc: None,
            }
        }
    }

    /// Encodes SPL values with the layout of `product` (`fmc` is ignored before Turin).
    pub fn encode(
        product: Product,
        bootloader: u8,
        tee: u8,
        snp: u8,
        microcode: u8,
        fmc: u8,
    ) -> TcbVersion {
        let raw = if product.turin_tcb_layout() {
            [fmc, bootloader, tee, snp, 0, 0, 0, microcode]
        } else {
            [bootloader, tee, 0, 0, 0, 0, snp, microcode]
        };
        TcbVersion::decode(raw, product)
    }

    /// THIM's `tcbm` form: the bytes as a little-endian u64, 16 lowercase hex digits.
    pub fn tcbm(&self) -> String {
        format!("{:016x}", u64::from_le_bytes(self.raw))
    }

    /// Parses a `tcbm` string (case-insensitive, exactly 16 hex digits) back to the raw bytes.
    pub fn raw_from_tcbm(tcbm: &str) -> Option<[u8; 8]> {
        if tcbm.len() != 16 || !tcbm.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(tcbm, 16).ok().map(u64::to_le_bytes)
    }

    /// Whether every SPL is at least the corresponding SPL of `min` (the TCB is not older).
    pub fn meets(&self, min: &TcbVersion) -> bool {
        self.bootloader >= min.bootloader
            && self.tee >= min.tee
            && self.snp >= min.snp
            && self.microcode >= min.microcode
            && self.fmc.unwrap_or(0) >= min.fmc.unwrap_or(0)
    }
}

impl fmt::Display for TcbVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bl={} tee={} snp={} ucode={}",
            self.bootloader, self.tee, self.snp, self.microcode
        )?;
        if let Some(fmc) = self.fmc {
            write!(f, " fmc={fmc}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcbm_round_trip_matches_thim_sample() {
        // The ACI THIM sample: tcbm 7308000000000003 = ucode 0x73, snp 8, tee 0, bl 3.
        let raw = TcbVersion::raw_from_tcbm("7308000000000003").unwrap();
        let t = TcbVersion::decode(raw, Product::Milan);
        assert_eq!((t.bootloader, t.tee, t.snp, t.microcode), (3, 0, 8, 0x73));
        assert_eq!(t.tcbm(), "7308000000000003");
        assert_eq!(
            TcbVersion::raw_from_tcbm("7308000000000003".to_uppercase().as_str()),
            Some(raw)
        );
        assert_eq!(TcbVersion::raw_from_tcbm("73080000000000"), None);
        assert_eq!(TcbVersion::raw_from_tcbm("73080000000000zz"), None);
    }

    #[test]
    fn turin_layout() {
        let t = TcbVersion::encode(Product::Turin, 1, 1, 4, 81, 1);
        assert_eq!(t.raw, [1, 1, 1, 4, 0, 0, 0, 81]);
        assert_eq!(t.fmc, Some(1));
        assert!(t.meets(&TcbVersion::encode(Product::Turin, 1, 0, 4, 80, 1)));
        assert!(!t.meets(&TcbVersion::encode(Product::Turin, 1, 0, 5, 80, 1)));
    }
}
