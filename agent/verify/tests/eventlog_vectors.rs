// SPDX-License-Identifier: Apache-2.0
//! Every real event log under `tests/vectors/eventlog` (see its `case.toml`s and the vectors
//! README) parsed, decoded and replayed to the register values it must give: a TD's RTMRs from
//! the quote taken in the same boot, or the PCR values the log's source publishes beside it.
//! Then tampered logs: a digest byte flipped changes exactly its register, a cut names its event.
//! Then hostile input: every truncation length and byte flips all along every log give a log or
//! a typed error, never a panic, each within a bounded time.

#![expect(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    reason = "a test reads its vector files, times its runs and panics on setup failure"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use thimble_evidence::eventlog::{
    CcType, CcelTable, EventLog, EventLogClaims, EventLogError, HashAlg,
};
use thimble_evidence::tdx::TdxQuote;
use thimble_verify::eventlog::{
    Register, RegisterStatus, ReplayReport, check_tdx_quote, check_tpm_pcrs, replay_tdx, replay_tpm,
};

#[derive(Deserialize)]
struct Case {
    id: String,
    kind: String,
    bank: String,
    expect: String,
    #[serde(default)]
    registers_from: Option<String>,
    #[serde(default)]
    registers: BTreeMap<String, String>,
}

struct Loaded {
    case: Case,
    dir: PathBuf,
    log: Vec<u8>,
}

fn cases() -> Vec<Loaded> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/eventlog");
    let mut out: Vec<Loaded> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.toml").exists())
        .map(|dir| {
            let case: Case =
                toml::from_str(&std::fs::read_to_string(dir.join("case.toml")).unwrap()).unwrap();
            let file = if case.kind == "ccel" {
                "ccel_data.bin"
            } else {
                "event_log.bin"
            };
            let log = std::fs::read(dir.join(file)).unwrap();
            Loaded { case, dir, log }
        })
        .collect();
    out.sort_by(|a, b| a.case.id.cmp(&b.case.id));
    assert!(out.len() >= 7, "{} event log cases", out.len());
    out
}

fn alg(bank: &str) -> HashAlg {
    match bank {
        "sha256" => HashAlg::SHA256,
        "sha384" => HashAlg::SHA384,
        other => panic!("bank {other}"),
    }
}

/// The register a case's `[registers]` key names: a PCR for TPM logs, a CC measurement
/// register index (1 to 4 for RTMR0 to RTMR3) for CC logs.
fn register(case: &Case, key: &str) -> Register {
    let n: u32 = key.parse().unwrap();
    if case.kind == "ccel" {
        Register::Rtmr(u8::try_from(n - 1).unwrap())
    } else {
        Register::Pcr(n)
    }
}

/// The case's log compared with its expected registers.
fn check(l: &Loaded, log: &EventLog) -> ReplayReport {
    if l.case.registers_from.as_deref() == Some("quote.bin") {
        let quote = TdxQuote::parse(&std::fs::read(l.dir.join("quote.bin")).unwrap()).unwrap();
        return check_tdx_quote(log, &quote).unwrap();
    }
    assert!(!l.case.registers.is_empty(), "{}: no registers", l.case.id);
    if l.case.kind == "ccel" {
        // Only RTMR values were published: compare those the case gives.
        let replay = replay_tdx(log).unwrap();
        let checks = l
            .case
            .registers
            .iter()
            .map(|(k, v)| {
                let reg = register(&l.case, k);
                let want = hex::decode(v).unwrap();
                let got = &replay.registers[&reg];
                let status = if got.value == want {
                    RegisterStatus::Matches { events: got.events }
                } else {
                    RegisterStatus::Mismatch {
                        expected: want,
                        replayed: got.value.clone(),
                        events: got.events,
                    }
                };
                thimble_verify::eventlog::RegisterCheck {
                    register: reg,
                    status,
                }
            })
            .collect();
        return ReplayReport {
            alg: HashAlg::SHA384,
            checks,
        };
    }
    let pcrs = l
        .case
        .registers
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), hex::decode(v).unwrap()))
        .collect();
    check_tpm_pcrs(log, alg(&l.case.bank), &pcrs).unwrap()
}

