// SPDX-License-Identifier: Apache-2.0
//! `thimble_collect::attest::attest` end to end: a simulated guest of every TEE each verifier
//! takes runs the whole exchange against that verifier's loopback emulator
//! (`thimble_sim::verifiers`), which parses the requests as the service does, checks the binding
//! and verifies the evidence; then the faults: refusals, 401, 429 and 5xx, malformed answers, a
//! resource encrypted to another key, a TEE the verifier does not take, and the request built
//! without sending.

#![expect(clippy::unwrap_used, reason = "test assertions")]

use std::time::Duration;

use thimble_collect::attest::{AttestError, AttestRequest, Attested, VerifierRequest, attest};
use thimble_collect::http::{HttpClient, HttpConfig};
use thimble_collect::{CollectRequest, Environment, collect};
use thimble_evidence::attest::Verifier;
use thimble_evidence::attest::kbs::HashAlgorithm;
use thimble_evidence::bundle::{Endorsement, Tee};
use thimble_evidence::report_data::Derivation;
use thimble_sim::emulator::{Emulator, Fault, FaultRule, unused_loopback_port};
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
        per_request_timeout: Duration::from_secs(3),
        deadline: Duration::from_secs(4),
        max_attempts: 2,
        backoff_base: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
        ..HttpConfig::default()
    })
}

/// The collateral a real verifier would fetch for `machine`'s evidence.
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

fn setup(machine: SimMachine, verifier: Verifier, tune: impl FnOnce(&mut VerifierConfig)) -> Setup {
    let env = SimEnvironment::new(machine);
    let mut config = VerifierConfig::sim(verifier, collateral(&env), env.now());
    config.api_key = Some("ita-test-key".to_owned());
    config.resources = vec![("default/key/disk".to_owned(), b"the disk key".to_vec())];
    tune(&mut config);
    let (routes, verdicts) = VerifierEmulator::new(config);
    let emulator = Emulator::start_routes(routes).unwrap();
    Setup {
        env,
        emulator,
        verdicts,
    }
}

fn request(s: &Setup, verifier: VerifierRequest) -> AttestRequest {
    AttestRequest {
        verifier,
        url: s.emulator.base_url(),
        collect: collect_request(),
        nonce: None,
        send: true,
        verifier_nonce: None,
    }
}

fn kbs(resource: Option<&str>) -> VerifierRequest {
    VerifierRequest::Kbs {
        resource: resource.map(str::to_owned),
    }
}

