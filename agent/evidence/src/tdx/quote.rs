// SPDX-License-Identifier: Apache-2.0
//! The Intel TDX quote, versions 4 and 5 (Intel `sgx_quote_4.h` / `sgx_quote_5.h`, and the "Intel
//! TDX DCAP Quoting Library API" appendix A), parsed by bounds-checked slicing into an owned value
//! that keeps the bytes received and the exact byte range of every part.
//!
//! The quote signature covers header ‖ body (‖ the v5 body descriptor in between) as received:
//! [`TdxQuote::signed_bytes`] slices them, nothing is re-encoded. The signature data is read by
//! its length field and must be consumed exactly; bytes after it are ignored and counted in
//! [`TdxQuote::trailing_len`], since real quotes carry padding (70 zero bytes, GCP's zero padding
//! to 8000 bytes, 39 ASCII bytes in one Intel sample).
//!
//! This module checks structure only. No signature is verified here (that is `thimble-verify`'s
//! job), so a tampered quote still parses and is reported as a bad signature rather than as
//! malformed.
//!
//! Why not the `tdx-quote` crate: its `Quote::from_bytes` verifies the attestation-key signature
//! and the QE report hash while parsing (a tampered quote cannot be told from a malformed one),
//! signs over header ‖ body without the 6-byte v5 body descriptor (so it refuses every real v5
//! quote), does not bound the certification data by the signature-data length, and is licensed
//! AGPL-3.0-or-later. dcap-qvl's parser is the independent one the tests compare this one with.

use std::ops::Range;

use serde::Serialize;
use thiserror::Error;

use crate::cert_file::pem_certificates;

/// Size of the quote header.
pub const QUOTE_HEADER_LEN: usize = 48;
/// TDX 1.0 body (`sgx_report2_body_t`).
pub const TD_REPORT10_BODY_LEN: usize = 584;
/// TDX 1.5 body (`sgx_report2_body_v1_5_t`): the 1.0 body, then TEE_TCB_SVN_2 and MRSERVICETD.
pub const TD_REPORT15_BODY_LEN: usize = 648;
/// v5 body descriptor: `body_type` u16, `size` u32.
pub const V5_BODY_DESCRIPTOR_LEN: usize = 6;
/// `tee_type` of a TDX quote.
pub const TEE_TYPE_TDX: u32 = 0x81;
/// `att_key_type` 2: ECDSA-256 with P-256, the only one TDX uses.
pub const ATT_KEY_TYPE_ECDSA_P256: u16 = 2;
/// The Intel quoting enclave's `qe_vendor_id` (`939A7233-F79C-4CA9-940A-0DB3957F0607`).
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];
/// An SGX enclave report (the QE report), `sgx_report_body_t`.
pub const ENCLAVE_REPORT_LEN: usize = 384;
/// Certification data type 5: PCK leaf ‖ intermediate CA ‖ root, PEM.
pub const CERT_DATA_PCK_CHAIN: u16 = 5;
/// Certification data type 6: QE report certification data (QE report, its PCK signature, the
/// QE authentication data, then nested certification data).
pub const CERT_DATA_QE_REPORT: u16 = 6;

/// Why a quote could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuoteError {
    #[error("TDX quote is truncated: {what} needs bytes {start}..{end} but there are {len}")]
    Truncated {
        what: &'static str,
        start: usize,
        end: usize,
        len: usize,
    },
    #[error("quote version {version} is not a TDX quote version (4 or 5)")]
    UnsupportedVersion { version: u16 },
    #[error("quote tee_type {tee_type:#x} is not TDX (0x81)")]
    NotTdx { tee_type: u32 },
    #[error("quote att_key_type {att_key_type} is not 2 (ECDSA-256 with P-256)")]
    AttestationKeyType { att_key_type: u16 },
    #[error("v5 quote body type {body_type} is not supported (2 = TDX 1.0, 3 = TDX 1.5)")]
    UnsupportedBodyType { body_type: u16 },
    #[error("v5 quote body type {body_type} has size {size}, expected {expected}")]
    BodySize {
        body_type: u16,
        size: u32,
        expected: usize,
    },
    #[error("{what} has {len} unused bytes after its content")]
    Unconsumed { what: &'static str, len: usize },
    #[error("certification data type {cert_type} is not supported (TDX quotes carry type 6)")]
    CertificationDataType { cert_type: u16 },
    #[error("PCK certificate chain in the quote is not PEM: {reason}")]
    PckChain { reason: String },
}

