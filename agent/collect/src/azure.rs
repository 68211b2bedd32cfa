// SPDX-License-Identifier: Apache-2.0
//! The Azure collector, for a confidential VM behind the paravisor: REPORT_DATA written to the
//! vTPM (the paravisor regenerates the HCL report in NV 0x01400001 with it as `user-data`), the
//! fresh HCL report read back and checked to bind its runtime data, a TPM quote over PCRs 0-23
//! with the nonce, the attestation key's certificate when the host wrote one, and the hardware's
//! endorsements: the VCEK chain from THIM (then KDS) and its ARK's CRL for SEV-SNP, or the TD
//! quote from IMDS `/acc/tdquote` and its Intel collateral for TDX. No cache: the paravisor's
//! evidence is endorsed from the network every time.

use std::time::{Duration, Instant};

use thimble_evidence::azure::{HclReport, HclReportType};
use thimble_evidence::bundle::{
    AzureSevSnpEvidence, AzureTdxEvidence, Bundle, Collection, CollectionSource, Endorsement,
    EndorsementKind, Origin, OriginKind, Tee, TpmQuoteEvidence,
};
use thimble_evidence::kds::DEFAULT_KDS_BASE;
use thimble_evidence::report_data;
use thimble_evidence::snp::SnpReport;
use thimble_evidence::tdx::TdxQuote;
use thimble_evidence::time_fmt::format_unix;

use crate::acc::{fetch_td_quote, imds_http_config};
use crate::bundle::{BundleBuilder, azure_claims, snp_claims, tdx_claims};
use crate::context::Context;
use crate::endorse::{
    AmdGathering, AmdSource, CrlSource, DEFAULT_IMDS_BASE, amd_certificates,
    gather_amd_endorsements, settle_amd_crl,
};
use crate::env::{Endpoint, Environment};
use crate::error::{CollectError, SourceError, SourceName, Warning};
use crate::http::{Announced, HttpConfig};
use crate::request::CollectRequest;
use crate::vtpm::{AK_CERT_NV_INDEX, TpmTransport, VtpmClient, VtpmQuote};

/// Whether the environment's TPM holds an HCL report in NV 0x01400001: an Azure CVM behind the
/// paravisor.
pub(crate) fn detect<E: Environment>(env: &E, request: &CollectRequest) -> bool {
    let Ok(opened) = env.open_tpm(request.devices.tpm.as_deref()) else {
        return false;
    };
    VtpmClient::new(opened.device)
        .hcl_report()
        .ok()
        .is_some_and(|b| HclReport::parse(&b).is_ok())
}

/// The TEE under the paravisor, from the HCL report the vTPM holds now (possibly stale: only its
/// type is read), or `None` when there is none.
pub(crate) fn hcl_tee<E: Environment>(env: &E, request: &CollectRequest) -> Option<Tee> {
    let opened = env.open_tpm(request.devices.tpm.as_deref()).ok()?;
    let bytes = VtpmClient::new(opened.device).hcl_report().ok()?;
    match HclReport::parse(&bytes).ok()?.report_type() {
        HclReportType::Snp => Some(Tee::AzureSevSnp),
        HclReportType::Tdx => Some(Tee::AzureTdx),
    }
}

fn vtpm_failed(e: impl Into<SourceError>) -> CollectError {
    CollectError::source_failed(SourceName::Vtpm, e)
}

/// The HTTP settings of an Azure collection: no proxy (IMDS, and KDS as Azure reaches it), the
/// request's timeout, within `deadline` from now.
fn http_config<E: Environment>(ctx: &Context<'_, E>, deadline: Duration) -> HttpConfig {
    HttpConfig {
        per_request_timeout: ctx
            .request
            .fetching
            .per_request_timeout
            .max(Duration::from_secs(1)),
        deadline,
        use_proxy_env: false,
        overall_end: Some(Instant::now() + deadline),
        ..HttpConfig::default()
    }
}