fn ita() -> VerifierRequest {
    VerifierRequest::Ita {
        api_key: "ita-test-key".to_owned(),
        runtime_data: Some(br#"{"app":"x"}"#.to_vec()),
        policy_ids: vec!["p1".to_owned()],
    }
}

fn run(s: &Setup, r: &AttestRequest) -> Result<Attested, AttestError> {
    attest(&s.env, &http(), r, s.env.now())
}

fn assert_attested(s: &Setup, a: &Attested) {
    let token = a.token.as_ref().unwrap();
    assert!(token_signature_valid(&token.jwt), "{}", token.jwt);
    assert!(
        s.verdicts.all().iter().any(|v| v.ends_with(": ok")),
        "{:?}",
        s.verdicts.all()
    );
    assert!(
        !s.verdicts
            .all()
            .iter()
            .any(|v| v.contains("refused") || v.contains("not")),
        "{:?}",
        s.verdicts.all()
    );
}

#[test]
fn maa_from_every_tee() {
    for machine in [
        SimMachine::SnpDevice,
        SimMachine::SnpConfigfs,
        SimMachine::Tdx,
        SimMachine::AzureSnp,
        SimMachine::AzureTdx,
    ] {
        let s = setup(machine, Verifier::Maa, |_| {});
        let a = run(
            &s,
            &request(
                &s,
                VerifierRequest::Maa {
                    runtime_data: None,
                    azure_guest: false,
                },
            ),
        )
        .unwrap_or_else(|e| panic!("{machine:?}: {e:?} {:?}", s.verdicts.all()));
        assert_attested(&s, &a);
        let claims = &a.token.unwrap().claims;
        if matches!(machine, SimMachine::AzureSnp | SimMachine::AzureTdx) {
            assert!(claims["x-ms-runtime"]["keys"].is_array(), "{claims}");
        } else {
            assert!(claims["x-ms-runtime"]["nonce"].is_string(), "{claims}");
        }
    }
}

#[test]
fn maa_takes_the_callers_runtime_data_and_refuses_it_on_azure() {
    let s = setup(SimMachine::SnpDevice, Verifier::Maa, |_| {});
    let mut r = request(
        &s,
        VerifierRequest::Maa {
            runtime_data: Some(br#"{"keys":[]}"#.to_vec()),
            azure_guest: false,
        },
    );
    let a = run(&s, &r).unwrap();
    assert_eq!(
        a.token.unwrap().claims["x-ms-runtime"]["keys"],
        serde_json::json!([])
    );
    r.verifier = VerifierRequest::Maa {
        runtime_data: Some(b"not json".to_vec()),
        azure_guest: false,
    };
    assert!(matches!(run(&s, &r), Err(AttestError::Export(_))));

    let s = setup(SimMachine::AzureSnp, Verifier::Maa, |_| {});
    let r = request(
        &s,
        VerifierRequest::Maa {
            runtime_data: Some(b"{}".to_vec()),
            azure_guest: false,
        },
    );
    assert!(matches!(run(&s, &r), Err(AttestError::Unsupported { .. })));
}

#[test]
fn kbs_from_every_tee_with_the_resource() {
    for machine in [
        SimMachine::SnpDevice,
        SimMachine::Tdx,
        SimMachine::AzureSnp,
        SimMachine::AzureTdx,
    ] {
        let s = setup(machine, Verifier::Kbs, |_| {});
        let a = run(&s, &request(&s, kbs(Some("default/key/disk"))))
            .unwrap_or_else(|e| panic!("{machine:?}: {e:?} {:?}", s.verdicts.all()));
        assert_attested(&s, &a);
        assert_eq!(a.resource.as_deref(), Some(&b"the disk key"[..]));
        let nonce = a.bundle.nonce.as_ref().unwrap();
        assert_eq!(nonce.report_data_derivation, Derivation::Padded);
        // SHA-384 by default: 48 bytes, zero-padded into REPORT_DATA.
        assert_eq!(nonce.value.len(), 96, "{machine:?}");
        assert_eq!(
            s.verdicts.all(),
            vec!["auth: ok", "attest: ok", "resource: ok"],
            "{machine:?}"
        );
    }
}

#[test]
fn kbs_follows_the_selected_hash() {
    for hash in [HashAlgorithm::Sha256, HashAlgorithm::Sha512] {
        let s = setup(SimMachine::AzureSnp, Verifier::Kbs, |c| {
            c.kbs_hash = Some(hash)
        });
        let a = run(&s, &request(&s, kbs(None))).unwrap();
        assert_eq!(
            a.bundle.nonce.unwrap().value.len(),
            2 * hash.digest(b"").len()
        );
    }
}

#[test]
fn kbs_faults() {
    // Unknown resource: the KBS refuses with 404 after a good attestation.
    let s = setup(SimMachine::SnpDevice, Verifier::Kbs, |_| {});
    match run(&s, &request(&s, kbs(Some("default/key/other")))) {
        Err(AttestError::Refused {
            step: "resource",
            status: 404,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // The KBS refuses the evidence (401 at attest).
    let s = setup(SimMachine::SnpDevice, Verifier::Kbs, |c| {
        c.faults = vec![FaultRule::always("/kbs/v0/attest", Fault::Status(401))];
    });
    assert!(matches!(
        run(&s, &request(&s, kbs(None))),
        Err(AttestError::Refused {
            step: "attest",
            status: 401,
            ..
        })
    ));
    // Rate limited through the deadline.
    let s = setup(SimMachine::SnpDevice, Verifier::Kbs, |c| {
        c.faults = vec![FaultRule::always(
            "/kbs/v0/auth",
            Fault::RateLimited {
                retry_after_secs: 0,
            },
        )];
    });
    assert!(matches!(
        run(&s, &request(&s, kbs(None))),
        Err(AttestError::Unavailable { step: "auth", .. })
    ));
    // A malformed challenge.
    let s = setup(SimMachine::SnpDevice, Verifier::Kbs, |c| {
        c.faults = vec![FaultRule::always(
            "/kbs/v0/auth",
            Fault::MalformedBody(b"{\"nonce\":5}".to_vec()),
        )];
    });
    assert!(matches!(
        run(&s, &request(&s, kbs(None))),
        Err(AttestError::Message(_))
    ));
    // A resource that is not encrypted to this session's key.
    let other = thimble_collect::attest::SessionKey::generate().unwrap();
    let foreign = thimble_collect::attest::jwe::encrypt_to(&other.public(), b"x").unwrap();
    let s = setup(SimMachine::SnpDevice, Verifier::Kbs, |c| {
        c.faults = vec![FaultRule::always("/kbs/v0/resource", Fault::Body(foreign))];
    });
    assert!(matches!(
        run(&s, &request(&s, kbs(Some("default/key/disk")))),
        Err(AttestError::Jwe(_))
    ));
    // Nothing listening.
    let env = SimEnvironment::new(SimMachine::SnpDevice);
    let mut r = AttestRequest {
        verifier: kbs(None),
        url: format!("http://127.0.0.1:{}", unused_loopback_port().unwrap()),
        collect: collect_request(),
        nonce: None,
        send: true,
        verifier_nonce: None,
    };
    assert!(matches!(
        attest(&env, &http(), &r, env.now()),
        Err(AttestError::Unavailable { step: "auth", .. })
    ));
    // Without sending: the nonce must be given, and then nothing is sent.
    r.send = false;
    assert!(matches!(
        attest(&env, &http(), &r, env.now()),
        Err(AttestError::Unsupported { .. })
    ));
    r.verifier_nonce = Some("given-nonce".to_owned());
    let a = attest(&env, &http(), &r, env.now()).unwrap();
    assert!(a.token.is_none());
    let body: serde_json::Value = serde_json::from_slice(&a.request.body).unwrap();
    assert_eq!(body["runtime-data"]["nonce"], "given-nonce");
    assert!(body["tee-evidence"]["primary_evidence"]["attestation_report"].is_object());
}

#[test]
fn ita_plain_and_azure_td() {
    for machine in [SimMachine::Tdx, SimMachine::AzureTdx] {
        let s = setup(machine, Verifier::Ita, |_| {});
        let a = run(&s, &request(&s, ita()))
            .unwrap_or_else(|e| panic!("{machine:?}: {e:?} {:?}", s.verdicts.all()));
        assert_attested(&s, &a);
        assert_eq!(s.verdicts.all(), vec!["nonce: ok", "attest: ok"]);
        let path = &s.emulator.requests()[1].path;
        if machine == SimMachine::AzureTdx {
            assert_eq!(path, "/appraisal/v2/attest/azure");
        } else {
            assert_eq!(path, "/appraisal/v2/attest");
        }
    }
}

#[test]
fn ita_refusals() {
    // A wrong API key.
    let s = setup(SimMachine::Tdx, Verifier::Ita, |c| {
        c.api_key = Some("another".to_owned())
    });
    assert!(matches!(
        run(&s, &request(&s, ita())),
        Err(AttestError::Refused {
            step: "nonce",
            status: 401,
            ..
        })
    ));
    // An SEV-SNP machine.
    let s = setup(SimMachine::SnpDevice, Verifier::Ita, |_| {});
    assert!(matches!(
        run(&s, &request(&s, ita())),
        Err(AttestError::Unsupported { .. })
    ));
    // 503 throughout.
    let s = setup(SimMachine::Tdx, Verifier::Ita, |c| {
        c.faults = vec![FaultRule::always("/appraisal", Fault::Status(503))];
    });
    assert!(matches!(
        run(&s, &request(&s, ita())),
        Err(AttestError::Unavailable { step: "nonce", .. })
    ));
}

#[test]
fn veraison_snp_session() {
    for machine in [SimMachine::SnpDevice, SimMachine::SnpConfigfs] {
        let s = setup(machine, Verifier::Veraison, |_| {});
        let a = run(&s, &request(&s, VerifierRequest::Veraison))
            .unwrap_or_else(|e| panic!("{machine:?}: {e:?} {:?}", s.verdicts.all()));
        assert_attested(&s, &a);
        assert_eq!(
            a.token.unwrap().claims["submods"]["SEVSNP"]["ear.status"],
            "affirming"
        );
        let nonce = a.bundle.nonce.unwrap();
        assert_eq!(nonce.report_data_derivation, Derivation::Raw);
    }
    let s = setup(SimMachine::Tdx, Verifier::Veraison, |_| {});
    assert!(matches!(
        run(&s, &request(&s, VerifierRequest::Veraison)),
        Err(AttestError::Unsupported { .. })
    ));
}

#[test]
fn evidence_bound_to_another_nonce_is_refused() {
    // A KBS that hands out one nonce and expects the binding of another: the binding check of
    // the emulator (not the transport) refuses.
    let s = setup(SimMachine::SnpDevice, Verifier::Kbs, |c| {
        c.kbs_hash = Some(HashAlgorithm::Sha512);
        c.faults = vec![FaultRule::times(
            "/kbs/v0/auth",
            Fault::Body(br#"{"nonce":"abc","extra-params":""}"#.to_vec()),
            1,
        )];
    });
    match run(&s, &request(&s, kbs(None))) {
        Err(AttestError::Refused { status: 401, .. }) => {}
        other => panic!("{other:?}"),
    }
    let _ = Tee::SevSnp;
}
