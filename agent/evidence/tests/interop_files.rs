// SPDX-License-Identifier: Apache-2.0
//! The file forms of `thimble export` and `import` (snpguest's directory, go-sev-guest's extended
//! report, the tsm-report JSON and its CMW record) on the real vectors under `tests/vectors`:
//! every export reads back with the report or quote and the certificates byte for byte, the
//! layouts are exactly the documented ones, the snpguest directory passes the checks snpguest
//! makes (with the `sev` crate snpguest is built on), and hostile inputs give an `ImportError`.

#![expect(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    reason = "a test reads its vector files and panics on setup failure"
)]

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sev::certs::snp::{Certificate, Chain, Verifiable};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;
use thimble_evidence::azure::HclReport;
use thimble_evidence::bundle::{
    Agent, AzureSevSnpEvidence, Bundle, Collection, CollectionSource, Endorsement, EndorsementKind,
    Evidence, FORMAT, Origin, OriginKind, SevSnpEvidence, TdxEvidence, Tee, VERSION,
};
use thimble_evidence::cert_file::{FileContent, recognise};
use thimble_evidence::interop::{
    ExportError, Exported, Format, Imported, NamedBytes, go_sev_guest, snpguest, tsm_report,
};
use thimble_evidence::snp::cert::AmdRole;
use thimble_evidence::snp::{AmdCert, CertKind, CertTable};

const REPORT_LEN: usize = 1184;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

/// A vector's report (or HCL report) and its AMD certificates with their roles.
struct SnpCase {
    name: String,
    evidence: Option<Vec<u8>>,
    certs: Vec<(EndorsementKind, Vec<u8>)>,
}

fn kind_of(der: &[u8]) -> EndorsementKind {
    match AmdCert::parse_der(der).unwrap().amd_role().unwrap() {
        AmdRole::Ark => EndorsementKind::Ark,
        AmdRole::Ask => EndorsementKind::Ask,
        AmdRole::Asvk => EndorsementKind::Asvk,
        AmdRole::Vcek => EndorsementKind::Vcek,
        AmdRole::Vlek => EndorsementKind::Vlek,
    }
}

fn load(dir: &Path, evidence_file: &str) -> SnpCase {
    let mut case = SnpCase {
        name: dir.file_name().unwrap().to_string_lossy().into_owned(),
        evidence: None,
        certs: Vec::new(),
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let bytes = std::fs::read(&path).unwrap();
        if file == evidence_file {
            case.evidence = Some(bytes);
            continue;
        }
        if file == "case.toml" || file == "tpm_quote.json" {
            continue;
        }
        match recognise(&bytes).unwrap() {
            FileContent::Certificates(ders) => {
                case.certs
                    .extend(ders.into_iter().map(|d| (kind_of(&d), d)));
            }
            FileContent::ThimAmd(t) => {
                case.certs.push((EndorsementKind::Vcek, t.vcek));
                case.certs
                    .extend(t.chain.into_iter().map(|d| (kind_of(&d), d)));
            }
            other => panic!("{file}: not an AMD certificate: {other:?}"),
        }
    }
    case
}

/// Every SEV-SNP vector with a report.
fn snp_cases() -> Vec<SnpCase> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(vectors().join("snp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let cases: Vec<SnpCase> = dirs
        .iter()
        .map(|d| load(d, "report.bin"))
        .filter(|c| c.evidence.is_some())
        .collect();
    assert_eq!(cases.len(), 8, "every SEV-SNP vector with a report");
    cases
}

/// A bundle as a reader sees it: built, written, and parsed again.
fn bundle(evidence: Evidence, certs: &[(EndorsementKind, Vec<u8>)]) -> Bundle {
    let b = Bundle {
        format: FORMAT.to_string(),
        version: VERSION,
        simulated: false,
        agent: Agent {
            name: "thimble".into(),
            version: "0.1.0".into(),
        },
        created_at: "2026-06-01T00:00:00Z".into(),
        kernel_release: None,
        collection: Collection::new(CollectionSource::Import),
        nonce: None,
        evidence,
        endorsements: certs
            .iter()
            .map(|(k, der)| Endorsement::der(*k, der, Origin::kind(OriginKind::File), None))
            .collect(),
        endorsement_log: Vec::new(),
        event_logs: Vec::new(),
        claims: None,
    };
    Bundle::parse(&b.to_json()).unwrap()
}

fn snp_bundle(case: &SnpCase) -> Bundle {
    bundle(
        Evidence::SevSnp(SevSnpEvidence {
            report: case.evidence.clone().unwrap(),
            auxblob: None,
        }),
        &case.certs,
    )
}

fn cert(case: &SnpCase, kind: EndorsementKind) -> Option<&[u8]> {
    case.certs
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, d)| d.as_slice())
}

