// SPDX-License-Identifier: Apache-2.0
//! Rows of the fault matrix (docs/faults.md) that no other library test covered: the HTTP
//! client's answer to a connection with no route (a loopback address with nothing listening, the
//! same client path), a body that drips in below and past the per-request timeout, a body cut
//! short of its `Content-Length`, a TLS handshake with a server that speaks plain HTTP, 410 as
//! IMDS and as a remote verifier mean it, 429 without `Retry-After`; and the vTPM client's
//! answer to an authorization failure in the middle of a collection. Everything runs on loopback
//! and in memory, with short timeouts.

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{METADATA, THIM_BODY, fast_config, thim_url};
use thimble_collect::http::{Fetch, FetchError, HttpClient, HttpConfig};
use thimble_collect::vtpm::{VtpmClient, VtpmError, cc, rc};
use thimble_sim::emulator::{
    Emulator, EmulatorConfig, Fault, FaultRule, THIM_AMD_PATH, unused_loopback_port,
};
use thimble_sim::fake_vtpm::{self, FakeVtpm, ReportRefresh};

fn emulator(faults: Vec<FaultRule>) -> Emulator {
    Emulator::start(EmulatorConfig {
        thim_amd_body: Some(THIM_BODY.to_vec()),
        faults,
        ..EmulatorConfig::default()
    })
    .unwrap()
}

fn thim_requests(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.path == THIM_AMD_PATH)
        .count()
}

