// SPDX-License-Identifier: Apache-2.0
//! `thimble verify-chain`: checks VCEK/VLEK certificates up to the pinned ARKs without a report,
//! for operators who want to know whether a THIM or KDS answer is sound before a report exists.

use serde::Serialize;
use thimble_evidence::cert_file::FileContent;
use thimble_evidence::snp::AmdCert;
use thimble_evidence::time_fmt::format_unix;
use thimble_verify::chain::verify_certificates;
use thimble_verify::outcome::ChainLink;

use crate::args::VerifyChainArgs;
use crate::common;
use crate::error::CliError;
use crate::exit;
use crate::output::print_stdout;

#[derive(Serialize)]
struct ChainReport {
    verdict: &'static str,
    verified_at: String,
    chains: Vec<ChainOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<thimble_verify::VerifyError>,
}

#[derive(Serialize)]
struct ChainOut {
    product: String,
    hw_id: Option<String>,
    tcb: Option<String>,
    links: Vec<ChainLink>,
}

pub fn run(a: VerifyChainArgs) -> Result<u8, CliError> {
    let at = common::verification_time(a.at.as_deref())?;
    let mut certs = Vec::new();
    for path in &a.files {
        let f = common::load_cert_file(path)?;
        let ders = match f.content {
            FileContent::Certificates(c) => c,
            FileContent::ThimAmd(t) => std::iter::once(t.vcek).chain(t.chain).collect(),
            _ => {
                return Err(CliError::MalformedFile {
                    path: path.clone(),
                    reason: "not a certificate file or THIM AMD response".into(),
                });
            }
        };
        for d in ders {
            // load_cert_file already parsed each certificate once.
            certs.push(AmdCert::parse_der(&d).map_err(|e| CliError::MalformedFile {
                path: path.clone(),
                reason: e.to_string(),
            })?);
        }
    }
    let roots = common::roots(a.insecure_allow_simulated);
    let (report, code) = match verify_certificates(&certs, &roots, at) {
        Ok(chains) => (
            ChainReport {
                verdict: "valid",
                verified_at: format_unix(at),
                chains: chains
                    .iter()
                    .map(|c| ChainOut {
                        product: c.product.to_string(),
                        hw_id: c.leaf.amd.hw_id.as_ref().map(hex::encode),
                        tcb: c
                            .leaf
                            .tcb(c.product)
                            .map(|t| format!("{t} (tcbm {})", t.tcbm())),
                        links: c.links(),
                    })
                    .collect(),
                error: None,
            },
            exit::OK,
        ),
        Err(e) => (
            ChainReport {
                verdict: "invalid",
                verified_at: format_unix(at),
                chains: Vec::new(),
                error: Some(e),
            },
            exit::AUTHENTICITY,
        ),
    };
    if a.json {
        let mut s =
            serde_json::to_string_pretty(&report).map_err(|e| CliError::Other(e.to_string()))?;
        s.push('\n');
        print_stdout(&s);
    } else {
        let mut s = format!(
            "verdict: {}\nchecked: at {}\n",
            report.verdict, report.verified_at
        );
        for c in &report.chains {
            s.push_str(&format!("product: {}\n", c.product));
            if let Some(h) = &c.hw_id {
                s.push_str(&format!("hwID:    {h}\n"));
            }
            if let Some(t) = &c.tcb {
                s.push_str(&format!("tcb:     {t}\n"));
            }
            for l in &c.links {
                s.push_str(&format!(
                    "chain:   {:<5} {}  valid {} .. {}\n",
                    l.role, l.subject, l.not_before, l.not_after
                ));
            }
        }
        if let Some(e) = &report.error {
            s.push_str(&format!("error[{}]: {}\n", e.code, e.message));
        }
        print_stdout(&s);
    }
    Ok(code)
}