/// The leaf, signer and root of the chain that signs the case's report.
fn chain(case: &SnpCase) -> (EndorsementKind, &[u8], &[u8], &[u8]) {
    let (leaf, signer) = if cert(case, EndorsementKind::Vlek).is_some() {
        (EndorsementKind::Vlek, EndorsementKind::Asvk)
    } else {
        (EndorsementKind::Vcek, EndorsementKind::Ask)
    };
    (
        leaf,
        cert(case, leaf).unwrap(),
        cert(case, signer).unwrap(),
        cert(case, EndorsementKind::Ark).unwrap(),
    )
}

fn directory(e: Exported) -> Vec<(String, Vec<u8>)> {
    match e {
        Exported::Directory(files) => files,
        Exported::File(_) => panic!("expected a directory"),
    }
}

fn file(e: Exported) -> Vec<u8> {
    match e {
        Exported::File(bytes) => bytes,
        Exported::Directory(_) => panic!("expected a file"),
    }
}

fn named(files: &[(String, Vec<u8>)]) -> Vec<NamedBytes> {
    files
        .iter()
        .map(|(name, bytes)| NamedBytes {
            name: name.clone(),
            bytes: bytes.clone(),
        })
        .collect()
}

/// The one DER certificate or CRL a file holds, whatever its encoding.
fn der_of(bytes: &[u8]) -> Vec<u8> {
    match recognise(bytes).unwrap() {
        FileContent::Certificates(mut ders) => {
            assert_eq!(ders.len(), 1);
            ders.remove(0)
        }
        FileContent::Crl { der, .. } => der,
        other => panic!("not a certificate or CRL: {other:?}"),
    }
}

fn report_of(imported: &Imported) -> &SevSnpEvidence {
    match &imported.evidence {
        Evidence::SevSnp(e) => e,
        other => panic!("expected SEV-SNP evidence, got {other:?}"),
    }
}

// ---- snpguest ------------------------------------------------------------------------------

#[test]
fn snpguest_directory_round_trips_every_vector() {
    for case in snp_cases() {
        let files = directory(snpguest::export(&snp_bundle(&case)).unwrap());
        let (leaf, vek, signer, ark) = chain(&case);
        let (leaf_file, signer_file) = if leaf == EndorsementKind::Vlek {
            ("certs/vlek.pem", "certs/asvk.pem")
        } else {
            ("certs/vcek.pem", "certs/ask.pem")
        };
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "attestation-report.bin",
                "certs/ark.pem",
                signer_file,
                leaf_file
            ],
            "{}",
            case.name
        );
        assert_eq!(
            &files[0].1,
            case.evidence.as_ref().unwrap(),
            "{}",
            case.name
        );
        for (_, pem) in &files[1..] {
            assert!(pem.starts_with(b"-----BEGIN CERTIFICATE-----\n"));
        }
        assert_eq!(der_of(&files[1].1), ark, "{}", case.name);
        assert_eq!(der_of(&files[2].1), signer, "{}", case.name);
        assert_eq!(der_of(&files[3].1), vek, "{}", case.name);

        let imported = snpguest::import(&named(&files)).unwrap();
        assert_eq!(
            &report_of(&imported).report,
            case.evidence.as_ref().unwrap()
        );
        assert_eq!(report_of(&imported).auxblob, None);
        assert!(imported.event_logs.is_empty());
        let back: Vec<(&str, Vec<u8>)> = imported
            .endorsements
            .iter()
            .map(|n| (n.name.as_str(), der_of(&n.bytes)))
            .collect();
        assert_eq!(
            back,
            [
                ("certs/ark.pem", ark.to_vec()),
                (signer_file, signer.to_vec()),
                (leaf_file, vek.to_vec())
            ],
            "{}",
            case.name
        );
    }
}

/// What `snpguest verify certs DIR` and `snpguest verify attestation DIR REPORT` check, with the
/// library and the file lookup snpguest uses (the `sev` crate, `{name}.pem` then `{name}.der`,
/// the VLEK and ASVK when a VLEK is present).
fn snpguest_checks(files: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    let find = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == &format!("certs/{name}.pem"))
            .map(|(_, b)| b.clone())
    };
    let (vek, ask) = match find("vlek") {
        Some(vlek) => (vlek, find("asvk").unwrap()),
        None => (find("vcek").unwrap(), find("ask").unwrap()),
    };
    let ark = Certificate::from_pem(&find("ark").unwrap())?;
    let ask = Certificate::from_pem(&ask)?;
    let vek = Certificate::from_pem(&vek)?;
    (&ark, &ark).verify()?;
    (&ark, &ask).verify()?;
    (&ask, &vek).verify()?;
    let chain = Chain {
        ca: sev::certs::snp::ca::Chain { ark, ask },
        vek,
    };
    let report = AttestationReport::from_bytes(&files[0].1)?;
    (&chain, &report).verify()
}

