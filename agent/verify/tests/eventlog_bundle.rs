// SPDX-License-Identifier: Apache-2.0
//! A bundle's event logs as `verify` judges them ([`check_bundle_logs`], [`check_policy`]) with
//! the real CCEL log and TDX quote of one Google Cloud TD (tests/vectors/eventlog/tdx-gcp-cos113):
//! a log that replays gives claims, a tampered one the mismatch code and no claims, a log with
//! nothing signed to compare with is reported and vouches for nothing, a garbled one is
//! malformed, and each measured-boot policy rule passes on what the log measured and fails,
//! with its own code, on anything else.

#![expect(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    reason = "a test reads its vector files and panics on setup failure"
)]

use std::path::Path;

use thimble_evidence::bundle::{EventLogEvidence, EventLogKind};
use thimble_evidence::eventlog::EventLog;
use thimble_evidence::tdx::TdxQuote;
use thimble_verify::eventlog::{
    EventLogPolicy, LogOutcome, LogStatus, SignedRegisters, check_bundle_logs, check_policy,
};
use thimble_verify::outcome::Code;

fn vector(name: &str) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/eventlog");
    std::fs::read(dir.join(name)).unwrap()
}

/// The TD's log as a collector stores it: trimmed after its last event.
fn ccel() -> EventLogEvidence {
    let raw = vector("tdx-gcp-cos113/ccel_data.bin");
    let data = EventLog::parse(&raw).unwrap().trimmed_bytes().to_vec();
    EventLogEvidence {
        kind: EventLogKind::Ccel,
        source: "/sys/firmware/acpi/tables/data/CCEL".into(),
        data,
    }
}

fn signed() -> SignedRegisters {
    let quote = TdxQuote::parse(&vector("tdx-gcp-cos113/quote.bin")).unwrap();
    SignedRegisters {
        rtmrs: Some(quote.body.rtmr),
        tpm_quote: None,
    }
}

fn codes(errors: &[thimble_verify::outcome::VerifyError]) -> Vec<Code> {
    errors.iter().map(|e| e.code).collect()
}

fn replayed() -> Vec<LogOutcome> {
    let (logs, errors) = check_bundle_logs(&[ccel()], &signed());
    assert!(errors.is_empty(), "{errors:?}");
    logs
}

#[test]
fn a_log_that_replays_gives_its_claims() {
    let logs = replayed();
    assert_eq!(logs[0].status, LogStatus::Replayed);
    let claims = logs[0].claims.as_ref().unwrap();
    assert_eq!(claims.secure_boot, Some(false));
    assert_eq!(claims.boot_applications.len(), 2);
    assert_eq!(claims.kernel_cmdlines.len(), 1);
    // The JSON result names the kind, the status and each register.
    let json = serde_json::to_value(&logs).unwrap();
    assert_eq!(json[0]["kind"], "ccel");
    assert_eq!(json[0]["status"], "replayed");
    let checks = json[0]["replay"]["checks"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .any(|c| c["register"] == "RTMR2" && c["status"] == "matches")
    );
    assert!(
        checks
            .iter()
            .any(|c| c["register"] == "RTMR3" && c["status"] == "not-covered")
    );
}

#[test]
fn a_tampered_log_mismatches_and_gives_no_claims() {
    let mut log = ccel();
    let parsed = EventLog::parse(&log.data).unwrap();
    // The last event's first digest byte: the kernel command line's register changes.
    let last = parsed.events.last().unwrap();
    let at = last.offset + 4 + 4 + 4 + 2;
    log.data[at] ^= 1;
    let (logs, errors) = check_bundle_logs(&[log], &signed());
    assert_eq!(logs[0].status, LogStatus::Mismatch);
    assert!(logs[0].claims.is_none());
    assert_eq!(codes(&errors), [Code::EventLogMismatch]);
    assert!(errors[0].message.contains("RTMR"), "{}", errors[0].message);
}

#[test]
fn a_log_for_other_registers_mismatches() {
    // The same log against another TD's registers: every register it extends differs.
    let mut other = signed();
    if let Some(r) = other.rtmrs.as_mut() {
        r[0][0] ^= 0xFF;
    }
    let (logs, errors) = check_bundle_logs(&[ccel()], &other);
    assert_eq!(logs[0].status, LogStatus::Mismatch);
    assert_eq!(codes(&errors), [Code::EventLogMismatch]);
}

#[test]
fn a_log_with_nothing_signed_to_compare_with_vouches_for_nothing() {
    let tcg2 = EventLogEvidence {
        kind: EventLogKind::Tcg2,
        source: "/sys/kernel/security/tpm0/binary_bios_measurements".into(),
        data: vector("tpm-gce-rhel8/event_log.bin"),
    };
    let ima = EventLogEvidence {
        kind: EventLogKind::Ima,
        source: "/sys/kernel/security/ima/binary_runtime_measurements".into(),
        data: vec![1, 2, 3],
    };
    let unknown = EventLogEvidence {
        kind: EventLogKind::from("future"),
        source: "x".into(),
        data: vec![],
    };
    // A TD's log in evidence without a TDX quote, a TPM log without a TPM quote.
    let (logs, errors) =
        check_bundle_logs(&[ccel(), tcg2, ima, unknown], &SignedRegisters::default());
    assert!(errors.is_empty(), "{errors:?}");
    for l in &logs {
        assert_eq!(l.status, LogStatus::NotReplayed, "{l:?}");
        assert!(l.claims.is_none() && l.reason.is_some(), "{l:?}");
    }
    // And a policy that needs a log says why none counts.
    let policy = EventLogPolicy {
        require: true,
        ..EventLogPolicy::default()
    };
    let errors = check_policy(&policy, &logs);
    assert_eq!(codes(&errors), [Code::PolicyEventLog]);
    assert!(
        errors[0].message.contains("no verified TDX quote"),
        "{}",
        errors[0].message
    );
}

