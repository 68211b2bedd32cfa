// SPDX-License-Identifier: Apache-2.0
//! The TDX collector: a quote bound to REPORT_DATA from configfs-tsm (provider `tdx_guest`), or a
//! TDREPORT from `/dev/tdx_guest` quoted by the host's Quote Generation Service over vsock;
//! checked to echo REPORT_DATA; then its Intel collateral, checked against it
//! ([`crate::collateral`]); and the bundle.

use std::time::{Duration, Instant};

use thimble_evidence::bundle::{Bundle, Collection, CollectionSource, TdxEvidence};
use thimble_evidence::tdx::TdxQuote;

use crate::bundle::{BundleBuilder, tdx_claims};
use crate::collateral::{Collateral, CollateralGathering, gather_tdx_collateral, intel_config};
use crate::context::{Context, tsm_path};
use crate::env::Environment;
use crate::error::{CollectError, SourceError, SourceName, Warning};
use crate::http::HttpConfig;
use crate::qgs::QgsClient;
use crate::tdx_guest::{TDX_REPORT_LEN, TdxGuestClient};
use crate::tsm::{Provider, TsmRequest};

/// Where a TD's quote comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TdxSource {
    /// configfs-tsm with the `tdx_guest` provider: the kernel asks for the quote.
    ConfigfsTsm,
    /// `/dev/tdx_guest` for the TDREPORT, the host's QGS over vsock for the quote.
    DeviceQgs,
}

/// What a source produced.
struct Raw {
    quote: Vec<u8>,
    td_report: Option<Vec<u8>>,
    collection: Collection,
    source_name: SourceName,
}

fn via_tsm<E: Environment>(ctx: &Context<'_, E>) -> Result<Raw, CollectError> {
    let fail = |e| CollectError::source_failed(SourceName::ConfigfsTsm, SourceError::Tsm(e));
    let client = ctx.tsm().map_err(fail)?;
    let mut req = TsmRequest::new(ctx.bound.report_data);
    req.expected_provider = Some(Provider::TdxGuest);
    ctx.request.progress.report(&format!(
        "waiting for the quote from configfs-tsm ({}; the kernel asks the host's Quote Generation Service)",
        tsm_path(&client)
    ));
    let r = client.get_report(&req).map_err(fail)?;
    Ok(Raw {
        quote: r.outblob,
        td_report: None,
        collection: Collection {
            provider: Some(r.provider.as_str().to_string()),
            generation: Some(r.generation),
            path: Some(tsm_path(&client)),
            ..Collection::new(CollectionSource::ConfigfsTsm)
        },
        source_name: SourceName::ConfigfsTsm,
    })
}

fn via_device_qgs<E: Environment>(ctx: &Context<'_, E>) -> Result<Raw, CollectError> {
    let devices = &ctx.request.devices;
    let opened = ctx
        .env
        .open_tdx_guest(&devices.tdx_guest)
        .map_err(|e| CollectError::source_failed(SourceName::TdxGuest, e))?;
    let qgs = ctx
        .env
        .qgs(devices.qgs_port)
        .map_err(|e| CollectError::source_failed(SourceName::Qgs, e))?;
    let td_report = TdxGuestClient::new(opened.device)
        .get_report(&ctx.bound.report_data)
        .map_err(|e| CollectError::source_failed(SourceName::TdxGuest, e))?;
    let report: &[u8; TDX_REPORT_LEN] = td_report.as_slice().try_into().map_err(|_| {
        CollectError::source_failed(
            SourceName::TdxGuest,
            SourceError::TdReportLength {
                len: td_report.len(),
            },
        )
    })?;
    ctx.request.progress.report(&format!(
        "asking the host's Quote Generation Service for the quote (vsock port {})",
        devices.qgs_port.map_or_else(
            || "from /etc/tdx-attest.conf, else 4050".to_owned(),
            |p| p.to_string()
        )
    ));
    let quote = QgsClient::new(qgs)
        .get_quote(report)
        .map_err(|e| CollectError::source_failed(SourceName::Qgs, e))?;
    Ok(Raw {
        quote,
        td_report: Some(td_report),
        collection: Collection {
            path: Some(opened.path),
            ..Collection::new(CollectionSource::TdxGuestQgs)
        },
        source_name: SourceName::TdxGuestQgs,
    })
}