#[test]
fn snpguest_directory_passes_snpguests_checks() {
    for case in snp_cases() {
        let files = directory(snpguest::export(&snp_bundle(&case)).unwrap());
        let result = snpguest_checks(&files);
        if case.name.starts_with("negative-") {
            assert!(result.is_err(), "{}: a forged VCEK must fail", case.name);
        } else {
            result.unwrap_or_else(|e| panic!("{}: {e}", case.name));
        }
    }
}

#[test]
fn snpguest_directory_of_an_azure_bundle_holds_the_report_inside_the_hcl_report() {
    let mut seen = 0;
    for entry in std::fs::read_dir(vectors().join("azure")).unwrap() {
        let dir = entry.unwrap().path();
        if !dir
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("snp-")
        {
            continue;
        }
        let case = load(&dir, "hcl_report.bin");
        let hcl = case.evidence.clone().unwrap();
        let b = bundle(
            Evidence::AzureSevSnp(AzureSevSnpEvidence {
                hcl_report: hcl.clone(),
                tpm_quote: None,
            }),
            &case.certs,
        );
        let inner = HclReport::parse(&hcl)
            .unwrap()
            .snp_report()
            .unwrap()
            .unwrap()
            .as_bytes()
            .to_vec();
        let files = directory(snpguest::export(&b).unwrap());
        assert_eq!(
            files[0],
            ("attestation-report.bin".to_string(), inner.clone())
        );
        snpguest_checks(&files).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let imported = snpguest::import(&named(&files)).unwrap();
        assert_eq!(report_of(&imported).report, inner);
        // go-sev-guest reads the same report and a table built from the endorsements.
        let extended = file(go_sev_guest::export(&b).unwrap());
        assert_eq!(&extended[..REPORT_LEN], inner.as_slice());
        // tsm-report is what configfs-tsm returned, which an Azure report did not come from.
        assert_eq!(
            tsm_report::export(&b),
            Err(ExportError::NotForTee {
                format: Format::TsmReport,
                tee: Tee::AzureSevSnp
            })
        );
        seen += 1;
    }
    assert_eq!(seen, 4);
}

#[test]
fn snpguest_directory_carries_the_arks_crl() {
    let case = snp_cases()
        .into_iter()
        .find(|c| c.name == "milan-v2-virtee")
        .unwrap();
    let crl = std::fs::read(vectors().join("crl/amd/milan.crl")).unwrap();
    let genoa_crl = std::fs::read(vectors().join("crl/amd/genoa.crl")).unwrap();
    let mut certs = case.certs.clone();
    // The Genoa ARK's CRL is not this chain's: it is not written.
    certs.push((EndorsementKind::Crl, genoa_crl));
    certs.push((EndorsementKind::Crl, crl.clone()));
    let b = snp_bundle(&SnpCase {
        name: case.name.clone(),
        evidence: case.evidence.clone(),
        certs,
    });
    let files = directory(snpguest::export(&b).unwrap());
    let (name, pem) = files.last().unwrap();
    assert_eq!(name, "certs/crl.pem");
    assert!(pem.starts_with(b"-----BEGIN X509 CRL-----\n"));
    assert!(pem.ends_with(b"-----END X509 CRL-----\n"));
    assert_eq!(der_of(pem), crl);
    let imported = snpguest::import(&named(&files)).unwrap();
    let back = imported.endorsements.last().unwrap();
    assert_eq!(back.name, "certs/crl.pem");
    assert_eq!(der_of(&back.bytes), crl);
}

