// SPDX-License-Identifier: Apache-2.0
//! The two codes every event of a measured-boot log carries besides its register: the event type
//! (TCG PC Client Platform Firmware Profile, "Event Types" table) and the algorithm of each digest
//! (a `TPM_ALG_ID`, TPM 2.0 Library Part 2 and the TCG Algorithm Registry). Both are open sets:
//! firmware and boot loaders may log codes this crate has never heard of, so both are newtypes over
//! the number with named constants and an optional name, never an enum that would refuse a log.
//! Facts and sources: docs/formats.md §8.

use std::fmt;

use serde::{Serialize, Serializer};

/// An event type (`eventType` of `TCG_PCR_EVENT` / `TCG_PCR_EVENT2`), PFP "Event Types".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventType(pub u32);

/// Declares the named event types and their names, in the PFP table's order.
macro_rules! event_types {
    ($( $(#[$doc:meta])* $name:ident = $value:literal; )*) => {
        impl EventType {
            $( $(#[$doc])* pub const $name: EventType = EventType($value); )*

            /// The specification's name of this type (`EV_SEPARATOR`), if it is one thimble
            /// knows.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($name)), )*
                    _ => None,
                }
            }
        }
    };
}

event_types! {
    /// Deprecated: a certificate the pre-boot environment used.
    EV_PREBOOT_CERT = 0x0000_0000;
    /// A POST code, or a firmware blob described as a string.
    EV_POST_CODE = 0x0000_0001;
    /// Never to be used.
    EV_UNUSED = 0x0000_0002;
    /// Not extended into any register: log information only (Spec ID, StartupLocality, …).
    EV_NO_ACTION = 0x0000_0003;
    /// The boundary between pre-OS and OS-present measurements of a register.
    EV_SEPARATOR = 0x0000_0004;
    /// A string describing an action.
    EV_ACTION = 0x0000_0005;
    /// A tagged event (`TCG_PCClientTaggedEvent`), e.g. the Linux EFI stub's initrd.
    EV_EVENT_TAG = 0x0000_0006;
    /// The S-CRTM's contents.
    EV_S_CRTM_CONTENTS = 0x0000_0007;
    /// The S-CRTM's version string.
    EV_S_CRTM_VERSION = 0x0000_0008;
    /// CPU microcode.
    EV_CPU_MICROCODE = 0x0000_0009;
    /// Platform configuration flags.
    EV_PLATFORM_CONFIG_FLAGS = 0x0000_000A;
    /// A table of devices.
    EV_TABLE_OF_DEVICES = 0x0000_000B;
    /// A compact hash.
    EV_COMPACT_HASH = 0x0000_000C;
    /// Initial program load: in practice boot-loader measurements (GRUB's commands, kernel
    /// command line and files, shim's MOK variables).
    EV_IPL = 0x0000_000D;
    /// IPL partition data.
    EV_IPL_PARTITION_DATA = 0x0000_000E;
    /// Code of a non-host platform component.
    EV_NONHOST_CODE = 0x0000_000F;
    /// Configuration of a non-host platform component.
    EV_NONHOST_CONFIG = 0x0000_0010;
    /// Information about a non-host platform component.
    EV_NONHOST_INFO = 0x0000_0011;
    /// Boot device events are omitted.
    EV_OMIT_BOOT_DEVICE_EVENTS = 0x0000_0012;
    /// A firmware blob (PFP 1.06), a string or a `UEFI_PLATFORM_FIRMWARE_BLOB2`.
    EV_POST_CODE2 = 0x0000_0013;
    /// Base of the UEFI event types; not itself an event.
    EV_EFI_EVENT_BASE = 0x8000_0000;
    /// A UEFI variable that configures the platform (`UEFI_VARIABLE_DATA`), e.g. SecureBoot,
    /// PK, KEK, db, dbx in PCR 7.
    EV_EFI_VARIABLE_DRIVER_CONFIG = 0x8000_0001;
    /// A boot variable (`BootOrder`, `Boot####`).
    EV_EFI_VARIABLE_BOOT = 0x8000_0002;
    /// A UEFI application loaded from a boot option (`UEFI_IMAGE_LOAD_EVENT`), e.g. shim, GRUB,
    /// a UKI.
    EV_EFI_BOOT_SERVICES_APPLICATION = 0x8000_0003;
    /// A UEFI boot services driver.
    EV_EFI_BOOT_SERVICES_DRIVER = 0x8000_0004;
    /// A UEFI runtime services driver.
    EV_EFI_RUNTIME_SERVICES_DRIVER = 0x8000_0005;
    /// The GPT of the boot disk.
    EV_EFI_GPT_EVENT = 0x8000_0006;
    /// A string describing a UEFI action ("Calling EFI Application from Boot Option").
    EV_EFI_ACTION = 0x8000_0007;
    /// A platform firmware blob (base and length).
    EV_EFI_PLATFORM_FIRMWARE_BLOB = 0x8000_0008;
    /// UEFI configuration tables handed off (`UEFI_HANDOFF_TABLE_POINTERS`).
    EV_EFI_HANDOFF_TABLES = 0x8000_0009;
    /// A platform firmware blob with a description (`UEFI_PLATFORM_FIRMWARE_BLOB2`).
    EV_EFI_PLATFORM_FIRMWARE_BLOB2 = 0x8000_000A;
    /// Handoff tables with a description (`UEFI_HANDOFF_TABLE_POINTERS2`).
    EV_EFI_HANDOFF_TABLES2 = 0x8000_000B;
    /// A boot variable measured with its data (`UEFI_VARIABLE_DATA`).
    EV_EFI_VARIABLE_BOOT2 = 0x8000_000C;
    /// An H-CRTM event.
    EV_EFI_HCRTM_EVENT = 0x8000_0010;
    /// The database entry that authorised an image (`UEFI_VARIABLE_DATA`), or shim's
    /// equivalents (SbatLevel, MokListTrusted).
    EV_EFI_VARIABLE_AUTHORITY = 0x8000_00E0;
    /// An SPDM device's firmware.
    EV_EFI_SPDM_FIRMWARE_BLOB = 0x8000_00E1;
    /// An SPDM device's configuration.
    EV_EFI_SPDM_FIRMWARE_CONFIG = 0x8000_00E2;
    /// The SPDM policy database.
    EV_EFI_SPDM_DEVICE_POLICY = 0x8000_00E3;
    /// The SPDM policy authority.
    EV_EFI_SPDM_DEVICE_AUTHORITY = 0x8000_00E4;
}

impl fmt::Display for EventType {
    /// The name, or the number as `0x%08x` when it has none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{:#010x}", self.0),
        }
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A digest algorithm, as a `TPM_ALG_ID` (`algorithmId` of the Spec ID event, `hashAlg` of a
/// `TPMT_HA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HashAlg(pub u16);

impl HashAlg {
    /// `TPM_ALG_SHA1`.
    pub const SHA1: HashAlg = HashAlg(0x0004);
    /// `TPM_ALG_SHA256`.
    pub const SHA256: HashAlg = HashAlg(0x000B);
    /// `TPM_ALG_SHA384`.
    pub const SHA384: HashAlg = HashAlg(0x000C);
    /// `TPM_ALG_SHA512`.
    pub const SHA512: HashAlg = HashAlg(0x000D);
    /// `TPM_ALG_SM3_256`.
    pub const SM3_256: HashAlg = HashAlg(0x0012);
    /// `TPM_ALG_SHA3_256`.
    pub const SHA3_256: HashAlg = HashAlg(0x0027);
    /// `TPM_ALG_SHA3_384`.
    pub const SHA3_384: HashAlg = HashAlg(0x0028);
    /// `TPM_ALG_SHA3_512`.
    pub const SHA3_512: HashAlg = HashAlg(0x0029);

    /// The lower-case name (`sha256`), for the algorithms above.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            HashAlg::SHA1 => "sha1",
            HashAlg::SHA256 => "sha256",
            HashAlg::SHA384 => "sha384",
            HashAlg::SHA512 => "sha512",
            HashAlg::SM3_256 => "sm3_256",
            HashAlg::SHA3_256 => "sha3_256",
            HashAlg::SHA3_384 => "sha3_384",
            HashAlg::SHA3_512 => "sha3_512",
            _ => return None,
        })
    }

    /// The digest size in bytes of the algorithms above. The Spec ID event declares the size
    /// of every algorithm in a log; a log that declares another size for one of these is
    /// refused, and an algorithm not listed here is taken at its declared size.
    pub fn digest_len(self) -> Option<usize> {
        Some(match self {
            HashAlg::SHA1 => 20,
            HashAlg::SHA256 | HashAlg::SM3_256 | HashAlg::SHA3_256 => 32,
            HashAlg::SHA384 | HashAlg::SHA3_384 => 48,
            HashAlg::SHA512 | HashAlg::SHA3_512 => 64,
            _ => return None,
        })
    }
}

impl fmt::Display for HashAlg {
    /// The name, or `alg-0x%04x`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "alg-{:#06x}", self.0),
        }
    }
}

impl Serialize for HashAlg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_specification_and_unknown_codes_print_as_numbers() {
        assert_eq!(
            EventType(0x8000_0003).to_string(),
            "EV_EFI_BOOT_SERVICES_APPLICATION"
        );
        assert_eq!(EventType::EV_NO_ACTION.name(), Some("EV_NO_ACTION"));
        assert_eq!(EventType(0x8000_00ff).to_string(), "0x800000ff");
        assert_eq!(HashAlg(0x000C).to_string(), "sha384");
        assert_eq!(HashAlg(0x1234).to_string(), "alg-0x1234");
        assert_eq!(HashAlg(0x1234).digest_len(), None);
    }
}
