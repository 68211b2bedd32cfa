// SPDX-License-Identifier: Apache-2.0
//! The guest's side of MAA's Azure guest attestation flow (`AzureGuest`), beyond the messages of
//! `thimble_evidence::attest::azure_guest`: what the vTPM must give for the request
//! ([`tpm_info`]: the AK and its certificate, a quote over PCRs 0-7, the PCR values, and the
//! ephemeral key certified by the AK, as CGA's `GetTpmInfo`), the operating-system fields
//! ([`os_info`]), and the answer's decryption ([`decrypt_token`]: AES-GCM under the inner key
//! that the vTPM's `TPM2_RSA_Decrypt` recovered, with the additional data `"Transport Key"`, as
//! CGA's `DecryptJwt`).
//!
//! The inner key can only be recovered by the vTPM the key was made in, through a policy
//! session over the same PCR values: a token encrypted to `EncKeyPub` reaches only a guest
//! whose boot state is the one MAA appraised. Nothing here verifies the token; that is the
//! relying party's business (and `thimble_evidence::attest::token` parses it).

use std::path::Path;

use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use thimble_evidence::attest::azure_guest::{
    EncryptedToken, OS_BUILD_LINUX, OsInfo, Pcr, TRANSPORT_KEY_AAD, TpmInfo,
};
use thimble_evidence::attest::{MessageError, Verifier};
use thimble_evidence::azure::TpmsAttest;

use crate::vtpm::{GUEST_ATTESTATION_PCRS, TpmTransport, VTPM_AK_HANDLE, VtpmClient, VtpmError};

/// Rounds of quote + PCR read before giving up on PCRs that keep changing between the two.
const QUOTE_ATTEMPTS: u32 = 3;

/// Largest `/etc/os-release` read.
const MAX_OS_RELEASE: usize = 64 * 1024;

/// `size` ‖ `bytes`: a `TPM2B` around a marshalled structure (`AikPub`, `EncKeyPub`).
fn tpm2b(bytes: &[u8]) -> Result<Vec<u8>, VtpmError> {
    let len = u16::try_from(bytes.len()).map_err(|_| VtpmError::TooLarge {
        what: "public area",
        len: bytes.len(),
        max: usize::from(u16::MAX),
    })?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    Ok(out)
}

/// What the vTPM gives for `TpmInfo`, in CGA's order: the AK's certificate (empty if the vTPM
/// has none, where CGA would refuse to send) and public area, a quote over [`GUEST_ATTESTATION_PCRS`] with
/// no qualifying data (as CGA: the token's freshness comes from `ClientPayload`, which the
/// HCL report's `user-data` binds), the PCR values read after it and checked against its
/// `pcrDigest`, and the ephemeral key made for those values, certified by the AK and flushed.
pub fn tpm_info<T: TpmTransport>(client: &mut VtpmClient<T>) -> Result<TpmInfo, VtpmError> {
    let ak = client.read_public(VTPM_AK_HANDLE)?;
    // Empty when the index is missing or unwritten: CGA refuses to send then, but MAA, not the
    // guest, is the judge of what it needs (the exchange logs it).
    let aik_cert = client.ak_certificate()?.unwrap_or_default();
    let pcrs = &GUEST_ATTESTATION_PCRS;
    for _ in 0..QUOTE_ATTEMPTS {
        let quote = client.quote(VTPM_AK_HANDLE, &[], pcrs)?;
        let values = client.pcr_read_sha256(pcrs)?;
        let attest =
            TpmsAttest::parse(&quote.attest).map_err(|source| VtpmError::Attest { source })?;
        if attest.qualified_signer != ak.qualified_name {
            return Err(VtpmError::QuoteMismatch {
                what: "qualifiedSigner",
            });
        }
        // compute_pcr_digest takes the values by PCR number.
        let mut listed = vec![Vec::new(); 24];
        for (&index, v) in pcrs.iter().zip(&values) {
            if let Some(slot) = listed.get_mut(index as usize) {
                *slot = v.to_vec();
            }
        }
        let digest = attest
            .compute_pcr_digest(&listed)
            .map_err(|source| VtpmError::Attest { source })?;
        if digest[..] != attest.pcr_digest[..] {
            continue;
        }
        let key = client.certified_ephemeral_key(VTPM_AK_HANDLE, pcrs, &values)?;
        return Ok(TpmInfo {
            aik_cert,
            aik_pub: tpm2b(&ak.public_area)?,
            pcr_quote: quote.attest,
            pcr_signature: quote.signature,
            enc_key_pub: tpm2b(&key.public_area)?,
            enc_key_certify_info: key.certify_info,
            enc_key_certify_info_signature: key.certify_signature,
            pcrs: pcrs
                .iter()
                .zip(&values)
                .map(|(&index, v)| Pcr {
                    index,
                    digest: v.to_vec(),
                })
                .collect(),
        });
    }
    Err(VtpmError::PcrsChanged {
        attempts: QUOTE_ATTEMPTS,
    })
}

