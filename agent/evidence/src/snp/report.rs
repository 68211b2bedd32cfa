// SPDX-License-Identifier: Apache-2.0
//! The SEV-SNP `ATTESTATION_REPORT` (SEV-SNP Firmware ABI spec rev 1.55+, Table 22; 1184 bytes,
//! all integers little-endian). Offsets below are the spec's, in hex.
//!
//! The parsed value keeps the exact bytes received: [`SnpReport::signed_bytes`] slices them, so
//! the signature is checked over what the firmware produced, never over a re-encoding.

use serde::Serialize;
use thiserror::Error;

use crate::snp::{GuestPolicy, Product, TcbVersion};

/// Size of the report in bytes (0x4A0).
pub const SNP_REPORT_LEN: usize = 0x4a0;
/// The signature covers bytes `0x000..0x2A0`.
pub const SIGNED_LEN: usize = 0x2a0;
/// `signature_algo` value for ECDSA P-384 with SHA-384, the only one defined.
pub const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;

/// The bits of PLATFORM_INFO (SEV-SNP ABI, ATTESTATION_REPORT, offset 0x40) with their names,
/// as policies and output spell them.
pub const PLATFORM_INFO_BITS: [(u32, &str); 7] = [
    (0, "smt"),
    (1, "tsme"),
    (2, "ecc"),
    (3, "rapl_dis"),
    (4, "ciphertext_hiding"),
    (5, "alias_check_complete"),
    (7, "tio"),
];

/// The mask of a PLATFORM_INFO bit by its name in [`PLATFORM_INFO_BITS`].
pub fn platform_info_bit(name: &str) -> Option<u64> {
    PLATFORM_INFO_BITS
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name.trim()))
        .map(|(bit, _)| 1u64 << bit)
}

/// The names of the PLATFORM_INFO bits set in `value` (unknown bits as `bitN`).
pub fn platform_info_names(value: u64) -> Vec<String> {
    (0..64)
        .filter(|b| value & (1u64 << b) != 0)
        .map(|b| {
            PLATFORM_INFO_BITS
                .iter()
                .find(|(bit, _)| *bit == b)
                .map_or_else(|| format!("bit{b}"), |(_, n)| (*n).to_string())
        })
        .collect()
}

/// Which key signed the report (key info at 0x48, bits 4:2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SigningKey {
    Vcek,
    Vlek,
    /// Value 7: the report is not signed.
    None,
    /// Any other value, reserved by the spec.
    Reserved(u8),
}

/// Why a report could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportError {
    #[error("SEV-SNP report is {actual} bytes, expected {expected}")]
    Length { expected: usize, actual: usize },
    #[error("SEV-SNP report version {version} is not supported (thimble knows versions 2 to 5)")]
    UnsupportedVersion { version: u32 },
    #[error("SEV-SNP report signature_algo is {algo}, expected 1 (ECDSA P-384 with SHA-384)")]
    SignatureAlgorithm { algo: u32 },
    #[error("SEV-SNP report field {field} at offset {offset:#x} must be zero")]
    ReservedNotZero { field: &'static str, offset: usize },
    #[error("SEV-SNP report POLICY {policy:#x} has bit 17 clear, which the firmware requires set")]
    PolicyReservedBit { policy: u64 },
}

/// The reserved ranges of a report that must be zero, as `(start, end, name, versions)`: a
/// report with data there is not one the firmware produced (SEV-SNP ABI, ATTESTATION_REPORT
/// structure; the CPUID bytes were reserved before version 3). The mitigation vectors at
/// 0x1F8..0x208, reserved before version 5, are deliberately not on the list: they are covered
/// by the signature like every other byte, and firmware that fills them while writing an older
/// version would otherwise make genuine reports unreadable.
const RESERVED: [(usize, usize, &str, u32); 7] = [
    (0x04c, 0x050, "reserved after KEY_INFO", 2),
    (0x188, 0x18b, "CPUID (reserved before version 3)", 0),
    (0x18b, 0x1a0, "reserved after CPUID_STEP", 2),
    (0x1eb, 0x1ec, "reserved after CURRENT_MAJOR", 2),
    (0x1ef, 0x1f0, "reserved after COMMITTED_MAJOR", 2),
    (0x208, 0x2a0, "reserved before SIGNATURE", 2),
    (0x330, SNP_REPORT_LEN, "signature reserved", 2),
];

