// SPDX-License-Identifier: Apache-2.0
//! Whether a measured-boot event log is the one behind the registers a quote signs: replays the
//! log (`thimble_evidence::eventlog::EventLog`) into register values and compares them with the
//! registers of verified evidence, a TDX quote's RTMR0 to RTMR3 or the PCRs a vTPM quote covers.
//! Facts and sources: docs/formats.md §8.6.
//!
//! Replaying extends each register, from its initial value, with the event's digest of the
//! chosen algorithm, in log order: `value = H(value ‖ digest)`. `EV_NO_ACTION` events are not
//! extended. Initial values: a TD's RTMRs start at 48 zero bytes; a TPM's PCRs at zeros of the
//! bank's size, except PCR 0 when the log records a StartupLocality (its last byte is the
//! locality) and PCRs 17 to 22, the dynamic-launch PCRs, which reset to all ones. MRTD is not
//! replayable: the TDX module computes it from the host's TD build, and firmware logs nothing
//! into it.
//!
//! The comparison is per register: it matches, it does not (both values given), the log does
//! not cover it (no event extends it; reported with its value, never assumed), or the log
//! extends a register the evidence does not give. A mismatch is an authenticity failure
//! ([`Code::EventLogMismatch`]): the log is not the record of this boot. The caller must have
//! verified the evidence first; this module trusts the register values it is given. Pure: no
//! I/O, bounded by the parser's limits on the log.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};
use thimble_evidence::azure::{TpmError, TpmQuote};
use thimble_evidence::bundle::{EventLogEvidence, EventLogKind};
use thimble_evidence::eventlog::claims::hash;
use thimble_evidence::eventlog::{EventLog, EventLogClaims, HashAlg, ccel};
use thimble_evidence::tdx::TdxQuote;
use thiserror::Error;

use crate::outcome::{Code, VerifyError};

/// The number of PCRs of a PC Client TPM (PCRs 0 to 23).
pub const TPM_PCR_COUNT: u32 = 24;
/// The dynamic-launch PCRs, which reset to all ones rather than zeros (PC Client PTP).
pub const DRTM_PCRS: std::ops::RangeInclusive<u32> = 17..=22;
/// The size of a TDX RTMR: SHA-384.
pub const RTMR_LEN: usize = 48;

/// A measurement register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Register {
    /// A TPM PCR.
    Pcr(u32),
    /// A TD's MRTD (CC measurement register index 0).
    Mrtd,
    /// A TD's RTMR 0 to 3 (CC measurement register index 1 to 4).
    Rtmr(u8),
}

impl fmt::Display for Register {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Register::Pcr(i) => write!(f, "PCR {i}"),
            Register::Mrtd => f.write_str("MRTD"),
            Register::Rtmr(i) => write!(f, "RTMR{i}"),
        }
    }
}

impl Serialize for Register {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a log could not be replayed.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayError {
    /// The algorithm is not one thimble computes (SHA-256, SHA-384, SHA-512).
    #[error("cannot replay the {alg} bank: only SHA-256, SHA-384 and SHA-512 are computed")]
    UnsupportedAlgorithm {
        /// The algorithm asked for.
        alg: HashAlg,
    },
    /// The log has no digests of the algorithm (its Spec ID event does not list it).
    #[error("the event log has no {alg} digests")]
    AlgorithmNotInLog {
        /// The algorithm asked for.
        alg: HashAlg,
    },
    /// An event that is extended has no digest of the algorithm.
    #[error("event {event} has no {alg} digest")]
    MissingDigest {
        /// The event.
        event: usize,
        /// The algorithm.
        alg: HashAlg,
    },
    /// An event names a register the evidence cannot have: a PCR above 23, or a CC measurement
    /// register index above 4 (RTMR3).
    #[error("event {event} extends register {register}, which a {what} does not have")]
    RegisterOutOfRange {
        /// The event.
        event: usize,
        /// Its register field.
        register: u32,
        /// `TPM` or `TD`.
        what: &'static str,
    },
    /// The vTPM quote does not parse, or selects PCRs it gives no SHA-256 value for.
    #[error("the TPM quote cannot give the PCR values to compare")]
    TpmQuote(#[source] TpmError),
}

impl ReplayError {
    /// The error as a verification error: the log cannot be replayed against this evidence, so
    /// it is malformed ([`Code::MalformedEventLog`]).
    pub fn to_verify_error(&self) -> VerifyError {
        VerifyError::new(Code::MalformedEventLog, format!("event log: {self}"))
    }
}

/// One register as the log replays it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayedRegister {
    /// The value after the last event, hex in JSON.
    #[serde(serialize_with = "hex_bytes")]
    pub value: Vec<u8>,
    /// How many events extended it.
    pub events: usize,
}

/// The registers a log replays to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replay {
    /// The bank replayed.
    pub alg: HashAlg,
    /// Every register at least one event extends, with its value.
    pub registers: BTreeMap<Register, ReplayedRegister>,
    /// Registers the log extends that cannot be replayed (MRTD), with their event counts.
    pub not_replayable: BTreeMap<Register, usize>,
    /// The StartupLocality applied to PCR 0's initial value (TPM logs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_locality: Option<u8>,
}

