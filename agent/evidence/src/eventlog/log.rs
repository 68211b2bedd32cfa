// SPDX-License-Identifier: Apache-2.0
//! The crypto-agile measured-boot event log of the TCG PC Client Platform Firmware Profile (PFP):
//! the layout a TPM guest's firmware hands the kernel (`binary_bios_measurements`) and that TDX
//! firmware writes into the ACPI CCEL log area (docs/formats.md §8).
//!
//! The log opens with one `TCG_PCR_EVENT` in the old SHA-1 layout whose data is the Spec ID event
//! (`TCG_EfiSpecIDEvent`, signature "Spec ID Event03"): it lists each digest algorithm of the log
//! with its digest size. Every later event is a `TCG_PCR_EVENT2`: register index, event type, a
//! `TPML_DIGEST_VALUES` with one digest per listed algorithm, then the event data. Integers are
//! little-endian. A CCEL log area is fixed-size and filled after its last event (with zeros or
//! with 0xFF, as the firmware initialised it), so bytes that are all 0x00 or all 0xFF where the
//! next event would start end the log; anything else there must be an event.
//!
//! The log is hostile input (whoever controls the guest's kernel or the host writes it; only a
//! replay against signed registers can make it believable), so the parser bounds everything:
//! the log's size, the number of events and algorithms, digest and event-data sizes, and it
//! never panics. Errors name the event (0 is the Spec ID header) and the field. Each event keeps
//! the bytes it was parsed from. This module only parses: it does not replay (that is
//! `thimble-verify`'s `eventlog`) and does not judge the events.

use std::ops::Range;

use thiserror::Error;

use super::types::{EventType, HashAlg};

/// The signature of the Spec ID event of a crypto-agile log (PFP, `TCG_EfiSpecIDEvent`).
pub const SPEC_ID_EVENT03: &[u8; 16] = b"Spec ID Event03\0";
/// The signature of a `TCG_EfiStartupLocalityEvent` (an `EV_NO_ACTION` event of PCR 0).
pub const STARTUP_LOCALITY_SIGNATURE: &[u8; 16] = b"StartupLocality\0";
/// The largest digest any `TPMT_HA` holds (SHA-512, SHA3-512): `sizeof(TPMU_HA)`.
pub const MAX_DIGEST_LEN: usize = 64;
/// The most algorithms a Spec ID event may list; TPMs implement a handful of banks.
pub const MAX_ALGORITHMS: usize = 16;

/// Bounds on what [`EventLog::parse_limited`] accepts. The defaults fit real firmware logs with
/// a wide margin: a CCEL log area is 64 KiB to 1 MiB, a TPM log tens of KiB with a few hundred
/// events, and the largest event data (a `dbx` or `db` variable, a GPT) tens of KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest log, padding included.
    pub max_log_len: usize,
    /// The most events, the Spec ID header included.
    pub max_events: usize,
    /// The largest event data of one event.
    pub max_event_data_len: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_log_len: DEFAULT_MAX_LOG_LEN,
            max_events: DEFAULT_MAX_EVENTS,
            max_event_data_len: DEFAULT_MAX_EVENT_DATA_LEN,
        }
    }
}

/// [`Limits::max_log_len`] by default: 16 MiB.
pub const DEFAULT_MAX_LOG_LEN: usize = 16 << 20;
/// [`Limits::max_events`] by default.
pub const DEFAULT_MAX_EVENTS: usize = 16_384;
/// [`Limits::max_event_data_len`] by default: 1 MiB.
pub const DEFAULT_MAX_EVENT_DATA_LEN: usize = 1 << 20;

