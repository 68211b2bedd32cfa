// SPDX-License-Identifier: Apache-2.0
//! The vTPM client against `FakeVtpm`, whose paravisor regenerates the HCL report from the user
//! data on reads the way Azure's does: the echo path (first read, and after the 2 s-style rate
//! limit), the stale path, a quote whose PCRs move under it, the AK certificate, NV buffer sizes,
//! and garbled or failing responses. The same commands run against a real TPM in
//! `vtpm_swtpm.rs`.

#![expect(clippy::unwrap_used, reason = "test helpers panic on fixture failures")]

use std::io;
use std::time::Duration;

use thimble_collect::vtpm::{
    AK_CERT_NV_INDEX, HCL_REPORT_NV_INDEX, HCL_USER_DATA_NV_INDEX, Malformed, NvPublic,
    ResponseCode, VtpmClient, VtpmError, alg, cc, nv_attr, rc,
};
use thimble_evidence::azure::HclReport;
use thimble_evidence::snp::{AmdCert, Product};
use thimble_sim::azure_sim::SimAk;
use thimble_sim::fake_vtpm::{AZURE_HCL_REPORT_LEN, FakeVtpm, Fault, NvReadRecord, ReportRefresh};
use thimble_sim::signer::sim_chain;
use thimble_verify::Verdict;
use thimble_verify::azure::{
    AzurePolicy, AzureRoots, HardwareEndorsements, ParavisorPolicy, TrustedParavisor, verify_hcl,
};
use thimble_verify::roots::{IntelRoots, TrustedRoots};

const NONCE: &[u8] = b"thimble vtpm fake nonce";

fn report_data(seed: u8) -> [u8; 64] {
    std::array::from_fn(|i| seed ^ i as u8)
}

fn immediate() -> FakeVtpm {
    FakeVtpm::new().with_report_refresh(ReportRefresh::OnRead {
        min_interval: Duration::ZERO,
    })
}

fn user_data_of(hcl: &[u8]) -> Vec<u8> {
    HclReport::parse(hcl)
        .unwrap()
        .runtime_data()
        .unwrap()
        .user_data
        .unwrap()
}

#[test]
fn fresh_report_echoes_on_the_first_read() {
    let mut client = VtpmClient::new(immediate());
    let fresh = client
        .fresh_hcl_report(&report_data(1), Duration::from_secs(2), false)
        .unwrap();
    assert!(fresh.echoed);
    assert_eq!(fresh.attempts, 1);
    assert!(fresh.defined_user_data_index);
    assert_eq!(
        fresh.observed_user_data.as_deref(),
        Some(&report_data(1)[..])
    );
    assert_eq!(fresh.bytes.len(), AZURE_HCL_REPORT_LEN);
    assert_eq!(user_data_of(&fresh.bytes), report_data(1));

    let fake = client.into_transport();
    // 2600 bytes in three 1024-byte-max reads, owner-authorized.
    let reads: Vec<NvReadRecord> = fake
        .nv_reads()
        .iter()
        .copied()
        .filter(|r| r.index == HCL_REPORT_NV_INDEX)
        .collect();
    let spans: Vec<(u16, u16)> = reads.iter().map(|r| (r.size, r.offset)).collect();
    assert_eq!(spans, [(1024, 0), (1024, 1024), (552, 2048)]);
    assert_eq!(fake.refreshes(), 1);
    // Defined the way Azure's tools do.
    let public = fake.nv_public(HCL_USER_DATA_NV_INDEX).unwrap();
    assert_eq!(
        public.attributes,
        nv_attr::OWNERWRITE | nv_attr::OWNERREAD | nv_attr::PPREAD | nv_attr::WRITTEN
    );
    assert_eq!(public.data_size, 64);
    assert_eq!(
        fake.nv_data(HCL_USER_DATA_NV_INDEX).unwrap(),
        report_data(1)
    );
}

