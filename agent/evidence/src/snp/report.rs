// SPDX-License-Identifier: Apache-2.0
//! The SEV-SNP `ATTESTATION_REPORT` (SEV-SNP Firmware ABI spec rev 1.55+, Table 22; 1184 bytes,
//! all integers little-endian): its one layout table ([`layout`]), the decoder
//! ([`SnpReport::parse`]) and the encoder ([`SnpReportFields::to_bytes`]), both driven by that
//! table so that what thimble reads and what its simulator writes cannot drift apart. No I/O.
//!
//! The parsed value keeps the exact bytes received: [`SnpReport::signed_bytes`] slices them, so
//! the signature is checked over what the firmware produced, never over a re-encoding. The
//! encoder exists to build reports (the simulator, tests); a verifier has no use for it.

use std::fmt;
use std::ops::{Deref, Range};

use serde::Serialize;
use thiserror::Error;

use crate::snp::{GuestPolicy, Product, TcbVersion};

/// Size of the report in bytes (0x4A0).
pub const SNP_REPORT_LEN: usize = 0x4A0;
/// The signature covers bytes `0x000..0x2A0`: everything before SIGNATURE.
pub const SIGNED_LEN: usize = layout::SIGNATURE_R.offset();
/// `signature_algo` value for ECDSA P-384 with SHA-384, the only one defined.
pub const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;

/// Bytes of a P-384 scalar; the rest of each 72-byte signature component is zero.
const P384_SCALAR_LEN: usize = 48;

/// Where a field sits in the report. The size is the type parameter `N`, so reading or writing
/// a value of the wrong width does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<const N: usize> {
    offset: usize,
}

impl<const N: usize> Field<N> {
    /// Only [`layout`] makes fields; its constants are evaluated at compile time, so a field
    /// that would run past the end of the report fails the build, and the reads and writes
    /// below cannot go out of bounds.
    const fn at(offset: usize) -> Self {
        assert!(
            offset + N <= SNP_REPORT_LEN,
            "field runs past the end of the report"
        );
        Field { offset }
    }

    /// The offset of the first byte.
    pub const fn offset(self) -> usize {
        self.offset
    }

    /// The offset just past the last byte.
    pub const fn end(self) -> usize {
        self.offset + N
    }

    /// The bytes of the field within the report.
    pub const fn range(self) -> Range<usize> {
        self.offset..self.offset + N
    }

    fn read(self, report: &[u8; SNP_REPORT_LEN]) -> [u8; N] {
        let mut value = [0u8; N];
        value.copy_from_slice(&report[self.range()]);
        value
    }

    fn write(self, report: &mut [u8; SNP_REPORT_LEN], value: &[u8; N]) {
        report[self.range()].copy_from_slice(value);
    }
}

/// The layout of `ATTESTATION_REPORT` (SEV-SNP Firmware ABI spec, table "ATTESTATION_REPORT
/// Structure"), field by field in the spec's names and hex offsets, reserved ranges included,
/// so that the table tiles the 1184 bytes exactly (a unit test checks it). The decoder and the
/// encoder read and write only through these constants.
pub mod layout {
    use super::Field;

