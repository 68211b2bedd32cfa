// SPDX-License-Identifier: Apache-2.0
//! Every TDX case under `tests/vectors/tdx` (real quotes and Intel collateral, see its README and
//! LICENSES) verified through the library with the outcome, TCB status and alternative outcome its
//! `case.toml` declares, with dcap-qvl's whole-quote `verify` as an oracle wherever its own
//! TD-attribute policy lets it run; then tampered quotes and collateral, and the policy knobs.

#![expect(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    reason = "a test reads its vector files and panics on setup failure"
)]

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thimble_evidence::cert_file::pem_certificates;
use thimble_evidence::tdx::{QeIdentityBody, TcbInfoBody, TdReport, TdxQuote};
use thimble_evidence::time_fmt::parse_rfc3339;
use thimble_verify::tdx::{TcbStatus, TdxCollateral, TdxPolicy, verify_quote};
use thimble_verify::{ErrorClass, IntelRoots, Outcome, Verdict};

#[derive(Deserialize)]
struct Case {
    id: String,
    expect: String,
    verify_at: String,
    #[serde(default)]
    tcb_status: Option<String>,
    #[serde(default)]
    alt_args: Vec<String>,
    #[serde(default)]
    alt_expect: Option<String>,
    #[serde(default)]
    alt_tcb_status: Option<String>,
}

struct Loaded {
    case: Case,
    at: i64,
    quote: Vec<u8>,
    collateral: TdxCollateral,
    /// The issuer chains as PEM text, for dcap-qvl.
    tcb_chain_pem: String,
    qe_chain_pem: String,
    pck_crl_chain_pem: String,
}

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

fn pem_file(dir: &Path, name: &str) -> (String, Vec<Vec<u8>>) {
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    let ders = pem_certificates(&text).unwrap();
    (text, ders)
}

fn load(dir: &Path) -> Loaded {
    let case: Case =
        toml::from_str(&std::fs::read_to_string(dir.join("case.toml")).unwrap()).unwrap();
    let at = parse_rfc3339(&case.verify_at).unwrap();
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
    let (tcb_chain_pem, tcb_chain) = pem_file(dir, "tcb_info_issuer_chain.pem");
    let (qe_chain_pem, qe_chain) = pem_file(dir, "qe_identity_issuer_chain.pem");
    let (pck_crl_chain_pem, pck_crl_chain) = pem_file(dir, "pck_crl_issuer_chain.pem");
    Loaded {
        at,
        quote: read("quote.bin"),
        collateral: TdxCollateral {
            tcb_info: read("tcb_info.json"),
            tcb_info_issuer_chain: tcb_chain,
            qe_identity: read("qe_identity.json"),
            qe_identity_issuer_chain: qe_chain,
            pck_crl: Some(read("pck_crl.der")),
            pck_crl_issuer_chain: pck_crl_chain,
            root_ca_crl: Some(read("root_ca_crl.der")),
            pck_chain: None,
        },
        case,
        tcb_chain_pem,
        qe_chain_pem,
        pck_crl_chain_pem,
    }
}

fn tdx_cases() -> Vec<Loaded> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(vectors().join("tdx"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| load(d)).collect()
}

fn case(id: &str) -> Loaded {
    load(&vectors().join("tdx").join(id))
}

fn azure() -> Loaded {
    load(&vectors().join("azure/tdx-hcl-v4-outofdate"))
}

fn verify(l: &Loaded, policy: &TdxPolicy) -> Outcome {
    verify_quote(&l.quote, &l.collateral, l.at, &IntelRoots::intel(), policy)
}

fn check(expect: &str, tcb_status: Option<&str>, outcome: &Outcome, id: &str) {
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
    if let Some(s) = tcb_status {
        assert_eq!(outcome.tcb_status.as_deref(), Some(s), "{id}: {outcome:?}");
    }
    assert_eq!(outcome.tee, "tdx");
    assert!(outcome.claims.is_some(), "{id}: claims are reported");
}

