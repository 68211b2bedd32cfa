// SPDX-License-Identifier: Apache-2.0
//! The structures inside the event data of the event types a person asks about (PFP "Event
//! Data" structures, UEFI 2.10 for GUIDs and device paths): `UEFI_VARIABLE_DATA` (Secure Boot
//! variables), `UEFI_IMAGE_LOAD_EVENT` (boot applications) with its device path, and
//! `TCG_PCClientTaggedEvent` (the Linux EFI stub's initrd and load options). Integers are
//! little-endian; GUIDs are in UEFI's mixed-endian byte order. Facts and sources:
//! docs/formats.md §8.4.
//!
//! Event data is not covered by the register a log replays to, except where the event's digest
//! is the hash of that data; these decoders say what the data claims, and
//! [`super::claims`] records whether the digest vouches for it. Bounded, never panics, no I/O.

use std::fmt;

use serde::{Serialize, Serializer};
use thiserror::Error;

/// A GUID in the byte order UEFI stores it (`EFI_GUID`: a `u32`, two `u16`, then eight bytes,
/// the integers little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// `EFI_GLOBAL_VARIABLE` 8be4df61-93ca-11d2-aa0d-00e098032b8c: SecureBoot, PK, KEK, Boot####.
    pub const EFI_GLOBAL_VARIABLE: Guid = Guid([
        0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b,
        0x8c,
    ]);
    /// `EFI_IMAGE_SECURITY_DATABASE_GUID` d719b2cb-3d3a-4596-a3bc-dad00e67656f: db, dbx, dbt, dbr.
    pub const EFI_IMAGE_SECURITY_DATABASE: Guid = Guid([
        0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45, 0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65,
        0x6f,
    ]);
}

impl fmt::Display for Guid {
    /// The registry form, `8be4df61-93ca-11d2-aa0d-00e098032b8c`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9]
        )?;
        b[10..].iter().try_for_each(|x| write!(f, "{x:02x}"))
    }
}

impl Serialize for Guid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why event data does not decode as the structure its event type calls for.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A field runs past the end of the event data.
    #[error("{structure} is truncated at {field}")]
    Truncated {
        /// The structure.
        structure: &'static str,
        /// The field.
        field: &'static str,
    },
    /// Bytes follow the structure inside the event data.
    #[error("{structure} has {len} bytes after its last field")]
    Trailing {
        /// The structure.
        structure: &'static str,
        /// How many.
        len: usize,
    },
}

/// A bounded little-endian cursor over event data.
struct Cursor<'a> {
    bytes: &'a [u8],
    structure: &'static str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.bytes.len() {
            return Err(DecodeError::Truncated {
                structure: self.structure,
                field,
            });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let b = self.take(8, field)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, field)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A length read as `u64` and then taken, so a hostile length fails as truncation.
    fn take_u64_len(
        &mut self,
        n: u64,
        unit: usize,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        let n = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(unit))
            .ok_or(DecodeError::Truncated {
                structure: self.structure,
                field,
            })?;
        self.take(n, field)
    }

    fn finish(self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing {
                structure: self.structure,
                len: self.bytes.len(),
            })
        }
    }
}

/// UTF-16LE code units to text, stopping at the first NUL; unpaired surrogates become U+FFFD.
pub fn utf16_to_string(bytes: &[u8]) -> String {
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|u| *u != 0);
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// `UEFI_VARIABLE_DATA`: the data of `EV_EFI_VARIABLE_DRIVER_CONFIG`, `EV_EFI_VARIABLE_BOOT(2)`
/// and `EV_EFI_VARIABLE_AUTHORITY` events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UefiVariableData {
    /// `VariableName`: the vendor GUID of the variable.
    pub variable_name: Guid,
    /// `UnicodeName`, decoded.
    pub unicode_name: String,
    /// `VariableData`.
    pub variable_data: Vec<u8>,
}

