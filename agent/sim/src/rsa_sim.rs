// SPDX-License-Identifier: Apache-2.0
//! RSA encryption and decryption for the simulated Azure guest attestation flow, the two RSA
//! operations ring does not offer: [`rsaes_encrypt`] is what the MAA emulator does to wrap the
//! answer's AES key for the guest's ephemeral TPM key, and [`SimNullKey`] is the private half of
//! that key inside the fake vTPM, which `TPM2_RSA_Decrypt` uses.
//!
//! Both use the `rsa` crate (a dependency of thimble-sim only; see docs/dependencies.md) with
//! RSAES-PKCS1-v1_5, the scheme Microsoft's client asks the TPM for ("MAA uses RSA-ES", CGA
//! `AttestationClientImpl.cpp`). Randomness comes from ring's `SystemRandom`, as everywhere else
//! in thimble. The keys are committed test keys (`keys/azure/null_decrypt_*.pk8`): they prove
//! nothing.

use std::fmt;
use std::sync::OnceLock;

use rand_core::{CryptoRng, RngCore};
use ring::rand::{SecureRandom, SystemRandom};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Encrypt, RsaPrivateKey, RsaPublicKey};

/// ring's system RNG behind the `rand_core` traits the `rsa` crate takes.
struct RingRng(SystemRandom);

impl RngCore for RingRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // The system RNG failing leaves nothing to simulate (ring's own signing makes the same
        // assumption in `SimAk::sign`).
        self.0
            .fill(dest)
            .expect("system random number generator available");
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0
            .fill(dest)
            .map_err(|_| rand_core::Error::from(std::num::NonZeroU32::MIN))
    }
}

impl CryptoRng for RingRng {}

/// Why an RSA operation of the simulation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimRsaError {
    /// The public key is not a usable RSA key (modulus too small or too large, bad exponent).
    #[error("not a usable RSA public key: {0}")]
    Key(String),
    /// Encryption or decryption failed (message too long, bad padding).
    #[error("RSA operation failed: {0}")]
    Operation(String),
}

/// RSAES-PKCS1-v1_5 encryption of `message` to the key with big-endian modulus `n` and exponent
/// `e`.
pub fn rsaes_encrypt(n: &[u8], e: &[u8], message: &[u8]) -> Result<Vec<u8>, SimRsaError> {
    let key = RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e))
        .map_err(|err| SimRsaError::Key(err.to_string()))?;
    key.encrypt(&mut RingRng(SystemRandom::new()), Pkcs1v15Encrypt, message)
        .map_err(|err| SimRsaError::Operation(err.to_string()))
}

/// The fake vTPM's keys in the null hierarchy. A real TPM derives a primary key from its null
/// seed and the template, so one template gives one key until the TPM resets (what the guest
/// flow relies on) and another template another key. The fake cannot derive RSA keys cheaply,
/// so it hands out these committed keys instead, one per distinct template in the order the
/// templates arrive, [`SimNullKey::POOL`] of them before it starts over.
pub struct SimNullKey {
    key: RsaPrivateKey,
}

impl fmt::Debug for SimNullKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimNullKey")
            .field("modulus_bits", &(self.key.size() * 8))
            .finish_non_exhaustive()
    }
}

impl SimNullKey {
    /// How many keys there are.
    pub const POOL: usize = 2;

    /// The first key (the one the first template gets).
    pub fn get() -> &'static SimNullKey {
        Self::nth(0)
    }

    /// Key `n` modulo [`SimNullKey::POOL`], loaded once.
    pub fn nth(n: usize) -> &'static SimNullKey {
        static KEYS: OnceLock<[SimNullKey; SimNullKey::POOL]> = OnceLock::new();
        let keys = KEYS.get_or_init(|| {
            // Committed fixtures that the tests load; they cannot be malformed at run time.
            let load = |der: &[u8]| SimNullKey {
                key: RsaPrivateKey::from_pkcs8_der(der)
                    .expect("the committed simulated null-hierarchy key loads"),
            };
            [
                load(include_bytes!("../keys/azure/null_decrypt_1.pk8")),
                load(include_bytes!("../keys/azure/null_decrypt_2.pk8")),
            ]
        });
        &keys[n % Self::POOL]
    }

    /// The modulus, big-endian, 256 bytes.
    pub fn modulus(&self) -> Vec<u8> {
        let n = self.key.n().to_bytes_be();
        let mut out = vec![0u8; self.key.size().saturating_sub(n.len())];
        out.extend_from_slice(&n);
        out
    }

    /// The public exponent, big-endian (65537).
    pub fn exponent(&self) -> Vec<u8> {
        self.key.e().to_bytes_be()
    }

    /// RSAES-PKCS1-v1_5 decryption, as `TPM2_RSA_Decrypt` with `TPM_ALG_RSAES` does.
    pub fn decrypt(&self, cipher_text: &[u8]) -> Result<Vec<u8>, SimRsaError> {
        self.key
            .decrypt(Pkcs1v15Encrypt, cipher_text)
            .map_err(|err| SimRsaError::Operation(err.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_to_the_null_key_round_trips() {
        assert_ne!(SimNullKey::nth(0).modulus(), SimNullKey::nth(1).modulus());
        let key = SimNullKey::get();
        assert_eq!(key.modulus().len(), 256);
        assert_eq!(key.exponent(), [1, 0, 1]);
        let c = rsaes_encrypt(&key.modulus(), &key.exponent(), b"inner key").unwrap();
        assert_eq!(c.len(), 256);
        assert_eq!(key.decrypt(&c).unwrap(), b"inner key");
        let mut bad = c.clone();
        bad[10] ^= 1;
        assert!(key.decrypt(&bad).is_err());
        assert!(rsaes_encrypt(&[1, 2], &[3], b"x").is_err());
    }
}
