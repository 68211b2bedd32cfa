// SPDX-License-Identifier: Apache-2.0
//! Every Azure case under `tests/vectors/azure` (real HCL reports from Azure CVMs with their VCEK
//! chains or TDX quotes, and vTPM quotes; see its README and LICENSES) verified through
//! `verify_hcl` with the outcome its `case.toml` declares, with the right and a wrong nonce; then
//! tampered runtime data, TPM quotes, PCR values and hardware reports, and the policy knobs.

#![expect(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    reason = "a test reads its vector files and panics on setup failure"
)]

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thimble_evidence::azure::{HclReport, TpmQuote};
use thimble_evidence::cert_file::{FileContent, pem_certificates, recognise};
use thimble_evidence::snp::AmdCert;
use thimble_evidence::time_fmt::parse_rfc3339;
use thimble_verify::azure::{AzurePolicy, AzureRoots, HardwareEndorsements, verify_hcl};
use thimble_verify::tdx::TdxCollateral;
use thimble_verify::{ErrorClass, Outcome, Verdict};

#[derive(Deserialize)]
struct Case {
    id: String,
    tee: String,
    expect: String,
    verify_at: String,
    #[serde(default)]
    tcb_status: Option<String>,
    #[serde(default)]
    nonce_hex: Option<String>,
}

struct Loaded {
    case: Case,
    at: i64,
    hcl: Vec<u8>,
    quote: TpmQuote,
    hardware: HardwareEndorsements,
}

impl Loaded {
    fn nonce(&self) -> Option<Vec<u8>> {
        self.case
            .nonce_hex
            .as_ref()
            .map(|h| hex::decode(h).unwrap())
    }

    fn policy(&self) -> AzurePolicy {
        AzurePolicy {
            expected_nonce: self.nonce(),
            ..AzurePolicy::default()
        }
    }

    fn verify_with(
        &self,
        hcl: &[u8],
        quote: Option<&TpmQuote>,
        hardware: &HardwareEndorsements,
        policy: &AzurePolicy,
    ) -> Outcome {
        verify_hcl(hcl, quote, hardware, self.at, &AzureRoots::pinned(), policy)
    }

    fn verify(&self, policy: &AzurePolicy) -> Outcome {
        self.verify_with(&self.hcl, Some(&self.quote), &self.hardware, policy)
    }
}

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

const NOT_ENDORSEMENTS: [&str; 3] = ["case.toml", "hcl_report.bin", "tpm_quote.json"];

fn load(dir: &Path) -> Loaded {
    let case: Case =
        toml::from_str(&std::fs::read_to_string(dir.join("case.toml")).unwrap()).unwrap();
    let at = parse_rfc3339(&case.verify_at).unwrap();
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
    let pem = |n: &str| pem_certificates(&std::fs::read_to_string(dir.join(n)).unwrap()).unwrap();
    let hardware = match case.tee.as_str() {
        "sev-snp" => {
            let mut certs = Vec::new();
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_str().unwrap().to_string();
                if NOT_ENDORSEMENTS.contains(&name.as_str()) {
                    continue;
                }
                match recognise(&std::fs::read(&path).unwrap()) {
                    Ok(FileContent::Certificates(ders)) => {
                        certs.extend(ders.iter().map(|d| AmdCert::parse_der(d).unwrap()));
                    }
                    _ => panic!("{}: {name} is not certificates", case.id),
                }
            }
            HardwareEndorsements::Snp {
                certs,
                crls: Vec::new(),
            }
        }
        "tdx" => HardwareEndorsements::Tdx {
            quote: read("quote.bin"),
            collateral: TdxCollateral {
                tcb_info: read("tcb_info.json"),
                tcb_info_issuer_chain: pem("tcb_info_issuer_chain.pem"),
                qe_identity: read("qe_identity.json"),
                qe_identity_issuer_chain: pem("qe_identity_issuer_chain.pem"),
                pck_crl: Some(read("pck_crl.der")),
                pck_crl_issuer_chain: pem("pck_crl_issuer_chain.pem"),
                root_ca_crl: Some(read("root_ca_crl.der")),
                pck_chain: None,
            },
        },
        other => panic!("{}: tee {other}", case.id),
    };
    Loaded {
        at,
        hcl: read("hcl_report.bin"),
        quote: TpmQuote::parse_json(&read("tpm_quote.json")).unwrap(),
        hardware,
        case,
    }
}

fn cases() -> Vec<Loaded> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(vectors().join("azure"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| load(d)).collect()
}

fn case(id: &str) -> Loaded {
    load(&vectors().join("azure").join(id))
}

fn codes(o: &Outcome) -> Vec<&'static str> {
    o.errors.iter().map(|e| e.code.as_str()).collect()
}

