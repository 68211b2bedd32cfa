// SPDX-License-Identifier: Apache-2.0
//! `thimble import`: builds a bundle from evidence captured elsewhere (an SEV-SNP report or a TDX
//! quote) and the files that endorse it. Files are recognised by content; anything unrecognised,
//! or of the other TEE's kind, is an error that names the file. The evidence is parsed (so a
//! damaged file is caught here) but not verified: that is `verify`'s job.

use std::path::Path;

use thimble_collect::bundle::{BundleBuilder, azure_claims, snp_claims, tdx_claims};
use thimble_collect::endorse::role_kind;
use thimble_evidence::azure::{HclReport, HclReportType, TpmQuote};
use thimble_evidence::bundle::Evidence;
use thimble_evidence::bundle::{
    AzureSevSnpEvidence, AzureTdxEvidence, Collection, CollectionSource, Endorsement,
    EndorsementKind, EventLogEvidence, EventLogKind, Nonce, Origin, OriginKind, SevSnpEvidence,
    TdxEvidence, Tee, TpmQuoteEvidence,
};
use thimble_evidence::cert_file::FileContent;
use thimble_evidence::eventlog::EventLog;
use thimble_evidence::eventlog::log::DEFAULT_MAX_LOG_LEN;
use thimble_evidence::interop::{self, Format};
use thimble_evidence::report_data::Derivation;
use thimble_evidence::snp::{AmdCert, SnpReport};
use thimble_evidence::tdx::quote::TdxQuote;

use crate::args::ImportArgs;
use crate::common;
use crate::error::CliError;
use crate::io::{parse_hex, read_input_at_most, write_output};

fn nonce(a: &ImportArgs) -> Result<Option<Nonce>, CliError> {
    Ok(match (&a.nonce, &a.report_data) {
        (Some(n), _) => Some(Nonce {
            value: hex::encode(parse_hex("--nonce", n)?),
            generated: false,
            report_data_derivation: Derivation::Sha512,
        }),
        (None, Some(rd)) => {
            let v = parse_hex("--report-data", rd)?;
            if v.len() != 64 {
                return Err(CliError::Usage(format!(
                    "--report-data takes exactly 64 bytes, got {}",
                    v.len()
                )));
            }
            Some(Nonce {
                value: hex::encode(v),
                generated: false,
                report_data_derivation: Derivation::Raw,
            })
        }
        (None, None) => None,
    })
}

fn wrong_kind(path: &Path, what: &str, tee: &str) -> CliError {
    CliError::MalformedFile {
        path: path.to_path_buf(),
        reason: format!("{what} does not endorse {tee} evidence"),
    }
}

