// SPDX-License-Identifier: Apache-2.0
//! `thimble_collect::collect` as a library, against `thimble_sim::SimEnvironment` (and, for a
//! machine with no TEE, the real environment pointed at empty paths): which collector a request
//! leads to, typed errors with their causes, the binding of REPORT_DATA, warnings, and the TDX
//! collateral cache (served, re-verified, replaced). HTTP goes only to loopback emulators and
//! refused loopback ports.

#![expect(clippy::unwrap_used, reason = "test assertions")]

use std::time::Duration;

use thimble_collect::endorse::{AmdSource, EndorseFailure, ThimFailure};
use thimble_collect::http::FetchError;
use thimble_collect::{
    Binding, CacheChoice, CollectError, CollectRequest, Environment, NoSource, Plan, SourceChoice,
    SourceError, SourceName, SystemEnvironment, TdxSource, Warning, collect, plan,
};
use thimble_evidence::bundle::{Claims, EndorsementKind};
use thimble_evidence::report_data::{self, Derivation};
use thimble_sim::emulator::unused_loopback_port;
use thimble_sim::{SimEnvironment, SimMachine, insecure_trust_test_roots};

fn request(nonce: &[u8]) -> CollectRequest {
    let mut r = CollectRequest::with_nonce(nonce);
    insecure_trust_test_roots(&mut r);
    r.fetching.deadline = Duration::from_secs(3);
    r.fetching.per_request_timeout = Duration::from_secs(1);
    r
}

fn refused() -> String {
    format!("http://127.0.0.1:{}", unused_loopback_port().unwrap())
}

fn log(bundle: &thimble_evidence::bundle::Bundle) -> String {
    bundle.endorsement_log.join("\n")
}

#[test]
fn plan_follows_the_machine_and_the_source_choice() {
    let cases = [
        (
            SimMachine::SnpDevice,
            SourceChoice::Auto,
            Plan::SevSnp(SourceChoice::Auto),
        ),
        (
            SimMachine::SnpConfigfs,
            SourceChoice::ConfigfsTsm,
            Plan::SevSnp(SourceChoice::ConfigfsTsm),
        ),
        (
            SimMachine::SnpConfigfs,
            SourceChoice::Auto,
            Plan::SevSnp(SourceChoice::Auto),
        ),
        (
            SimMachine::Tdx,
            SourceChoice::Auto,
            Plan::Tdx(TdxSource::ConfigfsTsm),
        ),
        (
            SimMachine::Tdx,
            SourceChoice::TdxGuest,
            Plan::Tdx(TdxSource::DeviceQgs),
        ),
        (SimMachine::AzureSnp, SourceChoice::Auto, Plan::Azure),
        (SimMachine::AzureTdx, SourceChoice::Vtpm, Plan::Azure),
    ];
    for (machine, source, want) in cases {
        let mut r = request(b"p");
        r.source = source;
        assert_eq!(
            plan(&SimEnvironment::new(machine), &r),
            want,
            "{machine:?} {source:?}"
        );
    }
}