/// Replays a TPM log's `alg` bank into PCR values.
pub fn replay_tpm(log: &EventLog, alg: HashAlg) -> Result<Replay, ReplayError> {
    let locality = log.startup_locality();
    replay(log, alg, locality, |event, register| {
        if register >= TPM_PCR_COUNT {
            return Err(ReplayError::RegisterOutOfRange {
                event,
                register,
                what: "TPM",
            });
        }
        Ok(Some(Register::Pcr(register)))
    })
}

/// Replays a TD's CC event log (SHA-384) into RTMR values; events of MRTD are counted in
/// [`Replay::not_replayable`].
pub fn replay_tdx(log: &EventLog) -> Result<Replay, ReplayError> {
    replay(log, HashAlg::SHA384, None, |event, register| {
        if register == ccel::CC_MR_INDEX_MRTD {
            return Ok(None);
        }
        ccel::rtmr_of_mr_index(register)
            .and_then(|i| u8::try_from(i).ok())
            .map(|i| Some(Register::Rtmr(i)))
            .ok_or(ReplayError::RegisterOutOfRange {
                event,
                register,
                what: "TD",
            })
    })
}

/// The value `register` holds before any event: see the module documentation.
pub fn initial_value(register: Register, len: usize, startup_locality: Option<u8>) -> Vec<u8> {
    let mut v = vec![0; len];
    match register {
        Register::Pcr(i) if DRTM_PCRS.contains(&i) => v.fill(0xFF),
        Register::Pcr(0) => {
            if let (Some(l), Some(last)) = (startup_locality, v.last_mut()) {
                *last = l;
            }
        }
        _ => {}
    }
    v
}

/// Replays the extended events of `log`; `map` turns an event's register field into the
/// register it extends (`None`: counted as not replayable).
fn replay(
    log: &EventLog,
    alg: HashAlg,
    startup_locality: Option<u8>,
    map: impl Fn(usize, u32) -> Result<Option<Register>, ReplayError>,
) -> Result<Replay, ReplayError> {
    let len = hash(alg, b"")
        .map(|h| h.len())
        .ok_or(ReplayError::UnsupportedAlgorithm { alg })?;
    if log.spec_id.digest_size(alg).is_none() {
        return Err(ReplayError::AlgorithmNotInLog { alg });
    }
    let mut out = Replay {
        alg,
        registers: BTreeMap::new(),
        not_replayable: BTreeMap::new(),
        startup_locality,
    };
    for e in log.events.iter().filter(|e| e.is_extended()) {
        let digest = e.digest(alg).ok_or(ReplayError::MissingDigest {
            event: e.index,
            alg,
        })?;
        let Some(register) = map(e.index, e.register)? else {
            *out.not_replayable.entry(Register::Mrtd).or_default() += 1;
            continue;
        };
        let r = out
            .registers
            .entry(register)
            .or_insert_with(|| ReplayedRegister {
                value: initial_value(register, len, startup_locality),
                events: 0,
            });
        let mut input = Vec::with_capacity(r.value.len() + digest.len());
        input.extend_from_slice(&r.value);
        input.extend_from_slice(digest);
        // `alg` was checked to be one `hash` computes.
        r.value = hash(alg, &input).unwrap_or_default();
        r.events += 1;
    }
    Ok(out)
}

