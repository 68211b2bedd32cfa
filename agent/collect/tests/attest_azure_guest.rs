// SPDX-License-Identifier: Apache-2.0
//! MAA's Azure guest protocol (`AzureGuest`) end to end: a simulated Azure SEV-SNP and TDX
//! machine runs the exchange against the MAA emulator, which checks the quote, the certified
//! ephemeral key and its PCR policy, and the hardware evidence, and answers with the token
//! encrypted to the key; the guest decrypts it through the fake vTPM's policy session. Then the
//! fake vTPM's key commands on their own: handles flushed on every path, and the PCR policy
//! enforced (a key made for other PCR values, a password instead of the policy).

#![expect(clippy::unwrap_used, reason = "test assertions")]

use std::time::Duration;

use thimble_collect::attest::azure_guest::tpm_info;
use thimble_collect::attest::{AttestError, AttestRequest, Attested, VerifierRequest, attest};
use thimble_collect::http::{HttpClient, HttpConfig};
use thimble_collect::vtpm::{
    GUEST_ATTESTATION_PCRS, RcPosition, VTPM_AK_HANDLE, VtpmClient, VtpmError, cc, rc,
};
use thimble_collect::{CollectRequest, Environment, collect};
use thimble_evidence::attest::Verifier;
use thimble_evidence::attest::azure_guest::{self, Isolation};
use thimble_evidence::bundle::Endorsement;
use thimble_evidence::tpm2::{CertifyAttest, Marshal, TpmtPublic, ephemeral_key_template};
use thimble_sim::emulator::Emulator;
use thimble_sim::fake_vtpm::{FakeVtpm, Fault};
use thimble_sim::rsa_sim::{SimNullKey, rsaes_encrypt};
use thimble_sim::verifiers::{Verdicts, VerifierConfig, VerifierEmulator, token_signature_valid};
use thimble_sim::{SimEnvironment, SimMachine, insecure_trust_test_roots};

fn collect_request() -> CollectRequest {
    let mut r = CollectRequest::default();
    insecure_trust_test_roots(&mut r);
    r.fetching.deadline = Duration::from_secs(5);
    r.fetching.per_request_timeout = Duration::from_secs(2);
    r
}

fn http() -> HttpClient {
    HttpClient::new(HttpConfig {
        per_request_timeout: Duration::from_secs(5),
        deadline: Duration::from_secs(10),
        max_attempts: 1,
        ..HttpConfig::default()
    })
}

fn collateral(env: &SimEnvironment) -> Vec<Endorsement> {
    collect(env, &collect_request(), env.now())
        .unwrap()
        .bundle
        .endorsements
}

struct Setup {
    env: SimEnvironment,
    emulator: Emulator,
    verdicts: Verdicts,
}

fn setup(machine: SimMachine) -> Setup {
    let env = SimEnvironment::new(machine);
    let config = VerifierConfig::sim(Verifier::Maa, collateral(&env), env.now());
    let (routes, verdicts) = VerifierEmulator::new(config);
    let emulator = Emulator::start_routes(routes).unwrap();
    Setup {
        env,
        emulator,
        verdicts,
    }
}

fn request(s: &Setup, send: bool) -> AttestRequest {
    AttestRequest {
        verifier: VerifierRequest::Maa {
            runtime_data: None,
            azure_guest: true,
        },
        url: s.emulator.base_url(),
        collect: collect_request(),
        nonce: Some(vec![0xab; 32]),
        send,
        verifier_nonce: None,
    }
}

fn run(s: &Setup, r: &AttestRequest) -> Result<Attested, AttestError> {
    attest(&s.env, &http(), r, s.env.now())
}

