// SPDX-License-Identifier: Apache-2.0
//! On-disk cache of fetched endorsements, so that a collect after the first one needs no
//! network:
//! - AMD: one JSON file per (chip, TCB) for the VCEK and its chain, kept for as long as the
//!   source allowed (`cacheControl` / `Cache-Control: max-age`, or a default), and one per ARK
//!   CRL (product, VCEK or VLEK side, ARK), kept until the CRL's own nextUpdate.
//! - Intel: one file per (kind of collateral service, FMSPC, PCK CA) for the four TDX collateral items
//!   (TCB info, QE identity, PCK CRL, root CA CRL), kept until the earliest `nextUpdate` among
//!   them, and no longer than the service's `Cache-Control: max-age` (see
//!   [`tdx_collateral_expiry`]; docs/endorsements.md states the rule).
//!
//! The cache is not trusted: an entry is used only after its certificates verify the new report
//! against the pinned roots, its CRL is again found issued and signed by the chain's ARK, or its
//! collateral verifies the new quote, exactly as a fresh answer would be. A damaged, expired or
//! non-matching entry is ignored and replaced. Writes go through a temporary file and a rename
//! so that a reader never sees half an entry.
//!
//! Many collections may start together on one node (container entrypoints, a DaemonSet and a
//! job) and share one cache directory. So that they make one request per item between them, and
//! not one each (IMDS allows five a second per VM), a collector takes the entry's lock
//! ([`EndorsementCache::lock`]) before fetching an item the cache would store, looks in the cache
//! again once it holds it (the holder before it may have filled the entry), and fetches only
//! when the entry is still missing. The wait is bounded ([`EndorsementCache::with_lock_deadline`]),
//! so that a holder that hangs costs the others part of their deadline, never all of it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use serde::{Deserialize, Serialize};
use thimble_evidence::bundle::{Endorsement, EndorsementKind};
use thimble_evidence::snp::{AmdCert, Product, SnpReport};
use thimble_evidence::tdx::TcbInfoBody;
use thimble_evidence::tdx::pcs::{CollateralService, PckCa};
use thimble_evidence::time_fmt::{format_unix, parse_rfc3339};

/// Lifetime of an entry whose source gave none.
pub const DEFAULT_MAX_AGE_SECS: u64 = 24 * 60 * 60;

/// One cached endorsement set (a VCEK and its chain, or one CRL).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheEntry {
    /// When it was stored, seconds since the epoch.
    pub stored_at: i64,
    /// When it stops being used, seconds since the epoch.
    pub expires_at: i64,
    /// Who served it: `thim` or `kds` (AMD), `thim` or `pcs` (Intel).
    pub source: String,
    /// The endorsements, as they went into the bundle that fetched them.
    pub endorsements: Vec<Endorsement>,
}

/// Largest cache entry read, in bytes. An entry holds a few certificates or one CRL (a few KiB);
/// the cache directory may be writable by others, so a reader does not load whatever it finds.
const MAX_ENTRY_BYTES: u64 = 1024 * 1024;

/// How long [`EndorsementCache::lock`] waits for another process's fetch when the collector set
/// no deadline of its own.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(15);

/// How often a waiting process tries the lock again. `flock` has no timeout, and a blocking call
/// could not be abandoned at the deadline, so waiters poll with `LOCK_NB`; a few milliseconds is
/// nothing beside a fetch and costs nothing measurable for a few dozen waiters.
const LOCK_POLL: Duration = Duration::from_millis(5);

/// A cache directory.
#[derive(Debug, Clone)]
pub struct EndorsementCache {
    dir: PathBuf,
    /// Until when [`EndorsementCache::lock`] waits; `None` is [`DEFAULT_LOCK_WAIT`] from the call.
    lock_until: Option<Instant>,
}