/// How one register of the evidence compares with the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RegisterStatus {
    /// The log replays to the value the evidence holds.
    Matches {
        /// How many events extended it.
        events: usize,
    },
    /// The log replays to another value: it is not the record of this boot.
    Mismatch {
        /// The value the evidence holds.
        #[serde(serialize_with = "hex_bytes")]
        expected: Vec<u8>,
        /// The value the log replays to.
        #[serde(serialize_with = "hex_bytes")]
        replayed: Vec<u8>,
        /// How many events extended it.
        events: usize,
    },
    /// No event of the log extends this register: the log says nothing about it.
    NotCovered {
        /// The value the evidence holds.
        #[serde(serialize_with = "hex_bytes")]
        value: Vec<u8>,
        /// Whether that value is the register's initial value (nothing was extended).
        at_reset: bool,
    },
    /// The log extends a register whose value the evidence does not give.
    NotInEvidence {
        /// The value the log replays to.
        #[serde(serialize_with = "hex_bytes")]
        replayed: Vec<u8>,
        /// How many events extended it.
        events: usize,
    },
    /// The log extends a register that cannot be replayed (MRTD).
    NotReplayable {
        /// How many events name it.
        events: usize,
    },
}

/// One register's comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterCheck {
    /// The register.
    pub register: Register,
    /// How it compares.
    #[serde(flatten)]
    pub status: RegisterStatus,
}

/// The comparison of a log with the registers of evidence, register by register in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// The bank compared.
    pub alg: HashAlg,
    /// Every register of the evidence and every register the log extends.
    pub checks: Vec<RegisterCheck>,
}

impl ReplayReport {
    /// Whether no register mismatches.
    pub fn matches(&self) -> bool {
        self.mismatches().next().is_none()
    }

    /// The registers that mismatch.
    pub fn mismatches(&self) -> impl Iterator<Item = &RegisterCheck> {
        self.checks
            .iter()
            .filter(|c| matches!(c.status, RegisterStatus::Mismatch { .. }))
    }

    /// The status of `register`, if the report has it.
    pub fn status(&self, register: Register) -> Option<&RegisterStatus> {
        self.checks
            .iter()
            .find(|c| c.register == register)
            .map(|c| &c.status)
    }

    /// One [`Code::EventLogMismatch`] error per mismatching register.
    pub fn errors(&self) -> Vec<VerifyError> {
        self.checks
            .iter()
            .filter_map(|c| match &c.status {
                RegisterStatus::Mismatch {
                    expected, replayed, ..
                } => Some(VerifyError::new(
                    Code::EventLogMismatch,
                    format!(
                        "the event log replays {} to {} but the evidence holds {}",
                        c.register,
                        hex::encode(replayed),
                        hex::encode(expected)
                    ),
                )),
                _ => None,
            })
            .collect()
    }
}

/// Compares a replay with the evidence's register values.
fn compare(
    replay: Replay,
    evidence: BTreeMap<Register, Vec<u8>>,
    startup_locality: Option<u8>,
) -> ReplayReport {
    let mut checks = Vec::new();
    let mut replayed = replay.registers;
    for (register, value) in evidence {
        let status = match replayed.remove(&register) {
            Some(r) if r.value == value => RegisterStatus::Matches { events: r.events },
            Some(r) => RegisterStatus::Mismatch {
                expected: value,
                replayed: r.value,
                events: r.events,
            },
            None => {
                let at_reset = value == initial_value(register, value.len(), startup_locality);
                RegisterStatus::NotCovered { value, at_reset }
            }
        };
        checks.push(RegisterCheck { register, status });
    }
    for (register, r) in replayed {
        checks.push(RegisterCheck {
            register,
            status: RegisterStatus::NotInEvidence {
                replayed: r.value,
                events: r.events,
            },
        });
    }
    for (register, events) in replay.not_replayable {
        checks.push(RegisterCheck {
            register,
            status: RegisterStatus::NotReplayable { events },
        });
    }
    checks.sort_by_key(|c| c.register);
    ReplayReport {
        alg: replay.alg,
        checks,
    }
}

