// SPDX-License-Identifier: Apache-2.0
//! The pinned roots, compiled in: AMD's Root Keys (ARK) for Milan, Genoa and Turin, and the Intel
//! SGX Root CA (the root of every PCK, PCK CA, TCB Signing certificate and Intel CRL). They are
//! the only roots a verification trusts by default; every other certificate must chain to one of
//! them.
//!
//! The DER files are AMD's ARKs as AMD KDS serves them (`/vcek/v1/{product}/cert_chain`) and
//! Intel's root as published at `certificates.trustedservices.intel.com`; their SHA-256
//! fingerprints are asserted in the tests below so that a changed file cannot slip in.
//!
//! A pinned root is parsed when a chain first reaches it, not when the set is made: a `verify`
//! process checks one product's chain (or none, for TDX), and parsing all three ARKs up front
//! was about a tenth of a whole-process verification (docs/performance.md).

use std::sync::OnceLock;
use thimble_evidence::snp::{AmdCert, Product};

/// A root a chain may end at. Its fields are private so that the only ways to trust a root are
/// the pinned set and the `insecure_*` constructors.
#[derive(Debug, Clone)]
pub struct Root {
    product: Product,
    der: &'static [u8],
    /// The parsed certificate, filled on first use; `None` if the DER does not parse, which
    /// leaves the root unusable (fail closed). The tests below parse every pinned root.
    cert: OnceLock<Option<AmdCert>>,
    simulated: bool,
}

impl Root {
    /// The product whose chains may end here.
    pub fn product(&self) -> Product {
        self.product
    }

    /// The self-signed ARK certificate, parsed on first use; `None` only if its DER does not
    /// parse (a pinned root always does: the tests check it), and then no chain ends here.
    pub fn cert(&self) -> Option<&AmdCert> {
        self.cert
            .get_or_init(|| AmdCert::parse_der(self.der).ok())
            .as_ref()
    }

    /// Whether this is a test root (`thimble-sim`'s), trusted only because the caller asked.
    pub fn is_simulated(&self) -> bool {
        self.simulated
    }
}

/// The set of AMD roots a verification accepts: [`TrustedRoots::amd`], plus simulation roots
/// only through [`TrustedRoots::insecure_add_simulated`]. The default is empty, and with no root
/// nothing verifies.
#[derive(Debug, Clone, Default)]
pub struct TrustedRoots {
    roots: Vec<Root>,
}

const PINNED: [(Product, &[u8]); 3] = [
    (Product::Milan, include_bytes!("../roots/amd/ark_milan.der")),
    (Product::Genoa, include_bytes!("../roots/amd/ark_genoa.der")),
    (Product::Turin, include_bytes!("../roots/amd/ark_turin.der")),
];

impl TrustedRoots {
    /// AMD's ARKs for every known product.
    pub fn amd() -> TrustedRoots {
        let roots = PINNED
            .iter()
            .map(|(product, der)| Root {
                product: *product,
                der,
                cert: OnceLock::new(),
                simulated: false,
            })
            .collect();
        TrustedRoots { roots }
    }

    /// Adds a simulation root (`--insecure-allow-simulated`). Named so that nobody adds it by
    /// accident.
    pub fn insecure_add_simulated(mut self, product: Product, ark_der: &[u8]) -> TrustedRoots {
        // Parsed now (it is the caller's input, not a pinned constant) and kept only if it
        // parses; the bytes stay with the parsed certificate.
        if let Ok(cert) = AmdCert::parse_der(ark_der) {
            self.roots.push(Root {
                product,
                der: &[],
                cert: OnceLock::from(Some(cert)),
                simulated: true,
            });
        }
        self
    }

    /// The roots, pinned and (when allowed) simulated.
    pub fn roots(&self) -> &[Root] {
        &self.roots
    }
}

/// The Intel SGX Root CA, valid 2018-05-21 to 2049-12-31.
const INTEL_SGX_ROOT_CA: &[u8] = include_bytes!("../roots/intel/sgx_root_ca.der");

/// The Intel roots a TDX verification accepts: [`IntelRoots::intel`], or a test PKI's through
/// [`IntelRoots::insecure_custom`]. Private fields, so that these are the only ways. The default
/// is empty, and with no root nothing verifies.
#[derive(Debug, Clone, Default)]
pub struct IntelRoots {
    /// The pinned root's DER, parsed into `roots` on first use (empty for a test PKI's, which is
    /// parsed when given, and for the default set).
    pinned: &'static [u8],
    roots: OnceLock<Vec<AmdCert>>,
    simulated: bool,
}

impl IntelRoots {
    /// The pinned Intel SGX Root CA, parsed when a chain first reaches it: an SEV-SNP
    /// verification never does.
    pub fn intel() -> IntelRoots {
        IntelRoots {
            pinned: INTEL_SGX_ROOT_CA,
            roots: OnceLock::new(),
            simulated: false,
        }
    }

    /// A different root (a test PKI). Named so that nobody uses it by accident.
    pub fn insecure_custom(root_der: &[u8]) -> IntelRoots {
        IntelRoots {
            pinned: &[],
            roots: OnceLock::from(
                AmdCert::parse_der(root_der)
                    .ok()
                    .into_iter()
                    .collect::<Vec<_>>(),
            ),
            simulated: true,
        }
    }

    /// The root CAs (`AmdCert` is thimble's general X.509 view; its AMD extensions are empty
    /// here).
    pub fn roots(&self) -> &[AmdCert] {
        // The pinned file is checked by the tests below; a parse failure would be a build
        // defect, and an empty set makes it fail closed.
        self.roots
            .get_or_init(|| AmdCert::parse_der(self.pinned).ok().into_iter().collect())
    }

    /// Whether the roots are a test PKI's, trusted only because the caller asked for it.
    pub fn is_simulated(&self) -> bool {
        self.simulated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thimble_evidence::digest::Sha256;

    #[test]
    fn pinned_arks_are_amds() {
        let expected = [
            "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
            "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
            "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
        ];
        let roots = TrustedRoots::amd();
        assert_eq!(roots.roots.len(), 3);
        for (root, fp) in roots.roots.iter().zip(expected) {
            let cert = root.cert().expect("pinned ARK parses");
            assert_eq!(hex::encode(Sha256::digest(cert.der())), fp);
            assert!(cert.self_issued());
            assert_eq!(cert.product(), Some(root.product));
            assert!(crate::signature::verify_cert_signature(cert, cert).is_ok());
        }
    }

    #[test]
    fn pinned_intel_root_is_intels() {
        let roots = IntelRoots::intel();
        assert_eq!(roots.roots().len(), 1);
        let root = &roots.roots()[0];
        assert_eq!(
            hex::encode(Sha256::digest(root.der())),
            "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
        );
        assert_eq!(root.subject_cn, "Intel SGX Root CA");
        assert!(root.self_issued() && root.is_ca && !roots.simulated);
        assert!(crate::signature::verify_cert_signature(root, root).is_ok());
    }
}
