// SPDX-License-Identifier: Apache-2.0
//! The TPM 2.0 wire primitives every structure is built from (TPM 2.0 Library Part 1,
//! "Command/Response Structure"; Part 2 §4 and §10.4): big-endian integers, `TPM2B` sized
//! buffers, counted lists, and the [`Marshal`] trait that pairs each structure's marshalling with
//! its unmarshalling. [`TpmReader`] is the one bounds-checked cursor for TPM bytes in thimble: the
//! vTPM client's responses, the fake vTPM's commands and the quote's `TPMS_ATTEST` all go through
//! it, so that a length a hostile host chose is checked in one place.
//!
//! Errors are values, never panics: [`Malformed`] says why bytes could not be unmarshalled and
//! where, [`MarshalError`] why a value has no TPM encoding. No I/O.

use thiserror::Error;

/// Why TPM bytes could not be unmarshalled.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Malformed {
    /// A response shorter than its header.
    #[error("{len} bytes is shorter than the 10-byte response header")]
    ShortHeader {
        /// Bytes received.
        len: usize,
    },
    /// A response whose `responseSize` is not the number of bytes received.
    #[error("the header declares {declared} bytes but {actual} arrived")]
    SizeMismatch {
        /// `responseSize`.
        declared: u32,
        /// Bytes received.
        actual: usize,
    },
    /// A field runs past the end of the bytes.
    #[error("{what} needs {needed} bytes at offset {offset} but {available} remain")]
    Truncated {
        /// The field.
        what: &'static str,
        /// Where it starts, from the start of the reader's bytes.
        offset: usize,
        /// Its size.
        needed: usize,
        /// Bytes left at `offset`.
        available: usize,
    },
    /// Bytes left after a structure that must fill its input.
    #[error("{len} unexpected bytes after {what}")]
    Trailing {
        /// The structure.
        what: &'static str,
        /// How many bytes are left.
        len: usize,
    },
    /// A list count above the bound the reader applies.
    #[error("{what} count {count} is above {max}")]
    Count {
        /// The list.
        what: &'static str,
        /// As read.
        count: u32,
        /// The bound.
        max: u32,
    },
    /// A field that must hold one value holds another (a tag, an algorithm, a selector).
    #[error("{what} is {found:#x}, expected {expected:#x}")]
    Unexpected {
        /// The field.
        what: &'static str,
        /// As read.
        found: u64,
        /// What it must be.
        expected: u64,
    },
    /// A `TPM2B` that carries a structure (`TPM2B_NV_PUBLIC`, …) whose contents do not unmarshal
    /// to exactly one. Kept apart from a truncated size or buffer because a TPM answers the two
    /// differently (the reference implementation's `TPM_RC_SIZE` on the parameter).
    #[error("{what} does not hold a well-formed structure")]
    Inner {
        /// The `TPM2B`.
        what: &'static str,
        /// Why its contents do not unmarshal.
        #[source]
        reason: Box<Malformed>,
    },
}

/// Why a value cannot be marshalled: it does not fit the field the specification gives it, or
/// the reader on the other side would refuse it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MarshalError {
    /// A buffer longer than its size field (or a TPM's limit) allows.
    #[error("{what} is {len} bytes, above the {max}-byte limit")]
    TooLarge {
        /// The buffer.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A list longer than the reader on the other side accepts.
    #[error("{what} has {count} entries, more than the {max} a TPM accepts")]
    TooMany {
        /// The list.
        what: &'static str,
        /// Its length.
        count: usize,
        /// The bound.
        max: u32,
    },
    /// A PCR index of 24 or more.
    #[error("PCR {index} does not exist (PCRs 0-23)")]
    PcrIndex {
        /// The index.
        index: u32,
    },
}

/// A TPM 2.0 structure with both directions of its encoding. `unmarshal(marshal(v)) == v` for
/// every value `marshal` accepts, which `tpm2/tests.rs` checks for each implementation.
pub trait Marshal: Sized {
    /// The structure's name in the specification, for error messages.
    const NAME: &'static str;

    /// Appends the structure to `w`.
    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError>;

    /// Reads one structure from `r`, leaving whatever follows it.
    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed>;

    /// The structure marshalled on its own.
    fn to_bytes(&self) -> Result<Vec<u8>, MarshalError> {
        let mut w = TpmWriter::new();
        self.marshal(&mut w)?;
        Ok(w.into_bytes())
    }

    /// Unmarshals all of `bytes` as one structure; trailing bytes are an error.
    fn parse(bytes: &[u8]) -> Result<Self, Malformed> {
        let mut r = TpmReader::new(bytes);
        let value = Self::unmarshal(&mut r)?;
        r.finish(Self::NAME)?;
        Ok(value)
    }
}

/// Big-endian marshalling (Part 1 "Command/Response Structure": all integers big-endian; a
/// `TPM2B` is a `u16` size followed by that many bytes).
#[derive(Debug, Default, Clone)]
pub struct TpmWriter {
    buf: Vec<u8>,
}