/// Compares a TD's CC event log with RTMR0 to RTMR3 as a verified quote holds them.
pub fn check_tdx_rtmrs(
    log: &EventLog,
    rtmrs: &[[u8; RTMR_LEN]; 4],
) -> Result<ReplayReport, ReplayError> {
    let replay = replay_tdx(log)?;
    let evidence = (0u8..)
        .zip(rtmrs)
        .map(|(i, v)| (Register::Rtmr(i), v.to_vec()))
        .collect();
    Ok(compare(replay, evidence, None))
}

/// Compares a TD's CC event log with the RTMRs of a verified TDX quote.
pub fn check_tdx_quote(log: &EventLog, quote: &TdxQuote) -> Result<ReplayReport, ReplayError> {
    check_tdx_rtmrs(log, &quote.body.rtmr)
}

/// Compares a TPM log's `alg` bank with PCR values the evidence vouches for, by PCR number.
pub fn check_tpm_pcrs(
    log: &EventLog,
    alg: HashAlg,
    pcrs: &BTreeMap<u32, Vec<u8>>,
) -> Result<ReplayReport, ReplayError> {
    let replay = replay_tpm(log, alg)?;
    let locality = replay.startup_locality;
    let evidence = pcrs
        .iter()
        .map(|(i, v)| (Register::Pcr(*i), v.clone()))
        .collect();
    Ok(compare(replay, evidence, locality))
}

/// Compares a TPM log's SHA-256 bank with the PCRs a verified vTPM quote covers: only the PCRs
/// its `TPMS_QUOTE_INFO` selects, whose values its `pcrDigest` signs (the caller checked it,
/// `Code::TpmPcrDigest`); the other values of `tpm_quote.json` are not authenticated and are
/// not used.
pub fn check_tpm_quote(log: &EventLog, quote: &TpmQuote) -> Result<ReplayReport, ReplayError> {
    let attest = quote.attest().map_err(ReplayError::TpmQuote)?;
    let mut pcrs = BTreeMap::new();
    for i in attest.selected_pcrs().map_err(ReplayError::TpmQuote)? {
        let v = usize::try_from(i)
            .ok()
            .and_then(|n| quote.pcrs.get(n))
            .ok_or(ReplayError::TpmQuote(TpmError::PcrMissing {
                index: i,
                have: quote.pcrs.len(),
            }))?;
        pcrs.insert(i, v.clone());
    }
    check_tpm_pcrs(log, HashAlg::SHA256, &pcrs)
}

/// The registers verified evidence signs, which a bundle's logs are replayed against. Only
/// values the caller verified go here: a TD's RTMRs from a quote whose signature and chain
/// held, the PCRs a vTPM quote covers once its signature and `pcrDigest` held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignedRegisters {
    /// RTMR0 to RTMR3 of a verified TDX quote.
    pub rtmrs: Option<[[u8; RTMR_LEN]; 4]>,
    /// A verified vTPM quote, whose selected SHA-256 PCRs a TPM log is compared with.
    pub tpm_quote: Option<TpmQuote>,
}

/// What a verification concluded about one event log of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum LogStatus {
    /// Replayed: every register of the evidence the log extends matches.
    Replayed,
    /// Replayed, and at least one register mismatches ([`Code::EventLogMismatch`]).
    Mismatch,
    /// Does not parse, or cannot be replayed against the evidence
    /// ([`Code::MalformedEventLog`]).
    Malformed,
    /// Not replayed: nothing signed to compare it with, or a kind thimble does not replay. The
    /// log is carried but vouches for nothing.
    NotReplayed,
}

