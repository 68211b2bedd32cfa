// SPDX-License-Identifier: Apache-2.0
//! `thimble collect`: the flags become a `thimble_collect::CollectRequest`, `--simulate` (in builds
//! with the `simulate` feature) chooses a `thimble_sim::SimEnvironment` instead of the real
//! machine, and the library collects; this
//! module only warns about flags that do not apply to the TEE found, prints, and writes the
//! bundle atomically. `--every` repeats it as a long-running service (the Kubernetes
//! DaemonSet): it says each failure once per change rather than once per round, never replaces
//! a bundle with a worse one ([`Previous`]), and stops cleanly on SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use thimble_collect::endorse::AmdSource;
use thimble_collect::{
    Binding, CacheChoice, CollectError, CollectRequest, Devices, Environment, EventLogs, Fetching,
    IntelService, NoSource, Plan, SourceChoice, SystemEnvironment,
};
use thimble_evidence::bundle::EndorsementKind;
use thimble_evidence::snp::AmdCert;
use thimble_evidence::time_fmt::parse_rfc3339;
#[cfg(feature = "simulate")]
use thimble_sim::{SimEnvironment, SimMachine, insecure_trust_test_roots};

#[cfg(feature = "simulate")]
use crate::args::SimulateArg;
use crate::args::{CollectArgs, CollectCommandArgs, IntelServiceArg, SourceArg};
use crate::error::CliError;
use crate::exit;
use crate::io::{parse_hex, write_output};
use crate::output::{info, print_error, warn};

/// Where the bundle goes: `-o`, which `collect` requires (`exec` fills in its default).
pub fn output_path(a: &CollectArgs) -> Result<PathBuf, CliError> {
    a.output.clone().ok_or_else(|| {
        CliError::Usage("collect needs -o FILE (or -o - for standard output)".into())
    })
}

/// REPORT_DATA's binding, from `--nonce` or `--report-data` (a random nonce without either).
fn binding(a: &CollectArgs) -> Result<Binding, CliError> {
    if let Some(rd) = &a.report_data {
        let v = parse_hex("--report-data", rd)?;
        let rd: [u8; 64] = v.as_slice().try_into().map_err(|_| {
            CliError::Usage(format!(
                "--report-data takes exactly 64 bytes (128 hex digits), got {}",
                v.len()
            ))
        })?;
        return Ok(Binding::ReportData(rd));
    }
    match &a.nonce {
        None => Ok(Binding::RandomNonce),
        Some(n) => {
            let v = parse_hex("--nonce", n)?;
            if v.is_empty() {
                return Err(CliError::Usage("--nonce must not be empty".into()));
            }
            Ok(Binding::Nonce(v))
        }
    }
}

/// The request the flags describe.
pub(crate) fn request(a: &CollectArgs) -> Result<CollectRequest, CliError> {
    let mut amd_sources = AmdSource::ALL.to_vec();
    amd_sources
        .retain(|s| !(a.no_thim && *s == AmdSource::Thim || a.no_kds && *s == AmdSource::Kds));
    let request = CollectRequest {
        binding: binding(a)?,
        source: match a.source {
            SourceArg::Auto => SourceChoice::Auto,
            SourceArg::ConfigfsTsm => SourceChoice::ConfigfsTsm,
            SourceArg::SevGuest => SourceChoice::SevGuest,
            SourceArg::TdxGuest => SourceChoice::TdxGuest,
            SourceArg::Vtpm => SourceChoice::Vtpm,
        },
        devices: Devices {
            tsm_root: a.location.tsm_root.clone(),
            sev_guest: a.location.device.clone(),
            tdx_guest: a.tdx_device.clone(),
            tpm: a.tpm_device.clone(),
            qgs_port: a.qgs_port,
        },
        privlevel: a.privlevel,
        allow_stale_report: a.allow_stale_report,
        fetching: Fetching {
            offline: a.offline,
            deadline: Duration::from_secs(a.deadline),
            per_request_timeout: Duration::from_secs(a.timeout),
            imds: a.imds.clone(),
            kds: a.kds.clone(),
            amd_sources,
            amd_crl_from_kds: !a.no_kds,
            intel_service: a.intel_collateral.map(|s| match s {
                IntelServiceArg::Thim => IntelService::Thim,
                IntelServiceArg::Pcs => IntelService::Pcs,
            }),
            intel_url: a.intel_collateral_url.clone(),
            ..Fetching::default()
        },
        cache: match (&a.cache_dir, a.no_cache) {
            (_, true) => CacheChoice::Disabled,
            (Some(dir), false) => CacheChoice::Dir(dir.clone()),
            (None, false) => CacheChoice::Default,
        },
        event_logs: event_logs(a),
        progress: crate::output::progress_hook(),
        ..CollectRequest::default()
    };
    #[cfg(feature = "simulate")]
    let request = {
        let mut request = request;
        if a.simulate.is_some() || a.insecure_allow_simulated {
            insecure_trust_test_roots(&mut request);
        }
        request
    };
    Ok(request)
}