#[test]
fn snpguest_import_looks_certificates_up_as_snpguest_does() {
    let case = snp_cases()
        .into_iter()
        .find(|c| c.name == "milan-v2-virtee")
        .unwrap();
    let (_, vek, ask, ark) = chain(&case);
    let report = case.evidence.clone().unwrap();
    let pem = |der: &[u8]| {
        directory(snpguest::export(&snp_bundle(&case)).unwrap())
            .into_iter()
            .map(|(_, b)| b)
            .find(|b| b.starts_with(b"-----BEGIN") && der_of(b) == der)
            .unwrap()
    };
    let nb = |name: &str, bytes: &[u8]| NamedBytes {
        name: name.into(),
        bytes: bytes.to_vec(),
    };
    // A report under another name, DER beside PEM (PEM wins), everything beside the report.
    let files = vec![
        nb("./guest.bin", &report),
        nb("request-file.bin", &[0u8; 64]),
        nb("vcek.der", vek),
        nb("vcek.pem", &pem(vek)),
        nb("ask.der", ask),
        nb("ark.pem", &pem(ark)),
        nb("other-0123.pem", b"ignored"),
    ];
    let imported = snpguest::import(&files).unwrap();
    assert_eq!(report_of(&imported).report, report);
    let names: Vec<&str> = imported
        .endorsements
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(names, ["ark.pem", "ask.der", "vcek.pem"]);
    assert_eq!(imported.endorsements[1].bytes, ask);
    // With a certs/ folder, only it is read.
    let files = vec![
        nb("attestation-report.bin", &report),
        nb("certs/vcek.der", vek),
        nb("vcek.pem", b"not looked at"),
    ];
    let imported = snpguest::import(&files).unwrap();
    assert_eq!(imported.endorsements.len(), 1);
    assert_eq!(imported.endorsements[0].name, "certs/vcek.der");
    // A report alone is a directory snpguest could fill later.
    let imported = snpguest::import(&[nb("attestation-report.bin", &report)]).unwrap();
    assert!(imported.endorsements.is_empty());
}

#[test]
fn snpguest_export_needs_sev_snp_evidence_and_its_vek() {
    let case = snp_cases()
        .into_iter()
        .find(|c| c.name == "milan-v3-vlek-aws")
        .unwrap();
    // The report names the VLEK: a bundle with only the chain above it has nothing to sign it.
    let without_vek: Vec<_> = case
        .certs
        .iter()
        .filter(|(k, _)| *k != EndorsementKind::Vlek)
        .cloned()
        .collect();
    let b = snp_bundle(&SnpCase {
        name: case.name.clone(),
        evidence: case.evidence.clone(),
        certs: without_vek,
    });
    for (format, result) in [
        (Format::Snpguest, snpguest::export(&b)),
        (Format::GoSevGuest, go_sev_guest::export(&b)),
        (Format::TsmReport, tsm_report::export(&b)),
        (Format::Cmw, tsm_report::export_cmw(&b)),
    ] {
        assert_eq!(
            result,
            Err(ExportError::Missing {
                format,
                what: "the VLEK the report's SIGNING_KEY names".into()
            })
        );
    }
    // Roles come from the certificates themselves: endorsements whose role was not told give the
    // same directory.
    let untold: Vec<_> = case
        .certs
        .iter()
        .map(|(_, d)| (EndorsementKind::Certificate, d.clone()))
        .collect();
    let untold = snp_bundle(&SnpCase {
        name: case.name.clone(),
        evidence: case.evidence.clone(),
        certs: untold,
    });
    assert_eq!(
        snpguest::export(&untold).unwrap(),
        snpguest::export(&snp_bundle(&case)).unwrap()
    );
    // An endorsement of a chain role that is not a certificate is the bundle's fault, named.
    let mut broken = case.certs.clone();
    broken.insert(0, (EndorsementKind::Vlek, b"not DER".to_vec()));
    let broken = snp_bundle(&SnpCase {
        name: case.name.clone(),
        evidence: case.evidence.clone(),
        certs: broken,
    });
    match snpguest::export(&broken) {
        Err(ExportError::Malformed { format, reason }) => {
            assert_eq!(format, Format::Snpguest);
            assert!(reason.starts_with("endorsements[0] (vlek)"), "{reason}");
        }
        other => panic!("{other:?}"),
    }

    let tdx = tdx_bundle(&tdx_quotes()[0]);
    assert_eq!(
        snpguest::export(&tdx),
        Err(ExportError::NotForTee {
            format: Format::Snpguest,
            tee: Tee::Tdx
        })
    );
    assert_eq!(
        go_sev_guest::export(&tdx),
        Err(ExportError::NotForTee {
            format: Format::GoSevGuest,
            tee: Tee::Tdx
        })
    );
}

