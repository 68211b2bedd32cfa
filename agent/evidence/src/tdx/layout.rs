// SPDX-License-Identifier: Apache-2.0
//! The fixed-size TDX structures, each described once: the crate's `layout!` macro takes a table
//! of named fields at hex offsets and makes from it the struct, its decoder and its encoder, so
//! that what thimble parses and what its simulator builds cannot drift apart. Bytes the table
//! does not name are reserved: the decoder skips them and the encoder writes zeros.
//!
//! The table is checked when the crate is compiled (fields in order, not overlapping, inside the
//! structure), so the decoders and encoders have no failure path and cannot panic. No I/O.

use std::ops::Range;

/// Where a named field sits in a structure, from the structure's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpan {
    /// The field's name as the table spells it.
    pub name: &'static str,
    /// Offset of its first byte.
    pub offset: usize,
    /// Its size in bytes.
    pub len: usize,
}

impl FieldSpan {
    /// The offset just past the last byte.
    pub const fn end(&self) -> usize {
        self.offset + self.len
    }

    /// The bytes of the field.
    pub const fn range(&self) -> Range<usize> {
        self.offset..self.end()
    }
}

/// A value stored in a fixed number of bytes of a layout, integers little-endian.
pub(crate) trait FieldValue: Sized {
    const LEN: usize;

    /// The value of `bytes`, which the layout makes exactly `LEN` long.
    fn read(bytes: &[u8]) -> Self;

    /// The value when a short input does not reach the field: `None` means the field is
    /// required and the input is truncated.
    fn absent() -> Option<Self> {
        None
    }

    /// Writes the value into `out`, which the layout makes exactly `LEN` long.
    fn write(&self, out: &mut [u8]);
}

/// The fixed-size structures the TDX layouts are made of.
pub(crate) trait Layout: Sized {
    /// Name of the structure, for errors about a cut that falls in its reserved bytes.
    const NAME: &'static str;
    /// Every named field, in order.
    const FIELDS: &'static [FieldSpan];

    /// Decodes as many bytes as there are: a required field `bytes` does not cover is an error
    /// (its span); an optional one is `None`. Bytes past the structure are not looked at.
    fn decode_prefix(bytes: &[u8]) -> Result<Self, FieldSpan>;
}

