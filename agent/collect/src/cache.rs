// SPDX-License-Identifier: Apache-2.0
//! On-disk cache of fetched AMD endorsements, so that a collect after the first one needs no
//! network: one JSON file per (chip, TCB) for the VCEK and its chain, kept for as long as the
//! source allowed (`cacheControl` / `Cache-Control: max-age`, or a default), and one per ARK CRL
//! (product, VCEK or VLEK side, ARK), kept until the CRL's own nextUpdate.
//!
//! The cache is not trusted: an entry is used only after its certificates verify the new report
//! against the pinned roots, or its CRL is again found issued and signed by the chain's ARK,
//! exactly as a fresh THIM or KDS answer would be. A damaged, expired or non-matching entry is
//! ignored and replaced. Writes go through a temporary file and a rename so that a reader never
//! sees half an entry.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thimble_evidence::bundle::Endorsement;
use thimble_evidence::snp::{AmdCert, Product, SnpReport};
use thimble_evidence::time_fmt::format_unix;

/// Lifetime of an entry whose source gave none.
pub const DEFAULT_MAX_AGE_SECS: u64 = 24 * 60 * 60;

/// One cached endorsement set (a VCEK and its chain, or one CRL).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheEntry {
    /// Seconds since the epoch.
    pub stored_at: i64,
    pub expires_at: i64,
    /// `thim` or `kds`.
    pub source: String,
    pub endorsements: Vec<Endorsement>,
}

/// Largest cache entry read, in bytes. An entry holds a few certificates or one CRL (a few KiB);
/// the cache directory may be writable by others, so a reader does not load whatever it finds.
const MAX_ENTRY_BYTES: u64 = 1024 * 1024;

/// A cache directory.
#[derive(Debug, Clone)]
pub struct EndorsementCache {
    dir: PathBuf,
}

/// Why a cache operation failed (lookups never fail: a bad entry is a miss).
#[derive(Debug, thiserror::Error)]
#[error("cannot write the endorsement cache entry {path}")]
pub struct CacheError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl EndorsementCache {
    pub fn new(dir: impl Into<PathBuf>) -> EndorsementCache {
        EndorsementCache { dir: dir.into() }
    }

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
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(f, MAX_ENTRY_BYTES.saturating_add(1)),
            &mut bytes,
        )
        .ok()?;
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
            source: crl.origin.kind.clone(),
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
