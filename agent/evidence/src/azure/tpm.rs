// SPDX-License-Identifier: Apache-2.0
//! The vTPM quote of an Azure CVM: the TPM 2.0 attestation structure a `TPM2_Quote` signs
//! (TPM 2.0 Library, Part 2 "Structures": `TPMS_ATTEST`, `TPMS_CLOCK_INFO`, `TPMS_QUOTE_INFO`,
//! `TPML_PCR_SELECTION`; all integers big-endian, sized buffers `TPM2B` = `u16` size then bytes),
//! and the `tpm_quote.json` that carries it with the PCR values.
//!
//! `tpm_quote.json` is `{"signature", "message", "pcrs"}`, the shape of
//! kinvolk/azure-cvm-tooling `az-cvm-vtpm/src/vtpm/mod.rs` `Quote` (made by `get_quote`: all 24
//! PCRs of the SHA-256 bank, AK `0x81000003`, the nonce as qualifying data) and of the
//! confidential-containers evidence built on it. From that code and every vector:
//! - `message` is the marshalled `TPMS_ATTEST` (the `attestationData` of a `TPM2B_ATTEST`,
//!   without its size), the exact bytes the signature covers;
//! - `signature` is the bare RSASSA signature (the `sig` buffer of a `TPMT_SIGNATURE`, 256 bytes
//!   for the 2048-bit AK), PKCS#1 v1.5 with SHA-256: decoding it with `HCLAkPub` gives
//!   `00 01 ff…ff 00` ‖ DigestInfo(SHA-256) ‖ SHA-256(message) in every vector. No
//!   `TPMT_SIGNATURE` header is present, so none is accepted;
//! - `pcrs` is a list of the 24 PCR values in PCR order (index = PCR number), not a map;
//! - each of the three is hex text in four vectors and a JSON array of byte values in
//!   `snp-hcl-milan-v3-v0` (serde's default encoding of `Vec<u8>`, as the trustee evidence-v0
//!   format has it); both are accepted.
//!
//! No verification: the signature is verified by `thimble-verify`, over [`TpmQuote::message`]
//! as received. The layout is read with [`crate::tpm2`]'s reader and structures, the codec the
//! vTPM client and the fake vTPM share, and [`TpmsAttest::marshal_quote`] writes the same layout
//! for simulators, so that it is described once.

use std::collections::BTreeMap;

use crate::digest::Sha256;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use crate::tpm2::{ClockInfo, PcrSelection, TPM_GENERATED_VALUE};
use crate::tpm2::{
    MAX_PCR_SELECTIONS, Malformed, Marshal, MarshalError, TpmReader, TpmWriter, TpmlPcrSelection,
    alg, st,
};

/// `TPM_ST_ATTEST_QUOTE`.
pub const TPM_ST_ATTEST_QUOTE: u16 = st::ATTEST_QUOTE;
/// `TPM_ALG_SHA256`.
pub const TPM_ALG_SHA256: u16 = alg::SHA256;