/// The policy for a case's `alt_args`.
fn alt_policy(args: &[String], id: &str) -> TdxPolicy {
    let mut p = TdxPolicy::default();
    for a in args {
        match a.as_str() {
            "--allow-debug" => p.allow_debug = true,
            "--allow-stale-collateral" => p.allow_stale_collateral = true,
            "--require-sept-ve-disable" => p.require_sept_ve_disable = true,
            other => panic!("{id}: alt_args {other} is not understood by this test"),
        }
    }
    p
}

/// dcap-qvl's verdict: its TCB status and advisories, or its error chain as text.
type OracleResult = Result<(String, Vec<String>), String>;

/// dcap-qvl's whole-quote verification of the same bytes.
fn oracle(l: &Loaded, allow_debug: bool) -> OracleResult {
    let tcb = TcbInfoBody::parse(&l.collateral.tcb_info).unwrap();
    let qe = QeIdentityBody::parse(&l.collateral.qe_identity).unwrap();
    let collateral = dcap_qvl::QuoteCollateralV3 {
        pck_crl_issuer_chain: l.pck_crl_chain_pem.clone(),
        root_ca_crl: l.collateral.root_ca_crl.clone().unwrap(),
        pck_crl: l.collateral.pck_crl.clone().unwrap(),
        tcb_info_issuer_chain: l.tcb_chain_pem.clone(),
        tcb_info: String::from_utf8(tcb.signed_bytes().to_vec()).unwrap(),
        tcb_info_signature: tcb.signature.to_vec(),
        qe_identity_issuer_chain: l.qe_chain_pem.clone(),
        qe_identity: String::from_utf8(qe.signed_bytes().to_vec()).unwrap(),
        qe_identity_signature: qe.signature.to_vec(),
        pck_certificate_chain: None,
    };
    let root = std::fs::read(vectors().join("roots/intel/sgx_root_ca.der")).unwrap();
    dcap_qvl::verify::QuoteVerifier::new(root)
        .allow_debug(allow_debug)
        .verify(&l.quote, &collateral, l.at as u64)
        .map(|r| (r.status, r.advisory_ids))
        .map_err(|e| format!("{e:#}"))
}

/// Where dcap-qvl's policy lets it run, it must agree on the status and advisories; where it
/// refuses, the refusal must be for the reason given.
fn compare_with_oracle(l: &Loaded, outcome: &Outcome, allow_debug: bool) {
    let id = &l.case.id;
    match oracle(l, allow_debug) {
        Ok((status, advisories)) => {
            assert_eq!(outcome.verdict, Verdict::Valid, "{id}: dcap-qvl accepts it");
            assert_eq!(outcome.tcb_status.as_deref(), Some(status.as_str()), "{id}");
            assert_eq!(outcome.advisory_ids, advisories, "{id}");
        }
        Err(e) => match outcome.errors.first().map(|e| e.code.as_str()) {
            Some("tcb-level-not-found") => {
                assert!(e.contains("No matching TCB level"), "{id}: dcap-qvl: {e}")
            }
            Some("policy-debug") => assert!(e.contains("Debug mode"), "{id}: dcap-qvl: {e}"),
            _ => panic!("{id}: dcap-qvl refuses ({e}) but thimble says {outcome:?}"),
        },
    }
}

#[test]
fn every_tdx_vector_behaves_as_declared() {
    let cases = tdx_cases();
    assert_eq!(cases.len(), 5);
    for l in &cases {
        let id = &l.case.id;
        let outcome = verify(l, &TdxPolicy::default());
        check(&l.case.expect, l.case.tcb_status.as_deref(), &outcome, id);
        compare_with_oracle(l, &outcome, false);
        if let Some(alt) = &l.case.alt_expect {
            let policy = alt_policy(&l.case.alt_args, id);
            let outcome = verify(l, &policy);
            check(alt, l.case.alt_tcb_status.as_deref(), &outcome, id);
            compare_with_oracle(l, &outcome, policy.allow_debug);
        }
    }
}