/// The endorsements among `files` (the `--add` files, and the files beside evidence read with
/// `--from`) for a `tee` bundle, and the certificates among them.
fn endorsements(files: &[AddFile], tee: Tee) -> Result<(Vec<Endorsement>, Vec<AmdCert>), CliError> {
    // Azure evidence is endorsed like the hardware underneath it.
    let tee = match tee {
        Tee::AzureSevSnp => Tee::SevSnp,
        Tee::AzureTdx => Tee::Tdx,
        t => t,
    };
    let mut out = Vec::new();
    let mut certs = Vec::new();
    for AddFile { path, bytes } in files {
        let f = common::load_cert_bytes(path, bytes)?;
        let origin = Origin::path(OriginKind::File, path.display().to_string());
        let mut push_certs = |ders: Vec<Vec<u8>>, cache: Option<u64>| -> Result<(), CliError> {
            for der in ders {
                let cert = AmdCert::parse_der(&der).map_err(|e| CliError::MalformedFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                // An AMD certificate in a TDX bundle (or an Intel one in an SEV-SNP bundle) is a
                // mix-up the user should hear about, not dead weight in the bundle.
                if tee == Tee::Tdx && cert.amd_role().is_some() {
                    return Err(wrong_kind(
                        path,
                        &format!("the AMD certificate {}", cert.subject_cn),
                        "TDX",
                    ));
                }
                if tee == Tee::SevSnp && cert.subject_cn.starts_with("Intel SGX") {
                    return Err(wrong_kind(
                        path,
                        &format!("the Intel certificate {}", cert.subject_cn),
                        "SEV-SNP",
                    ));
                }
                let kind = if tee == Tee::SevSnp {
                    role_kind(&cert)
                } else {
                    EndorsementKind::Certificate
                };
                let mut e = Endorsement::der(kind, &der, origin.clone(), None);
                e.cache_max_age_secs = cache;
                out.push(e);
                certs.push(cert);
            }
            Ok(())
        };
        match (f.content, tee) {
            (FileContent::Certificates(c), _) => push_certs(c, None)?,
            (FileContent::ThimAmd(t), Tee::SevSnp) => {
                push_certs(
                    std::iter::once(t.vcek).chain(t.chain).collect(),
                    t.cache_control_secs,
                )?;
            }
            (FileContent::ThimAmd(_), Tee::Tdx) => {
                return Err(wrong_kind(path, "a THIM AMD response", "TDX"));
            }
            (FileContent::TcbInfo(body), Tee::Tdx) => {
                out.push(Endorsement::bytes_as(
                    EndorsementKind::TcbInfo,
                    "json",
                    &body,
                    origin,
                    None,
                ));
            }
            (FileContent::QeIdentity(body), Tee::Tdx) => {
                out.push(Endorsement::bytes_as(
                    EndorsementKind::QeIdentity,
                    "json",
                    &body,
                    origin,
                    None,
                ));
            }
            (FileContent::Crl { issuer_cn, .. }, Tee::Tdx)
                if !issuer_cn.starts_with("Intel SGX") =>
            {
                return Err(wrong_kind(path, &format!("the CRL of {issuer_cn}"), "TDX"));
            }
            (FileContent::Crl { der, issuer_cn }, Tee::Tdx) => {
                let kind = if issuer_cn.contains("Root CA") {
                    EndorsementKind::RootCaCrl
                } else {
                    EndorsementKind::PckCrl
                };
                out.push(Endorsement::der(kind, &der, origin, None));
            }
            (FileContent::Crl { issuer_cn, .. }, Tee::SevSnp)
                if issuer_cn.starts_with("Intel SGX") =>
            {
                return Err(wrong_kind(path, "an Intel CRL", "SEV-SNP"));
            }
            (FileContent::Crl { der, .. }, Tee::SevSnp) => {
                out.push(Endorsement::der(EndorsementKind::Crl, &der, origin, None));
            }
            (FileContent::TcbInfo(_) | FileContent::QeIdentity(_), _) => {
                return Err(wrong_kind(path, "Intel collateral", "SEV-SNP"));
            }
            (FileContent::ThimAmd(_), _) => {
                return Err(wrong_kind(path, "a THIM AMD response", "TDX"));
            }
            (FileContent::Crl { der, .. }, _) => {
                out.push(Endorsement::der(EndorsementKind::Crl, &der, origin, None));
            }
        }
    }
    Ok((out, certs))
}

/// A file that may hold endorsements: where it came from and its bytes.
struct AddFile {
    path: std::path::PathBuf,
    bytes: Vec<u8>,
}

/// The evidence to import, as read, with the path each part is named by in errors and in the
/// bundle's `collection.path`.
struct Read {
    evidence: Evidence,
    path: std::path::PathBuf,
    /// The TD quote's own file (Azure TDX given as two files), for its parse errors.
    quote_path: Option<std::path::PathBuf>,
    event_logs: Vec<EventLogEvidence>,
}

pub fn run(a: ImportArgs) -> Result<u8, CliError> {
    if a.json && a.output.as_os_str() == "-" {
        return Err(CliError::Usage(
            "--json prints on standard output, where -o - puts the bundle; give -o FILE".into(),
        ));
    }
    let nonce = nonce(&a)?;
    let now = common::now();
    let mut files = a
        .add
        .iter()
        .map(|p| {
            Ok(AddFile {
                path: p.clone(),
                bytes: read_input_at_most(p, MAX_IMPORT_LEN)?,
            })
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    let read = match (a.from, &a.input) {
        (Some(format), Some(input)) => {
            let (read, beside) = read_other_form(format, input)?;
            files.extend(beside);
            read
        }
        _ => read_flags(&a)?,
    };
    let (tee, builder) = builder_for(&read, &files, now)?;
    let endorse_tee = match tee {
        Tee::AzureSevSnp => Tee::SevSnp,
        Tee::AzureTdx => Tee::Tdx,
        t => t,
    };
    let (mut endorsements, _) = endorsements(&files, endorse_tee)?;
    // Issuer chains given as separate files repeat the root; keep each item once.
    let mut seen = std::collections::HashSet::new();
    endorsements.retain(|e| seen.insert((e.sha256.clone(), e.format.clone())));
    let mut event_logs = read.event_logs;
    event_logs.extend(event_logs_of(&a)?);
    let bundle = builder
        .event_logs(event_logs)
        .nonce(nonce)
        .endorsements(
            endorsements,
            vec![format!("imported from {} file(s)", files.len())],
        )
        .build();
    write_output(&a.output, &bundle.to_json())?;
    if a.json {
        crate::output::print_json(&serde_json::json!({
            "path": a.output.to_string_lossy(),
            "tee": bundle.tee().as_str(),
            "from": a.from.map(|f| f.as_str()),
            "evidence": bundle.collection.path,
            "nonce": bundle.nonce.as_ref().map(|n| &n.value),
            "endorsements": bundle
                .endorsements
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "kind": e.kind.as_str(),
                        "path": e.origin.path,
                    })
                })
                .collect::<Vec<_>>(),
            "event_logs": bundle
                .event_logs
                .iter()
                .map(|l| l.kind.as_str())
                .collect::<Vec<_>>(),
        }));
    }
    Ok(crate::exit::OK)
}

