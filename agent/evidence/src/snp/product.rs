// SPDX-License-Identifier: Apache-2.0
//! AMD EPYC product lines as AMD KDS names them, and how to tell them apart from a report or a
//! certificate. The product decides the TCB_VERSION byte layout and which ARK is the root.

use std::fmt;

/// A product line with its own ARK/ASK and KDS path segment. Siena and Bergamo share Genoa's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Product {
    /// EPYC 7003 (Zen 3, family 19h).
    Milan,
    /// EPYC 9004 (Zen 4, family 19h), with Siena and Bergamo.
    Genoa,
    /// EPYC 9005 (Zen 5, family 1Ah).
    Turin,
}

impl Product {
    /// Every product thimble knows, in KDS order.
    pub const ALL: [Product; 3] = [Product::Milan, Product::Genoa, Product::Turin];

    /// The KDS path segment (`/vcek/v1/{name}/...`).
    pub fn kds_name(self) -> &'static str {
        match self {
            Product::Milan => "Milan",
            Product::Genoa => "Genoa",
            Product::Turin => "Turin",
        }
    }

    /// Parses a KDS name or a VCEK `productName` extension (`Milan-B0`, `Genoa-B2`, `Turin`).
    pub fn from_name(name: &str) -> Option<Product> {
        let base = name.split('-').next().unwrap_or(name);
        match base.to_ascii_lowercase().as_str() {
            "milan" => Some(Product::Milan),
            "genoa" | "siena" | "bergamo" => Some(Product::Genoa),
            "turin" => Some(Product::Turin),
            _ => None,
        }
    }

    /// From the CPUID fields of a version 3+ report (family 19h: Milan for models 00h-0Fh,
    /// Genoa for 10h-1Fh and A0h-AFh; family 1Ah models 00h-11h: Turin).
    pub fn from_cpuid(family: u8, model: u8) -> Option<Product> {
        match (family, model) {
            (0x19, 0x00..=0x0f) => Some(Product::Milan),
            (0x19, 0x10..=0x1f) | (0x19, 0xa0..=0xaf) => Some(Product::Genoa),
            (0x1a, 0x00..=0x11) => Some(Product::Turin),
            _ => None,
        }
    }

    /// Whether the TCB_VERSION uses the Turin layout (with an FMC SPL).
    pub fn turin_tcb_layout(self) -> bool {
        self == Product::Turin
    }

    /// How many bytes of CHIP_ID are the hardware identity (Turin VCEKs carry only 8).
    pub fn hw_id_len(self) -> usize {
        if self == Product::Turin { 8 } else { 64 }
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kds_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_cpuid() {
        assert_eq!(Product::from_name("Milan-B0"), Some(Product::Milan));
        assert_eq!(Product::from_name("Genoa-B2"), Some(Product::Genoa));
        assert_eq!(Product::from_name("Turin"), Some(Product::Turin));
        assert_eq!(Product::from_name("Naples"), None);
        assert_eq!(Product::from_cpuid(0x19, 0x01), Some(Product::Milan));
        assert_eq!(Product::from_cpuid(0x19, 0x11), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(0x19, 0xa0), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(0x1a, 0x02), Some(Product::Turin));
        assert_eq!(Product::from_cpuid(0x17, 0x01), None);
    }
}
