// SPDX-License-Identifier: Apache-2.0
//! The one place a [`Bundle`] is assembled: every collector (SEV-SNP, TDX, Azure) and `thimble
//! import` go through [`BundleBuilder`], which fills in what every bundle shares (format, version,
//! the agent, the creation time) so that no caller can get it wrong, and the claims helpers,
//! which decode the evidence for people. Claims are informational: `verify` never reads them.

use thimble_evidence::azure::{HclReport, HclReportType};
use thimble_evidence::bundle::{
    Agent, Bundle, Claims, Collection, Endorsement, Evidence, FORMAT, Nonce, Tee, VERSION,
};
use thimble_evidence::snp::{AmdCert, SnpReport};
use thimble_evidence::tdx::{PckInfo, TdxClaims, TdxQuote};
use thimble_evidence::time_fmt::format_unix;

/// The agent name bundles record.
pub const AGENT_NAME: &str = "thimble";

/// The agent identity recorded in bundles: thimble and its version.
pub fn agent() -> Agent {
    Agent {
        name: AGENT_NAME.into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }
}

/// Builds a [`Bundle`] of one TEE, member by member; what is not set stays empty.
#[derive(Debug, Clone)]
pub struct BundleBuilder {
    bundle: Bundle,
}

impl BundleBuilder {
    /// A bundle of `tee` created at `created_at` (seconds since the Unix epoch), with this
    /// format, version and agent.
    pub fn new(tee: Tee, created_at: i64) -> BundleBuilder {
        BundleBuilder {
            bundle: Bundle {
                format: FORMAT.into(),
                version: VERSION,
                tee,
                simulated: false,
                agent: agent(),
                created_at: format_unix(created_at),
                kernel_release: None,
                collection: Collection::default(),
                nonce: None,
                evidence: Evidence::default(),
                endorsements: Vec::new(),
                endorsement_log: Vec::new(),
                claims: serde_json::Value::Null,
            },
        }
    }

    /// Marks the evidence as simulated (informational, like everything unsigned).
    pub fn simulated(mut self, simulated: bool) -> BundleBuilder {
        self.bundle.simulated = simulated;
        self
    }

    /// The kernel release of the guest.
    pub fn kernel_release(mut self, release: Option<String>) -> BundleBuilder {
        self.bundle.kernel_release = release;
        self
    }

    /// How the evidence was collected.
    pub fn collection(mut self, collection: Collection) -> BundleBuilder {
        self.bundle.collection = collection;
        self
    }

    /// The nonce and how REPORT_DATA was derived from it.
    pub fn nonce(mut self, nonce: Option<Nonce>) -> BundleBuilder {
        self.bundle.nonce = nonce;
        self
    }

    /// The raw evidence.
    pub fn evidence(mut self, evidence: Evidence) -> BundleBuilder {
        self.bundle.evidence = evidence;
        self
    }

    /// The endorsements and the log of every source tried for them.
    pub fn endorsements(
        mut self,
        endorsements: Vec<Endorsement>,
        log: Vec<String>,
    ) -> BundleBuilder {
        self.bundle.endorsements = endorsements;
        self.bundle.endorsement_log = log;
        self
    }

    /// The claims decoded for people.
    pub fn claims(mut self, claims: serde_json::Value) -> BundleBuilder {
        self.bundle.claims = claims;
        self
    }

    /// The bundle.
    pub fn build(self) -> Bundle {
        self.bundle
    }
}

/// Claims of an SEV-SNP report, with its TCB decoded for the product the report names, or else
/// the product of one of `certs`.
pub fn snp_claims(report: &SnpReport, certs: &[AmdCert]) -> serde_json::Value {
    let product = report
        .product_hint()
        .or_else(|| certs.iter().find_map(|c| c.product()));
    serde_json::to_value(Claims::from_report(report, product)).unwrap_or_default()
}

/// Claims of a TDX quote, with the platform of its PCK certificate when it is known (`pck`, or
/// else the quote's own chain).
pub fn tdx_claims(quote: &TdxQuote, pck: Option<&PckInfo>) -> serde_json::Value {
    let own = || {
        quote
            .pck_chain
            .as_ref()
            .and_then(|c| c.first())
            .and_then(|d| PckInfo::from_der(d).ok())
    };
    let pck = pck.cloned().or_else(own);
    serde_json::to_value(TdxClaims::from_quote(quote, pck.as_ref())).unwrap_or_default()
}

/// Claims of an Azure HCL report: its type, the claims of the hardware report inside
/// (`hardware`), and the runtime data as JSON.
pub fn azure_claims(hcl: &HclReport, hardware: serde_json::Value) -> serde_json::Value {
    let runtime: Option<serde_json::Value> = serde_json::from_slice(hcl.runtime_data_bytes()).ok();
    serde_json::json!({
        "hcl_report_type": match hcl.report_type() { HclReportType::Snp => "snp", HclReportType::Tdx => "tdx" },
        "hardware": hardware,
        "runtime_data": runtime,
    })
}
