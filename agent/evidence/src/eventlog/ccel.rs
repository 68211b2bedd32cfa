// SPDX-License-Identifier: Apache-2.0
//! The ACPI "CCEL" table (Confidential Computing Event Log, ACPI 6.5 §5.2.34, as TDX firmware
//! publishes it per the TDX GHCI): where the guest's measured-boot log lives, and how the
//! measurement registers of a CC log are numbered (UEFI 2.10 §38, `EFI_CC_MEASUREMENT_PROTOCOL`).
//! Facts and sources: docs/formats.md §8.3.
//!
//! The table is the 36-byte ACPI header (signature "CCEL", length, revision, checksum, OEM
//! fields) followed by CC type, CC subtype, two reserved bytes, LAML (the log area's minimum
//! length) and LASA (its physical start address); 56 bytes in all. The log area itself holds a
//! crypto-agile event log ([`super::EventLog`]) whose register field is the CC measurement
//! register index. This module parses the table bytes only; reading the log area is collection's
//! business.

use thiserror::Error;

/// The size of the CCEL table: the ACPI header and 20 bytes of its own.
pub const CCEL_TABLE_LEN: usize = 56;
/// The table's ACPI signature.
pub const CCEL_SIGNATURE: &[u8; 4] = b"CCEL";

/// The CC type of a CCEL table (ACPI 6.5, "CC Type").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CcType(pub u8);

impl CcType {
    /// AMD SEV.
    pub const SEV: CcType = CcType(1);
    /// Intel TDX.
    pub const TDX: CcType = CcType(2);
}

/// Why a CCEL table could not be parsed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CcelError {
    /// The bytes are not [`CCEL_TABLE_LEN`] long.
    #[error("CCEL table is {actual} bytes, not {CCEL_TABLE_LEN}")]
    Length {
        /// Their length.
        actual: usize,
    },
    /// The signature is not "CCEL".
    #[error("ACPI table signature is {found:?}, not \"CCEL\"")]
    Signature {
        /// As read.
        found: [u8; 4],
    },
    /// The header's `Length` is not the table's length.
    #[error("CCEL table's Length field is {field}, but the table is {actual} bytes")]
    LengthField {
        /// As read.
        field: u32,
        /// The table's length.
        actual: usize,
    },
    /// The bytes of the table do not sum to zero modulo 256 (ACPI header `Checksum`).
    #[error("CCEL table checksum does not hold (the bytes sum to {sum:#04x}, not 0)")]
    Checksum {
        /// The sum of all bytes, modulo 256.
        sum: u8,
    },
    /// The reserved bytes after the CC subtype are not zero.
    #[error("CCEL table's reserved bytes are {found:#06x}, not zero")]
    Reserved {
        /// As read (little-endian).
        found: u16,
    },
}

/// A parsed CCEL table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CcelTable {
    raw: [u8; CCEL_TABLE_LEN],
    /// `Revision` of the ACPI header (1).
    pub revision: u8,
    /// `OEMID`.
    pub oem_id: [u8; 6],
    /// `OEM Table ID`.
    pub oem_table_id: [u8; 8],
    /// `OEM Revision`.
    pub oem_revision: u32,
    /// `Creator ID`.
    pub creator_id: [u8; 4],
    /// `Creator Revision`.
    pub creator_revision: u32,
    /// `CC Type`.
    pub cc_type: CcType,
    /// `CC Subtype`.
    pub cc_subtype: u8,
    /// `LAML`: the log area's minimum length, in bytes.
    pub laml: u64,
    /// `LASA`: the log area's physical start address.
    pub lasa: u64,
}

impl CcelTable {
    /// Parses the table, exactly [`CCEL_TABLE_LEN`] bytes, and checks its signature, length and
    /// checksum.
    pub fn parse(bytes: &[u8]) -> Result<CcelTable, CcelError> {
        let raw: [u8; CCEL_TABLE_LEN] = bytes.try_into().map_err(|_| CcelError::Length {
            actual: bytes.len(),
        })?;
        let mut signature = [0; 4];
        signature.copy_from_slice(&raw[0x00..0x04]);
        if &signature != CCEL_SIGNATURE {
            return Err(CcelError::Signature { found: signature });
        }
        let field = u32_at(&raw, 0x04);
        if usize::try_from(field).ok() != Some(CCEL_TABLE_LEN) {
            return Err(CcelError::LengthField {
                field,
                actual: CCEL_TABLE_LEN,
            });
        }
        let sum = raw.iter().fold(0u8, |s, b| s.wrapping_add(*b));
        if sum != 0 {
            return Err(CcelError::Checksum { sum });
        }
        let reserved = u16::from_le_bytes([raw[0x26], raw[0x27]]);
        if reserved != 0 {
            return Err(CcelError::Reserved { found: reserved });
        }
        let mut oem_id = [0; 6];
        oem_id.copy_from_slice(&raw[0x0A..0x10]);
        let mut oem_table_id = [0; 8];
        oem_table_id.copy_from_slice(&raw[0x10..0x18]);
        let mut creator_id = [0; 4];
        creator_id.copy_from_slice(&raw[0x1C..0x20]);
        Ok(CcelTable {
            raw,
            revision: raw[0x08],
            oem_id,
            oem_table_id,
            oem_revision: u32_at(&raw, 0x18),
            creator_id,
            creator_revision: u32_at(&raw, 0x20),
            cc_type: CcType(raw[0x24]),
            cc_subtype: raw[0x25],
            laml: u64_at(&raw, 0x28),
            lasa: u64_at(&raw, 0x30),
        })
    }