/// One event log of a bundle as the verification judged it (`event_logs[]` of the result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogOutcome {
    /// The log's kind (`ccel`, `tcg2`, `ima`).
    pub kind: String,
    /// Where the collector says it read it (information only).
    pub source: String,
    /// Its size in bytes.
    pub size: usize,
    /// The verdict on this log.
    pub status: LogStatus,
    /// Why it was not replayed, or why it is malformed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The register-by-register comparison, when it was replayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayReport>,
    /// What the log says, decoded only from the events of registers that matched signed values
    /// (absent unless the log replayed without a mismatch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims: Option<EventLogClaims>,
}

/// Judges every event log of a bundle against `signed`: each is parsed, replayed against the
/// registers of its kind and compared. Returns one [`LogOutcome`] per log, in the bundle's
/// order, and the errors: [`Code::MalformedEventLog`] for a log that does not parse or names a
/// register the evidence cannot have, [`Code::EventLogMismatch`] per mismatching register. A
/// log with nothing signed to compare it with is reported, never an error and never a claim.
pub fn check_bundle_logs(
    logs: &[EventLogEvidence],
    signed: &SignedRegisters,
) -> (Vec<LogOutcome>, Vec<VerifyError>) {
    let mut outcomes = Vec::with_capacity(logs.len());
    let mut errors = Vec::new();
    for l in logs {
        let mut out = LogOutcome {
            kind: l.kind.to_string(),
            source: l.source.clone(),
            size: l.data.len(),
            status: LogStatus::NotReplayed,
            reason: None,
            replay: None,
            claims: None,
        };
        // What the log's kind is replayed against, or why it cannot be.
        let against = match (&l.kind, &signed.rtmrs, &signed.tpm_quote) {
            (EventLogKind::Ccel, Some(rtmrs), _) => Ok(Against::Rtmrs(rtmrs)),
            (EventLogKind::Ccel, None, _) => Err(
                "the evidence has no verified TDX quote whose RTMRs it could replay to".to_string(),
            ),
            (EventLogKind::Tcg2, _, Some(quote)) => Ok(Against::TpmQuote(quote)),
            (EventLogKind::Tcg2, _, None) => Err(
                "the evidence has no verified TPM quote whose PCRs it could replay to".to_string(),
            ),
            (EventLogKind::Ima, ..) => Err("thimble does not replay IMA logs".to_string()),
            (other, ..) => Err(format!(
                "event log kind {other:?} is not one this version knows"
            )),
        };
        let against = match against {
            Ok(a) => a,
            Err(why) => {
                out.reason = Some(why);
                outcomes.push(out);
                continue;
            }
        };
        let checked = EventLog::parse(&l.data)
            .map_err(|e| format!("the {} event log does not parse: {e}", l.kind))
            .and_then(|log| {
                match against {
                    Against::Rtmrs(rtmrs) => check_tdx_rtmrs(&log, rtmrs),
                    Against::TpmQuote(quote) => check_tpm_quote(&log, quote),
                }
                .map(|r| (log, r))
                .map_err(|e| format!("the {} event log: {e}", l.kind))
            });
        match checked {
            Err(reason) => {
                errors.push(VerifyError::new(Code::MalformedEventLog, reason.clone()));
                out.status = LogStatus::Malformed;
                out.reason = Some(reason);
            }
            Ok((log, report)) => {
                if report.matches() {
                    out.status = LogStatus::Replayed;
                    let matched: Vec<u32> = report
                        .checks
                        .iter()
                        .filter(|c| matches!(c.status, RegisterStatus::Matches { .. }))
                        .filter_map(|c| log_register(&l.kind, c.register))
                        .collect();
                    out.claims = Some(EventLogClaims::from_log_where(&log, |r| {
                        matched.contains(&r)
                    }));
                } else {
                    out.status = LogStatus::Mismatch;
                    errors.extend(report.errors().into_iter().map(|mut e| {
                        e.message = format!("{} log: {}", l.kind, e.message);
                        e
                    }));
                }
                out.replay = Some(report);
            }
        }
        outcomes.push(out);
    }
    (outcomes, errors)
}

