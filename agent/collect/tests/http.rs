// SPDX-License-Identifier: Apache-2.0
//! `HttpClient` against the THIM/KDS emulator: the IMDS request contract, the retry policy
//! (statuses, `Retry-After`, per-request timeout, overall deadline), the body cap and the refusal
//! of redirects. Everything runs on loopback with short timeouts; the whole file stays well under
//! 15 s of wall time.

mod common;

use std::time::{Duration, Instant};

use common::{METADATA, THIM_BODY, fast_config, thim_url};
use thimble_collect::http::{Fetch, FetchError, HttpClient, HttpConfig};
use thimble_sim::emulator::{
    Emulator, EmulatorConfig, Fault, FaultRule, THIM_AMD_PATH, unused_loopback_port,
};

fn emulator(faults: Vec<FaultRule>) -> Emulator {
    Emulator::start(EmulatorConfig {
        thim_amd_body: Some(THIM_BODY.to_vec()),
        kds_vcek: vec![("Milan".to_owned(), vec![0x30, 0x82, 0x05, 0x4c])],
        kds_cert_chain: vec![(
            "Milan".to_owned(),
            b"-----BEGIN CERTIFICATE-----\nASK\n-----END CERTIFICATE-----\n".to_vec(),
        )],
        kds_vcek_crl: Vec::new(),
        kds_vlek_crl: Vec::new(),
        faults,
    })
    .expect("start the emulator")
}

#[test]
fn thim_success_sends_only_the_contract_headers() {
    let emu = emulator(Vec::new());
    let client = HttpClient::new(fast_config());
    let url = thim_url(&emu);
    // A caller asking for X-Forwarded-For is overruled: IMDS rejects any request carrying it.
    let response = client
        .get(&url, &[METADATA, ("X-Forwarded-For", "10.0.0.1")])
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, THIM_BODY);
    assert_eq!(response.attempts, 1);
    assert_eq!(response.url, url);
    assert_eq!(
        response.header("Content-Type"),
        Some("application/json; charset=utf-8")
    );
    assert!(
        response
            .headers
            .iter()
            .all(|(n, _)| *n == n.to_ascii_lowercase())
    );

    let requests = emu.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, THIM_AMD_PATH);
    assert_eq!(request.query, None);
    assert_eq!(request.header("metadata"), Some("true"));
    assert_eq!(request.header("x-forwarded-for"), None);
    assert_eq!(request.header("proxy-authorization"), None);
    assert!(
        request
            .header("user-agent")
            .unwrap()
            .starts_with("thimble/")
    );
}