/// The collateral of a quote, as both TDX collectors gather it: the request's Intel settings,
/// its cache (`cache` false on Azure, which uses none), within `--deadline`.
pub(crate) fn collateral<E: Environment>(
    ctx: &Context<'_, E>,
    quote_bytes: &[u8],
    quote: &TdxQuote,
    expected_report_data: Option<[u8; 64]>,
    use_cache: bool,
) -> Result<Collateral, CollectError> {
    let config = intel_config(ctx)?;
    let fetching = &ctx.request.fetching;
    let deadline = fetching.deadline.max(Duration::from_secs(1));
    // The collateral services may need the operator's proxy; the environment decides (IMDS is
    // never reached through one).
    let http = ctx.env.http(config.http_config(&HttpConfig {
        per_request_timeout: fetching.per_request_timeout.max(Duration::from_secs(1)),
        deadline,
        use_proxy_env: true,
        overall_end: Some(Instant::now() + deadline),
        ..HttpConfig::default()
    }));
    // Waiting for another collection's fetch of the same entry takes at most half of the
    // deadline, so that a holder that hangs leaves this one time to fetch for itself.
    let cache = use_cache
        .then(|| ctx.cache())
        .flatten()
        .map(|c| c.with_lock_deadline(Instant::now() + deadline / 2));
    let gathering = CollateralGathering {
        config: &config,
        http: &http,
        cache: cache.as_ref(),
        roots: &ctx.request.intel_roots,
        test_roots: ctx.request.intel_test_roots.as_ref(),
        progress: &ctx.request.progress,
    };
    gather_tdx_collateral(
        &gathering,
        quote_bytes,
        quote,
        expected_report_data,
        ctx.now,
    )
    .map_err(CollectError::Endorsements)
}

/// Collects TDX evidence from `source` into a bundle.
pub(crate) fn collect<E: Environment>(
    ctx: &Context<'_, E>,
    source: TdxSource,
    warnings: &mut Vec<Warning>,
) -> Result<Bundle, CollectError> {
    let rd = ctx.bound.report_data;
    let raw = match source {
        TdxSource::ConfigfsTsm => via_tsm(ctx)?,
        TdxSource::DeviceQgs => via_device_qgs(ctx)?,
    };
    let quote =
        TdxQuote::parse(&raw.quote).map_err(|e| CollectError::source_failed(raw.source_name, e))?;
    if quote.body.report_data != rd {
        return Err(CollectError::source_failed(
            raw.source_name,
            SourceError::ReportDataMismatch {
                what: "quote",
                found: quote.body.report_data,
                requested: rd,
            },
        ));
    }
    let gathered = if ctx.request.fetching.offline {
        Collateral {
            log: vec!["offline: no collateral fetched".to_string()],
            ..Collateral::default()
        }
    } else {
        collateral(ctx, &raw.quote, &quote, Some(rd), true)?
    };
    warnings.extend(gathered.warnings);
    let claims = tdx_claims(&quote, gathered.pck.as_ref());
    let evidence = TdxEvidence {
        quote: raw.quote,
        td_report: raw.td_report,
    };
    Ok(
        BundleBuilder::tdx(ctx.now, raw.collection, evidence, claims)
            .simulated(ctx.env.simulated())
            .kernel_release(ctx.env.kernel_release())
            .nonce(Some(ctx.bound.nonce.clone()))
            .endorsements(gathered.endorsements, gathered.log)
            .build(),
    )
}
