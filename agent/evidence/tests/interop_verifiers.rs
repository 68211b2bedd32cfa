// SPDX-License-Identifier: Apache-2.0
//! The verifier forms of `interop` on real evidence (`tests/vectors`, see its README and
//! LICENSES): MAA's SevSnpVm and TdxVm bodies and Trustee's evidence JSON, built from bundles of
//! the Azure, SEV-SNP and TDX vectors, checked member by member as JSON values; the binding MAA
//! checks refused on tampered runtime data; Trustee's az-*, tdx evidence read back byte for byte;
//! Trustee's `snp` report compared field by field with the `sev` crate's parse of the same bytes
//! (an independent decoder of the names and values sev's serde form is made of).

#![expect(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    reason = "a test reads its vector files and panics on setup failure"
)]

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;
use sha2::{Digest, Sha256};

use thimble_evidence::azure::{HclReport, TpmQuote, TpmsAttest};
use thimble_evidence::bundle::{
    Agent, AzureSevSnpEvidence, AzureTdxEvidence, Bundle, Collection, CollectionSource,
    Endorsement, EndorsementKind, EventLogEvidence, EventLogKind, Evidence, FORMAT, Origin,
    OriginKind, SevSnpEvidence, TdxEvidence, Tee, TpmQuoteEvidence, VERSION,
};
use thimble_evidence::cert_file::{FileContent, pem_certificates, recognise};
use thimble_evidence::interop::{ExportError, Exported, Format, Imported, maa, trustee};
use thimble_evidence::snp::cert::AmdRole;
use thimble_evidence::snp::{AmdCert, SnpReport};
use thimble_evidence::tdx::TdxQuote;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

fn read(case: &str, file: &str) -> Vec<u8> {
    std::fs::read(vectors().join(case).join(file)).unwrap()
}

/// Every AMD certificate of a case directory (DER or PEM files), as endorsements of their role.
fn amd_endorsements(case: &str) -> Vec<Endorsement> {
    let dir = vectors().join(case);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().to_string())
        .filter(|n| n.ends_with(".pem") || n.ends_with(".der"))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let Ok(FileContent::Certificates(ders)) =
            recognise(&std::fs::read(dir.join(&name)).unwrap())
        else {
            panic!("{case}/{name} is not certificates");
        };
        for der in ders {
            let kind = match AmdCert::parse_der(&der).unwrap().amd_role().unwrap() {
                AmdRole::Ark => EndorsementKind::Ark,
                AmdRole::Ask => EndorsementKind::Ask,
                AmdRole::Asvk => EndorsementKind::Asvk,
                AmdRole::Vcek => EndorsementKind::Vcek,
                AmdRole::Vlek => EndorsementKind::Vlek,
            };
            let origin = Origin::path(OriginKind::File, name.clone());
            out.push(Endorsement::der(kind, &der, origin, None));
        }
    }
    out
}

fn der_of(bundle: &Bundle, kind: EndorsementKind) -> Vec<u8> {
    bundle
        .endorsements
        .iter()
        .find(|e| e.kind == kind)
        .unwrap()
        .bytes()
        .unwrap()
}

/// A bundle as `import` would make it, read back from its JSON as a stored one is.
fn bundle(
    evidence: Evidence,
    endorsements: Vec<Endorsement>,
    event_logs: Vec<EventLogEvidence>,
) -> Bundle {
    let b = Bundle {
        format: FORMAT.into(),
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
        endorsements,
        endorsement_log: Vec::new(),
        event_logs,
        claims: None,
    };
    Bundle::parse(&b.to_json()).unwrap()
}

fn tpm_quote(case: &str) -> TpmQuoteEvidence {
    TpmQuoteEvidence::new(TpmQuote::parse_json(&read(case, "tpm_quote.json")).unwrap())
}

const AZURE_SNP: [&str; 4] = [
    "azure/snp-hcl-milan-v2",
    "azure/snp-hcl-milan-v3-v0",
    "azure/snp-hcl-milan-v3-v1",
    "azure/snp-hcl-milan-v3-v2",
];
const AZURE_TDX: &str = "azure/tdx-hcl-v4-outofdate";