    /// VERSION (0x000): the report format version; the parser accepts 2 to 5.
    pub const VERSION: Field<4> = Field::at(0x000);
    /// GUEST_SVN (0x004): the guest's security version number, from its ID block.
    pub const GUEST_SVN: Field<4> = Field::at(0x004);
    /// POLICY (0x008): the guest policy word ([`GuestPolicy`](crate::snp::GuestPolicy)).
    pub const POLICY: Field<8> = Field::at(0x008);
    /// FAMILY_ID (0x010): the family ID from the ID block given at launch.
    pub const FAMILY_ID: Field<16> = Field::at(0x010);
    /// IMAGE_ID (0x020): the image ID from the ID block given at launch.
    pub const IMAGE_ID: Field<16> = Field::at(0x020);
    /// VMPL (0x030): the VMPL the report was requested for.
    pub const VMPL: Field<4> = Field::at(0x030);
    /// SIGNATURE_ALGO (0x034): 1 is ECDSA P-384 with SHA-384.
    pub const SIGNATURE_ALGO: Field<4> = Field::at(0x034);
    /// CURRENT_TCB (0x038): the TCB_VERSION the platform runs now.
    pub const CURRENT_TCB: Field<8> = Field::at(0x038);
    /// PLATFORM_INFO (0x040): platform flags, named in
    /// [`PLATFORM_INFO_BITS`](super::PLATFORM_INFO_BITS).
    pub const PLATFORM_INFO: Field<8> = Field::at(0x040);
    /// AUTHOR_KEY_EN (bit 0), MASK_CHIP_KEY (bit 1), SIGNING_KEY (bits 4:2); bits 31:5 are
    /// reserved.
    pub const KEY_INFO: Field<4> = Field::at(0x048);
    /// Reserved (0x04C).
    pub const RESERVED_04C: Field<4> = Field::at(0x04C);
    /// REPORT_DATA (0x050): the 64 bytes the guest supplied in its request.
    pub const REPORT_DATA: Field<64> = Field::at(0x050);
    /// MEASUREMENT (0x090): the SHA-384 launch digest of the guest.
    pub const MEASUREMENT: Field<48> = Field::at(0x090);
    /// HOST_DATA (0x0C0): data the hypervisor supplied at launch.
    pub const HOST_DATA: Field<32> = Field::at(0x0C0);
    /// ID_KEY_DIGEST (0x0E0): SHA-384 digest of the public key that signed the ID block.
    pub const ID_KEY_DIGEST: Field<48> = Field::at(0x0E0);
    /// AUTHOR_KEY_DIGEST (0x110): SHA-384 digest of the author key that certified the ID key
    /// (zero unless AUTHOR_KEY_EN).
    pub const AUTHOR_KEY_DIGEST: Field<48> = Field::at(0x110);
    /// REPORT_ID (0x140): the guest's report ID.
    pub const REPORT_ID: Field<32> = Field::at(0x140);
    /// REPORT_ID_MA (0x160): the report ID of the guest's migration agent.
    pub const REPORT_ID_MA: Field<32> = Field::at(0x160);
    /// REPORTED_TCB (0x180): the TCB_VERSION the signing VCEK was derived from.
    pub const REPORTED_TCB: Field<8> = Field::at(0x180);
    /// CPUID_FAM_ID (0x188): the chip's family (extended and base combined). It, CPUID_MOD_ID and
    /// CPUID_STEP are version 3 and later, reserved before.
    pub const CPUID_FAM_ID: Field<1> = Field::at(0x188);
    /// CPUID_MOD_ID (0x189): the chip's model (extended and base combined; version 3+).
    pub const CPUID_MOD_ID: Field<1> = Field::at(0x189);
    /// CPUID_STEP (0x18A): the stepping of the chip (version 3+).
    pub const CPUID_STEP: Field<1> = Field::at(0x18A);
    /// Reserved (0x18B..0x1A0).
    pub const RESERVED_18B: Field<0x15> = Field::at(0x18B);
    /// CHIP_ID (0x1A0): the chip's unique identifier, zero when masked.
    pub const CHIP_ID: Field<64> = Field::at(0x1A0);
    /// COMMITTED_TCB (0x1E0): the committed TCB_VERSION (the lowest the platform may roll back to).
    pub const COMMITTED_TCB: Field<8> = Field::at(0x1E0);
    /// CURRENT_BUILD (0x1E8): build number of the running firmware.
    pub const CURRENT_BUILD: Field<1> = Field::at(0x1E8);
    /// CURRENT_MINOR (0x1E9): minor version of the running firmware.
    pub const CURRENT_MINOR: Field<1> = Field::at(0x1E9);
    /// CURRENT_MAJOR (0x1EA): major version of the running firmware.
    pub const CURRENT_MAJOR: Field<1> = Field::at(0x1EA);
    /// Reserved (0x1EB).
    pub const RESERVED_1EB: Field<1> = Field::at(0x1EB);
    /// COMMITTED_BUILD (0x1EC): build number of the committed firmware.
    pub const COMMITTED_BUILD: Field<1> = Field::at(0x1EC);
    /// COMMITTED_MINOR (0x1ED): minor version of the committed firmware.
    pub const COMMITTED_MINOR: Field<1> = Field::at(0x1ED);
    /// COMMITTED_MAJOR (0x1EE): major version of the committed firmware.
    pub const COMMITTED_MAJOR: Field<1> = Field::at(0x1EE);
    /// Reserved (0x1EF).
    pub const RESERVED_1EF: Field<1> = Field::at(0x1EF);
    /// LAUNCH_TCB (0x1F0): the CURRENT_TCB when the guest was launched or imported.
    pub const LAUNCH_TCB: Field<8> = Field::at(0x1F0);
    /// LAUNCH_MIT_VECTOR (0x1F8): the mitigations applied when the guest was launched. It and
    /// CURRENT_MIT_VECTOR are version 5 and later, reserved before.
    pub const LAUNCH_MIT_VECTOR: Field<8> = Field::at(0x1F8);
    /// CURRENT_MIT_VECTOR (0x200): the mitigations the platform applies now (version 5+).
    pub const CURRENT_MIT_VECTOR: Field<8> = Field::at(0x200);
    /// Reserved (0x208..0x2A0).
    pub const RESERVED_208: Field<0x98> = Field::at(0x208);
    /// SIGNATURE (0x2A0, 0x200 bytes) in the spec's ECDSA P-384 with SHA-384 signature format:
    /// R and S as 72-byte little-endian integers, then reserved.
    pub const SIGNATURE_R: Field<72> = Field::at(0x2A0);
    /// S of SIGNATURE (0x2E8), 72 bytes little-endian.
    pub const SIGNATURE_S: Field<72> = Field::at(0x2E8);
    /// The reserved rest of SIGNATURE (0x330..0x4A0).
    pub const SIGNATURE_RESERVED: Field<0x170> = Field::at(0x330);
}

/// Version 3 added CPUID_FAM_ID, CPUID_MOD_ID and CPUID_STEP.
fn has_cpuid(version: u32) -> bool {
    version >= 3
}

/// Version 5 added LAUNCH_MIT_VECTOR and CURRENT_MIT_VECTOR.
fn has_mit_vectors(version: u32) -> bool {
    version >= 5
}

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

/// Which key signed the report (KEY_INFO bits 4:2).
///
/// Serialised (and displayed) as the bundle's `claims.signing_key` has it: `vcek`, `vlek`, `none`
/// or `reserved-N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningKey {
    /// 0: the chip's VCEK.
    Vcek,
    /// 1: the VLEK, a key AMD provisions to a cloud provider.
    Vlek,
    /// Value 7: the report is not signed.
    None,
    /// Any other value, reserved by the spec.
    Reserved(u8),
}

impl SigningKey {
    /// The key named by the 3-bit SIGNING_KEY value (higher bits are ignored).
    pub fn from_bits(bits: u8) -> SigningKey {
        match bits & 0x7 {
            0 => SigningKey::Vcek,
            1 => SigningKey::Vlek,
            7 => SigningKey::None,
            other => SigningKey::Reserved(other),
        }
    }

    /// The 3-bit SIGNING_KEY value ([`SigningKey::Reserved`] keeps its low three bits).
    pub fn to_bits(self) -> u8 {
        match self {
            SigningKey::Vcek => 0,
            SigningKey::Vlek => 1,
            SigningKey::None => 7,
            SigningKey::Reserved(bits) => bits & 0x7,
        }
    }
}

