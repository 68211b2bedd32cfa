// SPDX-License-Identifier: Apache-2.0
//! thimble's report parser against an independent one: every real report under
//! `tests/vectors/snp` is parsed by thimble and by the `sev` crate (virtee, pure-Rust backend),
//! and the fields both know must agree. A wrong offset in either parser shows up here. Each report
//! is also encoded again from thimble's parsed fields, which must give back the firmware's bytes.

#![expect(clippy::disallowed_methods, reason = "a test reads its vector files")]

use std::path::Path;

use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;
use thimble_evidence::snp::{SigningKey, SnpReport};

#[test]
fn every_vector_report_agrees_with_the_sev_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/snp");
    let mut checked = 0;
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path().join("report.bin");
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let ours = SnpReport::parse(&bytes).unwrap();
        let theirs = AttestationReport::from_bytes(&bytes).unwrap();
        let name = path.display().to_string();
        assert_eq!(ours.version, theirs.version, "{name}");
        assert_eq!(ours.guest_svn, theirs.guest_svn, "{name}");
        assert_eq!(ours.policy.raw, u64::from(theirs.policy), "{name}");
        assert_eq!(
            ours.policy.debug_allowed,
            theirs.policy.debug_allowed(),
            "{name}"
        );
        assert_eq!(ours.family_id, theirs.family_id, "{name}");
        assert_eq!(ours.image_id, theirs.image_id, "{name}");
        assert_eq!(ours.vmpl, theirs.vmpl, "{name}");
        assert_eq!(ours.signature_algo, theirs.sig_algo, "{name}");
        assert_eq!(ours.report_data, theirs.report_data, "{name}");
        assert_eq!(ours.measurement, theirs.measurement, "{name}");
        assert_eq!(ours.host_data, theirs.host_data, "{name}");
        assert_eq!(ours.id_key_digest, theirs.id_key_digest, "{name}");
        assert_eq!(ours.author_key_digest, theirs.author_key_digest, "{name}");
        assert_eq!(ours.report_id, theirs.report_id, "{name}");
        assert_eq!(ours.report_id_ma, theirs.report_id_ma, "{name}");
        assert_eq!(ours.chip_id, theirs.chip_id, "{name}");
        let product = ours
            .product_hint()
            .unwrap_or(thimble_evidence::snp::Product::Milan);
        let t = ours.reported_tcb(product);
        assert_eq!(
            (t.bootloader, t.tee, t.snp, t.microcode),
            (
                theirs.reported_tcb.bootloader,
                theirs.reported_tcb.tee,
                theirs.reported_tcb.snp,
                theirs.reported_tcb.microcode
            ),
            "{name}"
        );
        let vlek = matches!(ours.signing_key, SigningKey::Vlek);
        assert_eq!(vlek, theirs.key_info.signing_key() == 1, "{name}");
        assert_eq!(ours.fields().to_bytes(), &bytes[..], "{name} re-encoded");
        checked += 1;
    }
    assert_eq!(checked, 8, "every vector with a report was compared");
}