#[test]
fn a_garbled_log_is_malformed() {
    let mut log = ccel();
    log.data.truncate(log.data.len() - 7);
    let (logs, errors) = check_bundle_logs(&[log], &signed());
    assert_eq!(logs[0].status, LogStatus::Malformed);
    assert_eq!(codes(&errors), [Code::MalformedEventLog]);
    assert!(errors[0].message.contains("ccel"), "{}", errors[0].message);
}

#[test]
fn no_policy_no_errors_and_no_log_fails_only_a_policy_that_needs_one() {
    assert!(check_policy(&EventLogPolicy::default(), &[]).is_empty());
    let policy = EventLogPolicy {
        secure_boot: Some(true),
        ..EventLogPolicy::default()
    };
    let errors = check_policy(&policy, &[]);
    assert_eq!(codes(&errors), [Code::PolicyEventLog]);
    assert!(errors[0].message.contains("carries no event log"));
}

#[test]
fn secure_boot_is_judged_on_what_the_log_measured() {
    let logs = replayed();
    let want = |on: bool| EventLogPolicy {
        secure_boot: Some(on),
        ..EventLogPolicy::default()
    };
    // This TD measured SecureBoot = 0.
    assert!(check_policy(&want(false), &logs).is_empty());
    let errors = check_policy(&want(true), &logs);
    assert_eq!(codes(&errors), [Code::PolicySecureBoot]);
    assert!(
        errors[0].message.contains("it is off"),
        "{}",
        errors[0].message
    );
}

#[test]
fn the_kernel_command_line_matches_whole_or_without_the_kernel_path() {
    let logs = replayed();
    let measured = logs[0].claims.as_ref().unwrap().kernel_cmdlines[0]
        .text
        .clone();
    let (_, args) = measured.split_once(' ').unwrap();
    for good in [measured.as_str(), args] {
        let policy = EventLogPolicy {
            kernel_cmdline: Some(good.to_string()),
            ..EventLogPolicy::default()
        };
        assert!(check_policy(&policy, &logs).is_empty(), "{good}");
    }
    for bad in [
        format!("{args} init=/bin/sh"),
        args[1..].to_string(),
        String::new(),
    ] {
        let policy = EventLogPolicy {
            kernel_cmdline: Some(bad.clone()),
            ..EventLogPolicy::default()
        };
        let errors = check_policy(&policy, &logs);
        assert_eq!(codes(&errors), [Code::PolicyKernelCmdline], "{bad}");
        // The message quotes what was measured.
        assert!(
            errors[0].message.contains("/syslinux/vmlinuz.A init="),
            "{}",
            errors[0].message
        );
    }
}

#[test]
fn boot_digests_must_each_be_measured() {
    let logs = replayed();
    let claims = logs[0].claims.as_ref().unwrap();
    let grub = hex::decode(&claims.boot_applications[1].digests["sha384"]).unwrap();
    let policy = |digests: Vec<Vec<u8>>| EventLogPolicy {
        boot_digests: digests,
        ..EventLogPolicy::default()
    };
    assert!(check_policy(&policy(vec![grub.clone()]), &logs).is_empty());
    let errors = check_policy(&policy(vec![grub, vec![0xAB; 48], vec![0xCD; 32]]), &logs);
    assert_eq!(
        codes(&errors),
        [Code::PolicyBootDigest, Code::PolicyBootDigest]
    );
    assert!(errors[0].message.contains(&"ab".repeat(48)));
}

#[test]
fn claims_can_be_limited_to_the_registers_that_matched() {
    // The filter the verifier applies: with only RTMR0 (CC MR index 1) kept, nothing of RTMR1
    // (the boot applications) or RTMR2 (GRUB's command line) is claimed; the event count is
    // still the log's.
    let log = EventLog::parse(&ccel().data).unwrap();
    let only_rtmr0 = thimble_evidence::eventlog::EventLogClaims::from_log_where(&log, |r| r == 1);
    let all = thimble_evidence::eventlog::EventLogClaims::from_log(&log);
    assert!(!all.kernel_cmdlines.is_empty() && !all.boot_applications.is_empty());
    assert!(only_rtmr0.kernel_cmdlines.is_empty() && only_rtmr0.boot_applications.is_empty());
    assert!(
        only_rtmr0
            .secure_boot_variables
            .iter()
            .all(|v| v.register == 1)
    );
    assert!(!only_rtmr0.secure_boot_variables.is_empty());
    assert_eq!(only_rtmr0.events, all.events);
}