/// Why a quote or its JSON could not be parsed or checked.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TpmError {
    /// A field runs past the end of the `TPMS_ATTEST`.
    #[error("TPMS_ATTEST is truncated: {what} needs bytes {start}..{end} but there are {len}")]
    Truncated {
        /// The field.
        what: &'static str,
        /// Where it starts.
        start: usize,
        /// Where it would end.
        end: usize,
        /// Length of the structure.
        len: usize,
    },
    /// `magic` is not [`TPM_GENERATED_VALUE`]: the TPM did not make this structure.
    #[error("TPMS_ATTEST magic is {found:#010x}, not TPM_GENERATED_VALUE (0xff544347)")]
    Magic {
        /// As read.
        found: u32,
    },
    /// `type` is not [`TPM_ST_ATTEST_QUOTE`].
    #[error("TPMS_ATTEST type is {found:#06x}, not TPM_ST_ATTEST_QUOTE (0x8018)")]
    AttestType {
        /// As read.
        found: u16,
    },
    /// Bytes follow `pcrDigest`.
    #[error("TPMS_ATTEST has {len} bytes after the quote info")]
    Trailing {
        /// How many.
        len: usize,
    },
    /// The PCR selection list is longer than [`MAX_PCR_SELECTIONS`].
    #[error("TPML_PCR_SELECTION count {count} is above {MAX_PCR_SELECTIONS}")]
    TooManySelections {
        /// As read.
        count: u32,
    },
    /// `tpm_quote.json` is not JSON of its shape, or a member is not hex or a byte array.
    #[error("tpm_quote.json: {reason}")]
    Json {
        /// What is wrong.
        reason: String,
    },
    /// The quote selects PCRs of a bank other than SHA-256.
    #[error("the quote selects PCRs of bank {hash:#06x}; only SHA-256 (0x000b) values are given")]
    PcrBank {
        /// The bank's `TPM_ALG_ID`.
        hash: u16,
    },
    /// The quote selects a PCR that the JSON gives no value for.
    #[error("the quote selects PCR {index} but only {have} PCR values are given")]
    PcrMissing {
        /// The PCR.
        index: u32,
        /// How many values are given.
        have: usize,
    },
    /// A selected PCR's value is not 32 bytes.
    #[error("PCR {index} value is {len} bytes, not 32 (SHA-256)")]
    PcrLength {
        /// The PCR.
        index: u32,
        /// Its value's length.
        len: usize,
    },
    /// The JSON is larger than [`MAX_TPM_QUOTE_JSON_LEN`]; nothing was parsed.
    #[error("tpm_quote.json is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// Its length.
        len: usize,
        /// [`MAX_TPM_QUOTE_JSON_LEN`].
        max: usize,
    },
    /// A failure of the shared reader that the variants above do not cover (none does today:
    /// the `TPMS_ATTEST` layout only truncates, overflows its selection count or trails).
    #[error("TPMS_ATTEST is malformed")]
    Malformed(#[source] Malformed),
}

impl From<Malformed> for TpmError {
    /// The reader's failures, in the terms this module has always reported them in.
    fn from(m: Malformed) -> Self {
        match m {
            Malformed::Truncated {
                what,
                offset,
                needed,
                available,
            } => TpmError::Truncated {
                what,
                start: offset,
                end: offset.saturating_add(needed),
                len: offset + available,
            },
            Malformed::Trailing { len, .. } => TpmError::Trailing { len },
            Malformed::Count { count, .. } => TpmError::TooManySelections { count },
            other => TpmError::Malformed(other),
        }
    }
}

/// The largest `tpm_quote.json` parsed. A quote of 24 SHA-256 PCRs is under 4 KiB in hex and
/// under 10 KiB as byte arrays; decoding byte arrays builds a value per byte, so the size is
/// bounded first.
pub const MAX_TPM_QUOTE_JSON_LEN: usize = 64 << 10;

/// A parsed `TPMS_ATTEST` of type `TPM_ST_ATTEST_QUOTE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmsAttest {
    raw: Vec<u8>,
    /// `magic`: always [`TPM_GENERATED_VALUE`] once parsed.
    pub magic: u32,
    /// `type`: always [`TPM_ST_ATTEST_QUOTE`] once parsed.
    pub attest_type: u16,
    /// `TPM2B_NAME` of the signing key: name algorithm ‖ digest of its `TPMT_PUBLIC`.
    pub qualified_signer: Vec<u8>,
    /// `TPM2B_DATA`: the qualifying data given to `TPM2_Quote`, the verifier's nonce.
    pub extra_data: Vec<u8>,
    /// `clockInfo`: the TPM's clock, reset and restart counts.
    pub clock_info: ClockInfo,
    /// `firmwareVersion`: the TPM vendor's firmware version (vendor-defined).
    pub firmware_version: u64,
    /// `TPMS_QUOTE_INFO.pcrSelect`.
    pub pcr_select: Vec<PcrSelection>,
    /// `TPMS_QUOTE_INFO.pcrDigest`: the hash of the selected PCR values, concatenated.
    pub pcr_digest: Vec<u8>,
}

