// SPDX-License-Identifier: Apache-2.0
//! The certificate table a host attaches to an extended guest request (GHCB spec 4.1.8.1), as
//! read from configfs-tsm `auxblob` or the SNP_GET_EXT_REPORT certificate buffer.
//!
//! Layout: entries of `{guid[16], u32 offset, u32 length}` (little-endian integers), ended by an
//! all-zero entry; offsets are from the start of the table. The host writes this table, so every
//! offset and length is checked against the buffer before use, the number of entries is capped,
//! and entries may not overlap each other or the header: the bytes copied out of a table are
//! then never more than the table itself, whatever the host wrote.

use thiserror::Error;

/// The role of a certificate in the table, by GUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertKind {
    /// The VCEK (GUID 63da758d-e664-4564-adc5-f4b93be8accd).
    Vcek,
    /// The VLEK (GUID a8074bc2-a25a-483e-aae6-39c045a0b8a1).
    Vlek,
    /// The ASK (GUID 4ab7b379-bbac-4fe4-a02f-05aef327c782).
    Ask,
    /// The ARK (GUID c0b406a4-a803-4952-9743-3fb6014cd0ae).
    Ark,
    /// A CRL (GUID 92f81bc3-5811-4d3d-97ff-d19f88dc67ea).
    Crl,
    /// A GUID thimble does not know; kept, not interpreted.
    Unknown,
}

/// The VCEK entry's GUID, RFC 4122 byte order.
pub const VCEK_GUID: [u8; 16] = GUIDS[0].1;
/// The ASK entry's GUID.
pub const ASK_GUID: [u8; 16] = GUIDS[2].1;
/// The ARK entry's GUID.
pub const ARK_GUID: [u8; 16] = GUIDS[3].1;

/// GUIDs in RFC 4122 (big-endian) byte order, as the kernel and AMD tools write them.
const GUIDS: [(CertKind, [u8; 16]); 5] = [
    (
        CertKind::Vcek,
        guid(
            0x63da758d,
            0xe664,
            0x4564,
            [0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd],
        ),
    ),
    (
        CertKind::Vlek,
        guid(
            0xa8074bc2,
            0xa25a,
            0x483e,
            [0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1],
        ),
    ),
    (
        CertKind::Ask,
        guid(
            0x4ab7b379,
            0xbbac,
            0x4fe4,
            [0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82],
        ),
    ),
    (
        CertKind::Ark,
        guid(
            0xc0b406a4,
            0xa803,
            0x4952,
            [0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae],
        ),
    ),
    (
        CertKind::Crl,
        guid(
            0x92f81bc3,
            0x5811,
            0x4d3d,
            [0x97, 0xff, 0xd1, 0x9f, 0x88, 0xdc, 0x67, 0xea],
        ),
    ),
];

const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_be_bytes();
    let b = b.to_be_bytes();
    let c = c.to_be_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// The mixed-endian (Microsoft `GUID` struct) form of the same GUID, which some hosts write.
fn swap_mixed_endian(g: &[u8; 16]) -> [u8; 16] {
    let mut o = *g;
    o[0..4].reverse();
    o[4..6].reverse();
    o[6..8].reverse();
    o
}

impl CertKind {
    /// The RFC 4122 GUID bytes of this kind (none for `Unknown`).
    pub fn guid(self) -> Option<[u8; 16]> {
        GUIDS.iter().find(|(k, _)| *k == self).map(|(_, g)| *g)
    }

    fn from_guid(g: &[u8; 16]) -> CertKind {
        let swapped = swap_mixed_endian(g);
        GUIDS
            .iter()
            .find(|(_, known)| known == g || *known == swapped)
            .map_or(CertKind::Unknown, |(k, _)| *k)
    }
}

/// One certificate from the table, with its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertTableEntry {
    /// The role its GUID names; both GUID byte orders are recognised.
    pub kind: CertKind,
    /// The GUID as the host wrote it.
    pub guid: [u8; 16],
    /// The bytes the entry points at, copied out (not parsed).
    pub data: Vec<u8>,
}

/// The parsed table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertTable {
    /// The entries in table order, terminator excluded.
    pub entries: Vec<CertTableEntry>,
}