#[test]
fn a_rate_limited_paravisor_is_polled_until_it_echoes() {
    let fake = FakeVtpm::new().with_report_refresh(ReportRefresh::OnRead {
        min_interval: Duration::from_millis(300),
    });
    let mut client = VtpmClient::new(fake).with_poll_interval(Duration::from_millis(50));
    let first = client
        .fresh_hcl_report(&report_data(1), Duration::from_secs(3), false)
        .unwrap();
    assert_eq!(first.attempts, 1);
    // Right after a refresh the paravisor serves the previous report until 300 ms have passed.
    let second = client
        .fresh_hcl_report(&report_data(2), Duration::from_secs(3), false)
        .unwrap();
    assert!(second.echoed);
    assert!(second.attempts > 1, "{}", second.attempts);
    assert!(
        second.waited >= Duration::from_millis(250),
        "{:?}",
        second.waited
    );
    assert!(!second.defined_user_data_index);
    assert_eq!(user_data_of(&second.bytes), report_data(2));
    assert_eq!(client.transport().refreshes(), 2);
}

#[test]
fn a_paravisor_that_never_refreshes_gives_a_stale_report() {
    let fake = FakeVtpm::new().with_report_refresh(ReportRefresh::Never);
    let mut client = VtpmClient::new(fake).with_poll_interval(Duration::from_millis(20));
    let e = client
        .fresh_hcl_report(&report_data(3), Duration::from_millis(150), false)
        .unwrap_err();
    let VtpmError::StaleReport {
        attempts, observed, ..
    } = &e
    else {
        panic!("{e:?}");
    };
    assert!(*attempts >= 3);
    assert_eq!(observed.as_deref(), Some(&[0u8; 64][..]));

    let stale = client
        .fresh_hcl_report(&report_data(3), Duration::from_millis(60), true)
        .unwrap();
    assert!(!stale.echoed);
    assert!(stale.attempts >= 2);
    assert_eq!(user_data_of(&stale.bytes), [0u8; 64]);
}

#[test]
fn an_unparsable_report_is_an_error_even_when_stale_is_allowed() {
    let fake = immediate().with_paravisor(Box::new(|_: &[u8; 64]| vec![0x55; 2600]));
    let mut client = VtpmClient::new(fake).with_poll_interval(Duration::from_millis(20));
    let e = client
        .fresh_hcl_report(&report_data(4), Duration::from_millis(60), true)
        .unwrap_err();
    assert!(matches!(e, VtpmError::HclReport { .. }), "{e:?}");
    assert!(client.transport().commands().len() > 4);
}

#[test]
fn quote_from_the_fake_verifies_end_to_end() {
    let mut client = VtpmClient::new(immediate());
    let fresh = client
        .fresh_hcl_report(&report_data(5), Duration::from_secs(2), false)
        .unwrap();
    let q = client.collect_quote(NONCE).unwrap();
    let ak = SimAk::get();
    assert_eq!(q.ak_public.public_area, ak.tpmt_public());
    assert_eq!(q.ak_public.name, ak.name());
    assert_eq!(q.ak_public.rsa.as_ref().unwrap().n, ak.modulus());
    assert_eq!(q.ak_public.rsa_scheme, Some((alg::RSASSA, alg::SHA256)));
    assert_eq!(q.pcrs[..], client.transport().pcrs()[..]);

    let chain = sim_chain();
    let certs = [chain.vcek_der, chain.ask_der, chain.ark_der]
        .iter()
        .map(|der| AmdCert::parse_der(der).unwrap())
        .collect();
    let roots = AzureRoots {
        amd: TrustedRoots::amd().insecure_add_simulated(Product::Milan, chain.ark_der),
        intel: IntelRoots::default(),
    };
    let policy = AzurePolicy {
        expected_nonce: Some(NONCE.to_vec()),
        paravisor: ParavisorPolicy {
            snp_keys: vec![TrustedParavisor {
                value: thimble_sim::azure_sim::SIM_PARAVISOR_ID_KEY_DIGEST,
                label: "simulation".into(),
            }],
            ..ParavisorPolicy::empty()
        },
        ..AzurePolicy::default()
    };
    let outcome = verify_hcl(
        &fresh.bytes,
        Some(&q.to_tpm_quote()),
        &HardwareEndorsements::Snp {
            certs,
            crls: Vec::new(),
        },
        1_780_272_000,
        &roots,
        &policy,
    );
    assert_eq!(outcome.verdict, Verdict::Valid, "{:?}", outcome.errors);
    let claims = outcome.claims.unwrap();
    assert_eq!(
        claims["runtime_data"]["user-data"],
        hex::encode(report_data(5))
    );
}