impl TpmsAttest {
    /// Parses a marshalled `TPMS_ATTEST` of a quote, all of `bytes` (Part 2 §10.12.12).
    pub fn parse(bytes: &[u8]) -> Result<TpmsAttest, TpmError> {
        let mut r = TpmReader::new(bytes);
        let magic = r.u32("magic")?;
        if magic != TPM_GENERATED_VALUE {
            return Err(TpmError::Magic { found: magic });
        }
        let attest_type = r.u16("type")?;
        // The layout after firmwareVersion depends on the type (TPMU_ATTEST); only quotes are
        // parsed.
        if attest_type != TPM_ST_ATTEST_QUOTE {
            return Err(TpmError::AttestType { found: attest_type });
        }
        let qualified_signer = r.tpm2b("qualifiedSigner")?.to_vec();
        let extra_data = r.tpm2b("extraData")?.to_vec();
        let clock_info = ClockInfo::unmarshal(&mut r)?;
        let firmware_version = r.u64("firmwareVersion")?;
        let pcr_select = TpmlPcrSelection::unmarshal(&mut r)?.pcr_selections;
        let pcr_digest = r.tpm2b("pcrDigest")?.to_vec();
        r.finish("TPMS_ATTEST")?;
        Ok(TpmsAttest {
            raw: bytes.to_vec(),
            magic,
            attest_type,
            qualified_signer,
            extra_data,
            clock_info,
            firmware_version,
            pcr_select,
            pcr_digest,
        })
    }

    /// Marshals the `TPMS_ATTEST` of a quote as a TPM writes it, the inverse of
    /// [`TpmsAttest::parse`]: for simulators, which sign what this returns. `extra_data` is the
    /// qualifying data (a `TPM2B_DATA`, so at most 64 bytes on a TPM; not checked here) and
    /// `pcr_digest` the hash of the selected PCR values.
    pub fn marshal_quote(
        qualified_signer: &[u8],
        extra_data: &[u8],
        clock_info: &ClockInfo,
        firmware_version: u64,
        pcr_select: &[PcrSelection],
        pcr_digest: &[u8],
    ) -> Result<Vec<u8>, MarshalError> {
        let mut w = TpmWriter::new();
        w.u32(TPM_GENERATED_VALUE).u16(TPM_ST_ATTEST_QUOTE);
        w.tpm2b("qualifiedSigner", qualified_signer)?
            .tpm2b("extraData", extra_data)?
            .marshal(clock_info)?
            .u64(firmware_version)
            .marshal(&TpmlPcrSelection {
                pcr_selections: pcr_select.to_vec(),
            })?
            .tpm2b("pcrDigest", pcr_digest)?;
        Ok(w.into_bytes())
    }

    /// The exact bytes received (what the AK signed).
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The selected PCR indices in the order the TPM hashes them: selection by selection, each
    /// ascending. Fails if a selection is not of the SHA-256 bank.
    pub fn selected_pcrs(&self) -> Result<Vec<u32>, TpmError> {
        let mut out = Vec::new();
        for s in &self.pcr_select {
            if s.hash != TPM_ALG_SHA256 {
                return Err(TpmError::PcrBank { hash: s.hash });
            }
            out.extend(s.indices());
        }
        Ok(out)
    }

    /// The digest `pcrDigest` should be for these PCR values (indexed by PCR number): SHA-256
    /// over the selected values concatenated in selection order (TPM 2.0 Part 3, `TPM2_Quote`;
    /// SHA-256 being the AK's signing hash).
    pub fn compute_pcr_digest(&self, pcrs: &[Vec<u8>]) -> Result<[u8; 32], TpmError> {
        let mut h = Sha256::new();
        for index in self.selected_pcrs()? {
            let v = pcrs.get(index as usize).ok_or(TpmError::PcrMissing {
                index,
                have: pcrs.len(),
            })?;
            if v.len() != 32 {
                return Err(TpmError::PcrLength {
                    index,
                    len: v.len(),
                });
            }
            h.update(v);
        }
        Ok(h.finalize())
    }
}