/// Why a certificate table was refused. Entries are numbered from 0 in table order.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertTableError {
    /// The buffer ends before an all-zero entry.
    #[error("certificate table has no terminating all-zero entry within its {len} bytes")]
    Unterminated {
        /// Length of the buffer.
        len: usize,
    },
    /// An entry's `offset + length` runs past the end of the buffer.
    #[error(
        "certificate table entry {index} points at bytes {offset}..{end}, outside the {len}-byte table"
    )]
    OutOfBounds {
        /// The entry.
        index: usize,
        /// Its offset.
        offset: u32,
        /// Its offset plus its length.
        end: u64,
        /// Length of the buffer.
        len: usize,
    },
    /// A non-empty entry starts inside the entry headers (terminator included).
    #[error("certificate table entry {index} overlaps the table header")]
    OverlapsHeader {
        /// The entry.
        index: usize,
    },
    /// Two non-empty entries share bytes.
    #[error("certificate table entries {first} and {second} overlap")]
    Overlap {
        /// The lower-numbered entry.
        first: usize,
        /// The higher-numbered entry.
        second: usize,
    },
    /// More than [`MAX_ENTRIES`] entries before the terminator.
    #[error("certificate table has more than {max} entries")]
    TooManyEntries {
        /// [`MAX_ENTRIES`].
        max: usize,
    },
}

const ENTRY_LEN: usize = 24;
/// The most entries a table may have. AMD defines five GUIDs (VCEK, VLEK, ASK, ARK, CRL); the
/// cap leaves room for others a host may add while bounding the work a hostile table causes.
pub const MAX_ENTRIES: usize = 64;

impl CertTable {
    /// Parses a table; an empty buffer is an empty table (the host supplied no certificates).
    pub fn parse(buf: &[u8]) -> Result<CertTable, CertTableError> {
        if buf.is_empty() {
            return Ok(CertTable::default());
        }
        let mut headers = Vec::new();
        let mut pos = 0;
        loop {
            let Some(e) = buf.get(pos..pos + ENTRY_LEN) else {
                return Err(CertTableError::Unterminated { len: buf.len() });
            };
            if e.iter().all(|&b| b == 0) {
                break;
            }
            if headers.len() == MAX_ENTRIES {
                return Err(CertTableError::TooManyEntries { max: MAX_ENTRIES });
            }
            let mut g = [0u8; 16];
            g.copy_from_slice(&e[..16]);
            let offset = u32::from_le_bytes([e[16], e[17], e[18], e[19]]);
            let length = u32::from_le_bytes([e[20], e[21], e[22], e[23]]);
            headers.push((g, offset, length));
            pos += ENTRY_LEN;
        }
        let header_end = pos + ENTRY_LEN;
        // Check every range before copying anything.
        let mut ranges: Vec<(u64, u64, usize)> = Vec::with_capacity(headers.len());
        for (index, &(_, offset, length)) in headers.iter().enumerate() {
            let end = u64::from(offset) + u64::from(length);
            if end > buf.len() as u64 {
                return Err(CertTableError::OutOfBounds {
                    index,
                    offset,
                    end,
                    len: buf.len(),
                });
            }
            if (offset as usize) < header_end && length > 0 {
                return Err(CertTableError::OverlapsHeader { index });
            }
            if length > 0 {
                ranges.push((u64::from(offset), end, index));
            }
        }
        ranges.sort_unstable();
        for pair in ranges.windows(2) {
            if pair[1].0 < pair[0].1 {
                return Err(CertTableError::Overlap {
                    first: pair[0].2.min(pair[1].2),
                    second: pair[0].2.max(pair[1].2),
                });
            }
        }
        let mut entries = Vec::with_capacity(headers.len());
        for (g, offset, length) in headers {
            let end = offset as usize + length as usize;
            entries.push(CertTableEntry {
                kind: CertKind::from_guid(&g),
                guid: g,
                data: buf[offset as usize..end].to_vec(),
            });
        }
        Ok(CertTable { entries })
    }

    /// The first entry of `kind`.
    pub fn get(&self, kind: CertKind) -> Option<&CertTableEntry> {
        self.entries.iter().find(|e| e.kind == kind)
    }