/// A loopback server that answers every connection at once with a plain HTTP 400, as an HTTP
/// server does to the TLS ClientHello sent to it, and counts the connections.
struct PlainHttpServer {
    port: u16,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl PlainHttpServer {
    fn start() -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&connections);
        // The thread ends with the test process; it only ever serves loopback.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 47\r\n\r\nThe plain HTTP request was sent to HTTPS port\r\n",
                );
            }
        });
        Self { port, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn no_route_is_a_connection_failure_retried_like_a_refusal() {
    // A route that leads nowhere cannot be made on loopback, and tests may not send anything
    // elsewhere. An unreachable network or host (ENETUNREACH, EHOSTUNREACH) reaches the client
    // as the same connect error as a refusal (ECONNREFUSED): 127.0.0.2 with nothing listening
    // takes that path; a route that drops packets instead is a hang (`hang_times_out_per_request`).
    let port = unused_loopback_port().unwrap();
    let url = format!("http://127.0.0.2:{port}{THIM_AMD_PATH}");
    let client = HttpClient::new(HttpConfig {
        max_attempts: 3,
        ..fast_config()
    });
    let start = Instant::now();
    let err = client.get(&url, &[METADATA]).unwrap_err();
    match &err {
        FetchError::Connect {
            url: u, attempts, ..
        } => {
            assert_eq!(u, &url);
            assert_eq!(*attempts, 3, "a failed connection is retried");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("connection failed"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn slow_drip_within_the_timeout_is_read_whole() {
    // 16-byte chunks 20 ms apart: about 150 ms for the whole body, well within 2 s.
    let emu = emulator(vec![FaultRule::always(
        THIM_AMD_PATH,
        Fault::Drip {
            chunk: 16,
            interval: Duration::from_millis(20),
        },
    )]);
    let client = HttpClient::new(fast_config());
    let start = Instant::now();
    let response = client.get(&thim_url(&emu), &[METADATA]).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(response.body, THIM_BODY);
    assert_eq!(response.attempts, 1);
    assert_eq!(thim_requests(&emu), 1);
    let pauses = u32::try_from(THIM_BODY.len().div_ceil(16) - 1).unwrap();
    assert!(
        elapsed >= Duration::from_millis(20) * pauses,
        "the body was not dripped: {elapsed:?}"
    );
}

#[test]
fn slow_drip_past_the_timeout_times_out() {
    // The per-request timeout covers the body, not only the headers: a service that trickles its
    // answer out for longer than the timeout is cut off and retried, never waited for.
    let emu = emulator(vec![FaultRule::always(
        THIM_AMD_PATH,
        Fault::Drip {
            chunk: 8,
            interval: Duration::from_millis(100),
        },
    )]);
    let client = HttpClient::new(HttpConfig {
        per_request_timeout: Duration::from_millis(400),
        max_attempts: 2,
        ..fast_config()
    });
    let start = Instant::now();
    let err = client.get(&thim_url(&emu), &[METADATA]).unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(err, FetchError::Timeout { attempts: 2, .. }),
        "{err:?}"
    );
    assert_eq!(thim_requests(&emu), 2);
    // The body would take about 1.6 s per attempt.
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
}

#[test]
fn truncated_body_is_a_dropped_connection_and_retried() {
    // Once: the retry gets the whole body.
    let emu = emulator(vec![FaultRule::times(
        THIM_AMD_PATH,
        Fault::Truncated { sent: 20 },
        1,
    )]);
    let client = HttpClient::new(fast_config());
    let response = client.get(&thim_url(&emu), &[METADATA]).unwrap();
    assert_eq!(response.body, THIM_BODY);
    assert_eq!(response.attempts, 2);

    // Always: the body is never passed on cut short, and the error says the connection failed.
    let emu = emulator(vec![FaultRule::always(
        THIM_AMD_PATH,
        Fault::Truncated { sent: 20 },
    )]);
    let err = client.get(&thim_url(&emu), &[METADATA]).unwrap_err();
    assert!(
        matches!(err, FetchError::Connect { attempts: 4, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("connection failed"), "{err}");
    assert_eq!(thim_requests(&emu), 4);
}

#[test]
fn tls_handshake_with_a_plain_http_server_fails() {
    let server = PlainHttpServer::start();
    let url = format!("https://127.0.0.1:{}/vcek/v1/Milan/cert_chain", server.port);
    let client = HttpClient::new(fast_config());
    let start = Instant::now();
    let err = client.get(&url, &[]).unwrap_err();
    // Nothing from the server is taken as an answer: the plain 400 never becomes a status.
    let text = err.to_string();
    assert!(!matches!(err, FetchError::Status { .. }), "{err:?}");
    assert!(text.contains(&url), "{text}");
    assert!(
        text.contains("corrupt message") || text.contains("InvalidContentType"),
        "the reason should be rustls's: {text}"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    // A failed handshake is final: retrying cannot fix it (docs/faults.md).
    assert!(
        matches!(err, FetchError::Transport { attempts: 1, .. }),
        "{err:?}"
    );
    assert!(text.contains("TLS"), "{text}");
    assert_eq!(server.connections(), 1);
}

#[test]
fn gone_410_is_retried_for_imds_and_final_for_a_verifier() {
    let emu = emulator(vec![FaultRule::times(THIM_AMD_PATH, Fault::Status(410), 2)]);
    let client = HttpClient::new(fast_config());
    let response = client.get(&thim_url(&emu), &[METADATA]).unwrap();
    assert_eq!(response.attempts, 3, "IMDS answers 410 while it updates");

    let emu = emulator(vec![FaultRule::always(THIM_AMD_PATH, Fault::Status(410))]);
    match client.get(&thim_url(&emu), &[METADATA]) {
        Err(FetchError::Status {
            status: 410,
            attempts: 4,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }

    let emu = emulator(vec![FaultRule::always("/", Fault::Status(410))]);
    let verifier = HttpClient::new(HttpConfig {
        retry_not_found: false,
        ..fast_config()
    });
    match verifier.get(&format!("{}/kbs/v0/auth", emu.base_url()), &[]) {
        Err(FetchError::Status {
            status: 410,
            attempts: 1,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(emu.requests().len(), 1);
}

#[test]
fn rate_limited_without_retry_after_backs_off_and_gives_up() {
    // Once: retried after the client's own backoff.
    let emu = emulator(vec![FaultRule::times(THIM_AMD_PATH, Fault::Status(429), 1)]);
    let client = HttpClient::new(fast_config());
    let response = client.get(&thim_url(&emu), &[METADATA]).unwrap();
    assert_eq!(response.attempts, 2);

    // Always: every attempt is made, each after at most the capped backoff, then the status.
    let emu = emulator(vec![FaultRule::always(THIM_AMD_PATH, Fault::Status(429))]);
    let start = Instant::now();
    match client.get(&thim_url(&emu), &[METADATA]) {
        Err(FetchError::Status {
            status: 429,
            attempts: 4,
            body_excerpt,
            ..
        }) => assert!(
            body_excerpt.contains("emulated status 429"),
            "{body_excerpt}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(thim_requests(&emu), 4);
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn tpm_authorization_failure_fails_the_collection_with_its_code() {
    // Writing the user data to 0x01400002 refused (a TPM whose owner authorization is not the
    // empty one thimble uses, or a locked index): the collection fails naming the command and
    // the code, and `--allow-stale-report` does not turn it into a stale report.
    for (code, name) in [
        (rc::AUTH_FAIL, "TPM_RC_AUTH_FAIL"),
        (rc::BAD_AUTH, "TPM_RC_BAD_AUTH"),
        (rc::NV_AUTHORIZATION, "TPM_RC_NV_AUTHORIZATION"),
    ] {
        for allow_stale in [false, true] {
            let mut fake = FakeVtpm::new().with_report_refresh(ReportRefresh::OnRead {
                min_interval: Duration::ZERO,
            });
            fake.fail_next(cc::NV_WRITE, fake_vtpm::Fault::ResponseCode(code));
            let mut client = VtpmClient::new(fake);
            let e = client
                .fresh_hcl_report(&[7; 64], Duration::from_millis(200), allow_stale)
                .unwrap_err();
            match &e {
                VtpmError::Tpm { command, rc } => {
                    assert_eq!(*command, "TPM2_NV_Write", "{name}");
                    assert_eq!(rc.base(), code, "{name}");
                }
                other => panic!("{name}: {other:?}"),
            }
            assert!(e.to_string().contains(name), "{e}");
        }
    }

    // The quote refused: no quote, the code named.
    let mut fake = FakeVtpm::new();
    fake.fail_next(cc::QUOTE, fake_vtpm::Fault::ResponseCode(rc::AUTH_FAIL));
    let mut client = VtpmClient::new(fake);
    let e = client.collect_quote(b"nonce").unwrap_err();
    match &e {
        VtpmError::Tpm { command, rc } => {
            assert_eq!(*command, "TPM2_Quote");
            assert_eq!(rc.base(), rc::AUTH_FAIL);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("TPM_RC_AUTH_FAIL"), "{e}");
}
