// SPDX-License-Identifier: Apache-2.0
//! AMD Key Distribution Service URLs (pure builders and their inverses).
//!
//! `/vcek/v1/{product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..` (Turin adds `fmcSPL` and
//! uses only the first 8 bytes of CHIP_ID as hwid), `/{vcek|vlek}/v1/{product}/cert_chain` (PEM,
//! ASK or ASVK then ARK) and `/{vcek|vlek}/v1/{product}/crl` (DER).

use crate::snp::{Product, TcbVersion};

/// AMD's public KDS.
pub const DEFAULT_KDS_BASE: &str = "https://kdsintf.amd.com";

/// The VCEK URL for a chip at a TCB.
pub fn vcek_url(base: &str, product: Product, chip_id: &[u8; 64], tcb: &TcbVersion) -> String {
    let hwid = hex::encode(&chip_id[..product.hw_id_len()]);
    let base = base.trim_end_matches('/');
    let mut q = String::new();
    if let Some(fmc) = tcb.fmc.filter(|_| product.turin_tcb_layout()) {
        q.push_str(&format!("fmcSPL={fmc}&"));
    }
    q.push_str(&format!(
        "blSPL={}&teeSPL={}&snpSPL={}&ucodeSPL={}",
        tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode
    ));
    format!("{base}/vcek/v1/{}/{hwid}?{q}", product.kds_name())
}

/// The CA chain URL (`vlek` selects the ASVK chain).
pub fn cert_chain_url(base: &str, product: Product, vlek: bool) -> String {
    let kind = if vlek { "vlek" } else { "vcek" };
    format!(
        "{}/{kind}/v1/{}/cert_chain",
        base.trim_end_matches('/'),
        product.kds_name()
    )
}

/// The CRL URL of the ARK for a product: `/vcek/v1/{product}/crl` (the CRL that can list the
/// ASK) or, with `vlek`, `/vlek/v1/{product}/crl` (the one that can list the ASVK). These are
/// the CRL distribution points of AMD's ASK and ASVK certificates; both CRLs are issued by the
/// product's ARK.
pub fn crl_url(base: &str, product: Product, vlek: bool) -> String {
    let kind = if vlek { "vlek" } else { "vcek" };
    format!(
        "{}/{kind}/v1/{}/crl",
        base.trim_end_matches('/'),
        product.kds_name()
    )
}

/// What a CRL URL asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrlRequest {
    /// The product in the path.
    pub product: Product,
    /// The VLEK-side CRL (`/vlek/`), which can list the ASVK.
    pub vlek: bool,
}

/// Parses a CRL URL path (`/vcek/v1/Milan/crl`), the inverse of [`crl_url`]. A query is not
/// part of a CRL URL and is refused.
pub fn parse_crl_path(path: &str) -> Option<CrlRequest> {
    if path.contains('?') {
        return None;
    }
    let mut parts = path.trim_start_matches('/').split('/');
    let vlek = match parts.next()? {
        "vcek" => false,
        "vlek" => true,
        _ => return None,
    };
    if parts.next()? != "v1" {
        return None;
    }
    let product = Product::from_name(parts.next()?)?;
    if parts.next()? != "crl" || parts.next().is_some() {
        return None;
    }
    Some(CrlRequest { product, vlek })
}

/// What a VCEK URL asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcekRequest {
    /// The product in the path.
    pub product: Product,
    /// The hardware ID from the path: 64 bytes, or 8 on Turin.
    pub hwid: Vec<u8>,
    /// The SPLs from the query, encoded for the product.
    pub tcb: TcbVersion,
}