#[test]
fn every_real_log_replays_to_its_registers() {
    for l in cases() {
        let id = &l.case.id;
        assert_eq!(l.case.expect, "replay-match", "{id}");
        let log = EventLog::parse(&l.log).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(log.as_bytes(), l.log, "{id}: the log keeps its bytes");
        let report = check(&l, &log);
        assert!(report.matches(), "{id}: {:#?}", report.errors());
        let matched = report
            .checks
            .iter()
            .filter(|c| matches!(c.status, RegisterStatus::Matches { .. }))
            .count();
        assert!(matched >= 3, "{id}: only {matched} registers match");
        for c in &report.checks {
            assert!(
                matches!(
                    c.status,
                    RegisterStatus::Matches { .. }
                        | RegisterStatus::NotCovered { at_reset: true, .. }
                ),
                "{id}: {} is {:?}",
                c.register,
                c.status
            );
        }
        let claims = EventLogClaims::from_log(&log);
        assert!(
            claims.undecodable.is_empty(),
            "{id}: {:?}",
            claims.undecodable
        );
        assert!(!claims.separators.is_empty(), "{id}: no separators");
        if l.case.kind == "ccel" {
            assert_eq!(
                log.padding.map(|p| p.offset),
                Some(log.trimmed_bytes().len())
            );
        }
    }
}

#[test]
fn the_tdx_case_matches_rtmr0_to_2_and_reports_rtmr3_as_not_covered() {
    let l = cases()
        .into_iter()
        .find(|l| l.case.id == "tdx-gcp-cos113")
        .unwrap();
    let table = CcelTable::parse(&std::fs::read(l.dir.join("ccel.bin")).unwrap()).unwrap();
    assert_eq!(table.cc_type, CcType::TDX);
    assert_eq!(usize::try_from(table.laml).unwrap(), l.log.len());
    let log = EventLog::parse(&l.log).unwrap();
    let padding = log.padding.unwrap();
    assert_eq!((padding.offset, padding.byte), (18101, 0xFF));
    assert_eq!(log.events.len(), 43);
    let report = check(&l, &log);
    for i in 0..3 {
        assert!(matches!(
            report.status(Register::Rtmr(i)),
            Some(RegisterStatus::Matches { .. })
        ));
    }
    assert_eq!(
        report.status(Register::Rtmr(3)),
        Some(&RegisterStatus::NotCovered {
            value: vec![0; 48],
            at_reset: true
        })
    );
    let claims = EventLogClaims::from_log(&log);
    assert_eq!(claims.kernel_cmdlines.len(), 1);
    assert_eq!(
        claims.kernels[0].register, 3,
        "the kernel is measured into RTMR2"
    );
}

#[test]
fn the_locality_case_needs_its_startup_locality() {
    let l = cases()
        .into_iter()
        .find(|l| l.case.id == "tpm-glinux-laptop-locality3")
        .unwrap();
    let log = EventLog::parse(&l.log).unwrap();
    assert_eq!(log.startup_locality(), Some(3));
    let replay = replay_tpm(&log, HashAlg::SHA256).unwrap();
    assert_eq!(replay.startup_locality, Some(3));
    assert!(check(&l, &log).matches());
}

/// The byte offsets of the `alg` digests of extended events, with their registers.
fn digest_offsets(log: &EventLog, alg: HashAlg) -> Vec<(usize, u32)> {
    log.events
        .iter()
        .filter(|e| e.is_extended())
        .map(|e| {
            let d = e.digest(alg).unwrap();
            let at = e.as_bytes().windows(d.len()).position(|w| w == d).unwrap();
            (e.offset + at, e.register)
        })
        .collect()
}

