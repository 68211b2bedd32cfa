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
//! The header, the v5 body descriptor, the body and the QE report are layout tables
//! ([`crate::tdx::layout`]), which give both the decoder and the encoder. [`UnsignedQuote`] and
//! [`SignatureData`] lay a quote out again from its parts, for the simulator and tests: this
//! crate never signs, so the caller signs [`UnsignedQuote::signed_bytes`] and passes the
//! signatures in. A verifier has no use for the encoder; it checks the bytes received.
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
use crate::tdx::layout::{Layout, layout};

/// Size of the quote header.
pub const QUOTE_HEADER_LEN: usize = 48;
/// TDX 1.0 body (`sgx_report2_body_t`).
pub const TD_REPORT10_BODY_LEN: usize = 584;
/// TDX 1.5 body (`sgx_report2_body_v1_5_t`): the 1.0 body, then TEE_TCB_SVN_2 and MRSERVICETD.
pub const TD_REPORT15_BODY_LEN: usize = 648;
/// v5 body descriptor: `body_type` u16, `size` u32.
pub const V5_BODY_DESCRIPTOR_LEN: usize = 6;
/// v5 `body_type` of a TDX 1.0 body.
pub const BODY_TYPE_TDX10: u16 = 2;
/// v5 `body_type` of a TDX 1.5 body.
pub const BODY_TYPE_TDX15: u16 = 3;
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
    /// A part, or a length field's content, runs past the end of the quote (or of the part
    /// that holds it). Offsets are from the start of the quote.
    #[error("TDX quote is truncated: {what} needs bytes {start}..{end} but there are {len}")]
    Truncated {
        /// The part or field that is cut.
        what: &'static str,
        /// Where it starts.
        start: usize,
        /// Where it would end.
        end: usize,
        /// Where the enclosing data ends.
        len: usize,
    },
    /// The header's `version` is not 4 or 5.
    #[error("quote version {version} is not a TDX quote version (4 or 5)")]
    UnsupportedVersion {
        /// As read.
        version: u16,
    },
    /// The header's `tee_type` is not [`TEE_TYPE_TDX`] (an SGX quote, say).
    #[error("quote tee_type {tee_type:#x} is not TDX (0x81)")]
    NotTdx {
        /// As read.
        tee_type: u32,
    },
    /// The header's `att_key_type` is not [`ATT_KEY_TYPE_ECDSA_P256`].
    #[error("quote att_key_type {att_key_type} is not 2 (ECDSA-256 with P-256)")]
    AttestationKeyType {
        /// As read.
        att_key_type: u16,
    },
    /// A v5 body descriptor names a body type other than 2 or 3.
    #[error("v5 quote body type {body_type} is not supported (2 = TDX 1.0, 3 = TDX 1.5)")]
    UnsupportedBodyType {
        /// As read.
        body_type: u16,
    },
    /// A v5 body descriptor's size does not match its body type.
    #[error("v5 quote body type {body_type} has size {size}, expected {expected}")]
    BodySize {
        /// As read.
        body_type: u16,
        /// As read.
        size: u32,
        /// The size of that body type.
        expected: usize,
    },
    /// The signature data or the QE report certification data is longer than its content.
    #[error("{what} has {len} unused bytes after its content")]
    Unconsumed {
        /// Which of the two.
        what: &'static str,
        /// How many bytes are left over.
        len: usize,
    },
    /// The outer certification data is not type 6 ([`CERT_DATA_QE_REPORT`]).
    #[error("certification data type {cert_type} is not supported (TDX quotes carry type 6)")]
    CertificationDataType {
        /// As read.
        cert_type: u16,
    },
    /// Nested certification data of type 5 is not UTF-8 PEM with at least one certificate.
    #[error("PCK certificate chain in the quote is not PEM: {reason}")]
    PckChain {
        /// What is wrong.
        reason: String,
    },
}

/// Why a quote could not be laid out.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuoteEncodeError {
    /// A variable-length part does not fit its length field.
    #[error("{what} is {len} bytes, more than its length field can count ({max})")]
    TooLong {
        /// The part.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The most its length field can hold.
        max: usize,
    },
}