#[test]
fn errors_carry_their_class() {
    let l = case("v4-debug-td-2023");
    let o = verify(&l, &TdxPolicy::default());
    assert_eq!(o.errors[0].class, ErrorClass::Policy);
    // Authentic: the TCB is known even though the policy refuses the TD.
    assert_eq!(o.tcb_status.as_deref(), Some("UpToDate"));
    let l = case("v5-no-tcb-level-dcapqvl");
    let o = verify(&l, &TdxPolicy::default());
    assert_eq!(o.errors[0].class, ErrorClass::Authenticity);
    assert!(
        o.errors[0].message.contains("TEE_TCB_SVN"),
        "{:?}",
        o.errors
    );
    let mut q = l.quote.clone();
    q.truncate(100);
    let o = verify_quote(
        &q,
        &l.collateral,
        l.at,
        &IntelRoots::intel(),
        &TdxPolicy::default(),
    );
    assert_eq!(o.errors[0].code, "malformed-quote");
    assert_eq!(o.errors[0].class, ErrorClass::Malformed);
}

#[test]
fn claims_and_output_shape() {
    let l = case("v5-no-tcb-level-dcapqvl");
    let o = verify(&l, &TdxPolicy::default());
    let c = o.claims.unwrap();
    assert_eq!(c["quote_version"], 5);
    assert_eq!(c["body_type"], 3);
    assert_eq!(c["tee_tcb_svn_2"], "0d010300000000000000000000000000");
    assert_eq!(c["mrservicetd"], "0".repeat(96));
    assert_eq!(c["td_attributes"]["sept_ve_disable"], true);
    assert_eq!(c["pck"]["fmspc"], "90c06f000000");
    assert_eq!(c["pck"]["ca"], "platform");
    let l = case("v4-gcp-padded-uptodate");
    let o = verify(&l, &TdxPolicy::default());
    let json = serde_json::to_value(&o).unwrap();
    assert_eq!(json["tcb_status"], "UpToDate");
    assert!(
        json.get("advisory_ids").is_none(),
        "empty advisories are omitted"
    );
    assert_eq!(json["claims"]["trailing_bytes"], 3065);
    let roles: Vec<&str> = o.chain.iter().map(|c| c.role.as_str()).collect();
    assert_eq!(
        roles,
        ["pck", "pck-platform-ca", "intel-root-ca", "tcb-signing"]
    );
}

#[test]
fn azure_quote_is_outofdate_and_dcap_qvl_refuses_it_for_sept_ve_disable() {
    let l = azure();
    let o = verify(&l, &TdxPolicy::default());
    assert_eq!(o.verdict, Verdict::Valid, "{:?}", o.errors);
    assert_eq!(o.tcb_status.as_deref(), Some("OutOfDate"));
    assert_eq!(
        o.advisory_ids,
        ["INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"]
    );
    assert!(o.warnings.iter().any(|w| w.contains("SEPT_VE_DISABLE")));
    assert!(o.warnings.iter().any(|w| w.contains("OutOfDate")));
    // This is why the verification is composed from dcap-qvl's parts.
    let e = oracle(&l, false).unwrap_err();
    assert!(e.contains("SEPT_VE_DISABLE"), "{e}");

    // The TD report inside Azure's HCL report (after its 32-byte header) is the one quoted.
    let hcl = std::fs::read(vectors().join("azure/tdx-hcl-v4-outofdate/hcl_report.bin")).unwrap();
    let report = TdReport::parse(&hcl[32..32 + 1024]).unwrap();
    let quote = TdxQuote::parse(&l.quote).unwrap();
    assert!(report.mismatches(&quote.body).is_empty());
    let mut other = quote.body.clone();
    other.rtmr[2][0] ^= 1;
    assert_eq!(report.mismatches(&other), ["rtmr2"]);
}