/// The evidence files given with `--snp-report`, `--tdx-quote`, `--hcl-report` and
/// `--tpm-quote`.
fn read_flags(a: &ImportArgs) -> Result<Read, CliError> {
    let read = |evidence, path: &std::path::PathBuf, quote_path| Read {
        evidence,
        path: path.clone(),
        quote_path,
        event_logs: Vec::new(),
    };
    match (&a.snp_report, &a.tdx_quote, &a.hcl_report) {
        (Some(path), None, None) => Ok(read(
            Evidence::SevSnp(SevSnpEvidence {
                report: read_input_at_most(path, MAX_IMPORT_LEN)?,
                auxblob: None,
            }),
            path,
            None,
        )),
        (None, Some(path), None) => Ok(read(
            Evidence::Tdx(TdxEvidence {
                quote: read_input_at_most(path, MAX_IMPORT_LEN)?,
                td_report: None,
            }),
            path,
            None,
        )),
        (None, quote_path, Some(path)) => {
            let hcl_report = read_input_at_most(path, MAX_IMPORT_LEN)?;
            let tpm_quote = match &a.tpm_quote {
                Some(q) => {
                    let raw = read_input_at_most(q, MAX_IMPORT_LEN)?;
                    let parsed =
                        TpmQuote::parse_json(&raw).map_err(|e| CliError::MalformedFile {
                            path: q.clone(),
                            reason: e.to_string(),
                        })?;
                    Some(TpmQuoteEvidence::new(parsed))
                }
                None => None,
            };
            let evidence = match quote_path {
                Some(q) => Evidence::AzureTdx(AzureTdxEvidence {
                    hcl_report,
                    tdx_quote: read_input_at_most(q, MAX_IMPORT_LEN)?,
                    tpm_quote,
                }),
                None => Evidence::AzureSevSnp(AzureSevSnpEvidence {
                    hcl_report,
                    tpm_quote,
                }),
            };
            Ok(read(evidence, path, quote_path.clone()))
        }
        // clap's argument group and conflicts leave only these combinations.
        _ => Err(CliError::Usage(
            "give --snp-report, --tdx-quote, --hcl-report [--tdx-quote], or --from FORMAT INPUT"
                .into(),
        )),
    }
}