#[test]
fn a_pcr_moving_between_quote_and_read_is_retried_then_reported() {
    let mut fake = immediate();
    fake.extend_after_next_quote(3);
    let mut client = VtpmClient::new(fake);
    let q = client.collect_quote(NONCE).unwrap();
    let quotes = client
        .transport()
        .commands()
        .iter()
        .filter(|&&c| c == cc::QUOTE)
        .count();
    assert_eq!(quotes, 2);
    assert_eq!(q.pcrs[3], client.transport().pcrs()[3]);

    for _ in 0..3 {
        client.transport_mut().extend_after_next_quote(7);
    }
    assert!(matches!(
        client.collect_quote(NONCE),
        Err(VtpmError::PcrsChanged { attempts: 3 })
    ));
}

#[test]
fn ak_certificate_is_read_across_chunks_and_trimmed() {
    let mut der = vec![0x30, 0x82, 0x05, 0x00];
    der.extend((0..0x500).map(|i| i as u8));
    let fake = immediate().with_ak_cert(&der, 4096);
    let mut client = VtpmClient::new(fake);
    let q = client.collect_quote(NONCE).unwrap();
    assert_eq!(q.ak_cert.as_deref(), Some(&der[..]));
    let cert_reads = client
        .transport()
        .nv_reads()
        .iter()
        .filter(|r| r.index == AK_CERT_NV_INDEX)
        .count();
    assert_eq!(cert_reads, 4);
}

#[test]
fn an_unreadable_ak_certificate_does_not_fail_the_quote() {
    let cert_index = NvPublic {
        index: AK_CERT_NV_INDEX,
        name_alg: alg::SHA256,
        attributes: nv_attr::PPREAD | nv_attr::PPWRITE,
        auth_policy: vec![],
        data_size: 16,
        name: vec![],
    };
    let fake = immediate().with_nv_index(cert_index, Some(vec![0x30, 1, 0]));
    let q = VtpmClient::new(fake).collect_quote(NONCE).unwrap();
    assert_eq!(q.ak_cert, None);
    let why = q.ak_cert_error.unwrap();
    assert!(why.contains("0x01c101d0 (AK certificate)"), "{why}");
}

#[test]
fn chunk_size_follows_the_tpm_and_the_caller() {
    for (tpm_max, forced, expected) in [
        (None, None, 1024u16),
        (Some(512), None, 512),
        (Some(2048), None, 2048),
        (Some(8192), None, 3072),
        (Some(1024), Some(100), 100),
    ] {
        let fake = immediate().with_nv_buffer_max(tpm_max);
        let mut client = VtpmClient::new(fake);
        if let Some(n) = forced {
            client = client.with_max_chunk(n);
        }
        let report = client.hcl_report().unwrap();
        assert_eq!(report.len(), AZURE_HCL_REPORT_LEN);
        let sizes: Vec<u16> = client
            .transport()
            .nv_reads()
            .iter()
            .map(|r| r.size)
            .collect();
        assert_eq!(sizes[0], expected.min(AZURE_HCL_REPORT_LEN as u16));
        assert!(sizes.iter().all(|&s| s <= expected));
        assert_eq!(
            sizes.iter().map(|&s| usize::from(s)).sum::<usize>(),
            AZURE_HCL_REPORT_LEN
        );
    }
}

#[test]
fn missing_report_index_and_ak() {
    let mut client = VtpmClient::new(immediate().without_hcl_report().without_ak());
    assert!(matches!(
        client.hcl_report(),
        Err(VtpmError::NvIndexMissing { index }) if index == HCL_REPORT_NV_INDEX
    ));
    let e = client.collect_quote(NONCE).unwrap_err();
    assert_eq!(e.response_code().unwrap().base(), rc::HANDLE);
    assert!(
        e.to_string()
            .starts_with("TPM2_ReadPublic failed with TPM_RC_HANDLE"),
        "{e}"
    );
}