/// Why an event log could not be parsed. `event` is the event's position in the log: 0 is the
/// Spec ID header, 1 the first `TCG_PCR_EVENT2`.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventLogError {
    /// The log is larger than [`Limits::max_log_len`]; nothing was parsed.
    #[error("event log is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The log is empty, or holds nothing but padding.
    #[error("event log is empty")]
    Empty,
    /// The log has more events than [`Limits::max_events`].
    #[error("event log has more than {max} events")]
    TooManyEvents {
        /// The limit.
        max: usize,
    },
    /// A field runs past the end of the log.
    #[error(
        "event {event} is truncated: {field} needs {needed} bytes at offset {offset}, {available} remain"
    )]
    Truncated {
        /// The event.
        event: usize,
        /// The field (`pcrIndex`, `digests[1].digest`, `event`, …).
        field: String,
        /// Where the field starts in the log.
        offset: usize,
        /// Its size.
        needed: usize,
        /// The bytes left from `offset`.
        available: usize,
    },
    /// The first event is not `EV_NO_ACTION`: this is not a TCG event log.
    #[error("event 0 has type {found}, not EV_NO_ACTION: not a TCG event log")]
    HeaderType {
        /// As read.
        found: EventType,
    },
    /// The first event does not carry "Spec ID Event03": not a crypto-agile log (a SHA-1-only
    /// TPM 1.2 log carries "Spec ID Event00" or nothing).
    #[error("event 0 is not a crypto-agile Spec ID event (signature {found:02x?})")]
    NotCryptoAgile {
        /// The first bytes of its data (at most 16).
        found: Vec<u8>,
    },
    /// The Spec ID header's SHA-1 digest field is not zero, as the PFP requires.
    #[error("event 0 (Spec ID) has a non-zero digest")]
    HeaderDigest,
    /// The Spec ID event lists no algorithm, or more than [`MAX_ALGORITHMS`].
    #[error("Spec ID event lists {count} algorithms; 1 to {MAX_ALGORITHMS} are accepted")]
    AlgorithmCount {
        /// `numberOfAlgorithms` as read.
        count: u32,
    },
    /// The Spec ID event lists an algorithm twice.
    #[error("Spec ID event lists {alg} twice")]
    DuplicateAlgorithm {
        /// The algorithm.
        alg: HashAlg,
    },
    /// A declared digest size is zero, above [`MAX_DIGEST_LEN`], or not the size of a known
    /// algorithm.
    #[error("Spec ID event declares {declared}-byte digests for {alg}{}", expected_suffix(*.expected))]
    DigestSize {
        /// The algorithm.
        alg: HashAlg,
        /// The size declared.
        declared: u16,
        /// The algorithm's size, when thimble knows it.
        expected: Option<usize>,
    },
    /// Bytes follow `vendorInfo` inside the Spec ID event's data.
    #[error("Spec ID event has {len} bytes after vendorInfo")]
    SpecIdTrailing {
        /// How many.
        len: usize,
    },
    /// An event's data is larger than [`Limits::max_event_data_len`].
    #[error("event {event} has {size} bytes of event data, more than the {max} accepted")]
    EventDataTooLarge {
        /// The event.
        event: usize,
        /// `eventSize` as read.
        size: u32,
        /// The limit.
        max: usize,
    },
    /// An event does not carry one digest per algorithm of the Spec ID event.
    #[error("event {event} has {found} digests; the Spec ID event lists {expected} algorithms")]
    DigestCount {
        /// The event.
        event: usize,
        /// The number of algorithms.
        expected: usize,
        /// `digests.count` as read.
        found: u32,
    },
    /// An event carries a digest of an algorithm the Spec ID event does not list (its size is
    /// then unknown, so nothing after it can be read).
    #[error("event {event} digest {digest} is of {alg}, which the Spec ID event does not list")]
    UnknownAlgorithm {
        /// The event.
        event: usize,
        /// The digest's position in the event.
        digest: usize,
        /// Its `hashAlg`.
        alg: HashAlg,
    },
    /// An event carries two digests of one algorithm.
    #[error("event {event} has two {alg} digests")]
    DuplicateDigest {
        /// The event.
        event: usize,
        /// The algorithm.
        alg: HashAlg,
    },
}

fn expected_suffix(expected: Option<usize>) -> String {
    match expected {
        Some(n) => format!(", which has {n}-byte digests"),
        None => format!(" (1 to {MAX_DIGEST_LEN} accepted)"),
    }
}