#[test]
fn snpguest_import_refuses_hostile_directories() {
    let case = snp_cases()
        .into_iter()
        .find(|c| c.name == "milan-v2-virtee")
        .unwrap();
    let report = case.evidence.clone().unwrap();
    let (_, vek, ..) = chain(&case);
    let nb = |name: &str, bytes: &[u8]| NamedBytes {
        name: name.into(),
        bytes: bytes.to_vec(),
    };
    let refused = |files: Vec<NamedBytes>, says: &str| {
        let e = snpguest::import(&files).unwrap_err();
        assert_eq!(e.format, Format::Snpguest);
        assert!(e.reason.contains(says), "{e}");
    };
    refused(vec![], "no attestation-report.bin");
    refused(
        vec![nb("attestation-report.bin", &report[..1000])],
        "attestation-report.bin",
    );
    refused(
        vec![nb("a.bin", &report), nb("b.bin", &report)],
        "several .bin files",
    );
    refused(
        vec![nb("report.bin", &report[..REPORT_LEN - 1])],
        "no attestation-report.bin",
    );
    refused(
        vec![
            nb("attestation-report.bin", &report),
            nb("certs/vcek.pem", b"-----BEGIN CERTIFICATE-----\n!!!\n"),
        ],
        "certs/vcek.pem",
    );
    refused(
        vec![
            nb("attestation-report.bin", &report),
            nb("certs/vcek.der", &vek[..vek.len() - 1]),
        ],
        "certs/vcek.der",
    );
    refused(
        vec![
            nb("attestation-report.bin", &report),
            nb("certs/crl.der", vek),
        ],
        "certs/crl.der does not hold a CRL",
    );
    refused(
        vec![
            nb("attestation-report.bin", &report),
            nb(
                "certs/ark.pem",
                &vec![b'A'; snpguest::MAX_CERT_FILE_LEN + 1],
            ),
        ],
        "certs/ark.pem is",
    );
    refused(
        vec![
            nb("attestation-report.bin", &report),
            nb("./attestation-report.bin", &report),
        ],
        "listed twice",
    );
    let many: Vec<NamedBytes> = (0..=snpguest::MAX_FILES)
        .map(|i| nb(&format!("f{i}"), b""))
        .collect();
    refused(many, "more than");
}

// ---- go-sev-guest --------------------------------------------------------------------------

#[test]
fn go_sev_guest_extended_report_round_trips_every_vector() {
    for case in snp_cases() {
        let (leaf, vek, signer, ark) = chain(&case);
        let out = file(go_sev_guest::export(&snp_bundle(&case)).unwrap());
        assert_eq!(
            &out[..REPORT_LEN],
            case.evidence.as_ref().unwrap().as_slice()
        );
        let table = CertTable::parse(&out[REPORT_LEN..]).unwrap();
        let entries: Vec<(CertKind, &[u8])> = table
            .entries
            .iter()
            .map(|e| (e.kind, e.data.as_slice()))
            .collect();
        let leaf_kind = if leaf == EndorsementKind::Vlek {
            CertKind::Vlek
        } else {
            CertKind::Vcek
        };
        // go-sev-guest files an ASVK under the ASK's GUID.
        assert_eq!(
            entries,
            [
                (leaf_kind, vek),
                (CertKind::Ask, signer),
                (CertKind::Ark, ark)
            ],
            "{}",
            case.name
        );

        let imported = go_sev_guest::import(&out).unwrap();
        let ev = report_of(&imported);
        assert_eq!(&ev.report, case.evidence.as_ref().unwrap());
        assert_eq!(ev.auxblob.as_deref(), Some(&out[REPORT_LEN..]));
        let back: Vec<(&str, &[u8])> = imported
            .endorsements
            .iter()
            .map(|n| (n.name.as_str(), n.bytes.as_slice()))
            .collect();
        assert_eq!(
            back,
            [
                ("certificate_table[0]", vek),
                ("certificate_table[1]", signer),
                ("certificate_table[2]", ark)
            ]
        );

        // Without -extended, the file is the report alone.
        let plain = go_sev_guest::import(&out[..REPORT_LEN]).unwrap();
        assert_eq!(report_of(&plain).auxblob, None);
        assert!(plain.endorsements.is_empty());
    }
}

