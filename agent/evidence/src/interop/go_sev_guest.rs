// SPDX-License-Identifier: Apache-2.0
//! go-sev-guest's extended report: the binary file google/go-sev-guest's `attest -outform bin
//! -extended` writes and its `check -inform bin` reads, that is the 1184-byte ATTESTATION_REPORT
//! immediately followed by the certificate table the host attached (GHCB spec 4.1.8.1: 24-byte
//! entries `GUID ‖ offset u32 ‖ length u32`, offsets from the start of the table, an all-zero
//! entry last, then the DER certificates). Without `-extended` the file is the report alone,
//! which this module reads too. Layout as in go-sev-guest `tools/lib/report/report.go` and
//! `abi/abi.go` (`CertTable`, which uses the ASK's GUID for an ASVK as well).
//!
//! The table is thimble's [`CertTable`], parsed and built by its one definition in
//! `snp/cert_table.rs`; this module only decides what goes in it. Exporting writes the bundle's
//! `auxblob` as it is when it holds the VCEK or VLEK the bundle's endorsements hold (the host's
//! table was the one that verified at collection) or when the endorsements hold none; otherwise
//! it builds a table from the endorsements: the VCEK or VLEK the report's SIGNING_KEY names, the
//! ASK or ASVK, and the ARK. An azure-sev-snp bundle gives the report inside its HCL report and
//! a table built from its endorsements. The tsm-report JSON uses the same table as its
//! `auxblob` ([`super::tsm_report`]). Pure: bytes in and out.

use crate::bundle::{Bundle, Evidence, SevSnpEvidence};
use crate::snp::cert::AmdRole;
use crate::snp::report::SNP_REPORT_LEN;
use crate::snp::{CertKind, CertTable, SnpReport};

use super::snpguest::SnpParts;
use super::{ExportError, Exported, Format, ImportError, Imported, NamedBytes};

/// The largest certificate table read or written as it is. The kernel gives the host 16 KiB for
/// it (`SEV_FW_BLOB_MAX_SIZE`); three AMD certificates take under 5 KiB.
pub const MAX_AUXBLOB_LEN: usize = 64 << 10;

/// Writes `bundle` as the extended report: the report, then the certificate table.
pub fn export(bundle: &Bundle) -> Result<Exported, ExportError> {
    const FORMAT: Format = Format::GoSevGuest;
    let parts = SnpParts::from_bundle(bundle, FORMAT)?;
    let table = auxblob(&parts, FORMAT)?;
    let mut out = parts.report;
    out.extend_from_slice(&table);
    Ok(Exported::File(out))
}

/// Reads an extended report (or a report alone). The report must parse; the bytes after it are
/// the certificate table, parsed with thimble's bounded parser and kept as the evidence's
/// `auxblob` (what the host attached), its AMD certificates and CRL also returned as
/// `certificate_table[i]`.
pub fn import(bytes: &[u8]) -> Result<Imported, ImportError> {
    const FORMAT: Format = Format::GoSevGuest;
    let error = |reason: String| ImportError {
        format: FORMAT,
        reason,
    };
    if bytes.len() < SNP_REPORT_LEN {
        return Err(error(format!(
            "the file is {} bytes, shorter than the {SNP_REPORT_LEN}-byte report",
            bytes.len()
        )));
    }
    if bytes.len() > SNP_REPORT_LEN + MAX_AUXBLOB_LEN {
        return Err(error(format!(
            "the file is {} bytes, more than a report and a {MAX_AUXBLOB_LEN}-byte certificate \
             table",
            bytes.len()
        )));
    }
    let (report, table) = bytes.split_at(SNP_REPORT_LEN);
    SnpReport::parse(report).map_err(|e| error(format!("report: {e}")))?;
    let (auxblob, endorsements) = if table.is_empty() {
        (None, Vec::new())
    } else {
        let certs = table_endorsements(table, "certificate_table", FORMAT)?;
        (Some(table.to_vec()), certs)
    };
    Ok(Imported {
        evidence: Evidence::SevSnp(SevSnpEvidence {
            report: report.to_vec(),
            auxblob,
        }),
        endorsements,
        event_logs: Vec::new(),
    })
}

/// The certificate table for `parts`: the bundle's `auxblob` as it is, or one built from the
/// endorsements (see the module documentation).
pub(super) fn auxblob(parts: &SnpParts, format: Format) -> Result<Vec<u8>, ExportError> {
    if let Some(aux) = parts
        .auxblob
        .as_ref()
        .filter(|a| a.len() <= MAX_AUXBLOB_LEN)
    {
        if let Ok(table) = CertTable::parse(aux) {
            let host_vek = table
                .entries
                .iter()
                .find(|e| matches!(e.kind, CertKind::Vcek | CertKind::Vlek) && !e.data.is_empty());
            match (host_vek, &parts.vek) {
                (Some(host), Some(ours)) if host.data == ours.der => return Ok(aux.clone()),
                (Some(_), None) => return Ok(aux.clone()),
                _ => {}
            }
        }
    }
    let Some(vek) = &parts.vek else {
        return Err(parts.missing_vek(format));
    };
    let vek_kind = if vek.role == AmdRole::Vlek {
        CertKind::Vlek
    } else {
        CertKind::Vcek
    };
    let mut items: Vec<(CertKind, &[u8])> = vec![(vek_kind, &vek.der)];
    // go-sev-guest and the kernel file an ASVK under the ASK's GUID.
    if let Some(signer) = &parts.signer {
        items.push((CertKind::Ask, &signer.der));
    }
    if let Some(ark) = &parts.ark {
        items.push((CertKind::Ark, &ark.der));
    }
    Ok(CertTable::build(&items))
}

/// Parses a certificate table and returns its AMD certificates and CRLs (entries of a GUID
/// thimble knows, not empty) named `{member}[i]`, `i` the entry's index in the table.
pub(super) fn table_endorsements(
    table: &[u8],
    member: &str,
    format: Format,
) -> Result<Vec<NamedBytes>, ImportError> {
    let parsed = CertTable::parse(table).map_err(|e| ImportError {
        format,
        reason: format!("{member}: {e}"),
    })?;
    Ok(parsed
        .entries
        .into_iter()
        .enumerate()
        .filter(|(_, e)| e.kind != CertKind::Unknown && !e.data.is_empty())
        .map(|(i, e)| NamedBytes {
            name: format!("{member}[{i}]"),
            bytes: e.data,
        })
        .collect())
}
