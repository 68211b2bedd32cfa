// SPDX-License-Identifier: Apache-2.0
//! The one place a [`Bundle`] is assembled: every collector (SEV-SNP, TDX, Azure) and `thimble
//! import` go through [`BundleBuilder`], which fills in what every bundle shares (format, version,
//! the agent, the creation time) so that no caller can get it wrong, and starts from evidence and
//! claims typed per TEE, so that no caller can pair them wrongly; and the claims helpers, which
//! decode the evidence for people. Claims are informational: `verify` never reads them.

use thimble_evidence::azure::HclReport;
use thimble_evidence::bundle::{
    Agent, AzureClaims, AzureSevSnpEvidence, AzureTdxEvidence, Bundle, Claims, Collection,
    Endorsement, EventLogEvidence, Evidence, FORMAT, Nonce, SevSnpEvidence, SnpClaims, TdxEvidence,
    VERSION,
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

/// Builds a [`Bundle`] of one TEE. It starts from the evidence, its claims and how it was
/// collected, typed per TEE so that they always fit each other; the rest is set member by
/// member, and what is not set stays empty.
#[derive(Debug, Clone)]
pub struct BundleBuilder {
    bundle: Bundle,
}

impl BundleBuilder {
    fn new(
        created_at: i64,
        collection: Collection,
        evidence: Evidence,
        claims: Claims,
    ) -> BundleBuilder {
        BundleBuilder {
            bundle: Bundle {
                format: FORMAT.into(),
                version: VERSION,
                simulated: false,
                agent: agent(),
                created_at: format_unix(created_at),
                kernel_release: None,
                collection,
                nonce: None,
                evidence,
                endorsements: Vec::new(),
                endorsement_log: Vec::new(),
                event_logs: Vec::new(),
                claims: Some(claims),
            },
        }
    }

    /// An SEV-SNP bundle created at `created_at` (seconds since the Unix epoch), with this
    /// format, version and agent.
    pub fn sev_snp(
        created_at: i64,
        collection: Collection,
        evidence: SevSnpEvidence,
        claims: SnpClaims,
    ) -> BundleBuilder {
        BundleBuilder::new(
            created_at,
            collection,
            Evidence::SevSnp(evidence),
            Claims::SevSnp(claims),
        )
    }

    /// A TDX bundle, as [`BundleBuilder::sev_snp`].
    pub fn tdx(
        created_at: i64,
        collection: Collection,
        evidence: TdxEvidence,
        claims: TdxClaims,
    ) -> BundleBuilder {
        BundleBuilder::new(
            created_at,
            collection,
            Evidence::Tdx(evidence),
            Claims::Tdx(claims),
        )
    }

    /// An Azure SEV-SNP bundle, as [`BundleBuilder::sev_snp`].
    pub fn azure_sev_snp(
        created_at: i64,
        collection: Collection,
        evidence: AzureSevSnpEvidence,
        claims: AzureClaims<SnpClaims>,
    ) -> BundleBuilder {
        BundleBuilder::new(
            created_at,
            collection,
            Evidence::AzureSevSnp(evidence),
            Claims::AzureSevSnp(claims),
        )
    }

    /// An Azure TDX bundle, as [`BundleBuilder::sev_snp`].
    pub fn azure_tdx(
        created_at: i64,
        collection: Collection,
        evidence: AzureTdxEvidence,
        claims: AzureClaims<TdxClaims>,
    ) -> BundleBuilder {
        BundleBuilder::new(
            created_at,
            collection,
            Evidence::AzureTdx(evidence),
            Claims::AzureTdx(claims),
        )
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

    /// The nonce and how REPORT_DATA was derived from it.
    pub fn nonce(mut self, nonce: Option<Nonce>) -> BundleBuilder {
        self.bundle.nonce = nonce;
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

    /// The measured-boot event logs read from the guest.
    pub fn event_logs(mut self, logs: Vec<EventLogEvidence>) -> BundleBuilder {
        self.bundle.event_logs = logs;
        self
    }

    /// The bundle.
    pub fn build(self) -> Bundle {
        self.bundle
    }
}

/// Claims of an SEV-SNP report, with its TCB decoded for the product the report names, or else
/// the product of one of `certs`.
pub fn snp_claims(report: &SnpReport, certs: &[AmdCert]) -> SnpClaims {
    let product = report
        .product_hint()
        .or_else(|| certs.iter().find_map(|c| c.product()));
    SnpClaims::from_report(report, product)
}

/// Claims of a TDX quote, with the platform of its PCK certificate when it is known (`pck`, or
/// else the quote's own chain).
pub fn tdx_claims(quote: &TdxQuote, pck: Option<&PckInfo>) -> TdxClaims {
    let own = || {
        quote
            .pck_chain
            .as_ref()
            .and_then(|c| c.first())
            .and_then(|d| PckInfo::from_der(d).ok())
    };
    let pck = pck.cloned().or_else(own);
    TdxClaims::from_quote(quote, pck.as_ref())
}

/// Claims of an Azure HCL report: its type, `hardware` (the claims of the hardware report
/// inside, from [`snp_claims`] or [`tdx_claims`]), and the runtime data as JSON.
pub fn azure_claims<H>(hcl: &HclReport, hardware: Option<H>) -> AzureClaims<H> {
    AzureClaims::new(hcl, hardware)
}
