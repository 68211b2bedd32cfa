// SPDX-License-Identifier: Apache-2.0
//! Integration tests of the configfs-tsm report client against the kernel-faithful `FakeTsm`:
//! the success paths of `sev_guest` and `tdx_guest`, every errno the ABI documents, the
//! generation race check, and that no report entry is ever left behind.

use std::io;
use std::path::Path;
use std::time::Duration;

use thimble_collect::tsm::{
    ConfigFs, Errno, Provider, RealConfigFs, TsmClient, TsmError, TsmReport, TsmRequest,
};
use thimble_sim::fake_tsm::{FakeTsm, KernelProfile, RACER_INBLOB, ReportGenerator};

const CERTS: &[u8] = b"fake certificate table";

/// A "report" that embeds the inblob and the privlevel, so tests can tell whose request it
/// answers.
fn echo_generator(auxblob: &'static [u8]) -> ReportGenerator {
    Box::new(move |inblob, privlevel| {
        let mut report = b"REPORT".to_vec();
        report.extend_from_slice(inblob);
        report.extend_from_slice(&privlevel.to_le_bytes());
        Ok((report, auxblob.to_vec()))
    })
}

fn expected_outblob(inblob: &[u8; 64], privlevel: u32) -> Vec<u8> {
    let mut report = b"REPORT".to_vec();
    report.extend_from_slice(inblob);
    report.extend_from_slice(&privlevel.to_le_bytes());
    report
}

fn sev() -> FakeTsm {
    FakeTsm::new(
        KernelProfile::Linux6_7,
        Provider::SevGuest,
        echo_generator(CERTS),
    )
}

fn tdx() -> FakeTsm {
    FakeTsm::new(
        KernelProfile::Linux6_7,
        Provider::TdxGuest,
        echo_generator(b""),
    )
}

fn client(fake: &FakeTsm) -> TsmClient<FakeTsm> {
    TsmClient::new(fake.clone(), fake.root()).with_busy_retries(5, Duration::ZERO)
}

fn request(privlevel: Option<u32>) -> TsmRequest {
    let mut inblob = [0u8; 64];
    for (byte, value) in inblob.iter_mut().zip(0u8..) {
        *byte = value;
    }
    TsmRequest {
        inblob,
        privlevel,
        expected_provider: None,
    }
}

fn assert_no_entries(fake: &FakeTsm) {
    assert_eq!(
        fake.entries(),
        Vec::<String>::new(),
        "a report entry was left behind"
    );
}

#[test]
fn sev_report_with_privlevel() {
    let fake = sev().privlevel_floor(0);
    let req = TsmRequest {
        expected_provider: Some(Provider::SevGuest),
        ..request(Some(2))
    };
    let report = client(&fake).get_report(&req).unwrap();

    assert_eq!(
        report,
        TsmReport {
            provider: Provider::SevGuest,
            outblob: expected_outblob(&req.inblob, 2),
            auxblob: Some(CERTS.to_vec()),
            generation: 2,
            privlevel: Some(2),
            privlevel_floor: Some(0),
            entry_name: report.entry_name.clone(),
        }
    );
    assert!(
        report
            .entry_name
            .starts_with(&format!("thimble-{}-", std::process::id()))
    );
    assert_no_entries(&fake);
    assert_eq!(fake.mkdir_count(), 1);
    assert_eq!(fake.report_new_count(), 1);

    let writes = fake.writes();
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[0].attribute, "privlevel");
    assert_eq!(writes[0].data, b"2\n");
    assert_eq!(writes[1].attribute, "inblob");
    assert_eq!(writes[1].data, req.inblob);
    assert!(
        writes
            .iter()
            .all(|w| w.entry == report.entry_name && !w.racer && w.errno.is_none())
    );
}

#[test]
fn sev_report_without_privlevel_uses_kernel_default() {
    let fake = sev();
    let req = request(None);
    let report = client(&fake).get_report(&req).unwrap();
    assert_eq!(report.outblob, expected_outblob(&req.inblob, 0));
    assert_eq!(report.generation, 1);
    assert_eq!(report.privlevel, None);
    assert_eq!(fake.writes().len(), 1);
    assert_no_entries(&fake);
}

#[test]
fn sev_without_certificates_has_empty_auxblob() {
    let fake = FakeTsm::new(
        KernelProfile::Linux6_7,
        Provider::SevGuest,
        echo_generator(b""),
    );
    let report = client(&fake).get_report(&request(None)).unwrap();
    assert_eq!(report.auxblob, Some(Vec::new()));
    assert_no_entries(&fake);
}

#[test]
fn tdx_report_has_no_auxblob() {
    let fake = tdx();
    let req = TsmRequest {
        expected_provider: Some(Provider::TdxGuest),
        ..request(None)
    };
    let report = client(&fake).get_report(&req).unwrap();
    assert_eq!(report.provider, Provider::TdxGuest);
    assert_eq!(report.outblob, expected_outblob(&req.inblob, 0));
    assert_eq!(report.auxblob, None);
    assert_eq!(report.privlevel_floor, None);
    assert_eq!(report.generation, 1);
    assert_no_entries(&fake);
}