/// Why an entry's lock was not taken. The caller fetches without it: the lock only saves
/// requests, and a collection must not fail for want of it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another process held the lock until the deadline (its fetch is slow or hung).
    #[error("another process held the cache lock {path} until the deadline")]
    Busy {
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file could not be created, opened or locked (a read-only cache directory).
    #[error("cannot take the cache lock {path}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// An exclusive hold on one cache entry's lock file, from [`EndorsementCache::lock`]. Dropping it
/// removes the lock file and then unlocks it, so that a cache directory holds entries only once
/// no fetch is in flight.
#[derive(Debug)]
pub struct EntryLock {
    path: PathBuf,
    // Declared last: fields drop after `Drop::drop`, so the file is unlinked while still locked.
    _file: Flock<fs::File>,
}

impl Drop for EntryLock {
    fn drop(&mut self) {
        // A waiter that locks the unlinked file afterwards sees that the path no longer names
        // it and starts again ([`EndorsementCache::lock`]); a crash leaves the file behind,
        // which is harmless, since the kernel drops a dead process's locks.
        let _ = fs::remove_file(&self.path);
    }
}

/// Why a cache operation failed (lookups never fail: a bad entry is a miss).
#[derive(Debug, thiserror::Error)]
#[error("cannot write the endorsement cache entry {path}")]
pub struct CacheError {
    /// The entry.
    pub path: PathBuf,
    /// The write error.
    #[source]
    pub source: std::io::Error,
}

impl EndorsementCache {
    /// The cache in `dir`, created on the first write.
    pub fn new(dir: impl Into<PathBuf>) -> EndorsementCache {
        EndorsementCache {
            dir: dir.into(),
            lock_until: None,
        }
    }

    /// The same cache, whose [`EndorsementCache::lock`] waits no later than `until`.
    pub fn with_lock_deadline(mut self, until: Instant) -> EndorsementCache {
        self.lock_until = Some(until);
        self
    }

    /// The lock file of the entry `entry`: `.<entry name>.lock` beside it.
    pub fn lock_path(&self, entry: &Path) -> PathBuf {
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.dir.join(format!(".{name}.lock"))
    }

    /// Takes the exclusive lock of the entry `entry` (a path from this cache), waiting while
    /// another process holds it, up to the deadline ([`EndorsementCache::with_lock_deadline`]).
    /// Across processes, one fetch per entry is then in flight: whoever gets the lock after
    /// another must look the entry up again before fetching. Threads of one process exclude
    /// each other too, since each call opens the file anew.
    pub fn lock(&self, entry: &Path) -> Result<EntryLock, LockError> {
        let until = self
            .lock_until
            .unwrap_or_else(|| Instant::now() + DEFAULT_LOCK_WAIT);
        let path = self.lock_path(entry);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(&self.dir).map_err(io)?;
        loop {
            let file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                // The directory may be writable by others: a symlink planted at the lock's
                // name must not make thimble create or lock a file elsewhere.
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&path)
                .map_err(io)?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(held) => {
                    // The previous holder unlinks the file before unlocking it; a lock on a file
                    // opened before that is on an orphan, and another process may hold the file
                    // that the path names now. The lock counts only on the named file.
                    let named = fs::metadata(&path).ok();
                    let ours = held.metadata().ok();
                    if let (Some(n), Some(o)) = (named, ours) {
                        if n.dev() == o.dev() && n.ino() == o.ino() {
                            return Ok(EntryLock { path, _file: held });
                        }
                    }
                    // Try again, on the file the path names now, within the same deadline.
                }
                Err((_, Errno::EWOULDBLOCK)) => {}
                Err((_, e)) => return Err(io(e.into())),
            }
            let now = Instant::now();
            if now >= until {
                return Err(LockError::Busy { path });
            }
            std::thread::sleep(LOCK_POLL.min(until - now));
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry file for a report: `amd-<chip id>-<tcbm>.json`. A masked chip id has no VCEK
    /// of its own to cache.
    pub fn path_for(&self, report: &SnpReport) -> Option<PathBuf> {
        if report.chip_id_masked() {
            return None;
        }
        let tcbm = format!("{:016x}", u64::from_le_bytes(report.reported_tcb));
        Some(
            self.dir
                .join(format!("amd-{}-{tcbm}.json", hex::encode(report.chip_id))),
        )
    }

    /// The entry file for an ARK's CRL: `amd-crl-{vcek|vlek}-<product>-<ARK>.json`, where
    /// `<ARK>` starts the SHA-256 of the ARK's DER, so that CRLs of different roots for one
    /// product (AMD's and a test root) do not replace each other.
    pub fn crl_path_for(&self, product: Product, vlek: bool, ark: &AmdCert) -> PathBuf {
        let side = if vlek { "vlek" } else { "vcek" };
        let digest = ring::digest::digest(&ring::digest::SHA256, ark.der());
        let ark_id = hex::encode(&digest.as_ref()[..8]);
        self.dir.join(format!(
            "amd-crl-{side}-{}-{ark_id}.json",
            product.kds_name()
        ))
    }

    /// The unexpired entry at `path`; `None` for anything missing, damaged or expired.
    fn read_entry(path: &Path, now: i64) -> Option<CacheEntry> {
        let f = fs::File::open(path).ok()?;
        let bytes = crate::env::read_at_most(f, MAX_ENTRY_BYTES.saturating_add(1)).ok()?;
        if bytes.len() as u64 > MAX_ENTRY_BYTES {
            return None;
        }
        let entry: CacheEntry = serde_json::from_slice(&bytes).ok()?;
        (entry.expires_at > now).then_some(entry)
    }

    /// The unexpired CRL entry for the ARK `ark` of `product`, with the CRL's bytes. Whether
    /// the CRL is the ARK's and still current is the caller's to check.
    pub fn lookup_crl(
        &self,
        product: Product,
        vlek: bool,
        ark: &AmdCert,
        now: i64,
    ) -> Option<(CacheEntry, Vec<u8>)> {
        let entry = Self::read_entry(&self.crl_path_for(product, vlek, ark), now)?;
        let [endorsement] = entry.endorsements.as_slice() else {
            return None;
        };
        let bytes = endorsement.bytes().ok()?;
        Some((entry, bytes))
    }

    /// Stores `crl` (one endorsement) for the ARK `ark` of `product` until `expires_at`, its
    /// nextUpdate.
    pub fn store_crl(
        &self,
        product: Product,
        vlek: bool,
        ark: &AmdCert,
        crl: &Endorsement,
        expires_at: i64,
        now: i64,
    ) -> Result<PathBuf, CacheError> {
        let path = self.crl_path_for(product, vlek, ark);
        let entry = CacheEntry {
            stored_at: now,
            expires_at,
            source: crl.origin.kind.to_string(),
            endorsements: vec![crl.clone()],
        };
        self.write_entry(&path, &entry)?;
        Ok(path)
    }

    /// The unexpired entry for `report`, with its certificates parsed. Verification is the
    /// caller's job.
    pub fn lookup(&self, report: &SnpReport, now: i64) -> Option<(CacheEntry, Vec<AmdCert>)> {
        let entry = Self::read_entry(&self.path_for(report)?, now)?;
        let certs = entry
            .endorsements
            .iter()
            .map(|e| e.bytes().ok().and_then(|b| AmdCert::parse_der(&b).ok()))
            .collect::<Option<Vec<_>>>()?;
        Some((entry, certs))
    }

    /// Stores `endorsements` for `report`.
    pub fn store(
        &self,
        report: &SnpReport,
        source: &str,
        endorsements: &[Endorsement],
        now: i64,
    ) -> Result<Option<PathBuf>, CacheError> {
        let Some(path) = self.path_for(report) else {
            return Ok(None);
        };
        let max_age = endorsements
            .iter()
            .filter_map(|e| e.cache_max_age_secs)
            .min()
            .unwrap_or(DEFAULT_MAX_AGE_SECS);
        let entry = CacheEntry {
            stored_at: now,
            expires_at: now.saturating_add(i64::try_from(max_age).unwrap_or(i64::MAX)),
            source: source.to_string(),
            endorsements: endorsements.to_vec(),
        };
        self.write_entry(&path, &entry)?;
        Ok(Some(path))
    }

    /// The entry file for the TDX collateral of the platform `fmspc` under the PCK CA `ca`, as
    /// services of `service`'s kind serve it: `intel-tdx-{thim|pcs}-<fmspc>-<ca>.json`. The kind
    /// is part of the key because it decides the TCB baseline (THIM serves an older one on
    /// purpose, PCS and a PCCS Intel's current one), so that asking PCS never brings back THIM's
    /// answer; the host is not, since services of one kind serve the same Intel-signed items.
    pub fn tdx_collateral_path(
        &self,
        service: &CollateralService,
        fmspc: &[u8; 6],
        ca: PckCa,
    ) -> PathBuf {
        self.dir.join(format!(
            "intel-tdx-{}-{}-{}.json",
            service.kind(),
            hex::encode(fmspc),
            ca.as_str()
        ))
    }

    /// The unexpired TDX collateral entry for `fmspc` and `ca` from `service`. Whether it
    /// verifies the quote is the caller's to check.
    pub fn lookup_tdx_collateral(
        &self,
        service: &CollateralService,
        fmspc: &[u8; 6],
        ca: PckCa,
        now: i64,
    ) -> Option<CacheEntry> {
        Self::read_entry(&self.tdx_collateral_path(service, fmspc, ca), now)
    }

    /// Stores the TDX collateral `endorsements` for `fmspc` and `ca` from `service` until
    /// `expires_at` ([`tdx_collateral_expiry`]).
    pub fn store_tdx_collateral(
        &self,
        service: &CollateralService,
        fmspc: &[u8; 6],
        ca: PckCa,
        endorsements: &[Endorsement],
        expires_at: i64,
        now: i64,
    ) -> Result<PathBuf, CacheError> {
        let path = self.tdx_collateral_path(service, fmspc, ca);
        let entry = CacheEntry {
            stored_at: now,
            expires_at,
            source: service.kind().as_str().to_owned(),
            endorsements: endorsements.to_vec(),
        };
        self.write_entry(&path, &entry)?;
        Ok(path)
    }

    /// Writes `entry` to `path` through a temporary file and a rename.
    fn write_entry(&self, path: &Path, entry: &CacheEntry) -> Result<(), CacheError> {
        let err = |source| CacheError {
            path: path.to_path_buf(),
            source,
        };
        fs::create_dir_all(&self.dir).map_err(err)?;
        // One temporary name per target and process: two entries written in the same second
        // (the chain, then the CRL) must not collide.
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let write = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(entry).map_err(std::io::Error::other)?)?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if write.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        write.map_err(err)
    }
}