/// The quote header (48 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteHeader {
    pub version: u16,
    pub att_key_type: u16,
    pub tee_type: u32,
    /// Bytes 8..12: reserved in the v4/v5 layouts (QE SVN and PCE SVN in the SGX v3 layout).
    /// Kept, not checked: they are under the quote signature either way.
    pub reserved: [u8; 4],
    pub qe_vendor_id: [u8; 16],
    pub user_data: [u8; 20],
}

/// The TD report body as quoted. Field names are Intel's (`sgx_report2_body_t`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxBody {
    pub tee_tcb_svn: [u8; 16],
    pub mrseam: [u8; 48],
    pub mrsignerseam: [u8; 48],
    pub seam_attributes: [u8; 8],
    pub td_attributes: [u8; 8],
    pub xfam: [u8; 8],
    pub mrtd: [u8; 48],
    pub mrconfigid: [u8; 48],
    pub mrowner: [u8; 48],
    pub mrownerconfig: [u8; 48],
    pub rtmr: [[u8; 48]; 4],
    pub report_data: [u8; 64],
    /// TDX 1.5 body only: the current TCB after a TD-preserving module update.
    pub tee_tcb_svn_2: Option<[u8; 16]>,
    /// TDX 1.5 body only: SERVTD_HASH of the service TDs bound to this TD.
    pub mrservicetd: Option<[u8; 48]>,
}

/// The QE report certification data (type 6) and what it nests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QeCertification {
    /// The QE's SGX report, signed by the PCK key.
    pub qe_report: [u8; ENCLAVE_REPORT_LEN],
    /// `r ‖ s`, big-endian, over `qe_report`.
    pub qe_report_signature: [u8; 64],
    /// QE authentication data; SHA-256(attestation key ‖ this) is the QE report's REPORT_DATA.
    pub qe_auth_data: Vec<u8>,
    /// Type of the nested certification data (5 when the PCK chain is in the quote).
    pub inner_type: u16,
    /// The nested certification data as received.
    pub inner_data: Vec<u8>,
}

/// A parsed TDX quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxQuote {
    raw: Vec<u8>,
    body_range: Range<usize>,
    signed_len: usize,
    signature_data_range: Range<usize>,
    certification_range: Range<usize>,
    pub header: QuoteHeader,
    /// v5 only: 2 (TDX 1.0 body) or 3 (TDX 1.5 body).
    pub body_type: Option<u16>,
    pub body: TdxBody,
    /// `r ‖ s`, big-endian, by the attestation key over [`TdxQuote::signed_bytes`].
    pub signature: [u8; 64],
    /// The attestation public key, `x ‖ y` (an uncompressed P-256 point without the 0x04).
    pub attestation_key: [u8; 64],
    /// Type of the outer certification data (6 for TDX).
    pub certification_type: u16,
    pub qe: QeCertification,
    /// The PCK chain (leaf first) as DER, when the nested certification data is type 5.
    pub pck_chain: Option<Vec<Vec<u8>>>,
    /// Bytes after the signature data, ignored.
    pub trailing_len: usize,
}

/// A cursor over a byte slice that never reads past its end.
struct Reader<'a> {
    buf: &'a [u8],
    /// Offset of `buf[0]` in the whole quote, for error messages and ranges.
    base: usize,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Reader<'a> {
        Reader { buf, base, pos: 0 }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], QuoteError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(QuoteError::Truncated {
                what,
                start: self.base + self.pos,
                end: self.base.saturating_add(self.pos).saturating_add(n),
                len: self.base + self.buf.len(),
            });
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], QuoteError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, QuoteError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, QuoteError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// Absolute offset of the next byte.
    fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn finish(&self, what: &'static str) -> Result<(), QuoteError> {
        match self.remaining() {
            0 => Ok(()),
            len => Err(QuoteError::Unconsumed { what, len }),
        }
    }
}

