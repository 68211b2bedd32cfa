// SPDX-License-Identifier: AGPL-3.0-or-later
//! Hostile bundles cost little: the regression tests for the cost findings of the independent
//! review (quadratic AMD chain building, overlapping certificate-table entries, claims expanded
//! into a JSON tree, unbounded bundles). Cost is asserted as counts, never as time: signature
//! checks (`thimble_verify::signature::signature_checks`) and bytes allocated (a counting global
//! allocator in this test binary). The timings are the benchmarks' business.
//!
//! Everything runs in one test function, because the allocator counts the whole process and
//! parallel tests would blur the peaks.

#![expect(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    reason = "a test reads its vector files and panics on setup failure"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use thimble_evidence::bundle::{
    Agent, Bundle, Collection, Endorsement, EndorsementKind, Evidence, FORMAT, MAX_ENDORSEMENTS,
    Origin, VERSION, b64,
};
use thimble_evidence::cert_file::pem_certificates;
use thimble_evidence::snp::{AmdCert, CertKind, CertTable};
use thimble_evidence::time_fmt::parse_rfc3339;
use thimble_verify::bundle::{VerifyOptions, verify_bundle};
use thimble_verify::chain::MAX_INTERMEDIATES;
use thimble_verify::intel_chain::MAX_CANDIDATES;
use thimble_verify::signature::signature_checks;
use thimble_verify::snp::{MAX_LEAVES, verify_report};
use thimble_verify::{Options, Verdict};

/// Counts live and peak heap bytes of the whole process.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// The only unsafe code outside the device clients: a global allocator has to be an `unsafe
// impl`. It forwards every call to the system allocator unchanged and only counts.
#[expect(
    unsafe_code,
    reason = "a counting wrapper around the system allocator, for tests"
)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result with the peak heap growth while it ran.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

/// Runs `f` and returns its result with the number of signature checks it made.
fn checks_during<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = signature_checks();
    let out = f();
    (out, signature_checks() - before)
}

const MIB: usize = 1 << 20;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

/// `der` with its last two bytes (inside the signature) replaced by `i`: a distinct certificate
/// with the same names, key and extensions, whose own signature no longer verifies.
fn variant(der: &[u8], i: usize) -> Vec<u8> {
    let mut v = der.to_vec();
    let n = v.len();
    v[n - 2..].copy_from_slice(&u16::try_from(i % 65_000 + 1).unwrap().to_be_bytes());
    v
}

struct Snp {
    report: Vec<u8>,
    vcek: Vec<u8>,
    ask: Vec<u8>,
    ark: Vec<u8>,
    at: i64,
}

fn snp() -> Snp {
    let dir = vectors().join("snp/milan-v3-oak");
    let chain =
        pem_certificates(&std::fs::read_to_string(dir.join("ask_ark.pem")).unwrap()).unwrap();
    Snp {
        report: std::fs::read(dir.join("report.bin")).unwrap(),
        vcek: std::fs::read(dir.join("vcek.der")).unwrap(),
        ask: chain[0].clone(),
        ark: chain[1].clone(),
        at: parse_rfc3339("2026-06-01T00:00:00Z").unwrap(),
    }
}

fn bundle(evidence: Evidence, endorsements: Vec<Endorsement>) -> Bundle {
    Bundle {
        format: FORMAT.into(),
        version: VERSION,
        tee: thimble_evidence::bundle::Tee::SevSnp,
        simulated: false,
        agent: Agent {
            name: "hostile".into(),
            version: "0".into(),
        },
        created_at: "2026-06-01T00:00:00Z".into(),
        kernel_release: None,
        collection: Collection::default(),
        nonce: None,
        evidence,
        endorsements,
        endorsement_log: Vec::new(),
        claims: serde_json::Value::Null,
    }
}

fn endorsement(kind: EndorsementKind, der: &[u8]) -> Endorsement {
    Endorsement::der(
        kind,
        der,
        Origin {
            kind: "file".into(),
            url: None,
            path: None,
        },
        None,
    )
}

