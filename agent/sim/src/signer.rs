// SPDX-License-Identifier: Apache-2.0
//! Simulated SEV-SNP firmware signer: builds `ATTESTATION_REPORT` structures from a template and
//! signs them with the simulated VCEK, exactly as the AMD secure processor lays them out and signs
//! them. Also exposes the simulated AMD chain committed under `agent/sim/keys/` (see its README).
//!
//! Everything here is test material. The chain is rooted in a simulation ARK that a real
//! verification never trusts (only `--insecure-allow-simulated` accepts it), so nothing signed here
//! can pass for real evidence.

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

/// Size of an `ATTESTATION_REPORT` (SEV-SNP ABI spec, Table "ATTESTATION_REPORT Structure").
pub const SNP_REPORT_LEN: usize = 0x4A0;

/// The signature covers bytes `0x000..0x2A0` of the report.
pub const SNP_REPORT_SIGNED_LEN: usize = 0x2A0;

/// `hwID` of the simulated chip: `sha512(b"thimble simulated chip")`, the same bytes as the `hwID`
/// extension of `keys/vcek.der`. Obviously synthetic, so a report carrying it is never mistaken
/// for a real chip.
pub const SIM_CHIP_ID: [u8; 64] = [
    0x53, 0xf0, 0x69, 0x41, 0x3c, 0x9e, 0xa7, 0x3a, 0x11, 0x67, 0x01, 0x51, 0xc1, 0x60, 0x36, 0x4e,
    0xb9, 0x5b, 0x2a, 0x3d, 0x8c, 0x44, 0xa7, 0x96, 0x15, 0x7f, 0x96, 0x78, 0x1e, 0xc5, 0xfc, 0x49,
    0xbc, 0x5b, 0x41, 0x39, 0xd7, 0xd8, 0x81, 0x53, 0xa7, 0x66, 0x96, 0x07, 0xff, 0x9d, 0xbe, 0x24,
    0x2d, 0x35, 0xb8, 0x04, 0xc2, 0x2c, 0x07, 0xf3, 0xd1, 0xbc, 0x19, 0x67, 0xcd, 0x11, 0x65, 0x21,
];

/// Reported TCB the simulated VCEK is certified for, in the Milan/Genoa `TCB_VERSION` byte layout
/// `[bl, tee, 0, 0, 0, 0, snp, ucode]`: blSPL 3, teeSPL 0, snpSPL 8, ucodeSPL 115. As a THIM
/// `tcbm` this is `7308000000000003`.
pub const SIM_REPORTED_TCB: [u8; 8] = [3, 0, 0, 0, 0, 0, 8, 115];

/// The committed simulated AMD chain and its negative-test variants (`agent/sim/keys/`).
#[derive(Clone, Copy, Debug)]
pub struct SimChain {
    /// Simulated ARK (`CN=ARK-Milan`), RSA-4096, self-signed, DER.
    pub ark_der: &'static [u8],
    /// Simulated ASK (`CN=SEV-Milan`), issued by the ARK, DER.
    pub ask_der: &'static [u8],
    /// Simulated VCEK for [`SIM_CHIP_ID`] at [`SIM_REPORTED_TCB`], issued by the ASK, DER.
    pub vcek_der: &'static [u8],
    /// The VCEK private key, unencrypted PKCS#8 DER.
    pub vcek_pk8: &'static [u8],
    /// ASK then ARK, PEM (KDS `cert_chain` / THIM `certificateChain` order).
    pub ask_ark_pem: &'static str,
    /// A THIM `/metadata/THIM/amd/certification` body for this chain.
    pub thim_json: &'static str,
    /// VCEK with another chip's `hwID` (`sha512(b"thimble other chip")`).
    pub vcek_other_chip_der: &'static [u8],
    /// VCEK whose validity ended on 2021-01-01.
    pub vcek_expired_der: &'static [u8],
    /// VCEK certified for ucodeSPL 116 instead of 115.
    pub vcek_other_tcb_der: &'static [u8],
    /// VCEK with the right extensions and issuer name, signed by a key that is not the ASK.
    pub vcek_forged_der: &'static [u8],
    /// The ARK's CRL as KDS serves it for `/vcek/v1/Milan/crl` (and, since the same ARK issues
    /// both, `/vlek/v1/Milan/crl`): DER, empty, thisUpdate 2024-01-01, nextUpdate 2045-01-01.
    pub crl_der: &'static [u8],
    /// An older CRL of the ARK (thisUpdate 2023-06-01) that revokes the ASK.
    pub crl_ask_revoked_der: &'static [u8],
    /// A CRL of the ARK that revokes the ASK, but whose Issuing Distribution Point names the VLEK
    /// CRL, which does not cover the ASK.
    pub crl_other_scope_der: &'static [u8],
    /// A delta CRL of the ARK (critical Delta CRL Indicator) that revokes the ASK.
    pub crl_delta_der: &'static [u8],
}

