// SPDX-License-Identifier: Apache-2.0
//! Encoding, the other half of the event-log codec: a builder for crypto-agile logs
//! ([`LogBuilder`]) and encoders for the UEFI structures inside events
//! ([`UefiVariableData::to_bytes`], [`ImageLoadEvent::to_bytes`], [`file_path_device_path`]),
//! written against the layouts [`super::log`] and [`super::uefi`] parse, so that whatever this
//! module writes parses back to what was put in. The CCEL table's encoder sits beside its parser
//! ([`super::CcelTable::build`]).
//!
//! It exists for simulations and tests (thimble-sim boots a simulated guest with it): a caller
//! chooses registers, event types and data, and the digests are computed here, as firmware
//! computes them, so that a built log replays to registers the caller can derive. Building never
//! judges a log and never panics; what cannot be encoded (an algorithm without a known digest
//! size, a digest of the wrong size, data too large for its size field) is an error. No I/O.

use thiserror::Error;

use super::claims::hash;
use super::log::{EventDigest, MAX_ALGORITHMS, SPEC_ID_EVENT03, STARTUP_LOCALITY_SIGNATURE};
use super::types::{EventType, HashAlg};
use super::uefi::{ImageLoadEvent, UefiVariableData};

/// Why a log or an event could not be built. `event` is the position the event would have had
/// in the log (1 for the first after the Spec ID header).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The log would list no algorithm, or more than [`MAX_ALGORITHMS`].
    #[error("a log lists 1 to {MAX_ALGORITHMS} algorithms, not {count}")]
    AlgorithmCount {
        /// How many were given.
        count: usize,
    },
    /// An algorithm is given twice.
    #[error("{alg} is listed twice")]
    DuplicateAlgorithm {
        /// The algorithm.
        alg: HashAlg,
    },
    /// The digest size of an algorithm is not known, so the Spec ID event cannot declare it.
    #[error("the digest size of {alg} is not known")]
    UnknownAlgorithm {
        /// The algorithm.
        alg: HashAlg,
    },
    /// An event's digest of a bank was to be computed, and this crate does not compute that
    /// algorithm (it computes SHA-256, SHA-384 and SHA-512): give the digest explicitly.
    #[error("event {event}: cannot compute {alg} digests")]
    CannotHash {
        /// The event.
        event: usize,
        /// The algorithm.
        alg: HashAlg,
    },
    /// Explicit digests do not give exactly one digest of the right size per bank of the log.
    #[error("event {event}: the {alg} digest {problem}")]
    Digest {
        /// The event.
        event: usize,
        /// The algorithm.
        alg: HashAlg,
        /// What is wrong: missing, given twice, of the wrong size, not a bank of the log.
        problem: String,
    },
    /// Event data longer than its `u32` size field can say.
    #[error("event {event}: {len} bytes of event data do not fit a 32-bit size")]
    DataTooLarge {
        /// The event.
        event: usize,
        /// The data's length.
        len: usize,
    },
    /// A log is longer than the log area it was to be padded to.
    #[error("a {len}-byte log does not fit a {area}-byte log area")]
    AreaTooSmall {
        /// The log's length.
        len: usize,
        /// The area's length.
        area: usize,
    },
}

/// A crypto-agile event log under construction: the Spec ID header, then `TCG_PCR_EVENT2`
/// events in the order they are added, each with one digest per bank of the log.
///
/// ```
/// use thimble_evidence::eventlog::build::LogBuilder;
/// use thimble_evidence::eventlog::{EventLog, EventType, HashAlg};
///
/// let mut b = LogBuilder::new(&[HashAlg::SHA256])?;
/// b.startup_locality(0)?;
/// b.event(7, EventType::EV_SEPARATOR, &[0; 4])?;
/// let log = EventLog::parse(&b.finish())?;
/// assert_eq!(log.startup_locality(), Some(0));
/// assert_eq!(log.events[1].event_type, EventType::EV_SEPARATOR);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogBuilder {
    header_register: u32,
    platform_class: u32,
    algorithms: Vec<(HashAlg, usize)>,
    /// The encoded events after the header.
    body: Vec<u8>,
    events: usize,
}

