// SPDX-License-Identifier: Apache-2.0
//! The vTPM client against a real TPM 2.0: swtpm (libtpms) from Debian, over its TCP server on
//! 127.0.0.1, provisioned like an Azure vTPM (HCL report index under the platform hierarchy, AK
//! persisted at `0x81000003`). Covers chunked NV reads, the quote over PCRs 0-23 checked with
//! `TpmsAttest` and ring and through the Azure verifier, the missing-index and TPM error paths,
//! the user-data index Azure's tools define, and the stale-report path (swtpm has no paravisor,
//! so the echo path with a regenerating report is tested against `FakeVtpm` in `vtpm_fake.rs`).
//!
//! swtpm must be installed (`apt-get install -y swtpm`); without it every test here fails and
//! says so. Each test gets its own swtpm.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on swtpm start-up and provisioning failures"
)]

use std::io;
use std::time::Duration;

use ring::digest::{SHA256, digest};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use thimble_collect::vtpm::{
    AK_CERT_NV_INDEX, HCL_REPORT_NV_INDEX, HCL_USER_DATA_NV_INDEX, NvAuth, QUOTE_PCRS, RcPosition,
    TpmPublic, TpmTransport, VtpmClient, VtpmError, alg, cc, nv_attr, rc,
};
use thimble_evidence::azure::{HclReport, RsaPublicKey, TpmsAttest};
use thimble_evidence::snp::{AmdCert, Product};
use thimble_sim::signer::sim_chain;
use thimble_sim::swtpm::{
    SWTPM_NV_INDEX_MAX, Swtpm, TcpTransport, define_owner_index, extend_pcr, provision_ak,
    provision_hcl_report, rewrite_hcl_report, snp_hcl_report_for,
};
use thimble_verify::Verdict;
use thimble_verify::azure::{
    AzurePolicy, AzureRoots, HardwareEndorsements, ParavisorPolicy, TrustedParavisor, verify_hcl,
};
use thimble_verify::roots::{IntelRoots, TrustedRoots};

/// Records every command sent, to check chunking.
struct Recording<T> {
    inner: T,
    sent: Vec<Vec<u8>>,
}

impl<T: TpmTransport> TpmTransport for Recording<T> {
    fn transact(&mut self, command: &[u8]) -> io::Result<Vec<u8>> {
        self.sent.push(command.to_vec());
        self.inner.transact(command)
    }
}

impl<T> Recording<T> {
    /// `(size, offset)` of every `TPM2_NV_Read` sent.
    fn nv_reads(&self) -> Vec<(u16, u16)> {
        self.sent
            .iter()
            .filter(|c| c[6..10] == cc::NV_READ.to_be_bytes())
            .map(|c| {
                let n = c.len();
                (
                    u16::from_be_bytes([c[n - 4], c[n - 3]]),
                    u16::from_be_bytes([c[n - 2], c[n - 1]]),
                )
            })
            .collect()
    }
}

/// A fresh swtpm and a client on it; fails the test with the install instruction if swtpm is
/// missing.
fn tpm() -> (Swtpm, VtpmClient<Recording<TcpTransport>>) {
    let (swtpm, transport) = Swtpm::start().unwrap_or_else(|e| panic!("{e}"));
    let client = VtpmClient::new(Recording {
        inner: transport,
        sent: Vec::new(),
    });
    (swtpm, client)
}

/// swtpm with an AK and an HCL report for it holding `user_data`.
fn azure_like(
    user_data: &[u8; 64],
) -> (
    Swtpm,
    VtpmClient<Recording<TcpTransport>>,
    TpmPublic,
    Vec<u8>,
) {
    let (swtpm, mut client) = tpm();
    let ak = provision_ak(&mut client).unwrap();
    let report = snp_hcl_report_for(ak.rsa.as_ref().unwrap(), user_data, SWTPM_NV_INDEX_MAX);
    provision_hcl_report(&mut client, &report).unwrap();
    client.transport_mut().sent.clear();
    (swtpm, client, ak, report)
}