impl fmt::Display for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigningKey::Vcek => f.write_str("vcek"),
            SigningKey::Vlek => f.write_str("vlek"),
            SigningKey::None => f.write_str("none"),
            SigningKey::Reserved(v) => write!(f, "reserved-{v}"),
        }
    }
}

impl Serialize for SigningKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a report could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportError {
    /// The input is not exactly [`SNP_REPORT_LEN`] bytes.
    #[error("SEV-SNP report is {actual} bytes, expected {expected}")]
    Length {
        /// Always [`SNP_REPORT_LEN`].
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// VERSION is outside 2..=5.
    #[error("SEV-SNP report version {version} is not supported (thimble knows versions 2 to 5)")]
    UnsupportedVersion {
        /// VERSION as read.
        version: u32,
    },
    /// SIGNATURE_ALGO is not [`SIG_ALGO_ECDSA_P384_SHA384`].
    #[error("SEV-SNP report signature_algo is {algo}, expected 1 (ECDSA P-384 with SHA-384)")]
    SignatureAlgorithm {
        /// SIGNATURE_ALGO as read.
        algo: u32,
    },
    /// A reserved range (or reserved bits of KEY_INFO, POLICY or the signature) is not zero.
    #[error("SEV-SNP report field {field} at offset {offset:#x} must be zero")]
    ReservedNotZero {
        /// Which reserved range or bits.
        field: &'static str,
        /// The first non-zero byte of a reserved range; for reserved bits, and for the high bytes
        /// of a signature component, where they start.
        offset: usize,
    },
    /// POLICY bit 17, which must be one, is clear.
    #[error("SEV-SNP report POLICY {policy:#x} has bit 17 clear, which the firmware requires set")]
    PolicyReservedBit {
        /// POLICY as read.
        policy: u64,
    },
}

/// A range that must be zero: a report with data there is not one the firmware produced.
struct Reserved {
    range: Range<usize>,
    /// How errors name it.
    field: &'static str,
    /// Whether it is reserved in a version.
    applies: fn(u32) -> bool,
}

/// The reserved ranges (the CPUID bytes were reserved before version 3). The mitigation vectors,
/// reserved before version 5, are deliberately not on the list: they are covered by the
/// signature like every other byte, and firmware that fills them while writing an older version
/// would otherwise make genuine reports unreadable.
const RESERVED: [Reserved; 7] = [
    Reserved {
        range: layout::RESERVED_04C.range(),
        field: "reserved after KEY_INFO",
        applies: any_version,
    },
    Reserved {
        range: layout::CPUID_FAM_ID.offset()..layout::CPUID_STEP.end(),
        field: "CPUID (reserved before version 3)",
        applies: lacks_cpuid,
    },
    Reserved {
        range: layout::RESERVED_18B.range(),
        field: "reserved after CPUID_STEP",
        applies: any_version,
    },
    Reserved {
        range: layout::RESERVED_1EB.range(),
        field: "reserved after CURRENT_MAJOR",
        applies: any_version,
    },
    Reserved {
        range: layout::RESERVED_1EF.range(),
        field: "reserved after COMMITTED_MAJOR",
        applies: any_version,
    },
    Reserved {
        range: layout::RESERVED_208.range(),
        field: "reserved before SIGNATURE",
        applies: any_version,
    },
    Reserved {
        range: layout::SIGNATURE_RESERVED.range(),
        field: "signature reserved",
        applies: any_version,
    },
];

fn any_version(_: u32) -> bool {
    true
}

fn lacks_cpuid(version: u32) -> bool {
    !has_cpuid(version)
}

/// Key info bits 31:5 are reserved.
const KEY_INFO_RESERVED: u32 = !0x1f;

/// Checks every reserved range that applies to `version`.
fn check_reserved(b: &[u8; SNP_REPORT_LEN], version: u32) -> Result<(), ReportError> {
    for Reserved {
        range,
        field,
        applies,
    } in RESERVED
    {
        if applies(version) {
            let start = range.start;
            if let Some(i) = b[range].iter().position(|&x| x != 0) {
                return Err(ReportError::ReservedNotZero {
                    field,
                    offset: start + i,
                });
            }
        }
    }
    if u32_at(b, layout::KEY_INFO) & KEY_INFO_RESERVED != 0 {
        return Err(ReportError::ReservedNotZero {
            field: "KEY_INFO bits 31:5",
            offset: layout::KEY_INFO.offset(),
        });
    }
    Ok(())
}

/// Every field of a report as plain values, named as in the spec: what [`SnpReport::parse`]
/// reads and what [`SnpReportFields::to_bytes`] writes.
///
/// Encoding then parsing gives the same fields back when they are consistent with `version`:
/// `cpuid` is `Some` exactly from version 3, the mitigation vectors exactly from version 5 (the
/// encoder writes neither for a version without them), `policy` is `GuestPolicy::decode` of the
/// word (the encoder writes `policy.raw`), and `signing_key` is not `Reserved(0)`, `(1)` or
/// `(7)`. The encoder writes what it is given, including values the parser rejects (a version it
/// does not know, another `signature_algo`), so that tests can build such reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpReportFields {
    /// VERSION.
    pub version: u32,
    /// GUEST_SVN, from the ID block.
    pub guest_svn: u32,
    /// POLICY, decoded.
    pub policy: GuestPolicy,
    /// FAMILY_ID, from the ID block.
    pub family_id: [u8; 16],
    /// IMAGE_ID, from the ID block.
    pub image_id: [u8; 16],
    /// VMPL the report was requested for (0-3).
    pub vmpl: u32,
    /// SIGNATURE_ALGO; parsed reports always hold [`SIG_ALGO_ECDSA_P384_SHA384`].
    pub signature_algo: u32,
    /// CURRENT_TCB, raw; decode with [`TcbVersion::decode`] and the product.
    pub current_tcb: [u8; 8],
    /// PLATFORM_INFO (see [`PLATFORM_INFO_BITS`]).
    pub platform_info: u64,
    /// KEY_INFO bit 0, AUTHOR_KEY_EN: AUTHOR_KEY_DIGEST is present.
    pub author_key_en: bool,
    /// KEY_INFO bit 1, MASK_CHIP_KEY: the platform's MaskChipKey setting.
    pub mask_chip_key: bool,
    /// KEY_INFO bits 4:2, SIGNING_KEY: which key signed the report.
    pub signing_key: SigningKey,
    /// REPORT_DATA: the 64 bytes the guest supplied (see [`crate::report_data`]).
    pub report_data: [u8; 64],
    /// MEASUREMENT: the SHA-384 launch digest.
    pub measurement: [u8; 48],
    /// HOST_DATA: supplied by the hypervisor at launch.
    pub host_data: [u8; 32],
    /// ID_KEY_DIGEST: SHA-384 of the ID block's signing key (zero without an ID block).
    pub id_key_digest: [u8; 48],
    /// AUTHOR_KEY_DIGEST: SHA-384 of the author key (zero unless `author_key_en`).
    pub author_key_digest: [u8; 48],
    /// REPORT_ID.
    pub report_id: [u8; 32],
    /// REPORT_ID_MA: the migration agent's report ID.
    pub report_id_ma: [u8; 32],
    /// REPORTED_TCB, raw: the TCB the VCEK was derived from (see [`SnpReport::reported_tcb`]).
    pub reported_tcb: [u8; 8],
    /// Version 3+: CPUID family, model and stepping of the chip.
    pub cpuid: Option<(u8, u8, u8)>,
    /// CHIP_ID; all zero when masked. Turin chips fill only the first 8 bytes.
    pub chip_id: [u8; 64],
    /// COMMITTED_TCB, raw.
    pub committed_tcb: [u8; 8],
    /// (build, minor, major) of the running firmware.
    pub current_version: (u8, u8, u8),
    /// (build, minor, major) of the committed firmware.
    pub committed_version: (u8, u8, u8),
    /// LAUNCH_TCB, raw.
    pub launch_tcb: [u8; 8],
    /// LAUNCH_MIT_VECTOR; version 5+.
    pub launch_mit_vector: Option<u64>,
    /// CURRENT_MIT_VECTOR; version 5+.
    pub current_mit_vector: Option<u64>,
    /// `r` and `s` as big-endian 48-byte integers (the report stores them little-endian in
    /// 72-byte fields).
    pub signature_r: [u8; 48],
    /// `s`, big-endian (see `signature_r`).
    pub signature_s: [u8; 48],
}