impl UefiVariableData {
    /// Decodes all of `data`.
    pub fn parse(data: &[u8]) -> Result<UefiVariableData, DecodeError> {
        let mut c = Cursor {
            bytes: data,
            structure: "UEFI_VARIABLE_DATA",
        };
        let mut guid = [0; 16];
        guid.copy_from_slice(c.take(16, "VariableName")?);
        let name_len = c.u64("UnicodeNameLength")?;
        let data_len = c.u64("VariableDataLength")?;
        let name = c.take_u64_len(name_len, 2, "UnicodeName")?;
        let value = c.take_u64_len(data_len, 1, "VariableData")?;
        c.finish()?;
        Ok(UefiVariableData {
            variable_name: Guid(guid),
            unicode_name: utf16_to_string(name),
            variable_data: value.to_vec(),
        })
    }
}

/// `UEFI_IMAGE_LOAD_EVENT`: the data of `EV_EFI_BOOT_SERVICES_APPLICATION` (and driver) events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLoadEvent {
    /// `ImageLocationInMemory`.
    pub image_location_in_memory: u64,
    /// `ImageLengthInMemory`.
    pub image_length_in_memory: u64,
    /// `ImageLinkTimeAddress`.
    pub image_link_time_address: u64,
    /// `DevicePath`: the `EFI_DEVICE_PATH_PROTOCOL` nodes the image was loaded from.
    pub device_path: Vec<u8>,
    /// Bytes after `DevicePath` inside the event data. Real logs have them: shim and GRUB on
    /// RHEL 8 log 8 bytes more than the structure (docs/formats.md §8.4), so they are counted,
    /// not refused.
    pub trailing_len: usize,
}

impl ImageLoadEvent {
    /// Decodes all of `data`.
    pub fn parse(data: &[u8]) -> Result<ImageLoadEvent, DecodeError> {
        let mut c = Cursor {
            bytes: data,
            structure: "UEFI_IMAGE_LOAD_EVENT",
        };
        let image_location_in_memory = c.u64("ImageLocationInMemory")?;
        let image_length_in_memory = c.u64("ImageLengthInMemory")?;
        let image_link_time_address = c.u64("ImageLinkTimeAddress")?;
        let len = c.u64("LengthOfDevicePath")?;
        let device_path = c.take_u64_len(len, 1, "DevicePath")?.to_vec();
        Ok(ImageLoadEvent {
            image_location_in_memory,
            image_length_in_memory,
            image_link_time_address,
            device_path,
            trailing_len: c.bytes.len(),
        })
    }

    /// The file the image came from, when the device path is simple enough to say: the text of
    /// its media file-path nodes (type 4, subtype 4), joined. `None` when it has none or a node
    /// is malformed; other nodes (PCI, SCSI, hard-drive partition) are not rendered.
    pub fn file_path(&self) -> Option<String> {
        device_path_file(&self.device_path)
    }
}

/// The longest device path walked, in nodes.
const MAX_DEVICE_PATH_NODES: usize = 64;

/// Media file-path nodes of a device path (UEFI 2.10 §10.3.5.4), joined with `\` separators
/// as UEFI writes them.
fn device_path_file(mut path: &[u8]) -> Option<String> {
    let mut out = String::new();
    for _ in 0..MAX_DEVICE_PATH_NODES {
        let [ty, sub, l0, l1, ..] = *path else {
            return None;
        };
        let len = usize::from(u16::from_le_bytes([l0, l1]));
        if len < 4 || len > path.len() {
            return None;
        }
        // End of the whole path (type 0x7F, subtype 0xFF).
        if ty == 0x7F && sub == 0xFF {
            return (!out.is_empty()).then_some(out);
        }
        if ty == 0x04 && sub == 0x04 {
            let part = utf16_to_string(path.get(4..len)?);
            if !out.is_empty() && !out.ends_with('\\') && !part.starts_with('\\') {
                out.push('\\');
            }
            out.push_str(&part);
        }
        path = path.get(len..)?;
    }
    None
}

/// `TCG_PCClientTaggedEvent`: the data of an `EV_EVENT_TAG` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedEvent {
    /// `taggedEventID`.
    pub tagged_event_id: u32,
    /// `taggedEventData`.
    pub tagged_event_data: Vec<u8>,
}

