// SPDX-License-Identifier: Apache-2.0
//! snpguest's directory: the SEV-SNP report and the AMD certificates as virtee/snpguest writes and
//! reads them, so that `snpguest verify certs` and `snpguest verify attestation` can check a stored
//! bundle offline, and so that a directory snpguest filled can become a bundle.
//!
//! The layout follows virtee/snpguest 0.10 (`src/report.rs`, `src/certs.rs`, `src/verify.rs`):
//! `snpguest report` writes the 1184-byte ATTESTATION_REPORT as received (its README calls the
//! file `attestation-report.bin`), and `snpguest certificates` / `fetch` write one certificate
//! per file named by role, `ark`, `ask`, `vcek`, `vlek`, `crl`, with the ASK named `asvk` in a
//! VLEK chain. `verify` looks a role up as `{name}.pem`, then `{name}.der`, and takes the VLEK
//! and ASVK when a VLEK is present. This module writes
//!
//! ```text
//! attestation-report.bin   the report (of an azure-sev-snp bundle: the one inside the HCL report)
//! certs/ark.pem            AMD's root
//! certs/ask.pem            or certs/asvk.pem when the chain is a VLEK chain
//! certs/vcek.pem           or certs/vlek.pem, as the report's SIGNING_KEY says
//! certs/crl.pem            the ARK's CRL, when the bundle has it
//! ```
//!
//! and reads the same (or the certificates beside the report, when there is no `certs/`). The
//! certificates are the bundle's endorsements: snpguest checks the chain and the signature, not
//! REPORT_DATA, so any binding the bundle carries holds as it did. Pure: file names and bytes in
//! and out; the caller reads and writes the directory, and bounds what it reads.

use crate::bundle::{Bundle, EndorsementKind, Evidence, SevSnpEvidence};
use crate::cert_file::{FileContent, recognise};
use crate::crl::Crl;
use crate::snp::cert::AmdRole;
use crate::snp::report::SNP_REPORT_LEN;
use crate::snp::{AmdCert, SigningKey, SnpReport};

use super::{ExportError, Exported, Format, ImportError, Imported, NamedBytes};

/// The report's file name (snpguest's README and thimble's export).
pub const REPORT_FILE: &str = "attestation-report.bin";
/// The folder the certificates go in.
pub const CERTS_DIR: &str = "certs";
/// The most files an imported directory may list; snpguest writes at most a dozen.
pub const MAX_FILES: usize = 256;
/// The largest certificate or CRL file read. AMD's certificates are under 2 KiB in PEM and its
/// CRLs a few KiB; the cap bounds the work of a hostile file.
pub const MAX_CERT_FILE_LEN: usize = 64 << 10;

/// The names snpguest gives the files it looks up, in the order this module writes them.
const CERT_NAMES: [&str; 6] = ["ark", "ask", "asvk", "vcek", "vlek", "crl"];

/// Writes `bundle` as snpguest's directory: [`REPORT_FILE`] and the PEM certificates under
/// [`CERTS_DIR`]. SEV-SNP and azure-sev-snp bundles only; the bundle must hold the VCEK or VLEK
/// the report's SIGNING_KEY names. The ASK (or ASVK), ARK and CRL are written when the bundle
/// has them (`snpguest fetch ca` and `fetch crl` can add what is missing).
pub fn export(bundle: &Bundle) -> Result<Exported, ExportError> {
    const FORMAT: Format = Format::Snpguest;
    let parts = SnpParts::from_bundle(bundle, FORMAT)?;
    let Some(vek) = &parts.vek else {
        return Err(parts.missing_vek(FORMAT));
    };
    let vlek_chain = vek.role == AmdRole::Vlek;
    let mut files = vec![(REPORT_FILE.to_string(), parts.report.clone())];
    if let Some(ark) = &parts.ark {
        files.push((cert_path("ark", "pem"), pem("CERTIFICATE", &ark.der)));
    }
    if let Some(signer) = &parts.signer {
        let name = if vlek_chain { "asvk" } else { "ask" };
        files.push((cert_path(name, "pem"), pem("CERTIFICATE", &signer.der)));
    }
    let name = if vlek_chain { "vlek" } else { "vcek" };
    files.push((cert_path(name, "pem"), pem("CERTIFICATE", &vek.der)));
    if let Some(crl) = &parts.crl {
        files.push((cert_path("crl", "pem"), pem("X509 CRL", crl)));
    }
    Ok(Exported::Directory(files))
}

