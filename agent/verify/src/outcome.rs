// SPDX-License-Identifier: Apache-2.0
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

/// Declares [`Code`]: each variant with its stable name and its class.
macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $class:ident; )*) => {
        /// The stable code of a verification error. The README's summary and docs/verify.md's
        /// tables of verification error codes list exactly these (a test keeps them in step);
        /// scripts branch on the name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in declaration order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The name written in `verify --json` and the README (`malformed-report`, `chain`).
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }

            /// The class, which decides the exit code.
            pub fn class(self) -> ErrorClass {
                match self { $(Code::$variant => ErrorClass::$class,)* }
            }
        }
    };
}

codes! {
    // Malformed input (exit 6).
    /// A member of the bundle does not decode, or the bundle breaks a limit on its shape.
    MalformedBundle = "malformed-bundle", Malformed;
    /// A certificate is not parseable X.509 (or its vendor extension cannot be read).
    MalformedCertificate = "malformed-certificate", Malformed;
    /// TCB info, QE identity or a CRL does not parse, or carries values it may not.
    MalformedCollateral = "malformed-collateral", Malformed;
    /// A measured-boot event log does not parse, or cannot be replayed against the evidence.
    MalformedEventLog = "malformed-event-log", Malformed;
    /// The HCL report does not parse.
    MalformedHclReport = "malformed-hcl-report", Malformed;
    /// The TDX quote does not parse.
    MalformedQuote = "malformed-quote", Malformed;
    /// The SEV-SNP report does not parse or has non-zero reserved fields.
    MalformedReport = "malformed-report", Malformed;
    /// The HCL report's runtime data is not the expected JSON.
    MalformedRuntimeData = "malformed-runtime-data", Malformed;
    /// The TPM quote does not parse.
    MalformedTpmQuote = "malformed-tpm-quote", Malformed;

    // Authenticity (exit 7).
    /// A certificate is not valid at the verification time.
    CertificateExpired = "certificate-expired", Authenticity;
    /// A certificate does not chain to a pinned root.
    Chain = "chain", Authenticity;
    /// Collateral or a CRL is past its `nextUpdate`.
    CollateralExpired = "collateral-expired", Authenticity;
    /// Collateral or a CRL is not the one for this evidence.
    CollateralMismatch = "collateral-mismatch", Authenticity;
    /// Collateral or a CRL was issued after the verification time.
    CollateralNotYetValid = "collateral-not-yet-valid", Authenticity;
    /// Collateral or a CRL is not signed by the key it should be.
    CollateralSignature = "collateral-signature", Authenticity;
    /// A certificate is listed in a CRL.
    CrlRevoked = "crl-revoked", Authenticity;
    /// A measured-boot event log does not replay to the registers the evidence signs.
    EventLogMismatch = "event-log-mismatch", Authenticity;
    /// REPORT_DATA is not the hash of the HCL report's runtime data.
    HclBinding = "hcl-binding", Authenticity;
    /// An endorsement the verification needs is not in the bundle.
    MissingEndorsement = "missing-endorsement", Authenticity;
    /// The QE report does not certify the attestation key.
    QeBinding = "qe-binding", Authenticity;
    /// The quoting enclave is not the one Intel's QE identity describes.
    QeIdentity = "qe-identity", Authenticity;
    /// A signature over the evidence does not verify.
    Signature = "signature", Authenticity;
    /// A `--simulate` bundle checked without the simulation roots.
    Simulated = "simulated", Authenticity;
    /// No TCB level of the collateral is met.
    TcbLevelNotFound = "tcb-level-not-found", Authenticity;
    /// The TCB status is `Revoked`.
    TcbRevoked = "tcb-revoked", Authenticity;
    /// The TDX quote was not made from the HCL report's TD report.
    TdReportMismatch = "td-report-mismatch", Authenticity;
    /// The TDX module is not the one of the TCB info.
    TdxModule = "tdx-module", Authenticity;
    /// The PCR values given are not the ones the TPM quote covers.
    TpmPcrDigest = "tpm-pcr-digest", Authenticity;
    /// The TPM quote's PCR selection is empty, repeats a bank or does not match the values given.
    TpmPcrSelection = "tpm-pcr-selection", Authenticity;
    /// The TPM quote is not signed by the attestation key in the runtime data.
    TpmQuoteSignature = "tpm-quote-signature", Authenticity;
    /// The report comes from a CPU whose product thimble does not know.
    UnsupportedProduct = "unsupported-product", Authenticity;
    /// The VCEK or VLEK is not the one for this report.
    VcekMismatch = "vcek-mismatch", Authenticity;

    // Policy (exit 8).
    /// There is no TPM quote.
    MissingTpmQuote = "missing-tpm-quote", Policy;
    /// REPORT_DATA, the TPM quote's extraData or the HCL user-data is not the expected nonce.
    NonceMismatch = "nonce-mismatch", Policy;
    /// The hardware report in an Azure bundle was not made at VMPL 0, where the paravisor runs.
    ParavisorVmpl = "paravisor-vmpl", Policy;
    /// SEV-SNP: AUTHOR_KEY_DIGEST is not a trusted author key, or none was required and absent.
    PolicyAuthorKey = "policy-author-key", Policy;
    /// A pinned boot component digest is not among those the event log measured.
    PolicyBootDigest = "policy-boot-digest", Policy;
    /// SEV-SNP: CHIP_ID is not the expected one.
    PolicyChipId = "policy-chip-id", Policy;
    /// A debug guest or TD.
    PolicyDebug = "policy-debug", Policy;
    /// The policy pins measured boot, but no event log replayed to signed registers.
    PolicyEventLog = "policy-event-log", Policy;
    /// SEV-SNP: FAMILY_ID is not the expected one.
    PolicyFamilyId = "policy-family-id", Policy;
    /// SEV-SNP: the firmware build or version is below the minimum.
    PolicyFirmware = "policy-firmware", Policy;
    /// SEV-SNP: the guest policy allows what the verifier does not (SMT, migration agent, ABI).
    PolicyGuestPolicy = "policy-guest-policy", Policy;
    /// SEV-SNP: GUEST_SVN is below the minimum.
    PolicyGuestSvn = "policy-guest-svn", Policy;
    /// SEV-SNP: HOST_DATA is not the expected one.
    PolicyHostData = "policy-host-data", Policy;
    /// SEV-SNP: ID_KEY_DIGEST is not a trusted ID key, or no ID block was used.
    PolicyIdKey = "policy-id-key", Policy;
    /// SEV-SNP: IMAGE_ID is not the expected one.
    PolicyImageId = "policy-image-id", Policy;
    /// The measured kernel command line is not the expected one.
    PolicyKernelCmdline = "policy-kernel-cmdline", Policy;
    /// SEV-SNP: LAUNCH_TCB is below the minimum.
    PolicyLaunchTcb = "policy-launch-tcb", Policy;
    /// SEV-SNP: MEASUREMENT is not the expected one.
    PolicyMeasurement = "policy-measurement", Policy;
    /// TDX: MRCONFIGID is not the expected one.
    PolicyMrconfigid = "policy-mrconfigid", Policy;
    /// TDX: MROWNER is not the expected one.
    PolicyMrowner = "policy-mrowner", Policy;
    /// TDX: MROWNERCONFIG is not the expected one.
    PolicyMrownerconfig = "policy-mrownerconfig", Policy;
    /// TDX: MRSEAM is not the expected one.
    PolicyMrseam = "policy-mrseam", Policy;
    /// TDX: MRTD is not the expected one.
    PolicyMrtd = "policy-mrtd", Policy;
    /// SEV-SNP: PLATFORM_INFO is not the expected one.
    PolicyPlatformInfo = "policy-platform-info", Policy;
    /// TDX: the QE or PCE SVN in the quote header is below the minimum.
    PolicyQeSvn = "policy-qe-svn", Policy;
    /// SEV-SNP: REPORT_ID or REPORT_ID_MA is not the expected one.
    PolicyReportId = "policy-report-id", Policy;
    /// TDX: an RTMR is not the expected value.
    PolicyRtmr = "policy-rtmr", Policy;
    /// The measured Secure Boot state is not the expected one.
    PolicySecureBoot = "policy-secure-boot", Policy;
    /// TDX: SEPT_VE_DISABLE is clear and required.
    PolicySeptVeDisable = "policy-sept-ve-disable", Policy;
    /// SEV-SNP: REPORTED_TCB is below the minimum.
    PolicyTcb = "policy-tcb", Policy;
    /// TDX: the TCB status is worse than the minimum.
    PolicyTcbStatus = "policy-tcb-status", Policy;
    /// TDX: the TD attributes are not the expected ones.
    PolicyTdAttributes = "policy-td-attributes", Policy;
    /// TDX: TEE_TCB_SVN is below the minimum.
    PolicyTeeTcbSvn = "policy-tee-tcb-svn", Policy;
    /// SEV-SNP: VMPL is above the maximum.
    PolicyVmpl = "policy-vmpl", Policy;
    /// TDX: XFAM is not the expected one.
    PolicyXfam = "policy-xfam", Policy;
    /// Azure: the HCL report's user-data shows a hardware report made before this nonce.
    StaleHclReport = "stale-hcl-report", Policy;
    /// Azure: the hardware report was not made by a paravisor the verifier trusts.
    UnknownParavisor = "unknown-paravisor", Policy;
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One error. `code` is stable and documented; `message` is for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyError {
    /// The stable code.
    pub code: Code,
    /// The code's class (always `code.class()`).
    pub class: ErrorClass,
    /// What went wrong, for people; the wording is not stable.
    pub message: String,
}

impl VerifyError {
    /// An error of `code`, whose class follows from the code.
    pub fn new(code: Code, message: impl Into<String>) -> VerifyError {
        VerifyError {
            code,
            class: code.class(),
            message: message.into(),
        }
    }
}

/// Whether the evidence passed: `Valid` exactly when there is no error (warnings do not count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No error.
    Valid,
    /// At least one error.
    Invalid,
}