layout! {
    /// The quote header (48 bytes; Intel `sgx_quote_4.h` `sgx_quote_header_t`, the same in v5).
    pub struct QuoteHeader[QUOTE_HEADER_LEN] {
        /// 4 or 5.
        [0x00] version: u16,
        /// The attestation key type; 2 ([`ATT_KEY_TYPE_ECDSA_P256`]) is the only one TDX uses.
        [0x02] att_key_type: u16,
        /// 0x81 ([`TEE_TYPE_TDX`]) for TDX, 0 for SGX.
        [0x04] tee_type: u32,
        /// Bytes 8..12: reserved in the v4/v5 layouts (QE SVN and PCE SVN in the SGX v3
        /// layout). Kept, not checked: they are under the quote signature either way.
        [0x08] reserved: [u8; 4],
        /// The quoting enclave's vendor UUID ([`INTEL_QE_VENDOR_ID`] for Intel's).
        [0x0c] qe_vendor_id: [u8; 16],
        /// Data the quoting enclave chose; Intel's puts a QE identifier in the first 16 bytes.
        [0x1c] user_data: [u8; 20],
    }
}

impl QuoteHeader {
    /// The header Intel's TD quoting enclave writes: ECDSA-256 with P-256, TEE type TDX,
    /// reserved bytes zero, Intel's QE vendor ID.
    pub fn tdx(version: u16, user_data: [u8; 20]) -> QuoteHeader {
        QuoteHeader {
            version,
            att_key_type: ATT_KEY_TYPE_ECDSA_P256,
            tee_type: TEE_TYPE_TDX,
            reserved: [0; 4],
            qe_vendor_id: INTEL_QE_VENDOR_ID,
            user_data,
        }
    }
}

layout! {
    /// What a v5 quote has between header and body (Intel `sgx_quote_5.h`): which body follows
    /// and its size.
    pub struct QuoteBodyDescriptor[V5_BODY_DESCRIPTOR_LEN] {
        /// 2: TDX 1.0 body, 3: TDX 1.5 body.
        [0x0] body_type: u16,
        /// Size of the body in bytes: 584 for type 2, 648 for type 3.
        [0x2] body_size: u32,
    }
}

layout! {
    /// The TD report body as quoted. Field names are Intel's (`sgx_report2_body_t`, 584 bytes;
    /// `sgx_report2_body_v1_5_t`, 648 bytes, adds the last two fields).
    ///
    /// A TDX 1.0 body has `tee_tcb_svn_2` and `mrservicetd` `None`, a 1.5 body both `Some`.
    /// [`TdxBody::decode`] reads a whole 1.5 body; [`TdxBody::to_bytes`] writes 584 or 648 bytes
    /// as the body is 1.0 or 1.5 (`encode` always writes 648).
    pub struct TdxBody[TD_REPORT15_BODY_LEN] {
        /// TEE_TCB_SVN: the TDX module's security version numbers, matched against TCB info.
        [0x000] tee_tcb_svn: [u8; 16],
        /// MRSEAM: SHA-384 measurement of the TDX module.
        [0x010] mrseam: [u8; 48],
        /// MRSIGNERSEAM: measurement of the TDX module's signer (zero for Intel's modules).
        [0x040] mrsignerseam: [u8; 48],
        /// SEAMATTRIBUTES: the TDX module's attributes (zero for production modules).
        [0x070] seam_attributes: [u8; 8],
        /// TDATTRIBUTES, little-endian; see [`TdAttributes`].
        [0x078] td_attributes: [u8; 8],
        /// XFAM: the extended CPU features (XCR0/IA32_XSS bits) the TD may use.
        [0x080] xfam: [u8; 8],
        /// MRTD: SHA-384 measurement of the TD's initial contents, as built by the host.
        [0x088] mrtd: [u8; 48],
        /// MRCONFIGID: an ID of the TD's configuration, set by the host at creation and not
        /// interpreted by the TDX module.
        [0x0b8] mrconfigid: [u8; 48],
        /// MROWNER: an ID of the TD's owner, set by the host at creation.
        [0x0e8] mrowner: [u8; 48],
        /// MROWNERCONFIG: an ID of the owner's configuration, set by the host at creation.
        [0x118] mrownerconfig: [u8; 48],
        /// RTMR0 to RTMR3: the runtime-extendable measurement registers.
        [0x148] rtmr: [[u8; 48]; 4],
        /// REPORT_DATA: the 64 bytes the TD supplied (see [`crate::report_data`]).
        [0x208] report_data: [u8; 64],
        /// TDX 1.5 body only: the current TCB after a TD-preserving module update.
        [0x248] tee_tcb_svn_2: Option<[u8; 16]>,
        /// TDX 1.5 body only: SERVTD_HASH of the service TDs bound to this TD.
        [0x258] mrservicetd: Option<[u8; 48]>,
    }
}