impl LogBuilder {
    /// An empty log whose banks are `algorithms`, in that order, with the Spec ID fields EDK2
    /// writes: platform class 0 (client), version 2.0, errata 0, 64-bit UINTN, no vendor
    /// information, and the header in register 0 (as a TPM's firmware writes it).
    pub fn new(algorithms: &[HashAlg]) -> Result<LogBuilder, BuildError> {
        if algorithms.is_empty() || algorithms.len() > MAX_ALGORITHMS {
            return Err(BuildError::AlgorithmCount {
                count: algorithms.len(),
            });
        }
        let mut banks: Vec<(HashAlg, usize)> = Vec::with_capacity(algorithms.len());
        for &alg in algorithms {
            let size = alg
                .digest_len()
                .ok_or(BuildError::UnknownAlgorithm { alg })?;
            if banks.iter().any(|(a, _)| *a == alg) {
                return Err(BuildError::DuplicateAlgorithm { alg });
            }
            banks.push((alg, size));
        }
        Ok(LogBuilder {
            header_register: 0,
            platform_class: 0,
            algorithms: banks,
            body: Vec::new(),
            events: 0,
        })
    }

    /// The Spec ID header's register field: TDX firmware writes 1 there (docs/formats.md §8.3).
    pub fn with_header_register(mut self, register: u32) -> LogBuilder {
        self.header_register = register;
        self
    }

    /// The Spec ID event's `platformClass` (0 client, 1 server).
    pub fn with_platform_class(mut self, platform_class: u32) -> LogBuilder {
        self.platform_class = platform_class;
        self
    }

    /// How many events were added (the Spec ID header not counted).
    pub fn events(&self) -> usize {
        self.events
    }

    /// Adds an event whose digests are the hash of its own `data`, as for Secure Boot
    /// variables, separators and actions.
    pub fn event(
        &mut self,
        register: u32,
        event_type: EventType,
        data: &[u8],
    ) -> Result<&mut LogBuilder, BuildError> {
        self.event_measuring(register, event_type, data, data)
    }