/// One algorithm of the Spec ID event (`TCG_EfiSpecIdEventAlgorithmSize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlgorithmSize {
    /// `algorithmId`.
    pub alg: HashAlg,
    /// `digestSize`, in bytes.
    pub digest_size: u16,
}

/// The Spec ID event (`TCG_EfiSpecIDEvent`), the data of the log's first event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecIdEvent {
    /// `platformClass`: 0 client, 1 server.
    pub platform_class: u32,
    /// `specVersionMinor`.
    pub spec_version_minor: u8,
    /// `specVersionMajor` (2).
    pub spec_version_major: u8,
    /// `specErrata`.
    pub spec_errata: u8,
    /// `uintnSize`: 1 for 32-bit UINTN, 2 for 64-bit.
    pub uintn_size: u8,
    /// `digestSizes`: the algorithms of the log, in the order listed.
    pub algorithms: Vec<AlgorithmSize>,
    /// `vendorInfo`.
    pub vendor_info: Vec<u8>,
}

impl SpecIdEvent {
    /// The declared digest size of `alg`, if the log has that algorithm.
    pub fn digest_size(&self, alg: HashAlg) -> Option<usize> {
        self.algorithms
            .iter()
            .find(|a| a.alg == alg)
            .map(|a| usize::from(a.digest_size))
    }
}

/// One digest of an event (`TPMT_HA`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDigest {
    /// `hashAlg`.
    pub alg: HashAlg,
    /// The digest, of the size the Spec ID event declares for `alg`.
    pub digest: Vec<u8>,
}

/// One `TCG_PCR_EVENT2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    raw: Vec<u8>,
    /// Position in the log: 1 for the first event after the Spec ID header.
    pub index: usize,
    /// Offset of its first byte in the log.
    pub offset: usize,
    /// `pcrIndex`: a TPM PCR in a TPM log; in a CC (TDX) log the CC measurement register index
    /// (0 MRTD, 1 to 4 RTMR0 to RTMR3, [`super::ccel::mr_name`]).
    pub register: u32,
    /// `eventType`.
    pub event_type: EventType,
    /// `digests`, in the order they appear.
    pub digests: Vec<EventDigest>,
    /// `event`: the event data.
    pub data: Vec<u8>,
}

impl Event {
    /// The bytes of the whole `TCG_PCR_EVENT2` as received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The digest of `alg`, if the event has one.
    pub fn digest(&self, alg: HashAlg) -> Option<&[u8]> {
        self.digests
            .iter()
            .find(|d| d.alg == alg)
            .map(|d| d.digest.as_slice())
    }

    /// Whether the event was extended into its register: every type but `EV_NO_ACTION` (PFP:
    /// `EV_NO_ACTION` events are informational and their digests are zero).
    pub fn is_extended(&self) -> bool {
        self.event_type != EventType::EV_NO_ACTION
    }
}

/// What follows the last event of a fixed-size log area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Padding {
    /// Where it starts (the end of the last event).
    pub offset: usize,
    /// How long it is.
    pub len: usize,
    /// The byte it is made of: 0x00 or 0xFF.
    pub byte: u8,
}

/// A parsed crypto-agile event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLog {
    raw: Vec<u8>,
    /// `pcrIndex` of the Spec ID header (0 in TPM logs; TDX firmware writes 1).
    pub header_register: u32,
    /// The Spec ID event.
    pub spec_id: SpecIdEvent,
    /// The `TCG_PCR_EVENT2` events, in log order (their `index` starts at 1).
    pub events: Vec<Event>,
    /// The padding after the last event, if the log area had any.
    pub padding: Option<Padding>,
}

impl EventLog {
    /// Parses a log with the default [`Limits`].
    pub fn parse(bytes: &[u8]) -> Result<EventLog, EventLogError> {
        EventLog::parse_limited(bytes, &Limits::default())
    }