/// The event logs to carry: the firmware logs unless `--no-event-logs`, IMA with `--ima-log`.
fn event_logs(a: &CollectArgs) -> EventLogs {
    let defaults = EventLogs::default();
    EventLogs {
        firmware: !a.no_event_logs,
        ima: a.ima_log,
        tcg2: a.tpm_event_log.clone().unwrap_or(defaults.tcg2),
        // The table sits where sysfs puts it, `../CCEL` beside the `data` directory.
        ccel_table: a
            .ccel_log
            .as_deref()
            .and_then(|p| p.parent()?.parent())
            .map_or(defaults.ccel_table, |dir| dir.join("CCEL")),
        ccel_data: a.ccel_log.clone().unwrap_or(defaults.ccel_data),
        ..EventLogs::default()
    }
}

/// `collect`: as [`collect`], with `--json`.
pub fn run(a: CollectCommandArgs) -> Result<u8, CliError> {
    collect(a.collect, a.json)
}

/// Collects as `a` says (`exec` too); `json`: the summary is a JSON document on stdout instead of
/// the line on stderr (one line per round with `--every`).
pub fn collect(a: CollectArgs, json: bool) -> Result<u8, CliError> {
    let summary = if json {
        if output_path(&a)?.as_os_str() == "-" {
            return Err(CliError::Usage(
                "--json prints on standard output, where -o - puts the bundle; give -o FILE".into(),
            ));
        }
        Summary::Json {
            one_line: a.every.is_some(),
        }
    } else {
        Summary::Line
    };
    let Some(every) = a.every else {
        let output = output_path(&a)?;
        let (said, done) = run_once(&a, None, &mut |w| warn(w));
        let done = done?;
        report(&done.bundle, &output, summary, &said, true);
        return Ok(exit::OK);
    };
    let output = output_path(&a)?;
    if output.as_os_str() == "-" {
        return Err(CliError::Usage(
            "--every writes to a file; -o - is not possible".into(),
        ));
    }
    every_round(&a, summary, every, &output)
}

/// `--every`: a round per interval until `--rounds` or SIGTERM/SIGINT. A healthy loop prints
/// nothing after its first round: a DaemonSet's log holds changes, not a line per round
/// ([`RoundLog`]).
fn every_round(
    a: &CollectArgs,
    summary: Summary,
    every: Duration,
    output: &std::path::Path,
) -> Result<u8, CliError> {
    if let Err(e) = stop::install() {
        warn(&format!(
            "cannot handle SIGTERM and SIGINT ({e}); they will end thimble without a message"
        ));
    }
    let interval = format_interval(every);
    let mut previous = None;
    let mut log = RoundLog::new(interval.clone());
    let mut round: u64 = 0;
    loop {
        if let Some(signal) = stop::requested() {
            info(&format!("stopping on {signal}"));
            return Ok(exit::OK);
        }
        round += 1;
        let mut warnings = Vec::new();
        stop::hold();
        let (said, done) = run_once(a, Some(&mut previous), &mut |w| {
            warnings.push(w.to_owned());
        });
        stop::release();
        log.warnings(warnings);
        let code = match done {
            Ok(Done { bundle, kept: None }) => {
                report(&bundle, output, summary, &said, false);
                log.written(output);
                exit::OK
            }
            // Not a failure of the collection: the file holds the better bundle.
            Ok(Done {
                kept: Some(why), ..
            }) => {
                log.failed(&format!("kept the previous bundle: {why}"), |msg| {
                    warn(&format!("{msg}; trying again every {interval}"))
                });
                exit::OK
            }
            // Usage errors do not get better with time: stop on the first round that has one.
            Err(e @ CliError::Usage(_)) => return Err(e),
            Err(e) => {
                let code = e.exit_code();
                log.failed(&same_failure_key(&error_chain(&e)), |_| {
                    print_error(&e);
                    warn(&format!(
                        "collection failed (exit {code}); keeping the previous bundle, retrying every {interval}"
                    ));
                });
                code
            }
        };
        if a.rounds.is_some_and(|n| round >= n) {
            return Ok(code);
        }
        stop::sleep(every);
    }
}