    /// Adds an event whose digests are the hash of `measured`, which is not its data: a file a
    /// boot loader read (the data names it), a command line (the data carries a prefix), a
    /// variable whose contents only are hashed.
    pub fn event_measuring(
        &mut self,
        register: u32,
        event_type: EventType,
        measured: &[u8],
        data: &[u8],
    ) -> Result<&mut LogBuilder, BuildError> {
        let event = self.events + 1;
        let digests = self
            .algorithms
            .iter()
            .map(|&(alg, _)| {
                hash(alg, measured)
                    .map(|digest| EventDigest { alg, digest })
                    .ok_or(BuildError::CannotHash { event, alg })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.push(register, event_type, &digests, data)
    }

    /// Adds an event with the digests given, one per bank in any order: an image whose digest
    /// is its Authenticode hash, or an algorithm this crate does not compute.
    pub fn event_with_digests(
        &mut self,
        register: u32,
        event_type: EventType,
        digests: &[EventDigest],
        data: &[u8],
    ) -> Result<&mut LogBuilder, BuildError> {
        let event = self.events + 1;
        let problem = |alg: HashAlg, problem: &str| BuildError::Digest {
            event,
            alg,
            problem: problem.to_string(),
        };
        if let Some(d) = digests
            .iter()
            .find(|d| !self.algorithms.iter().any(|(a, _)| *a == d.alg))
        {
            return Err(problem(d.alg, "is not of a bank of the log"));
        }
        let mut ordered = Vec::with_capacity(self.algorithms.len());
        for &(alg, size) in &self.algorithms {
            let mut of_alg = digests.iter().filter(|d| d.alg == alg);
            let d = of_alg.next().ok_or_else(|| problem(alg, "is missing"))?;
            if of_alg.next().is_some() {
                return Err(problem(alg, "is given twice"));
            }
            if d.digest.len() != size {
                return Err(problem(
                    alg,
                    &format!("is {} bytes, not {size}", d.digest.len()),
                ));
            }
            ordered.push(d.clone());
        }
        self.push(register, event_type, &ordered, data)
    }

    /// Adds an `EV_NO_ACTION` event: informational, never extended, its digests zero (PFP).
    pub fn no_action(&mut self, register: u32, data: &[u8]) -> Result<&mut LogBuilder, BuildError> {
        let zeros: Vec<EventDigest> = self
            .algorithms
            .iter()
            .map(|&(alg, size)| EventDigest {
                alg,
                digest: vec![0; size],
            })
            .collect();
        self.push(register, EventType::EV_NO_ACTION, &zeros, data)
    }

    /// Adds the StartupLocality event (`TCG_EfiStartupLocalityEvent`, an `EV_NO_ACTION` event
    /// of PCR 0): the TPM was started from `locality`, the last byte of PCR 0's initial value.
    pub fn startup_locality(&mut self, locality: u8) -> Result<&mut LogBuilder, BuildError> {
        let mut data = STARTUP_LOCALITY_SIGNATURE.to_vec();
        data.push(locality);
        self.no_action(0, &data)
    }

    /// Appends one `TCG_PCR_EVENT2` whose digests are in the log's bank order.
    fn push(
        &mut self,
        register: u32,
        event_type: EventType,
        digests: &[EventDigest],
        data: &[u8],
    ) -> Result<&mut LogBuilder, BuildError> {
        let event = self.events + 1;
        let size = u32::try_from(data.len()).map_err(|_| BuildError::DataTooLarge {
            event,
            len: data.len(),
        })?;
        // At most MAX_ALGORITHMS banks, checked in `new`.
        let count = u32::try_from(digests.len()).unwrap_or(u32::MAX);
        self.body.extend_from_slice(&register.to_le_bytes());
        self.body.extend_from_slice(&event_type.0.to_le_bytes());
        self.body.extend_from_slice(&count.to_le_bytes());
        for d in digests {
            self.body.extend_from_slice(&d.alg.0.to_le_bytes());
            self.body.extend_from_slice(&d.digest);
        }
        self.body.extend_from_slice(&size.to_le_bytes());
        self.body.extend_from_slice(data);
        self.events = event;
        Ok(self)
    }

    /// The Spec ID header: a `TCG_PCR_EVENT` in the SHA-1 layout (zero digest) whose data is
    /// the `TCG_EfiSpecIDEvent`.
    fn header(&self) -> Vec<u8> {
        let mut spec = SPEC_ID_EVENT03.to_vec();
        spec.extend_from_slice(&self.platform_class.to_le_bytes());
        // specVersionMinor, specVersionMajor, specErrata, uintnSize (2: 64-bit UINTN).
        spec.extend_from_slice(&[0, 2, 0, 2]);
        // At most MAX_ALGORITHMS, checked in `new`.
        let count = u32::try_from(self.algorithms.len()).unwrap_or(u32::MAX);
        spec.extend_from_slice(&count.to_le_bytes());
        for &(alg, size) in &self.algorithms {
            spec.extend_from_slice(&alg.0.to_le_bytes());
            // Known sizes are at most 64 bytes.
            spec.extend_from_slice(&u16::try_from(size).unwrap_or(u16::MAX).to_le_bytes());
        }
        // vendorInfoSize: no vendor information.
        spec.push(0);
        let mut out = Vec::with_capacity(32 + spec.len());
        out.extend_from_slice(&self.header_register.to_le_bytes());
        out.extend_from_slice(&EventType::EV_NO_ACTION.0.to_le_bytes());
        out.extend_from_slice(&[0; 20]);
        // The Spec ID event is well under 4 GiB: at most 16 algorithms.
        let len = u32::try_from(spec.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&spec);
        out
    }

    /// The log: the header and every event, with no padding (as a TPM log in securityfs).
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.header();
        out.extend_from_slice(&self.body);
        out
    }

    /// The log in a log area of `area_len` bytes, the rest filled with `fill` (a CCEL log area,
    /// which OVMF fills with 0xFF before writing events).
    pub fn finish_padded(&self, area_len: usize, fill: u8) -> Result<Vec<u8>, BuildError> {
        let mut out = self.finish();
        if out.len() > area_len {
            return Err(BuildError::AreaTooSmall {
                len: out.len(),
                area: area_len,
            });
        }
        out.resize(area_len, fill);
        Ok(out)
    }
}

impl UefiVariableData {
    /// The `UEFI_VARIABLE_DATA` structure, as [`UefiVariableData::parse`] reads it: the GUID,
    /// the name's length in UTF-16 units, the data's length, the name in UTF-16LE without a
    /// terminating NUL, the data.
    pub fn to_bytes(&self) -> Vec<u8> {
        let name: Vec<u16> = self.unicode_name.encode_utf16().collect();
        let mut out = Vec::with_capacity(32 + 2 * name.len() + self.variable_data.len());
        out.extend_from_slice(&self.variable_name.0);
        out.extend_from_slice(&usize_u64(name.len()).to_le_bytes());
        out.extend_from_slice(&usize_u64(self.variable_data.len()).to_le_bytes());
        name.iter()
            .for_each(|u| out.extend_from_slice(&u.to_le_bytes()));
        out.extend_from_slice(&self.variable_data);
        out
    }
}

impl ImageLoadEvent {
    /// The `UEFI_IMAGE_LOAD_EVENT` structure, as [`ImageLoadEvent::parse`] reads it: the three
    /// addresses and lengths, the device path's length and the device path. `trailing_len`
    /// zero bytes follow, as some boot loaders log them.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.device_path.len() + self.trailing_len);
        out.extend_from_slice(&self.image_location_in_memory.to_le_bytes());
        out.extend_from_slice(&self.image_length_in_memory.to_le_bytes());
        out.extend_from_slice(&self.image_link_time_address.to_le_bytes());
        out.extend_from_slice(&usize_u64(self.device_path.len()).to_le_bytes());
        out.extend_from_slice(&self.device_path);
        out.resize(out.len() + self.trailing_len, 0);
        out
    }
}

