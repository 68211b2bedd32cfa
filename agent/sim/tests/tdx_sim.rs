// SPDX-License-Identifier: Apache-2.0
//! The simulated TDX platform against the real verifier: quotes from `SimTdx` (directly, through
//! the `/dev/tdx_guest` and QGS fakes, and through configfs-tsm) with the collateral it signs, or
//! fetches from its Intel emulator, verify under the simulation root and only under it; the TCB,
//! debug and tampering cases fail or downgrade as they would on real hardware. An independent
//! parser (dcap-qvl's) agrees on the layout, and the quote signature checks out under it.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on fixture and emulator setup failures"
)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use thimble_collect::http::{HttpClient, HttpConfig};
use thimble_collect::intel::{
    CollateralService, IntelCollateralConfig, IntelSettings, PckCa, fetch_tdx_collateral,
};
use thimble_collect::qgs::QgsClient;
use thimble_collect::tdx_guest::TdxGuestClient;
use thimble_collect::tsm::{Provider, TsmClient, TsmRequest};
use thimble_evidence::cert_file::pem_certificates;
use thimble_sim::fake_qgs::FakeQgs;
use thimble_sim::fake_tdx_guest::FakeTdxGuest;
use thimble_sim::fake_tsm::{FakeTsm, KernelProfile};
use thimble_sim::tdx_signer::{
    SIM_FMSPC, SimCollateral, SimTdx, TD_ATTRIBUTES_DEBUG, TdQuoteTemplate,
};
use thimble_verify::tdx::{TcbStatus, TdxCollateral, TdxPolicy, verify_quote};
use thimble_verify::{IntelRoots, Outcome, Verdict};

/// 2026-06-01T00:00:00Z.
const AT: i64 = 1_780_272_000;

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap()
}

fn tdx_collateral(c: &SimCollateral) -> TdxCollateral {
    let pems = |pem: &str| pem_certificates(pem).unwrap();
    TdxCollateral {
        tcb_info: c.tcb_info.clone(),
        tcb_info_issuer_chain: pems(&c.tcb_info_issuer_chain_pem),
        qe_identity: c.qe_identity.clone(),
        qe_identity_issuer_chain: pems(&c.qe_identity_issuer_chain_pem),
        pck_crl: Some(c.pck_crl_der.clone()),
        pck_crl_issuer_chain: pems(&c.pck_crl_issuer_chain_pem),
        root_ca_crl: Some(c.root_ca_crl_der.clone()),
        pck_chain: None,
    }
}

fn verify_at(sim: &SimTdx, quote: &[u8], at: i64, policy: &TdxPolicy) -> Outcome {
    let c = sim.collateral(at);
    verify_quote(
        quote,
        &tdx_collateral(&c),
        at,
        &IntelRoots::insecure_custom(&c.root_der),
        policy,
    )
}

fn verify(sim: &SimTdx, quote: &[u8]) -> Outcome {
    verify_at(sim, quote, AT, &TdxPolicy::default())
}

fn assert_valid(o: &Outcome, status: &str) {
    assert_eq!(o.verdict, Verdict::Valid, "{:?}", o.errors);
    assert_eq!(o.tcb_status.as_deref(), Some(status));
    assert!(o.simulated);
    assert!(o.warnings.iter().any(|w| w.contains("TEST root")));
}

#[test]
fn simulated_quote_verifies_under_the_simulation_root() {
    let sim = SimTdx::load();
    let rd = [0x42; 64];
    let quote = sim.quote(&TdQuoteTemplate::default(), &rd);
    let policy = TdxPolicy {
        report_data: Some(rd),
        require_sept_ve_disable: true,
        min_tcb_status: Some(TcbStatus::UpToDate),
        mrtd: vec![TdQuoteTemplate::default().mr_td.to_vec()],
        ..TdxPolicy::default()
    };
    let o = verify_at(&sim, &quote, AT, &policy);
    assert_valid(&o, "UpToDate");
    // Only the TEST-root warning: SEPT_VE_DISABLE is set, the TCB is current.
    assert_eq!(o.warnings.len(), 1, "{:?}", o.warnings);
    assert!(o.advisory_ids.is_empty());
    let roles: Vec<&str> = o.chain.iter().map(|l| l.role.as_str()).collect();
    assert_eq!(
        roles,
        ["pck", "pck-platform-ca", "intel-root-ca", "tcb-signing"]
    );

    // Fresh whenever the simulation runs.
    assert_valid(&verify_at(&sim, &quote, now(), &policy), "UpToDate");

    // The report data is bound.
    let other = TdxPolicy {
        report_data: Some([0x43; 64]),
        ..TdxPolicy::default()
    };
    let o = verify_at(&sim, &quote, AT, &other);
    assert_eq!(o.verdict, Verdict::Invalid);
    assert_eq!(o.errors[0].code, "nonce-mismatch");
}

