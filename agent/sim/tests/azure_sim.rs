// SPDX-License-Identifier: Apache-2.0
//! The simulated Azure paravisor against the real verifier: an SEV-SNP HCL report signed by the
//! simulated VCEK and a TDX one quoted by the simulated TDX platform (through the emulated IMDS
//! `/acc/tdquote` as well as directly) verify with their TPM quotes under the simulation roots,
//! and the nonce, the runtime data binding, the quote signature and the PCR digest are each
//! checked. The `/acc/tdquote` emulator enforces the request contract of docs/formats.md §5.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on fixture and emulator setup failures"
)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use thimble_collect::acc::fetch_td_quote;
use thimble_collect::http::{HttpClient, HttpConfig};
use thimble_evidence::azure::{HCL_REPORT_NV_INDEX, HclReport, TpmQuote};
use thimble_evidence::cert_file::pem_certificates;
use thimble_evidence::snp::{AmdCert, Product};
use thimble_sim::azure_sim::{
    ACC_TDQUOTE_PATH, AzureImds, QuoteEncoding, SIM_HCL_NV_SIZE, SIM_PARAVISOR_ID_KEY_DIGEST,
    SIM_PARAVISOR_MRTD, SimHcl, SimTpmQuote,
};
use thimble_sim::emulator::{
    EmulatorConfig, Fault, FaultRule, MISSING_METADATA_BODY, serve_one_connection_with,
};
use thimble_sim::signer::sim_chain;
use thimble_sim::tdx_signer::{SimCollateral, SimTdx};
use thimble_verify::azure::{
    AzurePolicy, AzureRoots, HardwareEndorsements, ParavisorPolicy, TrustedParavisor, verify_hcl,
};
use thimble_verify::tdx::TdxCollateral;
use thimble_verify::{IntelRoots, Outcome, TrustedRoots, Verdict};

/// 2026-06-01T00:00:00Z: inside the simulated VCEK's validity and the TDX collateral's.
const AT: i64 = 1_780_272_000;

const NONCE: &[u8] = b"thimble azure simulation nonce";

fn user_data() -> [u8; 64] {
    std::array::from_fn(|i| 0xa0 ^ i as u8)
}

fn snp_endorsements() -> HardwareEndorsements {
    let chain = sim_chain();
    let certs = [chain.vcek_der, chain.ask_der, chain.ark_der]
        .iter()
        .map(|der| AmdCert::parse_der(der).unwrap())
        .collect();
    HardwareEndorsements::Snp {
        certs,
        crls: vec![chain.crl_der.to_vec()],
    }
}

fn tdx_collateral(c: &SimCollateral) -> TdxCollateral {
    let pems = |pem: &str| pem_certificates(pem).unwrap();
    TdxCollateral {
        tcb_info: c.tcb_info.clone(),
        tcb_info_issuer_chain: pems(&c.tcb_info_issuer_chain_pem),
        qe_identity: c.qe_identity.clone(),
        qe_identity_issuer_chain: pems(&c.qe_identity_issuer_chain_pem),
        pck_crl: Some(c.pck_crl_der.clone()),
        pck_crl_issuer_chain: pems(&c.pck_crl_issuer_chain_pem),
        root_ca_crl: Some(c.root_ca_crl_der.clone()),
        pck_chain: None,
    }
}

fn roots(sim: &SimTdx) -> AzureRoots {
    AzureRoots {
        amd: TrustedRoots::amd().insecure_add_simulated(Product::Milan, sim_chain().ark_der),
        intel: IntelRoots::insecure_custom(sim.pki().root_ca_der),
    }
}

/// The pinned paravisors and the simulated one, as `--insecure-allow-simulated` trusts them.
fn paravisors() -> ParavisorPolicy {
    let mut p = ParavisorPolicy::pinned();
    let sim = |value: [u8; 48]| TrustedParavisor {
        value,
        label: "simulation".into(),
    };
    p.snp_keys.push(sim(SIM_PARAVISOR_ID_KEY_DIGEST));
    p.tdx_mrtds.push(sim(SIM_PARAVISOR_MRTD));
    p
}