/// A parsed attestation report: its fields, read through `Deref` (`report.measurement`), and
/// the bytes they were read from. There is no `DerefMut`, so the fields cannot drift from the
/// bytes the signature is checked over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpReport {
    raw: Vec<u8>,
    fields: SnpReportFields,
}

fn u8_at(b: &[u8; SNP_REPORT_LEN], field: Field<1>) -> u8 {
    field.read(b)[0]
}

fn u32_at(b: &[u8; SNP_REPORT_LEN], field: Field<4>) -> u32 {
    u32::from_le_bytes(field.read(b))
}

fn u64_at(b: &[u8; SNP_REPORT_LEN], field: Field<8>) -> u64 {
    u64::from_le_bytes(field.read(b))
}

fn be_from_le_field(b: &[u8; SNP_REPORT_LEN], field: Field<72>) -> Result<[u8; 48], ReportError> {
    let le = field.read(b);
    // The field is 72 bytes; a P-384 scalar has 48, the rest must be zero.
    if le[P384_SCALAR_LEN..].iter().any(|&x| x != 0) {
        return Err(ReportError::ReservedNotZero {
            field: "signature (high bytes)",
            offset: field.offset() + P384_SCALAR_LEN,
        });
    }
    let mut be = [0u8; P384_SCALAR_LEN];
    for (dst, src) in be.iter_mut().zip(le[..P384_SCALAR_LEN].iter().rev()) {
        *dst = *src;
    }
    Ok(be)
}

fn write_le_field(b: &mut [u8; SNP_REPORT_LEN], field: Field<72>, be: &[u8; 48]) {
    let mut le = [0u8; 72];
    for (dst, src) in le.iter_mut().zip(be.iter().rev()) {
        *dst = *src;
    }
    field.write(b, &le);
}

fn join_signature(r: &[u8; 48], s: &[u8; 48]) -> [u8; 96] {
    let mut fixed = [0u8; 96];
    fixed[..P384_SCALAR_LEN].copy_from_slice(r);
    fixed[P384_SCALAR_LEN..].copy_from_slice(s);
    fixed
}

/// Puts an ECDSA P-384 signature into `report`: `signature` is `r || s`, big-endian, 48 bytes
/// each (the fixed form signers produce and [`SnpReport::signature_fixed`] returns); the report
/// stores each as a 72-byte little-endian field, zero-extended. The reserved rest of SIGNATURE
/// is left as it is.
pub fn write_signature(report: &mut [u8; SNP_REPORT_LEN], signature: &[u8; 96]) {
    let mut r = [0u8; P384_SCALAR_LEN];
    let mut s = [0u8; P384_SCALAR_LEN];
    r.copy_from_slice(&signature[..P384_SCALAR_LEN]);
    s.copy_from_slice(&signature[P384_SCALAR_LEN..]);
    write_le_field(report, layout::SIGNATURE_R, &r);
    write_le_field(report, layout::SIGNATURE_S, &s);
}