/// Evidence in another tool's form (`--from FORMAT INPUT`), and the files beside it.
fn read_other_form(format: Format, input: &Path) -> Result<(Read, Vec<AddFile>), CliError> {
    let malformed = |e: interop::ImportError| CliError::MalformedFile {
        path: input.to_path_buf(),
        reason: e.to_string(),
    };
    let imported = match format {
        Format::Snpguest => {
            let files = read_dir_files(input)?;
            interop::snpguest::import(&files).map_err(malformed)?
        }
        _ => {
            let bytes = read_input_at_most(input, MAX_IMPORT_LEN)?;
            match format {
                Format::GoSevGuest => interop::go_sev_guest::import(&bytes),
                Format::TsmReport => interop::tsm_report::import(&bytes),
                Format::Cmw => interop::tsm_report::import_cmw(&bytes),
                Format::Trustee => interop::trustee::import(None, &bytes),
                _ => {
                    return Err(CliError::Usage(format!(
                        "import cannot read {format}: it is a request to a verifier, not evidence"
                    )));
                }
            }
            .map_err(malformed)?
        }
    };
    let beside = imported
        .endorsements
        .into_iter()
        .map(|n| AddFile {
            path: input.join(&n.name),
            bytes: n.bytes,
        })
        .collect();
    Ok((
        Read {
            evidence: imported.evidence,
            path: input.to_path_buf(),
            quote_path: None,
            event_logs: imported.event_logs,
        },
        beside,
    ))
}

/// The largest file `import` reads (`--from` input, a report, quote or HCL report, an `--add`
/// file): evidence with its certificates and logs fits in a bundle, which is at most 8 MiB by
/// default. A longer file is refused (exit 6), never truncated.
const MAX_IMPORT_LEN: u64 = 8 << 20;
/// The most files of a directory `import --from` reads.
const MAX_IMPORT_FILES: usize = 64;

/// The regular files of `dir` and of its subdirectories one level down (`certs/`), by relative
/// path, bounded in number and size.
fn read_dir_files(dir: &Path) -> Result<Vec<interop::NamedBytes>, CliError> {
    let unreadable = |source| CliError::ReadInput {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    let mut dirs = vec![(dir.to_path_buf(), String::new())];
    let mut depth = 0;
    while !dirs.is_empty() && depth < 2 {
        let mut next = Vec::new();
        for (d, prefix) in dirs {
            let mut entries = std::fs::read_dir(&d)
                .map_err(unreadable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unreadable)?;
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let name = format!("{prefix}{}", e.file_name().to_string_lossy());
                let kind = e.file_type().map_err(unreadable)?;
                if kind.is_dir() {
                    next.push((e.path(), format!("{name}/")));
                } else if kind.is_file() {
                    if out.len() == MAX_IMPORT_FILES {
                        return Err(CliError::MalformedFile {
                            path: dir.to_path_buf(),
                            reason: format!("more than {MAX_IMPORT_FILES} files"),
                        });
                    }
                    out.push(interop::NamedBytes {
                        name,
                        bytes: read_input_at_most(&e.path(), MAX_IMPORT_LEN)?,
                    });
                }
            }
        }
        dirs = next;
        depth += 1;
    }
    Ok(out)
}

