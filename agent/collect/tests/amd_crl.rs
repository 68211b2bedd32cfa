// SPDX-License-Identifier: Apache-2.0
//! `settle_amd_crl` against the KDS emulator and the simulated chain: the ARK's CRL fetched and
//! recorded, cached and reused, refetched when the cache entry expired or does not check out, a
//! failed or rejected fetch logged and not fatal, a CRL that revokes the ASK reported, the host's
//! table CRL used without a fetch, and no fetch when fetching is off. Tests assert what ends up in
//! the bundle and the log, never timings.

#![expect(clippy::unwrap_used, reason = "test setup panics on failure")]

use std::path::Path;
use std::time::Duration;

use thimble_collect::cache::EndorsementCache;
use thimble_collect::endorse::{CrlSettlement, CrlSource, settle_amd_crl};
use thimble_collect::http::{HttpClient, HttpConfig};
use thimble_evidence::bundle::EndorsementKind;
use thimble_evidence::snp::{AmdCert, Product, SnpReport};
use thimble_sim::emulator::{Emulator, EmulatorConfig, Fault, FaultRule, unused_loopback_port};
use thimble_sim::signer::{ReportSigner, ReportTemplate, sim_chain};
use thimble_verify::TrustedRoots;

/// 2026-01-01T00:00:00Z: inside the simulated VCEK's validity and the CRLs'.
const NOW: i64 = 1_767_225_600;
const CRL_PATH: &str = "/vcek/v1/Milan/crl";

struct Fixture {
    report: SnpReport,
    certs: Vec<AmdCert>,
    roots: TrustedRoots,
}

fn fixture() -> Fixture {
    let c = sim_chain();
    let bytes = ReportSigner::sim().sign(&ReportTemplate::default(), &[7; 64]);
    Fixture {
        report: SnpReport::parse(&bytes).unwrap(),
        certs: [c.vcek_der, c.ask_der, c.ark_der]
            .iter()
            .map(|d| AmdCert::parse_der(d).unwrap())
            .collect(),
        roots: TrustedRoots::amd().insecure_add_simulated(Product::Milan, c.ark_der),
    }
}

fn client() -> HttpClient {
    HttpClient::new(HttpConfig {
        per_request_timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(5),
        max_attempts: 1,
        ..HttpConfig::default()
    })
}

fn emulator(crl: Option<&[u8]>, faults: Vec<FaultRule>) -> Emulator {
    Emulator::start(EmulatorConfig {
        kds_vcek_crl: crl
            .map(|c| vec![("Milan".to_owned(), c.to_vec())])
            .unwrap_or_default(),
        faults,
        ..EmulatorConfig::sim()
    })
    .unwrap()
}

fn settle(
    f: &Fixture,
    emu: &Emulator,
    cache: Option<&EndorsementCache>,
    attached: &[Vec<u8>],
) -> CrlSettlement {
    let http = client();
    let base = emu.base_url();
    settle_amd_crl(
        CrlSource::Kds {
            fetch: &http,
            base: &base,
        },
        cache,
        &f.report,
        &f.certs,
        attached,
        &f.roots,
        NOW,
    )
}

fn crl_requests(emu: &Emulator) -> usize {
    emu.requests().iter().filter(|r| r.path == CRL_PATH).count()
}

fn log_has(s: &CrlSettlement, needle: &str) -> bool {
    s.log.iter().any(|l| l.contains(needle))
}

fn only_entry(dir: &Path) -> std::path::PathBuf {
    let mut crls: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("amd-crl-")
        })
        .collect();
    assert_eq!(crls.len(), 1, "{crls:?}");
    crls.remove(0)
}

#[test]
fn the_arks_crl_is_fetched_and_recorded() {
    let f = fixture();
    let emu = emulator(Some(sim_chain().crl_der), Vec::new());
    let s = settle(&f, &emu, None, &[]);
    let e = s.endorsement.as_ref().expect("a CRL endorsement");
    assert_eq!(e.kind, EndorsementKind::Crl);
    assert_eq!(e.format, "der");
    assert_eq!(e.bytes().unwrap(), sim_chain().crl_der);
    assert_eq!(e.origin.kind, "kds");
    assert_eq!(
        e.origin.url.as_deref(),
        Some(format!("{}{CRL_PATH}", emu.base_url()).as_str())
    );
    assert_eq!(e.next_update.as_deref(), Some("2045-01-01T00:00:00Z"));
    assert!(e.retrieved_at.is_some());
    assert!(s.revoked.is_none());
    assert!(log_has(&s, "does not list this chain's ASK"), "{:?}", s.log);
    assert_eq!(crl_requests(&emu), 1);
}