#[test]
fn missing_metadata_header_is_a_400_and_not_retried() {
    let emu = emulator(Vec::new());
    let client = HttpClient::new(fast_config());
    let err = client.get(&thim_url(&emu), &[]).unwrap_err();
    match &err {
        FetchError::Status {
            status,
            attempts,
            body_excerpt,
            ..
        } => {
            assert_eq!((*status, *attempts), (400, 1));
            assert!(body_excerpt.contains("Required metadata header not specified"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains(&thim_url(&emu)));
    assert_eq!(emu.requests().len(), 1);
}

#[test]
fn kds_vcek_and_chain() {
    let emu = emulator(Vec::new());
    let client = HttpClient::new(fast_config());
    let query = "blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115";
    let vcek = client
        .get(
            &format!(
                "{}/vcek/v1/Milan/{}?{query}",
                emu.base_url(),
                "ab".repeat(64)
            ),
            &[],
        )
        .unwrap();
    assert_eq!(vcek.body, [0x30, 0x82, 0x05, 0x4c]);
    let chain = client
        .get(&format!("{}/vcek/v1/Milan/cert_chain", emu.base_url()), &[])
        .unwrap();
    assert!(chain.body.starts_with(b"-----BEGIN CERTIFICATE-----"));
    let requests = emu.requests();
    assert_eq!(requests[0].query.as_deref(), Some(query));
    assert_eq!(requests[0].header("metadata"), None);
}

#[test]
fn retries_503_then_succeeds() {
    let emu = emulator(vec![FaultRule::times(THIM_AMD_PATH, Fault::Status(503), 2)]);
    let client = HttpClient::new(fast_config());
    let response = client.get(&thim_url(&emu), &[METADATA]).unwrap();
    assert_eq!(response.attempts, 3);
    assert_eq!(response.body, THIM_BODY);
    assert_eq!(emu.requests().len(), 3);
}

#[test]
fn retryable_status_exhausts_attempts() {
    let emu = emulator(vec![FaultRule::always("/vcek/", Fault::Status(404))]);
    let client = HttpClient::new(fast_config());
    let err = client
        .get(&format!("{}/vcek/v1/Milan/cert_chain", emu.base_url()), &[])
        .unwrap_err();
    assert!(
        matches!(
            err,
            FetchError::Status {
                status: 404,
                attempts: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(emu.requests().len(), 4);
}

#[test]
fn honours_retry_after() {
    let emu = emulator(vec![FaultRule::times(
        THIM_AMD_PATH,
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        1,
    )]);
    let client = HttpClient::new(fast_config());
    let start = Instant::now();
    let response = client.get(&thim_url(&emu), &[METADATA]).unwrap();
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert_eq!(response.attempts, 2);
}

#[test]
fn retry_after_beyond_deadline_gives_up_at_once() {
    let emu = emulator(vec![FaultRule::always(
        THIM_AMD_PATH,
        Fault::RateLimited {
            retry_after_secs: 60,
        },
    )]);
    let client = HttpClient::new(fast_config());
    let start = Instant::now();
    let err = client.get(&thim_url(&emu), &[METADATA]).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(1));
    match err {
        FetchError::Deadline { attempts, last, .. } => {
            assert_eq!(attempts, 1);
            assert!(last.contains("429"), "{last}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn client_error_is_not_retried() {
    let emu = emulator(vec![FaultRule::always(THIM_AMD_PATH, Fault::Status(400))]);
    let client = HttpClient::new(fast_config());
    let err = client.get(&thim_url(&emu), &[METADATA]).unwrap_err();
    assert!(
        matches!(
            err,
            FetchError::Status {
                status: 400,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(emu.requests().len(), 1);
}

#[test]
fn hang_times_out_per_request() {
    let emu = emulator(vec![FaultRule::always(THIM_AMD_PATH, Fault::Hang)]);
    let client = HttpClient::new(HttpConfig {
        per_request_timeout: Duration::from_millis(300),
        max_attempts: 1,
        ..fast_config()
    });
    let start = Instant::now();
    let err = client.get(&thim_url(&emu), &[METADATA]).unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(err, FetchError::Timeout { attempts: 1, .. }),
        "{err:?}"
    );
    assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(2));
}

#[test]
fn hang_runs_into_the_deadline() {
    let emu = emulator(vec![FaultRule::always(THIM_AMD_PATH, Fault::Hang)]);
    let client = HttpClient::new(HttpConfig {
        per_request_timeout: Duration::from_millis(300),
        deadline: Duration::from_secs(1),
        max_attempts: 100,
        ..fast_config()
    });
    let start = Instant::now();
    let err = client.get(&thim_url(&emu), &[METADATA]).unwrap_err();
    let elapsed = start.elapsed();
    match &err {
        FetchError::Deadline {
            attempts,
            deadline,
            last,
            ..
        } => {
            assert!(*attempts >= 2, "{attempts}");
            assert_eq!(*deadline, Duration::from_secs(1));
            assert!(last.contains("timed out"), "{last}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[test]
fn refused_port_is_a_connect_error() {
    let url = format!(
        "http://127.0.0.1:{}{THIM_AMD_PATH}",
        unused_loopback_port().unwrap()
    );
    let client = HttpClient::new(HttpConfig {
        max_attempts: 2,
        ..fast_config()
    });
    let err = client.get(&url, &[METADATA]).unwrap_err();
    match &err {
        FetchError::Connect {
            url: u, attempts, ..
        } => {
            assert_eq!(u, &url);
            assert_eq!(*attempts, 2);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains(&url));
}

#[test]
fn refused_port_until_the_deadline() {
    let url = format!("http://127.0.0.1:{}/vcek/", unused_loopback_port().unwrap());
    let client = HttpClient::new(HttpConfig {
        deadline: Duration::from_millis(300),
        max_attempts: 1000,
        ..fast_config()
    });
    let start = Instant::now();
    let err = client.get(&url, &[]).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(1));
    match err {
        FetchError::Deadline { attempts, last, .. } => {
            assert!(attempts >= 2, "{attempts}");
            // The final attempt may get only a sliver of time and time out instead.
            assert!(
                last.contains("connection failed") || last.contains("timed out"),
                "{last}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn dropped_connection_is_retried() {
    let emu = emulator(vec![FaultRule::times(
        THIM_AMD_PATH,
        Fault::CloseWithoutResponse,
        1,
    )]);
    let client = HttpClient::new(fast_config());
    let response = client.get(&thim_url(&emu), &[METADATA]).unwrap();
    assert_eq!(response.attempts, 2);
}

#[test]
fn oversize_streamed_body_is_too_large() {
    let emu = emulator(vec![FaultRule::always("/vcek/", Fault::Oversize(4 << 20))]);
    let client = HttpClient::new(HttpConfig {
        max_body_bytes: 1024,
        ..fast_config()
    });
    let url = format!("{}/vcek/v1/Milan/cert_chain", emu.base_url());
    let err = client.get(&url, &[]).unwrap_err();
    assert!(
        matches!(&err, FetchError::TooLarge { url: u, limit: 1024 } if *u == url),
        "{err:?}"
    );
    assert_eq!(emu.requests().len(), 1, "too large is not retried");
}

#[test]
fn oversize_declared_body_is_too_large() {
    let emu = emulator(vec![FaultRule::always(
        THIM_AMD_PATH,
        Fault::Body(vec![b'x'; 2048]),
    )]);
    let client = HttpClient::new(HttpConfig {
        max_body_bytes: 2047,
        ..fast_config()
    });
    let err = client.get(&thim_url(&emu), &[METADATA]).unwrap_err();
    assert!(
        matches!(err, FetchError::TooLarge { limit: 2047, .. }),
        "{err:?}"
    );

    let client = HttpClient::new(HttpConfig {
        max_body_bytes: 2048,
        ..fast_config()
    });
    let response = client.get(&thim_url(&emu), &[METADATA]).unwrap();
    assert_eq!(response.body.len(), 2048);
}

#[test]
fn malformed_body_passes_through() {
    let garbage = b"{\"vcekCert\": 42, \xff".to_vec();
    let emu = emulator(vec![FaultRule::always(
        THIM_AMD_PATH,
        Fault::MalformedBody(garbage.clone()),
    )]);
    let client = HttpClient::new(fast_config());
    let response = client.get(&thim_url(&emu), &[METADATA]).unwrap();
    assert_eq!(response.body, garbage);
}

#[test]
fn redirect_is_refused() {
    let elsewhere = emulator(Vec::new());
    let location = format!("{}/vcek/v1/Milan/cert_chain", elsewhere.base_url());
    let emu = emulator(vec![FaultRule::always(
        THIM_AMD_PATH,
        Fault::Redirect {
            status: 302,
            location: location.clone(),
        },
    )]);
    let client = HttpClient::new(fast_config());
    let err = client.get(&thim_url(&emu), &[METADATA]).unwrap_err();
    match &err {
        FetchError::Redirect {
            status,
            location: l,
            ..
        } => {
            assert_eq!(*status, 302);
            assert_eq!(l.as_deref(), Some(location.as_str()));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("302"));
    assert_eq!(emu.requests().len(), 1);
    assert!(elsewhere.requests().is_empty());
}

#[test]
fn post_sends_the_body() {
    let emu = emulator(Vec::new());
    let client = HttpClient::new(fast_config());
    let url = format!("{}/vcek/v1/Milan/cert_chain", emu.base_url());
    let err = client.post(&url, &[METADATA], b"report").unwrap_err();
    assert!(
        matches!(
            err,
            FetchError::Status {
                status: 405,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    let requests = emu.requests();
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].body, b"report");
}

#[test]
fn invalid_urls() {
    let client = HttpClient::new(fast_config());
    for url in ["", "localhost/x", "ftp://127.0.0.1/x", "http://"] {
        let err = client.get(url, &[]).unwrap_err();
        assert!(
            matches!(err, FetchError::InvalidUrl { .. }),
            "{url}: {err:?}"
        );
    }
}

#[test]
fn a_404_is_final_when_not_found_is_not_retried() {
    let emu = emulator(vec![FaultRule::always("/", Fault::Status(404))]);
    let client = HttpClient::new(HttpConfig {
        retry_not_found: false,
        ..fast_config()
    });
    match client.get(&format!("{}/kbs/v0/resource/a/b/c", emu.base_url()), &[]) {
        Err(FetchError::Status {
            status: 404,
            attempts: 1,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(emu.requests().len(), 1);
}