impl TdxBody {
    /// Whether this is a TDX 1.5 body: one of the 1.5 fields is there.
    pub fn is_tdx15(&self) -> bool {
        self.tee_tcb_svn_2.is_some() || self.mrservicetd.is_some()
    }

    /// The body as quoted: [`TD_REPORT10_BODY_LEN`] bytes for a TDX 1.0 body, or
    /// [`TD_REPORT15_BODY_LEN`] for a 1.5 one (a 1.5 field that is `None` beside one that is
    /// not is written as zeros).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = self.encode().to_vec();
        bytes.truncate(self.quoted_len());
        bytes
    }

    /// Its length as quoted.
    fn quoted_len(&self) -> usize {
        if self.is_tdx15() {
            TD_REPORT15_BODY_LEN
        } else {
            TD_REPORT10_BODY_LEN
        }
    }

    /// The v5 body type of this body.
    fn body_type(&self) -> u16 {
        if self.is_tdx15() {
            BODY_TYPE_TDX15
        } else {
            BODY_TYPE_TDX10
        }
    }
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
    /// The header as read.
    pub header: QuoteHeader,
    /// v5 only: 2 (TDX 1.0 body) or 3 (TDX 1.5 body).
    pub body_type: Option<u16>,
    /// The TD report body; a v4 quote always has a TDX 1.0 body.
    pub body: TdxBody,
    /// `r ‖ s`, big-endian, by the attestation key over [`TdxQuote::signed_bytes`].
    pub signature: [u8; 64],
    /// The attestation public key, `x ‖ y` (an uncompressed P-256 point without the 0x04).
    pub attestation_key: [u8; 64],
    /// Type of the outer certification data (6 for TDX).
    pub certification_type: u16,
    /// The QE report certification data (type 6).
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

    /// The next `len` bytes as the layout `L` (`len` is shorter than the structure for a TDX
    /// 1.0 body). A cut names the field it falls in, as reading field by field would.
    fn layout<L: Layout>(&mut self, len: usize) -> Result<L, QuoteError> {
        let available = self.remaining().min(len);
        let start = self.offset();
        let truncated =
            |name: &'static str, offset: usize, field_len: usize| QuoteError::Truncated {
                what: name,
                start: start + offset,
                end: start + offset + field_len,
                len: self.base + self.buf.len(),
            };
        let value = L::decode_prefix(&self.buf[self.pos..self.pos + available])
            .map_err(|f| truncated(f.name, f.offset, f.len))?;
        if available < len {
            // Only an optional field or reserved bytes can be cut without failing above.
            return Err(L::FIELDS.iter().find(|f| f.end() > available).map_or_else(
                || truncated(L::NAME, available, len - available),
                |f| truncated(f.name, f.offset, f.len),
            ));
        }
        self.pos += len;
        Ok(value)
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

