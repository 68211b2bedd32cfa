// SPDX-License-Identifier: Apache-2.0
//! Revocation, which the real vectors cannot exercise (no revoked PCK signed by Intel is at
//! hand): the CRL check against Intel's real PCK CRL, then a whole fake Intel PKI built with
//! rcgen (root, PCK Platform CA, PCK, TCB Signing, both CRLs) around a real quote, whose QE report
//! and collateral are re-signed with the fake keys. The quote's own signature is untouched: the
//! attestation key and header ‖ body do not change.

#![expect(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    reason = "a test reads its vector files and panics on setup failure"
)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    CustomExtension, DnType, IsCa, KeyIdMethod, KeyPair, PKCS_ECDSA_P256_SHA256, RevokedCertParams,
    SerialNumber,
};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use thimble_evidence::cert_file::pem_certificates;
use thimble_evidence::snp::AmdCert;
use thimble_evidence::tdx::{IntelCrl, QeIdentityBody, TcbInfoBody, TdxQuote};
use thimble_evidence::time_fmt::parse_rfc3339;
use thimble_verify::intel_chain::check_not_revoked;
use thimble_verify::tdx::{TdxCollateral, TdxPolicy, verify_quote};
use thimble_verify::{IntelRoots, Verdict};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

fn case_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/tdx/v4-uptodate-dcapqvl")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(case_dir().join(name)).unwrap()
}

#[test]
fn a_pck_listed_in_intels_real_crl_is_revoked() {
    let crl = IntelCrl::parse(&read("pck_crl.der")).unwrap();
    let q = TdxQuote::parse(&read("quote.bin")).unwrap();
    let pck = AmdCert::parse_der(&q.pck_chain.unwrap()[0]).unwrap();
    assert!(check_not_revoked(&pck, &crl).is_ok());
    // A certificate (any issuer: only the serial matters to this function) with the serial of
    // an entry of Intel's list.
    let serial = crl
        .revoked
        .iter()
        .find(|s| s[0] != 0 && s[0] < 0x80)
        .unwrap();
    let mut params = CertificateParams::default();
    params.serial_number = Some(SerialNumber::from_slice(serial));
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let listed = AmdCert::parse_der(cert.der()).unwrap();
    assert_eq!(listed.serial_hex, hex::encode(serial));
    let e = check_not_revoked(&listed, &crl).unwrap_err();
    assert_eq!(e.code, "crl-revoked");
}

fn key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()
}

fn params(cn: &str, serial: u8, ca: bool) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "Intel Corporation");
    p.serial_number = Some(SerialNumber::from_slice(&[0x10, serial]));
    p.not_before = OffsetDateTime::from_unix_timestamp(1_577_836_800).unwrap(); // 2020
    p.not_after = OffsetDateTime::from_unix_timestamp(2_208_988_800).unwrap(); // 2040
    p.key_identifier_method = KeyIdMethod::Sha256;
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    p
}

fn sign_fixed(key: &KeyPair, message: &[u8]) -> [u8; 64] {
    let rng = SystemRandom::new();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der(), &rng)
            .unwrap();
    pair.sign(&rng, message)
        .unwrap()
        .as_ref()
        .try_into()
        .unwrap()
}

/// Replaces the signature of a collateral body with one by `key` over its signed bytes.
fn resign(body: &[u8], signature: [u8; 64], signed: &[u8], key: &KeyPair) -> Vec<u8> {
    let new = sign_fixed(key, signed);
    String::from_utf8(body.to_vec())
        .unwrap()
        .replacen(&hex::encode(signature), &hex::encode(new), 1)
        .into_bytes()
}

struct FakePki {
    root_der: Vec<u8>,
    quote: Vec<u8>,
    collateral: TdxCollateral,
    at: i64,
}

/// Which certificates the fake CRLs list.
#[derive(Default)]
struct Revoke {
    pck: bool,
    pck_ca: bool,
    tcb_signing: bool,
    /// Not a CRL: the TCB info's matching level (the first, UpToDate) says `Revoked`.
    tcb_level: bool,
}

