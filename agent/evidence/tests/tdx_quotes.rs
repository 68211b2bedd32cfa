// SPDX-License-Identifier: Apache-2.0
//! thimble's TDX quote parser on every real quote under `tests/vectors` (see its README and
//! LICENSES), checked field by field against an independent parser, dcap-qvl's, and encoded back
//! to the same bytes. Also the PCK extension, the collateral bodies and the CRLs of each case.

#![expect(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    reason = "a test reads its vector files and panics on setup failure"
)]

use std::path::{Path, PathBuf};

use base64::Engine;

use thimble_evidence::tdx::td_report::TD_REPORT_LEN;
use thimble_evidence::tdx::{
    EnclaveReport, IntelCrl, PckCaType, PckInfo, QeIdentityBody, SignatureData, TcbInfoBody,
    TdReport, TdxQuote, UnsignedQuote,
};

fn quotes() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("tdx"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.push(root.join("azure/tdx-hcl-v4-outofdate"));
    dirs.sort();
    dirs.into_iter()
        .map(|d| (d.file_name().unwrap().to_str().unwrap().to_string(), d))
        .collect()
}

#[test]
fn quotes_parse_with_exact_ranges_and_trailing_bytes() {
    // (case, version, trailing bytes, signature-data length) as read off the files.
    let expected = [
        ("tdx-hcl-v4-outofdate", 4, None, None),
        ("v4-debug-td-2023", 4, Some(0), Some(4300)),
        ("v4-gcp-padded-uptodate", 4, Some(3065), Some(4299)),
        ("v4-trailing-bytes-no-tcb-level", 4, Some(39), Some(4299)),
        ("v4-uptodate-dcapqvl", 4, Some(70), Some(4300)),
        ("v5-no-tcb-level-dcapqvl", 5, Some(0), Some(4300)),
    ];
    let cases = quotes();
    assert_eq!(cases.len(), expected.len());
    for ((id, dir), (eid, version, trailing, sig_len)) in cases.iter().zip(expected) {
        assert_eq!(id, eid);
        let raw = std::fs::read(dir.join("quote.bin")).unwrap();
        let q = TdxQuote::parse(&raw).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(q.header.version, version, "{id}");
        if let Some(t) = trailing {
            assert_eq!(q.trailing_len, t, "{id}");
        }
        if let Some(l) = sig_len {
            assert_eq!(q.signature_data_range().len(), l, "{id}");
        }
        assert_eq!(q.signature_data_range().end + q.trailing_len, raw.len());
        let header_and_descriptor = if version == 5 { 54 } else { 48 };
        assert_eq!(q.body_range().start, header_and_descriptor, "{id}");
        assert_eq!(q.signed_bytes(), &raw[..q.body_range().end], "{id}");
        assert_eq!(q.body_bytes().len(), if q.is_tdx15() { 648 } else { 584 });
        assert_eq!(q.certification_type, 6);
        assert_eq!(q.qe.inner_type, 5);
        assert_eq!(q.pck_chain.as_ref().map(Vec::len), Some(3), "{id}");
        // Trailing bytes are not part of the parse.
        let mut padded = raw.clone();
        padded.extend_from_slice(&[0xaa; 17]);
        let p = TdxQuote::parse(&padded).unwrap();
        assert_eq!(p.trailing_len, q.trailing_len + 17);
        assert_eq!(p.body, q.body);
        // A signature-data length one short cuts the certification data: malformed, never
        // silently accepted.
        let len_at = q.signature_data_range().start - 4;
        let mut short = raw.clone();
        short[len_at..len_at + 4]
            .copy_from_slice(&((q.signature_data_range().len() - 1) as u32).to_le_bytes());
        assert!(TdxQuote::parse(&short).is_err(), "{id}");
    }
}

#[test]
fn fields_agree_with_dcap_qvl() {
    for (id, dir) in quotes() {
        let raw = std::fs::read(dir.join("quote.bin")).unwrap();
        let ours = TdxQuote::parse(&raw).unwrap();
        let theirs = dcap_qvl::quote::Quote::parse(&raw).unwrap();
        let r = theirs.report.as_td10().unwrap();
        let b = &ours.body;
        assert_eq!(b.tee_tcb_svn, r.tee_tcb_svn, "{id}");
        assert_eq!(b.mrseam, r.mr_seam, "{id}");
        assert_eq!(b.mrsignerseam, r.mr_signer_seam, "{id}");
        assert_eq!(b.seam_attributes, r.seam_attributes, "{id}");
        assert_eq!(b.td_attributes, r.td_attributes, "{id}");
        assert_eq!(b.xfam, r.xfam, "{id}");
        assert_eq!(b.mrtd, r.mr_td, "{id}");
        assert_eq!(b.mrconfigid, r.mr_config_id, "{id}");
        assert_eq!(b.mrowner, r.mr_owner, "{id}");
        assert_eq!(b.mrownerconfig, r.mr_owner_config, "{id}");
        assert_eq!(b.rtmr, [r.rt_mr0, r.rt_mr1, r.rt_mr2, r.rt_mr3], "{id}");
        assert_eq!(b.report_data, r.report_data, "{id}");
        assert_eq!(
            b.tee_tcb_svn_2,
            theirs.report.as_td15().map(|t| t.tee_tcb_svn2),
            "{id}"
        );
        assert_eq!(
            b.mrservicetd,
            theirs.report.as_td15().map(|t| t.mr_service_td),
            "{id}"
        );
        assert_eq!(ours.signed_bytes().len(), theirs.signed_length(), "{id}");
        assert_eq!(&ours.qe.qe_report, theirs.qe_report(), "{id}");
        let chain = dcap_qvl::intel::extract_cert_chain(&theirs).unwrap();
        assert_eq!(ours.pck_chain.clone().unwrap(), chain, "{id}");
    }
}