/// Parses a VCEK URL path and query (`/vcek/v1/Milan/<hex>?blSPL=..`), the inverse of
/// [`vcek_url`]; the emulator uses it to answer like KDS.
pub fn parse_vcek_path(path_and_query: &str) -> Option<VcekRequest> {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut parts = path.trim_start_matches('/').split('/');
    if parts.next()? != "vcek" || parts.next()? != "v1" {
        return None;
    }
    let product = Product::from_name(parts.next()?)?;
    let hwid = hex::decode(parts.next()?).ok()?;
    if parts.next().is_some() || hwid.len() != product.hw_id_len() {
        return None;
    }
    let spl = |name: &str| -> Option<u8> {
        query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.parse::<u8>().ok()).flatten()
        })
    };
    let bl = spl("blSPL")?;
    let tee = spl("teeSPL")?;
    let snp = spl("snpSPL")?;
    let ucode = spl("ucodeSPL")?;
    let fmc = if product.turin_tcb_layout() {
        spl("fmcSPL")?
    } else {
        0
    };
    Some(VcekRequest {
        product,
        hwid,
        tcb: TcbVersion::encode(product, bl, tee, snp, ucode, fmc),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_round_trip() {
        let chip = [0xabu8; 64];
        let tcb = TcbVersion::encode(Product::Milan, 3, 0, 8, 115, 0);
        let url = vcek_url("https://kds.example/", Product::Milan, &chip, &tcb);
        assert_eq!(
            url,
            format!(
                "https://kds.example/vcek/v1/Milan/{}?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115",
                "ab".repeat(64)
            )
        );
        let req = parse_vcek_path(url.trim_start_matches("https://kds.example")).unwrap();
        assert_eq!(req.tcb, tcb);
        assert_eq!(req.product, Product::Milan);

        let mut turin_chip = [0u8; 64];
        turin_chip[..8].copy_from_slice(&[0x59, 0x79, 0x0f, 0xb1, 0xc3, 0x9f, 0x35, 0xc1]);
        let t = TcbVersion::encode(Product::Turin, 1, 1, 4, 81, 1);
        let url = vcek_url(DEFAULT_KDS_BASE, Product::Turin, &turin_chip, &t);
        assert_eq!(
            url,
            "https://kdsintf.amd.com/vcek/v1/Turin/59790fb1c39f35c1?fmcSPL=1&blSPL=1&teeSPL=1&snpSPL=4&ucodeSPL=81"
        );
        assert_eq!(
            parse_vcek_path(url.trim_start_matches(DEFAULT_KDS_BASE))
                .unwrap()
                .tcb,
            t
        );
        assert_eq!(
            cert_chain_url(DEFAULT_KDS_BASE, Product::Genoa, true),
            "https://kdsintf.amd.com/vlek/v1/Genoa/cert_chain"
        );
        assert!(parse_vcek_path("/vcek/v1/Milan/abcd?blSPL=1").is_none());
    }

    #[test]
    fn crl_urls_round_trip() {
        for product in [Product::Milan, Product::Genoa, Product::Turin] {
            for vlek in [false, true] {
                let url = crl_url("https://kds.example/", product, vlek);
                let path = url.trim_start_matches("https://kds.example");
                assert_eq!(
                    parse_crl_path(path),
                    Some(CrlRequest { product, vlek }),
                    "{url}"
                );
            }
        }
        assert_eq!(
            crl_url(DEFAULT_KDS_BASE, Product::Milan, false),
            "https://kdsintf.amd.com/vcek/v1/Milan/crl"
        );
        assert_eq!(
            crl_url(DEFAULT_KDS_BASE, Product::Genoa, true),
            "https://kdsintf.amd.com/vlek/v1/Genoa/crl"
        );
        for bad in [
            "/vcek/v1/Milan/crl/x",
            "/vcek/v1/Milan/crl?x=1",
            "/vcek/v2/Milan/crl",
            "/vcek/v1/Rome/crl",
            "/vcek/v1/Milan/cert_chain",
            "/ask/v1/Milan/crl",
            "/vcek/v1/Milan",
        ] {
            assert_eq!(parse_crl_path(bad), None, "{bad}");
        }
    }
}