fn rsa_verify(key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
    RsaPublicKeyComponents {
        n: &key.n,
        e: &key.e,
    }
    .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
    .is_ok()
}

#[test]
fn hcl_report_is_read_in_chunks_of_the_nv_buffer() {
    let (_swtpm, mut client, ak, report) = azure_like(&[0; 64]);
    assert_eq!(report.len(), 2048);
    assert_eq!(client.nv_buffer_max().unwrap(), 1024);
    let read = client.hcl_report().unwrap();
    assert_eq!(read, report);
    assert_eq!(client.transport().nv_reads(), [(1024, 0), (1024, 1024)]);
    let hcl = HclReport::parse(&read).unwrap();
    let runtime = hcl.runtime_data().unwrap();
    assert_eq!(runtime.keys[0].rsa.as_ref(), ak.rsa.as_ref());
    assert_eq!(
        hcl.snp_report().unwrap().unwrap().report_data,
        hcl.expected_report_data()
    );

    // The index as the paravisor defines it: owner-readable, so read with owner auth.
    let public = client.nv_read_public(HCL_REPORT_NV_INDEX).unwrap();
    assert_eq!(public.data_size, 2048);
    assert_ne!(public.attributes & nv_attr::PLATFORMCREATE, 0);
    assert_ne!(public.attributes & nv_attr::WRITTEN, 0);
    assert_eq!(public.read_auth(), Some(NvAuth::Owner));
    assert_eq!(public.name.len(), 34);

    // A forced small chunk: 300-byte reads, the last one short.
    let mut small = VtpmClient::new(client.into_transport()).with_max_chunk(300);
    small.transport_mut().sent.clear();
    assert_eq!(small.hcl_report().unwrap(), report);
    let reads = small.transport().nv_reads();
    assert_eq!(reads.len(), 7);
    assert!(reads[..6].iter().all(|&(size, _)| size == 300));
    assert_eq!(reads[6], (248, 1800));
}

#[test]
fn quote_over_pcrs_0_to_23_verifies() {
    let (_swtpm, mut client, ak, report) = azure_like(&[0; 64]);
    let measured = [
        (0u32, [1u8; 32]),
        (7, [7; 32]),
        (16, [16; 32]),
        (23, [23; 32]),
    ];
    for (pcr, value) in &measured {
        extend_pcr(&mut client, *pcr, value).unwrap();
    }
    let nonce = digest(&SHA256, b"verifier nonce");
    let q = client.collect_quote(nonce.as_ref()).unwrap();

    // Azure's AK shape.
    let key = q.ak_public.rsa.as_ref().unwrap();
    assert_eq!(key.n.len(), 256);
    assert_eq!(key.e, [1, 0, 1]);
    assert_eq!(q.ak_public, ak);
    assert_eq!(q.ak_public.rsa_scheme, Some((alg::RSASSA, alg::SHA256)));
    assert_eq!(q.ak_cert, None);

    // The PCR values: extended ones are SHA-256(zeros ‖ value); PCR_Read took four calls.
    assert_eq!(q.pcrs.len(), 24);
    for (pcr, value) in &measured {
        let mut input = vec![0u8; 32];
        input.extend_from_slice(value);
        assert_eq!(
            q.pcrs[*pcr as usize][..],
            digest(&SHA256, &input).as_ref()[..]
        );
    }
    assert_eq!(q.pcrs[1], [0; 32]);
    let pcr_reads = client
        .transport()
        .sent
        .iter()
        .filter(|c| c[6..10] == cc::PCR_READ.to_be_bytes())
        .count();
    assert_eq!(pcr_reads, 3, "24 PCRs at 8 per TPM2_PCR_Read");

    // The quote as a verifier sees it.
    let attest = TpmsAttest::parse(&q.quote.attest).unwrap();
    assert_eq!(attest.extra_data, nonce.as_ref());
    assert_eq!(attest.selected_pcrs().unwrap(), QUOTE_PCRS.to_vec());
    let values: Vec<Vec<u8>> = q.pcrs.iter().map(|p| p.to_vec()).collect();
    assert_eq!(
        attest.compute_pcr_digest(&values).unwrap()[..],
        attest.pcr_digest[..]
    );
    assert_eq!(attest.qualified_signer, ak.qualified_name);
    assert!(rsa_verify(key, &q.quote.attest, &q.quote.signature));
    let mut tampered = q.quote.attest.clone();
    tampered[10] ^= 1;
    assert!(!rsa_verify(key, &tampered, &q.quote.signature));

    // And through the Azure verifier, with the simulated SNP report that names swtpm's AK.
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
        expected_nonce: Some(nonce.as_ref().to_vec()),
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
        &report,
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
}