/// A device path of one media file-path node (type 4, subtype 4) holding `path` in UTF-16LE
/// with its NUL, then the end node (0x7F, 0xFF): the path a boot manager gives for a file on
/// the boot volume, simplified (a real one starts with the disk's PCI, SCSI and partition
/// nodes, which [`ImageLoadEvent::file_path`] skips). `None` when `path` is too long for a
/// node's 16-bit length.
pub fn file_path_device_path(path: &str) -> Option<Vec<u8>> {
    let text: Vec<u8> = path
        .encode_utf16()
        .chain(std::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect();
    let node_len = u16::try_from(text.len().checked_add(4)?).ok()?;
    let mut out = Vec::with_capacity(text.len() + 8);
    out.extend_from_slice(&[0x04, 0x04]);
    out.extend_from_slice(&node_len.to_le_bytes());
    out.extend_from_slice(&text);
    out.extend_from_slice(&[0x7F, 0xFF, 0x04, 0x00]);
    Some(out)
}

/// A length as the `u64` of a UEFI structure (lossless on every target Rust supports).
fn usize_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventlog::ccel::{CcType, CcelTable};
    use crate::eventlog::claims::EventLogClaims;
    use crate::eventlog::log::{EventLog, Padding};
    use crate::eventlog::uefi::Guid;

    #[test]
    fn a_built_log_parses_back_event_by_event() {
        let mut b = LogBuilder::new(&[HashAlg::SHA256, HashAlg::SHA384])
            .unwrap()
            .with_header_register(1);
        b.startup_locality(3).unwrap();
        b.event(7, EventType::EV_SEPARATOR, &[0; 4]).unwrap();
        b.event_measuring(8, EventType::EV_IPL, b"ro", b"kernel_cmdline: ro\0")
            .unwrap();
        let image = [
            EventDigest {
                alg: HashAlg::SHA384,
                digest: vec![0x38; 48],
            },
            EventDigest {
                alg: HashAlg::SHA256,
                digest: vec![0x25; 32],
            },
        ];
        b.event_with_digests(
            4,
            EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
            &image,
            b"img",
        )
        .unwrap();
        assert_eq!(b.events(), 4);

        let log = EventLog::parse(&b.finish()).unwrap();
        assert_eq!(log.header_register, 1);
        assert_eq!(
            log.spec_id
                .algorithms
                .iter()
                .map(|a| (a.alg, a.digest_size))
                .collect::<Vec<_>>(),
            [(HashAlg::SHA256, 32), (HashAlg::SHA384, 48)]
        );
        assert_eq!(log.startup_locality(), Some(3));
        assert_eq!(log.padding, None);
        let [locality, sep, cmdline, app] = &log.events[..] else {
            panic!("{} events", log.events.len());
        };
        assert!(!locality.is_extended());
        assert_eq!(locality.digest(HashAlg::SHA384), Some(&[0u8; 48][..]));
        assert_eq!((sep.index, sep.register), (2, 7));
        assert_eq!(
            sep.digest(HashAlg::SHA256),
            hash(HashAlg::SHA256, &[0; 4]).as_deref()
        );
        assert_eq!(cmdline.data, b"kernel_cmdline: ro\0");
        assert_eq!(
            cmdline.digest(HashAlg::SHA384),
            hash(HashAlg::SHA384, b"ro").as_deref()
        );
        // Explicit digests are written in the log's bank order, whatever order they came in.
        assert_eq!(app.digests[0].alg, HashAlg::SHA256);
        assert_eq!(app.digest(HashAlg::SHA384), Some(&[0x38; 48][..]));
        assert_eq!(app.data, b"img");

        let claims = EventLogClaims::from_log(&log);
        assert_eq!(claims.kernel_cmdlines[0].text, "ro");
        assert_eq!(claims.kernel_cmdlines[0].data_verified, Some(true));
    }

    #[test]
    fn a_padded_log_area_parses_to_its_events_and_padding() {
        let mut b = LogBuilder::new(&[HashAlg::SHA384]).unwrap();
        b.event(1, EventType::EV_SEPARATOR, &[0; 4]).unwrap();
        let log = b.finish();
        let area = b.finish_padded(4096, 0xFF).unwrap();
        let parsed = EventLog::parse(&area).unwrap();
        assert_eq!(
            parsed.padding,
            Some(Padding {
                offset: log.len(),
                len: 4096 - log.len(),
                byte: 0xFF
            })
        );
        assert_eq!(parsed.trimmed_bytes(), &log[..]);
        assert_eq!(
            b.finish_padded(10, 0xFF),
            Err(BuildError::AreaTooSmall {
                len: log.len(),
                area: 10
            })
        );
    }

    #[test]
    fn what_cannot_be_encoded_is_refused_by_name() {
        assert_eq!(
            LogBuilder::new(&[]),
            Err(BuildError::AlgorithmCount { count: 0 })
        );
        assert_eq!(
            LogBuilder::new(&[HashAlg::SHA256, HashAlg::SHA256]),
            Err(BuildError::DuplicateAlgorithm {
                alg: HashAlg::SHA256
            })
        );
        assert_eq!(
            LogBuilder::new(&[HashAlg(0x7777)]),
            Err(BuildError::UnknownAlgorithm {
                alg: HashAlg(0x7777)
            })
        );
        // SHA-1 banks are encoded, but their digests must be given.
        let mut b = LogBuilder::new(&[HashAlg::SHA1, HashAlg::SHA256]).unwrap();
        assert_eq!(
            b.event(0, EventType::EV_SEPARATOR, &[0; 4]).unwrap_err(),
            BuildError::CannotHash {
                event: 1,
                alg: HashAlg::SHA1
            }
        );
        let sha1 = EventDigest {
            alg: HashAlg::SHA1,
            digest: vec![1; 20],
        };
        let err = b
            .event_with_digests(
                0,
                EventType::EV_SEPARATOR,
                std::slice::from_ref(&sha1),
                &[0; 4],
            )
            .unwrap_err();
        assert!(
            matches!(err, BuildError::Digest { alg: HashAlg::SHA256, ref problem, .. } if problem == "is missing"),
            "{err}"
        );
        let short = EventDigest {
            alg: HashAlg::SHA256,
            digest: vec![2; 31],
        };
        let err = b
            .event_with_digests(0, EventType::EV_SEPARATOR, &[sha1.clone(), short], &[])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "event 1: the sha256 digest is 31 bytes, not 32"
        );
        let stranger = EventDigest {
            alg: HashAlg::SHA512,
            digest: vec![3; 64],
        };
        assert!(matches!(
            b.event_with_digests(0, EventType::EV_SEPARATOR, &[stranger], &[]),
            Err(BuildError::Digest {
                alg: HashAlg::SHA512,
                ..
            })
        ));
        assert_eq!(b.events(), 0);
        assert!(EventLog::parse(&b.finish()).unwrap().events.is_empty());
    }

    #[test]
    fn uefi_structures_parse_back() {
        let v = UefiVariableData {
            variable_name: Guid::EFI_GLOBAL_VARIABLE,
            unicode_name: "SecureBoot".into(),
            variable_data: vec![1],
        };
        assert_eq!(UefiVariableData::parse(&v.to_bytes()).unwrap(), v);

        let path = "\\EFI\\BOOT\\BOOTX64.EFI";
        let img = ImageLoadEvent {
            image_location_in_memory: 0x7e00_0000,
            image_length_in_memory: 0x000e_c000,
            image_link_time_address: 0,
            device_path: file_path_device_path(path).unwrap(),
            trailing_len: 0,
        };
        let parsed = ImageLoadEvent::parse(&img.to_bytes()).unwrap();
        assert_eq!(parsed, img);
        assert_eq!(parsed.file_path().as_deref(), Some(path));
        assert_eq!(file_path_device_path(&"x".repeat(40_000)), None);
    }

    #[test]
    fn a_built_ccel_table_parses() {
        let t = CcelTable::build(CcType::TDX, 0x1_0000, 0x7fbd_0000);
        let parsed = CcelTable::parse(t.as_bytes()).unwrap();
        assert_eq!(parsed, t);
        assert_eq!(parsed.cc_type, CcType::TDX);
        assert_eq!((parsed.laml, parsed.lasa), (0x1_0000, 0x7fbd_0000));
        assert_eq!(&parsed.oem_id, b"INTEL ");
        // With a Google Cloud TD's log area, the table is byte for byte the one its TDVF wrote.
        let gcp: &[u8] =
            include_bytes!("../../../../tests/vectors/eventlog/tdx-gcp-cos113/ccel.bin");
        assert_eq!(
            CcelTable::build(CcType::TDX, 0x4_0000, 0xbedb_f000).as_bytes(),
            gcp
        );
    }
}