/// Reads a directory snpguest wrote, given as its files with paths relative to it (`/`
/// separators; a leading `./` is ignored).
///
/// The report is [`REPORT_FILE`], or else the one `*.bin` file of 1184 bytes; it must parse. The
/// certificates are looked up as snpguest does, `{name}.pem` then `{name}.der` for each of `ark`,
/// `ask`, `asvk`, `vcek`, `vlek` and `crl`, in [`CERTS_DIR`] when it holds any of them and beside
/// the report otherwise. Each must hold what its name says (a certificate, or a CRL for `crl`)
/// and is returned as found, by path, for `import` to recognise; other files are ignored.
pub fn import(files: &[NamedBytes]) -> Result<Imported, ImportError> {
    if files.len() > MAX_FILES {
        return Err(error(format!(
            "the directory has {} files, more than the {MAX_FILES} read",
            files.len()
        )));
    }
    let mut named: Vec<(&str, &[u8])> = Vec::with_capacity(files.len());
    for f in files {
        let name = f.name.trim_start_matches("./");
        if named.iter().any(|(n, _)| *n == name) {
            return Err(error(format!("{name} is listed twice")));
        }
        named.push((name, &f.bytes));
    }
    let find = |path: &str| named.iter().find(|(n, _)| *n == path).map(|(_, b)| *b);

    let (report_name, report) = match find(REPORT_FILE) {
        Some(bytes) => (REPORT_FILE, bytes),
        None => {
            let candidates: Vec<&(&str, &[u8])> = named
                .iter()
                .filter(|(n, b)| {
                    n.to_ascii_lowercase().ends_with(".bin") && b.len() == SNP_REPORT_LEN
                })
                .collect();
            match candidates.as_slice() {
                [(name, bytes)] => (*name, *bytes),
                [] => {
                    return Err(error(format!(
                        "no {REPORT_FILE} and no .bin file of {} bytes",
                        SNP_REPORT_LEN
                    )));
                }
                many => {
                    let names: Vec<&str> = many.iter().map(|(n, _)| *n).collect();
                    return Err(error(format!(
                        "no {REPORT_FILE} and several .bin files of {} bytes: {}",
                        SNP_REPORT_LEN,
                        names.join(", ")
                    )));
                }
            }
        }
    };
    SnpReport::parse(report).map_err(|e| error(format!("{report_name}: {e}")))?;

    let in_certs = CERT_NAMES
        .iter()
        .any(|n| find(&cert_path(n, "pem")).is_some() || find(&cert_path(n, "der")).is_some());
    let mut endorsements = Vec::new();
    for name in CERT_NAMES {
        let (pem_path, der_path) = if in_certs {
            (cert_path(name, "pem"), cert_path(name, "der"))
        } else {
            (format!("{name}.pem"), format!("{name}.der"))
        };
        let Some((path, bytes)) = find(&pem_path)
            .map(|b| (pem_path.clone(), b))
            .or_else(|| find(&der_path).map(|b| (der_path.clone(), b)))
        else {
            continue;
        };
        if bytes.len() > MAX_CERT_FILE_LEN {
            return Err(error(format!(
                "{path} is {} bytes, more than the {MAX_CERT_FILE_LEN} read",
                bytes.len()
            )));
        }
        let content = recognise(bytes).map_err(|e| error(format!("{path}: {e}")))?;
        match (name, content) {
            ("crl", FileContent::Crl { .. }) => {}
            ("crl", _) => return Err(error(format!("{path} does not hold a CRL"))),
            (_, FileContent::Certificates(certs)) if !certs.is_empty() => {}
            (_, _) => return Err(error(format!("{path} does not hold a certificate"))),
        }
        endorsements.push(NamedBytes {
            name: path,
            bytes: bytes.to_vec(),
        });
    }
    Ok(Imported {
        evidence: Evidence::SevSnp(SevSnpEvidence {
            report: report.to_vec(),
            auxblob: None,
        }),
        endorsements,
        event_logs: Vec::new(),
    })
}