#[test]
fn existing_user_data_index_is_used_or_refused() {
    let index = |attributes, size| NvPublic {
        index: HCL_USER_DATA_NV_INDEX,
        name_alg: alg::SHA256,
        attributes,
        auth_policy: vec![],
        data_size: size,
        name: vec![],
    };
    // Index-password writes only: written through the index with its (empty) password.
    let fake = immediate().with_nv_index(index(nv_attr::AUTHREAD | nv_attr::AUTHWRITE, 64), None);
    let mut client = VtpmClient::new(fake);
    let fresh = client
        .fresh_hcl_report(&report_data(6), Duration::from_secs(1), false)
        .unwrap();
    assert!(fresh.echoed && !fresh.defined_user_data_index);

    let fake = immediate().with_nv_index(index(nv_attr::OWNERREAD | nv_attr::PPWRITE, 64), None);
    assert!(matches!(
        VtpmClient::new(fake).nv_define_and_write_user_data(&[0; 64]),
        Err(VtpmError::NvNotWritable { .. })
    ));
    let fake = immediate().with_nv_index(index(nv_attr::OWNERREAD | nv_attr::OWNERWRITE, 16), None);
    assert!(matches!(
        VtpmClient::new(fake).nv_define_and_write_user_data(&[0; 64]),
        Err(VtpmError::NvIndexTooSmall { size: 16, .. })
    ));
}

#[test]
fn garbled_and_failing_responses_are_typed() {
    let mut client = VtpmClient::new(immediate());
    let fake = client.transport_mut();
    fake.fail_next(cc::NV_READ_PUBLIC, Fault::Truncate);
    fake.fail_next(cc::NV_READ_PUBLIC, Fault::WrongSize);
    fake.fail_next(cc::NV_READ_PUBLIC, Fault::Garbage(vec![0x80, 0x01, 0, 0]));
    fake.fail_next(
        cc::NV_READ_PUBLIC,
        Fault::Transport(io::ErrorKind::BrokenPipe),
    );
    fake.fail_next(cc::NV_READ, Fault::ResponseCode(rc::RETRY));
    fake.fail_next(cc::QUOTE, Fault::ResponseCode(rc::NV_RATE));

    let reason = |e: VtpmError| match e {
        VtpmError::Malformed { command, reason } => {
            assert_eq!(command, "TPM2_NV_ReadPublic");
            reason
        }
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        reason(client.hcl_report().unwrap_err()),
        Malformed::SizeMismatch { .. }
    ));
    assert!(matches!(
        reason(client.hcl_report().unwrap_err()),
        Malformed::SizeMismatch { .. }
    ));
    assert!(matches!(
        reason(client.hcl_report().unwrap_err()),
        Malformed::ShortHeader { len: 4 }
    ));
    let e = client.hcl_report().unwrap_err();
    match &e {
        VtpmError::Transport { command, source } => {
            assert_eq!(*command, "TPM2_NV_ReadPublic");
            assert_eq!(source.kind(), io::ErrorKind::BrokenPipe);
        }
        other => panic!("{other:?}"),
    }
    let e = client.hcl_report().unwrap_err();
    let code = e.response_code().unwrap();
    assert_eq!(code, ResponseCode(rc::RETRY));
    assert!(code.is_warning());
    assert!(e.to_string().contains("sent again later"), "{e}");
    let e = client.collect_quote(NONCE).unwrap_err();
    assert_eq!(e.response_code().unwrap().base(), rc::NV_RATE);
    // Everything injected was consumed; the TPM works again.
    assert_eq!(client.hcl_report().unwrap().len(), AZURE_HCL_REPORT_LEN);
}

#[test]
fn the_fake_answers_like_a_tpm_to_bad_authorization() {
    let mut client = VtpmClient::new(immediate());
    // The HCL report index refuses owner writes (it is the paravisor's).
    let e = client
        .nv_write(
            thimble_collect::vtpm::NvAuth::Owner,
            HCL_REPORT_NV_INDEX,
            0,
            &[0; 4],
        )
        .unwrap_err();
    assert_eq!(e.response_code().unwrap().base(), rc::NV_AUTHORIZATION);
    let e = client
        .nv_write(
            thimble_collect::vtpm::NvAuth::Index(b"guess"),
            HCL_REPORT_NV_INDEX,
            0,
            &[0; 4],
        )
        .unwrap_err();
    assert_eq!(e.response_code().unwrap().base(), rc::BAD_AUTH);
    let e = client
        .nv_read_range(
            thimble_collect::vtpm::NvAuth::Owner,
            HCL_REPORT_NV_INDEX,
            2590,
            20,
        )
        .unwrap_err();
    assert_eq!(e.response_code().unwrap().base(), rc::NV_RANGE);
}