#[test]
fn the_pinned_intel_root_refuses_the_simulation() {
    let sim = SimTdx::load();
    let quote = sim.quote(&TdQuoteTemplate::default(), &[0; 64]);
    let o = verify_quote(
        &quote,
        &tdx_collateral(&sim.collateral(AT)),
        AT,
        &IntelRoots::intel(),
        &TdxPolicy::default(),
    );
    assert_eq!(o.errors[0].code, "chain", "{:?}", o.errors);
    assert!(!o.simulated);
}

#[test]
fn collateral_goes_stale_after_its_next_update() {
    let sim = SimTdx::load();
    let quote = sim.quote(&TdQuoteTemplate::default(), &[0; 64]);
    let c = sim.collateral(AT);
    let o = verify_quote(
        &quote,
        &tdx_collateral(&c),
        AT + 31 * 86_400,
        &IntelRoots::insecure_custom(&c.root_der),
        &TdxPolicy::default(),
    );
    assert_eq!(o.errors[0].code, "collateral-expired", "{:?}", o.errors);
}

#[test]
fn lower_tcb_is_out_of_date() {
    let sim = SimTdx::load();
    let quote = sim.quote(&TdQuoteTemplate::out_of_date(), &[1; 64]);
    let o = verify(&sim, &quote);
    assert_valid(&o, "OutOfDate");
    assert_eq!(o.advisory_ids, ["THIMBLE-SIM-SA-00001"]);
    assert!(o.warnings.iter().any(|w| w.contains("OutOfDate")));
    let strict = TdxPolicy {
        min_tcb_status: Some(TcbStatus::UpToDate),
        ..TdxPolicy::default()
    };
    let o = verify_at(&sim, &quote, AT, &strict);
    assert_eq!(o.errors[0].code, "policy-tcb-status", "{:?}", o.errors);
}

#[test]
fn debug_td_is_refused_by_policy() {
    let sim = SimTdx::load();
    let mut template = TdQuoteTemplate::default();
    template.td_attributes[0] |= TD_ATTRIBUTES_DEBUG[0];
    let quote = sim.quote(&template, &[2; 64]);
    let o = verify(&sim, &quote);
    assert_eq!(o.verdict, Verdict::Invalid);
    assert_eq!(o.errors[0].code, "policy-debug", "{:?}", o.errors);
    // Authentic all the same: only the policy objects.
    assert_eq!(o.tcb_status.as_deref(), Some("UpToDate"));
    let allow = TdxPolicy {
        allow_debug: true,
        ..TdxPolicy::default()
    };
    assert_valid(&verify_at(&sim, &quote, AT, &allow), "UpToDate");
}

#[test]
fn tampering_breaks_the_signature() {
    let sim = SimTdx::load();
    let quote = sim.quote(&TdQuoteTemplate::default(), &[3; 64]);
    // MRTD, the report data, and the QE report (signed by the PCK key).
    for at in [200, 600, 636 + 134 + 0x40] {
        let mut tampered = quote.clone();
        tampered[at] ^= 1;
        let o = verify(&sim, &tampered);
        assert_eq!(o.errors[0].code, "signature", "byte {at}: {:?}", o.errors);
    }
}

#[test]
fn quote_of_a_fake_tdx_guest_report_through_the_fake_qgs_verifies() {
    let sim = Arc::new(SimTdx::load());
    let rd = [0x5C; 64];
    let report = TdxGuestClient::new(FakeTdxGuest::new())
        .get_report(&rd)
        .unwrap();
    let qgs = FakeQgs::new().with_quote_maker(Arc::clone(&sim).quote_maker());
    let quote = QgsClient::new(qgs.clone())
        .get_quote(&report.clone().try_into().unwrap())
        .unwrap();
    qgs.join();
    assert_eq!(qgs.reports(), [report]);
    let policy = TdxPolicy {
        report_data: Some(rd),
        ..TdxPolicy::default()
    };
    let o = verify_at(&sim, &quote, AT, &policy);
    assert_valid(&o, "UpToDate");
    // fake_tdx_guest's default TD runs without SEPT_VE_DISABLE, as Azure's do: a warning only.
    assert!(o.warnings.iter().any(|w| w.contains("SEPT_VE_DISABLE")));
    let theirs = dcap_qvl::quote::Quote::parse(&quote).unwrap();
    assert_eq!(
        theirs.report.as_td10().unwrap().mr_td,
        thimble_sim::fake_tdx_guest::TdReportTemplate::default().mr_td
    );
}

