// SPDX-License-Identifier: Apache-2.0
//! Pure parsing for thimble: bytes in, typed values out, no I/O and no clock.
//!
//! thimble collects attestation evidence from confidential VMs (AMD SEV-SNP, Intel TDX, and Azure
//! confidential VMs behind the paravisor on either) and verifies it offline. This crate says what
//! the bytes mean; `thimble-verify` decides whether to believe them. Nothing here checks a
//! signature, a certificate chain or a date: a tampered report or quote parses, and fails later
//! as a bad signature.
//!
//! Where to start:
//!
//! - [`Bundle::parse_limited`](bundle::Bundle::parse_limited) (or
//!   [`Bundle::parse`](bundle::Bundle::parse), with [`bundle::DEFAULT_MAX_BUNDLE_LEN`]) reads an
//!   evidence bundle, the JSON document `thimble collect` writes (`docs/bundle-format.md`); its
//!   [`Evidence`](bundle::Evidence) has one variant per TEE, holding the raw evidence bytes that
//!   TEE carries.
//! - [`SnpReport::parse`](snp::SnpReport::parse), [`TdxQuote::parse`](tdx::TdxQuote::parse),
//!   [`HclReport::parse`](azure::HclReport::parse) and
//!   [`TpmQuote::parse_json`](azure::TpmQuote::parse_json) parse raw evidence.
//! - [`AmdCert::parse_der`](snp::AmdCert::parse_der), [`Crl::parse`](crl::Crl::parse),
//!   [`TcbInfoBody::parse`](tdx::TcbInfoBody::parse) and
//!   [`QeIdentityBody::parse`](tdx::QeIdentityBody::parse) parse endorsements;
//!   [`cert_file::recognise`] tells which of them a file holds.
//!
//! Each parser returns its own error enum ([`snp::ReportError`], [`tdx::QuoteError`],
//! [`bundle::BundleError`], …) that names what is wrong and where. Untrusted input is bounded:
//! bundle, HCL report, collateral and TPM quote sizes are checked before decoding, and list and
//! entry counts are capped.
//!
//! The modules:
//!
//! - [`snp`]: the SEV-SNP `ATTESTATION_REPORT`, its TCB and policy words, the extended-report
//!   certificate table, and the AMD VCEK/VLEK/ASK/ARK certificates with their extensions.
//! - [`tdx`]: the Intel TDX quote (v4/v5), the TD report, the PCK certificate's SGX extension,
//!   Intel's signed TCB info / QE identity bodies and CRLs, and the claims of a TD.
//! - [`azure`]: the HCL report Azure's paravisor stores in the vTPM, its runtime data, and the
//!   vTPM quote.
//! - [`thim`] and [`kds`]: the Azure THIM AMD response body and the AMD KDS URL scheme.
//! - [`cert_file`]: recognising certificate, CRL and collateral files by their content.
//! - [`crl`]: X.509 CRLs, AMD's (KDS, issued by the ARK) and Intel's (PCK and root CA).
//! - [`report_data`]: how REPORT_DATA is derived from a nonce.
//! - [`digest`]: SHA-256, SHA-384 and SHA-512.
//! - [`eventlog`]: measured-boot event logs (TCG crypto-agile, TDX CCEL) and their claims.
//! - [`interop`]: the same evidence in other tools' and verifiers' forms (export, import).
//! - [`tpm2`]: TPM 2.0 marshalling and unmarshalling, shared by the vTPM client and its fake.
//! - [`bundle`]: the versioned evidence bundle, the one public contract of the project: its
//!   evidence, collection source, origins and claims as types per TEE.
//! - [`time_fmt`]: RFC 3339 times as the bundle writes them.
//!
//! Every parsed value keeps the bytes it was parsed from, so that signatures are verified over the
//! bytes received and never over a re-encoding.
//!
//! # Example
//!
//! ```
//! use thimble_evidence::bundle::{Bundle, BundleError, DEFAULT_MAX_BUNDLE_LEN, Evidence, Tee};
//! use thimble_evidence::report_data::{self, Derivation};
//! use thimble_evidence::snp::{ReportError, SnpReport};
//!
//! // The smallest SEV-SNP bundle a reader accepts (its "report" is three zero bytes).
//! let json = br#"{
//!     "format": "thimble-evidence-bundle", "version": 1, "tee": "sev-snp", "simulated": false,
//!     "agent": {"name": "thimble", "version": "0.1.0"}, "created_at": "2026-06-01T00:00:00Z",
//!     "collection": {"source": "import"}, "evidence": {"snp_report": "AAAA"}, "endorsements": []
//! }"#;
//! let bundle = Bundle::parse_limited(json, DEFAULT_MAX_BUNDLE_LEN)?;
//! assert_eq!(bundle.tee(), Tee::SevSnp);
//! let Evidence::SevSnp(evidence) = &bundle.evidence else { unreachable!() };
//! assert_eq!(evidence.report, [0, 0, 0]);
//!
//! // Evidence that does not fit the bundle's TEE is refused by name.
//! let tdx = String::from_utf8_lossy(json).replace(r#""sev-snp""#, r#""tdx""#);
//! assert_eq!(
//!     Bundle::parse_limited(tdx.as_bytes(), DEFAULT_MAX_BUNDLE_LEN),
//!     Err(BundleError::Unexpected { field: "evidence.snp_report", tee: Tee::Tdx })
//! );
//!
//! // Parsers take exactly the bytes of their structure; anything else is a typed error.
//! assert_eq!(
//!     SnpReport::parse(&[0u8; 100]),
//!     Err(ReportError::Length { expected: 1184, actual: 100 })
//! );
//!
//! // REPORT_DATA as `thimble collect --nonce` binds a nonce: SHA-512(nonce).
//! let rd = report_data::derive(Derivation::Sha512, b"verifier nonce").unwrap();
//! assert_eq!(rd, report_data::from_nonce(b"verifier nonce"));
//! # Ok::<(), BundleError>(())
//! ```

#![warn(missing_docs)]
// Libraries return what they found; only the binary prints (agent/cli/src/output.rs).
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod attest;
pub mod azure;
pub mod bundle;
pub mod cert_file;
pub mod crl;
pub mod digest;
pub mod eventlog;
pub mod interop;
pub mod kds;
pub mod report_data;
pub mod snp;
pub mod tdx;
pub mod thim;
pub mod time_fmt;
pub mod tpm2;
