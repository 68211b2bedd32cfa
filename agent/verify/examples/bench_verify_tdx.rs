// SPDX-License-Identifier: Apache-2.0
//! Benchmark driver for `bench/run`, the TDX sibling of `bench_verify`: verifies a real TDX v4
//! quote (vector `v4-uptodate-dcapqvl`) with its Intel collateral N times in-process and prints
//! the mean time per verification. Everything `thimble verify` does per run after reading the
//! bundle is included: the quote and the collateral (TCB info, QE identity, both CRLs, the issuer
//! chains) are parsed afresh, the PCK chain is checked to the pinned Intel root, and the TCB
//! status is evaluated.

#![expect(
    clippy::disallowed_methods,
    reason = "a benchmark driver reads its vector files and the clock"
)]

mod support;

use thimble_evidence::cert_file::pem_certificates;
use thimble_evidence::time_fmt::parse_rfc3339;
use thimble_verify::IntelRoots;
use thimble_verify::tdx::{TdxCollateral, TdxPolicy, verify_quote};

fn main() {
    let read = |name: &str| support::vector_file("tdx/v4-uptodate-dcapqvl", name);
    let chain = |name: &str| {
        pem_certificates(&String::from_utf8(read(name)).unwrap_or_default()).unwrap_or_default()
    };
    let quote = read("quote.bin");
    let collateral = TdxCollateral {
        tcb_info: read("tcb_info.json"),
        tcb_info_issuer_chain: chain("tcb_info_issuer_chain.pem"),
        qe_identity: read("qe_identity.json"),
        qe_identity_issuer_chain: chain("qe_identity_issuer_chain.pem"),
        pck_crl: Some(read("pck_crl.der")),
        pck_crl_issuer_chain: chain("pck_crl_issuer_chain.pem"),
        root_ca_crl: Some(read("root_ca_crl.der")),
        pck_chain: None,
    };
    // The case's own verification time (case.toml): its collateral is current then.
    let at = parse_rfc3339("2025-07-01T00:00:00Z").unwrap_or(0);
    let roots = IntelRoots::intel();
    let policy = TdxPolicy::default();

    support::time(support::iterations(), || {
        let out = verify_quote(&quote, &collateral, at, &roots, &policy);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
    });
}
