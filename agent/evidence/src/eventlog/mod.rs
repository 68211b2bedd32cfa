// SPDX-License-Identifier: Apache-2.0
//! Measured-boot event logs: what was measured into a TPM's PCRs or a TD's RTMRs during boot.
//!
//! A quote signs registers, and a register is only a running hash; the event log says what went
//! into it. This module parses the TCG crypto-agile log ([`EventLog`], the format of a TPM
//! guest's `binary_bios_measurements` and of a TD's CCEL log area), the ACPI CCEL table that
//! locates a TD's log ([`CcelTable`]), the structures inside the events people ask about
//! ([`uefi`]), and decodes them into [`EventLogClaims`]. It never decides whether a log is true:
//! `thimble-verify`'s `eventlog` replays it against the registers a verified quote holds.
//!
//! - [`types`]: event types and digest algorithms (open sets, named after the PFP).
//! - [`build`]: the encoder: a log builder and the UEFI structures' encoders, for simulations.
//! - [`log`]: the parser, with its [`Limits`] and [`EventLogError`].
//! - [`ccel`]: the CCEL table and the CC measurement register numbering of a TD.
//! - [`uefi`]: `UEFI_VARIABLE_DATA`, `UEFI_IMAGE_LOAD_EVENT`, device paths, tagged events.
//! - [`claims`]: the Secure Boot state, boot applications, kernel command line, kernel and
//!   initrd digests, and separators.
//!
//! The facts these modules rely on, with their sources, are in docs/formats.md §8.
//!
//! ```
//! use thimble_evidence::eventlog::{EventLog, EventLogError};
//!
//! // A log must open with the Spec ID event of the crypto-agile format.
//! let mut header = vec![0u8; 8 + 20];
//! header[4] = 3; // EV_NO_ACTION
//! header.extend_from_slice(&16u32.to_le_bytes());
//! header.extend_from_slice(b"Spec ID Event00\0");
//! assert!(matches!(EventLog::parse(&header), Err(EventLogError::NotCryptoAgile { .. })));
//! ```

pub mod build;
pub mod ccel;
pub mod claims;
pub mod log;
pub mod types;
pub mod uefi;

pub use ccel::{CcType, CcelError, CcelTable};
pub use claims::EventLogClaims;
pub use log::{
    AlgorithmSize, Event, EventDigest, EventLog, EventLogError, Limits, Padding, SpecIdEvent,
};
pub use types::{EventType, HashAlg};