#[test]
fn a_flipped_digest_byte_mismatches_exactly_its_register() {
    for l in cases() {
        let id = &l.case.id;
        let log = EventLog::parse(&l.log).unwrap();
        let bank = alg(&l.case.bank);
        let expected: Vec<Register> = check(&l, &log)
            .checks
            .iter()
            .filter(|c| matches!(c.status, RegisterStatus::Matches { .. }))
            .map(|c| c.register)
            .collect();
        let offsets = digest_offsets(&log, bank);
        for (at, reg) in offsets.iter().step_by(5) {
            let target = if l.case.kind == "ccel" {
                Register::Rtmr(u8::try_from(reg - 1).unwrap())
            } else {
                Register::Pcr(*reg)
            };
            if !expected.contains(&target) {
                continue;
            }
            let mut bytes = l.log.clone();
            bytes[*at] ^= 0x01;
            let tampered = EventLog::parse(&bytes).unwrap();
            let report = check(&l, &tampered);
            let mismatched: Vec<Register> = report.mismatches().map(|c| c.register).collect();
            assert_eq!(mismatched, [target], "{id}: flip at {at}");
            let errors = report.errors();
            assert_eq!(errors[0].code, thimble_verify::Code::EventLogMismatch);
            assert_eq!(errors[0].class, thimble_verify::ErrorClass::Authenticity);
        }
    }
}

#[test]
fn a_cut_log_names_the_event_it_cuts() {
    for l in cases() {
        let log = EventLog::parse(&l.log).unwrap();
        for e in log.events.iter().step_by(3) {
            let cut = e.offset + e.as_bytes().len() / 2;
            match EventLog::parse(&l.log[..cut]) {
                Err(EventLogError::Truncated { event, .. }) => {
                    assert_eq!(event, e.index, "{}: cut at {cut}", l.case.id);
                }
                other => panic!("{}: cut at {cut}: {other:?}", l.case.id),
            }
        }
    }
}

/// Parses, decodes and replays `bytes` as the case's kind; returns how long it took.
fn exercise(kind: &str, bank: HashAlg, bytes: &[u8]) -> Duration {
    let start = Instant::now();
    if let Ok(log) = EventLog::parse(bytes) {
        let claims = EventLogClaims::from_log(&log);
        let _ = serde_json::to_vec(&claims).unwrap();
        let _ = if kind == "ccel" {
            replay_tdx(&log)
        } else {
            replay_tpm(&log, bank)
        };
    }
    start.elapsed()
}

/// Every truncation length and byte flips all along `id`'s log.
fn hostile(id: &str) {
    let bound = Duration::from_secs(2);
    let l = cases().into_iter().find(|l| l.case.id == id).unwrap();
    let bank = alg(&l.case.bank);
    let end = EventLog::parse(&l.log).unwrap().trimmed_bytes().len();
    let mut slowest = Duration::ZERO;
    // Every length through the events and a little padding; then every 4 KiB of padding.
    let lengths = (0..=(end + 512).min(l.log.len())).chain((end + 512..=l.log.len()).step_by(4096));
    for len in lengths {
        slowest = slowest.max(exercise(&l.case.kind, bank, &l.log[..len]));
    }
    // Byte flips all along the events, and a few in the padding.
    let mut bytes = l.log.clone();
    let positions = (0..end).step_by(31).chain((end..l.log.len()).step_by(8191));
    for at in positions {
        for mask in [0xFF, 0x80] {
            bytes[at] ^= mask;
            slowest = slowest.max(exercise(&l.case.kind, bank, &bytes));
            bytes[at] ^= mask;
        }
    }
    assert!(slowest < bound, "{id}: one run took {slowest:?}");
}

/// One hostile-input test per case, so that they run in parallel.
macro_rules! hostile_tests {
    ($($name:ident = $id:literal;)*) => {
        $(
            #[test]
            fn $name() {
                hostile($id);
            }
        )*

        #[test]
        fn every_case_has_a_hostile_input_test() {
            let ids: Vec<String> = cases().into_iter().map(|l| l.case.id).collect();
            assert_eq!(ids, [$($id),*]);
        }
    };
}

hostile_tests! {
    hostile_tdx_gcp_cos113 = "tdx-gcp-cos113";
    hostile_tdx_gcp_cos113_dupe_separator = "tdx-gcp-cos113-dupe-separator";
    hostile_tpm_gce_cos101_amd_sev = "tpm-gce-cos101-amd-sev";
    hostile_tpm_gce_rhel8 = "tpm-gce-rhel8";
    hostile_tpm_gce_ubuntu1804_amd_sev = "tpm-gce-ubuntu1804-amd-sev";
    hostile_tpm_gce_ubuntu2104_no_secure_boot = "tpm-gce-ubuntu2104-no-secure-boot";
    hostile_tpm_glinux_laptop_locality3 = "tpm-glinux-laptop-locality3";
}
