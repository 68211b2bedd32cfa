// SPDX-License-Identifier: AGPL-3.0-or-later
//! `thimble import`: builds a bundle from a report captured elsewhere and the certificate files
//! or THIM responses that endorse it. Files are recognised by content; anything unrecognised is
//! an error that names the file. The report is parsed (so a damaged one is caught here) but not
//! verified: that is `verify`'s job.

use thimble_collect::endorse::role_kind;
use thimble_evidence::bundle::{Bundle, Collection, Endorsement, Evidence, Nonce, Origin, b64};
use thimble_evidence::cert_file::FileContent;
use thimble_evidence::report_data::Derivation;
use thimble_evidence::snp::{AmdCert, SnpReport};

use crate::args::ImportArgs;
use crate::cmd::collect::{agent, claims_for};
use crate::common;
use crate::error::CliError;
use crate::io::{parse_hex, read_input, write_output};

pub fn run(a: ImportArgs) -> Result<u8, CliError> {
    let report_bytes = read_input(&a.snp_report)?;
    let report = SnpReport::parse(&report_bytes).map_err(|e| CliError::MalformedFile {
        path: a.snp_report.clone(),
        reason: e.to_string(),
    })?;
    let nonce = match (&a.nonce, &a.report_data) {
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
    };
    let mut endorsements = Vec::new();
    let mut certs = Vec::new();
    for path in &a.add {
        let f = common::load_cert_file(path)?;
        let origin = Origin {
            kind: "file".into(),
            url: None,
            path: Some(path.display().to_string()),
        };
        let (ders, cache) = match f.content {
            FileContent::Certificates(c) => (c, None),
            FileContent::ThimAmd(t) => (
                std::iter::once(t.vcek).chain(t.chain).collect(),
                t.cache_control_secs,
            ),
        };
        for der in ders {
            let cert = AmdCert::parse_der(&der).map_err(|e| CliError::MalformedFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let mut e = Endorsement::der(role_kind(&cert), &der, origin.clone(), None);
            e.cache_max_age_secs = cache;
            endorsements.push(e);
            certs.push(cert);
        }
    }
    let bundle = Bundle {
        format: thimble_evidence::bundle::FORMAT.into(),
        version: thimble_evidence::bundle::VERSION,
        tee: thimble_evidence::bundle::Tee::SevSnp,
        simulated: false,
        agent: agent(),
        created_at: thimble_evidence::time_fmt::format_unix(common::now()),
        kernel_release: None,
        collection: Collection {
            source: "import".into(),
            provider: None,
            privlevel: None,
            generation: None,
            path: Some(a.snp_report.display().to_string()),
        },
        nonce,
        evidence: Evidence {
            snp_report: b64(&report_bytes),
            auxblob: None,
        },
        endorsements,
        endorsement_log: vec![format!("imported from {} file(s)", a.add.len())],
        claims: claims_for(&report, &certs),
    };
    write_output(&a.output, &bundle.to_json())?;
    Ok(crate::exit::OK)
}
