// SPDX-License-Identifier: Apache-2.0
//! Every SEV-SNP case under `tests/vectors/snp` (real hardware evidence, see its README and
//! LICENSES) verified through the library, with the outcome its `case.toml` declares.

#![expect(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    reason = "a test reads its vector files and panics on setup failure"
)]

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thimble_evidence::cert_file::{FileContent, recognise};
use thimble_evidence::snp::AmdCert;
use thimble_evidence::time_fmt::parse_rfc3339;
use thimble_verify::chain::verify_certificates;
use thimble_verify::snp::verify_report;
use thimble_verify::{Options, Verdict};

#[derive(Deserialize)]
struct Case {
    id: String,
    expect: String,
    verify_at: String,
    #[serde(default)]
    alt_args: Vec<String>,
    #[serde(default)]
    alt_expect: Option<String>,
}

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/snp")
}

fn load(dir: &Path) -> (Case, Option<Vec<u8>>, Vec<AmdCert>) {
    let case: Case =
        toml::from_str(&std::fs::read_to_string(dir.join("case.toml")).unwrap()).unwrap();
    let mut report = None;
    let mut certs = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let bytes = std::fs::read(&path).unwrap();
        match name.as_str() {
            "case.toml" => {}
            "report.bin" => report = Some(bytes),
            _ => match recognise(&bytes).unwrap_or_else(|e| panic!("{name}: {e}")) {
                FileContent::Certificates(ders) => {
                    certs.extend(ders.iter().map(|d| AmdCert::parse_der(d).unwrap()));
                }
                FileContent::ThimAmd(t) => {
                    certs.push(AmdCert::parse_der(&t.vcek).unwrap());
                    certs.extend(t.chain.iter().map(|d| AmdCert::parse_der(d).unwrap()));
                }
                other => panic!("{name}: not an SEV-SNP endorsement: {other:?}"),
            },
        }
    }
    (case, report, certs)
}

fn check(expect: &str, outcome: &thimble_verify::Outcome, id: &str) {
    match expect {
        "valid" => assert_eq!(
            outcome.verdict,
            Verdict::Valid,
            "{id}: {:?}",
            outcome.errors
        ),
        other => {
            let why = other
                .strip_prefix("invalid:")
                .unwrap_or_else(|| panic!("{id}: unknown expect {other}"));
            assert_eq!(outcome.verdict, Verdict::Invalid, "{id}");
            assert_eq!(outcome.errors[0].code, why, "{id}: {:?}", outcome.errors);
        }
    }
}

#[test]
fn every_snp_vector_behaves_as_declared() {
    let mut seen = 0;
    for entry in std::fs::read_dir(vectors()).unwrap() {
        let dir = entry.unwrap().path();
        let (case, report, certs) = load(&dir);
        let at = parse_rfc3339(&case.verify_at).unwrap();
        seen += 1;
        if case.expect == "valid:chain-only" {
            assert!(report.is_none());
            let chains = verify_certificates(&certs, &thimble_verify::TrustedRoots::amd(), at)
                .unwrap_or_else(|e| panic!("{}: {e:?}", case.id));
            assert!(!chains.is_empty());
            continue;
        }
        let report = report.unwrap();
        let opts = Options::strict(at);
        let outcome = verify_report(&report, &certs, None, &opts);
        check(&case.expect, &outcome, &case.id);
        if let Some(alt) = &case.alt_expect {
            let mut opts = Options::strict(at);
            assert_eq!(
                case.alt_args,
                vec!["--allow-debug".to_string()],
                "{}: alt_args this test understands",
                case.id
            );
            opts.policy.allow_debug = true;
            check(alt, &verify_report(&report, &certs, None, &opts), &case.id);
        }
    }
    assert_eq!(seen, 9);
}
