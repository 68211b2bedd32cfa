// SPDX-License-Identifier: Apache-2.0
//! `QgsClient` against `FakeQgs`, which plays the host's Quote Generation Service over a Unix
//! socket pair (no network, no vsock): the whole TDREPORT-to-quote path, the request as the
//! service reads it, and every way a missing, broken or hostile service can answer.

#![expect(clippy::unwrap_used, reason = "test helpers unwrap fake results")]

use std::time::{Duration, Instant};

use thimble_collect::qgs::{
    DEFAULT_MAX_RESPONSE_LEN, QgsClient, QgsError, QgsTimeouts, error_code, probe,
};
use thimble_collect::tdx_guest::{TDX_REPORT_LEN, TdxGuestClient};
use thimble_sim::fake_qgs::{FakeQgs, QUOTE_REPORT_DATA_OFFSET, QgsFault, SIM_QUOTE_LEN};
use thimble_sim::fake_tdx_guest::FakeTdxGuest;

const REPORT_DATA: [u8; 64] = [0x6E; 64];

fn tdreport() -> [u8; TDX_REPORT_LEN] {
    let report = TdxGuestClient::new(FakeTdxGuest::new())
        .get_report(&REPORT_DATA)
        .unwrap();
    report.try_into().unwrap()
}

fn quote_with(fake: &FakeQgs) -> Result<Vec<u8>, QgsError> {
    QgsClient::new(fake.clone()).get_quote(&tdreport())
}

fn fault(fault: QgsFault) -> (FakeQgs, QgsError) {
    let fake = FakeQgs::new().with_fault(fault);
    let err = quote_with(&fake).unwrap_err();
    fake.join();
    (fake, err)
}

#[test]
fn tdreport_becomes_a_quote() {
    let fake = FakeQgs::new();
    let report = tdreport();
    let quote = QgsClient::new(fake.clone()).get_quote(&report).unwrap();
    assert_eq!(quote.len(), SIM_QUOTE_LEN);
    assert_eq!(&quote[..8], &[4, 0, 2, 0, 0x81, 0, 0, 0]);
    assert_eq!(
        &quote[QUOTE_REPORT_DATA_OFFSET..QUOTE_REPORT_DATA_OFFSET + 64],
        &REPORT_DATA
    );
    fake.join();
    assert_eq!(fake.connections(), 1);
    assert_eq!(fake.reports(), vec![report.to_vec()]);
}

#[test]
fn request_is_what_libtdx_attest_sends() {
    let fake = FakeQgs::new();
    let report = tdreport();
    QgsClient::new(fake.clone()).get_quote(&report).unwrap();
    fake.join();
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let msg = &requests[0];
    assert_eq!(msg.len(), 24 + TDX_REPORT_LEN);
    // Version 1.1, GET_QUOTE_REQ, size, error_code 0, report_size 1024, no id list.
    assert_eq!(&msg[..4], &[1, 0, 1, 0]);
    assert_eq!(&msg[4..8], &0u32.to_le_bytes());
    assert_eq!(&msg[8..12], &1048u32.to_le_bytes());
    assert_eq!(&msg[12..16], &0u32.to_le_bytes());
    assert_eq!(&msg[16..20], &1024u32.to_le_bytes());
    assert_eq!(&msg[20..24], &0u32.to_le_bytes());
    assert_eq!(&msg[24..], &report);
}

#[test]
fn configured_quote_and_selected_id() {
    let quote = (0..9000u32).map(|i| i as u8).collect::<Vec<_>>();
    let id = vec![0xAA; 16];
    let fake = FakeQgs::new()
        .with_quote(quote.clone())
        .with_selected_id(id.clone());
    let response = QgsClient::new(fake.clone())
        .get_quote_response(&tdreport(), &[])
        .unwrap();
    assert_eq!(response.quote, quote);
    assert_eq!(response.selected_id, id);
    // get_quote returns only the quote.
    assert_eq!(quote_with(&fake).unwrap(), quote);
}