fn fake_pki(revoke: Revoke) -> FakePki {
    let raw = read("quote.bin");
    let q = TdxQuote::parse(&raw).unwrap();
    let real_pck = q.pck_chain.clone().unwrap()[0].clone();
    let (_, real) = X509Certificate::from_der(&real_pck).unwrap();
    let sgx = real
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "1.2.840.113741.1.13.1")
        .unwrap();

    let root = CertifiedIssuer::self_signed(params("Intel SGX Root CA", 1, true), key()).unwrap();
    let pck_ca =
        CertifiedIssuer::signed_by(params("Intel SGX PCK Platform CA", 2, true), key(), &root)
            .unwrap();
    let tcb_key = key();
    let tcb_signing = params("Intel SGX TCB Signing", 3, false)
        .signed_by(&tcb_key, &root)
        .unwrap();
    let pck_key = key();
    let mut pck_params = params("Intel SGX PCK Certificate", 4, false);
    pck_params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            &[1, 2, 840, 113741, 1, 13, 1],
            sgx.value.to_vec(),
        ));
    let pck = pck_params.signed_by(&pck_key, &pck_ca).unwrap();

    // The quote with the fake PCK chain, and the QE report re-signed by the fake PCK key.
    let pem = format!("{}{}{}", pck.pem(), pck_ca.pem(), root.pem());
    let mut qe_cert = Vec::new();
    qe_cert.extend_from_slice(&q.qe.qe_report);
    qe_cert.extend_from_slice(&sign_fixed(&pck_key, &q.qe.qe_report));
    qe_cert.extend_from_slice(&(q.qe.qe_auth_data.len() as u16).to_le_bytes());
    qe_cert.extend_from_slice(&q.qe.qe_auth_data);
    qe_cert.extend_from_slice(&5u16.to_le_bytes());
    qe_cert.extend_from_slice(&(pem.len() as u32).to_le_bytes());
    qe_cert.extend_from_slice(pem.as_bytes());
    let mut sig_data = Vec::new();
    sig_data.extend_from_slice(&q.signature);
    sig_data.extend_from_slice(&q.attestation_key);
    sig_data.extend_from_slice(&6u16.to_le_bytes());
    sig_data.extend_from_slice(&(qe_cert.len() as u32).to_le_bytes());
    sig_data.extend_from_slice(&qe_cert);
    let mut quote = raw[..q.signature_data_range().start - 4].to_vec();
    quote.extend_from_slice(&(sig_data.len() as u32).to_le_bytes());
    quote.extend_from_slice(&sig_data);

    let at = parse_rfc3339("2025-07-01T00:00:00Z").unwrap();
    let crl = |issuer: &CertifiedIssuer<'_, KeyPair>, serials: Vec<u8>| {
        CertificateRevocationListParams {
            this_update: OffsetDateTime::from_unix_timestamp(at - 86400).unwrap(),
            next_update: OffsetDateTime::from_unix_timestamp(at + 86400).unwrap(),
            crl_number: SerialNumber::from_slice(&[1]),
            issuing_distribution_point: None,
            revoked_certs: serials
                .into_iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&[0x10, s]),
                    revocation_time: OffsetDateTime::from_unix_timestamp(at - 3600).unwrap(),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(issuer)
        .unwrap()
        .der()
        .to_vec()
    };
    let mut root_listed = Vec::new();
    if revoke.pck_ca {
        root_listed.push(2);
    }
    if revoke.tcb_signing {
        root_listed.push(3);
    }
    let pck_listed = if revoke.pck { vec![4] } else { vec![] };

    let mut tcb_body = read("tcb_info.json");
    if revoke.tcb_level {
        // The first platform level (module identities, which come earlier, are left alone).
        let text = String::from_utf8(tcb_body).unwrap();
        let at = text.find("\"sgxtcbcomponents\"").unwrap();
        let (head, tail) = text.split_at(at);
        let tail = tail.replacen(
            "\"tcbStatus\":\"UpToDate\"",
            "\"tcbStatus\":\"Revoked\",\"advisoryIDs\":[\"INTEL-SA-99999\"]",
            1,
        );
        tcb_body = format!("{head}{tail}").into_bytes();
    }
    let tcb = TcbInfoBody::parse(&tcb_body).unwrap();
    let qe = QeIdentityBody::parse(&read("qe_identity.json")).unwrap();
    let signing_chain = vec![tcb_signing.der().to_vec(), root.der().to_vec()];
    FakePki {
        root_der: root.der().to_vec(),
        quote,
        collateral: TdxCollateral {
            tcb_info: resign(tcb.as_bytes(), tcb.signature, tcb.signed_bytes(), &tcb_key),
            tcb_info_issuer_chain: signing_chain.clone(),
            qe_identity: resign(qe.as_bytes(), qe.signature, qe.signed_bytes(), &tcb_key),
            qe_identity_issuer_chain: signing_chain,
            pck_crl: Some(crl(&pck_ca, pck_listed)),
            pck_crl_issuer_chain: vec![pck_ca.der().to_vec(), root.der().to_vec()],
            root_ca_crl: Some(crl(&root, root_listed)),
            pck_chain: None,
        },
        at,
    }
}