#[test]
fn a_cached_crl_is_reused_and_rechecked() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let cache = EndorsementCache::new(tmp.path());
    let emu = emulator(Some(sim_chain().crl_der), Vec::new());
    let first = settle(&f, &emu, Some(&cache), &[]);
    assert!(log_has(&first, "cache: CRL stored in"), "{:?}", first.log);
    let entry = only_entry(tmp.path());
    assert!(
        entry.to_string_lossy().contains("amd-crl-vcek-Milan-"),
        "{}",
        entry.display()
    );

    // KDS now fails: the cached CRL is used, exactly as it was fetched.
    let down = emulator(
        Some(sim_chain().crl_der),
        vec![FaultRule::always("/", Fault::Status(500))],
    );
    let second = settle(&f, &down, Some(&cache), &[]);
    assert!(
        log_has(&second, "cache: AMD CRL from kds cached at"),
        "{:?}",
        second.log
    );
    assert_eq!(second.endorsement, first.endorsement);
    assert_eq!(crl_requests(&down), 0);

    // A cache entry that is not the ARK's CRL any more is ignored and replaced.
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
    doc["endorsements"][0]["data"] = b64(sim_chain().crl_other_scope_der).into();
    std::fs::write(&entry, serde_json::to_vec(&doc).unwrap()).unwrap();
    let third = settle(&f, &emu, Some(&cache), &[]);
    assert!(
        log_has(&third, "ignored: CRL scope does not cover"),
        "{:?}",
        third.log
    );
    assert_eq!(third.endorsement, {
        let mut e = first.endorsement.clone().unwrap();
        e.retrieved_at = third.endorsement.as_ref().unwrap().retrieved_at.clone();
        Some(e)
    });
    assert_eq!(crl_requests(&emu), 2);
}

#[test]
fn an_expired_cache_entry_is_refetched() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let cache = EndorsementCache::new(tmp.path());
    let emu = emulator(Some(sim_chain().crl_der), Vec::new());
    settle(&f, &emu, Some(&cache), &[]);
    let entry = only_entry(tmp.path());
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
    assert_eq!(doc["expires_at"], 2_366_841_600_i64, "the CRL's nextUpdate");
    doc["expires_at"] = (NOW - 1).into();
    std::fs::write(&entry, serde_json::to_vec(&doc).unwrap()).unwrap();

    let s = settle(&f, &emu, Some(&cache), &[]);
    assert!(log_has(&s, "cache: CRL stored in"), "{:?}", s.log);
    assert!(!log_has(&s, "cache: AMD CRL from"), "{:?}", s.log);
    assert_eq!(crl_requests(&emu), 2);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
    assert_eq!(doc["expires_at"], 2_366_841_600_i64);
}

#[test]
fn a_failed_fetch_is_logged_and_not_fatal() {
    let f = fixture();
    // KDS has no CRL for the product (404), then KDS cannot be reached at all.
    let emu = emulator(None, Vec::new());
    let s = settle(&f, &emu, None, &[]);
    assert!(s.endorsement.is_none());
    assert!(s.revoked.is_none());
    assert!(
        log_has(&s, "http status 404") && log_has(&s, "the bundle has no AMD CRL"),
        "{:?}",
        s.log
    );

    let http = client();
    let dead = format!("http://127.0.0.1:{}", unused_loopback_port().unwrap());
    let s = settle_amd_crl(
        CrlSource::Kds {
            fetch: &http,
            base: &dead,
        },
        None,
        &f.report,
        &f.certs,
        &[],
        &f.roots,
        NOW,
    );
    assert!(s.endorsement.is_none());
    assert_eq!(s.log.len(), 1, "{:?}", s.log);
    assert!(log_has(&s, "the bundle has no AMD CRL"), "{:?}", s.log);
}