/// Copies as many bytes as both sides have. The layout makes both sides the same length; `zip`
/// instead of `copy_from_slice` keeps a panic out of the code even so.
pub(crate) fn copy(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

impl<const N: usize> FieldValue for [u8; N] {
    const LEN: usize = N;

    fn read(bytes: &[u8]) -> Self {
        let mut value = [0u8; N];
        copy(&mut value, bytes);
        value
    }

    fn write(&self, out: &mut [u8]) {
        copy(out, self);
    }
}

/// Arrays of byte strings (the four RTMRs), one after the other.
impl<const N: usize, const K: usize> FieldValue for [[u8; N]; K] {
    const LEN: usize = N * K;

    fn read(bytes: &[u8]) -> Self {
        let mut value = [[0u8; N]; K];
        for (item, chunk) in value.iter_mut().zip(bytes.chunks(N)) {
            copy(item, chunk);
        }
        value
    }

    fn write(&self, out: &mut [u8]) {
        for (item, chunk) in self.iter().zip(out.chunks_mut(N)) {
            copy(chunk, item);
        }
    }
}

impl FieldValue for u16 {
    const LEN: usize = 2;

    fn read(bytes: &[u8]) -> Self {
        u16::from_le_bytes(<[u8; 2]>::read(bytes))
    }

    fn write(&self, out: &mut [u8]) {
        copy(out, &self.to_le_bytes());
    }
}

impl FieldValue for u32 {
    const LEN: usize = 4;

    fn read(bytes: &[u8]) -> Self {
        u32::from_le_bytes(<[u8; 4]>::read(bytes))
    }

    fn write(&self, out: &mut [u8]) {
        copy(out, &self.to_le_bytes());
    }
}

/// A field only some versions of a structure have (the TDX 1.5 body's tail): absent from a
/// shorter input, and zero in the encoding when `None`.
impl<T: FieldValue> FieldValue for Option<T> {
    const LEN: usize = T::LEN;

    fn read(bytes: &[u8]) -> Self {
        Some(T::read(bytes))
    }

    fn absent() -> Option<Self> {
        Some(None)
    }

    fn write(&self, out: &mut [u8]) {
        if let Some(value) = self {
            value.write(out);
        }
    }
}

/// `len` bytes of `bytes` from `offset`, or none when `bytes` is too short. Every caller passes
/// a field of a table that [`check`] accepted against `bytes`' length, so for them it never is.
pub(crate) fn field_bytes(bytes: &[u8], offset: usize, len: usize) -> &[u8] {
    bytes.get(offset..offset + len).unwrap_or_default()
}

/// The mutable counterpart of [`field_bytes`].
pub(crate) fn field_bytes_mut(out: &mut [u8], offset: usize, len: usize) -> &mut [u8] {
    out.get_mut(offset..offset + len).unwrap_or_default()
}

/// The field of `fields` named `name`.
pub(crate) const fn find(fields: &[FieldSpan], name: &str) -> Option<FieldSpan> {
    let mut i = 0;
    while i < fields.len() {
        if str_eq(fields[i].name, name) {
            return Some(fields[i]);
        }
        i += 1;
    }
    None
}

/// `==` on strings, which the standard library does not offer in a `const fn` at the MSRV.
const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Fails the build unless `fields` are in order, do not overlap and end within `len`.
pub(crate) const fn check(fields: &[FieldSpan], len: usize) {
    let mut i = 0;
    let mut end = 0;
    while i < fields.len() {
        assert!(
            fields[i].offset >= end,
            "layout fields overlap or are out of order"
        );
        end = fields[i].end();
        assert!(
            end <= len,
            "layout field runs past the end of its structure"
        );
        i += 1;
    }
}

/// Declares a fixed-size structure from its table: `[offset] name: type` per field, offsets in
/// hex as the specification writes them (`[TD_INFO + 0x010]` for a structure nested at
/// `TD_INFO`). Field types are byte arrays,
/// arrays of them, `u16`/`u32` (little-endian), or `Option` of those for a tail only some
/// versions have.
///
/// Besides the struct, it makes `LEN`, `FIELDS`, `field(name)`, `decode` (the whole structure,
/// never fails), `decode_prefix` (a possibly short input, naming the first field that is cut)
/// and `encode` (reserved bytes and absent optional fields zero).
macro_rules! layout {
    (
        $(#[$meta:meta])*
        pub struct $name:ident[$len:expr] {
            $( $(#[$field_meta:meta])* [$offset:expr] $field:ident: $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl $name {
            /// Size of the structure in bytes, reserved bytes included.
            pub const LEN: usize = $len;

            /// Every named field, in order; the bytes between them are reserved.
            pub const FIELDS: &'static [$crate::tdx::layout::FieldSpan] = &[$(
                $crate::tdx::layout::FieldSpan {
                    name: stringify!($field),
                    offset: $offset,
                    len: <$ty as $crate::tdx::layout::FieldValue>::LEN,
                },
            )*];

            /// Where the field `name` sits.
            pub const fn field(name: &str) -> Option<$crate::tdx::layout::FieldSpan> {
                $crate::tdx::layout::find(Self::FIELDS, name)
            }

            /// Decodes every field. Reserved bytes are not looked at.
            pub fn decode(bytes: &[u8; $len]) -> Self {
                Self {$(
                    $field: <$ty as $crate::tdx::layout::FieldValue>::read(
                        $crate::tdx::layout::field_bytes(
                            bytes,
                            $offset,
                            <$ty as $crate::tdx::layout::FieldValue>::LEN,
                        ),
                    ),
                )*}
            }

            /// Decodes a possibly short input: the first required field that `bytes` does not
            /// cover is the error; an optional field it does not cover is `None`. Bytes past
            /// the structure are not looked at.
            pub fn decode_prefix(
                bytes: &[u8],
            ) -> Result<Self, $crate::tdx::layout::FieldSpan> {
                Ok(Self {$(
                    $field: match bytes.get(
                        $offset..$offset + <$ty as $crate::tdx::layout::FieldValue>::LEN,
                    ) {
                        Some(b) => <$ty as $crate::tdx::layout::FieldValue>::read(b),
                        None => <$ty as $crate::tdx::layout::FieldValue>::absent().ok_or(
                            $crate::tdx::layout::FieldSpan {
                                name: stringify!($field),
                                offset: $offset,
                                len: <$ty as $crate::tdx::layout::FieldValue>::LEN,
                            },
                        )?,
                    },
                )*})
            }

            /// The structure's bytes: every field at its offset, reserved bytes and absent
            /// optional fields zero.
            pub fn encode(&self) -> [u8; $len] {
                let mut out = [0u8; $len];
                $(
                    $crate::tdx::layout::FieldValue::write(
                        &self.$field,
                        $crate::tdx::layout::field_bytes_mut(
                            &mut out,
                            $offset,
                            <$ty as $crate::tdx::layout::FieldValue>::LEN,
                        ),
                    );
                )*
                out
            }
        }

        impl $crate::tdx::layout::Layout for $name {
            const NAME: &'static str = stringify!($name);
            const FIELDS: &'static [$crate::tdx::layout::FieldSpan] = $name::FIELDS;

            fn decode_prefix(bytes: &[u8]) -> Result<Self, $crate::tdx::layout::FieldSpan> {
                $name::decode_prefix(bytes)
            }
        }

        const _: () = $crate::tdx::layout::check($name::FIELDS, $len);
    };
}

pub(crate) use layout;

#[cfg(test)]
mod tests {
    use super::*;

    layout! {
        /// A structure with a reserved gap, an integer, an array of arrays and an optional tail.
        pub struct Sample[16] {
            [0x0] id: u16,
            [0x4] pair: [[u8; 2]; 2],
            [0xa] tail: Option<[u8; 4]>,
        }
    }

    #[test]
    fn decode_encode_and_short_inputs() {
        let bytes: [u8; 16] = [1, 2, 9, 9, 3, 4, 5, 6, 9, 9, 7, 8, 9, 10, 9, 9];
        let s = Sample::decode(&bytes);
        assert_eq!(
            s,
            Sample {
                id: 0x0201,
                pair: [[3, 4], [5, 6]],
                tail: Some([7, 8, 9, 10]),
            }
        );
        // Reserved bytes come back as zeros.
        assert_eq!(
            s.encode(),
            [1, 2, 0, 0, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 0, 0]
        );
        assert_eq!(Sample::decode_prefix(&bytes[..14]), Ok(s));
        let short = Sample::decode_prefix(&bytes[..10]).unwrap();
        assert_eq!(short.tail, None);
        assert_eq!(short.encode()[10..], [0; 6]);
        assert_eq!(
            Sample::decode_prefix(&bytes[..7]),
            Err(FieldSpan {
                name: "pair",
                offset: 4,
                len: 4,
            })
        );
        assert_eq!(Sample::field("tail").map(|f| f.range()), Some(10..14));
        assert_eq!(Sample::LEN, 16);
    }

    #[test]
    #[should_panic(expected = "overlap")]
    fn overlapping_fields_are_refused() {
        let fields = [
            FieldSpan {
                name: "a",
                offset: 0,
                len: 4,
            },
            FieldSpan {
                name: "b",
                offset: 2,
                len: 4,
            },
        ];
        check(&fields, 8);
    }

    #[test]
    #[should_panic(expected = "past the end")]
    fn fields_past_the_end_are_refused() {
        let fields = [FieldSpan {
            name: "a",
            offset: 6,
            len: 4,
        }];
        check(&fields, 8);
    }
}