fn azure_snp(case: &str) -> Bundle {
    bundle(
        Evidence::AzureSevSnp(AzureSevSnpEvidence {
            hcl_report: read(case, "hcl_report.bin"),
            tpm_quote: Some(tpm_quote(case)),
        }),
        amd_endorsements(case),
        Vec::new(),
    )
}

fn azure_tdx() -> Bundle {
    bundle(
        Evidence::AzureTdx(AzureTdxEvidence {
            hcl_report: read(AZURE_TDX, "hcl_report.bin"),
            tdx_quote: read(AZURE_TDX, "quote.bin"),
            tpm_quote: Some(tpm_quote(AZURE_TDX)),
        }),
        Vec::new(),
        Vec::new(),
    )
}

fn plain_snp(case: &str) -> Bundle {
    bundle(
        Evidence::SevSnp(SevSnpEvidence {
            report: read(case, "report.bin"),
            auxblob: None,
        }),
        amd_endorsements(case),
        Vec::new(),
    )
}

fn file(exported: Result<Exported, ExportError>) -> Vec<u8> {
    match exported.unwrap() {
        Exported::File(bytes) => bytes,
        other => panic!("{other:?}"),
    }
}

fn json_of(exported: Result<Exported, ExportError>) -> Value {
    let bytes = file(exported);
    assert_eq!(bytes.last(), Some(&b'\n'));
    serde_json::from_slice(&bytes).unwrap()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn unb64url(v: &Value) -> Vec<u8> {
    let s = v.as_str().unwrap();
    assert!(!s.contains('='), "MAA's base64url is written unpadded: {s}");
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

fn runtime_data(hcl: &[u8]) -> Vec<u8> {
    HclReport::parse(hcl).unwrap().runtime_data_bytes().to_vec()
}

/// A byte of the runtime data JSON changed without breaking the JSON: a digit of the VM's
/// unique id or of a key's modulus (base64url), so it still parses.
fn tamper_runtime_data(hcl: &mut [u8]) {
    let range = HclReport::parse(hcl).unwrap().runtime_data_range;
    let text = &hcl[range.clone()];
    let at = text.windows(5).position(|w| w == b"\"n\":\"").unwrap() + 10;
    let at = range.start + at;
    hcl[at] = if hcl[at] == b'A' { b'B' } else { b'A' };
}

// ---------------------------------------------------------------------------------------------
// MAA
// ---------------------------------------------------------------------------------------------

/// The SevSnpVm body: its members in order, the report JSON inside, the runtime data.
fn check_sev_snp_vm(body: &Value, report: &[u8], runtime: &[u8], chain: &[Vec<u8>]) {
    assert_eq!(keys(body), ["report", "runtimeData"]);
    assert_eq!(keys(&body["runtimeData"]), ["data", "dataType"]);
    assert_eq!(body["runtimeData"]["dataType"], "JSON");
    assert_eq!(unb64url(&body["runtimeData"]["data"]), runtime);
    let inner: Value = serde_json::from_slice(&unb64url(&body["report"])).unwrap();
    assert_eq!(keys(&inner), ["SnpReport", "VcekCertChain"]);
    assert_eq!(unb64url(&inner["SnpReport"]), report);
    let pem = String::from_utf8(unb64url(&inner["VcekCertChain"])).unwrap();
    assert_eq!(pem_certificates(&pem).unwrap(), chain);
}

#[test]
fn maa_sev_snp_vm_from_azure_bundles() {
    for case in AZURE_SNP {
        let b = azure_snp(case);
        let hcl = read(case, "hcl_report.bin");
        let chain = [
            der_of(&b, EndorsementKind::Vcek),
            der_of(&b, EndorsementKind::Ask),
            der_of(&b, EndorsementKind::Ark),
        ];
        let body = json_of(maa::export(&b));
        // The SEV-SNP report is the HCL report's hardware report slot, 0x20..0x4c0.
        check_sev_snp_vm(&body, &hcl[0x20..0x4c0], &runtime_data(&hcl), &chain);
    }
}

#[test]
fn maa_tdx_vm_from_the_azure_bundle() {
    let b = azure_tdx();
    let body = json_of(maa::export(&b));
    assert_eq!(keys(&body), ["quote", "runtimeData"]);
    assert_eq!(unb64url(&body["quote"]), read(AZURE_TDX, "quote.bin"));
    assert_eq!(body["runtimeData"]["dataType"], "JSON");
    let hcl = read(AZURE_TDX, "hcl_report.bin");
    assert_eq!(unb64url(&body["runtimeData"]["data"]), runtime_data(&hcl));
    // The binding MAA checks holds on the quote itself.
    let quote = TdxQuote::parse(&read(AZURE_TDX, "quote.bin")).unwrap();
    assert_eq!(
        quote.body.report_data[..32],
        Sha256::digest(runtime_data(&hcl))[..]
    );
}

#[test]
fn maa_refuses_runtime_data_the_report_does_not_bind() {
    let case = "azure/snp-hcl-milan-v3-v1";
    let mut hcl = read(case, "hcl_report.bin");
    tamper_runtime_data(&mut hcl);
    let b = bundle(
        Evidence::AzureSevSnp(AzureSevSnpEvidence {
            hcl_report: hcl.clone(),
            tpm_quote: Some(tpm_quote(case)),
        }),
        amd_endorsements(case),
        Vec::new(),
    );
    let Err(ExportError::Binding { format, reason }) = maa::export(&b) else {
        panic!("tampered runtime data must not export");
    };
    assert_eq!(format, Format::Maa);
    assert!(reason.contains("REPORT_DATA[0..32]"), "{reason}");
    assert!(
        reason.contains(&hex::encode(Sha256::digest(runtime_data(&hcl)))),
        "{reason}"
    );

    let mut hcl = read(AZURE_TDX, "hcl_report.bin");
    tamper_runtime_data(&mut hcl);
    let b = bundle(
        Evidence::AzureTdx(AzureTdxEvidence {
            hcl_report: hcl,
            tdx_quote: read(AZURE_TDX, "quote.bin"),
            tpm_quote: None,
        }),
        Vec::new(),
        Vec::new(),
    );
    assert!(matches!(maa::export(&b), Err(ExportError::Binding { .. })));
}

#[test]
fn maa_plain_bundles_need_the_runtime_data() {
    // The report inside an Azure HCL report was made with REPORT_DATA = SHA-256(runtime data):
    // as a plain sev-snp bundle it is evidence collected with MAA's binding.
    let case = "azure/snp-hcl-milan-v3-v2";
    let hcl = read(case, "hcl_report.bin");
    let runtime = runtime_data(&hcl);
    let b = bundle(
        Evidence::SevSnp(SevSnpEvidence {
            report: hcl[0x20..0x4c0].to_vec(),
            auxblob: None,
        }),
        amd_endorsements(case),
        Vec::new(),
    );
    let Err(ExportError::Missing { format, what }) = maa::export(&b) else {
        panic!("a sev-snp bundle has no runtime data");
    };
    assert_eq!(format, Format::Maa);
    assert!(what.contains("runtime data"), "{what}");
    let chain = [
        der_of(&b, EndorsementKind::Vcek),
        der_of(&b, EndorsementKind::Ask),
        der_of(&b, EndorsementKind::Ark),
    ];
    let body = json_of(maa::export_with_runtime_data(&b, &runtime));
    check_sev_snp_vm(&body, &hcl[0x20..0x4c0], &runtime, &chain);

    // Other runtime data does not bind; data that is not JSON is not sent as JSON.
    let mut other = runtime.clone();
    other.extend_from_slice(b" ");
    assert!(matches!(
        maa::export_with_runtime_data(&b, &other),
        Err(ExportError::Binding { .. })
    ));
    let Err(ExportError::Binding { reason, .. }) = maa::export_with_runtime_data(&b, b"\x00\x01")
    else {
        panic!("runtime data that is not JSON is not sent as JSON");
    };
    assert!(reason.contains("not JSON"), "{reason}");
    // A real report whose REPORT_DATA is a nonce's hash binds no runtime data.
    assert!(matches!(
        maa::export_with_runtime_data(&plain_snp("snp/milan-v3-oak"), b"{}"),
        Err(ExportError::Binding { .. })
    ));

    // The same for TDX: the Azure TD's quote as a plain tdx bundle.
    let quote = read(AZURE_TDX, "quote.bin");
    let t = bundle(
        Evidence::Tdx(TdxEvidence {
            quote: quote.clone(),
            td_report: None,
        }),
        Vec::new(),
        Vec::new(),
    );
    assert!(matches!(maa::export(&t), Err(ExportError::Missing { .. })));
    let runtime = runtime_data(&read(AZURE_TDX, "hcl_report.bin"));
    let body = json_of(maa::export_with_runtime_data(&t, &runtime));
    assert_eq!(unb64url(&body["quote"]), quote);
    assert_eq!(unb64url(&body["runtimeData"]["data"]), runtime);
}

#[test]
fn maa_needs_the_whole_certificate_chain() {
    let mut b = azure_snp("azure/snp-hcl-milan-v3-v1");
    b.endorsements.retain(|e| e.kind != EndorsementKind::Ask);
    let Err(ExportError::Missing { what, .. }) = maa::export(&b) else {
        panic!("no ASK, no VcekCertChain");
    };
    assert!(what.contains("ask"), "{what}");
}

// ---------------------------------------------------------------------------------------------
// Trustee: az-snp-vtpm, az-tdx-vtpm, tdx
// ---------------------------------------------------------------------------------------------

fn check_tpm_quote(v: &Value, q: &TpmQuote) {
    assert_eq!(keys(v), ["signature", "message", "pcrs"]);
    assert_eq!(v["signature"], hex::encode(&q.signature));
    assert_eq!(v["message"], hex::encode(&q.message));
    let pcrs: Vec<String> = q.pcrs.iter().map(hex::encode).collect();
    assert_eq!(v["pcrs"], json!(pcrs));
    assert_eq!(q.pcrs.len(), 24);
}

/// Padded base64url, as serde_with's `Base64<UrlSafe>` writes it.
fn unb64url_padded(v: &Value) -> Vec<u8> {
    let s = v.as_str().unwrap();
    assert_eq!(s.len() % 4, 0, "padded base64url: {s}");
    URL_SAFE.decode(s).unwrap()
}

fn expect_imported(imported: &Imported, bundle: &Bundle) {
    assert_eq!(imported.evidence, bundle.evidence);
    assert_eq!(imported.event_logs, bundle.event_logs);
}

#[test]
fn trustee_az_snp_vtpm_round_trips() {
    // Trustee needs the CPUID fields of a version 3 report to tell the product.
    let Err(ExportError::Binding { reason, .. }) =
        trustee::export(&azure_snp("azure/snp-hcl-milan-v2"))
    else {
        panic!("a version 2 report is not az-snp-vtpm evidence");
    };
    assert!(reason.contains("version 2"), "{reason}");
    for case in &AZURE_SNP[1..] {
        let b = azure_snp(case);
        let hcl = read(case, "hcl_report.bin");
        let bytes = file(trustee::export(&b));
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(keys(&v), ["version", "tpm_quote", "hcl_report", "vcek"]);
        let q = &b.evidence.tpm_quote().unwrap().quote;
        check_tpm_quote(&v["tpm_quote"], q);
        assert_eq!(unb64url_padded(&v["hcl_report"]), hcl);
        assert_eq!(
            unb64url_padded(&v["vcek"]),
            der_of(&b, EndorsementKind::Vcek)
        );
        // Version 2 only where the HCL user-data starts with the TPM quote's qualifying data,
        // as Trustee's version 2 check needs; these boot-time reports hold zeros.
        let extra = TpmsAttest::parse(&q.message).unwrap().extra_data;
        let user_data = HclReport::parse(&hcl)
            .unwrap()
            .runtime_data()
            .unwrap()
            .user_data
            .unwrap();
        let expected = if user_data.starts_with(&extra) { 2 } else { 1 };
        assert_eq!(v["version"], expected, "{case}");

        for tee in [None, Some("az-snp-vtpm")] {
            let imported = trustee::import(tee, &bytes).unwrap();
            expect_imported(&imported, &b);
            assert_eq!(imported.endorsements.len(), 1);
            assert_eq!(imported.endorsements[0].name, "vcek");
            assert_eq!(
                imported.endorsements[0].bytes,
                der_of(&b, EndorsementKind::Vcek)
            );
        }
    }
    // The Trustee-derived vector is the one whose user-data echoes the quote's nonce.
    let v = json_of(trustee::export(&azure_snp("azure/snp-hcl-milan-v3-v2")));
    assert_eq!(v["version"], 2);
    let v = json_of(trustee::export(&azure_snp("azure/snp-hcl-milan-v3-v1")));
    assert_eq!(v["version"], 1);
}

#[test]
fn trustee_az_tdx_vtpm_round_trips() {
    let b = azure_tdx();
    let bytes = file(trustee::export(&b));
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(keys(&v), ["version", "tpm_quote", "hcl_report", "td_quote"]);
    assert_eq!(v["version"], 1);
    check_tpm_quote(&v["tpm_quote"], &b.evidence.tpm_quote().unwrap().quote);
    assert_eq!(
        unb64url_padded(&v["hcl_report"]),
        read(AZURE_TDX, "hcl_report.bin")
    );
    assert_eq!(
        unb64url_padded(&v["td_quote"]),
        read(AZURE_TDX, "quote.bin")
    );
    for tee in [None, Some("az-tdx-vtpm")] {
        let imported = trustee::import(tee, &bytes).unwrap();
        expect_imported(&imported, &b);
        assert!(imported.endorsements.is_empty());
    }
}

#[test]
fn trustee_az_exports_need_the_tpm_quote_and_vcek() {
    let mut b = azure_snp("azure/snp-hcl-milan-v3-v1");
    b.endorsements.retain(|e| e.kind != EndorsementKind::Vcek);
    assert!(matches!(
        trustee::export(&b),
        Err(ExportError::Missing { .. })
    ));
    let b = bundle(
        Evidence::AzureTdx(AzureTdxEvidence {
            hcl_report: read(AZURE_TDX, "hcl_report.bin"),
            tdx_quote: read(AZURE_TDX, "quote.bin"),
            tpm_quote: None,
        }),
        Vec::new(),
        Vec::new(),
    );
    let Err(ExportError::Missing { what, .. }) = trustee::export(&b) else {
        panic!("no TPM quote, no az-tdx-vtpm evidence");
    };
    assert!(what.contains("tpm_quote"), "{what}");
}

#[test]
fn trustee_az_version_0_imports() {
    // Version 0: no version member, bytes as arrays of numbers, the SEV-SNP VCEK as PEM, and
    // on SEV-SNP the members named quote and report (Trustee's compat.rs `EvidenceV0`).
    let case = "azure/snp-hcl-milan-v3-v0";
    let b = azure_snp(case);
    let q = &b.evidence.tpm_quote().unwrap().quote;
    let pem = String::from_utf8(read(case, "vcek.pem")).unwrap();
    let v0 = json!({
        "quote": {"signature": q.signature, "message": q.message, "pcrs": q.pcrs},
        "report": read(case, "hcl_report.bin"),
        "vcek": pem,
    });
    let imported = trustee::import(None, v0.to_string().as_bytes()).unwrap();
    expect_imported(&imported, &b);
    assert_eq!(imported.endorsements[0].bytes, pem.as_bytes());

    let b = azure_tdx();
    let q = &b.evidence.tpm_quote().unwrap().quote;
    let v0 = json!({
        "tpm_quote": {"signature": q.signature, "message": q.message, "pcrs": q.pcrs},
        "hcl_report": read(AZURE_TDX, "hcl_report.bin"),
        "td_quote": read(AZURE_TDX, "quote.bin"),
    });
    let imported = trustee::import(Some("az-tdx-vtpm"), v0.to_string().as_bytes()).unwrap();
    expect_imported(&imported, &b);
}

fn ccel_bundle() -> Bundle {
    let case = "eventlog/tdx-gcp-cos113";
    bundle(
        Evidence::Tdx(TdxEvidence {
            quote: read(case, "quote.bin"),
            td_report: None,
        }),
        Vec::new(),
        vec![EventLogEvidence {
            kind: EventLogKind::Ccel,
            source: trustee::CC_EVENTLOG_SOURCE.into(),
            data: read(case, "ccel_data.bin"),
        }],
    )
}

#[test]
fn trustee_tdx_round_trips_with_and_without_a_cc_eventlog() {
    let b = ccel_bundle();
    let bytes = file(trustee::export(&b));
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(keys(&v), ["cc_eventlog", "quote"]);
    assert_eq!(
        STANDARD.decode(v["quote"].as_str().unwrap()).unwrap(),
        read("eventlog/tdx-gcp-cos113", "quote.bin")
    );
    assert_eq!(
        STANDARD.decode(v["cc_eventlog"].as_str().unwrap()).unwrap(),
        read("eventlog/tdx-gcp-cos113", "ccel_data.bin")
    );
    for tee in [None, Some("tdx")] {
        expect_imported(&trustee::import(tee, &bytes).unwrap(), &b);
    }

    for case in ["tdx/v4-gcp-padded-uptodate", "tdx/v5-no-tcb-level-dcapqvl"] {
        let b = bundle(
            Evidence::Tdx(TdxEvidence {
                quote: read(case, "quote.bin"),
                td_report: None,
            }),
            Vec::new(),
            Vec::new(),
        );
        let bytes = file(trustee::export(&b));
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["cc_eventlog"], Value::Null);
        // Trailing padding included: the quote as the bundle holds it.
        assert_eq!(
            STANDARD.decode(v["quote"].as_str().unwrap()).unwrap(),
            read(case, "quote.bin")
        );
        expect_imported(&trustee::import(None, &bytes).unwrap(), &b);
    }
    // Trustee reads an empty cc_eventlog as none.
    let quote = STANDARD.encode(read("tdx/v4-debug-td-2023", "quote.bin"));
    let imported = trustee::import(
        None,
        json!({"cc_eventlog": "", "quote": quote})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    assert!(imported.event_logs.is_empty());
}

#[test]
fn trustee_import_reads_the_kbs_envelopes() {
    let b = ccel_bundle();
    let evidence: Value = json_of(trustee::export(&b));
    let attest = json!({
        "init-data": null,
        "runtime-data": {"nonce": "n", "tee-pubkey": {}},
        "tee-evidence": {"primary_evidence": evidence, "additional_evidence": ""},
    });
    for text in [attest.to_string(), attest["tee-evidence"].to_string()] {
        expect_imported(&trustee::import(None, text.as_bytes()).unwrap(), &b);
    }
}

#[test]
fn trustee_import_errors_name_the_member() {
    let reason = |tee: Option<&str>, v: Value| {
        let err = trustee::import(tee, v.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.format, Format::Trustee);
        err.reason
    };
    let quote = STANDARD.encode(read("tdx/v4-debug-td-2023", "quote.bin"));
    assert!(reason(Some("sev-snp"), json!({})).contains("not one of snp"));
    assert!(reason(None, json!({"x": 1})).contains("no member tells the TEE"));
    assert!(reason(Some("tdx"), json!({"cc_eventlog": null})).contains("member quote is missing"));
    assert!(reason(None, json!({"quote": "!!"})).contains("member quote is not base64"));
    assert!(reason(None, json!({"quote": "AAAA"})).contains("member quote: "));
    assert!(reason(None, json!({"quote": quote, "cc_eventlog": 7})).contains("member cc_eventlog"));
    assert!(reason(Some("az-tdx-vtpm"), json!({"version": 3})).contains("member version 3"));
    assert!(
        reason(
            None,
            json!({"hcl_report": "AA", "vcek": "AA", "td_quote": "AA"})
        )
        .contains("both vcek")
    );
    let v = json_of(trustee::export(&azure_snp("azure/snp-hcl-milan-v3-v1")));
    let mut no_vcek = v.clone();
    no_vcek.as_object_mut().unwrap().remove("vcek");
    assert!(reason(Some("az-snp-vtpm"), no_vcek).contains("member vcek is missing"));
    let mut many_pcrs = v.clone();
    let pcrs = many_pcrs["tpm_quote"]["pcrs"].as_array_mut().unwrap();
    pcrs.extend(pcrs.clone());
    assert!(reason(None, many_pcrs).contains("tpm_quote.pcrs has 48 values"));
    // An SEV-SNP HCL report is not az-tdx-vtpm evidence.
    let mut wrong = v.clone();
    wrong.as_object_mut().unwrap().remove("vcek");
    wrong["td_quote"] = json!(URL_SAFE.encode(read(AZURE_TDX, "quote.bin")));
    assert!(reason(None, wrong).contains("member hcl_report holds a Snp hardware report"));
    // Too large, before anything is parsed.
    let big = vec![b' '; trustee::MAX_IMPORT_LEN + 1];
    assert!(
        trustee::import(None, &big)
            .unwrap_err()
            .reason
            .contains("more than the")
    );
}

// ---------------------------------------------------------------------------------------------
// Trustee: snp
// ---------------------------------------------------------------------------------------------

/// The sev crate's serde form of its `AttestationReport`, written out from the crate's own parse
/// of the bytes: the field names and order of `src/firmware/guest/types/snp.rs` (the same at
/// Trustee's pinned revision and in release 8), each value as the crate decoded it.
fn sev_form(r: &AttestationReport) -> Value {
    let tcb = |t: &sev::firmware::host::TcbVersion| {
        json!({"fmc": t.fmc, "bootloader": t.bootloader, "tee": t.tee, "snp": t.snp,
               "microcode": t.microcode})
    };
    let version = |v: &sev::firmware::guest::Version| json!({"major": v.major, "minor": v.minor, "build": v.build});
    // A `json!` object keeps the insertion order (serde_json's preserve_order is on).
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    put("version", json!(r.version));
    put("guest_svn", json!(r.guest_svn));
    put("policy", json!(u64::from(r.policy)));
    put("family_id", json!(r.family_id));
    put("image_id", json!(r.image_id));
    put("vmpl", json!(r.vmpl));
    put("sig_algo", json!(r.sig_algo));
    put("current_tcb", tcb(&r.current_tcb));
    put("plat_info", json!(u64::from(r.plat_info)));
    put("key_info", json!(u32::from(r.key_info)));
    put("report_data", json!(r.report_data.to_vec()));
    put("measurement", json!(r.measurement.to_vec()));
    put("host_data", json!(r.host_data));
    put("id_key_digest", json!(r.id_key_digest.to_vec()));
    put("author_key_digest", json!(r.author_key_digest.to_vec()));
    put("report_id", json!(r.report_id));
    put("report_id_ma", json!(r.report_id_ma));
    put("reported_tcb", tcb(&r.reported_tcb));
    put("cpuid_fam_id", json!(r.cpuid_fam_id));
    put("cpuid_mod_id", json!(r.cpuid_mod_id));
    put("cpuid_step", json!(r.cpuid_step));
    put("chip_id", json!(r.chip_id.to_vec()));
    put("committed_tcb", tcb(&r.committed_tcb));
    put("current", version(&r.current));
    put("committed", version(&r.committed));
    put("launch_tcb", tcb(&r.launch_tcb));
    put("launch_mit_vector", json!(r.launch_mit_vector));
    put("current_mit_vector", json!(r.current_mit_vector));
    put(
        "signature",
        json!({"r": r.signature.r().to_vec(), "s": r.signature.s().to_vec()}),
    );
    Value::Object(m)
}

#[test]
fn trustee_snp_report_is_the_sev_crates_form() {
    for (case, signer, issuer) in [
        ("snp/milan-v3-oak", "VCEK", EndorsementKind::Ask),
        ("snp/milan-v3-vlek-aws", "VLEK", EndorsementKind::Asvk),
    ] {
        let b = plain_snp(case);
        let v = json_of(trustee::export(&b));
        assert_eq!(keys(&v), ["attestation_report", "cert_chain"]);
        let raw = read(case, "report.bin");
        let theirs = AttestationReport::from_bytes(&raw).unwrap();
        let expected = sev_form(&theirs);
        assert_eq!(
            keys(&v["attestation_report"]),
            keys(&expected),
            "{case}: names and order"
        );
        assert_eq!(v["attestation_report"], expected, "{case}");
        // And thimble's own parse agrees on what matters to a verifier.
        let ours = SnpReport::parse(&raw).unwrap();
        assert_eq!(
            v["attestation_report"]["report_data"],
            json!(ours.report_data.to_vec())
        );

        let chain = v["cert_chain"].as_array().unwrap();
        assert_eq!(keys(&chain[0]), ["cert_type", "data"]);
        assert_eq!(chain[0]["cert_type"], signer);
        assert_eq!(chain[1]["cert_type"], "ASK");
        assert_eq!(chain[1]["data"], json!(der_of(&b, issuer)));
        assert_eq!(chain.last().unwrap()["cert_type"], "ARK");
        assert_eq!(
            chain.last().unwrap()["data"],
            json!(der_of(&b, EndorsementKind::Ark))
        );
    }
}

#[test]
fn trustee_snp_without_endorsements_leaves_the_chain_to_trustee() {
    let mut b = plain_snp("snp/milan-v3-oak");
    b.endorsements.clear();
    let v = json_of(trustee::export(&b));
    assert_eq!(v["cert_chain"], Value::Null);
}

#[test]
fn trustee_snp_refuses_what_trustee_cannot_verify() {
    // Version 2: Trustee's verifier needs the CPUID fields of version 3.
    let Err(ExportError::Binding { reason, .. }) =
        trustee::export(&plain_snp("snp/milan-v2-virtee"))
    else {
        panic!("version 2 is not Trustee evidence");
    };
    assert!(reason.contains("version 2"), "{reason}");

    // A reserved byte of a TCB_VERSION is not in the serde form: Trustee would re-encode the
    // report without it. thimble's parser reads it (the signature decides), the export refuses.
    let mut raw = read("snp/milan-v3-oak", "report.bin");
    raw[0x38 + 3] = 1; // CURRENT_TCB, Milan: bytes 2..6 are reserved
    SnpReport::parse(&raw).unwrap();
    let b = bundle(
        Evidence::SevSnp(SevSnpEvidence {
            report: raw,
            auxblob: None,
        }),
        Vec::new(),
        Vec::new(),
    );
    let Err(ExportError::Binding { reason, .. }) = trustee::export(&b) else {
        panic!("a byte the form drops must not export");
    };
    assert!(reason.contains("offset 0x3b"), "{reason}");
}

#[test]
fn trustee_snp_import_rebuilds_the_report_as_trustee_does() {
    let v = json_of(trustee::export(&plain_snp("snp/milan-v3-oak")));
    for tee in [None, Some("snp")] {
        let imported = trustee::import(tee, v.to_string().as_bytes()).unwrap();
        let Evidence::SevSnp(e) = imported.evidence else {
            panic!("not SEV-SNP evidence");
        };
        assert_eq!(e.report, read("snp/milan-v3-oak", "report.bin"));
    }
}

#[test]
fn trustee_tee_names() {
    assert_eq!(trustee::tee_name(Tee::SevSnp), "snp");
    assert_eq!(trustee::tee_name(Tee::Tdx), "tdx");
    assert_eq!(trustee::tee_name(Tee::AzureSevSnp), "az-snp-vtpm");
    assert_eq!(trustee::tee_name(Tee::AzureTdx), "az-tdx-vtpm");
}