/// SEV-SNP under the paravisor: THIM, then KDS, and the ARK's CRL from KDS.
fn snp_endorsements<E: Environment>(
    ctx: &Context<'_, E>,
    report: &SnpReport,
    deadline: Duration,
    log: &mut Vec<String>,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<Endorsement>, CollectError> {
    let fetching = &ctx.request.fetching;
    let mut endorsements = Vec::new();
    if fetching.offline {
        log.push("offline: no endorsements fetched".into());
        return Ok(endorsements);
    }
    let imds_base = ctx.endpoint(Endpoint::Imds, fetching.imds.as_deref(), DEFAULT_IMDS_BASE)?;
    let kds_base = ctx.endpoint(Endpoint::Kds, fetching.kds.as_deref(), DEFAULT_KDS_BASE)?;
    let http = ctx.env.http(http_config(ctx, deadline));
    let roots = &ctx.request.amd_roots;
    // Behind the paravisor there is no host table, and the cache is not used.
    let sources: Vec<AmdSource> = fetching
        .amd_sources
        .iter()
        .copied()
        .filter(|s| matches!(s, AmdSource::Thim | AmdSource::Kds))
        .collect();
    let gathering = AmdGathering {
        sources: &sources,
        host_certs: &[],
        cache: None,
        imds_base: &imds_base,
        kds_base: &kds_base,
        thim: &http,
        kds: &http,
        progress: &ctx.request.progress,
    };
    let got = gather_amd_endorsements(&gathering, report, roots, ctx.now)
        .map_err(CollectError::Endorsements)?;
    endorsements.extend(got.endorsements);
    log.extend(got.log);
    warnings.extend(got.warnings);

    // The ARK's CRL, from KDS within the same deadline and, like the certificates here, without
    // a proxy.
    let certs = amd_certificates(&endorsements);
    let announced = Announced {
        inner: &http,
        progress: &ctx.request.progress,
        what: "AMD's CRL from KDS",
    };
    let source = if fetching.amd_crl_from_kds {
        CrlSource::Kds {
            fetch: &announced,
            base: &kds_base,
        }
    } else {
        CrlSource::Disabled { why: "--no-kds" }
    };
    settle_amd_crl(source, None, report, &certs, &[], roots, ctx.now).add_to(
        &mut endorsements,
        log,
        warnings,
    );
    Ok(endorsements)
}

/// The TPM quote as the bundle keeps it, with the attestation key as the TPM reports it
/// (TPMT_PUBLIC) and its qualified name: a verifier compares them with the runtime data's
/// `HCLAkPub` and the quote's `qualifiedSigner`.
fn tpm_quote_evidence(vq: &VtpmQuote) -> TpmQuoteEvidence {
    TpmQuoteEvidence {
        quote: vq.to_tpm_quote(),
        ak_public: Some(vq.ak_public.public_area.clone()),
        ak_qualified_name: Some(vq.ak_public.qualified_name.clone()),
    }
}

/// Collects from the vTPM into a bundle.
pub(crate) fn collect<E: Environment>(
    ctx: &Context<'_, E>,
    warnings: &mut Vec<Warning>,
) -> Result<Bundle, CollectError> {
    let opened = ctx
        .env
        .open_tpm(ctx.request.devices.tpm.as_deref())
        .map_err(vtpm_failed)?;
    collect_from(ctx, opened.device, opened.path, warnings)
}

fn collect_from<E: Environment, T: TpmTransport>(
    ctx: &Context<'_, E>,
    transport: T,
    path: String,
    warnings: &mut Vec<Warning>,
) -> Result<Bundle, CollectError> {
    let fetching = &ctx.request.fetching;
    let now = ctx.now;
    let mut client = VtpmClient::new(transport);
    let deadline = fetching.deadline.max(Duration::from_secs(1));
    let fresh = client
        .fresh_hcl_report_with_progress(
            &ctx.bound.report_data,
            deadline,
            ctx.request.allow_stale_report,
            &ctx.request.progress,
        )
        .map_err(vtpm_failed)?;
    let hcl = HclReport::parse(&fresh.bytes).map_err(vtpm_failed)?;
    // The hardware report must carry the runtime data's digest: check it here so that a
    // paravisor that does not is reported at collection, not only by a verifier.
    let hw_report_data = match hcl.report_type() {
        HclReportType::Snp => hcl.snp_report().and_then(Result::ok).map(|r| r.report_data),
        HclReportType::Tdx => hcl.td_report().and_then(Result::ok).map(|r| r.report_data),
    };
    if hw_report_data != Some(hcl.expected_report_data()) {
        return Err(vtpm_failed(SourceError::HclBinding));
    }
    let vq = client
        .collect_quote(&report_data::tpm_qualifying_data(&ctx.bound.nonce_bytes))
        .map_err(vtpm_failed)?;

    let mut log = vec![if fresh.echoed {
        format!(
            "vtpm: HCL report user-data echoed this collection's REPORT_DATA after {} read(s)",
            fresh.attempts
        )
    } else {
        "vtpm: the HCL report never echoed this collection's REPORT_DATA: STALE report accepted (--allow-stale-report)".to_string()
    }];
    if let Some(e) = &vq.ak_cert_error {
        log.push(format!("vtpm: AK certificate not readable: {e}"));
    }
    let mut endorsements = Vec::new();
    if let Some(cert) = &vq.ak_cert {
        let origin = Origin::path(OriginKind::Vtpm, format!("nv:{AK_CERT_NV_INDEX:#010x}"));
        endorsements.push(Endorsement::der(
            EndorsementKind::Certificate,
            cert,
            origin,
            Some(format_unix(now)),
        ));
    }

    let collection = Collection {
        path: Some(path),
        hcl_user_data_echoed: Some(fresh.echoed),
        ..Collection::new(CollectionSource::Vtpm)
    };
    let tpm_quote = Some(tpm_quote_evidence(&vq));
    let builder = match hcl.report_type() {
        HclReportType::Snp => {
            let Some(Ok(report)) = hcl.snp_report() else {
                return Err(vtpm_failed(SourceError::HclWithoutSnpReport));
            };
            endorsements.extend(snp_endorsements(
                ctx, &report, deadline, &mut log, warnings,
            )?);
            let claims = azure_claims(&hcl, Some(snp_claims(&report, &[])));
            let evidence = AzureSevSnpEvidence {
                hcl_report: fresh.bytes,
                tpm_quote,
            };
            BundleBuilder::azure_sev_snp(now, collection, evidence, claims)
        }
        HclReportType::Tdx => {
            let td_report: [u8; 1024] = hcl
                .td_report()
                .and_then(Result::ok)
                .and_then(|r| r.as_bytes().try_into().ok())
                .ok_or_else(|| vtpm_failed(SourceError::HclWithoutTdReport))?;
            let imds_base =
                ctx.endpoint(Endpoint::Imds, fetching.imds.as_deref(), DEFAULT_IMDS_BASE)?;
            let http = ctx.env.http(imds_http_config(HttpConfig {
                overall_end: None,
                ..http_config(ctx, deadline)
            }));
            ctx.request.progress.report(&format!(
                "asking IMDS for the TD quote ({}/acc/tdquote)",
                imds_base.trim_end_matches('/')
            ));
            let quote_bytes = fetch_td_quote(&http, &imds_base, &td_report)
                .map_err(|e| CollectError::source_failed(SourceName::ImdsTdQuote, e))?;
            let quote = TdxQuote::parse(&quote_bytes)
                .map_err(|e| CollectError::source_failed(SourceName::ImdsTdQuote, e))?;
            let pck = if fetching.offline {
                log.push("offline: no collateral fetched".into());
                None
            } else {
                let g = crate::tdx::collateral(ctx, &quote_bytes, &quote, None, false)?;
                endorsements.extend(g.endorsements);
                log.extend(g.log);
                warnings.extend(g.warnings);
                g.pck
            };
            let claims = azure_claims(&hcl, Some(tdx_claims(&quote, pck.as_ref())));
            let evidence = AzureTdxEvidence {
                hcl_report: fresh.bytes,
                tdx_quote: quote_bytes,
                tpm_quote,
            };
            BundleBuilder::azure_tdx(now, collection, evidence, claims)
        }
    };
    Ok(builder
        .simulated(ctx.env.simulated())
        .kernel_release(ctx.env.kernel_release())
        .nonce(Some(ctx.bound.nonce.clone()))
        .endorsements(endorsements, log)
        .build())
}