/// What a verifier pins about measured boot (`--require-event-log`, `--expect-secure-boot`,
/// `--expect-kernel-cmdline`, `--expect-boot-digest`, and the policy file's `[event_log]`).
/// Every rule is judged only on claims of logs that replayed to signed registers; any rule
/// set requires such a log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventLogPolicy {
    /// A log must replay to signed registers.
    pub require: bool,
    /// The `SecureBoot` variable must have been measured with this value.
    pub secure_boot: Option<bool>,
    /// A kernel command line the boot loader measured must be this one: the whole measured text,
    /// or the text after its first word (GRUB puts the kernel's path first).
    pub kernel_cmdline: Option<String>,
    /// Each digest must be that of a boot application, kernel or initrd the log measured, in
    /// any of its banks.
    pub boot_digests: Vec<Vec<u8>>,
}

impl EventLogPolicy {
    /// Whether any rule is set.
    pub fn is_set(&self) -> bool {
        self.require
            || self.secure_boot.is_some()
            || self.kernel_cmdline.is_some()
            || !self.boot_digests.is_empty()
    }
}

/// Applies `policy` to the logs a verification judged: the errors, all of class policy.
pub fn check_policy(policy: &EventLogPolicy, logs: &[LogOutcome]) -> Vec<VerifyError> {
    if !policy.is_set() {
        return Vec::new();
    }
    let claims: Vec<&EventLogClaims> = logs.iter().filter_map(|l| l.claims.as_ref()).collect();
    if claims.is_empty() {
        let why = if logs.is_empty() {
            "the bundle carries no event log".to_string()
        } else {
            let seen: Vec<String> = logs
                .iter()
                .map(|l| match &l.reason {
                    Some(r) => format!("{}: {r}", l.kind),
                    None => format!("{}: {:?}", l.kind, l.status),
                })
                .collect();
            format!(
                "no event log replayed to signed registers ({})",
                seen.join("; ")
            )
        };
        return vec![VerifyError::new(
            Code::PolicyEventLog,
            format!("the policy needs a measured-boot event log, but {why}"),
        )];
    }
    let mut errors = Vec::new();
    if let Some(want) = policy.secure_boot {
        let seen: Vec<bool> = claims.iter().filter_map(|c| c.secure_boot).collect();
        if seen.is_empty() || seen.iter().any(|s| *s != want) {
            let found = match seen.first() {
                Some(true) => "on",
                Some(false) => "off",
                None => "not measured",
            };
            errors.push(VerifyError::new(
                Code::PolicySecureBoot,
                format!(
                    "Secure Boot must be {} but the event log says it is {found}",
                    if want { "on" } else { "off" }
                ),
            ));
        }
    }
    if let Some(want) = &policy.kernel_cmdline {
        let lines: Vec<&str> = claims
            .iter()
            .flat_map(|c| &c.kernel_cmdlines)
            .filter(|l| l.data_verified == Some(true))
            .map(|l| l.text.as_str())
            .collect();
        let fits = |text: &str| {
            text == want
                || text
                    .split_once(' ')
                    .is_some_and(|(_, args)| args.trim_start() == want)
        };
        if !lines.iter().any(|t| fits(t)) {
            let found = if lines.is_empty() {
                "no kernel command line is measured (only GRUB's are read)".to_string()
            } else {
                format!("the measured command line is {:?}", lines.join(" | "))
            };
            errors.push(VerifyError::new(
                Code::PolicyKernelCmdline,
                format!("the kernel command line must be {want:?}, but {found}"),
            ));
        }
    }
    if !policy.boot_digests.is_empty() {
        let measured: Vec<&str> = claims
            .iter()
            .flat_map(|c| {
                c.boot_applications
                    .iter()
                    .map(|a| &a.digests)
                    .chain(c.kernels.iter().map(|f| &f.digests))
                    .chain(c.initrds.iter().map(|f| &f.digests))
            })
            .flat_map(|d| d.values().map(String::as_str))
            .collect();
        for want in &policy.boot_digests {
            let hex = hex::encode(want);
            if !measured.contains(&hex.as_str()) {
                errors.push(VerifyError::new(
                    Code::PolicyBootDigest,
                    format!(
                        "no boot application, kernel or initrd in the event log has digest {hex}"
                    ),
                ));
            }
        }
    }
    errors
}