impl TaggedEvent {
    /// The Linux EFI stub's initrd event (`INITRD_EVENT_TAG_ID`): its digest is of the initrd
    /// loaded, its data "Linux initrd".
    pub const LINUX_INITRD: u32 = 0x8F3B_22EC;
    /// The Linux EFI stub's load-options event (`LOAD_OPTIONS_EVENT_TAG_ID`): its digest is of
    /// the image's load options (the kernel command line as given, UTF-16), its data
    /// "LOADED_IMAGE::LoadOptions".
    pub const LINUX_LOAD_OPTIONS: u32 = 0x8F3B_22ED;

    /// Decodes all of `data`.
    pub fn parse(data: &[u8]) -> Result<TaggedEvent, DecodeError> {
        let mut c = Cursor {
            bytes: data,
            structure: "TCG_PCClientTaggedEvent",
        };
        let tagged_event_id = c.u32("taggedEventID")?;
        let size = c.u32("taggedEventDataSize")?;
        let tagged = c.take_u64_len(u64::from(size), 1, "taggedEventData")?;
        c.finish()?;
        Ok(TaggedEvent {
            tagged_event_id,
            tagged_event_data: tagged.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variable(guid: Guid, name: &str, value: &[u8]) -> Vec<u8> {
        let mut out = guid.0.to_vec();
        out.extend_from_slice(&(name.encode_utf16().count() as u64).to_le_bytes());
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        for u in name.encode_utf16() {
            out.extend_from_slice(&u.to_le_bytes());
        }
        out.extend_from_slice(value);
        out
    }

    #[test]
    fn variable_data_round_trips_and_rejects_hostile_lengths() {
        let d = variable(Guid::EFI_GLOBAL_VARIABLE, "SecureBoot", &[1]);
        let v = UefiVariableData::parse(&d).unwrap();
        assert_eq!(v.unicode_name, "SecureBoot");
        assert_eq!(v.variable_data, [1]);
        assert_eq!(
            v.variable_name.to_string(),
            "8be4df61-93ca-11d2-aa0d-00e098032b8c"
        );
        let mut hostile = d.clone();
        hostile[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            UefiVariableData::parse(&hostile),
            Err(DecodeError::Truncated {
                field: "UnicodeName",
                ..
            })
        ));
        let mut long = d;
        long.push(0);
        assert!(matches!(
            UefiVariableData::parse(&long),
            Err(DecodeError::Trailing { len: 1, .. })
        ));
    }

    #[test]
    fn device_path_file_nodes_are_rendered() {
        let mut dp = vec![0x02, 0x01, 0x0c, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]; // ACPI node
        let file: Vec<u8> = "\\EFI\\BOOT\\BOOTX64.EFI\0"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        dp.extend_from_slice(&[0x04, 0x04]);
        dp.extend_from_slice(&((file.len() + 4) as u16).to_le_bytes());
        dp.extend_from_slice(&file);
        dp.extend_from_slice(&[0x7f, 0xff, 0x04, 0x00]);
        let ev = ImageLoadEvent {
            image_location_in_memory: 0,
            image_length_in_memory: 0,
            image_link_time_address: 0,
            device_path: dp.clone(),
            trailing_len: 0,
        };
        assert_eq!(ev.file_path().as_deref(), Some("\\EFI\\BOOT\\BOOTX64.EFI"));
        // A node whose length runs past the path is not rendered.
        dp[2] = 0xff;
        assert_eq!(device_path_file(&dp), None);
        assert_eq!(device_path_file(&[0x04, 0x04, 0x02, 0x00]), None);
    }

    #[test]
    fn tagged_events_decode() {
        let mut d = TaggedEvent::LINUX_INITRD.to_le_bytes().to_vec();
        d.extend_from_slice(&13u32.to_le_bytes());
        d.extend_from_slice(b"Linux initrd\0");
        let t = TaggedEvent::parse(&d).unwrap();
        assert_eq!(t.tagged_event_id, TaggedEvent::LINUX_INITRD);
        assert_eq!(t.tagged_event_data, b"Linux initrd\0");
        assert!(TaggedEvent::parse(&d[..10]).is_err());
    }
}