/// The simulated chain, embedded at build time.
pub fn sim_chain() -> SimChain {
    SimChain {
        ark_der: include_bytes!("../keys/ark.der"),
        ask_der: include_bytes!("../keys/ask.der"),
        vcek_der: include_bytes!("../keys/vcek.der"),
        vcek_pk8: include_bytes!("../keys/vcek.pk8"),
        ask_ark_pem: include_str!("../keys/ask_ark.pem"),
        thim_json: include_str!("../keys/thim.json"),
        vcek_other_chip_der: include_bytes!("../keys/vcek_other_chip.der"),
        vcek_expired_der: include_bytes!("../keys/vcek_expired.der"),
        vcek_other_tcb_der: include_bytes!("../keys/vcek_other_tcb.der"),
        vcek_forged_der: include_bytes!("../keys/vcek_forged.der"),
        crl_der: include_bytes!("../keys/crl.der"),
        crl_ask_revoked_der: include_bytes!("../keys/crl_ask_revoked.der"),
        crl_other_scope_der: include_bytes!("../keys/crl_other_scope.der"),
        crl_delta_der: include_bytes!("../keys/crl_delta.der"),
    }
}

/// Field offsets of `ATTESTATION_REPORT` (SEV-SNP ABI spec, Table "ATTESTATION_REPORT Structure";
/// docs/formats.md §6.1). All integers are little-endian.
mod offset {
    pub const VERSION: usize = 0x000;
    pub const GUEST_SVN: usize = 0x004;
    pub const POLICY: usize = 0x008;
    pub const FAMILY_ID: usize = 0x010;
    pub const IMAGE_ID: usize = 0x020;
    pub const VMPL: usize = 0x030;
    pub const SIGNATURE_ALGO: usize = 0x034;
    pub const CURRENT_TCB: usize = 0x038;
    pub const PLATFORM_INFO: usize = 0x040;
    pub const KEY_INFO: usize = 0x048;
    pub const REPORT_DATA: usize = 0x050;
    pub const MEASUREMENT: usize = 0x090;
    pub const HOST_DATA: usize = 0x0C0;
    pub const ID_KEY_DIGEST: usize = 0x0E0;
    pub const AUTHOR_KEY_DIGEST: usize = 0x110;
    pub const REPORT_ID: usize = 0x140;
    pub const REPORT_ID_MA: usize = 0x160;
    pub const REPORTED_TCB: usize = 0x180;
    pub const CPUID_FAM_ID: usize = 0x188;
    pub const CPUID_MOD_ID: usize = 0x189;
    pub const CPUID_STEP: usize = 0x18A;
    pub const CHIP_ID: usize = 0x1A0;
    pub const COMMITTED_TCB: usize = 0x1E0;
    pub const CURRENT_VERSION: usize = 0x1E8;
    pub const COMMITTED_VERSION: usize = 0x1EC;
    pub const LAUNCH_TCB: usize = 0x1F0;
    pub const LAUNCH_MIT_VECTOR: usize = 0x1F8;
    pub const CURRENT_MIT_VECTOR: usize = 0x200;
    pub const SIGNATURE_R: usize = 0x2A0;
    pub const SIGNATURE_S: usize = 0x2E8;
}

/// Each signature component is a 72-byte little-endian field; P-384 uses the low 48 bytes.
const SIGNATURE_COMPONENT_LEN: usize = 72;
const P384_SCALAR_LEN: usize = 48;

/// `SIGNATURE_ALGO` 1: ECDSA P-384 with SHA-384.
const SIGNATURE_ALGO_ECDSA_P384_SHA384: u32 = 1;

