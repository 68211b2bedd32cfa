// SPDX-License-Identifier: Apache-2.0
//! The proxy environment variables must not divert `HttpClient` unless `use_proxy_env` is set.
//!
//! Environment variables are process-global and setting them is `unsafe` in edition 2024, so the
//! parent test re-runs this test binary as a child process with the proxy variables pointing at a
//! closed loopback port, and the child test does the checks. Running the child test directly
//! (without the marker variable) does nothing.

use std::process::Command;

use thimble_collect::http::{Fetch, FetchError, HttpClient, HttpConfig};
use thimble_sim::emulator::{Emulator, EmulatorConfig, THIM_AMD_PATH, unused_loopback_port};

/// Set in the child's environment; the child test runs only when it is present.
const CHILD_MARKER: &str = "THIMBLE_TEST_PROXY_ENV_CHILD";

const PROXY_VARS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
];

#[test]
fn proxy_env_is_ignored_unless_enabled() {
    let dead_proxy = format!("http://127.0.0.1:{}", unused_loopback_port().unwrap());
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["child_with_proxy_env", "--exact", "--test-threads=1"])
        .env(CHILD_MARKER, "1")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
    for var in PROXY_VARS {
        child.env(var, &dead_proxy);
    }
    let output = child.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    // Guards against the filter silently matching nothing.
    assert!(stdout.contains("1 passed"), "child did not run:\n{stdout}");
}

#[test]
fn child_with_proxy_env() {
    if std::env::var_os(CHILD_MARKER).is_none() {
        return;
    }
    let emu = Emulator::start(EmulatorConfig {
        thim_amd_body: Some(b"{}".to_vec()),
        ..EmulatorConfig::default()
    })
    .unwrap();
    let url = format!("{}{THIM_AMD_PATH}", emu.base_url());
    let config = HttpConfig {
        max_attempts: 1,
        ..HttpConfig::default()
    };

    let direct = HttpClient::new(config.clone());
    let response = direct.get(&url, &[("Metadata", "true")]).unwrap();
    assert_eq!(response.body, b"{}");
    let requests = emu.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("proxy-authorization"), None);

    // Proves the variables are visible here: the opted-in client goes to the dead proxy.
    let proxied = HttpClient::new(HttpConfig {
        use_proxy_env: true,
        ..config
    });
    let err = proxied.get(&url, &[("Metadata", "true")]).unwrap_err();
    assert!(matches!(err, FetchError::Connect { .. }), "{err:?}");
    assert_eq!(emu.requests().len(), 1);
}
