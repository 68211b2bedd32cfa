// SPDX-License-Identifier: Apache-2.0
//! The SEV-SNP collector: a report bound to REPORT_DATA from configfs-tsm (provider `sev_guest`)
//! or `/dev/sev-guest`, checked to echo it; the host's certificate table turned into endorsements;
//! the VCEK chain from the AMD sources in the request's order ([`crate::endorse`]); the ARK's CRL;
//! and the bundle.

use std::time::{Duration, Instant};

use thimble_evidence::bundle::{
    Bundle, Collection, CollectionSource, Endorsement, Origin, OriginKind, SevSnpEvidence,
};
use thimble_evidence::kds::DEFAULT_KDS_BASE;
use thimble_evidence::snp::{AmdCert, CertKind, CertTable, SnpReport};
use thimble_evidence::time_fmt::format_unix;

use crate::bundle::{BundleBuilder, snp_claims};
use crate::context::{Context, tsm_path};
use crate::endorse::{
    AmdGathering, AmdSource, CrlSource, DEFAULT_IMDS_BASE, amd_certificates,
    gather_amd_endorsements, settle_amd_crl,
};
use crate::env::{Endpoint, Environment};
use crate::error::{CollectError, NoSource, SourceError, SourceName, Warning};
use crate::http::{Announced, HttpConfig};
use crate::request::SourceChoice;
use crate::sev_guest::SevGuestClient;
use crate::tsm::{Provider, TsmError, TsmRequest};

/// What a source produced.
struct Raw {
    report: Vec<u8>,
    auxblob: Option<Vec<u8>>,
    collection: Collection,
    source_name: SourceName,
}

/// configfs-tsm. `Ok(None)` means "not usable here" (no configfs, no provider, another TEE).
fn via_tsm<E: Environment>(ctx: &Context<'_, E>) -> Result<Option<Raw>, CollectError> {
    let client = match ctx.tsm() {
        Ok(c) => c,
        Err(_) => return Ok(None),
    };
    let mut req = TsmRequest::new(ctx.bound.report_data);
    req.privlevel = ctx.request.privlevel;
    req.expected_provider = Some(Provider::SevGuest);
    match client.get_report(&req) {
        Ok(r) => Ok(Some(Raw {
            report: r.outblob,
            auxblob: r.auxblob.filter(|a| !a.is_empty()),
            collection: Collection {
                provider: Some(r.provider.as_str().to_string()),
                privlevel: r.privlevel,
                generation: Some(r.generation),
                path: Some(tsm_path(&client)),
                ..Collection::new(CollectionSource::ConfigfsTsm)
            },
            source_name: SourceName::ConfigfsTsm,
        })),
        Err(
            TsmError::Unavailable { .. }
            | TsmError::NoProvider { .. }
            | TsmError::ProviderMismatch { .. },
        ) => Ok(None),
        Err(e) => Err(CollectError::source_failed(SourceName::ConfigfsTsm, e)),
    }
}

/// `/dev/sev-guest` (SNP_GET_EXT_REPORT, with the host's certificate table).
fn via_device<E: Environment>(ctx: &Context<'_, E>) -> Result<Raw, CollectError> {
    let fail = |e| CollectError::source_failed(SourceName::SevGuest, SourceError::SevGuest(e));
    let opened = ctx
        .env
        .open_sev_guest(&ctx.request.devices.sev_guest)
        .map_err(fail)?;
    let vmpl = ctx.request.privlevel.unwrap_or(0);
    let mut client = SevGuestClient::new(opened.device);
    let (report, certs) = client
        .get_ext_report(&ctx.bound.report_data, vmpl)
        .map_err(fail)?;
    Ok(Raw {
        report,
        auxblob: (!certs.is_empty()).then_some(certs),
        collection: Collection {
            privlevel: Some(vmpl),
            path: Some(opened.path),
            ..Collection::new(CollectionSource::SevGuest)
        },
        source_name: SourceName::SevGuest,
    })
}

/// The report from the source the request chose (`Auto`: configfs-tsm, else the device).
fn report<E: Environment>(ctx: &Context<'_, E>, source: SourceChoice) -> Result<Raw, CollectError> {
    let devices = &ctx.request.devices;
    match source {
        SourceChoice::ConfigfsTsm => via_tsm(ctx)?.ok_or_else(|| {
            CollectError::NoSource(NoSource::NoSevGuestProvider {
                tsm_root: devices.tsm_root.clone(),
            })
        }),
        SourceChoice::SevGuest => via_device(ctx),
        SourceChoice::Auto | SourceChoice::TdxGuest | SourceChoice::Vtpm => match via_tsm(ctx)? {
            Some(r) => Ok(r),
            None if ctx.env.sev_guest_present(&devices.sev_guest) => via_device(ctx),
            None => Err(CollectError::NoSource(NoSource::Nothing {
                tsm_root: devices.tsm_root.clone(),
                sev_guest: devices.sev_guest.clone(),
                tdx_guest: devices.tdx_guest.clone(),
            })),
        },
    }
}

/// What the host's certificate table gave: its entries as endorsements, its certificates and
/// its CRLs.
#[derive(Default)]
struct HostTable {
    endorsements: Vec<Endorsement>,
    certs: Vec<AmdCert>,
    crls: Vec<Vec<u8>>,
    log: Vec<String>,
}