/// Key info bits 31:5 are reserved.
const KEY_INFO_RESERVED: u32 = !0x1f;

/// Checks every reserved range that applies to `version`. The CPUID entry applies to version 2
/// only (the `0` in the table means "versions below 3").
fn check_reserved(b: &[u8], version: u32) -> Result<(), ReportError> {
    for (start, end, field, from) in RESERVED {
        let applies = if from == 0 {
            version < 3
        } else {
            version >= from
        };
        if applies {
            if let Some(i) = b[start..end].iter().position(|&x| x != 0) {
                return Err(ReportError::ReservedNotZero {
                    field,
                    offset: start + i,
                });
            }
        }
    }
    if u32_at(b, 0x48) & KEY_INFO_RESERVED != 0 {
        return Err(ReportError::ReservedNotZero {
            field: "KEY_INFO bits 31:5",
            offset: 0x48,
        });
    }
    Ok(())
}

/// A parsed attestation report. Field names follow the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpReport {
    raw: Vec<u8>,
    pub version: u32,
    pub guest_svn: u32,
    pub policy: GuestPolicy,
    pub family_id: [u8; 16],
    pub image_id: [u8; 16],
    pub vmpl: u32,
    pub signature_algo: u32,
    pub current_tcb: [u8; 8],
    pub platform_info: u64,
    pub author_key_en: bool,
    pub mask_chip_key: bool,
    pub signing_key: SigningKey,
    pub report_data: [u8; 64],
    pub measurement: [u8; 48],
    pub host_data: [u8; 32],
    pub id_key_digest: [u8; 48],
    pub author_key_digest: [u8; 48],
    pub report_id: [u8; 32],
    pub report_id_ma: [u8; 32],
    pub reported_tcb: [u8; 8],
    /// Version 3+: CPUID family, model and stepping of the chip.
    pub cpuid: Option<(u8, u8, u8)>,
    pub chip_id: [u8; 64],
    pub committed_tcb: [u8; 8],
    /// (build, minor, major) of the running firmware.
    pub current_version: (u8, u8, u8),
    pub committed_version: (u8, u8, u8),
    pub launch_tcb: [u8; 8],
    /// Version 5+.
    pub launch_mit_vector: Option<u64>,
    pub current_mit_vector: Option<u64>,
    /// `r` and `s` as big-endian 48-byte integers (the report stores them little-endian in
    /// 72-byte fields).
    pub signature_r: [u8; 48],
    pub signature_s: [u8; 48],
}

fn arr<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[off..off + N]);
    a
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(arr(b, off))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(arr(b, off))
}

fn be_from_le_field(b: &[u8], off: usize) -> Result<[u8; 48], ReportError> {
    // The field is 72 bytes; a P-384 scalar has 48, the rest must be zero.
    if b[off + 48..off + 72].iter().any(|&x| x != 0) {
        return Err(ReportError::ReservedNotZero {
            field: "signature (high bytes)",
            offset: off + 48,
        });
    }
    let mut v: [u8; 48] = arr(b, off);
    v.reverse();
    Ok(v)
}

