// SPDX-License-Identifier: Apache-2.0
//! Pure verification of thimble evidence: bytes and a time in, a verdict out. No I/O, no clock.
//!
//! An embedder parses a bundle with `thimble_evidence::bundle::Bundle::parse_limited` and hands
//! it to [`bundle::verify_bundle`] with [`bundle::VerifyOptions`].
//! [`VerifyOptions::strict`](bundle::VerifyOptions::strict) trusts only the vendor roots
//! compiled in ([`roots`]: AMD's ARKs, the Intel SGX Root CA) and applies the default policies;
//! the verification time is a parameter, in seconds since the Unix epoch, because this crate
//! reads no clock. Evidence outside a bundle goes to [`snp::verify_report`],
//! [`tdx::verify_quote`] or [`azure::verify_hcl`] directly.
//!
//! These return an [`Outcome`], never an `Err`: a [`Verdict`], every [`VerifyError`] found,
//! warnings, the certificate chain used and the claims decoded afresh from the evidence bytes
//! (the bundle's own `claims` are never read). Each error has a stable [`Code`], whose
//! [`ErrorClass`] (malformed, authenticity, policy) the CLI maps to exit codes 6, 7 and 8.
//!
//! Authenticity ([`chain`], [`intel_chain`], [`signature`]) is kept apart from policy
//! ([`policy`], [`options`]): an authenticity failure stops verification at the first problem
//! (nothing after it would mean anything), while policy checks report every violation.
//!
//! - [`snp`]: SEV-SNP reports under AMD's pinned ARKs ([`chain`]); [`amd_crl`] checks the chain's
//!   ASK or ASVK against the ARK's CRLs.
//! - [`tdx`]: Intel TDX quotes with DCAP collateral under the pinned Intel SGX Root CA
//!   ([`intel_chain`] for the Intel chains and CRLs).
//! - [`azure`]: Azure paravisor evidence: the hardware report in the HCL report, its binding to
//!   the runtime data, the paravisor's identity and the vTPM quote.
//! - [`eventlog`]: replays a measured-boot event log against the RTMRs or PCRs of verified
//!   evidence.
//! - [`bundle`]: a whole bundle, whichever its TEE; [`outcome`]: the result and the error codes.
//!
//! # Example
//!
//! ```
//! use thimble_evidence::bundle::{Bundle, DEFAULT_MAX_BUNDLE_LEN};
//! use thimble_evidence::time_fmt::parse_rfc3339;
//! use thimble_verify::bundle::{VerifyOptions, verify_bundle};
//! use thimble_verify::{Code, ErrorClass, Verdict};
//!
//! // A bundle as `thimble collect` writes it, except that its "report" is three zero bytes.
//! let json = br#"{
//!     "format": "thimble-evidence-bundle", "version": 1, "tee": "sev-snp", "simulated": false,
//!     "agent": {"name": "thimble", "version": "0.1.0"}, "created_at": "2026-06-01T00:00:00Z",
//!     "collection": {"source": "import"}, "evidence": {"snp_report": "AAAA"}, "endorsements": []
//! }"#;
//! let bundle = Bundle::parse_limited(json, DEFAULT_MAX_BUNDLE_LEN)?;
//!
//! // The caller supplies the time: certificates and collateral must be valid then.
//! let at = parse_rfc3339("2026-06-01T00:00:00Z").unwrap();
//! let outcome = verify_bundle(&bundle, &VerifyOptions::strict(at));
//!
//! assert_eq!(outcome.verdict, Verdict::Invalid);
//! assert_eq!(outcome.errors[0].code, Code::MalformedReport);
//! // The worst class decides the exit code, as the CLI does it.
//! let exit_code = match outcome.worst_class() {
//!     None => 0,
//!     Some(ErrorClass::Malformed) => 6,
//!     Some(ErrorClass::Authenticity) => 7,
//!     Some(ErrorClass::Policy) => 8,
//! };
//! assert_eq!(exit_code, 6);
//! # Ok::<(), thimble_evidence::bundle::BundleError>(())
//! ```

#![warn(missing_docs)]
// Libraries return what they found; only the binary prints (agent/cli/src/output.rs).
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod amd_crl;
pub mod azure;
pub mod bundle;
pub mod chain;
pub mod eventlog;
pub mod intel_chain;
pub mod options;
pub mod outcome;
pub mod policy;
pub mod roots;
pub mod signature;
pub mod snp;
pub mod tdx;

pub use options::{Options, Policy};
pub use outcome::{Code, ErrorClass, Outcome, Verdict, VerifyError};
pub use roots::{IntelRoots, TrustedRoots};