#[test]
fn azure_guest_from_snp_and_tdx() {
    for (machine, kind) in [
        (SimMachine::AzureSnp, "sevsnpvm"),
        (SimMachine::AzureTdx, "tdxvm"),
    ] {
        let s = setup(machine);
        let a = run(&s, &request(&s, true))
            .unwrap_or_else(|e| panic!("{machine:?}: {e:?} {:?}", s.verdicts.all()));
        assert_eq!(s.verdicts.all(), ["attest: ok"], "{machine:?}");
        assert!(
            a.request.url.ends_with(azure_guest::PATH),
            "{}",
            a.request.url
        );
        let token = a.token.unwrap();
        assert!(token_signature_valid(&token.jwt));
        let claims = &token.claims;
        assert_eq!(claims["x-ms-attestation-type"], "azurevm");
        assert_eq!(
            claims["x-ms-runtime"]["client-payload"]["nonce"],
            "ab".repeat(32)
        );
        assert_eq!(claims["x-ms-isolation-tee"]["x-ms-attestation-type"], kind);
        assert!(
            a.log.iter().any(|l| l.contains("token decrypted")),
            "{:?}",
            a.log
        );

        // The request as sent, read back: PCRs 0-7, the isolation kind of the machine.
        let info = azure_guest::parse_request(&a.request.body).unwrap();
        let indices: Vec<u32> = info.tpm.pcrs.iter().map(|p| p.index).collect();
        assert_eq!(indices, GUEST_ATTESTATION_PCRS);
        match (&info.isolation, machine) {
            (Isolation::SevSnp { snp_report, .. }, SimMachine::AzureSnp) => {
                assert_eq!(snp_report.len(), 1184);
            }
            (Isolation::Tdx { td_quote, .. }, SimMachine::AzureTdx) => {
                assert!(!td_quote.is_empty());
            }
            (other, _) => panic!("{machine:?}: {other:?}"),
        }
    }
}

#[test]
fn azure_guest_request_without_sending_and_on_other_machines() {
    let s = setup(SimMachine::AzureSnp);
    let a = run(&s, &request(&s, false)).unwrap();
    assert!(a.token.is_none());
    assert!(s.verdicts.all().is_empty());
    let body: serde_json::Value = serde_json::from_slice(&a.request.body).unwrap();
    assert!(body["AttestationInfo"].is_string());

    let s = setup(SimMachine::SnpDevice);
    assert!(matches!(
        run(&s, &request(&s, true)),
        Err(AttestError::Unsupported { .. })
    ));
}

/// A fake vTPM that records what is left loaded.
fn client() -> VtpmClient<FakeVtpm> {
    VtpmClient::new(FakeVtpm::new())
}

#[test]
fn the_ephemeral_key_is_certified_and_decrypts_under_its_pcr_policy() {
    let mut c = client();
    let info = tpm_info(&mut c).unwrap();
    assert_eq!(c.transport().loaded(), (0, 0));
    // EncKeyPub is a TPM2B_PUBLIC of the template with the PCR policy, certified by the AK.
    let area = &info.enc_key_pub[2..];
    let key = TpmtPublic::parse(area).unwrap();
    let template = ephemeral_key_template(&key.auth_policy);
    assert_eq!(key.object_attributes, template.object_attributes);
    let certify = CertifyAttest::parse(&info.enc_key_certify_info).unwrap();
    assert_eq!(
        certify.name,
        thimble_evidence::tpm2::sha256_name(area),
        "certified name"
    );

    // What MAA would send: decrypts, and leaves nothing loaded.
    let null = SimNullKey::get();
    let sealed = rsaes_encrypt(&null.modulus(), &null.exponent(), &[9; 32]).unwrap();
    let plain = c
        .decrypt_with_ephemeral_key(&GUEST_ATTESTATION_PCRS, &sealed)
        .unwrap();
    assert_eq!(plain, [9; 32]);
    assert_eq!(c.transport().loaded(), (0, 0));

    // A session whose PolicyPCR saw other values than the key was made for: refused, and
    // still nothing left loaded.
    let values = c.pcr_read_sha256(&GUEST_ATTESTATION_PCRS).unwrap();
    let mut other = values.clone();
    other[0] = [0x11; 32];
    let e = c
        .decrypt_with_ephemeral_key_for(&GUEST_ATTESTATION_PCRS, &other, &values, &sealed)
        .unwrap_err();
    let code = e.response_code().unwrap();
    assert_eq!(
        (code.base(), code.position()),
        (rc::POLICY_FAIL, Some(RcPosition::Session(1))),
        "{e}"
    );
    assert_eq!(c.transport().loaded(), (0, 0));

    // A PCR extended after the key was certified: the key made now has another policy, so
    // another template, so another key, and what MAA encrypted to the old one does not come
    // back (TPM_RC_VALUE: the padding does not check out under the other key).
    let mut c = client();
    tpm_info(&mut c).unwrap();
    c.transport_mut().extend_pcr(7, &[0x5a; 32]);
    let r = c.decrypt_with_ephemeral_key(&GUEST_ATTESTATION_PCRS, &sealed);
    assert!(!matches!(&r, Ok(p) if p[..] == [9; 32]), "{r:?}");
    assert_eq!(c.transport().loaded(), (0, 0));
}

