// SPDX-License-Identifier: Apache-2.0
//! The simulated guests' measured-boot logs through a whole collection: a simulated TD carries
//! its CCEL log and each Azure CVM its vTPM's TCG2 log, each of which replays, register by
//! register, to the quote collected beside it and says Secure Boot on and GRUB's kernel command
//! line; an SEV-SNP guest has no log and the bundle says so. Also what `read_log_file` answers
//! for files a machine does not have, and its size limit. Everything runs on loopback.

#![expect(clippy::unwrap_used, reason = "test assertions")]

#[expect(dead_code, reason = "the example's main runs as a program, not here")]
#[path = "../examples/collect_and_verify.rs"]
mod example;

use std::path::Path;

use thimble_collect::env::{Environment, LogFile};
use thimble_evidence::bundle::{Bundle, EventLogKind, Evidence};
use thimble_evidence::eventlog::{EventLog, EventLogClaims};
use thimble_evidence::tdx::TdxQuote;
use thimble_sim::boot_log::{SIM_KERNEL_CMDLINE, td_boot, vtpm_boot};
use thimble_sim::{SimEnvironment, SimMachine};
use thimble_verify::Verdict;
use thimble_verify::eventlog::{RegisterStatus, ReplayReport, check_tdx_quote, check_tpm_quote};

/// Collects from `machine` and checks the bundle verifies.
fn collect(machine: SimMachine) -> Bundle {
    let (bundle, outcome) = example::collect_and_verify(machine, b"boot log nonce").unwrap();
    assert_eq!(
        outcome.verdict,
        Verdict::Valid,
        "{machine:?}: {:?}",
        outcome.errors
    );
    bundle
}

/// Every register the log extends matches the evidence, none mismatches, and a register the log
/// does not extend holds its initial value or is one the log was never meant to cover.
fn assert_replays(report: &ReplayReport, at_least: usize) {
    let matched = report
        .checks
        .iter()
        .filter(|c| matches!(c.status, RegisterStatus::Matches { .. }))
        .count();
    assert!(matched >= at_least, "{report:?}");
    assert!(report.matches(), "{report:?}");
    for c in &report.checks {
        assert!(
            matches!(
                c.status,
                RegisterStatus::Matches { .. } | RegisterStatus::NotCovered { .. }
            ),
            "{}: {:?}",
            c.register,
            c.status
        );
    }
}

fn assert_claims(log: &EventLog) {
    let claims = EventLogClaims::from_log(log);
    assert_eq!(claims.secure_boot, Some(true));
    assert_eq!(claims.kernel_cmdlines.len(), 1);
    assert_eq!(claims.kernel_cmdlines[0].text, SIM_KERNEL_CMDLINE);
    assert_eq!(claims.kernel_cmdlines[0].data_verified, Some(true));
    assert_eq!(claims.boot_applications.len(), 2);
}

#[test]
fn a_simulated_td_carries_a_ccel_log_that_replays_to_its_quote() {
    let bundle = collect(SimMachine::Tdx);
    assert_eq!(bundle.event_logs.len(), 1, "{:?}", bundle.collection.log);
    let ccel = &bundle.event_logs[0];
    assert_eq!(ccel.kind, EventLogKind::Ccel);
    assert_eq!(ccel.source, "simulated:/sys/firmware/acpi/tables/data/CCEL");
    // Trimmed after its last event: the 64 KiB area's 0xFF padding stays behind.
    let area = EventLog::parse(&td_boot().log_area).unwrap();
    assert_eq!(ccel.data, area.trimmed_bytes());

    let Evidence::Tdx(tdx) = &bundle.evidence else {
        panic!("{:?}", bundle.tee());
    };
    let quote = TdxQuote::parse(&tdx.quote).unwrap();
    let log = EventLog::parse(&ccel.data).unwrap();
    let report = check_tdx_quote(&log, &quote).unwrap();
    // RTMR0 to RTMR2 match; RTMR3, which nothing in the boot extends, is zero.
    assert_replays(&report, 3);
    assert!(
        report
            .checks
            .iter()
            .any(|c| matches!(c.status, RegisterStatus::NotCovered { at_reset: true, .. }))
    );
    assert_claims(&log);
    // A TD without a TPM: the TCG2 log's absence is noted, not fatal.
    assert!(
        bundle.collection.log.iter().any(|n| n.contains("TPM log")),
        "{:?}",
        bundle.collection.log
    );
}

#[test]
fn simulated_azure_cvms_carry_a_tpm_log_that_replays_to_the_vtpm_quote() {
    for machine in [SimMachine::AzureSnp, SimMachine::AzureTdx] {
        let bundle = collect(machine);
        // An Azure TD's RTMRs are the paravisor's: only the vTPM's log is carried.
        assert_eq!(
            bundle.event_logs.len(),
            1,
            "{machine:?}: {:?}",
            bundle.collection.log
        );
        let tcg2 = &bundle.event_logs[0];
        assert_eq!(tcg2.kind, EventLogKind::Tcg2);
        assert_eq!(
            tcg2.source,
            "simulated:/sys/kernel/security/tpm0/binary_bios_measurements"
        );
        assert_eq!(tcg2.data, vtpm_boot().log);
        let quote = match &bundle.evidence {
            Evidence::AzureSevSnp(e) => e.tpm_quote.as_ref(),
            Evidence::AzureTdx(e) => e.tpm_quote.as_ref(),
            _ => None,
        };
        let quote = &quote.unwrap().quote;
        let log = EventLog::parse(&tcg2.data).unwrap();
        let report = check_tpm_quote(&log, quote).unwrap();
        // PCRs 0 to 9 and 14 match; the others are not in the firmware's log.
        assert_replays(&report, 11);
        assert_claims(&log);
    }
}

#[test]
fn a_simulated_snp_guest_has_no_log_and_the_bundle_says_so() {
    let bundle = collect(SimMachine::SnpDevice);
    assert!(bundle.event_logs.is_empty());
    assert!(
        bundle
            .collection
            .log
            .iter()
            .any(|n| n.contains("TPM log") && n.contains("binary_bios_measurements")),
        "{:?}",
        bundle.collection.log
    );
}

#[test]
fn read_log_file_answers_only_for_the_files_a_machine_has_and_within_the_limit() {
    let any = Path::new("/anywhere");
    let big = usize::MAX;
    let td = SimEnvironment::new(SimMachine::Tdx);
    let (table, path) = td
        .read_log_file(LogFile::CcelTable, any, 56)
        .unwrap()
        .unwrap();
    assert_eq!(table, td_boot().ccel_table);
    assert_eq!(path, "simulated:/sys/firmware/acpi/tables/CCEL");
    let err = td.read_log_file(LogFile::CcelData, any, 100).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge);
    assert!(td.read_log_file(LogFile::Tcg2, any, big).unwrap().is_none());
    assert!(td.read_log_file(LogFile::Ima, any, big).unwrap().is_none());

    let azure = SimEnvironment::new(SimMachine::AzureTdx);
    assert!(
        azure
            .read_log_file(LogFile::CcelData, any, big)
            .unwrap()
            .is_none()
    );
    assert!(
        azure
            .read_log_file(LogFile::Tcg2, any, big)
            .unwrap()
            .is_some()
    );

    for machine in [SimMachine::SnpDevice, SimMachine::SnpConfigfs] {
        let snp = SimEnvironment::new(machine);
        for which in [
            LogFile::CcelTable,
            LogFile::CcelData,
            LogFile::Tcg2,
            LogFile::Ima,
        ] {
            assert!(snp.read_log_file(which, any, big).unwrap().is_none());
        }
    }
}