/// `e` and its causes on one line: what makes two failures the same.
fn error_chain(e: &CliError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `failure` with the counts that vary from round to round for one and the same failure (`after 3
/// attempt(s)`: how many retries fitted in the deadline) made `after N attempt(s)`, so that they
/// do not make it look new.
fn same_failure_key(failure: &str) -> String {
    const BEFORE: &str = "after ";
    const AFTER: &str = " attempt";
    let mut out = String::with_capacity(failure.len());
    let mut rest = failure;
    while let Some(i) = rest.find(BEFORE) {
        let (head, tail) = rest.split_at(i + BEFORE.len());
        out.push_str(head);
        let digits = tail.len() - tail.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 && tail[digits..].starts_with(AFTER) {
            out.push('N');
            rest = &tail[digits..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// `500 ms`, `30 s`: an interval as the log says it.
fn format_interval(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// A failure that lasts is said again at most this often...
const REMIND_AFTER: Duration = Duration::from_secs(10 * 60);
/// ...or after this many more rounds, whichever comes first.
const REMIND_ROUNDS: u64 = 100;

/// What the `--every` loop has said, so that it says each thing once per change: a failure when
/// it starts or changes (then "still failing" every [`REMIND_AFTER`] or [`REMIND_ROUNDS`]), the
/// recovery from it, the first bundle, and the warnings of a round when they differ from the
/// previous round's.
struct RoundLog {
    interval: String,
    /// The current failure, as [`error_chain`] spells it.
    failure: Option<String>,
    /// Rounds that failed since the last bundle was written.
    failed_rounds: u64,
    /// When, and after how many failed rounds, the failure was last said.
    said_at: (std::time::Instant, u64),
    /// Whether a bundle was written yet.
    written: bool,
    warnings: Vec<String>,
}

impl RoundLog {
    fn new(interval: String) -> RoundLog {
        RoundLog {
            interval,
            failure: None,
            failed_rounds: 0,
            said_at: (std::time::Instant::now(), 0),
            written: false,
            warnings: Vec::new(),
        }
    }

    /// A round's warnings: printed when they are not the previous round's.
    fn warnings(&mut self, warnings: Vec<String>) {
        if warnings != self.warnings {
            for w in warnings.iter().filter(|w| !self.warnings.contains(w)) {
                warn(w);
            }
            self.warnings = warnings;
        }
    }

    /// A round failed with `failure` (the same text for the same failure, [`same_failure_key`]);
    /// `say` prints it when it is new.
    fn failed(&mut self, failure: &str, say: impl FnOnce(&str)) {
        self.failed_rounds += 1;
        if self.failure.as_deref() != Some(failure) {
            say(failure);
            self.failure = Some(failure.to_owned());
            self.said_at = (std::time::Instant::now(), self.failed_rounds);
            return;
        }
        let (at, rounds) = self.said_at;
        if at.elapsed() >= REMIND_AFTER || self.failed_rounds - rounds >= REMIND_ROUNDS {
            warn(&format!(
                "still failing ({} rounds): {failure}",
                self.failed_rounds
            ));
            self.said_at = (std::time::Instant::now(), self.failed_rounds);
        }
    }

    /// A round wrote its bundle.
    fn written(&mut self, output: &std::path::Path) {
        if self.failed_rounds > 0 {
            info(&format!(
                "recovered after {} failed rounds; bundle written to {}",
                self.failed_rounds,
                output.display()
            ));
        } else if !self.written {
            info(&format!(
                "bundle written to {}; collecting again every {}",
                output.display(),
                self.interval
            ));
        }
        self.written = true;
        self.failure = None;
        self.failed_rounds = 0;
    }
}

/// SIGTERM and SIGINT during `--every`: the handler only notes the signal, and the loop looks
/// between rounds and between the short sleeps that make up its interval. A round runs with the
/// signals blocked, so one that arrives meanwhile waits, pending, until the round is over: no
/// read or write of the round is interrupted (a socket read with a timeout fails with `EINTR`
/// even under `SA_RESTART`), the bundle is written whole, and thimble exits 0, as a stopped
/// DaemonSet pod should. Threads a round starts inherit the blocked mask.
mod stop {
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::time::{Duration, Instant};

    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

    /// The signal received, 0 for none.
    static RECEIVED: AtomicI32 = AtomicI32::new(0);

    /// How long the loop sleeps between looks at [`RECEIVED`]: the longest a stop waits.
    const STEP: Duration = Duration::from_millis(50);

    extern "C" fn note(signal: nix::libc::c_int) {
        // A store to a lock-free atomic is async-signal-safe; nothing else happens here.
        RECEIVED.store(signal, Ordering::SeqCst);
    }

    /// Installs the handler for SIGTERM and SIGINT.
    #[expect(
        unsafe_code,
        reason = "sigaction is unsafe: the handler must be async-signal-safe, which `note` is"
    )]
    pub(super) fn install() -> nix::Result<()> {
        // Rounds run with the signals held ([`hold`]); SA_RESTART covers any call outside them
        // that the handler interrupts, such as the final write to standard error.
        let action = SigAction::new(
            SigHandler::Handler(note),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for signal in [Signal::SIGTERM, Signal::SIGINT] {
            // SAFETY: `note` only stores into an atomic, and no other handler is replaced that
            // thimble relies on.
            unsafe { sigaction(signal, &action) }?;
        }
        Ok(())
    }

    /// SIGTERM and SIGINT.
    fn handled() -> SigSet {
        let mut set = SigSet::empty();
        set.add(Signal::SIGTERM);
        set.add(Signal::SIGINT);
        set
    }

    /// Defers SIGTERM and SIGINT until [`release`] (a failure leaves them as they were: the
    /// handler still only notes them).
    pub(super) fn hold() {
        let _ = handled().thread_block();
    }

    /// Delivers a SIGTERM or SIGINT that came while they were held, before it returns.
    pub(super) fn release() {
        let _ = handled().thread_unblock();
    }

    /// The signal that asked thimble to stop, if one did.
    pub(super) fn requested() -> Option<Signal> {
        match RECEIVED.load(Ordering::SeqCst) {
            0 => None,
            n => Signal::try_from(n).ok(),
        }
    }

    /// Sleeps for `d`, or less when a stop is asked for.
    pub(super) fn sleep(d: Duration) {
        let end = Instant::now() + d;
        while requested().is_none() {
            let now = Instant::now();
            if now >= end {
                return;
            }
            std::thread::sleep(STEP.min(end - now));
        }
    }
}

/// How a successful collection is reported.
#[derive(Debug, Clone, Copy)]
enum Summary {
    /// The one line on stderr ([`crate::output::collected`]).
    Line,
    /// A JSON document on stdout: pretty, or on one line (`--every`, a document per round).
    Json { one_line: bool },
}

/// A collection that succeeded.
struct Done {
    bundle: thimble_evidence::bundle::Bundle,
    /// `--every`: why the bundle was not written (it is worse than the one on disk,
    /// [`Previous::worse`]).
    kept: Option<String>,
}

/// Prints what a collection that wrote `bundle` says: with `-v` its log lines, then the summary
/// line (only when `line`) or the JSON summary.
fn report(
    bundle: &thimble_evidence::bundle::Bundle,
    output: &std::path::Path,
    summary: Summary,
    said: &[String],
    line: bool,
) {
    crate::output::bundle_details(bundle);
    match summary {
        Summary::Line if line => crate::output::collected(bundle, output),
        Summary::Line => {}
        Summary::Json { one_line } => {
            let value = json_summary(bundle, output, said);
            if one_line {
                crate::output::print_stdout(&format!("{value}\n"));
            } else {
                crate::output::print_json(&value);
            }
        }
    }
}

/// One collection: the warnings said (also given to `say` as they come), and the collection.
/// `previous`: `--every`'s record of the last bundle written ([`Previous`]).
fn run_once(
    a: &CollectArgs,
    previous: Option<&mut Option<Previous>>,
    say: &mut dyn FnMut(&str),
) -> (Vec<String>, Result<Done, CliError>) {
    // Checked before anything touches a device, so a usage error costs no guest request.
    let (output, request) = match output_path(a).and_then(|o| request(a).map(|r| (o, r))) {
        Ok(p) => p,
        Err(e) => return (Vec::new(), Err(e)),
    };
    #[cfg(feature = "simulate")]
    if let Some(simulate) = a.simulate {
        return match sim_machine(simulate, a.source) {
            Ok(machine) => collect_in(
                &SimEnvironment::new(machine),
                a,
                &request,
                &output,
                previous,
                say,
            ),
            Err(e) => (Vec::new(), Err(e)),
        };
    }
    collect_in(
        &SystemEnvironment::new(),
        a,
        &request,
        &output,
        previous,
        say,
    )
}

/// The simulated machine `--simulate` and `--source` name.
#[cfg(feature = "simulate")]
pub(crate) fn sim_machine(
    simulate: SimulateArg,
    source: SourceArg,
) -> Result<SimMachine, CliError> {
    // A simulation is of one TEE; a source of another is a contradiction, not a hint.
    let machine = match (simulate, source) {
        (SimulateArg::Snp, SourceArg::ConfigfsTsm) => Some(SimMachine::SnpConfigfs),
        (SimulateArg::Snp, SourceArg::Auto | SourceArg::SevGuest) => Some(SimMachine::SnpDevice),
        (SimulateArg::Tdx, SourceArg::Auto | SourceArg::ConfigfsTsm | SourceArg::TdxGuest) => {
            Some(SimMachine::Tdx)
        }
        (SimulateArg::AzureSnp, SourceArg::Auto | SourceArg::Vtpm) => Some(SimMachine::AzureSnp),
        (SimulateArg::AzureTdx, SourceArg::Auto | SourceArg::Vtpm) => Some(SimMachine::AzureTdx),
        _ => None,
    };
    let Some(machine) = machine else {
        let name = clap::ValueEnum::to_possible_value(&source)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        return Err(CliError::Usage(format!(
            "--source {name} is not a source of the simulated TEE"
        )));
    };
    Ok(machine)
}

/// Collects in `env` and writes the bundle, unless `previous` finds it worse than the one an
/// earlier round wrote. Returns the warnings, each also given to `say` as it comes.
fn collect_in<E: Environment>(
    env: &E,
    a: &CollectArgs,
    request: &CollectRequest,
    output: &std::path::Path,
    previous: Option<&mut Option<Previous>>,
    say: &mut dyn FnMut(&str),
) -> (Vec<String>, Result<Done, CliError>) {
    let plan = thimble_collect::plan(env, request);
    // Settings of another TEE have no meaning for this one; say so rather than drop them in
    // silence.
    let (ignored, why): (&[(&str, bool)], &str) = match plan {
        Plan::Tdx(_) => (
            &[
                ("--privlevel", a.privlevel.is_some()),
                ("--no-thim", a.no_thim),
                ("--no-kds", a.no_kds),
                ("--kds", a.kds.is_some()),
            ],
            "applies to SEV-SNP collection and is ignored for TDX",
        ),
        Plan::Azure => (
            &[
                ("--privlevel", a.privlevel.is_some()),
                ("--cache-dir", a.cache_dir.is_some()),
                ("--no-cache", a.no_cache),
                ("--qgs-port", a.qgs_port.is_some()),
            ],
            "does not apply to collection from the Azure vTPM and is ignored",
        ),
        _ => (&[], ""),
    };
    let mut said: Vec<String> = Vec::new();
    for (flag, _) in ignored.iter().filter(|(_, set)| *set) {
        said.push(format!("{flag} {why}"));
        say(&format!("{flag} {why}"));
    }
    let mut warnings = Vec::new();
    let now = env.now();
    let collected = plan.collect_into(env, request, now, &mut warnings);
    for w in &warnings {
        said.push(w.to_string());
        say(&w.to_string());
    }
    let bundle = match collected {
        Ok(b) => b,
        Err(e) => return (said, Err(cli_error(e))),
    };
    if let Some(previous) = previous {
        if let Some(why) = previous.as_ref().and_then(|p| p.worse(&bundle, now)) {
            return (
                said,
                Ok(Done {
                    bundle,
                    kept: Some(why),
                }),
            );
        }
        *previous = Some(Previous::of(&bundle));
    }
    if let Err(e) = write_output(output, &bundle.to_json()) {
        return (said, Err(e));
    }
    (said, Ok(Done { bundle, kept: None }))
}

/// `--every`: what the last bundle this process wrote held, so that a round never replaces it
/// with a worse one. A new bundle is worse when it lacks a CRL kind the written one has (AMD's
/// CRL, Intel's PCK or root CA CRL) or has fewer kinds of endorsement, while the written one's
/// endorsements are all still current (no certificate past its notAfter, no item past its
/// nextUpdate). Once they are not, any new bundle is better. docs/collect.md states the rule.
#[derive(Debug)]
struct Previous {
    kinds: Vec<EndorsementKind>,
    /// When the first of its endorsements stops being current; `None`: none says.
    current_until: Option<i64>,
}

/// The CRL kinds a bundle must not lose.
const CRL_KINDS: [EndorsementKind; 3] = [
    EndorsementKind::Crl,
    EndorsementKind::PckCrl,
    EndorsementKind::RootCaCrl,
];

impl Previous {
    fn of(bundle: &thimble_evidence::bundle::Bundle) -> Previous {
        let mut kinds = Vec::new();
        for e in &bundle.endorsements {
            if !kinds.contains(&e.kind) {
                kinds.push(e.kind);
            }
        }
        let current_until = bundle
            .endorsements
            .iter()
            .flat_map(|e| {
                let next_update = e.next_update.as_deref().and_then(parse_rfc3339);
                // Certificates that do not parse as AMD's (Intel's) bound nothing here: their
                // collateral's nextUpdate does.
                let not_after = e
                    .bytes()
                    .ok()
                    .and_then(|b| AmdCert::parse_der(&b).ok())
                    .map(|c| c.not_after);
                [next_update, not_after]
            })
            .flatten()
            .min();
        Previous {
            kinds,
            current_until,
        }
    }

    /// Why `bundle`, collected at `now`, is worse than this one, if it is.
    fn worse(&self, bundle: &thimble_evidence::bundle::Bundle, now: i64) -> Option<String> {
        if self.current_until.is_some_and(|t| t <= now) {
            return None;
        }
        let new = Previous::of(bundle);
        if let Some(lost) = CRL_KINDS
            .iter()
            .find(|k| self.kinds.contains(k) && !new.kinds.contains(k))
        {
            return Some(format!(
                "the new bundle lacks the {} that the one written before has",
                match lost {
                    EndorsementKind::Crl => "AMD CRL",
                    EndorsementKind::PckCrl => "PCK CRL",
                    _ => "root CA CRL",
                }
            ));
        }
        (new.kinds.len() < self.kinds.len()).then(|| {
            format!(
                "the new bundle has {} kinds of endorsement, the one written before {}",
                new.kinds.len(),
                self.kinds.len()
            )
        })
    }
}

/// `collect --json`: what [`crate::output::collected`] says, as members (docs/collect.md).
fn json_summary(
    bundle: &thimble_evidence::bundle::Bundle,
    output: &std::path::Path,
    warnings: &[String],
) -> serde_json::Value {
    serde_json::json!({
        "path": output.to_string_lossy(),
        "tee": bundle.tee().as_str(),
        "simulated": bundle.simulated,
        "source": bundle.collection.source.to_string(),
        "nonce": bundle.nonce.as_ref().map(|n| &n.value),
        "endorsement_origins": crate::output::endorsement_origins(bundle),
        "endorsements": bundle.endorsements.len(),
        "event_logs": bundle.event_logs.iter().map(|l| l.kind.as_str()).collect::<Vec<_>>(),
        "warnings": warnings,
    })
}

/// What to try on a machine without a TEE: the simulation, in a build that has one.
#[cfg(feature = "simulate")]
const NO_TEE_HINT: &str =
    "; on a machine without a TEE, `--simulate snp|tdx|azure-snp|azure-tdx` runs a simulated guest";
#[cfg(not(feature = "simulate"))]
const NO_TEE_HINT: &str = "";

/// The CLI's error for a failed collection: the library's, except that "no source" carries the
/// CLI's hints.
pub(crate) fn cli_error(e: CollectError) -> CliError {
    match e {
        CollectError::NoSource(n @ NoSource::Nothing { .. }) => CliError::NoTee(format!(
            "{n} (run `thimble detect` for details{NO_TEE_HINT})"
        )),
        CollectError::NoSource(n) => {
            CliError::NoTee(format!("{n} (run `thimble detect` for details)"))
        }
        e => CliError::Collect(e),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use thimble_collect::{CollectRequest, Environment};
    use thimble_evidence::bundle::{Bundle, EndorsementKind};
    use thimble_sim::{SimEnvironment, SimMachine, insecure_trust_test_roots};

    use super::{Previous, format_interval, same_failure_key};

    /// A simulated SEV-SNP bundle with the VCEK, ASK, ARK and AMD CRL, and when it was made.
    fn full_bundle() -> (Bundle, i64) {
        let env = SimEnvironment::new(SimMachine::SnpDevice);
        let mut request = CollectRequest::with_nonce(b"rounds");
        insecure_trust_test_roots(&mut request);
        let now = env.now();
        let bundle = thimble_collect::collect(&env, &request, now)
            .expect("simulated collect")
            .bundle;
        assert!(
            bundle
                .endorsements
                .iter()
                .any(|e| e.kind == EndorsementKind::Crl)
        );
        (bundle, now)
    }

    fn without(bundle: &Bundle, kind: EndorsementKind) -> Bundle {
        let mut b = bundle.clone();
        b.endorsements.retain(|e| e.kind != kind);
        b
    }

    #[test]
    fn a_bundle_is_worse_without_the_crl_or_with_fewer_kinds_while_the_old_one_is_current() {
        let (full, now) = full_bundle();
        let written = Previous::of(&full);
        assert_eq!(written.worse(&full, now), None);
        let why = written.worse(&without(&full, EndorsementKind::Crl), now);
        assert!(why.is_some_and(|w| w.contains("lacks the AMD CRL")));
        let why = written.worse(&without(&full, EndorsementKind::Ask), now);
        assert!(
            why.is_some_and(|w| w.contains("3 kinds of endorsement, the one written before 4"))
        );
        // Once the written bundle's endorsements are no longer current (the first notAfter of
        // the simulated chain), any new bundle replaces it.
        let later = written.current_until.expect("the chain's notAfter");
        assert_eq!(
            written.worse(&without(&full, EndorsementKind::Crl), later),
            None
        );
        // A bundle with more than the written one is never worse.
        let bare = Previous::of(&without(&full, EndorsementKind::Crl));
        assert_eq!(bare.worse(&full, now), None);
    }

    #[test]
    fn retry_counts_do_not_make_a_failure_new() {
        let a = "fetch http://x: deadline of 1s reached after 2 attempt(s); last error: connection \
                 failed after 3 attempt(s): refused";
        let b = "fetch http://x: deadline of 1s reached after 3 attempt(s); last error: connection \
                 failed after 4 attempt(s): refused";
        assert_eq!(same_failure_key(a), same_failure_key(b));
        assert!(same_failure_key(a).contains("after N attempt(s)"));
        // Other numbers still tell failures apart.
        assert_ne!(
            same_failure_key("http status 403 after 1 attempt(s)"),
            same_failure_key("http status 500 after 1 attempt(s)")
        );
        assert_eq!(same_failure_key("after 5 s, after "), "after 5 s, after ");
    }

    #[test]
    fn intervals_are_said_in_their_unit() {
        assert_eq!(format_interval(Duration::from_secs(30)), "30 s");
        assert_eq!(format_interval(Duration::from_millis(20)), "20 ms");
        assert_eq!(format_interval(Duration::from_millis(1500)), "1500 ms");
    }
}
