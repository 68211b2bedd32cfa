// SPDX-License-Identifier: Apache-2.0
//! `docs/bundle.schema.json` against real bundles: every bundle the binary writes (simulated
//! collection through /dev/sev-guest and THIM or through configfs-tsm with an `auxblob`, import
//! of a hardware vector, raw `--report-data`, a report whose product is unknown) must validate, the schema must name every member the writer emits (validation alone
//! would not notice a new field, since unknown members are allowed), and documents that break the
//! format must be rejected. The schema is checked against the draft 2020-12 meta-schema first.
//!
//! The validator resolves no external references (default features off), so nothing here reaches
//! the network.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

use common::{p, run, simulate, vectors};

fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/bundle.schema.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn validator() -> jsonschema::Validator {
    let schema = schema();
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("the schema is not a valid draft 2020-12 schema: {e}");
    }
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("the schema does not compile: {e}"))
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn assert_valid(v: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match the schema:\n{}",
        errors.join("\n")
    );
}

/// Follows a local `$ref` (`#/$defs/name`), which is the only kind the schema uses.
fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r
                .strip_prefix("#/$defs/")
                .unwrap_or_else(|| panic!("unexpected $ref {r}"));
            resolve(root, &root["$defs"][name])
        }
        None => node,
    }
}

/// Asserts that every object member in `doc` is declared in the schema at the same place, so
/// that the schema documents everything the writer emits.
fn assert_documented(root: &Value, node: &Value, doc: &Value, at: &str) {
    let node = resolve(root, node);
    match doc {
        // A member the schema declares free-form (another party's JSON, like Azure's runtime
        // data) is documented as a whole.
        Value::Object(_)
            if node.get("properties").is_none()
                && node.get("additionalProperties") == Some(&Value::Bool(true)) => {}
        Value::Object(members) => {
            let props = node.get("properties").and_then(Value::as_object);
            for (key, value) in members {
                let sub = props
                    .and_then(|p| p.get(key))
                    .unwrap_or_else(|| panic!("{at}/{key} is written but not in the schema"));
                assert_documented(root, sub, value, &format!("{at}/{key}"));
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = node.get("items") {
                for (i, item) in items.iter().enumerate() {
                    assert_documented(root, item_schema, item, &format!("{at}/{i}"));
                }
            }
        }
        _ => {}
    }
}

fn check_bundle(v: &jsonschema::Validator, path: &Path, what: &str) -> Value {
    let doc = read(path);
    assert_valid(v, &doc, what);
    let root = schema();
    assert_documented(&root, &root, &doc, "");
    doc
}

fn oak() -> PathBuf {
    vectors().join("snp/milan-v3-oak")
}

#[test]
fn simulated_collection_matches_the_schema() {
    let v = validator();
    let tmp = tempfile::tempdir().unwrap();
    let (out, r) = simulate(tmp.path(), "sim.json", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = check_bundle(&v, &out, "collect --simulate snp");
    assert_eq!(doc["nonce"]["report_data_derivation"], "sha512");
    assert_eq!(doc["endorsements"][0]["origin"]["kind"], "thim");
}

#[test]
fn simulated_configfs_tsm_collection_with_auxblob_matches_the_schema() {
    let v = validator();
    let tmp = tempfile::tempdir().unwrap();
    let (out, r) = simulate(tmp.path(), "tsm.json", &["--source", "configfs-tsm"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = check_bundle(&v, &out, "collect --simulate snp --source configfs-tsm");
    assert_eq!(doc["collection"]["provider"], "sev_guest");
    assert!(
        doc["evidence"]["auxblob"].is_string(),
        "the host attached a table"
    );
    assert_eq!(doc["endorsements"][0]["origin"]["kind"], "auxblob");
}

#[test]
fn imported_hardware_vector_matches_the_schema() {
    let v = validator();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("oak.json");
    let dir = oak();
    let r = run(&[
        "import",
        "--snp-report",
        p(&dir.join("report.bin")),
        "--add",
        p(&dir.join("vcek.der")),
        "--add",
        p(&dir.join("ask_ark.pem")),
        "-o",
        p(&out),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = check_bundle(&v, &out, "import of milan-v3-oak");
    assert_eq!(doc["collection"]["source"], "import");
    assert!(doc.get("nonce").is_none(), "no nonce was given");
    assert_eq!(doc["claims"]["product"], "Milan");
}

#[test]
fn raw_report_data_matches_the_schema() {
    let v = validator();
    let tmp = tempfile::tempdir().unwrap();
    let rd = "ab".repeat(64);
    let (out, r) = simulate(tmp.path(), "raw.json", &["--report-data", &rd]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = check_bundle(&v, &out, "collect --simulate snp --report-data");
    assert_eq!(doc["nonce"]["report_data_derivation"], "raw");
    assert_eq!(doc["nonce"]["value"], rd.as_str());
}

#[test]
fn report_of_unknown_product_matches_the_schema() {
    // A version 2 report with no certificates: the product cannot be told, so `claims.product`
    // is absent and the TCBs carry only `tcbm`.
    let v = validator();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("v2.json");
    let report = vectors().join("snp/milan-v2-virtee/report.bin");
    let r = run(&["import", "--snp-report", p(&report), "-o", p(&out)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = check_bundle(&v, &out, "import of a version 2 report alone");
    assert!(doc["claims"].get("product").is_none());
    assert!(doc["claims"]["reported_tcb"].get("bootloader").is_none());
}

#[test]
fn broken_documents_are_rejected_and_unknown_members_ignored() {
    let v = validator();
    let tmp = tempfile::tempdir().unwrap();
    let (out, r) = simulate(tmp.path(), "sim.json", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let good = read(&out);

    let mut no_evidence = good.clone();
    no_evidence.as_object_mut().unwrap().remove("evidence");
    assert!(!v.is_valid(&no_evidence), "a bundle without evidence");

    let mut next_version = good.clone();
    next_version["version"] = 2.into();
    assert!(!v.is_valid(&next_version), "version 2");

    let mut other_format = good.clone();
    other_format["format"] = "something-else".into();
    assert!(!v.is_valid(&other_format), "another format");

    let mut bad_base64 = good.clone();
    bad_base64["evidence"]["snp_report"] = "not base64!".into();
    assert!(!v.is_valid(&bad_base64), "a report that is not base64");

    let mut bad_kind = good.clone();
    bad_kind["endorsements"][0]["kind"] = "vcek-ish".into();
    assert!(!v.is_valid(&bad_kind), "an unknown endorsement kind");

    let mut short_raw = good.clone();
    short_raw["nonce"]["report_data_derivation"] = "raw".into();
    short_raw["nonce"]["value"] = "abcd".into();
    assert!(
        !v.is_valid(&short_raw),
        "a raw REPORT_DATA that is not 64 bytes"
    );

    // Additive fields do not change the version: readers, and the schema, ignore them.
    let mut extended = good.clone();
    extended["a_future_member"] = serde_json::json!({ "x": 1 });
    extended["claims"]["a_future_claim"] = 1.into();
    assert_valid(&v, &extended, "a bundle with unknown members");
}

#[test]
fn imported_tdx_vector_matches_the_schema() {
    let v = validator();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors/tdx/v4-uptodate-dcapqvl");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tdx.json");
    let mut args: Vec<String> = vec![
        "import".into(),
        "--tdx-quote".into(),
        dir.join("quote.bin").display().to_string(),
    ];
    for f in [
        "tcb_info.json",
        "tcb_info_issuer_chain.pem",
        "qe_identity.json",
        "pck_crl.der",
        "root_ca_crl.der",
    ] {
        args.push("--add".into());
        args.push(dir.join(f).display().to_string());
    }
    args.push("-o".into());
    args.push(out.display().to_string());
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_thimble"))
        .args(&args)
        .status()
        .unwrap();
    assert!(status.success());
    let doc = check_bundle(&v, &out, "imported TDX vector");
    assert_eq!(doc["tee"], "tdx");
    // A TDX bundle without its quote, or with SEV-SNP claims only, is not valid.
    let mut broken = doc.clone();
    broken["evidence"]
        .as_object_mut()
        .unwrap()
        .remove("tdx_quote");
    assert!(!v.is_valid(&broken));
}

#[test]
fn imported_azure_vectors_match_the_schema() {
    let v = validator();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/azure");
    let tmp = tempfile::tempdir().unwrap();
    for (case, extra) in [
        (
            "snp-hcl-milan-v3-v1",
            vec!["--add", "vcek.der", "--add", "ask_ark.pem"],
        ),
        (
            "tdx-hcl-v4-outofdate",
            vec![
                "--tdx-quote",
                "quote.bin",
                "--add",
                "tcb_info.json",
                "--add",
                "qe_identity.json",
            ],
        ),
    ] {
        let dir = root.join(case);
        let out = tmp.path().join(format!("{case}.json"));
        let mut args: Vec<String> = vec![
            "import".into(),
            "--hcl-report".into(),
            dir.join("hcl_report.bin").display().to_string(),
            "--tpm-quote".into(),
            dir.join("tpm_quote.json").display().to_string(),
        ];
        for pair in extra.chunks(2) {
            args.push(pair[0].into());
            args.push(dir.join(pair[1]).display().to_string());
        }
        args.extend(["-o".into(), out.display().to_string()]);
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_thimble"))
            .args(&args)
            .status()
            .unwrap();
        assert!(status.success(), "{case}");
        let doc = check_bundle(&v, &out, case);
        assert!(doc["tee"].as_str().unwrap().starts_with("azure-"));
        let mut broken = doc.clone();
        broken["evidence"]
            .as_object_mut()
            .unwrap()
            .remove("hcl_report");
        assert!(
            !v.is_valid(&broken),
            "{case}: an Azure bundle needs its HCL report"
        );
    }
}

#[test]
fn every_simulated_tee_matches_the_schema() {
    let v = validator();
    let tmp = tempfile::tempdir().unwrap();
    for (tee, extra) in [
        ("tdx", &[][..]),
        ("tdx", &["--source", "tdx-guest"][..]),
        ("azure-snp", &[][..]),
        ("azure-tdx", &[][..]),
    ] {
        let out = tmp.path().join(format!("{tee}.json"));
        let mut args = vec!["collect", "--simulate", tee, "-o", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_thimble"))
            .args(&args)
            .status()
            .unwrap();
        assert!(status.success(), "{tee} {extra:?}");
        check_bundle(&v, &out, &format!("collect --simulate {tee} {extra:?}"));
    }
}
