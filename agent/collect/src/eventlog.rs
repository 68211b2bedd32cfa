// SPDX-License-Identifier: Apache-2.0
//! Reading the guest's measured-boot event logs into the bundle: a TD's CCEL log (the log area
//! the ACPI CCEL table names, trimmed after its last event), a TPM's TCG2 log, and on request
//! the IMA log. Facts: docs/formats.md §8.
//!
//! A log is evidence a verifier replays against signed registers, never something a collection
//! depends on: a log the guest does not have, cannot be read, is over its size limit or does not
//! parse is noted in `collection.log` and left out. A firmware log is parsed before it is kept,
//! so that a bundle never carries a log its own `verify` would call malformed; the IMA log is a
//! different format, carried as read.

use thimble_evidence::bundle::{EventLogEvidence, EventLogKind, Tee};
use thimble_evidence::eventlog::log::DEFAULT_MAX_LOG_LEN;
use thimble_evidence::eventlog::{CcType, CcelTable, EventLog, ccel::CCEL_TABLE_LEN};

use crate::env::{Environment, LogFile};
use crate::request::EventLogs;

/// The largest IMA log carried: it grows with every file the kernel measures, and the bundle as
/// a whole must stay under the verifier's default size limit (8 MiB).
pub const MAX_IMA_LOG_LEN: usize = 4 << 20;

/// The logs of a collection of `tee`, and what was noted about the ones left out.
#[derive(Debug, Default)]
pub struct Gathered {
    /// The logs read, in the order CCEL, TCG2, IMA.
    pub logs: Vec<EventLogEvidence>,
    /// One line per log not carried, and why.
    pub notes: Vec<String>,
}

/// Reads the logs `request` asks for that a guest of `tee` can have: the CCEL log for a TD
/// (an Azure TD's RTMRs are the paravisor's, so its guest has no CCEL to replay), the TCG2 log
/// for every TEE (a guest with a TPM has one; Azure's vTPM always does).
pub fn gather<E: Environment>(env: &E, request: &EventLogs, tee: Tee) -> Gathered {
    let mut out = Gathered::default();
    if request.firmware {
        if tee == Tee::Tdx {
            ccel(env, request, &mut out);
        }
        tcg2(env, request, &mut out);
    }
    if request.ima {
        ima(env, request, &mut out);
    }
    out
}

fn ccel<E: Environment>(env: &E, request: &EventLogs, out: &mut Gathered) {
    // The table bounds the read: the log area is LAML bytes. Without it (or when it does not
    // parse) the data file is still the log area, bounded by the parser's limit.
    let mut max_len = DEFAULT_MAX_LOG_LEN;
    match env.read_log_file(LogFile::CcelTable, &request.ccel_table, CCEL_TABLE_LEN) {
        Ok(Some((bytes, path))) => match CcelTable::parse(&bytes) {
            Ok(table) if table.cc_type == CcType::TDX => {
                max_len = usize::try_from(table.laml)
                    .unwrap_or(usize::MAX)
                    .min(DEFAULT_MAX_LOG_LEN);
            }
            Ok(table) => out.notes.push(format!(
                "event log: the CCEL table at {path} is of CC type {}, not TDX",
                table.cc_type.0
            )),
            Err(e) => out
                .notes
                .push(format!("event log: the CCEL table at {path}: {e}")),
        },
        Ok(None) => {}
        Err(e) => out.notes.push(format!(
            "event log: cannot read the CCEL table {}: {e}",
            request.ccel_table.display()
        )),
    }
    let read = env.read_log_file(LogFile::CcelData, &request.ccel_data, max_len);
    let Some((data, path)) = found(read, "CCEL log", &request.ccel_data, max_len, out) else {
        return;
    };
    match EventLog::parse(&data) {
        Ok(log) => out.logs.push(EventLogEvidence {
            kind: EventLogKind::Ccel,
            source: path,
            data: log.trimmed_bytes().to_vec(),
        }),
        Err(e) => out.notes.push(format!(
            "event log: the CCEL log at {path} is not carried: {e}"
        )),
    }
}

fn tcg2<E: Environment>(env: &E, request: &EventLogs, out: &mut Gathered) {
    let read = env.read_log_file(LogFile::Tcg2, &request.tcg2, DEFAULT_MAX_LOG_LEN);
    let Some((data, path)) = found(read, "TPM log", &request.tcg2, DEFAULT_MAX_LOG_LEN, out) else {
        return;
    };
    match EventLog::parse(&data) {
        // Kept exactly as read: the kernel exposes the log without padding.
        Ok(_) => out.logs.push(EventLogEvidence {
            kind: EventLogKind::Tcg2,
            source: path,
            data,
        }),
        Err(e) => out.notes.push(format!(
            "event log: the TPM log at {path} is not carried: {e}"
        )),
    }
}

fn ima<E: Environment>(env: &E, request: &EventLogs, out: &mut Gathered) {
    let read = env.read_log_file(LogFile::Ima, &request.ima_log, MAX_IMA_LOG_LEN);
    if let Some((data, path)) = found(read, "IMA log", &request.ima_log, MAX_IMA_LOG_LEN, out) {
        out.logs.push(EventLogEvidence {
            kind: EventLogKind::Ima,
            source: path,
            data,
        });
    }
}

/// The file's bytes, or a note on why there are none.
fn found(
    read: Result<Option<(Vec<u8>, String)>, std::io::Error>,
    what: &str,
    path: &std::path::Path,
    max_len: usize,
    out: &mut Gathered,
) -> Option<(Vec<u8>, String)> {
    match read {
        Ok(Some(found)) => Some(found),
        Ok(None) => {
            out.notes
                .push(format!("event log: no {what} at {}", path.display()));
            None
        }
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
            out.notes.push(format!(
                "event log: the {what} at {} is over {max_len} bytes and is not carried",
                path.display()
            ));
            None
        }
        Err(e) => {
            out.notes.push(format!(
                "event log: cannot read the {what} at {}: {e}",
                path.display()
            ));
            None
        }
    }
}