impl TdxQuote {
    /// Parses a v4 or v5 TDX quote. Bytes after the signature data are ignored.
    pub fn parse(bytes: &[u8]) -> Result<TdxQuote, QuoteError> {
        let mut r = Reader::new(bytes, 0);
        let header: QuoteHeader = r.layout(QUOTE_HEADER_LEN)?;
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

        let (body_type, body_len) = if header.version == 5 {
            let QuoteBodyDescriptor {
                body_type,
                body_size: size,
            } = r.layout(V5_BODY_DESCRIPTOR_LEN)?;
            let expected = match body_type {
                BODY_TYPE_TDX10 => TD_REPORT10_BODY_LEN,
                BODY_TYPE_TDX15 => TD_REPORT15_BODY_LEN,
                _ => return Err(QuoteError::UnsupportedBodyType { body_type }),
            };
            if size as usize != expected {
                return Err(QuoteError::BodySize {
                    body_type,
                    size,
                    expected,
                });
            }
            (Some(body_type), expected)
        } else {
            (None, TD_REPORT10_BODY_LEN)
        };
        let body_start = r.offset();
        let body: TdxBody = r.layout(body_len)?;
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
        self.body_type == Some(BODY_TYPE_TDX15)
    }
}

/// A quote's header and body, laid out as [`TdxQuote::parse`] reads them: header ‖ v5 body
/// descriptor (version 5 only) ‖ body.
///
/// Parsing what [`UnsignedQuote::to_bytes`] writes gives the same parts back when they are
/// consistent: version 4 with a TDX 1.0 body, or version 5. The encoder writes what it is given,
/// including what the parser rejects (another version, TEE type or key type, a TDX 1.5 body in
/// a v4 quote), so that tests can build such quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedQuote {
    /// The header; its `version` decides whether a body descriptor is written.
    pub header: QuoteHeader,
    /// The body; a TDX 1.5 body (a 1.5 field `Some`) is written as body type 3.
    pub body: TdxBody,
}

impl UnsignedQuote {
    /// What the attestation key signs: header ‖ (v5 descriptor ‖) body.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let body = self.body.to_bytes();
        let mut out = Vec::with_capacity(QUOTE_HEADER_LEN + V5_BODY_DESCRIPTOR_LEN + body.len());
        out.extend_from_slice(&self.header.encode());
        if self.header.version == 5 {
            let descriptor = QuoteBodyDescriptor {
                body_type: self.body.body_type(),
                // 584 or 648.
                body_size: body.len() as u32,
            };
            out.extend_from_slice(&descriptor.encode());
        }
        out.extend_from_slice(&body);
        out
    }

    /// The whole quote: [`UnsignedQuote::signed_bytes`], then the signature data with its
    /// length.
    pub fn to_bytes(&self, signature_data: &SignatureData) -> Result<Vec<u8>, QuoteEncodeError> {
        let mut out = self.signed_bytes();
        put_u32_prefixed(&mut out, "signature data", &signature_data.to_bytes()?)?;
        Ok(out)
    }
}

/// The signature data of a quote (Intel DCAP quote library, appendix A: "ECDSA 256-bit Quote
/// Signature Data Structure"): the attestation key's signature, the key, and certification data
/// type 6 with the QE report, its PCK signature, the QE authentication data and the nested
/// certification data. The caller makes both signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureData {
    /// `r ‖ s`, big-endian, over [`UnsignedQuote::signed_bytes`].
    pub signature: [u8; 64],
    /// `x ‖ y` of the attestation key.
    pub attestation_key: [u8; 64],
    /// The QE report certification data; its signature over the QE report is the caller's.
    pub qe: QeCertification,
}

impl SignatureData {
    /// The signature data as a quote carries it after its length field.
    pub fn to_bytes(&self) -> Result<Vec<u8>, QuoteEncodeError> {
        let qe = &self.qe;
        let mut certification = Vec::new();
        certification.extend_from_slice(&qe.qe_report);
        certification.extend_from_slice(&qe.qe_report_signature);
        let auth_len = u16::try_from(qe.qe_auth_data.len()).map_err(|_| {
            too_long(
                "QE authentication data",
                qe.qe_auth_data.len(),
                u16::MAX.into(),
            )
        })?;
        certification.extend_from_slice(&auth_len.to_le_bytes());
        certification.extend_from_slice(&qe.qe_auth_data);
        certification.extend_from_slice(&qe.inner_type.to_le_bytes());
        put_u32_prefixed(
            &mut certification,
            "nested certification data",
            &qe.inner_data,
        )?;

        let mut out = Vec::with_capacity(64 + 64 + 2 + 4 + certification.len());
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(&self.attestation_key);
        out.extend_from_slice(&CERT_DATA_QE_REPORT.to_le_bytes());
        put_u32_prefixed(&mut out, "certification data", &certification)?;
        Ok(out)
    }
}