fn error(reason: String) -> ImportError {
    ImportError {
        format: Format::Snpguest,
        reason,
    }
}

fn cert_path(name: &str, ext: &str) -> String {
    format!("{CERTS_DIR}/{name}.{ext}")
}

/// PEM of `der` under `label`, as snpguest writes its files.
fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    crate::cert_file::pem_encode(label, der).into_bytes()
}

/// An AMD certificate from the bundle, with the role it plays.
pub(super) struct ChainCert {
    /// Its role: from its names and extensions, or the endorsement's kind when they do not say.
    pub role: AmdRole,
    /// The DER, as the bundle holds it.
    pub der: Vec<u8>,
}

/// What the SEV-SNP forms take from a bundle: the report as received, the host's table, and one
/// certificate per role of the chain that signs the report.
pub(super) struct SnpParts {
    /// The 1184-byte report (of an azure-sev-snp bundle, the one inside the HCL report).
    pub report: Vec<u8>,
    /// The bundle's `auxblob` (SEV-SNP bundles only).
    pub auxblob: Option<Vec<u8>>,
    /// The VCEK or VLEK the report's SIGNING_KEY names (either, when it names neither).
    pub vek: Option<ChainCert>,
    /// The ASK of a VCEK, the ASVK of a VLEK.
    pub signer: Option<ChainCert>,
    /// The ARK.
    pub ark: Option<ChainCert>,
    /// The ARK's CRL, DER.
    pub crl: Option<Vec<u8>>,
    /// The key the report names, for messages.
    signing_key: SigningKey,
}