/// Checks the evidence and starts its bundle, with its claims.
fn builder_for(read: &Read, files: &[AddFile], now: i64) -> Result<(Tee, BundleBuilder), CliError> {
    let path = &read.path;
    let malformed = |reason: String| CliError::MalformedFile {
        path: path.clone(),
        reason,
    };
    let collection = Collection {
        path: Some(path.display().to_string()),
        ..Collection::new(CollectionSource::Import)
    };
    Ok(match read.evidence.clone() {
        Evidence::SevSnp(evidence) => {
            let report =
                SnpReport::parse(&evidence.report).map_err(|e| malformed(e.to_string()))?;
            let (_, certs) = endorsements(files, Tee::SevSnp)?;
            let claims = snp_claims(&report, &certs);
            (
                Tee::SevSnp,
                BundleBuilder::sev_snp(now, collection, evidence, claims),
            )
        }
        Evidence::Tdx(evidence) => {
            let quote = TdxQuote::parse(&evidence.quote).map_err(|e| malformed(e.to_string()))?;
            let claims = tdx_claims(&quote, None);
            (
                Tee::Tdx,
                BundleBuilder::tdx(now, collection, evidence, claims),
            )
        }
        Evidence::AzureSevSnp(evidence) => {
            let hcl =
                HclReport::parse(&evidence.hcl_report).map_err(|e| malformed(e.to_string()))?;
            if hcl.report_type() != HclReportType::Snp {
                return Err(malformed(
                    "a TDX HCL report needs the TD quote IMDS made from it (--tdx-quote FILE)"
                        .into(),
                ));
            }
            let hardware = match hcl.snp_report() {
                Some(Ok(r)) => {
                    let (_, certs) = endorsements(files, Tee::SevSnp)?;
                    Some(snp_claims(&r, &certs))
                }
                Some(Err(e)) => return Err(malformed(e.to_string())),
                None => None,
            };
            let claims = azure_claims(&hcl, hardware);
            (
                Tee::AzureSevSnp,
                BundleBuilder::azure_sev_snp(now, collection, evidence, claims),
            )
        }
        Evidence::AzureTdx(evidence) => {
            let hcl =
                HclReport::parse(&evidence.hcl_report).map_err(|e| malformed(e.to_string()))?;
            let quote_path = read.quote_path.clone().unwrap_or_else(|| path.clone());
            if hcl.report_type() != HclReportType::Tdx {
                return Err(CliError::MalformedFile {
                    path: quote_path,
                    reason: "an SEV-SNP HCL report has no TD quote; drop --tdx-quote".into(),
                });
            }
            let quote =
                TdxQuote::parse(&evidence.tdx_quote).map_err(|e| CliError::MalformedFile {
                    path: quote_path,
                    reason: e.to_string(),
                })?;
            let claims = azure_claims(&hcl, Some(tdx_claims(&quote, None)));
            (
                Tee::AzureTdx,
                BundleBuilder::azure_tdx(now, collection, evidence, claims),
            )
        }
    })
}

/// The event logs given: each must parse (a bundle never carries a log its own `verify` calls
/// malformed); a CCEL log area is trimmed after its last event.
fn event_logs_of(a: &ImportArgs) -> Result<Vec<EventLogEvidence>, CliError> {
    let mut out = Vec::new();
    for (path, kind) in [
        (&a.ccel_log, EventLogKind::Ccel),
        (&a.tpm_event_log, EventLogKind::Tcg2),
    ] {
        let Some(path) = path else { continue };
        let bytes = read_input_at_most(path, DEFAULT_MAX_LOG_LEN as u64)?;
        let log = EventLog::parse(&bytes).map_err(|e| CliError::MalformedFile {
            path: path.clone(),
            reason: format!("not a TCG crypto-agile event log: {e}"),
        })?;
        out.push(EventLogEvidence {
            kind,
            source: path.display().to_string(),
            data: log.trimmed_bytes().to_vec(),
        });
    }
    Ok(out)
}
