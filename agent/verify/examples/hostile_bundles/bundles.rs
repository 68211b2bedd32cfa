// SPDX-License-Identifier: Apache-2.0
//! The most hostile bundles the format allows, built from real vectors: shared by the cost tests
//! (`tests/hostile.rs`, which count signature checks and bytes) and the benchmark that times them
//! (`bench/hostile.sh` through `examples/hostile_bundles/main.rs`). Each builder returns the
//! bundle as JSON and the time to verify it at.

use std::path::{Path, PathBuf};

use thimble_evidence::bundle::{
    Agent, Bundle, Collection, CollectionSource, DEFAULT_MAX_BUNDLE_LEN, Endorsement,
    EndorsementKind, Evidence, FORMAT, MAX_ENDORSEMENTS, Origin, OriginKind, SevSnpEvidence,
    TdxEvidence, VERSION,
};
use thimble_evidence::cert_file::pem_certificates;
use thimble_evidence::snp::{CertKind, CertTable};
use thimble_evidence::time_fmt::parse_rfc3339;

pub const MIB: usize = 1 << 20;

pub fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn pem(path: &Path) -> Vec<Vec<u8>> {
    pem_certificates(&String::from_utf8_lossy(&read(path)))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn time(rfc3339: &str) -> i64 {
    parse_rfc3339(rfc3339).unwrap_or_else(|| panic!("{rfc3339}"))
}

/// `der` with its last two bytes (inside the signature) replaced by `i`: a distinct certificate
/// with the same names, key and extensions, whose own signature no longer verifies.
pub fn variant(der: &[u8], i: usize) -> Vec<u8> {
    let mut v = der.to_vec();
    let n = v.len();
    let tag = u16::try_from(i % 65_000 + 1).unwrap_or(1);
    v[n - 2..].copy_from_slice(&tag.to_be_bytes());
    v
}

/// A real Milan report with its VCEK, ASK and ARK (vector `milan-v3-oak`).
pub struct Snp {
    pub report: Vec<u8>,
    pub vcek: Vec<u8>,
    pub ask: Vec<u8>,
    pub ark: Vec<u8>,
    pub at: i64,
}

pub fn snp() -> Snp {
    let dir = vectors().join("snp/milan-v3-oak");
    let chain = pem(&dir.join("ask_ark.pem"));
    Snp {
        report: read(&dir.join("report.bin")),
        vcek: read(&dir.join("vcek.der")),
        ask: chain[0].clone(),
        ark: chain[1].clone(),
        at: time("2026-06-01T00:00:00Z"),
    }
}

pub fn bundle(evidence: Evidence, endorsements: Vec<Endorsement>) -> Bundle {
    Bundle {
        format: FORMAT.into(),
        version: VERSION,
        simulated: false,
        agent: Agent {
            name: "hostile".into(),
            version: "0".into(),
        },
        created_at: "2026-06-01T00:00:00Z".into(),
        kernel_release: None,
        collection: Collection::new(CollectionSource::Import),
        nonce: None,
        evidence,
        endorsements,
        endorsement_log: Vec::new(),
        event_logs: Vec::new(),
        claims: None,
    }
}

pub fn endorsement(kind: EndorsementKind, der: &[u8]) -> Endorsement {
    Endorsement::bytes_as(
        kind,
        if matches!(kind, EndorsementKind::TcbInfo | EndorsementKind::QeIdentity) {
            "json"
        } else {
            "der"
        },
        der,
        Origin::kind(OriginKind::File),
        None,
    )
}

/// The review's memory case: a certificate table whose 61 entries all point at the same
/// 500 KiB, with the genuine chain among the endorsements.
pub fn overlapping_table(s: &Snp) -> Vec<u8> {
    let blob = vec![0x30u8; 500 * 1024];
    let one = CertTable::build(&[(CertKind::Vcek, &blob[..])]);
    let entry = one[..24].to_vec();
    let mut table = Vec::new();
    for _ in 0..61 {
        table.extend_from_slice(&entry);
    }
    table.extend_from_slice(&[0u8; 24]);
    let data_at = u32::try_from(table.len()).unwrap_or(u32::MAX);
    for h in table.chunks_mut(24).take(61) {
        h[16..20].copy_from_slice(&data_at.to_le_bytes());
    }
    table.extend_from_slice(&blob);
    let evidence = Evidence::SevSnp(SevSnpEvidence {
        report: s.report.clone(),
        auxblob: Some(table),
    });
    bundle(
        evidence,
        vec![
            endorsement(EndorsementKind::Vcek, &s.vcek),
            endorsement(EndorsementKind::Ask, &s.ask),
            endorsement(EndorsementKind::Ark, &s.ark),
        ],
    )
    .to_json()
}

/// The review's claims case: about 7 MiB of small nested arrays as `claims`.
pub fn huge_claims(s: &Snp) -> Vec<u8> {
    let b = bundle(
        Evidence::SevSnp(SevSnpEvidence {
            report: s.report.clone(),
            auxblob: None,
        }),
        vec![endorsement(EndorsementKind::Vcek, &s.vcek)],
    );
    let arrays = "[0,[1],{\"a\":[2]}],".repeat(7 * MIB / 20);
    String::from_utf8_lossy(&b.to_json())
        .replace("\"claims\": null", &format!("\"claims\": [{arrays}0]"))
        .into_bytes()
}

/// As hostile as the format allows for SEV-SNP, at the size cap: the most endorsements, all
/// VCEK- or ASK-like, a full certificate table of look-alikes, and the rest of the size in an
/// endorsement log.
pub fn full_sev_snp(s: &Snp) -> Vec<u8> {
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
        Evidence::SevSnp(SevSnpEvidence {
            report: s.report.clone(),
            auxblob: Some(CertTable::build(&refs)),
        }),
        endorsements,
    );
    let room = DEFAULT_MAX_BUNDLE_LEN - b.to_json().len() - 64 * 1024;
    b.endorsement_log = vec!["x".repeat(1024); room / 1030];
    b.to_json()
}

