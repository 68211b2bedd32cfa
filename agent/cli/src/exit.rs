// SPDX-License-Identifier: Apache-2.0
//! The documented exit codes. Scripts branch on these; they never change meaning.

/// Success.
pub const OK: u8 = 0;
/// Anything not covered below (an I/O error writing the output, an internal error).
pub const OTHER: u8 = 1;
/// The command line is wrong (unknown flag, bad value, unreadable input path).
pub const USAGE: u8 = 2;
/// No usable TEE evidence source on this machine.
pub const NO_TEE: u8 = 3;
/// The evidence source failed while collecting.
pub const COLLECTION_FAILED: u8 = 4;
/// Endorsements could not be fetched from any source.
pub const ENDORSEMENT_FAILED: u8 = 5;
/// Input (report, certificate, bundle, response) is malformed.
pub const MALFORMED: u8 = 6;
/// Authenticity failed: signature, chain, validity or binding.
pub const AUTHENTICITY: u8 = 7;
/// Authentic, but the policy is not met (nonce mismatch, debug guest, TCB below minimum, ...).
pub const POLICY: u8 = 8;
/// A remote verifier could not be reached, did not answer in time, or stayed unavailable (429 or
/// 5xx after the retries).
pub const VERIFIER_UNAVAILABLE: u8 = 9;
/// A remote verifier refused: credentials, the request, the evidence or its binding (a 4xx
/// answer, or a Veraison session that failed).
pub const VERIFIER_REFUSED: u8 = 10;