/// The OS fields from os-release text (CGA `GetOSInfo`): `NAME`, and `VERSION_ID` split into
/// major and minor (`1.0` when missing or not numeric, as CGA defaults).
pub fn os_info_from(os_release: &str) -> OsInfo {
    let value = |key: &str| {
        os_release.lines().find_map(|line| {
            let (k, v) = line.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
        })
    };
    let version = value("VERSION_ID").unwrap_or_default();
    let mut parts = version.split('.');
    let major = parts.next().and_then(|p| p.parse().ok());
    let minor = parts.next().map_or(Some(0), |p| p.parse().ok());
    let (version_major, version_minor) = match (major, minor) {
        (Some(a), Some(b)) => (a, b),
        _ => (1, 0),
    };
    OsInfo {
        os_type: "Linux".to_owned(),
        distro: value("NAME").unwrap_or_else(|| "Linux".to_owned()),
        version_major,
        version_minor,
        build: OS_BUILD_LINUX.to_owned(),
    }
}

/// The OS fields of this machine (`/etc/os-release`, else `/usr/lib/os-release`).
pub fn os_info() -> OsInfo {
    for path in ["/etc/os-release", "/usr/lib/os-release"] {
        if let Ok(Some(bytes)) = crate::env::read_bounded(Path::new(path), MAX_OS_RELEASE) {
            return os_info_from(&String::from_utf8_lossy(&bytes));
        }
    }
    os_info_from("")
}

fn answer_error(reason: impl Into<String>) -> MessageError {
    MessageError {
        verifier: Verifier::Maa,
        what: "AzureGuest answer",
        reason: reason.into(),
    }
}

/// Decrypts the JWT of `token` with `inner_key` (what `TPM2_RSA_Decrypt` gave for
/// `EncryptedInnerKey`): AES-GCM with a 96-bit IV, the tag in `AuthenticationData`, and the
/// additional data [`TRANSPORT_KEY_AAD`]. AES-128 and AES-256 (ring has no AES-192; MAA is not
/// known to use it). A tag that does not verify means the answer was not made for this key.
pub fn decrypt_token(token: &EncryptedToken, inner_key: &[u8]) -> Result<String, MessageError> {
    let algorithm = match inner_key.len() {
        16 => &AES_128_GCM,
        32 => &AES_256_GCM,
        n => {
            return Err(answer_error(format!(
                "the inner key is {n} bytes, not an AES-128 or AES-256 key"
            )));
        }
    };
    if usize::try_from(token.key_size_bits).ok() != Some(inner_key.len() * 8) {
        return Err(answer_error(format!(
            "KeySizeInBits is {} but the inner key is {} bits",
            token.key_size_bits,
            inner_key.len() * 8
        )));
    }
    let nonce = Nonce::try_assume_unique_for_key(&token.iv).map_err(|_| {
        answer_error(format!(
            "the IV is {} bytes; only 12-byte GCM IVs are supported",
            token.iv.len()
        ))
    })?;
    let key = UnboundKey::new(algorithm, inner_key)
        .map(LessSafeKey::new)
        .map_err(|_| answer_error("the inner key is not an AES key"))?;
    let mut sealed = token.jwt.clone();
    sealed.extend_from_slice(&token.authentication_data);
    let plain = key
        .open_in_place(nonce, Aad::from(TRANSPORT_KEY_AAD), &mut sealed)
        .map_err(|_| {
            answer_error(
                "the JWT does not decrypt: AES-GCM authentication failed (not encrypted to this \
                 guest's ephemeral key, or altered)",
            )
        })?;
    String::from_utf8(plain.to_vec()).map_err(|_| answer_error("the decrypted JWT is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

    use super::*;

    fn seal(key: &[u8; 32], iv: [u8; 12], plain: &[u8]) -> EncryptedToken {
        let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap());
        let mut data = plain.to_vec();
        let tag = k
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(TRANSPORT_KEY_AAD),
                &mut data,
            )
            .unwrap();
        EncryptedToken {
            encrypted_inner_key: Vec::new(),
            key_size_bits: 256,
            iv: iv.to_vec(),
            authentication_data: tag.as_ref().to_vec(),
            jwt: data,
        }
    }

    #[test]
    fn tokens_decrypt_only_with_their_key_and_aad() {
        let token = seal(&[7; 32], [1; 12], b"a.b.c");
        assert_eq!(decrypt_token(&token, &[7; 32]).unwrap(), "a.b.c");
        let err = decrypt_token(&token, &[8; 32]).unwrap_err();
        assert!(err.reason.contains("authentication failed"), "{err}");
        let mut altered = token.clone();
        altered.jwt[0] ^= 1;
        assert!(decrypt_token(&altered, &[7; 32]).is_err());
        let mut short_iv = token.clone();
        short_iv.iv.pop();
        assert!(decrypt_token(&short_iv, &[7; 32]).is_err());
        assert!(decrypt_token(&token, &[7; 24]).is_err());
        let mut size = token;
        size.key_size_bits = 128;
        assert!(decrypt_token(&size, &[7; 32]).is_err());
    }

    #[test]
    fn os_release_fields() {
        let os = os_info_from("NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\n");
        assert_eq!(
            (os.distro.as_str(), os.version_major, os.version_minor),
            ("Ubuntu", 22, 4)
        );
        let os = os_info_from("NAME=Debian GNU/Linux\nVERSION_ID=\"12\"\n");
        assert_eq!((os.version_major, os.version_minor), (12, 0));
        let os = os_info_from("");
        assert_eq!((os.distro.as_str(), os.version_major), ("Linux", 1));
        assert_eq!(os.build, "NotApplication");
    }
}
