// SPDX-License-Identifier: Apache-2.0
//! `fetch_td_quote` against the emulated IMDS `/acc/tdquote`: the exact request (method, path,
//! `Content-Type`, `Metadata`, unpadded base64url body), replies padded or not, a 415 and its
//! hint, retried and fatal statuses, and every malformed reply. Loopback only, short timeouts.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on fixture and emulator setup failures"
)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use thimble_collect::acc::{ACC_TDQUOTE_PATH, AccError, fetch_td_quote, imds_http_config};
use thimble_collect::http::{FetchError, HttpClient, HttpConfig};
use thimble_collect::tdx_guest::REPORT_DATA_OFFSET;
use thimble_evidence::tdx::TdxQuote;
use thimble_sim::azure_sim::{AzureImds, QuoteEncoding, SimHcl};
use thimble_sim::emulator::{Emulator, Fault, FaultRule, unused_loopback_port};
use thimble_sim::tdx_signer::SimTdx;

fn client() -> HttpClient {
    HttpClient::new(imds_http_config(HttpConfig {
        per_request_timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(5),
        max_attempts: 3,
        backoff_base: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..HttpConfig::default()
    }))
}

fn td_report() -> [u8; 1024] {
    std::array::from_fn(|i| (i * 13 + 1) as u8)
}

/// The quote the echo service makes of `report`: a marker, then the report. 1030 bytes, so that
/// base64 needs padding and the padded and unpadded forms differ.
fn echo_quote(report: &[u8; 1024]) -> Vec<u8> {
    let mut q = b"QUOTE!".to_vec();
    q.extend_from_slice(report);
    q
}

fn echo() -> AzureImds {
    AzureImds::new(echo_quote)
}

fn start(imds: AzureImds) -> Emulator {
    imds.start().unwrap()
}

#[test]
fn sends_the_exact_request_and_decodes_an_unpadded_quote() {
    let emu = start(echo());
    let report = td_report();
    let quote = fetch_td_quote(&client(), &emu.base_url(), &report).unwrap();
    assert_eq!(quote, echo_quote(&report));

    let requests = emu.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, ACC_TDQUOTE_PATH);
    assert_eq!(r.query, None);
    let content_types: Vec<&str> = r
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(content_types, ["application/json"]);
    assert_eq!(r.header("metadata"), Some("true"));
    assert_eq!(r.header("x-forwarded-for"), None);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1);
    let encoded = body["report"].as_str().unwrap();
    assert!(!encoded.contains(['=', '+', '/']), "{encoded}");
    assert_eq!(URL_SAFE_NO_PAD.decode(encoded).unwrap(), report);
}

#[test]
fn decodes_a_padded_quote() {
    let emu = start(echo().with_encoding(QuoteEncoding::UrlSafePadded));
    let report = td_report();
    let quote = fetch_td_quote(&client(), &emu.base_url(), &report).unwrap();
    assert_eq!(quote, echo_quote(&report));
}

#[test]
fn a_simulated_tdx_quote_is_of_the_report_sent() {
    let sim = Arc::new(SimTdx::load());
    let emu = start(AzureImds::sim_tdx(sim));
    let hcl = SimHcl::tdx(&[7; 64]);
    let report = SimHcl::td_report(&hcl).unwrap();
    let quote = fetch_td_quote(&client(), &format!("{}/", emu.base_url()), &report).unwrap();
    let parsed = TdxQuote::parse(&quote).unwrap();
    assert_eq!(parsed.header.version, 4);
    assert_eq!(parsed.header.tee_type, 0x81);
    assert_eq!(
        parsed.body.report_data[..],
        report[REPORT_DATA_OFFSET..REPORT_DATA_OFFSET + 64]
    );
}