/// `tpm_quote.json` decoded: the attestation structure as received, its signature, and the PCR
/// values of the SHA-256 bank indexed by PCR number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmQuote {
    /// RSASSA-PKCS1-v1_5 / SHA-256 signature by `HCLAkPub`, as big-endian bytes.
    pub signature: Vec<u8>,
    /// The marshalled `TPMS_ATTEST`.
    pub message: Vec<u8>,
    /// The PCR values as given, indexed by PCR number (not authenticated: only the quote's
    /// `pcrDigest` over the selected ones is).
    pub pcrs: Vec<Vec<u8>>,
}

// Untagged: a field is hex text or a list of byte values, and nothing else distinguishes them.
#[derive(Deserialize)]
#[serde(untagged)]
enum ByteField {
    Hex(String),
    Array(Vec<u8>),
}

impl ByteField {
    fn decode(self, what: &str) -> Result<Vec<u8>, TpmError> {
        match self {
            ByteField::Hex(h) => hex::decode(h.trim()).map_err(|_| TpmError::Json {
                reason: format!("{what} is not hex"),
            }),
            ByteField::Array(a) => Ok(a),
        }
    }
}

#[derive(Deserialize)]
struct RawQuote {
    signature: ByteField,
    message: ByteField,
    pcrs: Vec<ByteField>,
}

#[derive(Serialize)]
struct HexQuote {
    signature: String,
    message: String,
    pcrs: Vec<String>,
}

impl TpmQuote {
    /// Parses `tpm_quote.json`.
    pub fn parse_json(bytes: &[u8]) -> Result<TpmQuote, TpmError> {
        if bytes.len() > MAX_TPM_QUOTE_JSON_LEN {
            return Err(TpmError::TooLarge {
                len: bytes.len(),
                max: MAX_TPM_QUOTE_JSON_LEN,
            });
        }
        let raw: RawQuote = serde_json::from_slice(bytes).map_err(|e| TpmError::Json {
            reason: e.to_string(),
        })?;
        Ok(TpmQuote {
            signature: raw.signature.decode("signature")?,
            message: raw.message.decode("message")?,
            pcrs: raw
                .pcrs
                .into_iter()
                .enumerate()
                .map(|(i, p)| p.decode(&format!("pcrs[{i}]")))
                .collect::<Result<_, _>>()?,
        })
    }

    /// `tpm_quote.json` with lower-case hex fields.
    pub fn to_json(&self) -> Vec<u8> {
        let q = HexQuote {
            signature: hex::encode(&self.signature),
            message: hex::encode(&self.message),
            pcrs: self.pcrs.iter().map(hex::encode).collect(),
        };
        // Serialising strings into a Vec cannot fail.
        serde_json::to_vec(&q).unwrap_or_default()
    }

    /// The message parsed.
    pub fn attest(&self) -> Result<TpmsAttest, TpmError> {
        TpmsAttest::parse(&self.message)
    }
}

/// What a quote says, for output once it is verified: the PCRs it covers, its nonce and its
/// clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuoteClaims {
    /// Always `sha256`, the only bank accepted.
    pub pcr_bank: &'static str,
    /// The values of the PCRs the quote selects (and only those: values it does not cover are
    /// unauthenticated), by PCR number, lower-case hex.
    pub pcrs: BTreeMap<u32, String>,
    /// The quote's qualifying data (the nonce), hex.
    pub extra_data: String,
    /// `qualifiedSigner`, hex.
    pub qualified_signer: String,
    /// `clockInfo`.
    pub clock_info: ClockInfo,
    /// `firmwareVersion` as 16 hex digits.
    pub firmware_version: String,
}