    /// Parses a log, all of `bytes`: events up to the end, or up to padding of 0x00 or 0xFF that
    /// runs to the end.
    pub fn parse_limited(bytes: &[u8], limits: &Limits) -> Result<EventLog, EventLogError> {
        if bytes.len() > limits.max_log_len {
            return Err(EventLogError::TooLarge {
                len: bytes.len(),
                max: limits.max_log_len,
            });
        }
        if bytes.is_empty() || padding_at(bytes, 0).is_some() {
            return Err(EventLogError::Empty);
        }
        let mut r = Reader {
            bytes,
            pos: 0,
            event: 0,
        };
        let (header_register, spec_id) = read_header(&mut r, limits)?;
        let mut events = Vec::new();
        let mut padding = None;
        while r.pos < bytes.len() {
            if let Some(p) = padding_at(bytes, r.pos) {
                padding = Some(p);
                break;
            }
            // The header counts as one event.
            if events.len() + 1 >= limits.max_events {
                return Err(EventLogError::TooManyEvents {
                    max: limits.max_events,
                });
            }
            r.event = events.len() + 1;
            events.push(read_event2(&mut r, &spec_id, limits)?);
        }
        Ok(EventLog {
            raw: bytes.to_vec(),
            header_register,
            spec_id,
            events,
            padding,
        })
    }

    /// The log as received, padding included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The log without its padding: what a CCEL log area is "trimmed to its last event".
    pub fn trimmed_bytes(&self) -> &[u8] {
        match self.padding {
            Some(p) => self.raw.get(..p.offset).unwrap_or(&self.raw),
            None => &self.raw,
        }
    }

    /// The locality of the `TCG_EfiStartupLocalityEvent` (an `EV_NO_ACTION` event of register
    /// 0 with signature "StartupLocality"), if the log has one: the locality at which the TPM was
    /// started, which sets the last byte of PCR 0's initial value (PFP; 3 or 4 on platforms with
    /// an H-CRTM). The first such event counts.
    pub fn startup_locality(&self) -> Option<u8> {
        self.events.iter().find_map(|e| {
            if e.event_type != EventType::EV_NO_ACTION || e.register != 0 {
                return None;
            }
            match e.data.split_at_checked(STARTUP_LOCALITY_SIGNATURE.len()) {
                Some((sig, [locality])) if sig == STARTUP_LOCALITY_SIGNATURE => Some(*locality),
                _ => None,
            }
        })
    }
}

/// Padding from `pos` to the end: all 0x00 or all 0xFF, at least one byte.
fn padding_at(bytes: &[u8], pos: usize) -> Option<Padding> {
    let rest = bytes.get(pos..)?;
    let byte = *rest.first()?;
    (matches!(byte, 0x00 | 0xFF) && rest.iter().all(|b| *b == byte)).then_some(Padding {
        offset: pos,
        len: rest.len(),
        byte,
    })
}

/// A cursor that names the event and the field of every short read.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    event: usize,
}

