// SPDX-License-Identifier: Apache-2.0
//! Reading measured-boot event logs (`thimble_collect::eventlog::gather`) through the real
//! environment, from files laid out as sysfs lays them out in a temporary directory: a TD's CCEL
//! table and log area (the real ones of a Google Cloud TD, tests/vectors/eventlog), a TPM log,
//! the IMA log. A log is trimmed, bounded and parsed before it is carried; one that is absent,
//! too large or garbled is noted and left out, never an error.

#![expect(
    clippy::unwrap_used,
    reason = "a test writes its files and panics on setup failure"
)]

use std::path::{Path, PathBuf};

use thimble_collect::eventlog::{MAX_IMA_LOG_LEN, gather};
use thimble_collect::{EventLogs, SystemEnvironment};
use thimble_evidence::bundle::{EventLogKind, Tee};
use thimble_evidence::eventlog::EventLog;

fn vector(name: &str) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/eventlog");
    std::fs::read(dir.join(name)).unwrap()
}

/// A sysfs-like tree under `dir` and the request pointing at it (no file written yet).
fn layout(dir: &Path) -> EventLogs {
    std::fs::create_dir_all(dir.join("acpi/data")).unwrap();
    std::fs::create_dir_all(dir.join("security/ima")).unwrap();
    EventLogs {
        firmware: true,
        ima: false,
        ccel_table: dir.join("acpi/CCEL"),
        ccel_data: dir.join("acpi/data/CCEL"),
        tcg2: dir.join("security/binary_bios_measurements"),
        ima_log: dir.join("security/ima/binary_runtime_measurements"),
    }
}

fn write(path: &PathBuf, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_td_carries_its_ccel_log_trimmed_and_notes_the_missing_tpm_log() {
    let dir = tempfile::tempdir().unwrap();
    let req = layout(dir.path());
    write(&req.ccel_table, &vector("tdx-gcp-cos113/ccel.bin"));
    let area = vector("tdx-gcp-cos113/ccel_data.bin");
    write(&req.ccel_data, &area);
    let got = gather(&SystemEnvironment::new(), &req, Tee::Tdx);
    assert_eq!(got.logs.len(), 1, "{:?}", got.notes);
    let log = &got.logs[0];
    assert_eq!(log.kind, EventLogKind::Ccel);
    assert_eq!(log.source, req.ccel_data.display().to_string());
    let trimmed = EventLog::parse(&area).unwrap().trimmed_bytes().to_vec();
    assert!(trimmed.len() < area.len());
    assert_eq!(log.data, trimmed);
    assert_eq!(got.notes.len(), 1, "{:?}", got.notes);
    assert!(got.notes[0].contains("no TPM log at"), "{:?}", got.notes);
    assert!(got.notes[0].contains("binary_bios_measurements"));
}

#[test]
fn the_ccel_table_bounds_the_read_of_the_log_area() {
    let dir = tempfile::tempdir().unwrap();
    let req = layout(dir.path());
    let table = vector("tdx-gcp-cos113/ccel.bin");
    write(&req.ccel_table, &table);
    // One byte more than the table's LAML.
    let laml = u64::from_le_bytes(table[0x28..0x30].try_into().unwrap());
    let mut area = vector("tdx-gcp-cos113/ccel_data.bin");
    area.resize(usize::try_from(laml).unwrap() + 1, 0xFF);
    write(&req.ccel_data, &area);
    let got = gather(&SystemEnvironment::new(), &req, Tee::Tdx);
    assert!(got.logs.is_empty());
    assert!(
        got.notes
            .iter()
            .any(|n| n.contains("CCEL log") && n.contains(&format!("over {laml} bytes"))),
        "{:?}",
        got.notes
    );
}

#[test]
fn a_tpm_log_is_carried_as_read_and_a_garbled_one_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let req = layout(dir.path());
    let tpm = vector("tpm-gce-rhel8/event_log.bin");
    write(&req.tcg2, &tpm);
    // A CCEL log is present but an SEV-SNP guest does not read it.
    write(&req.ccel_data, &vector("tdx-gcp-cos113/ccel_data.bin"));
    let got = gather(&SystemEnvironment::new(), &req, Tee::SevSnp);
    assert_eq!(got.logs.len(), 1);
    assert_eq!(got.logs[0].kind, EventLogKind::Tcg2);
    assert_eq!(got.logs[0].data, tpm);
    assert!(got.notes.is_empty(), "{:?}", got.notes);

    write(&req.tcg2, &tpm[..tpm.len() - 3]);
    let got = gather(&SystemEnvironment::new(), &req, Tee::AzureSevSnp);
    assert!(got.logs.is_empty());
    assert!(got.notes[0].contains("is not carried"), "{:?}", got.notes);
}

#[test]
fn the_ima_log_only_when_asked_and_within_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut req = layout(dir.path());
    write(&req.ima_log, b"ima entries");
    let env = SystemEnvironment::new();
    // Off by default; with firmware logs off too, nothing is read and nothing noted.
    req.firmware = false;
    let got = gather(&env, &req, Tee::Tdx);
    assert!(got.logs.is_empty() && got.notes.is_empty());
    req.ima = true;
    let got = gather(&env, &req, Tee::Tdx);
    assert_eq!(got.logs[0].kind, EventLogKind::Ima);
    assert_eq!(got.logs[0].data, b"ima entries");
    write(&req.ima_log, &vec![0; MAX_IMA_LOG_LEN + 1]);
    let got = gather(&env, &req, Tee::Tdx);
    assert!(got.logs.is_empty());
    assert!(got.notes[0].contains("IMA log"), "{:?}", got.notes);
}