#[test]
fn go_sev_guest_export_keeps_the_hosts_table_when_it_holds_the_bundles_vek() {
    let case = snp_cases()
        .into_iter()
        .find(|c| c.name == "milan-v3-oak")
        .unwrap();
    let (_, vek, ask, ark) = chain(&case);
    // A host table in another order, with the CRL GUID's entry and one thimble does not know.
    let host = CertTable::build_raw(
        &[
            (CertKind::Ark.guid().unwrap(), ark),
            ([0x42; 16], b"extra"),
            (CertKind::Ask.guid().unwrap(), ask),
            (CertKind::Vcek.guid().unwrap(), vek),
        ],
        16,
    );
    let with_table = |auxblob: Vec<u8>, certs: &[(EndorsementKind, Vec<u8>)]| {
        bundle(
            Evidence::SevSnp(SevSnpEvidence {
                report: case.evidence.clone().unwrap(),
                auxblob: Some(auxblob),
            }),
            certs,
        )
    };
    let out = file(go_sev_guest::export(&with_table(host.clone(), &case.certs)).unwrap());
    assert_eq!(&out[REPORT_LEN..], host.as_slice());
    let imported = go_sev_guest::import(&out).unwrap();
    let names: Vec<&str> = imported
        .endorsements
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    // The unknown entry stays in the auxblob and is not offered as an endorsement.
    assert_eq!(
        names,
        [
            "certificate_table[0]",
            "certificate_table[2]",
            "certificate_table[3]"
        ]
    );
    // The bundle has no endorsements: the host's table is all there is.
    let out = file(go_sev_guest::export(&with_table(host.clone(), &[])).unwrap());
    assert_eq!(&out[REPORT_LEN..], host.as_slice());

    // A host table whose VCEK is not the one the bundle kept (it did not verify at collection):
    // the table is built from the endorsements instead.
    let stale = CertTable::build(&[(CertKind::Vcek, ask), (CertKind::Ark, ark)]);
    let out = file(go_sev_guest::export(&with_table(stale, &case.certs)).unwrap());
    let table = CertTable::parse(&out[REPORT_LEN..]).unwrap();
    assert_eq!(table.get(CertKind::Vcek).unwrap().data, vek);
    // So is a table that does not parse.
    let out = file(go_sev_guest::export(&with_table(vec![1, 2, 3], &case.certs)).unwrap());
    assert_eq!(
        CertTable::parse(&out[REPORT_LEN..])
            .unwrap()
            .get(CertKind::Vcek)
            .unwrap()
            .data,
        vek
    );
}

#[test]
fn go_sev_guest_import_refuses_hostile_files() {
    let case = snp_cases()
        .into_iter()
        .find(|c| c.name == "milan-v2-virtee")
        .unwrap();
    let out = file(go_sev_guest::export(&snp_bundle(&case)).unwrap());
    let refused = |bytes: &[u8], says: &str| {
        let e = go_sev_guest::import(bytes).unwrap_err();
        assert_eq!(e.format, Format::GoSevGuest);
        assert!(e.reason.contains(says), "{e}");
    };
    refused(&out[..100], "shorter than the 1184-byte report");
    refused(&out[..REPORT_LEN + 30], "certificate_table");
    // Two entries pointing at the same bytes.
    let mut overlap = out.clone();
    let first_offset = REPORT_LEN + 16;
    let second_offset = REPORT_LEN + 24 + 16;
    let offset = overlap[first_offset..first_offset + 4].to_vec();
    overlap[second_offset..second_offset + 4].copy_from_slice(&offset);
    refused(&overlap, "overlap");
    // An entry running past the end.
    let mut past = out.clone();
    past[REPORT_LEN + 20..REPORT_LEN + 24].copy_from_slice(&u32::MAX.to_le_bytes());
    refused(&past, "outside");
    // A report field that must be zero.
    let mut bad_report = out.clone();
    bad_report[0x208] ^= 0xff;
    assert!(go_sev_guest::import(&bad_report).is_err());
    let mut huge = out.clone();
    huge.resize(REPORT_LEN + go_sev_guest::MAX_AUXBLOB_LEN + 1, 0);
    refused(&huge, "more than");
    // Nothing panics, whatever the length or the byte changed.
    for len in 0..out.len() {
        let _ = go_sev_guest::import(&out[..len]);
    }
    for i in REPORT_LEN..REPORT_LEN + 4 * 24 {
        let mut t = out.clone();
        t[i] ^= 0x80;
        let _ = go_sev_guest::import(&t);
    }
}

// ---- tsm-report and CMW --------------------------------------------------------------------