/// The signed registers a log is replayed against.
enum Against<'a> {
    /// A verified TDX quote's RTMR0 to RTMR3.
    Rtmrs(&'a [[u8; RTMR_LEN]; 4]),
    /// A verified vTPM quote, whose selected PCRs count.
    TpmQuote(&'a TpmQuote),
}

/// The register field events of a `kind` log carry for `register`.
fn log_register(kind: &EventLogKind, register: Register) -> Option<u32> {
    match (kind, register) {
        (EventLogKind::Tcg2, Register::Pcr(i)) => Some(i),
        (EventLogKind::Ccel, Register::Rtmr(i)) => Some(u32::from(i) + 1),
        _ => None,
    }
}

fn hex_bytes<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-algorithm log with `events` of (register, type, digest).
    fn log(alg: (u16, u16), events: &[(u32, u32, Vec<u8>, Vec<u8>)]) -> EventLog {
        let mut data = b"Spec ID Event03\0".to_vec();
        data.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 2, 1, 0, 0, 0]);
        data.extend_from_slice(&alg.0.to_le_bytes());
        data.extend_from_slice(&alg.1.to_le_bytes());
        data.push(0);
        let mut out = vec![0; 4];
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&[0; 20]);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&data);
        for (reg, ty, digest, data) in events {
            out.extend_from_slice(&reg.to_le_bytes());
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
            out.extend_from_slice(&alg.0.to_le_bytes());
            out.extend_from_slice(digest);
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
        }
        EventLog::parse(&out).unwrap()
    }

    fn sha256(parts: &[&[u8]]) -> Vec<u8> {
        hash(HashAlg::SHA256, &parts.concat()).unwrap()
    }

    #[test]
    fn startup_locality_sets_pcr0s_initial_value_and_no_action_is_not_extended() {
        let mut locality = b"StartupLocality\0".to_vec();
        locality.push(3);
        let d = vec![7; 32];
        let l = log(
            (0x000B, 32),
            &[
                (0, 3, vec![0; 32], locality),
                (0, 8, d.clone(), b"v".to_vec()),
                (18, 4, d.clone(), vec![0; 4]),
            ],
        );
        let r = replay_tpm(&l, HashAlg::SHA256).unwrap();
        let mut start = vec![0; 32];
        start[31] = 3;
        assert_eq!(r.registers[&Register::Pcr(0)].value, sha256(&[&start, &d]));
        assert_eq!(r.registers[&Register::Pcr(0)].events, 1);
        assert_eq!(
            r.registers[&Register::Pcr(18)].value,
            sha256(&[&[0xFF; 32], &d])
        );
    }

    #[test]
    fn statuses_cover_match_mismatch_uncovered_and_absent_registers() {
        let d = vec![1; 32];
        let l = log(
            (0x000B, 32),
            &[(4, 4, d.clone(), vec![0; 4]), (9, 4, d.clone(), vec![0; 4])],
        );
        let pcr4 = sha256(&[&[0; 32], &d]);
        let mut pcrs = BTreeMap::new();
        pcrs.insert(4, pcr4.clone());
        pcrs.insert(5, vec![0; 32]);
        pcrs.insert(6, vec![9; 32]);
        let report = check_tpm_pcrs(&l, HashAlg::SHA256, &pcrs).unwrap();
        assert_eq!(
            report.status(Register::Pcr(4)),
            Some(&RegisterStatus::Matches { events: 1 })
        );
        assert_eq!(
            report.status(Register::Pcr(5)),
            Some(&RegisterStatus::NotCovered {
                value: vec![0; 32],
                at_reset: true
            })
        );
        assert!(matches!(
            report.status(Register::Pcr(6)),
            Some(RegisterStatus::NotCovered {
                at_reset: false,
                ..
            })
        ));
        assert!(matches!(
            report.status(Register::Pcr(9)),
            Some(RegisterStatus::NotInEvidence { events: 1, .. })
        ));
        assert!(report.matches());
        pcrs.insert(4, vec![2; 32]);
        let report = check_tpm_pcrs(&l, HashAlg::SHA256, &pcrs).unwrap();
        assert!(!report.matches());
        let errors = report.errors();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, Code::EventLogMismatch);
        assert!(errors[0].message.contains("PCR 4"));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["checks"][0]["register"], "PCR 4");
        assert_eq!(json["checks"][0]["status"], "mismatch");
        assert_eq!(json["checks"][0]["expected"], hex::encode([2; 32]));
    }

    #[test]
    fn td_logs_map_mr_indices_and_leave_mrtd_alone() {
        let d = vec![5; 48];
        let l = log(
            (0x000C, 48),
            &[(0, 4, d.clone(), vec![0; 4]), (1, 4, d.clone(), vec![0; 4])],
        );
        let rtmr0: [u8; 48] = hash(HashAlg::SHA384, &[[0; 48], [5; 48]].concat())
            .unwrap()
            .try_into()
            .unwrap();
        let report = check_tdx_rtmrs(&l, &[rtmr0, [0; 48], [0; 48], [0; 48]]).unwrap();
        assert_eq!(
            report.status(Register::Rtmr(0)),
            Some(&RegisterStatus::Matches { events: 1 })
        );
        assert_eq!(
            report.status(Register::Mrtd),
            Some(&RegisterStatus::NotReplayable { events: 1 })
        );
        assert!(matches!(
            report.status(Register::Rtmr(3)),
            Some(RegisterStatus::NotCovered { at_reset: true, .. })
        ));
        let l = log((0x000C, 48), &[(5, 4, d, vec![0; 4])]);
        assert_eq!(
            replay_tdx(&l),
            Err(ReplayError::RegisterOutOfRange {
                event: 1,
                register: 5,
                what: "TD"
            })
        );
    }

    #[test]
    fn a_vtpm_quote_gives_the_pcrs_it_covers_and_drtm_pcrs_start_at_all_ones() {
        let json = include_bytes!("../../../tests/vectors/azure/snp-hcl-milan-v2/tpm_quote.json");
        let quote = TpmQuote::parse_json(json).unwrap();
        // A log that extends PCR 16 once, which the real quote holds at zero.
        let l = log((0x000B, 32), &[(16, 4, vec![3; 32], vec![0; 4])]);
        let report = check_tpm_quote(&l, &quote).unwrap();
        assert_eq!(report.checks.len(), 24);
        assert!(matches!(
            report.status(Register::Pcr(16)),
            Some(RegisterStatus::Mismatch { events: 1, .. })
        ));
        for pcr in DRTM_PCRS.chain([23]) {
            assert!(
                matches!(
                    report.status(Register::Pcr(pcr)),
                    Some(RegisterStatus::NotCovered { at_reset: true, .. })
                ),
                "PCR {pcr}"
            );
        }
        assert!(matches!(
            report.status(Register::Pcr(0)),
            Some(RegisterStatus::NotCovered {
                at_reset: false,
                ..
            })
        ));
    }

    #[test]
    fn banks_must_be_in_the_log_and_computable() {
        let l = log((0x000B, 32), &[]);
        assert_eq!(
            replay_tpm(&l, HashAlg::SHA384),
            Err(ReplayError::AlgorithmNotInLog {
                alg: HashAlg::SHA384
            })
        );
        let l = log((0x0004, 20), &[]);
        assert_eq!(
            replay_tpm(&l, HashAlg::SHA1),
            Err(ReplayError::UnsupportedAlgorithm { alg: HashAlg::SHA1 })
        );
        let l = log((0x000B, 32), &[(24, 4, vec![0; 32], vec![])]);
        assert!(matches!(
            replay_tpm(&l, HashAlg::SHA256),
            Err(ReplayError::RegisterOutOfRange { register: 24, .. })
        ));
        assert_eq!(
            replay_tpm(&l, HashAlg::SHA256)
                .unwrap_err()
                .to_verify_error()
                .code,
            Code::MalformedEventLog
        );
    }
}
