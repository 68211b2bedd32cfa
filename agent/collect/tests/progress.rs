// SPDX-License-Identifier: Apache-2.0
//! The progress hook of `CollectRequest`: which lines a collection tells it, and when, against
//! `thimble_sim::SimEnvironment` (HTTP only to its loopback emulators). A caller that sets no hook
//! gets the same bundle; the hook compares by identity.

#![expect(clippy::unwrap_used, reason = "test assertions")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use thimble_collect::{CacheChoice, CollectRequest, Environment, Progress, SourceChoice, collect};
use thimble_sim::{SimEnvironment, SimMachine, insecure_trust_test_roots};

/// A request for `machine` whose progress lines are gathered in the returned list.
fn recording_request(nonce: &[u8]) -> (CollectRequest, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut r = CollectRequest::with_nonce(nonce);
    insecure_trust_test_roots(&mut r);
    r.fetching.deadline = Duration::from_secs(5);
    r.fetching.per_request_timeout = Duration::from_secs(2);
    let sink = Arc::clone(&lines);
    r.progress = Progress::new(move |line| sink.lock().unwrap().push(line.to_owned()));
    (r, lines)
}

fn taken(lines: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    std::mem::take(&mut *lines.lock().unwrap())
}

#[test]
fn an_snp_collect_with_a_cold_cache_announces_each_fetch_and_a_warm_one_none() {
    let cache = tempfile::tempdir().unwrap();
    let env = SimEnvironment::new(SimMachine::SnpDevice);
    let (mut r, lines) = recording_request(b"cold");
    r.source = SourceChoice::SevGuest;
    r.cache = CacheChoice::Dir(cache.path().to_path_buf());

    collect(&env, &r, env.now()).unwrap();
    let cold = taken(&lines);
    assert!(
        cold.iter()
            .any(|l| l.starts_with("fetching the VCEK and its chain from THIM (http://127.0.0.1:")),
        "{cold:?}"
    );
    assert!(
        cold.iter()
            .any(|l| l.starts_with("fetching AMD's CRL from KDS (http://127.0.0.1:")),
        "{cold:?}"
    );
    // Short lines, one per wait, none empty.
    assert!(
        cold.iter()
            .all(|l| !l.is_empty() && l.len() < 200 && !l.contains('\n')),
        "{cold:?}"
    );

    // Warm: the certificates and the CRL come from the cache, so nothing is waited for.
    collect(&env, &r, env.now()).unwrap();
    let warm = taken(&lines);
    assert!(warm.is_empty(), "{warm:?}");
}

#[test]
fn kds_is_announced_when_thim_is_not_asked() {
    let env = SimEnvironment::new(SimMachine::SnpDevice);
    let (mut r, lines) = recording_request(b"kds");
    r.cache = CacheChoice::Disabled;
    r.fetching
        .amd_sources
        .retain(|s| *s != thimble_collect::endorse::AmdSource::Thim);
    collect(&env, &r, env.now()).unwrap();
    let got = taken(&lines);
    let vcek = got
        .iter()
        .position(|l| l.starts_with("fetching the VCEK from AMD KDS ("));
    let chain = got
        .iter()
        .position(|l| l.contains("certificate chain from AMD KDS ("));
    assert!(
        matches!((vcek, chain), (Some(v), Some(c)) if v < c),
        "{got:?}"
    );
    assert!(!got.iter().any(|l| l.contains("THIM")), "{got:?}");
}

#[test]
fn an_azure_collect_announces_the_paravisor_wait_and_the_endorsement_fetch() {
    let env = SimEnvironment::new(SimMachine::AzureSnp);
    let (r, lines) = recording_request(b"azure");
    collect(&env, &r, env.now()).unwrap();
    let got = taken(&lines);
    let wait = got
        .iter()
        .position(|l| l.starts_with("waiting for the paravisor to refresh the HCL report"));
    let thim = got
        .iter()
        .position(|l| l.starts_with("fetching the VCEK and its chain from THIM ("));
    // The report comes first; its endorsements after.
    assert!(
        matches!((wait, thim), (Some(w), Some(t)) if w < t),
        "{got:?}"
    );
}

#[test]
fn an_azure_tdx_collect_announces_the_td_quote_and_the_collateral() {
    let env = SimEnvironment::new(SimMachine::AzureTdx);
    let (r, lines) = recording_request(b"azure-tdx");
    collect(&env, &r, env.now()).unwrap();
    let got = taken(&lines);
    assert!(
        got.iter()
            .any(|l| l.starts_with("asking IMDS for the TD quote (http://127.0.0.1:")),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|l| l.starts_with("fetching TCB info, QE identity and CRLs for FMSPC ")),
        "{got:?}"
    );
}

#[test]
fn a_tdx_collect_through_the_qgs_announces_the_quote_request() {
    let env = SimEnvironment::new(SimMachine::Tdx);
    let (mut r, lines) = recording_request(b"qgs");
    r.source = SourceChoice::TdxGuest;
    collect(&env, &r, env.now()).unwrap();
    let got = taken(&lines);
    assert!(
        got.iter()
            .any(|l| l.starts_with("asking the host's Quote Generation Service for the quote")),
        "{got:?}"
    );
}

#[test]
fn no_hook_changes_nothing_and_hooks_compare_by_identity() {
    let env = SimEnvironment::new(SimMachine::SnpConfigfs);
    let (mut r, lines) = recording_request(b"same");
    r.source = SourceChoice::ConfigfsTsm;
    let with = collect(&env, &r, env.now()).unwrap().bundle;
    assert!(!taken(&lines).is_empty());
    let hook = r.progress.clone();
    assert_eq!(hook, r.progress);
    assert_ne!(hook, Progress::none());
    assert_ne!(hook, Progress::new(|_| {}));
    assert_eq!(Progress::default(), Progress::none());
    assert_eq!(format!("{:?}", Progress::none()), "Progress(none)");

    r.progress = Progress::none();
    let without = collect(&env, &r, env.now()).unwrap().bundle;
    assert_eq!(with.tee(), without.tee());
    assert_eq!(with.endorsements.len(), without.endorsements.len());
}