/// One certificate of the chain that was used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainLink {
    /// The certificate's role: `vcek`, `vlek`, `ask`, `asvk` or `ark`; for Intel, `pck`,
    /// `tcb-signing` or `qe-identity-signing` for a leaf and the CA's name for a CA
    /// (`pck-platform-ca`, `intel-root-ca`, …).
    pub role: String,
    /// The subject name, as text.
    pub subject: String,
    /// SHA-256 of the certificate's DER, hex.
    pub sha256: String,
    /// Start of validity (RFC 3339).
    pub not_before: String,
    /// End of validity (RFC 3339).
    pub not_after: String,
}

/// The full result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// `Valid` exactly when `errors` is empty (once [`Outcome::finish`] has run).
    pub verdict: Verdict,
    /// The TEE verified: `sev-snp`, `tdx`, `azure-sev-snp` or `azure-tdx`.
    pub tee: &'static str,
    /// The time the verification was made for (RFC 3339).
    pub verified_at: String,
    /// Every error found. Authenticity checks stop at the first failure; policy checks report
    /// all of theirs.
    pub errors: Vec<VerifyError>,
    /// Things worth knowing that do not fail the verification (a TCB status other than
    /// `UpToDate` that the policy accepts, SEPT_VE_DISABLE clear, a test root used, …), for
    /// people.
    pub warnings: Vec<String>,
    /// SEV-SNP (direct or on Azure): the product of the root the chain ended at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<Product>,
    /// `vcek` or `vlek`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// Whether a simulation (test) root was used; never true unless the caller allowed it.
    pub simulated: bool,
    /// The certificate chain that verified, leaf first (empty when none did).
    pub chain: Vec<ChainLink>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The claims of the evidence (TEE-specific shape: `thimble_evidence::bundle::SnpClaims` for
    /// SEV-SNP, `thimble_evidence::tdx::TdxClaims` for TDX), recomputed from the verified bytes.
    pub claims: Option<serde_json::Value>,
    /// TDX: the TCB status Intel's collateral gives the platform, QE and TDX module
    /// (`UpToDate`, `OutOfDate`, …), as Intel's QVL computes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcb_status: Option<String>,
    /// TDX: the Intel security advisories that apply to that TCB (`INTEL-SA-…`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub advisory_ids: Vec<String>,
    /// The bundle's measured-boot event logs as judged against the verified registers (absent
    /// when the bundle carries none, or when the evidence itself did not verify).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_logs: Vec<crate::eventlog::LogOutcome>,
}

impl Outcome {
    /// An empty, `Invalid` outcome for `tee` at `verified_at` (RFC 3339), to be filled in and
    /// finished with [`Outcome::finish`].
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
            event_logs: Vec::new(),
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

/// For a bundle that says it was made by `--simulate` but did not chain to a trusted root while
/// the simulation roots were not allowed: the reason in plain words instead of a bare chain
/// failure. When they were allowed, the real error stands: the flag was given, so suggesting it
/// would hide the cause. The `simulated` member is unsigned, so it only changes how a failure is
/// worded: never whether there is one, nor the outcome's `simulated`, which says whether a test
/// root was used.
pub fn explain_simulated(mut out: Outcome, bundle_simulated: bool, allowed: bool) -> Outcome {
    if bundle_simulated && !allowed && out.errors.iter().any(|e| e.code == Code::Chain) {
        out.errors.retain(|e| e.code != Code::Chain);
        out.errors.insert(
            0,
            VerifyError::new(
                Code::Simulated,
                "bundle was produced by --simulate and is signed by test keys; pass --insecure-allow-simulated to check it against the simulation root",
            ),
        );
    }
    out.finish()
}