#[test]
fn handles_are_flushed_when_a_command_fails() {
    let mut c = client();
    c.transport_mut()
        .fail_next(cc::CERTIFY, Fault::ResponseCode(rc::FAILURE));
    assert!(matches!(
        c.certified_ephemeral_key(VTPM_AK_HANDLE, &GUEST_ATTESTATION_PCRS, &[[0; 32]; 8]),
        Err(VtpmError::Tpm { .. })
    ));
    assert_eq!(c.transport().loaded(), (0, 0));
    c.transport_mut()
        .fail_next(cc::POLICY_PCR, Fault::ResponseCode(rc::FAILURE));
    assert!(
        c.decrypt_with_ephemeral_key(&GUEST_ATTESTATION_PCRS, &[1; 256])
            .is_err()
    );
    assert_eq!(c.transport().loaded(), (0, 0));
    // A ciphertext the key did not make: TPM_RC_VALUE, handles flushed.
    let e = c
        .decrypt_with_ephemeral_key(&GUEST_ATTESTATION_PCRS, &[1; 256])
        .unwrap_err();
    assert_eq!(e.response_code().unwrap().base(), rc::VALUE, "{e}");
    assert_eq!(c.transport().loaded(), (0, 0));
    // A leaking client runs out of object slots as a TPM's would.
    for _ in 0..3 {
        c.create_ephemeral_key(&GUEST_ATTESTATION_PCRS, &[[0; 32]; 8])
            .unwrap();
    }
    let e = c
        .create_ephemeral_key(&GUEST_ATTESTATION_PCRS, &[[0; 32]; 8])
        .unwrap_err();
    assert_eq!(e.response_code().unwrap().raw(), rc::OBJECT_MEMORY, "{e}");
}

#[test]
fn a_password_does_not_open_the_policy_key() {
    let mut c = client();
    let values = c.pcr_read_sha256(&GUEST_ATTESTATION_PCRS).unwrap();
    let (key, _, _) = c
        .create_ephemeral_key(&GUEST_ATTESTATION_PCRS, &values)
        .unwrap();
    let p = thimble_evidence::tpm2::RsaDecryptCommand {
        cipher_text: vec![1; 256],
        in_scheme: thimble_evidence::tpm2::RsaDecryptScheme::Rsaes,
        label: Vec::new(),
    }
    .to_bytes()
    .unwrap();
    let e = c
        .execute(cc::RSA_DECRYPT, &[key], &[&[]], &p, 0)
        .unwrap_err();
    // TPM_RC_AUTH_UNAVAILABLE: the key has no userWithAuth.
    assert_eq!(e.response_code().unwrap().base(), rc::VER1 + 0x02F, "{e}");
    c.flush_context(key).unwrap();
    assert_eq!(c.transport().loaded(), (0, 0));
}