impl TpmWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends bytes as they are, without a size.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// A `TPM2B_*`; fails if `b` is longer than a `u16` can say.
    pub fn tpm2b(&mut self, what: &'static str, b: &[u8]) -> Result<&mut Self, MarshalError> {
        let len = u16::try_from(b.len()).map_err(|_| MarshalError::TooLarge {
            what,
            len: b.len(),
            max: usize::from(u16::MAX),
        })?;
        self.u16(len);
        self.buf.extend_from_slice(b);
        Ok(self)
    }

    /// The `u32` count of a `TPML_*` list, refused above `max`, the bound the reader applies.
    pub fn count(
        &mut self,
        what: &'static str,
        count: usize,
        max: u32,
    ) -> Result<&mut Self, MarshalError> {
        match u32::try_from(count) {
            Ok(n) if n <= max => Ok(self.u32(n)),
            _ => Err(MarshalError::TooMany { what, count, max }),
        }
    }

    /// Appends a structure.
    pub fn marshal<T: Marshal>(&mut self, value: &T) -> Result<&mut Self, MarshalError> {
        value.marshal(self)?;
        Ok(self)
    }

    /// A `TPM2B` that carries a structure (`TPM2B_NV_PUBLIC`, `TPM2B_PUBLIC`, …).
    pub fn sized<T: Marshal>(
        &mut self,
        what: &'static str,
        value: &T,
    ) -> Result<&mut Self, MarshalError> {
        self.tpm2b(what, &value.to_bytes()?)
    }

    /// A `TPML_PCR_SELECTION` with one `TPMS_PCR_SELECTION` for the SHA-256 bank (empty `pcrs`
    /// selects nothing). PCR indices must be below 24.
    pub fn pcr_selection_sha256(&mut self, pcrs: &[u32]) -> Result<&mut Self, MarshalError> {
        self.marshal(&super::TpmlPcrSelection::sha256(pcrs)?)
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// A bounds-checked big-endian cursor over TPM bytes: a response, a command (in the fake), or a
/// structure such as `TPMS_ATTEST`. Each read names the field it reads, for [`Malformed`].
#[derive(Debug, Clone)]
pub struct TpmReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> TpmReader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes read so far (the offset of the next read).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes; [`Malformed::Truncated`] (and nothing read) when fewer remain.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(Malformed::Truncated {
                what,
                offset: self.pos,
                needed: n,
                available: self.remaining(),
            }),
        }
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Malformed> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    /// Reads a byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, Malformed> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, Malformed> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, Malformed> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A `TPM2B_*`: its bytes without the size.
    pub fn tpm2b(&mut self, what: &'static str) -> Result<&'a [u8], Malformed> {
        let n = self.u16(what)?;
        self.take(usize::from(n), what)
    }

    /// The `u32` count of a `TPML_*` list. Counts come from the other side, so they are bounded
    /// before anything is allocated for them.
    pub fn count(&mut self, what: &'static str, max: u32) -> Result<u32, Malformed> {
        let count = self.u32(what)?;
        if count > max {
            return Err(Malformed::Count { what, count, max });
        }
        Ok(count)
    }

    /// Reads one structure.
    pub fn unmarshal<T: Marshal>(&mut self) -> Result<T, Malformed> {
        T::unmarshal(self)
    }

    /// A `TPM2B` that carries a structure: the size, then exactly one `T` filling it.
    pub fn sized<T: Marshal>(&mut self, what: &'static str) -> Result<T, Malformed> {
        let inner = self.tpm2b(what)?;
        T::parse(inner).map_err(|reason| Malformed::Inner {
            what,
            reason: Box::new(reason),
        })
    }

    /// Fails if bytes are left.
    pub fn finish(&self, what: &'static str) -> Result<(), Malformed> {
        match self.remaining() {
            0 => Ok(()),
            len => Err(Malformed::Trailing { what, len }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_big_endian_and_reads_are_bounded() {
        let mut w = TpmWriter::new();
        w.u8(1)
            .u16(0x0203)
            .u32(0x0405_0607)
            .u64(0x0809_0a0b_0c0d_0e0f);
        w.tpm2b("b", b"xy").unwrap();
        assert_eq!(
            hex::encode(w.as_bytes()),
            "0102030405060708090a0b0c0d0e0f00027879"
        );
        let bytes = w.into_bytes();
        let mut r = TpmReader::new(&bytes);
        assert_eq!(r.u8("a").unwrap(), 1);
        assert_eq!(r.u16("b").unwrap(), 0x0203);
        assert_eq!(r.u32("c").unwrap(), 0x0405_0607);
        assert_eq!(r.u64("d").unwrap(), 0x0809_0a0b_0c0d_0e0f);
        assert_eq!(r.tpm2b("e").unwrap(), b"xy");
        r.finish("all").unwrap();
        assert_eq!(
            r.u8("past the end"),
            Err(Malformed::Truncated {
                what: "past the end",
                offset: 19,
                needed: 1,
                available: 0
            })
        );
        // A size that points past the end fails without reading anything.
        let mut r = TpmReader::new(&[0xff, 0xff, 1]);
        assert!(matches!(
            r.tpm2b("big"),
            Err(Malformed::Truncated {
                needed: 0xffff,
                available: 1,
                ..
            })
        ));
        assert_eq!(
            TpmReader::new(&[0, 0]).finish("x"),
            Err(Malformed::Trailing { what: "x", len: 2 })
        );
        assert_eq!(
            TpmReader::new(&[0, 0, 0, 9]).count("list", 8),
            Err(Malformed::Count {
                what: "list",
                count: 9,
                max: 8
            })
        );
    }

    #[test]
    fn oversized_fields_are_refused_when_marshalling() {
        let mut w = TpmWriter::new();
        assert_eq!(
            w.tpm2b("big", &vec![0; 0x1_0000]).unwrap_err(),
            MarshalError::TooLarge {
                what: "big",
                len: 0x1_0000,
                max: 0xffff
            }
        );
        assert_eq!(
            w.count("list", 9, 8).unwrap_err(),
            MarshalError::TooMany {
                what: "list",
                count: 9,
                max: 8
            }
        );
        assert!(w.is_empty());
    }
}