#[test]
fn configfs_tsm_tdx_guest_returns_signed_quotes() {
    let sim = Arc::new(SimTdx::load());
    let fake = FakeTsm::new(
        KernelProfile::Linux6_10,
        Provider::TdxGuest,
        Arc::clone(&sim).tsm_generator(TdQuoteTemplate::default()),
    );
    let report = TsmClient::new(fake.clone(), fake.root())
        .get_report(&TsmRequest {
            expected_provider: Some(Provider::TdxGuest),
            ..TsmRequest::new([0x6D; 64])
        })
        .unwrap();
    assert_eq!(report.auxblob, None);
    let policy = TdxPolicy {
        report_data: Some([0x6D; 64]),
        ..TdxPolicy::default()
    };
    assert_valid(&verify_at(&sim, &report.outblob, AT, &policy), "UpToDate");
}

/// An independent reading of a simulated quote: dcap-qvl's parser finds the fields where the
/// simulator put them, and the attestation-key signature checks out with `ring` directly, over
/// the signed length dcap-qvl computes.
#[test]
fn independent_parser_accepts_the_quote() {
    let sim = SimTdx::load();
    let rd: [u8; 64] = std::array::from_fn(|i| i as u8);
    let quote = sim.quote(&TdQuoteTemplate::default(), &rd);
    let signature_ok = |quote: &[u8]| {
        let q = dcap_qvl::quote::Quote::parse(quote).unwrap();
        let signed = q.signed_length();
        let auth = q.auth_data.into_v3();
        let mut key = vec![0x04];
        key.extend_from_slice(&auth.ecdsa_attestation_key);
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, key)
            .verify(&quote[..signed], &auth.ecdsa_signature)
            .is_ok()
    };
    let q = dcap_qvl::quote::Quote::parse(&quote).unwrap();
    let body = q.report.as_td10().unwrap();
    assert_eq!(body.report_data, rd);
    assert_eq!(body.mr_td, TdQuoteTemplate::default().mr_td);
    assert_eq!(body.rt_mr2, TdQuoteTemplate::default().rtmr[2]);
    assert!(signature_ok(&quote));
    let mut tampered = quote.clone();
    tampered[200] ^= 1;
    assert!(!signature_ok(&tampered));
}

#[test]
fn collateral_fetched_from_the_emulator_verifies() {
    let sim = SimTdx::load();
    let at = now();
    let emu = sim.intel_emulator_config(at).start().unwrap();
    let http = HttpConfig {
        per_request_timeout: Duration::from_secs(5),
        deadline: Duration::from_secs(10),
        use_proxy_env: false,
        ..HttpConfig::default()
    };
    for service in [
        CollateralService::Pcs {
            base: emu.base_url(),
            root_ca_crl_url: format!("{}/IntelSGXRootCA.der", emu.base_url()),
        },
        CollateralService::thim(emu.base_url()),
    ] {
        let cfg = IntelCollateralConfig::resolve(
            &IntelSettings {
                service: Some(service),
                ..IntelSettings::default()
            },
            None,
        );
        let items = fetch_tdx_collateral(
            &cfg,
            &HttpClient::new(http.clone()),
            &SIM_FMSPC,
            PckCa::Platform,
        )
        .unwrap();
        let chain = |pem: &Option<String>| pem_certificates(pem.as_deref().unwrap()).unwrap();
        let collateral = TdxCollateral {
            tcb_info: items.tcb_info.body.clone(),
            tcb_info_issuer_chain: chain(&items.tcb_info.issuer_chain_pem),
            qe_identity: items.qe_identity.body.clone(),
            qe_identity_issuer_chain: chain(&items.qe_identity.issuer_chain_pem),
            pck_crl: items.pck_crl.der.clone(),
            pck_crl_issuer_chain: chain(&items.pck_crl.issuer_chain_pem),
            root_ca_crl: items.root_ca_crl.der.clone(),
            pck_chain: None,
        };
        let quote = sim.quote(&TdQuoteTemplate::default(), &[7; 64]);
        let o = verify_quote(
            &quote,
            &collateral,
            at,
            &IntelRoots::insecure_custom(sim.pki().root_ca_der),
            &TdxPolicy::default(),
        );
        assert_valid(&o, "UpToDate");
    }
}