fn parse_body(r: &mut Reader<'_>, tdx15: bool) -> Result<TdxBody, QuoteError> {
    let tee_tcb_svn = r.array("tee_tcb_svn")?;
    let mrseam = r.array("mrseam")?;
    let mrsignerseam = r.array("mrsignerseam")?;
    let seam_attributes = r.array("seam_attributes")?;
    let td_attributes = r.array("td_attributes")?;
    let xfam = r.array("xfam")?;
    let mrtd = r.array("mrtd")?;
    let mrconfigid = r.array("mrconfigid")?;
    let mrowner = r.array("mrowner")?;
    let mrownerconfig = r.array("mrownerconfig")?;
    let rtmr = [
        r.array("rtmr0")?,
        r.array("rtmr1")?,
        r.array("rtmr2")?,
        r.array("rtmr3")?,
    ];
    let report_data = r.array("report_data")?;
    let (tee_tcb_svn_2, mrservicetd) = if tdx15 {
        (
            Some(r.array("tee_tcb_svn_2")?),
            Some(r.array("mrservicetd")?),
        )
    } else {
        (None, None)
    };
    Ok(TdxBody {
        tee_tcb_svn,
        mrseam,
        mrsignerseam,
        seam_attributes,
        td_attributes,
        xfam,
        mrtd,
        mrconfigid,
        mrowner,
        mrownerconfig,
        rtmr,
        report_data,
        tee_tcb_svn_2,
        mrservicetd,
    })
}

impl TdxQuote {
    /// Parses a v4 or v5 TDX quote. Bytes after the signature data are ignored.
    pub fn parse(bytes: &[u8]) -> Result<TdxQuote, QuoteError> {
        let mut r = Reader::new(bytes, 0);
        let header = QuoteHeader {
            version: r.u16("version")?,
            att_key_type: r.u16("att_key_type")?,
            tee_type: r.u32("tee_type")?,
            reserved: r.array("reserved")?,
            qe_vendor_id: r.array("qe_vendor_id")?,
            user_data: r.array("user_data")?,
        };
        if !matches!(header.version, 4 | 5) {
            return Err(QuoteError::UnsupportedVersion {
                version: header.version,
            });
        }
        if header.tee_type != TEE_TYPE_TDX {
            return Err(QuoteError::NotTdx {
                tee_type: header.tee_type,
            });
        }
        if header.att_key_type != ATT_KEY_TYPE_ECDSA_P256 {
            return Err(QuoteError::AttestationKeyType {
                att_key_type: header.att_key_type,
            });
        }

        let (body_type, tdx15) = if header.version == 5 {
            let body_type = r.u16("body_type")?;
            let size = r.u32("body_size")?;
            let expected = match body_type {
                2 => TD_REPORT10_BODY_LEN,
                3 => TD_REPORT15_BODY_LEN,
                _ => return Err(QuoteError::UnsupportedBodyType { body_type }),
            };
            if size as usize != expected {
                return Err(QuoteError::BodySize {
                    body_type,
                    size,
                    expected,
                });
            }
            (Some(body_type), body_type == 3)
        } else {
            (None, false)
        };
        let body_start = r.offset();
        let body = parse_body(&mut r, tdx15)?;
        let body_range = body_start..r.offset();
        let signed_len = r.offset();

        let sig_len = r.u32("signature_data_len")? as usize;
        let sig_start = r.offset();
        let sig_data = r.take(sig_len, "signature data")?;
        let signature_data_range = sig_start..r.offset();
        let trailing_len = r.remaining();

        let mut s = Reader::new(sig_data, sig_start);
        let signature = s.array("quote signature")?;
        let attestation_key = s.array("attestation key")?;
        let certification_type = s.u16("certification data type")?;
        let cert_len = s.u32("certification data size")? as usize;
        let cert_start = s.offset();
        let cert = s.take(cert_len, "certification data")?;
        let certification_range = cert_start..s.offset();
        s.finish("signature data")?;
        if certification_type != CERT_DATA_QE_REPORT {
            return Err(QuoteError::CertificationDataType {
                cert_type: certification_type,
            });
        }

        let mut c = Reader::new(cert, cert_start);
        let qe_report = c.array("QE report")?;
        let qe_report_signature = c.array("QE report signature")?;
        let auth_len = c.u16("QE authentication data size")? as usize;
        let qe_auth_data = c.take(auth_len, "QE authentication data")?.to_vec();
        let inner_type = c.u16("nested certification data type")?;
        let inner_len = c.u32("nested certification data size")? as usize;
        let inner_data = c.take(inner_len, "nested certification data")?.to_vec();
        c.finish("QE report certification data")?;

        let pck_chain = if inner_type == CERT_DATA_PCK_CHAIN {
            let text = std::str::from_utf8(&inner_data).map_err(|e| QuoteError::PckChain {
                reason: e.to_string(),
            })?;
            let certs = pem_certificates(text).map_err(|e| QuoteError::PckChain {
                reason: e.to_string(),
            })?;
            if certs.is_empty() {
                return Err(QuoteError::PckChain {
                    reason: "no certificate in it".into(),
                });
            }
            Some(certs)
        } else {
            None
        };

        Ok(TdxQuote {
            raw: bytes.to_vec(),
            body_range,
            signed_len,
            signature_data_range,
            certification_range,
            header,
            body_type,
            body,
            signature,
            attestation_key,
            certification_type,
            qe: QeCertification {
                qe_report,
                qe_report_signature,
                qe_auth_data,
                inner_type,
                inner_data,
            },
            pck_chain,
            trailing_len,
        })
    }