#[test]
fn a_machine_without_a_tee_has_no_source() {
    let tmp = tempfile::tempdir().unwrap();
    let none = tmp.path().join("none");
    let mut r = request(b"n");
    r.devices.tsm_root = none.clone();
    r.devices.sev_guest = none.clone();
    r.devices.tdx_guest = none.clone();
    r.devices.tpm = Some(none.clone());
    let env = SystemEnvironment::new();
    match collect(&env, &r, env.now()) {
        Err(CollectError::NoSource(NoSource::Nothing { sev_guest, .. })) => {
            assert_eq!(sev_guest, none)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_forced_source_the_machine_lacks_fails_with_its_client_error() {
    let env = SimEnvironment::new(SimMachine::SnpDevice);
    let mut r = request(b"f");
    r.source = SourceChoice::TdxGuest;
    match collect(&env, &r, env.now()) {
        Err(CollectError::Source { source_name, error }) => {
            assert_eq!(source_name, SourceName::TdxGuest);
            assert!(matches!(*error, SourceError::TdxGuest(_)), "{error:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn endorsement_failures_keep_their_typed_causes_in_source_order() {
    let env = SimEnvironment::new(SimMachine::SnpDevice);
    let mut r = request(b"e");
    r.fetching.imds = Some(refused());
    r.fetching.kds = Some(refused());
    let err = collect(&env, &r, env.now()).unwrap_err();
    let CollectError::Endorsements(e) = &err else {
        panic!("{err:?}");
    };
    // The message is the documented one, each source's reason in order.
    assert!(e.to_string().starts_with(
        "no endorsement source produced endorsements that verify the evidence: thim http://127.0.0.1:"
    ));
    match e.attempts.as_slice() {
        [
            EndorseFailure::Thim {
                failure:
                    ThimFailure::Fetch(FetchError::Connect { .. } | FetchError::Deadline { .. }),
                ..
            },
            EndorseFailure::Kds { .. },
        ] => {}
        other => panic!("{other:?}"),
    }

    // Without THIM and KDS in the list, nothing is asked.
    r.fetching.amd_sources = vec![AmdSource::HostTable, AmdSource::Cache];
    match collect(&env, &r, env.now()) {
        Err(CollectError::Endorsements(e)) => {
            assert!(matches!(
                e.attempts.as_slice(),
                [EndorseFailure::AllDisabled]
            ))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn report_data_binds_the_nonce_or_is_given_or_is_drawn() {
    let env = SimEnvironment::new(SimMachine::SnpConfigfs);
    let mut r = request(b"x");
    r.source = SourceChoice::ConfigfsTsm;

    let b = collect(&env, &r, env.now()).unwrap().bundle;
    let nonce = b.nonce.unwrap();
    assert_eq!((nonce.value.as_str(), nonce.generated), ("78", false));
    assert_eq!(nonce.report_data_derivation, Derivation::Sha512);

    r.binding = Binding::ReportData([0x5a; 64]);
    let b = collect(&env, &r, env.now()).unwrap().bundle;
    let nonce = b.nonce.unwrap();
    assert_eq!(nonce.value, "5a".repeat(64));
    assert_eq!(nonce.report_data_derivation, Derivation::Raw);

    r.binding = Binding::RandomNonce;
    let b = collect(&env, &r, env.now()).unwrap().bundle;
    let nonce = b.nonce.unwrap();
    assert!(nonce.generated);
    assert_eq!(hex::decode(&nonce.value).unwrap().len(), 32);
    let rd = report_data::from_nonce(&hex::decode(&nonce.value).unwrap());
    let Some(Claims::SevSnp(claims)) = &b.claims else {
        panic!("{:?}", b.claims)
    };
    assert_eq!(claims.report_data, hex::encode(rd));
}

#[test]
fn a_cache_that_cannot_be_written_is_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    // A file where the directory should be.
    let not_a_dir = tmp.path().join("file");
    std::fs::write(&not_a_dir, b"").unwrap();
    let env = SimEnvironment::new(SimMachine::SnpDevice);
    let mut r = request(b"w");
    r.cache = CacheChoice::Dir(not_a_dir);
    let collected = collect(&env, &r, env.now()).unwrap();
    assert!(
        collected
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::CacheNotWritten { .. })),
        "{:?}",
        collected.warnings
    );
}

#[test]
fn tdx_collateral_is_cached_reverified_and_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let env = SimEnvironment::new(SimMachine::Tdx);
    let mut r = request(b"tdx");
    r.cache = CacheChoice::Dir(cache.clone());

    let first = collect(&env, &r, env.now()).unwrap().bundle;
    assert!(
        log(&first).contains("cache: TDX collateral stored in"),
        "{}",
        log(&first)
    );
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    let name = entry.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("intel-tdx-thim-") && name.ends_with("-platform.json"),
        "{name}"
    );

    // The service is gone: the cache answers, and the set still verifies the new quote.
    r.fetching.intel_url = Some(refused());
    let second = collect(&env, &r, env.now()).unwrap().bundle;
    assert!(
        log(&second).contains("cache: TDX collateral from thim cached at"),
        "{}",
        log(&second)
    );
    let kinds: Vec<EndorsementKind> = second.endorsements.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EndorsementKind::TcbInfo,
            EndorsementKind::QeIdentity,
            EndorsementKind::PckCrl,
            EndorsementKind::RootCaCrl
        ]
    );
    assert_eq!(second.endorsements, first.endorsements);

    // A tampered entry is not believed: with the service gone, the collection fails.
    // Swap in the QE identity's body for the TCB info's: validly signed by Intel, but not the
    // item that belongs there.
    let mut e: serde_json::Value = serde_json::from_slice(&std::fs::read(entry).unwrap()).unwrap();
    let items = e["endorsements"].as_array_mut().unwrap();
    let qe = items.iter().find(|x| x["kind"] == "qe-identity").unwrap()["data"].clone();
    items.iter_mut().find(|x| x["kind"] == "tcb-info").unwrap()["data"] = qe;
    std::fs::write(entry, serde_json::to_vec(&e).unwrap()).unwrap();
    match collect(&env, &r, env.now()) {
        Err(CollectError::Endorsements(err)) => {
            assert!(
                matches!(err.attempts.as_slice(), [EndorseFailure::Collateral(_)]),
                "{err:?}"
            )
        }
        other => panic!("{other:?}"),
    }

    // With the service back, the entry is logged as ignored and replaced by a good one.
    r.fetching.intel_url = None;
    let third = collect(&env, &r, env.now()).unwrap().bundle;
    assert!(
        log(&third).contains("cache: TDX collateral entry"),
        "{}",
        log(&third)
    );
    assert!(log(&third).contains("ignored"), "{}", log(&third));
    assert!(
        log(&third).contains("cache: TDX collateral stored in"),
        "{}",
        log(&third)
    );
    let fourth = {
        r.fetching.intel_url = Some(refused());
        collect(&env, &r, env.now()).unwrap().bundle
    };
    assert!(
        log(&fourth).contains("cache: TDX collateral from thim"),
        "{}",
        log(&fourth)
    );
}

#[test]
fn tdx_collateral_from_pcs_does_not_answer_for_thim() {
    let tmp = tempfile::tempdir().unwrap();
    let env = SimEnvironment::new(SimMachine::Tdx);
    let mut r = request(b"pcs");
    r.cache = CacheChoice::Dir(tmp.path().to_path_buf());
    r.fetching.intel_service = Some(thimble_collect::IntelService::Pcs);
    collect(&env, &r, env.now()).unwrap();
    // A THIM collection with THIM unreachable finds no entry of its own kind.
    r.fetching.intel_service = Some(thimble_collect::IntelService::Thim);
    r.fetching.intel_url = Some(refused());
    assert!(matches!(
        collect(&env, &r, env.now()),
        Err(CollectError::Endorsements(_))
    ));
}

#[test]
fn the_simulated_td_is_one_td_whichever_interface_asks() {
    // configfs-tsm and /dev/tdx_guest with the QGS must show the same measurements and
    // attributes, or a policy would pass or fail depending on `--source`.
    let quote_of = |source| {
        let env = SimEnvironment::new(SimMachine::Tdx);
        let mut r = request(b"one TD");
        r.source = source;
        r.fetching.offline = true;
        let bundle = collect(&env, &r, env.now()).unwrap().bundle;
        let json: serde_json::Value = serde_json::from_slice(&bundle.to_json()).unwrap();
        let b64 = json["evidence"]["tdx_quote"].as_str().unwrap().to_string();
        let raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap();
        thimble_evidence::tdx::TdxQuote::parse(&raw).unwrap()
    };
    let tsm = quote_of(SourceChoice::ConfigfsTsm);
    let qgs = quote_of(SourceChoice::TdxGuest);
    assert_eq!(tsm.body.mrtd, qgs.body.mrtd);
    assert_eq!(tsm.body.td_attributes, qgs.body.td_attributes);
    assert_eq!(tsm.body.xfam, qgs.body.xfam);
    assert_eq!(tsm.body.mrconfigid, qgs.body.mrconfigid);
    assert_eq!(tsm.body.rtmr, qgs.body.rtmr);
}