fn too_long(what: &'static str, len: usize, max: usize) -> QuoteEncodeError {
    QuoteEncodeError::TooLong { what, len, max }
}

/// Appends `data` with its length as a little-endian u32 before it.
fn put_u32_prefixed(
    out: &mut Vec<u8>,
    what: &'static str,
    data: &[u8],
) -> Result<(), QuoteEncodeError> {
    let len =
        u32::try_from(data.len()).map_err(|_| too_long(what, data.len(), u32::MAX as usize))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(data);
    Ok(())
}

layout! {
    /// The QE's SGX report (`sgx_report_body_t`, 384 bytes; Intel SGX SDM, REPORT structure), as
    /// far as QE identity appraisal needs it. The bytes between the fields (ISVEXTPRODID,
    /// CONFIGID, CONFIGSVN, ISVFAMILYID and the reserved ranges) are not read, and are zero
    /// when encoded.
    pub struct EnclaveReport[ENCLAVE_REPORT_LEN] {
        /// CPUSVN of the platform.
        [0x000] cpu_svn: [u8; 16],
        /// MISCSELECT: the extended features of the enclave's SSA frames.
        [0x010] miscselect: u32,
        /// ATTRIBUTES in report byte order (byte 0 bit 1 is DEBUG).
        [0x030] attributes: [u8; 16],
        /// MRENCLAVE: SHA-256 measurement of the enclave.
        [0x040] mrenclave: [u8; 32],
        /// MRSIGNER: SHA-256 of the modulus of the key that signed the enclave.
        [0x080] mrsigner: [u8; 32],
        /// ISVPRODID: the enclave's product ID.
        [0x100] isv_prod_id: u16,
        /// ISVSVN: the enclave's security version number.
        [0x102] isv_svn: u16,
        /// REPORT_DATA; in the QE report, SHA-256(attestation key ‖ QE authentication data)
        /// followed by 32 zero bytes.
        [0x140] report_data: [u8; 64],
    }
}