#[test]
fn missing_indices_are_typed() {
    let (_swtpm, mut client) = tpm();
    let e = client.hcl_report().unwrap_err();
    assert!(
        matches!(e, VtpmError::NvIndexMissing { index } if index == HCL_REPORT_NV_INDEX),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("0x01400001 (HCL report) is not defined"),
        "{e}"
    );
    let e = client.nv_read(0x0150_0042).unwrap_err();
    assert!(
        matches!(e, VtpmError::NvIndexMissing { index: 0x0150_0042 }),
        "{e:?}"
    );
    assert_eq!(client.ak_certificate().unwrap(), None);
    // Without an HCL report index a fresh report cannot be had; the user data is still written.
    let e = client
        .fresh_hcl_report(&[9; 64], Duration::from_millis(100), true)
        .unwrap_err();
    assert!(matches!(e, VtpmError::NvIndexMissing { index } if index == HCL_REPORT_NV_INDEX));
    assert_eq!(client.nv_read(HCL_USER_DATA_NV_INDEX).unwrap(), [9; 64]);
}

#[test]
fn tpm_response_codes_are_decoded() {
    let (_swtpm, mut client) = tpm();
    // Defined but never written.
    define_owner_index(&mut client, 0x0150_0001, 16).unwrap();
    let e = client.nv_read(0x0150_0001).unwrap_err();
    match &e {
        VtpmError::Tpm { command, rc } => {
            assert_eq!(*command, "TPM2_NV_Read");
            assert_eq!(rc.base(), rc::NV_UNINITIALIZED);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("TPM_RC_NV_UNINITIALIZED"), "{e}");
    assert!(e.to_string().contains("never written"), "{e}");
    // The same for the AK certificate index: no certificate yet.
    define_owner_index(&mut client, AK_CERT_NV_INDEX, 64).unwrap();
    assert_eq!(client.ak_certificate().unwrap(), None);
    // Defined twice.
    let e = define_owner_index(&mut client, 0x0150_0001, 16).unwrap_err();
    assert_eq!(e.response_code().unwrap().base(), rc::NV_DEFINED);
    // Past the end.
    let e = client
        .nv_write(NvAuth::Owner, 0x0150_0001, 8, &[1; 16])
        .unwrap_err();
    assert_eq!(e.response_code().unwrap().base(), rc::NV_RANGE);
    // Wrong index password; the index has noDA, so BAD_AUTH rather than AUTH_FAIL.
    let e = client
        .nv_write(NvAuth::Index(b"wrong"), 0x0150_0001, 0, &[1; 4])
        .unwrap_err();
    let code = e.response_code().unwrap();
    assert_eq!(code.base(), rc::BAD_AUTH);
    assert_eq!(code.position(), Some(RcPosition::Session(1)));
    // No AK.
    let e = client
        .quote(0x8100_0003, b"nonce", &QUOTE_PCRS)
        .unwrap_err();
    let code = e.response_code().unwrap();
    assert_eq!(code.base(), rc::HANDLE);
    assert_eq!(code.position(), Some(RcPosition::Handle(1)));
    let e = client.read_public(0x8100_0003).unwrap_err();
    assert_eq!(e.response_code().unwrap().base(), rc::HANDLE);
    // Checked before anything is sent.
    let sent = client.transport().sent.len();
    let e = client
        .quote(0x8100_0003, &[0; 65], &QUOTE_PCRS)
        .unwrap_err();
    assert!(
        matches!(
            e,
            VtpmError::TooLarge {
                len: 65,
                max: 64,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(matches!(
        client.pcr_read_sha256(&[24]),
        Err(VtpmError::PcrIndex { index: 24 })
    ));
    assert_eq!(client.transport().sent.len(), sent);
}

#[test]
fn stale_report_fails_unless_allowed_and_user_data_index_is_azures() {
    let (_swtpm, client, _ak, report) = azure_like(&[0; 64]);
    let mut client = client.with_poll_interval(Duration::from_millis(40));
    let user_data: [u8; 64] = std::array::from_fn(|i| i as u8);
    let e = client
        .fresh_hcl_report(&user_data, Duration::from_millis(300), false)
        .unwrap_err();
    match &e {
        VtpmError::StaleReport {
            attempts,
            waited,
            observed,
        } => {
            assert!(*attempts >= 3, "{attempts}");
            assert!(*waited >= Duration::from_millis(300));
            assert_eq!(observed.as_deref(), Some(&[0u8; 64][..]));
        }
        other => panic!("{other:?}"),
    }
    let message = e.to_string();
    assert!(message.contains("stale HCL report"), "{message}");
    assert!(message.contains("boot-time report"), "{message}");
    assert!(message.contains("--allow-stale-report"), "{message}");

    // The user-data index was defined as Azure's tools define it, and holds the data.
    let public = client.nv_read_public(HCL_USER_DATA_NV_INDEX).unwrap();
    assert_eq!(public.data_size, 64);
    assert_eq!(public.name_alg, alg::SHA256);
    assert_eq!(
        public.attributes,
        nv_attr::OWNERWRITE | nv_attr::OWNERREAD | nv_attr::PPREAD | nv_attr::WRITTEN
    );
    assert_eq!(client.nv_read(HCL_USER_DATA_NV_INDEX).unwrap(), user_data);

    // Allowed: the stale report comes back, and says so.
    let fresh = client
        .fresh_hcl_report(&user_data, Duration::from_millis(100), true)
        .unwrap();
    assert!(!fresh.echoed);
    assert!(!fresh.defined_user_data_index);
    assert_eq!(fresh.bytes, report);
    assert_eq!(fresh.observed_user_data.as_deref(), Some(&[0u8; 64][..]));
}

#[test]
fn echoed_report_is_fresh_on_a_real_tpm() {
    let user_data = [0x42u8; 64];
    let (_swtpm, mut client, ak, _) = azure_like(&[0; 64]);
    // A paravisor stand-in: the report that answers this user data is already in place.
    let answer = snp_hcl_report_for(ak.rsa.as_ref().unwrap(), &user_data, SWTPM_NV_INDEX_MAX);
    rewrite_hcl_report(&mut client, &answer).unwrap();
    let fresh = client
        .fresh_hcl_report(&user_data, Duration::from_secs(2), false)
        .unwrap();
    assert!(fresh.echoed);
    assert_eq!(fresh.attempts, 1);
    assert!(fresh.defined_user_data_index);
    assert_eq!(fresh.bytes, answer);
}

#[test]
fn an_existing_user_data_index_must_hold_64_bytes() {
    let (_swtpm, mut client) = tpm();
    define_owner_index(&mut client, HCL_USER_DATA_NV_INDEX, 32).unwrap();
    let e = client.nv_define_and_write_user_data(&[1; 64]).unwrap_err();
    assert!(
        matches!(
            e,
            VtpmError::NvIndexTooSmall {
                size: 32,
                needed: 64,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn the_fake_vtpm_answers_nv_commands_byte_for_byte_like_swtpm() {
    use thimble_collect::vtpm::{NvPublic, TpmWriter, encode_command, rh};
    use thimble_sim::fake_vtpm::FakeVtpm;

    const INDEX: u32 = 0x0150_0010;
    let public = NvPublic {
        index: INDEX,
        name_alg: alg::SHA256,
        attributes: nv_attr::OWNERREAD
            | nv_attr::OWNERWRITE
            | nv_attr::AUTHREAD
            | nv_attr::AUTHWRITE
            | nv_attr::NO_DA,
        auth_policy: vec![],
        data_size: 64,
        name: vec![],
    };
    let read = |size: u16, offset: u16| {
        let mut p = TpmWriter::new();
        p.u16(size).u16(offset);
        encode_command(cc::NV_READ, &[rh::OWNER, INDEX], &[&[]], p.as_bytes()).unwrap()
    };
    let write = |password: &[u8], auth: u32| {
        let mut p = TpmWriter::new();
        p.tpm2b("data", &[0xA5; 32]).unwrap();
        p.u16(0);
        encode_command(cc::NV_WRITE, &[auth, INDEX], &[password], p.as_bytes()).unwrap()
    };
    let define = {
        let mut p = TpmWriter::new();
        p.tpm2b("auth", b"").unwrap();
        p.tpm2b("publicInfo", &public.to_bytes().unwrap()).unwrap();
        encode_command(cc::NV_DEFINE_SPACE, &[rh::OWNER], &[&[]], p.as_bytes()).unwrap()
    };
    let read_public = encode_command(cc::NV_READ_PUBLIC, &[INDEX], &[], &[]).unwrap();
    let script = [
        read_public.clone(),    // TPM_RC_HANDLE, handle 1
        define.clone(),         // success
        read(16, 0),            // TPM_RC_NV_UNINITIALIZED
        write(&[], rh::OWNER),  // success
        read(16, 8),            // the data
        read_public,            // public area with WRITTEN, and the name
        read(16, 60),           // TPM_RC_NV_RANGE
        write(b"wrong", INDEX), // TPM_RC_BAD_AUTH, session 1
        define,                 // TPM_RC_NV_DEFINED
        // No key at that handle: TPM_RC_HANDLE, handle 1.
        encode_command(cc::READ_PUBLIC, &[0x8100_0099], &[], &[]).unwrap(),
        {
            let mut p = TpmWriter::new();
            p.tpm2b("qualifyingData", b"nonce").unwrap();
            p.u16(alg::NULL);
            p.pcr_selection_sha256(&QUOTE_PCRS).unwrap();
            encode_command(cc::QUOTE, &[0x8100_0099], &[&[]], p.as_bytes()).unwrap()
        },
    ];
    let (_swtpm, mut real) = Swtpm::start().unwrap_or_else(|e| panic!("{e}"));
    let mut fake = FakeVtpm::new();
    for (i, command) in script.iter().enumerate() {
        let expected = real.transact(command).unwrap();
        let actual = fake.transact(command).unwrap();
        assert_eq!(
            hex::encode(&actual),
            hex::encode(&expected),
            "command {i}: {}",
            hex::encode(command)
        );
    }
}

/// The commands of Azure's guest attestation flow against libtpms: the ephemeral key created in
/// the null hierarchy under our PolicyPCR digest, certified by the AK (the TPMS_ATTEST parsed
/// by our codec, the signature checked), and decrypting under a policy session only when the
/// session's PCR values are the key's: the TPM accepting RSA_Decrypt proves our policy digest
/// is the one it computes.
#[test]
fn ephemeral_key_commands_match_a_real_tpm() {
    use thimble_collect::vtpm::GUEST_ATTESTATION_PCRS;
    use thimble_evidence::tpm2::{
        CertifyAttest, Marshal, PublicDetail, TpmlPcrSelection, TpmtPublic, ephemeral_key_template,
        policy_pcr_digest, sha256_pcr_digest,
    };
    use thimble_sim::rsa_sim::rsaes_encrypt;

    let (_swtpm, mut client) = tpm();
    let ak = provision_ak(&mut client).unwrap();
    extend_pcr(&mut client, 3, &[0x33; 32]).unwrap();
    let pcrs = GUEST_ATTESTATION_PCRS;
    let values = client.pcr_read_sha256(&pcrs).unwrap();
    let key = client
        .certified_ephemeral_key(thimble_collect::vtpm::VTPM_AK_HANDLE, &pcrs, &values)
        .unwrap();
    let area = TpmtPublic::parse(&key.public_area).unwrap();
    let policy = policy_pcr_digest(
        &TpmlPcrSelection::sha256(&pcrs).unwrap(),
        &sha256_pcr_digest(&values),
    )
    .unwrap();
    assert_eq!(area.auth_policy, policy);
    assert_eq!(
        area.object_attributes,
        ephemeral_key_template(&policy).object_attributes
    );
    let certify = CertifyAttest::parse(&key.certify_info).unwrap();
    assert_eq!(certify.name, key.name);
    assert_eq!(certify.qualified_signer, ak.qualified_name);
    assert!(rsa_verify(
        ak.rsa.as_ref().unwrap(),
        &key.certify_info,
        &key.certify_signature
    ));
    let PublicDetail::Rsa { parameters, unique } = &area.detail else {
        panic!("{area:?}");
    };
    assert_eq!(unique.len(), 256);

    // The null hierarchy gives the same key for the same template: it decrypts what was
    // encrypted to the certified one.
    let sealed = rsaes_encrypt(unique, &parameters.exponent_bytes(), &[0x42; 32]).unwrap();
    let plain = client.decrypt_with_ephemeral_key(&pcrs, &sealed).unwrap();
    assert_eq!(plain, [0x42; 32]);

    // A session over other values than the key's policy: TPM_RC_POLICY_FAIL on the session.
    let mut other = values.clone();
    other[3] = [0; 32];
    let e = client
        .decrypt_with_ephemeral_key_for(&pcrs, &other, &values, &sealed)
        .unwrap_err();
    let code = e.response_code().unwrap();
    assert_eq!(
        (code.base(), code.position()),
        (rc::POLICY_FAIL, Some(RcPosition::Session(1))),
        "{e}"
    );
    // PolicyPCR given values the PCRs do not hold: TPM_RC_VALUE on parameter 1.
    let e = client
        .decrypt_with_ephemeral_key_for(&pcrs, &values, &other, &sealed)
        .unwrap_err();
    let code = e.response_code().unwrap();
    assert_eq!(
        (code.base(), code.position()),
        (rc::VALUE, Some(RcPosition::Parameter(1))),
        "{e}"
    );

    // A password for the key's USER role: it has no userWithAuth (TPM_RC_AUTH_UNAVAILABLE).
    let (handle, _, _) = client.create_ephemeral_key(&pcrs, &values).unwrap();
    let p = thimble_evidence::tpm2::RsaDecryptCommand {
        cipher_text: sealed.clone(),
        in_scheme: thimble_evidence::tpm2::RsaDecryptScheme::Rsaes,
        label: Vec::new(),
    }
    .to_bytes()
    .unwrap();
    let e = client
        .execute(cc::RSA_DECRYPT, &[handle], &[&[]], &p, 0)
        .unwrap_err();
    assert_eq!(e.response_code().unwrap().base(), rc::VER1 + 0x02F, "{e}");
    client.flush_context(handle).unwrap();
    // Flushed: a second flush is refused.
    assert!(client.flush_context(handle).is_err());
}
