// SPDX-License-Identifier: Apache-2.0
//! The session key of a KBS exchange and the JWE a resource comes back in: an ephemeral EC P-256
//! key made for one `attest` run (its public half is bound into REPORT_DATA), and
//! `ECDH-ES+A256KW` / `A256GCM` decryption (RFC 7518 §4.6 and §5.3) of what the KBS encrypted to
//! it. The private key never leaves memory and is consumed by the one decryption. [`encrypt_to`]
//! is the KBS's side, for emulators and tests.

use aes_kw::{KeyInit, KwAes256};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::agreement::{ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey, agree_ephemeral};
use ring::rand::{SecureRandom, SystemRandom};
use thimble_evidence::attest::kbs::{self, Jwe, TeePubKey};

/// Why a resource could not be decrypted (or, for an emulator, encrypted).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("resource JWE: {0}")]
pub struct JweError(pub String);

/// An ephemeral P-256 key pair for one KBS session.
pub struct SessionKey {
    private: EphemeralPrivateKey,
    public: TeePubKey,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl SessionKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<SessionKey, JweError> {
        let rng = SystemRandom::new();
        let private = EphemeralPrivateKey::generate(&ECDH_P256, &rng)
            .map_err(|_| JweError("no P-256 key could be generated".to_owned()))?;
        let point = private
            .compute_public_key()
            .map_err(|_| JweError("the P-256 public key could not be computed".to_owned()))?;
        let public = TeePubKey::from_uncompressed(point.as_ref())
            .ok_or_else(|| JweError("the P-256 public key is not uncompressed".to_owned()))?;
        Ok(SessionKey { private, public })
    }

    /// The public half, sent as `tee-pubkey`.
    pub fn public(&self) -> TeePubKey {
        self.public
    }

    /// Decrypts `jwe`, which the KBS encrypted to this key.
    pub fn decrypt(self, jwe: &Jwe) -> Result<Vec<u8>, JweError> {
        let peer = UnparsedPublicKey::new(&ECDH_P256, jwe.epk);
        let kek = agree_ephemeral(self.private, &peer, kbs::key_wrapping_key)
            .map_err(|_| JweError("the KBS's ephemeral key is not a P-256 point".to_owned()))?;
        let mut cek = [0u8; 32];
        KwAes256::new(&kek.into())
            .unwrap_key(&jwe.encrypted_key, &mut cek)
            .map_err(|_| {
                JweError("the content key does not unwrap: not encrypted to this session".into())
            })?;
        let key = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &cek).map_err(|_| JweError("bad content key".into()))?,
        );
        let nonce = Nonce::try_assume_unique_for_key(&jwe.iv)
            .map_err(|_| JweError("the iv is not 12 bytes".into()))?;
        let mut in_out = jwe.ciphertext.clone();
        in_out.extend_from_slice(&jwe.tag);
        let plain = key
            .open_in_place(nonce, Aad::from(jwe.aad()), &mut in_out)
            .map_err(|_| JweError("the ciphertext does not authenticate".into()))?;
        Ok(plain.to_vec())
    }
}

/// Encrypts `plaintext` to `key` as a KBS does, returning the JWE's JSON.
pub fn encrypt_to(key: &TeePubKey, plaintext: &[u8]) -> Result<Vec<u8>, JweError> {
    let rng = SystemRandom::new();
    let fail = |what: &str| JweError(format!("{what} failed"));
    let ephemeral =
        EphemeralPrivateKey::generate(&ECDH_P256, &rng).map_err(|_| fail("key generation"))?;
    let epk_point = ephemeral
        .compute_public_key()
        .map_err(|_| fail("public key"))?;
    let epk = TeePubKey::from_uncompressed(epk_point.as_ref()).ok_or_else(|| fail("epk"))?;
    let peer = UnparsedPublicKey::new(&ECDH_P256, key.uncompressed());
    let kek = agree_ephemeral(ephemeral, &peer, kbs::key_wrapping_key)
        .map_err(|_| fail("key agreement"))?;
    let mut cek = [0u8; 32];
    rng.fill(&mut cek).map_err(|_| fail("random"))?;
    let mut iv = [0u8; 12];
    rng.fill(&mut iv).map_err(|_| fail("random"))?;
    let mut wrapped = [0u8; 40];
    KwAes256::new(&kek.into())
        .wrap_key(&cek, &mut wrapped)
        .map_err(|_| fail("key wrap"))?;
    let protected = kbs::protected_header(&epk);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &cek).map_err(|_| fail("cek"))?);
    let mut in_out = plaintext.to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(protected.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| fail("encryption"))?;
    Ok(kbs::jwe_json(
        &protected,
        &wrapped,
        &iv,
        &in_out,
        tag.as_ref(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_decrypts_with_its_session_key_only() {
        let key = SessionKey::generate().unwrap();
        let body = encrypt_to(&key.public(), b"disk key").unwrap();
        let jwe = kbs::parse_jwe(&body).unwrap();
        assert_eq!(key.decrypt(&jwe).unwrap(), b"disk key");

        let other = SessionKey::generate().unwrap();
        assert!(other.decrypt(&jwe).is_err());

        let key = SessionKey::generate().unwrap();
        let body = encrypt_to(&key.public(), b"disk key").unwrap();
        let mut jwe = kbs::parse_jwe(&body).unwrap();
        jwe.ciphertext[0] ^= 1;
        let e = key.decrypt(&jwe).unwrap_err();
        assert!(e.to_string().contains("authenticate"), "{e}");
    }

    #[test]
    fn aes_kw_matches_rfc_3394_section_4_6() {
        // RFC 3394 §4.6: 256 bits of key data with a 256-bit KEK.
        let kek = hex::decode("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
            .unwrap();
        let data = hex::decode("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
            .unwrap();
        let expected = hex::decode(
            "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21",
        )
        .unwrap();
        let kek: [u8; 32] = kek.try_into().unwrap();
        let mut out = [0u8; 40];
        KwAes256::new(&kek.into())
            .wrap_key(&data, &mut out)
            .unwrap();
        assert_eq!(out.to_vec(), expected);
    }
}