fn host_table(raw: &Raw, now: i64, warnings: &mut Vec<Warning>) -> HostTable {
    let mut out = HostTable::default();
    let Some(aux) = &raw.auxblob else {
        return out;
    };
    let table = match CertTable::parse(aux) {
        Ok(t) => t,
        Err(e) => {
            // Kept in the bundle as received (`evidence.auxblob`); its entries are not used.
            let w = Warning::HostTableMalformed(e);
            out.log.push(w.to_string());
            warnings.push(w);
            return out;
        }
    };
    let origin_kind = match raw.source_name {
        SourceName::ConfigfsTsm => OriginKind::Auxblob,
        _ => OriginKind::ExtReport,
    };
    for entry in table.entries {
        if entry.kind == CertKind::Crl {
            out.crls.push(entry.data.clone());
        }
        out.endorsements.push(Endorsement::der(
            entry.kind.into(),
            &entry.data,
            Origin::kind(origin_kind.clone()),
            Some(format_unix(now)),
        ));
        if let Ok(c) = AmdCert::parse_der(&entry.data) {
            out.certs.push(c);
        }
    }
    out
}

/// Collects SEV-SNP evidence from `source` into a bundle.
pub(crate) fn collect<E: Environment>(
    ctx: &Context<'_, E>,
    source: SourceChoice,
    warnings: &mut Vec<Warning>,
) -> Result<Bundle, CollectError> {
    let rd = ctx.bound.report_data;
    let raw = report(ctx, source)?;
    let report = SnpReport::parse(&raw.report)
        .map_err(|e| CollectError::source_failed(raw.source_name, e))?;
    if report.report_data != rd {
        return Err(CollectError::source_failed(
            raw.source_name,
            SourceError::ReportDataMismatch {
                what: "report",
                found: report.report_data,
                requested: rd,
            },
        ));
    }

    let now = ctx.now;
    let fetching = &ctx.request.fetching;
    let table = host_table(&raw, now, warnings);
    let mut log = table.log;
    let mut endorsements = table.endorsements;
    let roots = &ctx.request.amd_roots;
    // --deadline bounds the whole gathering (THIM, every KDS attempt and the CRL together), not
    // each request. THIM may use at most half of it when KDS is tried after it: IMDS is on the
    // host and answers at once when it exists, so a THIM that hangs must leave time for KDS.
    let deadline = fetching.deadline.max(Duration::from_secs(1));
    let overall_end = Instant::now() + deadline;
    // Waiting for another collection's fetch of the same entry may take half of it too, so that
    // a holder that hangs leaves this one time to fetch for itself.
    let cache = ctx
        .cache()
        .map(|c| c.with_lock_deadline(Instant::now() + deadline / 2));
    let http = |use_proxy_env: bool, own: Duration| {
        ctx.env.http(HttpConfig {
            per_request_timeout: fetching.per_request_timeout.max(Duration::from_secs(1)),
            deadline: own,
            use_proxy_env,
            overall_end: Some(overall_end),
            ..HttpConfig::default()
        })
    };
    let sources = &fetching.amd_sources;
    let position = |s| sources.iter().position(|x| *x == s);
    let kds_after_thim = matches!(
        (position(AmdSource::Thim), position(AmdSource::Kds)),
        (Some(t), Some(k)) if k > t
    );
    // KDS may need the operator's proxy; IMDS is never reached through one.
    let kds_client = http(true, deadline);
    let kds_base = ctx.endpoint(Endpoint::Kds, fetching.kds.as_deref(), DEFAULT_KDS_BASE)?;
    if fetching.offline {
        log.push("offline: no endorsements fetched".to_string());
    } else {
        let thim_client = http(
            false,
            if kds_after_thim {
                deadline / 2
            } else {
                deadline
            },
        );
        let imds_base =
            ctx.endpoint(Endpoint::Imds, fetching.imds.as_deref(), DEFAULT_IMDS_BASE)?;
        let gathering = AmdGathering {
            sources,
            host_certs: &table.certs,
            cache: cache.as_ref(),
            imds_base: &imds_base,
            kds_base: &kds_base,
            thim: &thim_client,
            kds: &kds_client,
            progress: &ctx.request.progress,
        };
        let got = gather_amd_endorsements(&gathering, &report, roots, now)
            .map_err(CollectError::Endorsements)?;
        log.extend(got.log);
        warnings.extend(got.warnings);
        endorsements.extend(got.endorsements);
    }

    let certs = amd_certificates(&endorsements);
    let announced_kds = Announced {
        inner: &kds_client,
        progress: &ctx.request.progress,
        what: "AMD's CRL from KDS",
    };
    let crl_source = if fetching.offline {
        CrlSource::Disabled { why: "offline" }
    } else if !fetching.amd_crl_from_kds {
        CrlSource::Disabled { why: "--no-kds" }
    } else {
        CrlSource::Kds {
            fetch: &announced_kds,
            base: &kds_base,
        }
    };
    settle_amd_crl(
        crl_source,
        cache.as_ref(),
        &report,
        &certs,
        &table.crls,
        roots,
        now,
    )
    .add_to(&mut endorsements, &mut log, warnings);

    let claims = snp_claims(&report, &certs);
    let evidence = SevSnpEvidence {
        report: raw.report,
        auxblob: raw.auxblob,
    };
    Ok(
        BundleBuilder::sev_snp(now, raw.collection, evidence, claims)
            .simulated(ctx.env.simulated())
            .kernel_release(ctx.env.kernel_release())
            .nonce(Some(ctx.bound.nonce.clone()))
            .endorsements(endorsements, log)
            .build(),
    )
}