#[test]
fn policy_knobs() {
    let l = azure();
    let policy = TdxPolicy {
        require_sept_ve_disable: true,
        min_tcb_status: Some(TcbStatus::SWHardeningNeeded),
        mrtd: vec![vec![0; 48]],
        mrconfigid: Some(vec![0; 48]),
        mrowner: Some(vec![1; 48]),
        rtmrs: [None, None, Some(vec![1; 48]), None],
        report_data: Some([7; 64]),
        ..TdxPolicy::default()
    };
    let o = verify(&l, &policy);
    let codes: Vec<&str> = o.errors.iter().map(|e| e.code.as_str()).collect();
    // MRCONFIGID is zero on this TD, so only MROWNER of the two differs.
    assert_eq!(
        codes,
        [
            "policy-sept-ve-disable",
            "policy-tcb-status",
            "policy-mrtd",
            "policy-mrowner",
            "policy-rtmr",
            "nonce-mismatch"
        ]
    );
    assert!(o.errors.iter().all(|e| e.class == ErrorClass::Policy));
    assert_eq!(o.tcb_status.as_deref(), Some("OutOfDate"));

    // The quote's own values pass.
    let q = TdxQuote::parse(&l.quote).unwrap();
    let policy = TdxPolicy {
        min_tcb_status: Some(TcbStatus::OutOfDate),
        mrtd: vec![q.body.mrtd.to_vec()],
        mrowner: Some(q.body.mrowner.to_vec()),
        rtmrs: q.body.rtmr.map(|r| Some(r.to_vec())),
        report_data: Some(q.body.report_data),
        ..TdxPolicy::default()
    };
    let o = verify(&l, &policy);
    assert_eq!(o.verdict, Verdict::Valid, "{:?}", o.errors);

    // Debug is refused, and allowed when asked.
    let l = case("v4-debug-td-2023");
    let o = verify(
        &l,
        &TdxPolicy {
            require_sept_ve_disable: true,
            ..TdxPolicy::default()
        },
    );
    assert_eq!(
        o.errors.len(),
        1,
        "SEPT_VE_DISABLE is set on this TD: {:?}",
        o.errors
    );
}

fn first_code(l: &Loaded, quote: &[u8], collateral: &TdxCollateral, policy: &TdxPolicy) -> String {
    let o = verify_quote(quote, collateral, l.at, &IntelRoots::intel(), policy);
    o.errors
        .first()
        .map(|e| e.code.to_string())
        .unwrap_or_else(|| "valid".into())
}

#[test]
fn tampered_quotes() {
    let l = case("v4-uptodate-dcapqvl");
    let p = TdxPolicy::default();
    let q = TdxQuote::parse(&l.quote).unwrap();
    assert_eq!(first_code(&l, &l.quote, &l.collateral, &p), "valid");
    let flip = |at: usize| {
        let mut b = l.quote.clone();
        b[at] ^= 0x01;
        b
    };
    // Header (user_data) and body (MRTD, REPORT_DATA): the attestation key's signature breaks.
    assert_eq!(first_code(&l, &flip(30), &l.collateral, &p), "signature");
    assert_eq!(
        first_code(&l, &flip(48 + 136), &l.collateral, &p),
        "signature"
    );
    assert_eq!(
        first_code(&l, &flip(48 + 520 + 63), &l.collateral, &p),
        "signature"
    );
    // The quote signature itself.
    let sig = q.signature_data_range().start;
    assert_eq!(
        first_code(&l, &flip(sig + 5), &l.collateral, &p),
        "signature"
    );
    // The attestation key: no longer the one the QE certified.
    assert_eq!(
        first_code(&l, &flip(sig + 64 + 5), &l.collateral, &p),
        "qe-binding"
    );
    // Certification data: the QE report (under the PCK's signature), the QE authentication data
    // (bound into the QE report), and the PCK leaf certificate (under its CA's signature).
    let cert = q.certification_range().start;
    assert_eq!(
        first_code(&l, &flip(cert + 100), &l.collateral, &p),
        "signature"
    );
    assert_eq!(
        first_code(&l, &flip(cert + 384 + 64 + 2 + 3), &l.collateral, &p),
        "qe-binding"
    );
    let pem_start = cert + 384 + 64 + 2 + q.qe.qe_auth_data.len() + 6;
    let mut b = l.quote.clone();
    // A base64 character well inside the leaf's TBSCertificate (its validity and subject).
    let at = pem_start + 28 + 300;
    b[at] = if b[at] == b'A' { b'B' } else { b'A' };
    assert_eq!(first_code(&l, &b, &l.collateral, &p), "chain");
    // Trailing bytes are not signed and do not matter.
    let mut b = l.quote.clone();
    let n = b.len();
    b[n - 1] ^= 0xff;
    b.extend_from_slice(b"more padding");
    assert_eq!(first_code(&l, &b, &l.collateral, &p), "valid");
    // A signature-data length that overruns the quote is malformed.
    let b = l.quote[..sig + 100].to_vec();
    assert_eq!(first_code(&l, &b, &l.collateral, &p), "malformed-quote");
}