impl SnpReportFields {
    /// Reads and checks the fields. The order of the checks decides which error a report with
    /// several faults gets, and the error names are stable, so keep it.
    fn decode(b: &[u8; SNP_REPORT_LEN]) -> Result<SnpReportFields, ReportError> {
        let version = u32_at(b, layout::VERSION);
        if !(2..=5).contains(&version) {
            return Err(ReportError::UnsupportedVersion { version });
        }
        let signature_algo = u32_at(b, layout::SIGNATURE_ALGO);
        if signature_algo != SIG_ALGO_ECDSA_P384_SHA384 {
            return Err(ReportError::SignatureAlgorithm {
                algo: signature_algo,
            });
        }
        let key_info = u32_at(b, layout::KEY_INFO);
        // Bits 4:2, so the cast keeps all of them.
        let signing_key = SigningKey::from_bits(((key_info >> 2) & 0x7) as u8);
        let cpuid = has_cpuid(version).then(|| {
            (
                u8_at(b, layout::CPUID_FAM_ID),
                u8_at(b, layout::CPUID_MOD_ID),
                u8_at(b, layout::CPUID_STEP),
            )
        });
        let (launch_mit_vector, current_mit_vector) = if has_mit_vectors(version) {
            (
                Some(u64_at(b, layout::LAUNCH_MIT_VECTOR)),
                Some(u64_at(b, layout::CURRENT_MIT_VECTOR)),
            )
        } else {
            (None, None)
        };
        check_reserved(b, version)?;
        let policy = u64_at(b, layout::POLICY);
        // Bit 17 is reserved and must be one, bits 63:26 are reserved and must be zero (SEV-SNP
        // ABI, guest policy structure): the firmware refuses to launch a guest with any other
        // policy, so a report that says otherwise was not produced by it.
        if policy & GuestPolicy::RESERVED_MUST_BE_ONE == 0 {
            return Err(ReportError::PolicyReservedBit { policy });
        }
        if policy & GuestPolicy::RESERVED_MUST_BE_ZERO != 0 {
            return Err(ReportError::ReservedNotZero {
                field: "POLICY bits 63:26",
                offset: layout::POLICY.offset(),
            });
        }
        Ok(SnpReportFields {
            version,
            guest_svn: u32_at(b, layout::GUEST_SVN),
            policy: GuestPolicy::decode(policy),
            family_id: layout::FAMILY_ID.read(b),
            image_id: layout::IMAGE_ID.read(b),
            vmpl: u32_at(b, layout::VMPL),
            signature_algo,
            current_tcb: layout::CURRENT_TCB.read(b),
            platform_info: u64_at(b, layout::PLATFORM_INFO),
            author_key_en: key_info & 1 != 0,
            mask_chip_key: key_info & 2 != 0,
            signing_key,
            report_data: layout::REPORT_DATA.read(b),
            measurement: layout::MEASUREMENT.read(b),
            host_data: layout::HOST_DATA.read(b),
            id_key_digest: layout::ID_KEY_DIGEST.read(b),
            author_key_digest: layout::AUTHOR_KEY_DIGEST.read(b),
            report_id: layout::REPORT_ID.read(b),
            report_id_ma: layout::REPORT_ID_MA.read(b),
            reported_tcb: layout::REPORTED_TCB.read(b),
            cpuid,
            chip_id: layout::CHIP_ID.read(b),
            committed_tcb: layout::COMMITTED_TCB.read(b),
            current_version: (
                u8_at(b, layout::CURRENT_BUILD),
                u8_at(b, layout::CURRENT_MINOR),
                u8_at(b, layout::CURRENT_MAJOR),
            ),
            committed_version: (
                u8_at(b, layout::COMMITTED_BUILD),
                u8_at(b, layout::COMMITTED_MINOR),
                u8_at(b, layout::COMMITTED_MAJOR),
            ),
            launch_tcb: layout::LAUNCH_TCB.read(b),
            launch_mit_vector,
            current_mit_vector,
            signature_r: be_from_le_field(b, layout::SIGNATURE_R)?,
            signature_s: be_from_le_field(b, layout::SIGNATURE_S)?,
        })
    }

    /// The report with every field laid out and SIGNATURE zero: the form the firmware signs
    /// (bytes `0x000..0x2A0`). Reserved ranges stay zero; CPUID is written from version 3 and
    /// the mitigation vectors from version 5, as the parser reads them.
    pub fn to_unsigned_bytes(&self) -> [u8; SNP_REPORT_LEN] {
        let mut b = [0u8; SNP_REPORT_LEN];
        layout::VERSION.write(&mut b, &self.version.to_le_bytes());
        layout::GUEST_SVN.write(&mut b, &self.guest_svn.to_le_bytes());
        layout::POLICY.write(&mut b, &self.policy.raw.to_le_bytes());
        layout::FAMILY_ID.write(&mut b, &self.family_id);
        layout::IMAGE_ID.write(&mut b, &self.image_id);
        layout::VMPL.write(&mut b, &self.vmpl.to_le_bytes());
        layout::SIGNATURE_ALGO.write(&mut b, &self.signature_algo.to_le_bytes());
        layout::CURRENT_TCB.write(&mut b, &self.current_tcb);
        layout::PLATFORM_INFO.write(&mut b, &self.platform_info.to_le_bytes());
        let key_info = u32::from(self.author_key_en)
            | (u32::from(self.mask_chip_key) << 1)
            | (u32::from(self.signing_key.to_bits()) << 2);
        layout::KEY_INFO.write(&mut b, &key_info.to_le_bytes());
        layout::REPORT_DATA.write(&mut b, &self.report_data);
        layout::MEASUREMENT.write(&mut b, &self.measurement);
        layout::HOST_DATA.write(&mut b, &self.host_data);
        layout::ID_KEY_DIGEST.write(&mut b, &self.id_key_digest);
        layout::AUTHOR_KEY_DIGEST.write(&mut b, &self.author_key_digest);
        layout::REPORT_ID.write(&mut b, &self.report_id);
        layout::REPORT_ID_MA.write(&mut b, &self.report_id_ma);
        layout::REPORTED_TCB.write(&mut b, &self.reported_tcb);
        if has_cpuid(self.version) {
            let (fam, model, step) = self.cpuid.unwrap_or_default();
            layout::CPUID_FAM_ID.write(&mut b, &[fam]);
            layout::CPUID_MOD_ID.write(&mut b, &[model]);
            layout::CPUID_STEP.write(&mut b, &[step]);
        }
        layout::CHIP_ID.write(&mut b, &self.chip_id);
        layout::COMMITTED_TCB.write(&mut b, &self.committed_tcb);
        let (build, minor, major) = self.current_version;
        layout::CURRENT_BUILD.write(&mut b, &[build]);
        layout::CURRENT_MINOR.write(&mut b, &[minor]);
        layout::CURRENT_MAJOR.write(&mut b, &[major]);
        let (build, minor, major) = self.committed_version;
        layout::COMMITTED_BUILD.write(&mut b, &[build]);
        layout::COMMITTED_MINOR.write(&mut b, &[minor]);
        layout::COMMITTED_MAJOR.write(&mut b, &[major]);
        layout::LAUNCH_TCB.write(&mut b, &self.launch_tcb);
        if has_mit_vectors(self.version) {
            let launch = self.launch_mit_vector.unwrap_or(0);
            let current = self.current_mit_vector.unwrap_or(0);
            layout::LAUNCH_MIT_VECTOR.write(&mut b, &launch.to_le_bytes());
            layout::CURRENT_MIT_VECTOR.write(&mut b, &current.to_le_bytes());
        }
        b
    }