fn tdx_quotes() -> Vec<Vec<u8>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(vectors().join("tdx"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let quotes: Vec<Vec<u8>> = dirs
        .iter()
        .map(|d| std::fs::read(d.join("quote.bin")).unwrap())
        .collect();
    assert_eq!(quotes.len(), 5);
    quotes
}

fn tdx_bundle(quote: &[u8]) -> Bundle {
    bundle(
        Evidence::Tdx(TdxEvidence {
            quote: quote.to_vec(),
            td_report: None,
        }),
        &[],
    )
}

/// The object's members, each a string of unpadded base64url but `provider`.
fn tsm_members(json: &[u8]) -> Vec<(String, Vec<u8>)> {
    let v: Value = serde_json::from_slice(json).unwrap();
    let obj = v.as_object().unwrap();
    obj.iter()
        .map(|(k, v)| {
            let s = v.as_str().unwrap();
            if k == "provider" {
                return (k.clone(), s.as_bytes().to_vec());
            }
            assert!(!s.contains('='), "{k} is padded");
            (k.clone(), URL_SAFE_NO_PAD.decode(s).unwrap())
        })
        .collect()
}

#[test]
fn tsm_report_json_has_the_documented_shape_and_round_trips() {
    for case in snp_cases() {
        let b = snp_bundle(&case);
        let json = file(tsm_report::export(&b).unwrap());
        let members = tsm_members(&json);
        let (_, vek, signer, ark) = chain(&case);
        let table = file(go_sev_guest::export(&b).unwrap())[REPORT_LEN..].to_vec();
        assert_eq!(
            members,
            [
                ("provider".to_string(), b"sev_guest".to_vec()),
                ("outblob".to_string(), case.evidence.clone().unwrap()),
                ("auxblob".to_string(), table.clone())
            ],
            "{}",
            case.name
        );
        let imported = tsm_report::import(&json).unwrap();
        let ev = report_of(&imported);
        assert_eq!(&ev.report, case.evidence.as_ref().unwrap());
        assert_eq!(ev.auxblob.as_ref(), Some(&table));
        let certs: Vec<&[u8]> = imported
            .endorsements
            .iter()
            .map(|n| n.bytes.as_slice())
            .collect();
        assert_eq!(certs, [vek, signer, ark]);
        assert_eq!(imported.endorsements[0].name, "auxblob[0]");
    }
    for quote in tdx_quotes() {
        let json = file(tsm_report::export(&tdx_bundle(&quote)).unwrap());
        assert_eq!(
            tsm_members(&json),
            [
                ("provider".to_string(), b"tdx_guest".to_vec()),
                ("outblob".to_string(), quote.clone())
            ]
        );
        let imported = tsm_report::import(&json).unwrap();
        assert_eq!(
            imported.evidence,
            Evidence::Tdx(TdxEvidence {
                quote,
                td_report: None
            })
        );
        assert!(imported.endorsements.is_empty());
    }
}

#[test]
fn tsm_report_import_accepts_padding_and_ratsds_provider_newline() {
    let case = snp_cases()
        .into_iter()
        .find(|c| c.name == "milan-v3-vlek-aws")
        .unwrap();
    let report = case.evidence.clone().unwrap();
    let json = json!({
        "provider": "sev_guest\n",
        "outblob": URL_SAFE.encode(&report),
        "manifestblob": "",
        "service_provider": "svsm",
    });
    let imported = tsm_report::import(json.to_string().as_bytes()).unwrap();
    assert_eq!(report_of(&imported).report, report);
    // Without an auxblob there are no certificates, and none is made up.
    assert_eq!(report_of(&imported).auxblob, None);
    assert!(imported.endorsements.is_empty());
}

#[test]
fn tsm_report_import_refuses_hostile_input() {
    let case = snp_cases()
        .into_iter()
        .find(|c| c.name == "milan-v2-virtee")
        .unwrap();
    let report = case.evidence.clone().unwrap();
    let table = file(go_sev_guest::export(&snp_bundle(&case)).unwrap())[REPORT_LEN..].to_vec();
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let refused = |v: Value, says: &str| {
        let e = tsm_report::import(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.format, Format::TsmReport);
        assert!(e.reason.contains(says), "{e}");
    };
    refused(
        json!({"provider": "sev_guest", "outblob": "!!!"}),
        "outblob is not base64url",
    );
    refused(
        json!({"provider": "sev_guest", "outblob": b64(&report), "auxblob": "a b"}),
        "auxblob is not base64url",
    );
    refused(
        json!({"provider": "sev_guest", "outblob": b64(&report[..1000])}),
        "outblob",
    );
    refused(
        json!({"provider": "arm_cca_guest", "outblob": b64(&report)}),
        "provider \"arm_cca_guest\"",
    );
    refused(json!({"outblob": b64(&report)}), "provider");
    refused(
        json!({"provider": "sev_guest", "outblob": 7}),
        "not a tsm-report",
    );
    refused(json!(["sev_guest"]), "not a tsm-report");
    refused(
        json!({"provider": "sev_guest", "outblob": b64(&report), "auxblob": b64(&table[..30])}),
        "auxblob",
    );
    let mut overlap = table.clone();
    let offset = overlap[16..20].to_vec();
    overlap[24 + 16..24 + 20].copy_from_slice(&offset);
    refused(
        json!({"provider": "sev_guest", "outblob": b64(&report), "auxblob": b64(&overlap)}),
        "overlap",
    );
    refused(
        json!({"provider": "tdx_guest", "outblob": b64(&report)}),
        "outblob",
    );
    let quote = &tdx_quotes()[0];
    refused(
        json!({"provider": "tdx_guest", "outblob": b64(quote), "auxblob": b64(&table)}),
        "auxblob is present",
    );
    let big = vec![0u8; tsm_report::MAX_OUTBLOB_LEN + 1];
    refused(
        json!({"provider": "tdx_guest", "outblob": b64(&big)}),
        "more than",
    );
    assert!(
        tsm_report::import(&vec![b' '; tsm_report::MAX_TSM_REPORT_LEN + 1])
            .unwrap_err()
            .reason
            .contains("more than")
    );
    assert!(tsm_report::import(b"{").is_err());
    assert!(tsm_report::import(b"").is_err());
}

#[test]
fn cmw_record_has_the_documented_shape_and_round_trips() {
    let case = snp_cases()
        .into_iter()
        .find(|c| c.name == "milan-v2-trustee")
        .unwrap();
    let b = snp_bundle(&case);
    let tsm = file(tsm_report::export(&b).unwrap());
    let cmw = file(tsm_report::export_cmw(&b).unwrap());
    let v: Value = serde_json::from_slice(&cmw).unwrap();
    let record = v.as_array().unwrap();
    assert_eq!(record.len(), 3);
    assert_eq!(record[0], "application/vnd.veraison.tsm-report+json");
    let value = record[1].as_str().unwrap();
    assert!(!value.contains('='));
    assert_eq!(URL_SAFE_NO_PAD.decode(value).unwrap(), tsm);
    assert_eq!(record[2], 4);

    let expected = tsm_report::import(&tsm).unwrap();
    assert_eq!(tsm_report::import_cmw(&cmw).unwrap(), expected);
    // Without the indicator, and inside ratsd's collection.
    let bare = json!([record[0], record[1]]).to_string();
    assert_eq!(tsm_report::import_cmw(bare.as_bytes()).unwrap(), expected);
    let collection = json!({
        "__cmwc_t": "tag:github.com,2025:veraison/ratsd/cmw",
        "tsm-report": [record[0], record[1]],
    })
    .to_string();
    assert_eq!(
        tsm_report::import_cmw(collection.as_bytes()).unwrap(),
        expected
    );

    // TDX too.
    let quote = &tdx_quotes()[1];
    let cmw = file(tsm_report::export_cmw(&tdx_bundle(quote)).unwrap());
    let imported = tsm_report::import_cmw(&cmw).unwrap();
    assert_eq!(imported.evidence.tdx_quote(), Some(quote.as_slice()));
}

#[test]
fn cmw_import_refuses_hostile_records() {
    let case = snp_cases()
        .into_iter()
        .find(|c| c.name == "milan-v2-virtee")
        .unwrap();
    let tsm = file(tsm_report::export(&snp_bundle(&case)).unwrap());
    let value = URL_SAFE_NO_PAD.encode(&tsm);
    let refused = |v: Value, says: &str| {
        let e = tsm_report::import_cmw(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.format, Format::Cmw);
        assert!(e.reason.contains(says), "{e}");
    };
    refused(
        json!(["application/eat+json", value, 4]),
        "media type \"application/eat+json\"",
    );
    refused(
        json!(["application/vnd.veraison.tsm-report+cbor", value]),
        "media type",
    );
    refused(
        json!(["application/vnd.veraison.tsm-report+json", "%%%", 4]),
        "not base64url",
    );
    refused(
        json!(["application/vnd.veraison.tsm-report+json", value, 2]),
        "does not include evidence",
    );
    refused(
        json!(["application/vnd.veraison.tsm-report+json", value, "4"]),
        "indicator",
    );
    refused(
        json!(["application/vnd.veraison.tsm-report+json", value, 4, 5]),
        "4 elements",
    );
    refused(json!([7, value]), "type is not a string");
    refused(
        json!(["application/vnd.veraison.tsm-report+json", 7]),
        "value is not a string",
    );
    refused(json!("text"), "not a CMW");
    refused(json!({"__cmwc_t": "x"}), "no record");
    refused(
        json!({
            "a": ["application/vnd.veraison.tsm-report+json", value],
            "b": ["application/vnd.veraison.tsm-report+json", value],
        }),
        "several records",
    );
    // The wrapped bytes are read as a tsm-report, with its checks.
    refused(
        json!([
            "application/vnd.veraison.tsm-report+json",
            URL_SAFE_NO_PAD.encode(b"{\"provider\":\"sev_guest\",\"outblob\":\"AAAA\"}"),
        ]),
        "outblob",
    );
    assert!(tsm_report::import_cmw(b"[").is_err());
    assert!(
        tsm_report::import_cmw(&vec![b' '; tsm_report::MAX_CMW_LEN + 1])
            .unwrap_err()
            .reason
            .contains("more than")
    );
    // Deep nesting is refused by the JSON parser's recursion limit, not by a stack overflow.
    let deep = "[".repeat(100_000);
    assert!(tsm_report::import_cmw(deep.as_bytes()).is_err());
}