impl<'a> Reader<'a> {
    fn take(
        &mut self,
        n: usize,
        field: impl FnOnce() -> String,
    ) -> Result<&'a [u8], EventLogError> {
        let available = self.bytes.len().saturating_sub(self.pos);
        let out = self
            .pos
            .checked_add(n)
            .and_then(|end| self.bytes.get(self.pos..end))
            .ok_or_else(|| EventLogError::Truncated {
                event: self.event,
                field: field(),
                offset: self.pos,
                needed: n,
                available,
            })?;
        self.pos += n;
        Ok(out)
    }

    fn u8(&mut self, field: &str) -> Result<u8, EventLogError> {
        Ok(self.take(1, || field.to_string())?[0])
    }

    fn u16(&mut self, field: impl FnOnce() -> String) -> Result<u16, EventLogError> {
        let b = self.take(2, field)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, field: &str) -> Result<u32, EventLogError> {
        let b = self.take(4, || field.to_string())?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Event 0: a `TCG_PCR_EVENT` whose data is the Spec ID event.
fn read_header(r: &mut Reader<'_>, limits: &Limits) -> Result<(u32, SpecIdEvent), EventLogError> {
    let register = r.u32("pcrIndex")?;
    let event_type = EventType(r.u32("eventType")?);
    if event_type != EventType::EV_NO_ACTION {
        return Err(EventLogError::HeaderType { found: event_type });
    }
    let digest = r.take(20, || "digest".into())?;
    let size = r.u32("eventDataSize")?;
    let data = read_data(r, size, "event", limits)?;
    if !data.starts_with(SPEC_ID_EVENT03) {
        return Err(EventLogError::NotCryptoAgile {
            found: data.iter().take(16).copied().collect(),
        });
    }
    if digest.iter().any(|b| *b != 0) {
        return Err(EventLogError::HeaderDigest);
    }
    // The Spec ID event is read from its own data, so that its fields cannot run into event 1;
    // offsets in errors stay those of the log.
    let base = r.pos - data.len();
    let mut s = Reader {
        bytes: r.bytes.get(..r.pos).unwrap_or_default(),
        pos: base + SPEC_ID_EVENT03.len(),
        event: 0,
    };
    let platform_class = s.u32("platformClass")?;
    let spec_version_minor = s.u8("specVersionMinor")?;
    let spec_version_major = s.u8("specVersionMajor")?;
    let spec_errata = s.u8("specErrata")?;
    let uintn_size = s.u8("uintnSize")?;
    let count = s.u32("numberOfAlgorithms")?;
    let n = usize::try_from(count).unwrap_or(usize::MAX);
    if n == 0 || n > MAX_ALGORITHMS {
        return Err(EventLogError::AlgorithmCount { count });
    }
    let mut algorithms: Vec<AlgorithmSize> = Vec::with_capacity(n);
    for i in 0..n {
        let alg = HashAlg(s.u16(|| format!("digestSizes[{i}].algorithmId"))?);
        let digest_size = s.u16(|| format!("digestSizes[{i}].digestSize"))?;
        let expected = alg.digest_len();
        let size_ok = match expected {
            Some(len) => usize::from(digest_size) == len,
            None => digest_size != 0 && usize::from(digest_size) <= MAX_DIGEST_LEN,
        };
        if !size_ok {
            return Err(EventLogError::DigestSize {
                alg,
                declared: digest_size,
                expected,
            });
        }
        if algorithms.iter().any(|a| a.alg == alg) {
            return Err(EventLogError::DuplicateAlgorithm { alg });
        }
        algorithms.push(AlgorithmSize { alg, digest_size });
    }
    let vendor_info_size = s.u8("vendorInfoSize")?;
    let vendor_info = s.take(usize::from(vendor_info_size), || "vendorInfo".into())?;
    if s.pos != r.pos {
        return Err(EventLogError::SpecIdTrailing { len: r.pos - s.pos });
    }
    Ok((
        register,
        SpecIdEvent {
            platform_class,
            spec_version_minor,
            spec_version_major,
            spec_errata,
            uintn_size,
            algorithms,
            vendor_info: vendor_info.to_vec(),
        },
    ))
}

/// `eventSize` bytes of event data, bounded before anything is read.
fn read_data<'a>(
    r: &mut Reader<'a>,
    size: u32,
    field: &str,
    limits: &Limits,
) -> Result<&'a [u8], EventLogError> {
    let len = usize::try_from(size).unwrap_or(usize::MAX);
    if len > limits.max_event_data_len {
        return Err(EventLogError::EventDataTooLarge {
            event: r.event,
            size,
            max: limits.max_event_data_len,
        });
    }
    r.take(len, || field.to_string())
}

