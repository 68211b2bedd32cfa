// SPDX-License-Identifier: AGPL-3.0-or-later
//! The simulated Azure paravisor against the real verifier: an SEV-SNP HCL report signed by the
//! simulated VCEK and a TDX one quoted by the simulated TDX platform (through the emulated IMDS
//! `/acc/tdquote` as well as directly) verify with their TPM quotes under the simulation roots,
//! and the nonce, the runtime data binding, the quote signature and the PCR digest are each
//! checked. The `/acc/tdquote` emulator enforces the request contract of wire-formats §3.

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
    ACC_TDQUOTE_PATH, AzureImds, QuoteEncoding, SIM_HCL_NV_SIZE, SimHcl, SimTpmQuote,
};
use thimble_sim::emulator::{
    EmulatorConfig, Fault, FaultRule, MISSING_METADATA_BODY, serve_one_connection_with,
};
use thimble_sim::signer::sim_chain;
use thimble_sim::tdx_signer::{SimCollateral, SimTdx};
use thimble_verify::azure::{AzurePolicy, AzureRoots, HardwareEndorsements, verify_hcl};
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
    HardwareEndorsements::Snp { certs }
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

fn policy(nonce: &[u8]) -> AzurePolicy {
    AzurePolicy {
        expected_nonce: Some(nonce.to_vec()),
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
    o.errors.iter().map(|e| e.code).collect()
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