    /// The exact bytes received, trailing bytes included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The bytes the attestation key signed: header ‖ (v5 descriptor ‖) body, as received.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.raw[..self.signed_len]
    }

    /// The TD report body as received (without the v5 descriptor).
    pub fn body_bytes(&self) -> &[u8] {
        &self.raw[self.body_range.clone()]
    }

    /// Byte range of the body in [`TdxQuote::as_bytes`].
    pub fn body_range(&self) -> Range<usize> {
        self.body_range.clone()
    }

    /// Byte range of the signature data (after its length field).
    pub fn signature_data_range(&self) -> Range<usize> {
        self.signature_data_range.clone()
    }

    /// Byte range of the outer certification data (after its type and size).
    pub fn certification_range(&self) -> Range<usize> {
        self.certification_range.clone()
    }

    /// Whether the body is a TDX 1.5 one (v5, body type 3).
    pub fn is_tdx15(&self) -> bool {
        self.body_type == Some(3)
    }
}

/// The QE's SGX report (`sgx_report_body_t`, 384 bytes; Intel SGX SDM, REPORT structure), as
/// far as QE identity appraisal needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnclaveReport {
    pub cpu_svn: [u8; 16],
    pub miscselect: u32,
    /// ATTRIBUTES in report byte order (byte 0 bit 1 is DEBUG).
    pub attributes: [u8; 16],
    pub mrenclave: [u8; 32],
    pub mrsigner: [u8; 32],
    pub isv_prod_id: u16,
    pub isv_svn: u16,
    pub report_data: [u8; 64],
}

