// SPDX-License-Identifier: Apache-2.0
//! `SevGuestClient` against the kernel-faithful `FakeSevGuest`: plain and extended reports,
//! certificate-buffer negotiation (exactly one retry), and the failure modes that end with the
//! kernel disabling the channel. These live here rather than as unit tests because
//! `thimble-sim` depends on `thimble-collect`.

use ring::signature::{ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};
use thimble_collect::sev_guest::{
    ExtReportError, GuestRequestError, SNP_REPORT_LEN, SevGuestClient, SevGuestError,
};
use thimble_sim::fake_sev_guest::{
    ARK_GUID, ASK_GUID, FakeSevGuest, VCEK_GUID, build_cert_table, sim_cert_table,
};
use thimble_sim::signer::{SIM_CHIP_ID, sim_chain};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

const REPORT_DATA: [u8; 64] = [0xA5; 64];

/// Checks the report's ECDSA P-384 signature against the simulated VCEK certificate.
fn assert_signed_by_sim_vcek(report: &[u8]) {
    assert_eq!(report.len(), SNP_REPORT_LEN);
    let (_, vcek) = X509Certificate::from_der(sim_chain().vcek_der).expect("sim VCEK parses");
    let mut signature = Vec::new();
    for at in [0x2A0, 0x2E8] {
        signature.extend(report[at..at + 48].iter().rev());
    }
    UnparsedPublicKey::new(
        &ECDSA_P384_SHA384_FIXED,
        &vcek.public_key().subject_public_key.data,
    )
    .verify(&report[..0x2A0], &signature)
    .expect("report signature verifies under the sim VCEK");
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// (GUID, certificate bytes) for each entry of a certificate table.
fn table_entries(table: &[u8]) -> Vec<([u8; 16], Vec<u8>)> {
    table
        .chunks(24)
        .take_while(|e| e.iter().any(|b| *b != 0))
        .map(|e| {
            let offset = le_u32(&e[16..20]) as usize;
            let length = le_u32(&e[20..24]) as usize;
            let mut guid = [0u8; 16];
            guid.copy_from_slice(&e[..16]);
            (guid, table[offset..offset + length].to_vec())
        })
        .collect()
}

#[test]
fn plain_report() {
    let mut fake = FakeSevGuest::new();
    let report = SevGuestClient::new(&mut fake)
        .get_report(&REPORT_DATA, 0)
        .unwrap();
    assert_signed_by_sim_vcek(&report);
    assert_eq!(&report[0x50..0x90], &REPORT_DATA);
    assert_eq!(&report[0x1A0..0x1E0], &SIM_CHIP_ID);
    assert_eq!(fake.requests(), 1);
}

#[test]
fn report_for_requested_vmpl() {
    let mut fake = FakeSevGuest::new();
    let report = SevGuestClient::new(&mut fake)
        .get_report(&REPORT_DATA, 2)
        .unwrap();
    assert_eq!(&report[0x30..0x34], &2u32.to_le_bytes());
    assert_signed_by_sim_vcek(&report);
}

#[test]
fn ext_report_negotiates_the_buffer_once() {
    // The simulated chain alone is larger than one page, as AMD's is.
    assert!(sim_cert_table().len() > 4096);
    let mut fake = FakeSevGuest::new();
    let (report, certs) = SevGuestClient::new(&mut fake)
        .get_ext_report(&REPORT_DATA, 0)
        .unwrap();
    assert_signed_by_sim_vcek(&report);
    assert_eq!(fake.certs_lens(), [4096, 8192]);
    assert_eq!(fake.requests(), 2);
    // Trimmed to the table's extent, not the 8 KiB buffer.
    assert_eq!(certs, sim_cert_table());
    let chain = sim_chain();
    assert_eq!(
        table_entries(&certs),
        [
            (VCEK_GUID, chain.vcek_der.to_vec()),
            (ASK_GUID, chain.ask_der.to_vec()),
            (ARK_GUID, chain.ark_der.to_vec()),
        ]
    );
}

#[test]
fn ext_report_with_a_padded_table() {
    let mut fake = FakeSevGuest::new().with_extra_cert_bytes(8000);
    let (report, certs) = SevGuestClient::new(&mut fake)
        .get_ext_report(&REPORT_DATA, 0)
        .unwrap();
    assert_signed_by_sim_vcek(&report);
    assert_eq!(fake.certs_lens(), [4096, 16384]);
    assert_eq!(certs.len(), sim_cert_table().len() + 8000);
    assert_eq!(table_entries(&certs)[0].1, sim_chain().vcek_der);
}

#[test]
fn ext_report_when_invalid_len_comes_with_a_successful_ioctl() {
    let mut fake = FakeSevGuest::new().with_invalid_len_errno(0);
    let (_, certs) = SevGuestClient::new(&mut fake)
        .get_ext_report(&REPORT_DATA, 0)
        .unwrap();
    assert_eq!(fake.certs_lens(), [4096, 8192]);
    assert_eq!(certs, sim_cert_table());
}

#[test]
fn ext_report_that_fits_one_page_needs_no_retry() {
    let chain = sim_chain();
    let table = build_cert_table(&[(VCEK_GUID, chain.vcek_der)], 0);
    let mut fake = FakeSevGuest::new().with_cert_table(table.clone());
    let (_, certs) = SevGuestClient::new(&mut fake)
        .get_ext_report(&REPORT_DATA, 0)
        .unwrap();
    assert_eq!(fake.certs_lens(), [4096]);
    assert_eq!(certs, table);
}

#[test]
fn ext_report_without_host_certificates() {
    let mut fake = FakeSevGuest::new().with_cert_table(Vec::new());
    let (report, certs) = SevGuestClient::new(&mut fake)
        .get_ext_report(&REPORT_DATA, 0)
        .unwrap();
    assert_signed_by_sim_vcek(&report);
    assert!(certs.is_empty());
    assert_eq!(fake.requests(), 1);
}

#[test]
fn host_asking_for_more_than_the_driver_allows() {
    let mut fake = FakeSevGuest::new().with_extra_cert_bytes(12_000);
    let err = SevGuestClient::new(&mut fake)
        .get_ext_report(&REPORT_DATA, 0)
        .unwrap_err();
    assert!(
        matches!(err, SevGuestError::BadCertsLength { requested: 20480 }),
        "{err:?}"
    );
    assert_eq!(fake.requests(), 1);
}

#[test]
fn hostile_certificate_table() {
    let mut table = sim_cert_table();
    // First entry's length now runs past the buffer.
    table[20..24].copy_from_slice(&60_000u32.to_le_bytes());
    let mut fake = FakeSevGuest::new().with_cert_table(table);
    let err = SevGuestClient::new(&mut fake)
        .get_ext_report(&REPORT_DATA, 0)
        .unwrap_err();
    assert!(
        matches!(err, SevGuestError::MalformedResponse { .. }),
        "{err:?}"
    );
}

#[test]
fn firmware_error_then_channel_disabled() {
    let mut fake = FakeSevGuest::new().with_firmware_error(0x27);
    let mut client = SevGuestClient::new(&mut fake);
    let err = client.get_report(&REPORT_DATA, 0).unwrap_err();
    assert!(
        matches!(
            err,
            SevGuestError::Firmware {
                status: 0x27,
                name: "INVALID_KEY"
            }
        ),
        "{err:?}"
    );
    let err = client.get_ext_report(&REPORT_DATA, 0).unwrap_err();
    assert!(matches!(err, SevGuestError::ChannelDisabled), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("VMPCK"), "{message}");
    assert!(message.contains("reboot"), "{message}");
    assert_eq!(fake.requests(), 2);
}

#[test]
fn report_status_is_named_and_leaves_the_channel_usable() {
    let mut fake = FakeSevGuest::new().with_guest_vmpl(1);
    let mut client = SevGuestClient::new(&mut fake);
    let err = client.get_report(&REPORT_DATA, 0).unwrap_err();
    assert!(
        matches!(
            err,
            SevGuestError::Firmware {
                status: 0x16,
                name: "INVALID_PARAM"
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("INVALID_PARAM"));
    client.get_report(&REPORT_DATA, 1).unwrap();
}

#[test]
fn busy_host_is_a_clear_error_and_not_retried() {
    let mut fake = FakeSevGuest::new().with_busy_host();
    let mut client = SevGuestClient::new(&mut fake);
    let err = client.get_ext_report(&REPORT_DATA, 0).unwrap_err();
    assert!(matches!(err, SevGuestError::TimedOut), "{err:?}");
    assert!(err.to_string().contains("throttled"));
    assert_eq!(client.device().requests(), 1);
    let err = client.get_report(&REPORT_DATA, 0).unwrap_err();
    assert!(matches!(err, SevGuestError::ChannelDisabled), "{err:?}");
}

#[test]
fn open_failure_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sev-guest");
    let err = thimble_collect::sev_guest::LinuxSevGuest::open(&path).unwrap_err();
    assert!(matches!(err, SevGuestError::Open { .. }));
    assert!(err.to_string().contains(&*path.to_string_lossy()));
}

/// A host that answers INVALID_LEN to every buffer size.
struct AlwaysTooSmall {
    calls: usize,
}

impl thimble_collect::sev_guest::SevGuestDevice for AlwaysTooSmall {
    fn get_report(
        &mut self,
        _: u8,
        _: &thimble_collect::sev_guest::SnpReportReq,
    ) -> Result<Box<thimble_collect::sev_guest::SnpReportResp>, GuestRequestError> {
        unreachable!("only extended reports are requested")
    }

    fn get_ext_report(
        &mut self,
        _: u8,
        _: &thimble_collect::sev_guest::SnpReportReq,
        certs: &mut [u8],
    ) -> Result<Box<thimble_collect::sev_guest::SnpReportResp>, ExtReportError> {
        self.calls += 1;
        Err(ExtReportError {
            error: GuestRequestError::from_exitinfo2(5, 1 << 32),
            needed_certs_len: Some(certs.len() as u32 + 4096),
        })
    }
}

#[test]
fn repeated_invalid_len_is_not_a_loop() {
    let mut host = AlwaysTooSmall { calls: 0 };
    let err = SevGuestClient::new(&mut host)
        .get_ext_report(&REPORT_DATA, 0)
        .unwrap_err();
    assert!(
        matches!(
            err,
            SevGuestError::Vmm {
                vmm_error: 1,
                errno: 5
            }
        ),
        "{err:?}"
    );
    assert_eq!(host.calls, 2);
}
