// SPDX-License-Identifier: Apache-2.0
//! `thimble import`: builds a bundle from evidence captured elsewhere (an SEV-SNP report or a TDX
//! quote) and the files that endorse it. Files are recognised by content; anything unrecognised,
//! or of the other TEE's kind, is an error that names the file. The evidence is parsed (so a
//! damaged file is caught here) but not verified: that is `verify`'s job.

use std::path::Path;

use thimble_collect::bundle::{BundleBuilder, azure_claims, snp_claims, tdx_claims};
use thimble_collect::endorse::role_kind;
use thimble_evidence::azure::{HclReport, HclReportType, TpmQuote};
use thimble_evidence::bundle::{
    AzureSevSnpEvidence, AzureTdxEvidence, Collection, CollectionSource, Endorsement,
    EndorsementKind, Nonce, Origin, OriginKind, SevSnpEvidence, TdxEvidence, Tee, TpmQuoteEvidence,
};
use thimble_evidence::cert_file::FileContent;
use thimble_evidence::report_data::Derivation;
use thimble_evidence::snp::{AmdCert, SnpReport};
use thimble_evidence::tdx::quote::TdxQuote;

use crate::args::ImportArgs;
use crate::common;
use crate::error::CliError;
use crate::io::{parse_hex, read_input, write_output};

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

/// The endorsements of `--add` files for a `tee` bundle, and the certificates among them.
fn endorsements(a: &ImportArgs, tee: Tee) -> Result<(Vec<Endorsement>, Vec<AmdCert>), CliError> {
    // Azure evidence is endorsed like the hardware underneath it.
    let tee = match tee {
        Tee::AzureSevSnp => Tee::SevSnp,
        Tee::AzureTdx => Tee::Tdx,
        t => t,
    };
    let mut out = Vec::new();
    let mut certs = Vec::new();
    for path in &a.add {
        let f = common::load_cert_file(path)?;
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

pub fn run(a: ImportArgs) -> Result<u8, CliError> {
    let nonce = nonce(&a)?;
    let now = common::now();
    let collection = |path: &Path| Collection {
        path: Some(path.display().to_string()),
        ..Collection::new(CollectionSource::Import)
    };
    let (tee, builder) = match (&a.snp_report, &a.tdx_quote, &a.hcl_report) {
        (Some(path), None, None) => {
            let bytes = read_input(path)?;
            let report = SnpReport::parse(&bytes).map_err(|e| CliError::MalformedFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let (_, certs) = endorsements(&a, Tee::SevSnp)?;
            let claims = snp_claims(&report, &certs);
            let evidence = SevSnpEvidence {
                report: bytes,
                auxblob: None,
            };
            let builder = BundleBuilder::sev_snp(now, collection(path), evidence, claims);
            (Tee::SevSnp, builder)
        }
        (None, Some(path), None) => {
            let bytes = read_input(path)?;
            let quote = TdxQuote::parse(&bytes).map_err(|e| CliError::MalformedFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let claims = tdx_claims(&quote, None);
            let evidence = TdxEvidence {
                quote: bytes,
                td_report: None,
            };
            (
                Tee::Tdx,
                BundleBuilder::tdx(now, collection(path), evidence, claims),
            )
        }
        (None, quote_path, Some(path)) => {
            let bytes = read_input(path)?;
            let malformed = |reason: String| CliError::MalformedFile {
                path: path.clone(),
                reason,
            };
            let hcl = HclReport::parse(&bytes).map_err(|e| malformed(e.to_string()))?;
            let tpm_quote = match &a.tpm_quote {
                Some(q) => {
                    let raw = read_input(q)?;
                    let parsed =
                        TpmQuote::parse_json(&raw).map_err(|e| CliError::MalformedFile {
                            path: q.clone(),
                            reason: e.to_string(),
                        })?;
                    Some(TpmQuoteEvidence::new(parsed))
                }
                None => None,
            };
            match (hcl.report_type(), quote_path) {
                (HclReportType::Snp, None) => {
                    let hardware = match hcl.snp_report() {
                        Some(Ok(r)) => {
                            let (_, certs) = endorsements(&a, Tee::SevSnp)?;
                            Some(snp_claims(&r, &certs))
                        }
                        Some(Err(e)) => return Err(malformed(e.to_string())),
                        None => None,
                    };
                    let claims = azure_claims(&hcl, hardware);
                    let evidence = AzureSevSnpEvidence {
                        hcl_report: bytes,
                        tpm_quote,
                    };
                    (
                        Tee::AzureSevSnp,
                        BundleBuilder::azure_sev_snp(now, collection(path), evidence, claims),
                    )
                }
                (HclReportType::Snp, Some(q)) => {
                    return Err(CliError::MalformedFile {
                        path: q.clone(),
                        reason: "an SEV-SNP HCL report has no TD quote; drop --tdx-quote".into(),
                    });
                }
                (HclReportType::Tdx, Some(q)) => {
                    let qb = read_input(q)?;
                    let quote = TdxQuote::parse(&qb).map_err(|e| CliError::MalformedFile {
                        path: q.clone(),
                        reason: e.to_string(),
                    })?;
                    let claims = azure_claims(&hcl, Some(tdx_claims(&quote, None)));
                    let evidence = AzureTdxEvidence {
                        hcl_report: bytes,
                        tdx_quote: qb,
                        tpm_quote,
                    };
                    (
                        Tee::AzureTdx,
                        BundleBuilder::azure_tdx(now, collection(path), evidence, claims),
                    )
                }
                (HclReportType::Tdx, None) => {
                    return Err(malformed(
                        "a TDX HCL report needs the TD quote IMDS made from it (--tdx-quote FILE)"
                            .into(),
                    ));
                }
            }
        }
        // clap's argument group and conflicts leave only these combinations.
        _ => {
            return Err(CliError::Usage(
                "give --snp-report, --tdx-quote, or --hcl-report [--tdx-quote]".into(),
            ));
        }
    };
    let endorse_tee = match tee {
        Tee::AzureSevSnp => Tee::SevSnp,
        Tee::AzureTdx => Tee::Tdx,
        t => t,
    };
    let (mut endorsements, _) = endorsements(&a, endorse_tee)?;
    // Issuer chains given as separate files repeat the root; keep each item once.
    let mut seen = std::collections::HashSet::new();
    endorsements.retain(|e| seen.insert((e.sha256.clone(), e.format.clone())));
    let bundle = builder
        .nonce(nonce)
        .endorsements(
            endorsements,
            vec![format!("imported from {} file(s)", a.add.len())],
        )
        .build();
    write_output(&a.output, &bundle.to_json())?;
    Ok(crate::exit::OK)
}