#[test]
fn unsupported_media_type_names_the_content_type() {
    let emu = start(echo().with_fault(FaultRule::always(ACC_TDQUOTE_PATH, Fault::Status(415))));
    let e = fetch_td_quote(&client(), &emu.base_url(), &td_report()).unwrap_err();
    assert!(matches!(e, AccError::UnsupportedMediaType { .. }), "{e:?}");
    assert_eq!(e.status(), Some(415));
    let text = e.to_string();
    assert!(text.contains("application/json"), "{text}");
    assert!(text.contains("charset"), "{text}");
    // 415 is not retried.
    assert_eq!(emu.requests().len(), 1);
}

#[test]
fn server_errors_are_retried() {
    let emu = start(echo().with_fault(FaultRule::times(ACC_TDQUOTE_PATH, Fault::Status(503), 2)));
    let report = td_report();
    let quote = fetch_td_quote(&client(), &emu.base_url(), &report).unwrap();
    assert_eq!(quote, echo_quote(&report));
    assert_eq!(emu.requests().len(), 3);
}

#[test]
fn persistent_server_errors_fail_with_the_status() {
    let emu = start(echo().with_fault(FaultRule::always(ACC_TDQUOTE_PATH, Fault::Status(500))));
    let e = fetch_td_quote(&client(), &emu.base_url(), &td_report()).unwrap_err();
    assert_eq!(e.status(), Some(500), "{e:?}");
    let AccError::Fetch(FetchError::Status { attempts, .. }) = e else {
        panic!("{e:?}");
    };
    assert_eq!(attempts, 3);
    assert_eq!(emu.requests().len(), 3);
}

#[test]
fn client_errors_are_not_retried() {
    let emu = start(echo().with_fault(FaultRule::always(ACC_TDQUOTE_PATH, Fault::Status(400))));
    let e = fetch_td_quote(&client(), &emu.base_url(), &td_report()).unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert_eq!(emu.requests().len(), 1);
}

/// Whether an error is the one a case expects.
type Expect = fn(&AccError) -> bool;

#[test]
fn malformed_replies() {
    let cases: [(&[u8], Expect); 7] = [
        (b"<html>busy</html>", |e| {
            matches!(e, AccError::MalformedJson { .. })
        }),
        (br#"["AQID"]"#, |e| {
            matches!(e, AccError::MalformedJson { .. })
        }),
        (br#"{"error":"no quote"}"#, |e| {
            matches!(e, AccError::MissingQuote { .. })
        }),
        (br#"{"quote":null}"#, |e| {
            matches!(e, AccError::MissingQuote { .. })
        }),
        (br#"{"quote":["AQID"]}"#, |e| {
            matches!(e, AccError::QuoteNotString { found: "array", .. })
        }),
        (br#"{"quote":"AQ+/"}"#, |e| {
            matches!(e, AccError::QuoteBase64 { .. })
        }),
        (br#"{"quote":""}"#, |e| {
            matches!(e, AccError::EmptyQuote { .. })
        }),
    ];
    for (body, want) in cases {
        let emu = start(echo().with_fault(FaultRule::always(
            ACC_TDQUOTE_PATH,
            Fault::MalformedBody(body.to_vec()),
        )));
        let e = fetch_td_quote(&client(), &emu.base_url(), &td_report()).unwrap_err();
        assert!(want(&e), "{}: {e:?}", String::from_utf8_lossy(body));
        assert!(e.to_string().contains(ACC_TDQUOTE_PATH), "{e}");
    }
}

#[test]
fn no_server_is_a_connection_failure() {
    let base = format!("http://127.0.0.1:{}", unused_loopback_port().unwrap());
    let e = fetch_td_quote(&client(), &base, &td_report()).unwrap_err();
    assert!(
        matches!(
            e,
            AccError::Fetch(FetchError::Connect { .. } | FetchError::Deadline { .. })
        ),
        "{e:?}"
    );
    assert_eq!(e.status(), None);
}

#[test]
fn the_emulator_refuses_a_charset_parameter() {
    use std::io::{Read, Write};
    let emu = start(echo());
    let body = format!(r#"{{"report":"{}"}}"#, URL_SAFE_NO_PAD.encode(td_report()));
    let request = format!(
        "POST {ACC_TDQUOTE_PATH} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = std::net::TcpStream::connect(emu.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 415 "), "{answer}");
}