fn replace(body: &[u8], from: &str, to: &str) -> Vec<u8> {
    let s = std::str::from_utf8(body).unwrap();
    assert!(s.contains(from), "{from} not in body");
    s.replacen(from, to, 1).into_bytes()
}

#[test]
fn tampered_collateral() {
    let l = case("v4-uptodate-dcapqvl");
    let p = TdxPolicy::default();
    let other = case("v4-gcp-padded-uptodate");
    // TCB info with another body's signature (the same key signed it, over other bytes).
    let mut c = l.collateral.clone();
    let theirs = TcbInfoBody::parse(&other.collateral.tcb_info).unwrap();
    let ours = TcbInfoBody::parse(&l.collateral.tcb_info).unwrap();
    c.tcb_info = replace(
        &c.tcb_info,
        &hex::encode(ours.signature),
        &hex::encode(theirs.signature),
    );
    assert_eq!(first_code(&l, &l.quote, &c, &p), "collateral-signature");
    // One changed value inside the signed object.
    let mut c = l.collateral.clone();
    c.tcb_info = replace(
        &c.tcb_info,
        "\"tcbEvaluationDataNumber\":17",
        "\"tcbEvaluationDataNumber\":18",
    );
    assert_eq!(first_code(&l, &l.quote, &c, &p), "collateral-signature");
    let mut c = l.collateral.clone();
    c.qe_identity = replace(&c.qe_identity, "\"isvprodid\":2", "\"isvprodid\":3");
    assert_eq!(first_code(&l, &l.quote, &c, &p), "collateral-signature");
    // Whitespace outside the signed object does not matter: the signed bytes are taken from the
    // body, not re-serialised.
    let mut c = l.collateral.clone();
    let mut spaced = b"  {  ".to_vec();
    spaced.extend_from_slice(&c.tcb_info[1..]);
    c.tcb_info = spaced;
    assert_eq!(first_code(&l, &l.quote, &c, &p), "valid");
    // TCB info for another platform, properly signed.
    let mut c = l.collateral.clone();
    c.tcb_info = other.collateral.tcb_info.clone();
    assert_eq!(first_code(&l, &l.quote, &c, &p), "collateral-mismatch");
    // The QE identity with a signer chain that is Intel's but not the TCB Signing role: here the
    // PCK CA, which chains to the root. Refused for its role, before any signature is tried.
    let mut c = l.collateral.clone();
    let q = TdxQuote::parse(&l.quote).unwrap();
    c.qe_identity_issuer_chain = q.pck_chain.clone().unwrap()[1..].to_vec();
    assert_eq!(first_code(&l, &l.quote, &c, &p), "chain");
    let o = verify_quote(&l.quote, &c, l.at, &IntelRoots::intel(), &p);
    assert!(
        o.errors[0].message.contains("Intel SGX TCB Signing"),
        "{:?}",
        o.errors
    );
    // A PCK CRL of the wrong CA (the root CA CRL in its place).
    let mut c = l.collateral.clone();
    c.pck_crl = c.root_ca_crl.clone();
    assert_eq!(first_code(&l, &l.quote, &c, &p), "collateral-mismatch");
    // Missing CRLs: a missing endorsement, as in Intel's QVL; verified with warnings only when
    // the policy accepts their absence.
    let mut c = l.collateral.clone();
    c.pck_crl = None;
    assert_eq!(first_code(&l, &l.quote, &c, &p), "missing-endorsement");
    let mut c = l.collateral.clone();
    c.root_ca_crl = None;
    assert_eq!(first_code(&l, &l.quote, &c, &p), "missing-endorsement");
    c.pck_crl = None;
    let lenient = TdxPolicy {
        allow_missing_crl: true,
        ..p.clone()
    };
    let o = verify_quote(&l.quote, &c, l.at, &IntelRoots::intel(), &lenient);
    assert_eq!(o.verdict, Verdict::Valid);
    assert_eq!(
        o.warnings
            .iter()
            .filter(|w| w.contains("revocation"))
            .count(),
        2
    );
    // A chain that ends at a look-alike root is refused: only the pinned root counts.
    let o = verify_quote(&l.quote, &l.collateral, l.at, &IntelRoots::default(), &p);
    assert_eq!(o.errors[0].code, "chain");
}