    /// Builds a table (used by the simulator and tests): entries in order, the terminator,
    /// `gap` zero bytes, then the data (a gap makes the table's used length grow, to exercise a
    /// host's buffer negotiation).
    pub fn build_raw(items: &[([u8; 16], &[u8])], gap: usize) -> Vec<u8> {
        let header_len = (items.len() + 1) * ENTRY_LEN;
        let mut out = vec![0u8; header_len + gap];
        for (i, (g, data)) in items.iter().enumerate() {
            let offset = u32::try_from(out.len()).unwrap_or(u32::MAX);
            let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
            let e = &mut out[i * ENTRY_LEN..(i + 1) * ENTRY_LEN];
            e[..16].copy_from_slice(g);
            e[16..20].copy_from_slice(&offset.to_le_bytes());
            e[20..24].copy_from_slice(&len.to_le_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    /// [`CertTable::build_raw`] by role, with no gap.
    pub fn build(items: &[(CertKind, &[u8])]) -> Vec<u8> {
        let raw: Vec<([u8; 16], &[u8])> = items
            .iter()
            .map(|(k, d)| (k.guid().unwrap_or([0xff; 16]), *d))
            .collect();
        CertTable::build_raw(&raw, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_mixed_endian_guids() {
        let t = CertTable::build(&[
            (CertKind::Vcek, b"vcek"),
            (CertKind::Ask, b"ask"),
            (CertKind::Ark, b"ark"),
        ]);
        let p = CertTable::parse(&t).unwrap();
        assert_eq!(p.entries.len(), 3);
        assert_eq!(p.get(CertKind::Ask).unwrap().data, b"ask");
        let mut m = t.clone();
        let g = swap_mixed_endian(&CertKind::Vcek.guid().unwrap());
        m[..16].copy_from_slice(&g);
        assert_eq!(
            CertTable::parse(&m).unwrap().entries[0].kind,
            CertKind::Vcek
        );
        assert_eq!(CertTable::parse(&[]).unwrap().entries.len(), 0);
    }

    #[test]
    fn rejects_hostile_tables() {
        let t = CertTable::build(&[(CertKind::Vcek, b"vcek")]);
        assert!(matches!(
            CertTable::parse(&t[..30]),
            Err(CertTableError::Unterminated { .. })
        ));
        let mut bad = t.clone();
        bad[20..24].copy_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(
            CertTable::parse(&bad),
            Err(CertTableError::OutOfBounds { .. })
        ));
        let mut bad = t.clone();
        bad[16..20].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(
            CertTable::parse(&bad),
            Err(CertTableError::OverlapsHeader { .. })
        ));
        let mut bad = t;
        bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            CertTable::parse(&bad),
            Err(CertTableError::OutOfBounds { .. })
        ));
    }

    #[test]
    fn rejects_overlapping_entries_and_too_many() {
        // Two entries pointing at the same bytes: a host could make a small table expand into
        // many copies of itself.
        let t = CertTable::build(&[(CertKind::Vcek, b"vcek"), (CertKind::Ask, b"ask!")]);
        let mut bad = t.clone();
        let first_offset = bad[16..20].to_vec();
        bad[24 + 16..24 + 20].copy_from_slice(&first_offset);
        assert_eq!(
            CertTable::parse(&bad),
            Err(CertTableError::Overlap {
                first: 0,
                second: 1
            })
        );
        // Partly overlapping.
        let mut bad = t.clone();
        let off = u32::from_le_bytes(t[16..20].try_into().unwrap()) + 2;
        bad[24 + 16..24 + 20].copy_from_slice(&off.to_le_bytes());
        assert!(matches!(
            CertTable::parse(&bad),
            Err(CertTableError::Overlap { .. })
        ));
        // Adjacent entries are fine, as are empty ones anywhere.
        assert_eq!(CertTable::parse(&t).unwrap().entries.len(), 2);
        let items: Vec<(CertKind, &[u8])> = (0..MAX_ENTRIES)
            .map(|_| (CertKind::Unknown, &b"x"[..]))
            .collect();
        assert_eq!(
            CertTable::parse(&CertTable::build(&items))
                .unwrap()
                .entries
                .len(),
            MAX_ENTRIES
        );
        let items: Vec<(CertKind, &[u8])> = (0..=MAX_ENTRIES)
            .map(|_| (CertKind::Unknown, &b"x"[..]))
            .collect();
        assert_eq!(
            CertTable::parse(&CertTable::build(&items)),
            Err(CertTableError::TooManyEntries { max: MAX_ENTRIES })
        );
    }
}