    /// The whole report: [`SnpReportFields::to_unsigned_bytes`] with `signature_r` and
    /// `signature_s` written in.
    pub fn to_bytes(&self) -> [u8; SNP_REPORT_LEN] {
        let mut b = self.to_unsigned_bytes();
        write_signature(
            &mut b,
            &join_signature(&self.signature_r, &self.signature_s),
        );
        b
    }
}

impl Deref for SnpReport {
    type Target = SnpReportFields;

    fn deref(&self) -> &SnpReportFields {
        &self.fields
    }
}

impl SnpReport {
    /// Parses exactly [`SNP_REPORT_LEN`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<SnpReport, ReportError> {
        let b: &[u8; SNP_REPORT_LEN] = bytes.try_into().map_err(|_| ReportError::Length {
            expected: SNP_REPORT_LEN,
            actual: bytes.len(),
        })?;
        Ok(SnpReport {
            fields: SnpReportFields::decode(b)?,
            raw: bytes.to_vec(),
        })
    }

    /// The fields as read.
    pub fn fields(&self) -> &SnpReportFields {
        &self.fields
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
        join_signature(&self.signature_r, &self.signature_s)
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

    /// `N` bytes counting up from `seed`, so that a field written at the wrong place or with the
    /// wrong width shows.
    fn pattern<const N: usize>(seed: u8) -> [u8; N] {
        std::array::from_fn(|i| seed.wrapping_add(i as u8))
    }

    /// A report of `version` with every field set to a value of its own, consistent with the
    /// version (see [`SnpReportFields`]).
    fn sample(version: u32) -> SnpReportFields {
        SnpReportFields {
            version,
            guest_svn: 0x0102_0304,
            policy: GuestPolicy::decode(0x3_0000 | GuestPolicy::DEBUG_BIT | 0x1f),
            family_id: pattern(0x10),
            image_id: pattern(0x20),
            vmpl: 2,
            signature_algo: SIG_ALGO_ECDSA_P384_SHA384,
            current_tcb: pattern(0x38),
            platform_info: 0x25,
            author_key_en: true,
            mask_chip_key: false,
            signing_key: SigningKey::Vlek,
            report_data: pattern(0x50),
            measurement: pattern(0x90),
            host_data: pattern(0xc0),
            id_key_digest: pattern(0xe0),
            author_key_digest: pattern(0x11),
            report_id: pattern(0x40),
            report_id_ma: pattern(0x60),
            reported_tcb: [3, 0, 0, 0, 0, 0, 8, 115],
            cpuid: has_cpuid(version).then_some((0x19, 0x01, 0x01)),
            chip_id: pattern(0xa0),
            committed_tcb: [2, 0, 0, 0, 0, 0, 7, 114],
            current_version: (29, 55, 1),
            committed_version: (28, 54, 1),
            launch_tcb: [1, 0, 0, 0, 0, 0, 6, 113],
            launch_mit_vector: has_mit_vectors(version).then_some(0x1122_3344_5566_7788),
            current_mit_vector: has_mit_vectors(version).then_some(0x99aa_bbcc_ddee_ff00),
            signature_r: pattern(0xb0),
            signature_s: pattern(0xd0),
        }
    }

    #[test]
    fn layout_tiles_the_report() {
        use layout::*;
        let fields = [
            VERSION.range(),
            GUEST_SVN.range(),
            POLICY.range(),
            FAMILY_ID.range(),
            IMAGE_ID.range(),
            VMPL.range(),
            SIGNATURE_ALGO.range(),
            CURRENT_TCB.range(),
            PLATFORM_INFO.range(),
            KEY_INFO.range(),
            RESERVED_04C.range(),
            REPORT_DATA.range(),
            MEASUREMENT.range(),
            HOST_DATA.range(),
            ID_KEY_DIGEST.range(),
            AUTHOR_KEY_DIGEST.range(),
            REPORT_ID.range(),
            REPORT_ID_MA.range(),
            REPORTED_TCB.range(),
            CPUID_FAM_ID.range(),
            CPUID_MOD_ID.range(),
            CPUID_STEP.range(),
            RESERVED_18B.range(),
            CHIP_ID.range(),
            COMMITTED_TCB.range(),
            CURRENT_BUILD.range(),
            CURRENT_MINOR.range(),
            CURRENT_MAJOR.range(),
            RESERVED_1EB.range(),
            COMMITTED_BUILD.range(),
            COMMITTED_MINOR.range(),
            COMMITTED_MAJOR.range(),
            RESERVED_1EF.range(),
            LAUNCH_TCB.range(),
            LAUNCH_MIT_VECTOR.range(),
            CURRENT_MIT_VECTOR.range(),
            RESERVED_208.range(),
            SIGNATURE_R.range(),
            SIGNATURE_S.range(),
            SIGNATURE_RESERVED.range(),
        ];
        let mut at = 0;
        for range in fields {
            assert_eq!(range.start, at, "gap or overlap at {at:#x}");
            at = range.end;
        }
        assert_eq!(at, SNP_REPORT_LEN);
        assert_eq!(SIGNED_LEN, 0x2a0);
    }

    #[test]
    fn round_trips_every_version() {
        for version in [2, 3, 5] {
            let fields = sample(version);
            let bytes = fields.to_bytes();
            let parsed = SnpReport::parse(&bytes).unwrap();
            assert_eq!(parsed.fields(), &fields, "version {version}");
            assert_eq!(parsed.as_bytes(), bytes, "version {version}");
            assert_eq!(parsed.fields().to_bytes(), bytes, "version {version}");
            // The unsigned form is the same report with a zero SIGNATURE.
            let unsigned = fields.to_unsigned_bytes();
            assert_eq!(unsigned[..SIGNED_LEN], bytes[..SIGNED_LEN]);
            assert!(unsigned[SIGNED_LEN..].iter().all(|&b| b == 0));
            let parsed = SnpReport::parse(&unsigned).unwrap();
            assert_eq!((parsed.signature_r, parsed.signature_s), ([0; 48], [0; 48]));
        }
    }

    #[test]
    fn every_field_lands_in_its_own_bytes() {
        use layout::*;
        // For each field: its bytes, whether the version has it, and an edit of its value.
        type Present = fn(u32) -> bool;
        type Edit = fn(&mut SnpReportFields);
        let always: Present = any_version;
        let edits: [(&str, Range<usize>, Present, Edit); 30] = [
            // Any version above 5 has the fields of version 5, so only VERSION's bytes change.
            ("version", VERSION.range(), always, |f| f.version += 0x100),
            ("guest_svn", GUEST_SVN.range(), always, |f| f.guest_svn = 9),
            ("policy", POLICY.range(), always, |f| {
                f.policy = GuestPolicy::decode(0x3_0000)
            }),
            ("family_id", FAMILY_ID.range(), always, |f| {
                f.family_id[15] ^= 1
            }),
            ("image_id", IMAGE_ID.range(), always, |f| f.image_id[0] ^= 1),
            ("vmpl", VMPL.range(), always, |f| f.vmpl = 3),
            ("signature_algo", SIGNATURE_ALGO.range(), always, |f| {
                f.signature_algo = 2
            }),
            ("current_tcb", CURRENT_TCB.range(), always, |f| {
                f.current_tcb[7] ^= 1
            }),
            ("platform_info", PLATFORM_INFO.range(), always, |f| {
                f.platform_info = 1 << 63
            }),
            ("author_key_en", KEY_INFO.range(), always, |f| {
                f.author_key_en = false
            }),
            ("mask_chip_key", KEY_INFO.range(), always, |f| {
                f.mask_chip_key = true
            }),
            ("signing_key", KEY_INFO.range(), always, |f| {
                f.signing_key = SigningKey::None
            }),
            ("report_data", REPORT_DATA.range(), always, |f| {
                f.report_data[63] ^= 1
            }),
            ("measurement", MEASUREMENT.range(), always, |f| {
                f.measurement[47] ^= 1
            }),
            ("host_data", HOST_DATA.range(), always, |f| {
                f.host_data[31] ^= 1
            }),
            ("id_key_digest", ID_KEY_DIGEST.range(), always, |f| {
                f.id_key_digest[0] ^= 1
            }),
            (
                "author_key_digest",
                AUTHOR_KEY_DIGEST.range(),
                always,
                |f| f.author_key_digest[47] ^= 1,
            ),
            ("report_id", REPORT_ID.range(), always, |f| {
                f.report_id[0] ^= 1
            }),
            ("report_id_ma", REPORT_ID_MA.range(), always, |f| {
                f.report_id_ma[31] ^= 1
            }),
            ("reported_tcb", REPORTED_TCB.range(), always, |f| {
                f.reported_tcb[0] ^= 1
            }),
            (
                "cpuid",
                CPUID_FAM_ID.offset()..CPUID_STEP.end(),
                has_cpuid,
                |f| f.cpuid = Some((0x1a, 0x02, 0x03)),
            ),
            ("chip_id", CHIP_ID.range(), always, |f| f.chip_id[63] ^= 1),
            ("committed_tcb", COMMITTED_TCB.range(), always, |f| {
                f.committed_tcb[6] ^= 1
            }),
            (
                "current_version",
                CURRENT_BUILD.offset()..CURRENT_MAJOR.end(),
                always,
                |f| f.current_version = (1, 2, 3),
            ),
            (
                "committed_version",
                COMMITTED_BUILD.offset()..COMMITTED_MAJOR.end(),
                always,
                |f| f.committed_version = (4, 5, 6),
            ),
            ("launch_tcb", LAUNCH_TCB.range(), always, |f| {
                f.launch_tcb[1] ^= 1
            }),
            (
                "launch_mit_vector",
                LAUNCH_MIT_VECTOR.range(),
                has_mit_vectors,
                |f| f.launch_mit_vector = Some(u64::MAX),
            ),
            (
                "current_mit_vector",
                CURRENT_MIT_VECTOR.range(),
                has_mit_vectors,
                |f| f.current_mit_vector = Some(1),
            ),
            ("signature_r", SIGNATURE_R.range(), always, |f| {
                f.signature_r[0] ^= 1
            }),
            ("signature_s", SIGNATURE_S.range(), always, |f| {
                f.signature_s[47] ^= 1
            }),
        ];
        for version in [2, 3, 5] {
            let base = sample(version);
            let before = base.to_bytes();
            for (name, range, present, edit) in &edits {
                let mut fields = base.clone();
                edit(&mut fields);
                assert_ne!(fields, base, "{name}: the edit changes nothing");
                let after = fields.to_bytes();
                let changed: Vec<usize> = (0..SNP_REPORT_LEN)
                    .filter(|&i| before[i] != after[i])
                    .collect();
                if !present(version) {
                    // Written only for the versions that have it, exactly as the parser reads.
                    assert!(changed.is_empty(), "{name} written in version {version}");
                    continue;
                }
                assert!(
                    !changed.is_empty(),
                    "{name} not written in version {version}"
                );
                assert!(
                    changed.iter().all(|i| range.contains(i)),
                    "{name} in version {version} wrote outside {range:#x?}: {changed:#x?}"
                );
                // What the parser accepts comes back as it went in; it rejects these two edits.
                if !["signature_algo", "version"].contains(name) {
                    assert_eq!(
                        SnpReport::parse(&after).unwrap().fields(),
                        &fields,
                        "{name} in version {version}"
                    );
                }
            }
        }
    }

    #[test]
    fn encoding_agrees_with_the_sev_crate() {
        use sev::firmware::guest::AttestationReport;
        use sev::parser::ByteParser;

        // An independent parser reads what the encoder wrote: the round trips above cannot see a
        // wrong offset in the shared table, this can.
        for version in [2, 3, 5] {
            let ours = sample(version);
            let bytes = ours.to_bytes();
            let theirs = AttestationReport::from_bytes(&bytes).unwrap();
            assert_eq!(theirs.version, version);
            assert_eq!(theirs.guest_svn, ours.guest_svn);
            assert_eq!(u64::from(theirs.policy), ours.policy.raw);
            assert_eq!(theirs.family_id, ours.family_id);
            assert_eq!(theirs.image_id, ours.image_id);
            assert_eq!(theirs.vmpl, ours.vmpl);
            assert_eq!(theirs.sig_algo, ours.signature_algo);
            assert_eq!(u64::from(theirs.plat_info), ours.platform_info);
            assert_eq!(theirs.key_info.author_key_en(), ours.author_key_en);
            assert_eq!(theirs.key_info.mask_chip_key(), ours.mask_chip_key);
            assert_eq!(
                theirs.key_info.signing_key(),
                u32::from(ours.signing_key.to_bits())
            );
            assert_eq!(theirs.report_data, ours.report_data);
            assert_eq!(theirs.measurement, ours.measurement);
            assert_eq!(theirs.host_data, ours.host_data);
            assert_eq!(theirs.id_key_digest, ours.id_key_digest);
            assert_eq!(theirs.author_key_digest, ours.author_key_digest);
            assert_eq!(theirs.report_id, ours.report_id);
            assert_eq!(theirs.report_id_ma, ours.report_id_ma);
            assert_eq!(theirs.chip_id, ours.chip_id);
            // Milan (CPUID) and, for version 2, Genoa (chip id) share the TCB byte layout.
            for (t, raw) in [
                (theirs.current_tcb, ours.current_tcb),
                (theirs.reported_tcb, ours.reported_tcb),
                (theirs.committed_tcb, ours.committed_tcb),
                (theirs.launch_tcb, ours.launch_tcb),
            ] {
                let d = TcbVersion::decode(raw, Product::Milan);
                assert_eq!(
                    (t.bootloader, t.tee, t.snp, t.microcode),
                    (d.bootloader, d.tee, d.snp, d.microcode)
                );
            }
            assert_eq!(
                ours.cpuid,
                theirs.cpuid_fam_id.map(|fam| (
                    fam,
                    theirs.cpuid_mod_id.unwrap(),
                    theirs.cpuid_step.unwrap()
                ))
            );
            let version_of = |v: sev::firmware::guest::Version| (v.build, v.minor, v.major);
            assert_eq!(version_of(theirs.current), ours.current_version);
            assert_eq!(version_of(theirs.committed), ours.committed_version);
            assert_eq!(theirs.launch_mit_vector, ours.launch_mit_vector);
            assert_eq!(theirs.current_mit_vector, ours.current_mit_vector);
            let be = |le: &[u8; 72]| le[..48].iter().rev().copied().collect::<Vec<_>>();
            assert_eq!(be(theirs.signature.r()), ours.signature_r);
            assert_eq!(be(theirs.signature.s()), ours.signature_s);
        }
    }

    #[test]
    fn write_signature_is_little_endian_and_leaves_the_rest() {
        let mut b = sample(3).to_unsigned_bytes();
        b[layout::SIGNATURE_RESERVED.offset()] = 0xee;
        let before = b;
        let mut fixed = [0u8; 96];
        fixed[0] = 0x01; // most significant byte of r
        fixed[95] = 0x02; // least significant byte of s
        write_signature(&mut b, &fixed);
        assert_eq!(b[layout::SIGNATURE_R.offset() + 47], 0x01);
        assert_eq!(b[layout::SIGNATURE_S.offset()], 0x02);
        assert_eq!(b[..SIGNED_LEN], before[..SIGNED_LEN]);
        assert_eq!(
            b[layout::SIGNATURE_RESERVED.range()],
            before[layout::SIGNATURE_RESERVED.range()]
        );
        // A second signature replaces the first completely.
        write_signature(&mut b, &[0; 96]);
        assert_eq!(b, before);
    }

    #[test]
    fn signing_key_bits_round_trip() {
        for bits in 0..8 {
            assert_eq!(SigningKey::from_bits(bits).to_bits(), bits);
        }
        assert_eq!(SigningKey::from_bits(1), SigningKey::Vlek);
        assert_eq!(SigningKey::from_bits(7), SigningKey::None);
        assert_eq!(SigningKey::from_bits(3), SigningKey::Reserved(3));
    }
}