#[test]
fn refused_connection_names_the_port() {
    let (fake, err) = fault(QgsFault::Refuse);
    assert!(matches!(err, QgsError::NoService { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("no Quote Generation Service on vsock CID 2 port 4050"),
        "{err}"
    );
    assert_eq!(fake.connections(), 1);

    let fake = FakeQgs::new().with_port(4999).with_fault(QgsFault::Reset);
    let err = quote_with(&fake).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no Quote Generation Service on vsock CID 2 port 4999"),
        "{err}"
    );
}

#[test]
fn service_error_code_is_named() {
    let (_, err) = fault(QgsFault::ErrorCode(error_code::UNEXPECTED));
    assert!(
        matches!(
            err,
            QgsError::Service {
                code: 0x12001,
                name: "QGS_MSG_ERROR_UNEXPECTED"
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "Quote Generation Service failed the request with error 0x12001 \
         (QGS_MSG_ERROR_UNEXPECTED)"
    );
    let (_, err) = fault(QgsFault::ErrorCode(0xE011));
    assert!(
        matches!(
            err,
            QgsError::Service {
                code: 0xE011,
                name: "unknown"
            }
        ),
        "{err:?}"
    );
}

#[test]
fn truncated_responses() {
    let (_, err) = fault(QgsFault::Truncate(0));
    assert!(
        matches!(err, QgsError::ClosedWithoutResponse { .. }),
        "{err:?}"
    );
    let (_, err) = fault(QgsFault::Truncate(3));
    assert!(
        matches!(
            err,
            QgsError::Truncated {
                what: "length prefix",
                expected: 4,
                received: 3
            }
        ),
        "{err:?}"
    );
    let (_, err) = fault(QgsFault::Truncate(4 + 30));
    assert!(
        matches!(
            err,
            QgsError::Truncated {
                what: "message",
                received: 30,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn closed_without_response() {
    let (fake, err) = fault(QgsFault::CloseWithoutResponse);
    assert!(
        matches!(err, QgsError::ClosedWithoutResponse { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("without a response"), "{err}");
    assert_eq!(fake.reports().len(), 1);
}

#[test]
fn wrong_version_and_type() {
    let (_, err) = fault(QgsFault::WrongVersion(2));
    assert!(
        matches!(err, QgsError::UnsupportedVersion { major: 2, minor: 1 }),
        "{err:?}"
    );
    let (_, err) = fault(QgsFault::WrongType(0));
    assert!(matches!(err, QgsError::Malformed { .. }), "{err:?}");
}

#[test]
fn oversize_length_prefix_is_refused_before_reading() {
    let (_, err) = fault(QgsFault::OversizeLength(u32::MAX));
    assert!(
        matches!(
            err,
            QgsError::ResponseTooLarge {
                len: u32::MAX,
                max: DEFAULT_MAX_RESPONSE_LEN
            }
        ),
        "{err:?}"
    );

    // A tighter cap applies to honest responses too.
    let fake = FakeQgs::new();
    let err = QgsClient::new(fake.clone())
        .with_max_response_len(100)
        .get_quote(&tdreport())
        .unwrap_err();
    assert!(
        matches!(err, QgsError::ResponseTooLarge { max: 100, .. }),
        "{err:?}"
    );

    // A quote over the default cap.
    let fake = FakeQgs::new().with_quote(vec![1; DEFAULT_MAX_RESPONSE_LEN as usize]);
    let err = quote_with(&fake).unwrap_err();
    assert!(matches!(err, QgsError::ResponseTooLarge { .. }), "{err:?}");
    fake.join();
}

#[test]
fn length_prefix_that_disagrees_with_the_header_is_malformed() {
    let claimed = u32::try_from(24 + SIM_QUOTE_LEN - 10).unwrap();
    let (_, err) = fault(QgsFault::OversizeLength(claimed));
    assert!(matches!(err, QgsError::Malformed { .. }), "{err:?}");
}

#[test]
fn empty_quote_is_an_error() {
    let (_, err) = fault(QgsFault::EmptyQuote);
    assert!(matches!(err, QgsError::EmptyQuote), "{err:?}");
    assert!(err.to_string().contains("empty quote"), "{err}");
}

#[test]
fn hanging_service_times_out() {
    let fake = FakeQgs::new().with_fault(QgsFault::Hang);
    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    let err = QgsClient::new(fake.clone())
        .with_timeouts(QgsTimeouts {
            connect: Duration::from_secs(1),
            exchange: timeout,
        })
        .get_quote(&tdreport())
        .unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(
            err,
            QgsError::TimedOut {
                stage: "reading the response",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        elapsed >= timeout && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
    // The client dropped its end, so the service thread ends.
    fake.join();
    assert_eq!(fake.connections(), 1);
}

#[test]
fn no_retry_after_failure() {
    let (fake, _) = fault(QgsFault::ErrorCode(error_code::UNEXPECTED));
    assert_eq!(fake.connections(), 1);
}

#[test]
fn empty_report_is_refused_before_connecting() {
    let fake = FakeQgs::new();
    let err = QgsClient::new(fake.clone())
        .get_quote_response(&[], &[])
        .unwrap_err();
    assert!(matches!(err, QgsError::Malformed { .. }), "{err:?}");
    assert_eq!(fake.connections(), 0);
}

#[test]
fn client_works_through_a_reference() {
    let mut fake = FakeQgs::new();
    let quote = QgsClient::new(&mut fake).get_quote(&tdreport()).unwrap();
    assert_eq!(quote.len(), SIM_QUOTE_LEN);
    fake.join();
}

#[test]
fn probe_only_creates_a_socket() {
    // Whether this machine has vsock or not, the probe answers without connecting anywhere.
    match probe(4050) {
        Ok(()) => {}
        Err(reason) => assert!(
            reason.contains("vsock") || reason.contains("AF_VSOCK"),
            "{reason}"
        ),
    }
}