/// Everything the firmware puts into a report except `report_data`, which comes from the request.
///
/// Integer fields are host-order values written little-endian; `*_tcb` fields are the raw 8-byte
/// `TCB_VERSION` as it appears in the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportTemplate {
    /// `VERSION` (2, 3 or 5). Fields introduced by later versions are written only when present.
    pub version: u32,
    pub guest_svn: u32,
    /// `POLICY`: bits 7:0 ABI minor, 15:8 ABI major, 16 SMT allowed, 17 reserved (must be one),
    /// 18 migration agent allowed, 19 debug allowed, 20 single socket.
    pub policy: u64,
    pub family_id: [u8; 16],
    pub image_id: [u8; 16],
    pub vmpl: u32,
    pub current_tcb: [u8; 8],
    /// `PLATFORM_INFO`: bit 0 SMT enabled, 1 TSME enabled, 2 ECC enabled, 3 RAPL disabled,
    /// 4 ciphertext hiding enabled, 5 alias check complete.
    pub platform_info: u64,
    /// `AUTHOR_KEY_EN` (key info bit 0).
    pub author_key_en: bool,
    /// `MASK_CHIP_KEY` (key info bit 1). When set the firmware zeroes `CHIP_ID`, and so does
    /// [`ReportSigner::sign`].
    pub mask_chip_key: bool,
    /// `SIGNING_KEY` (key info bits 4:2): 0 VCEK, 1 VLEK, 7 none.
    pub signing_key: u8,
    pub measurement: [u8; 48],
    pub host_data: [u8; 32],
    pub id_key_digest: [u8; 48],
    pub author_key_digest: [u8; 48],
    pub report_id: [u8; 32],
    /// `REPORT_ID_MA`: all ones when the guest has no migration agent.
    pub report_id_ma: [u8; 32],
    pub reported_tcb: [u8; 8],
    /// CPUID family (version 3 and later; reserved in version 2).
    pub cpuid_fam_id: u8,
    /// CPUID model (version 3 and later).
    pub cpuid_mod_id: u8,
    /// CPUID stepping (version 3 and later).
    pub cpuid_step: u8,
    pub chip_id: [u8; 64],
    pub committed_tcb: [u8; 8],
    /// Firmware `CURRENT_BUILD`, `CURRENT_MINOR`, `CURRENT_MAJOR`.
    pub current_build: u8,
    pub current_minor: u8,
    pub current_major: u8,
    /// Firmware `COMMITTED_BUILD`, `COMMITTED_MINOR`, `COMMITTED_MAJOR`.
    pub committed_build: u8,
    pub committed_minor: u8,
    pub committed_major: u8,
    pub launch_tcb: [u8; 8],
    /// `LAUNCH_MIT_VECTOR` (version 5 and later).
    pub launch_mit_vector: u64,
    /// `CURRENT_MIT_VECTOR` (version 5 and later).
    pub current_mit_vector: u64,
}

impl Default for ReportTemplate {
    /// A plausible version 3 report of a non-debug Milan guest at VMPL 0 on the simulated chip,
    /// with `measurement = sha384(b"thimble simulated guest")`.
    fn default() -> Self {
        let mut measurement = [0u8; 48];
        measurement.copy_from_slice(
            ring::digest::digest(&ring::digest::SHA384, b"thimble simulated guest").as_ref(),
        );
        let mut report_id = [0u8; 32];
        report_id.copy_from_slice(
            ring::digest::digest(&ring::digest::SHA256, b"thimble simulated report id").as_ref(),
        );
        Self {
            version: 3,
            guest_svn: 1,
            // SMT allowed, plus the reserved bit 17 the firmware requires to be set.
            policy: 0x3_0000,
            family_id: [0; 16],
            image_id: [0; 16],
            vmpl: 0,
            current_tcb: SIM_REPORTED_TCB,
            // SMT enabled, ECC enabled, alias check complete: what Milan hosts commonly report.
            platform_info: 0x25,
            author_key_en: false,
            mask_chip_key: false,
            signing_key: 0,
            measurement,
            host_data: [0; 32],
            id_key_digest: [0; 48],
            author_key_digest: [0; 48],
            report_id,
            report_id_ma: [0xFF; 32],
            reported_tcb: SIM_REPORTED_TCB,
            // Family 19h model 01h: Milan.
            cpuid_fam_id: 0x19,
            cpuid_mod_id: 0x01,
            cpuid_step: 0x01,
            chip_id: SIM_CHIP_ID,
            committed_tcb: SIM_REPORTED_TCB,
            // Firmware 1.55 build 29, as on current Milan hosts.
            current_build: 29,
            current_minor: 55,
            current_major: 1,
            committed_build: 29,
            committed_minor: 55,
            committed_major: 1,
            launch_tcb: SIM_REPORTED_TCB,
            launch_mit_vector: 0,
            current_mit_vector: 0,
        }
    }
}