/// One `TCG_PCR_EVENT2` at the reader's position.
fn read_event2(
    r: &mut Reader<'_>,
    spec_id: &SpecIdEvent,
    limits: &Limits,
) -> Result<Event, EventLogError> {
    let start: Range<usize> = r.pos..r.pos;
    let register = r.u32("pcrIndex")?;
    let event_type = EventType(r.u32("eventType")?);
    let count = r.u32("digests.count")?;
    let expected = spec_id.algorithms.len();
    if usize::try_from(count).ok() != Some(expected) {
        return Err(EventLogError::DigestCount {
            event: r.event,
            expected,
            found: count,
        });
    }
    let mut digests: Vec<EventDigest> = Vec::with_capacity(expected);
    for i in 0..expected {
        let alg = HashAlg(r.u16(|| format!("digests[{i}].hashAlg"))?);
        let Some(size) = spec_id.digest_size(alg) else {
            return Err(EventLogError::UnknownAlgorithm {
                event: r.event,
                digest: i,
                alg,
            });
        };
        if digests.iter().any(|d| d.alg == alg) {
            return Err(EventLogError::DuplicateDigest {
                event: r.event,
                alg,
            });
        }
        let digest = r.take(size, || format!("digests[{i}].digest"))?;
        digests.push(EventDigest {
            alg,
            digest: digest.to_vec(),
        });
    }
    let size = r.u32("eventSize")?;
    let data = read_data(r, size, "event", limits)?;
    let raw = r.bytes.get(start.start..r.pos).unwrap_or_default();
    Ok(Event {
        raw: raw.to_vec(),
        index: r.event,
        offset: start.start,
        register,
        event_type,
        digests,
        data: data.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Spec ID header listing `algs`, then nothing.
    pub(crate) fn header(algs: &[(u16, u16)]) -> Vec<u8> {
        let mut data = SPEC_ID_EVENT03.to_vec();
        data.extend_from_slice(&0u32.to_le_bytes());
        data.extend_from_slice(&[0, 2, 0, 2]);
        data.extend_from_slice(&(algs.len() as u32).to_le_bytes());
        for (a, s) in algs {
            data.extend_from_slice(&a.to_le_bytes());
            data.extend_from_slice(&s.to_le_bytes());
        }
        data.push(0);
        let mut out = Vec::new();
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&[0; 20]);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&data);
        out
    }

    /// A `TCG_PCR_EVENT2` with `digests`.
    pub(crate) fn event2(
        register: u32,
        ty: u32,
        digests: &[(u16, Vec<u8>)],
        data: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&register.to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&(digests.len() as u32).to_le_bytes());
        for (a, d) in digests {
            out.extend_from_slice(&a.to_le_bytes());
            out.extend_from_slice(d);
        }
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn unknown_algorithms_are_read_at_their_declared_size() {
        let mut log = header(&[(0x000B, 32), (0x7777, 5)]);
        let e = event2(
            7,
            4,
            &[(0x000B, vec![1; 32]), (0x7777, vec![2; 5])],
            &[0; 4],
        );
        log.extend_from_slice(&e);
        let parsed = EventLog::parse(&log).unwrap();
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(
            parsed.events[0].digest(HashAlg(0x7777)),
            Some(&[2u8; 5][..])
        );
        assert_eq!(parsed.events[0].as_bytes(), e);
        assert_eq!(parsed.events[0].event_type, EventType::EV_SEPARATOR);
        assert_eq!(parsed.padding, None);
    }

    #[test]
    fn zero_or_ff_padding_ends_the_log_and_other_bytes_do_not() {
        let mut log = header(&[(0x000C, 48)]);
        log.extend_from_slice(&event2(1, 4, &[(0x000C, vec![1; 48])], &[0; 4]));
        let end = log.len();
        for byte in [0x00, 0xFF] {
            let mut padded = log.clone();
            padded.resize(end + 100, byte);
            let parsed = EventLog::parse(&padded).unwrap();
            assert_eq!(
                parsed.padding,
                Some(Padding {
                    offset: end,
                    len: 100,
                    byte
                })
            );
            assert_eq!(parsed.trimmed_bytes(), &log[..]);
        }
        let mut garbage = log.clone();
        garbage.resize(end + 100, 0);
        garbage[end + 50] = 1;
        assert!(matches!(
            EventLog::parse(&garbage),
            Err(EventLogError::DigestCount { event: 2, .. })
        ));
    }

    #[test]
    fn spec_id_declarations_are_checked() {
        assert_eq!(
            EventLog::parse(&header(&[(0x000B, 20)])),
            Err(EventLogError::DigestSize {
                alg: HashAlg::SHA256,
                declared: 20,
                expected: Some(32)
            })
        );
        assert!(matches!(
            EventLog::parse(&header(&[(0x7777, 0)])),
            Err(EventLogError::DigestSize { expected: None, .. })
        ));
        assert!(matches!(
            EventLog::parse(&header(&[(0x7777, 65)])),
            Err(EventLogError::DigestSize { .. })
        ));
        assert_eq!(
            EventLog::parse(&header(&[(0x000B, 32), (0x000B, 32)])),
            Err(EventLogError::DuplicateAlgorithm {
                alg: HashAlg::SHA256
            })
        );
        assert_eq!(
            EventLog::parse(&header(&[])),
            Err(EventLogError::AlgorithmCount { count: 0 })
        );
        let mut old = header(&[(0x000B, 32)]);
        old[32 + 14] = b'0'; // "Spec ID Event00"
        assert!(matches!(
            EventLog::parse(&old),
            Err(EventLogError::NotCryptoAgile { .. })
        ));
        assert_eq!(EventLog::parse(&[0; 64]), Err(EventLogError::Empty));
        assert_eq!(EventLog::parse(&[]), Err(EventLogError::Empty));
    }

    #[test]
    fn hostile_sizes_are_refused_before_anything_is_allocated() {
        let mut log = header(&[(0x000B, 32)]);
        let mut e = event2(0, 4, &[(0x000B, vec![0; 32])], &[]);
        let n = e.len();
        e[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        log.extend_from_slice(&e);
        assert_eq!(
            EventLog::parse(&log),
            Err(EventLogError::EventDataTooLarge {
                event: 1,
                size: u32::MAX,
                max: DEFAULT_MAX_EVENT_DATA_LEN
            })
        );
        let limits = Limits {
            max_events: 3,
            ..Limits::default()
        };
        let mut log = header(&[(0x000B, 32)]);
        for _ in 0..3 {
            log.extend_from_slice(&event2(0, 4, &[(0x000B, vec![9; 32])], &[0; 4]));
        }
        assert_eq!(
            EventLog::parse_limited(&log, &limits),
            Err(EventLogError::TooManyEvents { max: 3 })
        );
        let limits = Limits {
            max_log_len: 10,
            ..Limits::default()
        };
        assert!(matches!(
            EventLog::parse_limited(&log, &limits),
            Err(EventLogError::TooLarge { max: 10, .. })
        ));
    }

    #[test]
    fn errors_name_the_event_and_the_field() {
        let mut log = header(&[(0x000B, 32), (0x000C, 48)]);
        log.extend_from_slice(&event2(
            0,
            4,
            &[(0x000B, vec![0; 32]), (0x000C, vec![0; 48])],
            &[0; 4],
        ));
        let second = log.len();
        log.extend_from_slice(&event2(
            0,
            4,
            &[(0x000B, vec![0; 32]), (0x000C, vec![0; 48])],
            &[0; 4],
        ));
        let cut = &log[..second + 12 + 2 + 32 + 2 + 10];
        let err = EventLog::parse(cut).unwrap_err();
        assert_eq!(
            err,
            EventLogError::Truncated {
                event: 2,
                field: "digests[1].digest".into(),
                offset: second + 12 + 2 + 32 + 2,
                needed: 48,
                available: 10
            }
        );
        assert_eq!(
            err.to_string(),
            format!(
                "event 2 is truncated: digests[1].digest needs 48 bytes at offset {}, 10 remain",
                second + 48
            )
        );
        let mut wrong = log.clone();
        wrong[second + 12] = 0x04; // SHA-1, not declared
        assert_eq!(
            EventLog::parse(&wrong),
            Err(EventLogError::UnknownAlgorithm {
                event: 2,
                digest: 0,
                alg: HashAlg::SHA1
            })
        );
    }

    #[test]
    fn startup_locality_is_read_from_pcr0_no_action_events() {
        let mut log = header(&[(0x000B, 32)]);
        let mut data = STARTUP_LOCALITY_SIGNATURE.to_vec();
        data.push(3);
        log.extend_from_slice(&event2(0, 3, &[(0x000B, vec![0; 32])], &data));
        assert_eq!(EventLog::parse(&log).unwrap().startup_locality(), Some(3));
        assert!(!EventLog::parse(&log).unwrap().events[0].is_extended());
    }
}
