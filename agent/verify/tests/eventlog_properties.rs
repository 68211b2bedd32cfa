// SPDX-License-Identifier: Apache-2.0
//! Randomised tests of the event-log parser and replay, from a fixed seed so that a failure
//! always reproduces: logs of random banks, registers, event types and data are built with the
//! log builder (`thimble_evidence::eventlog::build`), then
//! - parse back to exactly the events built;
//! - replay, in every bank, to the values an independent fold in this test computes
//!   (`H(value ‖ digest)` from the register's reset value: zeros, PCR 0's locality byte, all ones
//!   for PCRs 17 to 22), and a TD log to the RTMRs the same fold gives;
//! - decode into claims and serialise without a panic.
//!
//! Random mutations of them (byte flips, cuts, splices, inserted bytes, length fields set to
//! extremes) give a log or a typed error, never a panic, with the same invariants when they
//! parse. This complements the mutation tests over real logs in `eventlog_vectors.rs`.

#![expect(clippy::unwrap_used, reason = "test assertions")]

use std::collections::BTreeMap;

use sha2::{Digest, Sha256, Sha384, Sha512};
use thimble_evidence::eventlog::build::LogBuilder;
use thimble_evidence::eventlog::{EventLog, EventLogClaims, EventType, HashAlg};
use thimble_verify::eventlog::{Register, replay_tdx, replay_tpm};

/// xorshift64*: small, deterministic, good enough to pick shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

const TYPES: [EventType; 12] = [
    EventType::EV_POST_CODE,
    EventType::EV_SEPARATOR,
    EventType::EV_ACTION,
    EventType::EV_EVENT_TAG,
    EventType::EV_IPL,
    EventType::EV_EFI_VARIABLE_DRIVER_CONFIG,
    EventType::EV_EFI_VARIABLE_AUTHORITY,
    EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
    EventType::EV_EFI_ACTION,
    EventType::EV_EFI_GPT_EVENT,
    EventType(0x8000_00FF),
    EventType(0x1234),
];

fn hash(alg: HashAlg, data: &[u8]) -> Vec<u8> {
    match alg {
        HashAlg::SHA256 => Sha256::digest(data).to_vec(),
        HashAlg::SHA384 => Sha384::digest(data).to_vec(),
        _ => Sha512::digest(data).to_vec(),
    }
}

/// Event data: random bytes, or one of the forms claims decode (GRUB strings), so that the
/// decoders see both.
fn data(rng: &mut Rng) -> Vec<u8> {
    match rng.below(4) {
        0 => b"kernel_cmdline: /vmlinuz root=/dev/vda1 ro".to_vec(),
        1 => b"grub_cmd: linux /vmlinuz root=/dev/vda1".to_vec(),
        _ => {
            let len = rng.below(200) as usize;
            rng.bytes(len)
        }
    }
}

struct Built {
    bytes: Vec<u8>,
    banks: Vec<HashAlg>,
    /// (register, type, data) of each event after the header, StartupLocality first if any.
    events: Vec<(u32, EventType, Vec<u8>)>,
    locality: Option<u8>,
}

fn build(rng: &mut Rng, max_register: u32) -> Built {
    let mut banks: Vec<HashAlg> = [HashAlg::SHA256, HashAlg::SHA384, HashAlg::SHA512]
        .into_iter()
        .filter(|_| rng.below(2) == 0)
        .collect();
    if banks.is_empty() {
        banks.push(HashAlg::SHA384);
    }
    let mut b = LogBuilder::new(&banks).unwrap();
    let mut events = Vec::new();
    let locality = (max_register > 4 && rng.below(3) == 0).then(|| rng.below(5) as u8);
    if let Some(l) = locality {
        b.startup_locality(l).unwrap();
        events.push((0, EventType::EV_NO_ACTION, Vec::new()));
    }
    for _ in 0..rng.below(40) {
        let register = rng.below(u64::from(max_register)) as u32;
        let event_type = TYPES[rng.below(TYPES.len() as u64) as usize];
        let d = data(rng);
        b.event(register, event_type, &d).unwrap();
        events.push((register, event_type, d));
    }
    Built {
        bytes: b.finish(),
        banks,
        events,
        locality,
    }
}

/// The replay this test computes on its own, over `(register, digest)` pairs in order.
fn fold(
    alg: HashAlg,
    extended: impl Iterator<Item = (u32, Vec<u8>)>,
    reset: impl Fn(u32, usize) -> Vec<u8>,
) -> BTreeMap<u32, Vec<u8>> {
    let len = hash(alg, b"").len();
    let mut out: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for (register, digest) in extended {
        let value = out.entry(register).or_insert_with(|| reset(register, len));
        let mut input = value.clone();
        input.extend_from_slice(&digest);
        *value = hash(alg, &input);
    }
    out
}