/// A log line for a cache hit of a CRL.
pub fn crl_hit_line(entry: &CacheEntry, path: &Path) -> String {
    format!(
        "cache: AMD CRL from {} cached at {} (until its nextUpdate {}) is the ARK's ({})",
        entry.source,
        format_unix(entry.stored_at),
        format_unix(entry.expires_at),
        path.display()
    )
}

/// A log line for a cache hit.
pub fn hit_line(entry: &CacheEntry, path: &Path) -> String {
    format!(
        "cache: endorsements from {} cached at {} (until {}) verify the report ({})",
        entry.source,
        format_unix(entry.stored_at),
        format_unix(entry.expires_at),
        path.display()
    )
}

/// Until when fetched TDX collateral (`endorsements`: the four items as they go into the bundle,
/// fetched at `now`) may be reused: the earliest `nextUpdate` of the items, Intel's own statement
/// of how long each is current, and never past the earliest `Cache-Control: max-age` the service
/// sent with them ([`DEFAULT_MAX_AGE_SECS`] when it sent none), the service's statement of how
/// long to keep its answer. When an item is already past its `nextUpdate` (Azure THIM serves an
/// older baseline on purpose), the service's lifetime alone counts: asking again within it would
/// bring back the same items.
pub fn tdx_collateral_expiry(endorsements: &[Endorsement], now: i64) -> i64 {
    let max_age = endorsements
        .iter()
        .filter_map(|e| e.cache_max_age_secs)
        .min()
        .unwrap_or(DEFAULT_MAX_AGE_SECS);
    let by_service = now.saturating_add(i64::try_from(max_age).unwrap_or(i64::MAX));
    let next_update = endorsements
        .iter()
        .filter_map(|e| e.next_update.as_deref().and_then(parse_rfc3339))
        .min();
    match next_update {
        Some(n) if n > now => n.min(by_service),
        _ => by_service,
    }
}

