// SPDX-License-Identifier: Apache-2.0
//! One collection's state, shared by the TEE collectors ([`crate::snp`], [`crate::tdx`],
//! [`crate::azure`]): the environment, the request, the time, and REPORT_DATA with the nonce
//! record the bundle keeps. Also the decisions every collector makes the same way: where an
//! endpoint is (the request's, else the environment's, else the real service), which cache is
//! used, and how the configfs-tsm client is reached.

use std::path::PathBuf;

use thimble_evidence::bundle::Nonce;
use thimble_evidence::report_data::{self, Derivation};

use crate::cache::EndorsementCache;
use crate::env::{Endpoint, Environment};
use crate::error::CollectError;
use crate::request::{Binding, CacheChoice, CollectRequest, RANDOM_NONCE_LEN};
use crate::tsm::{ConfigFs, TsmClient, TsmError};

/// REPORT_DATA for a binding, with the nonce record and the bytes a TPM quote qualifies.
#[derive(Debug, Clone)]
pub(crate) struct Bound {
    /// The 64 bytes the hardware report carries (on Azure: the HCL report's `user-data`).
    pub report_data: [u8; 64],
    /// What the bundle records about the nonce.
    pub nonce: Nonce,
    /// The nonce itself (REPORT_DATA for [`Binding::ReportData`]): an Azure TPM quote's
    /// qualifying data is derived from it.
    pub nonce_bytes: Vec<u8>,
}

impl Bound {
    /// Resolves `binding`, drawing a random nonce from `env` when asked to.
    pub fn new<E: Environment>(env: &E, binding: &Binding) -> Result<Bound, CollectError> {
        let (nonce, generated) = match binding {
            Binding::ReportData(rd) => {
                return Ok(Bound {
                    report_data: *rd,
                    nonce: Nonce {
                        value: hex::encode(rd),
                        generated: false,
                        report_data_derivation: Derivation::Raw,
                    },
                    nonce_bytes: rd.to_vec(),
                });
            }
            Binding::Padded(v) => {
                let report_data =
                    report_data::padded(v).ok_or_else(|| CollectError::InvalidRequest {
                        reason: format!(
                            "a padded REPORT_DATA value must be 1 to 64 bytes, not {}",
                            v.len()
                        ),
                    })?;
                return Ok(Bound {
                    report_data,
                    nonce: Nonce {
                        value: hex::encode(v),
                        generated: false,
                        report_data_derivation: Derivation::Padded,
                    },
                    nonce_bytes: v.clone(),
                });
            }
            Binding::Nonce(n) => (n.clone(), false),
            Binding::RandomNonce => {
                let mut n = [0u8; RANDOM_NONCE_LEN];
                env.fill_random(&mut n)?;
                (n.to_vec(), true)
            }
        };
        Ok(Bound {
            report_data: report_data::from_nonce(&nonce),
            nonce: Nonce {
                value: hex::encode(&nonce),
                generated,
                report_data_derivation: Derivation::Sha512,
            },
            nonce_bytes: nonce,
        })
    }
}

/// One collection.
pub(crate) struct Context<'a, E: Environment> {
    /// The outside world.
    pub env: &'a E,
    /// What was asked for.
    pub request: &'a CollectRequest,
    /// The time endorsements are checked at and the bundle is dated, seconds since the epoch.
    pub now: i64,
    /// REPORT_DATA and the nonce.
    pub bound: Bound,
}

impl<E: Environment> Context<'_, E> {
    /// The base URL of `endpoint`: the request's (`explicit`), else the environment's, else
    /// `default`, the real service. An explicit one always wins, so that a caller can aim a
    /// simulated guest at an emulator with faults.
    pub fn endpoint(
        &self,
        endpoint: Endpoint,
        explicit: Option<&str>,
        default: &str,
    ) -> Result<String, CollectError> {
        if let Some(url) = explicit {
            return Ok(url.to_owned());
        }
        Ok(self
            .env
            .endpoint(endpoint)?
            .unwrap_or_else(|| default.to_owned()))
    }

    /// The cache the request asks for, if any. `--offline` reads no cache either.
    pub fn cache(&self) -> Option<EndorsementCache> {
        if self.request.fetching.offline {
            return None;
        }
        let dir: Option<PathBuf> = match &self.request.cache {
            CacheChoice::Disabled => None,
            CacheChoice::Dir(d) => Some(d.clone()),
            CacheChoice::Default => self.env.default_cache_dir(),
        };
        dir.map(EndorsementCache::new)
    }

    /// The configfs-tsm client, or the error of a machine without configfs-tsm.
    pub fn tsm(&self) -> Result<TsmClient<E::ConfigFs>, TsmError> {
        let root = &self.request.devices.tsm_root;
        match self.env.configfs_tsm(root) {
            Some((fs, root)) => Ok(TsmClient::new(fs, root)),
            None => Err(TsmError::Unavailable { root: root.clone() }),
        }
    }
}

/// The configfs-tsm root of `client`, as the bundle records it.
pub(crate) fn tsm_path<F: ConfigFs>(client: &TsmClient<F>) -> String {
    client.root().display().to_string()
}