impl QuoteClaims {
    /// Claims of `attest` with the PCR values given alongside it.
    pub fn new(attest: &TpmsAttest, pcrs: &[Vec<u8>]) -> QuoteClaims {
        let selected = attest.selected_pcrs().unwrap_or_default();
        QuoteClaims {
            pcr_bank: "sha256",
            pcrs: selected
                .into_iter()
                .filter_map(|i| pcrs.get(i as usize).map(|v| (i, hex::encode(v))))
                .collect(),
            extra_data: hex::encode(&attest.extra_data),
            qualified_signer: hex::encode(&attest.qualified_signer),
            clock_info: attest.clock_info,
            firmware_version: format!("{:016x}", attest.firmware_version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2: &[u8] =
        include_bytes!("../../../../tests/vectors/azure/snp-hcl-milan-v2/tpm_quote.json");
    const V3_V0: &[u8] =
        include_bytes!("../../../../tests/vectors/azure/snp-hcl-milan-v3-v0/tpm_quote.json");
    const V3_V1: &[u8] =
        include_bytes!("../../../../tests/vectors/azure/snp-hcl-milan-v3-v1/tpm_quote.json");
    const V3_V2: &[u8] =
        include_bytes!("../../../../tests/vectors/azure/snp-hcl-milan-v3-v2/tpm_quote.json");

    #[test]
    fn vector_quote_fields() {
        let q = TpmQuote::parse_json(V2).unwrap();
        assert_eq!(q.signature.len(), 256);
        assert_eq!(q.pcrs.len(), 24);
        let a = q.attest().unwrap();
        assert_eq!(a.as_bytes(), q.message);
        assert_eq!(a.magic, TPM_GENERATED_VALUE);
        assert_eq!(a.attest_type, TPM_ST_ATTEST_QUOTE);
        assert_eq!(a.extra_data, b"challenge");
        assert_eq!(a.qualified_signer.len(), 34);
        assert_eq!(a.qualified_signer[..2], [0x00, 0x0b]);
        assert_eq!(a.firmware_version, 0x2020_0312_0012_0003);
        assert!(a.clock_info.safe);
        assert_eq!(
            a.pcr_select,
            [PcrSelection {
                hash: TPM_ALG_SHA256,
                select: vec![0xff, 0xff, 0xff]
            }]
        );
        assert_eq!(a.selected_pcrs().unwrap(), (0..24).collect::<Vec<_>>());
        assert_eq!(a.compute_pcr_digest(&q.pcrs).unwrap()[..], a.pcr_digest[..]);
        let c = QuoteClaims::new(&a, &q.pcrs);
        assert_eq!(c.pcrs.len(), 24);
        assert_eq!(c.extra_data, hex::encode(b"challenge"));
    }

    #[test]
    fn marshal_quote_writes_what_parse_reads() {
        // Azure's own bytes, written again from the parsed fields: the encoder and the parser
        // describe one layout.
        for vector in [V2, V3_V0, V3_V2] {
            let a = TpmQuote::parse_json(vector).unwrap().attest().unwrap();
            let bytes = TpmsAttest::marshal_quote(
                &a.qualified_signer,
                &a.extra_data,
                &a.clock_info,
                a.firmware_version,
                &a.pcr_select,
                &a.pcr_digest,
            )
            .unwrap();
            assert_eq!(bytes, a.as_bytes());
        }
        let select = [PcrSelection::sha256(&[0, 1, 2]).unwrap()];
        let clock = ClockInfo {
            clock: 1,
            reset_count: 2,
            restart_count: 3,
            safe: false,
        };
        let bytes =
            TpmsAttest::marshal_quote(&[0, 0x0b], b"nonce", &clock, 9, &select, &[7; 32]).unwrap();
        let a = TpmsAttest::parse(&bytes).unwrap();
        assert_eq!(
            (a.qualified_signer, a.extra_data, a.clock_info),
            (vec![0, 0x0b], b"nonce".to_vec(), clock)
        );
        assert_eq!((a.firmware_version, a.pcr_select), (9, select.to_vec()));
        assert_eq!(a.pcr_digest, [7; 32]);
        assert!(matches!(
            TpmsAttest::marshal_quote(&[], &vec![0; 0x1_0000], &clock, 0, &select, &[]),
            Err(MarshalError::TooLarge {
                what: "extraData",
                ..
            })
        ));
    }

    #[test]
    fn byte_arrays_and_hex_are_the_same_quote() {
        // v3-v0 and v3-v1 are two quotes of one VM; v0 is encoded as byte arrays.
        let v0 = TpmQuote::parse_json(V3_V0).unwrap();
        let v1 = TpmQuote::parse_json(V3_V1).unwrap();
        assert_eq!(v0.pcrs, v1.pcrs);
        assert_eq!(v0.signature.len(), 256);
        let a = v0.attest().unwrap();
        assert_eq!(
            a.compute_pcr_digest(&v0.pcrs).unwrap()[..],
            a.pcr_digest[..]
        );
        // Round trip through the hex form.
        assert_eq!(TpmQuote::parse_json(&v0.to_json()).unwrap(), v0);
    }

    #[test]
    fn a_48_byte_nonce() {
        let a = TpmQuote::parse_json(V3_V2).unwrap().attest().unwrap();
        assert_eq!(a.extra_data.len(), 48);
        assert_eq!(hex::encode(&a.extra_data[..4]), "982f5c6e");
    }

    #[test]
    fn truncations_and_trailing_bytes() {
        let q = TpmQuote::parse_json(V2).unwrap();
        for len in 0..q.message.len() {
            assert!(
                matches!(
                    TpmsAttest::parse(&q.message[..len]),
                    Err(TpmError::Truncated { .. })
                ),
                "{len}"
            );
        }
        let mut long = q.message.clone();
        long.push(0);
        assert_eq!(TpmsAttest::parse(&long), Err(TpmError::Trailing { len: 1 }));
    }

    #[test]
    fn structure_errors() {
        let q = TpmQuote::parse_json(V2).unwrap();
        let mut m = q.message.clone();
        m[0] = 0;
        assert!(matches!(TpmsAttest::parse(&m), Err(TpmError::Magic { .. })));
        let mut m = q.message.clone();
        m[5] = 0x17; // TPM_ST_ATTEST_CERTIFY
        assert_eq!(
            TpmsAttest::parse(&m),
            Err(TpmError::AttestType { found: 0x8017 })
        );
        // pcrSelect.count: after magic, type, signer (2 + 34), extraData (2 + 9), clock (17),
        // firmware (8).
        let count_at = 4 + 2 + 36 + 11 + 17 + 8;
        let mut m = q.message.clone();
        m[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            TpmsAttest::parse(&m),
            Err(TpmError::TooManySelections { count: u32::MAX })
        );
        let mut m = q.message.clone();
        m[count_at + 4..count_at + 6].copy_from_slice(&0x000cu16.to_be_bytes());
        let a = TpmsAttest::parse(&m).unwrap();
        assert_eq!(
            a.compute_pcr_digest(&q.pcrs),
            Err(TpmError::PcrBank { hash: 0x000c })
        );
        let a = q.attest().unwrap();
        assert_eq!(
            a.compute_pcr_digest(&q.pcrs[..20]),
            Err(TpmError::PcrMissing {
                index: 20,
                have: 20
            })
        );
        let mut pcrs = q.pcrs.clone();
        pcrs[3].pop();
        assert_eq!(
            a.compute_pcr_digest(&pcrs),
            Err(TpmError::PcrLength { index: 3, len: 31 })
        );
    }

    #[test]
    fn json_errors_and_garbage() {
        for bad in [
            &b""[..],
            b"[]",
            b"{}",
            br#"{"signature":"zz","message":"","pcrs":[]}"#,
            br#"{"signature":"","message":[256],"pcrs":[]}"#,
            br#"{"signature":"","message":"","pcrs":{"0":"00"}}"#,
            br#"{"signature":"","message":"","pcrs":[1]}"#,
        ] {
            assert!(
                matches!(TpmQuote::parse_json(bad), Err(TpmError::Json { .. })),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut seed = 7u32;
        for len in [0usize, 1, 6, 50, 122, 400] {
            let mut b = vec![0u8; len];
            for x in b.iter_mut() {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                *x = (seed >> 16) as u8;
            }
            let _ = TpmsAttest::parse(&b);
            if len >= 6 {
                b[..4].copy_from_slice(&TPM_GENERATED_VALUE.to_be_bytes());
                b[4..6].copy_from_slice(&TPM_ST_ATTEST_QUOTE.to_be_bytes());
            }
            let _ = TpmsAttest::parse(&b);
            let _ = TpmQuote::parse_json(&b);
        }
    }
}