impl ReportTemplate {
    /// The unsigned report: every field laid out, the signature area zero.
    pub fn to_unsigned_bytes(&self, report_data: &[u8; 64]) -> Vec<u8> {
        let mut r = vec![0u8; SNP_REPORT_LEN];
        put(&mut r, offset::VERSION, &self.version.to_le_bytes());
        put(&mut r, offset::GUEST_SVN, &self.guest_svn.to_le_bytes());
        put(&mut r, offset::POLICY, &self.policy.to_le_bytes());
        put(&mut r, offset::FAMILY_ID, &self.family_id);
        put(&mut r, offset::IMAGE_ID, &self.image_id);
        put(&mut r, offset::VMPL, &self.vmpl.to_le_bytes());
        put(
            &mut r,
            offset::SIGNATURE_ALGO,
            &SIGNATURE_ALGO_ECDSA_P384_SHA384.to_le_bytes(),
        );
        put(&mut r, offset::CURRENT_TCB, &self.current_tcb);
        put(
            &mut r,
            offset::PLATFORM_INFO,
            &self.platform_info.to_le_bytes(),
        );
        let key_info = u32::from(self.author_key_en)
            | (u32::from(self.mask_chip_key) << 1)
            | (u32::from(self.signing_key & 0b111) << 2);
        put(&mut r, offset::KEY_INFO, &key_info.to_le_bytes());
        put(&mut r, offset::REPORT_DATA, report_data);
        put(&mut r, offset::MEASUREMENT, &self.measurement);
        put(&mut r, offset::HOST_DATA, &self.host_data);
        put(&mut r, offset::ID_KEY_DIGEST, &self.id_key_digest);
        put(&mut r, offset::AUTHOR_KEY_DIGEST, &self.author_key_digest);
        put(&mut r, offset::REPORT_ID, &self.report_id);
        put(&mut r, offset::REPORT_ID_MA, &self.report_id_ma);
        put(&mut r, offset::REPORTED_TCB, &self.reported_tcb);
        if self.version >= 3 {
            r[offset::CPUID_FAM_ID] = self.cpuid_fam_id;
            r[offset::CPUID_MOD_ID] = self.cpuid_mod_id;
            r[offset::CPUID_STEP] = self.cpuid_step;
        }
        if !self.mask_chip_key {
            put(&mut r, offset::CHIP_ID, &self.chip_id);
        }
        put(&mut r, offset::COMMITTED_TCB, &self.committed_tcb);
        put(
            &mut r,
            offset::CURRENT_VERSION,
            &[self.current_build, self.current_minor, self.current_major],
        );
        put(
            &mut r,
            offset::COMMITTED_VERSION,
            &[
                self.committed_build,
                self.committed_minor,
                self.committed_major,
            ],
        );
        put(&mut r, offset::LAUNCH_TCB, &self.launch_tcb);
        if self.version >= 5 {
            put(
                &mut r,
                offset::LAUNCH_MIT_VECTOR,
                &self.launch_mit_vector.to_le_bytes(),
            );
            put(
                &mut r,
                offset::CURRENT_MIT_VECTOR,
                &self.current_mit_vector.to_le_bytes(),
            );
        }
        r
    }
}