fn policy(nonce: &[u8]) -> AzurePolicy {
    AzurePolicy {
        expected_nonce: Some(nonce.to_vec()),
        paravisor: paravisors(),
        ..AzurePolicy::default()
    }
}

fn tdx_endorsements(sim: &SimTdx, hcl: &[u8], quote: Vec<u8>) -> HardwareEndorsements {
    assert_eq!(
        HclReport::parse(hcl).unwrap().hw_report(),
        SimHcl::td_report(hcl).unwrap()
    );
    HardwareEndorsements::Tdx {
        quote,
        collateral: tdx_collateral(&sim.collateral(AT)),
    }
}

fn codes(o: &Outcome) -> Vec<&str> {
    o.errors.iter().map(|e| e.code.as_str()).collect()
}

fn assert_valid(o: &Outcome, tee: &str) {
    assert_eq!(o.verdict, Verdict::Valid, "{:?}", o.errors);
    assert_eq!(o.tee, tee);
    assert!(o.simulated);
    let claims = o.claims.as_ref().unwrap();
    assert_eq!(
        claims["runtime_data"]["user-data"],
        hex::encode(user_data())
    );
    assert_eq!(claims["tpm_quote"]["extra_data"], hex::encode(NONCE));
    assert_eq!(claims["tpm_quote"]["pcrs"].as_object().unwrap().len(), 24);
}

fn quote() -> TpmQuote {
    SimTpmQuote::quote(NONCE, &SimTpmQuote::default_pcrs()).unwrap()
}

#[test]
fn simulated_snp_hcl_report_and_tpm_quote_verify() {
    let sim = SimTdx::load();
    let hcl = SimHcl::snp(&user_data());
    let o = verify_hcl(
        &hcl,
        Some(&quote()),
        &snp_endorsements(),
        AT,
        &roots(&sim),
        &policy(NONCE),
    );
    assert_valid(&o, "azure-sev-snp");
    assert_eq!(
        o.warnings.len(),
        1,
        "only the simulation root: {:?}",
        o.warnings
    );
    assert_eq!(o.product, Some(Product::Milan));

    // The pinned AMD roots alone refuse the simulation.
    let pinned = verify_hcl(
        &hcl,
        Some(&quote()),
        &snp_endorsements(),
        AT,
        &AzureRoots::pinned(),
        &policy(NONCE),
    );
    assert_eq!(pinned.verdict, Verdict::Invalid);
    assert!(!pinned.simulated);
}

#[test]
fn simulated_tdx_hcl_report_and_tpm_quote_verify() {
    let sim = SimTdx::load();
    let hcl = SimHcl::tdx(&user_data());
    let td_report = SimHcl::td_report(&hcl).unwrap();
    let endorsements = tdx_endorsements(&sim, &hcl, sim.quote_from_td_report(&td_report));
    let o = verify_hcl(
        &hcl,
        Some(&quote()),
        &endorsements,
        AT,
        &roots(&sim),
        &policy(NONCE),
    );
    assert_valid(&o, "azure-tdx");
    // The test root, and SEPT_VE_DISABLE unset as under Azure's paravisor: nothing else.
    assert_eq!(o.warnings.len(), 2, "{:?}", o.warnings);
    assert!(o.warnings[1].contains("SEPT_VE_DISABLE"));
    assert_eq!(o.tcb_status.as_deref(), Some("UpToDate"));
}

#[test]
fn wrong_nonce_is_a_policy_failure() {
    let sim = SimTdx::load();
    for (hcl, hw) in [
        (SimHcl::snp(&user_data()), None),
        (SimHcl::tdx(&user_data()), Some(())),
    ] {
        let endorsements = match hw {
            None => snp_endorsements(),
            Some(()) => {
                let td = SimHcl::td_report(&hcl).unwrap();
                tdx_endorsements(&sim, &hcl, sim.quote_from_td_report(&td))
            }
        };
        let o = verify_hcl(
            &hcl,
            Some(&quote()),
            &endorsements,
            AT,
            &roots(&sim),
            &policy(b"another nonce"),
        );
        assert_eq!(o.verdict, Verdict::Invalid);
        assert_eq!(codes(&o), ["nonce-mismatch"]);
    }
}

