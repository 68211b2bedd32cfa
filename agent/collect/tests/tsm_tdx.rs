// SPDX-License-Identifier: Apache-2.0
//! The configfs-tsm report client with the `tdx_guest` provider, against `FakeTsm`: quotes of
//! realistic and large sizes, the kernel's `outblob` size limit (`EFBIG`), an empty quote from the
//! host's Quote Generation Service, and the attributes `tdx_guest` does not have.

use std::time::Duration;

use thimble_collect::tsm::{Errno, Provider, TsmClient, TsmError, TsmRequest};
use thimble_sim::fake_qgs::{QUOTE_REPORT_DATA_OFFSET, sim_quote};
use thimble_sim::fake_tdx_guest::{TdReportTemplate, build_td_report};
use thimble_sim::fake_tsm::{FakeTsm, KernelProfile, ReportGenerator, TSM_REPORT_OUTBLOB_MAX};

/// `tdx_guest`'s `report_new`: a TDREPORT for the inblob, quoted by the (simulated) host service,
/// padded to `len` bytes when that is longer (DICE platforms and long PCK chains make large
/// quotes).
fn quote_generator(len: usize) -> ReportGenerator {
    Box::new(move |inblob, _privlevel| {
        let mut quote = sim_quote(&build_td_report(&TdReportTemplate::default(), inblob));
        if quote.len() < len {
            quote.resize(len, 0xC5);
        }
        Ok((quote, Vec::new()))
    })
}

fn tdx(quote_len: usize) -> FakeTsm {
    FakeTsm::new(
        KernelProfile::Linux6_7,
        Provider::TdxGuest,
        quote_generator(quote_len),
    )
}

fn client(fake: &FakeTsm) -> TsmClient<FakeTsm> {
    TsmClient::new(fake.clone(), fake.root()).with_busy_retries(3, Duration::ZERO)
}

fn request() -> TsmRequest {
    TsmRequest {
        expected_provider: Some(Provider::TdxGuest),
        ..TsmRequest::new([0x3C; 64])
    }
}

#[test]
fn quote_binds_the_inblob() {
    let fake = tdx(0);
    let report = client(&fake).get_report(&request()).unwrap();
    assert_eq!(report.provider, Provider::TdxGuest);
    assert_eq!(
        &report.outblob[QUOTE_REPORT_DATA_OFFSET..QUOTE_REPORT_DATA_OFFSET + 64],
        &[0x3C; 64]
    );
    assert_eq!(report.auxblob, None);
    assert_eq!(report.privlevel_floor, None);
    assert_eq!(report.generation, 1);
    assert!(fake.entries().is_empty());
}

#[test]
fn large_quote_round_trips() {
    let fake = tdx(20 * 1024);
    let report = client(&fake).get_report(&request()).unwrap();
    assert_eq!(report.outblob.len(), 20 * 1024);
    assert_eq!(&report.outblob[..4], &[4, 0, 2, 0]);
    assert_eq!(report.outblob[20 * 1024 - 1], 0xC5);

    // Exactly at the kernel's limit is still fine.
    let fake = tdx(TSM_REPORT_OUTBLOB_MAX);
    let report = client(&fake).get_report(&request()).unwrap();
    assert_eq!(report.outblob.len(), TSM_REPORT_OUTBLOB_MAX);
}

#[test]
fn quote_over_the_kernel_limit_is_too_big() {
    let fake = tdx(TSM_REPORT_OUTBLOB_MAX + 1);
    let err = client(&fake).get_report(&request()).unwrap_err();
    assert!(
        matches!(
            &err,
            TsmError::TooBig {
                attribute: "outblob",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.errno(), Some(Errno::EFBIG as i32));
    assert!(err.to_string().contains("size limit (EFBIG)"), "{err}");
    assert!(fake.entries().is_empty());

    // A kernel with a larger limit (SZ_16M in current trees) returns the same quote.
    let fake = tdx(TSM_REPORT_OUTBLOB_MAX + 1).blob_max(16 << 20);
    let report = client(&fake).get_report(&request()).unwrap();
    assert_eq!(report.outblob.len(), TSM_REPORT_OUTBLOB_MAX + 1);
}

#[test]
fn empty_outblob_blames_the_quote_generation_service() {
    let fake = tdx(0).empty_outblob();
    let err = client(&fake).get_report(&request()).unwrap_err();
    assert!(
        matches!(
            &err,
            TsmError::EmptyOutblob {
                provider: Provider::TdxGuest,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("quote generation service returned no quote"),
        "{message}"
    );
    assert!(fake.entries().is_empty());
}

#[test]
fn privlevel_is_unsupported_on_tdx_guest() {
    let fake = tdx(0);
    let req = TsmRequest {
        privlevel: Some(0),
        ..request()
    };
    let err = client(&fake).get_report(&req).unwrap_err();
    assert!(
        matches!(
            &err,
            TsmError::Unsupported {
                attribute: "privlevel",
                provider: Provider::TdxGuest,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(fake.writes().is_empty());
    assert!(fake.entries().is_empty());
}

#[test]
fn get_quote_in_flight_is_retried() {
    // tdx_guest answers EBUSY while an earlier GetQuote is still in flight.
    let fake = tdx(0).busy_times(2);
    let report = client(&fake).get_report(&request()).unwrap();
    assert_eq!(report.generation, 1);
    assert_eq!(fake.mkdir_count(), 3);
    assert!(fake.entries().is_empty());
}

#[test]
fn get_quote_timeout_is_reported() {
    let fake = tdx(0).etimedout();
    let err = client(&fake).get_report(&request()).unwrap_err();
    assert!(matches!(err, TsmError::TimedOut { .. }), "{err:?}");
    assert!(fake.entries().is_empty());
}