fn put(report: &mut [u8], at: usize, bytes: &[u8]) {
    report[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Signs reports with the simulated VCEK (ECDSA P-384, SHA-384), as the AMD secure processor does.
#[derive(Debug)]
pub struct ReportSigner {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl ReportSigner {
    /// The signer for the simulated VCEK (`keys/vcek.pk8`, certified by `keys/vcek.der`).
    pub fn sim() -> Self {
        // The key is a committed fixture that the tests below load; it cannot be malformed at run
        // time.
        Self::from_pkcs8(sim_chain().vcek_pk8).expect("the committed simulated VCEK key loads")
    }

    /// A signer for any P-384 PKCS#8 key (for reports signed by a key the chain does not certify).
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, ring::error::KeyRejected> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8, &rng)?;
        Ok(Self { key, rng })
    }

    /// The public key as an uncompressed SEC1 point (`04 || x || y`, 97 bytes).
    pub fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    /// A complete signed 1184-byte report.
    pub fn sign(&self, t: &ReportTemplate, report_data: &[u8; 64]) -> Vec<u8> {
        let mut report = t.to_unsigned_bytes(report_data);
        self.resign(&mut report);
        report
    }

    /// Recomputes the signature over `report[0x000..0x2A0]` in place, leaving the rest of the
    /// signature area untouched (tests edit a field and re-sign to build validly signed variants).
    ///
    /// # Panics
    /// If `report` is shorter than the end of the `S` component (0x330).
    pub fn resign(&self, report: &mut [u8]) {
        assert!(
            report.len() >= offset::SIGNATURE_S + SIGNATURE_COMPONENT_LEN,
            "report too short to hold a signature: {} bytes",
            report.len()
        );
        // ring only fails to sign when the system RNG fails, which leaves nothing to simulate.
        let signature = self
            .key
            .sign(&self.rng, &report[..SNP_REPORT_SIGNED_LEN])
            .expect("system random number generator available");
        // ring's FIXED encoding is r || s, each 48 bytes big-endian; the report stores each as a
        // 72-byte little-endian field, zero-extended.
        let (r, s) = signature.as_ref().split_at(P384_SCALAR_LEN);
        write_le_component(report, offset::SIGNATURE_R, r);
        write_le_component(report, offset::SIGNATURE_S, s);
    }
}

fn write_le_component(report: &mut [u8], at: usize, big_endian: &[u8]) {
    let field = &mut report[at..at + SIGNATURE_COMPONENT_LEN];
    field.fill(0);
    for (dst, src) in field.iter_mut().zip(big_endian.iter().rev()) {
        *dst = *src;
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::{ECDSA_P384_SHA384_FIXED, RSA_PSS_2048_8192_SHA384, UnparsedPublicKey};
    use sev::firmware::guest::AttestationReport;
    use sev::firmware::host::TcbVersion;
    use sev::parser::ByteParser;
    use x509_parser::certificate::X509Certificate;
    use x509_parser::prelude::FromDer;

    use super::*;

    fn cert(der: &[u8]) -> X509Certificate<'_> {
        let (rest, cert) = X509Certificate::from_der(der).unwrap();
        assert!(rest.is_empty());
        cert
    }

    fn ext<'a>(cert: &'a X509Certificate<'_>, oid: &str) -> &'a [u8] {
        cert.extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == oid)
            .unwrap_or_else(|| panic!("extension {oid} missing"))
            .value
    }

    fn der_integer(value: &[u8]) -> u64 {
        assert_eq!(value[0], 0x02);
        assert_eq!(usize::from(value[1]), value.len() - 2);
        value[2..]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    }

    fn signature_from_report(report: &[u8]) -> Vec<u8> {
        let mut fixed = Vec::with_capacity(96);
        for at in [offset::SIGNATURE_R, offset::SIGNATURE_S] {
            let field = &report[at..at + SIGNATURE_COMPONENT_LEN];
            assert!(field[P384_SCALAR_LEN..].iter().all(|b| *b == 0));
            fixed.extend(field[..P384_SCALAR_LEN].iter().rev());
        }
        fixed
    }

    fn verify_with_vcek(vcek_der: &[u8], report: &[u8]) -> Result<(), ring::error::Unspecified> {
        let vcek = cert(vcek_der);
        let spki = &vcek.public_key().subject_public_key.data;
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, spki).verify(
            &report[..SNP_REPORT_SIGNED_LEN],
            &signature_from_report(report),
        )
    }

    fn issued_by(child_der: &[u8], issuer_der: &[u8]) -> bool {
        let child = cert(child_der);
        let issuer = cert(issuer_der);
        let key = &issuer.public_key().subject_public_key.data;
        UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA384, key)
            .verify(child.tbs_certificate.as_ref(), &child.signature_value.data)
            .is_ok()
    }

    #[test]
    fn sim_key_loads_and_matches_the_vcek_certificate() {
        let signer = ReportSigner::sim();
        let vcek = cert(sim_chain().vcek_der);
        assert_eq!(
            signer.public_key(),
            &vcek.public_key().subject_public_key.data[..]
        );
    }

    #[test]
    fn chip_ids_are_the_documented_hashes_and_match_the_certificates() {
        let sha512 = |s: &[u8]| ring::digest::digest(&ring::digest::SHA512, s);
        assert_eq!(&SIM_CHIP_ID[..], sha512(b"thimble simulated chip").as_ref());
        let chain = sim_chain();
        for der in [
            chain.vcek_der,
            chain.vcek_expired_der,
            chain.vcek_other_tcb_der,
            chain.vcek_forged_der,
        ] {
            // hwID is the raw 64 bytes, not DER-wrapped, as in AMD's certificates.
            assert_eq!(ext(&cert(der), "1.3.6.1.4.1.3704.1.4"), &SIM_CHIP_ID[..]);
        }
        assert_eq!(
            ext(&cert(chain.vcek_other_chip_der), "1.3.6.1.4.1.3704.1.4"),
            sha512(b"thimble other chip").as_ref()
        );
    }

    #[test]
    fn vcek_extensions_certify_the_reported_tcb() {
        let vcek = cert(sim_chain().vcek_der);
        let spl = |n: u32| der_integer(ext(&vcek, &format!("1.3.6.1.4.1.3704.1.3.{n}")));
        let [bl, tee, _, _, _, _, snp, ucode] = SIM_REPORTED_TCB;
        assert_eq!(spl(1), u64::from(bl));
        assert_eq!(spl(2), u64::from(tee));
        assert_eq!(spl(3), u64::from(snp));
        assert_eq!(spl(8), u64::from(ucode));
        for n in 4..=7 {
            assert_eq!(spl(n), 0);
        }
        assert_eq!(der_integer(ext(&vcek, "1.3.6.1.4.1.3704.1.1")), 0);
        assert_eq!(ext(&vcek, "1.3.6.1.4.1.3704.1.2"), b"\x16\x08Milan-B0");
        let other = cert(sim_chain().vcek_other_tcb_der);
        assert_eq!(der_integer(ext(&other, "1.3.6.1.4.1.3704.1.3.8")), 116);
        assert_eq!(vcek.raw_serial(), [0]);
    }

    #[test]
    fn chain_signatures_and_forgery() {
        let c = sim_chain();
        assert!(issued_by(c.ark_der, c.ark_der));
        assert!(issued_by(c.ask_der, c.ark_der));
        for der in [
            c.vcek_der,
            c.vcek_other_chip_der,
            c.vcek_expired_der,
            c.vcek_other_tcb_der,
        ] {
            assert!(issued_by(der, c.ask_der));
        }
        assert!(!issued_by(c.vcek_forged_der, c.ask_der));
        assert_eq!(cert(c.vcek_forged_der).issuer(), cert(c.vcek_der).issuer());
        let expired = cert(c.vcek_expired_der);
        assert_eq!(expired.validity().not_after.to_datetime().year(), 2021);
    }

    #[test]
    fn crls_are_the_arks() {
        use x509_parser::revocation_list::CertificateRevocationList;
        let c = sim_chain();
        let ark = cert(c.ark_der);
        let ask = cert(c.ask_der);
        let key = &ark.public_key().subject_public_key.data;
        for (der, revoked) in [
            (c.crl_der, false),
            (c.crl_ask_revoked_der, true),
            (c.crl_other_scope_der, true),
            (c.crl_delta_der, true),
        ] {
            let (rest, crl) = CertificateRevocationList::from_der(der).unwrap();
            assert!(rest.is_empty());
            assert_eq!(crl.issuer().as_raw(), ark.subject().as_raw());
            UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA384, key)
                .verify(crl.tbs_cert_list.as_ref(), &crl.signature_value.data)
                .unwrap();
            let serials: Vec<&[u8]> = crl
                .iter_revoked_certificates()
                .map(|r| r.raw_serial())
                .collect();
            assert_eq!(serials.contains(&ask.raw_serial()), revoked);
            assert_eq!(crl.next_update().unwrap().to_datetime().year(), 2045);
        }
    }

    #[test]
    fn thim_json_matches_the_chain() {
        let c = sim_chain();
        let body: serde_json::Value = serde_json::from_str(c.thim_json).unwrap();
        let keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 4);
        // tcbm: the reported TCB read as a little-endian u64, most significant byte first.
        let tcbm = format!("{:016x}", u64::from_le_bytes(SIM_REPORTED_TCB));
        assert_eq!(tcbm, "7308000000000003");
        assert_eq!(body["tcbm"], tcbm);
        assert_eq!(body["cacheControl"], "86400");
        assert_eq!(body["certificateChain"], c.ask_ark_pem);
        let (_, pem) =
            x509_parser::pem::parse_x509_pem(body["vcekCert"].as_str().unwrap().as_bytes())
                .unwrap();
        assert_eq!(pem.contents, c.vcek_der);
        let pems: Vec<_> = x509_parser::pem::Pem::iter_from_buffer(c.ask_ark_pem.as_bytes())
            .map(|p| p.unwrap().contents)
            .collect();
        assert_eq!(pems, [c.ask_der.to_vec(), c.ark_der.to_vec()]);
    }

    #[test]
    fn signed_report_verifies_against_the_vcek() {
        let signer = ReportSigner::sim();
        let report = signer.sign(&ReportTemplate::default(), &[0x5A; 64]);
        assert_eq!(report.len(), SNP_REPORT_LEN);
        verify_with_vcek(sim_chain().vcek_der, &report).unwrap();

        let mut tampered = report.clone();
        tampered[offset::MEASUREMENT] ^= 1;
        assert!(verify_with_vcek(sim_chain().vcek_der, &tampered).is_err());
        signer.resign(&mut tampered);
        verify_with_vcek(sim_chain().vcek_der, &tampered).unwrap();
        assert_eq!(
            tampered[SNP_REPORT_SIGNED_LEN + 144..],
            report[SNP_REPORT_SIGNED_LEN + 144..]
        );
    }

    #[test]
    fn layout_matches_the_sev_crate() {
        let template = ReportTemplate {
            guest_svn: 7,
            policy: 0x3_0000 | (1 << 19),
            host_data: [0x44; 32],
            vmpl: 2,
            family_id: [0x11; 16],
            image_id: [0x22; 16],
            ..ReportTemplate::default()
        };
        let report_data: [u8; 64] = std::array::from_fn(|i| i as u8);
        let report = ReportSigner::sim().sign(&template, &report_data);
        let parsed = AttestationReport::from_bytes(&report).unwrap();
        assert_eq!(parsed.version, 3);
        assert_eq!(parsed.guest_svn, 7);
        assert_eq!(u64::from(parsed.policy), template.policy);
        assert!(parsed.policy.debug_allowed());
        assert_eq!(parsed.family_id, template.family_id);
        assert_eq!(parsed.image_id, template.image_id);
        assert_eq!(parsed.vmpl, 2);
        assert_eq!(parsed.sig_algo, 1);
        assert_eq!(parsed.report_data, report_data);
        assert_eq!(parsed.measurement, template.measurement);
        assert_eq!(parsed.host_data, template.host_data);
        assert_eq!(parsed.chip_id, SIM_CHIP_ID);
        let tcb = TcbVersion {
            fmc: None,
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 115,
        };
        assert_eq!(parsed.reported_tcb, tcb);
        assert_eq!(parsed.current_tcb, tcb);
        assert_eq!(parsed.committed_tcb, tcb);
        assert_eq!(parsed.launch_tcb, tcb);
        assert_eq!(parsed.cpuid_fam_id, Some(0x19));
        assert_eq!(parsed.cpuid_mod_id, Some(0x01));
        assert_eq!(parsed.report_id_ma, [0xFF; 32]);
        assert_eq!(
            signature_from_report(&report)[..48]
                .iter()
                .rev()
                .copied()
                .collect::<Vec<_>>(),
            parsed.signature.r()[..48]
        );
    }

    #[test]
    fn key_info_and_masked_chip_id() {
        let template = ReportTemplate {
            signing_key: 1,
            mask_chip_key: true,
            author_key_en: true,
            ..ReportTemplate::default()
        };
        let report = template.to_unsigned_bytes(&[0; 64]);
        assert_eq!(report[offset::KEY_INFO], 0b111);
        assert!(
            report[offset::CHIP_ID..offset::CHIP_ID + 64]
                .iter()
                .all(|b| *b == 0)
        );
        let v2 = ReportTemplate {
            version: 2,
            ..ReportTemplate::default()
        }
        .to_unsigned_bytes(&[0; 64]);
        assert_eq!(v2[offset::CPUID_FAM_ID..offset::CPUID_STEP + 1], [0, 0, 0]);
    }
}
