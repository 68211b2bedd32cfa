// SPDX-License-Identifier: AGPL-3.0-or-later
//! On-disk cache of fetched AMD endorsements, so that a collect after the first one needs no
//! network: one JSON file per (chip, TCB), kept for as long as the source allowed
//! (`cacheControl` / `Cache-Control: max-age`, or a default).
//!
//! The cache is not trusted: an entry is used only after its certificates verify the new report
//! against the pinned roots, exactly as a fresh THIM or KDS answer would be. A damaged, expired or
//! non-matching entry is ignored and replaced. Writes go through a temporary file and a rename so
//! that a reader never sees half an entry.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thimble_evidence::bundle::Endorsement;
use thimble_evidence::snp::{AmdCert, SnpReport};
use thimble_evidence::time_fmt::format_unix;

/// Lifetime of an entry whose source gave none.
pub const DEFAULT_MAX_AGE_SECS: u64 = 24 * 60 * 60;

/// One cached endorsement set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheEntry {
    /// Seconds since the epoch.
    pub stored_at: i64,
    pub expires_at: i64,
    /// `thim` or `kds`.
    pub source: String,
    pub endorsements: Vec<Endorsement>,
}

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

    /// The unexpired entry for `report`, with its certificates parsed. Verification is the
    /// caller's job.
    pub fn lookup(&self, report: &SnpReport, now: i64) -> Option<(CacheEntry, Vec<AmdCert>)> {
        let path = self.path_for(report)?;
        let bytes = fs::read(path).ok()?;
        let entry: CacheEntry = serde_json::from_slice(&bytes).ok()?;
        if entry.expires_at <= now {
            return None;
        }
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
        let err = |source| CacheError {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(&self.dir).map_err(err)?;
        let tmp = self
            .dir
            .join(format!(".{}.{}.tmp", std::process::id(), now));
        let write = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(&entry).map_err(std::io::Error::other)?)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        if write.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        write.map_err(err)?;
        Ok(Some(path))
    }
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