impl EnclaveReport {
    /// Decodes the fixed layout (offsets in hex: CPUSVN 0x00, MISCSELECT 0x10, ATTRIBUTES 0x30,
    /// MRENCLAVE 0x40, MRSIGNER 0x80, ISVPRODID 0x100, ISVSVN 0x102, REPORTDATA 0x140).
    pub fn decode(b: &[u8; ENCLAVE_REPORT_LEN]) -> EnclaveReport {
        fn arr<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
            let mut a = [0u8; N];
            a.copy_from_slice(&b[off..off + N]);
            a
        }
        EnclaveReport {
            cpu_svn: arr(b, 0x00),
            miscselect: u32::from_le_bytes(arr(b, 0x10)),
            attributes: arr(b, 0x30),
            mrenclave: arr(b, 0x40),
            mrsigner: arr(b, 0x80),
            isv_prod_id: u16::from_le_bytes(arr(b, 0x100)),
            isv_svn: u16::from_le_bytes(arr(b, 0x102)),
            report_data: arr(b, 0x140),
        }
    }
}

/// TD attributes (Intel TDX Module ABI spec, TDINFO_STRUCT.ATTRIBUTES; 348551, table "TD
/// attributes"). Bits 7:0 are the TUD group: any of them set means the TD is under debug and
/// untrusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TdAttributes {
    #[serde(serialize_with = "hex_u64")]
    pub raw: u64,
    /// Bit 0: the host VMM can read and write the TD's CPU state and private memory.
    pub debug: bool,
    /// Bits 7:0 (TUD), of which DEBUG is bit 0; the others are reserved for debug features.
    pub tud: u8,
    /// Bit 28: EPT violations on pending pages are not turned into #VE (protects a TD that
    /// does not handle them from a host zero-step attack).
    pub sept_ve_disable: bool,
    /// Bit 29: the TD may be migrated by a migration TD.
    pub migratable: bool,
    /// Bit 30: supervisor protection keys.
    pub pks: bool,
    /// Bit 31: key locker.
    pub kl: bool,
    /// Bit 63: perfmon and PERF_METRICS.
    pub perfmon: bool,
}

fn hex_u64<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:#018x}"))
}

impl TdAttributes {
    /// Decodes the 8 bytes of TD_ATTRIBUTES (little-endian).
    pub fn decode(bytes: [u8; 8]) -> TdAttributes {
        let raw = u64::from_le_bytes(bytes);
        let bit = |n: u32| raw & (1u64 << n) != 0;
        TdAttributes {
            raw,
            debug: bit(0),
            tud: bytes[0],
            sept_ve_disable: bit(28),
            migratable: bit(29),
            pks: bit(30),
            kl: bit(31),
            perfmon: bit(63),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes() {
        let a = TdAttributes::decode([0x01, 0, 0, 0x10, 0, 0, 0, 0]);
        assert!(a.debug && a.sept_ve_disable && !a.migratable && !a.pks);
        let a = TdAttributes::decode([0, 0, 0, 0xe0, 0, 0, 0, 0x80]);
        assert!(!a.debug && !a.sept_ve_disable && a.migratable && a.pks && a.kl && a.perfmon);
        assert_eq!(a.raw, 0x8000_0000_e000_0000);
    }

    #[test]
    fn rejects_short_and_foreign_quotes() {
        assert!(matches!(
            TdxQuote::parse(&[4, 0, 2, 0]),
            Err(QuoteError::Truncated { .. })
        ));
        let mut h = vec![0u8; 48];
        h[0] = 3;
        assert_eq!(
            TdxQuote::parse(&h),
            Err(QuoteError::UnsupportedVersion { version: 3 })
        );
        h[0] = 4;
        h[2] = 2;
        assert_eq!(TdxQuote::parse(&h), Err(QuoteError::NotTdx { tee_type: 0 }));
        h[4] = 0x81;
        assert!(matches!(
            TdxQuote::parse(&h),
            Err(QuoteError::Truncated {
                what: "tee_tcb_svn",
                ..
            })
        ));
    }

    #[test]
    fn huge_lengths_do_not_overflow() {
        let mut q = vec![0u8; QUOTE_HEADER_LEN + TD_REPORT10_BODY_LEN];
        q[0] = 4;
        q[2] = 2;
        q[4] = 0x81;
        q.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            TdxQuote::parse(&q),
            Err(QuoteError::Truncated {
                what: "signature data",
                ..
            })
        ));
    }
}
