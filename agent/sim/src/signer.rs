// SPDX-License-Identifier: Apache-2.0
//! Simulated SEV-SNP firmware signer: fills in an `ATTESTATION_REPORT` from a template, as the
//! AMD secure processor would, and signs it with the simulated VCEK. The layout is not written
//! here: the bytes come from the report codec in `thimble_evidence::snp::report`, the same table
//! the parser reads, so the simulator cannot drift from what the verifier expects. Also exposes
//! the simulated AMD chain committed under `agent/sim/keys/` (see its README).
//!
//! Everything here is test material. The chain is rooted in a simulation ARK that a real
//! verification never trusts (only `--insecure-allow-simulated` accepts it), so nothing signed here
//! can pass for real evidence.

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use thimble_evidence::snp::report::{
    SIG_ALGO_ECDSA_P384_SHA384, SIGNED_LEN, SNP_REPORT_LEN, SnpReportFields, write_signature,
};
use thimble_evidence::snp::{GuestPolicy, SigningKey};

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

/// Everything the firmware puts into a report except `report_data`, which comes from the request.
///
/// Integer fields are host-order values written little-endian; `*_tcb` fields are the raw 8-byte
/// `TCB_VERSION` as it appears in the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportTemplate {
    /// `VERSION` (2, 3 or 5). Fields introduced by later versions are written only when present.
    pub version: u32,
    /// `GUEST_SVN`: the guest's security version number, from its ID block.
    pub guest_svn: u32,
    /// `POLICY`: bits 7:0 ABI minor, 15:8 ABI major, 16 SMT allowed, 17 reserved (must be one),
    /// 18 migration agent allowed, 19 debug allowed, 20 single socket.
    pub policy: u64,
    /// `FAMILY_ID` from the ID block given at launch.
    pub family_id: [u8; 16],
    /// `IMAGE_ID` from the ID block given at launch.
    pub image_id: [u8; 16],
    /// `VMPL` the report was requested for (0-3). [`crate::fake_sev_guest::FakeSevGuest`] and
    /// the simulated configfs-tsm guest replace it with the request's (`vmpl` or `privlevel`).
    pub vmpl: u32,
    /// `CURRENT_TCB`: the `TCB_VERSION` the platform runs now.
    pub current_tcb: [u8; 8],
    /// `PLATFORM_INFO`: bit 0 SMT enabled, 1 TSME enabled, 2 ECC enabled, 3 RAPL disabled,
    /// 4 ciphertext hiding enabled, 5 alias check complete.
    pub platform_info: u64,
    /// `AUTHOR_KEY_EN` (key info bit 0).
    pub author_key_en: bool,
    /// `MASK_CHIP_KEY` (key info bit 1). When set the firmware zeroes `CHIP_ID`, and so does
    /// [`ReportTemplate::fields`].
    pub mask_chip_key: bool,
    /// `SIGNING_KEY` (key info bits 4:2): 0 VCEK, 1 VLEK, 7 none.
    pub signing_key: u8,
    /// `MEASUREMENT`: the SHA-384 launch digest of the guest.
    pub measurement: [u8; 48],
    /// `HOST_DATA`: 32 bytes the hypervisor supplied at launch.
    pub host_data: [u8; 32],
    /// `ID_KEY_DIGEST`: SHA-384 of the public key that signed the ID block (zero without one).
    pub id_key_digest: [u8; 48],
    /// `AUTHOR_KEY_DIGEST`: SHA-384 of the key that certified the ID key (zero unless
    /// `author_key_en`).
    pub author_key_digest: [u8; 48],
    /// `REPORT_ID`: the guest context's report ID.
    pub report_id: [u8; 32],
    /// `REPORT_ID_MA`: all ones when the guest has no migration agent.
    pub report_id_ma: [u8; 32],
    /// `REPORTED_TCB`: the `TCB_VERSION` the signing VCEK is derived from, and so the one its
    /// certificate must carry (see [`SIM_REPORTED_TCB`]).
    pub reported_tcb: [u8; 8],
    /// CPUID family (version 3 and later; reserved in version 2).
    pub cpuid_fam_id: u8,
    /// CPUID model (version 3 and later).
    pub cpuid_mod_id: u8,
    /// CPUID stepping (version 3 and later).
    pub cpuid_step: u8,
    /// `CHIP_ID`: the chip's unique identifier, which the VCEK's `hwID` extension must match
    /// (written as zeros when `mask_chip_key` is set).
    pub chip_id: [u8; 64],
    /// `COMMITTED_TCB`: the committed `TCB_VERSION`, the lowest the platform may roll back to.
    pub committed_tcb: [u8; 8],
    /// Firmware `CURRENT_BUILD`: build number of the running firmware.
    pub current_build: u8,
    /// Firmware `CURRENT_MINOR`: minor version of the running firmware.
    pub current_minor: u8,
    /// Firmware `CURRENT_MAJOR`: major version of the running firmware.
    pub current_major: u8,
    /// Firmware `COMMITTED_BUILD`: build number of the committed firmware.
    pub committed_build: u8,
    /// Firmware `COMMITTED_MINOR`: minor version of the committed firmware.
    pub committed_minor: u8,
    /// Firmware `COMMITTED_MAJOR`: major version of the committed firmware.
    pub committed_major: u8,
    /// `LAUNCH_TCB`: the `CURRENT_TCB` when the guest was launched or imported.
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
    /// The report the firmware would produce for a request carrying `report_data`: the
    /// template's values, with `SIGNATURE_ALGO` 1, `CHIP_ID` zeroed under `MASK_CHIP_KEY`, and no
    /// signature yet. The codec writes CPUID and the mitigation vectors only for the versions
    /// that have them.
    pub fn fields(&self, report_data: &[u8; 64]) -> SnpReportFields {
        SnpReportFields {
            version: self.version,
            guest_svn: self.guest_svn,
            policy: GuestPolicy::decode(self.policy),
            family_id: self.family_id,
            image_id: self.image_id,
            vmpl: self.vmpl,
            signature_algo: SIG_ALGO_ECDSA_P384_SHA384,
            current_tcb: self.current_tcb,
            platform_info: self.platform_info,
            author_key_en: self.author_key_en,
            mask_chip_key: self.mask_chip_key,
            signing_key: SigningKey::from_bits(self.signing_key),
            report_data: *report_data,
            measurement: self.measurement,
            host_data: self.host_data,
            id_key_digest: self.id_key_digest,
            author_key_digest: self.author_key_digest,
            report_id: self.report_id,
            report_id_ma: self.report_id_ma,
            reported_tcb: self.reported_tcb,
            cpuid: Some((self.cpuid_fam_id, self.cpuid_mod_id, self.cpuid_step)),
            chip_id: if self.mask_chip_key {
                [0; 64]
            } else {
                self.chip_id
            },
            committed_tcb: self.committed_tcb,
            current_version: (self.current_build, self.current_minor, self.current_major),
            committed_version: (
                self.committed_build,
                self.committed_minor,
                self.committed_major,
            ),
            launch_tcb: self.launch_tcb,
            launch_mit_vector: Some(self.launch_mit_vector),
            current_mit_vector: Some(self.current_mit_vector),
            signature_r: [0; 48],
            signature_s: [0; 48],
        }
    }

    /// The unsigned report: every field laid out, the signature area zero.
    pub fn to_unsigned_bytes(&self, report_data: &[u8; 64]) -> Vec<u8> {
        self.fields(report_data).to_unsigned_bytes().to_vec()
    }
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
        let mut report = t.fields(report_data).to_unsigned_bytes();
        self.sign_in_place(&mut report);
        report.to_vec()
    }

    /// Recomputes the signature over `report[0x000..0x2A0]` in place, leaving the rest of the
    /// signature area untouched (tests edit a field and re-sign to build validly signed variants).
    ///
    /// # Panics
    /// If `report` is not [`SNP_REPORT_LEN`] bytes long.
    pub fn resign(&self, report: &mut [u8]) {
        let len = report.len();
        let Ok(report) = <&mut [u8; SNP_REPORT_LEN]>::try_from(report) else {
            panic!("a report is {SNP_REPORT_LEN} bytes, this one {len}");
        };
        self.sign_in_place(report);
    }

    fn sign_in_place(&self, report: &mut [u8; SNP_REPORT_LEN]) {
        // ring only fails to sign when the system RNG fails, which leaves nothing to simulate.
        let signature = self
            .key
            .sign(&self.rng, &report[..SIGNED_LEN])
            .expect("system random number generator available");
        // ring's FIXED encoding is r || s, 48 bytes each, big-endian: the form the codec takes.
        let fixed: &[u8; 96] = signature
            .as_ref()
            .try_into()
            .expect("an ECDSA P-384 FIXED signature is 96 bytes");
        write_signature(report, fixed);
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::{ECDSA_P384_SHA384_FIXED, RSA_PSS_2048_8192_SHA384, UnparsedPublicKey};
    use sev::firmware::guest::AttestationReport;
    use sev::firmware::host::TcbVersion;
    use sev::parser::ByteParser;
    use thimble_evidence::snp::report::layout;
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
        // Each component is 72 bytes little-endian; a P-384 scalar fills the low 48.
        for component in [layout::SIGNATURE_R, layout::SIGNATURE_S] {
            let field = &report[component.range()];
            assert!(field[48..].iter().all(|b| *b == 0));
            fixed.extend(field[..48].iter().rev());
        }
        fixed
    }

    fn verify_with_vcek(vcek_der: &[u8], report: &[u8]) -> Result<(), ring::error::Unspecified> {
        let vcek = cert(vcek_der);
        let spki = &vcek.public_key().subject_public_key.data;
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, spki)
            .verify(&report[..SIGNED_LEN], &signature_from_report(report))
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
        tampered[layout::MEASUREMENT.offset()] ^= 1;
        assert!(verify_with_vcek(sim_chain().vcek_der, &tampered).is_err());
        signer.resign(&mut tampered);
        verify_with_vcek(sim_chain().vcek_der, &tampered).unwrap();
        assert_eq!(
            tampered[layout::SIGNATURE_RESERVED.range()],
            report[layout::SIGNATURE_RESERVED.range()]
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
        assert_eq!(report[layout::KEY_INFO.offset()], 0b111);
        assert!(report[layout::CHIP_ID.range()].iter().all(|b| *b == 0));
        let v2 = ReportTemplate {
            version: 2,
            ..ReportTemplate::default()
        }
        .to_unsigned_bytes(&[0; 64]);
        assert_eq!(
            v2[layout::CPUID_FAM_ID.offset()..layout::CPUID_STEP.end()],
            [0, 0, 0]
        );
    }
}
