// SPDX-License-Identifier: Apache-2.0
//! `AmdCert`'s subject and issuer text is rendered without x509-parser's OID registry (see
//! `name_text` in src/snp/cert.rs); these tests hold it to x509-parser's own rendering on every
//! certificate under tests/vectors: AMD's and Intel's real ones, the simulator's and hand-made
//! ones.
#![expect(clippy::disallowed_methods, reason = "a test reads its vector files")]

use std::path::Path;
use thimble_evidence::snp::AmdCert;
use x509_parser::prelude::{FromDer, X509Certificate};

fn walk(dir: &Path, out: &mut Vec<Vec<u8>>) {
    for entry in std::fs::read_dir(dir).expect("tests/vectors is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            walk(&path, out);
            continue;
        }
        let bytes = std::fs::read(&path).expect("vector file is readable");
        match std::str::from_utf8(&bytes) {
            Ok(text) if text.contains("-----BEGIN CERTIFICATE-----") => {
                out.extend(thimble_evidence::cert_file::pem_certificates(text).unwrap_or_default())
            }
            _ if bytes.first() == Some(&0x30) => out.push(bytes),
            _ => {}
        }
    }
}

#[test]
fn names_render_as_x509_parser_does() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors");
    let mut ders = Vec::new();
    walk(&root, &mut ders);
    let mut names = 0;
    for der in &ders {
        let (Ok(ours), Ok((_, theirs))) = (AmdCert::parse_der(der), X509Certificate::from_der(der))
        else {
            continue;
        };
        assert_eq!(ours.subject, theirs.subject().to_string());
        assert_eq!(ours.issuer, theirs.issuer().to_string());
        names += 2;
    }
    // A walk that found nothing would pass vacuously.
    assert!(
        names >= 60,
        "only {names} names found under {}",
        root.display()
    );
}