impl SnpParts {
    /// Picks the report and the chain out of `bundle`. Among several certificates of a role, the
    /// one whose subject is the issuer of the certificate below it wins, then the first.
    pub(super) fn from_bundle(bundle: &Bundle, format: Format) -> Result<SnpParts, ExportError> {
        let malformed = |reason: String| ExportError::Malformed { format, reason };
        let (report, auxblob) = match &bundle.evidence {
            Evidence::SevSnp(e) => (e.report.clone(), e.auxblob.clone()),
            Evidence::AzureSevSnp(e) => {
                let hcl = crate::azure::HclReport::parse(&e.hcl_report)
                    .map_err(|err| malformed(format!("evidence.hcl_report: {err}")))?;
                match hcl.snp_report() {
                    Some(Ok(r)) => (r.as_bytes().to_vec(), None),
                    Some(Err(err)) => {
                        return Err(malformed(format!(
                            "the SEV-SNP report in evidence.hcl_report: {err}"
                        )));
                    }
                    None => {
                        return Err(malformed(
                            "evidence.hcl_report holds no SEV-SNP report".to_string(),
                        ));
                    }
                }
            }
            _ => {
                return Err(ExportError::NotForTee {
                    format,
                    tee: bundle.tee(),
                });
            }
        };
        let parsed = SnpReport::parse(&report)
            .map_err(|err| malformed(format!("evidence.snp_report: {err}")))?;
        let signing_key = parsed.signing_key;

        let mut certs: Vec<(ChainCert, AmdCert)> = Vec::new();
        let mut crls: Vec<Vec<u8>> = Vec::new();
        for (i, e) in bundle.endorsements.iter().enumerate() {
            let kind_role = match e.kind {
                EndorsementKind::Vcek => Some(AmdRole::Vcek),
                EndorsementKind::Vlek => Some(AmdRole::Vlek),
                EndorsementKind::Ask => Some(AmdRole::Ask),
                EndorsementKind::Asvk => Some(AmdRole::Asvk),
                EndorsementKind::Ark => Some(AmdRole::Ark),
                EndorsementKind::Certificate => None,
                EndorsementKind::Crl => {
                    crls.push(
                        e.bytes()
                            .map_err(|err| malformed(format!("endorsements[{i}]: {err}")))?,
                    );
                    continue;
                }
                _ => continue,
            };
            let der = e
                .bytes()
                .map_err(|err| malformed(format!("endorsements[{i}]: {err}")))?;
            let cert = match (AmdCert::parse_der(&der), kind_role) {
                (Ok(cert), _) => cert,
                // A certificate of unknown role that does not parse plays no part in the chain.
                (Err(_), None) => continue,
                (Err(err), Some(_)) => {
                    return Err(malformed(format!("endorsements[{i}] ({}): {err}", e.kind)));
                }
            };
            let Some(role) = cert.amd_role().or(kind_role) else {
                continue;
            };
            certs.push((ChainCert { role, der }, cert));
        }

        let vek_index = match signing_key {
            SigningKey::Vcek => pick(&certs, AmdRole::Vcek, None),
            SigningKey::Vlek => pick(&certs, AmdRole::Vlek, None),
            _ => pick(&certs, AmdRole::Vcek, None).or_else(|| pick(&certs, AmdRole::Vlek, None)),
        };
        let signer_role = match vek_index.map(|i| certs[i].0.role) {
            Some(AmdRole::Vlek) => AmdRole::Asvk,
            _ => AmdRole::Ask,
        };
        let signer_index = pick(&certs, signer_role, vek_index.map(|i| &certs[i]));
        let ark_index = pick(&certs, AmdRole::Ark, signer_index.map(|i| &certs[i]));
        let ark_cert = ark_index.map(|i| &certs[i].1);
        // The CRL the ARK issued; any CRL that parses when the ARK is not known.
        let crl_index = crls.iter().position(|c| match (Crl::parse(c), ark_cert) {
            (Ok(crl), Some(ark)) => crl.issuer_raw() == ark.subject_raw(),
            (Ok(_), None) => true,
            (Err(_), _) => false,
        });

        let mut take = |i: Option<usize>| {
            i.map(|i| ChainCert {
                role: certs[i].0.role,
                der: std::mem::take(&mut certs[i].0.der),
            })
        };
        let vek = take(vek_index);
        let signer = take(signer_index);
        let ark = take(ark_index);
        Ok(SnpParts {
            report,
            auxblob,
            vek,
            signer,
            ark,
            crl: crl_index.map(|i| crls.swap_remove(i)),
            signing_key,
        })
    }

    /// The error for a bundle without the VCEK or VLEK the report needs.
    pub(super) fn missing_vek(&self, format: Format) -> ExportError {
        let what = match self.signing_key {
            SigningKey::Vcek => "the VCEK the report's SIGNING_KEY names",
            SigningKey::Vlek => "the VLEK the report's SIGNING_KEY names",
            _ => "a VCEK or VLEK endorsement",
        };
        ExportError::Missing {
            format,
            what: what.to_string(),
        }
    }
}

/// The index of the certificate of `role`, preferring one that issued `below`.
fn pick(
    certs: &[(ChainCert, AmdCert)],
    role: AmdRole,
    below: Option<&(ChainCert, AmdCert)>,
) -> Option<usize> {
    let of_role = || {
        certs
            .iter()
            .enumerate()
            .filter(|(_, (c, _))| c.role == role)
    };
    of_role()
        .find(|(_, (_, issuer))| below.is_some_and(|(_, b)| b.issued_by_name(issuer)))
        .or_else(|| of_role().next())
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_lines_are_64_characters() {
        let text = String::from_utf8(pem("CERTIFICATE", &[0xab; 100])).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
        assert_eq!(
            crate::cert_file::pem_certificates(&text).unwrap(),
            vec![vec![0xab; 100]]
        );
    }
}