#[test]
fn stale_and_future_collateral() {
    let l = case("v4-uptodate-dcapqvl");
    let tcb = TcbInfoBody::parse(&l.collateral.tcb_info).unwrap();
    // One day past the TCB info's nextUpdate (the PCK CRL and QE identity expire with it).
    let late = tcb.next_update + 86400;
    let strict = TdxPolicy::default();
    let o = verify_quote(&l.quote, &l.collateral, late, &IntelRoots::intel(), &strict);
    assert_eq!(o.errors[0].code, "collateral-expired", "{:?}", o.errors);
    assert_eq!(o.errors[0].class, ErrorClass::Authenticity);
    let lenient = TdxPolicy {
        allow_stale_collateral: true,
        ..TdxPolicy::default()
    };
    let o = verify_quote(
        &l.quote,
        &l.collateral,
        late,
        &IntelRoots::intel(),
        &lenient,
    );
    assert_eq!(o.verdict, Verdict::Valid, "{:?}", o.errors);
    assert_eq!(o.tcb_status.as_deref(), Some("UpToDate"));
    let stale: Vec<&String> = o
        .warnings
        .iter()
        .filter(|w| w.contains("nextUpdate"))
        .collect();
    assert_eq!(stale.len(), 3, "PCK CRL, TCB info, QE identity: {stale:?}");
    // Without the PCK CRL (and a policy that accepts that), the TCB info is the first stale item.
    let mut c = l.collateral.clone();
    c.pck_crl = None;
    let no_crl = TdxPolicy {
        allow_missing_crl: true,
        ..TdxPolicy::default()
    };
    let o = verify_quote(&l.quote, &c, late, &IntelRoots::intel(), &no_crl);
    assert_eq!(o.errors[0].code, "collateral-expired");
    assert!(
        o.errors[0].message.starts_with("TCB info"),
        "{:?}",
        o.errors
    );
    // Before the collateral was issued.
    let early = tcb.issue_date - 86400;
    let o = verify_quote(
        &l.quote,
        &l.collateral,
        early,
        &IntelRoots::intel(),
        &lenient,
    );
    assert_eq!(
        o.errors[0].code, "collateral-not-yet-valid",
        "{:?}",
        o.errors
    );
    // Long after: the certificates themselves have expired.
    let o = verify_quote(
        &l.quote,
        &l.collateral,
        4_102_444_800,
        &IntelRoots::intel(),
        &lenient,
    );
    assert_eq!(o.errors[0].code, "certificate-expired", "{:?}", o.errors);
}
