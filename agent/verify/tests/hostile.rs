// SPDX-License-Identifier: Apache-2.0
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
use std::sync::atomic::{AtomicUsize, Ordering};

use thimble_evidence::bundle::{
    Bundle, EndorsementKind, Evidence, MAX_ENDORSEMENTS, SevSnpEvidence,
};
use thimble_evidence::snp::AmdCert;
use thimble_verify::bundle::{VerifyOptions, verify_bundle};
use thimble_verify::chain::MAX_INTERMEDIATES;
use thimble_verify::intel_chain::MAX_CANDIDATES;
use thimble_verify::signature::signature_checks;
use thimble_verify::snp::{MAX_LEAVES, verify_report};
use thimble_verify::{Options, Verdict};

#[path = "../examples/hostile_bundles/bundles.rs"]
mod bundles;

use bundles::{MIB, Snp, bundle, endorsement, snp, variant};

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
    let json = bundles::overlapping_table(s);
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
    let json = bundles::huge_claims(s);
    assert!(json.len() > 6 * MIB && json.len() < bundle_cap());
    let (parsed, peak) = peak_during(|| Bundle::parse(&json).unwrap());
    assert_eq!(parsed.claims, None);
    assert!(peak < MIB, "{peak} bytes allocated to skip the claims");
}

fn bundle_cap() -> usize {
    thimble_evidence::bundle::DEFAULT_MAX_BUNDLE_LEN
}

/// A bundle at the size cap, as hostile as the format allows for SEV-SNP.
fn full_bundle(s: &Snp) {
    let json = bundles::full_sev_snp(s);
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
    let report = Evidence::SevSnp(SevSnpEvidence {
        report: s.report.clone(),
        auxblob: None,
    });
    let mut b = bundle(report, Vec::new());
    b.endorsements = vec![endorsement(EndorsementKind::Vcek, &s.vcek); MAX_ENDORSEMENTS + 1];
    assert!(Bundle::parse(&b.to_json()).is_err());
}

/// Intel chains: a pool of look-alike PCK CAs and TCB Signing certificates.
fn intel_look_alikes() {
    let (json, at) = bundles::intel_look_alikes();
    let b = Bundle::parse(&json).unwrap();
    let ((_, checks), peak) =
        peak_during(|| checks_during(|| verify_bundle(&b, &VerifyOptions::strict(at))));
    // Each chain step tries at most MAX_CANDIDATES issuers; a TDX verification has a PCK chain,
    // two CRLs, the QE report, the quote and two collateral chains and signatures.
    let bound = (4 * (MAX_CANDIDATES + 1) + 8) as u64;
    assert!(checks <= bound, "{checks} signature checks, bound {bound}");
    assert!(peak < 16 * MIB, "{peak} bytes allocated");
}

#[test]
fn hostile_bundles_cost_little() {
    let s = snp();
    thousand_by_thousand(&s);
    overlapping_table(&s);
    huge_claims(&s);
    full_bundle(&s);
    intel_look_alikes();
    // And every hostile bundle of the benchmark, through the same path as `thimble verify`:
    // parsed within the default limit, verified, with a few dozen signature checks at most and
    // memory of the order of the bundle's size.
    for (name, json, at) in bundles::all() {
        let ((_, checks), peak) = peak_during(|| {
            checks_during(|| match Bundle::parse(&json) {
                Ok(b) => Some(verify_bundle(&b, &VerifyOptions::strict(at))),
                Err(_) => None,
            })
        });
        assert!(checks <= 40, "{name}: {checks} signature checks");
        assert!(
            peak < 4 * json.len() + 16 * MIB,
            "{name}: {peak} bytes allocated for {} bytes",
            json.len()
        );
    }
}