#[test]
fn pck_extension_and_collateral_of_every_case() {
    // (case, FMSPC) as the PCK certificates say.
    let expected = [
        ("tdx-hcl-v4-outofdate", "00806f050000"),
        ("v4-debug-td-2023", "50806f000000"),
        ("v4-gcp-padded-uptodate", "00806f050000"),
        ("v4-trailing-bytes-no-tcb-level", "50806f000000"),
        ("v4-uptodate-dcapqvl", "b0c06f000000"),
        ("v5-no-tcb-level-dcapqvl", "90c06f000000"),
    ];
    for ((id, dir), (eid, fmspc)) in quotes().into_iter().zip(expected) {
        assert_eq!(id, eid);
        let raw = std::fs::read(dir.join("quote.bin")).unwrap();
        let q = TdxQuote::parse(&raw).unwrap();
        let chain = q.pck_chain.unwrap();
        let pck = PckInfo::from_der(&chain[0]).unwrap();
        assert_eq!(hex::encode(pck.fmspc), fmspc, "{id}");
        assert_eq!(pck.pce_id, [0, 0], "{id}");
        assert_eq!(pck.ca_type, PckCaType::Platform, "{id}");
        assert_eq!(pck.ppid.len(), 16, "{id}");
        // The PCK intermediate is no PCK: its issuer is the root.
        assert!(PckInfo::from_der(&chain[1]).is_err());

        let tcb = TcbInfoBody::parse(&std::fs::read(dir.join("tcb_info.json")).unwrap()).unwrap();
        assert!(tcb.content.fmspc.eq_ignore_ascii_case(fmspc), "{id}");
        assert!(tcb.signed_bytes().starts_with(b"{\"id\":\"TDX\""), "{id}");
        assert!(tcb.next_update > tcb.issue_date);
        let qe =
            QeIdentityBody::parse(&std::fs::read(dir.join("qe_identity.json")).unwrap()).unwrap();
        assert_eq!(qe.content.id, "TD_QE", "{id}");
        let crl = IntelCrl::parse(&std::fs::read(dir.join("pck_crl.der")).unwrap()).unwrap();
        assert_eq!(crl.issuer_cn, "Intel SGX PCK Platform CA", "{id}");
        assert!(!crl.revoked.is_empty(), "{id}");
        let root = IntelCrl::parse(&std::fs::read(dir.join("root_ca_crl.der")).unwrap()).unwrap();
        assert_eq!(root.issuer_cn, "Intel SGX Root CA", "{id}");
        // The same CRL, hex-encoded and in PEM, parses to the same DER.
        let hexed = hex::encode(crl.der());
        assert_eq!(IntelCrl::parse(hexed.as_bytes()).unwrap(), crl);
        let b64 = base64::engine::general_purpose::STANDARD.encode(crl.der());
        let pem = format!("-----BEGIN X509 CRL-----\n{b64}\n-----END X509 CRL-----\n");
        assert_eq!(IntelCrl::parse(pem.as_bytes()).unwrap(), crl);
    }
}

/// The encoder lays every real quote out again byte for byte from its parsed parts (without the
/// trailing bytes, which are no part of a quote), so the layout it writes is the one Intel's
/// quoting enclaves write.
#[test]
fn every_quote_encodes_back_to_its_bytes() {
    for (id, dir) in quotes() {
        let raw = std::fs::read(dir.join("quote.bin")).unwrap();
        let q = TdxQuote::parse(&raw).unwrap();
        let unsigned = UnsignedQuote {
            header: q.header.clone(),
            body: q.body.clone(),
        };
        assert_eq!(unsigned.signed_bytes(), q.signed_bytes(), "{id}");
        let signature_data = SignatureData {
            signature: q.signature,
            attestation_key: q.attestation_key,
            qe: q.qe.clone(),
        };
        let encoded = unsigned.to_bytes(&signature_data).unwrap();
        assert_eq!(encoded, raw[..raw.len() - q.trailing_len], "{id}");
        assert_eq!(TdxQuote::parse(&encoded).unwrap().body, q.body, "{id}");

        let report = EnclaveReport::decode(&q.qe.qe_report);
        let again = EnclaveReport::decode(&report.encode());
        assert_eq!(again, report, "{id}");
        // The QE report bytes the decoder skips are all zero in Intel's QE reports.
        assert_eq!(report.encode(), q.qe.qe_report, "{id}");
    }
}

/// The TD report in Azure's HCL report encodes back to its bytes too.
#[test]
fn azure_td_report_encodes_back_to_its_bytes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors");
    let hcl = std::fs::read(root.join("azure/tdx-hcl-v4-outofdate/hcl_report.bin")).unwrap();
    // The TD report follows the HCL report's 32-byte header.
    let raw = &hcl[32..32 + TD_REPORT_LEN];
    let report = TdReport::parse(raw).unwrap();
    assert_eq!(report.encode(), raw);
}
