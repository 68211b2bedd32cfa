// SPDX-License-Identifier: Apache-2.0
//! `TdxGuestClient` against the kernel-faithful `FakeTdxGuest`: a TDREPORT that binds the report
//! data, every errno the driver returns, and reports that do not belong to the request. These
//! live here rather than as unit tests because `thimble-sim` depends on `thimble-collect`.

use nix::errno::Errno;
use thimble_collect::tdx_guest::{
    REPORT_DATA_OFFSET, TDX_REPORT_LEN, TdxGuestClient, TdxGuestError, TdxReportReq, probe,
};
use thimble_evidence::tdx::TdReport;
use thimble_sim::fake_tdx_guest::{FakeTdxGuest, TdReportTemplate};

const REPORT_DATA: [u8; 64] = [0xD7; 64];

/// Whether an error is the one expected for an errno.
type ErrorCheck = fn(&TdxGuestError) -> bool;

#[test]
fn report_binds_the_report_data() {
    let mut fake = FakeTdxGuest::new();
    let report = TdxGuestClient::new(&mut fake)
        .get_report(&REPORT_DATA)
        .unwrap();
    assert_eq!(report.len(), TDX_REPORT_LEN);
    assert_eq!(report[0], 0x81);
    assert_eq!(
        &report[REPORT_DATA_OFFSET..REPORT_DATA_OFFSET + 64],
        &REPORT_DATA
    );
    assert_eq!(
        &TdReport::parse(&report).unwrap().mrtd,
        &TdReportTemplate::default().mr_td
    );
    assert_eq!(report, fake.report_for(&REPORT_DATA).to_vec());
    assert_eq!(fake.requests(), 1);
    assert_eq!(fake.last_report_data(), Some(REPORT_DATA));
}

#[test]
fn template_measurements_appear_in_the_report() {
    let template = TdReportTemplate {
        mr_config_id: [0x11; 48],
        ..TdReportTemplate::default()
    };
    let fake = FakeTdxGuest::new().with_template(template);
    let mut client = TdxGuestClient::new(fake);
    let report = client.get_report(&REPORT_DATA).unwrap();
    assert_eq!(&TdReport::parse(&report).unwrap().mrconfigid, &[0x11; 48]);
    assert_eq!(client.into_device().requests(), 1);
}

#[test]
fn errno_values_become_typed_errors() {
    let cases: [(Errno, ErrorCheck); 6] = [
        (Errno::EIO, |e| matches!(e, TdxGuestError::TdcallFailed)),
        (
            Errno::EINVAL,
            |e| matches!(e, TdxGuestError::InvalidOperand { errno } if *errno == Errno::EINVAL as i32),
        ),
        (
            Errno::ENXIO,
            |e| matches!(e, TdxGuestError::InvalidOperand { errno } if *errno == Errno::ENXIO as i32),
        ),
        (Errno::EBUSY, |e| matches!(e, TdxGuestError::Busy)),
        (Errno::ENOTTY, |e| matches!(e, TdxGuestError::NotSupported)),
        (
            Errno::EFAULT,
            |e| matches!(e, TdxGuestError::Io { errno } if *errno == Errno::EFAULT as i32),
        ),
    ];
    for (errno, expected) in cases {
        let mut fake = FakeTdxGuest::new().with_errno(errno);
        let err = TdxGuestClient::new(&mut fake)
            .get_report(&REPORT_DATA)
            .unwrap_err();
        assert!(expected(&err), "{errno:?} gave {err:?}");
        assert_eq!(fake.requests(), 1, "the client must not retry");
    }
}

#[test]
fn eio_is_explained_as_a_tdcall_failure() {
    let mut fake = FakeTdxGuest::new().with_errno(Errno::EIO);
    let err = TdxGuestClient::new(&mut fake)
        .get_report(&REPORT_DATA)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "TDG.MR.REPORT TDCALL failed (EIO): the TDX module refused to produce a TDREPORT"
    );
}

#[test]
fn transient_failure_then_success() {
    let mut fake = FakeTdxGuest::new().fail_next(Errno::EBUSY);
    let mut client = TdxGuestClient::new(&mut fake);
    assert!(matches!(
        client.get_report(&REPORT_DATA),
        Err(TdxGuestError::Busy)
    ));
    client.get_report(&REPORT_DATA).unwrap();
    assert_eq!(fake.requests(), 2);
}

#[test]
fn report_for_another_request_is_rejected() {
    let mut fake = FakeTdxGuest::new().with_foreign_report_data([0x01; 64]);
    let err = TdxGuestClient::new(&mut fake)
        .get_report(&REPORT_DATA)
        .unwrap_err();
    assert!(matches!(err, TdxGuestError::ReportDataMismatch), "{err:?}");
}

#[test]
fn non_tdx_report_is_rejected() {
    let mut fake = FakeTdxGuest::new().with_report_type(0x00);
    let err = TdxGuestClient::new(&mut fake)
        .get_report(&REPORT_DATA)
        .unwrap_err();
    assert!(
        matches!(err, TdxGuestError::NotTdxReport { actual: 0 }),
        "{err:?}"
    );
}

#[test]
fn request_struct_defaults() {
    let req = TdxReportReq::default();
    assert_eq!(req.reportdata, [0; 64]);
    assert_eq!(req.tdreport, [0; TDX_REPORT_LEN]);
}

#[test]
fn probe_explains_a_missing_device() {
    let dir = tempfile::tempdir().unwrap();
    let reason = probe(&dir.path().join("tdx_guest")).unwrap_err();
    assert!(reason.contains("does not exist"), "{reason}");
    let file = dir.path().join("regular");
    std::fs::write(&file, b"").unwrap();
    let reason = probe(&file).unwrap_err();
    assert!(reason.contains("not a character device"), "{reason}");
}