#[test]
fn a_crl_that_revokes_the_ask_is_reported_and_kept() {
    let f = fixture();
    let emu = emulator(Some(sim_chain().crl_ask_revoked_der), Vec::new());
    let s = settle(&f, &emu, None, &[]);
    let line = s.revoked.as_deref().expect("revoked");
    assert!(
        line.contains("REVOKED") && line.contains("ASK") && line.contains("010001"),
        "{line}"
    );
    assert!(s.log.contains(&line.to_string()));
    // Kept, so that a verifier sees the revocation rather than a bundle without a CRL.
    let e = s.endorsement.unwrap();
    assert_eq!(e.bytes().unwrap(), sim_chain().crl_ask_revoked_der);
}

#[test]
fn a_junk_or_foreign_body_is_rejected() {
    let f = fixture();
    let foreign: &[u8] = include_bytes!("../../../tests/vectors/crl/amd/milan.crl");
    for (body, why) in [
        (&b"<html>not a crl</html>"[..], "CRL does not parse"),
        (foreign, "not by the ARK"),
        (sim_chain().crl_delta_der, "critical extension 2.5.29.27"),
        (sim_chain().crl_other_scope_der, "scope does not cover"),
    ] {
        let emu = emulator(
            Some(sim_chain().crl_der),
            vec![FaultRule::always(CRL_PATH, Fault::Body(body.to_vec()))],
        );
        let s = settle(&f, &emu, None, &[]);
        assert!(s.endorsement.is_none(), "{why}");
        assert!(s.revoked.is_none(), "{why}");
        assert!(
            log_has(&s, "rejected, the bundle has no AMD CRL") && log_has(&s, why),
            "{why}: {:?}",
            s.log
        );
    }
    // A forged signature on an otherwise perfect CRL.
    let mut forged = sim_chain().crl_ask_revoked_der.to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let emu = emulator(Some(&forged), Vec::new());
    let s = settle(&f, &emu, None, &[]);
    assert!(s.endorsement.is_none() && s.revoked.is_none());
    assert!(log_has(&s, "not signed by the ARK"), "{:?}", s.log);
}

#[test]
fn the_hosts_crl_saves_the_fetch() {
    let f = fixture();
    let emu = emulator(Some(sim_chain().crl_der), Vec::new());
    let s = settle(&f, &emu, None, &[sim_chain().crl_der.to_vec()]);
    assert!(
        s.endorsement.is_none(),
        "already in the bundle from the table"
    );
    assert!(log_has(&s, "no fetch needed"), "{:?}", s.log);
    assert_eq!(crl_requests(&emu), 0);

    // A host entry that is not the ARK's CRL is logged, and KDS is asked instead.
    let s = settle(&f, &emu, None, &[b"junk".to_vec()]);
    assert!(
        log_has(&s, "the host's CRL entry is not usable"),
        "{:?}",
        s.log
    );
    assert!(s.endorsement.is_some());
    assert_eq!(crl_requests(&emu), 1);

    // A host entry that revokes the ASK settles it without a fetch.
    let s = settle(&f, &emu, None, &[sim_chain().crl_ask_revoked_der.to_vec()]);
    assert!(s.revoked.is_some());
    assert_eq!(crl_requests(&emu), 1);
}

#[test]
fn no_fetch_when_fetching_is_off() {
    let f = fixture();
    for why in ["offline", "--no-kds"] {
        let s = settle_amd_crl(
            CrlSource::Disabled { why },
            None,
            &f.report,
            &f.certs,
            &[],
            &f.roots,
            NOW,
        );
        assert!(s.endorsement.is_none());
        assert_eq!(
            s.log,
            [format!("crl: {why}: AMD's CRL was not fetched")],
            "{why}"
        );
    }
    // Without a chain that verifies the report there is no ARK to ask about, and no line.
    let s = settle_amd_crl(
        CrlSource::Disabled { why: "offline" },
        None,
        &f.report,
        &[],
        &[],
        &f.roots,
        NOW,
    );
    assert!(s.log.is_empty() && s.endorsement.is_none());
}

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