/// Intel's QVL reads five statuses in a QE identity's levels and treats the two
/// `ConfigurationNeeded` forms as out of date; any other status makes the identity invalid.
#[test]
fn qe_identity_statuses_follow_intels_rules() {
    let sim = SimTdx::load();
    let quote = sim.quote(&TdQuoteTemplate::default(), &[0; 64]);
    let c = sim.collateral(AT);
    let with_first_qe_level = |status: &str| {
        let mut tc = tdx_collateral(&c);
        tc.qe_identity = sim.resign(&c.qe_identity, |inner| {
            inner.replacen(
                "\"tcbStatus\":\"UpToDate\"",
                &format!("\"tcbStatus\":\"{status}\""),
                1,
            )
        });
        verify_quote(
            &quote,
            &tc,
            AT,
            &IntelRoots::insecure_custom(&c.root_der),
            &TdxPolicy::default(),
        )
    };
    // The review's case: an OutOfDateConfigurationNeeded QE level was ignored and the quote
    // came out UpToDate.
    for (qe, expected) in [
        ("UpToDate", "UpToDate"),
        ("OutOfDate", "OutOfDate"),
        ("ConfigurationNeeded", "OutOfDate"),
        ("OutOfDateConfigurationNeeded", "OutOfDate"),
    ] {
        let o = with_first_qe_level(qe);
        assert_eq!(
            o.tcb_status.as_deref(),
            Some(expected),
            "{qe}: {:?}",
            o.errors
        );
    }
    let o = with_first_qe_level("Revoked");
    assert_eq!(o.errors[0].code, "tcb-revoked", "{:?}", o.errors);
    for bad in ["SWHardeningNeeded", "ConfigurationAndSWHardeningNeeded"] {
        let o = with_first_qe_level(bad);
        assert_eq!(
            o.errors[0].code, "malformed-collateral",
            "{bad}: {:?}",
            o.errors
        );
    }
}

/// go-tdx-guest's `check` options: MRSEAM, TD attributes, XFAM, MROWNERCONFIG, the minimum
/// TEE_TCB_SVN and QE and PCE SVNs, and a list of accepted MRTDs.
#[test]
fn tdx_policy_parity_with_go_tdx_guest() {
    let sim = SimTdx::load();
    let t = TdQuoteTemplate::default();
    let quote = sim.quote(&t, &[0; 64]);
    let codes = |p: TdxPolicy| -> Vec<String> {
        verify_at(&sim, &quote, AT, &p)
            .errors
            .iter()
            .map(|e| e.code.as_str().to_string())
            .collect()
    };
    let right = TdxPolicy {
        mrtd: vec![vec![9; 48], t.mr_td.to_vec()],
        mrseam: Some(t.mr_seam.to_vec()),
        td_attributes: Some(t.td_attributes.to_vec()),
        xfam: Some(t.xfam.to_vec()),
        mrownerconfig: Some(t.mr_owner_config.to_vec()),
        min_tee_tcb_svn: Some(t.tee_tcb_svn),
        min_qe_svn: Some(t.qe.isv_svn),
        min_pce_svn: Some(1),
        ..TdxPolicy::default()
    };
    assert!(codes(right.clone()).is_empty());
    let mut higher = t.tee_tcb_svn;
    higher[0] += 1;
    let wrong = TdxPolicy {
        mrtd: vec![vec![9; 48]],
        mrseam: Some(vec![1; 48]),
        td_attributes: Some(vec![1; 8]),
        xfam: Some(vec![1; 8]),
        mrownerconfig: Some(vec![1; 48]),
        min_tee_tcb_svn: Some(higher),
        min_qe_svn: Some(t.qe.isv_svn + 1),
        min_pce_svn: Some(u16::MAX),
        ..right
    };
    assert_eq!(
        codes(wrong),
        [
            "policy-mrtd",
            "policy-mrownerconfig",
            "policy-mrseam",
            "policy-td-attributes",
            "policy-xfam",
            "policy-tee-tcb-svn",
            "policy-qe-svn",
            "policy-qe-svn"
        ]
    );
}

/// Intel's TCB info and QE identity are signed by the TCB Signing certificate, issued directly
/// by the root. A collateral signer chain through any other certificate of Intel's PKI is refused
/// for its role, whatever it signed.
#[test]
fn only_the_tcb_signing_role_signs_collateral() {
    let sim = SimTdx::load();
    let quote = sim.quote(&TdQuoteTemplate::default(), &[0; 64]);
    let c = sim.collateral(AT);
    let mut tc = tdx_collateral(&c);
    tc.tcb_info_issuer_chain = pem_certificates(&c.pck_crl_issuer_chain_pem).unwrap();
    let o = verify_quote(
        &quote,
        &tc,
        AT,
        &IntelRoots::insecure_custom(&c.root_der),
        &TdxPolicy::default(),
    );
    assert_eq!(o.errors[0].code, "chain", "{:?}", o.errors);
    assert!(o.errors[0].message.contains("Intel SGX TCB Signing"));
}