/// The review's quadratic case: a thousand VCEK-like and a thousand ASK-like certificates. Every
/// VCEK matches the report by its extensions and every ASK by its name, so before the fix each
/// pair cost an RSA-4096 check.
fn thousand_by_thousand(s: &Snp) {
    let mut certs: Vec<AmdCert> = (0..1000)
        .map(|i| AmdCert::parse_der(&variant(&s.vcek, i)).unwrap())
        .collect();
    certs.extend((0..1000).map(|i| AmdCert::parse_der(&variant(&s.ask, i)).unwrap()));
    certs.push(AmdCert::parse_der(&s.vcek).unwrap());
    certs.push(AmdCert::parse_der(&s.ask).unwrap());
    certs.push(AmdCert::parse_der(&s.ark).unwrap());
    let (out, checks) =
        checks_during(|| verify_report(&s.report, &certs, None, &Options::strict(s.at)));
    // The genuine chain is past the cap, so the evidence is not believed; that is the price of
    // bounding the search, and an attacker who can add certificates can also remove them.
    assert_eq!(out.verdict, Verdict::Invalid);
    let bound = (MAX_LEAVES * (MAX_INTERMEDIATES + 1) + 1) as u64;
    assert!(checks <= bound, "{checks} signature checks, bound {bound}");

    // The same pool with the genuine certificates first verifies, with few checks.
    certs.rotate_right(3);
    let (out, checks) =
        checks_during(|| verify_report(&s.report, &certs, None, &Options::strict(s.at)));
    assert_eq!(out.verdict, Verdict::Valid, "{:?}", out.errors);
    assert!(
        checks <= 3,
        "{checks} signature checks for a chain of three"
    );
}

/// The review's memory case: a certificate table whose entries all point at the same bytes.
fn overlapping_table(s: &Snp) {
    let blob = vec![0x30u8; 500 * 1024];
    let items: Vec<(CertKind, &[u8])> = vec![(CertKind::Vcek, &blob[..])];
    let mut table = CertTable::build(&items);
    // Copy the one entry's header into 60 more slots, moving the terminator down, so that
    // every entry covers the same 500 KiB.
    let entry = table[..24].to_vec();
    let mut headers = Vec::new();
    for _ in 0..61 {
        headers.extend_from_slice(&entry);
    }
    headers.extend_from_slice(&[0u8; 24]);
    let data_at = u32::try_from(headers.len()).unwrap();
    for h in headers.chunks_mut(24).take(61) {
        h[16..20].copy_from_slice(&data_at.to_le_bytes());
    }
    table = headers;
    table.extend_from_slice(&blob);
    let evidence = Evidence {
        snp_report: Some(b64(&s.report)),
        auxblob: Some(b64(&table)),
        ..Evidence::default()
    };
    let b = bundle(
        evidence,
        vec![
            endorsement(EndorsementKind::Vcek, &s.vcek),
            endorsement(EndorsementKind::Ask, &s.ask),
            endorsement(EndorsementKind::Ark, &s.ark),
        ],
    );
    let json = b.to_json();
    let (out, peak) = peak_during(|| {
        let parsed = Bundle::parse(&json).unwrap();
        verify_bundle(&parsed, &VerifyOptions::strict(s.at))
    });
    // The hostile table is ignored (with a warning); the endorsements still verify the report.
    assert_eq!(out.verdict, Verdict::Valid, "{:?}", out.errors);
    assert!(
        out.warnings.iter().any(|w| w.contains("overlap")),
        "{:?}",
        out.warnings
    );
    assert!(
        peak < 8 * json.len(),
        "{peak} bytes allocated for a {}-byte bundle",
        json.len()
    );
}

/// The review's claims case: a bundle whose `claims` is a huge JSON tree.
fn huge_claims(s: &Snp) {
    let mut b = bundle(
        Evidence {
            snp_report: Some(b64(&s.report)),
            ..Evidence::default()
        },
        vec![endorsement(EndorsementKind::Vcek, &s.vcek)],
    );
    // About 7 MiB of small arrays: each would be a Value of tens of bytes.
    let arrays = "[0,[1],{\"a\":[2]}],".repeat(7 * MIB / 20);
    b.claims = serde_json::Value::Null;
    let json = String::from_utf8(b.to_json())
        .unwrap()
        .replace("\"claims\": null", &format!("\"claims\": [{}0]", arrays));
    assert!(json.len() > 6 * MIB && json.len() < bundle_cap());
    let (parsed, peak) = peak_during(|| Bundle::parse(json.as_bytes()).unwrap());
    assert_eq!(parsed.claims, serde_json::Value::Null);
    assert!(peak < MIB, "{peak} bytes allocated to skip the claims");
}

fn bundle_cap() -> usize {
    thimble_evidence::bundle::DEFAULT_MAX_BUNDLE_LEN
}