#[test]
fn linux_6_10_svsm_guest_at_its_floor() {
    let fake = FakeTsm::new(
        KernelProfile::Linux6_10,
        Provider::SevGuest,
        echo_generator(CERTS),
    )
    .privlevel_floor(1);
    let report = client(&fake).get_report(&request(Some(1))).unwrap();
    assert_eq!(report.privlevel_floor, Some(1));
    assert_eq!(report.generation, 2);
    assert_no_entries(&fake);
}

#[test]
fn tdx_rejects_privlevel_as_unsupported() {
    let fake = tdx();
    let err = client(&fake).get_report(&request(Some(0))).unwrap_err();
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
    assert_no_entries(&fake);
}

#[test]
fn provider_mismatch() {
    let fake = sev();
    let req = TsmRequest {
        expected_provider: Some(Provider::TdxGuest),
        ..request(None)
    };
    let err = client(&fake).get_report(&req).unwrap_err();
    match &err {
        TsmError::ProviderMismatch { expected, actual } => {
            assert_eq!(*expected, Provider::TdxGuest);
            assert_eq!(*actual, Provider::SevGuest);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "configfs-tsm provider is sev_guest, expected tdx_guest"
    );
    assert!(fake.writes().is_empty());
    assert_no_entries(&fake);
}

#[test]
fn no_provider_registered() {
    let fake = sev().fail_mkdir_enxio();
    let err = client(&fake).get_report(&request(None)).unwrap_err();
    assert!(matches!(err, TsmError::NoProvider { .. }), "{err:?}");
    assert_eq!(err.errno(), Some(Errno::ENXIO as i32));
    assert_eq!(fake.mkdir_count(), 1);
    assert_no_entries(&fake);
}

#[test]
fn busy_then_recovers_with_fresh_entries() {
    let fake = tdx().busy_times(2);
    let req = request(None);
    let report = client(&fake).get_report(&req).unwrap();
    assert_eq!(report.outblob, expected_outblob(&req.inblob, 0));
    assert_eq!(report.generation, 1);
    assert_eq!(fake.mkdir_count(), 3);
    // Every attempt wrote its inblob again, into its own entry.
    let writes = fake.writes();
    assert_eq!(writes.len(), 3);
    assert_eq!(writes[2].entry, report.entry_name);
    assert_ne!(writes[0].entry, writes[1].entry);
    assert_no_entries(&fake);
}

#[test]
fn busy_exhausted() {
    let fake = tdx().busy_times(100);
    let client = TsmClient::new(fake.clone(), fake.root()).with_busy_retries(3, Duration::ZERO);
    let err = client.get_report(&request(None)).unwrap_err();
    match &err {
        TsmError::Busy { attempts, path } => {
            assert_eq!(*attempts, 3);
            assert!(path.ends_with("outblob"), "{}", path.display());
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.errno(), Some(Errno::EBUSY as i32));
    assert_eq!(fake.mkdir_count(), 3);
    assert_no_entries(&fake);
}

#[test]
fn busy_retries_wait_between_attempts() {
    let fake = tdx().busy_times(1);
    let client =
        TsmClient::new(fake.clone(), fake.root()).with_busy_retries(2, Duration::from_millis(5));
    let start = std::time::Instant::now();
    client.get_report(&request(None)).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(5));
    assert_no_entries(&fake);
}

#[test]
fn privlevel_below_floor_is_invalid() {
    let fake = sev().privlevel_floor(2);
    let err = client(&fake).get_report(&request(Some(1))).unwrap_err();
    match &err {
        TsmError::InvalidArgument {
            attribute,
            privlevel,
            privlevel_floor,
            path,
        } => {
            assert_eq!(*attribute, "privlevel");
            assert_eq!(*privlevel, Some(1));
            assert_eq!(*privlevel_floor, Some(2));
            assert!(path.ends_with("privlevel"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.errno(), Some(Errno::EINVAL as i32));
    let message = err.to_string();
    assert!(message.contains("privlevel_floor 2"), "{message}");
    // The refused write must not have advanced the generation or reached inblob.
    let writes = fake.writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].errno, Some(Errno::EINVAL as i32));
    assert_no_entries(&fake);
}

#[test]
fn privlevel_above_max_is_invalid() {
    let fake = sev();
    let err = client(&fake).get_report(&request(Some(4))).unwrap_err();
    assert!(
        matches!(
            err,
            TsmError::InvalidArgument {
                attribute: "privlevel",
                ..
            }
        ),
        "{err:?}"
    );
    assert_no_entries(&fake);
}

#[test]
fn empty_outblob_sev() {
    let fake = sev().empty_outblob();
    let err = client(&fake).get_report(&request(None)).unwrap_err();
    assert!(
        matches!(
            &err,
            TsmError::EmptyOutblob {
                provider: Provider::SevGuest,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("firmware"), "{err}");
    assert_no_entries(&fake);
}

#[test]
fn empty_outblob_tdx_blames_the_quote_service() {
    let fake = tdx().empty_outblob();
    let err = client(&fake).get_report(&request(None)).unwrap_err();
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
    assert!(
        err.to_string().contains("quote generation service"),
        "{err}"
    );
    assert_no_entries(&fake);
}

#[test]
fn oversized_report() {
    let fake = sev().efbig();
    let err = client(&fake).get_report(&request(None)).unwrap_err();
    assert!(
        matches!(
            err,
            TsmError::TooBig {
                attribute: "outblob",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.errno(), Some(Errno::EFBIG as i32));
    assert_no_entries(&fake);
}

#[test]
fn timed_out() {
    let fake = tdx().etimedout();
    let err = client(&fake).get_report(&request(None)).unwrap_err();
    assert!(
        matches!(
            err,
            TsmError::TimedOut {
                attribute: "outblob",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.errno(), Some(Errno::ETIMEDOUT as i32));
    assert_no_entries(&fake);
}

#[test]
fn racing_writer_is_detected() {
    let fake = sev().racing_writer();
    let err = client(&fake).get_report(&request(Some(0))).unwrap_err();
    match &err {
        TsmError::GenerationMismatch {
            expected,
            actual,
            path,
        } => {
            assert_eq!((*expected, *actual), (2, 3));
            assert!(path.starts_with(fake.root()));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string().contains("generation was 3, expected 2"),
        "{err}"
    );
    let writes = fake.writes();
    assert!(writes.iter().any(|w| w.racer && w.data == RACER_INBLOB));
    assert_no_entries(&fake);
}

#[test]
fn provider_failure_keeps_the_errno() {
    let fake = FakeTsm::new(
        KernelProfile::Linux6_7,
        Provider::SevGuest,
        Box::new(|_, _| Err(Errno::EIO as i32)),
    );
    let err = client(&fake).get_report(&request(None)).unwrap_err();
    assert!(matches!(err, TsmError::Io { op: "read", .. }), "{err:?}");
    assert_eq!(err.errno(), Some(Errno::EIO as i32));
    assert_no_entries(&fake);
}

#[test]
fn root_missing_is_unavailable() {
    let fake = sev().unmounted();
    let err = client(&fake).get_report(&request(None)).unwrap_err();
    assert!(
        matches!(&err, TsmError::Unavailable { root } if root == fake.root()),
        "{err:?}"
    );
    assert_eq!(fake.mkdir_count(), 0);

    let other_root = TsmClient::new(sev(), "/sys/kernel/config/tsm/elsewhere");
    let err = other_root.get_report(&request(None)).unwrap_err();
    assert!(matches!(err, TsmError::Unavailable { .. }), "{err:?}");
}

#[test]
fn real_configfs_missing_root_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tsm").join("report");
    let client = TsmClient::new(RealConfigFs, &root);
    let err = client.get_report(&request(None)).unwrap_err();
    assert!(
        matches!(&err, TsmError::Unavailable { root: r } if *r == root),
        "{err:?}"
    );
    assert!(matches!(
        client.probe().unwrap_err(),
        TsmError::Unavailable { .. }
    ));
}

#[test]
fn probe_reports_the_provider_and_cleans_up() {
    let fake = tdx();
    assert_eq!(client(&fake).probe().unwrap(), Provider::TdxGuest);
    assert_eq!(fake.mkdir_count(), 1);
    assert!(fake.writes().is_empty());
    assert_no_entries(&fake);

    let fake = sev().fail_mkdir_enxio();
    assert!(matches!(
        client(&fake).probe().unwrap_err(),
        TsmError::NoProvider { .. }
    ));
    assert_no_entries(&fake);
}

/// Delegates to `FakeTsm` but refuses `rmdir`, as a kernel would if something still held the
/// entry.
struct StickyEntries(FakeTsm);

impl ConfigFs for StickyEntries {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.0.create_dir(path)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.0.read(path)
    }
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.0.write(path, data)
    }
    fn remove_dir(&self, _path: &Path) -> io::Result<()> {
        Err(io::Error::from_raw_os_error(Errno::EBUSY as i32))
    }
    fn exists(&self, path: &Path) -> bool {
        self.0.exists(path)
    }
}

#[test]
fn failed_cleanup_after_success_is_an_error() {
    let fake = sev();
    let client = TsmClient::new(StickyEntries(fake.clone()), fake.root());
    let err = client.get_report(&request(None)).unwrap_err();
    assert!(matches!(err, TsmError::Cleanup { .. }), "{err:?}");
    assert_eq!(err.errno(), Some(Errno::EBUSY as i32));
}

#[test]
fn failed_cleanup_after_failure_keeps_the_first_error() {
    let fake = sev().etimedout();
    let client = TsmClient::new(StickyEntries(fake.clone()), fake.root());
    let err = client.get_report(&request(None)).unwrap_err();
    assert!(matches!(err, TsmError::TimedOut { .. }), "{err:?}");
}

#[test]
fn client_works_through_a_reference() {
    let fake = sev();
    let client = TsmClient::new(&fake, fake.root());
    client.get_report(&request(None)).unwrap();
    assert_no_entries(&fake);
}
