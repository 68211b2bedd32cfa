// SPDX-License-Identifier: Apache-2.0
//! Benchmark driver for `bench/verify-speed.sh`: verifies a real Milan report (vector
//! `milan-v3-oak`) with its VCEK chain N times in-process and prints the mean time per
//! verification. Parsing of the certificates is included, as `thimble verify` does it per run.

#![expect(
    clippy::disallowed_methods,
    reason = "a benchmark driver reads its vector files and the clock"
)]

mod support;

use thimble_evidence::cert_file::pem_certificates;
use thimble_evidence::snp::AmdCert;
use thimble_evidence::time_fmt::parse_rfc3339;
use thimble_verify::Options;
use thimble_verify::snp::verify_report;

fn main() {
    let read = |name: &str| support::vector_file("snp/milan-v3-oak", name);
    let report = read("report.bin");
    let vcek = read("vcek.der");
    let chain_pem = String::from_utf8(read("ask_ark.pem")).unwrap_or_default();
    let chain = pem_certificates(&chain_pem).unwrap_or_default();
    let at = parse_rfc3339("2026-06-01T00:00:00Z").unwrap_or(0);
    let opts = Options::strict(at);

    support::time(support::iterations(), || {
        let mut certs = vec![AmdCert::parse_der(&vcek).expect("vcek")];
        certs.extend(chain.iter().map(|d| AmdCert::parse_der(d).expect("chain")));
        let out = verify_report(&report, &certs, None, &opts);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
    });
}