/// A real TDX quote and its collateral, behind 240 look-alike TCB Signing and PCK CA
/// certificates that come first; the TCB info names no issuer chain, so the verifier has to find
/// its signer among them.
pub fn intel_look_alikes() -> (Vec<u8>, i64) {
    let dir = vectors().join("tdx/v4-uptodate-dcapqvl");
    let tcb_chain = pem(&dir.join("tcb_info_issuer_chain.pem"));
    let crl_chain = pem(&dir.join("pck_crl_issuer_chain.pem"));
    let mut endorsements = vec![
        endorsement(EndorsementKind::TcbInfo, &read(&dir.join("tcb_info.json"))),
        endorsement(
            EndorsementKind::QeIdentity,
            &read(&dir.join("qe_identity.json")),
        ),
        endorsement(EndorsementKind::PckCrl, &read(&dir.join("pck_crl.der"))),
        endorsement(
            EndorsementKind::RootCaCrl,
            &read(&dir.join("root_ca_crl.der")),
        ),
    ];
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
    let b = bundle(
        Evidence::Tdx(TdxEvidence {
            quote: read(&dir.join("quote.bin")),
            td_report: None,
        }),
        endorsements,
    );
    (b.to_json(), time("2025-07-01T00:00:00Z"))
}

/// Every hostile bundle with its name and verification time.
pub fn all() -> Vec<(&'static str, Vec<u8>, i64)> {
    let s = snp();
    let (intel, intel_at) = intel_look_alikes();
    vec![
        ("overlapping-table", overlapping_table(&s), s.at),
        ("huge-claims", huge_claims(&s), s.at),
        ("full-sev-snp", full_sev_snp(&s), s.at),
        ("intel-look-alikes", intel, intel_at),
    ]
}