/// A log line for a cache hit of TDX collateral, with the TCB evaluation data number of its TCB
/// info (which says how recent Intel's TCB assessment behind it is).
pub fn tdx_hit_line(entry: &CacheEntry, path: &Path) -> String {
    let evaluation = entry
        .endorsements
        .iter()
        .find(|e| e.kind == EndorsementKind::TcbInfo)
        .and_then(|e| e.bytes().ok())
        .and_then(|b| TcbInfoBody::parse(&b).ok())
        .map_or_else(
            || "unknown".to_owned(),
            |t| t.content.tcb_evaluation_data_number.to_string(),
        );
    format!(
        "cache: TDX collateral from {} cached at {} (until {}, TCB evaluation data number {evaluation}) verifies the quote ({})",
        entry.source,
        format_unix(entry.stored_at),
        format_unix(entry.expires_at),
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use thimble_evidence::bundle::{Origin, OriginKind};

    use super::*;

    const NOW: i64 = 1_767_225_600;
    const DAY: i64 = 24 * 60 * 60;

    fn item(next_update: Option<i64>, max_age: Option<u64>) -> Endorsement {
        let mut e = Endorsement::der(
            EndorsementKind::PckCrl,
            b"x",
            Origin::kind(OriginKind::Thim),
            None,
        );
        e.next_update = next_update.map(format_unix);
        e.cache_max_age_secs = max_age;
        e
    }

    #[test]
    fn tdx_collateral_lives_until_the_first_next_update_within_the_services_max_age() {
        let expiry = |items: &[Endorsement]| tdx_collateral_expiry(items, NOW);
        // The earliest nextUpdate, when the service allows that long.
        assert_eq!(
            expiry(&[
                item(Some(NOW + 30 * DAY), Some(60 * DAY as u64)),
                item(Some(NOW + 2 * DAY), None)
            ]),
            NOW + 2 * DAY
        );
        // The smallest max-age, when it comes first.
        assert_eq!(
            expiry(&[
                item(Some(NOW + 30 * DAY), Some(DAY as u64)),
                item(Some(NOW + 30 * DAY), Some(3 * DAY as u64))
            ]),
            NOW + DAY
        );
        // No max-age at all: the default lifetime.
        assert_eq!(
            expiry(&[item(Some(NOW + 30 * DAY), None)]),
            NOW + DEFAULT_MAX_AGE_SECS as i64
        );
        // Already past its nextUpdate (THIM's older baseline): the service's lifetime alone.
        assert_eq!(
            expiry(&[
                item(Some(NOW - DAY), Some(DAY as u64)),
                item(Some(NOW + 30 * DAY), None)
            ]),
            NOW + DAY
        );
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn one_holder_at_a_time_and_no_lock_file_left() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let dir = tempfile::tempdir().unwrap();
        let cache = EndorsementCache::new(dir.path());
        let entry = dir.path().join("amd-x.json");
        let holders = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (cache, entry) = (cache.clone(), entry.clone());
                let (holders, most) = (Arc::clone(&holders), Arc::clone(&most));
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let held = cache.lock(&entry).unwrap();
                        let n = holders.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(200));
                        holders.fetch_sub(1, Ordering::SeqCst);
                        drop(held);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "two holders at once");
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    }

    #[test]
    fn a_held_lock_is_given_up_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("amd-x.json");
        let held = EndorsementCache::new(dir.path()).lock(&entry).unwrap();
        let start = Instant::now();
        let waiter = EndorsementCache::new(dir.path())
            .with_lock_deadline(start + Duration::from_millis(100));
        match waiter.lock(&entry) {
            Err(LockError::Busy { path }) => assert_eq!(path, waiter.lock_path(&entry)),
            other => panic!("{other:?}"),
        }
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        drop(held);
        // A free lock is taken even past the deadline: only waiting is bounded.
        assert!(waiter.lock(&entry).is_ok());
    }

    #[test]
    fn entries_are_written_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let cache = EndorsementCache::new(dir.path());
        let service = CollateralService::thim("http://127.0.0.1:9");
        let fmspc = [0x90, 0xc0, 0x6f, 0, 0, 0];
        let items = [item(Some(NOW + DAY), None)];
        let path = cache
            .store_tdx_collateral(&service, &fmspc, PckCa::Platform, &items, NOW + DAY, NOW)
            .unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(names(dir.path()), std::slice::from_ref(&name));
        let entry = cache
            .lookup_tdx_collateral(&service, &fmspc, PckCa::Platform, NOW)
            .unwrap();
        assert_eq!(entry.endorsements.len(), 1);

        // The rename fails (a directory stands where the entry goes) after the temporary file
        // was written: the error names the entry, and no temporary file is left behind.
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        fs::write(path.join("keep"), b"x").unwrap();
        let err = cache
            .store_tdx_collateral(&service, &fmspc, PckCa::Platform, &items, NOW + DAY, NOW)
            .unwrap_err();
        assert_eq!(err.path, path);
        assert_eq!(names(dir.path()), [name]);
    }
}