fn tpm_reset(locality: Option<u8>) -> impl Fn(u32, usize) -> Vec<u8> {
    move |register, len| {
        let mut v = vec![0; len];
        if (17..=22).contains(&register) {
            v.fill(0xFF);
        } else if register == 0 {
            if let (Some(l), Some(last)) = (locality, v.last_mut()) {
                *last = l;
            }
        }
        v
    }
}

/// Parses, decodes and replays whatever `bytes` is; checks the replay against the fold when it
/// parses, and says whether it did.
fn exercise(bytes: &[u8], tdx: bool) -> bool {
    let Ok(log) = EventLog::parse(bytes) else {
        return false;
    };
    let claims = EventLogClaims::from_log(&log);
    serde_json::to_vec(&claims).unwrap();
    let extended = |alg: HashAlg| {
        log.events
            .iter()
            .filter(|e| e.is_extended())
            .filter_map(move |e| e.digest(alg).map(|d| (e.register, d.to_vec())))
            .collect::<Vec<_>>()
    };
    if tdx {
        if let Ok(replay) = replay_tdx(&log) {
            let want = fold(
                HashAlg::SHA384,
                extended(HashAlg::SHA384)
                    .into_iter()
                    .filter(|(r, _)| *r != 0),
                |_, len| vec![0; len],
            );
            for (register, value) in want {
                let index = u8::try_from(register - 1).unwrap();
                assert_eq!(replay.registers[&Register::Rtmr(index)].value, value);
            }
        }
    } else {
        for alg in log.spec_id.algorithms.iter().map(|a| a.alg) {
            if let Ok(replay) = replay_tpm(&log, alg) {
                let want = fold(
                    alg,
                    extended(alg).into_iter(),
                    tpm_reset(log.startup_locality()),
                );
                assert_eq!(replay.registers.len(), want.len());
                for (register, value) in want {
                    assert_eq!(replay.registers[&Register::Pcr(register)].value, value);
                }
            }
        }
    }
    true
}

#[test]
fn built_logs_parse_back_and_replay_as_an_independent_fold_says() {
    let mut rng = Rng(0x7468_696d_626c_6531);
    for round in 0..300 {
        let tdx = round % 2 == 0;
        let built = build(&mut rng, if tdx { 5 } else { 24 });
        let log = EventLog::parse(&built.bytes).unwrap();
        assert_eq!(
            log.spec_id
                .algorithms
                .iter()
                .map(|a| a.alg)
                .collect::<Vec<_>>(),
            built.banks
        );
        assert_eq!(log.events.len(), built.events.len(), "round {round}");
        assert_eq!(log.startup_locality(), built.locality);
        for (e, (register, event_type, data)) in log.events.iter().zip(&built.events) {
            assert_eq!((e.register, e.event_type), (*register, *event_type));
            if *event_type != EventType::EV_NO_ACTION {
                assert_eq!(&e.data, data);
                for bank in &built.banks {
                    assert_eq!(e.digest(*bank).unwrap(), hash(*bank, data).as_slice());
                }
            }
        }
        assert!(exercise(&built.bytes, tdx));
    }
}

#[test]
fn mutated_logs_never_panic() {
    let mut rng = Rng(0x6d75_7461_7465_2121);
    let mut parsed = 0;
    for round in 0..400 {
        let tdx = round % 2 == 0;
        let built = build(&mut rng, if tdx { 5 } else { 24 });
        let mut bytes = built.bytes;
        for _ in 0..=rng.below(4) {
            let at = rng.below(bytes.len() as u64) as usize;
            match rng.below(5) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes.truncate(at),
                2 => {
                    let n = rng.below(16) as usize;
                    let junk = rng.bytes(n);
                    bytes.splice(at..at, junk);
                }
                3 => {
                    // A 32-bit field set to an extreme: sizes and counts are read as such.
                    let v = [0u32, 1, 0xFFFF, 0x7FFF_FFFF, u32::MAX][rng.below(5) as usize];
                    let end = (at + 4).min(bytes.len());
                    bytes[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
                }
                _ => {
                    let from = rng.below(bytes.len() as u64) as usize;
                    let chunk: Vec<u8> = bytes[from..].iter().take(64).copied().collect();
                    bytes.splice(at..at, chunk);
                }
            }
            if bytes.is_empty() {
                break;
            }
        }
        if exercise(&bytes, tdx) {
            parsed += 1;
        }
    }
    // Some mutations (a flipped digest or data byte) leave a log that parses: those were
    // replayed and checked too.
    assert!(parsed > 20, "only {parsed} of 400 mutated logs parsed");
}