impl SnpReport {
    /// Parses exactly [`SNP_REPORT_LEN`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<SnpReport, ReportError> {
        if bytes.len() != SNP_REPORT_LEN {
            return Err(ReportError::Length {
                expected: SNP_REPORT_LEN,
                actual: bytes.len(),
            });
        }
        let b = bytes;
        let version = u32_at(b, 0x00);
        if !(2..=5).contains(&version) {
            return Err(ReportError::UnsupportedVersion { version });
        }
        let signature_algo = u32_at(b, 0x34);
        if signature_algo != SIG_ALGO_ECDSA_P384_SHA384 {
            return Err(ReportError::SignatureAlgorithm {
                algo: signature_algo,
            });
        }
        let key_info = u32_at(b, 0x48);
        let signing_key = match (key_info >> 2) & 0x7 {
            0 => SigningKey::Vcek,
            1 => SigningKey::Vlek,
            7 => SigningKey::None,
            other => SigningKey::Reserved(other as u8),
        };
        let cpuid = (version >= 3).then(|| (b[0x188], b[0x189], b[0x18a]));
        let (launch_mit_vector, current_mit_vector) = if version >= 5 {
            (Some(u64_at(b, 0x1f8)), Some(u64_at(b, 0x200)))
        } else {
            (None, None)
        };
        check_reserved(b, version)?;
        let policy = u64_at(b, 0x08);
        // Bit 17 is reserved and must be one, bits 63:26 are reserved and must be zero (SEV-SNP
        // ABI, guest policy structure): the firmware refuses to launch a guest with any other
        // policy, so a report that says otherwise was not produced by it.
        if policy & GuestPolicy::RESERVED_MUST_BE_ONE == 0 {
            return Err(ReportError::PolicyReservedBit { policy });
        }
        if policy & GuestPolicy::RESERVED_MUST_BE_ZERO != 0 {
            return Err(ReportError::ReservedNotZero {
                field: "POLICY bits 63:26",
                offset: 0x08,
            });
        }
        Ok(SnpReport {
            version,
            guest_svn: u32_at(b, 0x04),
            policy: GuestPolicy::decode(policy),
            family_id: arr(b, 0x10),
            image_id: arr(b, 0x20),
            vmpl: u32_at(b, 0x30),
            signature_algo,
            current_tcb: arr(b, 0x38),
            platform_info: u64_at(b, 0x40),
            author_key_en: key_info & 1 != 0,
            mask_chip_key: key_info & 2 != 0,
            signing_key,
            report_data: arr(b, 0x50),
            measurement: arr(b, 0x90),
            host_data: arr(b, 0xc0),
            id_key_digest: arr(b, 0xe0),
            author_key_digest: arr(b, 0x110),
            report_id: arr(b, 0x140),
            report_id_ma: arr(b, 0x160),
            reported_tcb: arr(b, 0x180),
            cpuid,
            chip_id: arr(b, 0x1a0),
            committed_tcb: arr(b, 0x1e0),
            current_version: (b[0x1e8], b[0x1e9], b[0x1ea]),
            committed_version: (b[0x1ec], b[0x1ed], b[0x1ee]),
            launch_tcb: arr(b, 0x1f0),
            launch_mit_vector,
            current_mit_vector,
            signature_r: be_from_le_field(b, 0x2a0)?,
            signature_s: be_from_le_field(b, 0x2e8)?,
            raw: bytes.to_vec(),
        })
    }

    /// The exact bytes received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The bytes the signature covers (`0x000..0x2A0` of what was received).
    pub fn signed_bytes(&self) -> &[u8] {
        &self.raw[..SIGNED_LEN]
    }

    /// `r || s`, big-endian, 96 bytes: the fixed-width form ECDSA verifiers take.
    pub fn signature_fixed(&self) -> [u8; 96] {
        let mut s = [0u8; 96];
        s[..48].copy_from_slice(&self.signature_r);
        s[48..].copy_from_slice(&self.signature_s);
        s
    }

    /// The product, where the report itself tells it: from CPUID (version 3+), else `None`.
    pub fn product_from_cpuid(&self) -> Option<Product> {
        self.cpuid
            .and_then(|(fam, model, _)| Product::from_cpuid(fam, model))
    }

    /// Whether the chip id looks like a Turin one (only the first 8 bytes set). With
    /// MASK_CHIP_ID the whole id is zero and this is false.
    pub fn chip_id_is_turin_shaped(&self) -> bool {
        self.chip_id[..8].iter().any(|&b| b != 0) && self.chip_id[8..].iter().all(|&b| b == 0)
    }

    /// Whether CHIP_ID is all zero (MASK_CHIP_ID set, or a VLEK-signed report).
    pub fn chip_id_masked(&self) -> bool {
        self.chip_id.iter().all(|&b| b == 0)
    }

    /// The product a verifier should assume when the report does not say (version 2): a Turin
    /// shaped chip id means Turin; otherwise the caller must take it from the certificate.
    pub fn product_hint(&self) -> Option<Product> {
        self.product_from_cpuid()
            .or_else(|| self.chip_id_is_turin_shaped().then_some(Product::Turin))
    }

    /// REPORTED_TCB decoded for `product`.
    pub fn reported_tcb(&self, product: Product) -> TcbVersion {
        TcbVersion::decode(self.reported_tcb, product)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank(version: u32) -> Vec<u8> {
        let mut b = vec![0u8; SNP_REPORT_LEN];
        b[0..4].copy_from_slice(&version.to_le_bytes());
        b[0x08..0x10].copy_from_slice(&0x3_0000u64.to_le_bytes());
        b[0x34..0x38].copy_from_slice(&1u32.to_le_bytes());
        b
    }

    #[test]
    fn reserved_fields_per_version() {
        // The offsets an independent review found accepted, and the rest of each range.
        for version in [2, 3, 5] {
            for at in [
                0x4c, 0x4f, 0x18b, 0x19f, 0x1eb, 0x1ef, 0x208, 0x29f, 0x330, 0x49f,
            ] {
                let mut b = blank(version);
                b[at] = 1;
                assert!(
                    matches!(
                        SnpReport::parse(&b),
                        Err(ReportError::ReservedNotZero { offset, .. }) if offset == at
                    ),
                    "version {version}, byte {at:#x}"
                );
            }
            let mut b = blank(version);
            b[0x48] = 0x20;
            assert!(matches!(
                SnpReport::parse(&b),
                Err(ReportError::ReservedNotZero { offset: 0x48, .. })
            ));
        }
        // CPUID bytes are reserved in version 2 and meaningful from version 3.
        let mut b = blank(2);
        b[0x188] = 0x19;
        assert!(matches!(
            SnpReport::parse(&b),
            Err(ReportError::ReservedNotZero { offset: 0x188, .. })
        ));
        let mut b = blank(3);
        b[0x188] = 0x19;
        assert_eq!(SnpReport::parse(&b).unwrap().cpuid, Some((0x19, 0, 0)));
        // Mitigation vectors are not rejected in older versions (see RESERVED).
        let mut b = blank(3);
        b[0x1f8] = 1;
        assert!(SnpReport::parse(&b).is_ok());
    }

    #[test]
    fn policy_reserved_bits() {
        let mut b = blank(3);
        b[0x08..0x10].copy_from_slice(&0x1_0000u64.to_le_bytes());
        assert_eq!(
            SnpReport::parse(&b),
            Err(ReportError::PolicyReservedBit { policy: 0x1_0000 })
        );
        b[0x08..0x10].copy_from_slice(&(0x3_0000u64 | 1 << 26).to_le_bytes());
        assert!(matches!(
            SnpReport::parse(&b),
            Err(ReportError::ReservedNotZero { offset: 0x08, .. })
        ));
    }

    #[test]
    fn rejects_wrong_length_version_and_algo() {
        assert_eq!(
            SnpReport::parse(&[0u8; 100]),
            Err(ReportError::Length {
                expected: 0x4a0,
                actual: 100
            })
        );
        assert_eq!(
            SnpReport::parse(&blank(1)),
            Err(ReportError::UnsupportedVersion { version: 1 })
        );
        let mut b = blank(2);
        b[0x34] = 2;
        assert_eq!(
            SnpReport::parse(&b),
            Err(ReportError::SignatureAlgorithm { algo: 2 })
        );
        let mut b = blank(2);
        b[0x400] = 1;
        assert!(matches!(
            SnpReport::parse(&b),
            Err(ReportError::ReservedNotZero { .. })
        ));
    }

    #[test]
    fn signature_is_converted_to_big_endian() {
        let mut b = blank(3);
        b[0x2a0] = 0x01; // least significant byte of r
        b[0x2e8 + 47] = 0x02; // most significant byte of s
        let r = SnpReport::parse(&b).unwrap();
        assert_eq!(r.signature_r[47], 0x01);
        assert_eq!(r.signature_s[0], 0x02);
        assert_eq!(r.signed_bytes().len(), 0x2a0);
        b[0x2a0 + 50] = 1;
        assert!(SnpReport::parse(&b).is_err());
    }
}