    /// The table as received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// Builds a table of `cc_type` for a log area of `laml` bytes at `lasa`, with the header
    /// fields EDK2's TDVF writes (revision 1, OEM "INTEL " / "EDK2    " revision 2, creator
    /// "    " revision 0x01000013, subtype 0) and the checksum set so that the bytes sum to
    /// zero: the encoder of [`CcelTable::parse`], at the same offsets, for simulations.
    pub fn build(cc_type: CcType, laml: u64, lasa: u64) -> CcelTable {
        let mut t = CcelTable {
            raw: [0; CCEL_TABLE_LEN],
            revision: 1,
            oem_id: *b"INTEL ",
            oem_table_id: *b"EDK2    ",
            oem_revision: 2,
            creator_id: *b"    ",
            creator_revision: 0x0100_0013,
            cc_type,
            cc_subtype: 0,
            laml,
            lasa,
        };
        let raw = &mut t.raw;
        raw[0x00..0x04].copy_from_slice(CCEL_SIGNATURE);
        // 56 fits the u32 Length field.
        raw[0x04..0x08].copy_from_slice(&(CCEL_TABLE_LEN as u32).to_le_bytes());
        raw[0x08] = t.revision;
        raw[0x0A..0x10].copy_from_slice(&t.oem_id);
        raw[0x10..0x18].copy_from_slice(&t.oem_table_id);
        raw[0x18..0x1C].copy_from_slice(&t.oem_revision.to_le_bytes());
        raw[0x1C..0x20].copy_from_slice(&t.creator_id);
        raw[0x20..0x24].copy_from_slice(&t.creator_revision.to_le_bytes());
        raw[0x24] = t.cc_type.0;
        raw[0x25] = t.cc_subtype;
        raw[0x28..0x30].copy_from_slice(&t.laml.to_le_bytes());
        raw[0x30..0x38].copy_from_slice(&t.lasa.to_le_bytes());
        // ACPI: the checksum byte makes the whole table sum to zero modulo 256.
        let sum = raw.iter().fold(0u8, |s, b| s.wrapping_add(*b));
        raw[0x09] = sum.wrapping_neg();
        t
    }
}

fn u32_at(raw: &[u8; CCEL_TABLE_LEN], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&raw[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(raw: &[u8; CCEL_TABLE_LEN], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&raw[at..at + 8]);
    u64::from_le_bytes(b)
}

/// The CC measurement register index of MRTD (UEFI 2.10 §38.4, TDX mapping).
pub const CC_MR_INDEX_MRTD: u32 = 0;
/// The number of CC measurement registers of a TD: MRTD and RTMR0 to RTMR3.
pub const CC_MR_COUNT: u32 = 5;

/// The TDX register a CC measurement register index names: 0 `MRTD`, 1 to 4 `RTMR0` to `RTMR3`.
pub fn mr_name(index: u32) -> Option<&'static str> {
    ["MRTD", "RTMR0", "RTMR1", "RTMR2", "RTMR3"]
        .get(usize::try_from(index).ok()?)
        .copied()
}

/// The RTMR (0 to 3) a CC measurement register index extends, or `None` for MRTD (index 0,
/// which the TDX module computes from the host's TD build and no event extends) and indices
/// past RTMR3.
pub fn rtmr_of_mr_index(index: u32) -> Option<usize> {
    match index {
        1..=4 => usize::try_from(index - 1).ok(),
        _ => None,
    }
}

/// The CC measurement register index a TPM PCR maps to in a TD (UEFI 2.10 §38.4; EDK2
/// `MapPcrToMrIndex`): PCR 0 to MRTD (0), PCRs 1 and 7 to RTMR0 (1), 2 to 6 to RTMR1 (2),
/// 8 to 15 to RTMR2 (3); PCRs above 15 have no mapping.
pub fn mr_index_of_pcr(pcr: u32) -> Option<u32> {
    match pcr {
        0 => Some(0),
        1 | 7 => Some(1),
        2..=6 => Some(2),
        8..=15 => Some(3),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[u8] =
        include_bytes!("../../../../tests/vectors/eventlog/tdx-gcp-cos113/ccel.bin");

    #[test]
    fn parses_the_gcp_table() {
        let t = CcelTable::parse(TABLE).unwrap();
        assert_eq!(t.cc_type, CcType::TDX);
        assert_eq!(t.cc_subtype, 0);
        assert_eq!(t.revision, 1);
        assert_eq!(&t.oem_id, b"INTEL ");
        assert_eq!(&t.oem_table_id, b"EDK2    ");
        assert_eq!(t.laml, 0x4_0000);
        assert_eq!(t.lasa, 0xbedb_f000);
        assert_eq!(t.as_bytes(), TABLE);
    }

    #[test]
    fn damaged_tables_are_refused_by_name() {
        let mut t = TABLE.to_vec();
        t[0x30] ^= 1;
        assert!(matches!(
            CcelTable::parse(&t),
            Err(CcelError::Checksum { .. })
        ));
        assert_eq!(
            CcelTable::parse(&TABLE[..40]),
            Err(CcelError::Length { actual: 40 })
        );
        let mut t = TABLE.to_vec();
        t[0] = b'X';
        assert!(matches!(
            CcelTable::parse(&t),
            Err(CcelError::Signature { .. })
        ));
    }

    #[test]
    fn register_mapping_follows_the_uefi_table() {
        assert_eq!(mr_name(0), Some("MRTD"));
        assert_eq!(mr_name(4), Some("RTMR3"));
        assert_eq!(mr_name(5), None);
        assert_eq!(rtmr_of_mr_index(0), None);
        assert_eq!(rtmr_of_mr_index(3), Some(2));
        assert_eq!(rtmr_of_mr_index(5), None);
        assert_eq!(mr_index_of_pcr(7), Some(1));
        assert_eq!(mr_index_of_pcr(9), Some(3));
        assert_eq!(mr_index_of_pcr(16), None);
    }
}
