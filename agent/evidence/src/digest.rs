// SPDX-License-Identifier: Apache-2.0
//! SHA-256, SHA-384 and SHA-512 for the whole project, one-shot and incremental, over ring's
//! implementation. ring is already in every build (the signature checks and TLS use it), and its
//! assembly is faster than a second SHA-2 crate's code; one implementation also keeps the static
//! binary smaller (docs/performance.md). The names follow the `sha2` crate's (`Sha256::digest`,
//! `new`, `update`, `finalize`) and every result is a plain byte array.

use ring::digest::{Algorithm, Context, SHA256, SHA384, SHA512};

macro_rules! hash {
    ($name:ident, $alg:expr, $len:literal, $title:literal) => {
        #[doc = concat!($title, ": `", stringify!($name), "::digest(data)` at once, or `new`, `update` and `finalize` over parts.")]
        #[derive(Clone)]
        pub struct $name(Context);

        impl $name {
            /// The length of a digest in bytes.
            pub const LEN: usize = $len;
            const ALG: &'static Algorithm = $alg;

            /// The digest of `data`.
            pub fn digest(data: impl AsRef<[u8]>) -> [u8; $len] {
                to_array(ring::digest::digest(Self::ALG, data.as_ref()).as_ref())
            }

            /// An empty hash state.
            pub fn new() -> Self {
                Self(Context::new(Self::ALG))
            }

            /// Adds `data` after what was added before.
            pub fn update(&mut self, data: impl AsRef<[u8]>) {
                self.0.update(data.as_ref());
            }

            /// The digest of everything added.
            pub fn finalize(self) -> [u8; $len] {
                to_array(self.0.finish().as_ref())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }
    };
}

hash!(Sha256, &SHA256, 32, "SHA-256");
hash!(Sha384, &SHA384, 48, "SHA-384");
hash!(Sha512, &SHA512, 64, "SHA-512");

/// ring's output for an algorithm has that algorithm's length, so the copy cannot fail.
fn to_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // FIPS 180-2 appendix examples: "abc" and the 448-bit two-block message.
    const TWO_BLOCKS: &[u8] = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

    #[test]
    fn known_answers() {
        assert_eq!(
            hex::encode(Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex::encode(Sha256::digest(TWO_BLOCKS)),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            hex::encode(Sha384::digest(b"abc")),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
             8086072ba1e7cc2358baeca134c825a7"
        );
        assert_eq!(
            hex::encode(Sha512::digest(b"abc")),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        assert_eq!(
            hex::encode(Sha256::digest(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parts_hash_like_the_whole() {
        for split in [0, 1, 3, 55, 56] {
            let (a, b) = TWO_BLOCKS.split_at(split);
            let mut h = Sha256::new();
            h.update(a);
            h.update(b);
            assert_eq!(h.finalize(), Sha256::digest(TWO_BLOCKS), "split at {split}");
            let mut h = Sha384::default();
            h.update(a);
            h.update(b);
            assert_eq!(h.finalize(), Sha384::digest(TWO_BLOCKS), "split at {split}");
            let mut h = Sha512::new();
            h.update(a);
            h.update(b);
            assert_eq!(h.finalize(), Sha512::digest(TWO_BLOCKS), "split at {split}");
        }
        assert_eq!(Sha512::LEN, Sha512::digest([]).len());
    }
}