/// A bundle at the size cap, as hostile as the format allows for SEV-SNP: the most endorsements,
/// all VCEK- or ASK-like, a full certificate table of look-alikes, and the rest of the size in an
/// endorsement log.
fn full_bundle(s: &Snp) {
    let mut endorsements = Vec::new();
    for i in 0..MAX_ENDORSEMENTS {
        let (kind, der) = if i % 2 == 0 {
            (EndorsementKind::Vcek, variant(&s.vcek, i))
        } else {
            (EndorsementKind::Ask, variant(&s.ask, i))
        };
        endorsements.push(endorsement(kind, &der));
    }
    let table_items: Vec<Vec<u8>> = (0..thimble_evidence::snp::cert_table::MAX_ENTRIES)
        .map(|i| variant(&s.vcek, 10_000 + i))
        .collect();
    let refs: Vec<(CertKind, &[u8])> = table_items
        .iter()
        .map(|d| (CertKind::Vcek, d.as_slice()))
        .collect();
    let mut b = bundle(
        Evidence {
            snp_report: Some(b64(&s.report)),
            auxblob: Some(b64(&CertTable::build(&refs))),
            ..Evidence::default()
        },
        endorsements,
    );
    let room = bundle_cap() - b.to_json().len() - 64 * 1024;
    b.endorsement_log = vec!["x".repeat(1024); room / 1030];
    let json = b.to_json();
    assert!(json.len() <= bundle_cap() && json.len() > bundle_cap() - MIB);
    let ((out, checks), peak) = peak_during(|| {
        checks_during(|| {
            let parsed = Bundle::parse(&json).unwrap();
            verify_bundle(&parsed, &VerifyOptions::strict(s.at))
        })
    });
    assert_eq!(out.verdict, Verdict::Invalid);
    let bound = (MAX_LEAVES * (MAX_INTERMEDIATES + 1) + 1) as u64;
    assert!(checks <= bound, "{checks} signature checks, bound {bound}");
    assert!(peak < 64 * MIB, "{peak} bytes allocated for a full bundle");

    // One endorsement more than the cap is refused before anything is parsed.
    let mut b = bundle(Evidence::default(), Vec::new());
    b.endorsements = vec![endorsement(EndorsementKind::Vcek, &s.vcek); MAX_ENDORSEMENTS + 1];
    assert!(Bundle::parse(&b.to_json()).is_err());
}

/// Intel chains: a pool of look-alike PCK CAs and TCB Signing certificates.
fn intel_look_alikes() {
    let dir = vectors().join("tdx/v4-uptodate-dcapqvl");
    let quote = std::fs::read(dir.join("quote.bin")).unwrap();
    let at = parse_rfc3339("2025-07-01T00:00:00Z").unwrap();
    let tcb_chain =
        pem_certificates(&std::fs::read_to_string(dir.join("tcb_info_issuer_chain.pem")).unwrap())
            .unwrap();
    let crl_chain =
        pem_certificates(&std::fs::read_to_string(dir.join("pck_crl_issuer_chain.pem")).unwrap())
            .unwrap();
    let mut endorsements = vec![
        Endorsement::bytes_as(
            EndorsementKind::TcbInfo,
            "json",
            &std::fs::read(dir.join("tcb_info.json")).unwrap(),
            Origin {
                kind: "file".into(),
                url: None,
                path: None,
            },
            None,
        ),
        Endorsement::bytes_as(
            EndorsementKind::QeIdentity,
            "json",
            &std::fs::read(dir.join("qe_identity.json")).unwrap(),
            Origin {
                kind: "file".into(),
                url: None,
                path: None,
            },
            None,
        ),
        endorsement(
            EndorsementKind::PckCrl,
            &std::fs::read(dir.join("pck_crl.der")).unwrap(),
        ),
        endorsement(
            EndorsementKind::RootCaCrl,
            &std::fs::read(dir.join("root_ca_crl.der")).unwrap(),
        ),
    ];
    // Look-alike TCB Signing certificates first, so that the search meets them before the real
    // one, then look-alike PCK CAs.
    for i in 0..120 {
        endorsements.push(endorsement(
            EndorsementKind::Certificate,
            &variant(&tcb_chain[0], i),
        ));
        endorsements.push(endorsement(
            EndorsementKind::Certificate,
            &variant(&crl_chain[0], i),
        ));
    }
    endorsements.push(endorsement(EndorsementKind::Certificate, &tcb_chain[0]));
    endorsements.push(endorsement(EndorsementKind::Certificate, &tcb_chain[1]));
    let mut b = bundle(
        Evidence {
            tdx_quote: Some(b64(&quote)),
            ..Evidence::default()
        },
        endorsements,
    );
    b.tee = thimble_evidence::bundle::Tee::Tdx;
    let (out, checks) = checks_during(|| verify_bundle(&b, &VerifyOptions::strict(at)));
    // Each chain step tries at most MAX_CANDIDATES issuers; a TDX verification has a PCK chain,
    // two CRLs, the QE report, the quote and two collateral chains and signatures.
    let bound = (4 * (MAX_CANDIDATES + 1) + 8) as u64;
    assert!(
        checks <= bound,
        "{checks} signature checks, bound {bound}: {:?}",
        out.errors
    );
}

#[test]
fn hostile_bundles_cost_little() {
    let s = snp();
    thousand_by_thousand(&s);
    overlapping_table(&s);
    huge_claims(&s);
    full_bundle(&s);
    intel_look_alikes();
}