/// TD attributes (Intel TDX Module ABI spec, TDINFO_STRUCT.ATTRIBUTES; 348551, table "TD
/// attributes"). Bits 7:0 are the TUD group: any of them set means the TD is under debug and
/// untrusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TdAttributes {
    /// The 64-bit TD_ATTRIBUTES word (serialised as `0x` and 16 hex digits).
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

    /// A body whose every byte tells the fields apart.
    fn patterned_body(tdx15: bool) -> TdxBody {
        let mut b = [0u8; TD_REPORT15_BODY_LEN];
        for (i, x) in b.iter_mut().enumerate() {
            *x = (i % 251) as u8;
        }
        let mut body = TdxBody::decode(&b);
        if !tdx15 {
            body.tee_tcb_svn_2 = None;
            body.mrservicetd = None;
        }
        body
    }

    fn signature_data() -> SignatureData {
        SignatureData {
            signature: [0x51; 64],
            attestation_key: [0x4b; 64],
            qe: QeCertification {
                qe_report: [0x7e; ENCLAVE_REPORT_LEN],
                qe_report_signature: [0x52; 64],
                qe_auth_data: (0u8..32).collect(),
                inner_type: CERT_DATA_PCK_CHAIN + 1,
                inner_data: b"not a chain".to_vec(),
            },
        }
    }

    #[test]
    fn layouts_follow_intels_headers() {
        // Header and bodies are packed: each field starts where the one before ends.
        for (fields, len) in [
            (QuoteHeader::FIELDS, QUOTE_HEADER_LEN),
            (QuoteBodyDescriptor::FIELDS, V5_BODY_DESCRIPTOR_LEN),
            (TdxBody::FIELDS, TD_REPORT15_BODY_LEN),
        ] {
            let mut end = 0;
            for f in fields {
                assert_eq!(f.offset, end, "{}", f.name);
                end = f.end();
            }
            assert_eq!(end, len);
        }
        assert_eq!(
            TdxBody::field("tee_tcb_svn_2").map(|f| f.offset),
            Some(TD_REPORT10_BODY_LEN)
        );
        assert_eq!(
            TdxBody::field("report_data").map(|f| f.range()),
            Some(520..584)
        );
        assert_eq!(TdxBody::field("rtmr").map(|f| f.len), Some(4 * 48));
        assert_eq!(
            EnclaveReport::field("report_data").map(|f| f.end()),
            Some(384)
        );
        assert_eq!(EnclaveReport::field("nonsense"), None);
    }

    #[test]
    fn encode_then_parse_round_trips() {
        for (version, tdx15) in [(4, false), (5, false), (5, true)] {
            let unsigned = UnsignedQuote {
                header: QuoteHeader::tdx(version, [0x0d; 20]),
                body: patterned_body(tdx15),
            };
            let sd = signature_data();
            let quote = unsigned.to_bytes(&sd).unwrap();
            let q = TdxQuote::parse(&quote).unwrap();
            assert_eq!(q.header, unsigned.header);
            assert_eq!(q.body, unsigned.body);
            assert_eq!(q.is_tdx15(), tdx15);
            assert_eq!(q.body_type.is_some(), version == 5);
            assert_eq!(q.signed_bytes(), unsigned.signed_bytes());
            assert_eq!(q.body_bytes(), unsigned.body.to_bytes());
            assert_eq!(
                (q.signature, q.attestation_key),
                (sd.signature, sd.attestation_key)
            );
            assert_eq!(q.certification_type, CERT_DATA_QE_REPORT);
            assert_eq!(q.qe, sd.qe);
            assert_eq!(q.pck_chain, None);
            assert_eq!(q.trailing_len, 0);
            assert_eq!(&quote[q.signature_data_range()], sd.to_bytes().unwrap());
        }
    }

    #[test]
    fn encoder_writes_what_the_parser_rejects() {
        let mut unsigned = UnsignedQuote {
            header: QuoteHeader::tdx(4, [0; 20]),
            body: patterned_body(false),
        };
        unsigned.header.tee_type = 0;
        let quote = unsigned.to_bytes(&signature_data()).unwrap();
        assert_eq!(
            TdxQuote::parse(&quote),
            Err(QuoteError::NotTdx { tee_type: 0 })
        );
        // A QE authentication data size does not fit in its u16.
        let mut sd = signature_data();
        sd.qe.qe_auth_data = vec![0; 0x1_0000];
        assert_eq!(
            unsigned.to_bytes(&sd),
            Err(QuoteEncodeError::TooLong {
                what: "QE authentication data",
                len: 0x1_0000,
                max: 0xffff,
            })
        );
    }

    #[test]
    fn a_cut_body_names_the_field_it_falls_in() {
        let unsigned = UnsignedQuote {
            header: QuoteHeader::tdx(5, [0; 20]),
            body: patterned_body(true),
        };
        let quote = unsigned.signed_bytes();
        // Header and descriptor are 54 bytes; TEE_TCB_SVN_2 starts at body offset 0x248.
        let cut = 54 + 0x248 + 3;
        assert_eq!(
            TdxQuote::parse(&quote[..cut]),
            Err(QuoteError::Truncated {
                what: "tee_tcb_svn_2",
                start: 54 + 0x248,
                end: 54 + 0x258,
                len: cut,
            })
        );
        assert_eq!(
            TdxQuote::parse(&quote[..54 + 0x150]),
            Err(QuoteError::Truncated {
                what: "rtmr",
                start: 54 + 0x148,
                end: 54 + 0x208,
                len: 54 + 0x150,
            })
        );
        assert!(matches!(
            TdxQuote::parse(&quote[..50]),
            Err(QuoteError::Truncated {
                what: "body_size",
                ..
            })
        ));
    }
}
