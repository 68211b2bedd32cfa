// SPDX-License-Identifier: AGPL-3.0-or-later
//! The result of a verification: a verdict, every error with a stable code, warnings, and what
//! was established (claims, product, signer, the chain used).

use serde::Serialize;
use thimble_evidence::snp::Product;

/// What kind of failure an error is; the CLI maps these to exit codes 6, 7 and 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorClass {
    /// The input could not be parsed.
    Malformed,
    /// A signature, chain, validity period or binding does not hold.
    Authenticity,
    /// Authentic evidence that the policy does not accept.
    Policy,
}

/// One error. `code` is stable and documented; `message` is for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyError {
    pub code: &'static str,
    pub class: ErrorClass,
    pub message: String,
}

impl VerifyError {
    pub fn malformed(code: &'static str, message: impl Into<String>) -> VerifyError {
        VerifyError {
            code,
            class: ErrorClass::Malformed,
            message: message.into(),
        }
    }
    pub fn authenticity(code: &'static str, message: impl Into<String>) -> VerifyError {
        VerifyError {
            code,
            class: ErrorClass::Authenticity,
            message: message.into(),
        }
    }
    pub fn policy(code: &'static str, message: impl Into<String>) -> VerifyError {
        VerifyError {
            code,
            class: ErrorClass::Policy,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    Invalid,
}

/// One certificate of the chain that was used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainLink {
    pub role: String,
    pub subject: String,
    pub sha256: String,
    pub not_before: String,
    pub not_after: String,
}

/// The full result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub verdict: Verdict,
    pub tee: &'static str,
    /// The time the verification was made for (RFC 3339).
    pub verified_at: String,
    pub errors: Vec<VerifyError>,
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<Product>,
    /// `vcek` or `vlek`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    pub simulated: bool,
    pub chain: Vec<ChainLink>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The claims of the evidence (TEE-specific shape: `thimble_evidence::bundle::Claims` for
    /// SEV-SNP, `thimble_evidence::tdx::TdxClaims` for TDX), recomputed from the verified bytes.
    pub claims: Option<serde_json::Value>,
    /// TDX: the TCB status Intel's collateral gives the platform, QE and TDX module
    /// (`UpToDate`, `OutOfDate`, …), as Intel's QVL computes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcb_status: Option<String>,
    /// TDX: the Intel security advisories that apply to that TCB (`INTEL-SA-…`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub advisory_ids: Vec<String>,
}

impl Outcome {
    pub fn new(tee: &'static str, verified_at: String) -> Outcome {
        Outcome {
            verdict: Verdict::Invalid,
            tee,
            verified_at,
            errors: Vec::new(),
            warnings: Vec::new(),
            product: None,
            signer: None,
            simulated: false,
            chain: Vec::new(),
            claims: None,
            tcb_status: None,
            advisory_ids: Vec::new(),
        }
    }

    /// The most severe class among the errors (malformed before authenticity before policy).
    pub fn worst_class(&self) -> Option<ErrorClass> {
        self.errors.iter().map(|e| e.class).min()
    }

    /// Sets the verdict from the errors.
    pub fn finish(mut self) -> Outcome {
        self.verdict = if self.errors.is_empty() {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        self
    }
}

/// For a bundle that says it was made by `--simulate` but did not chain to a trusted root: the
/// reason in plain words (the test root was not allowed) instead of a bare chain failure. Marks
/// the outcome simulated either way.
pub fn explain_simulated(mut out: Outcome, bundle_simulated: bool) -> Outcome {
    if bundle_simulated && !out.simulated && out.errors.iter().any(|e| e.code == "chain") {
        out.errors.retain(|e| e.code != "chain");
        out.errors.insert(
            0,
            VerifyError::authenticity(
                "simulated",
                "bundle was produced by --simulate and is signed by test keys; pass --insecure-allow-simulated to check it against the simulation root",
            ),
        );
    }
    out.simulated |= bundle_simulated;
    out.finish()
}