#[test]
fn tampered_runtime_data_breaks_the_binding() {
    let sim = SimTdx::load();
    for tdx in [false, true] {
        let mut hcl = if tdx {
            SimHcl::tdx(&user_data())
        } else {
            SimHcl::snp(&user_data())
        };
        let endorsements = if tdx {
            // The quote is of the untampered TD report: the hardware side is authentic.
            let td = SimHcl::td_report(&hcl).unwrap();
            tdx_endorsements(&sim, &hcl, sim.quote_from_td_report(&td))
        } else {
            snp_endorsements()
        };
        // Flip the first hex digit of user-data: still valid JSON, different bytes.
        let range = HclReport::parse(&hcl).unwrap().runtime_data_range;
        let at = range.start
            + find(&hcl[range.clone()], br#""user-data":""#).unwrap()
            + br#""user-data":""#.len();
        hcl[at] = if hcl[at] == b'0' { b'1' } else { b'0' };
        let o = verify_hcl(
            &hcl,
            Some(&quote()),
            &endorsements,
            AT,
            &roots(&sim),
            &policy(NONCE),
        );
        assert_eq!(o.verdict, Verdict::Invalid);
        assert_eq!(codes(&o), ["hcl-binding"], "tdx: {tdx}");
    }
}

#[test]
fn tampered_tpm_quote_and_pcrs_are_refused() {
    let sim = SimTdx::load();
    let hcl = SimHcl::snp(&user_data());
    let run = |q: &TpmQuote| {
        verify_hcl(
            &hcl,
            Some(q),
            &snp_endorsements(),
            AT,
            &roots(&sim),
            &policy(NONCE),
        )
    };
    let mut q = quote();
    let last = q.message.len() - 1;
    q.message[last] ^= 1;
    assert_eq!(codes(&run(&q)), ["tpm-quote-signature"]);

    let mut q = quote();
    q.pcrs[7][0] ^= 1;
    assert_eq!(codes(&run(&q)), ["tpm-pcr-digest"]);

    // The quote survives the tpm_quote.json round trip the bundle uses.
    let q = TpmQuote::parse_json(&quote().to_json()).unwrap();
    assert_eq!(run(&q).verdict, Verdict::Valid);
}

#[test]
fn the_report_fits_the_nv_index() {
    for hcl in [SimHcl::snp(&[0xff; 64]), SimHcl::tdx(&[0xff; 64])] {
        assert_eq!(hcl.len(), SIM_HCL_NV_SIZE);
        let parsed = HclReport::parse(&hcl).unwrap();
        assert!(parsed.header.report_size as usize <= SIM_HCL_NV_SIZE);
    }
    assert_eq!(HCL_REPORT_NV_INDEX, 0x0140_0001);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn client() -> HttpClient {
    HttpClient::new(HttpConfig {
        per_request_timeout: Duration::from_secs(5),
        deadline: Duration::from_secs(20),
        max_attempts: 3,
        backoff_base: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..HttpConfig::default()
    })
}

#[test]
fn tdx_end_to_end_through_the_emulated_imds() {
    let sim = Arc::new(SimTdx::load());
    for encoding in [QuoteEncoding::UrlSafeNoPad, QuoteEncoding::UrlSafePadded] {
        let imds = AzureImds::sim_tdx(Arc::clone(&sim))
            .with_encoding(encoding)
            .with_fault(FaultRule::times(ACC_TDQUOTE_PATH, Fault::Status(503), 1))
            .start()
            .unwrap();
        let hcl = SimHcl::tdx(&user_data());
        let td = SimHcl::td_report(&hcl).unwrap();
        let td_quote = fetch_td_quote(&client(), &imds.base_url(), &td).unwrap();
        assert_eq!(imds.requests().len(), 2, "one 503, then the quote");
        let o = verify_hcl(
            &hcl,
            Some(&quote()),
            &tdx_endorsements(&sim, &hcl, td_quote),
            AT,
            &roots(&sim),
            &policy(NONCE),
        );
        assert_valid(&o, "azure-tdx");
    }
}

/// The raw answer to `request` from `routes`: status, head, body.
fn exchange(routes: &AzureImds, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut out = Vec::new();
    serve_one_connection_with(routes, request, &mut out).unwrap();
    let end = find(&out, b"\r\n\r\n").unwrap();
    let head = String::from_utf8(out[..end].to_vec()).unwrap();
    (head[9..12].parse().unwrap(), head, out[end + 4..].to_vec())
}

fn post(headers: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /acc/tdquote HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn report_body(report: &[u8], padded: bool) -> String {
    let encoded = if padded {
        URL_SAFE.encode(report)
    } else {
        URL_SAFE_NO_PAD.encode(report)
    };
    format!(r#"{{"report":"{encoded}"}}"#)
}

/// Echoes the report with a marker, so that answers are predictable.
fn echo() -> AzureImds {
    AzureImds::new(|report| {
        // 1030 bytes, not a multiple of 3: padding would show.
        let mut q = b"QUOTE!".to_vec();
        q.extend_from_slice(report);
        q
    })
}

const GOOD_HEADERS: &str = "Metadata: true\r\nContent-Type: application/json\r\n";

#[test]
fn emulator_answers_with_the_quote() {
    let report: Vec<u8> = (0..1024).map(|i| (i * 7) as u8).collect();
    let mut want = b"QUOTE!".to_vec();
    want.extend_from_slice(&report);
    for padded_request in [false, true] {
        let (status, head, body) = exchange(
            &echo(),
            &post(GOOD_HEADERS, &report_body(&report, padded_request)),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert!(head.contains("Content-Type: application/json\r\n"));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let quote = v["quote"].as_str().unwrap();
        assert!(!quote.contains('='), "IMDS sends no padding");
        assert_eq!(URL_SAFE_NO_PAD.decode(quote).unwrap(), want);
    }
    // With padding on and a length that needs it.
    let padded = AzureImds::new(|_| vec![1, 2, 3, 4]).with_encoding(QuoteEncoding::UrlSafePadded);
    let (_, _, body) = exchange(&padded, &post(GOOD_HEADERS, &report_body(&report, false)));
    assert_eq!(body, br#"{"quote":"AQIDBA=="}"#);
}

#[test]
fn emulator_enforces_the_request_contract() {
    let report = [0u8; 1024];
    let good = report_body(&report, false);
    let cases: [(&str, String, u16); 9] = [
        (
            "Metadata: true\r\nContent-Type: application/json; charset=utf-8\r\n",
            good.clone(),
            415,
        ),
        ("Metadata: true\r\n", good.clone(), 415),
        (
            "Metadata: true\r\nContent-Type: text/plain\r\n",
            good.clone(),
            415,
        ),
        ("Content-Type: application/json\r\n", good.clone(), 400),
        (GOOD_HEADERS, "not json".into(), 400),
        (GOOD_HEADERS, r#"{"report":"+/+/"}"#.into(), 400),
        (GOOD_HEADERS, r#"{"report":"AAAA"}"#.into(), 400),
        (GOOD_HEADERS, r#"{"quote":"AAAA"}"#.into(), 400),
        (GOOD_HEADERS, good.clone(), 200),
    ];
    for (headers, body, want) in cases {
        let (status, _, answer) = exchange(&echo(), &post(headers, &body));
        assert_eq!(status, want, "{headers:?} {body:.40}");
        if headers == "Content-Type: application/json\r\n" {
            assert_eq!(answer, MISSING_METADATA_BODY.as_bytes());
        }
    }
    let get = b"GET /acc/tdquote HTTP/1.1\r\nMetadata: true\r\n\r\n";
    assert_eq!(exchange(&echo(), get).0, 405);
    // A service that cannot quote answers 500.
    let none = AzureImds::new(|_| Vec::new());
    assert_eq!(exchange(&none, &post(GOOD_HEADERS, &good)).0, 500);
}

#[test]
fn emulator_delegates_other_paths_and_keeps_their_faults() {
    let thim = EmulatorConfig {
        thim_amd_body: Some(b"{}".to_vec()),
        faults: vec![FaultRule::always("/vcek/", Fault::Status(502))],
        ..EmulatorConfig::default()
    };
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nMetadata: true\r\n\r\n").into_bytes();
    assert_eq!(
        exchange(&echo(), &get("/metadata/THIM/amd/certification")).0,
        404
    );
    let imds = echo().with_inner(thim);
    let (status, _, body) = exchange(&imds, &get("/metadata/THIM/amd/certification"));
    assert_eq!((status, body), (200, b"{}".to_vec()));
    assert_eq!(exchange(&imds, &get("/vcek/v1/Milan/x")).0, 502);
    let good = report_body(&[0u8; 1024], false);
    assert_eq!(exchange(&imds, &post(GOOD_HEADERS, &good)).0, 200);
}

#[test]
fn tcp_emulator_refuses_a_charset_parameter() {
    let imds = echo().start().unwrap();
    let body = report_body(&[0u8; 1024], false);
    let mut stream = TcpStream::connect(imds.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(&post(
            "Metadata: true\r\nContent-Type: application/json; charset=utf-8\r\n",
            &body,
        ))
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 415 "), "{answer}");
    assert!(answer.contains("Unknown media type"));
}

/// The review's critical case: any SEV-SNP guest or TD can choose its REPORT_DATA, so it can wrap
/// its own report in an HCL report with its own attestation key and a TPM quote over the
/// verifier's nonce. Every signature in such evidence verifies; only the paravisor's identity
/// tells it from Azure's.
#[test]
fn a_report_not_made_by_a_trusted_paravisor_is_refused() {
    use thimble_sim::fake_tdx_guest::TdReportTemplate;
    use thimble_sim::signer::ReportTemplate;
    let sim = SimTdx::load();
    // A guest's own report at VMPL 3, launched without the paravisor's ID block.
    let guest = ReportTemplate {
        vmpl: 3,
        ..ReportTemplate::default()
    };
    let hcl = SimHcl::snp_with(&guest, &user_data());
    let run = |hcl: &[u8], p: &AzurePolicy| {
        verify_hcl(
            hcl,
            Some(&quote()),
            &snp_endorsements(),
            AT,
            &roots(&sim),
            p,
        )
    };
    let o = run(&hcl, &policy(NONCE));
    assert_eq!(codes(&o), ["paravisor-vmpl", "unknown-paravisor"]);
    let zero = "0".repeat(96);
    assert!(
        o.errors[1].message.contains(&zero),
        "{}",
        o.errors[1].message
    );
    assert!(o.errors[1].message.contains("--paravisor-id-key-digest"));
    // --allow-unknown-paravisor does not make a VMPL 3 report the paravisor's.
    let mut lenient = policy(NONCE);
    lenient.paravisor.allow_unknown = true;
    assert_eq!(codes(&run(&hcl, &lenient)), ["paravisor-vmpl"]);
    // At VMPL 0 with an unknown ID key: trusted once the verifier names the key.
    let other_key = ReportTemplate {
        id_key_digest: [0x5c; 48],
        ..ReportTemplate::default()
    };
    let hcl = SimHcl::snp_with(&other_key, &user_data());
    assert_eq!(codes(&run(&hcl, &policy(NONCE))), ["unknown-paravisor"]);
    let o = run(&hcl, &lenient);
    assert_eq!(o.verdict, Verdict::Valid);
    assert!(
        o.warnings
            .iter()
            .any(|w| w.contains("unknown paravisors are allowed"))
    );
    let mut named = policy(NONCE);
    named.paravisor.snp_keys.push(TrustedParavisor {
        value: [0x5c; 48],
        label: "given".into(),
    });
    let o = run(&hcl, &named);
    assert_eq!(o.verdict, Verdict::Valid, "{:?}", o.errors);
    assert_eq!(o.claims.unwrap()["paravisor"]["matched"], "id-key");
    // An author key counts only with AUTHOR_KEY_EN.
    let author = |en: bool| ReportTemplate {
        id_key_digest: [0x11; 48],
        author_key_digest: [0x5c; 48],
        author_key_en: en,
        ..ReportTemplate::default()
    };
    let o = run(&SimHcl::snp_with(&author(true), &user_data()), &named);
    assert_eq!(o.claims.unwrap()["paravisor"]["matched"], "author-key");
    let o = run(&SimHcl::snp_with(&author(false), &user_data()), &named);
    assert_eq!(codes(&o), ["unknown-paravisor"]);

    // TDX: a TD that is not a known paravisor build.
    let hcl = SimHcl::tdx_with(&TdReportTemplate::default(), &user_data());
    let td = SimHcl::td_report(&hcl).unwrap();
    let hw = tdx_endorsements(&sim, &hcl, sim.quote_from_td_report(&td));
    let o = verify_hcl(&hcl, Some(&quote()), &hw, AT, &roots(&sim), &policy(NONCE));
    assert_eq!(codes(&o), ["unknown-paravisor"]);
    assert!(o.errors[0].message.contains("--paravisor-mrtd"));
    // Without the pinned identities and without the test ones, the simulated paravisor is
    // unknown too: only what the verifier trusts counts.
    let mut none = policy(NONCE);
    none.paravisor = ParavisorPolicy::empty();
    let hcl = SimHcl::snp(&user_data());
    assert_eq!(codes(&run(&hcl, &none)), ["unknown-paravisor"]);
}

/// The HCL report's user-data against the verifier's expectation: thimble's binding
/// (SHA-512 of the nonce), the nonce itself, or a value the verifier states.
#[test]
fn hcl_user_data_must_bind_the_request() {
    use thimble_evidence::report_data::from_nonce;
    use thimble_verify::azure::ExpectedUserData;
    let sim = SimTdx::load();
    let run = |hcl: &[u8], p: &AzurePolicy| {
        verify_hcl(
            hcl,
            Some(&quote()),
            &snp_endorsements(),
            AT,
            &roots(&sim),
            p,
        )
    };
    let with = |expected: ExpectedUserData, stale: bool| AzurePolicy {
        expected_user_data: Some(expected),
        allow_stale_report: stale,
        ..policy(NONCE)
    };
    let fresh = SimHcl::snp(&from_nonce(NONCE));
    let o = run(
        &fresh,
        &with(ExpectedUserData::Nonce(NONCE.to_vec()), false),
    );
    assert_eq!(o.verdict, Verdict::Valid, "{:?}", o.errors);
    assert_eq!(o.claims.unwrap()["hcl_report_fresh"], true);
    // A boot-time report (zero user-data) is stale for this request.
    let boot = SimHcl::snp(&[0; 64]);
    let o = run(&boot, &with(ExpectedUserData::Nonce(NONCE.to_vec()), false));
    assert_eq!(codes(&o), ["stale-hcl-report"]);
    assert!(
        o.errors[0].message.contains("zero"),
        "{}",
        o.errors[0].message
    );
    let o = run(&boot, &with(ExpectedUserData::Nonce(NONCE.to_vec()), true));
    assert_eq!(o.verdict, Verdict::Valid);
    assert!(
        o.warnings
            .iter()
            .any(|w| w.contains("stale reports are allowed"))
    );
    // What another tool wrote, stated by the verifier.
    let o = run(&boot, &with(ExpectedUserData::Exact(vec![0; 64]), false));
    assert_eq!(o.verdict, Verdict::Valid, "{:?}", o.errors);
    // The nonce itself, zero-padded, as tools that write the nonce do.
    let mut padded = [0u8; 64];
    padded[..NONCE.len()].copy_from_slice(NONCE);
    let o = run(
        &SimHcl::snp(&padded),
        &with(ExpectedUserData::Nonce(NONCE.to_vec()), false),
    );
    assert_eq!(o.verdict, Verdict::Valid, "{:?}", o.errors);
    // A wrong nonce is reported as a wrong nonce, not as a stale report.
    let wrong = AzurePolicy {
        expected_nonce: Some(b"another nonce".to_vec()),
        ..with(ExpectedUserData::Nonce(b"another nonce".to_vec()), false)
    };
    let o = run(&fresh, &wrong);
    assert_eq!(codes(&o), ["nonce-mismatch"]);
    assert!(!o.errors[0].message.contains("--allow-stale-report"));
}

/// A TPM quote signed by the simulated AK over PCRs chosen by `selections` (bank, bitmap), with
/// the digest of the default PCR values at `covered`.
fn quote_selecting(selections: &[(u16, &[u8])], covered: &[usize]) -> TpmQuote {
    let pcrs = SimTpmQuote::default_pcrs();
    let base = SimTpmQuote::default().attest(NONCE, &pcrs).unwrap();
    // The default attest ends with one selection (4 + 2 + 1 + 3 bytes) and a 32-byte digest
    // (2 + 32 bytes).
    let mut m = base[..base.len() - (4 + 2 + 1 + 3 + 2 + 32)].to_vec();
    m.extend_from_slice(&u32::try_from(selections.len()).unwrap().to_be_bytes());
    for (bank, bitmap) in selections {
        m.extend_from_slice(&bank.to_be_bytes());
        m.push(u8::try_from(bitmap.len()).unwrap());
        m.extend_from_slice(bitmap);
    }
    let mut h = ring::digest::Context::new(&ring::digest::SHA256);
    for &i in covered {
        h.update(&pcrs[i]);
    }
    m.extend_from_slice(&32u16.to_be_bytes());
    m.extend_from_slice(h.finish().as_ref());
    TpmQuote {
        signature: thimble_sim::azure_sim::SimAk::get().sign(&m),
        message: m,
        pcrs: pcrs.iter().map(|p| p.to_vec()).collect(),
    }
}

/// The quote must cover every PCR value given, each once, from one SHA-256 selection (the review
/// found a quote covering nothing accepted, with 24 PCR values claimed).
#[test]
fn the_quote_must_cover_exactly_the_pcrs_given() {
    let sim = SimTdx::load();
    let hcl = SimHcl::snp(&user_data());
    let run = |q: &TpmQuote| {
        verify_hcl(
            &hcl,
            Some(q),
            &snp_endorsements(),
            AT,
            &roots(&sim),
            &policy(NONCE),
        )
    };
    let all: Vec<usize> = (0..24).collect();
    let sha256 = thimble_evidence::azure::TPM_ALG_SHA256;
    // The regular shape, rebuilt by the helper, verifies.
    let o = run(&quote_selecting(&[(sha256, &[0xff, 0xff, 0xff])], &all));
    assert_eq!(o.verdict, Verdict::Valid, "{:?}", o.errors);
    for (what, q) in [
        ("no selection", quote_selecting(&[], &[])),
        (
            "empty bitmap",
            quote_selecting(&[(sha256, &[0, 0, 0])], &[]),
        ),
        (
            "the bank twice",
            quote_selecting(&[(sha256, &[0xff, 0, 0]), (sha256, &[0, 0xff, 0xff])], &all),
        ),
        (
            "PCRs 0-7 of 24 given",
            quote_selecting(&[(sha256, &[0xff, 0, 0])], &all[..8]),
        ),
        (
            "SHA-1 bank",
            quote_selecting(&[(0x0004, &[0xff, 0xff, 0xff])], &all),
        ),
    ] {
        let o = run(&q);
        assert_eq!(codes(&o), ["tpm-pcr-selection"], "{what}: {:?}", o.errors);
    }
}