fn run(pki: &FakePki) -> thimble_verify::Outcome {
    verify_quote(
        &pki.quote,
        &pki.collateral,
        pki.at,
        &IntelRoots::insecure_custom(&pki.root_der),
        &TdxPolicy::default(),
    )
}

#[test]
fn fake_pki_verifies_like_the_real_one() {
    let pki = fake_pki(Revoke::default());
    let o = run(&pki);
    assert_eq!(o.verdict, Verdict::Valid, "{:?}", o.errors);
    assert_eq!(o.tcb_status.as_deref(), Some("UpToDate"));
    assert!(o.simulated);
    assert!(o.warnings.iter().any(|w| w.contains("TEST root")));
    // Under the pinned Intel root, the look-alike chain is refused.
    let o = verify_quote(
        &pki.quote,
        &pki.collateral,
        pki.at,
        &IntelRoots::intel(),
        &TdxPolicy::default(),
    );
    assert_eq!(o.errors[0].code, "chain");
    // The rebuilt quote carries the fake chain.
    let q = TdxQuote::parse(&pki.quote).unwrap();
    let chain = q.pck_chain.unwrap();
    assert_eq!(chain.len(), 3);
    assert_eq!(
        pem_certificates(std::str::from_utf8(&q.qe.inner_data).unwrap()).unwrap(),
        chain
    );
}

#[test]
fn revoked_pck_is_refused() {
    let o = run(&fake_pki(Revoke {
        pck: true,
        ..Revoke::default()
    }));
    assert_eq!(o.errors[0].code, "crl-revoked", "{:?}", o.errors);
    assert!(o.errors[0].message.contains("Intel SGX PCK Certificate"));
}

#[test]
fn revoked_cas_are_refused() {
    let o = run(&fake_pki(Revoke {
        pck_ca: true,
        ..Revoke::default()
    }));
    assert_eq!(o.errors[0].code, "crl-revoked", "{:?}", o.errors);
    assert!(o.errors[0].message.contains("PCK Platform CA"));
    let o = run(&fake_pki(Revoke {
        tcb_signing: true,
        ..Revoke::default()
    }));
    assert_eq!(o.errors[0].code, "crl-revoked", "{:?}", o.errors);
    assert!(o.errors[0].message.contains("TCB Signing"));
}

#[test]
fn crls_must_be_signed_by_their_issuer() {
    let mut pki = fake_pki(Revoke::default());
    // A PCK CRL signed by another key under the same name.
    let other = fake_pki(Revoke {
        pck: true,
        ..Revoke::default()
    });
    pki.collateral.pck_crl = other.collateral.pck_crl.clone();
    assert_eq!(run(&pki).errors[0].code, "collateral-signature");
}

#[test]
fn revoked_tcb_is_refused() {
    let o = run(&fake_pki(Revoke {
        tcb_level: true,
        ..Revoke::default()
    }));
    assert_eq!(o.errors[0].code, "tcb-revoked", "{:?}", o.errors);
    assert_eq!(o.errors[0].class, thimble_verify::ErrorClass::Authenticity);
    assert_eq!(o.tcb_status.as_deref(), Some("Revoked"));
    assert_eq!(o.advisory_ids, ["INTEL-SA-99999"]);
}