fn check(expect: &str, outcome: &Outcome, id: &str) {
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

/// Flips the first hex digit of `user-data` in the runtime data: the JSON stays valid, the
/// bytes the hardware report binds change.
fn tamper_runtime_data(hcl: &[u8]) -> Vec<u8> {
    let r = HclReport::parse(hcl).unwrap();
    let key = b"\"user-data\":\"";
    let at = r.runtime_data_range.start
        + r.runtime_data_bytes()
            .windows(key.len())
            .position(|w| w == key)
            .unwrap()
        + key.len();
    let mut b = hcl.to_vec();
    b[at] = if b[at] == b'0' { b'1' } else { b'0' };
    b
}

#[test]
fn every_azure_vector_behaves_as_declared() {
    let cases = cases();
    assert_eq!(cases.len(), 5);
    for l in &cases {
        let id = &l.case.id;
        let o = l.verify(&l.policy());
        check(&l.case.expect, &o, id);
        let tee = if l.case.tee == "tdx" {
            "azure-tdx"
        } else {
            "azure-sev-snp"
        };
        assert_eq!(o.tee, tee, "{id}");
        if let Some(s) = &l.case.tcb_status {
            assert_eq!(o.tcb_status.as_deref(), Some(s.as_str()), "{id}");
        }
        let claims = o.claims.as_ref().unwrap();
        for k in ["hardware", "hcl", "runtime_data", "tpm_quote"] {
            assert!(claims.get(k).is_some(), "{id}: claims.{k}");
        }
        assert_eq!(
            claims["tpm_quote"]["pcrs"].as_object().unwrap().len(),
            24,
            "{id}"
        );
        assert_eq!(
            claims["runtime_data"]["vm-configuration"]["secure-boot"], true,
            "{id}"
        );

        match l.nonce() {
            Some(nonce) => {
                assert_eq!(
                    claims["tpm_quote"]["extra_data"],
                    hex::encode(&nonce),
                    "{id}"
                );
                let mut wrong = l.policy();
                wrong.expected_nonce = Some(b"another".to_vec());
                let o = l.verify(&wrong);
                assert_eq!(codes(&o), ["nonce-mismatch"], "{id}");
                assert_eq!(o.worst_class(), Some(ErrorClass::Policy), "{id}");
            }
            None => {
                // No nonce to check: valid, with a warning that freshness was not established.
                assert!(
                    o.warnings
                        .iter()
                        .any(|w| w.contains("no nonce was expected")),
                    "{id}: {:?}",
                    o.warnings
                );
            }
        }
        // Without an expected nonce every case is valid too, with that warning.
        let o = l.verify(&AzurePolicy::default());
        check(&l.case.expect, &o, id);
        assert!(o.warnings.iter().any(|w| w.contains("may be a replay")));
    }
}

#[test]
fn tampered_runtime_data_breaks_the_binding() {
    for l in cases() {
        let hcl = tamper_runtime_data(&l.hcl);
        let o = l.verify_with(&hcl, Some(&l.quote), &l.hardware, &l.policy());
        assert_eq!(codes(&o), ["hcl-binding"], "{}", l.case.id);
        assert_eq!(o.worst_class(), Some(ErrorClass::Authenticity));
        // The hardware claims are still reported; the runtime data is not, as it is not trusted.
        let claims = o.claims.unwrap();
        assert!(claims.get("hardware").is_some());
        assert!(claims.get("runtime_data").is_none());
    }
}

#[test]
fn tampered_tpm_quotes_are_refused() {
    for l in cases() {
        let id = &l.case.id;
        // A byte of the nonce in the message.
        let mut q = l.quote.clone();
        let a = q.attest().unwrap();
        let pos = q
            .message
            .windows(a.extra_data.len())
            .position(|w| w == a.extra_data)
            .unwrap();
        q.message[pos] ^= 1;
        let o = l.verify_with(&l.hcl, Some(&q), &l.hardware, &l.policy());
        assert_eq!(codes(&o), ["tpm-quote-signature"], "{id}");

        // The signature.
        let mut q = l.quote.clone();
        q.signature[100] ^= 0x80;
        let o = l.verify_with(&l.hcl, Some(&q), &l.hardware, &l.policy());
        assert_eq!(codes(&o), ["tpm-quote-signature"], "{id}");

        // A PCR value.
        let mut q = l.quote.clone();
        q.pcrs[7][0] ^= 1;
        let o = l.verify_with(&l.hcl, Some(&q), &l.hardware, &l.policy());
        assert_eq!(codes(&o), ["tpm-pcr-digest"], "{id}");
        assert_eq!(o.worst_class(), Some(ErrorClass::Authenticity));

        // A missing PCR value: the quote covers a PCR whose value is not given.
        let mut q = l.quote.clone();
        q.pcrs.pop();
        let o = l.verify_with(&l.hcl, Some(&q), &l.hardware, &l.policy());
        assert_eq!(codes(&o), ["tpm-pcr-selection"], "{id}");
    }
}

#[test]
fn a_quote_by_another_vms_key_is_refused() {
    let v2 = case("snp-hcl-milan-v2");
    let v3 = case("snp-hcl-milan-v3-v2");
    let o = v2.verify_with(
        &v2.hcl,
        Some(&v3.quote),
        &v2.hardware,
        &AzurePolicy::default(),
    );
    assert_eq!(codes(&o), ["tpm-quote-signature"]);
    // v3-v0 and v3-v1 are two quotes by one VM (same HCLAkPub): each verifies with the other's
    // HCL report.
    let a = case("snp-hcl-milan-v3-v0");
    let b = case("snp-hcl-milan-v3-v1");
    let o = a.verify_with(&a.hcl, Some(&b.quote), &b.hardware, &a.policy());
    assert_eq!(o.verdict, Verdict::Valid, "{:?}", o.errors);
}

#[test]
fn tampered_hardware_reports_are_refused() {
    // SEV-SNP: a byte of MEASUREMENT (report offset 0x90), under the report signature.
    let l = case("snp-hcl-milan-v2");
    let mut hcl = l.hcl.clone();
    hcl[0x20 + 0x90] ^= 1;
    let o = l.verify_with(&hcl, Some(&l.quote), &l.hardware, &l.policy());
    assert_eq!(codes(&o), ["signature"]);
    assert!(o.claims.unwrap().get("runtime_data").is_none());

    // SEV-SNP: REPORT_DATA changed to the digest of other runtime data would need the AMD key;
    // with its upper half non-zero it is refused as a bad signature before the binding.
    let mut hcl = l.hcl.clone();
    hcl[0x20 + 0x50 + 40] = 1;
    let o = l.verify_with(&hcl, Some(&l.quote), &l.hardware, &l.policy());
    assert_eq!(codes(&o), ["signature"]);

    // TDX: RTMR2 of the TD report (TDINFO_STRUCT at 0x200, RTMRs at 0xd0) no longer matches the
    // quoted one.
    let l = case("tdx-hcl-v4-outofdate");
    let mut hcl = l.hcl.clone();
    hcl[0x20 + 0x200 + 0xd0 + 2 * 48] ^= 1;
    let o = l.verify_with(&hcl, Some(&l.quote), &l.hardware, &l.policy());
    assert_eq!(codes(&o), ["td-report-mismatch"]);
    assert!(o.errors[0].message.contains("rtmr2"));

    // TDX: a tampered quote fails its own verification.
    let HardwareEndorsements::Tdx {
        mut quote,
        collateral,
    } = l.hardware.clone()
    else {
        unreachable!()
    };
    quote[48 + 136] ^= 1; // MRTD
    let hw = HardwareEndorsements::Tdx { quote, collateral };
    let o = l.verify_with(&l.hcl, Some(&l.quote), &hw, &l.policy());
    assert_eq!(codes(&o), ["signature"]);
}

#[test]
fn endorsements_of_the_other_tee_are_refused() {
    let snp = case("snp-hcl-milan-v2");
    let tdx = case("tdx-hcl-v4-outofdate");
    let o = snp.verify_with(&snp.hcl, Some(&snp.quote), &tdx.hardware, &snp.policy());
    assert_eq!(codes(&o), ["missing-endorsement"]);
    assert_eq!(o.tee, "azure-sev-snp");
    let o = tdx.verify_with(&tdx.hcl, Some(&tdx.quote), &snp.hardware, &tdx.policy());
    assert_eq!(codes(&o), ["missing-endorsement"]);
    assert_eq!(o.tee, "azure-tdx");
    // No VCEK at all.
    let none = HardwareEndorsements::Snp {
        certs: Vec::new(),
        crls: Vec::new(),
    };
    let o = snp.verify_with(&snp.hcl, Some(&snp.quote), &none, &snp.policy());
    assert_eq!(codes(&o), ["missing-endorsement"]);
}

#[test]
fn a_report_without_a_quote_is_stale() {
    let l = case("snp-hcl-milan-v3-v1");
    let o = l.verify_with(&l.hcl, None, &l.hardware, &AzurePolicy::default());
    assert_eq!(codes(&o), ["missing-tpm-quote"]);
    assert_eq!(o.worst_class(), Some(ErrorClass::Policy));
    // With a nonce expected, that it cannot be checked is a second violation.
    let o = l.verify_with(&l.hcl, None, &l.hardware, &l.policy());
    assert_eq!(codes(&o), ["missing-tpm-quote", "nonce-mismatch"]);

    let allow = AzurePolicy {
        allow_stale_report: true,
        ..AzurePolicy::default()
    };
    let o = l.verify_with(&l.hcl, None, &l.hardware, &allow);
    assert_eq!(o.verdict, Verdict::Valid, "{:?}", o.errors);
    assert!(o.warnings.iter().any(|w| w.contains("no TPM quote")));
    let claims = o.claims.unwrap();
    assert!(claims.get("runtime_data").is_some());
    assert!(claims.get("tpm_quote").is_none());
}

#[test]
fn tdx_behind_the_paravisor() {
    let l = case("tdx-hcl-v4-outofdate");
    let o = l.verify(&l.policy());
    assert_eq!(o.verdict, Verdict::Valid, "{:?}", o.errors);
    assert_eq!(o.tcb_status.as_deref(), Some("OutOfDate"));
    assert_eq!(
        o.advisory_ids,
        ["INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"]
    );
    let claims = o.claims.as_ref().unwrap();
    assert_eq!(
        claims["hardware"]["td_attributes"]["raw"],
        "0x0000000000000000"
    );
    assert_eq!(
        claims["hardware"]["td_attributes"]["sept_ve_disable"],
        false
    );
    assert!(o.warnings.iter().any(|w| w.contains("SEPT_VE_DISABLE")));

    // The policy knob is the TDX one.
    let mut p = l.policy();
    p.tdx.require_sept_ve_disable = true;
    let o = l.verify(&p);
    assert_eq!(codes(&o), ["policy-sept-ve-disable"]);

    // An expected REPORT_DATA in the hardware policy is not applied: on Azure it is the runtime
    // data digest, checked by the binding.
    let mut p = l.policy();
    p.tdx.report_data = Some([7; 64]);
    assert_eq!(l.verify(&p).verdict, Verdict::Valid);
}

#[test]
fn snp_policy_applies_and_report_data_is_left_to_the_binding() {
    let l = case("snp-hcl-milan-v3-v2");
    let mut p = l.policy();
    p.snp.measurement = Some(vec![0; 48]);
    p.snp.report_data = Some([7; 64]);
    p.expected_nonce = Some(vec![1]);
    let o = l.verify(&p);
    // Policy violations are all reported, and the TPM quote is still checked.
    assert_eq!(codes(&o), ["policy-measurement", "nonce-mismatch"]);
    assert!(o.claims.unwrap().get("tpm_quote").is_some());
    assert_eq!(o.product.map(|p| p.to_string()).as_deref(), Some("Milan"));
    assert_eq!(o.signer.as_deref(), Some("vcek"));
    assert!(!o.chain.is_empty());
}

#[test]
fn claims_carry_the_azure_view() {
    let l = case("snp-hcl-milan-v3-v2");
    let o = l.verify(&l.policy());
    let c = o.claims.unwrap();
    let rt = &c["runtime_data"];
    assert_eq!(rt["keys"][0]["kid"], "HCLAkPub");
    assert_eq!(rt["keys"][1]["kid"], "HCLEkPub");
    assert_eq!(
        rt["vm-configuration"]["vmUniqueId"],
        "7DF7B373-B947-4AAA-96E5-C358F2A03D20"
    );
    assert_eq!(rt["vm-configuration"]["tpm-enabled"], true);
    assert_eq!(rt["vm-configuration"]["console-enabled"], true);
    // This VM wrote its nonce to NV 0x01400002 too: user-data starts with the quote's nonce.
    let nonce = c["tpm_quote"]["extra_data"].as_str().unwrap();
    assert_eq!(nonce.len(), 96);
    assert!(rt["user-data"].as_str().unwrap().starts_with(nonce));
    assert_eq!(c["hcl"]["request_data"]["report_type"], "snp");
    assert_eq!(c["hcl"]["request_data"]["report_data_hash_type"], "sha256");
    assert_eq!(
        c["hcl"]["runtime_data_digest"].as_str().unwrap(),
        &c["hardware"]["report_data"].as_str().unwrap()[..64]
    );
    assert_eq!(c["tpm_quote"]["pcrs"]["0"].as_str().unwrap().len(), 64);
}

#[test]
fn malformed_inputs_are_malformed() {
    let l = case("snp-hcl-milan-v2");
    for bad in [&l.hcl[..100], &l.hcl[..1300], b"HCLB".as_slice(), &[]] {
        let o = l.verify_with(bad, Some(&l.quote), &l.hardware, &l.policy());
        assert_eq!(codes(&o), ["malformed-hcl-report"]);
        assert_eq!(o.worst_class(), Some(ErrorClass::Malformed));
    }
    // A quote message the AK signed cannot be unparseable, so a truncated one fails the
    // signature first.
    let mut q = l.quote.clone();
    q.message.truncate(50);
    let o = l.verify_with(&l.hcl, Some(&q), &l.hardware, &l.policy());
    assert_eq!(codes(&o), ["tpm-quote-signature"]);
}
