// SPDX-License-Identifier: Apache-2.0
//! What the HTTP tests of the collection library share: a THIM answer, the header IMDS requires,
//! a fast retry policy and the URL of the emulator's THIM endpoint.

#![allow(dead_code, reason = "each test file uses a part")]

use std::time::Duration;

use thimble_collect::http::HttpConfig;
use thimble_sim::emulator::{Emulator, THIM_AMD_PATH};

/// A THIM `certification` answer (its certificate is not one; the HTTP tests do not parse it).
pub const THIM_BODY: &[u8] = br#"{"vcekCert":"-----BEGIN CERTIFICATE-----\n","tcbm":"7308000000000003","certificateChain":"","cacheControl":"86400"}"#;

/// The header IMDS requires of every request.
pub const METADATA: (&str, &str) = ("Metadata", "true");

/// A fast policy for tests: short waits, four attempts, 64 KiB bodies.
pub fn fast_config() -> HttpConfig {
    HttpConfig {
        per_request_timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(5),
        max_attempts: 4,
        backoff_base: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_body_bytes: 64 * 1024,
        use_proxy_env: false,
        overall_end: None,
        retry_not_found: true,
    }
}

/// The emulator's THIM endpoint.
pub fn thim_url(emu: &Emulator) -> String {
    format!("{}{THIM_AMD_PATH}", emu.base_url())
}
