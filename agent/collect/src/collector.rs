// SPDX-License-Identifier: Apache-2.0
//! The entry point: [`collect`] finds the evidence source ([`plan`]) and runs the collector of its
//! TEE, one per TEE behind one [`Plan`]: SEV-SNP ([`crate::snp`]), TDX ([`crate::tdx`]) and
//! Azure's paravisor, SEV-SNP or TDX underneath ([`crate::azure`]). Each collector asks its source
//! for evidence bound to REPORT_DATA, checks that it echoes it, gathers the endorsements the
//! request allows (each checked against the evidence before it is kept), and builds the bundle.
//!
//! Detection follows the kernel's interfaces in a fixed order (configfs-tsm, whose provider names
//! the TEE; `/dev/sev-guest`; `/dev/tdx_guest` with the host's QGS; the Azure vTPM) and creates
//! no report: the configfs-tsm probe creates an entry and removes it, the vTPM probe reads the HCL
//! report. Splitting [`plan`] from [`Plan::collect`] lets a caller act on the choice (say which
//! settings do not apply) before anything is requested from the guest.

use thimble_evidence::bundle::{Bundle, Tee};

use crate::context::{Bound, Context};
use crate::env::Environment;
use crate::error::{CollectError, Warning};
use crate::request::{CollectRequest, SourceChoice};
use crate::tdx::TdxSource;
use crate::tsm::Provider;

/// A bundle and what the collection warned about.
#[derive(Debug)]
pub struct Collected {
    /// The evidence bundle.
    pub bundle: Bundle,
    /// Things the caller should hear about; the collection succeeded all the same.
    pub warnings: Vec<Warning>,
}

/// The collector a request leads to on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Plan {
    /// SEV-SNP, from configfs-tsm or `/dev/sev-guest` as the source choice says (`Auto`:
    /// configfs-tsm when it has the `sev_guest` provider, else the device).
    SevSnp(SourceChoice),
    /// TDX, from configfs-tsm or `/dev/tdx_guest` and the QGS.
    Tdx(TdxSource),
    /// Azure's paravisor, through the vTPM (SEV-SNP or TDX underneath).
    Azure,
}

/// Chooses the collector for `request` in `env`, requesting no evidence.
pub fn plan<E: Environment>(env: &E, request: &CollectRequest) -> Plan {
    let devices = &request.devices;
    let provider = || {
        env.configfs_tsm(&devices.tsm_root)
            .ok_or(())
            .and_then(|(fs, root)| crate::tsm::TsmClient::new(fs, root).probe().map_err(|_| ()))
    };
    match request.source {
        SourceChoice::Vtpm => Plan::Azure,
        SourceChoice::TdxGuest => Plan::Tdx(TdxSource::DeviceQgs),
        SourceChoice::SevGuest => Plan::SevSnp(SourceChoice::SevGuest),
        SourceChoice::ConfigfsTsm => match provider() {
            Ok(Provider::TdxGuest) => Plan::Tdx(TdxSource::ConfigfsTsm),
            // The SEV-SNP collector says why configfs-tsm is of no use when it is not.
            _ => Plan::SevSnp(SourceChoice::ConfigfsTsm),
        },
        SourceChoice::Auto => match provider() {
            Ok(Provider::TdxGuest) => Plan::Tdx(TdxSource::ConfigfsTsm),
            Ok(Provider::SevGuest) => Plan::SevSnp(SourceChoice::Auto),
            // No configfs-tsm, or a provider of another kind: the devices.
            _ if env.sev_guest_present(&devices.sev_guest) => Plan::SevSnp(SourceChoice::Auto),
            _ if env.tdx_guest_present(&devices.tdx_guest) => Plan::Tdx(TdxSource::DeviceQgs),
            // An Azure CVM behind the paravisor has no guest device and no configfs provider;
            // its evidence is in the vTPM.
            Err(()) if crate::azure::detect(env, request) => Plan::Azure,
            // The SEV-SNP collector tries configfs-tsm once more, then says what is missing.
            _ => Plan::SevSnp(SourceChoice::Auto),
        },
    }
}

/// The TEE a collection for `request` would produce evidence of, requesting no evidence: for
/// Azure the paravisor's HCL report is read once for its type. `None` when no source is usable
/// (the plan's SEV-SNP fallback with neither configfs-tsm's provider nor the device), so that a
/// caller learns it before contacting anyone; collecting then says what is missing.
pub fn tee_of<E: Environment>(env: &E, request: &CollectRequest) -> Option<Tee> {
    match plan(env, request) {
        Plan::SevSnp(_) => {
            let devices = &request.devices;
            let configfs = env
                .configfs_tsm(&devices.tsm_root)
                .and_then(|(fs, root)| crate::tsm::TsmClient::new(fs, root).probe().ok());
            let usable = matches!(configfs, Some(Provider::SevGuest))
                || env.sev_guest_present(&devices.sev_guest);
            usable.then_some(Tee::SevSnp)
        }
        Plan::Tdx(_) => Some(Tee::Tdx),
        Plan::Azure => crate::azure::hcl_tee(env, request),
    }
}

impl Plan {
    /// Collects with this plan. Warnings go to `warnings` as they arise, so that a caller sees
    /// them even when the collection then fails.
    pub fn collect_into<E: Environment>(
        self,
        env: &E,
        request: &CollectRequest,
        now: i64,
        warnings: &mut Vec<Warning>,
    ) -> Result<Bundle, CollectError> {
        let ctx = Context {
            env,
            request,
            now,
            bound: Bound::new(env, &request.binding)?,
        };
        let mut bundle = match self {
            Plan::SevSnp(source) => crate::snp::collect(&ctx, source, warnings),
            Plan::Tdx(source) => crate::tdx::collect(&ctx, source, warnings),
            Plan::Azure => crate::azure::collect(&ctx, warnings),
        }?;
        // After the evidence: a log read later than the quote can only hold more events, which
        // verify reports as a mismatch rather than silently missing them.
        let logs = crate::eventlog::gather(env, &request.event_logs, bundle.tee());
        bundle.event_logs = logs.logs;
        bundle.collection.log.extend(logs.notes);
        Ok(bundle)
    }
}

/// Collects evidence as `request` asks, in `env`, checking endorsements at `now` (seconds since
/// the Unix epoch; usually `env.now()`), and returns the bundle.
pub fn collect<E: Environment>(
    env: &E,
    request: &CollectRequest,
    now: i64,
) -> Result<Collected, CollectError> {
    let mut warnings = Vec::new();
    let bundle = plan(env, request).collect_into(env, request, now, &mut warnings)?;
    Ok(Collected { bundle, warnings })
}
